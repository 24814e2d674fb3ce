//! The health model: pure functions from Kubernetes objects (as JSON) to what
//! a person wants to know — is this node, pod, workload, volume, namespace or
//! cluster healthy, and if not, why. No clients, no I/O: unit-tested here.

use chrono::{DateTime, Utc};
use serde_json::Value;

use std::collections::BTreeMap;

pub use frontend::model::{
    ContainerPort, ContainerState, ContainerView, EnvFromView, EnvRef, EnvVarView, EventView,
    Health, ObjectRef, PodSummary, Protection, Resources, State, WorkloadSummary,
};

fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// A node: Ready, pressure conditions, cordoned.
pub fn node(node: &Value) -> Health {
    let mut h = Health::healthy();
    match condition(node, "Ready") {
        Some(c) if c["status"] == "True" => {}
        Some(c) => h.worsen(
            State::Failing,
            format!(
                "node {} is NotReady ({})",
                name(node),
                c["reason"]
                    .as_str()
                    .or(c["message"].as_str())
                    .unwrap_or("no reason given")
            ),
        ),
        None => h.worsen(
            State::Failing,
            format!("node {} reports no Ready condition", name(node)),
        ),
    }
    for pressure in [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "NetworkUnavailable",
    ] {
        if condition(node, pressure).is_some_and(|c| c["status"] == "True") {
            h.worsen(
                State::Degraded,
                format!("node {} has {pressure}", name(node)),
            );
        }
    }
    if node["spec"]["unschedulable"] == true {
        h.worsen(
            State::Degraded,
            format!("node {} is cordoned (unschedulable)", name(node)),
        );
    }
    h
}

