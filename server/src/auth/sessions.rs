//! Browser sessions and one-time sign-in codes.
//!
//! A session is a random 256-bit id in an HttpOnly cookie; the catalog keeps
//! only its SHA-256 with the principal, a CSRF token and the expiry, so every
//! replica sees it and signing out ends it everywhere. A one-time code (what
//! `lifeboat demo` prints) stands for a token for ten minutes and is
//! redeemed once; codes live in this process only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::{Principal, SignIn};
use crate::catalog::{Catalog, CatalogError, SessionRecord};

/// How long a one-time code may wait to be used.
const CODE_TTL: Duration = Duration::from_secs(600);

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A signed-in browser: who, and the token its writes must carry.
#[derive(Clone, Debug)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

pub struct Sessions {
    catalog: Catalog,
    ttl: Duration,
    codes: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    pub fn new(catalog: Catalog, ttl: Duration) -> Self {
        Self {
            catalog,
            ttl,
            codes: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `principal`; returns the cookie's value and the CSRF token.
    pub async fn start(&self, principal: &Principal) -> Result<(String, String), CatalogError> {
        let id = random_hex();
        let csrf = random_hex();
        let expires =
            Utc::now() + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(8));
        self.catalog
            .insert_session(&SessionRecord {
                id_hash: hash(&id),
                username: principal.username.clone(),
                uid: principal.uid.clone(),
                groups_json: serde_json::to_string(&principal.groups).unwrap_or_default(),
                method: principal.method.as_str().into(),
                csrf: csrf.clone(),
                created_at: now(),
                expires_at: expires.to_rfc3339_opts(SecondsFormat::Millis, true),
            })
            .await?;
        // Expired sessions go as new ones come.
        let _ = self.catalog.delete_expired_sessions(&now()).await;
        Ok((id, csrf))
    }

    /// The live session behind a cookie's value.
    pub async fn get(&self, id: &str) -> Result<Option<Session>, CatalogError> {
        let Some(r) = self.catalog.session(&hash(id), &now()).await? else {
            return Ok(None);
        };
        Ok(Some(Session {
            principal: Principal {
                username: r.username,
                uid: r.uid,
                groups: serde_json::from_str(&r.groups_json).unwrap_or_default(),
                method: SignIn::parse(&r.method).unwrap_or(SignIn::Session),
                node: None,
            },
            csrf: r.csrf,
        }))
    }

    /// Ends a session (signing out).
    pub async fn end(&self, id: &str) -> Result<(), CatalogError> {
        self.catalog.delete_session(&hash(id)).await.map(drop)
    }

    /// A one-time code standing for `token` (the demo prints a sign-in URL with it).
    pub fn issue_code(&self, token: &str) -> String {
        let code = random_hex();
        if let Ok(mut codes) = self.codes.lock() {
            codes.retain(|_, (_, at)| at.elapsed() < CODE_TTL);
            codes.insert(hash(&code), (token.to_string(), Instant::now()));
        }
        code
    }

    /// The token behind a code, once; `None` when unknown, used or expired.
    pub fn redeem_code(&self, code: &str) -> Option<String> {
        let mut codes = self.codes.lock().ok()?;
        let (token, at) = codes.remove(&hash(code))?;
        (at.elapsed() < CODE_TTL).then_some(token)
    }
}
