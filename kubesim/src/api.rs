//! The HTTP surface of kubesim: discovery, and every verb on every resource,
//! with kube-apiserver's paths, query parameters, content types and errors.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::authn::{self, Identities};
use crate::error::ApiError;
use crate::patch::PatchType;
use crate::proto;
use crate::rbac::{self, User};
use crate::resources::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{DeleteOptions, Event, EventType, Store, Stored};

pub use crate::resources::GIT_VERSION;
use crate::stream::async_stream;

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// A list paged with `limit`: the snapshot later pages are served from.
struct Snapshot {
    items: Arc<Vec<Stored>>,
    rv: u64,
    created: Instant,
}

#[derive(Clone)]
pub struct Api {
    pub store: Store,
    /// Bearer token clients must send; `None` accepts anyone.
    pub token: Option<String>,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Group-resources (`secrets`, `deployments.apps`) this client may not touch:
    /// a restricted ServiceAccount, answered with 403 as RBAC would.
    pub forbidden: Vec<String>,
    /// Writes (POST, PUT, PATCH, DELETE) are answered this much later, like an
    /// API server across a network with admission webhooks; zero by default.
    pub write_latency: Duration,
    /// The writes' priority level: seats and queue, past which 429 (`None`: unlimited).
    pub writes: Option<Arc<crate::flowcontrol::WriteSeats>>,
    /// Tokens of users other than the admin; their requests go through RBAC.
    pub identities: Identities,
    snapshots: Arc<Mutex<HashMap<String, Snapshot>>>,
    /// The simulated databases of annotated pods (`pods/exec` reaches them).
    pub databases: crate::database::Databases,
}

impl Api {
    pub fn new(store: Store, token: Option<String>) -> Self {
        Self {
            store,
            token,
            bookmark_interval: Duration::from_secs(5),
            forbidden: Vec::new(),
            write_latency: Duration::ZERO,
            writes: None,
            identities: Identities::default(),
            snapshots: Arc::default(),
            databases: crate::database::Databases::default(),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route(
                "/api/v1/namespaces/{namespace}/pods/{name}/exec",
                axum::routing::any(exec),
            )
            .fallback(handle)
            .with_state(self)
    }
}

/// An `autoscaling/v1` Scale of a workload.
fn scale_of(obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let m = &obj["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                     "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// GET, PUT and PATCH (merge or strategic) on `…/{name}/scale`: reads or sets
/// `spec.replicas` of the workload, answering with its Scale.
#[allow(clippy::too_many_arguments)]
fn scale(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    method: &Method,
    content_type: &str,
    body: &Bytes,
    dry_run: bool,
) -> Result<Response, ApiError> {
    let current = store.get(rt, ns, name)?;
    let replicas = match method.as_str() {
        "GET" => return Ok(json_response(StatusCode::OK, &scale_of(&current))),
        "PUT" => {
            let wanted = parse_body(body, content_type)?;
            if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str()
                && Some(rv) != current["metadata"]["resourceVersion"].as_str()
            {
                return Err(ApiError::conflict(&rt.group, &rt.resource, name));
            }
            wanted["spec"]["replicas"].clone()
        }
        "PATCH" => match PatchType::from_content_type(content_type) {
            Some(PatchType::Merge | PatchType::Strategic) => {
                parse_body(body, content_type)?["spec"]["replicas"].clone()
            }
            _ => {
                return Err(ApiError::unsupported_media(
                    "the scale subresource takes merge or strategic-merge patches",
                ));
            }
        },
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({other})"
            )));
        }
    };
    let Some(n) = replicas.as_i64().filter(|n| *n >= 0) else {
        return Err(ApiError::invalid(
            "Scale",
            name,
            "spec.replicas: must be a non-negative integer",
        ));
    };
    let patch = json!({"spec": {"replicas": n}});
    let updated = store.patch(rt, ns, name, &patch, PatchType::Merge, false, None, dry_run)?;
    Ok(json_response(StatusCode::OK, &scale_of(&updated)))
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(value).unwrap_or_default(),
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.status(),
    )
}

