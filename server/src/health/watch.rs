//! Watching the cluster: one kube-runtime watcher + reflector store per
//! resource, with backoff and re-list on expiry, managedFields dropped as
//! objects come in. Each watch reports whether it is live, reconnecting, or
//! not permitted, so a restricted ServiceAccount gets what it may see.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, PodTemplateSpec, Service,
};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;

use super::model;

/// How one watch is doing.
pub use frontend::model::WatchState;

/// One change the stream tells clients about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Increasing; clients resume with `Last-Event-ID`.
    pub id: u64,
    /// `pods`, `deployments.apps`, … or `watch` for a watch's own state.
    pub resource: &'static str,
    /// `applied`, `deleted`, `relisted`, or a watch state (`live`, `reconnecting`, `not_permitted`).
    pub change: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The object's health summary after the change (pods, workloads, nodes, PVCs, Jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
}

/// How many changes are kept for clients that reconnect.
pub const CHANGE_HISTORY: usize = 4096;

/// Changes as they happen, plus the recent past for resuming clients.
pub struct Changes {
    next: u64,
    recent: VecDeque<Change>,
    tx: tokio::sync::broadcast::Sender<Change>,
}

impl Changes {
    fn new() -> Self {
        Self {
            next: 1,
            recent: VecDeque::new(),
            tx: tokio::sync::broadcast::channel(4096).0,
        }
    }

    fn push(
        &mut self,
        resource: &'static str,
        change: &str,
        namespace: Option<String>,
        name: Option<String>,
        summary: Option<serde_json::Value>,
    ) {
        let c = Change {
            id: self.next,
            resource,
            change: change.to_string(),
            namespace,
            name,
            summary,
        };
        self.next += 1;
        self.recent.push_back(c.clone());
        while self.recent.len() > CHANGE_HISTORY {
            self.recent.pop_front();
        }
        let _ = self.tx.send(c);
    }

    /// Changes after `id`, or `None` when some of them are no longer kept.
    pub fn since(&self, id: u64) -> Option<Vec<Change>> {
        match self.recent.front() {
            Some(first) if first.id > id + 1 => None,
            _ => Some(self.recent.iter().filter(|c| c.id > id).cloned().collect()),
        }
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    pub fn last_id(&self) -> u64 {
        self.next - 1
    }
}

/// What the watchers need of each kind.
pub trait Watched: serde::Serialize {
    /// Drops what nobody is shown, as objects come in (memory stays lean on
    /// big clusters); managedFields and last-applied go for every kind.
    fn lean(&mut self) {}

