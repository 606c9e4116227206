-- Drops events_by_village_time (0010) on SQLite. The store never runs
-- ANALYZE, and without statistics SQLite's planner prefers it for every
-- listing of a village with a time range ("village = ? AND started_at >= ?":
-- an equality and a range beat an equality alone), then sorts every event of
-- the range by id: 330 ms at p99 for `?village=&kind=&since=` one week back
-- at 10 M events, where events_by_village_kind takes 5-10 ms (docs/
-- performance.md, "Event store at 10 M events (#17)"). A village's counts
-- read events_by_village_kind instead. PostgreSQL, which plans with
-- statistics, keeps it. Never edit this file once it has landed.
DROP INDEX events_by_village_time;