/// `pods/{name}/exec` (see `crate::exec`): authenticated and authorized as
/// every other request (`create` on `pods/exec`), then upgraded.
async fn exec(
    State(api): State<Api>,
    axum::extract::Path((namespace, name)): axum::extract::Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Response {
    let user = match authenticated(&api, &headers) {
        Ok(user) => user,
        Err(e) => return error_response(&e),
    };
    let request = rbac::Request {
        verb: "create",
        group: "",
        resource: "pods/exec".into(),
        namespace: Some(&namespace),
        name: Some(&name),
    };
    if !rbac::allows(&api.store, &user, &request) {
        return error_response(&rbac::forbidden(&user, &request));
    }
    let Ok(upgrade) = upgrade else {
        return error_response(&crate::exec::upgrade_required());
    };
    let Some(pods) = api.store.find("", "v1", "pods") else {
        return error_response(&ApiError::not_found("", "pods", &name));
    };
    // Repeated `command` parameters, in order.
    let pairs = url_decode_pairs(uri.query().unwrap_or_default());
    match crate::exec::prepare(&api.store, &pods, &namespace, &name, &pairs) {
        Ok((request, pod)) => crate::exec::serve(
            upgrade,
            api.store.clone(),
            api.databases.clone(),
            pod,
            request,
        ),
        Err(e) => error_response(&e),
    }
}

/// The user a request is made as: its bearer token (or the admin when the
/// server takes any), then impersonation; the refusal otherwise.
fn authenticated(api: &Api, headers: &HeaderMap) -> Result<User, ApiError> {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let user = match (&api.token, sent) {
        (None, _) => User::admin(),
        (Some(admin), Some(t)) => {
            match authn::authenticate(&api.store, &api.identities, Some(admin), t, &[]) {
                Ok((user, _)) => user,
                Err(_) => return Err(ApiError::unauthorized()),
            }
        }
        (Some(_), None) => return Err(ApiError::unauthorized()),
    };
    authn::impersonate(&api.store, user, headers)
}

/// What a request path names.
#[derive(Debug)]
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            url_decode_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default()
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    State(api): State<Api>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    // A seat is held for the whole request, its latency included.
    let _seat = match &api.writes {
        Some(level) if crate::flowcontrol::is_mutating(&method) => match level.admit().await {
            Ok(seat) => Some(seat),
            Err(refused) => return refused,
        },
        _ => None,
    };
    if !api.write_latency.is_zero() && method != Method::GET {
        tokio::time::sleep(api.write_latency).await;
    }
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return (StatusCode::OK, "ok").into_response();
    }
    let user = match authenticated(&api, &headers) {
        Ok(user) => user,
        Err(e) => return error_response(&e),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(rest) = path.strip_prefix("/openapi/v3") {
        return openapi_v3(&api.store, rest);
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match discovery(&api, &segments, &accept, &headers) {
        Some(r) => return r,
        None if segments.is_empty() => {
            return json_response(
                StatusCode::OK,
                &json!({"paths": ["/api", "/apis", "/version"]}),
            );
        }
        None => {}
    }
    let target = match resolve(&api.store, &segments) {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    if api.forbidden.contains(&target.rt.group_resource()) {
        let verb = match method.as_str() {
            "GET" if target.name.is_some() => "get",
            "GET" => "list",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            _ => "delete",
        };
        let scope = match &target.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        return error_response(&ApiError::forbidden(format!(
            "{} is forbidden: User \"system:serviceaccount:lifeboat:lifeboat\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
            target.rt.group_resource(),
            target.rt.resource,
            target.rt.group
        )));
    }
    let query = query_map(&uri);
    let watch = query.get("watch").is_some_and(|v| v == "true" || v == "1");
    let request = rbac::Request {
        verb: rbac::verb(method.as_str(), target.name.is_some(), watch),
        group: &target.rt.group,
        resource: match &target.subresource {
            Some(sub) => format!("{}/{sub}", target.rt.resource),
            None => target.rt.resource.clone(),
        },
        // A namespace is its own namespace, for RBAC.
        namespace: if target.rt.group.is_empty() && target.rt.resource == "namespaces" {
            target.name.as_deref()
        } else {
            target.namespace.as_deref()
        },
        name: target.name.as_deref(),
    };
    if !rbac::allows(&api.store, &user, &request) {
        return error_response(&rbac::forbidden(&user, &request));
    }
    // The field manager: `fieldManager`, else the User-Agent up to its first `/`.
    let manager = query.get("fieldManager").cloned().or_else(|| {
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::managed::from_user_agent)
    });
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let metadata_only = accept.contains("as=PartialObjectMetadata");
    let request = Call {
        user: &user,
        manager: manager.as_deref(),
        content_type: &content_type,
        body: &body,
        table: crate::table::wanted(&accept),
    };
    let response = match serve(&api, &method, target, &query, &request, metadata_only).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    // Watches stay JSON here; everything else is sent as protobuf to a
    // client that prefers it (kubectl's and client-go's typed clients).
    let prefers_protobuf = accept.split(',').next().is_some_and(proto::is_protobuf);
    if prefers_protobuf && !watch {
        as_protobuf(response).await
    } else {
        response
    }
}

/// A JSON response re-encoded as protobuf, when the schema knows its kind.
async fn as_protobuf(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if !is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 512 << 20).await else {
        return error_response(&ApiError::new(
            500,
            "InternalError",
            "the response is too large",
        ));
    };
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| proto::encode(&v));
    let mut response = match encoded {
        Some(wire) => {
            let mut r = Response::from_parts(parts, Body::from(wire));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(proto::MEDIA_TYPE),
            );
            r
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    };
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

