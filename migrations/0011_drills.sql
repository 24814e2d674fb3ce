-- Lifeboat catalog, version 11: restore drills. A drill restores a backup
-- into scratch namespaces (`<ns>-drill-<id>`), waits for its workloads to be
-- ready, records what it found, and deletes the scratch namespaces;
-- `cleaned_at` stays NULL until they are gone, so a clean-up cut short by a
-- restart is resumed. A schedule with `drill` = 1 drills each backup it makes.

CREATE TABLE drills (
    id           TEXT PRIMARY KEY,            -- short id, also in the scratch namespaces' names
    backup       TEXT NOT NULL,
    schedule     TEXT,
    phase        TEXT NOT NULL,               -- Running, Passed, Failed
    reason       TEXT,                        -- why it failed
    namespaces   TEXT NOT NULL,               -- JSON {"shop": "shop-drill-1a2b3c"}
    restore_name TEXT,
    objects      BIGINT NOT NULL DEFAULT 0,   -- restored
    volumes      BIGINT NOT NULL DEFAULT 0,   -- volumes whose data came back
    ready_ms     BIGINT,                      -- from the restore's start until ready
    checks       TEXT NOT NULL DEFAULT '[]',  -- JSON [{object, ok, expected, detail}]
    actor        TEXT NOT NULL,
    owner        TEXT,
    heartbeat_at TEXT,
    created_at   TEXT NOT NULL,
    completed_at TEXT,
    cleaned_at   TEXT
);
CREATE INDEX drills_backup ON drills (backup);

ALTER TABLE schedules ADD COLUMN drill BIGINT NOT NULL DEFAULT 0;
