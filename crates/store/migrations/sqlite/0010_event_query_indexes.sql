-- Indexes for the API's event filters at 10 M events (docs/performance.md,
-- "Event store at 10 M events (#17)"). A listing is "filters, a time range,
-- newest first": an index that leads with the filter's columns, then `id`
-- (the order), then `started_at` walks the matches newest first and tests the
-- time range inside the index, so an event outside it costs no table read.
-- Never edit this file once it has landed; add a new migration instead.

-- A camera's events (the camera's page, its cursor, a range of its time).
-- Replaces events_by_camera (camera_id, id), its prefix.
CREATE INDEX events_by_camera_time ON events (camera_id, id, started_at);
DROP INDEX events_by_camera;

-- A village's events of one kind (`?village=&kind=&since=`).
CREATE INDEX events_by_village_kind ON events (village, kind, id, started_at);

-- A grid's events (`?grid=`); grids had no index.
CREATE INDEX events_by_grid ON events (grid, id, started_at);

-- A village's counts over a range (`GET /stats/events?village=`): read from
-- the index alone.
CREATE INDEX events_by_village_time ON events (village, started_at, kind);

-- Counts per kind over a range (`GET /stats/events`) read from the index
-- alone. Replaces events_by_start (started_at), its prefix.
CREATE INDEX events_by_start_kind ON events (started_at, kind);
DROP INDEX events_by_start;
