//! Light controllers, each switchable: what kube-controller-manager and the
//! kubelet would do, enough for Lifeboat's tests and a living demo. Each pass
//! is level-triggered over the whole store and idempotent, so writes that
//! change nothing produce no events and the loop settles.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{DeleteOptions, Store, now};

/// Which controllers run.
#[derive(Clone, Debug)]
pub struct Controllers {
    /// ownerReference garbage collection and namespace termination (as the API server needs).
    pub garbage_collector: bool,
    /// Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and their Pods.
    pub workloads: bool,
    /// PVCs bound to generated PVs; PV reclaim.
    pub volumes: bool,
    /// Pods scheduled and started; crash-looping ones (annotation `kubesim.io/crash-loop`) restart.
    pub kubelet: bool,
    /// The `kube-root-ca.crt` ConfigMap in every namespace, as
    /// kube-controller-manager's root-ca-cert-publisher keeps it.
    pub root_ca_publisher: bool,
    /// ClusterRoles with an `aggregationRule` hold the rules of the roles
    /// their selectors match (kube-controller-manager's clusterrole-aggregation).
    pub role_aggregation: bool,
    /// The `default` ServiceAccount in every namespace, as
    /// kube-controller-manager's serviceaccount controller makes it.
    pub service_accounts: bool,
    /// Real volume data under this directory (the simulated nodes' disks):
    /// the hostpath provisioner makes `volumes/<pv>` for each PV it creates
    /// (and removes it when the PV is reclaimed), and each node's kubelet
    /// lays out `nodes/<node>/kubelet/pods/<pod uid>/volumes/kubernetes.io~csi/<pv>/mount`
    /// (a symlink to the PV's directory) for its running pods that mount a
    /// claim, as a node agent finds them under the kubelet's root.
    pub volume_data: Option<std::path::PathBuf>,
}

/// Where a PV's data lives under `root`.
pub fn volume_dir(root: &std::path::Path, pv: &str) -> std::path::PathBuf {
    root.join("volumes").join(pv)
}

/// A node's kubelet root directory (`/var/lib/kubelet` on a real node) under `root`.
pub fn kubelet_root(root: &std::path::Path, node: &str) -> std::path::PathBuf {
    root.join("nodes").join(node).join("kubelet")
}

impl Default for Controllers {
    fn default() -> Self {
        Self::all()
    }
}

impl Controllers {
    pub fn all() -> Self {
        Self {
            garbage_collector: true,
            workloads: true,
            volumes: true,
            kubelet: true,
            root_ca_publisher: true,
            role_aggregation: true,
            service_accounts: true,
            volume_data: None,
        }
    }

    /// Only what the API server itself does (GC and namespace lifecycle).
    pub fn api_only() -> Self {
        Self {
            garbage_collector: true,
            workloads: false,
            volumes: false,
            kubelet: false,
            root_ca_publisher: true,
            role_aggregation: true,
            service_accounts: true,
            volume_data: None,
        }
    }

    /// Nothing runs: the store holds exactly what clients wrote (benchmarks).
    pub fn none() -> Self {
        Self {
            garbage_collector: false,
            workloads: false,
            volumes: false,
            kubelet: false,
            root_ca_publisher: false,
            role_aggregation: false,
            service_accounts: false,
            volume_data: None,
        }
    }

    /// Runs until the task is dropped.
    pub async fn run(self, store: Store, restart_interval: Duration) {
        let mut restarts = tokio::time::interval(restart_interval);
        restarts.tick().await;
        let mut changes = store.watch_changes();
        loop {
            // Several passes while things keep changing, then wait for the next change.
            for _ in 0..20 {
                if !self.pass(&store) {
                    break;
                }
            }
            tokio::select! {
                _ = changes.changed() => {
                    // Let a burst of writes land before the next pass.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ = restarts.tick(), if self.kubelet => {
                    crash_loops(&store);
                    if let Some(root) = &self.volume_data {
                        append_writes(&store, root);
                    }
                }
            }
        }
    }

    /// One reconcile pass; true when it changed something.
    pub fn pass(&self, store: &Store) -> bool {
        let before = store.current_rv();
        if self.garbage_collector {
            garbage_collect(store);
            terminate_namespaces(store);
        }
        if self.workloads {
            deployments(store);
            replicasets(store);
            statefulsets(store);
            daemonsets(store);
            jobs(store);
        }
        if self.volumes {
            volumes(store, self.volume_data.as_deref());
            if let Some(root) = &self.volume_data {
                snapshots(store, root);
            }
        }
        if self.kubelet {
            kubelet(store);
            if let Some(root) = &self.volume_data {
                lay_out_volumes(store, root);
            }
        }
        if self.root_ca_publisher {
            publish_root_ca(store);
        }
        if self.role_aggregation {
            crate::rbac::aggregate_cluster_roles(store);
        }
        if self.service_accounts {
            default_service_accounts(store);
        }
        store.current_rv() != before
    }
}

