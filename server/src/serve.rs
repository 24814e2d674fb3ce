//! `lifeboat serve`: check the data directory, open the catalog and the
//! default storage location, connect to the cluster, then serve HTTP until
//! SIGTERM or Ctrl-C. Every start-up failure is one paragraph naming the
//! setting and the fix; nothing is half-written.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::cluster::Cluster;
use crate::config::{Config, StorageKind};
use crate::http::{AppState, router};
use crate::storage::LocationSettings;
use crate::storage::{Availability, DynStore, LocalStore, Locations, S3Settings, S3Store};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the data directory {path} cannot be used: {message}. Make it writable by the user \
         running Lifeboat, or set data_dir (LIFEBOAT_DATA_DIR, --data-dir) to a writable directory."
    )]
    DataDir { path: String, message: String },
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(
        "the storage location `default` ({location}) is unavailable: {reason}\nFix the storage \
         settings (storage.* in lifeboat.toml, LIFEBOAT_STORAGE_* / LIFEBOAT_S3_*) and start again."
    )]
    Storage { location: String, reason: String },
    #[error(
        "cannot listen on {addr}: {source}. Choose another address with listen / LIFEBOAT_LISTEN / --listen."
    )]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(
        "{0}. Fix tls.cert_file / tls.key_file (LIFEBOAT_TLS_CERT_FILE / LIFEBOAT_TLS_KEY_FILE)."
    )]
    Tls(#[from] crate::tls::TlsError),
}

