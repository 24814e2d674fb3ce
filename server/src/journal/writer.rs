//! One schedule's journal writer, and `Journals`, which runs them.
//!
//! Each protected resource type has a watch task: it lists when it has no
//! cursor (recording every object as [`Op::Listed`] and the list's end as
//! [`Entry::Listed`]), then watches from the cursor with bookmarks. A 410
//! Gone records an [`Entry::Gap`] from when the watch was last current and
//! re-lists. The tasks send entries over one bounded channel to the segment
//! task, which seals a segment every `segment_every` or `segment_bytes`
//! (zstd, then age to the location's key), writes it, then its manifest.
//! While storage fails, sealed segments wait in memory up to
//! `buffer_bytes`, then on local disk up to `spool_bytes`; past that the
//! oldest are dropped, and once storage takes writes again one gap (from
//! the first dropped until then) is recorded and every type re-lists, so
//! the state is exact again after it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use super::{Entry, FlushRequest, Gap, JournalError, Op, SegmentManifest};
use crate::archive::ArchiveKey;
use crate::catalog::Catalog;
use crate::cluster::discovery::{gr, group_resource};
use crate::selection::{BackupSpec, BackupSpecExt};
use crate::storage::{DynStore, Locations, put_bytes};

/// How segments are cut and how much waits while storage is down.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A segment is sealed at least this often (when anything changed).
    pub segment_every: Duration,
    /// … or once its entries reach this many bytes (uncompressed).
    pub segment_bytes: usize,
    /// Sealed segments kept in memory while storage fails.
    pub buffer_bytes: usize,
    /// … then on local disk, in `spool_dir`, up to this many bytes.
    pub spool_bytes: u64,
    pub spool_dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            segment_every: Duration::from_secs(300),
            segment_bytes: 8 << 20,
            buffer_bytes: 64 << 20,
            spool_bytes: 1 << 30,
            spool_dir: None,
        }
    }
}

/// The shortest interval between segments sealed for a reader's flush
/// (restores to an instant always seal).
const READER_SEAL_EVERY: Duration = Duration::from_secs(5);

/// What a writer reports about itself (the API's schedule status).
pub use frontend::model::JournalStatus as Status;

/// An instant as the API shows it (RFC 3339, as chrono serialises it).
fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A message to the segment task: an entry and/or where a type's watch stands.
struct Msg {
    entry: Option<Entry>,
    cursor: Option<(String, String)>,
}

/// The running writers of this process (the leader's), one per schedule
/// with continuous protection.
#[derive(Clone)]
pub struct Journals {
    pub catalog: Catalog,
    pub locations: Locations,
    pub client: Option<kube::Client>,
    pub leadership: crate::cluster::lease::Leadership,
    pub settings: Settings,
    running: Arc<Mutex<HashMap<String, Running>>>,
    statuses: Arc<Mutex<HashMap<String, Status>>>,
}

