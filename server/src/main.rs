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
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the web UI and API against the configured cluster.
    Serve(ServerFlags),
    /// Start a simulated demo cluster (kubesim) and serve Lifeboat against it.
    Demo(ServerFlags),
    /// Print the version.
    Version,
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
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the effective configuration, secrets masked.
    Show(ServerFlags),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = cli.server;
    cli::set_token(cli.token);
    match cli.command {
        Command::Version => {
            println!("lifeboat {}", lifeboat::VERSION);
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
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(feature = "demo")]
async fn run_demo(config: &Config) -> Result<(), String> {
    lifeboat::demo::run(config).await.map_err(|e| e.to_string())
}

/// A build without the simulator (`--no-default-features`) has no demo.
#[cfg(not(feature = "demo"))]
async fn run_demo(_: &Config) -> Result<(), String> {
    Err(
        "this lifeboat was built without the simulated demo cluster; \
         build it with the `demo` feature (the default) to run `lifeboat demo`"
            .into(),
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
            .block_on(lifeboat::serve::serve(config, None))
            .map_err(|e| e.to_string())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