/// Checks that the data directory exists (creating it) and is writable.
pub fn prepare_data_dir(config: &Config) -> Result<(), StartError> {
    let dir = &config.data_dir;
    let fail = |message: String| StartError::DataDir {
        path: dir.display().to_string(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let probe = dir.join(format!(".lifeboat-write-test-{}", uuid::Uuid::new_v4()));
    std::fs::write(&probe, b"").map_err(|e| fail(format!("writing a test file failed: {e}")))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Opens the default storage location from the configuration and checks it.
pub async fn open_storage(config: &Config) -> Result<DynStore, StartError> {
    let store: DynStore = match config.storage.kind {
        StorageKind::Local => {
            let path = config.local_storage_path();
            Arc::new(LocalStore::new(&path).map_err(|e| StartError::Storage {
                location: format!("local directory {}", path.display()),
                reason: e.to_string(),
            })?)
        }
        StorageKind::S3 => {
            let s3 = &config.storage.s3;
            let settings = S3Settings {
                endpoint: s3.endpoint.clone(),
                region: s3.region.clone(),
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
                path_style: s3.path_style,
                access_key_id: s3.access_key_id.clone(),
                secret_access_key: s3
                    .secret_access_key
                    .as_ref()
                    .map(|s| s.expose().to_string()),
                checksum: s3.checksum,
                object_lock: s3.object_lock,
            };
            Arc::new(
                S3Store::new(settings)
                    .await
                    .map_err(|e| StartError::Storage {
                        location: format!("s3://{}", s3.bucket),
                        reason: e.to_string(),
                    })?,
            )
        }
    };
    if let Availability::Unavailable { reason } = store.check().await {
        return Err(StartError::Storage {
            location: store.describe(),
            reason,
        });
    }
    if store.lock_mode().is_some() {
        crate::location::require_object_lock(store.as_ref())
            .await
            .map_err(|e| StartError::Storage {
                location: store.describe(),
                reason: e.to_string(),
            })?;
    }
    Ok(store)
}

/// The settings of the default location as the catalog keeps them: no secrets.
fn storage_record(config: &Config) -> (&'static str, LocationSettings) {
    let (kind, mut settings) = storage_settings(config);
    if config.storage.encryption == crate::config::ArchiveEncryption::None {
        settings.encryption = Some("none".into());
    }
    (kind, settings)
}

fn storage_settings(config: &Config) -> (&'static str, LocationSettings) {
    match config.storage.kind {
        StorageKind::Local => (
            "local",
            LocationSettings {
                path: Some(config.local_storage_path().display().to_string()),
                ..Default::default()
            },
        ),
        StorageKind::S3 => {
            let s3 = &config.storage.s3;
            let checksum = match s3.checksum {
                crate::storage::ChecksumMode::WhenRequired => "when_required",
                crate::storage::ChecksumMode::WhenSupported => "when_supported",
            };
            (
                "s3",
                LocationSettings {
                    endpoint: s3.endpoint.clone(),
                    region: Some(s3.region.clone()),
                    bucket: Some(s3.bucket.clone()),
                    prefix: Some(s3.prefix.clone()),
                    path_style: Some(s3.path_style),
                    checksum: Some(checksum.into()),
                    object_lock: s3.object_lock.map(|mode| mode.as_str().into()),
                    credentials: Some(
                        if s3.access_key_id.is_some() {
                            "static"
                        } else {
                            "aws-default-chain"
                        }
                        .into(),
                    ),
                    ..Default::default()
                },
            )
        }
    }
}

/// Everything `serve` needs, opened and checked.
pub async fn open(config: &Config) -> Result<AppState, StartError> {
    prepare_data_dir(config)?;
    crate::set_replica_id(replica_identity(config));
    let catalog = Catalog::connect(&config.database_url()).await?;
    let storage = open_storage(config).await?;
    let (kind, settings) = storage_record(config);
    catalog
        .upsert_storage_location("default", kind, &settings, true)
        .await?;
    catalog
        .set_availability("default", &Availability::Available)
        .await?;
    let locations = Locations::new(storage.clone());
    crate::location::reconcile(&catalog, &locations).await?;
    // Backups that were running when the server stopped cannot finish now.
    let interrupted = crate::backup::fail_interrupted(&catalog, &locations, at_start(&catalog))
        .await
        .map_err(|e| StartError::Storage {
            location: storage.describe(),
            reason: e.to_string(),
        })?;
    // And so do restores: marked Failed with how far they got.
    let interrupted_restores =
        crate::restore::fail_interrupted(&catalog, at_start(&catalog)).await?;
    if !interrupted_restores.is_empty() {
        tracing::warn!(restores = ?interrupted_restores, "restores interrupted by an earlier stop were marked Failed");
    }
    if !interrupted.is_empty() {
        tracing::warn!(backups = ?interrupted, "marked interrupted backups Failed");
    }
    // Storage is the source of truth: import what the catalog does not know.
    crate::location::sync_all(&catalog, &locations, false).await;
    let cluster =
        Cluster::connect(config.kubeconfig.as_deref(), config.kube_context.as_deref()).await;
    if let Err(reason) = &cluster {
        tracing::warn!(%reason, "starting without a cluster");
    }
    let health = cluster
        .as_ref()
        .ok()
        .map(|c| crate::health::watch::ClusterState::start(&c.client));
    // Drills cut short by the stop: their scratch namespaces go (in the
    // background: a namespace takes a while to terminate).
    if let Some(client) = cluster.as_ref().ok().and_then(|c| c.drill_client().ok()) {
        let drills = crate::drill::Drills {
            catalog: catalog.clone(),
            locations: locations.clone(),
            client,
        };
        let which = at_start(&catalog);
        tokio::spawn(async move {
            match drills.recover(which).await {
                Ok(cleaned) if !cleaned.is_empty() => {
                    tracing::warn!(drills = ?cleaned, "scratch namespaces of drills cut short were deleted")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "resuming drill clean-ups failed; retried by the scheduler")
                }
            }
        });
    }
    // Temporary objects (helper pods, snapshots and their claims) of the
    // operations the stop cut short go now; GC sweeps again on every pass.
    if let Ok(c) = cluster.as_ref() {
        let (catalog, client) = (catalog.clone(), c.client.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::schedule::sweep_temporaries(&catalog, &client).await {
                tracing::warn!(error = %e, "looking for leftover temporary objects failed; GC retries");
            }
        });
    }
    // A volume repository damaged before this start is reported from the start.
    for (name, store) in locations.all() {
        let catalog = catalog.clone();
        tokio::spawn(async move { crate::volumes::check_open(&catalog, &store, &name).await });
    }
    let leadership = leadership(config, &catalog, cluster.as_ref().ok());
    if config.auth.disabled {
        tracing::warn!(
            "AUTHENTICATION IS DISABLED (auth.disabled): anyone who can reach this port can read every backup, Secrets included, and restore anything with Lifeboat's permissions"
        );
    }
    let mut auth_settings = config.auth.settings();
    // Over HTTPS the session cookie is never sent in the clear.
    auth_settings.secure_cookies |= config.tls.cert_file.is_some();
    let auth = crate::auth::Auth::new(
        auth_settings,
        cluster.as_ref().ok().map(|c| c.client.clone()),
        catalog.clone(),
    );
    let journals = crate::journal::Journals::new(
        catalog.clone(),
        locations.clone(),
        cluster.as_ref().ok().map(|c| c.client.clone()),
        leadership.clone(),
        config.journal.settings(&config.data_dir),
    );
    Ok(AppState {
        catalog,
        locations,
        cluster: Arc::new(cluster),
        health,
        leadership,
        site_dir: site_dir(config),
        auth,
        journals,
    })
}

/// This replica's identity: `scheduler.replica_id`, or the host name with a random suffix.
fn replica_identity(config: &Config) -> String {
    config.scheduler.replica_id.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "lifeboat".into());
        format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    })
}

