//! What the cluster makes itself (its controllers, the kubelet, its CA
//! and token issuers), so that neither a restore nor a replay of the
//! journal brings it back.

use serde_json::Value;

use crate::cluster::discovery::gr;

/// Resources a restore never creates, whatever the backup holds.
const NEVER: &[&str] = &[
    "nodes",
    "events",
    "events.events.k8s.io",
    "csinodes.storage.k8s.io",
    "volumeattachments.storage.k8s.io",
    "endpoints",
    "endpointslices.discovery.k8s.io",
    "leases.coordination.k8s.io",
    "tokenreviews.authentication.k8s.io",
    "componentstatuses",
];

/// Whether a restore never brings this type back (the cluster recreates it).
pub fn never_restored(group_resource: &str) -> bool {
    NEVER.contains(&group_resource)
}

/// Why the cluster, not a restore, makes this object (its controller, the
/// kubelet, the cluster's own CA or tokens), or `None`.
pub fn left_to_the_cluster(gr: &str, name: &str, object: &Value) -> Option<String> {
    let owners: Vec<&str> = object["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| refs.iter().filter_map(|r| r["kind"].as_str()).collect())
        .unwrap_or_default();
    let why = match gr {
        "pods"
            if owners
                .iter()
                .any(|k| matches!(*k, "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job")) =>
        {
            "its controller recreates it"
        }
        "pods" if object["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() => {
            "mirror pods belong to the kubelet"
        }
        gr::REPLICA_SETS if owners.contains(&"Deployment") => "its Deployment recreates it",
        "controllerrevisions.apps"
            if owners
                .iter()
                .any(|k| matches!(*k, "StatefulSet" | "DaemonSet")) =>
        {
            "its controller records a new one"
        }
        gr::JOBS if owners.contains(&"CronJob") => "its CronJob recreates it",
        "configmaps" if name == "kube-root-ca.crt" => "the cluster publishes its own CA bundle",
        "secrets" if object["type"] == "kubernetes.io/service-account-token" => {
            "ServiceAccount token Secrets are issued by the cluster"
        }
        _ => return None,
    };
    Some(why.into())
}