/// Every active namespace holds `kube-root-ca.crt` with the cluster's CA
/// (the ConfigMap pods mount to reach the API server).
fn publish_root_ca(store: &Store) {
    let Some(ca) = store.root_ca() else { return };
    let namespaces = rt(store, "", "v1", "namespaces");
    let configmaps = rt(store, "", "v1", "configmaps");
    const NAME: &str = "kube-root-ca.crt";
    for ns in all_of(store, &namespaces) {
        if ns["status"]["phase"] == "Terminating" {
            continue;
        }
        let Some(ns) = ns["metadata"]["name"].as_str() else {
            continue;
        };
        let wanted = json!({"ca.crt": ca});
        match store.get(&configmaps, Some(ns), NAME) {
            Ok(cm) if cm["data"] == wanted => {}
            Ok(mut cm) => {
                cm["data"] = wanted;
                let _ = store.update(&configmaps, Some(ns), NAME, cm, false, false);
            }
            Err(_) => {
                let _ = store.create(
                    &configmaps,
                    Some(ns),
                    json!({"metadata": {"name": NAME, "annotations": {
                        "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                        "data": wanted}),
                    false,
                );
            }
        }
    }
}

/// Every active namespace holds the ServiceAccount `default` (pods that name
/// none run as it). Made again when deleted, never changed once there.
fn default_service_accounts(store: &Store) {
    let namespaces = rt(store, "", "v1", "namespaces");
    let accounts = rt(store, "", "v1", "serviceaccounts");
    for ns in all_of(store, &namespaces) {
        if ns["status"]["phase"] == "Terminating" {
            continue;
        }
        let Some(ns) = ns["metadata"]["name"].as_str() else {
            continue;
        };
        if store.get(&accounts, Some(ns), "default").is_err() {
            let _ = store.create(
                &accounts,
                Some(ns),
                json!({"metadata": {"name": "default"}}),
                false,
            );
        }
    }
}

fn rt(store: &Store, group: &str, version: &str, resource: &str) -> ResourceType {
    store
        .find(group, version, resource)
        .unwrap_or_else(|| panic!("built-in resource {resource} is registered"))
}

fn all_of(store: &Store, rt: &ResourceType) -> Vec<Value> {
    store
        .list(
            rt,
            None,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
        .0
}

/// The PersistentVolumes of the claims a pod mounts (bound claims only).
pub(crate) fn claimed_volumes<'a>(pod: &'a Value, claims: &'a [Value]) -> Vec<&'a str> {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|volume| volume["persistentVolumeClaim"]["claimName"].as_str())
        .filter_map(|claim| {
            claims
                .iter()
                .find(|c| ns_of(c) == ns_of(pod) && name_of(c) == claim)
                .and_then(|c| c["spec"]["volumeName"].as_str())
        })
        .collect()
}

fn ns_of(obj: &Value) -> Option<&str> {
    obj["metadata"]["namespace"].as_str()
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

fn being_deleted(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

fn owned_by<'a>(items: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    let uid = uid_of(owner);
    items
        .iter()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
        .collect()
}

fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

/// The revision kube-controller-manager records on a ReplicaSet.
const REVISION: &str = "deployment.kubernetes.io/revision";

fn revision_of(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// What the StatefulSet and DaemonSet controllers keep of each template:
/// a ControllerRevision `<name>-<hash>` numbered in order (a template seen
/// before gets the next number again, as a rollback does).
fn controller_revision(store: &Store, owner: &Value) {
    let Some(revisions) = store.find("apps", "v1", "controllerrevisions") else {
        return;
    };
    let ns = ns_of(owner).unwrap_or_default().to_string();
    let template = owner["spec"]["template"].clone();
    let hash = template_hash(&template);
    let name = format!("{}-{hash}", name_of(owner));
    let all = all_of(store, &revisions);
    let owned = owned_by(&all, owner);
    let newest = owned
        .iter()
        .filter_map(|r| r["revision"].as_i64())
        .max()
        .unwrap_or(0);
    match owned.iter().find(|r| name_of(r) == name) {
        Some(current) if current["revision"].as_i64() == Some(newest) => {}
        Some(current) => {
            let mut again = (*current).clone();
            again["revision"] = json!(newest + 1);
            let _ = store.update(&revisions, Some(&ns), &name, again, false, false);
        }
        None => {
            let mut labels = template["metadata"]["labels"].clone();
            labels["controller-revision-hash"] = json!(hash);
            let mut patch = template.clone();
            patch["$patch"] = json!("replace");
            let _ = store.create(
                &revisions,
                Some(&ns),
                json!({
                    "metadata": {"name": name, "labels": labels, "ownerReferences": [owner_ref(owner)]},
                    "data": {"spec": {"template": patch}},
                    "revision": newest + 1,
                }),
                false,
            );
        }
    }
}

/// FNV-1a of the pod template, as a stable pod-template-hash.
fn template_hash(template: &Value) -> String {
    let h = crate::fnv1a(template.to_string().bytes());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn record_event(store: &Store, involved: &Value, kind: &str, reason: &str, message: &str) {
    let Some(ns) = ns_of(involved) else { return };
    let events = rt(store, "", "v1", "events");
    let at = now();
    let _ = store.create(
        &events,
        Some(ns),
        json!({
            "metadata": {"generateName": format!("{}.", name_of(involved))},
            "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"],
                "name": involved["metadata"]["name"], "namespace": ns, "uid": involved["metadata"]["uid"]},
            "reason": reason, "message": message, "type": kind, "count": 1,
            "firstTimestamp": at, "lastTimestamp": at, "source": {"component": "kubesim"},
        }),
        false,
    );
}

/// Sets `status` (through the status subresource) if it differs.
fn set_status(store: &Store, rt: &ResourceType, obj: &Value, status: Value) {
    if obj["status"] == status {
        return;
    }
    let mut updated = obj.clone();
    updated["status"] = status;
    let _ = store.update(rt, ns_of(obj), name_of(obj), updated, true, false);
}

// ------------------------------------------------------------------ garbage collection

/// Deletes objects all of whose owners are gone, as kube-controller-manager's GC does.
fn garbage_collect(store: &Store) {
    let uids = store.uids();
    for (rt, obj) in store.all() {
        let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        if refs.is_empty() || being_deleted(&obj) {
            continue;
        }
        if refs
            .iter()
            .all(|r| !uids.contains(r["uid"].as_str().unwrap_or_default()))
        {
            let _ = store.delete(&rt, ns_of(&obj), name_of(&obj), &DeleteOptions::default());
        }
    }
}

/// Empties Terminating namespaces, then removes them.
fn terminate_namespaces(store: &Store) {
    let namespaces = rt(store, "", "v1", "namespaces");
    for ns in all_of(store, &namespaces) {
        if ns["status"]["phase"] != "Terminating" {
            continue;
        }
        let name = name_of(&ns).to_string();
        let mut remaining = 0;
        for (rt, obj) in store.all() {
            if !rt.namespaced || ns_of(&obj) != Some(name.as_str()) {
                continue;
            }
            remaining += 1;
            if !being_deleted(&obj) {
                let _ = store.delete(&rt, Some(&name), name_of(&obj), &DeleteOptions::default());
            }
        }
        if remaining == 0 {
            store.purge(&namespaces, None, &name);
        }
    }
}

// ------------------------------------------------------------------ workloads

fn deployments(store: &Store) {
    let deploys = rt(store, "apps", "v1", "deployments");
    let rsets = rt(store, "apps", "v1", "replicasets");
    let all_rs = all_of(store, &rsets);
    for mut d in all_of(store, &deploys) {
        if being_deleted(&d) {
            continue;
        }
        let ns = ns_of(&d).unwrap_or_default().to_string();
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let template = d["spec"]["template"].clone();
        let hash = template_hash(&template);
        let rs_name = format!("{}-{hash}", name_of(&d));
        let owned = owned_by(&all_rs, &d);
        for old in owned.iter().filter(|rs| name_of(rs) != rs_name) {
            if old["spec"]["replicas"].as_i64() != Some(0) {
                let mut scaled = (*old).clone();
                scaled["spec"]["replicas"] = json!(0);
                let _ = store.update(&rsets, Some(&ns), name_of(old), scaled, false, false);
            }
        }
        let current = owned.iter().find(|rs| name_of(rs) == rs_name);
        let newest = owned.iter().map(|rs| revision_of(rs)).max().unwrap_or(0);
        // A template seen before (a rollback) takes the next revision again.
        if let Some(rs) = current
            && revision_of(rs) < newest
        {
            let mut again = (*rs).clone();
            again["metadata"]["annotations"][REVISION] = json!((newest + 1).to_string());
            let _ = store.update(&rsets, Some(&ns), &rs_name, again, false, false);
        }
        let revision = match current {
            Some(rs) if revision_of(rs) >= newest => revision_of(rs),
            _ => newest + 1,
        };
        if d["metadata"]["annotations"][REVISION].as_str() != Some(revision.to_string().as_str()) {
            let mut annotated = d.clone();
            annotated["metadata"]["annotations"][REVISION] = json!(revision.to_string());
            if let Ok(updated) =
                store.update(&deploys, Some(&ns), name_of(&d), annotated, false, false)
            {
                d = updated;
            }
        }
        match current {
            None => {
                let mut pod_template = template.clone();
                pod_template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = d["spec"]["selector"].clone();
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let mut labels = template["metadata"]["labels"].clone();
                labels["pod-template-hash"] = json!(hash);
                let created = store.create(
                    &rsets,
                    Some(&ns),
                    json!({
                        "metadata": {"name": rs_name, "labels": labels, "ownerReferences": [owner_ref(&d)],
                                     "annotations": {REVISION: revision.to_string(),
                                                     "deployment.kubernetes.io/desired-replicas": replicas.to_string()}},
                        "spec": {"replicas": replicas, "selector": selector, "template": pod_template},
                    }),
                    false,
                );
                if created.is_ok() {
                    record_event(
                        store,
                        &d,
                        "Normal",
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {rs_name} to {replicas}"),
                    );
                }
            }
            Some(rs) if rs["spec"]["replicas"].as_i64() != Some(replicas) => {
                let mut scaled = (*rs).clone();
                scaled["spec"]["replicas"] = json!(replicas);
                let _ = store.update(&rsets, Some(&ns), &rs_name, scaled, false, false);
                record_event(
                    store,
                    &d,
                    "Normal",
                    "ScalingReplicaSet",
                    &format!("Scaled replica set {rs_name} to {replicas}"),
                );
            }
            Some(_) => {}
        }
        let sum = |field: &str| -> i64 {
            owned
                .iter()
                .map(|rs| rs["status"][field].as_i64().unwrap_or(0))
                .sum()
        };
        let updated = current.map_or(0, |rs| rs["status"]["replicas"].as_i64().unwrap_or(0));
        let available = sum("availableReplicas");
        let mut status = json!({
            "observedGeneration": d["metadata"]["generation"],
            "replicas": sum("replicas"),
            "updatedReplicas": updated,
            "readyReplicas": sum("readyReplicas"),
            "availableReplicas": available,
            "conditions": [{
                "type": "Available",
                "status": if available >= replicas { "True" } else { "False" },
                "reason": if available >= replicas { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
            }],
        });
        if replicas > available {
            status["unavailableReplicas"] = json!(replicas - available);
        }
        set_status(store, &deploys, &d, status);
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Creates or removes pods so that `owner` has `replicas` of them.
fn scale_pods(
    store: &Store,
    pods_rt: &ResourceType,
    pods: &[&Value],
    owner: &Value,
    replicas: i64,
) {
    let ns = ns_of(owner).unwrap_or_default();
    let live: Vec<&&Value> = pods.iter().filter(|p| !being_deleted(p)).collect();
    let have = live.len() as i64;
    for _ in have..replicas {
        let mut pod = json!({
            "metadata": {"generateName": format!("{}-", name_of(owner)),
                         "labels": owner["spec"]["template"]["metadata"]["labels"],
                         "annotations": owner["spec"]["template"]["metadata"]["annotations"],
                         "ownerReferences": [owner_ref(owner)]},
            "spec": owner["spec"]["template"]["spec"],
        });
        if pod["metadata"]["annotations"].is_null()
            && let Some(m) = pod["metadata"].as_object_mut()
        {
            m.remove("annotations");
        }
        if let Ok(created) = store.create(pods_rt, Some(ns), pod, false) {
            record_event(
                store,
                owner,
                "Normal",
                "SuccessfulCreate",
                &format!("Created pod: {}", name_of(&created)),
            );
        }
    }
    for extra in live
        .iter()
        .skip(usize::try_from(replicas.max(0)).unwrap_or(0))
    {
        let _ = store.delete(pods_rt, Some(ns), name_of(extra), &DeleteOptions::default());
    }
}

fn replicasets(store: &Store) {
    let rsets = rt(store, "apps", "v1", "replicasets");
    let pods_rt = rt(store, "", "v1", "pods");
    let pods = all_of(store, &pods_rt);
    for rs in all_of(store, &rsets) {
        if being_deleted(&rs) {
            continue;
        }
        let replicas = rs["spec"]["replicas"].as_i64().unwrap_or(1);
        let owned = owned_by(&pods, &rs);
        scale_pods(store, &pods_rt, &owned, &rs, replicas);
        let ready = owned.iter().filter(|p| is_ready(p)).count();
        set_status(
            store,
            &rsets,
            &rs,
            json!({"replicas": owned.len(), "readyReplicas": ready, "availableReplicas": ready,
                   "fullyLabeledReplicas": owned.len(), "observedGeneration": rs["metadata"]["generation"]}),
        );
    }
}

fn statefulsets(store: &Store) {
    let sets = rt(store, "apps", "v1", "statefulsets");
    let pods_rt = rt(store, "", "v1", "pods");
    let pvcs = rt(store, "", "v1", "persistentvolumeclaims");
    let pods = all_of(store, &pods_rt);
    for sts in all_of(store, &sets) {
        if being_deleted(&sts) {
            continue;
        }
        controller_revision(store, &sts);
        let ns = ns_of(&sts).unwrap_or_default().to_string();
        let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
        let owned = owned_by(&pods, &sts);
        for i in 0..replicas {
            let pod_name = format!("{}-{i}", name_of(&sts));
            let mut volumes = sts["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for tmpl in sts["spec"]["volumeClaimTemplates"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let claim = format!("{}-{pod_name}", name_of(&tmpl));
                let _ = store.create(
                    &pvcs,
                    Some(&ns),
                    json!({"metadata": {"name": claim, "labels": sts["spec"]["selector"]["matchLabels"]},
                           "spec": tmpl["spec"]}),
                    false,
                );
                volumes.push(
                    json!({"name": name_of(&tmpl), "persistentVolumeClaim": {"claimName": claim}}),
                );
            }
            if owned.iter().any(|p| name_of(p) == pod_name) {
                continue;
            }
            let mut spec = sts["spec"]["template"]["spec"].clone();
            spec["volumes"] = json!(volumes);
            spec["hostname"] = json!(pod_name);
            let mut labels = sts["spec"]["template"]["metadata"]["labels"].clone();
            labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
            let mut metadata =
                json!({"name": pod_name, "labels": labels, "ownerReferences": [owner_ref(&sts)]});
            // The template's annotations, as the StatefulSet controller copies them.
            if let Some(a) = sts["spec"]["template"]["metadata"]["annotations"].as_object() {
                metadata["annotations"] = json!(a);
            }
            if store
                .create(
                    &pods_rt,
                    Some(&ns),
                    json!({"metadata": metadata, "spec": spec}),
                    false,
                )
                .is_ok()
            {
                record_event(
                    store,
                    &sts,
                    "Normal",
                    "SuccessfulCreate",
                    &format!(
                        "create Pod {pod_name} in StatefulSet {} successful",
                        name_of(&sts)
                    ),
                );
            }
        }
        for extra in owned.iter().filter(|p| {
            name_of(p)
                .rsplit('-')
                .next()
                .and_then(|i| i.parse::<i64>().ok())
                .is_some_and(|i| i >= replicas)
        }) {
            let _ = store.delete(
                &pods_rt,
                Some(&ns),
                name_of(extra),
                &DeleteOptions::default(),
            );
        }
        let ready = owned.iter().filter(|p| is_ready(p)).count();
        set_status(
            store,
            &sets,
            &sts,
            json!({"replicas": owned.len(), "readyReplicas": ready, "currentReplicas": owned.len(),
                   "updatedReplicas": owned.len(), "availableReplicas": ready,
                   "observedGeneration": sts["metadata"]["generation"]}),
        );
    }
}

fn daemonsets(store: &Store) {
    let sets = rt(store, "apps", "v1", "daemonsets");
    let pods_rt = rt(store, "", "v1", "pods");
    let nodes = all_of(store, &rt(store, "", "v1", "nodes"));
    let pods = all_of(store, &pods_rt);
    for ds in all_of(store, &sets) {
        if being_deleted(&ds) {
            continue;
        }
        controller_revision(store, &ds);
        let ns = ns_of(&ds).unwrap_or_default().to_string();
        let owned = owned_by(&pods, &ds);
        for node in &nodes {
            let node_name = name_of(node);
            if owned.iter().any(|p| p["spec"]["nodeName"] == node_name) {
                continue;
            }
            let mut spec = ds["spec"]["template"]["spec"].clone();
            spec["nodeName"] = json!(node_name);
            let _ = store.create(
                &pods_rt,
                Some(&ns),
                json!({"metadata": {"generateName": format!("{}-", name_of(&ds)),
                                    "labels": ds["spec"]["template"]["metadata"]["labels"],
                                    "ownerReferences": [owner_ref(&ds)]},
                       "spec": spec}),
                false,
            );
        }
        let ready = owned.iter().filter(|p| is_ready(p)).count();
        set_status(
            store,
            &sets,
            &ds,
            json!({"desiredNumberScheduled": nodes.len(), "currentNumberScheduled": owned.len(),
                   "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": owned.len(),
                   "numberMisscheduled": 0, "observedGeneration": ds["metadata"]["generation"]}),
        );
    }
}

fn jobs(store: &Store) {
    let jobs_rt = rt(store, "batch", "v1", "jobs");
    let pods_rt = rt(store, "", "v1", "pods");
    let pods = all_of(store, &pods_rt);
    for job in all_of(store, &jobs_rt) {
        if being_deleted(&job) {
            continue;
        }
        let owned = owned_by(&pods, &job);
        let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
        let succeeded = owned
            .iter()
            .filter(|p| p["status"]["phase"] == "Succeeded")
            .count() as i64;
        let active = owned
            .iter()
            .filter(|p| p["status"]["phase"] != "Succeeded")
            .count() as i64;
        if succeeded + active < completions && active == 0 {
            scale_pods(store, &pods_rt, &[], &job, 1);
        }
        let mut status = json!({"succeeded": succeeded, "active": active, "startTime": job["metadata"]["creationTimestamp"]});
        if succeeded >= completions {
            let done = job["status"]["completionTime"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(now);
            status["completionTime"] = json!(done);
            status["conditions"] =
                json!([{"type": "Complete", "status": "True", "lastTransitionTime": done}]);
            status["active"] = json!(0);
        }
        set_status(store, &jobs_rt, &job, status);
    }
}

// ------------------------------------------------------------------ volumes

fn volumes(store: &Store, data: Option<&std::path::Path>) {
    let pvcs = rt(store, "", "v1", "persistentvolumeclaims");
    let pvs = rt(store, "", "v1", "persistentvolumes");
    let classes = all_of(store, &rt(store, "storage.k8s.io", "v1", "storageclasses"));
    let default_class = classes
        .iter()
        .find(|c| {
            c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
        })
        .map(|c| name_of(c).to_string());
    let all_pvs = all_of(store, &pvs);
    let claims = all_of(store, &pvcs);
    for pvc in &claims {
        if being_deleted(pvc) || pvc["status"]["phase"] == "Bound" {
            continue;
        }
        let ns = ns_of(pvc).unwrap_or_default();
        let volume_name = pvc["spec"]["volumeName"].as_str().map(str::to_string);
        let pv = match &volume_name {
            Some(v) => match all_pvs.iter().find(|p| name_of(p) == v) {
                Some(pv) => pv.clone(),
                None => continue, // waits for its PV, as in a real cluster
            },
            None => {
                let class = pvc["spec"]["storageClassName"]
                    .as_str()
                    .map(str::to_string)
                    .or(default_class.clone());
                let Some(class) = class else { continue };
                let reclaim = classes
                    .iter()
                    .find(|c| name_of(c) == class)
                    .and_then(|c| c["reclaimPolicy"].as_str())
                    .unwrap_or("Delete")
                    .to_string();
                let name = format!("pvc-{}", uid_of(pvc));
                let path = match data {
                    Some(root) => {
                        let dir = volume_dir(root, &name);
                        // A claim restored from a VolumeSnapshot starts with its data.
                        let source = snapshot_source(store, pvc, root);
                        if let Some(source) = &source {
                            if !source.is_dir() {
                                continue; // the snapshot is not ready yet
                            }
                            if copy_tree(source, &dir).is_err() {
                                continue;
                            }
                        } else if std::fs::create_dir_all(&dir).is_err() {
                            continue;
                        }
                        dir.display().to_string()
                    }
                    None => format!("/var/lib/kubesim/volumes/{name}"),
                };
                let created = store.create(
                    &pvs,
                    None,
                    json!({
                        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": "kubesim.io/hostpath"}},
                        "spec": {
                            "capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"].as_str().unwrap_or("1Gi")},
                            "accessModes": pvc["spec"]["accessModes"], "persistentVolumeReclaimPolicy": reclaim,
                            "storageClassName": class, "hostPath": {"path": path},
                            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": name_of(pvc),
                                         "uid": uid_of(pvc), "apiVersion": "v1"},
                        },
                    }),
                    false,
                );
                match created {
                    Ok(pv) => pv,
                    Err(_) => continue,
                }
            }
        };
        // Bind both sides.
        let mut bound_pv = pv.clone();
        bound_pv["spec"]["claimRef"] = json!({"kind": "PersistentVolumeClaim", "namespace": ns,
            "name": name_of(pvc), "uid": uid_of(pvc), "apiVersion": "v1"});
        if let Ok(updated) = store.update(&pvs, None, name_of(&pv), bound_pv, false, false) {
            set_status(store, &pvs, &updated, json!({"phase": "Bound"}));
        }
        let mut claim = pvc.clone();
        claim["spec"]["volumeName"] = json!(name_of(&pv));
        claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
        claim["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        if let Ok(updated) = store.update(&pvcs, Some(ns), name_of(pvc), claim, false, false) {
            set_status(
                store,
                &pvcs,
                &updated,
                json!({"phase": "Bound", "accessModes": pv["spec"]["accessModes"], "capacity": pv["spec"]["capacity"]}),
            );
        }
    }
    // Reclaim PVs whose claim is gone.
    let claim_uids: HashSet<&str> = claims.iter().map(uid_of).collect();
    for pv in all_of(store, &pvs) {
        let Some(uid) = pv["spec"]["claimRef"]["uid"].as_str() else {
            continue;
        };
        if claim_uids.contains(uid) || pv["status"]["phase"] != "Bound" {
            continue;
        }
        if pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" {
            set_status(store, &pvs, &pv, json!({"phase": "Released"}));
        } else if store
            .delete(&pvs, None, name_of(&pv), &DeleteOptions::default())
            .is_ok()
            && let Some(root) = data
        {
            // The provisioner deletes what it provisioned, data included.
            let _ = std::fs::remove_dir_all(volume_dir(root, name_of(&pv)));
        }
    }
}

// ------------------------------------------------------------------ kubelet

fn crash_looping(pod: &Value) -> bool {
    pod["metadata"]["annotations"]["kubesim.io/crash-loop"] == "true"
}

fn container_statuses(pod: &Value, running: bool, restarts: i64) -> Value {
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    json!(containers
        .iter()
        .map(|c| {
            let state = if running {
                json!({"running": {"startedAt": pod["metadata"]["creationTimestamp"]}})
            } else {
                json!({"waiting": {"reason": "CrashLoopBackOff",
                    "message": format!("back-off restarting failed container {} in pod {}", c["name"].as_str().unwrap_or_default(), name_of(pod))}})
            };
            json!({"name": c["name"], "image": c["image"], "ready": running, "started": running,
                   "restartCount": restarts, "state": state,
                   "lastState": if restarts > 0 { json!({"terminated": {"exitCode": 1, "reason": "Error"}}) } else { json!({}) }})
        })
        .collect::<Vec<_>>())
}

fn kubelet(store: &Store) {
    let pods_rt = rt(store, "", "v1", "pods");
    let nodes: Vec<String> = all_of(store, &rt(store, "", "v1", "nodes"))
        .iter()
        .filter(|n| n["spec"]["unschedulable"] != true)
        .map(|n| name_of(n).to_string())
        .collect();
    let mut load: BTreeMap<String, usize> = nodes.iter().map(|n| (n.clone(), 0)).collect();
    let pods = all_of(store, &pods_rt);
    for pod in &pods {
        if let Some(n) = pod["spec"]["nodeName"].as_str()
            && let Some(count) = load.get_mut(n)
        {
            *count += 1;
        }
    }
    let claims = all_of(store, &rt(store, "", "v1", "persistentvolumeclaims"));
    for pod in pods {
        if being_deleted(&pod) || pod["status"]["phase"] != "Pending" {
            continue;
        }
        let ns = ns_of(&pod).unwrap_or_default().to_string();
        // As the scheduler ("pod has unbound immediate PersistentVolumeClaims")
        // and the kubelet (volumes must mount) do: a pod waits for its claims.
        let unbound = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| {
                v["persistentVolumeClaim"]["claimName"]
                    .as_str()
                    .is_some_and(|claim| {
                        !claims.iter().any(|c| {
                            ns_of(c) == Some(ns.as_str())
                                && name_of(c) == claim
                                && c["status"]["phase"] == "Bound"
                        })
                    })
            });
        if unbound {
            continue;
        }
        let mut pod = pod;
        if pod["spec"]["nodeName"].is_null() {
            // Schedule on the least loaded node, if there is one.
            let Some((node, _)) = load
                .iter()
                .min_by_key(|(_, c)| **c)
                .map(|(n, c)| (n.clone(), *c))
            else {
                continue;
            };
            *load.entry(node.clone()).or_default() += 1;
            pod["spec"]["nodeName"] = json!(node);
            match store.update(
                &pods_rt,
                Some(&ns),
                name_of(&pod),
                pod.clone(),
                false,
                false,
            ) {
                Ok(updated) => pod = updated,
                Err(_) => continue,
            }
            record_event(
                store,
                &pod,
                "Normal",
                "Scheduled",
                &format!("Successfully assigned {ns}/{} to {node}", name_of(&pod)),
            );
        }
        let job_pod = pod["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["kind"] == "Job"));
        let at = now();
        let status = if job_pod {
            json!({"phase": "Succeeded", "startTime": at, "podIP": "10.244.0.10",
                   "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
                   "containerStatuses": pod["spec"]["containers"].as_array().cloned().unwrap_or_default().iter().map(|c| json!({
                       "name": c["name"], "image": c["image"], "ready": false, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}})).collect::<Vec<_>>()})
        } else if crash_looping(&pod) {
            json!({"phase": "Running", "startTime": at, "podIP": "10.244.0.11",
                   "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                   "containerStatuses": container_statuses(&pod, false, 1)})
        } else {
            json!({"phase": "Running", "startTime": at, "podIP": "10.244.0.12",
                   "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
                                  {"type": "ContainersReady", "status": "True"}, {"type": "Ready", "status": "True"}],
                   "containerStatuses": container_statuses(&pod, true, 0)})
        };
        set_status(store, &pods_rt, &pod, status);
        if crash_looping(&pod) {
            record_event(
                store,
                &pod,
                "Warning",
                "BackOff",
                "Back-off restarting failed container",
            );
        } else {
            record_event(store, &pod, "Normal", "Started", "Started container");
        }
    }
}

/// Where a snapshot's copy lives under `root`.
pub fn snapshot_dir(root: &std::path::Path, content: &str) -> std::path::PathBuf {
    root.join("snapshots").join(content)
}

/// Copies a directory tree: files with their modes and mtimes, symlinks as
/// symlinks, empty directories.
/// Copies a volume's tree as a block-level CSI snapshot would keep it:
/// contents with their holes, modes, symlinks, and the times of files and
/// directories.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            #[cfg(unix)]
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            filetime::set_symlink_file_times(
                &target,
                filetime::FileTime::from_last_access_time(&meta),
                filetime::FileTime::from_last_modification_time(&meta),
            )?;
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            copy_sparse(&entry.path(), &target)?;
        }
    }
    // Last: copying into a directory changes its time.
    let meta = std::fs::metadata(from)?;
    std::fs::set_permissions(to, meta.permissions())?;
    if let Ok(modified) = meta.modified() {
        let _ = std::fs::File::open(to)?.set_modified(modified);
    }
    Ok(())
}

/// Copies a file, leaving a hole wherever a 64 KiB block is all zeros.
fn copy_sparse(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let meta = std::fs::metadata(from)?;
    let mut source = std::fs::File::open(from)?;
    let mut target = std::fs::File::create(to)?;
    let mut block = vec![0u8; 64 * 1024];
    loop {
        let n = source.read(&mut block)?;
        if n == 0 {
            break;
        }
        if block[..n].iter().all(|b| *b == 0) {
            target.seek(SeekFrom::Current(n as i64))?;
        } else {
            target.write_all(&block[..n])?;
        }
    }
    target.set_len(meta.len())?;
    target.set_permissions(meta.permissions())?;
    if let Ok(modified) = meta.modified() {
        target.set_modified(modified)?;
    }
    Ok(())
}

/// The snapshot directory a claim's `dataSource` (a VolumeSnapshot) names, if any.
fn snapshot_source(
    store: &Store,
    pvc: &Value,
    root: &std::path::Path,
) -> Option<std::path::PathBuf> {
    let source = &pvc["spec"]["dataSource"];
    if source["kind"] != "VolumeSnapshot" {
        return None;
    }
    let snapshots = store.find("snapshot.storage.k8s.io", "v1", "volumesnapshots")?;
    let snapshot = store
        .get(
            &snapshots,
            ns_of(pvc),
            source["name"].as_str().unwrap_or_default(),
        )
        .ok();
    let content = snapshot
        .as_ref()
        .filter(|s| s["status"]["readyToUse"] == true)
        .and_then(|s| s["status"]["boundVolumeSnapshotContentName"].as_str());
    // Not ready (or missing): a path that does not exist, so the claim waits.
    Some(match content {
        Some(content) => snapshot_dir(root, content),
        None => root.join("snapshots").join(".not-ready"),
    })
}

/// The CSI snapshot controller and the hostpath driver's snapshotter: a
/// VolumeSnapshot of a bound claim, whose class names kubesim's driver, gets
/// a VolumeSnapshotContent and a copy of the PV's directory taken now, then
/// `readyToUse`. A content whose snapshot is gone is deleted with its copy
/// (deletionPolicy Delete).
fn snapshots(store: &Store, root: &std::path::Path) {
    let (Some(snaps), Some(contents), Some(classes)) = (
        store.find("snapshot.storage.k8s.io", "v1", "volumesnapshots"),
        store.find("snapshot.storage.k8s.io", "v1", "volumesnapshotcontents"),
        store.find("snapshot.storage.k8s.io", "v1", "volumesnapshotclasses"),
    ) else {
        return;
    };
    let pvcs = rt(store, "", "v1", "persistentvolumeclaims");
    let classes = all_of(store, &classes);
    let all = all_of(store, &snaps);
    for snap in &all {
        if snap["status"]["readyToUse"] == true || being_deleted(snap) {
            continue;
        }
        let ns = ns_of(snap).unwrap_or_default();
        let class = snap["spec"]["volumeSnapshotClassName"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                classes
                    .iter()
                    .find(|c| c["driver"] == "kubesim.io/hostpath")
                    .map(|c| name_of(c).to_string())
            });
        let Some(class) = class.filter(|c| {
            classes
                .iter()
                .any(|k| name_of(k) == c && k["driver"] == "kubesim.io/hostpath")
        }) else {
            continue; // another driver's snapshot: not ours to take
        };
        let Some(claim) = snap["spec"]["source"]["persistentVolumeClaimName"].as_str() else {
            continue;
        };
        let Some(pv) = store
            .get(&pvcs, Some(ns), claim)
            .ok()
            .and_then(|c| c["spec"]["volumeName"].as_str().map(str::to_string))
        else {
            continue; // waits for its claim to bind
        };
        let content_name = format!("snapcontent-{}", uid_of(snap));
        let copy = snapshot_dir(root, &content_name);
        if !copy.exists() && copy_tree(&volume_dir(root, &pv), &copy).is_err() {
            let _ = std::fs::remove_dir_all(&copy);
            continue;
        }
        let size = store
            .get(&pvcs, Some(ns), claim)
            .ok()
            .map(|c| c["status"]["capacity"]["storage"].clone())
            .unwrap_or(json!("0"));
        let at = now();
        if store.get(&contents, None, &content_name).is_err() {
            let _ = store.create(
                &contents,
                None,
                json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
                       "metadata": {"name": content_name},
                       "spec": {"driver": "kubesim.io/hostpath", "deletionPolicy": "Delete",
                                "volumeSnapshotClassName": class,
                                "source": {"volumeHandle": pv},
                                "volumeSnapshotRef": {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                                                      "namespace": ns, "name": name_of(snap), "uid": uid_of(snap)}}}),
                false,
            );
        }
        if let Ok(content) = store.get(&contents, None, &content_name) {
            set_status(
                store,
                &contents,
                &content,
                json!({"snapshotHandle": content_name, "readyToUse": true, "restoreSize": 0,
                       "creationTime": chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()}),
            );
        }
        set_status(
            store,
            &snaps,
            snap,
            json!({"boundVolumeSnapshotContentName": content_name, "readyToUse": true,
                   "creationTime": at, "restoreSize": size}),
        );
    }
    // Contents whose snapshot is gone go, with their copies.
    let live: HashSet<&str> = all.iter().map(uid_of).collect();
    for content in all_of(store, &contents) {
        let Some(uid) = content["spec"]["volumeSnapshotRef"]["uid"].as_str() else {
            continue;
        };
        if !live.contains(uid) && content["spec"]["deletionPolicy"] == "Delete" {
            let name = name_of(&content).to_string();
            if store
                .delete(&contents, None, &name, &DeleteOptions::default())
                .is_ok()
            {
                let _ = std::fs::remove_dir_all(snapshot_dir(root, &name));
            }
        }
    }
}

