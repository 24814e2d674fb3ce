//! The `drills` table: restore drills and their outcome.

use sqlx::FromRow;

use super::{Catalog, Result, changed, now, unique_violation};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct DrillRecord {
    pub id: String,
    pub backup: String,
    pub schedule: Option<String>,
    /// `Running`, `Passed` or `Failed`.
    pub phase: String,
    pub reason: Option<String>,
    /// JSON `{"<namespace in the backup>": "<scratch namespace>"}`.
    pub namespaces: String,
    pub restore_name: Option<String>,
    pub objects: i64,
    pub volumes: i64,
    pub ready_ms: Option<i64>,
    /// JSON: what was checked, each with its outcome.
    pub checks: String,
    pub actor: String,
    pub owner: Option<String>,
    pub heartbeat_at: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// When its scratch namespaces were gone (`None`: still to delete).
    pub cleaned_at: Option<String>,
}

/// What a finished drill found.
#[derive(Clone, Debug, Default)]
pub struct DrillOutcome {
    pub passed: bool,
    pub reason: Option<String>,
    pub restore_name: Option<String>,
    pub objects: i64,
    pub volumes: i64,
    pub ready_ms: Option<i64>,
    pub checks: serde_json::Value,
}

impl Catalog {
    pub async fn insert_drill(&self, d: &DrillRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO drills (id, backup, schedule, phase, namespaces, checks, actor, owner, \
             heartbeat_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&d.id)
        .bind(&d.backup)
        .bind(&d.schedule)
        .bind(&d.phase)
        .bind(&d.namespaces)
        .bind(&d.checks)
        .bind(&d.actor)
        .bind(&d.owner)
        .bind(&d.heartbeat_at)
        .bind(&d.created_at)
        .execute(self.pool())
        .await
        .map_err(unique_violation("drill", &d.id))?;
        Ok(())
    }

    pub async fn drill(&self, id: &str) -> Result<DrillRecord> {
        self.by_name("SELECT * FROM drills WHERE id = $1", "drill", id)
            .await
    }

    /// Every drill, newest first; of one backup when `backup` is given.
    pub async fn drills(&self, backup: Option<&str>) -> Result<Vec<DrillRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM drills WHERE ($1 IS NULL OR backup = $1) ORDER BY created_at DESC, id",
        )
        .bind(backup)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records the scratch namespaces a drill writes to, before it writes.
    pub async fn set_drill_namespaces(&self, id: &str, namespaces: &str) -> Result<()> {
        let done = sqlx::query("UPDATE drills SET namespaces = $1 WHERE id = $2")
            .bind(namespaces)
            .bind(id)
            .execute(self.pool())
            .await?;
        changed(done.rows_affected(), "drill", id)
    }

    /// Records a drill's outcome (its clean-up is recorded apart).
    pub async fn finish_drill(&self, id: &str, o: &DrillOutcome) -> Result<()> {
        let done = sqlx::query(
            "UPDATE drills SET phase = $1, reason = $2, restore_name = $3, objects = $4, volumes = $5, \
             ready_ms = $6, checks = $7, completed_at = $8 WHERE id = $9",
        )
        .bind(if o.passed { "Passed" } else { "Failed" })
        .bind(&o.reason)
        .bind(&o.restore_name)
        .bind(o.objects)
        .bind(o.volumes)
        .bind(o.ready_ms)
        .bind(o.checks.to_string())
        .bind(now())
        .bind(id)
        .execute(self.pool())
        .await?;
        changed(done.rows_affected(), "drill", id)
    }

    /// Its scratch namespaces are gone.
    pub async fn set_drill_cleaned(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE drills SET cleaned_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A running drill's runner says it is alive.
    pub async fn drill_heartbeat(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE drills SET heartbeat_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Drills whose scratch namespaces may still exist.
    pub async fn drills_not_cleaned(&self) -> Result<Vec<DrillRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM drills WHERE cleaned_at IS NULL ORDER BY created_at, id")
                .fetch_all(self.pool())
                .await?,
        )
    }
}
