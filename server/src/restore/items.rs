//! The pure part of a restore: which backed-up objects to bring back, in
//! what order, rewritten how. No cluster, storage or database here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::spec::RestoreSpec;
use crate::cluster::discovery::gr;
use crate::selection::LabelSelector;

pub use crate::archive::Item;
use crate::cluster::recreated::{left_to_the_cluster, never_restored};
use crate::restore::RestoreSpecExt;

/// Why an item is left out, or `None` when it is restored.
pub fn excluded_reason(
    item: &Item,
    spec: &RestoreSpec,
    restored_pvs: &BTreeSet<String>,
) -> Option<String> {
    let gr = item.group_resource.as_str();
    if never_restored(gr) {
        return Some(format!(
            "{gr} are never restored: the cluster recreates them"
        ));
    }
    if crate::cluster::temporary::is_temporary(&item.object) {
        return Some(
            "one of Lifeboat's temporary objects (a helper pod, VolumeSnapshot or snapshot claim \
             of the operation that made it): never restored"
                .into(),
        );
    }
    if !spec.includes_resource(gr) {
        return Some("excluded by the resource filter".into());
    }
    if item.namespace.is_none() && gr != gr::NAMESPACES && !spec.cluster_resources() {
        return Some("cluster-scoped, and includeClusterResources is false".into());
    }
    if let Some(ns) = &item.namespace
        && !spec.includes_namespace(ns)
    {
        return Some("excluded by the namespace filter".into());
    }
    if gr == gr::NAMESPACES && !spec.includes_namespace(&item.name) {
        return Some("excluded by the namespace filter".into());
    }
    if let Some(sel) = spec.label_selector.as_deref().filter(|s| !s.is_empty())
        && !LabelSelector::parse(sel).is_ok_and(|s| s.matches(&item.object["metadata"]["labels"]))
    {
        return Some("excluded by the label selector".into());
    }
    if !spec.included_names.is_empty() && !spec.included_names.iter().any(|n| names(n, item)) {
        return Some("not among includedNames".into());
    }
    if let Some(why) = left_to_the_cluster(gr, &item.name, &item.object) {
        return Some(why);
    }
    if gr == gr::PERSISTENT_VOLUMES {
        let policy = item.object["spec"]["persistentVolumeReclaimPolicy"]
            .as_str()
            .unwrap_or("Delete");
        if policy != "Retain" && !restored_pvs.contains(&item.name) {
            return Some(
                "reclaim policy Delete and no volume data comes with it; its claim gets a new volume"
                    .into(),
            );
        }
    }
    None
}

/// Whether `name` (`kind/name` or `kind/namespace/name`) names the item.
/// The kind is the object's `kind` (`Deployment`), its resource
/// (`deployments`) or its group-resource (`deployments.apps`), in any case.
pub fn names(name: &str, item: &Item) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    let (kind, namespace, object) = match parts.as_slice() {
        [kind, object] => (*kind, None, *object),
        [kind, namespace, object] => (*kind, Some(*namespace), *object),
        _ => return false,
    };
    let gr = item.group_resource.as_str();
    let resource = gr.split('.').next().unwrap_or(gr);
    let kind_ok = kind.eq_ignore_ascii_case(gr)
        || kind.eq_ignore_ascii_case(resource)
        || item.object["kind"]
            .as_str()
            .is_some_and(|k| k.eq_ignore_ascii_case(kind));
    kind_ok && object == item.name && namespace == item.namespace.as_deref()
}

/// Restore order: lower tiers first. Custom resources and anything unknown come last.
pub fn tier(group_resource: &str) -> usize {
    const ORDER: &[&[&str]] = &[
        &[gr::CRDS],
        &[gr::NAMESPACES],
        &["storageclasses.storage.k8s.io"],
        &[gr::PERSISTENT_VOLUMES],
        &[gr::PERSISTENT_VOLUME_CLAIMS],
        // Volume data: after the claims, before anything that mounts them.
        &[super::volumes::GROUP_RESOURCE],
        &["serviceaccounts"],
        &["secrets"],
        &["configmaps"],
        &["limitranges"],
        &["resourcequotas"],
        &[
            "clusterroles.rbac.authorization.k8s.io",
            "roles.rbac.authorization.k8s.io",
        ],
        &[
            "clusterrolebindings.rbac.authorization.k8s.io",
            "rolebindings.rbac.authorization.k8s.io",
        ],
        &["services"],
        &[
            "deployments.apps",
            "statefulsets.apps",
            "daemonsets.apps",
            gr::REPLICA_SETS,
            "cronjobs.batch",
            gr::JOBS,
            "pods",
        ],
        &["ingresses.networking.k8s.io"],
        &["networkpolicies.networking.k8s.io"],
        &["poddisruptionbudgets.policy"],
        &["horizontalpodautoscalers.autoscaling"],
    ];
    if let Some(i) = ORDER.iter().position(|tier| tier.contains(&group_resource)) {
        return i;
    }
    // Other built-in groups before custom resources.
    let group = group_resource.split_once('.').map_or("", |(_, g)| g);
    let builtin = group.is_empty() || group.ends_with(".k8s.io") || !group.contains('.');
    if builtin {
        ORDER.len()
    } else {
        ORDER.len() + 1
    }
}

