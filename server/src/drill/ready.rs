//! The pure part of a drill: what a backup says should come up, and whether
//! a live object has. Objects are JSON as the API server serves them.

use serde_json::Value;

/// The workload kinds a drill waits for.
pub const WATCHED: &[&str] = &[
    "deployments.apps",
    "statefulsets.apps",
    "daemonsets.apps",
    "jobs.batch",
    "persistentvolumeclaims",
];

/// One object a drill checks, from the backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub group_resource: String,
    /// Its namespace in the backup.
    pub namespace: String,
    pub name: String,
    /// Whether it was ready when backed up: only then must it be ready now.
    pub expected: bool,
    /// Why it is not expected.
    pub note: Option<String>,
    /// `spec.selector.matchLabels` of a workload: its pods, for reasons.
    pub selector: serde_json::Map<String, Value>,
}

/// What one check found.
pub use frontend::model::DrillCheck as Check;

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn replicas(object: &Value) -> i64 {
    object["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn job_failed(object: &Value) -> Option<String> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Failed" && c["status"] == "True")
        .map(|c| {
            format!(
                "failed: {}",
                c["message"]
                    .as_str()
                    .or(c["reason"].as_str())
                    .unwrap_or("no reason given")
            )
        })
}

/// What an object lacks to be ready (`1/3 available`, `Pending`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(pub String);

impl From<&str> for NotReady {
    fn from(text: &str) -> Self {
        Self(text.to_string())
    }
}

/// Whether `object` (of `group_resource`) is ready: `Ok` with a summary, or
/// `Err` with what is missing. Jobs count as ready unless they failed.
pub fn state(group_resource: &str, object: &Value) -> Result<String, NotReady> {
    let status = &object["status"];
    match group_resource {
        "deployments.apps" => {
            let (have, want) = (int(&status["availableReplicas"]), replicas(object));
            let line = format!("{have}/{want} available");
            if have >= want {
                Ok(line)
            } else {
                Err(NotReady(line))
            }
        }
        "statefulsets.apps" => {
            let (have, want) = (int(&status["readyReplicas"]), replicas(object));
            let line = format!("{have}/{want} ready");
            if have >= want {
                Ok(line)
            } else {
                Err(NotReady(line))
            }
        }
        "daemonsets.apps" => {
            let (have, want) = (
                int(&status["numberReady"]),
                int(&status["desiredNumberScheduled"]),
            );
            let line = format!("{have}/{want} ready");
            if have >= want && want > 0 {
                Ok(line)
            } else {
                Err(NotReady(line))
            }
        }
        "jobs.batch" => match job_failed(object) {
            Some(why) => Err(NotReady(why)),
            None if int(&status["succeeded"]) > 0 => Ok("succeeded".into()),
            None => Ok("not failed".into()),
        },
        "persistentvolumeclaims" => match status["phase"].as_str() {
            Some("Bound") => Ok("Bound".into()),
            other => Err(other.unwrap_or("no phase yet").into()),
        },
        other => Err(NotReady(format!("{other} is not a kind a drill checks"))),
    }
}

/// What a backed-up object promises: `None` for objects a drill does not
/// wait for (Jobs a CronJob made, which restores leave to the CronJob).
pub fn expectation(group_resource: &str, object: &Value) -> Option<Expectation> {
    if !WATCHED.contains(&group_resource) {
        return None;
    }
    let owned_by_cron = object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|r| r.iter().any(|o| o["kind"] == "CronJob"));
    if group_resource == "jobs.batch" && owned_by_cron {
        return None;
    }
    let (expected, note) = match state(group_resource, object) {
        Ok(_) => (true, None),
        Err(was) => (
            false,
            Some(format!(
                "not ready when backed up ({was}): not required to be ready now"
            )),
        ),
    };
    Some(Expectation {
        group_resource: group_resource.to_string(),
        namespace: object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        expected,
        note,
        selector: object["spec"]["selector"]["matchLabels"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    })
}

