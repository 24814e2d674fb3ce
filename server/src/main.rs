//! The `lifeboat` command.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lifeboat::config::{self, Config, LogFormat};

#[derive(Parser, Debug)]
#[command(name = "lifeboat", version = lifeboat::VERSION, about = "Kubernetes backup, disaster recovery and cluster health")]
struct Cli {
    /// The Lifeboat server the client commands talk to (like kubectl's
    /// --server, accepted anywhere on the line).
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8080",
        env = "LIFEBOAT_SERVER"
    )]
    server: String,
    /// The bearer token the client commands sign in with (default: the
    /// current kubeconfig user's token).
    #[arg(long, global = true, env = "LIFEBOAT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How `get`, `describe` and `install --dry-run` print: table (for
    /// people), json or yaml (the API's objects, for scripts).
    #[arg(short = 'o', long, global = true, value_enum, default_value_t)]
    output: cli::Output,
    #[command(subcommand)]
    command: Command,
}

/// Flags of the commands that run the server or read its configuration;
/// the client commands do not take them.
#[derive(clap::Args, Debug, Default)]
struct ServerFlags {
    /// Configuration file (default: ./lifeboat.toml when present).
    #[arg(long, env = "LIFEBOAT_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: the SQLite catalog and local backups (default ./lifeboat-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen address of the web UI and API (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// Catalog database: sqlite://… or postgres://….
    #[arg(long)]
    database_url: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    context: Option<String>,
    /// Log lines as text or JSON (default auto: text on a terminal, JSON otherwise).
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the web UI and API against the configured cluster.
    Serve(ServerFlags),
    /// Start a simulated demo cluster (kubesim) and serve Lifeboat against it.
    Demo(ServerFlags),
    /// Print the version, the git commit and whether the browser bundle was found.
    Version,
    /// Print a shell completion script: `source <(lifeboat completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Back up now, list, inspect, download and delete backups (talks to a running server).
    Backup {
        #[command(subcommand)]
        command: Box<cli::backup::BackupCommand>,
    },
    /// Restore from a backup, or list restores (talks to a running server).
    Restore {
        #[command(subcommand)]
        command: Box<cli::restore::RestoreCommand>,
    },
    /// Backups on a cron schedule with retention: create, list, pause, resume, delete.
    Schedule {
        #[command(subcommand)]
        command: Box<cli::schedule::ScheduleCommand>,
    },
    /// Storage locations: add (a directory or an S3 bucket), list, check, remove.
    Location {
        #[command(subcommand)]
        command: Box<cli::location::LocationCommand>,
    },
    /// Render Lifeboat's manifests (namespace, RBAC, Deployment, Service,
    /// data claim, agents' DaemonSet, Secrets) for the options chosen and
    /// apply them with server-side apply (or print them: --dry-run -o yaml).
    Install(cli::install::InstallFlags),
    /// Remove what `install` applied (the data claim only with
    /// --delete-data; never the bucket).
    Uninstall {
        #[command(flatten)]
        flags: cli::install::InstallFlags,
        /// Also delete the namespace and the data claim (the catalog, and
        /// backups kept on it when no bucket is used).
        #[arg(long)]
        delete_data: bool,
    },
    /// Webhook notifications of failures, recoveries and missed schedules.
    Notification {
        #[command(subcommand)]
        command: Box<cli::notification::NotificationCommand>,
    },
    /// Run the node agent (one per node, a DaemonSet): it backs up and
    /// restores the volume data of the pods on its node, for the server at --server.
    Agent(AgentFlags),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(clap::Args, Debug)]
