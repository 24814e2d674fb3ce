//! What the API serves about health: the cluster summary and per-namespace
//! roll-ups, computed from the watch stores with the pure model.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};

use super::model::{self, Health, State};
use super::watch::ClusterState;

fn values<K: serde::Serialize>(items: Vec<std::sync::Arc<K>>) -> Vec<Value> {
    items
        .iter()
        .map(|i| serde_json::to_value(i.as_ref()).unwrap_or(Value::Null))
        .collect()
}

/// Health per namespace: its pods, workloads and PVCs rolled up.
pub fn namespaces(state: &ClusterState) -> BTreeMap<String, (Health, Value)> {
    let now = Utc::now();
    let mut parts: BTreeMap<String, Vec<Health>> = BTreeMap::new();
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for ns in values(state.namespaces.state()) {
        let name = ns["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        parts.entry(name.clone()).or_default();
        counts.entry(name).or_default();
    }
    for pod in values(state.pods.state()) {
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let summary = model::pod(&pod, now);
        counts.entry(ns.clone()).or_default().0 += 1;
        parts.entry(ns).or_default().push(summary.health);
    }
    let workloads = values(state.deployments.state())
        .into_iter()
        .map(|mut d| {
            d["kind"] = json!("Deployment");
            d
        })
        .chain(values(state.statefulsets.state()).into_iter().map(|mut s| {
            s["kind"] = json!("StatefulSet");
            s
        }))
        .chain(values(state.daemonsets.state()).into_iter().map(|mut s| {
            s["kind"] = json!("DaemonSet");
            s
        }));
    for w in workloads {
        let ns = w["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        counts.entry(ns.clone()).or_default().1 += 1;
        parts
            .entry(ns)
            .or_default()
            .push(model::workload(&w).health);
    }
    let others = values(state.jobs.state())
        .into_iter()
        .map(|j| (model::job(&j), j))
        .chain(
            values(state.cronjobs.state())
                .into_iter()
                .map(|c| (model::cronjob(&c), c)),
        )
        .chain(
            values(state.pvcs.state())
                .into_iter()
                .map(|c| (model::pvc(&c), c)),
        );
    for (health, obj) in others {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        parts.entry(ns).or_default().push(health);
    }
    parts
        .into_iter()
        .map(|(ns, hs)| {
            let (pods, workloads) = counts.get(&ns).copied().unwrap_or_default();
            (
                ns,
                (
                    model::roll_up(&hs),
                    json!({"pods": pods, "workloads": workloads}),
                ),
            )
        })
        .collect()
}

/// How long a computed summary may be served again when nothing changed
/// (ages and "Pending for N min" move with the clock).
const SUMMARY_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The cluster summary, reused while no change arrived (many dashboards
/// polling a big cluster cost one computation per change, not per request).
pub fn cluster(state: &ClusterState) -> Value {
    let last = state.changes.lock().map(|c| c.last_id()).unwrap_or(0);
    if let Ok(cache) = state.summary_cache.lock()
        && let Some((id, at, summary)) = cache.as_ref()
        && *id == last
        && at.elapsed() < SUMMARY_REUSE
    {
        return summary.clone();
    }
    let summary = compute_cluster(state);
    if let Ok(mut cache) = state.summary_cache.lock() {
        *cache = Some((last, std::time::Instant::now(), summary.clone()));
    }
    summary
}

/// The cluster summary: nodes, pods by phase, failing pods, namespace roll-ups,
/// recent warning events, watch states.
fn compute_cluster(state: &ClusterState) -> Value {
    let now = Utc::now();
    let nodes: Vec<(Value, Health)> = values(state.nodes.state())
        .into_iter()
        .map(|n| {
            let h = model::node(&n);
            (n["metadata"]["name"].clone(), h)
        })
        .collect();
    let mut phases: BTreeMap<String, u64> = BTreeMap::new();
    let mut failing_pods = Vec::new();
    for pod in values(state.pods.state()) {
        let s = model::pod(&pod, now);
        *phases.entry(s.phase.clone()).or_default() += 1;
        if s.health.state != State::Healthy {
            failing_pods.push(s);
        }
    }
    let namespaces = namespaces(state);
    let rolled = model::roll_up(
        namespaces
            .values()
            .map(|(h, _)| h)
            .chain(nodes.iter().map(|(_, h)| h)),
    );
    json!({
        "health": rolled,
        "nodes": {
            "total": nodes.len(),
            "ready": nodes.iter().filter(|(_, h)| h.state != State::Failing).count(),
            "items": nodes.iter().map(|(n, h)| json!({"name": n, "health": h})).collect::<Vec<_>>(),
        },
        "pods": {"byPhase": phases, "unhealthy": failing_pods},
        "namespaces": namespaces.iter().map(|(ns, (h, c))| json!({"name": ns, "health": h, "counts": c})).collect::<Vec<_>>(),
        "warnings": warnings(state, 20),
        "watches": state.watch_states(),
    })
}

/// The newest Warning events across the cluster.
fn warnings(state: &ClusterState, limit: usize) -> Vec<Value> {
    let mut shown: Vec<Value> = state
        .events
        .state()
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| serde_json::to_value(e.as_ref()).ok())
        .map(|e| {
            let mut shown = model::event(&e);
            shown["namespace"] = e["metadata"]["namespace"].clone();
            shown
        })
        .collect();
    shown.sort_by(|a, b| b["lastSeen"].as_str().cmp(&a["lastSeen"].as_str()));
    shown.truncate(limit);
    shown
}
