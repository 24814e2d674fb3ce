//! Restore drills: `POST /api/v1/backups/{name}/drill` starts one;
//! `/api/v1/drills` lists them (of one backup with `?backup=`), newest first.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::views::{DrillView, Items};
use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::catalog::DrillRecord;
use crate::drill::{DrillError, Drills};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(describe))
}

impl From<DrillError> for ApiError {
    fn from(e: DrillError) -> Self {
        match e {
            DrillError::Catalog(c) => c.into(),
            DrillError::Invalid(_) => ApiError::invalid(e.to_string()),
            DrillError::Busy { .. } => ApiError::conflict(e.to_string()),
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DrillRequest {
    /// How long to wait for the workloads to be ready (default 600).
    timeout_seconds: Option<u64>,
}

#[utoipa::path(post, operation_id = "drillBackup", path = "/api/v1/backups/{name}/drill", tag = "drills",
    params(("name" = String, Path, description = "The backup to drill")),
    description = "Restores the backup into scratch namespaces as `lifeboat:drill`, waits for its workloads, records the outcome and cleans up (`create backups/drill`).",
    request_body(content = Option<DrillRequest>, description = "Optional: how long to wait"),
    responses((status = 202, description = "Started", body = DrillView)))]
async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: DrillRequest = if body.is_empty() {
        DrillRequest::default()
    } else {
        super::parse_body(&body, "drill request ({timeoutSeconds})")?
    };
    let timeout = match request.timeout_seconds {
        None => crate::drill::DEFAULT_TIMEOUT,
        Some(s) if (1..=crate::drill::MAX_TIMEOUT.as_secs()).contains(&s) => {
            std::time::Duration::from_secs(s)
        }
        Some(s) => {
            return Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!(
                    "timeoutSeconds: {s} is out of range; wait between 1 and {} seconds",
                    crate::drill::MAX_TIMEOUT.as_secs()
                ),
            });
        }
    };
    super::backups::backup_store(&state, &who, &name, "create", Some("drill")).await?;
    let cluster = state.cluster.as_ref().as_ref().map_err(|e| {
        ApiError::unavailable(format!(
            "no cluster is connected, so nothing can be drilled: {e}"
        ))
    })?;
    let client = cluster.drill_client().map_err(|e| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!(
            "a client acting as {} could not be made: {e}",
            crate::cluster::DRILL_USER
        ),
    })?;
    let drills = Drills {
        catalog: state.catalog.clone(),
        locations: state.locations.clone(),
        client,
    };
    let (record, _) = drills.start(&name, None, &who.actor(), timeout).await?;
    Ok((StatusCode::ACCEPTED, Json(DrillView::from(&record))).into_response())
}

/// What seeing a drill needs: `get backups` in the namespaces it copied
/// (those of its backup while they are not recorded yet).
async fn checks(state: &AppState, drill: &DrillRecord) -> Vec<Check> {
    let copied: Vec<String> =
        serde_json::from_str::<std::collections::BTreeMap<String, String>>(&drill.namespaces)
            .map(|m| m.into_keys().collect())
            .unwrap_or_default();
    if copied.is_empty() {
        match state.catalog.backup(&drill.backup).await {
            Ok(b) => super::backups::checks_for(&b, "get", None),
            Err(_) => Check::in_each("get", "backups", None),
        }
    } else {
        Check::in_each("get", "backups", Some(&copied))
    }
}

#[utoipa::path(get, operation_id = "listDrills", path = "/api/v1/drills", tag = "drills", params(super::OfBackup),
    description = "Drills the caller may see, newest first.",
    responses((status = 200, description = "The drills", body = Items<DrillView>)))]
async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<super::OfBackup>,
) -> Result<Response, ApiError> {
    let mut items = Vec::new();
    for d in state.catalog.drills(q.backup.as_deref()).await? {
        if state.auth.may_all(&who, &checks(&state, &d).await).await {
            items.push(DrillView::from(&d));
        }
    }
    Ok(Json(Items { items }).into_response())
}

#[utoipa::path(get, operation_id = "getDrill", path = "/api/v1/drills/{id}", tag = "drills",
    params(("id" = String, Path, description = "The drill's id")),
    responses((status = 200, description = "The drill with its checks", body = DrillView)))]
async fn describe(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let drill = state.catalog.drill(&id).await?;
    state
        .auth
        .require(&who, &checks(&state, &drill).await)
        .await?;
    Ok(Json(DrillView::from(&drill)).into_response())
}
