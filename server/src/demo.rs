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

/// Why the demo's node agents did not start.
#[derive(Debug, thiserror::Error)]
enum AgentStartError {
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("the simulated cluster refused: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Request(#[from] axum::http::Error),
    #[error("finding this program: {0}")]
    Io(#[from] std::io::Error),
    #[error("starting the agent for {node}: {source}")]
    Spawn {
        node: String,
        source: std::io::Error,
    },
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

/// The node agents' identity, as `docker/agent.yaml` and `docker/rbac.yaml` make it.
const AGENT_IDENTITY: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: lifeboat
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: lifeboat-agent
  namespace: lifeboat
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: lifeboat-node-agent
rules:
- apiGroups: ["lifeboat.io"]
  resources: ["volumedata"]
  verbs: ["update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: lifeboat-node-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: lifeboat-node-agent
subjects:
- kind: ServiceAccount
  name: lifeboat-agent
  namespace: lifeboat
"#;

/// Who may do what, as shipped: the drill identity's role and binding come
/// from here, so the demo's drills run as they would on a real cluster.
const RBAC: &str = include_str!("../../docker/rbac.yaml");

/// The drill identity's ClusterRole and binding, from [`RBAC`].
fn drill_identity() -> Result<Vec<serde_json::Value>, DemoError> {
    let objects = kubesim::seed::parse(RBAC).map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
    Ok(objects
        .into_iter()
        .filter(|o| o["metadata"]["name"] == "lifeboat-drill")
        .collect())
}

/// One `lifeboat agent` process per simulated node — the DaemonSet's code
/// path, with `--node` and `--kubelet-root` — each signed in with a token
/// bound to its pod (`lifeboat-agent-<node>`) on that node. Killed with the demo.
async fn start_agents(
    client: &kube::Client,
    volume_data: &std::path::Path,
    server: &str,
    log_format: crate::config::LogFormat,
) -> Result<Vec<tokio::process::Child>, AgentStartError> {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::api::{Api, PostParams};
    let exe = std::env::current_exe()?;
    // The agents are this executable run as `lifeboat agent`: a program
    // that embeds the demo (a benchmark) would start itself again instead.
    if exe.file_stem().and_then(|s| s.to_str()) != Some("lifeboat") {
        tracing::warn!(
            exe = %exe.display(),
            "node agents not started: the demo runs inside a program that is not `lifeboat`; volume data cannot be backed up"
        );
        return Ok(Vec::new());
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "lifeboat");
    let mut children = Vec::new();
    for node in nodes.list(&Default::default()).await? {
        let node = node.metadata.name.unwrap_or_default();
        let name = format!("lifeboat-agent-{node}");
        let pod = match pods.get_opt(&name).await? {
            Some(pod) => pod,
            None => {
                let pod: Pod = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "lifeboat-agent"}},
                    "spec": {"nodeName": node, "serviceAccountName": "lifeboat-agent",
                             "containers": [{"name": "agent", "image": "lifeboat:latest"}]},
                }))?;
                pods.create(&PostParams::default(), &pod).await?
            }
        };
        let request = serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 86400, "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                     "name": name, "uid": pod.metadata.uid.unwrap_or_default()}},
        });
        let answer: serde_json::Value = client
            .request(
                axum::http::Request::post(
                    "/api/v1/namespaces/lifeboat/serviceaccounts/lifeboat-agent/token",
                )
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&request)?)?,
            )
            .await?;
        let token = answer["status"]["token"].as_str().unwrap_or_default();
        let mut command = tokio::process::Command::new(&exe);
        command
            .arg("agent")
            .args(["--server", server, "--node", &node])
            .arg("--kubelet-root")
            .arg(kubesim::controllers::kubelet_root(volume_data, &node))
            .env("LIFEBOAT_TOKEN", token)
            // The agents' lines read like the server's beside them.
            .env("LIFEBOAT_LOG_FORMAT", log_format.resolved().as_str())
            .kill_on_drop(true);
        // The agents go with the demo, however it ends (even SIGKILL).
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = command
            .spawn()
            .map_err(|source| AgentStartError::Spawn { node, source })?;
        children.push(child);
    }
    Ok(children)
}

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
        let agents = kubesim::seed::parse(AGENT_IDENTITY)
            .map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
        kubesim::seed::apply(&sim.store, agents)
            .map_err(|e| DemoError::Simulator(format!("{e:#}")))?;
        kubesim::seed::apply(&sim.store, drill_identity()?)
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
    // The agents start once the server listens (its address is known then).
    // Absolute, as kubesim makes it: the agents resolve the kubelets' links from their own directory.
    let volume_data = std::path::absolute(config.data_dir.join("demo-volumes"))
        .map_err(|e| DemoError::Simulator(e.to_string()))?;
    let agents = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let on_listening: Box<dyn FnOnce(String) + Send> = {
        let (agents, demo_config) = (agents.clone(), demo_config.clone());
        Box::new(move |url: String| {
            tokio::spawn(async move {
                let started = match crate::cluster::Cluster::connect(
                    demo_config.kubeconfig.as_deref(),
                    demo_config.kube_context.as_deref(),
                )
                .await
                {
                    Ok(cluster) => {
                        let format = demo_config.log_format;
                        start_agents(&cluster.client, &volume_data, &url, format).await
                    }
                    Err(e) => Err(e.into()),
                };
                match started {
                    Ok(children) => {
                        tracing::info!(agents = children.len(), "node agents started");
                        agents.lock().await.extend(children);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the demo's node agents did not start; volume data will be skipped")
                    }
                }
            });
        })
    };
    let served = serve(&demo_config, Some(&sim.token), Some(on_listening)).await;
    agents.lock().await.clear();
    drop(sim);
    Ok(served?)
}
