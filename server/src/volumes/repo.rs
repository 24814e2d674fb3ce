//! The volume repository: restic's open repository format (through
//! `rustic_core`), kept under `volumes/` of a storage location and reached
//! through Lifeboat's own [`ObjectStore`] — the server's S3 client, or, for
//! a node agent, the server's repository endpoint.
//!
//! Everything here is blocking (rustic_core is synchronous): call it from
//! `spawn_blocking`. The backend turns each call into the store's async
//! call on the runtime handle it was given.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rustic_core::repofile::{Metadata, Node, NodeType, SnapshotFile};
use rustic_core::{
    BackupOptions, BytesList, CheckOptions, ConfigOptions, Credentials, ErrorKind, FileType, Id,
    IndexedTree, KeyOptions, LocalDestination, LsOptions, OpenStatus, PathList, Progress,
    ProgressBars, ProgressType, PruneOptions, ReadBackend, Repository, RepositoryBackends,
    RepositoryOptions, RestoreOptions, RusticError, RusticProgress, RusticResult, SnapshotOptions,
    WriteBackend,
};
use tokio::runtime::Handle;

use crate::storage::{self, ByteRange, ByteReader, DynStore, StorageError};

/// Where the repository lives inside a location.
pub const PREFIX: &str = "volumes/";

/// The largest repository file read into memory. restic's packs are far
/// smaller (rustic grows them to at most a few hundred MiB); anything larger
/// in the bucket is not a pack this format writes.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The host name written into every snapshot; with the path, it picks a
/// backup's parent.
const HOST: &str = "lifeboat";

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(
        "the volume repository of this location is encrypted with a different recovery key; \
         nothing was changed. Supply the key shown when the location was created."
    )]
    WrongKey,
    #[error(
        "this location has no volume repository yet (no `volumes/config`); the first backup with \
         volume data creates it"
    )]
    NotInitialized,
    #[error(
        "the volume repository of this location is damaged: {0}. Lifeboat never creates a \
         repository over a damaged one; resource archives are not affected. See \
         docs/RELIABILITY.md, \"A damaged volume repository\", for what can be recovered"
    )]
    Damaged(String),
    #[error("the volume repository failed: {0}")]
    Repository(String),
    #[error("the volume repository check found problems: {0}")]
    CheckFailed(String),
}

impl From<Box<RusticError>> for RepoError {
    fn from(err: Box<RusticError>) -> Self {
        if err.is_incorrect_password() {
            return RepoError::WrongKey;
        }
        RepoError::Repository(err.display_log())
    }
}

pub type Result<T, E = RepoError> = std::result::Result<T, E>;

/// The most bytes of tree packs a [`StoreBackend`] keeps in memory.
pub const TREE_PACK_CACHE_BYTES: usize = 64 << 20;

/// Whole tree packs, kept while one repository handle works. rustic reads
/// each directory's tree on its own, one after another; restic's packs hold
/// many trees, so fetching a tree pack once turns a request per directory
/// (a round trip each, serial) into one per pack. Only packs rustic marks
/// cacheable (tree packs) come here, and only those under the bound; data
/// packs are read by range as before. Nothing is kept on disk.
#[derive(Default)]
struct TreePacks {
    packs: std::collections::HashMap<Id, Bytes>,
    order: std::collections::VecDeque<Id>,
    bytes: usize,
}

impl TreePacks {
    fn get(&self, id: &Id) -> Option<Bytes> {
        self.packs.get(id).cloned()
    }

    fn insert(&mut self, id: Id, pack: Bytes) {
        if pack.len() > TREE_PACK_CACHE_BYTES / 4 || self.packs.contains_key(&id) {
            return;
        }
        while self.bytes + pack.len() > TREE_PACK_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.packs.remove(&old) {
                self.bytes -= gone.len();
            }
        }
        self.bytes += pack.len();
        self.order.push_back(id);
        self.packs.insert(id, pack);
    }
}

/// rustic's backend over an [`ObjectStore`](crate::storage::ObjectStore).
#[derive(Clone)]
pub struct StoreBackend {
    store: DynStore,
    runtime: Handle,
    trees: Arc<std::sync::Mutex<TreePacks>>,
}

impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBackend")
            .field("store", &self.store.describe())
            .finish()
    }
}

impl StoreBackend {
    pub fn new(store: DynStore, runtime: Handle) -> Self {
        StoreBackend {
            store,
            runtime,
            trees: Arc::default(),
        }
    }

