//! `/api/v1/agent/…`: what node agents call, and nobody else.
//!
//! An agent is a principal that (1) may `update` `volumedata` in the
//! `lifeboat.io` group (the `lifeboat-node-agent` ClusterRole, bound to the
//! agent's ServiceAccount) and (2) signed in with a token bound to a pod on
//! a node (TokenReview's `authentication.kubernetes.io/node-name`). It sees
//! only its own node's tasks, and the repository of a location only while it
//! runs a task there. Agents read repository files and write packs,
//! indexes and snapshots, each checked against the SHA-256 its name states;
//! they never delete one (pruning runs on the server's leader).
//!
//! - `POST /api/v1/agent/work` `{node, version}`: the node's next task with
//!   its location's repository key (200), or nothing within a long poll (204).
//! - `POST /api/v1/agent/tasks/{id}/progress` `{bytesDone, bytesTotal}` → `{proceed}`.
//! - `POST /api/v1/agent/tasks/{id}/finish` `{result}` or `{error}`.
//! - `GET|HEAD|PUT /api/v1/agent/repository/{location}/volumes/…`, and
//!   `GET /api/v1/agent/repository/{location}?prefix=…` to list.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::io::{ReaderStream, StreamReader};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, AppState, parse_body};
use crate::auth::{Check, Principal, SignIn};
use crate::catalog::{VolumeTaskRecord, now};
use crate::storage::{ByteRange, ByteReader, ObjectMeta, validate_key};
use crate::volumes::agent::{
    Assignment, Finish, POLL_SECONDS, ProgressAnswer, ProgressReport, WorkRequest,
};
use crate::volumes::remote::{RemoteListPage, RemoteObject};
use crate::volumes::repo::{self, MAX_FILE_BYTES};
use crate::volumes::{TaskKind, TaskSpec};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(work))
        .routes(routes!(progress))
        .routes(routes!(finish))
        .routes(routes!(list))
}

/// The repository's files (`GET`, `HEAD`, `PUT` of
/// `/api/v1/agent/repository/{location}/{*key}`): a wildcard path that
/// OpenAPI cannot state, so not in the document (its description says so).
pub fn file_routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/agent/repository/{location}/{*key}",
        get(read).put(write),
    )
}

/// What an agent may do: `update` on `volumedata.lifeboat.io`.
pub fn agent_check() -> Check {
    Check::cluster("update", "volumedata")
}

fn forbidden(message: String) -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        message,
    }
}

/// The node `who` is the agent of, checked. With authentication turned off
/// the node the agent names is taken as is.
async fn agent_node(
    state: &AppState,
    who: &Principal,
    claimed: Option<&str>,
) -> Result<String, ApiError> {
    state.auth.require(who, &[agent_check()]).await?;
    if who.method == SignIn::Disabled {
        return claimed.map(str::to_string).ok_or_else(|| {
            forbidden("authentication is off; the agent must name its node".into())
        });
    }
    let Some(node) = who.node.clone() else {
        return Err(forbidden(format!(
            "`{}` may act as a node agent, but its token is not bound to a pod on a node: agents \
             sign in with their pod's projected ServiceAccount token (Kubernetes 1.30 or newer names \
             the node in it)",
            who.username
        )));
    };
    if let Some(claimed) = claimed
        && claimed != node
    {
        return Err(forbidden(format!(
            "this agent runs on node `{node}`; it may not work for node `{claimed}`"
        )));
    }
    Ok(node)
}

#[utoipa::path(post, operation_id = "agentWork", path = "/api/v1/agent/work", tag = "agent",
    description = "A node agent's long poll for its node's next volume task (agents only: `update volumedata` and a node-bound token).",
    request_body = WorkRequest,
    responses((status = 200, description = "A task and its location's key", body = Assignment), (status = 204, description = "Nothing to do within the poll")))]