struct Running {
    /// The schedule's template and location when started: a change restarts it.
    fingerprint: String,
    /// Its key in the flush registry.
    flusher: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Journals {
    pub fn new(
        catalog: Catalog,
        locations: Locations,
        client: Option<kube::Client>,
        leadership: crate::cluster::lease::Leadership,
        settings: Settings,
    ) -> Self {
        Self {
            catalog,
            locations,
            client,
            leadership,
            settings,
            running: Arc::default(),
            statuses: Arc::default(),
        }
    }

    /// Starts the writers of schedules with continuous protection (unpaused)
    /// and stops the others; all stop while this replica does not lead.
    pub async fn reconcile(&self) -> Result<(), crate::catalog::CatalogError> {
        let mut wanted: HashMap<String, (String, BackupSpec)> = HashMap::new();
        if self.leadership.is_leader() && self.client.is_some() {
            for record in self.catalog.schedules().await? {
                if record.continuous == 0 || record.paused != 0 {
                    continue;
                }
                match serde_json::from_str::<BackupSpec>(&record.template) {
                    Ok(template) => {
                        wanted.insert(record.name.clone(), (record.template.clone(), template));
                    }
                    Err(e) => {
                        tracing::warn!(schedule = %record.name, error = %e, "the schedule's template does not read; no journal");
                    }
                }
            }
        }
        let Ok(mut running) = self.running.lock() else {
            return Ok(());
        };
        running.retain(|name, r| {
            let keep = wanted.get(name).is_some_and(|(f, _)| *f == r.fingerprint);
            if !keep {
                tracing::info!(schedule = %name, "journal writer stopped");
                super::flushers().remove(&r.flusher);
                if let Ok(mut s) = self.statuses.lock() {
                    s.remove(name);
                }
            }
            keep
        });
        for (name, (fingerprint, template)) in wanted {
            if running.contains_key(&name) {
                continue;
            }
            let location = template.storage_location().to_string();
            let (Some(store), Some(client)) = (self.locations.get(&location), self.client.clone())
            else {
                tracing::warn!(schedule = %name, %location, "journal not started: its location is not open");
                continue;
            };
            let (flush_tx, flush_rx) = mpsc::channel(8);
            let flusher = super::flusher_key(store.as_ref(), &name);
            super::flushers().insert(flusher.clone(), flush_tx);
            let writer = Writer {
                schedule: name.clone(),
                template,
                location,
                store,
                client,
                catalog: self.catalog.clone(),
                settings: self.settings.clone(),
                statuses: self.statuses.clone(),
            };
            tracing::info!(schedule = %name, "journal writer started");
            running.insert(
                name,
                Running {
                    fingerprint,
                    flusher,
                    task: tokio::spawn(writer.run(flush_rx)),
                },
            );
        }
        Ok(())
    }

    /// Reconciles every 2 s for as long as the process runs.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.reconcile().await {
                    tracing::warn!(error = %e, "starting journal writers failed; will retry");
                }
            }
        })
    }

    /// The writer's status, when it runs here.
    pub fn status(&self, schedule: &str) -> Option<Status> {
        self.statuses.lock().ok()?.get(schedule).cloned()
    }
}

/// One schedule's writer.
struct Writer {
    schedule: String,
    template: BackupSpec,
    location: String,
    store: DynStore,
    client: kube::Client,
    catalog: Catalog,
    settings: Settings,
    statuses: Arc<Mutex<HashMap<String, Status>>>,
}

/// The resource types a journal watches: those a backup takes (listed and
/// put back), namespaced and selected by the template, plus namespaces;
/// never those a restore leaves to the cluster.
async fn journaled_types(
    client: &kube::Client,
    template: &BackupSpec,
) -> Result<Vec<(ApiResource, bool)>, JournalError> {
    let mut log = crate::backup::engine::Log::default();
    let resources = crate::backup::engine::listable_resources(client, &mut log).await?;
    Ok(resources
        .into_iter()
        .filter(|(ar, caps)| {
            let gr = group_resource(ar);
            template.includes_resource(&gr)
                && !crate::cluster::recreated::never_restored(&gr)
                && (caps.scope == Scope::Namespaced || gr == gr::NAMESPACES)
                && caps.supports_operation(kube::discovery::verbs::WATCH)
        })
        .map(|(ar, caps)| (ar, caps.scope == Scope::Namespaced))
        .collect())
}

/// Where the previous writer stopped: the newest manifest.
async fn resume_point(
    store: &DynStore,
    schedule: &str,
) -> Result<Option<SegmentManifest>, JournalError> {
    let Some(last) = super::replay::list_segments(store, schedule).await?.pop() else {
        return Ok(None);
    };
    super::replay::read_manifest(store, &last.key)
        .await
        .map(Some)
}