    /// The object key of a repository file, in restic's layout (packs under
    /// two hex digits of their id).
    pub fn key(tpe: FileType, id: &Id) -> String {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => format!("{PREFIX}config"),
            FileType::Pack => format!("{PREFIX}data/{}/{}", &hex[..2], hex.as_str()),
            other => format!("{PREFIX}{}/{}", other.dirname(), hex.as_str()),
        }
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<Bytes, StorageError> {
        storage::read_capped(self.store.as_ref(), key, range, MAX_FILE_BYTES)
            .await
            .map(Bytes::from)
    }
}

fn backend_error(err: StorageError, what: &str) -> Box<RusticError> {
    RusticError::with_source(
        ErrorKind::Backend,
        "{what} failed in the storage location",
        err,
    )
    .attach_context("what", what.to_string())
}

impl StoreBackend {
    /// A whole tree pack, from memory or fetched once (`None` when it is
    /// too large to keep: read the range instead).
    fn tree_pack(&self, tpe: FileType, id: &Id, key: &str) -> RusticResult<Option<Bytes>> {
        if let Some(pack) = self.trees.lock().ok().and_then(|t| t.get(id)) {
            return Ok(Some(pack));
        }
        let size = self
            .block_on(self.store.head(key))
            .map_err(|err| backend_error(err, "reading"))?
            .size;
        if size > (TREE_PACK_CACHE_BYTES / 4) as u64 {
            return Ok(None);
        }
        let pack = self.read_full(tpe, id)?;
        if let Ok(mut trees) = self.trees.lock() {
            trees.insert(*id, pack.clone());
        }
        Ok(Some(pack))
    }
}

impl ReadBackend for StoreBackend {
    fn location(&self) -> String {
        format!("lifeboat:{}", self.store.describe())
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            return match self.block_on(self.store.head(&format!("{PREFIX}config"))) {
                Ok(meta) => Ok(vec![(Id::default(), size_u32(meta.size))]),
                Err(StorageError::NotFound { .. }) => Ok(Vec::new()),
                Err(err) => Err(backend_error(err, "listing the config")),
            };
        }
        let prefix = format!("{PREFIX}{}/", tpe.dirname());
        let objects = self
            .block_on(storage::list_all(self.store.as_ref(), &prefix))
            .map_err(|err| backend_error(err, "listing"))?;
        Ok(objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta.key.rsplit('/').next()?;
                // Anything that is not a 64-hex-digit name is not the repository's.
                let id = name.parse::<Id>().ok()?;
                Some((id, size_u32(meta.size)))
            })
            .collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let key = Self::key(tpe, id);
        self.block_on(self.read(&key, None))
            .map_err(|err| backend_error(err, "reading"))
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let key = Self::key(tpe, id);
        let (start, end) = (offset as usize, offset as usize + length as usize);
        let whole_pack = if cacheable && tpe == FileType::Pack {
            self.tree_pack(tpe, id, &key)?
        } else {
            None
        };
        let bytes = match whole_pack {
            Some(pack) if end <= pack.len() => pack.slice(start..end),
            Some(_) => Bytes::new(),
            None => {
                let range = ByteRange {
                    start: u64::from(offset),
                    end: Some(u64::from(offset) + u64::from(length)),
                };
                self.block_on(self.read(&key, Some(range)))
                    .map_err(|err| backend_error(err, "reading"))?
            }
        };
        if bytes.len() != length as usize {
            return Err(RusticError::new(
                ErrorKind::Backend,
                "`{key}` is shorter than the index says: the repository is damaged",
            )
            .attach_context("key", key));
        }
        Ok(bytes)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        Self::key(tpe, id)
    }
}

impl WriteBackend for StoreBackend {
    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let key = Self::key(tpe, id);
        let chunks = content
            .into_vec()
            .into_iter()
            .map(Ok::<Bytes, std::io::Error>);
        let body: ByteReader = Box::pin(tokio_util::io::StreamReader::new(futures::stream::iter(
            chunks,
        )));
        self.block_on(self.store.put(&key, body))
            .map(|_| ())
            .map_err(|err| backend_error(err, "writing"))
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let key = Self::key(tpe, id);
        self.block_on(self.store.delete(&key))
            .map_err(|err| backend_error(err, "removing"))
    }
}

fn size_u32(size: u64) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