async fn work(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: WorkRequest = parse_body(&body, "work request ({node, version})")?;
    let node = agent_node(&state, &who, Some(&request.node)).await?;
    let agent = who.username.clone();
    let deadline = Instant::now() + Duration::from_secs(POLL_SECONDS);
    // Once per poll: the staleness window (`AGENT_STALE`) is three polls long.
    state
        .catalog
        .agent_seen(&node, &agent, &request.version, &now())
        .await?;
    loop {
        if let Some(task) = state
            .catalog
            .claim_volume_task(&node, &agent, &now())
            .await?
        {
            match assignment(&state, task).await {
                Ok(assignment) => return Ok(Json(assignment).into_response()),
                Err((id, reason)) => {
                    state
                        .catalog
                        .finish_volume_task(&id, "failed", None, Some(&reason), &now())
                        .await?;
                    continue;
                }
            }
        }
        if Instant::now() >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A claimed task with its key, or (task id, why it cannot be handed out).
async fn assignment(
    state: &AppState,
    task: VolumeTaskRecord,
) -> Result<Assignment, (String, String)> {
    let fail = |reason: String| (task.id.clone(), reason);
    let spec: TaskSpec = serde_json::from_str(&task.spec)
        .map_err(|e| fail(format!("the task's spec does not read: {e}")))?;
    let kind = match task.kind.as_str() {
        "backup" => TaskKind::Backup,
        "restore" => TaskKind::Restore,
        other => return Err(fail(format!("unknown task kind `{other}`"))),
    };
    let key = state
        .catalog
        .repository_key(&task.location)
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| {
            fail(format!(
                "location `{}` has no volume repository key on this install; supply the recovery \
                 key with `lifeboat location set-key {}`",
                task.location, task.location
            ))
        })?;
    Ok(Assignment {
        id: task.id.clone(),
        kind,
        location: task.location.clone(),
        spec,
        key,
    })
}

/// The task `id`, if it is running on `who`'s node.
async fn own_running_task(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<Option<VolumeTaskRecord>, ApiError> {
    let task = state.catalog.volume_task(id).await?;
    let Some(task) = task else {
        return Err(ApiError::not_found(format!(
            "volume task `{id}` does not exist"
        )));
    };
    let node = agent_node(state, who, Some(&task.node)).await?;
    if task.node != node {
        return Err(forbidden(format!("volume task `{id}` is not this node's")));
    }
    Ok((task.state == "running").then_some(task))
}

#[utoipa::path(post, operation_id = "agentProgress", path = "/api/v1/agent/tasks/{id}/progress", tag = "agent",
    params(("id" = String, Path, description = "The task")),
    request_body = ProgressReport,
    responses((status = 200, description = "Whether to go on", body = ProgressAnswer)))]
async fn progress(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ProgressAnswer>, ApiError> {
    let report: ProgressReport = parse_body(&body, "progress report")?;
    let proceed = match own_running_task(&state, &who, &id).await? {
        Some(_) => {
            state
                .catalog
                .volume_task_progress(
                    &id,
                    i64::try_from(report.bytes_done).unwrap_or(i64::MAX),
                    i64::try_from(report.bytes_total).unwrap_or(i64::MAX),
                    &now(),
                )
                .await?
        }
        None => false,
    };
    Ok(Json(ProgressAnswer { proceed }))
}

#[utoipa::path(post, operation_id = "agentFinish", path = "/api/v1/agent/tasks/{id}/finish", tag = "agent",
    params(("id" = String, Path, description = "The task")),
    request_body = Finish,
    responses((status = 204, description = "Recorded")))]
