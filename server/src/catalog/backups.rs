//! The `backups` table.

use serde::Deserialize;
use sqlx::FromRow;

use super::changed;
use super::{Catalog, Result, now, unique_violation};

use super::phases::BackupPhase;

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
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
    /// When it was last verified, and what that found (`ok`, or the
    /// problems, one per line).
    pub verified_at: Option<String>,
    pub verification: Option<String>,
    /// Until when S3 Object Lock holds its objects (immutable locations).
    pub locked_until: Option<String>,
    /// The archive format of its manifest when first seen (written or imported).
    pub format_version: Option<i64>,
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
            verified_at: None,
            verification: None,
            locked_until: None,
            format_version: None,
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
             started_at, completed_at, expires_at, created_at, owner, heartbeat_at, locked_until, \
             format_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
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
        .bind(&b.locked_until)
        .bind(b.format_version)
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

    /// Records a verification of backup `name`: `ok`, or the problems found.
    pub async fn set_backup_verified(&self, name: &str, at: &str, outcome: &str) -> Result<()> {
        let updated =
            sqlx::query("UPDATE backups SET verified_at = $2, verification = $3 WHERE name = $1")
                .bind(name)
                .bind(at)
                .bind(outcome)
                .execute(self.pool())
                .await?
                .rows_affected();
        if updated == 0 {
            return Err(super::CatalogError::NotFound {
                what: "backup",
                name: name.to_string(),
            });
        }
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

    /// Records the archive format of the manifest a backup run wrote.
    pub async fn set_backup_format(&self, name: &str, format_version: i64) -> Result<()> {
        sqlx::query("UPDATE backups SET format_version = $1 WHERE name = $2")
            .bind(format_version)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records until when S3 Object Lock holds a backup's objects.
    pub async fn set_backup_locked_until(&self, name: &str, until: &str) -> Result<()> {
        sqlx::query("UPDATE backups SET locked_until = $1 WHERE name = $2")
            .bind(until)
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
