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

/// The demo's admin identity for the CLI: a ServiceAccount bound to cluster-admin.
const DEMO_ADMIN: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: demo-admin
  namespace: default
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: demo-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- kind: ServiceAccount
  name: demo-admin
  namespace: default
"#;

/// Runs the demo until SIGTERM or Ctrl-C.
pub async fn run(config: &Config) -> Result<(), DemoError> {
    crate::serve::prepare_data_dir(config)?;
    let persist = config.data_dir.join("demo-cluster.json");
    let resumed = persist.exists();
    let sim = kubesim::Kubesim::start(kubesim::Options {
        persist: Some(persist),
        // Volumes hold real files (the postgres replicas write to theirs).
        controllers: kubesim::Controllers {
            volume_data: Some(config.data_dir.join("demo-volumes")),
            ..kubesim::Controllers::all()
        },
        ..Default::default()
    })
    .await
    .map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
    if !resumed {
        let objects = kubesim::seed::parse(kubesim::seed::DEMO)
            .map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
        kubesim::seed::apply(&sim.store, objects)
            .map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
        // An admin ServiceAccount, for `kubectl create token demo-admin`.
        let admin =
            kubesim::seed::parse(DEMO_ADMIN).map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
        kubesim::seed::apply(&sim.store, admin)
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
    println!(
        "the CLI signs in with the demo cluster's admin: export KUBECONFIG={} (or LIFEBOAT_TOKEN=$(kubectl --kubeconfig {} create token demo-admin -n default))",
        demo_config
            .kubeconfig
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        demo_config
            .kubeconfig
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    let served = serve(&demo_config, Some(&sim.token)).await;
    drop(sim);
    Ok(served?)
}
