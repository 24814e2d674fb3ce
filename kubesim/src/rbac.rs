//! Who is asking, and what they may do: bearer tokens name users, and
//! requests are authorized from the Roles, ClusterRoles and bindings in the
//! store as kube-apiserver's RBAC authorizer does. Writes of roles and
//! bindings go through its escalation prevention: a user may only grant
//! permissions they hold, unless they have `escalate` (roles) or `bind`
//! (bindings) on the role concerned.
//!
//! Members of `system:masters` (the admin token) are not checked, as on a
//! real cluster. Discovery, `/version`, `/openapi` and health endpoints are
//! open to every authenticated user (the bootstrap `system:discovery` and
//! `system:public-info-viewer` bindings, which kubesim does not store).

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Store;

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Empty for users without one (the admin, static tokens without a uid).
    pub uid: String,
    pub groups: Vec<String>,
}

impl User {
    /// The cluster admin (`kubernetes-admin` in `system:masters`).
    pub fn admin() -> Self {
        Self {
            name: "kubernetes-admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// A ServiceAccount, with the groups kube-apiserver gives it.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            uid: String::new(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    fn superuser(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }

    fn describe(&self) -> String {
        let groups: Vec<String> = self.groups.iter().map(|g| format!("{g:?}")).collect();
        format!("user {:?} (groups=[{}])", self.name, groups.join(" "))
    }
}

/// What one request does, as RBAC sees it.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    /// `pods`, or `deployments/scale` for a subresource.
    pub resource: String,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn has(list: &[&str], x: &str) -> bool {
    list.iter().any(|v| *v == x || *v == "*")
}

/// Whether `rule` allows `req`.
fn rule_allows(rule: &Value, req: &Request) -> bool {
    let resources = strings(&rule["resources"]);
    let resource_ok = has(&resources, &req.resource)
        || req.resource.split_once('/').is_some_and(|(r, sub)| {
            resources.contains(&format!("{r}/*").as_str())
                || resources.contains(&format!("*/{sub}").as_str())
        });
    let names = strings(&rule["resourceNames"]);
    has(&strings(&rule["verbs"]), req.verb)
        && has(&strings(&rule["apiGroups"]), req.group)
        && resource_ok
        && (names.is_empty() || req.name.is_some_and(|n| names.contains(&n)))
}

fn subject_matches(subject: &Value, user: &User, binding_ns: Option<&str>) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str() {
        Some("User") => user.name == name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let ns = subject["namespace"]
                .as_str()
                .or(binding_ns)
                .unwrap_or_default();
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn all(store: &Store, resource: &str, ns: Option<&str>) -> Vec<Value> {
    match store.find("rbac.authorization.k8s.io", "v1", resource) {
        Some(rt) => {
            store
                .list(
                    &rt,
                    ns,
                    &LabelSelector::default(),
                    &FieldSelector::default(),
                )
                .0
        }
        None => Vec::new(),
    }
}

/// The rules of the role a binding refers to (empty when it is missing).
fn role_rules(store: &Store, role_ref: &Value, ns: Option<&str>) -> Option<Vec<Value>> {
    let name = role_ref["name"].as_str()?;
    let (resource, ns) = match role_ref["kind"].as_str()? {
        "ClusterRole" => ("clusterroles", None),
        "Role" => ("roles", Some(ns?)),
        _ => return None,
    };
    let rt = store.find("rbac.authorization.k8s.io", "v1", resource)?;
    let role = store.get(&rt, ns, name).ok()?;
    Some(role["rules"].as_array().cloned().unwrap_or_default())
}

/// Every rule `user` holds in `ns` (cluster-wide ones included), or only
/// the cluster-wide ones when `ns` is `None`, each with the binding that
/// grants it (`ClusterRoleBinding "x" of ClusterRole "y"`).
fn sourced_rules(store: &Store, user: &User, ns: Option<&str>) -> Vec<(Value, String)> {
    let mut rules = Vec::new();
    let source = |binding: &Value, kind: &str| {
        format!(
            "{kind} {:?} of {} {:?}",
            binding["metadata"]["name"].as_str().unwrap_or_default(),
            binding["roleRef"]["kind"].as_str().unwrap_or_default(),
            binding["roleRef"]["name"].as_str().unwrap_or_default()
        )
    };
    for b in all(store, "clusterrolebindings", None) {
        let subjects = b["subjects"].as_array().cloned().unwrap_or_default();
        if subjects.iter().any(|s| subject_matches(s, user, None)) {
            let from = source(&b, "ClusterRoleBinding");
            for r in role_rules(store, &b["roleRef"], None).unwrap_or_default() {
                rules.push((r, from.clone()));
            }
        }
    }
    if let Some(ns) = ns {
        for b in all(store, "rolebindings", Some(ns)) {
            let subjects = b["subjects"].as_array().cloned().unwrap_or_default();
            if subjects.iter().any(|s| subject_matches(s, user, Some(ns))) {
                let from = format!("{} in namespace {ns:?}", source(&b, "RoleBinding"));
                for r in role_rules(store, &b["roleRef"], Some(ns)).unwrap_or_default() {
                    rules.push((r, from.clone()));
                }
            }
        }
    }
    rules
}

/// Every rule `user` holds in `ns` (cluster-wide ones included), or only
/// the cluster-wide ones when `ns` is `None`.
pub fn rules_of(store: &Store, user: &User, ns: Option<&str>) -> Vec<Value> {
    sourced_rules(store, user, ns)
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

/// Whether `user` may do `req`.
pub fn allows(store: &Store, user: &User, req: &Request) -> bool {
    allowed_by(store, user, req).is_some()
}

/// Why `user` may do `req` (the binding that allows it), or `None`.
pub fn allowed_by(store: &Store, user: &User, req: &Request) -> Option<String> {
    if user.superuser() {
        return Some("allowed: member of system:masters".into());
    }
    sourced_rules(store, user, req.namespace)
        .into_iter()
        .find(|(r, _)| rule_allows(r, req))
        .map(|(_, from)| from)
}

/// Whether a rule's `nonResourceURLs` allow `verb` on `path` (`/healthz`,
/// or a prefix ending in `*`).
fn non_resource_allows(rule: &Value, verb: &str, path: &str) -> bool {
    has(&strings(&rule["verbs"]), verb)
        && strings(&rule["nonResourceURLs"]).iter().any(|p| {
            *p == "*" || *p == path || p.strip_suffix('*').is_some_and(|pre| path.starts_with(pre))
        })
}

/// A SubjectAccessReview's `spec` answered (`status`): resource attributes
/// or non-resource attributes, for `spec.user`/`spec.groups`, or for
/// `asking` when the review is a self review.
pub fn review(store: &Store, spec: &Value, asking: Option<&User>) -> Value {
    let user = match asking {
        Some(u) => u.clone(),
        None => User {
            name: spec["user"].as_str().unwrap_or_default().to_string(),
            uid: spec["uid"].as_str().unwrap_or_default().to_string(),
            groups: strings(&spec["groups"])
                .into_iter()
                .map(str::to_string)
                .collect(),
        },
    };
    let shown = |from: String| {
        format!(
            "RBAC: allowed by {from} to {}",
            if user.name.starts_with("system:serviceaccount:") {
                format!("ServiceAccount {:?}", user.name)
            } else {
                format!("User {:?}", user.name)
            }
        )
    };
    if let Some(attrs) = spec["resourceAttributes"].as_object() {
        let text = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or_default();
        let resource = match text("subresource") {
            "" => text("resource").to_string(),
            sub => format!("{}/{sub}", text("resource")),
        };
        let namespace = Some(text("namespace")).filter(|n| !n.is_empty());
        let name = Some(text("name")).filter(|n| !n.is_empty());
        let req = Request {
            verb: text("verb"),
            group: text("group"),
            resource,
            namespace,
            name,
        };
        return match allowed_by(store, &user, &req) {
            Some(from) if from.starts_with("allowed:") => json!({"allowed": true}),
            Some(from) => json!({"allowed": true, "reason": shown(from)}),
            None => json!({"allowed": false}),
        };
    }
    if let Some(attrs) = spec["nonResourceAttributes"].as_object() {
        let text = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or_default();
        if user.superuser() {
            return json!({"allowed": true});
        }
        let found = sourced_rules(store, &user, None)
            .into_iter()
            .find(|(r, _)| non_resource_allows(r, text("verb"), text("path")));
        return match found {
            Some((_, from)) => json!({"allowed": true, "reason": shown(from)}),
            None => json!({"allowed": false}),
        };
    }
    json!({"allowed": false, "evaluationError": "neither resourceAttributes nor nonResourceAttributes were given"})
}

/// Aggregates until nothing changes (`admin` takes `edit`'s rules, which
/// take `view`'s), as a fresh cluster's roles are before any request.
pub fn aggregate_all(store: &Store) {
    for _ in 0..4 {
        if !aggregate_cluster_roles(store) {
            break;
        }
    }
}

/// kube-controller-manager's clusterrole-aggregation controller: a
/// ClusterRole with an `aggregationRule` holds the rules of every other
/// ClusterRole its selectors match (in name order, each rule once).
/// Returns whether it changed anything.
pub fn aggregate_cluster_roles(store: &Store) -> bool {
    let Some(rt) = store.find("rbac.authorization.k8s.io", "v1", "clusterroles") else {
        return false;
    };
    let mut roles = all(store, "clusterroles", None);
    roles.sort_by(|a, b| {
        a["metadata"]["name"]
            .as_str()
            .cmp(&b["metadata"]["name"].as_str())
    });
    let mut changed = false;
    for role in roles.iter().filter(|r| r["aggregationRule"].is_object()) {
        let selectors: Vec<LabelSelector> = role["aggregationRule"]["clusterRoleSelectors"]
            .as_array()
            .map(|a| a.iter().map(LabelSelector::from_object).collect())
            .unwrap_or_default();
        let name = role["metadata"]["name"].as_str().unwrap_or_default();
        let mut rules: Vec<Value> = Vec::new();
        for other in &roles {
            if other["metadata"]["name"].as_str() == Some(name) {
                continue;
            }
            let labels = &other["metadata"]["labels"];
            if !selectors.iter().any(|s| !s.is_empty() && s.matches(labels)) {
                continue;
            }
            for rule in other["rules"].as_array().cloned().unwrap_or_default() {
                if !rules.contains(&rule) {
                    rules.push(rule);
                }
            }
        }
        let current = role["rules"].as_array().cloned().unwrap_or_default();
        if current != rules {
            let mut updated = role.clone();
            updated["rules"] = Value::Array(rules);
            changed |= store.update(&rt, None, name, updated, false, false).is_ok();
        }
    }
    changed
}

/// kube-apiserver's 403 for a request RBAC does not allow.
pub fn forbidden(user: &User, req: &Request) -> ApiError {
    let (resource, sub) = match req.resource.split_once('/') {
        Some((r, s)) => (r.to_string(), format!(" subresource {s:?}")),
        None => (req.resource.clone(), String::new()),
    };
    let what = match (req.name, req.group) {
        (Some(n), "") => format!("{resource} {n:?}"),
        (Some(n), g) => format!("{resource}.{g} {n:?}"),
        (None, "") => resource.clone(),
        (None, g) => format!("{resource}.{g}"),
    };
    let scope = match req.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".into(),
    };
    ApiError::forbidden(format!(
        "{what} is forbidden: User {:?} cannot {} resource {resource:?}{sub} in API group {:?} {scope}",
        user.name, req.verb, req.group
    ))
}

/// Whether `held` covers every (group, resource, verb, name) that `rule` grants.
/// A `*` in the granted rule must be held as `*` (as kube-apiserver's
/// `Covers` treats it).
fn covered(rule: &Value, held: &[Value]) -> bool {
    let urls = strings(&rule["nonResourceURLs"]);
    if !urls.is_empty() {
        return strings(&rule["verbs"]).iter().all(|verb| {
            urls.iter().all(|url| {
                held.iter().any(|h| {
                    has(&strings(&h["verbs"]), verb)
                        && strings(&h["nonResourceURLs"]).iter().any(|p| {
                            *p == "*"
                                || p == url
                                || p.strip_suffix('*').is_some_and(|pre| url.starts_with(pre))
                        })
                })
            })
        });
    }
    let names = strings(&rule["resourceNames"]);
    let names: Vec<Option<&str>> = if names.is_empty() {
        vec![None]
    } else {
        names.into_iter().map(Some).collect()
    };
    for group in strings(&rule["apiGroups"]) {
        for resource in strings(&rule["resources"]) {
            for verb in strings(&rule["verbs"]) {
                for name in &names {
                    let ok = held.iter().any(|h| {
                        let held_names = strings(&h["resourceNames"]);
                        has(&strings(&h["verbs"]), verb)
                            && has(&strings(&h["apiGroups"]), group)
                            && has(&strings(&h["resources"]), resource)
                            && (held_names.is_empty()
                                || name.is_some_and(|n| held_names.contains(&n)))
                    });
                    if !ok {
                        return false;
                    }
                }
            }
        }
    }
    true
}

/// Go's `%+v`-like rendering of a rule, as kube-apiserver prints it.
fn show_rule(rule: &Value) -> String {
    let list = |k: &str| {
        let items: Vec<String> = strings(&rule[k]).iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", items.join(" "))
    };
    let mut parts = Vec::new();
    if !strings(&rule["nonResourceURLs"]).is_empty() {
        parts.push(format!("NonResourceURLs:{}", list("nonResourceURLs")));
    } else {
        parts.push(format!("APIGroups:{}", list("apiGroups")));
        parts.push(format!("Resources:{}", list("resources")));
        if !strings(&rule["resourceNames"]).is_empty() {
            parts.push(format!("ResourceNames:{}", list("resourceNames")));
        }
    }
    parts.push(format!("Verbs:{}", list("verbs")));
    format!("{{{}}}", parts.join(", "))
}

/// Escalation prevention for a write of a role or binding: `obj` is what
/// would be stored.
pub fn check_escalation(
    store: &Store,
    user: &User,
    rt: &ResourceType,
    ns: Option<&str>,
    obj: &Value,
) -> Result<(), ApiError> {
    if user.superuser() || rt.group != "rbac.authorization.k8s.io" {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let gr = format!("{}.{}", rt.resource, rt.group);
    let granted = match rt.resource.as_str() {
        "roles" | "clusterroles" => {
            let may_escalate = allows(
                store,
                user,
                &Request {
                    verb: "escalate",
                    group: &rt.group,
                    resource: rt.resource.clone(),
                    namespace: ns,
                    name: Some(name),
                },
            );
            if may_escalate {
                return Ok(());
            }
            obj["rules"].as_array().cloned().unwrap_or_default()
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_ref = &obj["roleRef"];
            let role_resource = match role_ref["kind"].as_str() {
                Some("Role") => "roles",
                _ => "clusterroles",
            };
            let may_bind = allows(
                store,
                user,
                &Request {
                    verb: "bind",
                    group: "rbac.authorization.k8s.io",
                    resource: role_resource.into(),
                    namespace: ns,
                    name: role_ref["name"].as_str(),
                },
            );
            if may_bind {
                return Ok(());
            }
            match role_rules(store, role_ref, ns) {
                Some(rules) => rules,
                None => {
                    return Err(ApiError::forbidden(format!(
                        "{gr} {name:?} is forbidden: {} {:?} not found",
                        role_resource,
                        role_ref["name"].as_str().unwrap_or_default()
                    )));
                }
            }
        }
        _ => return Ok(()),
    };
    let held = rules_of(store, user, ns);
    let missing: Vec<String> = granted
        .iter()
        .filter(|r| !covered(r, &held))
        .map(show_rule)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "{gr} {name:?} is forbidden: {} is attempting to grant RBAC permissions not currently held:\n{}",
        user.describe(),
        missing.join("\n")
    )))
}

/// The verb of an HTTP request on a resource.
pub fn verb(method: &str, named: bool, watch: bool) -> &'static str {
    match (method, named) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
        json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
    }

    #[test]
    fn rules_cover_only_what_they_grant() {
        let held = vec![
            rule(&["*"], &["*"], &["get", "list", "create"]),
            rule(&["apps"], &["deployments"], &["*"]),
        ];
        assert!(covered(&rule(&[""], &["pods"], &["get", "list"]), &held));
        assert!(covered(
            &rule(&["apps"], &["deployments"], &["delete"]),
            &held
        ));
        assert!(!covered(&rule(&[""], &["pods"], &["delete"]), &held));
        // A wildcard granted must be held as a wildcard.
        assert!(!covered(&rule(&["apps"], &["*"], &["delete"]), &held));
        assert!(covered(&rule(&["apps"], &["*"], &["get"]), &held));
        let shown = show_rule(&rule(&[""], &["pods"], &["delete"]));
        assert_eq!(
            shown,
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#
        );
    }

    #[test]
    fn subresources_and_names() {
        let req = Request {
            verb: "get",
            group: "apps",
            resource: "deployments/scale".into(),
            namespace: Some("shop"),
            name: Some("web"),
        };
        assert!(rule_allows(
            &rule(&["apps"], &["deployments/scale"], &["get"]),
            &req
        ));
        assert!(!rule_allows(
            &rule(&["apps"], &["deployments"], &["get"]),
            &req
        ));
        assert!(rule_allows(&rule(&["apps"], &["*"], &["get"]), &req));
        let mut named = rule(&["apps"], &["deployments/scale"], &["get"]);
        named["resourceNames"] = json!(["api"]);
        assert!(!rule_allows(&named, &req));
    }

    #[test]
    fn bootstrap_roles_aggregate_into_admin_edit_and_view() {
        let store = Store::new();
        aggregate_all(&store);
        let rt = store
            .find("rbac.authorization.k8s.io", "v1", "clusterroles")
            .expect("served");
        let resources_of = |role: &str| -> Vec<String> {
            let role = store.get(&rt, None, role).expect("bootstrapped");
            role["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .flat_map(|r| strings(&r["resources"]))
                .map(str::to_string)
                .collect()
        };
        let admin = resources_of("admin");
        let edit = resources_of("edit");
        let view = resources_of("view");
        for r in ["rolebindings", "deployments", "secrets", "pods/log"] {
            assert!(admin.iter().any(|a| a == r), "admin lacks {r}: {admin:?}");
        }
        assert!(edit.iter().any(|a| a == "secrets") && !edit.iter().any(|a| a == "rolebindings"));
        assert!(view.iter().any(|a| a == "pods") && !view.iter().any(|a| a == "secrets"));
        let alice = User {
            name: "alice".into(),
            uid: String::new(),
            groups: vec!["system:authenticated".into()],
        };
        let status = review(
            &store,
            &json!({"user": "alice", "groups": ["system:authenticated"],
                    "nonResourceAttributes": {"path": "/version", "verb": "get"}}),
            None,
        );
        assert_eq!(status["allowed"], true, "{status}");
        let own = review(
            &store,
            &json!({"resourceAttributes": {"verb": "create", "group": "authorization.k8s.io", "resource": "selfsubjectaccessreviews"}}),
            Some(&alice),
        );
        assert_eq!(own["allowed"], true, "{own}");
    }
}
