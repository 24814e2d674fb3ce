//! Lifeboat: Kubernetes backup, disaster recovery and cluster health.
//!
//! The map of this crate is `docs/ARCHITECTURE.md`.

pub mod archive;
pub mod auth;
pub mod backup;
pub mod catalog;
pub mod cluster;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod drill;
pub mod health;
pub mod http;
pub mod install;
pub mod journal;
pub mod location;
pub mod metrics;
pub mod notify;
pub mod restore;
pub mod schedule;
pub mod secret;
pub mod selection;
pub mod serve;
pub mod storage;
pub mod tls;
pub mod volumes;

/// The version printed by `lifeboat version` and recorded in every backup manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this binary was built from (`.ci/package` passes it, a
/// build from a checkout asks git), if known.
pub fn commit() -> Option<&'static str> {
    Some(env!("LIFEBOAT_GIT_COMMIT")).filter(|c| !c.is_empty())
}

static REPLICA: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// This process's replica identity: set once by `serve` (from
/// `scheduler.replica_id` or the host name), random otherwise. It names the
/// owner of the backups this process runs and the holder of the scheduler Lease.
pub fn replica_id() -> &'static str {
    REPLICA.get_or_init(|| {
        format!(
            "lifeboat-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    })
}

/// Sets the replica identity; only the first call counts.
pub fn set_replica_id(id: String) {
    let _ = REPLICA.set(id);
}

/// `1.5 GiB`, `320.0 KiB`, `12 B`: sizes as people read them.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1} GiB", n / 1024.0 / 1024.0 / 1024.0),
        n if n >= 1024.0 * 1024.0 => format!("{:.1} MiB", n / 1024.0 / 1024.0),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n} B"),
    }
}

/// Selects rustls' crypto provider once per process. Two TLS stacks are linked
/// (kube-rs and the AWS SDK), so rustls cannot pick one by itself.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another part of the process installed one first: fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