/// Bytes processed so far, shared with whoever reports progress.
#[derive(Clone, Debug, Default)]
pub struct ByteCounter {
    pub done: Arc<AtomicU64>,
    pub total: Arc<AtomicU64>,
}

impl ByteCounter {
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug)]
struct BytesProgress(ByteCounter);

impl RusticProgress for BytesProgress {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.total.store(len, Ordering::Relaxed);
    }
    fn set_title(&self, _title: &str) {}
    fn inc(&self, inc: u64) {
        self.0.done.fetch_add(inc, Ordering::Relaxed);
    }
    fn finish(&self) {}
}

#[derive(Debug)]
struct Bars(ByteCounter);

impl ProgressBars for Bars {
    fn progress(&self, progress_type: ProgressType, _prefix: &str) -> Progress {
        match progress_type {
            ProgressType::Bytes => Progress::new(BytesProgress(self.0.clone())),
            _ => Progress::hidden(),
        }
    }
}

/// What one volume's backup stored.
#[derive(Clone, Debug)]
pub struct SnapshotInfo {
    pub id: String,
    pub files: u64,
    pub bytes: u64,
    /// Bytes of new data added to the repository (before packing).
    pub bytes_added: u64,
    /// Bytes written to storage for new data and trees (packed, compressed, encrypted).
    pub bytes_uploaded: u64,
    /// What the review after the backup found: files that changed while
    /// they were read, and special files (FIFOs, sockets, devices) that
    /// are not data and are not restored. Each names its path.
    pub warnings: Vec<String>,
}

/// What one volume's restore wrote.
#[derive(Clone, Debug)]
pub struct RestoreInfo {
    pub files: u64,
    pub bytes: u64,
}

/// The node a restore of `snap` starts from: the snapshot's one path
/// (`/<namespace>/<pvc>`). rustic records no node for a source directory
/// that has no entries, so the snapshot of an empty volume is an empty root
/// tree: that is an empty directory, not a missing one. A path missing from
/// a tree that holds something is damage, and an error.
fn volume_root<S: IndexedTree>(repo: &Repository<S>, snap: &SnapshotFile) -> Result<Node> {
    let path = snap.paths.iter().next().cloned().unwrap_or_default();
    match repo.node_from_snapshot_and_path(snap, &path) {
        Ok(node) => Ok(node),
        Err(err) => {
            let root = repo.get_tree(&snap.tree)?;
            if !root.nodes.is_empty() {
                return Err(RepoError::CheckFailed(format!(
                    "snapshot {} does not hold its path {path}: {}",
                    snap.id,
                    err.display_log()
                )));
            }
            let name = path.rsplit('/').next().unwrap_or("volume").to_string();
            let mut node = Node::new_node(
                std::ffi::OsStr::new(&name),
                NodeType::Dir,
                Metadata::default(),
            );
            node.subtree = Some(snap.tree);
            Ok(node)
        }
    }
}

/// What a node is when it is not data: FIFOs, sockets and device files.
fn special(node: &Node) -> Option<&'static str> {
    match node.node_type {
        NodeType::Fifo => Some("a FIFO"),
        NodeType::Socket => Some("a socket"),
        NodeType::Dev { .. } => Some("a block device"),
        NodeType::Chardev { .. } => Some("a character device"),
        _ => None,
    }
}

/// The most review warnings one volume reports (the rest are counted).
const MAX_REVIEW_WARNINGS: usize = 50;

/// Compares what snapshot `snap` recorded of each file with the file in
/// `source` now: one whose size or modification time differs changed while
/// it was read, and its copy may be torn (a live database without a
/// moment of consistency), so it is named. One removed since was read
/// whole before it went, and needs no word. Special files are named too:
/// they are recorded, never restored.
fn review<S: IndexedTree>(
    repo: &Repository<S>,
    snap: &SnapshotFile,
    source: &Path,
) -> Result<Vec<String>> {
    use std::os::unix::fs::MetadataExt;
    let root = volume_root(repo, snap)?;
    let mut warnings = Vec::new();
    let mut more = 0usize;
    let mut note = |warning: String| {
        if warnings.len() < MAX_REVIEW_WARNINGS {
            warnings.push(warning);
        } else {
            more += 1;
        }
    };
    for entry in repo.ls(&root, &LsOptions::default())? {
        let (path, node) = entry?;
        if let Some(what) = special(&node) {
            note(format!(
                "{} is {what}, not data: it is not backed up as a file and a restore does not make it",
                path.display()
            ));
            continue;
        }
        if !node.is_file() {
            continue;
        }
        let Ok(now) = std::fs::symlink_metadata(source.join(&path)) else {
            continue;
        };
        let mtime = i128::from(now.mtime()) * 1_000_000_000 + i128::from(now.mtime_nsec());
        if now.len() != node.meta.size || node.meta.mtime.map(|t| t.as_nanosecond()) != Some(mtime)
        {
            note(format!(
                "{} changed while it was read: its copy may be torn (back up a running \
                 database through a CSI snapshot, or quiesce it first)",
                path.display()
            ));
        }
    }
    if more > 0 {
        warnings.push(format!("and {more} more files like these"));
    }
    Ok(warnings)
}

