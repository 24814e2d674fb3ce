-- Lifeboat catalog, version 7: volume data.
--
-- `volume_tasks` is the work node agents do: one volume to back up or
-- restore on one node, created by the replica running the backup or restore
-- and claimed by the agent of that node (agents poll any replica, so the
-- queue lives here). `volume_agents` says when each node's agent last asked
-- for work, so a task for a node without an agent fails at once instead of
-- waiting. `repository_keys` holds each location's volume repository key:
-- like `storage_credentials`, no query behind an API response reads it
-- except the one-time reveal. Protect the catalog as you would a Secret.

CREATE TABLE volume_tasks (
    id          TEXT PRIMARY KEY,
    -- `backup` or `restore`.
    kind        TEXT NOT NULL,
    -- The backup or restore the task belongs to.
    owner       TEXT NOT NULL,
    location    TEXT NOT NULL,
    node        TEXT NOT NULL,
    -- What to do (JSON): the pod, the volume, the snapshot.
    spec        TEXT NOT NULL,
    -- `pending`, `running`, `done` or `failed`.
    state       TEXT NOT NULL,
    agent       TEXT,
    bytes_done  BIGINT NOT NULL DEFAULT 0,
    bytes_total BIGINT NOT NULL DEFAULT 0,
    -- What was done (JSON), once done.
    result      TEXT,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX volume_tasks_by_node ON volume_tasks (node, state);
CREATE INDEX volume_tasks_by_owner ON volume_tasks (owner);

CREATE TABLE volume_agents (
    node     TEXT PRIMARY KEY,
    -- The agent's identity (its ServiceAccount) and pod.
    agent    TEXT NOT NULL,
    version  TEXT NOT NULL,
    seen_at  TEXT NOT NULL
);

CREATE TABLE repository_keys (
    location    TEXT PRIMARY KEY,
    password    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    -- When the key was shown (once); NULL until then.
    revealed_at TEXT
);
