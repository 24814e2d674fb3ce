//! A restore's volume data. Each volume the backup holds becomes a plan
//! line (`volumes.lifeboat.io`, tiered right after the claims), so the plan
//! shows it before anything is touched and its result is counted like any
//! item's. Applying one: a short-lived helper pod mounts the freshly
//! provisioned claim, the agent of its node writes the snapshot into it,
//! and the helper goes (always). Only then do the workloads' tiers run, and
//! a workload that mounts a claim whose data failed is not created, so no
//! workload starts on an empty volume. Like `engine.rs`, no catalog here.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::engine::{Action, ItemResult, PlanItem};
use super::spec::RestoreSpec;
use crate::cluster::discovery::gr;
use crate::restore::RestoreSpecExt;
use crate::volumes::dispatch::{VolumeTask, VolumeWork};
use crate::volumes::{TaskKind, TaskSpec, VolumeEntry, helper};

/// The plan lines of volume data.
pub const GROUP_RESOURCE: &str = "volumes.lifeboat.io";

/// What applying volume lines needs.
#[derive(Clone)]
pub struct VolumeRestore {
    pub work: Arc<dyn VolumeWork>,
    /// The backup's location (its repository holds the snapshots).
    pub location: String,
    pub backup: String,
    pub helper_image: String,
}

/// The PVs whose claims' data the backup holds: they are not restored; the
/// claim gets a fresh volume from its StorageClass and the data is written into it.
pub fn volumes_with_data(volumes: &[VolumeEntry]) -> BTreeSet<String> {
    volumes
        .iter()
        .filter(|v| v.phase == "Completed" && v.snapshot.is_some())
        .map(|v| v.pv.clone())
        .collect()
}

/// A plan line per volume with data whose claim the restore selects; its
/// action follows the claim's (a claim left as it is keeps its data).
pub fn plan_lines(volumes: &[VolumeEntry], spec: &RestoreSpec, plan: &[PlanItem]) -> Vec<PlanItem> {
    let mut out = Vec::new();
    for v in volumes {
        let Some(snapshot) = v.snapshot.as_ref().filter(|_| v.phase == "Completed") else {
            continue;
        };
        if !spec.includes_namespace(&v.namespace) {
            continue;
        }
        let target = spec.target_namespace(&v.namespace).to_string();
        let claim = plan.iter().find(|p| {
            p.group_resource == gr::PERSISTENT_VOLUME_CLAIMS
                && p.namespace.as_deref() == Some(target.as_str())
                && p.name == v.pvc
        });
        let (action, reason) = match claim.map(|c| c.action) {
            None => continue,
            Some(Action::Create) => (
                Action::Create,
                format!(
                    "{} in {} files into a fresh volume, before the workloads that mount it",
                    crate::human_bytes(v.bytes),
                    v.files
                ),
            ),
            Some(Action::Excluded) => (Action::Excluded, "its claim is not restored".to_string()),
            Some(_) => (
                Action::Skip,
                "the claim exists; its data is left as it is".to_string(),
            ),
        };
        out.push(PlanItem {
            group_resource: GROUP_RESOURCE.into(),
            namespace: Some(target),
            name: v.pvc.clone(),
            action,
            reason: Some(reason),
            diff: Vec::new(),
            result: None,
            hooks: Vec::new(),
            warnings: Vec::new(),
            message: None,
            object: json!({"snapshot": snapshot, "bytes": v.bytes, "files": v.files,
                           "sourceNamespace": v.namespace}),
            tier: spec.tier(GROUP_RESOURCE),
        });
    }
    out
}

/// The claims a workload object mounts, by name (StatefulSets: the claims
/// their templates make, `<template>-<set>-<ordinal>`).
pub fn claims_mounted(group_resource: &str, object: &Value) -> BTreeSet<String> {
    let pod_spec = match group_resource {
        "pods" => &object["spec"],
        "cronjobs.batch" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &object["spec"]["template"]["spec"],
    };
    let mut out: BTreeSet<String> = pod_spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .map(str::to_string)
        .collect();
    if group_resource == "statefulsets.apps" {
        let set = object["metadata"]["name"].as_str().unwrap_or_default();
        let replicas = object["spec"]["replicas"].as_u64().unwrap_or(1);
        for template in object["spec"]["volumeClaimTemplates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = template["metadata"]["name"].as_str().unwrap_or_default();
            for ordinal in 0..replicas {
                out.insert(format!("{name}-{set}-{ordinal}"));
            }
        }
    }
    out
}

