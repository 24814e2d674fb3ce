//! The web UI: each page is rendered on the server by `leptos_axum` from data
//! fetched from this server's own JSON API (in-process), then hydrated in the
//! browser from `/pkg/lifeboat_bg.wasm`. Pages read without JavaScript.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use frontend::PageData;
use serde_json::Value;
use tower::ServiceExt;

use super::AppState;
use crate::auth::Principal;

pub fn routes() -> Router<AppState> {
    // Leptos spawns its rendering tasks on a global executor: tokio's.
    static EXECUTOR: std::sync::Once = std::sync::Once::new();
    EXECUTOR.call_once(|| {
        let _ = any_spawner::Executor::init_tokio();
    });
    Router::new()
        .route("/", get(page))
        .route("/namespaces", get(page))
        .route("/namespaces/{name}", get(page))
        .route("/namespaces/{namespace}/pods/{name}", get(page))
        .route("/namespaces/{namespace}/timeline", get(page))
        .route("/nodes/{name}", get(page))
        .route("/namespaces/{namespace}/{kind}/{name}", get(page))
        .route("/backups", get(page))
        .route("/backups/{name}", get(page))
        .route("/schedules", get(page))
        .route("/restore", get(page))
        .route("/storage", get(page))
        .route("/activity", get(page))
        .route("/notifications", get(page))
        .route("/assets/lifeboat.css", get(stylesheet))
        .route("/pkg/{file}", get(bundle))
}

/// Where the browser bundle is: the configured directory, else `site/` next
/// to the binary or one level up. `None` when not built (pages still render,
/// without interactivity).
pub fn find_site_dir(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = configured {
        return Some(dir.to_path_buf());
    }
    let exe = std::env::current_exe().ok()?;
    // target/release/lifeboat, target/debug/lifeboat, target/debug/deps/<test>,
    // and the release archive's lifeboat-<version>/lifeboat.
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("site"))
        .find(|d| has_bundle(d))
}

/// Whether `site` holds the browser bundle.
pub fn has_bundle(site: &Path) -> bool {
    site.join("pkg").join("lifeboat_bg.wasm").is_file()
}

/// The browser bundle is not where the binary looks: what is missing and
/// what that means.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BundleMissing(String);

/// The browser bundle's state for `lifeboat version` and `/readyz`:
/// `Ok(site directory)`, or what is missing and what that means.
pub fn bundle_state(site: Option<&Path>) -> Result<PathBuf, BundleMissing> {
    const MEANS: &str = "pages render but do not hydrate (no Back up now, no restore wizard, \
                         no live updates); install from the release archive or image, or build \
                         it with .ci/build-ui";
    match site {
        Some(dir) if has_bundle(dir) => Ok(dir.to_path_buf()),
        Some(dir) => Err(BundleMissing(format!(
            "no browser bundle in {} (pkg/lifeboat_bg.wasm is missing): {MEANS}",
            dir.display()
        ))),
        None => Err(BundleMissing(format!(
            "no browser bundle (site/pkg/lifeboat_bg.wasm) next to {}: {MEANS}",
            std::env::current_exe()
                .map(|e| e.display().to_string())
                .unwrap_or_else(|_| "the binary".into())
        ))),
    }
}

/// GETs an API path from this server, in-process, as JSON (errors
/// included), as `principal`: a page shows only what its reader may see.
async fn api_get(state: &AppState, path: &str, principal: &Principal) -> Value {
    let mut request = match Request::get(path).body(Body::empty()) {
        Ok(r) => r,
        Err(e) => return serde_json::json!({"error": e.to_string(), "status": 500}),
    };
    request.extensions_mut().insert(principal.clone());
    let response = match super::api_router(state.clone()).oneshot(request).await {
        Ok(r) => r,
        Err(e) => return serde_json::json!({"error": e.to_string(), "status": 500}),
    };
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_else(
        |e| serde_json::json!({"error": format!("the API answered something unreadable: {e}"), "status": 500}),
    )
}

