//! A backup's volume data: which PVC-backed volumes to take (`VolumeScan`,
//! pure, fed from the objects the backup lists) and taking them through
//! the node agents ([`VolumeWork`]). Like `engine.rs`, no catalog here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::cluster::discovery::gr;
use crate::volumes::dispatch::{VolumeTask, VolumeWork};
use crate::volumes::{Method, SKIP_ANNOTATION, TaskKind, TaskSpec, VolumeEntry};

/// A claim as the backup listed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Claim {
    pv: Option<String>,
    storage_class: Option<String>,
    capacity: Option<String>,
}

/// A running pod's use of a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    namespace: String,
    pod: String,
    pod_uid: String,
    node: String,
    claim: String,
    skipped: bool,
}

/// What the listing saw of claims and the pods that mount them.
#[derive(Default)]
pub struct VolumeScan {
    claims: BTreeMap<(String, String), Claim>,
    mounts: Vec<Mount>,
}

/// One volume to take, or why it is not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub entry: VolumeEntry,
    /// The pod to read it through; `None` when it cannot be read (the reason is in `entry`).
    pub pod_uid: Option<String>,
}

impl VolumeScan {
    /// Notes a listed object (only pods and claims matter).
    pub fn note(&mut self, gr_name: &str, obj: &Value) {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        match gr_name {
            gr::PERSISTENT_VOLUME_CLAIMS => {
                let text = |v: &Value| v.as_str().map(str::to_string);
                self.claims.insert(
                    (ns.to_string(), name.to_string()),
                    Claim {
                        pv: text(&obj["spec"]["volumeName"]).filter(|v| !v.is_empty()),
                        storage_class: text(&obj["spec"]["storageClassName"]),
                        capacity: text(&obj["status"]["capacity"]["storage"])
                            .or_else(|| text(&obj["spec"]["resources"]["requests"]["storage"])),
                    },
                );
            }
            "pods" => {
                let running = obj["status"]["phase"] == "Running";
                let node = obj["spec"]["nodeName"].as_str().unwrap_or_default();
                if !running || node.is_empty() {
                    return;
                }
                let skip: BTreeSet<&str> = obj["metadata"]["annotations"][SKIP_ANNOTATION]
                    .as_str()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                for volume in obj["spec"]["volumes"].as_array().into_iter().flatten() {
                    // Only PVC-backed volumes: never emptyDir, hostPath,
                    // configMap, secret or projected.
                    let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() else {
                        continue;
                    };
                    let volume_name = volume["name"].as_str().unwrap_or_default();
                    self.mounts.push(Mount {
                        namespace: ns.to_string(),
                        pod: name.to_string(),
                        pod_uid: obj["metadata"]["uid"].as_str().unwrap_or_default().into(),
                        node: node.to_string(),
                        claim: claim.to_string(),
                        skipped: skip.contains(volume_name),
                    });
                }
            }
            _ => {}
        }
    }

    /// Every selected claim once: read through the first running pod that
    /// mounts it (and does not opt it out), or listed with why not.
    pub fn plan(&self) -> Vec<Planned> {
        let mut out = Vec::new();
        for ((ns, name), claim) in &self.claims {
            let mounts: Vec<&Mount> = self
                .mounts
                .iter()
                .filter(|m| &m.namespace == ns && &m.claim == name)
                .collect();
            let reader = mounts.iter().find(|m| !m.skipped);
            let mut entry = VolumeEntry {
                namespace: ns.clone(),
                pvc: name.clone(),
                pod: reader.map(|m| m.pod.clone()).unwrap_or_default(),
                pv: claim.pv.clone().unwrap_or_default(),
                storage_class: claim.storage_class.clone(),
                capacity: claim.capacity.clone(),
                node: reader.map(|m| m.node.clone()).unwrap_or_default(),
                method: Method::Fs,
                phase: "Pending".into(),
                reason: None,
                snapshot: None,
                files: 0,
                bytes: 0,
                bytes_uploaded: 0,
                duration_ms: 0,
                warnings: Vec::new(),
            };
            let skip_reason = if claim.pv.is_none() {
                Some("the claim is not bound to a volume".to_string())
            } else if reader.is_none() && !mounts.is_empty() {
                Some(format!(
                    "opted out by the `{SKIP_ANNOTATION}` annotation of pod {}",
                    mounts[0].pod
                ))
            } else if reader.is_none() {
                Some(
                    "no running pod mounts it, so no agent can read it (helper pods for unmounted \
                     claims are not implemented yet)"
                        .to_string(),
                )
            } else {
                None
            };
            if let Some(reason) = skip_reason {
                entry.phase = "Skipped".into();
                entry.reason = Some(reason);
            }
            out.push(Planned {
                pod_uid: reader
                    .filter(|_| entry.phase == "Pending")
                    .map(|m| m.pod_uid.clone()),
                entry,
            });
        }
        out
    }
}

