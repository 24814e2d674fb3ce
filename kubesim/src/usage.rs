//! `metrics.k8s.io/v1beta1`, as metrics-server serves it: NodeMetrics and
//! PodMetrics, computed on each read from the running pods and the clock.
//!
//! Usage is simulated, deterministic per container and varying over time:
//! CPU around a base of its own (between its request and limit when it has
//! them) in a slow wave; memory near its request. A crash-looping
//! container's memory climbs towards its limit (256 Mi without one) over
//! each minute, as a leak before an OOM kill would. A node's usage is its
//! running pods' plus the system's own.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Store;

fn all_of(store: &Store, rt: &ResourceType) -> Vec<Value> {
    store
        .list(
            rt,
            None,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
        .0
}

/// metrics-server's default resolution: what `window` says.
const WINDOW: &str = "15s";
/// What the kubelet, runtime and system daemons use on every node.
const SYSTEM_MILLICORES: f64 = 150.0;
const SYSTEM_BYTES: f64 = 600.0 * 1024.0 * 1024.0;

/// A Kubernetes quantity (`100m`, `2`, `128Mi`, `1G`) as a number of units
/// (cores or bytes); `None` when it does not read.
pub fn quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some(n * factor)
}

fn resource(container: &Value, kind: &str, name: &str) -> Option<f64> {
    container["resources"][kind][name]
        .as_str()
        .and_then(quantity)
}

/// One container's (millicores, bytes) at `now`.
fn container_usage(pod: &Value, container: &Value, now: DateTime<Utc>) -> (f64, f64) {
    let key = format!(
        "{}/{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default(),
        container["name"].as_str().unwrap_or_default()
    );
    let h = crate::fnv1a(key.bytes());
    let t = now.timestamp_millis() as f64 / 1000.0;
    let phase = (h % 628) as f64 / 100.0;
    let wave = 1.0 + 0.35 * (t / 90.0 + phase).sin();
    let cpu_request = resource(container, "requests", "cpu").map(|c| c * 1000.0);
    let cpu_base = cpu_request.unwrap_or(10.0 + (h % 40) as f64) * (0.4 + (h % 50) as f64 / 100.0);
    let cpu = (cpu_base * wave).max(1.0);
    let memory_request = resource(container, "requests", "memory");
    let memory_limit = resource(container, "limits", "memory");
    let crash_looping = pod["metadata"]["annotations"]["kubesim.io/crash-loop"] == "true";
    let memory = if crash_looping {
        let limit = memory_limit.unwrap_or(256.0 * 1024.0 * 1024.0);
        let created = pod["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map_or(now, |c| c.with_timezone(&Utc));
        let into_minute = ((now - created).num_milliseconds().max(0) % 60_000) as f64 / 60_000.0;
        limit * (0.5 + 0.49 * into_minute)
    } else {
        let base = memory_request.unwrap_or((24 + h % 96) as f64 * 1024.0 * 1024.0);
        base * (0.7 + (h % 30) as f64 / 100.0) * (1.0 + 0.03 * (t / 300.0 + phase).sin())
    };
    (cpu, memory)
}

fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && pod["spec"]["nodeName"].is_string()
}

fn cpu_text(millicores: f64) -> String {
    format!("{}n", (millicores * 1e6).round() as u64)
}

fn memory_text(bytes: f64) -> String {
    format!("{}Ki", (bytes / 1024.0).round() as u64)
}

fn pod_metrics(pod: &Value, now: DateTime<Utc>) -> Value {
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let (cpu, memory) = container_usage(pod, c, now);
            json!({"name": c["name"], "usage": {"cpu": cpu_text(cpu), "memory": memory_text(memory)}})
        })
        .collect();
    json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": pod["metadata"]["name"],
            "namespace": pod["metadata"]["namespace"],
            "labels": pod["metadata"]["labels"],
            "creationTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "window": WINDOW,
        "containers": containers,
    })
}

fn node_metrics(node: &Value, pods: &[Value], now: DateTime<Utc>) -> Value {
    let name = node["metadata"]["name"].as_str().unwrap_or_default();
    let (mut cpu, mut memory) = (SYSTEM_MILLICORES, SYSTEM_BYTES);
    for pod in pods.iter().filter(|p| p["spec"]["nodeName"] == name) {
        for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
            let (c_cpu, c_memory) = container_usage(pod, c, now);
            cpu += c_cpu;
            memory += c_memory;
        }
    }
    json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": name,
            "labels": node["metadata"]["labels"],
            "creationTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "window": WINDOW,
        "usage": {"cpu": cpu_text(cpu), "memory": memory_text(memory)},
    })
}

/// Answers a GET of `nodes` or `pods` in `metrics.k8s.io` (a list, or one
/// by name); anything else is refused as metrics-server refuses it.
pub fn serve(
    store: &Store,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: Option<&str>,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({}.{})",
            rt.resource, rt.group
        )));
    }
    let now = Utc::now();
    let pods_rt = store
        .find("", "v1", "pods")
        .ok_or_else(|| ApiError::not_found("", "pods", ""))?;
    let pods: Vec<Value> = all_of(store, &pods_rt)
        .into_iter()
        .filter(running)
        .collect();
    let (kind, items): (&str, Vec<Value>) = if rt.resource == "nodes" {
        let nodes_rt = store
            .find("", "v1", "nodes")
            .ok_or_else(|| ApiError::not_found("", "nodes", ""))?;
        let nodes = all_of(store, &nodes_rt);
        (
            "NodeMetricsList",
            nodes
                .iter()
                .filter(|n| name.is_none_or(|want| n["metadata"]["name"] == want))
                .map(|n| node_metrics(n, &pods, now))
                .collect(),
        )
    } else {
        (
            "PodMetricsList",
            pods.iter()
                .filter(|p| namespace.is_none_or(|ns| p["metadata"]["namespace"] == ns))
                .filter(|p| name.is_none_or(|want| p["metadata"]["name"] == want))
                .map(|p| pod_metrics(p, now))
                .collect(),
        )
    };
    match name {
        Some(want) => items
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, want)),
        None => Ok(json!({
            "kind": kind,
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": items,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        assert_eq!(quantity("100m"), Some(0.1));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1500000n"), Some(0.0015));
        assert_eq!(quantity("1G"), Some(1e9));
        assert_eq!(quantity("lots"), None);
    }

    #[test]
    fn a_crash_looping_container_climbs_towards_its_limit() {
        let pod = json!({
            "metadata": {"name": "r", "namespace": "shop", "creationTimestamp": "2026-11-30T12:00:00Z",
                         "annotations": {"kubesim.io/crash-loop": "true"}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "256Mi"}}}]}
        });
        let c = &pod["spec"]["containers"][0];
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let (_, early) = container_usage(&pod, c, at("2026-11-30T12:00:05Z"));
        let (_, late) = container_usage(&pod, c, at("2026-11-30T12:00:55Z"));
        let limit = 256.0 * 1024.0 * 1024.0;
        assert!(
            early < late && late < limit && late > 0.9 * limit,
            "{early} {late}"
        );
    }
}