async fn finish(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let end: Finish = parse_body(&body, "task result ({result} or {error})")?;
    if own_running_task(&state, &who, &id).await?.is_none() {
        return Err(ApiError::conflict(format!(
            "volume task `{id}` has already ended"
        )));
    }
    let (phase, result, error) = match (end.result, end.error) {
        (Some(result), None) => (
            "done",
            Some(serde_json::to_string(&result).map_err(|e| ApiError::invalid(e.to_string()))?),
            None,
        ),
        (None, Some(error)) => ("failed", None, Some(error)),
        _ => {
            return Err(ApiError::invalid(
                "a task ends with either `result` or `error`",
            ));
        }
    };
    state
        .catalog
        .finish_volume_task(&id, phase, result.as_deref(), error.as_deref(), &now())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The location's store, if `who` is the agent of a node running a task there.
async fn repository_store(
    state: &AppState,
    who: &Principal,
    location: &str,
) -> Result<crate::storage::DynStore, ApiError> {
    let node = agent_node(state, who, None)
        .await
        .or_else(|e| match who.method {
            // With authentication off, any caller is trusted (there is no node to check).
            SignIn::Disabled => Ok(String::new()),
            _ => Err(e),
        })?;
    if who.method != SignIn::Disabled
        && !state
            .catalog
            .agent_has_running_task(&node, location)
            .await?
    {
        return Err(forbidden(format!(
            "node `{node}` runs no volume task for location `{location}`, so its agent may not \
             reach that repository"
        )));
    }
    Ok(state.locations.require(location)?)
}

fn repository_key(key: &str) -> Result<String, ApiError> {
    let invalid = |message: String| ApiError {
        status: StatusCode::BAD_REQUEST,
        message,
    };
    if !key.starts_with(repo::PREFIX) {
        return Err(invalid(format!(
            "agents reach only the volume repository (`{}…`), not `{key}`",
            repo::PREFIX
        )));
    }
    validate_key(key).map_err(|e| invalid(e.to_string()))?;
    Ok(key.to_string())
}

/// What agents may write: restic's packs, indexes and snapshots, each named
/// by the SHA-256 of its content (returned, as hex). The config and key files
/// are the server's alone.
fn content_named(key: &str) -> Result<String, ApiError> {
    let rest = key.strip_prefix(repo::PREFIX).unwrap_or(key);
    let parts: Vec<&str> = rest.split('/').collect();
    let name = match parts.as_slice() {
        ["data", fan, name] if name.len() == 64 && name.starts_with(fan) && fan.len() == 2 => *name,
        ["index" | "snapshots", name] => *name,
        _ => {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "agents write only packs, indexes and snapshots of the repository, not `{key}`"
                ),
            });
        }
    };
    if name.len() != 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{key}` is not named by a SHA-256 in lower-case hex"),
        ));
    }
    Ok(name.to_string())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Files under this prefix (`volumes/…`).
    prefix: String,
    /// Where the previous page ended.
    continuation: Option<String>,
    /// At most this many.
    max: Option<usize>,
}

#[utoipa::path(get, operation_id = "agentListRepository", path = "/api/v1/agent/repository/{location}", tag = "agent",
    params(("location" = String, Path, description = "The storage location"), ListQuery),
    description = "Lists the location's volume repository files under `prefix`, while the agent runs a task there.",
    responses((status = 200, description = "A page", body = RemoteListPage)))]
async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(location): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<RemoteListPage>, ApiError> {
    let store = repository_store(&state, &who, &location).await?;
    if !query.prefix.starts_with(repo::PREFIX) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("agents list only under `{}`", repo::PREFIX),
        ));
    }
    let page = store
        .list(
            &query.prefix,
            query.continuation,
            query.max.unwrap_or(1000).clamp(1, 1000),
        )
        .await?;
    Ok(Json(RemoteListPage {
        objects: page
            .objects
            .into_iter()
            .map(|o| RemoteObject {
                key: o.key,
                size: o.size,
            })
            .collect(),
        next: page.next,
    }))
}

/// `bytes=a-b` or `bytes=a-`: the one range form the agent sends.
fn parse_range(headers: &HeaderMap) -> Result<Option<ByteRange>, ApiError> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "only `Range: bytes=start-end` is supported",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let (start, end) = text
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let start: u64 = start.parse().map_err(|_| bad())?;
    let end = match end {
        "" => None,
        end => Some(end.parse::<u64>().map_err(|_| bad())?.saturating_add(1)),
    };
    Ok(Some(ByteRange { start, end }))
}

async fn read(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((location, key)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store = repository_store(&state, &who, &location).await?;
    let key = repository_key(&key)?;
    if method == Method::HEAD {
        let meta = store.head(&key).await?;
        return Ok((
            [(header::CONTENT_LENGTH, meta.size.to_string())],
            Body::empty(),
        )
            .into_response());
    }
    let range = parse_range(&headers)?;
    let reader = store.get(&key, range).await?;
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    Ok((status, Body::from_stream(ReaderStream::new(reader))).into_response())
}

async fn write(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((location, key)): Path<(String, String)>,
    body: Body,
) -> Result<Json<RemoteObject>, ApiError> {
    let store = repository_store(&state, &who, &location).await?;
    let key = repository_key(&key)?;
    let named = content_named(&key)?;
    // Repository files are named by their content's hash and written once:
    // an existing one stays as it is.
    if let Ok(meta) = store.head(&key).await {
        return Ok(Json(RemoteObject {
            key: meta.key,
            size: meta.size,
        }));
    }
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
    let hashing = hasher.clone();
    let stream = body
        .into_data_stream()
        .map_err(std::io::Error::other)
        .map_ok(move |chunk| {
            if let Ok(mut h) = hashing.lock() {
                h.update(&chunk);
            }
            chunk
        });
    let capped = StreamReader::new(stream).take(MAX_FILE_BYTES);
    let reader: ByteReader = Box::pin(capped);
    let ObjectMeta { key, size, .. } = store.put(&key, reader).await?;
    if size >= MAX_FILE_BYTES {
        let _ = store.delete(&key).await;
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("repository files are at most {MAX_FILE_BYTES} bytes"),
        ));
    }
    let digest = hasher
        .lock()
        .map(|h| hex::encode(h.clone().finalize()))
        .unwrap_or_default();
    if digest != named {
        // Nothing may sit under a name its content does not hash to: a later
        // writer of the true content would keep this one (write-once).
        let _ = store.delete(&key).await;
        tracing::warn!(%location, %key, agent = %who.username, "an agent wrote a repository file whose content does not match its name; removed");
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "the content of `{key}` hashes to {digest}, not to its name; the file was not kept"
            ),
        });
    }
    tracing::debug!(%location, %key, size, "agent wrote a repository file");
    Ok(Json(RemoteObject { key, size }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1a9c0e5b7d2468ace0135790bdf2468ace0135790bdf2468ace0135790bdf2";

    #[test]
    fn agents_write_only_content_named_packs_indexes_and_snapshots() {
        for key in [
            format!("volumes/data/3f/{ID}"),
            format!("volumes/index/{ID}"),
            format!("volumes/snapshots/{ID}"),
        ] {
            assert_eq!(content_named(&key).map_err(|e| e.message), Ok(ID.into()));
        }
        for (key, status) in [
            ("volumes/config".to_string(), StatusCode::FORBIDDEN),
            (format!("volumes/keys/{ID}"), StatusCode::FORBIDDEN),
            (format!("volumes/locks/{ID}"), StatusCode::FORBIDDEN),
            // The fan-out directory must be the name's first two digits.
            (format!("volumes/data/00/{ID}"), StatusCode::FORBIDDEN),
            (format!("volumes/data/3f/x/{ID}"), StatusCode::FORBIDDEN),
            (
                format!("volumes/index/{}", ID.to_uppercase()),
                StatusCode::BAD_REQUEST,
            ),
            ("volumes/snapshots/abc".to_string(), StatusCode::BAD_REQUEST),
        ] {
            let err = content_named(&key).expect_err(&key);
            assert_eq!(err.status, status, "{key}: {}", err.message);
        }
    }
}
