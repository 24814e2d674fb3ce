//! `/api/v1/storage-locations`: list with usage, add (checked before it is
//! saved, then its existing backups imported), get, check, remove.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::views::LocationView;
use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::catalog::{BackupFilter, BackupRecord, StorageLocationRecord};
use crate::location::{self, LocationUseError};
use crate::storage::LocationSpec;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/storage-locations", get(list).post(create))
        .route(
            "/api/v1/storage-locations/{name}",
            get(describe).delete(remove),
        )
        .route("/api/v1/storage-locations/{name}/check", post(check))
}

impl From<LocationUseError> for ApiError {
    fn from(e: LocationUseError) -> Self {
        match e {
            LocationUseError::Catalog(c) => c.into(),
            LocationUseError::Backup(b) => b.into(),
            other => ApiError {
                status: match other {
                    LocationUseError::Invalid(_) | LocationUseError::Unusable { .. } => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    _ => StatusCode::CONFLICT,
                },
                message: other.to_string(),
            },
        }
    }
}

/// A location as the API shows it: its record (no secret values), whether
/// this server has it open, and how many of `backups` (and bytes) it holds.
fn view(state: &AppState, row: &StorageLocationRecord, backups: &[BackupRecord]) -> LocationView {
    LocationView::new(row, state.locations.get(&row.name).is_some(), backups)
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
async fn view_of(state: &AppState, name: &str) -> Result<LocationView, ApiError> {
    let row = state.catalog.storage_location(name).await?;
    Ok(view(state, &row, &backups_in(state, name).await?))
}

async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("list", "storagelocations")])
        .await?;
    let backups = state.catalog.backups(&BackupFilter::default()).await?;
    let items: Vec<LocationView> = state
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
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("get", "storagelocations")])
        .await?;
    Ok(Json(view_of(&state, &name).await?).into_response())
}

/// Adds a location: validated, opened and checked (list, write, delete)
/// before anything is saved; then the backups already in it are imported.
async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("create", "storagelocations")])
        .await?;
    let spec: LocationSpec = super::parse_body(&body, "storage location")?;
    let imported = location::add(&state.catalog, &state.locations, &spec, &who.actor()).await?;
    let mut v = view_of(&state, &spec.name).await?;
    v.imported = Some(imported);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn check(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("update", "storagelocations")])
        .await?;
    location::check(&state.catalog, &state.locations, &name, &who.actor()).await?;
    Ok(Json(view_of(&state, &name).await?).into_response())
}

/// Removes a location from Lifeboat; its objects stay where they are.
async fn remove(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("delete", "storagelocations")])
        .await?;
    location::remove(&state.catalog, &state.locations, &name, &who.actor()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
