//! `/api/v1/schedules`: create, preview (validation and next runs without
//! saving), list, get, replace, pause, resume, delete; `/api/v1/scheduler`
//! says which replica runs them.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::views::{ScheduleList, SchedulePreview, ScheduleView, ScheduledBackup, schedule_view};
use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::catalog::{BackupFilter, ScheduleRecord};
use crate::cluster::lease::Runner;
use crate::schedule::ScheduleSpecExt;
use crate::schedule::{self, ScheduleError, ScheduleSpec};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(preview))
        .routes(routes!(describe, replace, remove))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(scheduler))
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Catalog(c) => c.into(),
            ScheduleError::Invalid(_) => ApiError::invalid(e.to_string()),
            ScheduleError::Cluster(_) => ApiError::unavailable(e.to_string()),
        }
    }
}

fn view(record: &ScheduleRecord) -> ScheduleView {
    let next: Vec<String> = schedule::next_runs(record, Utc::now())
        .iter()
        .map(|t| t.to_rfc3339())
        .collect();
    schedule_view(record, next)
}

#[utoipa::path(post, operation_id = "createSchedule", path = "/api/v1/schedules", tag = "schedules",
    description = "Adds a schedule (`create schedules`).",
    request_body = ScheduleSpec,
    responses((status = 201, description = "Added, with its next runs", body = ScheduleView)))]
async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: ScheduleSpec = super::authorized_body(
        &state,
        &who,
        Check::cluster("create", "schedules"),
        &body,
        "schedule",
    )
    .await?;
    let record = schedule::create(&state.catalog, &spec, &who.actor()).await?;
    Ok((StatusCode::CREATED, Json(view(&record))).into_response())
}

/// Validates a schedule and shows its next runs, saving nothing.
#[utoipa::path(post, operation_id = "previewSchedule", path = "/api/v1/schedules/preview", tag = "schedules",
    description = "Validates a schedule and shows its next runs, saving nothing.",
    request_body = ScheduleSpec,
    responses((status = 200, description = "It is valid", body = SchedulePreview)))]
async fn preview(body: axum::body::Bytes) -> Result<Response, ApiError> {
    let spec: ScheduleSpec = super::parse_body(&body, "schedule")?;
    let cron = spec.validate().map_err(ScheduleError::from)?;
    let next: Vec<String> = cron
        .next_runs(Utc::now(), schedule::NEXT_RUNS)
        .iter()
        .map(|t| t.to_rfc3339())
        .collect();
    Ok(Json(SchedulePreview {
        valid: true,
        next_runs: next,
    })
    .into_response())
}

#[utoipa::path(get, operation_id = "listSchedules", path = "/api/v1/schedules", tag = "schedules",
    description = "Every schedule (`list schedules`).",
    responses((status = 200, description = "The schedules and their runner", body = ScheduleList)))]
async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("list", "schedules")])
        .await?;
    let items: Vec<ScheduleView> = state.catalog.schedules().await?.iter().map(view).collect();
    Ok(Json(ScheduleList {
        items,
        runner: state.leadership.describe(),
    })
    .into_response())
}

#[utoipa::path(get, operation_id = "getSchedule", path = "/api/v1/schedules/{name}", tag = "schedules", params(("name" = String, Path, description = "The schedule's name")),
    responses((status = 200, description = "The schedule and its backups", body = ScheduleView)))]
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
    out.journal = state.journals.status(&name);
    Ok(Json(out).into_response())
}

#[utoipa::path(put, operation_id = "replaceSchedule", path = "/api/v1/schedules/{name}", tag = "schedules", params(("name" = String, Path, description = "The schedule's name")),
    description = "Replaces the schedule (`update schedules`); the body's name must be the path's.",
    request_body = ScheduleSpec,
    responses((status = 200, description = "Replaced", body = ScheduleView)))]
async fn replace(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: ScheduleSpec = super::authorized_body(
        &state,
        &who,
        Check::cluster("update", "schedules"),
        &body,
        "schedule",
    )
    .await?;
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

#[utoipa::path(post, operation_id = "pauseSchedule", path = "/api/v1/schedules/{name}/pause", tag = "schedules", params(("name" = String, Path, description = "The schedule's name")),
    responses((status = 200, description = "Paused", body = ScheduleView)))]
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

#[utoipa::path(post, operation_id = "resumeSchedule", path = "/api/v1/schedules/{name}/resume", tag = "schedules", params(("name" = String, Path, description = "The schedule's name")),
    responses((status = 200, description = "Running again", body = ScheduleView)))]
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

#[utoipa::path(delete, operation_id = "deleteSchedule", path = "/api/v1/schedules/{name}", tag = "schedules", params(("name" = String, Path, description = "The schedule's name")),
    description = "Deletes the schedule; its backups stay (`delete schedules`).",
    responses((status = 204, description = "Deleted")))]
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

#[utoipa::path(get, operation_id = "getScheduler", path = "/api/v1/scheduler", tag = "schedules",
    description = "Which replica runs schedules and GC (the Lease holder).",
    responses((status = 200, description = "The leadership", body = Runner)))]
async fn scheduler(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Runner>, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("get", "schedules")])
        .await?;
    Ok(Json(state.leadership.describe()))
}
