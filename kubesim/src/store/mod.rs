//! The object store: every object as JSON, one global resourceVersion, and a
//! bounded history of changes that watches resume from.
//!
//! All writes go through [`Store`], which applies what kube-apiserver's
//! registry and admission would: defaults (uid, timestamps, generation),
//! name validation, optimistic concurrency, finalizers, namespace lifecycle,
//! Service IP allocation, Job selectors, and CRD registration.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::patch::{self, PatchType};
use crate::resources::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};

mod admission;
pub mod events;

/// How many changes are kept for watches to resume from; older versions get 410 Gone.
pub const HISTORY: usize = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// An object as kept in memory: its JSON bytes (shared by the store, the
/// watch history and list snapshots) plus what selectors need, so that lists
/// and watches send the bytes as they are and nothing is held twice.
#[derive(Clone, Debug)]
pub struct Stored {
    pub json: Arc<[u8]>,
    pub api_version: Arc<str>,
    pub namespace: Option<Arc<str>>,
    pub name: Arc<str>,
    pub labels: Arc<Value>,
    pub uid: Arc<str>,
}

impl Stored {
    pub fn new(obj: &Value) -> Self {
        let text = |v: &Value| Arc::<str>::from(v.as_str().unwrap_or_default());
        Self {
            json: Arc::from(serde_json::to_vec(obj).unwrap_or_default()),
            api_version: text(&obj["apiVersion"]),
            namespace: obj["metadata"]["namespace"].as_str().map(Arc::from),
            name: text(&obj["metadata"]["name"]),
            labels: Arc::new(obj["metadata"]["labels"].clone()),
            uid: text(&obj["metadata"]["uid"]),
        }
    }

    /// The object, parsed.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// Whether the selectors select it.
    pub fn selected(&self, labels: &LabelSelector, fields: &FieldSelector) -> bool {
        labels.matches(&self.labels)
            && fields.matches_key(self.namespace.as_deref().unwrap_or_default(), &self.name)
    }
}

/// One change to one object.
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub group: String,
    pub resource: String,
    pub object: Stored,
}

impl Event {
    pub fn namespace(&self) -> &str {
        self.object.namespace.as_deref().unwrap_or_default()
    }
}

type Bucket = BTreeMap<(String, String), Stored>;

struct State {
    rv: u64,
    /// How many changes are kept for watches to resume from.
    history_limit: usize,
    types: Vec<ResourceType>,
    /// (group, resource) → (namespace, name) → object.
    objects: BTreeMap<(String, String), Bucket>,
    history: VecDeque<Arc<Event>>,
    /// The first resourceVersion the history can resume after.
    oldest_resumable: u64,
    allocated_ips: HashSet<u32>,
    next_ip: u32,
    allocated_node_ports: HashSet<u16>,
    /// The cluster's CA certificate (PEM), published in every namespace.
    root_ca: Option<String>,
}

/// Options of a delete call.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `Orphan` keeps dependents (their ownerReferences to this object are removed).
    pub orphan: bool,
    pub dry_run: bool,
}

#[derive(Clone)]
pub struct Store {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Arc<Event>>,
    /// The latest resourceVersion, for tasks that wake on every write
    /// (controllers, persistence); each gets its own receiver.
    changes: Arc<watch::Sender<u64>>,
}

const SERVICE_RANGE_BASE: u32 = (10 << 24) | (96 << 16); // 10.96.0.0/16

fn ip_string(ip: u32) -> String {
    format!(
        "{}.{}.{}.{}",
        ip >> 24,
        (ip >> 16) & 255,
        (ip >> 8) & 255,
        ip & 255
    )
}

fn parse_ip(s: &str) -> Option<u32> {
    let parts: Vec<u32> = s
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if parts.len() != 4 || parts.iter().any(|p| *p > 255) {
        return None;
    }
    Some((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3])
}

pub use crate::clock::now;

fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let id = uuid::Uuid::new_v4();
    id.as_bytes()
        .iter()
        .take(len)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

