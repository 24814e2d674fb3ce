-- Lifeboat catalog, version 4: restores get the life cycle backups have —
-- which replica runs one and when it last said so — so that a restore whose
-- server stopped is marked Failed (interrupted) instead of reading
-- InProgress forever and keeping its backup from deletion.

ALTER TABLE restores ADD COLUMN owner TEXT;
ALTER TABLE restores ADD COLUMN heartbeat_at TEXT;
