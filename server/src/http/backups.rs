//! `/api/v1/backups`: create, list, get (with progress), log, contents,
//! download, delete, and a progress stream (SSE).

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::views::{BackupDetail, BackupProgress, BackupView, Items};
use super::{ApiError, AppState};
use crate::archive::{self, ArchiveError, Entry, EntryName};
use crate::auth::{Check, Principal};
use crate::backup::{self, BackupError, BackupPhase, BackupSpec};
use crate::catalog::{BackupFilter, BackupRecord};
use crate::schedule::ScheduleSpecExt;
use crate::selection::BackupSpecExt;
use crate::storage::StorageError;
use frontend::model::{BackupContents, CreateBackup};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(describe, remove))
        .routes(routes!(log))
        .routes(routes!(contents))
        .routes(routes!(download))
        .routes(routes!(verify))
        .routes(routes!(progress))
        .routes(routes!(sync))
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Catalog(c) => c.into(),
            BackupError::Invalid(_) => ApiError::invalid(e.to_string()),
            BackupError::UnknownLocation(_) => ApiError::invalid(e.to_string()),
            BackupError::NoCluster(_) => ApiError::unavailable(e.to_string()),
            BackupError::Storage(s) => s.into(),
            BackupError::InUse { .. } | BackupError::Locked { .. } => {
                ApiError::conflict(e.to_string())
            }
        }
    }
}

impl From<ArchiveError> for ApiError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::Storage(s) => s.into(),
            ArchiveError::Missing { ref source, .. } => ApiError {
                status: match source {
                    StorageError::NotFound { .. } => StatusCode::NOT_FOUND,
                    _ => StatusCode::BAD_GATEWAY,
                },
                message: e.to_string(),
            },
            // The backup may be fine; this install lacks (or has another) key.
            ArchiveError::KeyMissing { .. }
            | ArchiveError::Crypto {
                source: crate::archive::crypto::CryptoError::WrongKey { .. },
                ..
            } => ApiError::conflict(e.to_string()),
            // What is in storage is not a backup this server trusts.
            other => ApiError {
                status: StatusCode::BAD_GATEWAY,
                message: format!(
                    "refused: {other}. The backup in storage is damaged or was changed; restore from another backup"
                ),
            },
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        let status = match e {
            StorageError::NotFound { .. } => StatusCode::NOT_FOUND,
            StorageError::LocationNotOpen { .. } => StatusCode::SERVICE_UNAVAILABLE,
            StorageError::Locked { .. } => StatusCode::CONFLICT,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError {
            status,
            message: e.to_string(),
        }
    }
}

/// The namespaces a backup's record holds (`None`: cluster-wide), from its spec.
fn namespaces_of(record: &BackupRecord) -> Option<Vec<String>> {
    serde_json::from_str::<BackupSpec>(&record.spec)
        .ok()
        .and_then(|s| s.namespaces_concerned())
}

/// What `verb` on a backup needs: the verb on `backups` (or a subresource)
/// in every namespace it holds, or cluster-wide.
pub(super) fn checks_for(
    record: &BackupRecord,
    verb: &'static str,
    subresource: Option<&'static str>,
) -> Vec<Check> {
    Check::in_each(verb, "backups", namespaces_of(record).as_deref())
        .into_iter()
        .map(|c| match subresource {
            Some(sub) => c.with_subresource(sub),
            None => c,
        })
        .collect()
}

/// A backup's record and the store of its location, once `who` may `verb` it.
pub(super) async fn backup_store(
    state: &AppState,
    who: &Principal,
    name: &str,
    verb: &'static str,
    subresource: Option<&'static str>,
) -> Result<(BackupRecord, crate::storage::DynStore), ApiError> {
    let record = state.catalog.backup(name).await?;
    state
        .auth
        .require(who, &checks_for(&record, verb, subresource))
        .await?;
    let store = state.locations.require(&record.storage_location)?;
    Ok((record, store))
}

