//! Rows of the catalog and the queries on them, one section per table.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::{Catalog, CatalogError, Result, now, unique_violation};
use crate::storage::Availability;

// ---------------------------------------------------------------- storage locations

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct StorageLocationRecord {
    pub name: String,
    /// `local` or `s3`.
    pub kind: String,
    /// JSON settings without secret values.
    pub config: String,
    pub is_default: i64,
    /// `unknown`, `available` or `unavailable`.
    pub availability: String,
    pub availability_reason: Option<String>,
    pub checked_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Catalog {
    /// Creates or updates a storage location's settings (availability is kept).
    pub async fn upsert_storage_location(
        &self,
        name: &str,
        kind: &str,
        config: &serde_json::Value,
        is_default: bool,
    ) -> Result<()> {
        let now = now();
        let mut tx = self.pool().begin().await?;
        if is_default {
            sqlx::query("UPDATE storage_locations SET is_default = 0 WHERE name <> $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO storage_locations (name, kind, config, is_default, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (name) DO UPDATE SET kind = $2, config = $3, is_default = $4, updated_at = $5",
        )
        .bind(name)
        .bind(kind)
        .bind(config.to_string())
        .bind(i64::from(is_default))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds a location created through the API, with its static credentials if any.
    pub async fn insert_storage_location(
        &self,
        name: &str,
        kind: &str,
        config: &serde_json::Value,
        credentials: Option<(&str, &str)>,
    ) -> Result<()> {
        let now = now();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO storage_locations (name, kind, config, is_default, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4)",
        )
        .bind(name)
        .bind(kind)
        .bind(config.to_string())
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(unique_violation("storage location", name))?;
        if let Some((id, secret)) = credentials {
            sqlx::query(
                "INSERT INTO storage_credentials (location, access_key_id, secret_access_key) VALUES ($1, $2, $3)",
            )
            .bind(name)
            .bind(id)
            .bind(secret)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The static credentials of a location (for opening its store, never for a response).
    pub async fn storage_credentials(&self, name: &str) -> Result<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT access_key_id, secret_access_key FROM storage_credentials WHERE location = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Removes a location, its credentials and the catalog rows of its backups
    /// (the objects in storage are left alone: adding the location again finds them).
    pub async fn delete_storage_location(&self, name: &str) -> Result<u64> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM storage_credentials WHERE location = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let forgotten = sqlx::query("DELETE FROM backups WHERE storage_location = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let done = sqlx::query("DELETE FROM storage_locations WHERE name = $1 AND is_default = 0")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        changed(done.rows_affected(), "storage location", name)?;
        tx.commit().await?;
        Ok(forgotten)
    }

    pub async fn storage_locations(&self) -> Result<Vec<StorageLocationRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM storage_locations ORDER BY name")
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub async fn storage_location(&self, name: &str) -> Result<StorageLocationRecord> {
        self.by_name(
            "SELECT * FROM storage_locations WHERE name = $1",
            "storage location",
            name,
        )
        .await
    }

    pub async fn set_availability(&self, name: &str, availability: &Availability) -> Result<()> {
        let (state, reason) = match availability {
            Availability::Available => ("available", None),
            Availability::Unavailable { reason } => ("unavailable", Some(reason.as_str())),
        };
        let done = sqlx::query(
            "UPDATE storage_locations SET availability = $1, availability_reason = $2, checked_at = $3 \
             WHERE name = $4",
        )
        .bind(state)
        .bind(reason)
        .bind(now())
        .bind(name)
        .execute(self.pool())
        .await?;
        changed(done.rows_affected(), "storage location", name)
    }
}

// ---------------------------------------------------------------- backups

/// Phases of a backup, as Velero users know them.
pub use crate::backup::BackupPhase;
pub use crate::restore::RestorePhase;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    pub id: String,
    pub name: String,
    pub storage_location: String,
    pub schedule: Option<String>,
    pub phase: String,
    pub phase_reason: Option<String>,
    /// JSON backup spec.
    pub spec: String,
    pub items_done: i64,
    pub items_total: Option<i64>,
    pub bytes_done: i64,
    pub size_bytes: Option<i64>,
    pub warnings: i64,
    pub errors: i64,
    pub missing_from_storage: i64,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub expires_at: Option<String>,
    pub created_at: String,
    /// The replica running it (while New or InProgress).
    pub owner: Option<String>,
    /// When its runner last said it is alive.
    pub heartbeat_at: Option<String>,
}

impl BackupRecord {
    /// A new backup in phase `New`.
    pub fn new(name: &str, storage_location: &str, spec: &serde_json::Value) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_string(),
            storage_location: storage_location.to_string(),
            schedule: None,
            phase: BackupPhase::New.as_str().to_string(),
            phase_reason: None,
            spec: spec.to_string(),
            items_done: 0,
            items_total: None,
            bytes_done: 0,
            size_bytes: None,
            warnings: 0,
            errors: 0,
            missing_from_storage: 0,
            started_at: None,
            completed_at: None,
            expires_at: None,
            created_at: now(),
            owner: None,
            heartbeat_at: None,
        }
    }
}

/// Which backups to list; `None` fields do not filter.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BackupFilter {
    pub phase: Option<String>,
    pub schedule: Option<String>,
    pub storage_location: Option<String>,
}

