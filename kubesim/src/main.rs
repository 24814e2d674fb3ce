//! `kubesim`: run the simulator from the command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kubesim::{Controllers, Kubesim, Options};

#[derive(Parser, Debug)]
#[command(
    name = "kubesim",
    about = "A Kubernetes API server simulator for tests and demos"
)]
struct Cli {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    http: bool,
    /// Bearer token clients must send (generated when absent).
    #[arg(long)]
    token: Option<String>,
    /// Where to write a kubeconfig for this simulator.
    #[arg(long, default_value = "kubesim.kubeconfig")]
    kubeconfig: PathBuf,
    /// Multi-document YAML manifests to load at start.
    #[arg(long)]
    seed: Vec<PathBuf>,
    /// Load the demo cluster.
    #[arg(long)]
    demo: bool,
    /// Save objects to this file and load them from it at start.
    #[arg(long)]
    persist: Option<PathBuf>,
    /// Answer 403 for this group-resource (`secrets`, `deployments.apps`), like a restricted ServiceAccount.
    #[arg(long)]
    forbid: Vec<String>,
    /// Run only the API server's own controllers (GC, namespaces): no workloads, volumes or kubelet.
    #[arg(long)]
    api_only: bool,
    /// Answer writes this many milliseconds later, like a remote API server.
    #[arg(long, default_value_t = 0)]
    write_latency_ms: u64,
    /// Serve at most this many mutating requests at once, like the priority
    /// level of API Priority and Fairness (kube-apiserver's
    /// `--max-mutating-requests-inflight`); 0: no limit.
    #[arg(long, default_value_t = 0)]
    max_mutating_requests_inflight: usize,
    /// Writes that may wait for a seat; past that they get 429 with `Retry-After`.
    #[arg(long, default_value_t = 0)]
    mutating_queue_length: usize,
    /// Serve no `metrics.k8s.io` (a cluster without metrics-server).
    #[arg(long)]
    no_metrics_server: bool,
    /// Keep real volume data under this directory: a directory per
    /// provisioned PV and each node's kubelet layout of its pods' volumes
    /// (`nodes/<node>/kubelet`, what a node agent reads).
    #[arg(long)]
    volume_data: Option<PathBuf>,
    /// Static tokens, as kube-apiserver's `--token-auth-file`: lines of
    /// `token,user,uid,"group1,group2"`; their requests go through RBAC.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let resumed = cli.persist.as_ref().is_some_and(|p| p.exists());
    let identities = kubesim::authn::Identities::default();
    if let Some(path) = &cli.token_auth_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        for (token, user) in kubesim::authn::parse_token_file(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        {
            identities.insert(&token, user);
        }
    }
    let sim = Kubesim::start(Options {
        port: cli.port,
        tls: !cli.http,
        token: cli.token,
        controllers: Controllers {
            volume_data: cli.volume_data,
            ..if cli.api_only {
                Controllers::api_only()
            } else {
                Controllers::all()
            }
        },
        restart_interval: Duration::from_secs(15),
        bookmark_interval: Duration::from_secs(5),
        persist: cli.persist,
        history: kubesim::store::HISTORY,
        forbidden: cli.forbid,
        certificates: None,
        write_latency: Duration::from_millis(cli.write_latency_ms),
        write_limit: (cli.max_mutating_requests_inflight > 0).then_some(
            kubesim::flowcontrol::WriteLimit {
                seats: cli.max_mutating_requests_inflight,
                queue: cli.mutating_queue_length,
            },
        ),
        identities,
        metrics_server: !cli.no_metrics_server,
    })
    .await?;
    if !resumed {
        if cli.demo {
            kubesim::seed::apply(&sim.store, kubesim::seed::parse(kubesim::seed::DEMO)?)?;
        }
        for path in &cli.seed {
            kubesim::seed::load_file(&sim.store, path)?;
        }
    }
    sim.write_kubeconfig(&cli.kubeconfig)?;
    println!(
        "kubesim serving {} (kubeconfig: {})",
        sim.url,
        cli.kubeconfig.display()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
