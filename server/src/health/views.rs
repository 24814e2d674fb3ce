//! What the health API shows of a namespace and of a pod, shaped from the
//! watched cluster state (the HTTP handlers add what the catalog knows).

use chrono::Utc;
use serde_json::{Value, json};

use super::model;
use super::summary;
use super::usage;
use super::watch::ClusterState;
use frontend::model::{
    Allocatable, Amounts, ClaimView, Condition, ContainerUsageView, ContainerView, CronJobView,
    EventView, IngressRule, IngressView, JobView, KindName, LoadBalancerAddress, NamespaceDetail,
    NodeDetail, NodeInfo, NodePod, NodeRow, Owner, PodDetail, PortRef, ServicePort, ServiceView,
    UsageBlock, VolumeSource, VolumeView,
};

pub fn in_namespace<K: serde::Serialize + kube::Resource>(
    items: Vec<std::sync::Arc<K>>,
    ns: &str,
) -> Vec<Value> {
    let mut out = Vec::new();
    summary::each(items, summary::Scope::One(ns), |_, v| out.push(v));
    out
}

/// The newest events first, `limit` at most, those about `object` (kind, name) only if given.
pub fn recent_events(
    events: Vec<Value>,
    object: Option<(&str, &str)>,
    limit: usize,
) -> Vec<EventView> {
    let mut shown: Vec<EventView> = events
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

fn text(v: &Value) -> Option<String> {
    v.as_str().map(String::from)
}

fn port_ref(v: &Value) -> Option<PortRef> {
    match v {
        Value::Number(n) => n.as_i64().map(PortRef::Number),
        Value::String(s) => Some(PortRef::Name(s.clone())),
        _ => None,
    }
}

fn addresses(v: &Value) -> Vec<LoadBalancerAddress> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

fn service(s: &Value) -> ServiceView {
    ServiceView {
        name: text(&s["metadata"]["name"]).unwrap_or_default(),
        kind: text(&s["spec"]["type"]),
        cluster_ip: text(&s["spec"]["clusterIP"]),
        ports: s["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| ServicePort {
                name: text(&p["name"]),
                port: p["port"].as_i64().unwrap_or_default(),
                protocol: text(&p["protocol"]),
                target_port: port_ref(&p["targetPort"]),
                node_port: p["nodePort"].as_i64(),
            })
            .collect(),
        selector: serde_json::from_value(s["spec"]["selector"].clone()).unwrap_or_default(),
        load_balancer: addresses(&s["status"]["loadBalancer"]["ingress"]),
    }
}

fn ingress(i: &Value) -> IngressView {
    let rules = i["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| {
            let host = text(&r["host"]);
            r["http"]["paths"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |p| {
                    let backend = &p["backend"]["service"];
                    IngressRule {
                        host: host.clone(),
                        path: text(&p["path"]),
                        service: text(&backend["name"]),
                        port: port_ref(&backend["port"]["number"])
                            .or_else(|| port_ref(&backend["port"]["name"])),
                    }
                })
        })
        .collect();
    IngressView {
        name: text(&i["metadata"]["name"]).unwrap_or_default(),
        class: text(&i["spec"]["ingressClassName"]),
        rules,
        tls: serde_json::from_value(i["spec"]["tls"].clone()).unwrap_or_default(),
        address: addresses(&i["status"]["loadBalancer"]["ingress"]),
    }
}

/// A namespace's health, workloads, jobs, pods, claims, services, ingresses
/// and recent events; `None` when the cluster has no such namespace. What
/// the catalog knows (protection, backups) is the HTTP handler's to add.
pub fn namespace(w: &ClusterState, name: &str) -> Option<NamespaceDetail> {
    let rolled = summary::roll_ups(w, summary::Scope::One(name)).namespaces;
    let (health, counts) = rolled.get(name)?.clone();
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
    let count = |v: &Value| v.as_i64().unwrap_or(0);
    let jobs = in_namespace(w.jobs.state(), name)
        .iter()
        .map(|j| JobView {
            name: text(&j["metadata"]["name"]).unwrap_or_default(),
            succeeded: count(&j["status"]["succeeded"]),
            failed: count(&j["status"]["failed"]),
            active: count(&j["status"]["active"]),
            completions: j["spec"]["completions"].as_i64(),
            start_time: text(&j["status"]["startTime"]),
            completion_time: text(&j["status"]["completionTime"]),
            health: model::job(j),
        })
        .collect();
    let cron_jobs = in_namespace(w.cronjobs.state(), name)
        .iter()
        .map(|c| CronJobView {
            name: text(&c["metadata"]["name"]).unwrap_or_default(),
            schedule: text(&c["spec"]["schedule"]),
            suspend: c["spec"]["suspend"] == true,
            last_schedule_time: text(&c["status"]["lastScheduleTime"]),
            last_successful_time: text(&c["status"]["lastSuccessfulTime"]),
            health: model::cronjob(c),
        })
        .collect();
    let services = in_namespace(w.services.state(), name)
        .iter()
        .map(service)
        .collect();
    let ingresses = in_namespace(w.ingresses.state(), name)
        .iter()
        .map(ingress)
        .collect();
    let events = recent_events(in_namespace(w.events.state(), name), None, 50);
    let claims = in_namespace(w.pvcs.state(), name)
        .iter()
        .map(|c| ClaimView {
            name: text(&c["metadata"]["name"]).unwrap_or_default(),
            phase: text(&c["status"]["phase"]),
            volume: text(&c["spec"]["volumeName"]),
            storage_class: text(&c["spec"]["storageClassName"]),
            health: model::pvc(c),
            last_backup: None,
        })
        .collect();
    Some(NamespaceDetail {
        name: name.to_string(),
        health,
        counts,
        workloads,
        jobs,
        cron_jobs,
        pods,
        persistent_volume_claims: claims,
        services,
        ingresses,
        events,
        usage: usage_block(w, w.usage.namespace(name)),
        verdict: summary::verdict(w, summary::Scope::One(name), false),
        ..Default::default()
    })
}

