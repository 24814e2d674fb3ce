//! The crash campaign: `lifeboat demo` (the binary: kubesim's demo cluster,
//! Lifeboat and its node agents) with its default location on Garage
//! behind the [`FaultProxy`], SIGKILLed at random moments of backups,
//! restores and deletions, and started again; storage faults injected
//! during backups. After every fault the invariants of `docs/RELIABILITY.md`
//! are checked, and each broken one is counted in the fault's row:
//! - every backup marked Completed verifies (archive and every volume blob
//!   read back) and the newest restores Completed into a scratch namespace;
//! - the volume repository passes Debian's `restic check`;
//! - nothing stays New or InProgress;
//! - no temporary object (helper pod, snapshot, snapshot claim) remains;
//! - after a sync, catalog and bucket agree: no backup's objects in the
//!   bucket without a manifest and a row, no Completed row without its
//!   manifest.
//!
//! `tests/tests/crashes.rs` runs a short campaign in CI; `cargo bench -p
//! lifeboat-e2e --bench crashes` (with `CRASH_FAULTS=N`) is the soak.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::api::Api;
use serde_json::{Value, json};

use crate::faults::{Fault, FaultProxy, Op, Rule};
use crate::{LifeboatProcess, S3Server, http};

const WITHIN: Duration = Duration::from_secs(180);

/// One row of the reliability table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// Faults injected (a kill is one; storage faults are counted by the proxy).
    pub injected: u64,
    /// Operations run under this fault.
    pub runs: u64,
    /// Backups marked Completed that did not verify or restore.
    pub unrestorable: u64,
    /// `restic check` failures of the volume repository.
    pub damaged: u64,
    /// Operations left New/InProgress, temporaries left in the cluster, or
    /// catalog and bucket disagreeing.
    pub stuck: u64,
}