#[utoipa::path(post, operation_id = "createBackup", path = "/api/v1/backups", tag = "backups",
    description = "Starts a backup (`create backups` in each namespace it selects, or cluster-wide).",
    request_body = CreateBackup,
    responses((status = 202, description = "Started; follow /progress", body = BackupView)))]
async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut request: CreateBackup = super::parse_body(&body, "backup")?;
    if let Some(schedule) = &request.from_schedule {
        if request.spec != BackupSpec::default() {
            return Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message:
                    "give either spec or fromSchedule: a backup from a schedule takes its template"
                        .into(),
            });
        }
        let record = state.catalog.schedule(schedule).await?;
        let template = crate::schedule::spec::ScheduleSpec::from_record(&record)
            .map_err(crate::backup::BackupError::Invalid)?;
        request.spec = template.backup_template();
        if request.name.is_empty() {
            request.name = crate::schedule::spec::backup_name(schedule, chrono::Utc::now());
        }
    }
    let namespaces = request.spec.namespaces_concerned();
    state
        .auth
        .require(
            &who,
            &Check::in_each("create", "backups", namespaces.as_deref()),
        )
        .await?;
    let client = state.cluster.as_ref().as_ref().ok().map(|c| &c.client);
    let (record, _) = backup::start(
        &state.catalog,
        &state.locations,
        client,
        &request.name,
        request.spec,
        request.from_schedule.clone(),
        &who.actor(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(BackupView::from(&record))).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only backups in this phase (`Completed`, `Failed`, …).
    phase: Option<String>,
    /// Only the backups of this schedule.
    schedule: Option<String>,
    /// Only backups that hold this namespace.
    namespace: Option<String>,
}

/// The backups `who` may see (`get backups` in every namespace each holds).
#[utoipa::path(get, operation_id = "listBackups", path = "/api/v1/backups", tag = "backups", params(ListQuery),
    description = "The backups the caller may see (`get backups` in every namespace each holds).",
    responses((status = 200, description = "Newest first", body = Items<BackupView>)))]
async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = BackupFilter {
        phase: q.phase,
        schedule: q.schedule,
        storage_location: None,
    };
    let mut items: Vec<BackupView> = Vec::new();
    for b in state.catalog.backups(&filter).await? {
        let in_namespace = match &q.namespace {
            None => true,
            Some(ns) => {
                serde_json::from_str::<BackupSpec>(&b.spec).is_ok_and(|s| s.includes_namespace(ns))
            }
        };
        if in_namespace && state.auth.may_all(&who, &checks_for(&b, "get", None)).await {
            items.push(BackupView::from(&b));
        }
    }
    Ok(Json(Items { items }).into_response())
}

#[utoipa::path(get, operation_id = "getBackup", path = "/api/v1/backups/{name}", tag = "backups", params(("name" = String, Path, description = "The backup's name")),
    responses((status = 200, description = "The backup, its progress and its manifest", body = BackupDetail)))]
async fn describe(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (b, store) = backup_store(&state, &who, &name, "get", None).await?;
    let detail = BackupDetail {
        backup: BackupView::from(&b),
        progress: BackupProgress {
            items_done: b.items_done,
            items_total: b.items_total,
            bytes_done: b.bytes_done,
            volumes: crate::volumes::progress_of(&state.catalog.volume_tasks_of(&name).await?),
        },
        manifest: archive::read_manifest(store.as_ref(), &name).await.ok(),
    };
    Ok(Json(detail).into_response())
}

#[utoipa::path(get, operation_id = "getBackupLog", path = "/api/v1/backups/{name}/log", tag = "backups", params(("name" = String, Path, description = "The backup's name")),
    responses((status = 200, description = "Its log, one JSON object a line", body = String, content_type = "application/x-ndjson")))]
