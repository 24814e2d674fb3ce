//! The HTTP surface: health endpoints, the JSON API under `/api/v1`, and the
//! server-rendered UI. Handlers are thin: they call the catalog, storage or
//! cluster and turn errors into JSON with a message that says what to do.

pub mod agent;
pub mod auth;
mod backups;
mod drills;
mod health;
mod locations;
mod notifications;
mod restores;
mod schedules;
pub mod ui;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::catalog::{Catalog, CatalogError};
use crate::cluster::Cluster;
use crate::storage::{Availability, Locations};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Catalog,
    /// Every storage location's store: `default` (from the configuration) and
    /// those added through the API.
    pub locations: Locations,
    /// The cluster, or why there is none (the server still runs without one).
    pub cluster: Arc<Result<Cluster, String>>,
    /// What the watchers see (when there is a cluster).
    pub health: Option<crate::health::watch::ClusterState>,
    /// Whether this replica runs schedules and GC.
    pub leadership: crate::schedule::Leadership,
    /// The browser bundle's directory (`pkg/…`), when built.
    pub site_dir: Option<std::path::PathBuf>,
    /// Sign-in and authorization.
    pub auth: crate::auth::Auth,
}

/// Everything: the UI's pages and assets, health endpoints and the API.
/// Every route but the public ones (`auth::is_public`) needs a principal.
pub fn router(state: AppState) -> Router {
    api_routes()
        .merge(ui::routes())
        .merge(auth::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(timed))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Records each request's latency by its route's pattern (never the
/// concrete path: names would make the series unbounded).
async fn timed(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    crate::metrics::recorder().http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /metrics`: Prometheus's scrape (`get metrics` in `lifeboat.io`;
/// docker/rbac.yaml's `lifeboat-metrics-reader` grants it).
async fn metrics(
    State(state): State<AppState>,
    axum::extract::Extension(who): axum::extract::Extension<crate::auth::Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[crate::auth::Check::cluster("get", "metrics")])
        .await?;
    let text =
        crate::metrics::render(&state.catalog, state.health.as_ref(), chrono::Utc::now()).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `?backup=NAME`: the restores or drills of one backup.
#[derive(Debug, serde::Deserialize)]
pub(super) struct OfBackup {
    pub backup: Option<String>,
}

/// The largest request body accepted (specs and settings are a few KiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Headers every response carries: no sniffing, no framing, no referrer
/// to other sites, and a strict Content-Security-Policy unless the page set
/// its own (with its script nonce). No CORS headers: other origins cannot read answers.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::{HeaderValue, header};
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        );
    }
    response
}

/// The JSON API and health endpoints alone (the UI reads its pages' data
/// through it, with the page's principal on each request).
pub fn api_router(state: AppState) -> Router {
    api_routes()
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state)
}

fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/activity", get(activity))
        .merge(health::routes())
        .merge(locations::routes())
        .merge(backups::routes())
        .merge(drills::routes())
        .merge(notifications::routes())
        .merge(restores::routes())
        .merge(schedules::routes())
        .merge(agent::routes())
}

/// Server-sent events from `poll` (still running?, payload) every half
/// second: `progress` events while it runs, then one `finished` event.
pub fn progress_events<F, Fut>(poll: F) -> Response
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<(bool, serde_json::Value)>> + Send,
{
    use axum::response::sse::{Event, KeepAlive, Sse};
    let stream = futures::stream::unfold((poll, false), |(poll, done)| async move {
        if done {
            return None;
        }
        let (running, payload) = poll().await?;
        let finished = !running;
        let event = Event::default()
            .event(if finished { "finished" } else { "progress" })
            .json_data(payload)
            .ok()?;
        if !finished {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Some((Ok::<_, std::convert::Infallible>(event), (poll, finished)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Parses a JSON request body; a malformed one is a 422 that says what was expected.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: format!("the request body is not a valid {what}: {e}"),
    })
}

/// An error as the API returns it: `{"error": "...", "status": 404}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.message, "status": self.status.as_u16() })),
        )
            .into_response()
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        let status = match e {
            AuthError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self {
            status,
            message: e.to_string(),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let status = match &e {
            CatalogError::NotFound { .. } => StatusCode::NOT_FOUND,
            CatalogError::AlreadyExists { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "catalog error");
        }
        Self {
            status,
            message: e.to_string(),
        }
    }
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "no such page or endpoint: {}. The API lives under /api/v1.",
            uri.path()
        ),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "alive", "version": crate::VERSION }))
}