impl Writer {
    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.statuses.lock() {
            f(s.entry(self.schedule.clone()).or_default());
        }
    }

    async fn run(self, mut flushes: mpsc::Receiver<FlushRequest>) {
        // Start only once discovery, the key and the resume point are known.
        let mut delay = Duration::from_secs(1);
        let (types, key, resumed) = loop {
            match self.prepare().await {
                Ok(ready) => break ready,
                Err(e) => {
                    tracing::warn!(schedule = %self.schedule, error = %e, "journal cannot start yet; will retry");
                    self.set_status(|s| s.last_error = Some(e.to_string()));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        };
        let (tx, mut rx) = mpsc::channel::<Msg>(4096);
        let (resync_tx, resync_rx) = watch::channel(0u64);
        let cursors = resumed
            .as_ref()
            .map(|m| m.cursors.clone())
            .unwrap_or_default();
        let known_until = resumed.as_ref().map_or_else(super::now, |m| m.to);
        let mut watches = Vec::new();
        for (ar, namespaced) in &types {
            let gr = group_resource(ar);
            let w = TypeWatch {
                client: self.client.clone(),
                ar: ar.clone(),
                gr: gr.clone(),
                namespaced: *namespaced,
                template: self.template.clone(),
                tx: tx.clone(),
                resync: resync_rx.clone(),
            };
            watches.push(crate::backup::runner::AbortOnDrop(tokio::spawn(
                w.run(cursors.get(&gr).cloned(), known_until),
            )));
        }
        drop(tx);
        // Types resumed from a cursor are current; a cursor of a type no
        // longer served is dropped with it.
        let watched: std::collections::BTreeSet<String> =
            types.iter().map(|(ar, _)| group_resource(ar)).collect();
        let cursors: BTreeMap<String, String> = cursors
            .into_iter()
            .filter(|(gr, _)| watched.contains(gr))
            .collect();
        let resumed_types = cursors.len();
        self.set_status(|s| {
            s.running = true;
            s.resource_types = types.len();
            s.current_types = resumed_types;
            s.written_until = resumed.as_ref().map(|m| instant(m.to));
            s.last_error = None;
        });
        let mut segments = Segments {
            schedule: self.schedule.clone(),
            store: self.store.clone(),
            key,
            settings: self.settings.clone(),
            next_seq: resumed.as_ref().map_or(0, |m| m.seq + 1),
            covered_until: resumed.as_ref().map(|m| m.to),
            last_sealed: None,
            open: Open::default(),
            cursors: cursors.clone(),
            cursors_moved: false,
            pending: VecDeque::new(),
            pending_memory: 0,
            pending_disk: 0,
            current: cursors.keys().cloned().collect(),
            gaps_recorded: 0,
            dropped: None,
            resync: resync_tx,
        };
        let mut seal_tick = tokio::time::interval(self.settings.segment_every);
        seal_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        seal_tick.tick().await;
        let mut retry = tokio::time::interval(Duration::from_secs(5));
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    let current = segments.current.len();
                    segments.take(msg);
                    if segments.current.len() != current {
                        let now = segments.current.len();
                        self.set_status(|s| s.current_types = now);
                    }
                    if segments.open.bytes.len() >= self.settings.segment_bytes {
                        segments.seal(false);
                        self.upload(&mut segments).await;
                    }
                }
                _ = seal_tick.tick() => {
                    segments.seal(false);
                    self.upload(&mut segments).await;
                }
                _ = retry.tick(), if !segments.pending.is_empty() => {
                    self.upload(&mut segments).await;
                }
                asked = flushes.recv() => {
                    let Some((force, done)) = asked else { continue };
                    // What the watches already sent comes first.
                    while let Ok(msg) = rx.try_recv() {
                        segments.take(msg);
                    }
                    // A reader's flush (the timeline, refetched on every
                    // change) seals at most every READER_SEAL_EVERY, so an
                    // open page does not cut a segment per change.
                    if force || segments.last_sealed.is_none_or(|t| t.elapsed() >= READER_SEAL_EVERY) {
                        segments.seal(force);
                    }
                    self.upload(&mut segments).await;
                    let _ = done.send(match segments.pending.len() {
                        0 => Ok(()),
                        n => Err(super::Unwritten::Waiting(n)),
                    });
                }
            }
        }
        drop(watches);
    }

    async fn prepare(
        &self,
    ) -> Result<
        (
            Vec<(ApiResource, bool)>,
            Option<ArchiveKey>,
            Option<SegmentManifest>,
        ),
        JournalError,
    > {
        let types = journaled_types(&self.client, &self.template).await?;
        let key = if crate::backup::runner::in_the_clear(&self.catalog, &self.location).await {
            None
        } else {
            Some(
                crate::volumes::archive_key_for_backup(&self.catalog, &self.store, &self.location)
                    .await?,
            )
        };
        let resumed = resume_point(&self.store, &self.schedule).await?;
        Ok((types, key, resumed))
    }

    /// Writes the pending segments in order; stops at the first failure.
    async fn upload(&self, segments: &mut Segments) {
        let result = segments.upload().await;
        let (pending, bytes, current) = (
            segments.pending.len(),
            segments.pending_memory as u64 + segments.pending_disk,
            segments.current.len(),
        );
        self.set_status(|s| {
            s.current_types = current;
            s.pending_segments = pending;
            s.pending_bytes = bytes;
            match result {
                Ok((written, changes, until)) => {
                    s.segments_written += written;
                    s.changes_written += changes;
                    if until.is_some() {
                        s.written_until = until.map(instant);
                    }
                    s.last_error = None;
                }
                Err(e) => s.last_error = Some(e.to_string()),
            }
            s.gaps += std::mem::take(&mut segments.gaps_recorded);
        });
    }
}

