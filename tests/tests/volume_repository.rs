//! The volume repository on a real S3 server (Garage): a tree of ~10,000
//! files with symlinks, empty and sparse files, odd modes and times comes
//! back identical; a second backup after changing 1% uploads about that
//! much; a wrong key changes nothing; forgetting and pruning leave a
//! repository that checks clean; Debian's `restic` reads what Lifeboat wrote;
//! a backup finished while another of the same volume ran is not taken as
//! the other's parent.

use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result};
use lifeboat::storage::{DynStore, list_all};
use lifeboat::volumes::repo::{RepoError, StoreBackend, VolumeRepo};
use lifeboat_e2e::S3Server;
use lifeboat_e2e::trees::{TreeShape, build_tree, change_files, tree_digest};

const GIB: u64 = 1 << 30;

async fn repo(store: &DynStore, key: &str) -> VolumeRepo {
    VolumeRepo::new(
        StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
        key,
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

async fn keys(store: &DynStore) -> Vec<(String, u64)> {
    list_all(store.as_ref(), "")
        .await
        .expect("listing")
        .into_iter()
        .map(|meta| (meta.key, meta.size))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_round_trips_incrementally_and_restic_reads_it() -> Result<()> {
    let s3 = S3Server::start().await?;
    let store: DynStore = Arc::new(s3.store("cluster-a").await?);
    let work = tempfile::tempdir()?;
    let source = work.path().join("source");
    std::fs::create_dir(&source)?;
    build_tree(
        &source,
        TreeShape {
            files: 10_000,
            sparse_bytes: GIB,
            seed: 7,
        },
    )?;
    let before = tree_digest(&source)?;
    assert!(before.entries > 10_000, "{before:?}");

    // First backup: creates the repository.
    let repository = repo(&store, "correct horse battery staple").await;
    let (first, repository) = blocking(move || {
        repository.open_or_init().map(|_| ())?;
        let info = repository.backup(&source, "/shop/data-db-0", &["backup=b1".into()]);
        info.map(|info| (info, repository))
    })
    .await?;
    // The files, the sparse file, `empty`, and a symlink per directory.
    assert_eq!(first.files, 10_000 + 2 + 200, "{first:?}");
    assert!(first.bytes >= GIB, "{first:?}");
    // The sparse gigabyte is mostly zeros: deduplicated and compressed.
    assert!(first.bytes_uploaded < 100 << 20, "{first:?}");
    let (done, total) = repository.progress().get();
    assert_eq!(done, first.bytes, "byte progress");
    // The scan's total also counts symlinks' targets.
    assert!(
        total >= done && total - done < 64 * 1024,
        "{done} of {total}"
    );

    // Restore into a fresh directory: identical, and the holes stay holes.
    let restored = work.path().join("restored");
    let id = first.id.clone();
    let (repository, info) = blocking({
        let restored = restored.clone();
        move || {
            let info = repository.restore(&id, &restored);
            info.map(|info| (repository, info))
        }
    })
    .await?;
    let after = tree_digest(&restored)?;
    assert_eq!(after.digest, before.digest, "restored tree differs");
    assert_eq!(info.bytes, before.bytes);
    assert!(
        after.allocated < before.bytes / 4,
        "the sparse file was written out densely: {after:?}"
    );

    // Change 1% of the files: the second backup uploads about that much.
    let source = work.path().join("source");
    let changed = change_files(&source, 100)?;
    let (second, repository) = blocking({
        let source = source.clone();
        move || {
            let info = repository.backup(&source, "/shop/data-db-0", &["backup=b2".into()]);
            info.map(|info| (info, repository))
        }
    })
    .await?;
    let non_sparse = before.bytes - GIB;
    eprintln!("first {first:?}\nsecond {second:?}\nchanged {changed} of {non_sparse}");
    assert!(second.bytes_added >= changed, "{second:?}");
    assert!(
        second.bytes_uploaded * 100 <= first.bytes_uploaded * 3,
        "changed {changed} bytes of {non_sparse} but uploaded {} (first backup: {})",
        second.bytes_uploaded,
        first.bytes_uploaded
    );

    // Debian's restic lists both snapshots and restores one file exactly.
    let restic = |args: &[&str]| -> Result<std::process::Output> {
        Command::new("restic")
            .args([
                "-r",
                &format!("s3:{}/{}/cluster-a/volumes", s3.endpoint, s3.bucket),
            ])
            .args(["-o", &format!("s3.region={}", s3.region)])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &s3.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key)
            .env("RESTIC_PASSWORD", "correct horse battery staple")
            .env("RESTIC_CACHE_DIR", work.path().join("restic-cache"))
            .output()
            .context("running restic (apt install restic)")
    };
    let listed = restic(&["snapshots", "--json"])?;
    assert!(
        listed.status.success(),
        "restic snapshots: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let snapshots: serde_json::Value = serde_json::from_slice(&listed.stdout)?;
    let ids: Vec<&str> = snapshots
        .as_array()
        .context("restic's snapshot list")?
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(
        ids.contains(&first.id.as_str()) && ids.contains(&second.id.as_str()),
        "{ids:?}"
    );
    let dumped = restic(&["dump", &second.id, "/shop/data-db-0/d6/e4/f/file-3210.txt"])?;
    assert!(
        dumped.status.success(),
        "restic dump: {}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    assert_eq!(
        dumped.stdout,
        std::fs::read(source.join("d6/e4/f/file-3210.txt"))?
    );
    let check = restic(&["check"])?;
    assert!(
        check.status.success(),
        "restic check: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Forget the first snapshot and prune: the repository checks clean and
    // the second snapshot still restores identically.
    let second_id = second.id.clone();
    let expected = tree_digest(&source)?;
    let restored2 = work.path().join("restored2");
    let stored_before_prune: u64 = keys(&store).await.iter().map(|(_, size)| size).sum();
    blocking({
        let restored2 = restored2.clone();
        move || -> Result<(), RepoError> {
            repository.forget(std::slice::from_ref(&first.id))?;
            repository.prune(true)?;
            repository.check()?;
            assert_eq!(repository.snapshots()?, vec![second_id.clone()]);
            repository.restore(&second_id, &restored2).map(|_| ())
        }
    })
    .await?;
    assert_eq!(tree_digest(&restored2)?.digest, expected.digest);
    let stored_after_prune: u64 = keys(&store).await.iter().map(|(_, size)| size).sum();
    assert!(
        stored_after_prune < stored_before_prune,
        "prune removed nothing: {stored_before_prune} → {stored_after_prune}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_and_changes_nothing() -> Result<()> {
    let s3 = S3Server::start().await?;
    let store: DynStore = Arc::new(s3.store("keys").await?);
    let work = tempfile::tempdir()?;
    std::fs::write(work.path().join("a"), b"data")?;
    let right = repo(&store, "the right key").await;
    let path = work.path().to_path_buf();
    blocking(move || {
        right.open_or_init()?;
        right.backup(&path, "/ns/pvc", &[]).map(|_| ())
    })
    .await?;
    let before = keys(&store).await;

    let wrong = repo(&store, "not the key").await;
    let path = work.path().to_path_buf();
    let (open, backup) = blocking(move || {
        (
            wrong.open().map(|_| ()),
            wrong.backup(&path, "/ns/pvc", &[]).map(|_| ()),
        )
    })
    .await;
    assert!(matches!(open, Err(RepoError::WrongKey)), "{open:?}");
    let backup = backup.expect_err("a backup with the wrong key");
    assert!(
        backup.to_string().contains("different recovery key"),
        "{backup}"
    );
    assert_eq!(keys(&store).await, before, "a wrong key changed the bucket");

    // No repository at all says so, rather than "wrong key".
    let empty: DynStore = Arc::new(s3.store("empty").await?);
    let none = repo(&empty, "any").await;
    let opened = blocking(move || none.open().map(|_| ())).await;
    assert!(
        matches!(opened, Err(RepoError::NotInitialized)),
        "{opened:?}"
    );
    Ok(())
}

/// What the review after a backup names: a file written to throughout its
/// read (its copy may be torn) and a FIFO (not data; a restore does not make
/// it), while the files that held still are not named, and the rest of the
/// tree restores whole. On a local directory: the review is the same on any store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_changed_while_read_and_special_files_are_named() -> Result<()> {
    let work = tempfile::tempdir()?;
    let store: DynStore = Arc::new(lifeboat::storage::LocalStore::new(
        work.path().join("store"),
    )?);
    let source = work.path().join("source");
    std::fs::create_dir_all(source.join("db"))?;
    std::fs::write(source.join("steady.txt"), b"holds still")?;
    let live = source.join("db/live.bin");
    {
        let mut random = std::fs::File::open("/dev/urandom")?;
        let mut out = std::fs::File::create(&live)?;
        std::io::copy(&mut std::io::Read::take(&mut random, 32 << 20), &mut out)?;
    }
    let fifo = source.join("db/pipe");
    let made = Command::new("mkfifo").arg(&fifo).status()?;
    anyhow::ensure!(made.success(), "mkfifo failed");

    // A writer appends to the live file for as long as the backup runs.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, live) = (stop.clone(), live.clone());
        std::thread::spawn(move || -> std::io::Result<u64> {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().append(true).open(&live)?;
            let mut writes = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                file.write_all(b"a row\n")?;
                file.flush()?;
                writes += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(writes)
        })
    };
    let repository = repo(&store, "review").await;
    let (info, repository) = blocking(move || {
        repository.open_or_init().map(|_| ())?;
        let info = repository.backup(&source, "/db/data", &["backup=b1".into()]);
        info.map(|i| (i, repository))
    })
    .await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer panicked"))??;
    assert!(writes > 0);
    let named = |needle: &str| info.warnings.iter().any(|w| w.contains(needle));
    assert!(
        named("db/live.bin changed while it was read"),
        "{:?}",
        info.warnings
    );
    assert!(named("db/pipe is a FIFO"), "{:?}", info.warnings);
    assert!(!named("steady.txt"), "{:?}", info.warnings);

    // The restore makes no FIFO, and the steady file is whole.
    let target = work.path().join("restored");
    std::fs::create_dir(&target)?;
    let id = info.id.clone();
    let into = target.clone();
    blocking(move || repository.restore(&id, &into)).await?;
    assert_eq!(std::fs::read(target.join("steady.txt"))?, b"holds still");
    assert!(target.join("db/live.bin").is_file());
    assert!(
        std::fs::symlink_metadata(target.join("db/pipe")).is_err(),
        "a FIFO was made by the restore"
    );
    Ok(())
}

/// 100,000 files in one directory (a mail spool, a cache): one tree of
/// 100,000 entries, backed up and restored whole, names and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_100000_files_round_trips() -> Result<()> {
    let work = tempfile::tempdir()?;
    let store: DynStore = Arc::new(lifeboat::storage::LocalStore::new(
        work.path().join("store"),
    )?);
    let source = work.path().join("source");
    let spool = source.join("spool");
    std::fs::create_dir_all(&spool)?;
    for n in 0..100_000u32 {
        // Every hundredth holds a little, the rest are empty, as spools are.
        let body = if n % 100 == 0 {
            n.to_string()
        } else {
            String::new()
        };
        std::fs::write(spool.join(format!("msg-{n:06}")), body)?;
    }
    let before = tree_digest(&source)?;
    assert_eq!(before.entries, 100_001);
    let repository = repo(&store, "spool").await;
    let target = work.path().join("restored");
    std::fs::create_dir(&target)?;
    let into = target.clone();
    let info = blocking(move || -> Result<_> {
        repository.open_or_init().map(|_| ())?;
        let info = repository.backup(&source, "/mail/spool", &["backup=b1".into()])?;
        repository.restore(&info.id, &into)?;
        Ok(info)
    })
    .await?;
    assert_eq!(info.files, 100_000, "{info:?}");
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    assert_eq!(tree_digest(&target)?.digest, before.digest);
    Ok(())
}

/// The warnings rustic_core logged about a parent snapshot it could not
/// read, as the node agent's collector would report them.
static PARENT_WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct ParentWarnings;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ParentWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, _: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{value:?} "));
            }
        }
        if *event.metadata().level() != tracing::Level::WARN {
            return;
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        if text.0.contains("parent") {
            PARENT_WARNINGS.lock().expect("lock").push(text.0);
        }
    }
}

