//! Cluster health in the API: the summary, namespaces with roll-ups and backup
//! protection, one namespace in detail, and nodes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use chrono::Utc;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::backup::BackupSpec;
use crate::health::model;
use crate::health::{summary, watch::ClusterState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cluster/summary", get(cluster_summary))
        .route("/api/v1/namespaces", get(namespaces))
        .route("/api/v1/namespaces/{name}", get(namespace))
        .route("/api/v1/namespaces/{namespace}/pods/{name}", get(pod))
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/stream", get(stream))
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
                .cloned()
                .unwrap_or_default()
        ),
    })
}

async fn cluster_summary(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(summary::cluster(watched(&state)?)).into_response())
}

async fn namespaces(State(state): State<AppState>) -> Result<Response, ApiError> {
    let rolled = summary::roll_ups(watched(&state)?, None).namespaces;
    let names: Vec<String> = rolled.keys().cloned().collect();
    let backups = state.catalog.backups(&Default::default()).await?;
    let protection =
        crate::health::protection::of_namespaces(&state.catalog, &backups, &names, Utc::now())
            .await?;
    let items: Vec<Value> = rolled
        .into_iter()
        .zip(protection)
        .map(|((name, (health, counts)), (p, last))| {
            json!({"name": name, "health": health, "counts": counts, "protection": p, "lastBackup": last})
        })
        .collect();
    Ok(Json(json!({"items": items})).into_response())
}

fn in_namespace<K: serde::Serialize + kube::Resource>(
    items: Vec<std::sync::Arc<K>>,
    ns: &str,
) -> Vec<Value> {
    let mut out = Vec::new();
    summary::each(items, Some(ns), |_, v| out.push(v));
    out
}

/// The newest events first, `limit` at most, those about `object` (kind, name) only if given.
fn recent_events(events: Vec<Value>, object: Option<(&str, &str)>, limit: usize) -> Vec<Value> {
    let mut shown: Vec<Value> = events
        .iter()
        .filter(|e| {
            object.is_none_or(|(kind, name)| {
                e["involvedObject"]["kind"] == kind && e["involvedObject"]["name"] == name
            })
        })
        .map(model::event)
        .collect();
    model::newest_first(&mut shown, limit);
    shown
}

fn service(s: &Value) -> Value {
    json!({"name": s["metadata"]["name"], "type": s["spec"]["type"], "clusterIP": s["spec"]["clusterIP"],
           "ports": s["spec"]["ports"], "selector": s["spec"]["selector"],
           "loadBalancer": s["status"]["loadBalancer"]["ingress"]})
}

fn ingress(i: &Value) -> Value {
    let rules: Vec<Value> = i["spec"]["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .flat_map(|r| {
                    let host = r["host"].clone();
                    r["http"]["paths"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |p| {
                            json!({"host": host, "path": p["path"],
                                   "service": p["backend"]["service"]["name"],
                                   "port": p["backend"]["service"]["port"]})
                        })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({"name": i["metadata"]["name"], "class": i["spec"]["ingressClassName"], "rules": rules,
           "tls": i["spec"]["tls"], "address": i["status"]["loadBalancer"]["ingress"]})
}

async fn namespace(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let w = watched(&state)?;
    let rolled = summary::roll_ups(w, Some(&name)).namespaces;
    let Some((health, counts)) = rolled.get(&name) else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("namespace {name} is not in the cluster"),
        });
    };
    let now = Utc::now();
    let pods: Vec<_> = in_namespace(w.pods.state(), &name)
        .iter()
        .map(|p| model::pod(p, now))
        .collect();
    let workloads: Vec<_> = [
        ("Deployment", in_namespace(w.deployments.state(), &name)),
        ("StatefulSet", in_namespace(w.statefulsets.state(), &name)),
        ("DaemonSet", in_namespace(w.daemonsets.state(), &name)),
    ]
    .into_iter()
    .flat_map(|(kind, items)| {
        items.into_iter().map(move |mut v| {
            v["kind"] = json!(kind);
            model::workload(&v)
        })
    })
    .collect();
    let jobs: Vec<Value> = in_namespace(w.jobs.state(), &name)
        .iter()
        .map(|j| json!({"name": j["metadata"]["name"], "succeeded": j["status"]["succeeded"].as_i64().unwrap_or(0),
                        "failed": j["status"]["failed"].as_i64().unwrap_or(0), "active": j["status"]["active"].as_i64().unwrap_or(0),
                        "completions": j["spec"]["completions"], "startTime": j["status"]["startTime"],
                        "completionTime": j["status"]["completionTime"], "health": model::job(j)}))
        .collect();
    let cronjobs: Vec<Value> = in_namespace(w.cronjobs.state(), &name)
        .iter()
        .map(|c| json!({"name": c["metadata"]["name"], "schedule": c["spec"]["schedule"], "suspend": c["spec"]["suspend"] == true,
                        "lastScheduleTime": c["status"]["lastScheduleTime"], "lastSuccessfulTime": c["status"]["lastSuccessfulTime"],
                        "health": model::cronjob(c)}))
        .collect();
    let services: Vec<Value> = in_namespace(w.services.state(), &name)
        .iter()
        .map(service)
        .collect();
    let ingresses: Vec<Value> = in_namespace(w.ingresses.state(), &name)
        .iter()
        .map(ingress)
        .collect();
    let events = recent_events(in_namespace(w.events.state(), &name), None, 50);
    let pvcs: Vec<Value> = in_namespace(w.pvcs.state(), &name)
        .iter()
        .map(|c| json!({"name": c["metadata"]["name"], "phase": c["status"]["phase"], "volume": c["spec"]["volumeName"],
                        "storageClass": c["spec"]["storageClassName"], "health": model::pvc(c)}))
        .collect();
    let all_backups = state.catalog.backups(&Default::default()).await?;
    let backups: Vec<Value> = all_backups
        .iter()
        .filter(|b| serde_json::from_str::<BackupSpec>(&b.spec).is_ok_and(|s| s.includes_namespace(&name)))
        .map(|b| json!({"name": b.name, "phase": b.phase, "completedAt": b.completed_at, "sizeBytes": b.size_bytes}))
        .collect();
    let (protection, last) = crate::health::protection::of_namespaces(
        &state.catalog,
        &all_backups,
        std::slice::from_ref(&name),
        Utc::now(),
    )
    .await?
    .remove(0);
    Ok(Json(json!({
        "name": name, "health": health, "counts": counts, "protection": protection, "lastBackup": last,
        "workloads": workloads, "jobs": jobs, "cronJobs": cronjobs, "pods": pods, "persistentVolumeClaims": pvcs,
        "services": services, "ingresses": ingresses, "events": events, "backups": backups,
    }))
    .into_response())
}

