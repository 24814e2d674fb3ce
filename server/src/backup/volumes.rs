//! A backup's volume data: which PVC-backed volumes to take (`VolumeScan`,
//! pure, fed from the objects the backup lists) and taking them through
//! the node agents ([`VolumeWork`]). Like `engine.rs`, no catalog here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::Value;

use super::hooks;
use crate::cluster::discovery::gr;
use crate::cluster::temporary;
use crate::volumes::dispatch::StepError;
use crate::volumes::dispatch::{VolumeTask, VolumeWork};
use crate::volumes::{
    Method, SKIP_ANNOTATION, TaskKind, TaskResult, TaskSpec, VolumeEntry, helper,
};

/// A claim as the backup listed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Claim {
    pv: Option<String>,
    storage_class: Option<String>,
    capacity: Option<String>,
    /// `volumeMode: Block`: a raw device, with no files for an agent to read.
    block: bool,
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
    /// The running pods' backup hooks.
    pub hooks: Vec<hooks::PodHooks>,
    /// Hook annotations that do not read (a warning each; no hook runs).
    pub hook_errors: Vec<String>,
    /// The backup spec's hook rules (`hooks.resources`).
    pub hook_rules: Vec<frontend::model::BackupHookResource>,
    /// Hooks of pods that mount no claim: the listing runs them where it
    /// meets the pod (`take_listing_hooks`), and keeps what they did here.
    listing_hooks: Vec<hooks::PodHooks>,
    pub listing_ran: Vec<hooks::Ran>,
}

/// How an agent reaches a claim's volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reader {
    /// The running pod (this uid) that mounts it, on `entry.node`.
    Pod(String),
    /// No running pod mounts it: a short-lived helper pod does.
    Helper,
}

/// One volume to take, or why it is not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub entry: VolumeEntry,
    /// How to read it; `None` when it is not taken (the reason is in `entry`).
    pub reader: Option<Reader>,
}

impl VolumeScan {
    /// The hooks of pods without claims noted since the last call, to run
    /// now (around the pod's place in the listing).
    pub fn take_listing_hooks(&mut self) -> Vec<hooks::PodHooks> {
        std::mem::take(&mut self.listing_hooks)
    }

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
                        block: obj["spec"]["volumeMode"] == "Block",
                    },
                );
            }
            "pods" => {
                let running = obj["status"]["phase"] == "Running";
                let node = obj["spec"]["nodeName"].as_str().unwrap_or_default();
                if !running || node.is_empty() {
                    return;
                }
                let mounts_claims = obj["spec"]["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| v["persistentVolumeClaim"]["claimName"].is_string());
                match hooks::of_pod(obj, &self.hook_rules) {
                    Ok(Some(found)) if mounts_claims => self.hooks.push(found),
                    Ok(Some(found)) => self.listing_hooks.push(found),
                    Ok(None) => {}
                    Err(e) => self
                        .hook_errors
                        .push(format!("pod {ns}/{name}: {e}; its hooks did not run")),
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
            } else if claim.block {
                Some(format!(
                    "{BLOCK_REFUSED}: the agent reads files, and a raw block device has none; \
                     back it up from inside the workload that owns the device"
                ))
            } else if reader.is_none() && !mounts.is_empty() {
                Some(format!(
                    "opted out by the `{SKIP_ANNOTATION}` annotation of pod {}",
                    mounts[0].pod
                ))
            } else {
                None
            };
            let reader = match (&skip_reason, reader) {
                (Some(reason), _) => {
                    entry.phase = "Skipped".into();
                    entry.reason = Some(reason.clone());
                    None
                }
                (None, Some(m)) => Some(Reader::Pod(m.pod_uid.clone())),
                (None, None) => Some(Reader::Helper),
            };
            out.push(Planned { entry, reader });
        }
        out
    }
}

/// How a `volumeMode: Block` claim's entry begins: its data is not taken,
/// which the backup's log records as a warning (PartiallyFailed), since a
/// restore would bring the claim back empty.
pub const BLOCK_REFUSED: &str = "volumeMode: Block claims are not backed up";

/// What taking volumes needs besides the agents.
#[derive(Clone)]
pub struct Take<'a> {
    pub work: &'a dyn VolumeWork,
    /// The cluster, for helper pods and CSI snapshots.
    pub client: &'a kube::Client,
    pub backup: &'a str,
    pub location: &'a str,
    pub helper_image: &'a str,
    /// How long a VolumeSnapshot may take to become ready to use.
    pub snapshot_timeout: std::time::Duration,
}

