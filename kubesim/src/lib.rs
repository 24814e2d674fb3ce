//! kubesim: a Kubernetes API server simulator.
//!
//! It speaks the Kubernetes API over HTTPS (or HTTP) on 127.0.0.1 the way
//! kube-apiserver does for everything Lifeboat touches: discovery (including
//! aggregated discovery), CRUD with optimistic concurrency, the patch types,
//! server-side apply, list pagination, watches with bookmarks and 410 Gone,
//! CRDs, finalizers, namespace termination, ownerReference garbage
//! collection, and light controllers (workloads, volumes, a kubelet).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = kubesim::Kubesim::start(kubesim::Options::default()).await?;
//! sim.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod authn;
pub mod bootstrap;
pub mod clock;
pub mod controllers;
pub mod database;
pub mod defaults;
pub mod error;
pub mod exec;
pub mod flowcontrol;
pub mod logs;
pub mod managed;
pub mod openapi;
pub mod patch;
pub mod proto;
pub mod rbac;
pub mod resources;
pub mod seed;
pub mod selector;
pub mod store;
pub mod stream;
pub mod table;
pub mod tls;
pub mod usage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::task::JoinSet;

pub use controllers::Controllers;

/// FNV-1a over `bytes`: the one stable hash the simulator's made-up names,
/// log lines and usage figures are drawn from.
pub(crate) fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
pub use store::Store;

#[derive(Clone, Debug)]
pub struct Options {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// HTTPS with a generated CA (default), or plain HTTP.
    pub tls: bool,
    /// The bearer token clients must send; generated when `None`.
    pub token: Option<String>,
    pub controllers: Controllers,
    /// How often crash-looping pods restart.
    pub restart_interval: Duration,
    /// How often watches with `allowWatchBookmarks` get a bookmark.
    pub bookmark_interval: Duration,
    /// Save the objects to this file and load them from it at start.
    pub persist: Option<PathBuf>,
    /// How many changes watches can resume from (older resourceVersions get 410 Gone).
    pub history: usize,
    /// Group-resources the token may not touch (403), like a restricted ServiceAccount.
    pub forbidden: Vec<String>,
    /// The certificates to serve; generated at start when `None` (a restart
    /// through [`Kubesim::stop`] keeps them, as a real API server does).
    pub certificates: Option<Arc<tls::Certificates>>,
    /// How much later writes are answered (a remote API server's round trip).
    pub write_latency: Duration,
    /// Seats and queue for mutating requests, past which they get 429 as
    /// from API Priority and Fairness (`None`: unlimited).
    pub write_limit: Option<flowcontrol::WriteLimit>,
    /// Tokens of other users, authorized through RBAC (see [`Kubesim::issue_token`]).
    pub identities: authn::Identities,
    /// Serve `metrics.k8s.io` (NodeMetrics, PodMetrics) as a cluster with
    /// metrics-server does; `false`: a cluster without it.
    pub metrics_server: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: 0,
            tls: true,
            token: None,
            controllers: Controllers::all(),
            restart_interval: Duration::from_secs(15),
            bookmark_interval: Duration::from_secs(5),
            persist: None,
            history: store::HISTORY,
            forbidden: Vec::new(),
            certificates: None,
            write_latency: Duration::ZERO,
            write_limit: None,
            identities: authn::Identities::default(),
            metrics_server: true,
        }
    }
}

/// A running simulator; stops when dropped.
pub struct Kubesim {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT` or `http://…`.
    pub url: String,
    pub token: String,
    pub ca_pem: Option<String>,
    pub store: Store,
    /// The writes' priority level, when limited (its counts: 429s, peak seats).
    pub writes: Option<Arc<flowcontrol::WriteSeats>>,
    options: Options,
    tasks: JoinSet<()>,
}