/// The segment being filled.
#[derive(Default)]
struct Open {
    bytes: Vec<u8>,
    entries: u64,
    changes: u64,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    gaps: Vec<Gap>,
}

/// A sealed segment waiting to be written.
struct Sealed {
    manifest: SegmentManifest,
    data: SealedData,
}

enum SealedData {
    Memory(Vec<u8>),
    Disk(PathBuf),
}

struct Segments {
    schedule: String,
    store: DynStore,
    key: Option<ArchiveKey>,
    settings: Settings,
    next_seq: u64,
    /// Where the last sealed segment ended: the next one begins there, so
    /// the journal's window has no holes but its recorded gaps.
    covered_until: Option<DateTime<Utc>>,
    /// When a segment was last sealed (by this writer).
    last_sealed: Option<std::time::Instant>,
    open: Open,
    cursors: BTreeMap<String, String>,
    cursors_moved: bool,
    pending: VecDeque<Sealed>,
    pending_memory: usize,
    pending_disk: u64,
    /// Types listed once or resumed.
    current: std::collections::BTreeSet<String>,
    /// Gaps recorded since the status last read them.
    gaps_recorded: u64,
    /// Segments were dropped (from when, and how many changes): recorded
    /// as a gap with a re-list of every type once storage takes writes
    /// again (not before, or the lists would be dropped too).
    dropped: Option<(DateTime<Utc>, u64)>,
    resync: watch::Sender<u64>,
}

impl Segments {
    fn take(&mut self, msg: Msg) {
        if let Some((gr, rv)) = msg.cursor {
            self.cursors.insert(gr, rv);
            self.cursors_moved = true;
        }
        if let Some(entry) = msg.entry {
            self.push(entry);
        }
    }

    fn push(&mut self, entry: Entry) {
        let at = entry.at();
        match &entry {
            Entry::Change { .. } => self.open.changes += 1,
            Entry::Gap {
                group_resource,
                from,
                to,
                reason,
            } => {
                // A watch the server no longer resumes (410 Gone); the bridge
                // of dropped segments ("*") was counted as they were dropped.
                if group_resource != "*" {
                    self.gaps_recorded += 1;
                }
                self.open.gaps.push(Gap {
                    group_resource: group_resource.clone(),
                    from: *from,
                    to: *to,
                    reason: reason.clone(),
                })
            }
            Entry::Listed { group_resource, .. } => {
                self.current.insert(group_resource.clone());
            }
        }
        if serde_json::to_writer(&mut self.open.bytes, &entry).is_ok() {
            self.open.bytes.push(b'\n');
            self.open.entries += 1;
            let from = match &entry {
                Entry::Gap { from, .. } => *from,
                _ => at,
            };
            self.open.from = Some(self.open.from.map_or(from, |f| f.min(from)));
            self.open.to = Some(self.open.to.map_or(at, |t| t.max(at)));
        }
    }

