//! The notification tables: targets (their URLs never leave the catalog
//! but to be sent to), deliveries, and the notifier's cursor in the
//! activity log.

use sqlx::FromRow;

use super::{ActivityRecord, Catalog, Result, changed, now, unique_violation};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct NotificationTarget {
    pub name: String,
    /// `webhook` (generic JSON) or `slack` (Slack-compatible `{"text"}`).
    pub kind: String,
    /// Secret: a webhook URL is its own credential.
    pub url: String,
    /// JSON list of event names.
    pub events: String,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct Delivery {
    pub id: String,
    pub target: String,
    pub event: String,
    pub activity_id: String,
    pub subject: String,
    pub message: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

impl Catalog {
    pub async fn insert_notification_target(&self, t: &NotificationTarget) -> Result<()> {
        sqlx::query(
            "INSERT INTO notification_targets (name, kind, url, events, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.name)
        .bind(&t.kind)
        .bind(&t.url)
        .bind(&t.events)
        .bind(&t.created_at)
        .execute(self.pool())
        .await
        .map_err(unique_violation("notification target", &t.name))?;
        Ok(())
    }

    pub async fn notification_targets(&self) -> Result<Vec<NotificationTarget>> {
        Ok(
            sqlx::query_as("SELECT * FROM notification_targets ORDER BY name")
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub async fn delete_notification_target(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM notification_targets WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        changed(done.rows_affected(), "notification target", name)
    }

    /// Queues a delivery; one already queued for the same target, entry
    /// and event is left as it is (`false`).
    pub async fn queue_delivery(
        &self,
        target: &str,
        event: &str,
        activity: &ActivityRecord,
        message: &str,
    ) -> Result<bool> {
        let at = now();
        let queued = sqlx::query(
            "INSERT INTO notification_deliveries (id, target, event, activity_id, subject, message, \
             state, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(target)
        .bind(event)
        .bind(&activity.id)
        .bind(&activity.subject)
        .bind(message)
        .bind(&at)
        .execute(self.pool())
        .await;
        match queued {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Pending deliveries due at `now`, oldest first.
    pub async fn due_deliveries(&self, now: &str, limit: i64) -> Result<Vec<Delivery>> {
        Ok(sqlx::query_as(
            "SELECT * FROM notification_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records an attempt: delivered, or failed with when to try again
    /// (`None`: given up).
    pub async fn record_attempt(
        &self,
        id: &str,
        outcome: std::result::Result<(), (&str, Option<&str>)>,
    ) -> Result<()> {
        let at = now();
        let query = match outcome {
            Ok(()) => sqlx::query(
                "UPDATE notification_deliveries SET state = 'delivered', attempts = attempts + 1, \
                 last_error = NULL, delivered_at = $1 WHERE id = $2",
            )
            .bind(at)
            .bind(id),
            Err((error, Some(next))) => sqlx::query(
                "UPDATE notification_deliveries SET attempts = attempts + 1, last_error = $1, \
                 next_attempt_at = $2 WHERE id = $3",
            )
            .bind(error.to_string())
            .bind(next.to_string())
            .bind(id),
            Err((error, None)) => sqlx::query(
                "UPDATE notification_deliveries SET state = 'failed', attempts = attempts + 1, \
                 last_error = $1 WHERE id = $2",
            )
            .bind(error.to_string())
            .bind(id),
        };
        query.execute(self.pool()).await?;
        Ok(())
    }

    /// The newest deliveries, newest first.
    pub async fn deliveries(&self, limit: i64) -> Result<Vec<Delivery>> {
        Ok(
            sqlx::query_as("SELECT * FROM notification_deliveries ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The newest activity entry the notifier has read.
    pub async fn notification_cursor(&self) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT activity_id FROM notification_cursor WHERE id = 1")
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(id,)| id))
    }

    pub async fn set_notification_cursor(&self, activity_id: &str) -> Result<()> {
        let updated = sqlx::query("UPDATE notification_cursor SET activity_id = $1 WHERE id = 1")
            .bind(activity_id)
            .execute(self.pool())
            .await?;
        if updated.rows_affected() == 0 {
            sqlx::query("INSERT INTO notification_cursor (id, activity_id) VALUES (1, $1)")
                .bind(activity_id)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Activity entries after `id` (all with `None`), oldest first.
    pub async fn activity_after(
        &self,
        id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActivityRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM activity WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
