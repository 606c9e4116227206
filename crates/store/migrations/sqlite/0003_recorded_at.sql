-- When each event row was written: ms since the Unix epoch, UTC. With
-- `started_at` (the arrival of the frame that started the event) it gives the
-- pipeline's frame-to-stored latency. NULL for rows written before this column.
ALTER TABLE events ADD COLUMN recorded_at INTEGER;