    /// Seals the open segment when it has entries or the cursors moved
    /// (always with `force`: a flush extends the journal's window to now).
    fn seal(&mut self, force: bool) {
        if self.open.entries == 0 && !self.cursors_moved && !force {
            return;
        }
        let open = std::mem::take(&mut self.open);
        self.cursors_moved = false;
        let now = super::now();
        let data = match seal_bytes(&open.bytes, self.key.as_ref()) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(schedule = %self.schedule, error = %e, "sealing a journal segment failed");
                return;
            }
        };
        let manifest = SegmentManifest {
            format: super::FORMAT,
            schedule: self.schedule.clone(),
            seq: self.next_seq,
            from: self
                .covered_until
                .unwrap_or(now)
                .min(open.from.unwrap_or(now)),
            to: now.max(open.to.unwrap_or(now)),
            entries: open.entries,
            changes: open.changes,
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(&data)),
            encryption: self.key.as_ref().map(ArchiveKey::encryption),
            cursors: self.cursors.clone(),
            gaps: open.gaps,
        };
        self.next_seq += 1;
        self.covered_until = Some(manifest.to);
        self.last_sealed = Some(std::time::Instant::now());
        self.pending_memory += data.len();
        self.pending.push_back(Sealed {
            manifest,
            data: SealedData::Memory(data),
        });
        self.bound();
    }

    /// Keeps what waits within bounds: memory, then disk, then a gap.
    fn bound(&mut self) {
        while self.pending_memory > self.settings.buffer_bytes {
            // The oldest in memory goes to disk, when there is room.
            let Some(i) = self
                .pending
                .iter()
                .position(|s| matches!(s.data, SealedData::Memory(_)))
            else {
                break;
            };
            let size = self.pending[i].manifest.size;
            let spooled = self.settings.spool_dir.as_ref().and_then(|dir| {
                (self.pending_disk + size <= self.settings.spool_bytes)
                    .then(|| spool(dir, &self.schedule, &self.pending[i]))
                    .and_then(Result::ok)
            });
            match spooled {
                Some(path) => {
                    self.pending_memory -= size as usize;
                    self.pending_disk += size;
                    self.pending[i].data = SealedData::Disk(path);
                }
                None => self.drop_oldest(),
            }
        }
    }

    /// Drops the oldest waiting segment: its window becomes a gap, and every
    /// type re-lists once storage is back, so the state is exact after it.
    fn drop_oldest(&mut self) {
        let Some(dropped) = self.pending.pop_front() else {
            return;
        };
        match &dropped.data {
            SealedData::Memory(d) => self.pending_memory -= d.len(),
            SealedData::Disk(p) => {
                self.pending_disk -= dropped.manifest.size;
                let _ = std::fs::remove_file(p);
            }
        }
        tracing::warn!(schedule = %self.schedule, seq = dropped.manifest.seq, "storage is down and the journal's buffer is full: a segment was dropped, recorded as a gap");
        let (from, changes) = self.dropped.unwrap_or((dropped.manifest.from, 0));
        self.dropped = Some((
            from.min(dropped.manifest.from),
            changes + dropped.manifest.changes,
        ));
        self.gaps_recorded += 1;
    }

    /// Once storage takes writes again after segments were dropped: the gap
    /// (from the first dropped until now) and a re-list of every type, after
    /// which the state is exact again.
    fn bridge(&mut self) {
        let Some((from, changes)) = self.dropped.take() else {
            return;
        };
        let size = |b: u64| match b {
            b if b >= 1 << 20 => format!("{} MiB", b >> 20),
            b => format!("{} KiB", b >> 10),
        };
        self.push(Entry::Gap {
            group_resource: "*".into(),
            from,
            to: super::now(),
            reason: format!(
                "storage was unavailable and the journal's buffer ({} in memory, {} on disk) was full; {changes} change(s) were dropped, and every type was listed again",
                size(self.settings.buffer_bytes as u64),
                size(self.settings.spool_bytes),
            ),
        });
        self.resync.send_modify(|g| *g += 1);
    }

    /// Writes waiting segments in order: (segments, changes, newest instant).
    async fn upload(
        &mut self,
    ) -> Result<(u64, u64, Option<DateTime<Utc>>), crate::storage::StorageError> {
        let (mut written, mut changes, mut until) = (0, 0, None);
        while let Some(next) = self.pending.front() {
            let data = match &next.data {
                SealedData::Memory(d) => d.clone(),
                SealedData::Disk(p) => match tokio::fs::read(p).await {
                    Ok(d) => d,
                    Err(e) => {
                        // A spool file that cannot be read is a gap too.
                        tracing::warn!(path = %p.display(), error = %e, "a spooled journal segment cannot be read");
                        self.drop_oldest();
                        continue;
                    }
                },
            };
            let manifest = &next.manifest;
            let data_key = super::segment_key(&self.schedule, manifest.seq);
            let manifest_bytes = serde_json::to_vec_pretty(manifest).unwrap_or_default();
            let stored = async {
                put_bytes(self.store.as_ref(), &data_key, data).await?;
                put_bytes(
                    self.store.as_ref(),
                    &super::manifest_key(&self.schedule, manifest),
                    manifest_bytes,
                )
                .await
            }
            .await;
            if let Err(e) = stored {
                tracing::warn!(schedule = %self.schedule, error = %e, "writing a journal segment failed; kept and retried");
                return Err(e);
            }
            written += 1;
            changes += manifest.changes;
            until = Some(manifest.to);
            if let Some(done) = self.pending.pop_front() {
                match done.data {
                    SealedData::Memory(d) => self.pending_memory -= d.len(),
                    SealedData::Disk(p) => {
                        self.pending_disk -= done.manifest.size;
                        let _ = tokio::fs::remove_file(p).await;
                    }
                }
            }
        }
        self.bridge();
        Ok((written, changes, until))
    }
}

