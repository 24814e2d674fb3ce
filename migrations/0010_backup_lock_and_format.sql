-- Lifeboat catalog, version 10:
-- * until when a backup on an immutable location is held by S3 Object Lock
--   (RFC 3339; NULL when it is not locked). Neither garbage collection nor a
--   user's delete is tried before then;
-- * the archive format its manifest had when this catalog first saw it
--   (written or imported). A manifest that later claims an older, unsigned
--   format was replaced, and is refused.

ALTER TABLE backups ADD COLUMN locked_until TEXT;
ALTER TABLE backups ADD COLUMN format_version BIGINT;
