//! `lifeboat backup …`: the CLI side of the JSON API. It talks to a running
//! server (`--server`, default http://127.0.0.1:8080; a token from
//! LIFEBOAT_TOKEN is sent as a bearer token), except `inspect`, which reads a
//! downloaded archive offline.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use lifeboat::archive;
use serde_json::{Value, json};

/// What a backup or restore selects; the same flags for both.
#[derive(clap::Args, Debug)]
pub struct Filters {
    /// Namespaces (globs), comma-separated; default all.
    #[arg(long, value_delimiter = ',')]
    include_namespaces: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    exclude_namespaces: Vec<String>,
    /// Resources such as deployments.apps,secrets; default all.
    #[arg(long, value_delimiter = ',')]
    include_resources: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    exclude_resources: Vec<String>,
    /// Label selector, e.g. app=web.
    #[arg(long)]
    selector: Option<String>,
}

impl Filters {
    /// The filter fields of a backup or restore spec, as the API takes them.
    fn spec(&self) -> serde_json::Map<String, Value> {
        let v = json!({
            "includedNamespaces": self.include_namespaces, "excludedNamespaces": self.exclude_namespaces,
            "includedResources": self.include_resources, "excludedResources": self.exclude_resources,
            "labelSelector": self.selector,
        });
        v.as_object().cloned().unwrap_or_default()
    }
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Start a backup.
    Create {
        name: String,
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
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Delete a backup from storage and the catalog.
    Delete {
        name: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// List and verify a downloaded archive offline.
    Inspect {
        file: PathBuf,
        /// The backup's manifest.json, to check sizes, checksums and counts.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(server: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.trim_end_matches('/').to_string(),
            token: std::env::var("LIFEBOAT_TOKEN").ok(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach the Lifeboat server at {}; start it with `lifeboat serve` or pass --server URL",
                self.base
            )
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let message = body["error"].as_str().unwrap_or("no details");
        bail!("the server answered {status}: {message}")
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        Ok(self.send(req).await?.json().await?)
    }
}

/// Asks the user to type `name` to go ahead; anything else stops with `otherwise`.
fn confirm(question: &str, name: &str, otherwise: &str) -> Result<()> {
    eprint!("{question} type its name to confirm (or pass --yes): ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != name {
        bail!("not confirmed; {otherwise}");
    }
    Ok(())
}

fn human_bytes(n: i64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1} GiB", n / 1024.0 / 1024.0 / 1024.0),
        n if n >= 1024.0 * 1024.0 => format!("{:.1} MiB", n / 1024.0 / 1024.0),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n} B"),
    }
}