/// zstd, then age to `key` when there is one.
fn seal_bytes(raw: &[u8], key: Option<&ArchiveKey>) -> std::io::Result<Vec<u8>> {
    let compressed = zstd::encode_all(raw, 3)?;
    let Some(key) = key else {
        return Ok(compressed);
    };
    let mut out = Vec::with_capacity(compressed.len() + 256);
    let mut w = key.encrypting(&mut out)?;
    w.write_all(&compressed)?;
    w.finish()?;
    Ok(out)
}

fn spool(dir: &std::path::Path, schedule: &str, sealed: &Sealed) -> std::io::Result<PathBuf> {
    let SealedData::Memory(data) = &sealed.data else {
        return Err(std::io::Error::other("already spooled"));
    };
    let dir = dir.join(schedule);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{:012}.seg", sealed.manifest.seq));
    std::fs::write(&path, data)?;
    Ok(path)
}

/// One resource type's watch.
struct TypeWatch {
    client: kube::Client,
    ar: ApiResource,
    gr: String,
    namespaced: bool,
    template: BackupSpec,
    tx: mpsc::Sender<Msg>,
    resync: watch::Receiver<u64>,
}

/// What a watch or list delivered, as the journal keeps it; `None` when the
/// journal does not keep it (outside the selection, or left to controllers).
fn change(
    gr: &str,
    namespaced: bool,
    template: &BackupSpec,
    op: Op,
    mut object: Value,
    at: DateTime<Utc>,
) -> Option<Entry> {
    let name = object["metadata"]["name"].as_str()?.to_string();
    let namespace = object["metadata"]["namespace"].as_str().map(String::from);
    let selected = match (&namespace, namespaced) {
        (Some(ns), true) => template.includes_namespace(ns),
        (None, false) => gr == gr::NAMESPACES && template.includes_namespace(&name),
        _ => false,
    };
    if !selected {
        return None;
    }
    // A deleted object's fields name who changed it last, not who deleted
    // it (the API does not say): no manager for a delete.
    let (manager, operation) = match op {
        Op::Deleted => (None, None),
        _ => super::last_manager(&object),
    };
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    if crate::cluster::recreated::left_to_the_cluster(gr, &name, &object).is_some() {
        return None;
    }
    Some(Entry::Change {
        at,
        op,
        group_resource: gr.to_string(),
        namespace,
        resource_version: object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        name,
        manager,
        operation,
        object,
    })
}

impl TypeWatch {
    async fn send(&self, entry: Option<Entry>, rv: Option<&str>) -> bool {
        self.tx
            .send(Msg {
                entry,
                cursor: rv.map(|rv| (self.gr.clone(), rv.to_string())),
            })
            .await
            .is_ok()
    }

