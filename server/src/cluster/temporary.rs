//! Lifeboat's own temporary objects in a cluster: the helper pods that let
//! an agent reach a claim, the VolumeSnapshots and the claims made from them
//! while a backup reads a volume, and the scratch namespaces of drills.
//!
//! Every one carries [`TEMPORARY_LABEL`] (what it is) and the operation it
//! belongs to (`lifeboat.io/backup` or `lifeboat.io/restore`: its name).
//! Three rules follow from that label, and live here so that they agree:
//! - a backup never captures such an object ([`is_temporary`]), whoever
//!   made it, nor the volume bound to such a claim;
//! - a restore never recreates one, also from older backups that hold one
//!   (made before the label existed: [`is_temporary`] knows their shape);
//! - those of operations no longer running are removed ([`list`], then
//!   [`remove`]; `schedule::sweep_temporaries` decides which), after a
//!   restart and on every GC pass, and never anything Lifeboat did not label.

use std::collections::BTreeSet;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use serde_json::{Value, json};

/// What a temporary object is: `backup-helper`, `restore-helper`,
/// `snapshot` or `snapshot-claim`.
pub const TEMPORARY_LABEL: &str = "lifeboat.io/temporary";
/// The [`TEMPORARY_LABEL`] of a drill's scratch namespace. Backups leave
/// such a namespace and everything in it out; the drill deletes it.
pub const SCRATCH_NAMESPACE: &str = "drill-namespace";
/// The backup a temporary object belongs to.
pub const BACKUP_LABEL: &str = "lifeboat.io/backup";
/// The restore (or drill) a temporary object belongs to.
pub const RESTORE_LABEL: &str = "lifeboat.io/restore";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// The operation a temporary object belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Backup(String),
    Restore(String),
}

impl Operation {
    fn label(&self) -> (&'static str, &str) {
        match self {
            Operation::Backup(name) => (BACKUP_LABEL, name),
            Operation::Restore(name) => (RESTORE_LABEL, name),
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operation::Backup(name) => write!(f, "backup {name}"),
            Operation::Restore(name) => write!(f, "restore {name}"),
        }
    }
}

/// The labels of a temporary object: what it is and whose it is.
pub fn labels(purpose: &str, operation: &Operation) -> Value {
    let (key, name) = operation.label();
    json!({TEMPORARY_LABEL: purpose, key: name, MANAGED_BY: "lifeboat"})
}

fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][key].as_str()
}

/// Whether `obj` (as the API returned it, with `kind`) is one of Lifeboat's
/// temporary objects: labelled as one, or of the shape Lifeboat made them
/// before the label (helper pods named `lifeboat-backup-…`/`lifeboat-restore-…`
/// managed by Lifeboat; snapshots and claims named `lifeboat-snap-…` with a
/// backup's label).
pub fn is_temporary(obj: &Value) -> bool {
    if label(obj, TEMPORARY_LABEL).is_some() {
        return true;
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    match kind {
        "Pod" => {
            label(obj, MANAGED_BY) == Some("lifeboat")
                && (name.starts_with("lifeboat-backup-") || name.starts_with("lifeboat-restore-"))
        }
        "PersistentVolumeClaim" | "VolumeSnapshot" => {
            name.starts_with("lifeboat-snap-") && label(obj, BACKUP_LABEL).is_some()
        }
        _ => false,
    }
}

/// The operation a temporary object belongs to.
pub fn operation_of(obj: &Value) -> Option<Operation> {
    if let Some(name) = label(obj, BACKUP_LABEL) {
        return Some(Operation::Backup(name.to_string()));
    }
    label(obj, RESTORE_LABEL).map(|name| Operation::Restore(name.to_string()))
}

fn snapshots() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", "VolumeSnapshot"),
        "volumesnapshots",
    )
}

/// One temporary object found in the cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub operation: Operation,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}/{} ({})",
            self.kind, self.namespace, self.name, self.operation
        )
    }
}