/// Waiting reasons that mean the container cannot run as things stand.
const FAILING_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// A pod: phase, ready containers, restarts, waiting and terminated reasons, age.
pub fn pod(pod: &Value, now: DateTime<Utc>) -> PodSummary {
    let phase = pod["status"]["phase"]
        .as_str()
        .unwrap_or("Unknown")
        .to_string();
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let containers = pod["spec"]["containers"]
        .as_array()
        .map_or(statuses.len(), Vec::len) as u32;
    let ready = statuses.iter().filter(|c| c["ready"] == true).count() as u32;
    let restarts = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_u64())
        .sum();
    let created = pod["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let age_seconds = created.map_or(0, |c| (now - c).num_seconds().max(0));
    let pod_name = name(pod);
    let mut h = Health::healthy();
    match phase.as_str() {
        "Succeeded" => {}
        "Failed" => h.worsen(
            State::Failing,
            format!(
                "pod {pod_name} failed{}",
                pod["status"]["reason"]
                    .as_str()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        ),
        "Pending" if age_seconds > 300 => h.worsen(
            State::Degraded,
            format!(
                "pod {pod_name} has been Pending for {} min",
                age_seconds / 60
            ),
        ),
        "Unknown" => h.worsen(
            State::Degraded,
            format!("pod {pod_name} is in phase Unknown (its node may be unreachable)"),
        ),
        _ => {}
    }
    for c in &statuses {
        let cname = c["name"].as_str().unwrap_or_default();
        if let Some(reason) = c["state"]["waiting"]["reason"].as_str() {
            let state = if FAILING_WAITING.contains(&reason) {
                State::Failing
            } else {
                State::Degraded
            };
            if reason != "ContainerCreating" || age_seconds > 300 {
                h.worsen(
                    state,
                    format!("container {cname} of pod {pod_name}: {reason}"),
                );
            }
        }
        if c["lastState"]["terminated"]["reason"] == "OOMKilled"
            || c["state"]["terminated"]["reason"] == "OOMKilled"
        {
            h.worsen(
                State::Degraded,
                format!("container {cname} of pod {pod_name} was OOMKilled"),
            );
        }
        if phase == "Running"
            && c["state"]["terminated"]["exitCode"]
                .as_i64()
                .is_some_and(|e| e != 0)
        {
            h.worsen(
                State::Failing,
                format!(
                    "container {cname} of pod {pod_name} exited with {}",
                    c["state"]["terminated"]["exitCode"]
                ),
            );
        }
    }
    if phase == "Running" && ready < containers && h.state == State::Healthy {
        h.worsen(
            State::Degraded,
            format!("pod {pod_name}: {ready}/{containers} containers ready"),
        );
    }
    PodSummary {
        name: pod_name.to_string(),
        namespace: pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        phase,
        ready,
        containers,
        restarts,
        age_seconds,
        health: h,
    }
}

/// A workload: ready / desired / updated / available, and a stuck rollout.
pub fn workload(obj: &Value) -> WorkloadSummary {
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let st = &obj["status"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let (desired, ready, updated, available) = if kind == "DaemonSet" {
        (
            int(&st["desiredNumberScheduled"]),
            int(&st["numberReady"]),
            int(&st["updatedNumberScheduled"]),
            int(&st["numberAvailable"]),
        )
    } else {
        let desired = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        (
            desired,
            int(&st["readyReplicas"]),
            int(&st["updatedReplicas"]),
            int(&st["availableReplicas"]),
        )
    };
    let wname = name(obj);
    let mut h = Health::healthy();
    if desired > 0 && ready == 0 {
        h.worsen(State::Failing, format!("{kind} {wname}: 0/{desired} ready"));
    } else if ready < desired {
        h.worsen(
            State::Degraded,
            format!("{kind} {wname}: {ready}/{desired} ready"),
        );
    }
    if let Some(p) = condition(obj, "Progressing")
        && p["status"] == "False"
    {
        h.worsen(
            State::Degraded,
            format!(
                "{kind} {wname}: rollout stuck ({})",
                p["reason"].as_str().unwrap_or("not progressing")
            ),
        );
    }
    let generation = obj["metadata"]["generation"].as_i64();
    let observed = st["observedGeneration"].as_i64();
    if let (Some(g), Some(o)) = (generation, observed)
        && o < g
        && updated < desired
    {
        h.worsen(
            State::Degraded,
            format!("{kind} {wname}: rollout in progress ({updated}/{desired} updated)"),
        );
    }
    WorkloadSummary {
        kind,
        name: wname.to_string(),
        desired,
        ready,
        updated,
        available,
        health: h,
    }
}

/// A PersistentVolumeClaim: Bound is healthy, Pending degraded, Lost failing.
pub fn pvc(claim: &Value) -> Health {
    let mut h = Health::healthy();
    let cname = name(claim);
    match claim["status"]["phase"].as_str() {
        Some("Bound") => {}
        Some("Lost") => h.worsen(State::Failing, format!("PVC {cname} lost its volume")),
        Some(other) => h.worsen(State::Degraded, format!("PVC {cname} is {other}")),
        None => h.worsen(State::Degraded, format!("PVC {cname} has no phase yet")),
    }
    h
}

/// The roll-up of many: the worst state, with every reason.
pub fn roll_up<'a>(parts: impl IntoIterator<Item = &'a Health>) -> Health {
    let mut h = Health::healthy();
    for p in parts {
        if p.state != State::Healthy {
            h.state = h.state.max(p.state);
            h.reasons.extend(p.reasons.iter().cloned());
        }
    }
    h
}

/// A Job: running, complete, or failed (with the reason).
pub fn job(obj: &Value) -> Health {
    let mut h = Health::healthy();
    if let Some(c) = condition(obj, "Failed")
        && c["status"] == "True"
    {
        h.worsen(
            State::Degraded,
            format!(
                "Job {} failed ({})",
                name(obj),
                c["reason"].as_str().unwrap_or("no reason given")
            ),
        );
    }
    h
}

/// A CronJob: suspended is worth saying; its Jobs carry their own health.
pub fn cronjob(obj: &Value) -> Health {
    let mut h = Health::healthy();
    if obj["spec"]["suspend"] == true {
        h.worsen(
            State::Degraded,
            format!("CronJob {} is suspended", name(obj)),
        );
    }
    h
}

/// One environment variable of a container as the API may show it: a literal
/// value from the pod spec, or a reference. Values held in Secrets are never
/// read, only named.
pub fn env_var(var: &Value) -> EnvVarView {
    let from = &var["valueFrom"];
    let reference = if !from["secretKeyRef"].is_null() {
        Some(EnvRef {
            secret: text(&from["secretKeyRef"]["name"]),
            key: text(&from["secretKeyRef"]["key"]),
            ..Default::default()
        })
    } else if !from["configMapKeyRef"].is_null() {
        Some(EnvRef {
            config_map: text(&from["configMapKeyRef"]["name"]),
            key: text(&from["configMapKeyRef"]["key"]),
            ..Default::default()
        })
    } else if !from["fieldRef"].is_null() {
        Some(EnvRef {
            field: text(&from["fieldRef"]["fieldPath"]),
            ..Default::default()
        })
    } else if !from["resourceFieldRef"].is_null() {
        Some(EnvRef {
            resource: text(&from["resourceFieldRef"]["resource"]),
            ..Default::default()
        })
    } else {
        None
    };
    EnvVarView {
        name: text(&var["name"]).unwrap_or_default(),
        value: if reference.is_some() {
            None
        } else {
            text(&var["value"])
        },
        from: reference,
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(String::from)
}

/// Quantities by name; a number on the wire is kept as its text.
fn quantities(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| {
            let q = match q {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((k.clone(), q))
        })
        .collect()
}

fn container_state(s: &Value) -> Option<ContainerState> {
    if let Some(w) = s.get("waiting") {
        Some(ContainerState::Waiting {
            reason: text(&w["reason"]),
            message: text(&w["message"]),
        })
    } else if let Some(r) = s.get("running") {
        Some(ContainerState::Running {
            started_at: text(&r["startedAt"]),
        })
    } else {
        s.get("terminated").map(|t| ContainerState::Terminated {
            reason: text(&t["reason"]),
            exit_code: t["exitCode"].as_i64(),
            message: text(&t["message"]),
            finished_at: text(&t["finishedAt"]),
        })
    }
}

/// A container of a pod: its spec (image, ports, env as references) joined
/// with its status (ready, restarts, state and the last termination).
pub fn container(spec: &Value, status: Option<&Value>) -> ContainerView {
    let env = spec["env"]
        .as_array()
        .map(|vars| vars.iter().map(env_var).collect())
        .unwrap_or_default();
    let env_from = spec["envFrom"]
        .as_array()
        .map(|froms| {
            froms
                .iter()
                .map(|f| {
                    let prefix = text(&f["prefix"]);
                    if f["secretRef"].is_null() {
                        EnvFromView {
                            config_map: text(&f["configMapRef"]["name"]),
                            secret: None,
                            prefix,
                        }
                    } else {
                        EnvFromView {
                            config_map: None,
                            secret: text(&f["secretRef"]["name"]),
                            prefix,
                        }
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let st = status.cloned().unwrap_or(Value::Null);
    ContainerView {
        name: text(&spec["name"]).unwrap_or_default(),
        image: text(&spec["image"]),
        ports: spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| ContainerPort {
                name: text(&p["name"]),
                container_port: p["containerPort"].as_i64().unwrap_or_default(),
                protocol: text(&p["protocol"]),
            })
            .collect(),
        resources: Resources {
            requests: quantities(&spec["resources"]["requests"]),
            limits: quantities(&spec["resources"]["limits"]),
        },
        env,
        env_from,
        ready: st["ready"] == true,
        restarts: st["restartCount"].as_u64().unwrap_or(0),
        state: container_state(&st["state"]),
        last_state: container_state(&st["lastState"]),
    }
}

/// An Event as people read it: type, reason, message, the object, how often, when last.
pub fn event(e: &Value) -> EventView {
    let text = |v: &Value| v.as_str().map(String::from);
    let last = e["lastTimestamp"]
        .as_str()
        .or(e["eventTime"].as_str())
        .or(e["metadata"]["creationTimestamp"].as_str());
    EventView {
        kind: text(&e["type"]),
        reason: text(&e["reason"]),
        message: text(&e["message"]),
        object: ObjectRef {
            kind: text(&e["involvedObject"]["kind"]),
            name: text(&e["involvedObject"]["name"]),
        },
        count: e["count"].as_u64().unwrap_or(1),
        last_seen: last.map(String::from),
        namespace: None,
    }
}

/// Sorts events as [`event`] shows them, newest first, and keeps `limit`.
pub fn newest_first(events: &mut Vec<EventView>, limit: usize) {
    events.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
    events.truncate(limit);
}

/// Protection from the time of the newest successful backup covering the
/// namespace and the interval its schedule promises (24 h without a schedule).
pub fn protection(
    last_success: Option<DateTime<Utc>>,
    promised_interval: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> Protection {
    let interval = promised_interval.unwrap_or_else(|| chrono::Duration::hours(24));
    match last_success {
        None => Protection::Unprotected,
        // A grace of half an interval for runs that take a while.
        Some(t) if now - t <= interval + interval / 2 => Protection::Protected,
        Some(_) => Protection::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn nodes_not_ready_under_pressure_or_cordoned() {
        let ready = json!({"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(node(&ready).state, State::Healthy);
        let not_ready = json!({"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}});
        let h = node(&not_ready);
        assert_eq!(h.state, State::Failing);
        assert!(h.reasons[0].contains("NotReady") && h.reasons[0].contains("KubeletNotReady"));
        let pressured = json!({"metadata": {"name": "c"}, "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "True"}]}});
        let h = node(&pressured);
        assert_eq!(h.state, State::Degraded);
        assert_eq!(h.reasons.len(), 2);
    }

    #[test]
    fn pods_with_crash_loops_pulls_and_oom_kills() {
        let running = json!({"metadata": {"name": "ok", "namespace": "a", "creationTimestamp": "2026-11-25T11:00:00Z"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        let s = pod(&running, now());
        assert_eq!(
            (s.health.state, s.ready, s.containers, s.age_seconds),
            (State::Healthy, 1, 1, 3600)
        );
        let crashing = json!({"metadata": {"name": "bad", "namespace": "a"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"reason": "OOMKilled"}}}]}});
        let s = pod(&crashing, now());
        assert_eq!(s.health.state, State::Failing);
        assert_eq!(s.restarts, 7);
        assert!(
            s.health
                .reasons
                .iter()
                .any(|r| r.contains("CrashLoopBackOff"))
        );
        assert!(s.health.reasons.iter().any(|r| r.contains("OOMKilled")));
        let pulling = json!({"metadata": {"name": "img"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}});
        assert_eq!(pod(&pulling, now()).health.state, State::Failing);
        let done = json!({"metadata": {"name": "job"}, "status": {"phase": "Succeeded"}});
        assert_eq!(pod(&done, now()).health.state, State::Healthy);
    }

    #[test]
    fn workloads_count_replicas_and_spot_stuck_rollouts() {
        let fine = json!({"kind": "Deployment", "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 3}, "status": {"readyReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "observedGeneration": 2}});
        assert_eq!(workload(&fine).health.state, State::Healthy);
        let partial = json!({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3},
            "status": {"readyReplicas": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}});
        let w = workload(&partial);
        assert_eq!(w.health.state, State::Degraded);
        assert!(
            w.health
                .reasons
                .iter()
                .any(|r| r.contains("ProgressDeadlineExceeded"))
        );
        let down = json!({"kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {"replicas": 2}, "status": {}});
        assert_eq!(workload(&down).health.state, State::Failing);
        let ds = json!({"kind": "DaemonSet", "metadata": {"name": "logs"}, "status": {"desiredNumberScheduled": 3, "numberReady": 3}});
        assert_eq!(workload(&ds).desired, 3);
        assert_eq!(workload(&ds).health.state, State::Healthy);
    }

    #[test]
    fn volumes_roll_ups_and_protection() {
        assert_eq!(
            pvc(&json!({"metadata": {"name": "d"}, "status": {"phase": "Bound"}})).state,
            State::Healthy
        );
        assert_eq!(
            pvc(&json!({"metadata": {"name": "d"}, "status": {"phase": "Pending"}})).state,
            State::Degraded
        );
        assert_eq!(
            pvc(&json!({"metadata": {"name": "d"}, "status": {"phase": "Lost"}})).state,
            State::Failing
        );
        let parts = [
            Health::healthy(),
            pvc(&json!({"metadata": {"name": "x"}, "status": {"phase": "Pending"}})),
        ];
        let up = roll_up(&parts);
        assert_eq!(up.state, State::Degraded);
        assert_eq!(up.reasons.len(), 1);
        let day = chrono::Duration::hours(24);
        assert_eq!(protection(None, None, now()), Protection::Unprotected);
        assert_eq!(
            protection(Some(now() - chrono::Duration::hours(3)), Some(day), now()),
            Protection::Protected
        );
        assert_eq!(
            protection(Some(now() - chrono::Duration::hours(40)), Some(day), now()),
            Protection::Stale
        );
        assert_eq!(
            protection(
                Some(now() - chrono::Duration::hours(2)),
                Some(chrono::Duration::hours(1)),
                now()
            ),
            Protection::Stale
        );
    }

    #[test]
    fn jobs_cronjobs_and_events() {
        let failed = json!({"metadata": {"name": "migrate"}, "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}});
        let h = job(&failed);
        assert_eq!(h.state, State::Degraded);
        assert!(h.reasons[0].contains("BackoffLimitExceeded"));
        assert_eq!(
            job(&json!({"metadata": {"name": "ok"}, "status": {"succeeded": 1}})).state,
            State::Healthy
        );
        assert_eq!(
            cronjob(&json!({"metadata": {"name": "c"}, "spec": {"suspend": true}})).state,
            State::Degraded
        );
        let e = event(
            &json!({"type": "Warning", "reason": "BackOff", "message": "restarting",
            "involvedObject": {"kind": "Pod", "name": "web-1"}, "count": 4, "lastTimestamp": "2026-11-25T11:00:00Z"}),
        );
        assert_eq!(e.object.name.as_deref(), Some("web-1"));
        assert_eq!(e.count, 4);
        assert_eq!(e.last_seen.as_deref(), Some("2026-11-25T11:00:00Z"));
    }

    #[test]
    fn containers_show_env_from_secrets_as_references_only() {
        let spec = json!({"name": "app", "image": "shop/web:2", "env": [
            {"name": "MODE", "value": "production"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "FLAGS", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "all"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "envFrom": [{"secretRef": {"name": "api-keys"}}, {"configMapRef": {"name": "settings"}, "prefix": "S_"}]});
        let status = json!({"name": "app", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}});
        // As the API writes it.
        let c = serde_json::to_value(container(&spec, Some(&status))).unwrap();
        assert_eq!(c["env"][0], json!({"name": "MODE", "value": "production"}));
        assert_eq!(
            c["env"][1],
            json!({"name": "DB_PASSWORD", "from": {"secret": "db", "key": "password"}})
        );
        assert!(c["env"][1].get("value").is_none());
        assert_eq!(c["env"][2]["from"]["configMap"], "flags");
        assert_eq!(c["env"][3]["from"]["field"], "spec.nodeName");
        assert_eq!(c["envFrom"][0], json!({"secret": "api-keys"}));
        assert_eq!(c["envFrom"][1]["configMap"], "settings");
        assert_eq!(c["state"]["reason"], "CrashLoopBackOff");
        assert_eq!(c["lastState"]["exitCode"], 1);
        assert_eq!(
            (c["ready"].clone(), c["restarts"].clone()),
            (json!(false), json!(3))
        );
        let not_started = container(&spec, None);
        assert_eq!(not_started.state, None);
        assert_eq!(not_started.restarts, 0);
    }
}