/// Walks the whole tree a restore of `snap` would read, from the node it
/// starts at to every path below it: a snapshot `verify` passes is one a
/// restore can list.
fn walk<S: IndexedTree>(repo: &Repository<S>, snap: &SnapshotFile) -> Result<u64> {
    let root = volume_root(repo, snap)?;
    let mut seen = 0u64;
    for entry in repo.ls(&root, &LsOptions::default())? {
        entry.map_err(|err| {
            RepoError::CheckFailed(format!(
                "snapshot {}: a tree cannot be read: {}",
                snap.id,
                err.display_log()
            ))
        })?;
        seen += 1;
    }
    Ok(seen)
}

/// An open repository handle: the backend, the password and a progress counter.
pub struct VolumeRepo {
    backend: StoreBackend,
    password: String,
    progress: ByteCounter,
}

impl VolumeRepo {
    pub fn new(backend: StoreBackend, password: &str) -> Self {
        VolumeRepo {
            backend,
            password: password.to_string(),
            progress: ByteCounter::default(),
        }
    }

    /// The counter that backups and restores through this handle advance.
    pub fn progress(&self) -> ByteCounter {
        self.progress.clone()
    }

    fn repository(&self) -> Result<Repository<()>> {
        let mut opts = RepositoryOptions::default();
        opts.no_cache = true;
        let backends = RepositoryBackends::new(Arc::new(self.backend.clone()), None);
        Ok(Repository::new_with_progress(
            &opts,
            &backends,
            Bars(self.progress.clone()),
        )?)
    }

    /// Whether the location has a repository (its `config` object).
    pub fn exists(&self) -> Result<bool> {
        Ok(self.repository()?.config_id()?.is_some())
    }

    /// Creates the repository; refused when one exists.
    pub fn init(&self) -> Result<()> {
        // rustic's extra verification decrypts and decompresses every blob
        // again before writing it, against memory or CPU faults; restic does
        // not, and it cost 10-13% of the backup's throughput in
        // benches/volumes.rs. Blobs are still named by their contents'
        // SHA-256, checked on every read.
        let mut config = ConfigOptions::default();
        config.set_extra_verify = Some(false);
        self.repository()?.init(
            &Credentials::password(&self.password),
            &KeyOptions::default(),
            &config,
        )?;
        Ok(())
    }

