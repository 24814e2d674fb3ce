//! `/api/v1/backups`: create, list, get (with progress), log, contents,
//! download, delete, and a progress stream (SSE).

use std::io::Read;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::backup::{self, BackupError, BackupSpec, archive};
use crate::catalog::{BackupFilter, BackupRecord};
use crate::storage::{StorageError, get_bytes};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/backups", get(list).post(create))
        .route("/api/v1/backups/{name}", get(describe).delete(remove))
        .route("/api/v1/backups/{name}/log", get(log))
        .route("/api/v1/backups/{name}/contents", get(contents))
        .route("/api/v1/backups/{name}/download", get(download))
        .route("/api/v1/backups/{name}/progress", get(progress))
        .route("/api/v1/backups/sync", axum::routing::post(sync))
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Catalog(c) => c.into(),
            BackupError::Invalid(_) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: e.to_string(),
            },
            BackupError::UnknownLocation(_) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: e.to_string(),
            },
            BackupError::NoCluster(_) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
            },
            BackupError::Storage(s) => s.into(),
            BackupError::InUse { .. } => ApiError {
                status: StatusCode::CONFLICT,
                message: e.to_string(),
            },
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        let status = match e {
            StorageError::NotFound { .. } => StatusCode::NOT_FOUND,
            StorageError::LocationNotOpen { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError {
            status,
            message: e.to_string(),
        }
    }
}

/// A backup's record and the store of its location.
async fn backup_store(
    state: &AppState,
    name: &str,
) -> Result<(BackupRecord, crate::storage::DynStore), ApiError> {
    let record = state.catalog.backup(name).await?;
    let store = state.locations.require(&record.storage_location)?;
    Ok((record, store))
}

/// A backup as the API shows it: the record with its spec parsed.
fn view(b: &BackupRecord) -> Value {
    let mut v = serde_json::to_value(b).unwrap_or_default();
    v["spec"] = serde_json::from_str(&b.spec).unwrap_or(Value::Null);
    v["missingFromStorage"] = json!(b.missing_from_storage != 0);
    v
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    name: String,
    #[serde(default)]
    spec: BackupSpec,
}

async fn create(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: CreateRequest = super::parse_body(&body, "backup")?;
    let client = state.cluster.as_ref().as_ref().ok().map(|c| &c.client);
    let (record, _) = backup::start(
        &state.catalog,
        &state.locations,
        client,
        &request.name,
        request.spec,
        None,
        "api",
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(view(&record))).into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    phase: Option<String>,
    schedule: Option<String>,
    namespace: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = BackupFilter {
        phase: q.phase,
        schedule: q.schedule,
        storage_location: None,
    };
    let items: Vec<Value> = state
        .catalog
        .backups(&filter)
        .await?
        .iter()
        .filter(|b| match &q.namespace {
            None => true,
            Some(ns) => {
                serde_json::from_str::<BackupSpec>(&b.spec).is_ok_and(|s| s.includes_namespace(ns))
            }
        })
        .map(view)
        .collect();
    Ok(Json(json!({"items": items})).into_response())
}

async fn describe(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (b, store) = backup_store(&state, &name).await?;
    let mut v = view(&b);
    v["progress"] = json!({
        "itemsDone": b.items_done, "itemsTotal": b.items_total, "bytesDone": b.bytes_done,
    });
    if let Ok(bytes) = get_bytes(store.as_ref(), &archive::key(&name, archive::MANIFEST_FILE)).await
    {
        v["manifest"] = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    }
    Ok(Json(v).into_response())
}

async fn log(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (_, store) = backup_store(&state, &name).await?;
    let compressed = get_bytes(store.as_ref(), &archive::key(&name, archive::LOG_FILE)).await?;
    let text = zstd::stream::decode_all(compressed.as_slice()).map_err(|e| ApiError {
        status: StatusCode::BAD_GATEWAY,
        message: format!("the log of backup {name} in storage is damaged: {e}"),
    })?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], text).into_response())
}

/// Blanks Secret values, keeping their keys.
pub fn redact(mut obj: Value) -> Value {
    if obj["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(map) = obj[field].as_object_mut() {
                for v in map.values_mut() {
                    *v = json!("<redacted>");
                }
            }
        }
        if let Some(annotations) = obj["metadata"]["annotations"].as_object_mut() {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    obj
}

#[derive(Debug, Deserialize)]
struct ContentsQuery {
    /// An entry path (`resources/pods/namespaces/a/p.json`): that object, redacted.
    path: Option<String>,
}

async fn contents(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ContentsQuery>,
) -> Result<Response, ApiError> {
    let (_, store) = backup_store(&state, &name).await?;
    let compressed = get_bytes(
        store.as_ref(),
        &archive::key(&name, archive::RESOURCES_FILE),
    )
    .await?;
    let wanted = q.path.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let decoder =
            zstd::stream::read::Decoder::new(compressed.as_slice()).map_err(|e| e.to_string())?;
        let mut tar = tar::Archive::new(decoder);
        let mut tree: std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<String, Vec<String>>,
        > = Default::default();
        for entry in tar.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let path = entry
                .path()
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .to_string();
            if let Some(w) = &wanted {
                if &path == w {
                    let mut data = String::new();
                    entry.read_to_string(&mut data).map_err(|e| e.to_string())?;
                    let obj: Value = serde_json::from_str(&data).map_err(|e| e.to_string())?;
                    return Ok(redact(obj));
                }
                continue;
            }
            if let Some((gr, ns, obj)) = archive::parse_entry_path(&path) {
                tree.entry(gr)
                    .or_default()
                    .entry(ns.unwrap_or_else(|| "(cluster)".into()))
                    .or_default()
                    .push(obj);
            }
        }
        if let Some(w) = wanted {
            return Err(format!("not found: {w}"));
        }
        Ok(json!({"resources": tree}))
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })?;
    match result {
        Ok(v) => Ok(Json(v).into_response()),
        Err(e) if e.starts_with("not found") => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: e,
        }),
        Err(e) => Err(ApiError {
            status: StatusCode::BAD_GATEWAY,
            message: format!("the archive of backup {name} could not be read: {e}"),
        }),
    }
}

async fn download(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (_, store) = backup_store(&state, &name).await?;
    let reader = store
        .get(&archive::key(&name, archive::RESOURCES_FILE), None)
        .await?;
    let stream = tokio_util::io::ReaderStream::new(reader);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}-resources.tar.zst\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    backup::delete(&state.catalog, &state.locations, &name, "api").await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn sync(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut reports = serde_json::Map::new();
    for (location, store) in state.locations.all() {
        let report = backup::sync(&state.catalog, &store, &location).await?;
        reports.insert(location, serde_json::to_value(report).unwrap_or_default());
    }
    Ok(Json(reports).into_response())
}

/// Server-sent events with the backup's progress until it finishes.
async fn progress(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.catalog.backup(&name).await?;
    Ok(super::progress_events(move || {
        let (state, name) = (state.clone(), name.clone());
        async move {
            let r = state.catalog.backup(&name).await.ok()?;
            Some((
                r.phase.clone(),
                json!({
                    "phase": r.phase, "itemsDone": r.items_done, "itemsTotal": r.items_total,
                    "bytesDone": r.bytes_done, "phaseReason": r.phase_reason,
                }),
            ))
        }
    }))
}