/// Which running backups are dead at start: all of them when the catalog is
/// this replica's alone (SQLite); with a shared one, only ours and silent ones.
fn at_start(catalog: &Catalog) -> crate::backup::Interrupted {
    match catalog.engine() {
        crate::catalog::Engine::Sqlite => crate::backup::Interrupted::All,
        _ => crate::backup::Interrupted::MineOrStale,
    }
}

/// The browser bundle, or a warning that pages will not be interactive.
fn site_dir(config: &Config) -> Option<std::path::PathBuf> {
    let found = crate::http::ui::find_site_dir(config.site_dir.as_deref());
    if let Err(why) = crate::http::ui::bundle_state(found.as_deref()) {
        tracing::warn!("{why}");
    }
    found
}

/// SQLite: this is the only replica, it runs schedules. PostgreSQL: the
/// holder of the Lease does (its election starts here).
fn leadership(
    config: &Config,
    catalog: &Catalog,
    cluster: Option<&Cluster>,
) -> crate::schedule::Leadership {
    use crate::catalog::Engine;
    use crate::schedule::{Leadership, LeaseElector};
    if catalog.engine() == Engine::Sqlite {
        return Leadership::Single;
    }
    let Some(cluster) = cluster else {
        let reason = "the PostgreSQL catalog may be shared by several replicas, and without a cluster there is no Lease to decide which runs schedules; connect a cluster".to_string();
        tracing::warn!(%reason, "schedules will not run here");
        return Leadership::Nobody(reason);
    };
    let s = &config.scheduler;
    let namespace = s.lease_namespace.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|_| "default".into())
    });
    let identity = crate::replica_id();
    let elector = LeaseElector::new(
        cluster.client.clone(),
        &namespace,
        &s.lease_name,
        identity,
        std::time::Duration::from_secs(s.lease_duration_seconds),
    );
    elector.spawn();
    tracing::info!(%identity, lease = %format!("{namespace}/{}", s.lease_name), "competing for the scheduler lease");
    Leadership::Lease(Box::new(elector))
}

