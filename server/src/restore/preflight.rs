//! Pre-flight authorization: before anything is written, whether the
//! restoring user may do what the plan intends, asked of the API server as
//! that user (the restore's client impersonates them, so a
//! `SelfSubjectAccessReview` answers for them):
//! - one review per distinct (verb, group, resource) cluster-wide, then, for
//!   what is refused there, per namespace; never per object, so a plan of
//!   10,000 objects asks a handful of questions;
//! - Roles, ClusterRoles and their bindings are also created with
//!   `dryRun=All`: the API server's escalation checks (a role granting more
//!   than the user holds, a binding to one) answer in its own words.
//!
//! A line the user may not write becomes `forbidden`, with the reason and
//! the binding that would allow it. Like `engine.rs`, no catalog here.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, DynamicObject, PostParams};

use super::engine::{Action, Creatable, PlanItem};

/// How many reviews are asked at once.
const AT_ONCE: usize = 16;

/// The RBAC kinds whose creation the API server checks for escalation.
const RBAC: &[&str] = &[
    "roles.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
];

/// (verb, group, resource, namespace).
type Question = (String, String, String, Option<String>);

/// A plan line's (verb, group-resource, namespace), borrowed from the line.
type LineKey<'a> = (&'static str, &'a str, Option<&'a str>);

fn verb_of(action: Action) -> Option<&'static str> {
    match action {
        Action::Create | Action::Unknown => Some("create"),
        // The update policy applies with server-side apply: a patch.
        Action::Update => Some("patch"),
        _ => None,
    }
}

/// `group`, `resource` of a group-resource name (`deployments.apps`).
fn split(group_resource: &str) -> (String, String) {
    match group_resource.split_once('.') {
        Some((resource, group)) => (group.to_string(), resource.to_string()),
        None => (String::new(), group_resource.to_string()),
    }
}

/// What to bind for a refusal, in the docs' words (`docs/SECURITY.md`).
fn remedy(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!(
            "a RoleBinding of the ClusterRole `admin` (or `edit`) in {ns} allows it, as does \
             `cluster-admin`"
        ),
        None => "a ClusterRoleBinding that grants it (such as `cluster-admin`) allows it".into(),
    }
}

/// Why a review did not allow a request.
#[derive(Clone, Debug, thiserror::Error)]
enum Denied {
    /// The API server's reason.
    #[error("{0}")]
    Reason(String),
    /// The review itself could not be made (kept as text: answers are shared).
    #[error("the access review failed: {0}")]
    ReviewFailed(String),
}

/// Asks one review; `Err` holds the API server's reason for a denial.
async fn review(client: &kube::Client, q: &Question) -> Result<(), Denied> {
    let (verb, group, resource, namespace) = q;
    let asked = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.clone()),
                group: Some(group.clone()),
                resource: Some(resource.clone()),
                namespace: namespace.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    match api.create(&PostParams::default(), &asked).await {
        Ok(answer) => {
            let status = answer.status.unwrap_or_default();
            if status.allowed {
                Ok(())
            } else {
                Err(Denied::Reason(
                    status
                        .reason
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| "no rule allows it".into()),
                ))
            }
        }
        Err(e) => Err(Denied::ReviewFailed(e.to_string())),
    }
}

