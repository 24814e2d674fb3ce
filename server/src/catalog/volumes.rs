//! Volume data: the node agents' task queue (`volume_tasks`), when each
//! node's agent was last seen (`volume_agents`), the repository keys
//! (`repository_keys`) and each repository's lock and prune bookkeeping
//! (`repository_maintenance`).

use sqlx::FromRow;

use super::{Catalog, Result};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct VolumeTaskRecord {
    pub id: String,
    pub kind: String,
    pub owner: String,
    pub location: String,
    pub node: String,
    pub spec: String,
    pub state: String,
    pub agent: Option<String>,
    pub bytes_done: i64,
    pub bytes_total: i64,
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A task's repository is not locked by a prune (at `$2`).
const UNLOCKED: &str = "NOT EXISTS (SELECT 1 FROM repository_maintenance m \
                        WHERE m.location = volume_tasks.location \
                        AND m.lock_holder IS NOT NULL AND m.lock_expires_at >= $2)";

const TASK_COLUMNS: &str = "id, kind, owner, location, node, spec, state, agent, bytes_done, \
                            bytes_total, result, error, created_at, updated_at";

impl Catalog {
    pub async fn insert_volume_task(&self, t: &VolumeTaskRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO volume_tasks ({TASK_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&t.id)
        .bind(&t.kind)
        .bind(&t.owner)
        .bind(&t.location)
        .bind(&t.node)
        .bind(&t.spec)
        .bind(&t.state)
        .bind(&t.agent)
        .bind(t.bytes_done)
        .bind(t.bytes_total)
        .bind(&t.result)
        .bind(&t.error)
        .bind(&t.created_at)
        .bind(&t.updated_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn volume_task(&self, id: &str) -> Result<Option<VolumeTaskRecord>> {
        Ok(sqlx::query_as::<_, VolumeTaskRecord>(&format!(
            "SELECT {TASK_COLUMNS} FROM volume_tasks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The tasks of one backup or restore, oldest first.
    pub async fn volume_tasks_of(&self, owner: &str) -> Result<Vec<VolumeTaskRecord>> {
        Ok(sqlx::query_as::<_, VolumeTaskRecord>(&format!(
            "SELECT {TASK_COLUMNS} FROM volume_tasks WHERE owner = $1 ORDER BY created_at, id"
        ))
        .bind(owner)
        .fetch_all(self.pool())
        .await?)
    }

    /// Claims the oldest pending task of `node` for `agent`: the update only
    /// succeeds while the task is still pending, so two agents (or two
    /// replicas answering one) never both take it.
    pub async fn claim_volume_task(
        &self,
        node: &str,
        agent: &str,
        now: &str,
    ) -> Result<Option<VolumeTaskRecord>> {
        let candidates: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT id FROM volume_tasks WHERE node = $1 AND state = 'pending' \
             AND {UNLOCKED} ORDER BY created_at, id LIMIT 5"
        ))
        .bind(node)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        for id in candidates {
            let claimed = sqlx::query(&format!(
                "UPDATE volume_tasks SET state = 'running', agent = $2, updated_at = $3 \
                 WHERE id = $1 AND state = 'pending' AND {}",
                UNLOCKED.replace("$2", "$3")
            ))
            .bind(&id)
            .bind(agent)
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
            if claimed == 1 {
                return self.volume_task(&id).await;
            }
        }
        Ok(None)
    }

    /// Records progress of a running task; false when it is no longer
    /// running (failed for silence, or its backup ended): the agent stops.
    pub async fn volume_task_progress(
        &self,
        id: &str,
        bytes_done: i64,
        bytes_total: i64,
        now: &str,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE volume_tasks SET bytes_done = $2, bytes_total = $3, updated_at = $4 \
             WHERE id = $1 AND state = 'running'",
        )
        .bind(id)
        .bind(bytes_done)
        .bind(bytes_total)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Ends a task: `done` with its result, or `failed` with the reason.
    /// Only a task still pending or running ends; false otherwise.
    pub async fn finish_volume_task(
        &self,
        id: &str,
        state: &str,
        result: Option<&str>,
        error: Option<&str>,
        now: &str,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE volume_tasks SET state = $2, result = $3, error = $4, updated_at = $5 \
             WHERE id = $1 AND state IN ('pending', 'running')",
        )
        .bind(id)
        .bind(state)
        .bind(result)
        .bind(error)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Volume backups that finished, newest first: (backup, spec JSON, when).
    pub async fn finished_volume_backups(&self) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as::<_, (String, String, String)>(
            "SELECT owner, spec, updated_at FROM volume_tasks \
             WHERE kind = 'backup' AND state = 'done' ORDER BY updated_at DESC",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Whether `node` runs a task for `location` now.
    pub async fn agent_has_running_task(&self, node: &str, location: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM volume_tasks WHERE node = $1 AND location = $2 AND state = 'running'",
        )
        .bind(node)
        .bind(location)
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    pub async fn delete_volume_tasks_of(&self, owner: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM volume_tasks WHERE owner = $1")
            .bind(owner)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Takes `location`'s repository lock for `holder` until `expires`:
    /// only while nobody else holds it (or their hold has expired) and no
    /// volume task runs there. False when busy.
    pub async fn lock_repository(
        &self,
        location: &str,
        holder: &str,
        now: &str,
        expires: &str,
    ) -> Result<bool> {
        sqlx::query(
            "INSERT INTO repository_maintenance (location) VALUES ($1) \
             ON CONFLICT (location) DO NOTHING",
        )
        .bind(location)
        .execute(self.pool())
        .await?;
        Ok(sqlx::query(
            "UPDATE repository_maintenance SET lock_holder = $2, lock_expires_at = $4 \
             WHERE location = $1 AND (lock_holder IS NULL OR lock_expires_at < $3) \
             AND NOT EXISTS (SELECT 1 FROM volume_tasks t \
                             WHERE t.location = $1 AND t.state = 'running')",
        )
        .bind(location)
        .bind(holder)
        .bind(now)
        .bind(expires)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Extends `holder`'s lock; false when it no longer holds it.
    pub async fn renew_repository_lock(
        &self,
        location: &str,
        holder: &str,
        expires: &str,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE repository_maintenance SET lock_expires_at = $3 \
             WHERE location = $1 AND lock_holder = $2",
        )
        .bind(location)
        .bind(holder)
        .bind(expires)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn unlock_repository(&self, location: &str, holder: &str) -> Result<()> {
        sqlx::query(
            "UPDATE repository_maintenance SET lock_holder = NULL, lock_expires_at = NULL \
             WHERE location = $1 AND lock_holder = $2",
        )
        .bind(location)
        .bind(holder)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether a prune holds `location`'s repository at `now`.
    pub async fn repository_locked(&self, location: &str, now: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM repository_maintenance \
             WHERE location = $1 AND lock_holder IS NOT NULL AND lock_expires_at >= $2",
        )
        .bind(location)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Notes that `location`'s repository has data to prune (backups were deleted).
    pub async fn owe_prune(&self, location: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO repository_maintenance (location, prune_owed) VALUES ($1, 1) \
             ON CONFLICT (location) DO UPDATE SET prune_owed = 1",
        )
        .bind(location)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether `location`'s repository should be pruned: owed, or last
    /// pruned before `stale` (restic's marked packs wait for a later prune).
    pub async fn prune_due(&self, location: &str, stale: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM repository_maintenance WHERE location = $1 \
             AND (prune_owed = 1 OR (pruned_at IS NOT NULL AND pruned_at < $2))",
        )
        .bind(location)
        .bind(stale)
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Notes a completed prune of `location`'s repository.
    pub async fn pruned(&self, location: &str, now: &str) -> Result<()> {
        sqlx::query(
            "UPDATE repository_maintenance SET prune_owed = 0, pruned_at = $2 WHERE location = $1",
        )
        .bind(location)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Notes that `node`'s agent asked for work.
    pub async fn agent_seen(
        &self,
        node: &str,
        agent: &str,
        version: &str,
        now: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO volume_agents (node, agent, version, seen_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (node) DO UPDATE SET agent = $2, version = $3, seen_at = $4",
        )
        .bind(node)
        .bind(agent)
        .bind(version)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether any agent ever asked for work.
    pub async fn agents_known(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM volume_agents")
            .fetch_one(self.pool())
            .await?;
        Ok(n > 0)
    }

    /// When `node`'s agent last asked for work.
    pub async fn agent_seen_at(&self, node: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT seen_at FROM volume_agents WHERE node = $1")
                .bind(node)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The volume repository key of a location.
    pub async fn repository_key(&self, location: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password FROM repository_keys WHERE location = $1")
                .bind(location)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Every location's key, and whether it was shown: (location, key, shown).
    /// For views that derive the key's public id; never answered as such.
    pub async fn repository_keys(&self) -> Result<Vec<(String, String, bool)>> {
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT location, password, revealed_at FROM repository_keys")
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(location, key, revealed)| (location, key, revealed.is_some()))
            .collect())
    }

    /// Stores a location's key unless it has one; returns the key it has.
    pub async fn ensure_repository_key(
        &self,
        location: &str,
        password: &str,
        now: &str,
    ) -> Result<String> {
        sqlx::query(
            "INSERT INTO repository_keys (location, password, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (location) DO NOTHING",
        )
        .bind(location)
        .bind(password)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(self.repository_key(location).await?.unwrap_or_default())
    }

    /// Replaces a location's key (a key supplied for an imported bucket).
    pub async fn set_repository_key(
        &self,
        location: &str,
        password: &str,
        now: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO repository_keys (location, password, created_at, revealed_at) \
             VALUES ($1, $2, $3, $3) \
             ON CONFLICT (location) DO UPDATE SET password = $2, revealed_at = $3",
        )
        .bind(location)
        .bind(password)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The key, once: returns it and marks it revealed, or `None` when it was
    /// shown before (or the location has none).
    pub async fn reveal_repository_key(&self, location: &str, now: &str) -> Result<Option<String>> {
        let marked = sqlx::query(
            "UPDATE repository_keys SET revealed_at = $2 WHERE location = $1 AND revealed_at IS NULL",
        )
        .bind(location)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        if marked == 1 {
            self.repository_key(location).await
        } else {
            Ok(None)
        }
    }
}