/// Takes the planned volumes through the agents, all at once (each agent
/// works through its node's one at a time). `on_bytes` hears the bytes done
/// and known in total over all volumes.
pub async fn back_up(
    work: &dyn VolumeWork,
    backup: &str,
    location: &str,
    planned: Vec<Planned>,
    on_bytes: &(dyn Fn(u64, u64) + Send + Sync),
) -> Vec<VolumeEntry> {
    let slots: Arc<Vec<(AtomicU64, AtomicU64)>> = Arc::new(
        (0..planned.len())
            .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
            .collect(),
    );
    let runs = planned.into_iter().enumerate().map(|(i, planned)| {
        let slots = slots.clone();
        async move {
            let mut entry = planned.entry;
            let Some(pod_uid) = planned.pod_uid else {
                return entry;
            };
            let started = Instant::now();
            let task = VolumeTask {
                kind: TaskKind::Backup,
                owner: backup.to_string(),
                location: location.to_string(),
                node: entry.node.clone(),
                spec: TaskSpec {
                    namespace: entry.namespace.clone(),
                    pvc: entry.pvc.clone(),
                    pod: entry.pod.clone(),
                    pod_uid,
                    pv: entry.pv.clone(),
                    backup: backup.to_string(),
                    snapshot: None,
                },
            };
            let report = |done: u64, total: u64| {
                slots[i].0.store(done, Ordering::Relaxed);
                slots[i].1.store(total, Ordering::Relaxed);
                let (d, t) = slots.iter().fold((0, 0), |(d, t), (a, b)| {
                    (d + a.load(Ordering::Relaxed), t + b.load(Ordering::Relaxed))
                });
                on_bytes(d, t);
            };
            match work.run(task, &report).await {
                Ok(result) => {
                    entry.phase = "Completed".into();
                    entry.snapshot = result.snapshot;
                    entry.files = result.files;
                    entry.bytes = result.bytes;
                    entry.bytes_uploaded = result.bytes_uploaded;
                    entry.warnings = result.warnings;
                    report(result.bytes, result.bytes);
                }
                Err(reason) => {
                    entry.phase = "Failed".into();
                    entry.reason = Some(reason);
                }
            }
            entry.duration_ms = started.elapsed().as_millis() as u64;
            entry
        }
    });
    futures::future::join_all(runs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, phase: &str, claims: &[(&str, &str)], skip: Option<&str>) -> Value {
        let mut volumes: Vec<Value> = claims
            .iter()
            .map(|(v, c)| json!({"name": v, "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        volumes.push(json!({"name": "cache", "emptyDir": {}}));
        volumes.push(json!({"name": "token", "projected": {"sources": []}}));
        let mut annotations = json!({});
        if let Some(skip) = skip {
            annotations[SKIP_ANNOTATION] = json!(skip);
        }
        json!({
            "metadata": {"namespace": "shop", "name": name, "uid": format!("uid-{name}"), "annotations": annotations},
            "spec": {"nodeName": "node-1", "volumes": volumes},
            "status": {"phase": phase},
        })
    }

    fn claim(name: &str, pv: Option<&str>) -> Value {
        json!({
            "metadata": {"namespace": "shop", "name": name},
            "spec": {"volumeName": pv, "storageClassName": "standard",
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"capacity": {"storage": "2Gi"}},
        })
    }

    #[test]
    fn each_bound_claim_is_read_once_through_a_running_pod_or_listed_with_why_not() {
        let mut scan = VolumeScan::default();
        scan.note(
            gr::PERSISTENT_VOLUME_CLAIMS,
            &claim("data-db-0", Some("pv-1")),
        );
        scan.note(gr::PERSISTENT_VOLUME_CLAIMS, &claim("shared", Some("pv-2")));
        scan.note(gr::PERSISTENT_VOLUME_CLAIMS, &claim("idle", Some("pv-3")));
        scan.note(gr::PERSISTENT_VOLUME_CLAIMS, &claim("pending", None));
        scan.note(
            gr::PERSISTENT_VOLUME_CLAIMS,
            &claim("opted-out", Some("pv-5")),
        );
        scan.note(
            "pods",
            &pod("db-0", "Running", &[("data", "data-db-0")], None),
        );
        // Two pods share a claim: read once.
        scan.note("pods", &pod("a", "Running", &[("s", "shared")], None));
        scan.note("pods", &pod("b", "Running", &[("s", "shared")], None));
        // A pod that is not running does not count.
        scan.note("pods", &pod("old", "Succeeded", &[("d", "idle")], None));
        scan.note(
            "pods",
            &pod(
                "c",
                "Running",
                &[("keep", "opted-out")],
                Some("keep, other"),
            ),
        );
        let plan = scan.plan();
        let by_claim: BTreeMap<&str, &Planned> =
            plan.iter().map(|p| (p.entry.pvc.as_str(), p)).collect();
        assert_eq!(plan.len(), 5);
        let db = by_claim["data-db-0"];
        assert_eq!(db.pod_uid.as_deref(), Some("uid-db-0"));
        assert_eq!(
            (
                db.entry.pv.as_str(),
                db.entry.capacity.as_deref(),
                db.entry.node.as_str()
            ),
            ("pv-1", Some("2Gi"), "node-1")
        );
        assert_eq!(by_claim["shared"].entry.pod, "a");
        for (name, why) in [
            ("idle", "no running pod"),
            ("pending", "not bound"),
            ("opted-out", "lifeboat.io/skip-volumes"),
        ] {
            let p = by_claim[name];
            assert_eq!(
                (p.entry.phase.as_str(), p.pod_uid.as_deref()),
                ("Skipped", None)
            );
            assert!(
                p.entry.reason.as_deref().unwrap_or_default().contains(why),
                "{p:?}"
            );
        }
    }
}