/// Asks `questions`, at most [`AT_ONCE`] at a time.
async fn ask(
    client: &kube::Client,
    questions: HashSet<Question>,
) -> HashMap<Question, Result<(), Denied>> {
    futures::stream::iter(questions)
        .map(|q| async move {
            let answer = review(client, &q).await;
            (q, answer)
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await
}

/// Answers asked ahead of the plan ([`prefetch`]).
#[derive(Default)]
pub struct Answers(HashMap<Question, Result<(), Denied>>);

/// Asks, cluster-wide, what a plan of `group_resources` will ask (create on
/// each, and patch under the update policy), so that it can run while the
/// plan lists the live objects: an admin's pre-flight then adds no wait.
pub async fn prefetch(
    client: &kube::Client,
    group_resources: impl IntoIterator<Item = String>,
    update: bool,
) -> Answers {
    let verbs: &[&str] = if update {
        &["create", "patch"]
    } else {
        &["create"]
    };
    let questions: HashSet<Question> = group_resources
        .into_iter()
        .filter(|gr| gr != super::volumes::GROUP_RESOURCE)
        .flat_map(|gr| {
            let (group, resource) = split(&gr);
            verbs
                .iter()
                .map(move |verb| (verb.to_string(), group.clone(), resource.clone(), None))
        })
        .collect();
    Answers(ask(client, questions).await)
}

/// Marks every line the user may not write `forbidden`; returns how many.
pub async fn check(client: &kube::Client, resources: &Creatable, plan: &mut [PlanItem]) -> usize {
    check_with(client, resources, plan, Answers::default()).await
}

/// [`check`], reusing what [`prefetch`] asked.
pub async fn check_with(
    client: &kube::Client,
    resources: &Creatable,
    plan: &mut [PlanItem],
    known: Answers,
) -> usize {
    // Each line's (verb, group-resource, namespace), numbered once: the
    // answers are worked out per distinct key, not per line.
    let mut keys: Vec<(&'static str, String, Option<String>)> = Vec::new();
    let mut key_of: Vec<Option<usize>> = Vec::with_capacity(plan.len());
    {
        let mut numbered: HashMap<LineKey<'_>, usize> = HashMap::new();
        let mut last: Option<(LineKey<'_>, usize)> = None;
        for line in plan.iter() {
            let verb = verb_of(line.action)
                .filter(|_| line.group_resource != super::volumes::GROUP_RESOURCE);
            key_of.push(verb.map(|verb| {
                let key = (
                    verb,
                    line.group_resource.as_str(),
                    line.namespace.as_deref(),
                );
                // Plans are sorted by kind and namespace: most lines share the last key.
                if let Some((previous, n)) = last
                    && previous == key
                {
                    return n;
                }
                let n = *numbered.entry(key).or_insert_with(|| {
                    keys.push((verb, line.group_resource.clone(), line.namespace.clone()));
                    keys.len() - 1
                });
                last = Some((key, n));
                n
            }));
        }
    }
    let question = |verb: &str, gr: &str, ns: Option<&String>| -> Question {
        let (group, resource) = split(gr);
        (verb.to_string(), group, resource, ns.cloned())
    };
    // Cluster-wide first: what the user may do in every namespace needs no
    // question per namespace (an admin's restore of 50 namespaces asks a
    // handful); only what is refused cluster-wide is asked per namespace.
    let cluster_wide: HashSet<Question> = keys
        .iter()
        .map(|(verb, gr, _)| question(verb, gr, None))
        .filter(|q| !known.0.contains_key(q))
        .collect();
    let mut broad = known.0;
    broad.extend(ask(client, cluster_wide).await);
    let narrow: HashSet<Question> = keys
        .iter()
        .filter(|(verb, gr, ns)| {
            ns.is_some()
                && broad
                    .get(&question(verb, gr, None))
                    .is_some_and(Result::is_err)
        })
        .map(|(verb, gr, ns)| question(verb, gr, ns.as_ref()))
        .collect();
    let answers = ask(client, narrow).await;
    // Per distinct key: the denial, if any (allowed cluster-wide is allowed
    // in each namespace).
    let denials: Vec<Option<String>> = keys
        .iter()
        .map(
            |(verb, gr, ns)| match broad.get(&question(verb, gr, None)) {
                Some(Ok(())) => None,
                Some(Err(why)) if ns.is_none() => Some(why.to_string()),
                _ => match answers.get(&question(verb, gr, ns.as_ref())) {
                    Some(Err(why)) => Some(why.to_string()),
                    _ => None,
                },
            },
        )
        .collect();
    let mut forbidden = 0;
    for (line, key) in plan.iter_mut().zip(key_of) {
        let Some(key) = key else {
            continue;
        };
        let denial = match &denials[key] {
            Some(why) => Some(why.clone()),
            None if RBAC.contains(&line.group_resource.as_str()) => {
                escalation(client, resources, line).await
            }
            None => None,
        };
        if let Some(why) = denial {
            let verb = keys[key].0;
            let scope = line
                .namespace
                .as_deref()
                .map(|ns| format!(" in {ns}"))
                .unwrap_or_default();
            line.reason = Some(format!(
                "forbidden — you may not {verb} {}{scope}: {why}; {}",
                line.group_resource,
                remedy(line.namespace.as_deref())
            ));
            line.action = Action::Forbidden;
            forbidden += 1;
        }
    }
    forbidden
}

/// For RBAC objects the user may create: the API server's escalation
/// check, by a dry-run create as the user. `Some(reason)` when refused.
async fn escalation(
    client: &kube::Client,
    resources: &Creatable,
    line: &PlanItem,
) -> Option<String> {
    if !RBAC.contains(&line.group_resource.as_str()) || line.action == Action::Update {
        return None;
    }
    let (ar, namespaced) = resources.get(&line.group_resource)?;
    let api: Api<DynamicObject> = match (namespaced, line.namespace.as_deref()) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, ar),
        _ => Api::all_with(client.clone(), ar),
    };
    let mut obj: DynamicObject = serde_json::from_value(line.object.clone()).ok()?;
    obj.types = Some(kube::api::TypeMeta {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
    });
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match api.create(&params, &obj).await {
        Err(kube::Error::Api(s)) if s.code == 403 => Some(s.message.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_resources_split_into_group_and_resource() {
        assert_eq!(split("configmaps"), ("".into(), "configmaps".into()));
        assert_eq!(
            split("rolebindings.rbac.authorization.k8s.io"),
            ("rbac.authorization.k8s.io".into(), "rolebindings".into())
        );
        assert_eq!(verb_of(Action::Update), Some("patch"));
        assert_eq!(verb_of(Action::Unknown), Some("create"));
        assert_eq!(verb_of(Action::Skip), None);
    }
}
