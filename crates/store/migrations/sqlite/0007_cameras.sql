-- Camera definitions changed through the API (`POST/PATCH/DELETE
-- /api/v1/cameras`). At startup they override the config file's camera of the
-- same id; a deleted camera stays as a tombstone so the file cannot bring it
-- back. Cameras only in the config file have no row here.
CREATE TABLE cameras (
    -- The camera's `id` (as in the config file and on events).
    id         TEXT    PRIMARY KEY NOT NULL,
    -- JSON object with the fields of a `[[cameras]]` table (including the
    -- password, which is needed to connect); '{}' for a tombstone.
    definition TEXT    NOT NULL,
    -- 1 when the camera was deleted through the API (a tombstone), else 0.
    deleted    INTEGER NOT NULL DEFAULT 0,
    -- When the row was first written (or the camera re-created after a
    -- delete): ms since the Unix epoch, UTC.
    created_at INTEGER NOT NULL,
    -- When the definition or tombstone was last written: ms since the Unix epoch, UTC.
    updated_at INTEGER NOT NULL,
    -- Order in which cameras added through the API are listed (ascending);
    -- kept when a camera is updated.
    position   INTEGER NOT NULL
);
