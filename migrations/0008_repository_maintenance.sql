-- Lifeboat catalog, version 8: upkeep of each location's volume repository.
--
-- A prune holds the repository's lock (`lock_holder` until
-- `lock_expires_at`, renewed while it runs, so a replica that dies mid-prune
-- frees it within minutes). While it is held, no agent is given a task for
-- that location, and a prune takes the lock only while no task there runs.
-- `prune_owed` is set when backups are deleted and cleared by a prune that
-- completes; `pruned_at` says when the last one did, so the packs restic's
-- two-phase deletion marked are removed by a later prune even when nothing
-- else is deleted.

CREATE TABLE repository_maintenance (
    location        TEXT PRIMARY KEY,
    lock_holder     TEXT,
    lock_expires_at TEXT,
    prune_owed      INTEGER NOT NULL DEFAULT 0,
    pruned_at       TEXT
);
