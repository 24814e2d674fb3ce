//! Volume data benchmark: `cargo bench -p lifeboat-e2e --bench volumes`.
//!
//! 2 GiB of mixed files (half compressible text, half random; sizes from
//! 1 KiB to 256 MiB), on the same data and in the same run, against Garage
//! on loopback. Prints, as `name: value unit`:
//! - Lifeboat's volume backup (the repository the agents write, reached here
//!   directly through the server's S3 store) against `tar -c | zstd -3 -T0 >
//!   file` (goal ≥ 0.8 of its throughput) and against Debian's `restic
//!   backup` to the same Garage (goal ≥ 1.5× its throughput);
//! - a second backup after changing 1% of the data: bytes uploaded against
//!   the first (goal ≤ 3%) and time against the first (goal ≤ 20%);
//! - restore against `zstd -dc | tar -x` of the same data (goal ≥ 0.8);
//! - `backup verify`'s read-back of the volume data, in MiB/s, beside plain
//!   GETs of the same packs;
//! - peak RSS of a process backing up 1,000,000 small files (goal ≤ 300 MiB;
//!   `LIFEBOAT_BENCH_SMALL_FILES` changes the count).
//!
//! `-- --repository-only local|s3` times only the repository's backup and
//! restore of the same data (to a local directory or to Garage): the run to
//! put under `perf record`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use lifeboat::storage::{DynStore, LocalStore, list_all};
use lifeboat::volumes::repo::{StoreBackend, VolumeRepo};
use lifeboat_e2e::S3Server;

