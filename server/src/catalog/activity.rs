//! The `activity` table: append-only, no update or delete.

use sqlx::FromRow;

use super::{Catalog, Result, now};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
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
        self.activity_of(subject, None, limit).await
    }

    /// The newest `limit` entries, newest first, optionally about one
    /// subject and by one user (an actor is `user (how they signed in)`).
    pub async fn activity_of(
        &self,
        subject: Option<&str>,
        user: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActivityRecord>> {
        // `alice` matches `alice` and `alice (token)`; LIKE's wildcards in the name are literal.
        let pattern = user.map(|u| {
            let escaped = u
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("{escaped} (%")
        });
        Ok(sqlx::query_as(
            "SELECT * FROM activity WHERE ($1 IS NULL OR subject = $1) \
             AND ($2 IS NULL OR actor = $2 OR actor LIKE $3 ESCAPE '\\') ORDER BY id DESC LIMIT $4",
        )
        .bind(subject)
        .bind(user)
        .bind(pattern)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
