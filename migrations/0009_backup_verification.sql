-- Lifeboat catalog, version 9: when each backup was last verified (every
-- object read back from storage, checked against the manifest, its
-- signature and the volume repository) and what that found: `ok`, or the
-- problems found, one per line.

ALTER TABLE backups ADD COLUMN verified_at TEXT;
ALTER TABLE backups ADD COLUMN verification TEXT;