    /// The health summary the stream carries with a change, so a client can
    /// update a row (ready counts, a pod's state) without fetching it.
    fn summary(&self) -> Option<serde_json::Value> {
        None
    }
}

fn json_of<K: serde::Serialize>(obj: &K, kind: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::to_value(obj).unwrap_or_default();
    if let Some(kind) = kind {
        v["kind"] = serde_json::json!(kind);
    }
    v
}

fn workload_summary<K: serde::Serialize>(obj: &K, kind: &str) -> Option<serde_json::Value> {
    serde_json::to_value(model::workload(&json_of(obj, Some(kind)))).ok()
}

/// A pod template reduced to its containers' names and images.
fn lean_template(t: &mut PodTemplateSpec) {
    if let Some(spec) = t.spec.as_mut() {
        let containers = std::mem::take(&mut spec.containers);
        *spec = Default::default();
        spec.containers = containers
            .into_iter()
            .map(|c| k8s_openapi::api::core::v1::Container {
                name: c.name,
                image: c.image,
                ..Default::default()
            })
            .collect();
    }
}

/// Pods are decoded straight into the compact [`super::lean::Pod`]: what it
/// does not name never reaches memory.
impl Watched for super::lean::Pod {
    fn summary(&self) -> Option<serde_json::Value> {
        serde_json::to_value(model::pod(&json_of(self, None), chrono::Utc::now())).ok()
    }
    fn lean(&mut self) {
        // Nothing on a pod's page reads its annotations.
        self.metadata.annotations = None;
    }
}
/// Workloads and ReplicaSets are decoded into compact types as well.
impl<K: super::lean::WorkloadKind> Watched for super::lean::Workload<K> {
    fn summary(&self) -> Option<serde_json::Value> {
        workload_summary(self, K::KIND)
    }
    fn lean(&mut self) {
        self.metadata.annotations = None;
    }
}
impl Watched for super::lean::ReplicaSet {
    fn lean(&mut self) {
        self.metadata.annotations = None;
    }
}
impl Watched for Job {
    fn summary(&self) -> Option<serde_json::Value> {
        serde_json::to_value(model::job(&json_of(self, None))).ok()
    }
    fn lean(&mut self) {
        if let Some(spec) = self.spec.as_mut() {
            lean_template(&mut spec.template);
        }
    }
}
impl Watched for CronJob {
    fn lean(&mut self) {
        if let Some(job) = self.spec.job_template.spec.as_mut() {
            lean_template(&mut job.template);
        }
    }
}
impl Watched for Node {
    fn summary(&self) -> Option<serde_json::Value> {
        serde_json::to_value(model::node(&json_of(self, None))).ok()
    }
    fn lean(&mut self) {
        if let Some(status) = self.status.as_mut() {
            // Image lists are long on real nodes and never shown.
            status.images = None;
        }
    }
}
impl Watched for Namespace {}
impl Watched for PersistentVolumeClaim {
    fn summary(&self) -> Option<serde_json::Value> {
        serde_json::to_value(model::pvc(&json_of(self, None))).ok()
    }
}
impl Watched for PersistentVolume {}
impl Watched for Service {}
impl Watched for Ingress {}
impl Watched for Event {}

/// The reflector stores of everything the health model looks at.
#[derive(Clone)]
pub struct ClusterState {
    pub nodes: Store<Node>,
    pub namespaces: Store<Namespace>,
    pub pods: Store<super::lean::Pod>,
    pub deployments: Store<super::lean::Deployment>,
    pub statefulsets: Store<super::lean::StatefulSet>,
    pub daemonsets: Store<super::lean::DaemonSet>,
    /// For ownership: which Deployment a pod belongs to.
    pub replicasets: Store<super::lean::ReplicaSet>,
    pub jobs: Store<Job>,
    pub cronjobs: Store<CronJob>,
    pub pvcs: Store<PersistentVolumeClaim>,
    pub pvs: Store<PersistentVolume>,
    pub services: Store<Service>,
    pub ingresses: Store<Ingress>,
    pub events: Store<Event>,
    /// Per resource (`pods`, `deployments.apps`, …).
    pub watches: Arc<RwLock<BTreeMap<&'static str, WatchState>>>,
    pub changes: Arc<Mutex<Changes>>,
    /// The last cluster summary: (change id, when, summary).
    pub summary_cache:
        Arc<Mutex<Option<(u64, std::time::Instant, frontend::model::ClusterSummary)>>>,
    /// CPU and memory from metrics.k8s.io, read every 30 s.
    pub usage: super::usage::Usage,
}

fn spawn_watch<K>(
    client: &kube::Client,
    label: &'static str,
    watches: Arc<RwLock<BTreeMap<&'static str, WatchState>>>,
    changes: Arc<Mutex<Changes>>,
) -> Store<K>
where
    K: kube::Resource
        + Watched
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let api: Api<K> = Api::all(client.clone());
    let api_for_probe = api.clone();
    let watches_for_probe = watches.clone();
    let record = {
        let changes = changes.clone();
        move |change: &str, obj: Option<&K>| {
            let (namespace, name) = obj
                .map(|o| (o.meta().namespace.clone(), o.meta().name.clone()))
                .unwrap_or_default();
            // Computed before taking the lock: other watches keep pushing meanwhile.
            let summary = if change == "applied" {
                obj.and_then(Watched::summary)
            } else {
                None
            };
            if let Ok(mut c) = changes.lock() {
                c.push(label, change, namespace, name, summary);
            }
        }
    };
    let set = move |state: WatchState| {
        if let Ok(mut w) = watches.write() {
            // The stream says so only when a watch changes state.
            if w.get(label) != Some(&state) {
                let word = match &state {
                    WatchState::Starting => "starting",
                    WatchState::Live => "live",
                    WatchState::Reconnecting { .. } => "reconnecting",
                    WatchState::NotPermitted { .. } => "not_permitted",
                };
                if let Ok(mut c) = changes.lock() {
                    c.push("watch", word, None, Some(label.to_string()), None);
                }
            }
            w.insert(label, state);
        }
    };
    set(WatchState::Starting);
    let stream = watcher(api, watcher::Config::default())
        .modify(|obj: &mut K| {
            obj.meta_mut().managed_fields = None;
            if let Some(a) = obj.meta_mut().annotations.as_mut() {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
            obj.lean();
        })
        .backoff(WatchBackoff::default());
    let stream = reflector::reflector(writer, stream);
    let probe_api = api_for_probe;
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        // A watch that resumes after an outage yields nothing until the next
        // change, so while reconnecting the API is asked directly, every
        // second, whether it answers for this resource again.
        let mut probe = tokio::time::interval(std::time::Duration::from_secs(1));
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                event = stream.next() => match event {
                    Some(event) => event,
                    None => break,
                },
                _ = probe.tick() => {
                    let reconnecting = watches_for_probe
                        .read()
                        .is_ok_and(|w| matches!(w.get(label), Some(WatchState::Reconnecting { .. })));
                    if reconnecting
                        && probe_api
                            .list_metadata(&kube::api::ListParams::default().limit(1))
                            .await
                            .is_ok()
                    {
                        set(WatchState::Live);
                    }
                    continue;
                }
            };
            match event {
                Ok(event) => {
                    set(WatchState::Live);
                    match &event {
                        watcher::Event::Apply(o) => record("applied", Some(o)),
                        watcher::Event::Delete(o) => record("deleted", Some(o)),
                        watcher::Event::InitDone => {
                            record("relisted", None);
                            super::release_freed_memory();
                        }
                        _ => {}
                    }
                }
                Err(
                    watcher::Error::InitialListFailed(kube::Error::Api(s))
                    | watcher::Error::WatchStartFailed(kube::Error::Api(s)),
                ) if s.code == 403 => {
                    set(WatchState::NotPermitted {
                        reason: s.message.clone(),
                    });
                }
                Err(e) => set(WatchState::Reconnecting {
                    reason: e.to_string(),
                }),
            }
        }
    });
    store
}

