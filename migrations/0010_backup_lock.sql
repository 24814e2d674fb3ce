-- Lifeboat catalog, version 10: until when a backup on an immutable location
-- is held by S3 Object Lock (RFC 3339; NULL when it is not locked). Neither
-- garbage collection nor a user's delete is tried before then.

ALTER TABLE backups ADD COLUMN locked_until TEXT;
