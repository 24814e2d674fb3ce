//! `GET /api/v1/namespaces/{namespace}/workloads/{kind}/{name}`: one
//! Deployment, StatefulSet or DaemonSet: its counts and conditions, its
//! rollout history (ReplicaSets' revisions for a Deployment,
//! ControllerRevisions otherwise, each with its images), its pods, its
//! events, and the backups that hold it.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use kube::api::{DynamicObject, ListParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::backup::{BackupPhase, BackupSpec};
use crate::health::{model, summary, views};
use crate::selection::BackupSpecExt;
use frontend::model::{
    ContainerImage, NamespaceBackup, PodSummary, Revision, Rollout, WorkloadDetail,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(workload))
}

/// The workload kinds this page knows, by their plural.
fn kind_of(plural: &str) -> Option<&'static str> {
    match plural {
        "deployments" => Some("Deployment"),
        "statefulsets" => Some("StatefulSet"),
        "daemonsets" => Some("DaemonSet"),
        _ => None,
    }
}

/// `matchLabels` as a label selector (`app=web,tier=front`).
fn selector_of(w: &Value) -> String {
    w["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn images(template: &Value) -> Vec<ContainerImage> {
    template["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| ContainerImage {
            container: c["name"].as_str().map(String::from),
            image: c["image"].as_str().map(String::from),
        })
        .collect()
}

/// The workload's revisions, newest first, read from the cluster now
/// (ReplicaSets for a Deployment, ControllerRevisions otherwise).
async fn revisions(
    client: &kube::Client,
    namespace: &str,
    kind: &str,
    w: &Value,
) -> Result<Vec<Revision>, kube::Error> {
    let (resource, plural, k) = if kind == "Deployment" {
        ("apps/v1", "replicasets", "ReplicaSet")
    } else {
        ("apps/v1", "controllerrevisions", "ControllerRevision")
    };
    let ar = ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: resource.into(),
        kind: k.into(),
        plural: plural.into(),
    };
    let api = kube::Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &ar);
    let selector = selector_of(w);
    let listed = api
        // A controller keeps 10 old revisions by default; a page of 500 is plenty.
        .list(&ListParams::default().labels(&selector).limit(500))
        .await?;
    let uid = w["metadata"]["uid"].as_str().unwrap_or_default();
    let mut out: Vec<Revision> = listed
        .items
        .into_iter()
        .filter(|o| {
            o.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid)
        })
        .map(|o| {
            let v = serde_json::to_value(&o).unwrap_or_default();
            let (revision, template, replicas) = if kind == "Deployment" {
                (
                    v["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                        .as_str()
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0),
                    v["spec"]["template"].clone(),
                    v["status"]["replicas"].as_i64(),
                )
            } else {
                (
                    v["revision"].as_i64().unwrap_or(0),
                    v["data"]["spec"]["template"].clone(),
                    None,
                )
            };
            Revision {
                revision,
                name: v["metadata"]["name"].as_str().map(String::from),
                created_at: v["metadata"]["creationTimestamp"]
                    .as_str()
                    .map(String::from),
                replicas,
                images: images(&template),
            }
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.revision));
    Ok(out)
}

#[utoipa::path(get, operation_id = "getWorkload",
    path = "/api/v1/namespaces/{namespace}/workloads/{kind}/{name}", tag = "cluster",
    params(
        ("namespace" = String, Path, description = "The namespace"),
        ("kind" = String, Path, description = "`deployments`, `statefulsets` or `daemonsets`"),
        ("name" = String, Path, description = "The workload"),
    ),
    description = "One workload: counts, conditions, rollout history with images, pods, events, and the backups that hold it (`list pods` in the namespace, as its page).",
    responses((status = 200, description = "The workload", body = WorkloadDetail)))]
async fn workload(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((namespace, plural, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let Some(kind) = kind_of(&plural) else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "{plural} is not a workload kind this page shows: deployments, statefulsets or daemonsets"
            ),
        });
    };
    state
        .auth
        .require(
            &who,
            &[Check::kubernetes("list", "", "pods", Some(&namespace))],
        )
        .await?;
    let w = state
        .health
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("no cluster is being watched"))?;
    let found: Option<Value> = match kind {
        "Deployment" => summary_of(w.deployments.state(), &namespace, &name),
        "StatefulSet" => summary_of(w.statefulsets.state(), &namespace, &name),
        _ => summary_of(w.daemonsets.state(), &namespace, &name),
    };
    let Some(mut obj) = found else {
        return Err(ApiError::not_found(format!(
            "there is no {kind} {name} in namespace {namespace}"
        )));
    };
    obj["kind"] = json!(kind);
    let now = Utc::now();
    let selector = obj["spec"]["selector"]["matchLabels"].clone();
    let pods: Vec<PodSummary> = views::in_namespace(w.pods.state(), &namespace)
        .into_iter()
        .filter(|p| {
            selector.as_object().is_some_and(|m| {
                !m.is_empty() && m.iter().all(|(k, v)| p["metadata"]["labels"][k] == *v)
            })
        })
        .map(|p| model::pod(&p, now))
        .collect();
    let events = views::recent_events(
        views::in_namespace(w.events.state(), &namespace),
        Some((kind, &name)),
        50,
    );
    let rollout = match state.cluster.as_ref() {
        Ok(cluster) => match revisions(&cluster.client, &namespace, kind, &obj).await {
            Ok(revisions) => Rollout {
                revisions,
                error: None,
            },
            Err(e) => Rollout {
                revisions: Vec::new(),
                error: Some(format!("the rollout history could not be read: {e}")),
            },
        },
        Err(e) => Rollout {
            revisions: Vec::new(),
            error: Some(e.to_string()),
        },
    };
    let group_resource = format!("{plural}.apps");
    let backups: Vec<NamespaceBackup> = state
        .catalog
        .backups(&Default::default())
        .await?
        .iter()
        .filter(|b| BackupPhase::parse(&b.phase).is_some_and(|p| p.is_restorable()))
        .filter(|b| {
            serde_json::from_str::<BackupSpec>(&b.spec).is_ok_and(|s| {
                s.includes_namespace(&namespace) && s.includes_resource(&group_resource)
            })
        })
        .map(|b| NamespaceBackup {
            name: b.name.clone(),
            phase: b.phase.clone(),
            completed_at: b.completed_at.clone(),
            size_bytes: b.size_bytes,
        })
        .collect();
    // What is wrong with it, as the namespace's verdict groups it.
    let me = format!("{namespace}/{name}");
    let causes: Vec<_> = summary::verdict(w, summary::Scope::One(&namespace), false)
        .groups
        .into_iter()
        .filter(|g| g.kind == kind && g.subjects.contains(&me))
        .collect();
    Ok(Json(WorkloadDetail {
        kind: kind.to_string(),
        namespace,
        name,
        summary: model::workload(&obj),
        conditions: serde_json::from_value(obj["status"]["conditions"].clone()).unwrap_or_default(),
        images: images(&obj["spec"]["template"]),
        selector: serde_json::from_value(selector).unwrap_or_default(),
        rollout,
        pods,
        events,
        backups,
        causes,
    })
    .into_response())
}

fn summary_of<K: serde::Serialize + kube::Resource>(
    items: Vec<std::sync::Arc<K>>,
    namespace: &str,
    name: &str,
) -> Option<Value> {
    items
        .into_iter()
        .find(|o| {
            o.meta().namespace.as_deref() == Some(namespace)
                && o.meta().name.as_deref() == Some(name)
        })
        .and_then(|o| serde_json::to_value(o.as_ref()).ok())
}