/// A store that stops one repository handle at its first operation after
/// it read the index, until the test lets it go: the moment another backup
/// of the same volume can finish in between.
struct AfterIndex {
    inner: DynStore,
    read_index: std::sync::atomic::AtomicBool,
    gate: tokio::sync::Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            tokio::sync::oneshot::Receiver<()>,
        )>,
    >,
}

impl AfterIndex {
    async fn pass(&self, key: &str) {
        use std::sync::atomic::Ordering;
        if key.starts_with("volumes/index") {
            self.read_index.store(true, Ordering::SeqCst);
            return;
        }
        if !self.read_index.load(Ordering::SeqCst) {
            return;
        }
        let gate = self.gate.lock().await.take();
        if let Some((stopped, go)) = gate {
            let _ = stopped.send(());
            let _ = go.await;
        }
    }
}

#[async_trait::async_trait]
impl lifeboat::storage::ObjectStore for AfterIndex {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put(
        &self,
        key: &str,
        body: lifeboat::storage::ByteReader,
    ) -> lifeboat::storage::Result<lifeboat::storage::ObjectMeta> {
        self.pass(key).await;
        self.inner.put(key, body).await
    }
    async fn get(
        &self,
        key: &str,
        range: Option<lifeboat::storage::ByteRange>,
    ) -> lifeboat::storage::Result<lifeboat::storage::ByteReader> {
        self.pass(key).await;
        self.inner.get(key, range).await
    }
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<String>,
        max_keys: usize,
    ) -> lifeboat::storage::Result<lifeboat::storage::ListPage> {
        self.pass(prefix).await;
        self.inner.list(prefix, continuation, max_keys).await
    }
    async fn head(&self, key: &str) -> lifeboat::storage::Result<lifeboat::storage::ObjectMeta> {
        self.pass(key).await;
        self.inner.head(key).await
    }
    async fn delete(&self, key: &str) -> lifeboat::storage::Result<()> {
        self.pass(key).await;
        self.inner.delete(key).await
    }
    async fn check(&self) -> lifeboat::storage::Availability {
        self.inner.check().await
    }
}

