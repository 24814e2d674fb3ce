//! `/api/v1/storage-locations`: list with usage, add (checked before it is
//! saved, then its existing backups imported), get, check, remove.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::views::{Items, LocationView};
use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::catalog::{BackupFilter, BackupRecord, StorageLocationRecord};
use crate::location::{self, LocationUseError};
use crate::storage::LocationSpec;
use crate::volumes::{self, KeyError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(describe, remove))
        .routes(routes!(check))
        .routes(routes!(reveal_key, set_key))
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        let status = match e {
            KeyError::Foreign(_) | KeyError::AlreadyShown(_) => StatusCode::CONFLICT,
            KeyError::Wrong(_) => StatusCode::UNPROCESSABLE_ENTITY,
            KeyError::Failed(_) => StatusCode::BAD_GATEWAY,
        };
        ApiError {
            status,
            message: e.to_string(),
        }
    }
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
fn view(
    state: &AppState,
    row: &StorageLocationRecord,
    backups: &[BackupRecord],
    keys: &[(String, String, bool)],
) -> LocationView {
    super::views::location_view(row, state.locations.get(&row.name).is_some(), backups, keys)
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

/// A location's store: 404 for a location Lifeboat does not know, 503 for
/// one it knows but could not open.
async fn open_store(state: &AppState, name: &str) -> Result<crate::storage::DynStore, ApiError> {
    state.catalog.storage_location(name).await?;
    Ok(state.locations.require(name)?)
}

/// One location as the API shows it, read fresh from the catalog.
async fn view_of(state: &AppState, name: &str) -> Result<LocationView, ApiError> {
    let row = state.catalog.storage_location(name).await?;
    let keys = state.catalog.repository_keys().await?;
    Ok(view(state, &row, &backups_in(state, name).await?, &keys))
}

#[utoipa::path(get, operation_id = "listStorageLocations", path = "/api/v1/storage-locations", tag = "storage",
    description = "Every location with what it holds (`list storagelocations`).",
    responses((status = 200, description = "The locations", body = Items<LocationView>)))]
async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("list", "storagelocations")])
        .await?;
    let backups = state.catalog.backups(&BackupFilter::default()).await?;
    let keys = state.catalog.repository_keys().await?;
    let items: Vec<LocationView> = state
        .catalog
        .storage_locations()
        .await?
        .iter()
        .map(|row| view(&state, row, &backups, &keys))
        .collect();
    Ok(Json(Items { items }).into_response())
}

#[utoipa::path(get, operation_id = "getStorageLocation", path = "/api/v1/storage-locations/{name}", tag = "storage", params(("name" = String, Path, description = "The location's name")),
    responses((status = 200, description = "The location", body = LocationView)))]
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
#[utoipa::path(post, operation_id = "createStorageLocation", path = "/api/v1/storage-locations", tag = "storage",
    description = "Adds a location, checked (list, write, delete) before it is saved; the backups already in it are imported. The answer carries the recovery key, once (`create storagelocations`).",
    request_body = LocationSpec,
    responses((status = 201, description = "Added", body = LocationView)))]
async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: LocationSpec = super::authorized_body(
        &state,
        &who,
        Check::cluster("create", "storagelocations"),
        &body,
        "storage location",
    )
    .await?;
    let imported = location::add(&state.catalog, &state.locations, &spec, &who.actor()).await?;
    let mut v = view_of(&state, &spec.name).await?;
    v.imported = Some(imported);
    // A new location gets its volume repository and recovery key now, shown
    // in this answer and never again; a bucket holding another install's
    // repository needs that install's key.
    let store = state.locations.require(&spec.name)?;
    match volumes::provision(&state.catalog, &store, &spec.name).await {
        Ok(Some(_)) => match volumes::reveal_key(&state.catalog, &store, &spec.name).await {
            Ok(key) => {
                v.recovery_key = Some(key);
                v.notice = Some(RECOVERY_KEY_WARNING.into());
            }
            Err(e) => v.notice = Some(e.to_string()),
        },
        Ok(None) if state.catalog.repository_key(&spec.name).await?.is_none() => {
            v.notice = Some(KeyError::Foreign(spec.name.clone()).to_string());
        }
        Ok(None) => {}
        Err(e) => v.notice = Some(format!("the volume repository could not be prepared: {e}")),
    }
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

const RECOVERY_KEY_WARNING: &str = "Keep the recovery key somewhere safe, apart from this \
    cluster: it is shown once. The backups and volume data in this location are encrypted with \
    it: a new Lifeboat install needs it to restore them, and `age -d -i` (archives) and restic \
    (volume data) read them with it.";

/// Shows the location's recovery key once (making it and the repository
/// when the location has none).
#[utoipa::path(post, operation_id = "revealRecoveryKey", path = "/api/v1/storage-locations/{name}/recovery-key", tag = "storage", params(("name" = String, Path, description = "The location's name")),
    description = "Shows the recovery key once (`update storagelocations`).",
    responses((status = 200, description = "The key and a warning", body = RecoveryKey)))]
async fn reveal_key(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("update", "storagelocations")])
        .await?;
    let store = open_store(&state, &name).await?;
    let key = volumes::reveal_key(&state.catalog, &store, &name).await?;
    key_activity(&state, &who, &name, "shown", "the recovery key was shown").await?;
    Ok(Json(RecoveryKey {
        recovery_key: key,
        warning: RECOVERY_KEY_WARNING,
    })
    .into_response())
}

/// An activity entry `location.recovery-key-<what>` (never the key itself).
async fn key_activity(
    state: &AppState,
    who: &Principal,
    name: &str,
    what: &str,
    message: &str,
) -> Result<(), ApiError> {
    state
        .catalog
        .record_activity(
            &who.actor(),
            &format!("location.recovery-key-{what}"),
            &format!("storagelocation/{name}"),
            &format!("{message} for location {name}"),
            None,
        )
        .await?;
    Ok(())
}

/// A location's recovery key, shown once.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct RecoveryKey {
    recovery_key: String,
    warning: &'static str,
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetKey {
    recovery_key: String,
}

/// Takes the recovery key of a location's existing repository (an imported
/// bucket); a key that does not open it changes nothing.
#[utoipa::path(put, operation_id = "setRecoveryKey", path = "/api/v1/storage-locations/{name}/recovery-key", tag = "storage", params(("name" = String, Path, description = "The location's name")),
    description = "Supplies the key of the bucket's existing repository (`update storagelocations`).",
    request_body = SetKey,
    responses((status = 204, description = "The key opens the repository and is kept")))]
async fn set_key(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: SetKey = super::authorized_body(
        &state,
        &who,
        Check::cluster("update", "storagelocations"),
        &body,
        "recovery key ({recoveryKey})",
    )
    .await?;
    let store = open_store(&state, &name).await?;
    volumes::set_key(&state.catalog, &store, &name, &request.recovery_key).await?;
    key_activity(&state, &who, &name, "set", "a recovery key was supplied").await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, operation_id = "checkStorageLocation", path = "/api/v1/storage-locations/{name}/check", tag = "storage", params(("name" = String, Path, description = "The location's name")),
    description = "Checks the location now (`update storagelocations`).",
    responses((status = 200, description = "The location with its availability", body = LocationView)))]
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
#[utoipa::path(delete, operation_id = "deleteStorageLocation", path = "/api/v1/storage-locations/{name}", tag = "storage", params(("name" = String, Path, description = "The location's name")),
    description = "Removes the location from Lifeboat; its objects stay in the bucket (`delete storagelocations`).",
    responses((status = 204, description = "Removed")))]
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
