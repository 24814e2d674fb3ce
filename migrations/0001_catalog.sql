-- Lifeboat catalog, version 1.
-- Portable SQL: the same file creates the same schema on SQLite and PostgreSQL.
-- Identifiers are TEXT (UUIDv7, time-ordered); timestamps are TEXT in RFC 3339
-- UTC with milliseconds ("2026-11-25T12:00:00.000Z"), so they sort as text;
-- booleans are BIGINT 0/1; structured values are JSON in TEXT.
-- The bucket stays the source of truth for backups: this catalog can be rebuilt from it.

CREATE TABLE storage_locations (
    name                TEXT PRIMARY KEY,
    kind                TEXT NOT NULL,            -- local | s3
    config              TEXT NOT NULL,            -- JSON, never secret values
    is_default          BIGINT NOT NULL DEFAULT 0,
    availability        TEXT NOT NULL DEFAULT 'unknown', -- unknown | available | unavailable
    availability_reason TEXT,
    checked_at          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE TABLE backups (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    storage_location     TEXT NOT NULL REFERENCES storage_locations (name),
    schedule             TEXT,
    phase                TEXT NOT NULL,           -- New | InProgress | Completed | PartiallyFailed | Failed | Deleting
    phase_reason         TEXT,
    spec                 TEXT NOT NULL,           -- JSON
    items_done           BIGINT NOT NULL DEFAULT 0,
    items_total          BIGINT,
    bytes_done           BIGINT NOT NULL DEFAULT 0,
    size_bytes           BIGINT,
    warnings             BIGINT NOT NULL DEFAULT 0,
    errors               BIGINT NOT NULL DEFAULT 0,
    missing_from_storage BIGINT NOT NULL DEFAULT 0,
    started_at           TEXT,
    completed_at         TEXT,
    expires_at           TEXT,
    created_at           TEXT NOT NULL
);
CREATE INDEX backups_by_phase ON backups (phase);
CREATE INDEX backups_by_schedule ON backups (schedule, created_at);

CREATE TABLE restores (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    backup_name  TEXT NOT NULL,
    phase        TEXT NOT NULL,                   -- New | Planned | InProgress | Completed | PartiallyFailed | Failed
    phase_reason TEXT,
    spec         TEXT NOT NULL,                   -- JSON
    plan         TEXT,                            -- JSON, once planned
    items_done   BIGINT NOT NULL DEFAULT 0,
    items_total  BIGINT,
    warnings     BIGINT NOT NULL DEFAULT 0,
    errors       BIGINT NOT NULL DEFAULT 0,
    started_at   TEXT,
    completed_at TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX restores_by_backup ON restores (backup_name);

CREATE TABLE schedules (
    name         TEXT PRIMARY KEY,
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL DEFAULT 'UTC',
    template     TEXT NOT NULL,                   -- JSON backup spec
    ttl_seconds  BIGINT,
    keep_last    BIGINT,
    paused       BIGINT NOT NULL DEFAULT 0,
    last_run_at  TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Append-only: rows are inserted, never updated or deleted by Lifeboat.
CREATE TABLE activity (
    id      TEXT PRIMARY KEY,                     -- UUIDv7: ordered by time
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,                        -- "api", "cli", "scheduler", "system"
    kind    TEXT NOT NULL,                        -- e.g. backup.created, storage.checked
    subject TEXT NOT NULL,                        -- e.g. backup/nightly-20261125T010000Z
    message TEXT NOT NULL,
    details TEXT                                  -- JSON
);
CREATE INDEX activity_by_subject ON activity (subject, at);