/// A series of usage readings as the API shows it, with whether the cluster
/// serves the metrics API at all (and what to do when it does not).
pub fn usage_block(w: &ClusterState, series: Option<usage::Series>) -> UsageBlock {
    let latest = series.as_ref().and_then(usage::Series::latest);
    UsageBlock {
        availability: w.usage.availability(),
        cpu_millicores: latest.map(|l| l.cpu_m),
        memory_bytes: latest.map(|l| u64::from(l.mem_kib) * 1024),
        history: series
            .map(|s| {
                s.samples()
                    .into_iter()
                    .map(usage::Sample::reading)
                    .collect()
            })
            .unwrap_or_default(),
        containers: None,
    }
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

/// A node's allocatable CPU (millicores), memory (bytes) and pods.
fn allocatable(n: &Value) -> Allocatable {
    let amount = |v: &Value, cores: bool| {
        v.as_str().and_then(usage::quantity).map(|q| {
            if cores {
                (q * 1000.0).round() as u64
            } else {
                q as u64
            }
        })
    };
    let a = &n["status"]["allocatable"];
    Allocatable {
        cpu_millicores: amount(&a["cpu"], true),
        memory_bytes: amount(&a["memory"], false),
        pods: text(&a["pods"]),
    }
}

fn requested((cpu, memory): (u64, u64)) -> Amounts {
    Amounts {
        cpu_millicores: Some(cpu),
        memory_bytes: Some(memory),
    }
}

/// Kubernetes' own lists and maps (conditions, taints, labels), read as the
/// API's types; what does not read is left out.
fn read<T: serde::de::DeserializeOwned + Default>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// Nodes as the list shows them: health, cordon, versions and resources.
pub fn nodes(w: &ClusterState) -> Vec<NodeRow> {
    let requested_here = requested_by_node(w);
    w.nodes
        .state()
        .iter()
        .filter_map(|n| serde_json::to_value(n.as_ref()).ok())
        .map(|n| {
            let name = text(&n["metadata"]["name"]).unwrap_or_default();
            let asked = requested_here.get(&name).copied().unwrap_or_default();
            NodeRow {
                health: model::node(&n),
                capacity: read(&n["status"]["capacity"]),
                kubelet_version: text(&n["status"]["nodeInfo"]["kubeletVersion"]),
                unschedulable: n["spec"]["unschedulable"] == true,
                allocatable: allocatable(&n),
                requested: requested(asked),
                usage: usage_block(w, w.usage.node(&name)),
                name,
            }
        })
        .collect()
}

/// One node: conditions and pressure, capacity, allocatable, requested and
/// used, taints, versions, cordon, and its pods with their usage.
pub fn node(w: &ClusterState, name: &str) -> Option<NodeDetail> {
    let found = w
        .nodes
        .state()
        .into_iter()
        .find(|n| n.metadata.name.as_deref() == Some(name))?;
    let n = serde_json::to_value(found.as_ref()).ok()?;
    let now = Utc::now();
    let pods: Vec<NodePod> = w
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
            NodePod {
                summary,
                cpu_millicores: latest.map(|l| l.cpu_m),
                memory_bytes: latest.map(|l| u64::from(l.mem_kib) * 1024),
            }
        })
        .collect();
    let conditions: Vec<Condition> = read(&n["status"]["conditions"]);
    let pressure = conditions
        .iter()
        .filter(|c| c.kind != "Ready" && c.status == "True")
        .map(|c| c.kind.clone())
        .collect();
    let asked = requested_by_node(w).get(name).copied().unwrap_or_default();
    let info = &n["status"]["nodeInfo"];
    Some(NodeDetail {
        name: name.to_string(),
        health: model::node(&n),
        unschedulable: n["spec"]["unschedulable"] == true,
        taints: read(&n["spec"]["taints"]),
        conditions,
        pressure,
        capacity: read(&n["status"]["capacity"]),
        node_info: NodeInfo {
            kubelet_version: text(&info["kubeletVersion"]),
            container_runtime_version: text(&info["containerRuntimeVersion"]),
            os_image: text(&info["osImage"]),
            kernel_version: text(&info["kernelVersion"]),
            architecture: text(&info["architecture"]),
        },
        addresses: read(&n["status"]["addresses"]),
        labels: read(&n["metadata"]["labels"]),
        pods,
        allocatable: allocatable(&n),
        requested: requested(asked),
        usage: usage_block(w, w.usage.node(name)),
    })
}

