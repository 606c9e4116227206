-- Alert push to duty officers: the transactional outbox, alerts (one per
-- camera and rule within the flood window), their deliveries to channels and
-- every delivery attempt. Never edit this file once it has landed.

-- One row per stored event, written in the same transaction as the event, so
-- a crash between storing an event and telling anyone about it loses nothing.
CREATE TABLE alert_outbox (
    -- The event to consider for alerting.
    event_id     INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    -- When the row was written: ms since the Unix epoch, UTC.
    created_at   INTEGER NOT NULL,
    -- The alert the event opened or was merged into; NULL when no route matched
    -- or not yet routed.
    alert_id     INTEGER,
    -- When the dispatcher routed it (made or merged an alert, or found no
    -- route): ms since the Unix epoch, UTC; NULL while waiting.
    processed_at INTEGER
);

CREATE INDEX alert_outbox_waiting ON alert_outbox (event_id) WHERE processed_at IS NULL;

-- One alert per camera and rule within the flood window: later events of the
-- same camera and rule inside the window only raise `count`.
CREATE TABLE alerts (
    -- Stable id; used in acknowledgement links.
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The event that opened the alert.
    event_id       INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- The camera's `id` from the configuration.
    camera_id      TEXT    NOT NULL,
    -- What was matched: the event kind, and for object events `object:<label>`.
    rule_key       TEXT    NOT NULL,
    -- How many events this alert stands for (flood control).
    count          INTEGER NOT NULL DEFAULT 1,
    -- When the alert was opened and when its latest event was merged in (ms, UTC).
    created_at     INTEGER NOT NULL,
    last_event_at  INTEGER NOT NULL,
    -- The id of the latest event merged into this alert.
    last_event_id  INTEGER NOT NULL,
    -- Events of the same camera and rule before this time are merged (ms, UTC).
    flood_until    INTEGER NOT NULL,
    -- When the alert escalates to the duty leader if nobody acknowledged it (ms, UTC);
    -- NULL when its route does not escalate.
    escalate_at    INTEGER,
    -- When it was escalated (ms, UTC); NULL if not (yet).
    escalated_at   INTEGER,
    -- Acknowledgement: when (ms, UTC), by whom (an officer id or an API caller's
    -- name), and through what ('api' or 'link').
    acked_at       INTEGER,
    acked_by       TEXT,
    acked_via      TEXT
);

CREATE INDEX alerts_by_event ON alerts (event_id);
CREATE INDEX alerts_flood ON alerts (camera_id, rule_key, flood_until);
CREATE INDEX alerts_escalation ON alerts (escalate_at) WHERE escalated_at IS NULL AND acked_at IS NULL;

-- One message of an alert to one channel (and officer, for officer channels).
CREATE TABLE alert_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The alert this message belongs to.
    alert_id        INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    -- The channel's `name` from `[[alerts.channels]]`.
    channel         TEXT    NOT NULL,
    -- The officer addressed (id from `[[organisation.officers]]`); NULL for a
    -- channel that is not an officer's (e.g. the centre's MQTT broker).
    officer         TEXT,
    -- 'primary' (the on-duty officer and route channels) or 'escalation'
    -- (the duty leader, after no acknowledgement).
    level           TEXT    NOT NULL,
    -- Sent with the message so receivers can drop repeats (at-least-once delivery).
    idempotency_key TEXT    NOT NULL UNIQUE,
    -- 'pending' (to send, maybe after a retriable failure), 'delivered', or
    -- 'failed' (a permanent failure, or attempts exhausted).
    status          TEXT    NOT NULL,
    -- Attempts made so far.
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Do not try before this time (ms, UTC): backoff and rate limits.
    next_attempt_at INTEGER NOT NULL,
    -- The last failure, in words (never a secret or a URL with a token).
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    -- When the channel accepted the message (ms, UTC).
    delivered_at    INTEGER
);

CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_by_alert ON alert_deliveries (alert_id);

-- Every attempt to send a delivery.
CREATE TABLE alert_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
    -- When the attempt started (ms, UTC) and how long it took (ms).
    at          INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    -- 'ok', 'retriable' (will be retried) or 'permanent' (will not).
    outcome     TEXT    NOT NULL,
    -- What went wrong, in words; NULL when ok.
    error       TEXT
);

CREATE INDEX alert_attempts_by_delivery ON alert_attempts (delivery_id);