fn discovery(api: &Api, segments: &[&str], accept: &str, headers: &HeaderMap) -> Option<Response> {
    let types = api.store.types();
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let respond_aggregated = |value: Value| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, AGGREGATED)],
            serde_json::to_vec(&value).unwrap_or_default(),
        )
            .into_response()
    };
    match segments {
        ["version"] => Some(json_response(
            StatusCode::OK,
            &json!({
                "major": "1", "minor": "33", "gitVersion": GIT_VERSION,
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
                "platform": "linux/amd64",
            }),
        )),
        ["api"] if aggregated => Some(respond_aggregated(resources::aggregated(&types, true))),
        ["api"] => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            Some(json_response(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}),
            ))
        }
        ["apis"] if aggregated => Some(respond_aggregated(resources::aggregated(&types, false))),
        ["apis"] => Some(json_response(
            StatusCode::OK,
            &resources::group_list(&types),
        )),
        ["api", "v1"] => {
            let core: Vec<&ResourceType> = types.iter().filter(|t| t.group.is_empty()).collect();
            Some(json_response(
                StatusCode::OK,
                &resources::resource_list("v1", &core),
            ))
        }
        ["apis", group] => {
            let groups = resources::groups(&types);
            let found = groups.iter().find(|(g, _)| g == group);
            Some(match found {
                Some((g, versions)) => {
                    let vs: Vec<Value> = versions
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                        .collect();
                    json_response(
                        StatusCode::OK,
                        &json!({"kind": "APIGroup", "apiVersion": "v1", "name": g,
                                "versions": vs, "preferredVersion": vs.first()}),
                    )
                }
                None => error_response(&ApiError::not_found("", "groups", group)),
            })
        }
        ["apis", group, version] => {
            let selected: Vec<&ResourceType> = types
                .iter()
                .filter(|t| t.group == *group && t.version == *version)
                .collect();
            Some(if selected.is_empty() {
                error_response(&ApiError::not_found(
                    "",
                    "groupversions",
                    &format!("{group}/{version}"),
                ))
            } else {
                json_response(
                    StatusCode::OK,
                    &resources::resource_list(&format!("{group}/{version}"), &selected),
                )
            })
        }
        _ => None,
    }
}

