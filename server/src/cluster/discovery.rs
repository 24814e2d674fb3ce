//! API discovery, shared by the engines: every resource at its group's
//! preferred version (aggregated discovery first, per group where a server
//! lacks it), their `group-resource` names, and which resources are the same
//! objects served through two groups.

use std::collections::BTreeSet;

use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};

/// Group-resources the engines treat specially, named once.
pub mod gr {
    pub const CRDS: &str = "customresourcedefinitions.apiextensions.k8s.io";
    pub const NAMESPACES: &str = "namespaces";
    pub const PERSISTENT_VOLUMES: &str = "persistentvolumes";
    pub const PERSISTENT_VOLUME_CLAIMS: &str = "persistentvolumeclaims";
    pub const SERVICES: &str = "services";
    pub const PODS: &str = "pods";
    pub const JOBS: &str = "jobs.batch";
    pub const REPLICA_SETS: &str = "replicasets.apps";
    pub const CONFIG_MAPS: &str = "configmaps";
    pub const SECRETS: &str = "secrets";
    pub const ROLE_BINDINGS: &str = "rolebindings.rbac.authorization.k8s.io";
    pub const CLUSTER_ROLE_BINDINGS: &str = "clusterrolebindings.rbac.authorization.k8s.io";
}

/// `deployments.apps`, or `pods` for the core group.
pub fn group_resource(ar: &ApiResource) -> String {
    if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("API discovery failed: {0}")]
pub struct DiscoveryError(String);

/// What discovery found.
pub struct Discovered {
    /// Every resource at its group's preferred version.
    pub resources: Vec<(ApiResource, ApiCapabilities)>,
    /// Why aggregated discovery was not used, when it was not.
    pub fallback: Option<String>,
}

impl Discovered {
    /// The resources a verb applies to, by group-resource, with whether
    /// each is namespaced.
    pub fn by_name(&self, verb: &str) -> std::collections::HashMap<String, (ApiResource, bool)> {
        self.resources
            .iter()
            .filter(|(_, caps)| caps.supports_operation(verb))
            .map(|(ar, caps)| {
                (
                    group_resource(ar),
                    (ar.clone(), caps.scope == Scope::Namespaced),
                )
            })
            .collect()
    }
}

pub async fn discover(client: &kube::Client) -> Result<Discovered, DiscoveryError> {
    let (discovery, fallback) = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => (d, None),
        Err(e) => (
            Discovery::new(client.clone())
                .run()
                .await
                .map_err(|e| DiscoveryError(e.to_string()))?,
            Some(format!(
                "aggregated discovery failed ({e}); used per-group discovery"
            )),
        ),
    };
    Ok(Discovered {
        resources: discovery
            .groups()
            .flat_map(|g| g.recommended_resources())
            .collect(),
        fallback,
    })
}

/// Resources kube-apiserver serves through more than one group from one
/// store: Events through `v1` and `events.k8s.io`, and on old servers
/// workloads through `extensions` beside `apps`, `networking.k8s.io` and
/// `policy`. The first group listed is the one backed up (as Velero does).
const COHABITING: &[(&str, &[&str])] = &[
    ("events", &["", "events.k8s.io"]),
    ("deployments", &["apps", "extensions"]),
    ("daemonsets", &["apps", "extensions"]),
    ("replicasets", &["apps", "extensions"]),
    ("networkpolicies", &["networking.k8s.io", "extensions"]),
    ("ingresses", &["networking.k8s.io", "extensions"]),
    ("podsecuritypolicies", &["policy", "extensions"]),
];

/// A resource left out, with the name of the one taken in its place.
type LeftOut = (ApiResource, String);

/// Keeps each cohabiting resource once, through its preferred group; returns
/// what was kept and what was left out.
pub fn take_cohabiting_once<C>(
    resources: impl IntoIterator<Item = (ApiResource, C)>,
) -> (Vec<(ApiResource, C)>, Vec<LeftOut>) {
    let all: Vec<(ApiResource, C)> = resources.into_iter().collect();
    let served: BTreeSet<(String, String)> = all
        .iter()
        .map(|(ar, _)| (ar.group.clone(), ar.plural.clone()))
        .collect();
    let mut taken = Vec::with_capacity(all.len());
    let mut skipped = Vec::new();
    for (ar, caps) in all {
        let preferred = COHABITING
            .iter()
            .find(|(plural, groups)| *plural == ar.plural && groups.contains(&ar.group.as_str()))
            .and_then(|(plural, groups)| {
                groups
                    .iter()
                    .find(|g| served.contains(&(g.to_string(), plural.to_string())))
            });
        match preferred {
            Some(g) if *g != ar.group => {
                let kept = if g.is_empty() {
                    ar.plural.clone()
                } else {
                    format!("{}.{g}", ar.plural)
                };
                skipped.push((ar, kept));
            }
            _ => taken.push((ar, caps)),
        }
    }
    (taken, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar(group: &str, version: &str, plural: &str) -> ApiResource {
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: if group.is_empty() {
                version.into()
            } else {
                format!("{group}/{version}")
            },
            kind: String::new(),
            plural: plural.into(),
        }
    }

    #[test]
    fn cohabiting_resources_are_taken_once_through_the_preferred_group() {
        let discovered = [
            ar("", "v1", "events"),
            ar("", "v1", "pods"),
            ar("events.k8s.io", "v1", "events"),
            ar("extensions", "v1beta1", "ingresses"),
            ar("networking.k8s.io", "v1", "ingresses"),
            ar("extensions", "v1beta1", "deployments"),
            ar("example.com", "v1", "events"),
        ]
        .map(|a| (a, ()));
        let (taken, skipped) = take_cohabiting_once(discovered);
        let names: Vec<String> = taken.iter().map(|(a, _)| group_resource(a)).collect();
        assert_eq!(
            names,
            [
                "events",
                "pods",
                "ingresses.networking.k8s.io",
                // `apps` is not served here: `extensions` is the only home.
                "deployments.extensions",
                "events.example.com"
            ]
        );
        let left: Vec<(String, String)> = skipped
            .into_iter()
            .map(|(a, kept)| (group_resource(&a), kept))
            .collect();
        assert_eq!(
            left,
            [
                ("events.events.k8s.io".to_string(), "events".to_string()),
                (
                    "ingresses.extensions".to_string(),
                    "ingresses.networking.k8s.io".to_string()
                )
            ]
        );
    }
}
