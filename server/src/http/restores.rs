//! `/api/v1/restores`: create (or plan, with `dryRun`), list, get with the plan and results.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::views::{Items, RestoreView};
use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::catalog::CatalogError;
use crate::catalog::RestoreRecord;
use crate::restore::RestoreSpecExt;
use crate::restore::runner::Preflight;
use crate::restore::{self, RestoreSpec};
use crate::selection::BackupSpecExt;
use frontend::model::{CreateRestore, RestorePlan};

impl From<restore::StartError> for ApiError {
    fn from(e: restore::StartError) -> Self {
        use restore::StartError;
        match e {
            StartError::Catalog(c) => c.into(),
            StartError::Storage(s) => s.into(),
            StartError::Invalid(_) => ApiError::invalid(e.to_string()),
            StartError::NoCluster(_) => ApiError::unavailable(e.to_string()),
        }
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(describe))
        .routes(routes!(progress))
        .routes(routes!(log))
}

/// The namespaces a restore writes into (`None`: cluster-wide): its own
/// exact namespaces, else its backup's, after mapping.
async fn targets(state: &AppState, spec: &RestoreSpec) -> Option<Vec<String>> {
    let backup = state.catalog.backup(&spec.backup_name).await.ok();
    let backup_namespaces = backup
        .and_then(|b| serde_json::from_str::<crate::backup::BackupSpec>(&b.spec).ok())
        .and_then(|s| s.namespaces_concerned());
    spec.target_namespaces(backup_namespaces)
}

/// What `verb` on a restore needs: the verb on `restores` in every target namespace.
async fn checks_for(state: &AppState, record: &RestoreRecord, verb: &'static str) -> Vec<Check> {
    match serde_json::from_str::<RestoreSpec>(&record.spec) {
        Ok(spec) => Check::in_each(verb, "restores", targets(state, &spec).await.as_deref()),
        Err(_) => vec![Check::cluster(verb, "restores")],
    }
}

/// A restore's record, once `who` may `get` it.
async fn visible(state: &AppState, who: &Principal, name: &str) -> Result<RestoreRecord, ApiError> {
    let record = state.catalog.restore(name).await?;
    state
        .auth
        .require(who, &checks_for(state, &record, "get").await)
        .await?;
    Ok(record)
}

#[utoipa::path(post, operation_id = "createRestore", path = "/api/v1/restores", tag = "restores",
    description = "Plans a restore and, unless `dryRun`, applies it, writing as the caller (`create restores` in each target namespace). Before anything is written the plan is checked against the caller's own rights; a restore with items the caller may not write is refused (422, listing them) unless `allowPartial`.",
    request_body = CreateRestore,
    responses(
        (status = 202, description = "Started; follow /progress", body = RestoreView),
        (status = 422, description = "Invalid, or refused before anything was written: `forbidden` lists the items the caller may not write, each with the reason and a binding that allows it"),
    ))]
async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut request: CreateRestore = super::parse_body(&body, "restore")?;
    // A point in time names its base backup first: authorization reads it.
    restore::resolve_point_in_time(&state.catalog, &mut request.spec).await?;
    let namespaces = targets(&state, &request.spec).await;
    state
        .auth
        .require(
            &who,
            &Check::in_each("create", "restores", namespaces.as_deref()),
        )
        .await?;
    // The restore writes as the user: the API server allows exactly what they may do.
    let client = match state.cluster.as_ref() {
        Ok(cluster) => Some(cluster.client_as(&who).map_err(|e| {
            ApiError::unavailable(format!(
                "a client acting as {} could not be made: {e}",
                who.username
            ))
        })?),
        Err(_) => None,
    };
    let client = client.as_ref();
    let own = state
        .cluster
        .as_ref()
        .as_ref()
        .ok()
        .map(|c| c.client.clone());
    let own = own.as_ref();
    let actor = who.actor();
    let (told, mut preflight) = tokio::sync::watch::channel(Preflight::Pending);
    let told = std::sync::Arc::new(told);
    let start = |name: String, spec: RestoreSpec| {
        let state = state.clone();
        let actor = actor.clone();
        let clients = restore::Clients {
            acting: client,
            own,
            preflight: Some(told.clone()),
        };
        async move {
            restore::start_as(
                &state.catalog,
                &state.locations,
                clients,
                &name,
                spec,
                &actor,
            )
            .await
        }
    };
    let started = match request.name {
        Some(name) => start(name, request.spec).await?.0,
        None => {
            // A generated name that is taken (two restores in one second) gets a suffix.
            let now = chrono::Utc::now();
            let mut attempt = 1;
            loop {
                let name = restore::generated_name(
                    &request.spec.backup_name,
                    request.spec.dry_run,
                    now,
                    attempt,
                );
                match start(name, request.spec.clone()).await {
                    Ok((record, _)) => break record,
                    Err(restore::StartError::Catalog(CatalogError::AlreadyExists { .. }))
                        if attempt < 100 =>
                    {
                        attempt += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    };
    // The pre-flight check is awaited (a bounded while): a restore it
    // refuses is answered 422 with what the user may not write, nothing
    // having been written. Past the bound, or when the run ends before its
    // check, the answer is 202 and the restore's record says the rest.
    drop(told);
    let checked = tokio::time::timeout(
        PREFLIGHT_WAIT,
        preflight.wait_for(|p| *p != Preflight::Pending),
    )
    .await;
    if let Ok(Ok(found)) = checked
        && let Preflight::Refused(lines) = &*found
    {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": format!(
                    "restore {} refused before anything was written: {} item(s) you may not write; \
                     ask for the binding each names, or restore with allowPartial to bring back the rest",
                    started.name,
                    lines.len()
                ),
                "status": 422,
                "restore": started.name,
                "forbidden": lines,
            })),
        )
            .into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(RestoreView::from(&started))).into_response())
}

