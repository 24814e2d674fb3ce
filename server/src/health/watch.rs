//! Watching the cluster: one kube-runtime watcher + reflector store per
//! resource, with backoff and re-list on expiry, managedFields dropped as
//! objects come in. Each watch reports whether it is live, reconnecting, or
//! not permitted, so a restricted ServiceAccount gets what it may see.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;

/// How one watch is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WatchState {
    Starting,
    Live,
    Reconnecting { reason: String },
    NotPermitted { reason: String },
}

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
    ) {
        let c = Change {
            id: self.next,
            resource,
            change: change.to_string(),
            namespace,
            name,
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

/// The reflector stores of everything the health model looks at.
#[derive(Clone)]
pub struct ClusterState {
    pub nodes: Store<Node>,
    pub namespaces: Store<Namespace>,
    pub pods: Store<Pod>,
    pub deployments: Store<Deployment>,
    pub statefulsets: Store<StatefulSet>,
    pub daemonsets: Store<DaemonSet>,
    pub pvcs: Store<PersistentVolumeClaim>,
    /// Per resource (`pods`, `deployments.apps`, …).
    pub watches: Arc<RwLock<BTreeMap<&'static str, WatchState>>>,
    pub changes: Arc<Mutex<Changes>>,
}

fn spawn_watch<K>(
    client: &kube::Client,
    label: &'static str,
    watches: Arc<RwLock<BTreeMap<&'static str, WatchState>>>,
    changes: Arc<Mutex<Changes>>,
) -> Store<K>
where
    K: kube::Resource
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
    let record = {
        let changes = changes.clone();
        move |change: &str, namespace: Option<String>, name: Option<String>| {
            if let Ok(mut c) = changes.lock() {
                c.push(label, change, namespace, name);
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
                    c.push("watch", word, None, Some(label.to_string()));
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
        })
        .default_backoff();
    let stream = reflector::reflector(writer, stream);
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    set(WatchState::Live);
                    let key = |o: &K| (o.meta().namespace.clone(), o.meta().name.clone());
                    match &event {
                        watcher::Event::Apply(o) => {
                            let (ns, name) = key(o);
                            record("applied", ns, name);
                        }
                        watcher::Event::Delete(o) => {
                            let (ns, name) = key(o);
                            record("deleted", ns, name);
                        }
                        watcher::Event::InitDone => record("relisted", None, None),
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
            pvcs: spawn_watch(client, "persistentvolumeclaims", w.clone(), c.clone()),
            watches,
            changes,
        }
    }

    pub fn watch_states(&self) -> BTreeMap<&'static str, WatchState> {
        self.watches.read().map(|w| w.clone()).unwrap_or_default()
    }
}
