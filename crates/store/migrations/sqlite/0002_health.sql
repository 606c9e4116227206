-- Camera health: words for health events, and durable samples of every
-- camera's state for the online-rate (在线率) reports.

-- What happened, in words: the offline reason and its detail, the length of
-- an outage. NULL for object events.
ALTER TABLE events ADD COLUMN detail TEXT;

-- One row per enabled camera per sampling interval (not per frame).
CREATE TABLE health_samples (
    -- The camera's `id` from the configuration.
    camera_id   TEXT    NOT NULL,
    -- The camera's village and grid at sampling time, for grouped reports.
    village     TEXT,
    grid        TEXT,
    -- End of the interval this sample stands for: ms since the Unix epoch, UTC.
    at          INTEGER NOT NULL,
    -- The camera's state: 'connecting', 'online', 'degraded' or 'offline'.
    -- 'online' and 'degraded' count as online for the online rate.
    state       TEXT    NOT NULL,
    -- Length of the interval this sample stands for, in ms.
    interval_ms INTEGER NOT NULL
);

CREATE INDEX health_samples_by_time ON health_samples (at);
