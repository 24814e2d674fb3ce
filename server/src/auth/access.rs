//! Authorization by the cluster's RBAC. Lifeboat's actions are resources of
//! the API group `lifeboat.io` (served by no one; RBAC rules may name any
//! group): `backups`, `backups/download`, `restores`, `schedules`,
//! `storagelocations` and `activities`. Each check is a
//! `SubjectAccessReview` for the principal, cached for a short time.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::{AuthError, Principal};

/// The API group of Lifeboat's resources in RBAC rules.
pub const GROUP: &str = "lifeboat.io";

/// Cached answers at most; past this the cache starts over.
const CACHE_MAX: usize = 50_000;

/// One thing to be allowed: a verb on a resource (of `lifeboat.io` unless
/// said otherwise), in a namespace or cluster-wide (`None`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Check {
    pub group: &'static str,
    pub verb: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    pub namespace: Option<String>,
}

impl Check {
    pub fn cluster(verb: &'static str, resource: &'static str) -> Self {
        Self {
            group: GROUP,
            verb,
            resource,
            subresource: None,
            namespace: None,
        }
    }

    pub fn namespaced(verb: &'static str, resource: &'static str, namespace: &str) -> Self {
        Self {
            namespace: Some(namespace.to_string()),
            ..Self::cluster(verb, resource)
        }
    }

    /// The same check in each of `namespaces`, or cluster-wide for `None`.
    pub fn in_each(
        verb: &'static str,
        resource: &'static str,
        namespaces: Option<&[String]>,
    ) -> Vec<Self> {
        match namespaces {
            Some(list) => list
                .iter()
                .map(|ns| Self::namespaced(verb, resource, ns))
                .collect(),
            None => vec![Self::cluster(verb, resource)],
        }
    }

    /// A verb on a Kubernetes resource (`list pods` in a namespace), as
    /// health views ask it: they show what the reader could see with kubectl.
    pub fn kubernetes(
        verb: &'static str,
        group: &'static str,
        resource: &'static str,
        namespace: Option<&str>,
    ) -> Self {
        Self {
            group,
            verb,
            resource,
            subresource: None,
            namespace: namespace.map(str::to_string),
        }
    }

    pub fn with_subresource(mut self, subresource: &'static str) -> Self {
        self.subresource = Some(subresource);
        self
    }

    /// As kube-apiserver words a refusal.
    fn refusal(&self, who: &Principal) -> String {
        let resource = match self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.to_string(),
        };
        let scope = match &self.namespace {
            Some(ns) => format!("in the namespace {ns:?}"),
            None => "at the cluster scope".into(),
        };
        if self.group != GROUP {
            let what = match self.group {
                "" => resource,
                g => format!("{resource}.{g}"),
            };
            return format!(
                "{:?} may not {} {what} {scope}; what Lifeboat shows of the cluster follows what its reader could see with kubectl",
                who.username, self.verb
            );
        }
        format!(
            "{:?} may not {} {resource}.{GROUP} {scope}; a cluster admin can grant it with a Role or ClusterRole (docker/rbac.yaml has lifeboat-admin, lifeboat-operator and lifeboat-namespace-user)",
            who.username, self.verb
        )
    }
}

type Key = (String, Vec<String>, Check);

pub struct Authorizer {
    client: kube::Client,
    cache_for: Duration,
    cache: RwLock<HashMap<Key, (Instant, bool)>>,
}

impl Authorizer {
    pub fn new(client: kube::Client, cache_for: Duration) -> Self {
        Self {
            client,
            cache_for,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Whether `who` may do `check`.
    pub async fn allowed(&self, who: &Principal, check: &Check) -> Result<bool, AuthError> {
        let key = (who.username.clone(), who.groups.clone(), check.clone());
        if let Ok(cache) = self.cache.read()
            && let Some((at, allowed)) = cache.get(&key)
            && at.elapsed() < self.cache_for
        {
            return Ok(*allowed);
        }
        let allowed = self.ask(who, check).await?;
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), allowed));
        }
        Ok(allowed)
    }

    /// Refuses with the first check `who` may not do.
    pub async fn require(&self, who: &Principal, checks: &[Check]) -> Result<(), AuthError> {
        for check in checks {
            if !self.allowed(who, check).await? {
                return Err(AuthError::Forbidden(check.refusal(who)));
            }
        }
        Ok(())
    }

    async fn ask(&self, who: &Principal, check: &Check) -> Result<bool, AuthError> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(who.username.clone()),
                uid: (!who.uid.is_empty()).then(|| who.uid.clone()),
                groups: Some(who.groups.clone()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(check.group.into()),
                    resource: Some(check.resource.into()),
                    subresource: check.subresource.map(str::to_string),
                    verb: Some(check.verb.into()),
                    namespace: check.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.code == 403 => AuthError::Unavailable(format!(
                    "Lifeboat may not check permissions ({}); bind its ServiceAccount to the ClusterRole system:auth-delegator",
                    s.message
                )),
                other => AuthError::Unavailable(format!(
                    "the API server could not check a permission: {other}"
                )),
            })?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}
