//! Lifeboat: Kubernetes backup, disaster recovery and cluster health.
//!
//! The map of this crate is `docs/ARCHITECTURE.md`.

pub mod backup;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod health;
pub mod http;
pub mod restore;
pub mod schedule;
pub mod serve;
pub mod storage;

/// The version printed by `lifeboat version` and recorded in every backup manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Selects rustls' crypto provider once per process. Two TLS stacks are linked
/// (kube-rs and the AWS SDK), so rustls cannot pick one by itself.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another part of the process installed one first: fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