async fn log(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (_, store) = backup_store(&state, &who, &name, "get", None).await?;
    // A failed backup has a log but no manifest: then only the caps apply.
    let manifest = archive::read_manifest(store.as_ref(), &name).await.ok();
    let text = archive::read_log(store.as_ref(), &name, manifest.as_ref()).await?;
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ContentsQuery {
    /// An entry path (`resources/pods/namespaces/a/p.json`): that object, redacted.
    path: Option<String>,
}

/// What `contents` collects while the archive streams by: the tree of
/// entry names, or the one object asked for.
struct Contents {
    wanted: Option<String>,
    tree: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<String>>>,
    found: Option<Vec<u8>>,
}

impl archive::reader::Visitor for Contents {
    fn wants(&mut self, name: &EntryName) -> bool {
        match &self.wanted {
            Some(w) => *w == name.path,
            None => {
                self.tree
                    .entry(name.group_resource.clone())
                    .or_default()
                    .entry(name.namespace.clone().unwrap_or_else(|| "(cluster)".into()))
                    .or_default()
                    .push(name.name.clone());
                false
            }
        }
    }

    fn visit(&mut self, entry: Entry) -> Result<(), ArchiveError> {
        self.found = Some(entry.data);
        Ok(())
    }
}

#[utoipa::path(get, operation_id = "getBackupContents", path = "/api/v1/backups/{name}/contents", tag = "backups", params(("name" = String, Path, description = "The backup's name"), ContentsQuery),
    description = "What the archive holds: `{resources: {group-resource: {namespace: [names]}}}`, or with `path` that one object, Secret values redacted. The archive is verified as it is read.",
    responses((status = 200, description = "The tree (`BackupContents`), or with `path` the object as stored", body = serde_json::Value)))]
async fn contents(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(q): Query<ContentsQuery>,
) -> Result<Response, ApiError> {
    let (record, store) = backup_store(&state, &who, &name, "get", None).await?;
    let key = crate::volumes::archive_key(&state.catalog, &record.storage_location)
        .await
        .ok()
        .flatten();
    let manifest =
        archive::verify_manifest(store.as_ref(), &name, key.as_ref(), record.format_version)
            .await?;
    let visitor = Contents {
        wanted: q.path.clone(),
        tree: Default::default(),
        found: None,
    };
    let read =
        archive::read_resources(store.as_ref(), &name, &manifest, key.as_ref(), visitor).await?;
    match (q.path, read.found) {
        (None, _) => Ok(Json(BackupContents {
            resources: read.tree,
        })
        .into_response()),
        (Some(_), Some(data)) => {
            let obj: Value = serde_json::from_slice(&data).map_err(|e| ApiError {
                status: StatusCode::BAD_GATEWAY,
                message: format!(
                    "the archive of backup {name} holds an entry that is not JSON: {e}"
                ),
            })?;
            Ok(Json(redact(obj)).into_response())
        }
        (Some(path), None) => Err(ApiError::not_found(format!(
            "backup {name} has no entry {path}"
        ))),
    }
}

#[utoipa::path(get, operation_id = "downloadBackup", path = "/api/v1/backups/{name}/download", tag = "backups", params(("name" = String, Path, description = "The backup's name")),
    description = "The resource archive as stored (`get backups/download`: it carries Secrets).",
    responses((status = 200, description = "tar + zstd (+ age when encrypted)", body = Vec<u8>, content_type = "application/zstd")))]
