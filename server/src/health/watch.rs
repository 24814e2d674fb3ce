//! Watching the cluster: one kube-runtime watcher + reflector store per
//! resource, with backoff and re-list on expiry, managedFields dropped as
//! objects come in. Each watch reports whether it is live, reconnecting, or
//! not permitted, so a restricted ServiceAccount gets what it may see.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

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
}

fn spawn_watch<K>(
    client: &kube::Client,
    label: &'static str,
    watches: Arc<RwLock<BTreeMap<&'static str, WatchState>>>,
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
    let set = move |state: WatchState| {
        if let Ok(mut w) = watches.write() {
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
                Ok(_) => set(WatchState::Live),
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
        Self {
            nodes: spawn_watch(client, "nodes", watches.clone()),
            namespaces: spawn_watch(client, "namespaces", watches.clone()),
            pods: spawn_watch(client, "pods", watches.clone()),
            deployments: spawn_watch(client, "deployments.apps", watches.clone()),
            statefulsets: spawn_watch(client, "statefulsets.apps", watches.clone()),
            daemonsets: spawn_watch(client, "daemonsets.apps", watches.clone()),
            pvcs: spawn_watch(client, "persistentvolumeclaims", watches.clone()),
            watches,
        }
    }

    pub fn watch_states(&self) -> BTreeMap<&'static str, WatchState> {
        self.watches.read().map(|w| w.clone()).unwrap_or_default()
    }
}