fn resolve(store: &Store, segments: &[&str]) -> Result<Target, ApiError> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => {
            return Err(ApiError::not_found(
                "",
                "paths",
                &format!("/{}", segments.join("/")),
            ));
        }
    };
    let find = |resource: &str| {
        store
            .find(group, version, resource)
            .ok_or_else(|| ApiError::not_found(group, resource, ""))
            .map_err(|mut e| {
                e.message = format!("the server could not find the requested resource ({resource}.{group}/{version})");
                e
            })
    };
    let target = |rt, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
        rt,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    };
    Ok(match rest {
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            target(find("namespaces")?, None, Some(ns), Some(sub))
        }
        ["namespaces", ns, resource] => target(find(resource)?, Some(ns), None, None),
        ["namespaces", ns, resource, name] => target(find(resource)?, Some(ns), Some(name), None),
        ["namespaces", ns, resource, name, sub] => {
            target(find(resource)?, Some(ns), Some(name), Some(sub))
        }
        [resource] => target(find(resource)?, None, None, None),
        [resource, name] => target(find(resource)?, None, Some(name), None),
        [resource, name, sub] => target(find(resource)?, None, Some(name), Some(sub)),
        _ => {
            return Err(ApiError::not_found(
                "",
                "paths",
                &format!("/{}", segments.join("/")),
            ));
        }
    })
}

fn parse_body(body: &Bytes, content_type: &str) -> Result<Value, ApiError> {
    if proto::is_protobuf(content_type) {
        return proto::decode(body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        });
    }
    if content_type.contains("yaml") {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
        serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json, application/yaml, application/vnd.kubernetes.protobuf ({e})"
            ))
        })
    }
}

fn crds(store: &Store) -> Vec<Value> {
    store
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .map(|rt| {
            store
                .list(
                    &rt,
                    None,
                    &LabelSelector::default(),
                    &FieldSelector::default(),
                )
                .0
        })
        .unwrap_or_default()
}

/// `/openapi/v3` (the index) and `/openapi/v3/<group-version path>`.
fn openapi_v3(store: &Store, rest: &str) -> Response {
    let types = store.types();
    if rest.is_empty() || rest == "/" {
        return json_response(StatusCode::OK, &crate::openapi::index(&types));
    }
    match crate::openapi::document(&types, &crds(store), rest) {
        Some(doc) => json_response(StatusCode::OK, &doc),
        None => error_response(&ApiError::not_found("", "openapi", rest)),
    }
}

/// Server-side field validation of a write (`fieldValidation`, default
/// `Warn` as on kube-apiserver): Strict refuses unknown fields, Warn
/// returns them as warnings, Ignore does neither.
fn field_validation(
    store: &Store,
    rt: &ResourceType,
    query: &HashMap<String, String>,
    obj: &Value,
) -> Result<Vec<String>, ApiError> {
    let directive = query.get("fieldValidation").map_or("Warn", String::as_str);
    let strict = match directive {
        "Strict" => true,
        "Warn" | "" => false,
        "Ignore" => return Ok(Vec::new()),
        other => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, not {other:?}"
            )));
        }
    };
    // Only a custom resource needs the CRDs (its schema is its CRD's).
    let crds = if crate::proto::message_of(&rt.api_version(), &rt.kind).is_some() {
        Vec::new()
    } else {
        crds(store)
    };
    let unknown = crate::openapi::unknown_fields(rt, &crds, obj);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let listed: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    if strict {
        return Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
            listed.join(", "),
            kind = rt.kind,
            version = rt.version,
        )));
    }
    Ok(listed)
}

/// `Warning: 299 - "…"` headers on a response.
fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = header::HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

/// A Table of `items`, with the CRD's printer columns for custom resources.
fn table(
    store: &Store,
    rt: &ResourceType,
    items: &[Value],
    list_meta: Value,
    query: &HashMap<String, String>,
) -> Value {
    let crd = store
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .and_then(|crds| {
            store
                .get(&crds, None, &format!("{}.{}", rt.resource, rt.group))
                .ok()
        });
    let include = query
        .get("includeObject")
        .map_or("Metadata", String::as_str);
    crate::table::render(rt, crd.as_ref(), items, list_meta, include)
}

/// Reduces an object to `PartialObjectMetadata`.
fn to_metadata(mut obj: Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj["metadata"].take(),
    })
}

/// One call's context: who makes it, their field manager, the body, and
/// whether the answer is a Table.
struct Call<'a> {
    user: &'a User,
    manager: Option<&'a str>,
    content_type: &'a str,
    body: &'a Bytes,
    table: bool,
}