/// The controller a pod belongs to, through its ReplicaSet to the Deployment.
fn owner_of(w: &ClusterState, namespace: &str, pod: &Value) -> Value {
    let Some(owner) = pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|r| r["controller"] == true))
    else {
        return Value::Null;
    };
    if owner["kind"] == "ReplicaSet"
        && let Some(rs) = w.replicasets.state().iter().find(|rs| {
            rs.metadata.namespace.as_deref() == Some(namespace)
                && owner["name"] == rs.metadata.name.as_deref().unwrap_or_default()
        })
        && let Some(deployment) = rs
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true) && r.kind == "Deployment")
    {
        return json!({"kind": "Deployment", "name": deployment.name, "via": {"kind": "ReplicaSet", "name": owner["name"]}});
    }
    json!({"kind": owner["kind"], "name": owner["name"]})
}

/// One pod: its containers with their states and environment (values from
/// Secrets only named), volumes, conditions, owner and recent events.
async fn pod(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let w = watched(&state)?;
    let Some(found) = w.pods.state().into_iter().find(|p| {
        p.metadata.namespace.as_deref() == Some(namespace.as_str())
            && p.metadata.name.as_deref() == Some(name.as_str())
    }) else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("pod {name} is not in namespace {namespace}"),
        });
    };
    let p = serde_json::to_value(found.as_ref()).map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("pod {name} could not be read: {e}"),
    })?;
    let containers = |spec_key: &str, status_key: &str| -> Vec<Value> {
        let statuses = p["status"][status_key]
            .as_array()
            .cloned()
            .unwrap_or_default();
        p["spec"][spec_key]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| model::container(c, statuses.iter().find(|s| s["name"] == c["name"])))
            .collect()
    };
    let volumes: Vec<Value> = p["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let source = if !v["persistentVolumeClaim"].is_null() {
                json!({"persistentVolumeClaim": v["persistentVolumeClaim"]["claimName"]})
            } else if !v["secret"].is_null() {
                json!({"secret": v["secret"]["secretName"]})
            } else if !v["configMap"].is_null() {
                json!({"configMap": v["configMap"]["name"]})
            } else if !v["emptyDir"].is_null() {
                json!({"emptyDir": {}})
            } else {
                json!({"other": v.as_object().and_then(|o| o.keys().find(|k| *k != "name")).cloned()})
            };
            json!({"name": v["name"], "source": source})
        })
        .collect();
    let events = recent_events(
        in_namespace(w.events.state(), &namespace),
        Some(("Pod", &name)),
        50,
    );
    Ok(Json(json!({
        "name": name, "namespace": namespace,
        "summary": model::pod(&p, Utc::now()),
        "node": p["spec"]["nodeName"], "podIP": p["status"]["podIP"], "startTime": p["status"]["startTime"],
        "labels": p["metadata"]["labels"], "owner": owner_of(w, &namespace, &p),
        "conditions": p["status"]["conditions"],
        "initContainers": containers("initContainers", "initContainerStatuses"),
        "containers": containers("containers", "containerStatuses"),
        "volumes": volumes, "events": events,
    }))
    .into_response())
}

async fn nodes(State(state): State<AppState>) -> Result<Response, ApiError> {
    let items: Vec<Value> = watched(&state)?
        .nodes
        .state()
        .iter()
        .filter_map(|n| serde_json::to_value(n.as_ref()).ok())
        .map(|n| {
            json!({"name": n["metadata"]["name"], "health": model::node(&n), "capacity": n["status"]["capacity"],
                   "kubeletVersion": n["status"]["nodeInfo"]["kubeletVersion"], "unschedulable": n["spec"]["unschedulable"]})
        })
        .collect();
    Ok(Json(json!({"items": items})).into_response())
}

/// Live changes as server-sent events (`change`), resumable with `Last-Event-ID`.
/// A client whose last id is no longer kept gets a `resync` event: fetch the
/// snapshots again, then follow the stream.
async fn stream(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt;
    let w = watched(&state)?;
    let last: Option<u64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (rx, backlog, resync) = {
        let changes = w.changes.lock().map_err(|_| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the change log is unavailable".into(),
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
        .chain(backlog.iter().map(to_event))
        .collect();
    let mut last_sent = backlog.last().map(|c| c.id).or(last).unwrap_or(0);
    let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |item| {
        let out = match item {
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
