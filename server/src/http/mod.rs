//! The HTTP surface: health endpoints, the JSON API under `/api/v1`, and the
//! server-rendered UI. Handlers are thin: they call the catalog, storage or
//! cluster and turn errors into JSON with a message that says what to do.

pub mod agent;
pub mod auth;
mod backups;
mod drills;
mod health;
mod locations;
mod logs;
mod metrics;
mod notifications;
mod restores;
mod schedules;
mod timeline;
pub mod ui;
pub mod views;
mod workloads;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Check, Principal};
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
    pub cluster: Arc<Result<Cluster, crate::cluster::ClusterError>>,
    /// What the watchers see (when there is a cluster).
    pub health: Option<crate::health::watch::ClusterState>,
    /// Whether this replica runs schedules and GC.
    pub leadership: crate::schedule::Leadership,
    /// The browser bundle's directory (`pkg/…`), when built.
    pub site_dir: Option<std::path::PathBuf>,
    /// Sign-in and authorization.
    pub auth: crate::auth::Auth,
    /// The change journals this replica writes (while it leads).
    pub journals: crate::journal::Journals,
}

/// Everything: the UI's pages and assets, health endpoints and the API.
/// Every route but the public ones (`auth::is_public`) needs a principal.
pub fn router(state: AppState) -> Router {
    api_table()
        .merge(ui::routes())
        .merge(auth::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(json_rejections))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(timed))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The API answers errors in JSON (`ApiError`), including those axum's
/// extractors make before a handler runs (a query string or path that does
/// not parse, a body over the limit), which come as text.
async fn json_rejections(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let text = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(api && text && response.status().is_client_error()) {
        return response;
    }
    let status = response.status();
    // Rejections are one short line; more than 4 KiB is not one.
    let message = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(body) => String::from_utf8_lossy(&body).into_owned(),
        Err(_) => status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_string(),
    };
    ApiError {
        status,
        message: format!("{message}. See /api/v1/openapi.json for what this endpoint takes"),
    }
    .into_response()
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
#[utoipa::path(
    get, operation_id = "metrics",
    path = "/metrics",
    tag = "system",
    description = "Prometheus metrics (OpenMetrics text); needs `get metrics`. Every metric: docs/OPERATIONS.md.",
    responses((status = 200, description = "The metrics", body = String, content_type = "application/openmetrics-text"))
)]
async fn metrics(
    State(state): State<AppState>,
    axum::extract::Extension(who): axum::extract::Extension<crate::auth::Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[crate::auth::Check::cluster("get", "metrics")])
        .await?;
    let text = metrics::render(&state.catalog, state.health.as_ref(), chrono::Utc::now()).await?;
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
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct OfBackup {
    /// Only those of this backup.
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
    api_table()
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(json_rejections))
        .with_state(state)
}

/// Every API route (the documented ones and the agents' repository files),
/// built once per process: pages read their data through it on every request.
fn api_table() -> Router<AppState> {
    static TABLE: std::sync::LazyLock<Router<AppState>> =
        std::sync::LazyLock::new(|| api_routes().split_for_parts().0.merge(agent::file_routes()));
    TABLE.clone()
}

/// The API's routes, each registered from its handler's `#[utoipa::path]`
/// (path, method, parameters, bodies, answers): the router and the OpenAPI
/// document come from the same declarations, so they cannot disagree.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(activity))
        .merge(health::routes())
        .merge(logs::routes())
        .merge(workloads::routes())
        .merge(timeline::routes())
        .merge(locations::routes())
        .merge(backups::routes())
        .merge(drills::routes())
        .merge(notifications::routes())
        .merge(restores::routes())
        .merge(schedules::routes())
        .merge(agent::routes())
}