/// What the restored object looks like: system fields stripped, namespaces
/// mapped, references cleaned, labelled with its backup and restore.
pub fn rewrite(
    item: &Item,
    spec: &RestoreSpec,
    restored_pvs: &BTreeSet<String>,
    restore_name: &str,
) -> Value {
    rewrite_object(item.object.clone(), item, spec, restored_pvs, restore_name)
}

/// [`rewrite`] of `obj`, the item's object taken out of it (not copied):
/// `item.object` itself is not read.
pub fn rewrite_object(
    mut obj: Value,
    item: &Item,
    spec: &RestoreSpec,
    restored_pvs: &BTreeSet<String>,
    restore_name: &str,
) -> Value {
    let gr = item.group_resource.as_str();
    if let Some(meta) = obj["metadata"].as_object_mut() {
        for field in [
            "uid",
            "resourceVersion",
            "selfLink",
            "creationTimestamp",
            "generation",
            "generateName",
            "managedFields",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "ownerReferences",
        ] {
            meta.remove(field);
        }
        if let Some(ns) = &item.namespace {
            meta.insert("namespace".into(), json!(spec.target_namespace(ns)));
        }
        let labels = meta.entry("labels").or_insert(json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        labels["lifeboat.io/backup"] = json!(spec.backup_name);
        labels["lifeboat.io/restore"] = json!(restore_name);
        if spec.scratch_namespaces && item.group_resource == gr::NAMESPACES {
            labels[crate::cluster::temporary::TEMPORARY_LABEL] =
                json!(crate::cluster::temporary::SCRATCH_NAMESPACE);
        }
    }
    if !spec.restore_status && gr != gr::CRDS {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    } else if gr == gr::CRDS
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    match gr {
        gr::NAMESPACES => {
            let target = spec.target_namespace(&item.name).to_string();
            obj["metadata"]["name"] = json!(target);
            if let Some(l) = obj["metadata"]["labels"].as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(target));
            }
            if let Some(spec_map) = obj["spec"].as_object_mut() {
                spec_map.remove("finalizers");
            }
        }
        "services" => {
            let headless = obj["spec"]["clusterIP"] == "None";
            if let Some(s) = obj["spec"].as_object_mut() {
                if !headless {
                    s.remove("clusterIP");
                    s.remove("clusterIPs");
                }
                if !spec.preserve_node_ports
                    && let Some(ports) = s.get_mut("ports").and_then(Value::as_array_mut)
                {
                    for p in ports {
                        if let Some(p) = p.as_object_mut() {
                            p.remove("nodePort");
                        }
                    }
                }
                s.remove("healthCheckNodePort");
            }
        }
        "pods" => {
            if let Some(s) = obj["spec"].as_object_mut() {
                s.remove("nodeName");
            }
        }
        gr::JOBS => {
            // The uid labels tie the Job to its old selector; the API server
            // sets new ones. `job-name` labels stay: users select on them.
            let strip = |labels: &mut Value| {
                if let Some(l) = labels.as_object_mut() {
                    for k in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
                        l.remove(k);
                    }
                }
            };
            if obj["spec"]["manualSelector"] != true
                && let Some(s) = obj["spec"].as_object_mut()
            {
                s.remove("selector");
            }
            strip(&mut obj["spec"]["template"]["metadata"]["labels"]);
            strip(&mut obj["metadata"]["labels"]);
        }
        gr::PERSISTENT_VOLUMES => {
            if let Some(claim) = obj["spec"]["claimRef"].as_object_mut() {
                claim.remove("uid");
                claim.remove("resourceVersion");
                if let Some(ns) = claim
                    .get("namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                {
                    claim.insert("namespace".into(), json!(spec.target_namespace(&ns)));
                }
            }
        }
        gr::PERSISTENT_VOLUME_CLAIMS => {
            let volume = obj["spec"]["volumeName"].as_str().map(str::to_string);
            if volume.is_none_or(|v| !restored_pvs.contains(&v)) {
                if let Some(s) = obj["spec"].as_object_mut() {
                    s.remove("volumeName");
                }
                if let Some(a) = obj
                    .pointer_mut("/metadata/annotations")
                    .and_then(Value::as_object_mut)
                {
                    for k in [
                        "pv.kubernetes.io/bind-completed",
                        "pv.kubernetes.io/bound-by-controller",
                        "volume.kubernetes.io/selected-node",
                        "volume.beta.kubernetes.io/storage-provisioner",
                        "volume.kubernetes.io/storage-provisioner",
                    ] {
                        a.remove(k);
                    }
                }
            }
        }
        "rolebindings.rbac.authorization.k8s.io"
        | "clusterrolebindings.rbac.authorization.k8s.io" => {
            if let Some(subjects) = obj["subjects"].as_array_mut() {
                for s in subjects {
                    if let Some(ns) = s["namespace"].as_str().map(str::to_string) {
                        s["namespace"] = json!(spec.target_namespace(&ns));
                    }
                }
            }
        }
        _ => {}
    }
    apply_mappings(&mut obj, gr, spec);
    // `kubectl.kubernetes.io/last-applied-configuration` (and Helm's and Argo
    // CD's annotations) stay: the user's next `kubectl apply` needs them to
    // prune. The revision is the Deployment controller's count and restarts.
    if let Some(a) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove("deployment.kubernetes.io/revision");
    }
    obj
}