const MIB: u64 = 1 << 20;
const KEY: &str = "bench recovery key";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes `size` bytes: random, or text that compresses like logs do.
fn write_file(path: &Path, size: u64, random: bool, rng: &mut Rng) {
    let mut file =
        std::io::BufWriter::with_capacity(MIB as usize, std::fs::File::create(path).unwrap());
    let mut left = size;
    let mut block = vec![0u8; MIB as usize];
    while left > 0 {
        let n = left.min(MIB) as usize;
        if random {
            for chunk in block[..n].chunks_mut(8) {
                let v = rng.next().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
        } else {
            let mut line = Vec::with_capacity(n);
            while line.len() < n {
                let r = rng.next();
                writeln!(
                    line,
                    "2026-11-30T04:{:02}:{:02}Z INFO request id={} path=/api/v1/orders/{} status={} took={}ms",
                    r % 60, (r >> 8) % 60, r % 100_000, (r >> 16) % 5000, [200, 201, 404, 500][(r % 4) as usize], (r >> 24) % 900
                )
                .unwrap();
            }
            block[..n].copy_from_slice(&line[..n]);
        }
        file.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
}

/// 2 GiB: files of 1 KiB … 256 MiB, half of the bytes random.
fn mixed_tree(root: &Path) -> (u64, usize) {
    let mut rng = Rng(0x5eed);
    let mut sizes = vec![256 * MIB, 128 * MIB, 64 * MIB, 64 * MIB, 32 * MIB, 32 * MIB];
    for _ in 0..64 {
        sizes.push(4 * MIB);
    }
    for _ in 0..1024 {
        sizes.push(64 * 1024);
    }
    for _ in 0..4096 {
        sizes.push(1024 + rng.next() % 16_384);
    }
    let target = 2 * 1024 * MIB;
    let mut total = 0;
    let mut count = 0;
    for (i, size) in sizes.into_iter().cycle().enumerate() {
        if total >= target {
            break;
        }
        let size = size.min(target - total);
        let dir = root.join(format!("d{}", i % 32));
        std::fs::create_dir_all(&dir).unwrap();
        write_file(&dir.join(format!("f{i}")), size, i % 2 == 0, &mut rng);
        total += size;
        count += 1;
    }
    (total, count)
}

/// Rewrites every hundredth file (by name) with new content of its size.
fn change_one_percent(root: &Path) -> u64 {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in std::fs::read_dir(root).unwrap().flatten() {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            files.push(f.path());
        }
    }
    files.sort();
    let total: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    let mut rng = Rng(0xc0ffee);
    let mut changed = 0;
    // Small and middle-sized files until 1% of the bytes changed.
    for f in files
        .iter()
        .filter(|f| f.metadata().unwrap().len() <= 4 * MIB)
    {
        if changed * 100 >= total {
            break;
        }
        let size = f.metadata().unwrap().len();
        write_file(f, size, true, &mut rng);
        changed += size;
    }
    changed
}

fn seconds(f: impl FnOnce()) -> f64 {
    let started = Instant::now();
    f();
    started.elapsed().as_secs_f64()
}

fn sh(script: &str) {
    let status = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
}

fn drop_caches() {
    // Only possible as root; otherwise every run reads from the page cache alike.
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    sh("sync");
}

async fn stored_bytes(store: &DynStore) -> u64 {
    list_all(store.as_ref(), "")
        .await
        .unwrap()
        .iter()
        .map(|o| o.size)
        .sum()
}

/// The child process of the memory measurement: backs up `files` small
/// files into a local repository and prints its peak RSS.
fn small_files_child(files: usize) {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    let started = Instant::now();
    for i in 0..files {
        let dir = source.join(format!("{}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("{i}.txt")), format!("row {i}\n")).unwrap();
    }
    eprintln!(
        "made {files} files in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let before = lifeboat_e2e::peak_rss_mib();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store: DynStore = Arc::new(LocalStore::new(work.path().join("repo")).unwrap());
    let repo = VolumeRepo::new(StoreBackend::new(store, runtime.handle().clone()), KEY);
    let started = Instant::now();
    let info = std::thread::spawn(move || {
        repo.open_or_init().unwrap();
        repo.backup(&source, "/bench/small", &[]).unwrap()
    })
    .join()
    .unwrap();
    println!("small_files: {}", info.files);
    println!(
        "small_files_backup_seconds: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("small_files_rss_before_mib: {before:.0} MiB");
    println!(
        "small_files_peak_rss_mib: {:.0} MiB (goal <= 300)",
        lifeboat_e2e::peak_rss_mib()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--small-files-child") {
        let files = args[i + 1].parse().unwrap();
        return tokio::task::spawn_blocking(move || small_files_child(files))
            .await
            .unwrap();
    }
    let work = tempfile::tempdir_in(
        std::env::var("LIFEBOAT_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()),
    )
    .expect("work dir");
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    let (bytes, files) = mixed_tree(&source);
    println!("data: {} MiB in {files} files", bytes / MIB);
    let s3 = S3Server::start().await.expect("garage");
    if let Some(i) = args.iter().position(|a| a == "--repository-only") {
        let store: DynStore = match args.get(i + 1).map(String::as_str) {
            Some("s3") => Arc::new(s3.store("lifeboat").await.unwrap()),
            _ => Arc::new(LocalStore::new(work.path().join("local-repo")).unwrap()),
        };
        return repository_only(store, work.path(), &source, bytes);
    }

    // The reference: tar | zstd -3 -T0 into a file.
    drop_caches();
    let archive = work.path().join("data.tar.zst");
    let tar_s = seconds(|| {
        sh(&format!(
            "tar -C {} -cf - . | zstd -3 -T0 -q -o {}",
            source.display(),
            archive.display()
        ))
    });
    let tar_mb_s = bytes as f64 / MIB as f64 / tar_s;
    println!(
        "tar_zstd_seconds: {tar_s:.1} s ({tar_mb_s:.0} MiB/s, {} MiB written)",
        archive.metadata().unwrap().len() / MIB
    );

    // Lifeboat's repository on Garage.
    let store: DynStore = Arc::new(s3.store("lifeboat").await.unwrap());
    let repo = Arc::new(VolumeRepo::new(
        StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
        KEY,
    ));
    drop_caches();
    let (first, lifeboat_s) = {
        let (repo, source) = (repo.clone(), source.clone());
        let started = Instant::now();
        let info = tokio::task::spawn_blocking(move || {
            repo.open_or_init().unwrap();
            repo.backup(&source, "/bench/data", &[]).unwrap()
        })
        .await
        .unwrap();
        (info, started.elapsed().as_secs_f64())
    };
    let lifeboat_mb_s = bytes as f64 / MIB as f64 / lifeboat_s;
    println!(
        "lifeboat_backup_seconds: {lifeboat_s:.1} s ({lifeboat_mb_s:.0} MiB/s, {} MiB uploaded)",
        first.bytes_uploaded / MIB
    );

    // `backup verify`'s volume part: the snapshot's data read back and
    // checked against its hashes, beside plain GETs of the same packs (four
    // at a time).
    let packs = list_all(store.as_ref(), "volumes/data/").await.unwrap();
    let pack_mib = packs.iter().map(|p| p.size).sum::<u64>() as f64 / MIB as f64;
    drop_caches();
    let get_s = {
        use futures::StreamExt;
        let started = Instant::now();
        futures::stream::iter(packs.iter().map(|p| {
            let store = store.clone();
            let key = p.key.clone();
            async move {
                lifeboat::storage::get_bytes(store.as_ref(), &key)
                    .await
                    .unwrap()
                    .len()
            }
        }))
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
        started.elapsed().as_secs_f64()
    };
    drop_caches();
    let verify_s = {
        let (repo, id) = (repo.clone(), first.id.clone());
        let started = Instant::now();
        tokio::task::spawn_blocking(move || repo.verify_snapshots(&[id], None).unwrap())
            .await
            .unwrap();
        started.elapsed().as_secs_f64()
    };
    println!(
        "verify_volume_data_seconds: {verify_s:.1} s ({:.0} MiB/s of {pack_mib:.0} MiB of packs)",
        pack_mib / verify_s
    );
    println!(
        "plain_get_of_the_packs_seconds: {get_s:.1} s ({:.0} MiB/s)",
        pack_mib / get_s
    );

    // The same into a local directory: what the repository costs without
    // the S3 server sharing the two cores.
    drop_caches();
    let local_s = {
        let local: DynStore = Arc::new(LocalStore::new(work.path().join("local-repo")).unwrap());
        let repo = VolumeRepo::new(
            StoreBackend::new(local, tokio::runtime::Handle::current()),
            KEY,
        );
        let source = source.clone();
        let started = Instant::now();
        tokio::task::spawn_blocking(move || {
            repo.open_or_init().unwrap();
            repo.backup(&source, "/bench/data", &[]).unwrap()
        })
        .await
        .unwrap();
        started.elapsed().as_secs_f64()
    };
    println!(
        "lifeboat_backup_to_local_dir_seconds: {local_s:.1} s ({:.0} MiB/s; ratio to tar|zstd {:.2})",
        bytes as f64 / MIB as f64 / local_s,
        tar_s / local_s
    );
    std::fs::remove_dir_all(work.path().join("local-repo")).unwrap();

    // Debian's restic to the same Garage.
    let restic = |args: &[&str]| {
        let status = Command::new("restic")
            .args([
                "-r",
                &format!("s3:{}/{}/restic", s3.endpoint, s3.bucket),
                "-o",
                &format!("s3.region={}", s3.region),
                "-q",
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &s3.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key)
            .env("RESTIC_PASSWORD", KEY)
            .env("RESTIC_CACHE_DIR", work.path().join("restic-cache"))
            .status()
            .expect("restic (apt install restic)");
        assert!(status.success(), "restic {args:?}");
    };
    restic(&["init"]);
    drop_caches();
    let restic_s = seconds(|| restic(&["backup", source.to_str().unwrap()]));
    let restic_mb_s = bytes as f64 / MIB as f64 / restic_s;
    println!("restic_backup_seconds: {restic_s:.1} s ({restic_mb_s:.0} MiB/s)");
    println!(
        "backup_throughput_vs_tar_zstd: {:.2} (goal >= 0.8)",
        tar_s / lifeboat_s
    );
    println!(
        "backup_throughput_vs_restic: {:.2} (goal >= 1.5)",
        restic_s / lifeboat_s
    );

    // Incremental: 1% of the bytes changed.
    let changed = change_one_percent(&source);
    let before = stored_bytes(&store).await;
    drop_caches();
    let (second, second_s) = {
        let (repo, source) = (repo.clone(), source.clone());
        let started = Instant::now();
        let info =
            tokio::task::spawn_blocking(move || repo.backup(&source, "/bench/data", &[]).unwrap())
                .await
                .unwrap();
        (info, started.elapsed().as_secs_f64())
    };
    let uploaded = stored_bytes(&store).await - before;
    println!("incremental_changed_mib: {} MiB", changed / MIB);
    println!(
        "incremental_uploaded_ratio: {:.3} ({} of {} bytes; goal <= 0.03)",
        uploaded as f64 / first.bytes_uploaded as f64,
        uploaded,
        first.bytes_uploaded
    );
    println!(
        "incremental_time_ratio: {:.3} ({second_s:.1} s; goal <= 0.20)",
        second_s / lifeboat_s
    );

    // Restore against zstd -dc | tar -x.
    let untarred = work.path().join("untarred");
    std::fs::create_dir(&untarred).unwrap();
    drop_caches();
    let untar_s = seconds(|| {
        sh(&format!(
            "zstd -dc -q {} | tar -C {} -xf -",
            archive.display(),
            untarred.display()
        ))
    });
    std::fs::remove_dir_all(&untarred).unwrap();
    let restored = work.path().join("restored");
    drop_caches();
    let restore_s = {
        let (repo, restored, id) = (repo.clone(), restored.clone(), second.id.clone());
        let started = Instant::now();
        tokio::task::spawn_blocking(move || repo.restore(&id, &restored).unwrap())
            .await
            .unwrap();
        started.elapsed().as_secs_f64()
    };
    println!("untar_seconds: {untar_s:.1} s");
    println!(
        "lifeboat_restore_seconds: {restore_s:.1} s ({:.0} MiB/s)",
        bytes as f64 / MIB as f64 / restore_s
    );
    println!(
        "restore_throughput_vs_untar: {:.2} (goal >= 0.8)",
        untar_s / restore_s
    );
    drop(work);

    // Memory: many small files, in a process of its own.
    let files: usize = std::env::var("LIFEBOAT_BENCH_SMALL_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--small-files-child", &files.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// `--repository-only local|s3`: only the repository's backup and restore,
/// to a local directory or to Garage, without the references (for profiling).
fn repository_only(store: DynStore, work: &Path, source: &Path, bytes: u64) {
    let repo = VolumeRepo::new(
        StoreBackend::new(store, tokio::runtime::Handle::current()),
        KEY,
    );
    let source = source.to_path_buf();
    let restored = work.join("restored");
    tokio::task::block_in_place(|| {
        drop_caches();
        let started = Instant::now();
        repo.open_or_init().unwrap();
        let info = repo.backup(&source, "/bench/data", &[]).unwrap();
        let s = started.elapsed().as_secs_f64();
        println!(
            "repository_backup_seconds: {s:.1} s ({:.0} MiB/s)",
            bytes as f64 / MIB as f64 / s
        );
        drop_caches();
        let started = Instant::now();
        repo.restore(&info.id, &restored).unwrap();
        let s = started.elapsed().as_secs_f64();
        println!(
            "repository_restore_seconds: {s:.1} s ({:.0} MiB/s)",
            bytes as f64 / MIB as f64 / s
        );
    });
}
