//! `lifeboat location add|get|check|remove`.

use frontend::model::{Items, LocationView};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;

use super::{Api, confirm, human_bytes};

#[derive(Subcommand, Debug)]
pub enum LocationCommand {
    /// Add a storage location: a directory on the server (--path) or an S3
    /// bucket (--bucket). The server checks it (list, write, delete) before
    /// saving it, and lists the backups already in it.
    Add {
        name: String,
        /// An absolute directory on the server.
        #[arg(long, conflicts_with_all = ["bucket", "endpoint"])]
        path: Option<String>,
        #[arg(long)]
        bucket: Option<String>,
        /// http(s)://host:port of an S3-compatible server; empty for AWS.
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        prefix: Option<String>,
        /// Virtual-hosted addressing instead of path-style (AWS).
        #[arg(long)]
        virtual_hosted: bool,
        #[arg(long)]
        access_key_id: Option<String>,
        /// A file holding the secret access key (or set
        /// LIFEBOAT_LOCATION_SECRET_ACCESS_KEY); never a command-line value.
        #[arg(long)]
        secret_access_key_file: Option<PathBuf>,
        /// Store archives unencrypted (they are still signed). Not
        /// recommended: anyone with access to the bucket reads Secrets' values.
        #[arg(long)]
        no_encryption: bool,
        /// Lock every backup with S3 Object Lock until it expires, in this
        /// mode; refused unless the bucket was created with object lock.
        #[arg(long, value_name = "governance|compliance", value_parser = ["governance", "compliance"])]
        immutable: Option<String>,
    },
    /// List locations with availability and usage, or show one.
    Get { name: Option<String> },
    /// Check a location now (list, write, delete).
    Check { name: String },
    /// Show the location's recovery key (the volume repository's), once.
    RecoveryKey { name: String },
    /// Supply the recovery key of a bucket whose volume repository another
    /// install made (from a file, never a command-line value); a key that does
    /// not open it changes nothing.
    SetKey {
        name: String,
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Print the age identity that decrypts a location's archives, from its
    /// recovery key in a file (offline; for keys made before archives were
    /// encrypted, which are not age identities themselves):
    /// `age -d -i <(lifeboat location archive-identity --key-file K) resources.tar.zst`.
    ArchiveIdentity {
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Remove a location from Lifeboat; its objects stay in the bucket or directory.
    Remove {
        name: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run_location(server: &str, command: LocationCommand) -> Result<()> {
    let api = Api::new(server);
    let base = "/api/v1/storage-locations";
    match command {
        LocationCommand::ArchiveIdentity { key_file } => {
            let key = std::fs::read_to_string(&key_file)
                .with_context(|| format!("reading {}", key_file.display()))?;
            let key = lifeboat::archive::ArchiveKey::from_recovery_key(&key)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key_file.display()))?;
            println!("# key {}", key.key_id());
            println!("{}", key.identity_secret());
        }
        LocationCommand::Add {
            name,
            path,
            bucket,
            endpoint,
            region,
            prefix,
            virtual_hosted,
            access_key_id,
            secret_access_key_file,
            no_encryption,
            immutable,
        } => {
            let secret = match secret_access_key_file {
                Some(file) => Some(
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?
                        .trim()
                        .to_string(),
                ),
                None => std::env::var("LIFEBOAT_LOCATION_SECRET_ACCESS_KEY").ok(),
            };
            let mut body = match path {
                Some(path) => json!({"name": name, "kind": "local", "path": path}),
                None => json!({"name": name, "kind": "s3", "bucket": bucket, "endpoint": endpoint,
                    "region": region, "prefix": prefix, "pathStyle": !virtual_hosted,
                    "accessKeyId": access_key_id, "secretAccessKey": secret}),
            };
            if no_encryption {
                body["encryption"] = json!("none");
            }
            if let Some(mode) = immutable {
                body["immutable"] = json!(true);
                body["lockMode"] = json!(mode);
            }
            let added = api
                .json(api.request(reqwest::Method::POST, base).json(&body))
                .await?;
            let imported = added["imported"].as_array().map_or(0, Vec::len);
            println!(
                "storage location {name} added: available; {imported} backup(s) already in it are now listed"
            );
            if let Some(key) = added["recoveryKey"].as_str() {
                println!("\nrecovery key: {key}");
            }
            if let Some(notice) = added["notice"].as_str() {
                println!("{notice}");
            }
        }
        LocationCommand::Get { name: None } => {
            let list = api.json(api.request(reqwest::Method::GET, base)).await?;
            if super::printed_structured(&list)? {
                return Ok(());
            }
            println!(
                "{:<20} {:<6} {:<13} {:>8} {:>10}  WHERE",
                "NAME", "KIND", "AVAILABILITY", "BACKUPS", "USED"
            );
            let list: Items<LocationView> = super::read_as(&list, "list of locations")?;
            for l in &list.items {
                let place = l.config.place();
                println!(
                    "{:<20} {:<6} {:<13} {:>8} {:>10}  {place}",
                    l.name,
                    l.kind,
                    l.availability,
                    l.backups,
                    human_bytes(l.used_bytes),
                );
            }
        }
        LocationCommand::Get { name: Some(name) } => {
            let l = api
                .json(api.request(reqwest::Method::GET, &format!("{base}/{name}")))
                .await?;
            if super::printed_structured(&l)? {
                return Ok(());
            }
            println!("{}", serde_json::to_string_pretty(&l)?);
        }
        LocationCommand::Check { name } => {
            let l = api
                .json(api.request(reqwest::Method::POST, &format!("{base}/{name}/check")))
                .await?;
            let state = l["availability"].as_str().unwrap_or_default();
            let reason = l["availabilityReason"].as_str().unwrap_or_default();
            println!("storage location {name} is {state} {reason}");
            if state != "available" {
                bail!("storage location {name} is unavailable: {reason}");
            }
        }
        LocationCommand::RecoveryKey { name } => {
            let shown = api
                .json(api.request(
                    reqwest::Method::POST,
                    &format!("{base}/{name}/recovery-key"),
                ))
                .await?;
            println!(
                "recovery key of {name}: {}\n{}",
                shown["recoveryKey"].as_str().unwrap_or_default(),
                shown["warning"].as_str().unwrap_or_default()
            );
        }
        LocationCommand::SetKey { name, key_file } => {
            let key = std::fs::read_to_string(&key_file)
                .with_context(|| format!("reading {}", key_file.display()))?;
            api.send(
                api.request(reqwest::Method::PUT, &format!("{base}/{name}/recovery-key"))
                    .json(&json!({"recoveryKey": key.trim()})),
            )
            .await?;
            println!("the recovery key opens the volume repository of {name}; it is now used");
        }
        LocationCommand::Remove { name, yes } => {
            if !yes {
                confirm(
                    &format!("remove storage location {name}? its objects stay where they are."),
                    &name,
                    "nothing was removed",
                )?;
            }
            api.send(api.request(reqwest::Method::DELETE, &format!("{base}/{name}")))
                .await?;
            println!(
                "storage location {name} removed; its backups stay in it (add it again to list them)"
            );
        }
    }
    Ok(())
}