    /// Opens the repository, checking the key. A key that opens a key file
    /// whose master key does not decrypt the config is damage (several
    /// repositories created at once over each other), never a wrong key.
    pub fn open(&self) -> Result<Repository<OpenStatus>> {
        let repo = self.repository()?;
        if repo.config_id()?.is_none() {
            return Err(RepoError::NotInitialized);
        }
        match repo.open(&Credentials::password(&self.password)) {
            Ok(open) => Ok(open),
            // C001: rustic's MAC failure, which reaches here wrapped in
            // "error processing Config", so its text is what is certain.
            Err(err) if err.is_code("C001") || err.display_log().contains("MAC check failed") => {
                let keys = self.key_files().unwrap_or_default();
                Err(RepoError::Damaged(format!(
                    "its config does not decrypt with the master key this location's recovery \
                     key opens ({keys} key files under {PREFIX}keys/, where one repository has \
                     1)"
                )))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// How many key files the repository holds.
    pub fn key_files(&self) -> Result<usize> {
        Ok(self.backend.list_with_size(FileType::Key)?.len())
    }

    /// Removes the key files of a creation that never wrote its config (a
    /// process killed inside [`init`](Self::init)): with no config there is
    /// no repository, and a stray key would make the next creation's
    /// repository open with the wrong master key. Only for a caller that
    /// holds the location's repository lock. Returns how many were removed.
    pub fn clear_interrupted_creation(&self) -> Result<usize> {
        if self.repository()?.config_id()?.is_some() {
            return Ok(0);
        }
        let keys = self.backend.list_with_size(FileType::Key)?;
        for (id, _) in &keys {
            self.backend.remove(FileType::Key, id, false)?;
        }
        Ok(keys.len())
    }

    /// Opens the repository, creating it first when the location has none.
    pub fn open_or_init(&self) -> Result<Repository<OpenStatus>> {
        match self.open() {
            Err(RepoError::NotInitialized) => {
                self.init()?;
                self.open()
            }
            other => other,
        }
    }

    /// Backs up the tree at `source` as `as_path`, with `tags`. The previous
    /// snapshot of the same `as_path` is the parent, so unchanged files are not read again.
    pub fn backup(&self, source: &Path, as_path: &str, tags: &[String]) -> Result<SnapshotInfo> {
        let repo = self.open()?;
        // The parent is chosen before the index is read. A backup running
        // beside this one writes its index files before its snapshot file,
        // so a snapshot listed here has its trees in the index read next;
        // one listed after that read (rustic's own choice, made inside
        // `backup`) may not, and its trees would be "not found in index".
        let parent = repo
            .get_matching_snapshots(|snap| {
                snap.hostname == HOST && snap.paths.iter().any(|path| path == as_path)
            })?
            .into_iter()
            .max_by(|a, b| a.time.cmp(&b.time));
        let repo = repo.to_indexed_ids()?;
        let mut snap_opts = SnapshotOptions::default();
        snap_opts.host = Some(HOST.to_string());
        for tag in tags {
            snap_opts = snap_opts.add_tags(tag)?;
        }
        let snap = snap_opts.to_snapshot()?;
        let mut opts = BackupOptions::default();
        opts.as_path = Some(as_path.into());
        // The same volume is read through a different pod path each time.
        opts.parent_opts.ignore_inode = true;
        opts.parent_opts.ignore_ctime = true;
        match parent {
            Some(parent) => opts.parent_opts.parents = vec![parent.id.to_hex().to_string()],
            None => opts.parent_opts.force = true,
        }
        let source_str = source.to_str().ok_or_else(|| {
            RepoError::Repository(format!("the path {} is not UTF-8", source.display()))
        })?;
        let sources = PathList::from_string(source_str)?
            .sanitize()
            .map_err(|err| RepoError::Repository(err.to_string()))?;
        let snap: SnapshotFile = repo.backup(&opts, &sources, snap)?;
        let summary = snap.summary.clone().unwrap_or_default();
        // The index now holds the snapshot's trees: a fresh handle reads them.
        let written = self.open()?.to_indexed_ids()?;
        let warnings = review(&written, &snap, source)?;
        Ok(SnapshotInfo {
            id: snap.id.to_hex().to_string(),
            files: summary.total_files_processed,
            bytes: summary.total_bytes_processed,
            bytes_added: summary.data_added,
            bytes_uploaded: summary.data_added_packed,
            warnings,
        })
    }

    /// Restores snapshot `id` into the directory `dest`: modes, owners,
    /// times, symlinks and sparse files as they were.
    pub fn restore(&self, id: &str, dest: &Path) -> Result<RestoreInfo> {
        let repo = self.open()?.to_indexed()?;
        let snap = repo.get_snapshot_from_str(id, |_| true)?;
        let node = volume_root(&repo, &snap)?;
        let dest_str = format!(
            "{}/",
            dest.to_str().ok_or_else(|| {
                RepoError::Repository(format!("the path {} is not UTF-8", dest.display()))
            })?
        );
        let destination = LocalDestination::new(&dest_str, true, !node.is_dir())?;
        let mut opts = RestoreOptions::default();
        // Owners by number: the names on the agent's image mean nothing to
        // the containers that use the volume.
        opts.numeric_id = true;
        // Holes stay holes. The option's type is not exported; it reads from its serde name.
        opts.sparse = Some(
            serde_json::from_value(serde_json::json!("ByContent"))
                .map_err(|err| RepoError::Repository(err.to_string()))?,
        );
        // FIFOs, sockets and devices are not data: never made in a volume.
        let data = |entry: &RusticResult<(std::path::PathBuf, Node)>| !matches!(entry, Ok((_, node)) if special(node).is_some());
        let ls = repo.ls(&node, &LsOptions::default())?.filter(data);
        let plan = repo.prepare_restore(&opts, ls, &destination, false)?;
        let bytes = plan.restore_size;
        let files = plan.stats.files.restore;
        self.progress.total.store(bytes, Ordering::Relaxed);
        let ls = repo.ls(&node, &LsOptions::default())?.filter(data);
        repo.restore(plan, &opts, ls, &destination)?;
        Ok(RestoreInfo { files, bytes })
    }

    /// Forgets snapshots (their data stays until [`prune`](Self::prune)).
    pub fn forget(&self, ids: &[String]) -> Result<()> {
        let repo = self.open()?;
        let mut found = Vec::new();
        for id in ids {
            match repo.get_snapshot_from_str(id, |_| true) {
                Ok(snap) => found.push(snap.id),
                // Already forgotten: nothing to do.
                Err(err) if err.display_log().contains("No suitable id found") => {}
                Err(err) => return Err(err.into()),
            }
        }
        repo.delete_snapshots(&found)?;
        Ok(())
    }

    /// Forgets every snapshot tagged `tag` (`backup=<name>`); returns how many.
    pub fn forget_tagged(&self, tag: &str) -> Result<usize> {
        let repo = self.open()?;
        let ids: Vec<_> = repo
            .get_matching_snapshots(|snap| snap.tags.contains(tag))?
            .into_iter()
            .map(|snap| snap.id)
            .collect();
        repo.delete_snapshots(&ids)?;
        Ok(ids.len())
    }

    /// Removes data no snapshot references. `instant` deletes unused packs now
    /// instead of after restic's grace period (only safe with no backup running).
    pub fn prune(&self, instant: bool) -> Result<u64> {
        let repo = self.open()?;
        let mut opts = PruneOptions::default();
        opts.instant_delete = instant;
        let plan = repo.prune_plan(&opts)?;
        let removed = plan.stats.size_sum().unused;
        repo.prune(&opts, plan)?;
        Ok(removed)
    }

    /// Checks the structure and index (not the data blobs' contents).
    pub fn check(&self) -> Result<()> {
        let repo = self.open()?;
        let results = repo.check(CheckOptions::default())?;
        results
            .is_ok()
            .map_err(|err| RepoError::CheckFailed(err.display_log()))
    }

    /// Reads back the data of the snapshots `ids` (every blob their trees
    /// reach, or the `sample` of their packs rustic's `read_data_subset`
    /// takes: `"10%"`, `"1/5"`, a size), checking each against its hash.
    /// A missing snapshot is an error naming it.
    pub fn verify_snapshots(&self, ids: &[String], sample: Option<&str>) -> Result<()> {
        let repo = self.open()?.to_indexed_ids()?;
        let mut trees = Vec::new();
        for id in ids {
            let snap = repo.get_snapshot_from_str(id, |_| true).map_err(|err| {
                RepoError::CheckFailed(format!("snapshot {id} is missing: {}", err.display_log()))
            })?;
            trees.push(snap.tree);
            walk(&repo, &snap)?;
        }
        let mut opts = CheckOptions::default();
        opts.read_data = true;
        if let Some(sample) = sample {
            opts.read_data_subset = sample.parse()?;
        }
        repo.check_with_trees(opts, trees)?
            .is_ok()
            .map_err(|err| RepoError::CheckFailed(err.display_log()))
    }

    /// The ids of all snapshots.
    pub fn snapshots(&self) -> Result<Vec<String>> {
        let repo = self.open()?;
        Ok(repo
            .get_all_snapshots()?
            .into_iter()
            .map(|snap| snap.id.to_hex().to_string())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        format!("{n:02x}").repeat(32).parse().expect("an id")
    }

    #[test]
    fn tree_packs_stay_within_their_bound_dropping_the_oldest() {
        let mut trees = TreePacks::default();
        let quarter = TREE_PACK_CACHE_BYTES / 4;
        for n in 0..6 {
            trees.insert(id(n), Bytes::from(vec![n; quarter]));
            assert!(trees.bytes <= TREE_PACK_CACHE_BYTES);
        }
        assert!(trees.get(&id(0)).is_none() && trees.get(&id(1)).is_none());
        assert_eq!(trees.get(&id(5)).map(|p| p[0]), Some(5));
        assert_eq!(trees.packs.len(), 4);
        // A pack over a quarter of the bound is never kept.
        trees.insert(id(9), Bytes::from(vec![9; quarter + 1]));
        assert!(trees.get(&id(9)).is_none());
        assert_eq!(trees.bytes, 4 * quarter);
    }
}
