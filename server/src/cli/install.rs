//! `lifeboat install` and `lifeboat uninstall`: the manifests of `docker/`
//! for the options chosen, printed (`--dry-run -o yaml|json`) or applied
//! with server-side apply through the kubeconfig.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use lifeboat::install::{Options, S3Options};

/// What `install` and `uninstall` take.
#[derive(clap::Args, Debug)]
pub struct InstallFlags {
    /// The namespace Lifeboat runs in.
    #[arg(long, default_value = "lifeboat")]
    namespace: String,
    /// The container image of the server and the agents (by default, this
    /// binary's version).
    #[arg(long, default_value_t = lifeboat::install::default_image())]
    image: String,
    /// Server replicas (more than one needs --database-url-file and --bucket).
    #[arg(long, default_value_t = 1)]
    replicas: u32,
    /// Leave out the node agents' DaemonSet (no volume data).
    #[arg(long)]
    no_agent: bool,
    /// A file holding the PostgreSQL URL of the catalog (kept in the Secret lifeboat-db).
    #[arg(long)]
    database_url_file: Option<PathBuf>,
    /// An S3 bucket as the default storage location (else the data claim).
    #[arg(long)]
    bucket: Option<String>,
    #[arg(long, requires = "bucket")]
    endpoint: Option<String>,
    #[arg(long, requires = "bucket")]
    region: Option<String>,
    #[arg(long, requires = "bucket")]
    prefix: Option<String>,
    #[arg(long, requires_all = ["bucket", "secret_access_key_file"])]
    access_key_id: Option<String>,
    /// A file holding the secret access key (kept in the Secret lifeboat-s3).
    #[arg(long, requires = "access_key_id")]
    secret_access_key_file: Option<PathBuf>,
    /// Size of the data claim (the SQLite catalog; backups without S3).
    #[arg(long, default_value = "1Gi")]
    data_size: String,
    /// Print the manifests instead of applying them.
    #[arg(long)]
    dry_run: bool,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    context: Option<String>,
}

fn read_secret(path: &PathBuf) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_string())
}

impl InstallFlags {
    fn options(&self) -> Result<Options> {
        let credentials = match (&self.access_key_id, &self.secret_access_key_file) {
            (Some(id), Some(file)) => Some((id.clone(), read_secret(file)?)),
            _ => None,
        };
        Ok(Options {
            namespace: self.namespace.clone(),
            image: self.image.clone(),
            replicas: self.replicas,
            agent: !self.no_agent,
            database_url: self
                .database_url_file
                .as_ref()
                .map(read_secret)
                .transpose()?,
            s3: self.bucket.as_ref().map(|bucket| S3Options {
                bucket: bucket.clone(),
                endpoint: self.endpoint.clone(),
                region: self.region.clone(),
                prefix: self.prefix.clone(),
                credentials,
            }),
            data_size: self.data_size.clone(),
        })
    }

    async fn client(&self) -> Result<kube::Client> {
        let config = lifeboat::config::Config {
            kubeconfig: self.kubeconfig.clone(),
            kube_context: self.context.clone(),
            ..Default::default()
        };
        Ok(lifeboat::cluster::Cluster::connect(
            config.kubeconfig.as_deref(),
            config.kube_context.as_deref(),
        )
        .await?
        .client)
    }
}

pub async fn install(flags: InstallFlags) -> Result<()> {
    let objects = flags.options()?.render()?;
    if flags.dry_run {
        let format = match super::output() {
            super::Output::Json => "json",
            super::Output::Table | super::Output::Yaml => "yaml",
        };
        print!("{}", lifeboat::install::print(&objects, format)?);
        return Ok(());
    }
    let client = flags.client().await?;
    let applied = lifeboat::install::apply(&client, &objects).await?;
    for name in &applied {
        println!("applied {name}");
    }
    println!(
        "Lifeboat installed in namespace {}: `kubectl -n {} port-forward svc/lifeboat 8080:80`, then http://127.0.0.1:8080",
        flags.namespace, flags.namespace
    );
    Ok(())
}

pub async fn uninstall(flags: InstallFlags, delete_data: bool) -> Result<()> {
    if flags.dry_run {
        bail!("uninstall has no --dry-run; `lifeboat install --dry-run` lists what it removes");
    }
    let objects = flags.options()?.render()?;
    let client = flags.client().await?;
    for name in lifeboat::install::remove(&client, &objects, delete_data).await? {
        println!("deleted {name}");
    }
    if !delete_data {
        println!(
            "kept namespace {} and its claim lifeboat-data (the catalog; --delete-data removes them); the bucket is never touched",
            flags.namespace
        );
    }
    Ok(())
}
