-- Events counted per UTC hour, village and kind (and per hour and kind), for `GET /stats/events`: the
-- same table as the SQLite migration 0012, kept by a trigger in the
-- statement's own transaction, so every way an event is written or removed
-- (the writer on any node, `xueliang migrate`, retention) keeps it exact.
-- Events never change their time, village or kind once written, so inserts
-- and deletes are all it follows. Never edit this file once it has landed.
CREATE TABLE event_counts (
    -- The start of the event's UTC hour, milliseconds since 1970.
    hour    BIGINT NOT NULL,
    -- '' for the events of cameras without a village.
    village TEXT   NOT NULL,
    kind    TEXT   NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (hour, village, kind)
);

-- A village's (or a scoped user's villages') counts over a range.
CREATE INDEX event_counts_by_village ON event_counts (village, hour, kind, n);

-- The same for the whole site, per hour and kind: what a query without a
-- village reads: a week of 11 kinds is ~1,800 rows, where event_counts has
-- ~37,000 for 20 villages.
CREATE TABLE site_event_counts (
    hour BIGINT NOT NULL,
    kind TEXT   NOT NULL,
    n    BIGINT NOT NULL,
    PRIMARY KEY (hour, kind)
);

INSERT INTO event_counts (hour, village, kind, n)
SELECT (started_at / 3600000) * 3600000, COALESCE(village, ''), kind, COUNT(*)
FROM events
GROUP BY 1, 2, 3;

INSERT INTO site_event_counts (hour, kind, n)
SELECT hour, kind, SUM(n) FROM event_counts GROUP BY 1, 2;

CREATE FUNCTION event_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO event_counts (hour, village, kind, n)
        VALUES ((NEW.started_at / 3600000) * 3600000, COALESCE(NEW.village, ''), NEW.kind, 1)
        ON CONFLICT (hour, village, kind) DO UPDATE SET n = event_counts.n + 1;
        INSERT INTO site_event_counts (hour, kind, n)
        VALUES ((NEW.started_at / 3600000) * 3600000, NEW.kind, 1)
        ON CONFLICT (hour, kind) DO UPDATE SET n = site_event_counts.n + 1;
    ELSE
        UPDATE event_counts SET n = n - 1
        WHERE hour = (OLD.started_at / 3600000) * 3600000
          AND village = COALESCE(OLD.village, '')
          AND kind = OLD.kind;
        UPDATE site_event_counts SET n = n - 1
        WHERE hour = (OLD.started_at / 3600000) * 3600000 AND kind = OLD.kind;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER event_counts_follow AFTER INSERT OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION event_counts_follow();
