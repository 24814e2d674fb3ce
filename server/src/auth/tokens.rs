//! Bearer tokens, checked by the API server with a `TokenReview`: any token
//! it accepts (ServiceAccount tokens from `kubectl create token`, OIDC or
//! static tokens) signs in, as the user it names. Answers are cached for a
//! short time under the token's SHA-256; the token itself is never stored
//! or logged.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};

use super::{AuthError, Principal, SignIn};

/// Cached answers at most; past this the cache starts over.
const CACHE_MAX: usize = 10_000;

/// The TokenReview `user.extra` key that names a pod-bound token's node.
pub const NODE_NAME_EXTRA: &str = "authentication.kubernetes.io/node-name";

/// Who a token the API server accepted names.
#[derive(Clone)]
struct Reviewed {
    username: String,
    uid: String,
    groups: Vec<String>,
    /// The node of a pod-bound ServiceAccount token.
    node: Option<String>,
}

/// Why the API server did not accept a token.
#[derive(Clone, Debug, thiserror::Error)]
enum Refused {
    #[error(
        "the token was not accepted ({0}); get a new one, e.g. `kubectl create token \
         <serviceaccount>`"
    )]
    NotAccepted(String),
    #[error("the API server accepted the token but named no user")]
    NoUser,
}

/// The API server's verdict on a token, cached either way.
type Answer = Result<Reviewed, Refused>;

pub struct TokenReviewer {
    client: kube::Client,
    audiences: Vec<String>,
    cache_for: Duration,
    cache: RwLock<HashMap<[u8; 32], (Instant, Answer)>>,
}

impl TokenReviewer {
    pub fn new(client: kube::Client, audiences: Vec<String>, cache_for: Duration) -> Self {
        Self {
            client,
            audiences,
            cache_for,
            cache: RwLock::new(HashMap::new()),
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Answer> {
        let cache = self.cache.read().ok()?;
        let (at, answer) = cache.get(key)?;
        (at.elapsed() < self.cache_for).then(|| answer.clone())
    }

    fn remember(&self, key: [u8; 32], answer: Answer) {
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= CACHE_MAX {
                let ttl = self.cache_for;
                cache.retain(|_, (at, _)| at.elapsed() < ttl);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now(), answer));
        }
    }

    /// The user `token` stands for, asked of the API server (or the cache).
    pub async fn review(&self, token: &str, method: SignIn) -> Result<Principal, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let answer = match self.cached(&key) {
            Some(answer) => answer,
            None => {
                let answer = self.ask(token).await?;
                self.remember(key, answer.clone());
                answer
            }
        };
        match answer {
            Ok(Reviewed {
                username,
                uid,
                groups,
                node,
            }) => Ok(Principal {
                username,
                uid,
                groups,
                method,
                node,
            }),
            Err(why) => Err(AuthError::Unauthenticated(why.to_string())),
        }
    }

    /// One TokenReview. An answer that the token is not valid is `Ok(Err)`
    /// (cached like a valid one); a review that could not be made is an error.
    async fn ask(&self, token: &str) -> Result<Answer, AuthError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: (!self.audiences.is_empty()).then(|| self.audiences.clone()),
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.code == 403 => AuthError::Unavailable(format!(
                    "Lifeboat may not check tokens ({}); bind its ServiceAccount to the ClusterRole system:auth-delegator",
                    s.message
                )),
                other => AuthError::Unavailable(format!(
                    "the API server could not check the token: {other}"
                )),
            })?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            let why = status
                .error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "the API server did not accept the token".into());
            tracing::info!(reason = %why, "a token was refused");
            return Ok(Err(Refused::NotAccepted(why)));
        }
        let user = status.user.unwrap_or_default();
        let Some(username) = user.username.filter(|u| !u.is_empty()) else {
            return Ok(Err(Refused::NoUser));
        };
        // A pod-bound ServiceAccount token names its pod's node (Kubernetes 1.30+).
        let node = user
            .extra
            .as_ref()
            .and_then(|extra| extra.get(NODE_NAME_EXTRA))
            .and_then(|values| values.first())
            .filter(|n| !n.is_empty())
            .cloned();
        Ok(Ok(Reviewed {
            username,
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            node,
        }))
    }
}