/// Where the pod template sits in an object of this group-resource
/// (`Some(&[])`: the object is a pod).
pub fn template_path(group_resource: &str) -> Option<&'static [&'static str]> {
    match group_resource {
        "pods" => Some(&[]),
        "deployments.apps" | "statefulsets.apps" | "daemonsets.apps" | "replicasets.apps"
        | "jobs.batch" => Some(&["spec", "template"]),
        "cronjobs.batch" => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

pub fn template<'a>(obj: &'a Value, group_resource: &str) -> Option<&'a Value> {
    template_path(group_resource)?
        .iter()
        .try_fold(obj, |v, k| v.get(*k))
}

pub fn template_mut<'a>(obj: &'a mut Value, group_resource: &str) -> Option<&'a mut Value> {
    template_path(group_resource)?
        .iter()
        .try_fold(obj, |v, k| v.get_mut(*k))
}

/// An image under `mapping`: the longest prefix it starts with replaced;
/// `None` when no prefix matches.
pub fn map_image(image: &str, mapping: &BTreeMap<String, String>) -> Option<String> {
    mapping
        .iter()
        .filter(|(from, _)| !from.is_empty() && image.starts_with(from.as_str()))
        .max_by_key(|(from, _)| from.len())
        .map(|(from, to)| format!("{to}{}", &image[from.len()..]))
}

/// The StorageClass at `class` (a field, if present) under `mapping`.
fn map_class(class: Option<&mut Value>, mapping: &BTreeMap<String, String>) {
    if let Some(class) = class
        && let Some(to) = class.as_str().and_then(|c| mapping.get(c))
    {
        *class = json!(to);
    }
}

/// The storage-class and image mappings of a restore to another cluster.
fn apply_mappings(obj: &mut Value, gr: &str, spec: &RestoreSpec) {
    let classes = &spec.storage_class_mapping;
    if !classes.is_empty() {
        match gr {
            gr::PERSISTENT_VOLUME_CLAIMS | gr::PERSISTENT_VOLUMES => {
                map_class(obj.pointer_mut("/spec/storageClassName"), classes);
                // The beta annotation older manifests still carry.
                map_class(
                    obj.pointer_mut(
                        "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
                    ),
                    classes,
                );
            }
            "statefulsets.apps" => {
                let templates = obj
                    .pointer_mut("/spec/volumeClaimTemplates")
                    .and_then(Value::as_array_mut);
                for t in templates.into_iter().flatten() {
                    map_class(t.pointer_mut("/spec/storageClassName"), classes);
                }
            }
            _ => {}
        }
    }
    if !spec.image_mapping.is_empty()
        && let Some(spec_of_pod) = template_mut(obj, gr).and_then(|t| t.get_mut("spec"))
    {
        for key in ["containers", "initContainers", "ephemeralContainers"] {
            let containers = spec_of_pod.get_mut(key).and_then(Value::as_array_mut);
            for c in containers.into_iter().flatten() {
                if let Some(to) = c["image"]
                    .as_str()
                    .and_then(|i| map_image(i, &spec.image_mapping))
                {
                    c["image"] = json!(to);
                }
            }
        }
    }
}

