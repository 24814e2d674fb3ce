//! A verdict a person can read: what is wrong, grouped by cause with counts
//! ("15 pods Pending: no Ready nodes", "3 Deployments: replicas
//! unavailable"), where one cause explains others said so (no Ready nodes →
//! everything Pending; an unbound claim → the pods waiting for it; crashing
//! pods → their workload), and a cluster state in proportion: *failing*
//! when nodes fail, *degraded* when some workloads do.
//!
//! Pure: from the objects (as JSON) to the verdict; unit-tested here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::{self, State};

/// How many subjects a group lists (the count says how many there are).
const LISTED: usize = 50;

pub use frontend::model::{Group, Verdict};

/// The objects a verdict is drawn from (nodes empty when not shown).
pub struct Inputs<'a> {
    pub nodes: &'a [Value],
    pub pods: &'a [Value],
    /// (kind, object) of Deployments, StatefulSets and DaemonSets.
    pub workloads: &'a [(&'static str, Value)],
    pub claims: &'a [Value],
    /// Whether the nodes are part of it (a cluster's verdict, not a namespace's).
    pub with_nodes: bool,
}

fn key(obj: &Value) -> String {
    format!(
        "{}/{}",
        obj["metadata"]["namespace"].as_str().unwrap_or_default(),
        obj["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else if one.ends_with('s') {
        format!("{n} {one}es")
    } else {
        format!("{n} {one}s")
    }
}

/// Why a pod is not well, as a cause shared by others like it.
fn pod_cause(pod: &Value, no_ready_nodes: bool, unbound: &BTreeSet<String>) -> Option<String> {
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    let statuses: Vec<&Value> = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if phase == "Pending" {
        if no_ready_nodes {
            return Some("Pending: no Ready nodes".into());
        }
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let waits_for = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
            .find(|c| unbound.contains(&format!("{ns}/{c}")));
        if let Some(claim) = waits_for {
            return Some(format!("Pending: claim {claim} is not bound"));
        }
        let unscheduled = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "False");
        if unscheduled {
            return Some("Pending: not scheduled".into());
        }
    }
    for c in &statuses {
        if let Some(reason) = c["state"]["waiting"]["reason"].as_str()
            && reason != "ContainerCreating"
        {
            return Some(reason.to_string());
        }
        if c["lastState"]["terminated"]["reason"] == "OOMKilled"
            || c["state"]["terminated"]["reason"] == "OOMKilled"
        {
            return Some("OOMKilled".into());
        }
    }
    match phase {
        "Failed" => Some(format!(
            "Failed{}",
            pod["status"]["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )),
        "Pending" => Some("Pending".into()),
        "Unknown" => Some("phase Unknown (node unreachable?)".into()),
        _ => Some("not ready".into()),
    }
}

/// Whether `pod` belongs to workload `name` (Deployments' pods are
/// `name-<hash>-<id>`, StatefulSets' `name-<n>`, DaemonSets' `name-<id>`).
fn pod_of(pod: &Value, namespace: &str, name: &str) -> bool {
    pod["metadata"]["namespace"] == namespace
        && pod["metadata"]["name"]
            .as_str()
            .and_then(|n| n.strip_prefix(name))
            .is_some_and(|rest| rest.starts_with('-'))
}

struct Builder {
    groups: BTreeMap<(String, String), Group>,
}

impl Builder {
    fn add(&mut self, kind: &str, cause: &str, state: State, subject: String) {
        let g = self
            .groups
            .entry((kind.to_string(), cause.to_string()))
            .or_insert_with(|| Group {
                summary: cause.to_string(),
                state,
                kind: kind.to_string(),
                count: 0,
                subjects: Vec::new(),
                explained_by: None,
            });
        g.count += 1;
        g.state = g.state.max(state);
        if g.subjects.len() < LISTED {
            g.subjects.push(subject);
        }
    }
}

/// The verdict over `inputs` at `now`.
pub fn verdict(inputs: &Inputs, now: DateTime<Utc>) -> Verdict {
    let mut b = Builder {
        groups: BTreeMap::new(),
    };
    let ready_nodes = inputs
        .nodes
        .iter()
        .filter(|n| model::node(n).state != State::Failing)
        .count();
    let no_ready_nodes = inputs.with_nodes && ready_nodes == 0;
    for n in inputs.nodes {
        let name = n["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let h = model::node(n);
        if h.state == State::Failing {
            b.add("node", "NotReady", State::Failing, name.clone());
        }
        for p in [
            "MemoryPressure",
            "DiskPressure",
            "PIDPressure",
            "NetworkUnavailable",
        ] {
            let on = n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == p && c["status"] == "True");
            if on {
                b.add("node", p, State::Degraded, name.clone());
            }
        }
        if n["spec"]["unschedulable"] == true {
            b.add("node", "cordoned", State::Degraded, name.clone());
        }
    }
    if inputs.with_nodes && inputs.nodes.is_empty() {
        b.add(
            "node",
            "no nodes registered",
            State::Failing,
            "(cluster)".into(),
        );
    }
    let mut unbound = BTreeSet::new();
    for c in inputs.claims {
        if model::pvc(c).state != State::Healthy {
            unbound.insert(key(c));
            b.add("claim", "not bound", State::Degraded, key(c));
        }
    }
    // Each unhealthy pod's cause, kept to explain its workload.
    let mut pod_causes: Vec<(&Value, String)> = Vec::new();
    for p in inputs.pods {
        let summary = model::pod(p, now);
        let pending = summary.phase == "Pending";
        if summary.health.state == State::Healthy && !(pending && no_ready_nodes) {
            continue;
        }
        if let Some(cause) = pod_cause(p, no_ready_nodes, &unbound) {
            b.add(
                "pod",
                &cause,
                summary.health.state.max(State::Degraded),
                key(p),
            );
            pod_causes.push((p, cause));
        }
    }
    let mut workload_explained: BTreeMap<(String, String), String> = BTreeMap::new();
    for (kind, w) in inputs.workloads {
        let mut obj = w.clone();
        obj["kind"] = Value::from(*kind);
        let h = model::workload(&obj).health;
        if h.state == State::Healthy {
            continue;
        }
        let stuck = w["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
        let cause = if stuck {
            "rollout stuck"
        } else {
            "replicas unavailable"
        };
        let ns = w["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = w["metadata"]["name"].as_str().unwrap_or_default();
        if let Some((_, pod_cause)) = pod_causes.iter().find(|(p, _)| pod_of(p, ns, name)) {
            workload_explained.insert((kind.to_string(), cause.to_string()), pod_cause.clone());
        }
        b.add(kind, cause, State::Degraded, key(w));
    }
    let mut groups: Vec<Group> = b.groups.into_values().collect();
    // Say what follows from what.
    let root = |kind: &str, cause: &str| {
        groups
            .iter()
            .find(|g| g.kind == kind && g.summary == cause)
            .map(describe)
    };
    let no_nodes_root = root("node", "NotReady").or_else(|| root("node", "no nodes registered"));
    let explanations: Vec<Option<String>> = groups
        .iter()
        .map(|g| match (g.kind.as_str(), g.summary.as_str()) {
            ("pod", "Pending: no Ready nodes") => no_nodes_root.clone(),
            ("pod", s) if s.starts_with("Pending: claim ") => root("claim", "not bound"),
            ("node", _) | ("claim", _) => None,
            (kind, cause) if kind != "pod" => workload_explained
                .get(&(kind.to_string(), cause.to_string()))
                .and_then(|pod_cause| {
                    groups
                        .iter()
                        .find(|p| p.kind == "pod" && p.summary == *pod_cause)
                        .map(describe)
                }),
            _ => None,
        })
        .collect();
    for (g, e) in groups.iter_mut().zip(explanations) {
        g.explained_by = e;
    }
    for g in &mut groups {
        g.summary = describe(g);
    }
    // Root causes first, the worst first, then the largest.
    groups.sort_by(|a, b| {
        (
            a.explained_by.is_some(),
            std::cmp::Reverse(a.state),
            std::cmp::Reverse(a.count),
        )
            .cmp(&(
                b.explained_by.is_some(),
                std::cmp::Reverse(b.state),
                std::cmp::Reverse(b.count),
            ))
    });
    let nodes_fail = groups
        .iter()
        .any(|g| g.kind == "node" && g.state == State::Failing);
    let state = if nodes_fail {
        State::Failing
    } else if groups.is_empty() {
        State::Healthy
    } else {
        State::Degraded
    };
    let roots: Vec<&Group> = groups.iter().filter(|g| g.explained_by.is_none()).collect();
    let headline = match roots.as_slice() {
        [] => "Everything is running as intended.".to_string(),
        [one] => one.summary.clone(),
        [first, rest @ ..] => format!(
            "{}, and {} more {}",
            first.summary,
            rest.len(),
            if rest.len() == 1 { "cause" } else { "causes" }
        ),
    };
    Verdict {
        state,
        headline,
        groups,
    }
}

/// `15 pods Pending: no Ready nodes`, `2 nodes NotReady`, `1 Deployment: rollout stuck`.
fn describe(g: &Group) -> String {
    if g.summary.chars().next().is_some_and(char::is_numeric) {
        return g.summary.clone();
    }
    match g.kind.as_str() {
        "node" | "pod" | "claim" => format!("{} {}", plural(g.count, &g.kind), g.summary),
        kind => format!("{}: {}", plural(g.count, kind), g.summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name}, "status": {"conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }, "reason": "KubeletNotReady"}]}})
    }

    fn pending(name: &str, claim: Option<&str>) -> Value {
        json!({"metadata": {"name": name, "namespace": "shop", "creationTimestamp": "2026-11-30T10:00:00Z"},
               "spec": {"volumes": claim.map(|c| vec![json!({"name": "d", "persistentVolumeClaim": {"claimName": c}})]).unwrap_or_default()},
               "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]}})
    }

    fn crashing(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "shop", "creationTimestamp": "2026-11-30T10:00:00Z"},
               "spec": {"containers": [{"name": "c"}]},
               "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 9,
                          "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    }

    fn deployment(name: &str) -> (&'static str, Value) {
        (
            "Deployment",
            json!({"metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 0, "availableReplicas": 0, "updatedReplicas": 3}}),
        )
    }

    /// The verdict of a cluster (nodes included) at noon.
    fn judge(
        nodes: &[Value],
        pods: &[Value],
        workloads: &[(&'static str, Value)],
        claims: &[Value],
    ) -> Verdict {
        verdict(
            &Inputs {
                nodes,
                pods,
                workloads,
                claims,
                with_nodes: true,
            },
            now(),
        )
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn without_ready_nodes_everything_pending_is_one_line_explained_by_the_nodes() {
        let nodes = [node("a", false), node("b", false)];
        let pods: Vec<Value> = (0..15)
            .map(|i| pending(&format!("web-{i}"), None))
            .collect();
        let workloads = [deployment("web")];
        let v = judge(&nodes, &pods, &workloads, &[]);
        assert_eq!(v.state, State::Failing);
        assert_eq!(v.headline, "2 nodes NotReady");
        let pods = v.groups.iter().find(|g| g.kind == "pod").unwrap();
        assert_eq!(pods.summary, "15 pods Pending: no Ready nodes");
        assert_eq!(pods.explained_by.as_deref(), Some("2 nodes NotReady"));
        let web = v.groups.iter().find(|g| g.kind == "Deployment").unwrap();
        assert_eq!(web.summary, "1 Deployment: replicas unavailable");
        assert_eq!(
            web.explained_by.as_deref(),
            Some("15 pods Pending: no Ready nodes")
        );
        assert_eq!(v.groups.len(), 3);
    }

    #[test]
    fn one_crash_loop_makes_the_cluster_degraded_not_failing() {
        let nodes = [node("a", true)];
        let pods = [crashing("recommendations-5d9f-x1")];
        let workloads = [deployment("recommendations")];
        let v = judge(&nodes, &pods, &workloads, &[]);
        assert_eq!(v.state, State::Degraded);
        assert_eq!(v.headline, "1 pod CrashLoopBackOff");
        let d = v.groups.iter().find(|g| g.kind == "Deployment").unwrap();
        assert_eq!(d.explained_by.as_deref(), Some("1 pod CrashLoopBackOff"));
    }

    #[test]
    fn an_unbound_claim_explains_the_pods_that_wait_for_it() {
        let claim = json!({"metadata": {"name": "data-db-0", "namespace": "shop"}, "status": {"phase": "Pending"}});
        let pods = [pending("db-0", Some("data-db-0"))];
        let v = judge(&[node("a", true)], &pods, &[], &[claim]);
        let pod = v.groups.iter().find(|g| g.kind == "pod").unwrap();
        assert_eq!(pod.summary, "1 pod Pending: claim data-db-0 is not bound");
        assert_eq!(pod.explained_by.as_deref(), Some("1 claim not bound"));
        assert_eq!(v.headline, "1 claim not bound");
    }

    #[test]
    fn a_healthy_cluster_says_so() {
        let v = judge(&[node("a", true)], &[], &[], &[]);
        assert_eq!(v.state, State::Healthy);
        assert!(v.groups.is_empty());
    }
}
