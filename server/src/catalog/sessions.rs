//! The `sessions` table: browser sessions by the SHA-256 of their id.

use sqlx::FromRow;

use super::{Catalog, Result};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct SessionRecord {
    pub id_hash: String,
    pub username: String,
    pub uid: String,
    pub groups_json: String,
    pub method: String,
    pub csrf: String,
    pub created_at: String,
    pub expires_at: String,
}

impl Catalog {
    pub async fn insert_session(&self, s: &SessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, username, uid, groups_json, method, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id_hash)
        .bind(&s.username)
        .bind(&s.uid)
        .bind(&s.groups_json)
        .bind(&s.method)
        .bind(&s.csrf)
        .bind(&s.created_at)
        .bind(&s.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session whose id hashes to `id_hash`, if it has not expired by `now`.
    pub async fn session(&self, id_hash: &str, now: &str) -> Result<Option<SessionRecord>> {
        Ok(sqlx::query_as::<_, SessionRecord>(
            "SELECT id_hash, username, uid, groups_json, method, csrf, created_at, expires_at \
             FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Removes sessions that expired before `now`.
    pub async fn delete_expired_sessions(&self, now: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}

/// An OIDC sign-in waiting for the provider's answer.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct OidcPendingRecord {
    pub state_hash: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
    pub expires_at: String,
}

impl Catalog {
    pub async fn insert_oidc_pending(&self, p: &OidcPendingRecord, now: &str) -> Result<()> {
        // Old ones go as new ones come.
        sqlx::query("DELETE FROM oidc_pending WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO oidc_pending (state_hash, nonce, verifier, next, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.state_hash)
        .bind(&p.nonce)
        .bind(&p.verifier)
        .bind(&p.next)
        .bind(&p.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes the pending sign-in of `state_hash` (once), if not expired by `now`.
    pub async fn take_oidc_pending(
        &self,
        state_hash: &str,
        now: &str,
    ) -> Result<Option<OidcPendingRecord>> {
        let found = sqlx::query_as::<_, OidcPendingRecord>(
            "SELECT state_hash, nonce, verifier, next, expires_at FROM oidc_pending \
             WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(self.pool())
        .await?;
        let deleted = sqlx::query("DELETE FROM oidc_pending WHERE state_hash = $1")
            .bind(state_hash)
            .execute(self.pool())
            .await?
            .rows_affected();
        // Whoever deleted it used it: a replayed answer finds nothing.
        Ok(found.filter(|p| deleted == 1 && p.expires_at.as_str() > now))
    }
}
