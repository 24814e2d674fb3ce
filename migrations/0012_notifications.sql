-- Lifeboat catalog, version 12: notifications. Targets are webhooks
-- (generic JSON or Slack-compatible); their URLs carry secrets and, like
-- storage credentials, no API response reads them. The notifier reads the
-- activity log after `notification_cursor` and queues one delivery per
-- event and target (the unique index makes queueing idempotent), then sends
-- each with retries and backoff until it is delivered or given up.

CREATE TABLE notification_targets (
    name       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,               -- webhook, slack
    url        TEXT NOT NULL,               -- secret: never returned
    events     TEXT NOT NULL,               -- JSON list of event names
    created_at TEXT NOT NULL
);

CREATE TABLE notification_deliveries (
    id              TEXT PRIMARY KEY,       -- UUIDv7
    target          TEXT NOT NULL,
    event           TEXT NOT NULL,          -- backup.failed, backup.recovered, …
    activity_id     TEXT NOT NULL,          -- the activity entry it tells of
    subject         TEXT NOT NULL,
    message         TEXT NOT NULL,
    state           TEXT NOT NULL,          -- pending, delivered, failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE UNIQUE INDEX notification_deliveries_once ON notification_deliveries (target, activity_id, event);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_at);

CREATE TABLE notification_cursor (
    id          BIGINT PRIMARY KEY,         -- always 1
    activity_id TEXT NOT NULL               -- the newest activity entry read
);