/// Readiness of one component, as `/readyz` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentStatus {
    pub name: &'static str,
    pub ready: bool,
    pub detail: String,
}

/// Watches are ready when each is live or not permitted (a restricted
/// ServiceAccount is a choice, not a fault); starting or reconnecting is not.
fn watches_readiness(
    states: &std::collections::BTreeMap<&'static str, crate::health::watch::WatchState>,
) -> (bool, String) {
    use crate::health::watch::WatchState;
    let mut waiting = Vec::new();
    let mut not_permitted = Vec::new();
    for (resource, state) in states {
        match state {
            WatchState::Live => {}
            WatchState::Starting => waiting.push(format!("{resource} starting")),
            WatchState::Reconnecting { reason } => {
                waiting.push(format!("{resource} reconnecting ({reason})"));
            }
            WatchState::NotPermitted { .. } => not_permitted.push(*resource),
        }
    }
    let mut detail = if waiting.is_empty() {
        format!("{} watches live", states.len() - not_permitted.len())
    } else {
        waiting.join("; ")
    };
    if !not_permitted.is_empty() {
        detail.push_str(&format!(
            "; not permitted to watch {} (grant list/watch on them to see them)",
            not_permitted.join(", ")
        ));
    }
    (waiting.is_empty(), detail)
}

/// Checks catalog, storage and cluster concurrently, and the watches' states.
pub async fn readiness(state: &AppState) -> Vec<ComponentStatus> {
    let catalog = async {
        match state.catalog.ping().await {
            Ok(()) => (
                true,
                format!("{:?} catalog answers", state.catalog.engine()).to_lowercase(),
            ),
            Err(e) => (false, e.to_string()),
        }
    };
    let storage = async {
        let store = state.locations.default_store();
        match store.check().await {
            Availability::Available => (true, format!("{} is available", store.describe())),
            Availability::Unavailable { reason } => (false, reason),
        }
    };
    let cluster = async {
        match state.cluster.as_ref() {
            Ok(cluster) => match cluster.probe(Duration::from_secs(3)).await {
                Ok(version) => (true, format!("Kubernetes {version} at {}", cluster.url)),
                Err(e) => (false, e.to_string()),
            },
            Err(reason) => (false, reason.clone()),
        }
    };
    let (catalog, storage, cluster) = tokio::join!(catalog, storage, cluster);
    let mut components = vec![
        ("catalog", catalog),
        ("storage", storage),
        ("cluster", cluster),
    ];
    if let Some(health) = &state.health {
        components.push(("watches", watches_readiness(&health.watch_states())));
    }
    // Ready either way: turning sign-in off is a choice, reported for all to see.
    components.push((
        "auth",
        if state.auth.disabled() {
            (
                true,
                "DISABLED: anyone who can reach this port can do anything (auth.disabled)".into(),
            )
        } else {
            (
                true,
                "sign-in required: tokens checked with TokenReview, permissions with SubjectAccessReview".into(),
            )
        },
    ));
    components
        .into_iter()
        .map(|(name, (ready, detail))| ComponentStatus {
            name,
            ready,
            detail,
        })
        .collect()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let components = readiness(&state).await;
    let ready = components.iter().all(|c| c.ready);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "components": components })),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct ActivityQuery {
    subject: Option<String>,
    /// A username: what they did (whatever way they signed in).
    actor: Option<String>,
    limit: Option<i64>,
}

async fn activity(
    State(state): State<AppState>,
    axum::extract::Extension(who): axum::extract::Extension<crate::auth::Principal>,
    Query(q): Query<ActivityQuery>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[crate::auth::Check::cluster("list", "activities")])
        .await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .catalog
        .activity_of(q.subject.as_deref(), q.actor.as_deref(), limit)
        .await?;
    let items: Vec<views::ActivityView> = rows.iter().map(views::ActivityView::from).collect();
    Ok(Json(json!({ "items": items })).into_response())
}
