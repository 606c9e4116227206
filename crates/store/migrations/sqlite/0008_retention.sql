-- Retention and the disk budget (design/retention.md). Never edit this file
-- once it has landed; add a new migration instead.

-- 1 when an operator marked the event to keep (a case file): retention and
-- the disk budget never remove it or its snapshot; 0 otherwise.
ALTER TABLE events ADD COLUMN keep INTEGER NOT NULL DEFAULT 0;

-- Retention removes crossings and audit lines by age, oldest first.
CREATE INDEX line_crossings_by_time ON line_crossings (at);
CREATE INDEX audit_by_time ON audit_log (at);