/// The document's frame: what the API is, how callers sign in, and the
/// error body every operation can answer with.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lifeboat API",
        description = "Kubernetes backup, restore, schedules and cluster health. Every operation \
but /healthz and /readyz needs a Kubernetes bearer token (checked with TokenReview) or a browser \
session (whose state-changing requests also carry X-CSRF-Token); what it may do is asked of the \
cluster with SubjectAccessReview on the `lifeboat.io` resources each operation names. Errors \
answer `{error, status}` with a message that says what to do. Not listed: the agents' \
repository files, `GET|HEAD|PUT /api/v1/agent/repository/{location}/{key…}` (a wildcard path).",
        license(name = "Apache-2.0"),
    ),
    modifiers(&SignIn),
    security(("bearer" = []), ("session" = [])),
    components(schemas(frontend::model::ApiError)),
    tags(
        (name = "backups", description = "Backups: resource state and volume data"),
        (name = "restores", description = "Restores, planned before they apply"),
        (name = "drills", description = "Restore drills into scratch namespaces"),
        (name = "schedules", description = "Cron schedules, retention and garbage collection"),
        (name = "storage", description = "Storage locations and their keys"),
        (name = "notifications", description = "Webhook targets and deliveries"),
        (name = "cluster", description = "Cluster health from the watches"),
        (name = "system", description = "Health, metrics, the activity log, this document"),
        (name = "agent", description = "The node agents' work queue (agents only)"),
    )
)]
struct ApiDoc;

/// How a caller proves who they are: a bearer token or a session cookie.
struct SignIn;

impl utoipa::Modify for SignIn {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            utoipa::openapi::security::SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A Kubernetes token (ServiceAccount or OIDC id_token)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            utoipa::openapi::security::SecurityScheme::ApiKey(ApiKey::Cookie(
                ApiKeyValue::with_description(
                    auth::SESSION_COOKIE,
                    "A browser session from /login",
                ),
            )),
        );
    }
}

/// The whole API's OpenAPI 3.1 document. Every operation also documents
/// its error answers (`default`: the `ApiError` body).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let mut doc = api_routes().into_openapi();
    doc.info.version = crate::VERSION.to_string();
    let error = ResponseBuilder::new()
        .description("An error: what went wrong and what to do")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            operation
                .responses
                .responses
                .entry("default".into())
                .or_insert_with(|| error.clone().into());
        }
    }
    doc
}

/// `GET /api/v1/openapi.json`: this API's contract (any signed-in caller,
/// like a cluster's own `/openapi/v3`).
#[utoipa::path(
    get, operation_id = "openapi",
    path = "/api/v1/openapi.json",
    tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        openapi()
            .to_json()
            .unwrap_or_else(|e| json!({ "error": e.to_string(), "status": 500 }).to_string())
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
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
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the request body is not a valid {what}: {e}")))
}

/// The path every write shares: the principal may do `check` (else 403,
/// saying which permission is missing), then the body is a `what` (else 422
/// naming what does not parse). Validation is the use case's, as a typed
/// error that the area's `From<…> for ApiError` maps.
pub async fn authorized_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    who: &Principal,
    check: Check,
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    state.auth.require(who, &[check]).await?;
    parse_body(body, what)
}

/// An error as the API returns it: `{"error": "...", "status": 404}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 422: the request is understood and wrong; the message says what to change.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 503: something Lifeboat needs (the cluster, a location) is not there.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the state of what is asked about forbids it now.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
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

/// `/healthz`: the process answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Alive {
    /// Always `alive`.
    status: &'static str,
    version: &'static str,
    /// The git commit this binary was built from, when known.
    commit: Option<&'static str>,
}

#[utoipa::path(
    get, operation_id = "healthz",
    path = "/healthz",
    tag = "system",
    security(()),
    responses((status = 200, description = "The process is alive", body = Alive))
)]
async fn healthz() -> Json<Alive> {
    Json(Alive {
        status: "alive",
        version: crate::VERSION,
        commit: crate::commit(),
    })
}

/// `/readyz`: whether every required component is ready, and each one's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Readiness {
    /// Every required component is ready (one that is not required, such
    /// as the browser bundle, is reported without taking the API out of service).
    ready: bool,
    components: Vec<ComponentStatus>,
}