/// The campaign's state.
pub struct Campaign {
    pub dir: tempfile::TempDir,
    s3: S3Server,
    pub proxy: FaultProxy,
    prefix: String,
    env: Vec<(&'static str, String)>,
    demo: Option<LifeboatProcess>,
    rng: u64,
    n: u64,
    key: String,
    /// Completed backups that verified already.
    verified: BTreeSet<String>,
    /// How long an uninterrupted backup of `data` took, for kill delays.
    backup_ms: u64,
    pub rows: BTreeMap<String, Row>,
    /// What each broken invariant was, for the failure message.
    pub problems: Vec<String>,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

impl Campaign {
    /// Garage, the proxy in front of it, and `lifeboat demo` using it as its
    /// default location; the location's recovery key revealed (which makes
    /// its repository) for `restic check`.
    pub async fn start(seed: u64) -> Result<Self> {
        let s3 = S3Server::start().await?;
        let proxy = FaultProxy::start(&s3.endpoint, seed).await?;
        let dir = tempfile::tempdir()?;
        let prefix = format!("crashes-{}", uuid::Uuid::new_v4().simple());
        let env = s3.serve_env(&proxy.url, &prefix);
        let demo = LifeboatProcess::start_demo(dir.path(), &env)?;
        let revealed = http(&demo.url)
            .post(format!(
                "{}/api/v1/storage-locations/default/recovery-key",
                demo.url
            ))
            .send()
            .await?;
        anyhow::ensure!(revealed.status().is_success(), "{}", revealed.text().await?);
        let key = revealed.json::<Value>().await?["recoveryKey"]
            .as_str()
            .context("recoveryKey")?
            .to_string();
        let mut campaign = Campaign {
            dir,
            s3,
            proxy,
            prefix,
            env,
            demo: Some(demo),
            rng: seed | 1,
            n: 0,
            key,
            verified: BTreeSet::new(),
            backup_ms: 3000,
            rows: BTreeMap::new(),
            problems: Vec::new(),
        };
        // One undisturbed backup: the measure for kill delays, and a base
        // that must stay restorable through everything that follows. A
        // volume with some bulk makes the volume step long enough to be hit.
        campaign.wait_for_postgres().await?;
        let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(campaign.client().await?, "data");
        let pv = claims
            .get("data-postgres-0")
            .await?
            .spec
            .and_then(|s| s.volume_name)
            .context("data-postgres-0 is bound")?;
        let bulk = kubesim::controllers::volume_dir(
            &campaign.dir.path().join("lifeboat-data/demo-volumes"),
            &pv,
        )
        .join("bulk.bin");
        {
            let mut random = std::fs::File::open("/dev/urandom")?;
            let mut out = std::fs::File::create(&bulk)?;
            std::io::copy(&mut std::io::Read::take(&mut random, 48 << 20), &mut out)?;
        }
        let started = Instant::now();
        campaign.start_backup("base").await?;
        let base = campaign.finished("backups", "base").await?;
        anyhow::ensure!(base["phase"] == "Completed", "{base:#}");
        campaign.backup_ms = (started.elapsed().as_millis() as u64).max(500);
        Ok(campaign)
    }

    fn url(&self) -> String {
        self.demo
            .as_ref()
            .map(|d| d.url.clone())
            .unwrap_or_default()
    }

    fn random(&mut self, below: u64) -> u64 {
        xorshift(&mut self.rng) % below.max(1)
    }

    async fn client(&self) -> Result<kube::Client> {
        crate::demo_client(self.dir.path()).await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let url = self.url();
        Ok(http(&url)
            .get(format!("{url}{path}"))
            .send()
            .await?
            .json()
            .await?)
    }

    async fn wait_for_postgres(&self) -> Result<()> {
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client().await?, "data");
        let deadline = Instant::now() + WITHIN;
        loop {
            let running = pods
                .list(&Default::default())
                .await?
                .items
                .iter()
                .filter(|p| {
                    p.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with("postgres-"))
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .count();
            if running >= 2 {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "postgres never ran");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn start_backup(&self, name: &str) -> Result<()> {
        let url = self.url();
        let created = http(&url)
            .post(format!("{url}/api/v1/backups"))
            .json(&json!({"name": name, "spec": {"includedNamespaces": ["data"]}}))
            .send()
            .await?;
        anyhow::ensure!(created.status() == 202, "{}", created.text().await?);
        Ok(())
    }

    /// Waits for `kind/name` (`backups` or `restores`) to end.
    async fn finished(&self, kind: &str, name: &str) -> Result<Value> {
        let url = self.url();
        crate::poll_json(&format!("{url}/api/v1/{kind}/{name}"), WITHIN, |b| {
            !matches!(b["phase"].as_str(), Some("New" | "InProgress"))
        })
        .await
    }

    /// SIGKILLs the demo (its agents go with it) and starts it again.
    async fn crash_and_restart(&mut self) -> Result<()> {
        if let Some(mut demo) = self.demo.take() {
            demo.kill();
        }
        self.demo = Some(LifeboatProcess::start_demo(self.dir.path(), &self.env)?);
        Ok(())
    }

    fn row(&mut self, name: &str) -> &mut Row {
        self.rows.entry(name.to_string()).or_default()
    }

    /// Where a running backup is, from what the API shows.
    fn step_of(backup: &Value) -> &'static str {
        match backup["phase"].as_str() {
            Some("InProgress") => {}
            Some("New") | None => return "before it started",
            Some(_) => return "after it ended",
        }
        let volumes = &backup["progress"]["volumes"];
        let has_volumes = volumes["volumes"].as_array().is_some_and(|v| !v.is_empty());
        if !has_volumes {
            if backup["itemsDone"].as_i64().unwrap_or(0) == 0 {
                "resource listing"
            } else {
                "archive upload"
            }
        } else if volumes["volumes"].as_array().is_some_and(|v| {
            v.iter()
                .all(|v| v["phase"] != "running" && v["phase"] != "pending")
        }) {
            "manifest write"
        } else {
            "volume upload"
        }
    }

    /// A backup of `data`, killed at a random moment of it.
    pub async fn killed_backup(&mut self) -> Result<()> {
        self.n += 1;
        let name = format!("k{}", self.n);
        self.start_backup(&name).await?;
        let delay = Duration::from_millis(self.random(self.backup_ms));
        let until = Instant::now() + delay;
        let mut seen = Value::Null;
        while Instant::now() < until {
            seen = self.get(&format!("/api/v1/backups/{name}")).await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let step = Self::step_of(&seen);
        // Later backups reuse the repository's data and are quicker than the
        // first: a kill that came after the end shortens the next delay.
        if step == "after it ended" {
            self.backup_ms = (self.backup_ms * 3 / 4).max(200);
        }
        self.crash_and_restart().await?;
        let row = format!("kill: backup, {step}");
        self.row(&row).injected += 1;
        self.row(&row).runs += 1;
        self.check(&row).await
    }

    /// A backup of `data` whose node agents are SIGKILLed while a volume is
    /// being read, the server staying up; then the demo is started again
    /// (which starts its agents).
    pub async fn killed_agents(&mut self) -> Result<()> {
        self.n += 1;
        let name = format!("a{}", self.n);
        self.start_backup(&name).await?;
        let deadline = Instant::now() + WITHIN;
        loop {
            let b = self.get(&format!("/api/v1/backups/{name}")).await?;
            let reading = b["progress"]["volumes"]["volumes"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["phase"] == "running"));
            if reading || !matches!(b["phase"].as_str(), Some("New" | "InProgress")) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "no volume was read: {b:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let parent = self.demo.as_ref().map_or(0, LifeboatProcess::pid);
        let killed = kill_children(parent, "agent");
        let row = "kill: node agents, volume upload";
        self.row(row).injected += killed;
        self.row(row).runs += 1;
        // The volume being read fails once its agent has been silent for
        // the dispatcher's timeout; the server is then killed too (a task
        // of a dead agent would wait for its claim timeout), and started
        // again with its agents.
        let deadline = Instant::now() + WITHIN;
        loop {
            let b = self.get(&format!("/api/v1/backups/{name}")).await?;
            let failed = b["progress"]["volumes"]["volumes"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["phase"] == "failed"));
            if failed || !matches!(b["phase"].as_str(), Some("New" | "InProgress")) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the volume never failed: {b:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.crash_and_restart().await?;
        self.check(row).await
    }

    /// A backup of `data` under one kind of storage fault on every operation.
    pub async fn faulty_backup(&mut self, fault: Fault) -> Result<()> {
        self.n += 1;
        let name = format!("f{}", self.n);
        let before = self.proxy.injected_total();
        self.proxy.set(
            [
                Op::Put,
                Op::UploadPart,
                Op::CompleteMultipart,
                Op::Get,
                Op::RangedGet,
                Op::List,
                Op::Head,
            ]
            .into_iter()
            .map(|op| Rule {
                op,
                fault,
                rate: 0.2,
                limit: Some(15),
            })
            .collect(),
        );
        self.start_backup(&name).await?;
        let done = self.finished("backups", &name).await;
        self.proxy.set(Vec::new());
        let done = done?;
        let kind = match fault {
            Fault::Stall(_) => "Stall".to_string(),
            other => format!("{other:?}"),
        };
        let row = format!("storage: {kind}");
        let injected = self.proxy.injected_total() - before;
        self.row(&row).injected += injected;
        self.row(&row).runs += 1;
        if !matches!(
            done["phase"].as_str(),
            Some("Completed" | "PartiallyFailed" | "Failed")
        ) {
            self.row(&row).stuck += 1;
        }
        self.check(&row).await
    }

    /// A restore of the newest Completed backup into a new namespace, killed
    /// at a random moment.
    pub async fn killed_restore(&mut self) -> Result<()> {
        self.n += 1;
        let Some(backup) = self.completed().await?.pop() else {
            bail!("no Completed backup to restore");
        };
        let target = format!("r{}", self.n);
        let url = self.url();
        let created = http(&url)
            .post(format!("{url}/api/v1/restores"))
            .json(&json!({"spec": {"backupName": backup, "namespaceMapping": {"data": target}}}))
            .send()
            .await?;
        anyhow::ensure!(created.status() == 202, "{}", created.text().await?);
        let delay = self.random(self.backup_ms);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.crash_and_restart().await?;
        let row = "kill: restore";
        self.row(row).injected += 1;
        self.row(row).runs += 1;
        let checked = self.check(row).await;
        self.remove_namespace(&target).await?;
        checked
    }

    /// The deletion of the oldest campaign backup, killed at a random moment.
    pub async fn killed_deletion(&mut self) -> Result<()> {
        let victims: Vec<String> = self
            .completed()
            .await?
            .into_iter()
            .filter(|b| b != "base")
            .collect();
        let Some(victim) = victims.first().cloned() else {
            return Ok(());
        };
        let url = self.url();
        let delay = self.random(300);
        let deleting = http(&url)
            .delete(format!("{url}/api/v1/backups/{victim}"))
            .send();
        let _ = tokio::time::timeout(Duration::from_millis(delay), deleting).await;
        self.crash_and_restart().await?;
        self.verified.remove(&victim);
        let row = "kill: deletion";
        self.row(row).injected += 1;
        self.row(row).runs += 1;
        self.check(row).await
    }

    /// Names of Completed backups, oldest first.
    async fn completed(&self) -> Result<Vec<String>> {
        let list = self.get("/api/v1/backups").await?;
        let mut out: Vec<(String, String)> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["phase"] == "Completed")
            .map(|b| {
                (
                    b["createdAt"].as_str().unwrap_or_default().to_string(),
                    b["name"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        out.sort();
        Ok(out.into_iter().map(|(_, n)| n).collect())
    }

    async fn remove_namespace(&self, namespace: &str) -> Result<()> {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client().await?);
        match namespaces.delete(namespace, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let deadline = Instant::now() + WITHIN;
        while namespaces.get_opt(namespace).await?.is_some() {
            anyhow::ensure!(Instant::now() < deadline, "{namespace} was never deleted");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    fn broke(&mut self, row: &str, what: impl FnOnce(&mut Row), problem: String) {
        what(self.row(row));
        self.problems.push(format!("{row}: {problem}"));
    }

    /// Checks every invariant, counting what broke in `row`.
    async fn check(&mut self, row: &str) -> Result<()> {
        // Nothing stays New or InProgress.
        let deadline = Instant::now() + WITHIN;
        loop {
            let mut running = Vec::new();
            for kind in ["backups", "restores"] {
                let list = self.get(&format!("/api/v1/{kind}")).await?;
                for item in list["items"].as_array().into_iter().flatten() {
                    if matches!(item["phase"].as_str(), Some("New" | "InProgress")) {
                        running.push(format!("{kind}/{}", item["name"].as_str().unwrap_or("?")));
                    }
                }
            }
            if running.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                self.broke(row, |r| r.stuck += 1, format!("still running: {running:?}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // No temporary object remains (by name: the check must not trust the label).
        let client = self.client().await?;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let left = crate::temporaries_by_name(&client, None).await?;
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                self.broke(row, |r| r.stuck += 1, format!("temporaries left: {left:?}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Every Completed backup verifies; the newest restores Completed.
        let completed = self.completed().await?;
        for name in &completed {
            if self.verified.contains(name) {
                continue;
            }
            let url = self.url();
            let report: Value = http(&url)
                .post(format!("{url}/api/v1/backups/{name}/verify"))
                .send()
                .await?
                .json()
                .await?;
            if report["ok"] == true {
                self.verified.insert(name.clone());
            } else {
                self.broke(
                    row,
                    |r| r.unrestorable += 1,
                    format!("{name} does not verify: {report}"),
                );
            }
        }
        if let Some(newest) = completed.last() {
            self.n += 1;
            let target = format!("check{}", self.n);
            let url = self.url();
            let created = http(&url)
                .post(format!("{url}/api/v1/restores"))
                .json(
                    &json!({"spec": {"backupName": newest, "namespaceMapping": {"data": target}}}),
                )
                .send()
                .await?;
            let created: Value = created.json().await?;
            let name = created["name"].as_str().unwrap_or_default().to_string();
            let done = self.finished("restores", &name).await?;
            if done["phase"] != "Completed" {
                let failed: Vec<String> = done["plan"]["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|i| i["result"] == "failed")
                    .map(|i| format!("{} {}: {}", i["groupResource"], i["name"], i["message"]))
                    .collect();
                self.broke(
                    row,
                    |r| r.unrestorable += 1,
                    format!("{newest} restored {}: {failed:?}", done["phase"]),
                );
            }
            self.remove_namespace(&target).await?;
        }
        // The volume repository checks clean with Debian's restic.
        if let Err(e) = self.restic_check() {
            self.broke(row, |r| r.damaged += 1, format!("{e:#}"));
        }
        // Catalog and bucket agree, after a sync.
        let url = self.url();
        http(&url)
            .post(format!("{url}/api/v1/backups/sync"))
            .send()
            .await?;
        let disagreements = self.disagreements().await?;
        if !disagreements.is_empty() {
            self.broke(
                row,
                |r| r.stuck += 1,
                format!("catalog and bucket: {disagreements:?}"),
            );
        }
        Ok(())
    }

    /// Backups whose objects the bucket holds without a manifest and a row,
    /// and Completed rows without a manifest.
    async fn disagreements(&self) -> Result<Vec<String>> {
        let store = self.s3.store(&self.prefix).await?;
        let keys = lifeboat::storage::list_all(&store, "backups/").await?;
        let mut by_backup: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in keys {
            let mut parts = key.key.splitn(3, '/');
            let (_, name, file) = (parts.next(), parts.next(), parts.next());
            if let (Some(name), Some(file)) = (name, file) {
                by_backup
                    .entry(name.to_string())
                    .or_default()
                    .push(file.to_string());
            }
        }
        let list = self.get("/api/v1/backups").await?;
        let rows: BTreeMap<String, String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                (
                    b["name"].as_str().unwrap_or_default().to_string(),
                    b["phase"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut out = Vec::new();
        for (name, files) in &by_backup {
            let has_manifest = files.iter().any(|f| f == lifeboat::archive::MANIFEST_FILE);
            let row = rows.get(name).map(String::as_str);
            match (has_manifest, row) {
                (true, Some("Completed" | "PartiallyFailed" | "Deleting")) => {}
                (false, Some("Deleting")) => {}
                _ => out.push(format!("{name}: files {files:?}, row {row:?}")),
            }
        }
        for (name, phase) in &rows {
            if phase == "Completed" && !by_backup.contains_key(name) {
                out.push(format!(
                    "{name}: Completed in the catalog, nothing in the bucket"
                ));
            }
        }
        Ok(out)
    }

    fn restic_check(&self) -> Result<()> {
        self.s3.restic_check(
            &self.prefix,
            &self.key,
            &self.dir.path().join("restic-cache"),
        )
    }

    /// The table, as `docs/RELIABILITY.md` shows it.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| fault | injected | runs | Completed backups that did not restore | repositories damaged | operations left stuck |\n|---|---|---|---|---|---|\n",
        );
        for (name, r) in &self.rows {
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} |\n",
                r.injected, r.runs, r.unrestorable, r.damaged, r.stuck
            ));
        }
        out
    }

    pub fn injected(&self) -> u64 {
        self.rows.values().map(|r| r.injected).sum()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// SIGKILLs the children of `parent` whose command line holds `word`;
/// returns how many.
fn kill_children(parent: u32, word: &str) -> u64 {
    let mut killed = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // `pid (comm) state ppid …`: the fields after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let is_it = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .any(|arg| arg == word);
        if ppid == Some(parent)
            && is_it
            && std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        {
            killed += 1;
        }
    }
    killed
}

/// The storage faults a campaign injects, in turn.
pub const STORAGE_FAULTS: [Fault; 6] = [
    Fault::Drop,
    Fault::InternalError,
    Fault::SlowDown,
    Fault::Truncate,
    Fault::LoseAnswer,
    Fault::Stall(Duration::from_millis(1500)),
];

/// Runs rounds until `faults` faults were injected or `rounds` ran: kills
/// of backups, restores and deletions, and storage faults, in turn.
pub async fn run(campaign: &mut Campaign, faults: u64, rounds: u64) -> Result<()> {
    let mut round = 0u64;
    while campaign.injected() < faults && round < rounds {
        match round % 7 {
            0 | 2 => campaign.killed_backup().await?,
            1 => {
                campaign
                    .faulty_backup(STORAGE_FAULTS[(round / 7 % 6) as usize])
                    .await?
            }
            3 => campaign.killed_restore().await?,
            4 => campaign.killed_deletion().await?,
            5 => {
                campaign
                    .faulty_backup(STORAGE_FAULTS[((round / 7 + 3) % 6) as usize])
                    .await?
            }
            _ => campaign.killed_agents().await?,
        }
        round += 1;
        eprintln!(
            "campaign: round {round}, {} faults injected, {} problems",
            campaign.injected(),
            campaign.problems.len()
        );
    }
    Ok(())
}
