//! What the API serves about health: the cluster summary and per-namespace
//! roll-ups, computed from the watch stores with the pure model.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde_json::{Value, json};

use super::model::{self, EventView, Health, State};
use super::watch::ClusterState;
use frontend::model::{ClusterSummary, Counts, NamespaceRollUp, NodeCounts, NodeHealth, PodCounts};

/// Which namespaces a computation covers: all, one, or those a reader may see.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    All,
    One(&'a str),
    Among(&'a BTreeSet<String>),
}

impl Scope<'_> {
    pub fn includes(&self, namespace: &str) -> bool {
        match self {
            Self::All => true,
            Self::One(one) => *one == namespace,
            Self::Among(set) => set.contains(namespace),
        }
    }
}

/// Calls `f` with each object (as JSON, converted one at a time so memory
/// stays flat on big clusters) and its namespace, for the namespaces in `scope`.
pub fn each<K: serde::Serialize + kube::Resource>(
    items: Vec<std::sync::Arc<K>>,
    scope: Scope,
    mut f: impl FnMut(String, Value),
) {
    for item in items {
        let ns = item.meta().namespace.clone().unwrap_or_default();
        if !scope.includes(&ns) {
            continue;
        }
        if let Ok(v) = serde_json::to_value(item.as_ref()) {
            f(ns, v);
        }
    }
}

/// Per-namespace roll-ups, and the pods seen on the way.
pub struct RollUps {
    /// Namespace → its health and counts of pods and workloads.
    pub namespaces: BTreeMap<String, (Health, Counts)>,
    pub pods_by_phase: BTreeMap<String, u64>,
    pub unhealthy_pods: Vec<model::PodSummary>,
}

/// Health per namespace (those in `scope`): its pods, workloads, Jobs,
/// CronJobs and PVCs rolled up.
pub fn roll_ups(state: &ClusterState, only: Scope) -> RollUps {
    let now = Utc::now();
    let mut parts: BTreeMap<String, Vec<Health>> = BTreeMap::new();
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut pods_by_phase = BTreeMap::new();
    let mut unhealthy_pods = Vec::new();
    for ns in state.namespaces.state() {
        let name = ns.metadata.name.clone().unwrap_or_default();
        if only.includes(&name) {
            parts.entry(name.clone()).or_default();
            counts.entry(name).or_default();
        }
    }
    each(state.pods.state(), only, |ns, pod| {
        let summary = model::pod(&pod, now);
        *pods_by_phase.entry(summary.phase.clone()).or_default() += 1;
        counts.entry(ns.clone()).or_default().0 += 1;
        parts.entry(ns).or_default().push(summary.health.clone());
        if summary.health.state != State::Healthy {
            unhealthy_pods.push(summary);
        }
    });
    let workload = |kind: &'static str| {
        move |ns: String, mut w: Value| {
            w["kind"] = json!(kind);
            (ns, model::workload(&w).health)
        }
    };
    let mut add_workload = |(ns, health): (String, Health)| {
        counts.entry(ns.clone()).or_default().1 += 1;
        parts.entry(ns).or_default().push(health);
    };
    let (d, st, ds) = (
        workload("Deployment"),
        workload("StatefulSet"),
        workload("DaemonSet"),
    );
    each(state.deployments.state(), only, |ns, w| {
        add_workload(d(ns, w))
    });
    each(state.statefulsets.state(), only, |ns, w| {
        add_workload(st(ns, w))
    });
    each(state.daemonsets.state(), only, |ns, w| {
        add_workload(ds(ns, w))
    });
    let mut add = |ns: String, health: Health| parts.entry(ns).or_default().push(health);
    each(state.jobs.state(), only, |ns, j| add(ns, model::job(&j)));
    each(state.cronjobs.state(), only, |ns, c| {
        add(ns, model::cronjob(&c))
    });
    each(state.pvcs.state(), only, |ns, c| add(ns, model::pvc(&c)));
    let namespaces = parts
        .into_iter()
        .map(|(ns, hs)| {
            let (pods, workloads) = counts.get(&ns).copied().unwrap_or_default();
            (ns, (model::roll_up(&hs), Counts { pods, workloads }))
        })
        .collect();
    RollUps {
        namespaces,
        pods_by_phase,
        unhealthy_pods,
    }
}

