//! `lifeboat demo`: a living cluster without owning one. Starts kubesim with
//! its demo seed on 127.0.0.1 (HTTPS, its own CA and token), writes a
//! kubeconfig for it into the data directory, and serves Lifeboat against it
//! through that kubeconfig — the same path as a real cluster.

use crate::config::Config;
use crate::serve::{StartError, serve};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("starting the simulated cluster failed: {0}")]
    Simulator(String),
    #[error(transparent)]
    Serve(#[from] StartError),
}

/// Runs the demo until SIGTERM or Ctrl-C.
pub async fn run(config: &Config) -> Result<(), DemoError> {
    crate::serve::prepare_data_dir(config)?;
    let persist = config.data_dir.join("demo-cluster.json");
    let resumed = persist.exists();
    let sim = kubesim::Kubesim::start(kubesim::Options {
        persist: Some(persist),
        ..Default::default()
    })
    .await
    .map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
    if !resumed {
        let objects = kubesim::seed::parse(kubesim::seed::DEMO)
            .map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
        kubesim::seed::apply(&sim.store, objects)
            .map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
    }
    let kubeconfig = config.data_dir.join("demo.kubeconfig");
    sim.write_kubeconfig(&kubeconfig)
        .map_err(|e| DemoError::Simulator(format!("writing {}: {e}", kubeconfig.display())))?;
    tracing::info!(cluster = %sim.url, kubeconfig = %kubeconfig.display(), resumed, "demo cluster running");
    println!(
        "demo cluster at {} (kubeconfig: {}; try `kubectl --kubeconfig {} get pods -A`)",
        sim.url,
        kubeconfig.display(),
        kubeconfig.display()
    );
    let mut demo_config = config.clone();
    demo_config.kubeconfig = Some(kubeconfig);
    demo_config.kube_context = None;
    let served = serve(&demo_config).await;
    drop(sim);
    Ok(served?)
}
