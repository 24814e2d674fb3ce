//! The `storage_locations` and `storage_credentials` tables.

use sqlx::FromRow;

use super::changed;
use super::{Catalog, Result, now, unique_violation};
use crate::storage::Availability;

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
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
        config: &frontend::model::LocationSettings,
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
        .bind(serde_json::to_string(config).unwrap_or_default())
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
        config: &frontend::model::LocationSettings,
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
        .bind(serde_json::to_string(config).unwrap_or_default())
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