/// Fields that differ between a wanted object (already rewritten) and the
/// live one, under the rules the apply follows: what the restore sets must
/// be there with the same value; what it leaves out is the cluster's to
/// assign or default (system metadata, status, cluster IPs, node ports not
/// preserved, defaulted fields) and is not compared. A missing field, `null`,
/// `{}` and `[]` are the same: the API server drops empty values. Lists are
/// compared item by item, each item by the same rules.
pub fn diff(wanted: &Value, live: &Value) -> Vec<String> {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Object(m) => m.values().all(empty),
            Value::Array(a) => a.is_empty(),
            _ => false,
        }
    }
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            _ if empty(a) && empty(b) => {}
            (Value::Object(x), Value::Object(y)) => {
                for (k, v) in x {
                    let at = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(&at, v, y.get(k).unwrap_or(&Value::Null), out);
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (v, w)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{i}]"), v, w, out);
                }
            }
            _ if a != b => out.push(path.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut a = wanted.clone();
    if let Some(m) = a.as_object_mut() {
        m.remove("status");
    }
    if let Some(labels) = a
        .get_mut("metadata")
        .and_then(|m| m.get_mut("labels"))
        .and_then(Value::as_object_mut)
    {
        labels.remove("lifeboat.io/backup");
        labels.remove("lifeboat.io/restore");
    }
    walk("", &a, live, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn item(gr: &str, ns: Option<&str>, obj: Value) -> Item {
        Item {
            group_resource: gr.into(),
            namespace: ns.map(str::to_string),
            name: obj["metadata"]["name"].as_str().unwrap_or_default().into(),
            object: obj,
        }
    }

    fn spec() -> RestoreSpec {
        RestoreSpec {
            backup_name: "b1".into(),
            namespace_mapping: BTreeMap::from([("shop".into(), "shop-copy".into())]),
            ..Default::default()
        }
    }

    #[test]
    fn included_names_name_objects_by_kind_resource_or_group_resource() {
        let web = item(
            "deployments.apps",
            Some("shop"),
            json!({"kind": "Deployment", "metadata": {"name": "web"}}),
        );
        for name in [
            "Deployment/shop/web",
            "deployments/shop/web",
            "deployments.apps/shop/web",
        ] {
            assert!(names(name, &web), "{name}");
        }
        for name in [
            "deployment/web",
            "deployments.apps/blog/web",
            "service/shop/web",
            "deployment/shop/we",
            "shop/web/x/y",
        ] {
            assert!(!names(name, &web), "{name}");
        }
        let role = item(
            "clusterroles.rbac.authorization.k8s.io",
            None,
            json!({"kind": "ClusterRole", "metadata": {"name": "viewer"}}),
        );
        assert!(names("clusterrole/viewer", &role));
        let only = RestoreSpec {
            included_names: vec!["deployment/shop/web".into()],
            ..spec()
        };
        let none = BTreeSet::new();
        assert_eq!(excluded_reason(&web, &only, &none), None);
        let other = item(
            "deployments.apps",
            Some("shop"),
            json!({"kind": "Deployment", "metadata": {"name": "api"}}),
        );
        assert_eq!(
            excluded_reason(&other, &only, &none).as_deref(),
            Some("not among includedNames")
        );
    }

    #[test]
    fn storage_classes_and_image_prefixes_are_mapped_for_another_cluster() {
        let spec = RestoreSpec {
            storage_class_mapping: BTreeMap::from([("gp2".into(), "standard".into())]),
            image_mapping: BTreeMap::from([
                ("old.example/".into(), "registry.local/".into()),
                (
                    "old.example/team/".into(),
                    "registry.local/mirror/team/".into(),
                ),
                ("docker.io/library/".into(), String::new()),
            ]),
            ..spec()
        };
        let none = BTreeSet::new();
        let claim = item(
            "persistentvolumeclaims",
            Some("shop"),
            json!({"metadata": {"name": "data", "annotations": {"volume.beta.kubernetes.io/storage-class": "gp2"}},
                   "spec": {"storageClassName": "gp2"}}),
        );
        let out = rewrite(&claim, &spec, &none, "r1");
        assert_eq!(out["spec"]["storageClassName"], "standard");
        assert_eq!(
            out["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"],
            "standard"
        );
        // A class not in the mapping, and a claim with none, are left alone
        // (no field is added).
        let other = item(
            "persistentvolumeclaims",
            Some("shop"),
            json!({"metadata": {"name": "fast"}, "spec": {"storageClassName": "fast"}}),
        );
        assert_eq!(
            rewrite(&other, &spec, &none, "r1")["spec"]["storageClassName"],
            "fast"
        );
        let bare = item(
            "persistentvolumeclaims",
            Some("shop"),
            json!({"metadata": {"name": "d"}, "spec": {}}),
        );
        let out = rewrite(&bare, &spec, &none, "r1");
        assert!(out["spec"].get("storageClassName").is_none(), "{out}");
        assert!(out["metadata"].get("annotations").is_none(), "{out}");
        let sts = item(
            "statefulsets.apps",
            Some("shop"),
            json!({"metadata": {"name": "db"},
                   "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storageClassName": "gp2"}},
                                                     {"metadata": {"name": "logs"}, "spec": {}}],
                            "template": {"spec": {
                                "containers": [{"name": "db", "image": "old.example/team/db:16"},
                                               {"name": "side", "image": "old.example/tools:1"}],
                                "initContainers": [{"name": "init", "image": "docker.io/library/busybox:1.36"}],
                                "ephemeralContainers": [{"name": "debug", "image": "elsewhere.example/debug"}]}}}}),
        );
        let out = rewrite(&sts, &spec, &none, "r1");
        assert_eq!(
            out["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"],
            "standard"
        );
        assert!(
            out["spec"]["volumeClaimTemplates"][1]["spec"]
                .get("storageClassName")
                .is_none()
        );
        let pod = &out["spec"]["template"]["spec"];
        // The longest prefix wins; a mapping to nothing strips the prefix.
        assert_eq!(
            pod["containers"][0]["image"],
            "registry.local/mirror/team/db:16"
        );
        assert_eq!(pod["containers"][1]["image"], "registry.local/tools:1");
        assert_eq!(pod["initContainers"][0]["image"], "busybox:1.36");
        assert_eq!(
            pod["ephemeralContainers"][0]["image"],
            "elsewhere.example/debug"
        );
        // A CronJob's template, and a pod itself.
        let cron = item(
            "cronjobs.batch",
            Some("shop"),
            json!({"metadata": {"name": "report"},
                   "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "r", "image": "old.example/report"}]}}}}}}),
        );
        let out = rewrite(&cron, &spec, &none, "r1");
        assert_eq!(
            out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.local/report"
        );
        let bare_pod = item(
            "pods",
            Some("shop"),
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "old.example/x"}]}}),
        );
        assert_eq!(
            rewrite(&bare_pod, &spec, &none, "r1")["spec"]["containers"][0]["image"],
            "registry.local/x"
        );
    }

    #[test]
    fn system_fields_go_and_namespaces_are_mapped() {
        let svc = item(
            "services",
            Some("shop"),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "9",
                             "creationTimestamp": "t", "ownerReferences": [{"uid": "gone"}], "managedFields": []},
                "spec": {"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"], "type": "NodePort",
                         "ports": [{"port": 80, "nodePort": 30001}]},
                "status": {"loadBalancer": {}},
            }),
        );
        let out = rewrite(&svc, &spec(), &BTreeSet::new(), "r1");
        assert_eq!(out["metadata"]["namespace"], "shop-copy");
        for gone in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "ownerReferences",
            "managedFields",
        ] {
            assert!(out["metadata"][gone].is_null(), "{gone}");
        }
        assert!(
            out["spec"]["clusterIP"].is_null() && out["spec"]["ports"][0]["nodePort"].is_null()
        );
        assert!(out["status"].is_null());
        assert_eq!(out["metadata"]["labels"]["lifeboat.io/restore"], "r1");
        let headless = item(
            "services",
            Some("shop"),
            json!({"kind": "Service", "metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}),
        );
        assert_eq!(
            rewrite(&headless, &spec(), &BTreeSet::new(), "r1")["spec"]["clusterIP"],
            "None"
        );
    }

    #[test]
    fn jobs_lose_their_controller_uid_and_bindings_follow_the_mapping() {
        let job = item(
            "jobs.batch",
            Some("shop"),
            json!({"kind": "Job", "metadata": {"name": "j", "labels": {"controller-uid": "x",
                "batch.kubernetes.io/controller-uid": "x", "job-name": "j", "batch.kubernetes.io/job-name": "j"}},
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "x"}},
                     "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "x", "app": "j",
                         "controller-uid": "x", "job-name": "j", "batch.kubernetes.io/job-name": "j"}}}}}),
        );
        let out = rewrite(&job, &spec(), &BTreeSet::new(), "r");
        assert!(out["spec"]["selector"].is_null());
        assert_eq!(
            out["spec"]["template"]["metadata"]["labels"],
            json!({"app": "j", "job-name": "j", "batch.kubernetes.io/job-name": "j"})
        );
        assert_eq!(
            out["metadata"]["labels"],
            json!({"job-name": "j", "batch.kubernetes.io/job-name": "j",
                   "lifeboat.io/backup": "b1", "lifeboat.io/restore": "r"})
        );
        let rb = item(
            "rolebindings.rbac.authorization.k8s.io",
            Some("shop"),
            json!({"kind": "RoleBinding", "metadata": {"name": "rb"},
            "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "shop"}]}),
        );
        assert_eq!(
            rewrite(&rb, &spec(), &BTreeSet::new(), "r")["subjects"][0]["namespace"],
            "shop-copy"
        );
    }

    #[test]
    fn owned_and_cluster_made_objects_are_excluded() {
        let s = spec();
        let none = BTreeSet::new();
        let pod = item(
            "pods",
            Some("shop"),
            json!({"kind": "Pod", "metadata": {"name": "p", "ownerReferences": [{"kind": "ReplicaSet"}]}}),
        );
        assert!(excluded_reason(&pod, &s, &none).is_some());
        let bare = item(
            "pods",
            Some("shop"),
            json!({"kind": "Pod", "metadata": {"name": "p"}}),
        );
        assert!(excluded_reason(&bare, &s, &none).is_none());
        let node = item(
            "nodes",
            None,
            json!({"kind": "Node", "metadata": {"name": "n"}}),
        );
        assert!(excluded_reason(&node, &s, &none).is_some());
        let pv = item(
            "persistentvolumes",
            None,
            json!({"kind": "PersistentVolume", "metadata": {"name": "pv"},
            "spec": {"persistentVolumeReclaimPolicy": "Delete"}}),
        );
        assert!(excluded_reason(&pv, &s, &none).is_some());
        let kept = item(
            "persistentvolumes",
            None,
            json!({"kind": "PersistentVolume", "metadata": {"name": "pv"},
            "spec": {"persistentVolumeReclaimPolicy": "Retain"}}),
        );
        assert!(excluded_reason(&kept, &s, &none).is_none());
    }

    #[test]
    fn temporary_objects_of_older_backups_are_never_restored() {
        let none = BTreeSet::new();
        let snap_claim = item(
            "persistentvolumeclaims",
            Some("data"),
            json!({"kind": "PersistentVolumeClaim",
                   "metadata": {"name": "lifeboat-snap-data-postgres-0-1a2b3c", "namespace": "data",
                                "labels": {"lifeboat.io/backup": "old"}}}),
        );
        let why = excluded_reason(&snap_claim, &spec(), &none);
        assert!(
            why.as_deref().is_some_and(|w| w.contains("temporary")),
            "{why:?}"
        );
        let helper = item(
            "pods",
            Some("data"),
            json!({"kind": "Pod",
                   "metadata": {"name": "lifeboat-backup-archive-9f8e7d", "namespace": "data",
                                "labels": {"lifeboat.io/backup": "old", "app.kubernetes.io/managed-by": "lifeboat"}}}),
        );
        assert!(excluded_reason(&helper, &spec(), &none).is_some());
        let claim = item(
            "persistentvolumeclaims",
            Some("data"),
            json!({"kind": "PersistentVolumeClaim",
                   "metadata": {"name": "data-postgres-0", "namespace": "data",
                                "labels": {"lifeboat.io/backup": "old"}}}),
        );
        assert_eq!(excluded_reason(&claim, &spec(), &none), None);
    }

    #[test]
    fn without_cluster_resources_only_namespaces_and_namespaced_objects_come_back() {
        let s = RestoreSpec {
            include_cluster_resources: Some(false),
            ..spec()
        };
        let none = BTreeSet::new();
        let role = item(
            "clusterroles.rbac.authorization.k8s.io",
            None,
            json!({"kind": "ClusterRole", "metadata": {"name": "reader"}}),
        );
        assert_eq!(
            excluded_reason(&role, &s, &none).as_deref(),
            Some("cluster-scoped, and includeClusterResources is false")
        );
        assert!(excluded_reason(&role, &spec(), &none).is_none());
        let ns = item(
            "namespaces",
            None,
            json!({"kind": "Namespace", "metadata": {"name": "shop"}}),
        );
        assert!(excluded_reason(&ns, &s, &none).is_none());
        let cm = item(
            "configmaps",
            Some("shop"),
            json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}}),
        );
        assert!(excluded_reason(&cm, &s, &none).is_none());
    }

    #[test]
    fn order_puts_crds_first_and_custom_resources_last() {
        let mut grs = vec![
            "widgets.example.com",
            "deployments.apps",
            "namespaces",
            "customresourcedefinitions.apiextensions.k8s.io",
            "secrets",
            "leases.coordination.k8s.io",
        ];
        grs.sort_by_key(|g| tier(g));
        assert_eq!(
            grs,
            [
                "customresourcedefinitions.apiextensions.k8s.io",
                "namespaces",
                "secrets",
                "deployments.apps",
                "leases.coordination.k8s.io",
                "widgets.example.com"
            ]
        );
    }

    #[test]
    fn priorities_override_the_order() {
        let spec = RestoreSpec {
            resource_priorities: vec!["widgets.example.com".into()],
            ..Default::default()
        };
        assert!(
            spec.tier("widgets.example.com")
                < spec.tier("customresourcedefinitions.apiextensions.k8s.io")
        );
        assert!(spec.tier("namespaces") < spec.tier("deployments.apps"));
    }

    #[test]
    fn selectors_and_diffs() {
        let wanted = json!({"metadata": {"name": "x", "labels": {"a": "1", "lifeboat.io/restore": "r"}}, "data": {"k": "v"}});
        let live = json!({"metadata": {"name": "x", "uid": "u", "labels": {"a": "1"}}, "data": {"k": "w"}});
        assert_eq!(diff(&wanted, &live), ["data.k"]);
    }

    /// A Service restored without its node port, read back from the API
    /// server with everything it assigned and defaulted, is identical; a
    /// changed port or a removed annotation is not.
    #[test]
    fn diffs_ignore_what_the_server_assigns_but_not_what_the_restore_sets() {
        let backed_up = item(
            "services",
            Some("shop"),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "shop", "uid": "old",
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
                "spec": {"type": "NodePort", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"],
                    "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30001}], "selector": {"app": "web"}}}),
        );
        let wanted = rewrite(&backed_up, &spec(), &BTreeSet::new(), "r2");
        assert_eq!(
            wanted["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{}",
            "kubectl's annotation is restored"
        );
        let live = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop-copy", "uid": "new", "resourceVersion": "7",
                "labels": {"lifeboat.io/backup": "b1", "lifeboat.io/restore": "r1"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.44", "clusterIPs": ["10.96.0.44"],
                "sessionAffinity": "None", "ipFamilies": ["IPv4"],
                "ports": [{"port": 80, "protocol": "TCP", "nodePort": 31555, "targetPort": 80}],
                "selector": {"app": "web"}}});
        assert_eq!(diff(&wanted, &live), Vec::<String>::new());
        let mut changed = live.clone();
        changed["spec"]["ports"][0]["port"] = json!(8080);
        changed["metadata"]["annotations"] = json!({});
        assert_eq!(
            diff(&wanted, &changed),
            [
                "metadata.annotations.kubectl.kubernetes.io/last-applied-configuration",
                "spec.ports[0].port"
            ]
        );
        // An empty map in the backup is the same as none on the server.
        let bare = json!({"metadata": {"name": "c", "annotations": {}, "labels": {}}, "data": {}});
        assert!(diff(&bare, &json!({"metadata": {"name": "c"}})).is_empty());
        assert_eq!(
            diff(
                &json!({"spec": {"args": ["a", "b"]}}),
                &json!({"spec": {"args": ["a"]}})
            ),
            ["spec.args"]
        );
    }
}