struct AgentFlags {
    /// The node this agent serves (the DaemonSet sets it from spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    node: String,
    /// The kubelet's root directory as mounted into the agent.
    #[arg(long, default_value = "/var/lib/kubelet")]
    kubelet_root: PathBuf,
    /// The agent's token, re-read as it rotates (ignored when --token is given).
    #[arg(
        long,
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    token_file: PathBuf,
    /// A PEM CA bundle that signs the server's certificate (for https://).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Log lines as text or JSON (default auto: text on a terminal, JSON
    /// otherwise); `lifeboat demo` passes its own on.
    #[arg(long, value_enum, env = "LIFEBOAT_LOG_FORMAT", default_value = "auto")]
    log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the effective configuration, secrets masked.
    Show(ServerFlags),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = cli.server;
    let token = cli.token.clone();
    cli::set_token(cli.token);
    cli::set_output(cli.output);
    match cli.command {
        Command::Version => {
            println!("lifeboat {}", lifeboat::VERSION);
            println!(
                "commit: {}",
                lifeboat::commit().unwrap_or("unknown (built outside a git checkout)")
            );
            // Where `serve` will look: LIFEBOAT_SITE_DIR, else next to the binary.
            let configured = std::env::var_os("LIFEBOAT_SITE_DIR").map(std::path::PathBuf::from);
            let site = lifeboat::http::ui::find_site_dir(configured.as_deref());
            match lifeboat::http::ui::bundle_state(site.as_deref()) {
                Ok(dir) => println!("browser bundle: found in {}", dir.display()),
                Err(why) => println!("browser bundle: NOT FOUND: {why}"),
            }
            ExitCode::SUCCESS
        }
        Command::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "lifeboat",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Config {
            command: ConfigCommand::Show(flags),
        } => match load_config(&flags) {
            Ok(config) => {
                print!("{}", config.to_masked_toml());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Backup { command } => run_client(cli::backup::run(&server, *command)),
        Command::Restore { command } => run_client(cli::restore::run_restore(&server, *command)),
        Command::Schedule { command } => run_client(cli::schedule::run_schedule(&server, *command)),
        Command::Location { command } => run_client(cli::location::run_location(&server, *command)),
        Command::Notification { command } => {
            run_client(cli::notification::run_notification(&server, *command))
        }
        Command::Install(flags) => run_client(cli::install::install(flags)),
        Command::Uninstall { flags, delete_data } => {
            run_client(cli::install::uninstall(flags, delete_data))
        }
        Command::Agent(flags) => run_agent(server, token, flags),
        Command::Serve(flags) => match load_config(&flags) {
            Ok(config) => run_serve(&config, false),
            Err(code) => code,
        },
        Command::Demo(flags) => match load_config(&flags) {
            Ok(config) => run_serve(&config, true),
            Err(code) => code,
        },
    }
}

/// The configuration from its layers; a bad one prints why and exits 2.
fn load_config(cli: &ServerFlags) -> Result<Config, ExitCode> {
    let mut flags: Vec<(&str, String)> = Vec::new();
    if let Some(v) = &cli.data_dir {
        flags.push(("data_dir", v.display().to_string()));
    }
    if let Some(v) = &cli.listen {
        flags.push(("listen", v.clone()));
    }
    if let Some(v) = &cli.database_url {
        flags.push(("database_url", v.clone()));
    }
    if let Some(v) = &cli.kubeconfig {
        flags.push(("kubeconfig", v.display().to_string()));
    }
    if let Some(v) = &cli.context {
        flags.push(("kube_context", v.clone()));
    }
    if let Some(v) = cli.log_format {
        flags.push(("log_format", v.as_str().to_string()));
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    config::load(cli.config.as_deref(), &env, &flags).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn run_client(work: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<cli::PartiallyFailed>().is_some() => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::EXIT_PARTIALLY_FAILED)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_agent(server: String, token: Option<String>, flags: AgentFlags) -> ExitCode {
    {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let filter = tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // The collector sees warnings whatever LIFEBOAT_LOG shows.
        let registry =
            tracing_subscriber::registry().with(lifeboat::volumes::agent::WarningCollector);
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        match flags.log_format.resolved() {
            LogFormat::Json => registry.with(lines.json().with_filter(filter)).init(),
            _ => registry.with(lines.with_filter(filter)).init(),
        }
    }
    lifeboat::install_crypto_provider();
    let mut http = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10));
    if let Some(path) = &flags.ca_file {
        let certificate = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string()));
        match certificate {
            Ok(certificate) => http = http.add_root_certificate(certificate),
            Err(e) => {
                eprintln!("error: cannot read the CA bundle {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    let http = match http.build() {
        Ok(http) => http,
        Err(e) => {
            eprintln!("error: cannot build the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = match token {
        Some(token) => lifeboat::volumes::remote::TokenSource::Fixed(token),
        None => lifeboat::volumes::remote::TokenSource::File(flags.token_file.clone()),
    };
    if let Err(e) = token.token() {
        eprintln!(
            "error: cannot read the agent's token ({e}); give --token, or --token-file with the \
             pod's projected ServiceAccount token"
        );
        return ExitCode::from(2);
    }
    let agent = lifeboat::volumes::agent::Agent {
        client: lifeboat::volumes::remote::AgentClient {
            http,
            server: server.trim_end_matches('/').to_string(),
            token,
        },
        node: flags.node,
        kubelet_root: flags.kubelet_root,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Every line names the node: `agent{node=…}:` in text, `span.node` in JSON.
    let span = tracing::info_span!("agent", node = %agent.node);
    runtime.block_on(tracing::Instrument::instrument(
        async {
            tokio::select! {
                () = agent.run() => {}
                _ = tokio::signal::ctrl_c() => tracing::info!("agent stopping"),
            }
        },
        span,
    ));
    ExitCode::SUCCESS
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, never in a file or a collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log_format.resolved() {
        LogFormat::Json => builder.json().init(),
        _ => builder.init(),
    }
}

#[cfg(feature = "demo")]
async fn run_demo(config: &Config) -> anyhow::Result<()> {
    Ok(lifeboat::demo::run(config).await?)
}

/// A build without the simulator (`--no-default-features`) has no demo.
#[cfg(not(feature = "demo"))]
async fn run_demo(_: &Config) -> anyhow::Result<()> {
    anyhow::bail!(
        "this lifeboat was built without the simulated demo cluster; \
         build it with the `demo` feature (the default) to run `lifeboat demo`"
    )
}

fn run_serve(config: &Config, demo: bool) -> ExitCode {
    init_logging(config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if demo {
        runtime.block_on(run_demo(config))
    } else {
        runtime
            .block_on(lifeboat::serve::serve(config, None, None))
            .map_err(anyhow::Error::from)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot serve");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