/// DNS-1123 subdomain (most objects) or label (namespaces, services).
fn validate_name(name: &str, label: bool) -> Result<(), String> {
    let max = if label { 63 } else { 253 };
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (!label && c == '.'));
    let ends = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > max || !ok_chars || !ends {
        let what = if label {
            "RFC 1123 label"
        } else {
            "RFC 1123 subdomain"
        };
        return Err(format!(
            "metadata.name: Invalid value: \"{name}\": a lowercase {what} must consist of lower case \
             alphanumeric characters, '-'{} and must start and end with an alphanumeric character",
            if label { "" } else { " or '.'" }
        ));
    }
    Ok(())
}

/// kube-apiserver's `IsValidPathSegmentName`, the rule for RBAC names.
fn validate_path_segment(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("metadata.name: Required value: name or generateName is required".into());
    }
    if name == "." || name == ".." {
        return Err(format!(
            "metadata.name: Invalid value: \"{name}\": may not be '{name}'"
        ));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            return Err(format!(
                "metadata.name: Invalid value: \"{name}\": may not contain '{bad}'"
            ));
        }
    }
    Ok(())
}

fn meta(obj: &Value) -> &Value {
    &obj["metadata"]
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

impl Store {
    pub fn new() -> Self {
        Self::with_history(HISTORY)
    }

    /// A store that keeps `history` changes for watches to resume from.
    pub fn with_history(history: usize) -> Self {
        let (events, _) = broadcast::channel(65_536);
        let store = Self {
            state: Arc::new(Mutex::new(State {
                rv: 1,
                history_limit: history.max(1),
                types: resources::builtin(),
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                oldest_resumable: 1,
                allocated_ips: HashSet::from([SERVICE_RANGE_BASE]),
                next_ip: SERVICE_RANGE_BASE + 10,
                allocated_node_ports: HashSet::new(),
                root_ca: None,
            })),
            events,
            changes: Arc::new(watch::channel(1).0),
        };
        // What every cluster starts with.
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let _ = store.create(
                &store.find("", "v1", "namespaces").expect("built in"),
                None,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                false,
            );
        }
        for (resource, object) in crate::bootstrap::rbac_policy() {
            if let Some(rt) = store.find("rbac.authorization.k8s.io", "v1", resource) {
                let _ = store.create(&rt, None, object, false);
            }
        }
        let svc = store.find("", "v1", "services").expect("built in");
        let _ = store.create(
            &svc,
            Some("default"),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                   "spec": {"clusterIP": ip_string(SERVICE_RANGE_BASE + 1),
                            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}),
            false,
        );
        store
    }

    /// Sets the CA certificate the root-CA publisher puts in every namespace.
    pub fn set_root_ca(&self, pem: &str) {
        self.lock().root_ca = Some(pem.to_string());
    }

    pub fn root_ca(&self) -> Option<String> {
        self.lock().root_ca.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug; keep serving what is there.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn types(&self) -> Vec<ResourceType> {
        self.lock().types.clone()
    }

    /// Serves `types` too (an aggregated API such as metrics-server's), once each.
    pub fn add_types(&self, types: Vec<ResourceType>) {
        let mut state = self.lock();
        for t in types {
            if !state
                .types
                .iter()
                .any(|x| x.group == t.group && x.version == t.version && x.resource == t.resource)
            {
                state.types.push(t);
            }
        }
    }

    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<ResourceType> {
        self.lock()
            .types
            .iter()
            .find(|t| t.group == group && t.version == version && t.resource == resource)
            .cloned()
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Wakes on every write (the value is the newest resourceVersion).
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Events after `rv` still in the history, or `None` when `rv` is too old (410).
    pub fn events_since(&self, rv: u64) -> Option<Vec<Arc<Event>>> {
        let state = self.lock();
        if rv + 1 < state.oldest_resumable {
            return None;
        }
        Some(
            state
                .history
                .iter()
                .filter(|e| e.rv > rv)
                .cloned()
                .collect(),
        )
    }

    fn record(&self, state: &mut State, kind: EventType, rt: &ResourceType, object: Stored) {
        let (group, resource) = events::storage_key(rt);
        let event = Arc::new(Event {
            rv: state.rv,
            kind,
            group,
            resource,
            object,
        });
        state.history.push_back(event.clone());
        while state.history.len() > state.history_limit {
            if let Some(old) = state.history.pop_front() {
                state.oldest_resumable = old.rv + 1;
            }
        }
        let _ = self.events.send(event);
        self.changes.send_replace(state.rv);
    }

    fn bucket<'a>(state: &'a mut State, rt: &ResourceType) -> &'a mut Bucket {
        state.objects.entry(events::storage_key(rt)).or_default()
    }

    /// The type whose storage keeps objects of `rt`, when that is another
    /// type: core `v1` Events for `events.k8s.io`'s.
    fn stored_as(&self, rt: &ResourceType) -> Option<ResourceType> {
        if !events::is_events_api(rt) {
            return None;
        }
        self.lock()
            .types
            .iter()
            .find(|t| t.group.is_empty() && t.resource == "events")
            .cloned()
    }

    /// Sets apiVersion to the version the client asked for (and the shape:
    /// an Event read through `events.k8s.io`).
    pub fn served(rt: &ResourceType, mut obj: Value) -> Value {
        if events::is_events_api(rt) {
            obj = events::from_core(obj);
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        obj
    }

    pub fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let state = self.lock();
        state
            .objects
            .get(&events::storage_key(rt))
            .and_then(|b| b.get(&(ns.unwrap_or_default().to_string(), name.to_string())))
            .map(|o| Self::served(rt, o.value()))
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, name))
    }

    /// Objects matching the selectors as stored (no parsing), sorted by
    /// namespace and name, with the list's resourceVersion.
    pub fn list_stored(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Stored>, u64) {
        let state = self.lock();
        let items = state
            .objects
            .get(&events::storage_key(rt))
            .map(|bucket| {
                let selected = |o: &&Stored| o.selected(labels, fields);
                match ns {
                    // Keys sort by namespace first: read just that range.
                    Some(n) => bucket
                        .range((n.to_string(), String::new())..)
                        .take_while(|((o_ns, _), _)| o_ns == n)
                        .map(|(_, o)| o)
                        .filter(selected)
                        .cloned()
                        .collect(),
                    None => bucket.values().filter(selected).cloned().collect(),
                }
            })
            .unwrap_or_default();
        (items, state.rv)
    }

    /// Objects matching the selectors, parsed.
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Value>, u64) {
        let (items, rv) = self.list_stored(rt, ns, labels, fields);
        (
            items.iter().map(|o| Self::served(rt, o.value())).collect(),
            rv,
        )
    }

    /// Every object of every type, for controllers and persistence.
    pub fn all(&self) -> Vec<(ResourceType, Value)> {
        let state = self.lock();
        let mut out = Vec::new();
        for ((group, resource), bucket) in &state.objects {
            let Some(rt) = state
                .types
                .iter()
                .find(|t| &t.group == group && &t.resource == resource)
            else {
                continue;
            };
            for obj in bucket.values() {
                out.push((rt.clone(), obj.value()));
            }
        }
        out
    }

    pub fn count(&self) -> usize {
        self.lock().objects.values().map(BTreeMap::len).sum()
    }

    fn check_namespace(state: &State, rt: &ResourceType, ns: Option<&str>) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns = ns.unwrap_or_default();
        let namespace = state
            .objects
            .get(&(String::new(), "namespaces".to_string()))
            .and_then(|b| b.get(&(String::new(), ns.to_string())))
            .map(Stored::value);
        match namespace {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if n["status"]["phase"] == "Terminating" => Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                rt.resource, ""
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Whether a create into `ns` would pass namespace lifecycle admission:
    /// a missing namespace is 404, a terminating one 403, as kube-apiserver
    /// answers before its RBAC escalation checks run.
    pub fn admit_namespace(&self, rt: &ResourceType, ns: Option<&str>) -> Result<(), ApiError> {
        let state = self.lock();
        Self::check_namespace(&state, rt, ns)
    }

    pub fn create(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.create_by(rt, ns, obj, dry_run, None)
    }

    /// Creates an object; `manager` (the request's field manager) is
    /// recorded in `managedFields` with the fields the client sent.
    pub fn create_by(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        obj: Value,
        dry_run: bool,
        manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.create_recorded(rt, ns, obj, dry_run, manager.map(|m| (m, "Update")))
    }

    /// Creates an object, recording (manager, operation) in `managedFields`.
    fn create_recorded(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        mut obj: Value,
        dry_run: bool,
        manager: Option<(&str, &str)>,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not a JSON object",
            ));
        }
        if let Some(core) = self.stored_as(rt) {
            return self
                .create_recorded(&core, ns, events::to_core(obj), dry_run, manager)
                .map(|created| Self::served(rt, created));
        }
        let sent_fields = manager.map(|_| crate::managed::fields_of(&obj));
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let mut state = self.lock();
        // The namespace in the body must agree with the path.
        let ns = if rt.namespaced {
            let body_ns = meta(&obj)["namespace"].as_str();
            match (ns, body_ns) {
                (Some(p), Some(b)) if p != b => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                (Some(p), _) => Some(p.to_string()),
                (None, Some(b)) => Some(b.to_string()),
                (None, None) => Some("default".to_string()),
            }
        } else {
            None
        };
        if rt.namespaced {
            obj["metadata"]["namespace"] = json!(ns);
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        if meta(&obj)["name"].as_str().unwrap_or_default().is_empty() {
            match meta(&obj)["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    let name = format!("{prefix}{}", random_suffix(5));
                    obj["metadata"]["name"] = json!(name);
                }
                _ => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            }
        }
        let name = name_of(&obj).to_string();
        if rt.group == "rbac.authorization.k8s.io" {
            // RBAC names are path segments (`system:aggregate-to-admin`).
            validate_path_segment(&name).map_err(|e| ApiError::invalid(&rt.kind, &name, &e))?;
        } else {
            let label_names = matches!(rt.resource.as_str(), "namespaces" | "services");
            validate_name(&name, label_names)
                .map_err(|e| ApiError::invalid(&rt.kind, &name, &e))?;
        }
        Self::check_namespace(&state, rt, ns.as_deref()).map_err(|e| {
            if e.code == 403 {
                ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                    rt.resource,
                    ns.as_deref().unwrap_or_default()
                ))
            } else {
                e
            }
        })?;
        let key = (ns.clone().unwrap_or_default(), name.clone());
        if Self::bucket(&mut state, rt).contains_key(&key) {
            return Err(ApiError::already_exists(&rt.group, &rt.resource, &name));
        }

        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        crate::defaults::apply(rt, &mut obj);
        if let (Some((manager, operation)), Some(fields)) = (manager, sent_fields) {
            obj["metadata"]["managedFields"] = crate::managed::record(
                &Value::Null,
                manager,
                operation,
                &rt.api_version(),
                None,
                fields,
            );
        }
        let uid = uuid::Uuid::new_v4().to_string();
        obj["metadata"]["uid"] = json!(uid);
        obj["metadata"]["creationTimestamp"] = json!(now());
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("selfLink");
        }
        if obj.get("spec").is_some() {
            obj["metadata"]["generation"] = json!(1);
        }
        self.admit_create(&mut state, rt, &mut obj)?;
        if dry_run {
            return Ok(obj);
        }
        state.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        let stored = Stored::new(&obj);
        Self::bucket(&mut state, rt).insert(key, stored.clone());
        if rt.group == "apiextensions.k8s.io" && rt.resource == "customresourcedefinitions" {
            self.register_crd(&mut state, &obj);
        }
        self.record(&mut state, EventType::Added, rt, stored);
        Ok(obj)
    }

    fn register_crd(&self, state: &mut State, crd: &Value) {
        for t in resources::from_crd(crd) {
            if !state
                .types
                .iter()
                .any(|x| x.group == t.group && x.version == t.version && x.resource == t.resource)
            {
                state.types.push(t);
            }
        }
    }

    fn unregister_crd(&self, state: &mut State, crd: &Value) {
        let removed = resources::from_crd(crd);
        state.types.retain(|t| {
            !removed
                .iter()
                .any(|r| r.group == t.group && r.resource == t.resource)
        });
        if let Some(first) = removed.first() {
            state
                .objects
                .remove(&(first.group.clone(), first.resource.clone()));
        }
    }

    /// Replaces an object (PUT). `status` writes only the status subresource.
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        status: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.update_by(rt, ns, name, obj, status, dry_run, None)
    }

    /// Replaces an object, recording `manager` in `managedFields`.
    #[allow(clippy::too_many_arguments)]
    pub fn update_by(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        status: bool,
        dry_run: bool,
        manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not a JSON object",
            ));
        }
        if let Some(core) = self.stored_as(rt) {
            let obj = events::to_core(obj);
            return self
                .update_by(&core, ns, name, obj, status, dry_run, manager)
                .map(|updated| Self::served(rt, updated));
        }
        if let Some(body_name) = obj["metadata"]["name"].as_str()
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut state = self.lock();
        let key = (ns.unwrap_or_default().to_string(), name.to_string());
        let Some(current) = Self::bucket(&mut state, rt).get(&key).map(Stored::value) else {
            return Err(ApiError::not_found(&rt.group, &rt.resource, name));
        };
        if let Some(rv) = obj["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && rv
                != current["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
        {
            return Err(ApiError::conflict(&rt.group, &rt.resource, name));
        }
        if let Some(manager) = manager {
            let fields = if status {
                json!({"f:status": crate::managed::fields_of(&json!({"x": obj["status"]}))["f:x"]})
            } else {
                crate::managed::fields_of(&obj)
            };
            obj["metadata"]["managedFields"] = crate::managed::record(
                &current["metadata"]["managedFields"],
                manager,
                "Update",
                &rt.api_version(),
                status.then_some("status"),
                fields,
            );
        }
        self.write(&mut state, rt, key, current, &mut obj, status, dry_run)?;
        Ok(obj)
    }

    /// The shared tail of update and patch: system fields, status rules, events.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        state: &mut State,
        rt: &ResourceType,
        key: (String, String),
        current: Value,
        obj: &mut Value,
        status: bool,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let name = key.1.clone();
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        if rt.group.is_empty() && rt.resource == "secrets" && !status {
            admission::fold_string_data(obj);
        }
        if status {
            // Only status changes through the status subresource.
            let new_status = obj["status"].clone();
            *obj = current.clone();
            obj["status"] = new_status;
        } else if rt.status {
            // And status does not change through the main resource.
            obj["status"] = current["status"].clone();
            if obj["status"].is_null()
                && let Some(m) = obj.as_object_mut()
            {
                m.remove("status");
            }
        }
        // A body without managedFields keeps the stored ones.
        if obj["metadata"]["managedFields"].is_null()
            && let Some(m) = current["metadata"].get("managedFields")
        {
            obj["metadata"]["managedFields"] = m.clone();
        }
        // System fields come from the stored object.
        for field in ["uid", "creationTimestamp", "deletionTimestamp", "namespace"] {
            match current["metadata"].get(field) {
                Some(v) => obj["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        crate::defaults::apply(rt, obj);
        if rt.resource == "services" && rt.group.is_empty() {
            self.allocate_service(state, obj, Some(&current))?;
        }
        if rt.group == "batch"
            && rt.resource == "jobs"
            && obj["spec"]["selector"] != current["spec"]["selector"]
        {
            return Err(ApiError::invalid(
                "Job",
                &name,
                "spec.selector: Invalid value: field is immutable",
            ));
        }
        let generation = current["metadata"]["generation"].as_i64();
        if let Some(g) = generation {
            let spec_changed = obj.get("spec") != current.get("spec");
            obj["metadata"]["generation"] = json!(if spec_changed { g + 1 } else { g });
        }
        // Nothing changed: no new version, no event (as kube-apiserver does).
        let mut unchanged = obj.clone();
        unchanged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        if unchanged == current {
            *obj = current;
            return Ok(());
        }
        if dry_run {
            return Ok(());
        }
        // An object being deleted goes once its last finalizer is removed.
        if !current["metadata"]["deletionTimestamp"].is_null() && !has_finalizers(obj) {
            state.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
            self.remove_locked(state, rt, &key, obj.clone());
            return Ok(());
        }
        state.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        let stored = Stored::new(obj);
        Self::bucket(state, rt).insert(key, stored.clone());
        self.record(state, EventType::Modified, rt, stored);
        Ok(())
    }

    /// Applies a patch (merge, JSON, strategic, or server-side apply).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        body: &Value,
        kind: PatchType,
        status: bool,
        field_manager: Option<&str>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let existing = self.get(rt, ns, name);
        let mut obj = match (existing, kind) {
            (Ok(obj), _) => obj,
            (Err(e), PatchType::Apply) if e.code == 404 => {
                if field_manager.is_none_or(str::is_empty) {
                    return Err(ApiError::bad_request(
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                    ));
                }
                let mut fresh = body.clone();
                fresh["metadata"]["name"] = json!(name);
                return self.create_recorded(
                    rt,
                    ns,
                    fresh,
                    dry_run,
                    field_manager.map(|m| (m, "Apply")),
                );
            }
            (Err(e), _) => return Err(e),
        };
        let current_rv = obj["metadata"]["resourceVersion"].clone();
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            && Some(rv) != current_rv.as_str()
            && kind != PatchType::Json
        {
            return Err(ApiError::conflict(&rt.group, &rt.resource, name));
        }
        patch::apply(&mut obj, body, kind).map_err(|e| {
            ApiError::invalid(
                &rt.kind,
                name,
                &format!("the patch could not be applied: {e}"),
            )
        })?;
        if let Some(manager) = field_manager {
            let operation = if kind == PatchType::Apply {
                "Apply"
            } else {
                "Update"
            };
            let before = obj["metadata"]["managedFields"].clone();
            obj["metadata"]["managedFields"] = crate::managed::record(
                &before,
                manager,
                operation,
                &rt.api_version(),
                status.then_some("status"),
                crate::managed::fields_of(body),
            );
        }
        obj["metadata"]["resourceVersion"] = current_rv;
        // The patch applied to the shape it was written for; the storage's
        // type writes it.
        let served_as = rt;
        let stored_as = self.stored_as(rt);
        let rt = match &stored_as {
            Some(core) => {
                obj = events::to_core(obj);
                core
            }
            None => rt,
        };
        let mut state = self.lock();
        let key = (ns.unwrap_or_default().to_string(), name.to_string());
        let Some(current) = Self::bucket(&mut state, rt).get(&key).map(Stored::value) else {
            return Err(ApiError::not_found(&rt.group, &rt.resource, name));
        };
        if current["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"] {
            return Err(ApiError::conflict(&rt.group, &rt.resource, name));
        }
        self.write(&mut state, rt, key, current, &mut obj, status, dry_run)?;
        Ok(Self::served(served_as, obj))
    }

    fn remove_locked(
        &self,
        state: &mut State,
        rt: &ResourceType,
        key: &(String, String),
        obj: Value,
    ) {
        Self::bucket(state, rt).remove(key);
        if rt.group.is_empty() && rt.resource == "services" {
            Self::release_service(state, &obj);
        }
        if rt.group == "apiextensions.k8s.io" && rt.resource == "customresourcedefinitions" {
            self.unregister_crd(state, &obj);
        }
        self.record(state, EventType::Deleted, rt, Stored::new(&obj));
    }

    /// Deletes an object, or marks it for deletion while finalizers remain.
    /// Returns the object as it was last (or is now, when only marked).
    pub fn delete(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let key = (ns.unwrap_or_default().to_string(), name.to_string());
        let Some(mut obj) = Self::bucket(&mut state, rt).get(&key).map(Stored::value) else {
            return Err(ApiError::not_found(&rt.group, &rt.resource, name));
        };
        if options.dry_run {
            return Ok(Self::served(rt, obj));
        }
        let is_namespace = rt.group.is_empty() && rt.resource == "namespaces";
        if has_finalizers(&obj) || is_namespace {
            if obj["metadata"]["deletionTimestamp"].is_null() {
                obj["metadata"]["deletionTimestamp"] = json!(now());
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                if is_namespace {
                    obj["status"]["phase"] = json!("Terminating");
                }
                state.rv += 1;
                obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
                let stored = Stored::new(&obj);
                Self::bucket(&mut state, rt).insert(key, stored.clone());
                self.record(&mut state, EventType::Modified, rt, stored);
            }
            return Ok(Self::served(rt, obj));
        }
        state.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        if options.orphan {
            let uid = uid_of(&obj).to_string();
            self.orphan_dependents(&mut state, &uid);
        }
        self.remove_locked(&mut state, rt, &key, obj.clone());
        Ok(Self::served(rt, obj))
    }

    /// Removes ownerReferences to `uid` from every object.
    fn orphan_dependents(&self, state: &mut State, uid: &str) {
        let needle = uid.as_bytes();
        let mut changed = Vec::new();
        for ((group, resource), bucket) in &state.objects {
            for (key, stored) in bucket {
                // Only objects whose bytes mention the uid can refer to it.
                if !stored.json.windows(needle.len()).any(|w| w == needle) {
                    continue;
                }
                let mut obj = stored.value();
                let Some(refs) = obj["metadata"]["ownerReferences"].as_array_mut() else {
                    continue;
                };
                let before = refs.len();
                refs.retain(|r| r["uid"].as_str() != Some(uid));
                if refs.len() != before {
                    changed.push((group.clone(), resource.clone(), key.clone(), obj));
                }
            }
        }
        for (group, resource, key, mut obj) in changed {
            let Some(rt) = state
                .types
                .iter()
                .find(|t| t.group == group && t.resource == resource)
                .cloned()
            else {
                continue;
            };
            state.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
            let stored = Stored::new(&obj);
            Self::bucket(state, &rt).insert(key, stored.clone());
            self.record(state, EventType::Modified, &rt, stored);
        }
    }

    /// Puts an object back exactly as it was saved (uid and timestamps kept), for persistence.
    pub fn import(&self, rt: &ResourceType, mut obj: Value) {
        let mut state = self.lock();
        let key = (
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            name_of(&obj).to_string(),
        );
        if rt.group.is_empty()
            && rt.resource == "services"
            && let Some(ip) = obj["spec"]["clusterIP"].as_str().and_then(parse_ip)
        {
            state.allocated_ips.insert(ip);
        }
        state.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        if rt.group == "apiextensions.k8s.io" && rt.resource == "customresourcedefinitions" {
            self.register_crd(&mut state, &obj);
        }
        let stored = Stored::new(&obj);
        Self::bucket(&mut state, rt).insert(key, stored.clone());
        self.record(&mut state, EventType::Added, rt, stored);
    }

    /// The type serving `apiVersion` + `kind`.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.lock()
            .types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
    }

    /// Removes an object at once, finalizers or not (the namespace controller's last step).
    pub fn purge(&self, rt: &ResourceType, ns: Option<&str>, name: &str) {
        let mut state = self.lock();
        let key = (ns.unwrap_or_default().to_string(), name.to_string());
        if let Some(mut obj) = Self::bucket(&mut state, rt).get(&key).map(Stored::value) {
            state.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
            self.remove_locked(&mut state, rt, &key, obj);
        }
    }

    /// Deletes every object matching the selectors; returns the deleted objects.
    pub fn delete_collection(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        options: &DeleteOptions,
    ) -> Vec<Value> {
        let (items, _) = self.list(rt, ns, labels, fields);
        items
            .iter()
            .filter_map(|o| {
                let o_ns = o["metadata"]["namespace"].as_str();
                self.delete(rt, o_ns, name_of(o), options).ok()
            })
            .collect()
    }

    /// All uids present, for garbage collection.
    pub fn uids(&self) -> HashSet<String> {
        let state = self.lock();
        state
            .objects
            .values()
            .flat_map(|b| b.values().map(|o| o.uid.to_string()))
            .collect()
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}
