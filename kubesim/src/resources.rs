//! The API resources kubesim serves, and discovery documents built from them.

use serde_json::{Value, json};

/// The Kubernetes version kubesim claims to be.
pub const GIT_VERSION: &str = "v1.33.0-kubesim";

/// One servable resource type at one group/version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// "" for the core group.
    pub group: String,
    pub version: String,
    /// Plural, lower case: "deployments".
    pub resource: String,
    pub kind: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Has a `/status` subresource.
    pub status: bool,
    /// A review or request answered on create and never stored
    /// (`tokenreviews`, `subjectaccessreviews`, …): `create` is its only verb.
    pub create_only: bool,
    /// Computed on every read, never stored (`metrics.k8s.io`'s NodeMetrics
    /// and PodMetrics): `get` and `list` are its only verbs.
    pub read_only: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// "deployments.apps", or "pods" for the core group.
    /// Discovery categories: `all` for what `kubectl get all` lists.
    pub fn categories(&self) -> Vec<&'static str> {
        let all = matches!(
            (self.group.as_str(), self.resource.as_str()),
            ("", "pods" | "services" | "replicationcontrollers")
                | (
                    "apps",
                    "deployments" | "statefulsets" | "daemonsets" | "replicasets"
                )
                | ("batch", "jobs" | "cronjobs")
                | ("autoscaling", "horizontalpodautoscalers")
        );
        if all { vec!["all"] } else { Vec::new() }
    }

    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// Has a `scale` subresource (what `kubectl scale` and HPAs use).
    pub fn scalable(&self) -> bool {
        self.group == "apps"
            && matches!(
                self.resource.as_str(),
                "deployments" | "statefulsets" | "replicasets"
            )
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            return vec!["create"];
        }
        if self.read_only {
            return vec!["get", "list"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

fn rt(
    group: &str,
    version: &str,
    resource: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        resource: resource.into(),
        kind: kind.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        status,
        create_only: false,
        read_only: false,
    }
}

/// What metrics-server adds through its APIService (`v1beta1.metrics.k8s.io`).
pub fn metrics_types() -> Vec<ResourceType> {
    [
        ("nodes", "NodeMetrics", false),
        ("pods", "PodMetrics", true),
    ]
    .into_iter()
    .map(|(resource, kind, namespaced)| ResourceType {
        read_only: true,
        ..rt(
            "metrics.k8s.io",
            "v1beta1",
            resource,
            kind,
            namespaced,
            &[],
            false,
        )
    })
    .collect()
}

/// A resource answered on create and never stored.
fn review(group: &str, resource: &str, kind: &str, namespaced: bool) -> ResourceType {
    ResourceType {
        create_only: true,
        ..rt(group, "v1", resource, kind, namespaced, &[], false)
    }
}

/// The built-in resources, as kube-apiserver serves them at their preferred versions.
pub fn builtin() -> Vec<ResourceType> {
    vec![
        rt("", "v1", "namespaces", "Namespace", false, &["ns"], true),
        rt("", "v1", "pods", "Pod", true, &["po"], true),
        rt("", "v1", "services", "Service", true, &["svc"], true),
        rt("", "v1", "endpoints", "Endpoints", true, &["ep"], false),
        rt("", "v1", "configmaps", "ConfigMap", true, &["cm"], false),
        rt("", "v1", "secrets", "Secret", true, &[], false),
        rt(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
        ),
        rt(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            true,
        ),
        rt(
            "",
            "v1",
            "persistentvolumes",
            "PersistentVolume",
            false,
            &["pv"],
            true,
        ),
        rt("", "v1", "events", "Event", true, &["ev"], false),
        rt("", "v1", "nodes", "Node", false, &["no"], true),
        rt(
            "",
            "v1",
            "limitranges",
            "LimitRange",
            true,
            &["limits"],
            false,
        ),
        rt(
            "",
            "v1",
            "resourcequotas",
            "ResourceQuota",
            true,
            &["quota"],
            true,
        ),
        rt(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
        ),
        rt(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            true,
        ),
        rt("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], true),
        rt(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            false,
        ),
        rt(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            &["rs"],
            true,
        ),
        rt("batch", "v1", "jobs", "Job", true, &[], true),
        rt("batch", "v1", "cronjobs", "CronJob", true, &["cj"], true),
        rt(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            true,
            &["ing"],
            true,
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            true,
            &["netpol"],
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            &[],
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
        ),
        rt(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            false,
            &["sc"],
            false,
        ),
        rt(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
        ),
        rt(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            false,
        ),
        rt(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            true,
        ),
        rt(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
            &["hpa"],
            true,
        ),
        rt(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            false,
        ),
        review(
            "authentication.k8s.io",
            "tokenreviews",
            "TokenReview",
            false,
        ),
        review(
            "authentication.k8s.io",
            "selfsubjectreviews",
            "SelfSubjectReview",
            false,
        ),
        review(
            "authorization.k8s.io",
            "subjectaccessreviews",
            "SubjectAccessReview",
            false,
        ),
        review(
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
        ),
        review(
            "authorization.k8s.io",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            true,
        ),
    ]
}

/// A built-in resource type by its plural (for tests).
#[cfg(test)]
pub(crate) fn builtin_named(resource: &str) -> ResourceType {
    builtin()
        .into_iter()
        .find(|r| r.resource == resource)
        .expect("built in")
}

/// Resource types a CustomResourceDefinition serves (one per served version).
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let kind = names["kind"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let short: Vec<String> = names["shortNames"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    spec["versions"]
        .as_array()
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v["served"].as_bool().unwrap_or(true))
                .filter_map(|v| {
                    Some(ResourceType {
                        group: group.to_string(),
                        version: v["name"].as_str()?.to_string(),
                        resource: plural.to_string(),
                        kind: kind.to_string(),
                        singular: singular.clone(),
                        namespaced,
                        short_names: short.clone(),
                        status: v["subresources"]["status"].is_object(),
                        create_only: false,
                        read_only: false,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The storage version of a CRD: the version with `storage: true`.
pub fn crd_storage_version(crd: &Value) -> Option<String> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .or_else(|| crd["spec"]["versions"].as_array()?.first())
        .and_then(|v| v["name"].as_str().map(str::to_string))
}

/// `APIResourceList` for one group/version (`/api/v1`, `/apis/apps/v1`).
pub fn resource_list(group_version: &str, types: &[&ResourceType]) -> Value {
    let mut resources = Vec::new();
    for t in types {
        resources.push(json!({
            "name": t.resource,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": t.verbs(),
            "shortNames": t.short_names,
            "categories": t.categories(),
            "storageVersionHash": "",
        }));
        if t.status {
            resources.push(json!({
                "name": format!("{}/status", t.resource),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if t.group.is_empty() && t.resource == "pods" {
            // As kube-apiserver lists it: the kubelet's output, through the API server.
            resources.push(json!({
                "name": "pods/log",
                "singularName": "",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get"],
            }));
        }
        if t.group.is_empty() && t.resource == "serviceaccounts" {
            resources.push(json!({
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": true,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            }));
        }
        if t.scalable() {
            resources.push(json!({
                "name": format!("{}/scale", t.resource),
                "singularName": "",
                "namespaced": t.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// Groups in the order kube-apiserver lists them, each with its versions.
pub fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) => {
                if !versions.contains(&t.version) {
                    versions.push(t.version.clone());
                }
            }
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    out
}

/// `APIGroupList` for `/apis`.
pub fn group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = groups(types)
        .into_iter()
        .map(|(group, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            json!({
                "name": group,
                "versions": vs,
                "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The aggregated discovery document (`apidiscovery.k8s.io/v2`) for `/api` (core) or `/apis`.
pub fn aggregated(types: &[ResourceType], core: bool) -> Value {
    let selected: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group.is_empty() == core)
        .collect();
    let mut group_names: Vec<String> = Vec::new();
    for t in &selected {
        if !group_names.contains(&t.group) {
            group_names.push(t.group.clone());
        }
    }
    let items: Vec<Value> = group_names
        .iter()
        .map(|group| {
            let mut versions: Vec<String> = Vec::new();
            for t in selected.iter().filter(|t| &t.group == group) {
                if !versions.contains(&t.version) {
                    versions.push(t.version.clone());
                }
            }
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = selected
                        .iter()
                        .filter(|t| &t.group == group && &t.version == version)
                        .map(|t| {
                            let mut r = json!({
                                "resource": t.resource,
                                "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
                                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": t.singular,
                                "verbs": t.verbs(),
                                "shortNames": t.short_names,
                                "categories": t.categories(),
                            });
                            let mut subresources = Vec::new();
                            if t.status {
                                subresources.push(json!({
                                    "subresource": "status",
                                    "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
                                    "verbs": ["get", "patch", "update"],
                                }));
                            }
                            if t.group.is_empty() && t.resource == "pods" {
                                subresources.push(json!({
                                    "subresource": "log",
                                    "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
                                    "verbs": ["get"],
                                }));
                            }
                            if t.group.is_empty() && t.resource == "serviceaccounts" {
                                subresources.push(json!({
                                    "subresource": "token",
                                    "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"},
                                    "verbs": ["create"],
                                }));
                            }
                            if t.scalable() {
                                subresources.push(json!({
                                    "subresource": "scale",
                                    "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                                    "verbs": ["get", "patch", "update"],
                                }));
                            }
                            if !subresources.is_empty() {
                                r["subresources"] = Value::Array(subresources);
                            }
                            r
                        })
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}