impl Kubesim {
    /// Starts a simulator with a fresh store (loaded from `persist` if given).
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        let store = Store::with_history(options.history);
        rbac::aggregate_all(&store);
        if let Some(path) = &options.persist
            && path.exists()
        {
            seed::load_saved(&store, path)?;
        } else if options.controllers.volume_data.is_some() {
            // Real volume data comes with the CSI snapshot API, as a cluster
            // with external-snapshotter installed has it.
            seed::apply(&store, seed::parse(seed::SNAPSHOTS)?)?;
        }
        Self::start_with_store(options, store).await
    }

    /// Starts serving an existing store (to simulate an API server restart).
    pub async fn start_with_store(mut options: Options, store: Store) -> anyhow::Result<Self> {
        // The kubelets' mounts link to the volumes' directories: with an
        // absolute root, the links resolve from wherever they are read.
        if let Some(root) = options.controllers.volume_data.take() {
            options.controllers.volume_data = Some(std::path::absolute(&root)?);
        }
        let token = options
            .token
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
        let addr = listener.local_addr()?;
        let mut api = api::Api::new(store.clone(), Some(token.clone()));
        api.bookmark_interval = options.bookmark_interval;
        api.forbidden = options.forbidden.clone();
        api.write_latency = options.write_latency;
        let writes = options
            .write_limit
            .map(|l| Arc::new(flowcontrol::WriteSeats::new(l)));
        api.writes = writes.clone();
        api.identities = options.identities.clone();
        // Pods annotated as databases write into their volumes.
        if options.controllers.kubelet
            && let Some(root) = options.controllers.volume_data.clone()
        {
            api.databases = database::Databases::new(root);
        }
        let databases = api.databases.clone();
        let router = api.router();
        let mut options = options;
        // A cluster always has a CA (pods get it in `kube-root-ca.crt`), even
        // when this simulator serves plain HTTP.
        let certs = match &options.certificates {
            Some(c) => c.clone(),
            None => Arc::new(tls::generate().context("generating certificates")?),
        };
        options.certificates = Some(certs.clone());
        store.set_root_ca(&certs.ca_pem);
        if options.metrics_server {
            store.add_types(resources::metrics_types());
        }
        let (acceptor, ca_pem) = if options.tls {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(
                    vec![certs.server_cert_der.clone().into()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(certs.server_key_der.clone().into()),
                )?;
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
                Some(certs.ca_pem.clone()),
            )
        } else {
            (None, None)
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, acceptor, router));
        tasks.spawn(
            options
                .controllers
                .clone()
                .run(store.clone(), options.restart_interval),
        );
        tasks.spawn(databases.run(store.clone()));
        if let Some(path) = options.persist.clone() {
            tasks.spawn(seed::persist_loop(store.clone(), path));
        }
        let scheme = if options.tls { "https" } else { "http" };
        Ok(Self {
            addr,
            url: format!("{scheme}://{addr}"),
            token,
            ca_pem,
            store,
            writes,
            options,
            tasks,
        })
    }

    /// Writes a kubeconfig that reaches this simulator as the admin.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        tls::write_kubeconfig(path, &self.url, self.ca_pem.as_deref(), &self.token)
    }

    /// A new bearer token for `user`, whose requests RBAC then authorizes
    /// from the roles and bindings in the store (as a ServiceAccount's
    /// token is on a real cluster).
    pub fn issue_token(&self, user: rbac::User) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.options.identities.insert(&token, user);
        token
    }

    /// A new bearer token with its own audiences, expiry or bound objects
    /// (as `serviceaccounts/{name}/token` issues them).
    pub fn issue_credential(&self, credential: authn::Credential) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.options
            .identities
            .insert_credential(&token, credential);
        token
    }

    /// Writes a kubeconfig that reaches this simulator with `token`.
    pub fn write_kubeconfig_for(&self, path: &Path, token: &str) -> std::io::Result<()> {
        tls::write_kubeconfig(path, &self.url, self.ca_pem.as_deref(), token)
    }

    /// Stops serving (open watches are cut) and returns the store and options,
    /// so that [`Kubesim::start_with_store`] can bring the "same" server back.
    pub async fn stop(mut self) -> (Store, Options) {
        self.tasks.shutdown().await;
        let mut options = self.options.clone();
        options.port = self.addr.port();
        options.token = Some(self.token.clone());
        (self.store.clone(), options)
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
) {
    // Connections live in this set, so stopping the server cuts them too.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        connections.spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                        .await;
                }
            }
        });
    }
}
