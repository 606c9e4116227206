-- Zones, rules and tracked objects on events, and counting-line crossings.

-- The zone (or counting line) and the rule that made the event; NULL for
-- object and health events.
ALTER TABLE events ADD COLUMN zone TEXT;
ALTER TABLE events ADD COLUMN rule TEXT;
-- The tracker's id of the event's object (unique per camera while the process runs).
ALTER TABLE events ADD COLUMN object_id INTEGER;
-- JSON array of {at, x1, y1, x2, y2}: the object's track while the event
-- lasted, bounded in length; written when the event ends.
ALTER TABLE events ADD COLUMN track TEXT;

CREATE INDEX events_by_zone ON events (camera_id, zone);

-- One row per object crossing a counting line (all crossings, whether or not
-- they make an event).
CREATE TABLE line_crossings (
    -- The camera's `id` from the configuration.
    camera_id TEXT    NOT NULL,
    -- The line's `name` from the camera's configuration.
    line      TEXT    NOT NULL,
    -- 'forward' (left to right looking from the line's `from` to `to`) or 'backward'.
    direction TEXT    NOT NULL,
    -- The detector's label of the object.
    label     TEXT    NOT NULL,
    -- When it crossed: ms since the Unix epoch, UTC.
    at        INTEGER NOT NULL
);

CREATE INDEX line_crossings_by_line ON line_crossings (camera_id, line, at);