/// How long creating a restore waits for its pre-flight check.
const PREFLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The restores `who` may see (`get restores` in every target namespace).
#[utoipa::path(get, operation_id = "listRestores", path = "/api/v1/restores", tag = "restores", params(super::OfBackup),
    description = "The restores the caller may see, with their plans' counts.",
    responses((status = 200, description = "Newest first", body = Items<RestoreView>)))]
async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<super::OfBackup>,
) -> Result<Response, ApiError> {
    // The list shows counts; the items are on the restore's own page.
    let mut items: Vec<RestoreView> = Vec::new();
    for r in state.catalog.restores(q.backup.as_deref()).await? {
        if state
            .auth
            .may_all(&who, &checks_for(&state, &r, "get").await)
            .await
        {
            items.push(RestoreView::from(&r).summary());
        }
    }
    Ok(Json(Items { items }).into_response())
}

#[utoipa::path(get, operation_id = "getRestore", path = "/api/v1/restores/{name}", tag = "restores", params(("name" = String, Path, description = "The restore's name")),
    responses((status = 200, description = "The restore with its whole plan and results", body = RestoreView)))]
async fn describe(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let mut view = RestoreView::from(&visible(&state, &who, &name).await?);
    view.volumes = crate::volumes::progress_of(&state.catalog.volume_tasks_of(&name).await?);
    Ok(Json(view).into_response())
}

/// Server-sent events with the restore's progress until it finishes.
#[utoipa::path(get, operation_id = "followRestore", path = "/api/v1/restores/{name}/progress", tag = "restores", params(("name" = String, Path, description = "The restore's name")),
    description = "Server-sent events: `progress` every half second while it runs, then `finished`; each `{phase, itemsDone, itemsTotal, errors, phaseReason, volumes}`.",
    responses((status = 200, description = "An event stream", body = String, content_type = "text/event-stream")))]
async fn progress(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    visible(&state, &who, &name).await?;
    Ok(super::progress_events(move || {
        let (state, name) = (state.clone(), name.clone());
        async move {
            let r = state.catalog.restore(&name).await.ok()?;
            let volumes =
                crate::volumes::progress_of(&state.catalog.volume_tasks_of(&name).await.ok()?);
            Some((
                r.restore_phase()
                    .is_some_and(restore::RestorePhase::is_running),
                json!({"phase": r.phase, "itemsDone": r.items_done, "itemsTotal": r.items_total,
                       "errors": r.errors, "phaseReason": r.phase_reason, "volumes": volumes}),
            ))
        }
    }))
}

/// The restore's log: one JSON line per item with its action and result.
#[utoipa::path(get, operation_id = "getRestoreLog", path = "/api/v1/restores/{name}/log", tag = "restores", params(("name" = String, Path, description = "The restore's name")),
    responses((status = 200, description = "One JSON object a line: each item, its action and result", body = String, content_type = "application/x-ndjson")))]
async fn log(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let r = visible(&state, &who, &name).await?;
    let plan: RestorePlan = r
        .plan
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let mut out = String::new();
    for item in &plan.items {
        out.push_str(&serde_json::to_string(item).unwrap_or_default());
        out.push('\n');
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        out,
    )
        .into_response())
}
