//! The `restores` table.

use sqlx::FromRow;

use super::phases::RestorePhase;
use super::{Catalog, Result, now, unique_violation};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
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

    /// Records a restore's phase (stamping start and end), its plan or results (JSON text), and counts.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_restore(
        &self,
        name: &str,
        phase: RestorePhase,
        reason: Option<&str>,
        plan: Option<&str>,
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
        .bind(plan)
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

    /// How many restores are in each phase (plans are not read).
    pub async fn restore_phase_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT phase, COUNT(*) FROM restores GROUP BY phase ORDER BY phase")
                .fetch_all(self.pool())
                .await?,
        )
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