/// What each page shows: its title and the API paths it reads.
fn plan(path: &str) -> (String, String, Option<String>, Vec<(String, String)>) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let s = |name: &str, path: String| (name.to_string(), path);
    match segments.as_slice() {
        [""] => (
            "overview".into(),
            "Overview".into(),
            None,
            vec![
                s("summary", "/api/v1/cluster/summary".into()),
                s("namespaces", "/api/v1/namespaces".into()),
            ],
        ),
        ["namespaces"] => (
            "namespaces".into(),
            "Namespaces".into(),
            None,
            vec![s("namespaces", "/api/v1/namespaces".into())],
        ),
        ["namespaces", name] => (
            "namespace".into(),
            format!("Namespace {name}"),
            Some(name.to_string()),
            vec![s("namespace", format!("/api/v1/namespaces/{name}"))],
        ),
        ["namespaces", namespace, "pods", name] => (
            "pod".into(),
            format!("Pod {name}"),
            Some(format!("{namespace}/{name}")),
            vec![s(
                "pod",
                format!("/api/v1/namespaces/{namespace}/pods/{name}"),
            )],
        ),
        [
            "namespaces",
            namespace,
            kind @ ("deployments" | "statefulsets" | "daemonsets"),
            name,
        ] => (
            "workload".into(),
            format!("Workload {namespace}/{name}"),
            Some(format!("{namespace}/{name}")),
            vec![s(
                "workload",
                format!("/api/v1/namespaces/{namespace}/workloads/{kind}/{name}"),
            )],
        ),
        ["namespaces", namespace, "timeline"] => (
            "timeline".into(),
            format!("Timeline of {namespace}"),
            Some(namespace.to_string()),
            vec![s(
                "timeline",
                format!("/api/v1/namespaces/{namespace}/timeline"),
            )],
        ),
        ["nodes", name] => (
            "node".into(),
            format!("Node {name}"),
            Some(name.to_string()),
            vec![s("node", format!("/api/v1/nodes/{name}"))],
        ),
        ["backups"] => (
            "backups".into(),
            "Backups".into(),
            None,
            vec![
                s("backups", "/api/v1/backups".into()),
                s("locations", "/api/v1/storage-locations".into()),
            ],
        ),
        ["backups", name] => (
            "backup".into(),
            format!("Backup {name}"),
            Some(name.to_string()),
            vec![
                s("backup", format!("/api/v1/backups/{name}")),
                s("drills", format!("/api/v1/drills?backup={name}")),
            ],
        ),
        ["schedules"] => (
            "schedules".into(),
            "Schedules".into(),
            None,
            vec![
                s("schedules", "/api/v1/schedules".into()),
                s("locations", "/api/v1/storage-locations".into()),
            ],
        ),
        ["restore"] => (
            "restore".into(),
            "Restore".into(),
            None,
            vec![s("backups", "/api/v1/backups".into())],
        ),
        ["storage"] => (
            "storage".into(),
            "Storage".into(),
            None,
            vec![
                s("locations", "/api/v1/storage-locations".into()),
                s("backups", "/api/v1/backups".into()),
            ],
        ),
        ["notifications"] => (
            "notifications".into(),
            "Notifications".into(),
            None,
            vec![s("targets", "/api/v1/notification-targets".into())],
        ),
        ["activity"] => (
            "activity".into(),
            "Activity".into(),
            None,
            vec![
                s("activity", "/api/v1/activity?limit=200".into()),
                s(
                    "deliveries",
                    "/api/v1/notifications/deliveries?limit=50".into(),
                ),
            ],
        ),
        _ => ("not-found".into(), "Not found".into(), None, Vec::new()),
    }
}

async fn page(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
    request: Request,
) -> Response {
    let path = request.uri().path().to_string();
    let (kind, title, param, sources) = plan(&path);
    // The middleware put the reader there; a page is never public.
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return (StatusCode::UNAUTHORIZED, "not signed in").into_response();
    };
    let csrf = request
        .extensions()
        .get::<super::auth::CsrfToken>()
        .map(|c| c.0.clone());
    let mut data = PageData {
        page: kind.clone(),
        title,
        param,
        query,
        version: crate::VERSION.to_string(),
        user: Some(frontend::SignedIn {
            username: principal.username.clone(),
            csrf,
        }),
        ..Default::default()
    };
    // The sources are read at once: the page waits for the slowest, not their sum.
    let values =
        futures::future::join_all(sources.iter().map(|(_, p)| api_get(&state, p, &principal)))
            .await;
    for ((name, api_path), value) in sources.into_iter().zip(values) {
        data.data.insert(name.clone(), value);
        data.sources.insert(name, api_path);
    }
    // A finished backup's contents are worth browsing; a running one has none yet.
    if kind == "backup"
        && let Some(name) = &data.param
        && data.get("backup")["phase"]
            .as_str()
            .and_then(crate::backup::BackupPhase::parse)
            .is_some_and(crate::backup::BackupPhase::is_restorable)
    {
        let contents = api_get(
            &state,
            &format!("/api/v1/backups/{name}/contents"),
            &principal,
        )
        .await;
        data.data.insert("contents".into(), contents);
    }
    let options = leptos_options(&state);
    let status = if kind == "not-found" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    // The page's inline scripts (hydration) carry a fresh nonce; nothing
    // else inline may run.
    let nonce = leptos::nonce::Nonce::new();
    let policy = page_policy(&nonce);
    let handler = leptos_axum::render_app_async_with_context(
        move || leptos::context::provide_context(nonce.clone()),
        move || frontend::shell(options.clone(), data.clone()),
    );
    let mut response = handler(request).await.into_response();
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// A page's Content-Security-Policy: its own scripts, the nonce'd hydration
/// script and stylesheet, WebAssembly, nothing framed and nothing elsewhere.
fn page_policy(nonce: &leptos::nonce::Nonce) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

fn leptos_options(state: &AppState) -> leptos::config::LeptosOptions {
    leptos::config::LeptosOptions::builder()
        .output_name("lifeboat")
        .site_pkg_dir("pkg")
        .site_root(
            state
                .site_dir
                .as_deref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "site".into()),
        )
        .env(leptos::config::Env::PROD)
        .build()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        frontend::STYLESHEET,
    )
        .into_response()
}

/// The wasm bundle and its JavaScript glue.
async fn bundle(State(state): State<AppState>, UrlPath(file): UrlPath<String>) -> Response {
    let allowed = ["lifeboat.js", "lifeboat_bg.wasm"];
    let Some(dir) = state
        .site_dir
        .as_deref()
        .filter(|_| allowed.contains(&file.as_str()))
    else {
        return (
            StatusCode::NOT_FOUND,
            "the browser bundle is not built: run .ci/build-ui (pages still work without it)",
        )
            .into_response();
    };
    let content_type = if file.ends_with(".wasm") {
        "application/wasm"
    } else {
        "text/javascript"
    };
    match tokio::fs::read(dir.join("pkg").join(&file)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("{file}: {e}")).into_response(),
    }
}
