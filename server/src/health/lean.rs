//! Compact pods for the watchers. Pods are most of what a cluster holds,
//! and `k8s-openapi`'s `Pod` keeps every field of the API inline (hundreds
//! of `Option`s, a `BTreeMap` node per map): about 6 KB for a small pod.
//! [`Pod`] keeps only what the health model and the pages read, in the
//! API's own JSON shape and names, so `serde_json::to_value` of one is what
//! [`super::model`] and [`super::views`] read from a full pod. Fields not
//! listed here are dropped as the watch decodes them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A pod as the dashboard keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodStatus>,
}

/// `kube::Resource` for a compact type of a namespaced built-in kind:
/// watched as the kind itself, decoded into the compact type.
macro_rules! namespaced_resource {
    ($ty:ty, $kind:expr, $group:literal, $plural:expr) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = kube::core::NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                "v1".into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

namespaced_resource!(Pod, "Pod", "", "pods");

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<Vec<Container>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Port>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Rare; kept as the API sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_from: Option<Box<Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub container_port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Quantities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Quantities>,
}

/// Resource names and their quantities as the API wrote them (`cpu` →
/// `100m`), in one allocation instead of a `BTreeMap` node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quantities(Box<[(Box<str>, Box<str>)]>);

impl Quantities {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl Serialize for Quantities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
    }
}

impl<'de> Deserialize<'de> for Quantities {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A quantity is a string on the wire; a number is taken as its text.
        let map = BTreeMap::<String, Value>::deserialize(d)?;
        Ok(Self(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k.into_boxed_str(), v.into_boxed_str())
                })
                .collect(),
        ))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Which Secret, ConfigMap or field it comes from (never a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// Where a variable's value comes from, in one small struct (as a JSON
/// `Value` it took two maps, about 1.2 KB, for each such variable of each
/// pod): the source's kind (`secretKeyRef`, `configMapKeyRef`, `fieldRef`,
/// `resourceFieldRef`), the Secret's or ConfigMap's name, and the key, field
/// path or resource it reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueFrom {
    pub kind: Box<str>,
    pub name: Option<Box<str>>,
    pub key: Option<Box<str>>,
}

impl ValueFrom {
    /// The field of the source that `key` holds.
    fn key_field(kind: &str) -> &'static str {
        match kind {
            "fieldRef" => "fieldPath",
            "resourceFieldRef" => "resource",
            _ => "key",
        }
    }
}

impl Serialize for ValueFrom {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut source = serde_json::Map::new();
        if let Some(name) = &self.name {
            source.insert("name".into(), Value::String(name.to_string()));
        }
        if let Some(key) = &self.key {
            source.insert(
                Self::key_field(&self.kind).into(),
                Value::String(key.to_string()),
            );
        }
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.kind.as_ref(), &source)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for ValueFrom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        let Some((kind, source)) = map.into_iter().next() else {
            return Ok(Self::default());
        };
        let text = |field: &str| source.get(field)?.as_str().map(Box::from);
        Ok(Self {
            name: text("name"),
            key: text(Self::key_field(&kind)),
            kind: kind.into_boxed_str(),
        })
    }
}

/// A volume: its name and its source's kind, with the name of the claim,
/// Secret or ConfigMap it reads (what the pod page shows; projected token
/// volumes and the like keep only their kind).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Volume {
    pub name: String,
    /// `persistentVolumeClaim`, `secret`, `configMap`, `emptyDir`, `projected`, …
    pub kind: String,
    /// `claimName`, `secretName` or `name` of the source, for the three that have one.
    pub reference: Option<String>,
}

impl Volume {
    fn reference_field(kind: &str) -> Option<&'static str> {
        match kind {
            "persistentVolumeClaim" => Some("claimName"),
            "secret" => Some("secretName"),
            "configMap" => Some("name"),
            _ => None,
        }
    }
}