/// Retries after 0.5 s, doubling up to 5 s (kube-runtime's default waits up to
/// 30 s, long for a dashboard after a short API outage); reset on success.
struct WatchBackoff {
    next: std::time::Duration,
}

impl WatchBackoff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(500);
    const MAX: std::time::Duration = std::time::Duration::from_secs(5);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = std::time::Duration;
    fn next(&mut self) -> Option<std::time::Duration> {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        Some(now)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl ClusterState {
    /// Starts every watch; they run until the process ends.
    pub fn start(client: &kube::Client) -> Self {
        let watches = Arc::new(RwLock::new(BTreeMap::new()));
        let changes = Arc::new(Mutex::new(Changes::new()));
        let (w, c) = (&watches, &changes);
        Self {
            nodes: spawn_watch(client, "nodes", w.clone(), c.clone()),
            namespaces: spawn_watch(client, "namespaces", w.clone(), c.clone()),
            pods: spawn_watch(client, "pods", w.clone(), c.clone()),
            deployments: spawn_watch(client, "deployments.apps", w.clone(), c.clone()),
            statefulsets: spawn_watch(client, "statefulsets.apps", w.clone(), c.clone()),
            daemonsets: spawn_watch(client, "daemonsets.apps", w.clone(), c.clone()),
            replicasets: spawn_watch(client, "replicasets.apps", w.clone(), c.clone()),
            jobs: spawn_watch(client, "jobs.batch", w.clone(), c.clone()),
            cronjobs: spawn_watch(client, "cronjobs.batch", w.clone(), c.clone()),
            pvcs: spawn_watch(client, "persistentvolumeclaims", w.clone(), c.clone()),
            pvs: spawn_watch(client, "persistentvolumes", w.clone(), c.clone()),
            services: spawn_watch(client, "services", w.clone(), c.clone()),
            ingresses: spawn_watch(client, "ingresses.networking.k8s.io", w.clone(), c.clone()),
            events: spawn_watch(client, "events", w.clone(), c.clone()),
            watches,
            changes,
            summary_cache: Arc::new(Mutex::new(None)),
            usage: {
                let usage = super::usage::Usage::default();
                usage.spawn_poller(client.clone());
                usage
            },
        }
    }

    pub fn watch_states(&self) -> BTreeMap<&'static str, WatchState> {
        self.watches.read().map(|w| w.clone()).unwrap_or_default()
    }
}