/// Each node's kubelet directory holds a mount of every claim its running
/// pods use, and nothing of pods that are gone.
fn lay_out_volumes(store: &Store, root: &std::path::Path) {
    let pods = all_of(store, &rt(store, "", "v1", "pods"));
    let claims = all_of(store, &rt(store, "", "v1", "persistentvolumeclaims"));
    let mut live: HashSet<(String, String)> = HashSet::new();
    for pod in &pods {
        let (Some(node), Some(_)) = (pod["spec"]["nodeName"].as_str(), ns_of(pod)) else {
            continue;
        };
        if pod["status"]["phase"] != "Running" || being_deleted(pod) {
            continue;
        }
        live.insert((node.to_string(), uid_of(pod).to_string()));
        for pv in claimed_volumes(pod, &claims) {
            let mount = kubelet_root(root, node)
                .join("pods")
                .join(uid_of(pod))
                .join("volumes/kubernetes.io~csi")
                .join(pv)
                .join("mount");
            if std::fs::symlink_metadata(&mount).is_ok() {
                continue;
            }
            if let Some(parent) = mount.parent()
                && std::fs::create_dir_all(parent).is_ok()
            {
                #[cfg(unix)]
                let _ = std::os::unix::fs::symlink(volume_dir(root, pv), &mount);
            }
        }
    }
    // Pods that are gone (or no longer running) leave nothing behind.
    let Ok(nodes) = std::fs::read_dir(root.join("nodes")) else {
        return;
    };
    for node in nodes.flatten() {
        let node_name = node.file_name().to_string_lossy().to_string();
        let Ok(pod_dirs) = std::fs::read_dir(node.path().join("kubelet/pods")) else {
            continue;
        };
        for dir in pod_dirs.flatten() {
            let uid = dir.file_name().to_string_lossy().to_string();
            if !live.contains(&(node_name.clone(), uid)) {
                let _ = std::fs::remove_dir_all(dir.path());
            }
        }
    }
}

