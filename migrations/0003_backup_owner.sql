-- Lifeboat catalog, version 3: which replica runs a backup, and when it last
-- said so. With a shared (PostgreSQL) catalog a replica that starts marks as
-- interrupted only its own earlier backups and those whose heartbeat stopped,
-- never a backup another replica is running.

ALTER TABLE backups ADD COLUMN owner TEXT;
ALTER TABLE backups ADD COLUMN heartbeat_at TEXT;
