//! Cluster health in the API: the summary, namespaces with roll-ups and backup
//! protection, one namespace in detail, and nodes.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::backup::BackupSpec;
use crate::health::summary::Scope;
use crate::health::views;
use crate::health::{summary, watch::ClusterState};
use crate::selection::BackupSpecExt;
use frontend::model::{
    ClaimBackup, ClusterSummary, Items, NamespaceBackup, NamespaceDetail, NamespaceRow, NodeDetail,
    NodeRow, PodDetail,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cluster_summary))
        .routes(routes!(namespaces))
        .routes(routes!(namespace))
        .routes(routes!(pod))
        .routes(routes!(nodes))
        .routes(routes!(node))
        .routes(routes!(stream))
}

fn watched(state: &AppState) -> Result<&ClusterState, ApiError> {
    state.health.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!(
            "no cluster is being watched: {}",
            state
                .cluster
                .as_ref()
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
    })
}

/// The namespaces a reader may see: all when they may list pods
/// cluster-wide, else each in which they may (one SubjectAccessReview per
/// namespace, cached like every other).
enum Visible {
    All,
    Among(BTreeSet<String>),
}

impl Visible {
    fn scope(&self) -> Scope<'_> {
        match self {
            Self::All => Scope::All,
            Self::Among(set) => Scope::Among(set),
        }
    }
}

async fn visible(state: &AppState, who: &Principal) -> Result<Visible, ApiError> {
    let list_pods = |ns: Option<&str>| Check::kubernetes("list", "", "pods", ns);
    if state.auth.may_all(who, &[list_pods(None)]).await {
        return Ok(Visible::All);
    }
    let mut seen = BTreeSet::new();
    for ns in watched(state)?.namespaces.state() {
        let Some(name) = ns.metadata.name.as_deref() else {
            continue;
        };
        if state.auth.may_all(who, &[list_pods(Some(name))]).await {
            seen.insert(name.to_string());
        }
    }
    Ok(Visible::Among(seen))
}

/// Refuses unless `who` may list pods in `namespace`.
async fn require_namespace(
    state: &AppState,
    who: &Principal,
    namespace: &str,
) -> Result<(), ApiError> {
    Ok(state
        .auth
        .require(
            who,
            &[Check::kubernetes("list", "", "pods", Some(namespace))],
        )
        .await?)
}

async fn may_see_nodes(state: &AppState, who: &Principal) -> bool {
    state
        .auth
        .may_all(who, &[Check::kubernetes("list", "", "nodes", None)])
        .await
}

#[utoipa::path(get, operation_id = "getClusterSummary", path = "/api/v1/cluster/summary", tag = "cluster",
    description = "The cluster's verdict, counts and what needs attention, limited to the namespaces (and nodes) the caller may list.",
    responses((status = 200, description = "The summary", body = ClusterSummary)))]
async fn cluster_summary(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    let w = watched(&state)?;
    let nodes = may_see_nodes(&state, &who).await;
    let mut summary = match visible(&state, &who).await? {
        // Everyone who sees everything shares one cached summary.
        Visible::All if nodes => summary::cluster(w),
        v => summary::cluster_for(w, v.scope(), nodes),
    };
    // The whole cluster's usage is the nodes': for those who may see nodes.
    if nodes {
        summary.usage = Some(views::usage_block(w, Some(w.usage.cluster())));
    }
    Ok(Json(summary).into_response())
}

#[utoipa::path(get, operation_id = "listNamespaces", path = "/api/v1/namespaces", tag = "cluster",
    description = "Namespaces the caller may list pods in, each with its health, counts and backup protection.",
    responses((status = 200, description = "Each namespace with its health, counts and protection", body = Items<NamespaceRow>)))]