/// The default for [`Take::snapshot_timeout`].
pub const SNAPSHOT_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Takes the planned volumes, all at once (each agent works through its
/// node's tasks one at a time): through a CSI snapshot when the claim's
/// StorageClass provisioner has a VolumeSnapshotClass, otherwise from the
/// running pod's mount or a helper pod's. Byte progress is the agents'
/// reports in the task rows (`volumes::progress_of`).
///
/// A pod's backup hooks run around the reading of its volumes (`pre` just
/// before, `post` right after, also when a read failed); a `pre` hook that
/// fails with `Fail` leaves its volumes unread. Hooks of pods whose volumes
/// are not read here run back to back.
pub async fn back_up(
    take: Take<'_>,
    planned: Vec<Planned>,
    pod_hooks: Vec<hooks::PodHooks>,
) -> (Vec<VolumeEntry>, Vec<hooks::Ran>) {
    let snapshot_classes = csi::classes_by_storage_class(take.client).await;
    let class_of = |p: &Planned| {
        p.entry
            .storage_class
            .as_ref()
            .and_then(|c| snapshot_classes.get(c))
            .cloned()
    };
    let hooked = |p: &Planned| {
        matches!(p.reader, Some(Reader::Pod(_)))
            .then(|| {
                pod_hooks
                    .iter()
                    .position(|h| h.namespace == p.entry.namespace && h.pod == p.entry.pod)
            })
            .flatten()
    };
    let mut groups: Vec<Vec<(Planned, Option<String>)>> = vec![Vec::new(); pod_hooks.len()];
    let mut alone = Vec::new();
    for p in planned {
        let class = class_of(&p);
        match hooked(&p) {
            Some(i) => groups[i].push((p, class)),
            None => alone.push((p, class)),
        }
    }
    let plain = futures::future::join_all(
        alone
            .into_iter()
            .map(|(p, class)| take_one(take.clone(), p, class)),
    );
    let around = futures::future::join_all(pod_hooks.iter().zip(groups).map(|(h, group)| {
        let take = take.clone();
        async move {
            let unread: Vec<VolumeEntry> = group.iter().map(|(p, _)| p.entry.clone()).collect();
            let reads = futures::future::join_all(
                group
                    .into_iter()
                    .map(|(p, class)| take_one(take.clone(), p, class)),
            );
            let (read, ran) = hooks::around(take.client, h, reads).await;
            let entries = read.unwrap_or_else(|| {
                unread
                    .into_iter()
                    .map(|mut e| {
                        e.phase = "Failed".into();
                        e.reason = Some("not read: the pod's pre hook failed".into());
                        e
                    })
                    .collect()
            });
            (entries, ran)
        }
    }));
    let (mut entries, grouped) = futures::future::join(plain, around).await;
    let mut ran = Vec::new();
    for (group, hooks_ran) in grouped {
        entries.extend(group);
        ran.extend(hooks_ran);
    }
    // In the plan's order (by namespace and claim), whatever ran first.
    entries.sort_by(|a, b| (&a.namespace, &a.pvc).cmp(&(&b.namespace, &b.pvc)));
    (entries, ran)
}

/// Takes one planned volume (or passes on why it is not taken).
async fn take_one(take: Take<'_>, planned: Planned, snapshot_class: Option<String>) -> VolumeEntry {
    let mut entry = planned.entry;
    let Some(reader) = planned.reader else {
        return entry;
    };
    let started = Instant::now();
    let outcome = match (snapshot_class, reader) {
        (Some(class), _) => {
            entry.method = Method::Csi;
            csi::read(&take, &mut entry, &class).await
        }
        (None, Reader::Pod(uid)) => {
            read(&take, &entry, &entry.node, &entry.pod, &uid, &entry.pv).await
        }
        (None, Reader::Helper) => {
            let claim = entry.pvc.clone();
            through_helper(&take, &mut entry, &claim).await
        }
    };
    match outcome {
        Ok(result) => {
            entry.phase = "Completed".into();
            entry.snapshot = result.snapshot;
            entry.files = result.files;
            entry.bytes = result.bytes;
            entry.bytes_uploaded = result.bytes_uploaded;
            entry.warnings = result.warnings;
        }
        Err(reason) => {
            entry.phase = "Failed".into();
            entry.reason = Some(reason.to_string());
        }
    }
    entry.duration_ms = started.elapsed().as_millis() as u64;
    entry
}

/// One backup task for the agent of `node`: the volume `pv` as pod `pod_uid` mounts it.
async fn read(
    take: &Take<'_>,
    entry: &VolumeEntry,
    node: &str,
    pod: &str,
    pod_uid: &str,
    pv: &str,
) -> Result<TaskResult, StepError> {
    let task = VolumeTask {
        kind: TaskKind::Backup,
        owner: take.backup.to_string(),
        location: take.location.to_string(),
        node: node.to_string(),
        spec: TaskSpec {
            namespace: entry.namespace.clone(),
            pvc: entry.pvc.clone(),
            pod: pod.to_string(),
            pod_uid: pod_uid.to_string(),
            pv: pv.to_string(),
            backup: take.backup.to_string(),
            snapshot: None,
        },
    };
    Ok(take.work.run(task).await?)
}

/// Reads `claim` (the entry's own, or a CSI snapshot's temporary one)
/// through a read-only helper pod, removed whatever happens.
async fn through_helper(
    take: &Take<'_>,
    entry: &mut VolumeEntry,
    claim: &str,
) -> Result<TaskResult, StepError> {
    let name = helper::name_for("backup", &entry.pvc);
    let labels = temporary::labels(
        "backup-helper",
        &temporary::Operation::Backup(take.backup.to_string()),
    );
    let started = helper::start(
        take.client,
        &entry.namespace,
        &name,
        claim,
        true,
        take.helper_image,
        labels,
    )
    .await;
    let outcome = match started {
        Ok(pod) => {
            entry.node = pod.node.clone();
            entry.pod = pod.name.clone();
            read(take, entry, &pod.node, &pod.name, &pod.uid, &pod.pv).await
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = helper::remove(take.client, &entry.namespace, &name).await {
        tracing::warn!(namespace = %entry.namespace, pod = %name, error = %e, "removing a backup helper pod failed");
    }
    outcome
}

/// CSI snapshots: a point-in-time copy first, then a temporary claim made
/// from it, read through a helper pod. The snapshot, the claim and the pod
/// are removed whatever happens.
mod csi {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
    use serde_json::json;

    use super::{StepError, Take, through_helper};
    use crate::cluster::temporary;
    use crate::volumes::{TaskResult, VolumeEntry, helper};

    fn resource(kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", kind),
            plural,
        )
    }

    /// StorageClass → the VolumeSnapshotClass for its provisioner (the
    /// default one when several). Empty when the snapshot API is not served.
    pub async fn classes_by_storage_class(client: &kube::Client) -> BTreeMap<String, String> {
        let snapshot_classes: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &resource("VolumeSnapshotClass", "volumesnapshotclasses"),
        );
        let Ok(listed) = snapshot_classes.list(&Default::default()).await else {
            return BTreeMap::new();
        };
        let mut by_driver: BTreeMap<String, (bool, String)> = BTreeMap::new();
        for class in listed.items {
            let driver = class.data["driver"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let default = class
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("snapshot.storage.kubernetes.io/is-default-class"))
                .is_some_and(|v| v == "true");
            let name = class.metadata.name.clone().unwrap_or_default();
            let better = by_driver.get(&driver).is_none_or(|(d, _)| default && !d);
            if better {
                by_driver.insert(driver, (default, name));
            }
        }
        let storage: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client.clone());
        let Ok(storage) = storage.list(&Default::default()).await else {
            return BTreeMap::new();
        };
        storage
            .items
            .into_iter()
            .filter_map(|sc| {
                let (_, class) = by_driver.get(&sc.provisioner)?;
                Some((sc.metadata.name?, class.clone()))
            })
            .collect()
    }

    pub async fn read(
        take: &Take<'_>,
        entry: &mut VolumeEntry,
        class: &str,
    ) -> Result<TaskResult, StepError> {
        let ns = entry.namespace.clone();
        let name = helper::name_for("snap", &entry.pvc);
        let operation = temporary::Operation::Backup(take.backup.to_string());
        let snapshots: Api<DynamicObject> = Api::namespaced_with(
            take.client.clone(),
            &ns,
            &resource("VolumeSnapshot", "volumesnapshots"),
        );
        let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(take.client.clone(), &ns);
        let outcome = async {
            let snapshot: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "metadata": {"name": name, "labels": temporary::labels("snapshot", &operation)},
                "spec": {"volumeSnapshotClassName": class, "source": {"persistentVolumeClaimName": entry.pvc}},
            }))?;
            snapshots
                .create(&PostParams::default(), &snapshot)
                .await
                .map_err(|source| StepError::Kube {
                    what: format!("creating VolumeSnapshot {name}"),
                    source,
                })?;
            let deadline = Instant::now() + take.snapshot_timeout;
            let size = loop {
                let live = snapshots
                    .get(&name)
                    .await
                    .map_err(|source| StepError::Kube {
                        what: format!("reading VolumeSnapshot {name}"),
                        source,
                    })?;
                if live.data["status"]["readyToUse"] == true {
                    break live.data["status"]["restoreSize"].clone();
                }
                if let Some(error) = live.data["status"]["error"]["message"].as_str() {
                    return Err(StepError::SnapshotFailed {
                        name: name.clone(),
                        message: error.to_string(),
                    });
                }
                if Instant::now() >= deadline {
                    return Err(StepError::SnapshotNotReady {
                        name: name.clone(),
                        class: class.to_string(),
                        seconds: take.snapshot_timeout.as_secs(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            // The temporary claim asks for the snapshot's size, or the claim's.
            let storage = match size {
                serde_json::Value::String(s) if s != "0" => s,
                serde_json::Value::Number(n) if n.as_u64().unwrap_or(0) > 0 => n.to_string(),
                _ => entry.capacity.clone().unwrap_or_else(|| "1Gi".into()),
            };
            let claim: k8s_openapi::api::core::v1::PersistentVolumeClaim = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": temporary::labels("snapshot-claim", &operation)},
                "spec": {
                    "storageClassName": entry.storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": storage}},
                    "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": name},
                },
            }))?;
            claims
                .create(&PostParams::default(), &claim)
                .await
                .map_err(|source| StepError::Kube {
                    what: format!("creating the claim {name} from the snapshot"),
                    source,
                })?;
            through_helper(take, entry, &name).await
        }
        .await;
        // Temporaries go whatever happened (the helper pod went already).
        let gone = DeleteParams::default();
        if let Err(e) = claims.delete(&name, &gone).await
            && !matches!(&e, kube::Error::Api(s) if s.code == 404)
        {
            tracing::warn!(namespace = %ns, claim = %name, error = %e, "removing a temporary claim failed");
        }
        if let Err(e) = snapshots.delete(&name, &gone).await
            && !matches!(&e, kube::Error::Api(s) if s.code == 404)
        {
            tracing::warn!(namespace = %ns, snapshot = %name, error = %e, "removing a VolumeSnapshot failed");
        }
        outcome
    }
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
        let mut raw = claim("raw", Some("pv-6"));
        raw["spec"]["volumeMode"] = json!("Block");
        scan.note(gr::PERSISTENT_VOLUME_CLAIMS, &raw);
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
        assert_eq!(plan.len(), 6);
        let db = by_claim["data-db-0"];
        assert_eq!(db.reader, Some(Reader::Pod("uid-db-0".into())));
        assert_eq!(
            (
                db.entry.pv.as_str(),
                db.entry.capacity.as_deref(),
                db.entry.node.as_str()
            ),
            ("pv-1", Some("2Gi"), "node-1")
        );
        assert_eq!(by_claim["shared"].entry.pod, "a");
        // A bound claim no running pod mounts is read through a helper pod.
        assert_eq!(by_claim["idle"].reader, Some(Reader::Helper));
        assert_eq!(by_claim["idle"].entry.phase, "Pending");
        for (name, why) in [
            ("pending", "not bound"),
            ("opted-out", "lifeboat.io/skip-volumes"),
            ("raw", BLOCK_REFUSED),
        ] {
            let p = by_claim[name];
            assert_eq!((p.entry.phase.as_str(), &p.reader), ("Skipped", &None));
            assert!(
                p.entry.reason.as_deref().unwrap_or_default().contains(why),
                "{p:?}"
            );
        }
    }
}
