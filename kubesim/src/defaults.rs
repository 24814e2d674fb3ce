//! Server-side defaulting, as kube-apiserver's registry applies it to the
//! built-in kinds on every create and update: what a client left out comes
//! back filled in, so diffs and plans see what they see on a real cluster.
//!
//! Only fields that are absent are set; nothing a client sent is changed.
//! The values are kube-apiserver's (Kubernetes 1.28–1.33).

use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// Sets `obj[key]` to `value` when it is absent or null.
fn default(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        let slot = m.entry(key.to_string()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

/// The object at `obj[key]`, created empty when absent.
fn object<'a>(obj: &'a mut Value, key: &str) -> &'a mut Value {
    if !obj[key].is_object() {
        obj[key] = Value::Object(Map::new());
    }
    &mut obj[key]
}

/// Calls `f` on each item of the list at `parent[key]`, if there is one
/// (never creating the key).
fn each(parent: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = parent.get_mut(key).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

/// A rolling-update strategy: the type when none is set (Go clients send
/// an empty `{}`), and the rolling update's defaults when that is the type.
fn rolling(spec: &mut Value, key: &str, rolling_update: Value) {
    let strategy = object(spec, key);
    default(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        let update = object(strategy, "rollingUpdate");
        for (k, v) in rolling_update.as_object().into_iter().flatten() {
            default(update, k, v.clone());
        }
    }
}

/// Fills in what kube-apiserver defaults for this kind.
pub fn apply(rt: &ResourceType, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "pods") => {
            let spec = object(obj, "spec");
            pod_spec(spec);
            // The ServiceAccount admission plugin (pods only, not templates).
            default(spec, "serviceAccountName", json!("default"));
            let sa = spec["serviceAccountName"].clone();
            default(spec, "serviceAccount", sa);
            default(spec, "priority", json!(0));
            default(spec, "enableServiceLinks", json!(true));
            default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        ("", "services") => service(obj),
        ("", "persistentvolumeclaims") => {
            default(object(obj, "spec"), "volumeMode", json!("Filesystem"));
        }
        ("", "persistentvolumes") => {
            let spec = object(obj, "spec");
            default(spec, "volumeMode", json!("Filesystem"));
            default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        }
        ("", "replicationcontrollers") | ("apps", "replicasets") => {
            let spec = object(obj, "spec");
            default(spec, "replicas", json!(1));
            template(spec);
        }
        ("apps", "deployments") => {
            let spec = object(obj, "spec");
            default(spec, "replicas", json!(1));
            rolling(
                spec,
                "strategy",
                json!({"maxSurge": "25%", "maxUnavailable": "25%"}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            template(spec);
        }
        ("apps", "statefulsets") => {
            let spec = object(obj, "spec");
            default(spec, "replicas", json!(1));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            rolling(spec, "updateStrategy", json!({"partition": 0}));
            default(spec, "revisionHistoryLimit", json!(10));
            default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            each(spec, "volumeClaimTemplates", |claim| {
                default(claim, "apiVersion", json!("v1"));
                default(claim, "kind", json!("PersistentVolumeClaim"));
                default(object(claim, "spec"), "volumeMode", json!("Filesystem"));
                default(object(claim, "status"), "phase", json!("Pending"));
            });
            template(spec);
        }
        ("apps", "daemonsets") => {
            let spec = object(obj, "spec");
            rolling(
                spec,
                "updateStrategy",
                json!({"maxUnavailable": 1, "maxSurge": 0}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            template(spec);
        }
        ("batch", "jobs") => job_spec(object(obj, "spec")),
        ("batch", "cronjobs") => {
            let spec = object(obj, "spec");
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
            job_spec(object(object(spec, "jobTemplate"), "spec"));
        }
        _ => {}
    }
}

fn job_spec(spec: &mut Value) {
    default(spec, "parallelism", json!(1));
    default(spec, "completions", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    template(spec);
}

/// A workload's pod template.
fn template(spec: &mut Value) {
    let template = object(spec, "template");
    object(template, "metadata");
    pod_spec(object(template, "spec"));
}

fn pod_spec(spec: &mut Value) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        each(spec, list, container);
    }
}

fn container(c: &mut Value) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    let image = c["image"].as_str().unwrap_or_default();
    // `:latest` or no tag (a digest pins the image) is pulled every time.
    let last = image.rsplit('/').next().unwrap_or_default();
    let pull = if !image.contains('@') && (!last.contains(':') || last.ends_with(":latest")) {
        "Always"
    } else {
        "IfNotPresent"
    };
    default(c, "imagePullPolicy", json!(pull));
    each(c, "ports", |p| default(p, "protocol", json!("TCP")));
}

fn service(obj: &mut Value) {
    let spec = object(obj, "spec");
    default(spec, "type", json!("ClusterIP"));
    let kind = spec["type"].as_str().unwrap_or_default().to_string();
    if kind == "ExternalName" {
        return;
    }
    default(spec, "sessionAffinity", json!("None"));
    default(spec, "ipFamilies", json!(["IPv4"]));
    default(spec, "ipFamilyPolicy", json!("SingleStack"));
    default(spec, "internalTrafficPolicy", json!("Cluster"));
    if kind == "NodePort" || kind == "LoadBalancer" {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    each(spec, "ports", |p| {
        default(p, "protocol", json!("TCP"));
        let port = p["port"].clone();
        default(p, "targetPort", port);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(resource: &str) -> ResourceType {
        crate::resources::builtin_named(resource)
    }

    #[test]
    fn workloads_get_kube_apiservers_defaults_and_keep_what_was_sent() {
        let mut d = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox", "imagePullPolicy": "Never"}]}}}});
        apply(&rt("deployments"), &mut d);
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["schedulerName"], "default-scheduler");
        assert_eq!(pod["securityContext"], json!({}));
        assert!(pod["serviceAccountName"].is_null(), "templates get no SA");
        let web = &pod["containers"][0];
        assert_eq!(web["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(web["imagePullPolicy"], "IfNotPresent");
        assert_eq!(web["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "Never");
        assert!(pod.get("initContainers").is_none(), "no list is made up");
        let before = d.clone();
        apply(&rt("deployments"), &mut d);
        assert_eq!(d, before, "defaulting twice changes nothing");
        // What Go clients send for a strategy they left alone.
        let mut empty = json!({"spec": {"strategy": {}, "template": {"spec": {"containers": []}}}});
        apply(&rt("deployments"), &mut empty);
        assert_eq!(
            empty["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            "25%"
        );
    }

    #[test]
    fn services_and_pods() {
        let mut s = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        apply(&rt("services"), &mut s);
        assert_eq!(s["spec"]["sessionAffinity"], "None");
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(s["spec"]["internalTrafficPolicy"], "Cluster");
        assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        let mut p = json!({"spec": {"containers": [{"name": "c", "image": "app"}]}});
        apply(&rt("pods"), &mut p);
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
    }
}