/// Serves until SIGTERM or Ctrl-C, then finishes the requests in flight.
/// With `sign_in_token` (the demo's admin), a one-time sign-in URL for it is printed.
pub async fn serve(
    config: &Config,
    sign_in_token: Option<&str>,
    on_listening: Option<Box<dyn FnOnce(String) + Send>>,
) -> Result<(), StartError> {
    // A certificate that does not read stops the start, before anything else.
    crate::install_crypto_provider();
    let tls = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(cert), Some(key)) => Some(crate::tls::ReloadingCertificate::open(cert, key)?),
        _ => None,
    };
    let state = open(config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen.to_string(),
        source,
    })?;
    state
        .catalog
        .record_activity(
            "system",
            "server.started",
            "server",
            &format!("Lifeboat {} listening on http://{addr}", crate::VERSION),
            None,
        )
        .await?;
    tracing::info!(%addr, version = crate::VERSION, "listening");
    if let Some(hook) = on_listening {
        let scheme = if tls.is_some() { "https" } else { "http" };
        hook(format!("{scheme}://{addr}"));
    }
    // Periodic check and sync: availability is kept current, and backups
    // written by another installation appear here too.
    let sync_state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) =
                crate::location::reconcile(&sync_state.catalog, &sync_state.locations).await
            {
                tracing::warn!(error = %e, "reading the storage locations failed");
            }
            crate::location::sync_all(&sync_state.catalog, &sync_state.locations, true).await;
            // With a shared catalog, a replica that died mid-backup is noticed here.
            if at_start(&sync_state.catalog) != crate::backup::Interrupted::All {
                match crate::backup::fail_interrupted(
                    &sync_state.catalog,
                    &sync_state.locations,
                    crate::backup::Interrupted::Stale,
                )
                .await
                {
                    Ok(failed) if !failed.is_empty() => {
                        tracing::warn!(backups = ?failed, "backups whose replica stopped were marked Failed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "checking for interrupted backups failed"),
                }
                match crate::restore::fail_interrupted(
                    &sync_state.catalog,
                    crate::backup::Interrupted::Stale,
                )
                .await
                {
                    Ok(failed) if !failed.is_empty() => {
                        tracing::warn!(restores = ?failed, "restores whose replica stopped were marked Failed")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "checking for interrupted restores failed")
                    }
                }
            }
        }
    });
    // Notifications: the leader tells webhooks what needs a person.
    crate::notify::Notifier::new(state.catalog.clone()).spawn(state.leadership.clone());
    let drill_client = state
        .cluster
        .as_ref()
        .as_ref()
        .ok()
        .and_then(|c| c.drill_client().ok());
    // Schedules and GC: run while this replica leads.
    crate::schedule::Scheduler {
        catalog: state.catalog.clone(),
        locations: state.locations.clone(),
        client: state
            .cluster
            .as_ref()
            .as_ref()
            .ok()
            .map(|c| c.client.clone()),
        drill_client: drill_client.clone(),
        leadership: state.leadership.clone(),
    }
    .spawn();
    // Change journals of schedules with continuous protection: the leader's.
    state.journals.clone().spawn();
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(token) = sign_in_token {
        let code = state.auth.sessions().issue_code(token);
        println!("sign in (once, within 10 minutes): {scheme}://{addr}/login?code={code}");
    }
    // Tools and tests read this line to learn the port when listening on :0.
    println!("lifeboat listening on {scheme}://{addr}");
    let app = router(state.clone());
    match tls {
        Some(certificate) => {
            let _reloader = AbortOnDrop(certificate.spawn_reloader());
            let listener =
                crate::tls::TlsListener::new(listener, crate::tls::server_config(certificate))
                    .map_err(StartError::Serve)?;
            serve_until_stopped(listener, app).await?;
        }
        None => serve_until_stopped(listener, app).await?,
    }
    if let crate::schedule::Leadership::Lease(elector) = &state.leadership {
        elector.release().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `app` on `listener` until SIGTERM or Ctrl-C; requests in flight
/// get a grace period, as long-lived streams (SSE progress, the change
/// stream) would otherwise hold the exit forever.
async fn serve_until_stopped<L>(listener: L, app: axum::Router) -> Result<(), StartError>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(());
    });
    let grace = async {
        if stop_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served.map_err(StartError::Serve)?,
        () = grace => tracing::warn!(grace = ?SHUTDOWN_GRACE, "closing connections still open after the grace period"),
    }
    Ok(())
}

/// How long requests in flight may finish after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}