/// How long a computed summary may be served again when nothing changed
/// (ages and "Pending for N min" move with the clock).
const SUMMARY_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The cluster summary, reused while no change arrived (many dashboards
/// polling a big cluster cost one computation per change, not per request).
pub fn cluster(state: &ClusterState) -> ClusterSummary {
    let last = state.changes.lock().map(|c| c.last_id()).unwrap_or(0);
    if let Ok(cache) = state.summary_cache.lock()
        && let Some((id, at, summary)) = cache.as_ref()
        && *id == last
        && at.elapsed() < SUMMARY_REUSE
    {
        return summary.clone();
    }
    let summary = compute_cluster(state, Scope::All, true);
    if let Ok(mut cache) = state.summary_cache.lock() {
        *cache = Some((last, std::time::Instant::now(), summary.clone()));
    }
    summary
}

/// The cluster summary as a reader who may see only the namespaces of
/// `scope` (and the nodes, with `show_nodes`) sees it; not cached, as it is
/// one reader's.
pub fn cluster_for(state: &ClusterState, scope: Scope, show_nodes: bool) -> ClusterSummary {
    compute_cluster(state, scope, show_nodes)
}

/// The cluster summary: nodes, pods by phase, failing pods, namespace roll-ups,
/// recent warning events, watch states, over the namespaces of `scope`.
fn compute_cluster(state: &ClusterState, scope: Scope, show_nodes: bool) -> ClusterSummary {
    let nodes: Vec<NodeHealth> = state
        .nodes
        .state()
        .iter()
        .filter(|_| show_nodes)
        .filter_map(|n| serde_json::to_value(n.as_ref()).ok())
        .map(|n| NodeHealth {
            name: n["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            health: model::node(&n),
        })
        .collect();
    let RollUps {
        namespaces,
        pods_by_phase,
        unhealthy_pods,
    } = roll_ups(state, scope);
    // In proportion: failing when nodes fail, degraded when workloads do;
    // the reasons are the causes, grouped.
    let verdict = verdict(state, scope, show_nodes);
    let health = Health {
        state: verdict.state,
        reasons: verdict
            .groups
            .iter()
            .filter(|g| g.explained_by.is_none())
            .map(|g| g.summary.clone())
            .collect(),
    };
    ClusterSummary {
        health,
        verdict,
        nodes: NodeCounts {
            total: nodes.len(),
            ready: nodes
                .iter()
                .filter(|n| n.health.state != State::Failing)
                .count(),
            items: nodes,
        },
        pods: PodCounts {
            by_phase: pods_by_phase,
            unhealthy: unhealthy_pods,
            near_memory_limit: near_memory_limit(state, scope, 20),
        },
        namespaces: namespaces
            .into_iter()
            .map(|(name, (health, counts))| NamespaceRollUp {
                name,
                health,
                counts,
            })
            .collect(),
        warnings: warnings(state, scope, 20),
        watches: state
            .watch_states()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        usage: None,
    }
}

/// The verdict over the namespaces of `scope` (and the nodes, with
/// `with_nodes`): causes grouped, see `verdict`. Only pods that are not
/// well (or Pending) are looked at twice.
pub fn verdict(state: &ClusterState, scope: Scope, with_nodes: bool) -> super::verdict::Verdict {
    let now = Utc::now();
    let nodes: Vec<Value> = if with_nodes {
        state
            .nodes
            .state()
            .iter()
            .filter_map(|n| serde_json::to_value(n.as_ref()).ok())
            .collect()
    } else {
        Vec::new()
    };
    let mut pods = Vec::new();
    each(state.pods.state(), scope, |_, p| {
        if p["status"]["phase"] == "Pending" || model::pod(&p, now).health.state != State::Healthy {
            pods.push(p);
        }
    });
    let mut workloads = Vec::new();
    each(state.deployments.state(), scope, |_, w| {
        workloads.push(("Deployment", w))
    });
    each(state.statefulsets.state(), scope, |_, w| {
        workloads.push(("StatefulSet", w))
    });
    each(state.daemonsets.state(), scope, |_, w| {
        workloads.push(("DaemonSet", w))
    });
    let mut claims = Vec::new();
    each(state.pvcs.state(), scope, |_, c| claims.push(c));
    super::verdict::verdict(
        &super::verdict::Inputs {
            nodes: &nodes,
            pods: &pods,
            workloads: &workloads,
            claims: &claims,
            with_nodes,
        },
        now,
    )
}

/// The containers at [`super::usage::OOM_RISK`] of their memory limit or
/// more in the namespaces of `scope`, by the latest usage reading, nearest
/// first: the ones to look at before the kernel kills them.
fn near_memory_limit(
    state: &ClusterState,
    scope: Scope,
    limit: usize,
) -> Vec<super::usage::NearLimit> {
    let pods = state.pods.state();
    let asked = pods.iter().filter_map(|p| {
        let namespace = p.metadata.namespace.as_deref()?;
        if !scope.includes(namespace) {
            return None;
        }
        let limits: Vec<(&str, f64)> = p
            .spec
            .as_ref()?
            .containers
            .iter()
            .filter_map(|c| {
                let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
                Some((c.name.as_str(), super::usage::quantity(q)?))
            })
            .collect();
        Some((namespace, p.metadata.name.as_deref()?, limits))
    });
    state.usage.near_memory_limit(asked, limit)
}

/// The newest Warning events across the namespaces of `scope`.
fn warnings(state: &ClusterState, scope: Scope, limit: usize) -> Vec<EventView> {
    let mut shown: Vec<EventView> = state
        .events
        .state()
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter(|e| scope.includes(e.metadata.namespace.as_deref().unwrap_or_default()))
        .filter_map(|e| serde_json::to_value(e.as_ref()).ok())
        .map(|e| {
            let mut shown = model::event(&e);
            shown.namespace = e["metadata"]["namespace"].as_str().map(String::from);
            shown
        })
        .collect();
    model::newest_first(&mut shown, limit);
    shown
}