impl Serialize for Volume {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("name", &self.name)?;
        let mut source = serde_json::Map::new();
        if let (Some(field), Some(r)) = (Self::reference_field(&self.kind), &self.reference) {
            source.insert(field.into(), Value::String(r.clone()));
        }
        m.serialize_entry(&self.kind, &source)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        let name = map
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = map
            .keys()
            .find(|k| *k != "name")
            .cloned()
            .unwrap_or_default();
        let reference = Self::reference_field(&kind)
            .and_then(|f| map.get(&kind)?.get(f)?.as_str())
            .map(str::to_string);
        Ok(Self {
            name,
            kind,
            reference,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_statuses: Option<Vec<ContainerStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_container_statuses: Option<Vec<ContainerStatus>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// A Deployment's conditions have it; a pod's do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restart_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ContainerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state: Option<ContainerState>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Running>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<Terminated>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Running {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terminated {
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

/// Which workload a [`Workload`] is (all three are in `apps/v1`).
pub trait WorkloadKind:
    Clone + std::fmt::Debug + Default + PartialEq + Send + Sync + 'static
{
    const KIND: &'static str;
}

macro_rules! workload_kind {
    ($($marker:ident => $kind:literal, $plural:literal;)*) => {$(
        #[doc = concat!("Marks a [`Workload`] as a ", $kind, ".")]
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $marker;
        impl WorkloadKind for $marker {
            const KIND: &'static str = $kind;
        }
        namespaced_resource!(Workload<$marker>, $kind, "apps", $plural);
    )*};
}

workload_kind! {
    Deployments => "Deployment", "deployments";
    StatefulSets => "StatefulSet", "statefulsets";
    DaemonSets => "DaemonSet", "daemonsets";
}

pub type Deployment = Workload<Deployments>;
pub type StatefulSet = Workload<StatefulSets>;
pub type DaemonSet = Workload<DaemonSets>;

/// A Deployment, StatefulSet or DaemonSet as the dashboard keeps it: its
/// metadata (without annotations), replicas, selector, containers' names
/// and images, and the status counts and conditions
/// ([`super::model::workload`] and the workload page read nothing else).
/// `k8s-openapi`'s types keep a whole `PodSpec` inline in the template, a
/// few KB each even when emptied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Workload<K: WorkloadKind> {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<WorkloadSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WorkloadStatus>,
    #[serde(skip)]
    kind: std::marker::PhantomData<K>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
}

/// A pod template: its containers' names and images.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Template {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<TemplateSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TemplateSpec {
    #[serde(default)]
    pub containers: Vec<Image>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// The status counts of all three kinds (a DaemonSet's are per node).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_number_scheduled: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_ready: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_number_scheduled: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_available: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

/// A ReplicaSet as the dashboard keeps it: its metadata, without
/// annotations (a pod's page finds its Deployment through the ReplicaSet's
/// owner; nothing else reads them, and a cluster keeps ten old ReplicaSets
/// per Deployment).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSet {
    #[serde(default)]
    pub metadata: ObjectMeta,
}

namespaced_resource!(ReplicaSet, "ReplicaSet", "apps", "replicasets");

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A pod as kube-apiserver serves it after `kubectl apply` and a kubelet's status.
    fn served() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-7d9f8c6b5-x2x4k", "namespace": "shop", "uid": "4c1b",
                "labels": {"app": "web"}, "creationTimestamp": "2026-11-30T10:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8c6b5",
                                     "uid": "9a", "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"nodeName": "node-1", "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                "containers": [{"name": "main", "image": "registry.example/web:1.2", "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "MODE", "value": "production"},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-token", "key": "token"}}},
                            {"name": "FLAGS", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "all", "optional": true}}},
                            {"name": "NODE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
                            {"name": "MEMORY", "valueFrom": {"resourceFieldRef": {"containerName": "main", "resource": "limits.memory", "divisor": "1Mi"}}}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": 268435456}},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                            {"name": "kube-api-access-abcde", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.7", "startTime": "2026-11-30T10:00:01Z",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T10:00:05Z"}],
                "containerStatuses": [{"name": "main", "ready": true, "restartCount": 2, "image": "registry.example/web:1.2",
                    "imageID": "sha256:ab", "containerID": "containerd://cd",
                    "state": {"running": {"startedAt": "2026-11-30T10:00:04Z"}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-11-30T10:00:03Z"}}}]}
        })
    }

    #[test]
    fn what_the_model_reads_survives_and_the_rest_is_dropped() {
        let lean: Pod = serde_json::from_value(served()).expect("a pod");
        let kept = serde_json::to_value(&lean).expect("json");
        let full = served();
        let now = chrono::Utc::now();
        // The health model answers the same from either.
        assert_eq!(
            super::super::model::pod(&kept, now),
            super::super::model::pod(&full, now)
        );
        let (spec, status) = (
            &full["spec"]["containers"][0],
            &full["status"]["containerStatuses"][0],
        );
        let (kept_spec, kept_status) = (
            &kept["spec"]["containers"][0],
            &kept["status"]["containerStatuses"][0],
        );
        let limits = super::super::model::container(kept_spec, Some(kept_status));
        let expected = super::super::model::container(spec, Some(status));
        // A number on the wire is kept as its text.
        assert_eq!(
            expected.resources.limits.get("memory").map(String::as_str),
            Some("268435456")
        );
        assert_eq!(limits, expected);
        assert_eq!(kept["metadata"], full["metadata"]);
        assert_eq!(kept["spec"]["nodeName"], "node-1");
        assert_eq!(
            kept["spec"]["volumes"],
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                   {"name": "kube-api-access-abcde", "projected": {}}])
        );
        assert_eq!(kept["status"]["conditions"], full["status"]["conditions"]);
        for dropped in ["tolerations", "restartPolicy"] {
            assert!(kept["spec"][dropped].is_null(), "{dropped}");
        }
        assert!(kept_spec["livenessProbe"].is_null() && kept_status["imageID"].is_null());
        assert_eq!(
            lean.spec
                .as_ref()
                .and_then(|s| s.containers[0].resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|q| q.get("cpu")),
            Some("100m")
        );
    }

    /// A Deployment as kube-apiserver serves it after `kubectl apply`, mid-rollout.
    fn served_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "77", "generation": 4,
                "labels": {"app": "web"}, "creationTimestamp": "2026-11-30T10:00:00Z",
                "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                        "containers": [{"name": "main", "image": "registry.example/web:1.3",
                            "resources": {"requests": {"cpu": "100m"}}, "terminationMessagePath": "/dev/termination-log"},
                                       {"name": "proxy", "image": "envoy:1.30"}]}}},
            "status": {"observedGeneration": 3, "replicas": 4, "readyReplicas": 2, "updatedReplicas": 1,
                "availableReplicas": 2, "unavailableReplicas": 2,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": "ReplicaSet \"web-5d\" has timed out progressing.",
                    "lastUpdateTime": "2026-11-30T10:20:00Z", "lastTransitionTime": "2026-11-30T10:20:00Z"}]}
        })
    }

    #[test]
    fn a_compact_workload_reads_as_the_served_one() {
        let full = served_deployment();
        let lean: Deployment = serde_json::from_value(full.clone()).expect("a deployment");
        let mut kept = serde_json::to_value(&lean).expect("json");
        kept["kind"] = json!("Deployment");
        let summary = super::super::model::workload(&kept);
        assert_eq!(summary, super::super::model::workload(&full));
        // The fixture is one the model has something to say about.
        assert_ne!(summary.health.state, super::super::model::State::Healthy);
        for path in [
            "/spec/selector",
            "/spec/replicas",
            "/status/conditions",
            "/metadata/generation",
            "/metadata/uid",
        ] {
            assert_eq!(kept.pointer(path), full.pointer(path), "{path}");
        }
        let images = |v: &Value| -> Vec<(Value, Value)> {
            v["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| (c["name"].clone(), c["image"].clone()))
                .collect()
        };
        assert_eq!(images(&kept), images(&full));
        assert!(kept["spec"]["strategy"].is_null());
        assert!(kept["spec"]["template"]["spec"]["containers"][0]["resources"].is_null());

        // A DaemonSet's counts are per node.
        let ds = json!({"kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "kube-system"},
            "status": {"desiredNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2,
                       "currentNumberScheduled": 3, "numberMisscheduled": 0}});
        let lean: DaemonSet = serde_json::from_value(ds.clone()).expect("a daemonset");
        let mut kept = serde_json::to_value(&lean).expect("json");
        kept["kind"] = json!("DaemonSet");
        assert_eq!(
            super::super::model::workload(&kept),
            super::super::model::workload(&ds)
        );
        assert_eq!(<DaemonSet as kube::Resource>::plural(&()), "daemonsets");
    }
}
