-- Lifeboat catalog, version 5: browser sessions, kept on the server so that
-- signing out (or a replica restarting) ends them everywhere. The cookie
-- holds a random id; only its SHA-256 is stored, so a copy of the database
-- signs nobody in.

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    uid TEXT NOT NULL,
    -- JSON array of group names.
    groups_json TEXT NOT NULL,
    -- How the session began: `token`, `code` (the demo's one-time code), `oidc`.
    method TEXT NOT NULL,
    -- Sent back by the browser in X-CSRF-Token on every state-changing request.
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX sessions_expires ON sessions (expires_at);
