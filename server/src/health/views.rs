//! What the health API shows of a namespace and of a pod, shaped from the
//! watched cluster state (the HTTP handlers add what the catalog knows).

use chrono::Utc;
use serde_json::{Value, json};

use super::model;
use super::summary;
use super::watch::ClusterState;

pub fn in_namespace<K: serde::Serialize + kube::Resource>(
    items: Vec<std::sync::Arc<K>>,
    ns: &str,
) -> Vec<Value> {
    let mut out = Vec::new();
    summary::each(items, summary::Scope::One(ns), |_, v| out.push(v));
    out
}

/// The newest events first, `limit` at most, those about `object` (kind, name) only if given.
pub fn recent_events(events: Vec<Value>, object: Option<(&str, &str)>, limit: usize) -> Vec<Value> {
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

/// A namespace's health, workloads, jobs, pods, claims, services, ingresses
/// and recent events; `None` when the cluster has no such namespace.
pub fn namespace(w: &ClusterState, name: &str) -> Option<Value> {
    let rolled = summary::roll_ups(w, summary::Scope::One(name)).namespaces;
    let (health, counts) = rolled.get(name)?;
    let now = Utc::now();
    let pods: Vec<_> = in_namespace(w.pods.state(), name)
        .iter()
        .map(|p| model::pod(p, now))
        .collect();
    let workloads: Vec<_> = [
        ("Deployment", in_namespace(w.deployments.state(), name)),
        ("StatefulSet", in_namespace(w.statefulsets.state(), name)),
        ("DaemonSet", in_namespace(w.daemonsets.state(), name)),
    ]
    .into_iter()
    .flat_map(|(kind, items)| {
        items.into_iter().map(move |mut v| {
            v["kind"] = json!(kind);
            model::workload(&v)
        })
    })
    .collect();
    let jobs: Vec<Value> = in_namespace(w.jobs.state(), name)
        .iter()
        .map(|j| json!({"name": j["metadata"]["name"], "succeeded": j["status"]["succeeded"].as_i64().unwrap_or(0),
                        "failed": j["status"]["failed"].as_i64().unwrap_or(0), "active": j["status"]["active"].as_i64().unwrap_or(0),
                        "completions": j["spec"]["completions"], "startTime": j["status"]["startTime"],
                        "completionTime": j["status"]["completionTime"], "health": model::job(j)}))
        .collect();
    let cronjobs: Vec<Value> = in_namespace(w.cronjobs.state(), name)
        .iter()
        .map(|c| json!({"name": c["metadata"]["name"], "schedule": c["spec"]["schedule"], "suspend": c["spec"]["suspend"] == true,
                        "lastScheduleTime": c["status"]["lastScheduleTime"], "lastSuccessfulTime": c["status"]["lastSuccessfulTime"],
                        "health": model::cronjob(c)}))
        .collect();
    let services: Vec<Value> = in_namespace(w.services.state(), name)
        .iter()
        .map(service)
        .collect();
    let ingresses: Vec<Value> = in_namespace(w.ingresses.state(), name)
        .iter()
        .map(ingress)
        .collect();
    let events = recent_events(in_namespace(w.events.state(), name), None, 50);
    let pvcs: Vec<Value> = in_namespace(w.pvcs.state(), name)
        .iter()
        .map(|c| json!({"name": c["metadata"]["name"], "phase": c["status"]["phase"], "volume": c["spec"]["volumeName"],
                        "storageClass": c["spec"]["storageClassName"], "health": model::pvc(c)}))
        .collect();
    Some(json!({
        "name": name, "health": health, "counts": counts,
        "workloads": workloads, "jobs": jobs, "cronJobs": cronjobs, "pods": pods, "persistentVolumeClaims": pvcs,
        "services": services, "ingresses": ingresses, "events": events,
    }))
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
/// Secrets only named), volumes, conditions, owner and recent events; `None`
/// when it is not in the namespace.
pub fn pod(w: &ClusterState, namespace: &str, name: &str) -> Option<Value> {
    let found = w.pods.state().into_iter().find(|p| {
        p.metadata.namespace.as_deref() == Some(namespace)
            && p.metadata.name.as_deref() == Some(name)
    })?;
    let p = serde_json::to_value(found.as_ref()).ok()?;
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
        in_namespace(w.events.state(), namespace),
        Some(("Pod", name)),
        50,
    );
    Some(json!({
        "name": name, "namespace": namespace,
        "summary": model::pod(&p, Utc::now()),
        "node": p["spec"]["nodeName"], "podIP": p["status"]["podIP"], "startTime": p["status"]["startTime"],
        "labels": p["metadata"]["labels"], "owner": owner_of(w, namespace, &p),
        "conditions": p["status"]["conditions"],
        "initContainers": containers("initContainers", "initContainerStatuses"),
        "containers": containers("containers", "containerStatuses"),
        "volumes": volumes, "events": events,
    }))
}