/// Reviews and token requests: answered on create, never stored.
fn answer_review(
    api: &Api,
    method: &Method,
    t: &Target,
    w: &Call<'_>,
) -> Result<Response, ApiError> {
    let rt = &t.rt;
    if method != Method::POST || (t.name.is_some() && t.subresource.is_none()) {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let body = parse_body(w.body, w.content_type)?;
    let store = &api.store;
    let answer = match rt.resource.as_str() {
        "serviceaccounts" => authn::token_request(
            store,
            &api.identities,
            t.namespace.as_deref().unwrap_or_default(),
            t.name.as_deref().unwrap_or_default(),
            &body,
        )?,
        "tokenreviews" => authn::token_review(store, &api.identities, api.token.as_deref(), &body)?,
        "selfsubjectreviews" => json!({
            "kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "status": {"userInfo": {"username": w.user.name, "uid": w.user.uid, "groups": w.user.groups}},
        }),
        "subjectaccessreviews" | "selfsubjectaccessreviews" | "localsubjectaccessreviews" => {
            let mut spec = body["spec"].clone();
            if rt.resource == "localsubjectaccessreviews" {
                let ns = t.namespace.as_deref().unwrap_or_default();
                if spec["resourceAttributes"]["namespace"]
                    .as_str()
                    .is_some_and(|n| n != ns)
                {
                    return Err(ApiError::invalid(
                        "LocalSubjectAccessReview",
                        "",
                        "spec.resourceAttributes.namespace: Invalid value: must match metadata.namespace",
                    ));
                }
                spec["resourceAttributes"]["namespace"] = json!(ns);
            }
            if rt.resource != "selfsubjectaccessreviews"
                && spec["user"].as_str().unwrap_or_default().is_empty()
                && spec["groups"].as_array().is_none_or(Vec::is_empty)
            {
                return Err(ApiError::invalid(
                    &rt.kind,
                    "",
                    "spec.user: Invalid value: \"\": at least one of user or group must be specified",
                ));
            }
            let asking = (rt.resource == "selfsubjectaccessreviews").then_some(w.user);
            let mut review = body.clone();
            review["kind"] = json!(rt.kind);
            review["apiVersion"] = json!(rt.api_version());
            if !review["metadata"].is_object() {
                review["metadata"] = json!({});
            }
            review["metadata"]["creationTimestamp"] = Value::Null;
            review["spec"] = spec.clone();
            review["status"] = rbac::review(store, &spec, asking);
            review
        }
        other => {
            return Err(ApiError::not_found(&rt.group, other, ""));
        }
    };
    Ok(json_response(StatusCode::CREATED, &answer))
}

async fn serve(
    api: &Api,
    method: &Method,
    t: Target,
    query: &HashMap<String, String>,
    w: &Call<'_>,
    metadata_only: bool,
) -> Result<Response, ApiError> {
    let (content_type, body) = (w.content_type, w.body);
    let store = &api.store;
    let rt = &t.rt;
    if rt.create_only
        || (rt.group.is_empty()
            && rt.resource == "serviceaccounts"
            && t.subresource.as_deref() == Some("token"))
    {
        return answer_review(api, method, &t, w);
    }
    if rt.namespaced && t.namespace.is_none() && t.name.is_some() {
        return Err(ApiError::not_found(
            &rt.group,
            &rt.resource,
            t.name.as_deref().unwrap_or_default(),
        ));
    }
    if !rt.namespaced && t.namespace.is_some() {
        return Err(ApiError::not_found("", "paths", &rt.resource));
    }
    let ns = t.namespace.as_deref();
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    if t.subresource.as_deref() == Some("scale") && rt.scalable() {
        let name = t.name.as_deref().unwrap_or_default();
        return scale(store, rt, ns, name, method, content_type, body, dry_run);
    }
    if rt.read_only {
        if method != Method::GET || t.subresource.is_some() {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({}.{})",
                rt.resource, rt.group
            )));
        }
        let answer = crate::usage::serve(store, rt, ns, t.name.as_deref(), query)?;
        return Ok(json_response(StatusCode::OK, &answer));
    }
    if t.subresource.as_deref() == Some("log")
        && rt.group.is_empty()
        && rt.resource == "pods"
        && method == Method::GET
    {
        let name = t.name.as_deref().unwrap_or_default();
        return crate::logs::serve(store, rt, ns.unwrap_or_default(), name, query);
    }
    let status_sub = match t.subresource.as_deref() {
        None => false,
        Some("status") if rt.status || rt.resource == "namespaces" => true,
        Some(other) => {
            return Err(ApiError::not_found(
                &rt.group,
                &format!("{}/{other}", rt.resource),
                "",
            ));
        }
    };
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let shape = |obj: Value| if metadata_only { to_metadata(obj) } else { obj };

    match (method.as_str(), t.name.as_deref()) {
        ("GET", None) => {
            let watch = query.get("watch").is_some_and(|v| v == "true" || v == "1");
            if watch {
                return Ok(watch_response(
                    api,
                    rt.clone(),
                    ns,
                    labels,
                    fields,
                    query,
                    metadata_only,
                ));
            }
            if w.table {
                let (items, rv) = store.list(rt, ns, &labels, &fields);
                return Ok(json_response(
                    StatusCode::OK,
                    &table(
                        store,
                        rt,
                        &items,
                        json!({"resourceVersion": rv.to_string()}),
                        query,
                    ),
                ));
            }
            list(api, rt, ns, &labels, &fields, query, metadata_only)
        }
        ("GET", Some(name)) if w.table => {
            let obj = store.get(rt, ns, name)?;
            let rv = obj["metadata"]["resourceVersion"].clone();
            Ok(json_response(
                StatusCode::OK,
                &table(store, rt, &[obj], json!({"resourceVersion": rv}), query),
            ))
        }
        ("GET", Some(name)) => Ok(json_response(
            StatusCode::OK,
            &shape(store.get(rt, ns, name)?),
        )),
        ("POST", None) => {
            let obj = parse_body(body, content_type)?;
            if let Some(kind) = obj["kind"].as_str()
                && kind != rt.kind
            {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({}) does not match the expected API version ({})",
                    obj["apiVersion"].as_str().unwrap_or_default(),
                    rt.api_version()
                )));
            }
            let warnings = field_validation(store, rt, query, &obj)?;
            // Namespace lifecycle admission runs before the registry's
            // escalation checks in kube-apiserver: a Role for a namespace
            // that does not exist is a 404, not a 403.
            store.admit_namespace(rt, ns)?;
            rbac::check_escalation(store, w.user, rt, ns, &obj)?;
            let created = store.create_by(rt, ns, obj, dry_run, w.manager)?;
            Ok(with_warnings(
                json_response(StatusCode::CREATED, &created),
                &warnings,
            ))
        }
        ("PUT", Some(name)) => {
            let obj = parse_body(body, content_type)?;
            let warnings = field_validation(store, rt, query, &obj)?;
            rbac::check_escalation(store, w.user, rt, ns, &obj)?;
            let updated = store.update_by(rt, ns, name, obj, status_sub, dry_run, w.manager)?;
            Ok(with_warnings(
                json_response(StatusCode::OK, &updated),
                &warnings,
            ))
        }
        ("PATCH", Some(name)) => {
            let kind = PatchType::from_content_type(content_type).ok_or_else(|| {
                ApiError::unsupported_media(format!(
                    "the body of the request was in an unknown format - accepted media types include: \
                     application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"
                ))
            })?;
            let patch_body = parse_body(body, content_type)?;
            let warnings = if kind == PatchType::Json {
                Vec::new()
            } else {
                field_validation(store, rt, query, &patch_body)?
            };
            // Apply requires an explicit manager; other patches take the default.
            let manager = match kind {
                PatchType::Apply => query.get("fieldManager").map(String::as_str),
                _ => w.manager,
            };
            let existed = store.get(rt, ns, name).is_ok();
            if rt.group == "rbac.authorization.k8s.io" {
                let would_be =
                    store.patch(rt, ns, name, &patch_body, kind, status_sub, manager, true)?;
                rbac::check_escalation(store, w.user, rt, ns, &would_be)?;
            }
            let patched = store.patch(
                rt,
                ns,
                name,
                &patch_body,
                kind,
                status_sub,
                manager,
                dry_run,
            )?;
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(with_warnings(json_response(code, &patched), &warnings))
        }
        ("DELETE", Some(name)) => {
            let options = delete_options(query, body);
            let deleted = store.delete(rt, ns, name, &options)?;
            if deleted["metadata"]["deletionTimestamp"].is_null() {
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                            "details": {"name": name, "group": rt.group, "kind": rt.resource,
                                        "uid": deleted["metadata"]["uid"]}}),
                ))
            } else {
                // Marked for deletion (finalizers, namespaces): the object comes back.
                Ok(json_response(StatusCode::OK, &deleted))
            }
        }
        ("DELETE", None) => {
            let options = delete_options(query, body);
            let items = store.delete_collection(rt, ns, &labels, &fields, &options);
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
                        "metadata": {"resourceVersion": store.current_rv().to_string()}, "items": items}),
            ))
        }
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m})"
        ))),
    }
}