impl Catalog {
    pub async fn insert_backup(&self, b: &BackupRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO backups (id, name, storage_location, schedule, phase, phase_reason, spec, \
             items_done, items_total, bytes_done, size_bytes, warnings, errors, missing_from_storage, \
             started_at, completed_at, expires_at, created_at, owner, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(&b.id)
        .bind(&b.name)
        .bind(&b.storage_location)
        .bind(&b.schedule)
        .bind(&b.phase)
        .bind(&b.phase_reason)
        .bind(&b.spec)
        .bind(b.items_done)
        .bind(b.items_total)
        .bind(b.bytes_done)
        .bind(b.size_bytes)
        .bind(b.warnings)
        .bind(b.errors)
        .bind(b.missing_from_storage)
        .bind(&b.started_at)
        .bind(&b.completed_at)
        .bind(&b.expires_at)
        .bind(&b.created_at)
        .bind(&b.owner)
        .bind(&b.heartbeat_at)
        .execute(self.pool())
        .await
        .map_err(unique_violation("backup", &b.name))?;
        Ok(())
    }

    pub async fn backup(&self, name: &str) -> Result<BackupRecord> {
        self.by_name("SELECT * FROM backups WHERE name = $1", "backup", name)
            .await
    }

    /// Backups matching `filter`, newest first.
    pub async fn backups(&self, filter: &BackupFilter) -> Result<Vec<BackupRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM backups WHERE ($1 IS NULL OR phase = $1) \
             AND ($2 IS NULL OR schedule = $2) AND ($3 IS NULL OR storage_location = $3) \
             ORDER BY created_at DESC, name",
        )
        .bind(&filter.phase)
        .bind(&filter.schedule)
        .bind(&filter.storage_location)
        .fetch_all(self.pool())
        .await?)
    }

    /// Moves a backup to `phase`, stamping start or completion times as fitting.
    pub async fn set_backup_phase(
        &self,
        name: &str,
        phase: BackupPhase,
        reason: Option<&str>,
    ) -> Result<()> {
        let now = now();
        let started = (phase == BackupPhase::InProgress).then_some(now.as_str());
        let completed = matches!(
            phase,
            BackupPhase::Completed | BackupPhase::PartiallyFailed | BackupPhase::Failed
        )
        .then_some(now.as_str());
        let done = sqlx::query(
            "UPDATE backups SET phase = $1, phase_reason = $2, \
             started_at = COALESCE($3, started_at), completed_at = COALESCE($4, completed_at) \
             WHERE name = $5",
        )
        .bind(phase.as_str())
        .bind(reason)
        .bind(started)
        .bind(completed)
        .bind(name)
        .execute(self.pool())
        .await?;
        changed(done.rows_affected(), "backup", name)
    }

    /// Says the backup's runner is alive.
    pub async fn backup_heartbeat(&self, name: &str) -> Result<()> {
        sqlx::query("UPDATE backups SET heartbeat_at = $1 WHERE name = $2")
            .bind(now())
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records progress of a running backup.
    pub async fn set_backup_progress(
        &self,
        name: &str,
        items_done: i64,
        bytes_done: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE backups SET items_done = $1, bytes_done = $2 WHERE name = $3")
            .bind(items_done)
            .bind(bytes_done)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records the outcome of a backup run.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_backup(
        &self,
        name: &str,
        phase: BackupPhase,
        reason: Option<&str>,
        items: i64,
        size_bytes: Option<i64>,
        warnings: i64,
        errors: i64,
        expires_at: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE backups SET phase = $1, phase_reason = $2, items_done = $3, items_total = $3, \
             size_bytes = $4, warnings = $5, errors = $6, expires_at = $7, completed_at = $8 WHERE name = $9",
        )
        .bind(phase.as_str())
        .bind(reason)
        .bind(items)
        .bind(size_bytes)
        .bind(warnings)
        .bind(errors)
        .bind(expires_at)
        .bind(now())
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks whether a backup's manifest is (still) in storage.
    pub async fn set_backup_missing(&self, name: &str, missing: bool) -> Result<()> {
        sqlx::query("UPDATE backups SET missing_from_storage = $1 WHERE name = $2")
            .bind(i64::from(missing))
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes a backup's row; its storage objects must be deleted first.
    pub async fn delete_backup(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM backups WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

// ---------------------------------------------------------------- restores

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecord {
    pub id: String,
    pub name: String,
    pub backup_name: String,
    pub phase: String,
    pub phase_reason: Option<String>,
    pub spec: String,
    pub plan: Option<String>,
    pub items_done: i64,
    pub items_total: Option<i64>,
    pub warnings: i64,
    pub errors: i64,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub created_at: String,
    /// The replica running it (`crate::replica_id()`).
    pub owner: Option<String>,
    /// When its runner last said it is alive.
    pub heartbeat_at: Option<String>,
}

impl RestoreRecord {
    /// The phase as the domain knows it (`None` for a value no version wrote).
    pub fn restore_phase(&self) -> Option<RestorePhase> {
        RestorePhase::parse(&self.phase)
    }
}

impl Catalog {
    pub async fn insert_restore(
        &self,
        name: &str,
        backup_name: &str,
        spec: &serde_json::Value,
    ) -> Result<RestoreRecord> {
        let record = RestoreRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_string(),
            backup_name: backup_name.to_string(),
            phase: RestorePhase::New.as_str().into(),
            phase_reason: None,
            spec: spec.to_string(),
            plan: None,
            items_done: 0,
            items_total: None,
            warnings: 0,
            errors: 0,
            started_at: None,
            completed_at: None,
            created_at: now(),
            owner: Some(crate::replica_id().to_string()),
            heartbeat_at: Some(now()),
        };
        sqlx::query(
            "INSERT INTO restores (id, name, backup_name, phase, spec, created_at, owner, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(&record.backup_name)
        .bind(&record.phase)
        .bind(&record.spec)
        .bind(&record.created_at)
        .bind(&record.owner)
        .bind(&record.heartbeat_at)
        .execute(self.pool())
        .await
        .map_err(unique_violation("restore", name))?;
        Ok(record)
    }

    pub async fn restore(&self, name: &str) -> Result<RestoreRecord> {
        self.by_name("SELECT * FROM restores WHERE name = $1", "restore", name)
            .await
    }

    /// Records a restore's phase (stamping start and end), its plan or results, and counts.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_restore(
        &self,
        name: &str,
        phase: RestorePhase,
        reason: Option<&str>,
        plan: Option<&serde_json::Value>,
        items_done: i64,
        items_total: Option<i64>,
        warnings: i64,
        errors: i64,
    ) -> Result<()> {
        let now = now();
        let started = (phase == RestorePhase::InProgress).then_some(now.as_str());
        let completed = phase.is_finished().then_some(now.as_str());
        sqlx::query(
            "UPDATE restores SET phase = $1, phase_reason = $2, plan = COALESCE($3, plan), items_done = $4, \
             items_total = COALESCE($5, items_total), warnings = $6, errors = $7, \
             started_at = COALESCE(started_at, $8), completed_at = COALESCE($9, completed_at) WHERE name = $10",
        )
        .bind(phase.as_str())
        .bind(reason)
        .bind(plan.map(|p| p.to_string()))
        .bind(items_done)
        .bind(items_total)
        .bind(warnings)
        .bind(errors)
        .bind(started)
        .bind(completed)
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Restores that are reading `backup_name` now (New or InProgress).
    /// A running restore's runner says it is alive.
    pub async fn restore_heartbeat(&self, name: &str) -> Result<()> {
        sqlx::query("UPDATE restores SET heartbeat_at = $1 WHERE name = $2")
            .bind(now())
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Restores in a phase.
    pub async fn restores_in(&self, phase: RestorePhase) -> Result<Vec<RestoreRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM restores WHERE phase = $1 ORDER BY created_at, name")
                .bind(phase.as_str())
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub async fn restores_reading(&self, backup_name: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM restores WHERE backup_name = $1 AND phase IN ($2, $3) ORDER BY name",
        )
        .bind(backup_name)
        .bind(RestorePhase::New.as_str())
        .bind(RestorePhase::InProgress.as_str())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    pub async fn restores(&self, backup_name: Option<&str>) -> Result<Vec<RestoreRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM restores WHERE ($1 IS NULL OR backup_name = $1) ORDER BY created_at DESC, name",
        )
        .bind(backup_name)
        .fetch_all(self.pool())
        .await?)
    }
}

// ---------------------------------------------------------------- schedules

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleRecord {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    /// JSON backup spec used for each run.
    pub template: String,
    pub ttl_seconds: Option<i64>,
    pub keep_last: Option<i64>,
    pub paused: i64,
    pub last_run_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Catalog {
    pub async fn insert_schedule(&self, s: &ScheduleRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO schedules (name, cron, timezone, template, ttl_seconds, keep_last, paused, \
             last_run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&s.name)
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(&s.template)
        .bind(s.ttl_seconds)
        .bind(s.keep_last)
        .bind(s.paused)
        .bind(&s.last_run_at)
        .bind(&s.created_at)
        .bind(&s.updated_at)
        .execute(self.pool())
        .await
        .map_err(unique_violation("schedule", &s.name))?;
        Ok(())
    }

    pub async fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        Ok(sqlx::query_as("SELECT * FROM schedules ORDER BY name")
            .fetch_all(self.pool())
            .await?)
    }

    pub async fn schedule(&self, name: &str) -> Result<ScheduleRecord> {
        self.by_name("SELECT * FROM schedules WHERE name = $1", "schedule", name)
            .await
    }

    /// Replaces a schedule's definition (not its last run); `updated_at` is now.
    pub async fn update_schedule(&self, s: &ScheduleRecord) -> Result<()> {
        let done = sqlx::query(
            "UPDATE schedules SET cron = $1, timezone = $2, template = $3, ttl_seconds = $4, \
             keep_last = $5, paused = $6, updated_at = $7 WHERE name = $8",
        )
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(&s.template)
        .bind(s.ttl_seconds)
        .bind(s.keep_last)
        .bind(s.paused)
        .bind(now())
        .bind(&s.name)
        .execute(self.pool())
        .await?;
        changed(done.rows_affected(), "schedule", &s.name)
    }

    pub async fn delete_schedule(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM schedules WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the slot a schedule last ran for (RFC 3339).
    pub async fn set_schedule_last_run(&self, name: &str, slot: &str) -> Result<()> {
        sqlx::query("UPDATE schedules SET last_run_at = $1 WHERE name = $2")
            .bind(slot)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<()> {
        let done = sqlx::query("UPDATE schedules SET paused = $1, updated_at = $2 WHERE name = $3")
            .bind(i64::from(paused))
            .bind(now())
            .bind(name)
            .execute(self.pool())
            .await?;
        changed(done.rows_affected(), "schedule", name)
    }
}

// ---------------------------------------------------------------- activity

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct ActivityRecord {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub message: String,
    pub details: Option<String>,
}

impl Catalog {
    /// Appends to the activity log. There is deliberately no update or delete.
    pub async fn record_activity(
        &self,
        actor: &str,
        kind: &str,
        subject: &str,
        message: &str,
        details: Option<&serde_json::Value>,
    ) -> Result<ActivityRecord> {
        let record = ActivityRecord {
            id: uuid::Uuid::now_v7().to_string(),
            at: now(),
            actor: actor.into(),
            kind: kind.into(),
            subject: subject.into(),
            message: message.into(),
            details: details.map(|d| d.to_string()),
        };
        sqlx::query(
            "INSERT INTO activity (id, at, actor, kind, subject, message, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(&record.at)
        .bind(&record.actor)
        .bind(&record.kind)
        .bind(&record.subject)
        .bind(&record.message)
        .bind(&record.details)
        .execute(self.pool())
        .await?;
        Ok(record)
    }

    /// The newest `limit` entries, newest first, optionally about one subject.
    pub async fn activity(&self, subject: Option<&str>, limit: i64) -> Result<Vec<ActivityRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM activity WHERE ($1 IS NULL OR subject = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(subject)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}

impl Catalog {
    /// The one row `sql` (selecting by `name = $1`) finds, or NotFound naming `what`.
    async fn by_name<T>(&self, sql: &'static str, what: &'static str, name: &str) -> Result<T>
    where
        T: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        sqlx::query_as(sql)
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                what,
                name: name.to_string(),
            })
    }
}

/// `Ok` when an UPDATE touched a row, `NotFound` naming it when none matched.
fn changed(rows: u64, what: &'static str, name: &str) -> Result<()> {
    if rows == 0 {
        return Err(CatalogError::NotFound {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}