/// Why the first of a workload's pods that is not ready is not: "pod
/// web-7d9c: Pending, not scheduled: 0/2 nodes are available…".
pub fn pod_reason(selector: &serde_json::Map<String, Value>, pods: &[Value]) -> Option<String> {
    if selector.is_empty() {
        return None;
    }
    let mine = pods.iter().filter(|p| {
        selector
            .iter()
            .all(|(k, v)| &p["metadata"]["labels"][k.as_str()] == v)
    });
    for pod in mine {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let status = &pod["status"];
        let ready = status["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if ready {
            continue;
        }
        if pod["spec"]["nodeName"].is_null() {
            let why = status["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled"))
                .and_then(|c| c["message"].as_str())
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return Some(format!("pod {name}: Pending, not scheduled{why}"));
        }
        let waiting = status["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| c["state"]["waiting"].as_object());
        if let Some(w) = waiting {
            let reason = w.get("reason").and_then(Value::as_str).unwrap_or("Waiting");
            let message = w
                .get("message")
                .and_then(Value::as_str)
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            return Some(format!("pod {name}: {reason}{message}"));
        }
        return Some(format!(
            "pod {name}: {}, not ready",
            status["phase"].as_str().unwrap_or("no phase")
        ));
    }
    Some("no pods yet".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(available: i64) -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop"},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
               "status": {"availableReplicas": available}})
    }

    #[test]
    fn only_what_was_ready_when_backed_up_must_be_ready_again() {
        let e = expectation("deployments.apps", &deployment(3)).unwrap();
        assert!(e.expected && e.note.is_none());
        assert_eq!(e.selector["app"], "web");
        let crashing = expectation("deployments.apps", &deployment(0)).unwrap();
        assert!(!crashing.expected);
        assert!(crashing.note.unwrap().contains("0/3 available"));
        let claim =
            json!({"metadata": {"name": "data", "namespace": "db"}, "status": {"phase": "Bound"}});
        assert!(
            expectation("persistentvolumeclaims", &claim)
                .unwrap()
                .expected
        );
        let cron_job = json!({"metadata": {"name": "j", "namespace": "ops",
            "ownerReferences": [{"kind": "CronJob", "name": "nightly"}]}});
        assert_eq!(expectation("jobs.batch", &cron_job), None);
        assert_eq!(expectation("configmaps", &json!({})), None);
    }

    #[test]
    fn states_say_what_is_missing() {
        assert_eq!(
            state("deployments.apps", &deployment(3)),
            Ok("3/3 available".into())
        );
        assert_eq!(
            state("deployments.apps", &deployment(1)),
            Err("1/3 available".into())
        );
        let set = json!({"spec": {"replicas": 2}, "status": {"readyReplicas": 2}});
        assert!(state("statefulsets.apps", &set).is_ok());
        let no_nodes = json!({"status": {"numberReady": 0, "desiredNumberScheduled": 0}});
        assert!(state("daemonsets.apps", &no_nodes).is_err());
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True",
            "message": "Job has reached the specified backoff limit"}]}});
        assert_eq!(
            state("jobs.batch", &failed),
            Err("failed: Job has reached the specified backoff limit".into())
        );
        assert!(state("jobs.batch", &json!({"status": {"active": 1}})).is_ok());
        assert_eq!(
            state(
                "persistentvolumeclaims",
                &json!({"status": {"phase": "Pending"}})
            ),
            Err("Pending".into())
        );
    }

    #[test]
    fn a_pod_says_why_it_is_not_ready() {
        let selector = json!({"app": "web"}).as_object().cloned().unwrap();
        let pending = json!({"metadata": {"name": "web-1", "labels": {"app": "web"}},
            "spec": {}, "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "message": "0/2 nodes are available: 2 node(s) were unschedulable."}]}});
        assert_eq!(
            pod_reason(&selector, std::slice::from_ref(&pending)).unwrap(),
            "pod web-1: Pending, not scheduled: 0/2 nodes are available: 2 node(s) were unschedulable."
        );
        let crashing = json!({"metadata": {"name": "web-2", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a"}, "status": {"phase": "Running",
            "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let other = json!({"metadata": {"name": "db-0", "labels": {"app": "db"}}, "spec": {}, "status": {}});
        assert_eq!(
            pod_reason(&selector, &[other, crashing]).unwrap(),
            "pod web-2: CrashLoopBackOff"
        );
        assert_eq!(pod_reason(&selector, &[]).unwrap(), "no pods yet");
    }
}