/// Readiness of one component, as `/readyz` reports it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ComponentStatus {
    /// `catalog`, `storage`, `cluster`, `watches`, `auth`, `volumes` or `ui`.
    pub name: &'static str,
    pub ready: bool,
    /// Whether the API is ready only when this is (`ui` is not: without the
    /// browser bundle the API serves, and pages do not hydrate).
    pub required: bool,
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
            Err(reason) => (false, reason.to_string()),
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
    // Reported for all to see, without taking the API out of service:
    // resource backups and restores still work.
    let damaged = crate::volumes::damaged();
    components.push((
        "volumes",
        if damaged.is_empty() {
            (true, "no damaged volume repository found".into())
        } else {
            (
                true,
                damaged
                    .iter()
                    .map(|(location, why)| format!("DAMAGED in location {location}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        },
    ));
    let mut components: Vec<ComponentStatus> = components
        .into_iter()
        .map(|(name, (ready, detail))| ComponentStatus {
            name,
            ready,
            required: true,
            detail,
        })
        .collect();
    // A warning, not a failure of the API.
    let ui = crate::http::ui::bundle_state(state.site_dir.as_deref());
    components.push(ComponentStatus {
        name: "ui",
        ready: ui.is_ok(),
        required: false,
        detail: match ui {
            Ok(dir) => format!("browser bundle in {}", dir.display()),
            Err(why) => why.to_string(),
        },
    });
    components
}

#[utoipa::path(
    get, operation_id = "readyz",
    path = "/readyz",
    tag = "system",
    security(()),
    responses(
        (status = 200, description = "Every component is ready", body = Readiness),
        (status = 503, description = "Some component is not ready; each says why", body = Readiness),
    )
)]
async fn readyz(State(state): State<AppState>) -> Response {
    let components = readiness(&state).await;
    let ready = components.iter().all(|c| c.ready || !c.required);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready, components })).into_response()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ActivityQuery {
    /// The subject entries concern (a backup, restore or schedule name).
    subject: Option<String>,
    /// A username: what they did (whatever way they signed in).
    actor: Option<String>,
    /// At most this many, newest first (1–1000, default 100).
    limit: Option<i64>,
}

/// `GET /api/v1/activity`: the activity log, newest first (`list activities`).
#[utoipa::path(
    get, operation_id = "listActivity",
    path = "/api/v1/activity",
    tag = "system",
    params(ActivityQuery),
    responses((status = 200, description = "Entries, newest first", body = views::Items<views::ActivityView>))
)]
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
    let items = rows.iter().map(views::ActivityView::from).collect();
    Ok(Json(views::Items::<views::ActivityView> { items }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `value`.
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match v.as_str() {
                        Some(r) if k == "$ref" => out.push(r.to_string()),
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_names_every_operation_and_resolves_every_schema() {
        let doc = serde_json::to_value(openapi()).unwrap();
        if let Ok(path) = std::env::var("LIFEBOAT_WRITE_OPENAPI") {
            std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        }
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for expected in [
            "/api/v1/backups",
            "/api/v1/backups/{name}/drill",
            "/api/v1/restores/{name}",
            "/api/v1/schedules/{name}/pause",
            "/api/v1/storage-locations/{name}/recovery-key",
            "/api/v1/notification-targets/{name}",
            "/api/v1/namespaces/{namespace}/pods/{name}",
            "/api/v1/openapi.json",
            "/metrics",
        ] {
            assert!(paths.contains_key(expected), "{expected} is not documented");
        }
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.insert(id.to_string()),
                    "{method} {path}: operationId `{id}` again"
                );
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path} documents no success"
                );
                assert!(
                    responses.contains_key("default"),
                    "{method} {path} documents no error"
                );
                let names: Vec<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                for name in names {
                    let declared = op["parameters"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| p["name"] == name && p["in"] == "path")
                    });
                    assert!(declared, "{method} {path} does not declare `{name}`");
                }
            }
        }
        assert!(ids.len() >= 50, "only {} operations", ids.len());
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for r in found {
            let name = r.trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} does not resolve"
            );
        }
        // The public routes say so; the rest need a bearer token or a session.
        assert_eq!(
            doc["paths"]["/healthz"]["get"]["security"],
            serde_json::json!([{}])
        );
        assert!(doc["security"].as_array().is_some_and(|s| s.len() == 2));
    }
}
