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
    for claim in values(state.pvcs.state()) {
        let ns = claim["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        parts.entry(ns).or_default().push(model::pvc(&claim));
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

/// The cluster summary: nodes, pods by phase, failing pods, namespace roll-ups, watch states.
pub fn cluster(state: &ClusterState) -> Value {
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
        "watches": state.watch_states(),
    })
}
