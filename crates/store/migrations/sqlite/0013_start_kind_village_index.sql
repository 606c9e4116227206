-- The time index also holds the village, so that the part of a stats range
-- counted from the events (before its first and after its last whole hour,
-- under an hour each; the rest comes from event_counts, 0012) is read from
-- the index alone: a village's day took p50 9 / p99 17 ms at 10 M events
-- reading each of the hour's ~4,600 rows to test its village
-- (docs/performance.md, "Event store at 10 M events (#17)"). Replaces
-- events_by_start_kind (started_at, kind), its prefix: retention and the
-- counts per kind read it as before. Never edit this file once it has landed.
CREATE INDEX events_by_start_kind_village ON events (started_at, kind, village);
DROP INDEX events_by_start_kind;