async fn download(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    // An archive carries Secrets' values: downloading is its own permission.
    let (_, store) = backup_store(&state, &who, &name, "get", Some("download")).await?;
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

#[utoipa::path(delete, operation_id = "deleteBackup", path = "/api/v1/backups/{name}", tag = "backups", params(("name" = String, Path, description = "The backup's name")),
    description = "Deletes the backup from storage and the catalog; refused (409) while locked or in use.",
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let record = state.catalog.backup(&name).await?;
    state
        .auth
        .require(&who, &checks_for(&record, "delete", None))
        .await?;
    backup::delete(&state.catalog, &state.locations, &name, &who.actor()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/backups/{name}/verify` `{sample?}`: reads the backup back
/// from storage and checks everything (see `backup::verify`); the outcome is
/// recorded on the backup and answered. A backup that fails verification is
/// still a 200: the report says what is wrong.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerifyRequest {
    /// Read only a sample of the volume data: `10%`, `1/5`, or a size.
    sample: Option<String>,
}

#[utoipa::path(post, operation_id = "verifyBackup", path = "/api/v1/backups/{name}/verify", tag = "backups", params(("name" = String, Path, description = "The backup's name")),
    description = "Reads the backup back and checks everything (`create backups/verify`); a backup that fails is still a 200 with its problems.",
    request_body(content = Option<VerifyRequest>, description = "Optional: a sample of the volume data"),
    responses((status = 200, description = "What was checked and found", body = backup::verify::VerifyReport)))]
async fn verify(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: VerifyRequest = if body.is_empty() {
        VerifyRequest::default()
    } else {
        super::parse_body(&body, "verify request ({sample})")?
    };
    if let Some(sample) = &request.sample {
        sample
            .parse::<rustic_core::ReadSubsetOption>()
            .map_err(|e| ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!(
                    "sample `{sample}` is not a share of the volume data (`10%`, `1/5` or a size): {}",
                    e.display_log()
                ),
            })?;
    }
    let (record, _) = backup_store(&state, &who, &name, "create", Some("verify")).await?;
    if !crate::backup::BackupPhase::parse(&record.phase).is_some_and(|p| p.is_restorable()) {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!(
                "backup {name} is {}: only a Completed or PartiallyFailed backup has a manifest to verify",
                record.phase
            ),
        });
    }
    let report = backup::verify::verify(
        &state.catalog,
        &state.locations,
        &name,
        &who.actor(),
        request.sample,
    )
    .await?;
    Ok(Json(report).into_response())
}

/// Reads every location again: an administrator's action.
#[utoipa::path(post, operation_id = "syncBackups", path = "/api/v1/backups/sync", tag = "backups",
    description = "Reads every location again: imports backups found in storage, marks those missing (`update storagelocations`).",
    responses((status = 200, description = "Each location's report", body = std::collections::BTreeMap<String, backup::SyncReport>)))]
async fn sync(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("update", "storagelocations")])
        .await?;
    let mut reports = std::collections::BTreeMap::new();
    for (location, store) in state.locations.all() {
        let report = backup::sync(&state.catalog, &store, &location).await?;
        reports.insert(location, report);
    }
    Ok(Json(reports).into_response())
}

/// Server-sent events with the backup's progress until it finishes.
#[utoipa::path(get, operation_id = "followBackup", path = "/api/v1/backups/{name}/progress", tag = "backups", params(("name" = String, Path, description = "The backup's name")),
    description = "Server-sent events: `progress` every half second while it runs, then `finished`; each `{phase, itemsDone, itemsTotal, bytesDone, phaseReason, volumes}`.",
    responses((status = 200, description = "An event stream", body = String, content_type = "text/event-stream")))]
async fn progress(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    backup_store(&state, &who, &name, "get", None).await?;
    Ok(super::progress_events(move || {
        let (state, name) = (state.clone(), name.clone());
        async move {
            let r = state.catalog.backup(&name).await.ok()?;
            let volumes =
                crate::volumes::progress_of(&state.catalog.volume_tasks_of(&name).await.ok()?);
            Some((
                BackupPhase::parse(&r.phase).is_some_and(BackupPhase::is_running),
                json!({
                    "phase": r.phase, "itemsDone": r.items_done, "itemsTotal": r.items_total,
                    "bytesDone": r.bytes_done, "phaseReason": r.phase_reason,
                    "volumes": volumes,
                }),
            ))
        }
    }))
}