/// Why a workload line must not be created: it mounts a claim whose data
/// failed to come back (`failed` holds (namespace, claim)).
pub fn blocked_by(line: &PlanItem, failed: &BTreeSet<(String, String)>) -> Option<String> {
    let ns = line.namespace.as_deref()?;
    claims_mounted(&line.group_resource, &line.object)
        .into_iter()
        .find(|claim| failed.contains(&(ns.to_string(), claim.clone())))
        .map(|claim| {
            format!(
                "not created: the data of claim {claim} did not come back, and a workload must not start on an empty volume"
            )
        })
}

/// Restores one volume line: helper pod, agent, helper removed.
pub async fn apply_line(
    client: &kube::Client,
    ctx: &VolumeRestore,
    restore: &str,
    line: &mut PlanItem,
) {
    let Some(ns) = line.namespace.clone() else {
        return;
    };
    let name = helper::name_for("restore", &line.name);
    let labels = crate::cluster::temporary::labels(
        "restore-helper",
        &crate::cluster::temporary::Operation::Restore(restore.to_string()),
    );
    let outcome = match helper::start(
        client,
        &ns,
        &name,
        &line.name,
        false,
        &ctx.helper_image,
        labels,
    )
    .await
    {
        Ok(pod) => write(ctx, restore, line, &pod).await,
        Err(e) => Err(e.into()),
    };
    // The helper goes whatever happened, and is gone before the workloads start.
    if let Err(e) = helper::remove(client, &ns, &name).await {
        tracing::warn!(namespace = %ns, pod = %name, error = %e, "removing a restore helper pod failed");
    }
    match outcome {
        Ok(message) => {
            line.result = Some(ItemResult::Created);
            line.message = Some(message);
        }
        Err(message) => {
            line.result = Some(ItemResult::Failed);
            line.message = Some(message.to_string());
        }
    }
}

async fn write(
    ctx: &VolumeRestore,
    restore: &str,
    line: &PlanItem,
    pod: &helper::Helper,
) -> Result<String, crate::volumes::dispatch::StepError> {
    let task = VolumeTask {
        kind: TaskKind::Restore,
        owner: restore.to_string(),
        location: ctx.location.clone(),
        node: pod.node.clone(),
        spec: TaskSpec {
            namespace: pod.namespace.clone(),
            pvc: line.name.clone(),
            pod: pod.name.clone(),
            pod_uid: pod.uid.clone(),
            pv: pod.pv.clone(),
            backup: ctx.backup.clone(),
            snapshot: line.object["snapshot"].as_str().map(str::to_string),
        },
    };
    let result = ctx.work.run(task).await?;
    Ok(format!(
        "{} in {} files written on node {}",
        crate::human_bytes(result.bytes),
        result.files,
        pod.node
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_that_mount_a_claim_whose_data_failed_are_blocked() {
        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 2,
            "template": {"spec": {"volumes": [{"name": "cfg", "configMap": {"name": "c"}}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}});
        assert_eq!(
            claims_mounted("statefulsets.apps", &sts),
            BTreeSet::from(["data-db-0".to_string(), "data-db-1".to_string()])
        );
        let deploy = json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "v", "persistentVolumeClaim": {"claimName": "uploads"}},
            {"name": "e", "emptyDir": {}}]}}}});
        assert_eq!(
            claims_mounted("deployments.apps", &deploy),
            BTreeSet::from(["uploads".to_string()])
        );
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"volumes": [
            {"name": "v", "persistentVolumeClaim": {"claimName": "reports"}}]}}}}}});
        assert_eq!(
            claims_mounted("cronjobs.batch", &cron),
            BTreeSet::from(["reports".to_string()])
        );

        let failed = BTreeSet::from([("shop".to_string(), "data-db-1".to_string())]);
        let line = |ns: &str, object: &Value| PlanItem {
            group_resource: "statefulsets.apps".into(),
            namespace: Some(ns.into()),
            name: "db".into(),
            action: Action::Create,
            reason: None,
            diff: Vec::new(),
            result: None,
            hooks: Vec::new(),
            warnings: Vec::new(),
            message: None,
            object: object.clone(),
            tier: 0,
        };
        let why = blocked_by(&line("shop", &sts), &failed).expect("blocked");
        assert!(why.contains("data-db-1"), "{why}");
        // The same claim name in another namespace is another claim.
        assert_eq!(blocked_by(&line("other", &sts), &failed), None);
    }
}
