//! `/api/v1/schedules`: create, preview (validation and next runs without
//! saving), list, get, replace, pause, resume, delete; `/api/v1/scheduler`
//! says which replica runs them.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Value, json};

use super::views::{ScheduleView, ScheduledBackup};
use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::catalog::{BackupFilter, ScheduleRecord};
use crate::schedule::{self, ScheduleError, ScheduleSpec};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/schedules", get(list).post(create))
        .route("/api/v1/schedules/preview", post(preview))
        .route(
            "/api/v1/schedules/{name}",
            get(describe).put(replace).delete(remove),
        )
        .route("/api/v1/schedules/{name}/pause", post(pause))
        .route("/api/v1/schedules/{name}/resume", post(resume))
        .route("/api/v1/scheduler", get(scheduler))
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Catalog(c) => c.into(),
            ScheduleError::Invalid(_) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: e.to_string(),
            },
        }
    }
}

fn view(record: &ScheduleRecord) -> ScheduleView {
    let next: Vec<String> = schedule::next_runs(record, Utc::now())
        .iter()
        .map(|t| t.to_rfc3339())
        .collect();
    ScheduleView::new(record, next)
}

async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("create", "schedules")])
        .await?;
    let spec: ScheduleSpec = super::parse_body(&body, "schedule")?;
    let record = schedule::create(&state.catalog, &spec, &who.actor()).await?;
    Ok((StatusCode::CREATED, Json(view(&record))).into_response())
}

/// Validates a schedule and shows its next runs, saving nothing.
async fn preview(body: axum::body::Bytes) -> Result<Response, ApiError> {
    let spec: ScheduleSpec = super::parse_body(&body, "schedule")?;
    let cron = spec.validate().map_err(ScheduleError::from)?;
    let next: Vec<String> = cron
        .next_runs(Utc::now(), schedule::NEXT_RUNS)
        .iter()
        .map(|t| t.to_rfc3339())
        .collect();
    Ok(Json(json!({"valid": true, "nextRuns": next})).into_response())
}

async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("list", "schedules")])
        .await?;
    let items: Vec<ScheduleView> = state.catalog.schedules().await?.iter().map(view).collect();
    Ok(Json(json!({"items": items, "runner": state.leadership.describe()})).into_response())
}

async fn describe(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("get", "schedules")])
        .await?;
    let record = state.catalog.schedule(&name).await?;
    let backups: Vec<ScheduledBackup> = state
        .catalog
        .backups(&BackupFilter {
            schedule: Some(name.clone()),
            ..Default::default()
        })
        .await?
        .iter()
        .map(ScheduledBackup::from)
        .collect();
    let mut out = view(&record);
    out.backups = Some(backups);
    Ok(Json(out).into_response())
}

async fn replace(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("update", "schedules")])
        .await?;
    let spec: ScheduleSpec = super::parse_body(&body, "schedule")?;
    if spec.name != name {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!(
                "name: the body names `{}` but the path `{name}`; a schedule cannot be renamed, create a new one",
                spec.name
            ),
        });
    }
    let record = schedule::update(&state.catalog, &spec, &who.actor()).await?;
    Ok(Json(view(&record)).into_response())
}

async fn set_paused(
    state: &AppState,
    who: &Principal,
    name: &str,
    paused: bool,
) -> Result<Response, ApiError> {
    schedule::set_paused(&state.catalog, name, paused, &who.actor()).await?;
    Ok(Json(view(&state.catalog.schedule(name).await?)).into_response())
}

async fn pause(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("update", "schedules")])
        .await?;
    set_paused(&state, &who, &name, true).await
}

async fn resume(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("update", "schedules")])
        .await?;
    set_paused(&state, &who, &name, false).await
}

async fn remove(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("delete", "schedules")])
        .await?;
    schedule::delete(&state.catalog, &name, &who.actor()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn scheduler(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("get", "schedules")])
        .await?;
    Ok(Json(state.leadership.describe()))
}