async fn namespaces(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    let v = visible(&state, &who).await?;
    let rolled = summary::roll_ups(watched(&state)?, v.scope()).namespaces;
    let names: Vec<String> = rolled.keys().cloned().collect();
    let backups = state.catalog.backups(&Default::default()).await?;
    let protection =
        crate::health::protection::of_namespaces(&state.catalog, &backups, &names, Utc::now())
            .await?;
    let drills = state.catalog.drills(None).await?;
    let items: Vec<NamespaceRow> = rolled
        .into_iter()
        .zip(protection)
        .map(|((name, (health, counts)), (protection, last_backup))| {
            let restore_proven = crate::drill::proven(&drills, &name, Utc::now());
            NamespaceRow {
                name,
                health,
                counts,
                protection,
                last_backup,
                restore_proven,
            }
        })
        .collect();
    Ok(Json(Items { items }).into_response())
}

#[utoipa::path(get, operation_id = "getNamespace", path = "/api/v1/namespaces/{name}", tag = "cluster",
    params(("name" = String, Path, description = "The namespace")),
    description = "One namespace: workloads, pods, claims, events, protection and the backups that hold it.",
    responses((status = 200, description = "The namespace", body = NamespaceDetail)))]
async fn namespace(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    require_namespace(&state, &who, &name).await?;
    let Some(mut view) = views::namespace(watched(&state)?, &name) else {
        return Err(ApiError::not_found(format!(
            "namespace {name} is not in the cluster"
        )));
    };
    let all_backups = state.catalog.backups(&Default::default()).await?;
    let mut backups: Vec<NamespaceBackup> = Vec::new();
    for b in all_backups.iter().filter(|b| {
        serde_json::from_str::<BackupSpec>(&b.spec).is_ok_and(|s| s.includes_namespace(&name))
    }) {
        // Only the backups the reader may see.
        if state
            .auth
            .may_all(&who, &super::backups::checks_for(b, "get", None))
            .await
        {
            backups.push(NamespaceBackup {
                name: b.name.clone(),
                phase: b.phase.clone(),
                completed_at: b.completed_at.clone(),
                size_bytes: b.size_bytes,
            });
        }
    }
    let (protection, last) = crate::health::protection::of_namespaces(
        &state.catalog,
        &all_backups,
        std::slice::from_ref(&name),
        Utc::now(),
    )
    .await?
    .remove(0);
    // Each claim's newest volume backup among the backups the reader may see.
    let visible: std::collections::BTreeSet<&str> =
        backups.iter().map(|b| b.name.as_str()).collect();
    let mut last_data: std::collections::BTreeMap<String, ClaimBackup> = Default::default();
    for (backup, spec, at) in state.catalog.finished_volume_backups().await? {
        if !visible.contains(backup.as_str()) {
            continue;
        }
        if let Ok(spec) = serde_json::from_str::<crate::volumes::TaskSpec>(&spec)
            && spec.namespace == name
        {
            last_data
                .entry(spec.pvc)
                .or_insert(ClaimBackup { backup, at });
        }
    }
    for claim in &mut view.persistent_volume_claims {
        claim.last_backup = last_data.get(&claim.name).cloned();
    }
    view.protection = protection;
    view.restore_proven =
        crate::drill::proven(&state.catalog.drills(None).await?, &name, Utc::now());
    view.last_backup = last;
    view.backups = backups;
    Ok(Json(view).into_response())
}

/// One pod, as `views::pod` shapes it.
#[utoipa::path(get, operation_id = "getPod", path = "/api/v1/namespaces/{namespace}/pods/{name}", tag = "cluster",
    params(("namespace" = String, Path, description = "The pod's namespace"), ("name" = String, Path, description = "The pod")),
    description = "One pod: its health, containers and events.",
    responses((status = 200, description = "The pod", body = PodDetail)))]
async fn pod(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    require_namespace(&state, &who, &namespace).await?;
    match views::pod(watched(&state)?, &namespace, &name) {
        Some(view) => Ok(Json(view).into_response()),
        None => Err(ApiError::not_found(format!(
            "pod {name} is not in namespace {namespace}"
        ))),
    }
}

#[utoipa::path(get, operation_id = "listNodes", path = "/api/v1/nodes", tag = "cluster",
    description = "Nodes with their health (`list nodes` in the cluster).",
    responses((status = 200, description = "Each node with its health, capacity and usage", body = Items<NodeRow>)))]