/// The controller a pod belongs to, through its ReplicaSet to the Deployment.
fn owner_of(w: &ClusterState, namespace: &str, pod: &Value) -> Option<Owner> {
    let owner = pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|r| r["controller"] == true))?;
    let (kind, name) = (
        text(&owner["kind"]).unwrap_or_default(),
        text(&owner["name"]).unwrap_or_default(),
    );
    if kind == "ReplicaSet"
        && let Some(rs) = w.replicasets.state().iter().find(|rs| {
            rs.metadata.namespace.as_deref() == Some(namespace)
                && rs.metadata.name.as_deref() == Some(name.as_str())
        })
        && let Some(deployment) = rs
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true) && r.kind == "Deployment")
    {
        return Some(Owner {
            kind: "Deployment".into(),
            name: deployment.name.clone(),
            via: Some(KindName { kind, name }),
        });
    }
    Some(Owner {
        kind,
        name,
        via: None,
    })
}

/// A pod's usage: its history (containers summed) and each container's
/// latest against its requests and limits.
fn pod_usage(w: &ClusterState, namespace: &str, name: &str, p: &Value) -> UsageBlock {
    let found = w.usage.pod(namespace, name);
    let containers: Vec<ContainerUsageView> = p["spec"]["containers"]
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
    block.containers = Some(containers);
    block
}

/// One pod: its containers with their states and environment (values from
/// Secrets only named), volumes, conditions, owner and recent events; `None`
/// when it is not in the namespace.
pub fn pod(w: &ClusterState, namespace: &str, name: &str) -> Option<PodDetail> {
    let found = w.pods.state().into_iter().find(|p| {
        p.metadata.namespace.as_deref() == Some(namespace)
            && p.metadata.name.as_deref() == Some(name)
    })?;
    let p = serde_json::to_value(found.as_ref()).ok()?;
    let containers = |spec_key: &str, status_key: &str| -> Vec<ContainerView> {
        let statuses = p["status"][status_key]
            .as_array()
            .cloned()
            .unwrap_or_default();
        p["spec"][spec_key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| model::container(c, statuses.iter().find(|s| s["name"] == c["name"])))
            .collect()
    };
    let volumes = p["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let source = if !v["persistentVolumeClaim"].is_null() {
                VolumeSource {
                    persistent_volume_claim: text(&v["persistentVolumeClaim"]["claimName"]),
                    ..Default::default()
                }
            } else if !v["secret"].is_null() {
                VolumeSource {
                    secret: text(&v["secret"]["secretName"]),
                    ..Default::default()
                }
            } else if !v["configMap"].is_null() {
                VolumeSource {
                    config_map: text(&v["configMap"]["name"]),
                    ..Default::default()
                }
            } else if !v["emptyDir"].is_null() {
                VolumeSource {
                    empty_dir: Some(Default::default()),
                    ..Default::default()
                }
            } else {
                VolumeSource {
                    other: v
                        .as_object()
                        .and_then(|o| o.keys().find(|k| *k != "name"))
                        .cloned(),
                    ..Default::default()
                }
            };
            VolumeView {
                name: text(&v["name"]).unwrap_or_default(),
                source,
            }
        })
        .collect();
    let events = recent_events(
        in_namespace(w.events.state(), namespace),
        Some(("Pod", name)),
        50,
    );
    Some(PodDetail {
        name: name.to_string(),
        namespace: namespace.to_string(),
        summary: model::pod(&p, Utc::now()),
        node: text(&p["spec"]["nodeName"]),
        pod_ip: text(&p["status"]["podIP"]),
        start_time: text(&p["status"]["startTime"]),
        labels: read(&p["metadata"]["labels"]),
        owner: owner_of(w, namespace, &p),
        conditions: read(&p["status"]["conditions"]),
        init_containers: containers("initContainers", "initContainerStatuses"),
        containers: containers("containers", "containerStatuses"),
        volumes,
        events,
        usage: pod_usage(w, namespace, name, &p),
    })
}