pub async fn run(server: &str, command: BackupCommand) -> Result<()> {
    let api = Api::new(server);
    match command {
        BackupCommand::Create {
            name,
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
            let body = json!({"name": name, "spec": spec});
            api.json(
                api.request(reqwest::Method::POST, "/api/v1/backups")
                    .json(&body),
            )
            .await?;
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
            print_table(&[b]);
            Ok(())
        }
        BackupCommand::Get { name: None } => {
            let list = api
                .json(api.request(reqwest::Method::GET, "/api/v1/backups"))
                .await?;
            print_table(
                list["items"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
            );
            Ok(())
        }
        BackupCommand::Describe { name } => {
            let b = api
                .json(api.request(reqwest::Method::GET, &format!("/api/v1/backups/{name}")))
                .await?;
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
        BackupCommand::Download { name, output } => {
            let path = output.unwrap_or_else(|| PathBuf::from(format!("{name}-resources.tar.zst")));
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
        BackupCommand::Inspect { file, manifest } => inspect(&file, manifest.as_deref()),
    }
}

async fn wait_for(api: &Api, name: &str) -> Result<()> {
    let stderr_is_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    loop {
        let b = api
            .json(api.request(reqwest::Method::GET, &format!("/api/v1/backups/{name}")))
            .await?;
        let phase = b["phase"].as_str().unwrap_or_default().to_string();
        let line = format!(
            "{phase}: {} objects, {}",
            b["itemsDone"].as_i64().unwrap_or(0),
            human_bytes(b["bytesDone"].as_i64().unwrap_or(0))
        );
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
                return Ok(());
            }
        }
    }
}

fn print_table(items: &[Value]) {
    println!(
        "{:<32} {:<16} {:>8} {:>10}  {:<24} EXPIRES",
        "NAME", "PHASE", "ITEMS", "SIZE", "CREATED"
    );
    for b in items {
        println!(
            "{:<32} {:<16} {:>8} {:>10}  {:<24} {}",
            b["name"].as_str().unwrap_or_default(),
            b["phase"].as_str().unwrap_or_default(),
            b["itemsDone"].as_i64().unwrap_or(0),
            b["sizeBytes"]
                .as_i64()
                .map(human_bytes)
                .unwrap_or_else(|| "-".into()),
            b["createdAt"].as_str().unwrap_or_default(),
            b["expiresAt"].as_str().unwrap_or("never"),
        );
    }
}

/// Counts the objects of an archive by group-resource, checking each is JSON.
struct Counts(std::collections::BTreeMap<String, u64>, u64);

impl archive::reader::Visitor for Counts {
    fn wants(&mut self, _: &archive::EntryName) -> bool {
        true
    }
    fn visit(&mut self, entry: archive::Entry) -> Result<(), archive::ArchiveError> {
        serde_json::from_slice::<Value>(&entry.data).map_err(|e| {
            archive::ArchiveError::Damaged {
                file: archive::RESOURCES_FILE.into(),
                message: format!("{} is not valid JSON: {e}", entry.name.path),
            }
        })?;
        *self.0.entry(entry.name.group_resource).or_default() += 1;
        self.1 += 1;
        Ok(())
    }
}

/// Lists and verifies a downloaded `resources.tar.zst` without a server,
/// through the same verifying reader as a restore.
pub fn inspect(file: &Path, manifest: Option<&Path>) -> Result<()> {
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
    let mut counts = Counts(Default::default(), 0);
    let expected = manifest
        .as_ref()
        .map(|m| {
            m.files
                .get(archive::RESOURCES_FILE)
                .cloned()
                .ok_or_else(|| anyhow!("the manifest lists no resources file"))
        })
        .transpose()?;
    let read = archive::reader::read_entries(
        std::io::BufReader::new(source),
        &mut counts,
        expected.as_ref(),
    )
    .map_err(|e| match e {
        archive::ArchiveError::Damaged { ref message, .. } if message.contains("the manifest") => {
            anyhow!("the archive does not match the manifest (damaged or from another backup): {e}")
        }
        e => anyhow!("{}: {e}", file.display()),
    })?;
    let Counts(counts, total) = counts;
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

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum RestoreCommand {
    /// Restore from a backup (plan first with --dry-run).
    Create {
        /// Name of the restore (default: <backup>-<timestamp>).
        name: Option<String>,
        #[arg(long)]
        from_backup: String,
        #[command(flatten)]
        filters: Filters,
        /// old:new, several allowed (comma-separated or repeated).
        #[arg(long)]
        namespace_mapping: Vec<String>,
        /// skip (default) or update.
        #[arg(long, default_value = "skip")]
        existing_resource_policy: String,
        /// Restore status fields too.
        #[arg(long)]
        restore_status: bool,
        /// Keep Services' node ports.
        #[arg(long)]
        preserve_node_ports: bool,
        /// Show the plan and stop.
        #[arg(long)]
        dry_run: bool,
        /// Restore these group-resources first, in this order (comma-separated).
        #[arg(long, value_delimiter = ',')]
        resource_priorities: Vec<String>,
        /// Wait for it to finish.
        #[arg(long)]
        wait: bool,
    },
    /// List restores, or show one with its plan and results.
    Get { name: Option<String> },
    /// Everything about one restore, as JSON.
    Describe { name: String },
    /// One line per item: action, result and message.
    Logs { name: String },
}

pub async fn run_restore(server: &str, command: RestoreCommand) -> Result<()> {
    let api = Api::new(server);
    match command {
        RestoreCommand::Create {
            name,
            from_backup,
            filters,
            namespace_mapping,
            existing_resource_policy,
            restore_status,
            preserve_node_ports,
            dry_run,
            resource_priorities,
            wait,
        } => {
            let mapping = lifeboat::restore::spec::parse_mapping(&namespace_mapping)
                .map_err(|e| anyhow!("--namespace-mapping: {}", e.message))?;
            let mut spec = filters.spec();
            for (k, v) in [
                ("backupName", json!(from_backup)),
                ("namespaceMapping", json!(mapping)),
                ("existingResourcePolicy", json!(existing_resource_policy)),
                ("restoreStatus", json!(restore_status)),
                ("preserveNodePorts", json!(preserve_node_ports)),
                ("dryRun", json!(dry_run)),
                ("resourcePriorities", json!(resource_priorities)),
            ] {
                spec.insert(k.into(), v);
            }
            let body = json!({"name": name, "spec": spec});
            let created = api
                .json(
                    api.request(reqwest::Method::POST, "/api/v1/restores")
                        .json(&body),
                )
                .await?;
            let name = created["name"].as_str().unwrap_or_default().to_string();
            println!("restore {name} started");
            if wait || dry_run {
                loop {
                    let r = api
                        .json(
                            api.request(reqwest::Method::GET, &format!("/api/v1/restores/{name}")),
                        )
                        .await?;
                    let phase = r["phase"].as_str().unwrap_or_default().to_string();
                    if lifeboat::restore::RestorePhase::parse(&phase)
                        .is_some_and(|p| p.is_running())
                    {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    print_plan(&r);
                    println!(
                        "{phase}{}",
                        r["phaseReason"]
                            .as_str()
                            .map(|s| format!(": {s}"))
                            .unwrap_or_default()
                    );
                    if phase == lifeboat::backup::BackupPhase::Failed.as_str() {
                        bail!("restore {name} failed");
                    }
                    return Ok(());
                }
            }
            Ok(())
        }
        RestoreCommand::Get { name: Some(name) } => {
            let r = api
                .json(api.request(reqwest::Method::GET, &format!("/api/v1/restores/{name}")))
                .await?;
            print_plan(&r);
            println!("{}", r["phase"].as_str().unwrap_or_default());
            Ok(())
        }
        RestoreCommand::Describe { name } => {
            let r = api
                .json(api.request(reqwest::Method::GET, &format!("/api/v1/restores/{name}")))
                .await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        RestoreCommand::Logs { name } => {
            let text = api
                .send(api.request(
                    reqwest::Method::GET,
                    &format!("/api/v1/restores/{name}/log"),
                ))
                .await?
                .text()
                .await?;
            for line in text.lines() {
                let i: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                println!(
                    "{:<9} {:<8} {}/{}/{} {}",
                    i["action"].as_str().unwrap_or_default(),
                    i["result"].as_str().unwrap_or("-"),
                    i["groupResource"].as_str().unwrap_or_default(),
                    i["namespace"].as_str().unwrap_or("-"),
                    i["name"].as_str().unwrap_or_default(),
                    i["message"]
                        .as_str()
                        .or(i["reason"].as_str())
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        RestoreCommand::Get { name: None } => {
            let list = api
                .json(api.request(reqwest::Method::GET, "/api/v1/restores"))
                .await?;
            println!("{:<40} {:<24} {:<16} CREATED", "NAME", "BACKUP", "PHASE");
            for r in list["items"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!(
                    "{:<40} {:<24} {:<16} {}",
                    r["name"].as_str().unwrap_or_default(),
                    r["backupName"].as_str().unwrap_or_default(),
                    r["phase"].as_str().unwrap_or_default(),
                    r["createdAt"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

fn print_plan(restore: &Value) {
    let Some(items) = restore["plan"]["items"].as_array() else {
        return;
    };
    println!(
        "{:<10} {:<9} {:<44} {:<20} NAME / DETAIL",
        "ACTION", "RESULT", "RESOURCE", "NAMESPACE"
    );
    for i in items.iter().filter(|i| i["action"] != "excluded") {
        let detail = match (i["message"].as_str(), i["diff"].as_array()) {
            (Some(m), _) => m.to_string(),
            (None, Some(d)) if !d.is_empty() => format!(
                "differs: {}",
                d.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        println!(
            "{:<10} {:<9} {:<44} {:<20} {} {detail}",
            i["action"].as_str().unwrap_or_default(),
            i["result"].as_str().unwrap_or("-"),
            i["groupResource"].as_str().unwrap_or_default(),
            i["namespace"].as_str().unwrap_or("-"),
            i["name"].as_str().unwrap_or_default(),
        );
    }
    println!("summary: {}", restore["plan"]["summary"]);
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Create a schedule: backups on a cron expression, with retention.
    Create {
        name: String,
        /// Five cron fields ("0 1 * * *") or a macro (@daily, @hourly, @weekly).
        #[arg(long)]
        schedule: String,
        /// IANA time zone of the expression (Europe/Berlin); default UTC.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[command(flatten)]
        filters: Filters,
        /// Cluster-scoped resources: auto, all or none.
        #[arg(long, default_value = "auto")]
        include_cluster_resources: String,
        /// Delete each backup this long after it ran (720h, 30d).
        #[arg(long)]
        ttl: Option<String>,
        /// Keep only the newest N successful backups.
        #[arg(long)]
        keep_last: Option<i64>,
        /// Write its backups to this storage location (default: `default`).
        #[arg(long)]
        storage_location: Option<String>,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
    },
    /// List schedules, or show one with its next runs and backups.
    Get { name: Option<String> },
    /// Stop running it (its backups stay).
    Pause { name: String },
    /// Run it again from the next slot on (slots passed meanwhile are not run).
    Resume { name: String },
    /// Delete the schedule (its backups stay).
    Delete {
        name: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run_schedule(server: &str, command: ScheduleCommand) -> Result<()> {
    let api = Api::new(server);
    match command {
        ScheduleCommand::Create {
            name,
            schedule,
            timezone,
            filters,
            include_cluster_resources,
            ttl,
            keep_last,
            storage_location,
            paused,
        } => {
            let mut template = filters.spec();
            template.insert(
                "includeClusterResources".into(),
                json!(include_cluster_resources),
            );
            template.insert("storageLocation".into(), json!(storage_location));
            let body = json!({"name": name, "schedule": schedule, "timezone": timezone,
                "template": template, "retention": {"ttl": ttl, "keepLast": keep_last}, "paused": paused});
            let created = api
                .json(
                    api.request(reqwest::Method::POST, "/api/v1/schedules")
                        .json(&body),
                )
                .await?;
            println!("schedule {name} created");
            print_next_runs(&created);
        }
        ScheduleCommand::Get { name: None } => {
            let list = api
                .json(api.request(reqwest::Method::GET, "/api/v1/schedules"))
                .await?;
            println!(
                "{:<24} {:<20} {:<18} {:<8} {:<26} NEXT RUN",
                "NAME", "SCHEDULE", "TIMEZONE", "PAUSED", "LAST RUN"
            );
            for s in list["items"].as_array().into_iter().flatten() {
                println!(
                    "{:<24} {:<20} {:<18} {:<8} {:<26} {}",
                    s["name"].as_str().unwrap_or_default(),
                    s["schedule"].as_str().unwrap_or_default(),
                    s["timezone"].as_str().unwrap_or_default(),
                    s["paused"].as_bool().unwrap_or(false),
                    s["lastRunAt"].as_str().unwrap_or("never"),
                    s["nextRuns"][0].as_str().unwrap_or("-"),
                );
            }
            let runner = &list["runner"];
            println!(
                "\nrunner: {} (leader here: {})",
                runner["mode"].as_str().unwrap_or("?"),
                runner["leader"]
            );
        }
        ScheduleCommand::Get { name: Some(name) } => {
            let s = api
                .json(api.request(reqwest::Method::GET, &format!("/api/v1/schedules/{name}")))
                .await?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        ScheduleCommand::Pause { name } => {
            api.json(api.request(
                reqwest::Method::POST,
                &format!("/api/v1/schedules/{name}/pause"),
            ))
            .await?;
            println!("schedule {name} paused");
        }
        ScheduleCommand::Resume { name } => {
            let s = api
                .json(api.request(
                    reqwest::Method::POST,
                    &format!("/api/v1/schedules/{name}/resume"),
                ))
                .await?;
            println!("schedule {name} resumed");
            print_next_runs(&s);
        }
        ScheduleCommand::Delete { name, yes } => {
            if !yes {
                confirm(
                    &format!("delete schedule {name}? its backups are kept."),
                    &name,
                    "nothing was deleted",
                )?;
            }
            api.send(api.request(
                reqwest::Method::DELETE,
                &format!("/api/v1/schedules/{name}"),
            ))
            .await?;
            println!("schedule {name} deleted; its backups were kept");
        }
    }
    Ok(())
}

fn print_next_runs(schedule: &Value) {
    let next: Vec<&str> = schedule["nextRuns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if next.is_empty() {
        println!("no upcoming runs (paused)");
    } else {
        println!("next runs: {}", next.join(", "));
    }
}

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
    },
    /// List locations with availability and usage, or show one.
    Get { name: Option<String> },
    /// Check a location now (list, write, delete).
    Check { name: String },
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
            let body = match path {
                Some(path) => json!({"name": name, "kind": "local", "path": path}),
                None => json!({"name": name, "kind": "s3", "bucket": bucket, "endpoint": endpoint,
                    "region": region, "prefix": prefix, "pathStyle": !virtual_hosted,
                    "accessKeyId": access_key_id, "secretAccessKey": secret}),
            };
            let added = api
                .json(api.request(reqwest::Method::POST, base).json(&body))
                .await?;
            let imported = added["imported"].as_array().map_or(0, Vec::len);
            println!(
                "storage location {name} added: available; {imported} backup(s) already in it are now listed"
            );
        }
        LocationCommand::Get { name: None } => {
            let list = api.json(api.request(reqwest::Method::GET, base)).await?;
            println!(
                "{:<20} {:<6} {:<13} {:>8} {:>10}  WHERE",
                "NAME", "KIND", "AVAILABILITY", "BACKUPS", "USED"
            );
            for l in list["items"].as_array().into_iter().flatten() {
                let c = &l["config"];
                let place = match c["path"].as_str() {
                    Some(p) => p.to_string(),
                    None => format!(
                        "s3://{}/{} {}",
                        c["bucket"].as_str().unwrap_or_default(),
                        c["prefix"].as_str().unwrap_or_default(),
                        c["endpoint"].as_str().unwrap_or("(AWS)")
                    ),
                };
                println!(
                    "{:<20} {:<6} {:<13} {:>8} {:>10}  {place}",
                    l["name"].as_str().unwrap_or_default(),
                    l["kind"].as_str().unwrap_or_default(),
                    l["availability"].as_str().unwrap_or_default(),
                    l["backups"],
                    human_bytes(l["usedBytes"].as_i64().unwrap_or(0)),
                );
            }
        }
        LocationCommand::Get { name: Some(name) } => {
            let l = api
                .json(api.request(reqwest::Method::GET, &format!("{base}/{name}")))
                .await?;
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
