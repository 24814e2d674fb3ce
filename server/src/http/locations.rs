//! `/api/v1/storage-locations`: list with usage, add (checked before it is
//! saved, then its existing backups imported), get, check, remove.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::catalog::{BackupFilter, BackupRecord, StorageLocationRecord};
use crate::storage::{Availability, LocationError, LocationSpec, locations::DEFAULT};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/storage-locations", get(list).post(create))
        .route(
            "/api/v1/storage-locations/{name}",
            get(describe).delete(remove),
        )
        .route("/api/v1/storage-locations/{name}/check", post(check))
}

impl From<LocationError> for ApiError {
    fn from(e: LocationError) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("invalid storage location: {e}"),
        }
    }
}

/// A location as the API shows it: its record (no secret values), whether
/// this server has it open, and how many of `backups` (and bytes) it holds.
fn view(state: &AppState, row: &StorageLocationRecord, backups: &[BackupRecord]) -> Value {
    let mine: Vec<&BackupRecord> = backups
        .iter()
        .filter(|b| b.storage_location == row.name)
        .collect();
    let mut v = serde_json::to_value(row).unwrap_or_default();
    v["config"] = serde_json::from_str(&row.config).unwrap_or(Value::Null);
    v["open"] = json!(state.locations.get(&row.name).is_some());
    v["backups"] = json!(mine.len());
    v["usedBytes"] = json!(mine.iter().filter_map(|b| b.size_bytes).sum::<i64>());
    v
}

/// The backups in one location.
async fn backups_in(state: &AppState, name: &str) -> Result<Vec<BackupRecord>, ApiError> {
    Ok(state
        .catalog
        .backups(&BackupFilter {
            storage_location: Some(name.to_string()),
            ..Default::default()
        })
        .await?)
}

/// One location as the API shows it, read fresh from the catalog.
async fn view_of(state: &AppState, name: &str) -> Result<Value, ApiError> {
    let row = state.catalog.storage_location(name).await?;
    Ok(view(state, &row, &backups_in(state, name).await?))
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let backups = state.catalog.backups(&BackupFilter::default()).await?;
    let items: Vec<Value> = state
        .catalog
        .storage_locations()
        .await?
        .iter()
        .map(|row| view(&state, row, &backups))
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

async fn describe(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(view_of(&state, &name).await?).into_response())
}

/// Adds a location: validated, opened and checked (list, write, delete)
/// before anything is saved; then the backups already in it are imported.
async fn create(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: LocationSpec = super::parse_body(&body, "storage location")?;
    spec.validate()?;
    if state.catalog.storage_location(&spec.name).await.is_ok() {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!("storage location `{}` already exists", spec.name),
        });
    }
    let unusable = |reason: String| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: format!(
            "storage location `{}` cannot be used: {reason} Nothing was saved.",
            spec.name
        ),
    };
    let store = spec.open().await.map_err(|e| unusable(e.to_string()))?;
    if let Availability::Unavailable { reason } = store.check().await {
        return Err(unusable(reason));
    }
    let credentials = spec.credentials();
    state
        .catalog
        .insert_storage_location(
            &spec.name,
            &spec.kind,
            &spec.settings(),
            credentials.as_ref().map(|(i, s)| (i.as_str(), s.as_str())),
        )
        .await?;
    state
        .catalog
        .set_availability(&spec.name, &Availability::Available)
        .await?;
    state.locations.insert(&spec.name, store.clone());
    state
        .catalog
        .record_activity(
            "api",
            "storage.added",
            &format!("storage-location/{}", spec.name),
            &format!(
                "storage location {} added ({})",
                spec.name,
                store.describe()
            ),
            None,
        )
        .await?;
    // The bucket is the source of truth: whatever backups it holds are ours now.
    let report = crate::backup::sync(&state.catalog, &store, &spec.name).await?;
    let mut v = view_of(&state, &spec.name).await?;
    v["imported"] = json!(report.imported);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn check(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.catalog.storage_location(&name).await?;
    let store = state.locations.require(&name)?;
    let availability = store.check().await;
    state.catalog.set_availability(&name, &availability).await?;
    state
        .catalog
        .record_activity(
            "api",
            "storage.checked",
            &format!("storage-location/{name}"),
            &format!("storage location {name} is {availability}"),
            None,
        )
        .await?;
    Ok(Json(view_of(&state, &name).await?).into_response())
}

/// Removes a location from Lifeboat; its objects stay where they are.
async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let row = state.catalog.storage_location(&name).await?;
    let refuse = |message: String| ApiError {
        status: StatusCode::CONFLICT,
        message,
    };
    if row.is_default != 0 || name == DEFAULT {
        return Err(refuse(format!(
            "`{name}` is the default location, set in the configuration (storage.*); it cannot be removed here"
        )));
    }
    for schedule in state.catalog.schedules().await? {
        let template: Value = serde_json::from_str(&schedule.template).unwrap_or_default();
        if template["storageLocation"] == name.as_str() {
            return Err(refuse(format!(
                "schedule {} writes its backups to `{name}`; change or delete the schedule first",
                schedule.name
            )));
        }
    }
    for b in &backups_in(&state, &name).await? {
        let busy = crate::backup::BackupPhase::parse(&b.phase)
            .is_some_and(|p| p.is_running() || p == crate::backup::BackupPhase::Deleting);
        if busy {
            return Err(refuse(format!(
                "backup {} in `{name}` is {}; remove the location once it has finished",
                b.name, b.phase
            )));
        }
        let readers = state.catalog.restores_reading(&b.name).await?;
        if !readers.is_empty() {
            return Err(refuse(format!(
                "restore(s) {} are reading backup {} in `{name}`; remove the location once they have finished",
                readers.join(", "),
                b.name
            )));
        }
    }
    let forgotten = state.catalog.delete_storage_location(&name).await?;
    state.locations.remove(&name);
    state
        .catalog
        .record_activity(
            "api",
            "storage.removed",
            &format!("storage-location/{name}"),
            &format!(
                "storage location {name} removed; {forgotten} backup(s) left in it are no longer listed (add the location again to list them)"
            ),
            None,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
