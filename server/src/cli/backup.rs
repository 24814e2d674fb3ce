//! `lifeboat backup create|get|describe|logs|download|delete|inspect`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use frontend::model::{BackupView, Items};
use lifeboat::archive;
use serde_json::{Value, json};

use super::{Api, Filters, confirm, human_bytes};

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Start a backup.
    Create {
        /// Its name (with --from-schedule, default: <schedule>-<timestamp>).
        #[arg(required_unless_present = "from_schedule")]
        name: Option<String>,
        /// Back up now with this schedule's template, as one of its backups.
        #[arg(long, conflicts_with_all = ["include_namespaces", "exclude_namespaces", "include_resources", "exclude_resources", "selector", "ttl", "storage_location"])]
        from_schedule: Option<String>,
        #[command(flatten)]
        filters: Filters,
        /// Cluster-scoped resources: auto, all or none.
        #[arg(long, default_value = "auto")]
        include_cluster_resources: String,
        /// Keep for this long (72h, 30d).
        #[arg(long)]
        ttl: Option<String>,
        /// Write it to this storage location (default: `default`).
        #[arg(long)]
        storage_location: Option<String>,
        /// Wait for it to finish, showing progress.
        #[arg(long)]
        wait: bool,
    },
    /// List backups, or show one.
    Get { name: Option<String> },
    /// Everything about one backup, its manifest included.
    Describe { name: String },
    /// The backup's log.
    Logs { name: String },
    /// Download the resources archive.
    Download {
        name: String,
        /// Where to write it (default `<name>-resources.tar.zst`); `-o` is
        /// the output format, as everywhere.
        #[arg(short, long)]
        file: Option<PathBuf>,
    },
    /// Delete a backup from storage and the catalog.
    Delete {
        name: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Read a backup back from storage and check everything: the manifest's
    /// signature, the archive (decrypted, every object), the log, and the
    /// volume data; the outcome is recorded on the backup.
    Verify {
        name: String,
        /// Read only a sample of the volume data (`10%`, `1/5`, or a size).
        #[arg(long)]
        sample: Option<String>,
    },
    /// Prove the backup restores: restore it into scratch namespaces
    /// (`<ns>-drill-<id>`), wait until what was ready is ready again, print
    /// what was checked, delete them. Exits non-zero when the drill fails.
    Drill {
        name: String,
        /// How long to wait for the workloads to be ready (90s, 10m).
        #[arg(long, default_value = "10m")]
        timeout: String,
        /// Start it and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// List and verify a downloaded archive offline.
    Inspect {
        file: PathBuf,
        /// The backup's manifest.json, to check sizes, checksums and counts.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// A file holding the location's recovery key, for an encrypted archive.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

pub async fn run(server: &str, command: BackupCommand) -> Result<()> {
    let api = Api::new(server);
    match command {
        BackupCommand::Create {
            name,
            from_schedule,
            filters,
            include_cluster_resources,
            ttl,
            storage_location,
            wait,
        } => {
            let mut spec = filters.spec();
            spec.insert(
                "includeClusterResources".into(),
                json!(include_cluster_resources),
            );
            spec.insert("ttl".into(), json!(ttl));
            spec.insert("storageLocation".into(), json!(storage_location));
            let body = match &from_schedule {
                Some(schedule) => {
                    json!({"name": name.unwrap_or_default(), "fromSchedule": schedule})
                }
                None => json!({"name": name, "spec": spec}),
            };
            let created = api
                .json(
                    api.request(reqwest::Method::POST, "/api/v1/backups")
                        .json(&body),
                )
                .await?;
            let name = created["name"].as_str().unwrap_or_default().to_string();
            println!("backup {name} started");
            if wait {
                wait_for(&api, &name).await?;
            }
            Ok(())
        }
        BackupCommand::Get { name: Some(name) } => {
            let b = api
                .json(api.request(reqwest::Method::GET, &format!("/api/v1/backups/{name}")))
                .await?;
            if super::printed_structured(&b)? {
                return Ok(());
            }
            print_table(&[super::read_as(&b, "backup")?]);
            Ok(())
        }
        BackupCommand::Get { name: None } => {
            let list = api
                .json(api.request(reqwest::Method::GET, "/api/v1/backups"))
                .await?;
            if super::printed_structured(&list)? {
                return Ok(());
            }
            let list: Items<BackupView> = super::read_as(&list, "list of backups")?;
            print_table(&list.items);
            Ok(())
        }
        BackupCommand::Describe { name } => {
            let b = api
                .json(api.request(reqwest::Method::GET, &format!("/api/v1/backups/{name}")))
                .await?;
            if super::printed_structured(&b)? {
                return Ok(());
            }
            println!("{}", serde_json::to_string_pretty(&b)?);
            Ok(())
        }
        BackupCommand::Logs { name } => {
            let text = api
                .send(api.request(reqwest::Method::GET, &format!("/api/v1/backups/{name}/log")))
                .await?
                .text()
                .await?;
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                println!(
                    "{} {:7} {}",
                    v["time"].as_str().unwrap_or_default(),
                    v["level"].as_str().unwrap_or_default(),
                    v["message"].as_str().unwrap_or(line)
                );
            }
            Ok(())
        }
        BackupCommand::Download { name, file } => {
            let path = file.unwrap_or_else(|| PathBuf::from(format!("{name}-resources.tar.zst")));
            let mut resp = api
                .send(api.request(
                    reqwest::Method::GET,
                    &format!("/api/v1/backups/{name}/download"),
                ))
                .await?;
            let tmp = path.with_extension("partial");
            let mut file = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let mut total = 0u64;
            while let Some(chunk) = resp.chunk().await? {
                file.write_all(&chunk)?;
                total += chunk.len() as u64;
            }
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            println!("wrote {} ({})", path.display(), human_bytes(total as i64));
            Ok(())
        }
        BackupCommand::Delete { name, yes } => {
            if !yes {
                confirm(
                    &format!("delete backup {name} from storage and the catalog?"),
                    &name,
                    "nothing was deleted",
                )?;
            }
            api.send(api.request(reqwest::Method::DELETE, &format!("/api/v1/backups/{name}")))
                .await?;
            println!("backup {name} deleted");
            Ok(())
        }
        BackupCommand::Verify { name, sample } => {
            let report = api
                .json(
                    api.request(
                        reqwest::Method::POST,
                        &format!("/api/v1/backups/{name}/verify"),
                    )
                    .json(&json!({"sample": sample})),
                )
                .await?;
            for line in report["checked"].as_array().into_iter().flatten() {
                println!("ok       {}", line.as_str().unwrap_or_default());
            }
            for line in report["problems"].as_array().into_iter().flatten() {
                println!("PROBLEM  {}", line.as_str().unwrap_or_default());
            }
            if report["ok"] != true {
                bail!("backup {name} failed verification; restore from another backup");
            }
            println!(
                "backup {name} verified at {}",
                report["verifiedAt"].as_str().unwrap_or_default()
            );
            Ok(())
        }
        BackupCommand::Drill {
            name,
            timeout,
            no_wait,
        } => drill(&api, &name, &timeout, no_wait).await,
        BackupCommand::Inspect {
            file,
            manifest,
            key_file,
        } => inspect(&file, manifest.as_deref(), key_file.as_deref()),
    }
}

async fn drill(api: &Api, name: &str, timeout: &str, no_wait: bool) -> Result<()> {
    let seconds = lifeboat::backup::spec::parse_ttl(timeout).ok_or_else(|| {
        anyhow!("--timeout `{timeout}` is not a duration; use forms such as 90s or 10m")
    })?;
    let started = api
        .json(
            api.request(
                reqwest::Method::POST,
                &format!("/api/v1/backups/{name}/drill"),
            )
            .json(&json!({"timeoutSeconds": seconds})),
        )
        .await?;
    let id = started["id"].as_str().unwrap_or_default().to_string();
    println!("drill {id} of backup {name} started");
    if no_wait {
        return Ok(());
    }
    let drill = loop {
        let drill = api
            .json(api.request(reqwest::Method::GET, &format!("/api/v1/drills/{id}")))
            .await?;
        if drill["phase"] != "Running" {
            break drill;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    for (from, to) in drill["namespaces"].as_object().into_iter().flatten() {
        println!("restored  {from} → {}", to.as_str().unwrap_or_default());
    }
    for check in drill["checks"].as_array().into_iter().flatten() {
        let mark = match (check["ok"].as_bool(), check["expected"].as_bool()) {
            (Some(true), _) => "ok      ",
            (_, Some(false)) => "not req.",
            _ => "FAILED  ",
        };
        println!(
            "{mark} {}: {}",
            check["object"].as_str().unwrap_or_default(),
            check["detail"].as_str().unwrap_or_default()
        );
    }
    if drill["phase"] != "Passed" {
        bail!(
            "drill {id} of backup {name} failed: {}",
            drill["reason"].as_str().unwrap_or("no reason recorded")
        );
    }
    println!(
        "drill {id} of backup {name} passed: {} objects, {} volumes, ready in {:.1} s; scratch namespaces {}",
        drill["objects"],
        drill["volumes"],
        drill["readyMs"].as_f64().unwrap_or(0.0) / 1000.0,
        if drill["cleanedAt"].is_string() {
            "deleted"
        } else {
            "being deleted"
        }
    );
    Ok(())
}

async fn wait_for(api: &Api, name: &str) -> Result<()> {
    let stderr_is_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    loop {
        let b = api
            .json(api.request(reqwest::Method::GET, &format!("/api/v1/backups/{name}")))
            .await?;
        let phase = b["phase"].as_str().unwrap_or_default().to_string();
        let mut line = format!(
            "{phase}: {} objects, {}",
            b["itemsDone"].as_i64().unwrap_or(0),
            human_bytes(b["bytesDone"].as_i64().unwrap_or(0))
        );
        let volumes = &b["progress"]["volumes"];
        let (done, total) = (
            volumes["bytesDone"].as_i64().unwrap_or(0),
            volumes["bytesTotal"].as_i64().unwrap_or(0),
        );
        if volumes["volumes"].as_array().is_some_and(|v| !v.is_empty()) {
            let running =
                lifeboat::backup::BackupPhase::parse(&phase).is_some_and(|p| p.is_running());
            line.push_str(&format!(
                "; volume data {} {} of {}",
                progress_bar(done, total, !running),
                human_bytes(done),
                human_bytes(total)
            ));
        }
        if stderr_is_tty {
            eprint!("\r\x1b[2K{line}");
        }
        match phase.as_str() {
            p if lifeboat::backup::BackupPhase::parse(p).is_some_and(|p| p.is_running()) => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            _ => {
                if stderr_is_tty {
                    eprintln!();
                }
                println!("{line}");
                if let Some(reason) = b["phaseReason"].as_str() {
                    println!("reason: {reason}");
                }
                if phase == lifeboat::backup::BackupPhase::Failed.as_str() {
                    bail!("backup {name} failed");
                }
                if phase == lifeboat::backup::BackupPhase::PartiallyFailed.as_str() {
                    // What did not make it, last, where a script's reader looks.
                    let b = api
                        .json(api.request(reqwest::Method::GET, &format!("/api/v1/backups/{name}")))
                        .await?;
                    for w in b["manifest"]["warnings"].as_array().into_iter().flatten() {
                        println!("WARNING {}", w.as_str().unwrap_or_default());
                    }
                    for v in b["manifest"]["volumes"].as_array().into_iter().flatten() {
                        if v["phase"] == "Failed" {
                            println!(
                                "FAILED volume {}/{}: {}",
                                v["namespace"].as_str().unwrap_or_default(),
                                v["pvc"].as_str().unwrap_or_default(),
                                v["reason"].as_str().unwrap_or("no reason given")
                            );
                        }
                    }
                    return Err(super::PartiallyFailed(format!(
                        "backup {name} partially failed (`lifeboat backup logs {name}` says what); \
                         what it holds restores, what failed does not"
                    ))
                    .into());
                }
                return Ok(());
            }
        }
    }
}

/// `[########------------] 40%` (a finished run with nothing to count is 100%).
pub(super) fn progress_bar(done: i64, total: i64, finished: bool) -> String {
    let ratio = if total > 0 {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    } else if finished {
        1.0
    } else {
        0.0
    };
    let filled = (ratio * 20.0).round() as usize;
    format!(
        "[{}{}] {:>3}%",
        "#".repeat(filled),
        "-".repeat(20 - filled),
        (ratio * 100.0).round() as u32
    )
}

fn print_table(items: &[BackupView]) {
    println!(
        "{:<32} {:<16} {:>8} {:>10}  {:<24} EXPIRES",
        "NAME", "PHASE", "ITEMS", "SIZE", "CREATED"
    );
    for b in items {
        println!(
            "{:<32} {:<16} {:>8} {:>10}  {:<24} {}",
            b.name,
            b.phase,
            b.items_done,
            b.size_bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
            b.created_at,
            b.expires_at.as_deref().unwrap_or("never"),
        );
    }
}

/// The start of every age file.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// Lists and verifies a downloaded `resources.tar.zst` without a server,
/// through the same verifying reader as a restore; an encrypted one with the
/// recovery key in `key_file`.
pub fn inspect(file: &Path, manifest: Option<&Path>, key_file: Option<&Path>) -> Result<()> {
    let key = key_file
        .map(|path| -> Result<archive::ArchiveKey> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the key file {}", path.display()))?;
            archive::ArchiveKey::from_recovery_key(&text)
                .map_err(|e| anyhow!("{}: {e}", path.display()))
        })
        .transpose()?;
    let manifest: Option<archive::Manifest> = match manifest {
        Some(path) => {
            let text =
                std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
            let mut bytes = Vec::new();
            text.take(archive::MAX_MANIFEST_BYTES + 1)
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            if bytes.len() as u64 > archive::MAX_MANIFEST_BYTES {
                bail!("{} is larger than a manifest can be", path.display());
            }
            Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a Lifeboat manifest", path.display()))?,
            )
        }
        None => None,
    };
    let source =
        std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let mut counts = archive::reader::Counts::default();
    let expected = manifest
        .as_ref()
        .map(|m| {
            m.files
                .get(archive::RESOURCES_FILE)
                .cloned()
                .ok_or_else(|| anyhow!("the manifest lists no resources file"))
        })
        .transpose()?;
    let mut source = std::io::BufReader::new(source);
    let sealed = std::io::BufRead::fill_buf(&mut source)
        .with_context(|| format!("reading {}", file.display()))?
        .starts_with(AGE_MAGIC);
    let encryption = match (&manifest, &key) {
        (Some(m), _) if m.encryption.is_some() || !sealed => m.encryption.clone(),
        (_, Some(key)) if sealed => Some(key.encryption()),
        _ if sealed => bail!(
            "{} is encrypted (age): pass --key-file with the recovery key of the backup's location",
            file.display()
        ),
        _ => None,
    };
    let opened = match (&encryption, &key) {
        (Some(e), Some(k)) => Some((k, e)),
        (Some(e), None) => bail!(
            "{} is encrypted to key {}: pass --key-file with the recovery key of the backup's location",
            file.display(),
            e.key_id
        ),
        (None, _) => None,
    };
    let read =
        archive::reader::read_entries_sealed(source, &mut counts, expected.as_ref(), opened)
            .map_err(|e| match e {
                archive::reader::SealedError::Archive(
                    e @ archive::ArchiveError::Damaged { .. },
                ) if e.to_string().contains("the manifest") => anyhow!(
                    "the archive does not match the manifest (damaged or from another backup): {e}"
                ),
                archive::reader::SealedError::Archive(e) => anyhow!("{}: {e}", file.display()),
                archive::reader::SealedError::Crypto(e) => anyhow!("{}: {e}", file.display()),
            })?;
    let total = counts.total();
    let counts = counts.per_kind;
    for (gr, n) in &counts {
        println!("{n:>8}  {gr}");
    }
    println!("{total:>8}  objects in total; sha256 {}", read.sha256);
    if let Some(m) = manifest {
        if m.resources != counts || m.items != total {
            bail!("the archive's object counts differ from the manifest's");
        }
        println!(
            "verified against the manifest of backup {} ({})",
            m.name, m.phase
        );
    }
    Ok(())
}
