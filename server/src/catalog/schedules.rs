//! The `schedules` table.

use sqlx::FromRow;

use super::changed;
use super::{Catalog, Result, now, unique_violation};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
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
    /// 1: each backup it makes is drilled (restored into scratch namespaces).
    pub drill: i64,
    /// 1: a change journal is kept (continuous protection).
    pub continuous: i64,
}

impl Catalog {
    pub async fn insert_schedule(&self, s: &ScheduleRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO schedules (name, cron, timezone, template, ttl_seconds, keep_last, paused, \
             last_run_at, created_at, updated_at, drill, continuous) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
        .bind(s.drill)
        .bind(s.continuous)
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
             keep_last = $5, paused = $6, updated_at = $7, drill = $9, continuous = $10 WHERE name = $8",
        )
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(&s.template)
        .bind(s.ttl_seconds)
        .bind(s.keep_last)
        .bind(s.paused)
        .bind(now())
        .bind(&s.name)
        .bind(s.drill)
        .bind(s.continuous)
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