fn delete_options(query: &HashMap<String, String>, body: &Bytes) -> DeleteOptions {
    let from_body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let policy = query
        .get("propagationPolicy")
        .map(String::as_str)
        .or(from_body["propagationPolicy"].as_str());
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All")
        || from_body["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    DeleteOptions {
        orphan: policy == Some("Orphan") || from_body["orphanDependents"] == json!(true),
        dry_run,
    }
}

fn list(
    api: &Api,
    rt: &ResourceType,
    ns: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
    query: &HashMap<String, String>,
    metadata_only: bool,
) -> Result<Response, ApiError> {
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let (items, rv, offset) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
            let (id, offset) = decoded
                .split_once(':')
                .and_then(|(id, o)| Some((id.to_string(), o.parse::<usize>().ok()?)))
                .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
            let snapshots = api.snapshots.lock().unwrap_or_else(|p| p.into_inner());
            let snap = snapshots.get(&id).ok_or_else(|| {
                ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. \
                     You can start a new list without the continue parameter.",
                )
            })?;
            (snap.items.clone(), snap.rv, offset)
        }
        None => {
            let (items, rv) = api.store.list_stored(rt, ns, labels, fields);
            (Arc::new(items), rv, 0)
        }
    };
    let total = items.len();
    let end = if limit > 0 {
        (offset + limit).min(total)
    } else {
        total
    };
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if end < total {
        let id = match query.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => base64::engine::general_purpose::STANDARD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|d| d.split_once(':').map(|(id, _)| id.to_string()))
                .unwrap_or_default(),
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let mut snapshots = api.snapshots.lock().unwrap_or_else(|p| p.into_inner());
                snapshots.retain(|_, s| s.created.elapsed() < Duration::from_secs(300));
                snapshots.insert(
                    id.clone(),
                    Snapshot {
                        items: items.clone(),
                        rv,
                        created: Instant::now(),
                    },
                );
                id
            }
        };
        metadata["continue"] =
            json!(base64::engine::general_purpose::STANDARD.encode(format!("{id}:{end}")));
        metadata["remainingItemCount"] = json!(total - end);
    }
    let (kind, api_version) = if metadata_only {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (format!("{}List", rt.kind), rt.api_version())
    };
    // The list envelope, then the stored bytes of each item as they are.
    let head = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
    let mut body = serde_json::to_vec(&head).unwrap_or_default();
    body.pop(); // the closing brace
    body.extend_from_slice(b",\"items\":[");
    for (i, item) in items[offset.min(total)..end].iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&object_bytes(rt, item, metadata_only));
    }
    body.extend_from_slice(b"]}");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// An object's JSON as served: the stored bytes when they fit the request,