async fn nodes(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::kubernetes("list", "", "nodes", None)])
        .await?;
    let items = views::nodes(watched(&state)?);
    Ok(Json(Items { items }).into_response())
}

#[utoipa::path(get, operation_id = "getNode", path = "/api/v1/nodes/{name}", tag = "cluster",
    params(("name" = String, Path, description = "The node")),
    description = "One node: conditions and pressure, capacity, allocatable, requested and used, taints, versions, cordon, its pods with their usage (`get nodes` in the cluster).",
    responses((status = 200, description = "The node", body = NodeDetail)))]
async fn node(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::kubernetes("get", "", "nodes", None)])
        .await?;
    let seen = visible(&state, &who).await?;
    match views::node(watched(&state)?, &name) {
        Some(mut view) => {
            // Its pods as far as the reader may list them.
            if let Visible::Among(namespaces) = &seen {
                view.pods
                    .retain(|p| namespaces.contains(&p.summary.namespace));
            }
            Ok(Json(view).into_response())
        }
        None => Err(ApiError::not_found(format!("there is no node {name}"))),
    }
}

/// Live changes as server-sent events (`change`), resumable with `Last-Event-ID`.
/// A client whose last id is no longer kept gets a `resync` event: fetch the
/// snapshots again, then follow the stream.
#[utoipa::path(get, operation_id = "followCluster", path = "/api/v1/stream", tag = "cluster",
    description = "Live changes as server-sent events (`change`, `resync`), resumable with `Last-Event-ID`.",
    responses((status = 200, description = "An event stream", body = String, content_type = "text/event-stream")))]
async fn stream(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt;
    let w = watched(&state)?;
    // What the reader may see, as of when the stream opened (a reconnect looks again).
    let visible = visible(&state, &who).await?;
    let nodes_too = may_see_nodes(&state, &who).await;
    let shown = move |c: &crate::health::watch::Change| match (&visible, c.namespace.as_deref()) {
        (Visible::All, Some(_)) => true,
        (Visible::Among(set), Some(ns)) => set.contains(ns),
        // Cluster-scoped: a namespace object is seen with its namespace; nodes and watch states with nodes.
        (_, None) if c.resource == "namespaces" => c.name.as_deref().is_some_and(|n| {
            matches!(&visible, Visible::All)
                || matches!(&visible, Visible::Among(set) if set.contains(n))
        }),
        (_, None) => nodes_too,
    };
    let last: Option<u64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (rx, backlog, resync) = {
        let changes = w.changes.lock().map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the change log is unavailable",
            )
        })?;
        // Subscribe first, under the same lock, so nothing falls between backlog and live.
        let rx = changes.subscribe();
        match last {
            None => (rx, Vec::new(), false),
            Some(id) => match changes.since(id) {
                Some(backlog) => (rx, backlog, false),
                None => (rx, Vec::new(), true),
            },
        }
    };
    let to_event = |c: &crate::health::watch::Change| {
        Event::default()
            .id(c.id.to_string())
            .event("change")
            .json_data(c)
            .unwrap_or_default()
    };
    let first: Vec<Event> = resync
        .then(|| {
            Event::default()
                .event("resync")
                .data("history no longer kept; fetch the snapshots again")
        })
        .into_iter()
        .chain(backlog.iter().filter(|c| shown(c)).map(to_event))
        .collect();
    let mut last_sent = backlog.last().map(|c| c.id).or(last).unwrap_or(0);
    let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |item| {
        let out = match item {
            Ok(c) if c.id > last_sent && !shown(&c) => {
                last_sent = c.id;
                None
            }
            Ok(c) if c.id > last_sent => {
                last_sent = c.id;
                Some(to_event(&c))
            }
            Ok(_) => None,
            Err(_) => Some(
                Event::default()
                    .event("resync")
                    .data("changes were missed; fetch the snapshots again"),
            ),
        };
        futures::future::ready(out)
    });
    let events = futures::stream::iter(first)
        .chain(live)
        .map(Ok::<_, std::convert::Infallible>);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
