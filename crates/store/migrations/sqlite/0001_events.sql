-- Events: one row per happening the monitoring centre should see (an object
-- appearing, later rule and camera-health events). Never edit this file once it
-- has landed; add a new migration instead.
CREATE TABLE events (
    -- Stable, increasing id; the API's pagination cursor.
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The camera's `id` from the configuration.
    camera_id    TEXT    NOT NULL,
    -- The camera's village (村/社区) when the event happened, copied for filters.
    village      TEXT,
    -- The camera's grid (网格) when the event happened, copied for filters.
    grid         TEXT,
    -- What happened: 'object' (an object of a watched label appeared).
    kind         TEXT    NOT NULL,
    -- The detector's label ('person', 'car', ...).
    label        TEXT    NOT NULL,
    -- The best detector score seen during the event, 0..1.
    score        REAL    NOT NULL,
    -- When the event started: milliseconds since the Unix epoch, UTC.
    started_at   INTEGER NOT NULL,
    -- When it ended (ms since the Unix epoch, UTC); NULL while active.
    ended_at     INTEGER,
    -- Lifecycle: 'active' or 'ended'.
    status       TEXT    NOT NULL,
    -- Size of the frame the boxes refer to, in pixels.
    frame_width  INTEGER NOT NULL,
    frame_height INTEGER NOT NULL,
    -- JSON array of {label, score, x1, y1, x2, y2} in frame pixels.
    boxes        TEXT    NOT NULL
);

CREATE INDEX events_by_camera ON events (camera_id, id);
CREATE INDEX events_by_start ON events (started_at);

-- The JPEG picture of the frame an event started on, kept apart so event
-- listings never read image bytes.
CREATE TABLE snapshots (
    -- The event this picture belongs to.
    event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    -- JPEG bytes, full frame resolution.
    jpeg     BLOB    NOT NULL
);
