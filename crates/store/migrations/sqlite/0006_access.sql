-- Access control (users, tokens), the audit trail, and the operators' workflow
-- on events. Never edit this file once it has landed; add a new migration.

CREATE TABLE users (
    -- Stable id.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Login name, unique.
    username      TEXT    NOT NULL UNIQUE,
    -- argon2id PHC string ($argon2id$v=19$...); never the password.
    password_hash TEXT    NOT NULL,
    -- 'admin', 'operator' or 'viewer'.
    role          TEXT    NOT NULL,
    -- JSON array of the villages the user may see; '[]' means every village.
    villages      TEXT    NOT NULL,
    -- 1 when the user may no longer log in or use tokens.
    disabled      INTEGER NOT NULL DEFAULT 0,
    -- When the user was made: ms since the Unix epoch, UTC.
    created_at    INTEGER NOT NULL
);

CREATE TABLE tokens (
    -- Stable id; what listings show and revocation names.
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Whose token it is; a deleted user's tokens go with them.
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'session' (from logging in) or 'api' (made for an integration).
    kind         TEXT    NOT NULL,
    -- A name for people ("county platform", "login").
    name         TEXT    NOT NULL,
    -- Hex SHA-256 of the token; the token itself is shown once and never stored.
    token_hash   TEXT    NOT NULL UNIQUE,
    -- ms since the Unix epoch, UTC.
    created_at   INTEGER NOT NULL,
    -- After this (ms, UTC) the token is refused; NULL: never expires.
    expires_at   INTEGER,
    -- Last time it was used (ms, UTC), updated at most once a minute.
    last_used_at INTEGER,
    -- When it was revoked (ms, UTC); NULL while valid.
    revoked_at   INTEGER
);

CREATE INDEX tokens_by_user ON tokens (user_id, id);

-- Who did what to what, and when: event workflow steps and administrative changes.
CREATE TABLE audit_log (
    -- Stable, increasing id.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- When: ms since the Unix epoch, UTC.
    at          INTEGER NOT NULL,
    -- The username who did it ('cli' for the command line).
    user        TEXT    NOT NULL,
    -- What was done ('acknowledge', 'assign', 'camera.update', 'user.create', ...).
    action      TEXT    NOT NULL,
    -- What it was done to: 'event', 'camera', 'user' or 'token'.
    target_kind TEXT    NOT NULL,
    -- The target's id, as text.
    target_id   TEXT    NOT NULL,
    -- JSON object with the details (assignee, note, changed fields); never secrets.
    detail      TEXT    NOT NULL
);

CREATE INDEX audit_by_target ON audit_log (target_kind, target_id, id);

-- Where operators have taken the event: 'new', 'acknowledged', 'assigned',
-- 'resolved' or 'false_alarm'.
ALTER TABLE events ADD COLUMN workflow TEXT NOT NULL DEFAULT 'new';
-- Who is to deal with it (set by 'assign').
ALTER TABLE events ADD COLUMN assignee TEXT;
-- When and by whom the workflow last changed (ms UTC; username).
ALTER TABLE events ADD COLUMN workflow_at INTEGER;
ALTER TABLE events ADD COLUMN workflow_by TEXT;

CREATE INDEX events_by_workflow ON events (workflow, id);
CREATE INDEX events_by_village ON events (village, id);
