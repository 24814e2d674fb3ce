//! What the health API shows of a namespace and of a pod, shaped from the
//! watched cluster state (the HTTP handlers add what the catalog knows).

use chrono::Utc;
use serde_json::{Value, json};

use super::model;
use super::summary;
use super::usage;
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
        "usage": usage_block(w, w.usage.namespace(name)),
        "verdict": summary::verdict(w, summary::Scope::One(name), false),
    }))
}

/// A series of usage readings as the API shows it, with whether the cluster
/// serves the metrics API at all (and what to do when it does not).
pub fn usage_block(w: &ClusterState, series: Option<usage::Series>) -> Value {
    let latest = series.as_ref().and_then(usage::Series::latest);
    json!({
        "availability": w.usage.availability(),
        "cpuMillicores": latest.map(|l| l.cpu_m),
        "memoryBytes": latest.map(|l| u64::from(l.mem_kib) * 1024),
        "history": series.map(|s| s.samples()).unwrap_or_default(),
    })
}

/// CPU (millicores) and memory (bytes) the running pods request, by node.
fn requested_by_node(w: &ClusterState) -> std::collections::HashMap<String, (u64, u64)> {
    let mut out: std::collections::HashMap<String, (f64, f64)> = Default::default();
    for pod in w.pods.state() {
        let Some(spec) = pod.spec.as_ref() else {
            continue;
        };
        let finished = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| p == "Succeeded" || p == "Failed");
        let Some(node) = spec.node_name.as_ref().filter(|_| !finished) else {
            continue;
        };
        let total = out.entry(node.clone()).or_default();
        for c in &spec.containers {
            let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            let get = |name: &str| {
                requests
                    .and_then(|r| r.get(name))
                    .and_then(usage::quantity)
                    .unwrap_or(0.0)
            };
            total.0 += get("cpu") * 1000.0;
            total.1 += get("memory");
        }
    }
    out.into_iter()
        .map(|(node, (cpu, memory))| (node, (cpu.round() as u64, memory.round() as u64)))
        .collect()
}

/// A node's capacity as the API shows it: allocatable, requested and used.
fn node_resources(w: &ClusterState, n: &Value, requested: (u64, u64)) -> Value {
    let name = n["metadata"]["name"].as_str().unwrap_or_default();
    let amount = |v: &Value, cores: bool| {
        v.as_str().and_then(usage::quantity).map(|q| {
            if cores {
                (q * 1000.0).round() as u64
            } else {
                q as u64
            }
        })
    };
    let (cpu, memory) = requested;
    json!({
        "allocatable": {"cpuMillicores": amount(&n["status"]["allocatable"]["cpu"], true),
                        "memoryBytes": amount(&n["status"]["allocatable"]["memory"], false),
                        "pods": n["status"]["allocatable"]["pods"]},
        "requested": {"cpuMillicores": cpu, "memoryBytes": memory},
        "usage": usage_block(w, w.usage.node(name)),
    })
}

/// Nodes as the list shows them: health, cordon, versions and resources.
pub fn nodes(w: &ClusterState) -> Vec<Value> {
    let requested = requested_by_node(w);
    w.nodes
        .state()
        .iter()
        .filter_map(|n| serde_json::to_value(n.as_ref()).ok())
        .map(|n| {
            let mut v = json!({"name": n["metadata"]["name"], "health": model::node(&n), "capacity": n["status"]["capacity"],
                   "kubeletVersion": n["status"]["nodeInfo"]["kubeletVersion"], "unschedulable": n["spec"]["unschedulable"] == true});
            let asked = n["metadata"]["name"]
                .as_str()
                .and_then(|name| requested.get(name).copied())
                .unwrap_or_default();
            if let (Some(out), Value::Object(more)) =
                (v.as_object_mut(), node_resources(w, &n, asked))
            {
                out.extend(more);
            }
            v
        })
        .collect()
}

/// One node: conditions and pressure, capacity, allocatable, requested and
/// used, taints, versions, cordon, and its pods with their usage.
pub fn node(w: &ClusterState, name: &str) -> Option<Value> {
    let found = w
        .nodes
        .state()
        .into_iter()
        .find(|n| n.metadata.name.as_deref() == Some(name))?;
    let n = serde_json::to_value(found.as_ref()).ok()?;
    let now = Utc::now();
    let pods: Vec<Value> = w
        .pods
        .state()
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name))
        .filter_map(|p| serde_json::to_value(p.as_ref()).ok())
        .map(|p| {
            let summary = model::pod(&p, now);
            let latest = w
                .usage
                .pod(&summary.namespace, &summary.name)
                .and_then(|u| u.history.latest());
            json!({"summary": summary,
                   "cpuMillicores": latest.map(|l| l.cpu_m),
                   "memoryBytes": latest.map(|l| u64::from(l.mem_kib) * 1024)})
        })
        .collect();
    let pressure: Vec<Value> = n["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] != "Ready" && c["status"] == "True")
        .map(|c| c["type"].clone())
        .collect();
    let mut v = json!({
        "name": name,
        "health": model::node(&n),
        "unschedulable": n["spec"]["unschedulable"] == true,
        "taints": n["spec"]["taints"],
        "conditions": n["status"]["conditions"],
        "pressure": pressure,
        "capacity": n["status"]["capacity"],
        "nodeInfo": {"kubeletVersion": n["status"]["nodeInfo"]["kubeletVersion"],
                     "containerRuntimeVersion": n["status"]["nodeInfo"]["containerRuntimeVersion"],
                     "osImage": n["status"]["nodeInfo"]["osImage"],
                     "kernelVersion": n["status"]["nodeInfo"]["kernelVersion"],
                     "architecture": n["status"]["nodeInfo"]["architecture"]},
        "addresses": n["status"]["addresses"],
        "labels": n["metadata"]["labels"],
        "pods": pods,
    });
    let asked = requested_by_node(w).get(name).copied().unwrap_or_default();
    if let (Some(out), Value::Object(more)) = (v.as_object_mut(), node_resources(w, &n, asked)) {
        out.extend(more);
    }
    Some(v)
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

/// A pod's usage: its history (containers summed) and each container's
/// latest against its requests and limits.
fn pod_usage(w: &ClusterState, namespace: &str, name: &str, p: &Value) -> Value {
    let found = w.usage.pod(namespace, name);
    let containers: Vec<Value> = p["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|spec| {
            let used = found.as_ref().and_then(|u| {
                u.containers
                    .iter()
                    .find(|c| spec["name"] == c.name.as_str())
            });
            usage::container_view(spec, used)
        })
        .collect();
    let mut block = usage_block(w, found.map(|u| u.history));
    block["containers"] = Value::Array(containers);
    block
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
        "usage": pod_usage(w, namespace, name, &p),
    }))
}
