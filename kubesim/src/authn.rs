//! Who is asking, as kube-apiserver's authenticators decide it: bearer
//! tokens with audiences, expiry and bound objects (a ServiceAccount token
//! dies with its ServiceAccount), `TokenReview`, `TokenRequest`
//! (`serviceaccounts/{name}/token`) and impersonation headers.
//!
//! Tokens are JWT-shaped (`header.claims.signature`, base64url) with the
//! claims kube-apiserver puts in a ServiceAccount token, so a client that
//! peeks at `exp` sees what it would on a real cluster; kubesim checks them
//! by lookup, not by signature.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::rbac::{self, User};
use crate::store::Store;

/// The prefix of the `user.extra` keys a ServiceAccount token carries.
pub const EXTRA_PREFIX: &str = "authentication.kubernetes.io/";

/// The API server's own audience (`--api-audiences`, by default the issuer).
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// The object a token lives and dies with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    /// `serviceaccounts`, `pods` or `secrets` (core group).
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// What a token stands for.
#[derive(Clone, Debug)]
pub struct Credential {
    pub user: User,
    /// The audiences it was issued for; `None` for static tokens, which are
    /// good for the API server's own audience.
    pub audiences: Option<Vec<String>>,
    pub expires: Option<DateTime<Utc>>,
    /// Objects that must still exist with these uids.
    pub bound: Vec<Bound>,
    /// What a TokenReview reports as `user.extra`: for a pod-bound token,
    /// the pod and (Kubernetes 1.30+) its node, as kube-apiserver does.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Credential {
    /// A token that is `user` for the API server, without end (a static token).
    pub fn fixed(user: User) -> Self {
        Self {
            user,
            audiences: None,
            expires: None,
            bound: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// Tokens the simulator accepts besides the admin token.
#[derive(Clone, Debug, Default)]
pub struct Identities(Arc<RwLock<HashMap<String, Credential>>>);

impl Identities {
    /// A static token for `user` (kube-apiserver's `--token-auth-file`).
    pub fn insert(&self, token: &str, user: User) {
        self.insert_credential(token, Credential::fixed(user));
    }

    pub fn insert_credential(&self, token: &str, credential: Credential) {
        if let Ok(mut map) = self.0.write() {
            map.insert(token.to_string(), credential);
        }
    }

    pub fn get(&self, token: &str) -> Option<Credential> {
        self.0.read().ok().and_then(|m| m.get(token).cloned())
    }
}

/// Reads kube-apiserver's static token file: `token,user,uid,"group1,group2"`
/// per line (groups optional; `#` starts a comment).
pub fn parse_token_file(text: &str) -> Result<Vec<(String, User)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (fields, groups) = match line.split_once(",\"") {
            Some((head, tail)) => (head, tail.trim_end_matches('"')),
            None => (line, ""),
        };
        let fields: Vec<&str> = fields.split(',').collect();
        let [token, name, uid, ..] = fields.as_slice() else {
            return Err(format!("line {}: want token,user,uid[,\"groups\"]", n + 1));
        };
        let mut groups: Vec<String> = groups
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        out.push((
            token.to_string(),
            User {
                name: name.to_string(),
                uid: uid.to_string(),
                groups,
            },
        ));
    }
    Ok(out)
}

/// How a token was checked: the user, and the audiences it was good for.
pub type Authenticated = (User, Vec<String>);

/// Checks a bearer token for `audiences` (the API server's own when empty),
/// as a request or a TokenReview would. The error is what kube-apiserver
/// puts in a TokenReview's `status.error`.
pub fn authenticate(
    store: &Store,
    identities: &Identities,
    admin_token: Option<&str>,
    token: &str,
    audiences: &[String],
) -> Result<Authenticated, String> {
    let wanted: Vec<String> = if audiences.is_empty() {
        vec![API_AUDIENCE.to_string()]
    } else {
        audiences.to_vec()
    };
    let credential = match admin_token {
        Some(admin) if admin == token => Credential::fixed(User::admin()),
        _ => identities
            .get(token)
            .ok_or_else(|| "invalid bearer token".to_string())?,
    };
    if let Some(expires) = credential.expires
        && Utc::now() >= expires
    {
        return Err("invalid bearer token, token has expired".into());
    }
    for b in &credential.bound {
        let live = store
            .find("", "v1", &b.resource)
            .and_then(|rt| store.get(&rt, Some(&b.namespace), &b.name).ok());
        let uid = live.as_ref().and_then(|o| o["metadata"]["uid"].as_str());
        match uid {
            Some(uid) if uid == b.uid => {}
            Some(_) => {
                return Err(format!(
                    "invalid bearer token, {} {}/{} has been deleted and recreated (uid differs)",
                    singular(&b.resource),
                    b.namespace,
                    b.name
                ));
            }
            None => {
                return Err(format!(
                    "invalid bearer token, {} {:?} not found",
                    b.resource, b.name
                ));
            }
        }
    }
    let held = credential
        .audiences
        .clone()
        .unwrap_or_else(|| vec![API_AUDIENCE.to_string()]);
    let common: Vec<String> = wanted
        .iter()
        .filter(|a| held.contains(a))
        .cloned()
        .collect();
    if common.is_empty() {
        return Err(format!(
            "invalid bearer token, token audiences {held:?} is invalid for the target audiences {wanted:?}"
        ));
    }
    Ok((credential.user, common))
}

fn singular(resource: &str) -> &str {
    match resource {
        "serviceaccounts" => "serviceaccount",
        "pods" => "pod",
        "secrets" => "secret",
        other => other,
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT-shaped token carrying a ServiceAccount token's claims.
fn jwt(claims: &Value) -> String {
    let header = json!({"alg": "RS256", "kid": "kubesim"});
    let signature = uuid::Uuid::new_v4();
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature.as_bytes())
    )
}

/// `POST …/serviceaccounts/{name}/token`: a TokenRequest answered with a
/// token for the ServiceAccount, bound to it (and to `boundObjectRef`).
pub fn token_request(
    store: &Store,
    identities: &Identities,
    namespace: &str,
    name: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let sa_type = store
        .find("", "v1", "serviceaccounts")
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
    let sa = store.get(&sa_type, Some(namespace), name)?;
    let sa_uid = sa["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let spec = &body["spec"];
    let audiences: Vec<String> = match spec["audiences"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![API_AUDIENCE.to_string()],
    };
    let seconds = spec["expirationSeconds"].as_i64().unwrap_or(3600);
    if seconds < 600 {
        return Err(ApiError::invalid(
            "TokenRequest",
            name,
            "spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes",
        ));
    }
    if seconds > 1 << 32 {
        return Err(ApiError::invalid(
            "TokenRequest",
            name,
            "spec.expirationSeconds: Invalid value: may not specify a duration larger than 2^32 seconds",
        ));
    }
    let mut bound = vec![Bound {
        resource: "serviceaccounts".into(),
        namespace: namespace.into(),
        name: name.into(),
        uid: sa_uid.clone(),
    }];
    let mut bound_claim = Value::Null;
    let mut node_claim = Value::Null;
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(reference) = spec["boundObjectRef"].as_object() {
        let kind = reference.get("kind").and_then(Value::as_str).unwrap_or("");
        let resource = match kind {
            "Pod" => "pods",
            "Secret" => "secrets",
            other => {
                return Err(ApiError::invalid(
                    "TokenRequest",
                    name,
                    &format!(
                        "spec.boundObjectRef.kind: Unsupported value: {other:?}: supported values: \"Pod\", \"Secret\""
                    ),
                ));
            }
        };
        let object_name = reference.get("name").and_then(Value::as_str).unwrap_or("");
        let rt = store
            .find("", "v1", resource)
            .ok_or_else(|| ApiError::not_found("", resource, object_name))?;
        let object = store.get(&rt, Some(namespace), object_name)?;
        let uid = object["metadata"]["uid"].as_str().unwrap_or_default();
        if let Some(wanted) = reference.get("uid").and_then(Value::as_str)
            && wanted != uid
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "the UID in the bound object reference ({wanted}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        bound_claim = json!({"name": object_name, "uid": uid});
        if resource == "pods" {
            extra.insert(
                format!("{EXTRA_PREFIX}pod-name"),
                vec![object_name.to_string()],
            );
            extra.insert(format!("{EXTRA_PREFIX}pod-uid"), vec![uid.to_string()]);
            // The node the pod runs on when the token is issued.
            if let Some(node) = object["spec"]["nodeName"]
                .as_str()
                .filter(|n| !n.is_empty())
            {
                let node_uid = store
                    .find("", "v1", "nodes")
                    .and_then(|rt| store.get(&rt, None, node).ok())
                    .and_then(|n| n["metadata"]["uid"].as_str().map(str::to_string))
                    .unwrap_or_default();
                node_claim = json!({"name": node, "uid": node_uid});
                extra.insert(format!("{EXTRA_PREFIX}node-name"), vec![node.to_string()]);
                extra.insert(format!("{EXTRA_PREFIX}node-uid"), vec![node_uid]);
            }
        }
        bound.push(Bound {
            resource: resource.into(),
            namespace: namespace.into(),
            name: object_name.into(),
            uid: uid.into(),
        });
    }
    let now = Utc::now();
    let expires = now + Duration::seconds(seconds);
    let mut kubernetes =
        json!({"namespace": namespace, "serviceaccount": {"name": name, "uid": sa_uid}});
    if !bound_claim.is_null() {
        let key = if bound.last().is_some_and(|b| b.resource == "pods") {
            "pod"
        } else {
            "secret"
        };
        kubernetes[key] = bound_claim;
    }
    if !node_claim.is_null() {
        kubernetes["node"] = node_claim;
    }
    let user = User {
        uid: sa_uid,
        ..User::service_account(namespace, name)
    };
    let token = jwt(&json!({
        "aud": audiences, "exp": expires.timestamp(), "iat": now.timestamp(),
        "nbf": now.timestamp(), "iss": API_AUDIENCE, "jti": uuid::Uuid::new_v4().to_string(),
        "sub": user.name, "kubernetes.io": kubernetes,
    }));
    identities.insert_credential(
        &token,
        Credential {
            user,
            audiences: Some(audiences.clone()),
            expires: Some(expires),
            bound,
            extra,
        },
    );
    let mut answer = json!({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace,
                     "creationTimestamp": now.to_rfc3339_opts(SecondsFormat::Secs, true)},
        "spec": {"audiences": audiences, "expirationSeconds": seconds,
                 "boundObjectRef": spec["boundObjectRef"].clone()},
        "status": {"token": token,
                   "expirationTimestamp": expires.to_rfc3339_opts(SecondsFormat::Secs, true)},
    });
    if answer["spec"]["boundObjectRef"].is_null()
        && let Some(spec) = answer["spec"].as_object_mut()
    {
        spec.remove("boundObjectRef");
    }
    Ok(answer)
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`.
pub fn token_review(
    store: &Store,
    identities: &Identities,
    admin_token: Option<&str>,
    body: &Value,
) -> Result<Value, ApiError> {
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::invalid(
            "TokenReview",
            "",
            "spec.token: Required value: token must be specified",
        ));
    }
    let audiences: Vec<String> = body["spec"]["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let status = match authenticate(store, identities, admin_token, token, &audiences) {
        Ok((user, audiences)) => {
            let mut answer = json!({
                "authenticated": true,
                "user": {"username": user.name, "uid": user.uid, "groups": user.groups},
                "audiences": audiences,
            });
            if let Some(credential) = identities.get(token)
                && !credential.extra.is_empty()
            {
                answer["user"]["extra"] = json!(credential.extra);
            }
            answer
        }
        Err(error) => json!({"user": {}, "error": error}),
    };
    let mut review = body.clone();
    review["kind"] = json!("TokenReview");
    review["apiVersion"] = json!("authentication.k8s.io/v1");
    if !review["metadata"].is_object() {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    review["status"] = status;
    Ok(review)
}

/// Applies `Impersonate-*` headers: the requester must be allowed to
/// `impersonate` the user (or ServiceAccount), each group and the uid, as
/// kube-apiserver's impersonation filter checks.
pub fn impersonate(
    store: &Store,
    requester: User,
    headers: &axum::http::HeaderMap,
) -> Result<User, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let user = values("impersonate-user").into_iter().next();
    let groups = values("impersonate-group");
    let uid = values("impersonate-uid").into_iter().next();
    let Some(user) = user else {
        if !groups.is_empty() || uid.is_some() {
            return Err(ApiError::new(
                500,
                "InternalError",
                "Internal error occurred: requested [{Group ...}] without impersonating a user",
            ));
        }
        return Ok(requester);
    };
    let check = |group: &'static str, resource: &str, namespace: Option<&str>, name: &str| {
        let request = rbac::Request {
            verb: "impersonate",
            group,
            resource: resource.to_string(),
            namespace,
            name: Some(name),
        };
        if rbac::allows(store, &requester, &request) {
            Ok(())
        } else {
            Err(rbac::forbidden(&requester, &request))
        }
    };
    let mut impersonated = match user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((namespace, name)) => {
            check("", "serviceaccounts", Some(namespace), name)?;
            let mut sa = User::service_account(namespace, name);
            if !groups.is_empty() {
                sa.groups.clear();
            }
            sa
        }
        None => {
            check("", "users", None, &user)?;
            User {
                name: user.clone(),
                uid: String::new(),
                groups: Vec::new(),
            }
        }
    };
    for group in groups {
        check("", "groups", None, &group)?;
        impersonated.groups.push(group);
    }
    if let Some(uid) = uid {
        check("authentication.k8s.io", "uids", None, &uid)?;
        impersonated.uid = uid;
    }
    if impersonated.name != "system:anonymous"
        && !impersonated
            .groups
            .iter()
            .any(|g| g == "system:authenticated")
    {
        impersonated.groups.push("system:authenticated".into());
    }
    Ok(impersonated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_read_like_kube_apiservers() {
        let users =
            parse_token_file("# comment\nt1,alice,u-1,\"devs,ops\"\nt2,bob,u-2\n").expect("parses");
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].0, "t1");
        assert_eq!(users[0].1.name, "alice");
        assert_eq!(
            users[0].1.groups,
            vec!["devs", "ops", "system:authenticated"]
        );
        assert_eq!(users[1].1.groups, vec!["system:authenticated"]);
        assert!(parse_token_file("only-a-token\n").is_err());
    }

    #[test]
    fn static_tokens_serve_the_api_audience_only_and_unknown_ones_fail() {
        let store = Store::new();
        let ids = Identities::default();
        ids.insert("t", User::service_account("shop", "app"));
        let (user, aud) = authenticate(&store, &ids, None, "t", &[]).expect("valid");
        assert_eq!(user.name, "system:serviceaccount:shop:app");
        assert_eq!(aud, vec![API_AUDIENCE.to_string()]);
        let other = authenticate(&store, &ids, None, "t", &["lifeboat".into()]);
        assert!(other.is_err_and(|e| e.contains("audiences")));
        assert!(authenticate(&store, &ids, None, "nope", &[]).is_err());
    }
}