/// Two backups of one volume side by side (backups of a namespace started
/// together): the first reads the index, the second finishes, then the
/// first goes on. It must take as its parent a snapshot whose trees are in
/// the index it read. rustic_core chose the parent after reading the index,
/// took the second's snapshot and warned "Tree ID … not found in index",
/// and the node agent reported a complete backup as PartiallyFailed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_finished_meanwhile_is_not_taken_as_parent() -> Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(ParentWarnings)
        .try_init()
        .context("the warning collector")?;
    let work = tempfile::tempdir()?;
    let store: DynStore = Arc::new(lifeboat::storage::LocalStore::new(
        work.path().join("store"),
    )?);
    let source = work.path().join("source");
    std::fs::create_dir(&source)?;
    build_tree(
        &source,
        TreeShape {
            files: 300,
            sparse_bytes: 0,
            seed: 3,
        },
    )?;
    let first = repo(&store, "side by side").await;
    let from = source.clone();
    let s0 = blocking(move || -> Result<_> {
        first.open_or_init().map(|_| ())?;
        Ok(first.backup(&from, "/data/pgdata", &["backup=b0".into()])?)
    })
    .await?;

    let (stopped_tx, stopped) = tokio::sync::oneshot::channel();
    let (go, go_rx) = tokio::sync::oneshot::channel();
    let gated: DynStore = Arc::new(AfterIndex {
        inner: store.clone(),
        read_index: false.into(),
        gate: tokio::sync::Mutex::new(Some((stopped_tx, go_rx))),
    });
    let slow = repo(&gated, "side by side").await;
    let from = source.clone();
    let slow = tokio::task::spawn_blocking(move || {
        slow.backup(&from, "/data/pgdata", &["backup=b1".into()])
    });
    stopped
        .await
        .context("the first backup never read the index")?;
    // The second finds a file changed: its snapshot has a new tree.
    assert!(change_files(&source, 50)? > 0);
    let quick = repo(&store, "side by side").await;
    let from = source.clone();
    let s2 = blocking(move || quick.backup(&from, "/data/pgdata", &["backup=b2".into()])).await?;
    let _ = go.send(());
    let s1 = slow.await.context("the first backup's thread")??;

    let warnings = PARENT_WARNINGS.lock().expect("lock").clone();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(
        s1.warnings.is_empty() && s2.warnings.is_empty(),
        "{s1:?} {s2:?}"
    );
    assert!(s0.warnings.is_empty(), "{s0:?}");
    for id in [s1.id, s2.id] {
        let target = work.path().join(&id);
        std::fs::create_dir(&target)?;
        let into = target.clone();
        let repository = repo(&store, "side by side").await;
        blocking(move || repository.restore(&id, &into)).await?;
        assert_eq!(tree_digest(&target)?.digest, tree_digest(&source)?.digest);
    }
    Ok(())
}