/// The annotation that makes a running pod's "application" append a line
/// to a file in each claim it mounts, every restart interval (the demo's
/// database writes, so a drill shows data lost and data back).
pub const APPEND_ANNOTATION: &str = "kubesim.io/append";

fn append_writes(store: &Store, root: &std::path::Path) {
    use std::io::Write;
    let pods = all_of(store, &rt(store, "", "v1", "pods"));
    let claims = all_of(store, &rt(store, "", "v1", "persistentvolumeclaims"));
    for pod in pods.iter().filter(|p| p["status"]["phase"] == "Running") {
        let Some(file) = pod["metadata"]["annotations"][APPEND_ANNOTATION].as_str() else {
            continue;
        };
        // A file name in the volume, nothing that climbs out of it.
        if file.is_empty() || file.contains('/') || file.contains("..") {
            continue;
        }
        for pv in claimed_volumes(pod, &claims) {
            let dir = volume_dir(root, pv);
            if !dir.is_dir() {
                continue;
            }
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(file))
            {
                let _ = writeln!(f, "{} {} wrote a row", now(), name_of(pod));
            }
        }
    }
}

/// Crash-looping pods restart once more.
fn crash_loops(store: &Store) {
    let pods_rt = rt(store, "", "v1", "pods");
    for pod in all_of(store, &pods_rt) {
        if !crash_looping(&pod) || pod["status"]["phase"] != "Running" {
            continue;
        }
        let restarts = pod["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
            + 1;
        let mut status = pod["status"].clone();
        status["containerStatuses"] = container_statuses(&pod, false, restarts);
        set_status(store, &pods_rt, &pod, status);
    }
}
