//! Who is asking, and what they may do. Lifeboat keeps no users of its own:
//! the cluster's API server is the authority on both.
//!
//! - `tokens.rs`: bearer tokens checked with a `TokenReview` (cached briefly).
//! - `access.rs`: Lifeboat's actions as resources of group `lifeboat.io`,
//!   checked with `SubjectAccessReview`s (cached briefly).
//! - `sessions.rs`: browser sessions (server-side, behind an HttpOnly cookie,
//!   with a CSRF token) and the demo's one-time sign-in codes.
//!
//! The HTTP side (which routes are public, 401 or a redirect to `/login`,
//! the CSRF check) is `http/auth.rs`.

pub mod access;
pub mod oidc;
pub mod sessions;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use access::{Authorizer, Check};
pub use sessions::Sessions;
pub use tokens::TokenReviewer;

/// How a principal signed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignIn {
    /// A bearer token on the request (the CLI, scripts, the node agent).
    Token,
    /// A browser session begun with a pasted token.
    Session,
    /// A browser session begun with the demo's one-time code.
    Code,
    /// A browser session begun with OpenID Connect.
    Oidc,
    /// Authentication is turned off (`auth.disabled`): everyone is this.
    Disabled,
}

impl SignIn {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Session => "session",
            Self::Code => "code",
            Self::Oidc => "oidc",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Token,
            Self::Session,
            Self::Code,
            Self::Oidc,
            Self::Disabled,
        ]
        .into_iter()
        .find(|m| m.as_str() == text)
    }
}

/// An authenticated user, as the API server named them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub method: SignIn,
    /// The node of the pod a ServiceAccount token is bound to, as the API
    /// server's TokenReview names it: what a node agent may work on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Principal {
    /// Everyone, when authentication is turned off.
    pub fn unauthenticated_admin() -> Self {
        Self {
            username: "system:anonymous (authentication disabled)".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
            method: SignIn::Disabled,
            node: None,
        }
    }

    /// How the activity log names them: `alice (token)`.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.username, self.method.as_str())
    }
}

/// Why a request has no principal, or may not do what it asks.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// The API server could not be asked (no cluster, Lifeboat lacks a permission, …).
    #[error("{0}")]
    Unavailable(String),
}

/// Settings of sign-in (`[auth]` in the configuration).
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub disabled: bool,
    /// Audiences a bearer token must carry; empty: the API server's own.
    pub audiences: Vec<String>,
    /// How long a TokenReview or SubjectAccessReview answer is reused.
    pub cache_for: Duration,
    /// How long a browser session lasts.
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` (Lifeboat is reached over HTTPS).
    pub secure_cookies: bool,
    /// Browser sign-in with OpenID Connect, when configured.
    pub oidc: Option<oidc::OidcSettings>,
}

/// Sign-in and authorization, shared by every request.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

/// Refusals recorded in the activity log per minute, at most: enough to see
/// an attack, not enough for one to flood the log.
const REFUSALS_PER_MINUTE: u32 = 20;

struct Inner {
    settings: AuthSettings,
    /// The current minute's start and the refusals recorded in it.
    refusals: std::sync::Mutex<(std::time::Instant, u32)>,
    /// Without a cluster there is no one to ask: sign-in answers 503.
    reviewer: Option<TokenReviewer>,
    authorizer: Option<Authorizer>,
    sessions: Sessions,
    oidc: Option<oidc::OidcClient>,
}

impl Auth {
    pub fn new(
        settings: AuthSettings,
        client: Option<kube::Client>,
        catalog: crate::catalog::Catalog,
    ) -> Self {
        let reviewer = client
            .clone()
            .map(|c| TokenReviewer::new(c, settings.audiences.clone(), settings.cache_for));
        let authorizer = client.map(|c| Authorizer::new(c, settings.cache_for));
        let oidc = settings
            .oidc
            .clone()
            .map(|o| oidc::OidcClient::new(o, catalog.clone()));
        let sessions = Sessions::new(catalog, settings.session_ttl);
        Self {
            inner: Arc::new(Inner {
                settings,
                refusals: std::sync::Mutex::new((std::time::Instant::now(), 0)),
                reviewer,
                authorizer,
                sessions,
                oidc,
            }),
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    pub fn disabled(&self) -> bool {
        self.inner.settings.disabled
    }

    /// Whether one more refusal may go to the activity log this minute.
    pub fn may_record_refusal(&self) -> bool {
        let Ok(mut window) = self.inner.refusals.lock() else {
            return false;
        };
        if window.0.elapsed() >= Duration::from_secs(60) {
            *window = (std::time::Instant::now(), 0);
        }
        window.1 += 1;
        window.1 <= REFUSALS_PER_MINUTE
    }

    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// The OpenID Connect client, when browsers may sign in with it.
    pub fn oidc(&self) -> Option<&oidc::OidcClient> {
        self.inner.oidc.as_ref()
    }

    /// The principal a bearer token stands for.
    pub async fn review_token(&self, token: &str, method: SignIn) -> Result<Principal, AuthError> {
        match &self.inner.reviewer {
            Some(r) => r.review(token, method).await,
            None => Err(AuthError::Unavailable(
                "no cluster is connected, so tokens cannot be checked; connect Lifeboat to its cluster (kubeconfig) and restart".into(),
            )),
        }
    }

    /// Refuses unless `who` may do every one of `checks`.
    pub async fn require(&self, who: &Principal, checks: &[Check]) -> Result<(), AuthError> {
        if who.method == SignIn::Disabled {
            return Ok(());
        }
        match &self.inner.authorizer {
            Some(a) => a.require(who, checks).await,
            None => Err(AuthError::Unavailable(
                "no cluster is connected, so permissions cannot be checked".into(),
            )),
        }
    }

    /// Whether `who` may do every one of `checks` (errors count as no).
    pub async fn may_all(&self, who: &Principal, checks: &[Check]) -> bool {
        self.require(who, checks).await.is_ok()
    }
}
