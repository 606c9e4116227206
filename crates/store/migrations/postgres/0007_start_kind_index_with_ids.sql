-- The time index also carries the event's id, so that a listing of a range
-- deep in the past (`?since=&until=`: an hour is ~4,600 events at 10 M, to
-- be sorted by id) and the edges of a counted stats range read the index
-- alone where the visibility map allows, not one heap page per event: an
-- hour in the past took p50 6.6 / p99 16 ms at 10 M events
-- (docs/performance.md, "Event store at 10 M events (#17)"). Replaces
-- events_by_start_kind (started_at, kind): same key, retention and the
-- counts per kind read it as before. Never edit this file once it has landed.
CREATE INDEX events_by_start_kind_id ON events (started_at, kind) INCLUDE (id);
DROP INDEX events_by_start_kind;