/// otherwise re-shaped (another version of a CRD, metadata only).
fn object_bytes(
    rt: &ResourceType,
    item: &Stored,
    metadata_only: bool,
) -> std::borrow::Cow<'static, [u8]> {
    if metadata_only {
        return serde_json::to_vec(&to_metadata(item.value()))
            .unwrap_or_default()
            .into();
    }
    if *item.api_version == *rt.api_version() {
        return item.json.to_vec().into();
    }
    serde_json::to_vec(&Store::served(rt, item.value()))
        .unwrap_or_default()
        .into()
}

fn event_line(kind: &str, object: Value) -> Bytes {
    raw_event_line(kind, &serde_json::to_vec(&object).unwrap_or_default())
}

fn raw_event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn watch_response(
    api: &Api,
    rt: ResourceType,
    ns: Option<&str>,
    labels: LabelSelector,
    fields: FieldSelector,
    query: &HashMap<String, String>,
    metadata_only: bool,
) -> Response {
    let store = api.store.clone();
    // Subscribe before reading state, so nothing falls between the two.
    let mut rx = store.subscribe();
    let ns = ns.map(str::to_string);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let send_initial = query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let interval = api.bookmark_interval;
    let requested_rv = query.get("resourceVersion").cloned().unwrap_or_default();

    let matches = {
        let rt = rt.clone();
        let ns = ns.clone();
        let (group, resource) = crate::store::events::storage_key(&rt);
        move |e: &Event| {
            e.group == group
                && e.resource == resource
                && ns.as_deref().is_none_or(|n| n == e.namespace())
                && e.object.selected(&labels, &fields)
        }
    };
    let shape = move |rt: &ResourceType, obj: &Stored| object_bytes(rt, obj, metadata_only);

    let stream = async_stream(move |tx: tokio::sync::mpsc::Sender<Bytes>| async move {
        let mut last_rv: u64;
        if requested_rv.is_empty() || requested_rv == "0" || send_initial {
            // Synthetic ADDED events for what exists, then changes from now on.
            let (items, rv) = store.list_stored(
                &rt,
                ns.as_deref(),
                &LabelSelector::default(),
                &FieldSelector::default(),
            );
            last_rv = rv;
            for obj in items {
                let (group, resource) = crate::store::events::storage_key(&rt);
                let e = Event {
                    rv,
                    kind: EventType::Added,
                    group,
                    resource,
                    object: obj,
                };
                if matches(&e)
                    && tx
                        .send(raw_event_line("ADDED", &shape(&rt, &e.object)))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            if send_initial {
                let bookmark = json!({"kind": rt.kind, "apiVersion": rt.api_version(),
                    "metadata": {"resourceVersion": rv.to_string(),
                                 "annotations": {"k8s.io/initial-events-end": "true"}}});
                if tx.send(event_line("BOOKMARK", bookmark)).await.is_err() {
                    return;
                }
            }
        } else {
            let Ok(rv) = requested_rv.parse::<u64>() else {
                let _ = tx
                    .send(event_line(
                        "ERROR",
                        ApiError::bad_request("invalid resourceVersion").status(),
                    ))
                    .await;
                return;
            };
            match store.events_since(rv) {
                None => {
                    let e = ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        store.current_rv()
                    ));
                    let _ = tx.send(event_line("ERROR", e.status())).await;
                    return;
                }
                Some(events) => {
                    last_rv = rv;
                    for e in events {
                        last_rv = e.rv;
                        if matches(&e)
                            && tx
                                .send(raw_event_line(e.kind.as_str(), &shape(&rt, &e.object)))
                                .await
                                .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = ticker.tick(), if bookmarks => {
                    let bookmark = json!({"kind": rt.kind, "apiVersion": rt.api_version(),
                        "metadata": {"resourceVersion": last_rv.max(store.current_rv()).to_string()}});
                    if tx.send(event_line("BOOKMARK", bookmark)).await.is_err() {
                        return;
                    }
                }
                received = rx.recv() => match received {
                    Ok(e) => {
                        if e.rv <= last_rv {
                            continue;
                        }
                        last_rv = e.rv;
                        if matches(&e) && tx.send(raw_event_line(e.kind.as_str(), &shape(&rt, &e.object))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::gone(format!("too old resource version: {last_rv}"));
                        let _ = tx.send(event_line("ERROR", e.status())).await;
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(stream.map(Ok::<_, Infallible>)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
