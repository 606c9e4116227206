-- Event clips (design/live-view.md). Never edit this file once it has
-- landed; add a new migration instead.

-- The MP4 of an event's video, cut from the camera's ring without
-- re-encoding; kept apart so event listings never read video bytes. Goes
-- with its event (retention, the disk budget, deletion).
CREATE TABLE clips (
    event_id    INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    mp4         BLOB    NOT NULL,
    -- Length of the video, milliseconds, and the MP4's size (read by the
    -- listings without touching the blob).
    duration_ms INTEGER NOT NULL,
    bytes       INTEGER NOT NULL
);