    /// Lists every object, recording each and the list's end; the list's
    /// resourceVersion, to watch from.
    async fn list(&self) -> Result<String, kube::Error> {
        let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut pager =
            crate::cluster::pager::Pager::new(&self.client, calls, &self.ar, None, None);
        // Each page goes out as it comes: only the names are kept to the end.
        let mut keys = Vec::new();
        while let Some(page) = pager.next().await? {
            let at = super::now();
            for object in page {
                let Some(e) = change(
                    &self.gr,
                    self.namespaced,
                    &self.template,
                    Op::Listed,
                    object,
                    at,
                ) else {
                    continue;
                };
                if let Entry::Change {
                    namespace, name, ..
                } = &e
                {
                    keys.push(super::object_key(namespace.as_deref(), name));
                }
                if !self.send(Some(e), None).await {
                    return Ok(String::new());
                }
            }
        }
        let rv = pager.resource_version().unwrap_or_default().to_string();
        self.send(
            Some(Entry::Listed {
                at: super::now(),
                group_resource: self.gr.clone(),
                keys,
            }),
            Some(&rv),
        )
        .await;
        Ok(rv)
    }

    async fn run(mut self, mut rv: Option<String>, mut known_until: DateTime<Utc>) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &self.ar);
        let mut delay = Duration::from_secs(1);
        loop {
            let current = match rv.clone() {
                Some(rv) => rv,
                None => match self.list().await {
                    Ok(listed) => {
                        known_until = super::now();
                        listed
                    }
                    Err(e) => {
                        tracing::warn!(resource = %self.gr, error = %e, "journal list failed; will retry");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(60));
                        continue;
                    }
                },
            };
            rv = Some(current.clone());
            let params = WatchParams::default().timeout(290);
            let stream = match api.watch(&params, &current).await {
                Ok(s) => s,
                Err(kube::Error::Api(s)) if s.code == 410 => {
                    self.gap(known_until, &s.message).await;
                    rv = None;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(resource = %self.gr, error = %e, "journal watch failed; will retry");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                    continue;
                }
            };
            delay = Duration::from_secs(1);
            let mut stream = std::pin::pin!(stream);
            loop {
                let event = tokio::select! {
                    e = stream.next() => e,
                    changed = self.resync.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // Entries were dropped: the state is made exact again.
                        rv = None;
                        break;
                    }
                };
                let now = super::now();
                let (op, object) = match event {
                    Some(Ok(WatchEvent::Added(o))) => (Op::Added, o),
                    Some(Ok(WatchEvent::Modified(o))) => (Op::Modified, o),
                    Some(Ok(WatchEvent::Deleted(o))) => (Op::Deleted, o),
                    Some(Ok(WatchEvent::Bookmark(b))) => {
                        known_until = now;
                        rv = Some(b.metadata.resource_version.clone());
                        if !self.send(None, rv.as_deref()).await {
                            return;
                        }
                        continue;
                    }
                    Some(Ok(WatchEvent::Error(e))) if e.code == 410 => {
                        self.gap(known_until, &e.message).await;
                        rv = None;
                        break;
                    }
                    Some(Ok(WatchEvent::Error(e))) => {
                        tracing::warn!(resource = %self.gr, error = %e.message, "journal watch ended; resuming");
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(resource = %self.gr, error = %e, "journal watch broke; resuming");
                        break;
                    }
                    None => break,
                };
                known_until = now;
                let object_rv = object.metadata.resource_version.clone();
                let mut value = match serde_json::to_value(&object) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                value["apiVersion"] = Value::String(self.ar.api_version.clone());
                value["kind"] = Value::String(self.ar.kind.clone());
                let entry = change(&self.gr, self.namespaced, &self.template, op, value, now);
                if let Some(v) = &object_rv {
                    rv = Some(v.clone());
                }
                if !self.send(entry, object_rv.as_deref()).await {
                    return;
                }
            }
        }
    }

    /// Records that this type's changes since `from` are unknown.
    async fn gap(&self, from: DateTime<Utc>, why: &str) {
        tracing::warn!(resource = %self.gr, reason = %why, "journal watch expired: recorded as a gap, re-listing");
        self.send(
            Some(Entry::Gap {
                group_resource: self.gr.clone(),
                from,
                to: super::now(),
                reason: format!("the watch could not resume ({why}); bridged by a fresh list"),
            }),
            None,
        )
        .await;
    }
}