/// Every temporary object in the cluster, pods first, then claims, then
/// snapshots (the order they are removed in). A type the cluster does not
/// serve (no snapshot API) has none.
pub async fn list(client: &kube::Client) -> Result<Vec<Found>, kube::Error> {
    let kinds: [(&'static str, ApiResource); 3] = [
        (
            "Pod",
            ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
        ),
        (
            "PersistentVolumeClaim",
            ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
        ),
        ("VolumeSnapshot", snapshots()),
    ];
    let mut out = Vec::new();
    for (kind, resource) in kinds {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        // Labelled ones, and the unlabelled shapes of older versions.
        let selectors = [
            TEMPORARY_LABEL.to_string(),
            if kind == "Pod" {
                format!("{MANAGED_BY}=lifeboat")
            } else {
                BACKUP_LABEL.to_string()
            },
        ];
        let mut seen = BTreeSet::new();
        for selector in selectors {
            let listed = match api.list(&ListParams::default().labels(&selector)).await {
                Ok(listed) => listed,
                Err(kube::Error::Api(s)) if s.code == 404 => break,
                Err(e) => return Err(e),
            };
            for item in listed.items {
                let mut obj = serde_json::to_value(&item).unwrap_or_default();
                obj["kind"] = json!(kind);
                if !is_temporary(&obj) {
                    continue;
                }
                let Some(operation) = operation_of(&obj) else {
                    continue;
                };
                let found = Found {
                    kind,
                    namespace: item.metadata.namespace.clone().unwrap_or_default(),
                    name: item.metadata.name.clone().unwrap_or_default(),
                    operation,
                };
                if seen.insert((found.namespace.clone(), found.name.clone())) {
                    out.push(found);
                }
            }
        }
    }
    Ok(out)
}

/// Deletes `found` (pods without a grace period, the rest in the
/// background); returns what it deleted. A failure to delete one object is
/// logged and the rest still go (the next pass tries again).
pub async fn remove(client: &kube::Client, found: Vec<Found>) -> Vec<Found> {
    let mut removed = Vec::new();
    for found in found {
        let resource = match found.kind {
            "Pod" => ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
            "PersistentVolumeClaim" => {
                ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&())
            }
            _ => snapshots(),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &found.namespace, &resource);
        let params = if found.kind == "Pod" {
            DeleteParams::default().grace_period(0)
        } else {
            DeleteParams::background()
        };
        match api.delete(&found.name, &params).await {
            Ok(_) => removed.push(found),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                tracing::warn!(object = %found, error = %e, "removing a temporary object failed; the next pass tries again");
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, name: &str, labels: Value) -> Value {
        json!({"kind": kind, "metadata": {"name": name, "namespace": "data", "labels": labels}})
    }

    #[test]
    fn labelled_objects_and_the_shapes_of_older_versions_are_temporary_and_nothing_else() {
        let op = Operation::Backup("b1".into());
        let helper = obj("Pod", "lifeboat-backup-x-1", labels("backup-helper", &op));
        assert!(is_temporary(&helper));
        assert_eq!(operation_of(&helper), Some(op.clone()));
        let restore_op = Operation::Restore("r1".into());
        let claim = obj(
            "PersistentVolumeClaim",
            "anything",
            labels("restore-helper", &restore_op),
        );
        assert_eq!(operation_of(&claim), Some(restore_op));
        // Before the label: the shapes Lifeboat made.
        let old_pod = obj(
            "Pod",
            "lifeboat-backup-db-0-abc123",
            json!({BACKUP_LABEL: "b0", MANAGED_BY: "lifeboat"}),
        );
        assert!(is_temporary(&old_pod));
        let old_snap = obj(
            "VolumeSnapshot",
            "lifeboat-snap-data-0-abc123",
            json!({BACKUP_LABEL: "b0"}),
        );
        assert!(is_temporary(&old_snap));
        let old_claim = obj(
            "PersistentVolumeClaim",
            "lifeboat-snap-data-0-abc123",
            json!({BACKUP_LABEL: "b0"}),
        );
        assert!(is_temporary(&old_claim));
        // Restored user objects carry the backup's and restore's labels: not temporary.
        let restored = obj(
            "PersistentVolumeClaim",
            "data-postgres-0",
            json!({BACKUP_LABEL: "b0", RESTORE_LABEL: "r0"}),
        );
        assert!(!is_temporary(&restored));
        let users_pod = obj("Pod", "lifeboat-backup-tool", json!({"app": "tool"}));
        assert!(!is_temporary(&users_pod));
        let users_claim = obj("PersistentVolumeClaim", "lifeboat-snap-mine", json!({}));
        assert!(!is_temporary(&users_claim));
    }
}
