//! Backups in storage are untrusted input. Hostile files put in the bucket
//! by hand — a decompression bomb, an entry outside `resources/`, an
//! oversized entry, a manifest that lies about sizes — are refused by every
//! reader (the API's log and contents, restore, `lifeboat backup inspect`)
//! with the same refusal, and the server stays up with bounded memory.

use std::io::Write;
use std::path::Path;

use lifeboat::archive::{self, FileInfo, Manifest};
use lifeboat::backup;
use lifeboat::restore::{self, RestoreSpec};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn info(bytes: &[u8]) -> FileInfo {
    FileInfo {
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
    }
}

/// A tar of raw entries (hostile names included), zstd-compressed.
fn tar_zst(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        // `append_data` refuses `..`: a hostile archive is written raw.
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        tar.append(&header, *data).unwrap();
    }
    zstd::stream::encode_all(tar.into_inner().unwrap().as_slice(), 1).unwrap()
}

/// `bytes` zeros compressed as `zstd --long` would (a 128 MiB window).
fn zero_bomb(bytes: u64) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.long_distance_matching(true).unwrap();
    encoder.window_log(27).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..bytes / (1 << 20) {
        encoder.write_all(&chunk).unwrap();
    }
    encoder.finish().unwrap()
}

/// Writes a backup's files into a local store's directory as someone with
/// bucket access would, with a manifest that describes them (or lies).
fn plant(root: &Path, name: &str, resources: &[u8], log: &[u8], lie: Option<FileInfo>) {
    let dir = root.join("backups").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(archive::RESOURCES_FILE), resources).unwrap();
    std::fs::write(dir.join(archive::LOG_FILE), log).unwrap();
    // Format 2: unsigned and in the clear, what someone with only bucket
    // access can write (format 3 needs the location's key to sign).
    let manifest = Manifest {
        format_version: 2,
        lifeboat_version: "0.1.0".into(),
        name: name.into(),
        phase: "Completed".into(),
        started_at: "2026-11-29T10:00:00.000Z".into(),
        completed_at: "2026-11-29T10:00:01.000Z".into(),
        items: 1,
        files: [
            (
                archive::RESOURCES_FILE.to_string(),
                lie.unwrap_or_else(|| info(resources)),
            ),
            (archive::LOG_FILE.to_string(), info(log)),
        ]
        .into(),
        ..Default::default()
    };
    std::fs::write(
        dir.join(archive::MANIFEST_FILE),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
}

fn good_log() -> Vec<u8> {
    zstd::stream::encode_all(&b"{\"level\":\"info\",\"message\":\"ok\"}\n"[..], 1).unwrap()
}

fn configmap(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop"}, "data": {"k": "v"}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_refuses_hostile_archives_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = lifeboat_e2e::kubesim(kubesim::Options::default(), true)
        .await
        .unwrap();
    let (url, state) = lifeboat_e2e::serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let root = dir.path().join("backups");
    let escaping = tar_zst(&[
        (
            "resources/configmaps/namespaces/shop/ok.json",
            &configmap("ok"),
        ),
        ("resources/../../../etc/cron.d/x.json", &configmap("x")),
    ]);
    plant(&root, "escape", &escaping, &good_log(), None);
    let huge_entry = vec![b' '; (archive::MAX_ENTRY_BYTES + 1) as usize];
    let oversized = tar_zst(&[("resources/configmaps/namespaces/shop/big.json", &huge_entry)]);
    plant(&root, "oversized", &oversized, &good_log(), None);
    let fine = tar_zst(&[(
        "resources/configmaps/namespaces/shop/ok.json",
        &configmap("ok"),
    )]);
    // A manifest claiming a 10^15-byte archive (once, an allocation abort).
    let mut lie = info(&fine);
    lie.size = 1_000_000_000_000_000;
    plant(&root, "liar", &fine, &good_log(), Some(lie));
    plant(&root, "logbomb", &fine, &zero_bomb(256 << 20), None);
    let store = state.locations.require("default").unwrap();
    let report = backup::sync(&state.catalog, &store, "default")
        .await
        .unwrap();
    assert_eq!(report.imported.len(), 4, "{report:?}");

    let http = lifeboat_e2e::http(&url);
    let get = |path: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http.get(format!("{url}{path}")).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (
                status,
                body["error"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    for (backup, why) in [
        ("escape", "outside resources/"),
        ("oversized", "larger than the 16777216-byte limit"),
        ("liar", "the manifest says 1000000000000000"),
    ] {
        let (status, error) = get(format!("/api/v1/backups/{backup}/contents")).await;
        assert_eq!(status, 502, "{backup}: {error}");
        assert!(
            error.starts_with("refused: ") && error.contains(why),
            "{backup}: {error}"
        );

        let (_, handle) = restore::start(
            &state.catalog,
            &state.locations,
            Some(&client),
            &format!("from-{backup}"),
            RestoreSpec {
                backup_name: backup.into(),
                dry_run: true,
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
        assert_eq!(
            handle.await.unwrap().unwrap(),
            restore::RestorePhase::Failed,
            "{backup}"
        );
        let record = state
            .catalog
            .restore(&format!("from-{backup}"))
            .await
            .unwrap();
        let reason = record.phase_reason.unwrap_or_default();
        assert!(
            reason.contains("nothing was applied") && reason.contains(why),
            "{backup}: {reason}"
        );
    }
    let (status, error) = get("/api/v1/backups/logbomb/log".into()).await;
    assert_eq!(status, 502, "{error}");
    assert!(
        error.contains("larger than the 67108864-byte limit"),
        "{error}"
    );
    // The good parts of the same backups still read.
    let (status, _) = get("/api/v1/backups/logbomb/contents".into()).await;
    assert_eq!(status, 200);
    let (status, _) = get("/api/v1/backups/escape/log".into()).await;
    assert_eq!(status, 200);

    // `lifeboat backup inspect` refuses the same files offline.
    let bin = lifeboat_e2e::lifeboat_bin().unwrap();
    for (backup, why) in [
        ("escape", "outside resources/"),
        ("oversized", "larger than"),
        ("liar", "does not match the manifest"),
    ] {
        let files = root.join("backups").join(backup);
        let out = std::process::Command::new(&bin)
            .args(["backup", "inspect"])
            .arg(files.join(archive::RESOURCES_FILE))
            .arg("--manifest")
            .arg(files.join(archive::MANIFEST_FILE))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && said.contains(why),
            "{backup}: {said}"
        );
    }
    let (status, _) = get("/healthz".into()).await;
    assert_eq!(status, 200, "the server is still up");
}

/// A 92 KB log that decompresses to 3 GB once made the server grow to
/// 3.1 GB. Now the reader stops at its cap (here on a 1 GiB bomb, which
/// would have cost 1 GiB), and the server's peak stays bounded: the
/// decoder's 128 MiB window plus the 64 MiB cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_bomb_leaves_the_servers_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lifeboat-data/backups");
    let fine = tar_zst(&[(
        "resources/configmaps/namespaces/shop/ok.json",
        &configmap("ok"),
    )]);
    let bomb = zero_bomb(1 << 30);
    assert!(bomb.len() < 1 << 20, "{} bytes in the bucket", bomb.len());
    plant(&root, "bomb", &fine, &bomb, None);
    // No cluster here, so no one to check a token with: this test of memory
    // turns sign-in off, explicitly, as only a laptop should.
    let server = lifeboat_e2e::LifeboatProcess::start(
        dir.path(),
        &[("LIFEBOAT_AUTH_DISABLED", "true".to_string())],
    )
    .unwrap();
    let response = lifeboat_e2e::get(format!("{}/api/v1/backups/bomb/log", server.url))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 502);
    let peak_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    println!(
        "server peak RSS while refusing a 1 GiB log bomb: {} MiB",
        peak_kib / 1024
    );
    assert!(peak_kib < 400 * 1024, "peak RSS {} MiB", peak_kib / 1024);
    let health = lifeboat_e2e::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert!(health.status().is_success());
}

/// Format 1 (wave 1's backups, without `volumes`) stays readable; a format
/// newer than this Lifeboat knows is refused with what it reads.
#[tokio::test]
async fn format_one_manifests_stay_readable_and_unknown_formats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = lifeboat::storage::LocalStore::new(dir.path()).unwrap();
    let resources = tar_zst(&[(
        "resources/configmaps/namespaces/shop/old.json",
        &configmap("old"),
    )]);
    plant(dir.path(), "old", &resources, &good_log(), None);
    let path = dir.path().join("backups/old").join(archive::MANIFEST_FILE);
    let rewrite = |version: u32| {
        let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        manifest["formatVersion"] = json!(version);
        manifest.as_object_mut().unwrap().remove("volumes");
        std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    };
    rewrite(1);
    let manifest = archive::read_manifest(&store, "old")
        .await
        .expect("format 1 reads");
    assert_eq!((manifest.format_version, manifest.volumes.len()), (1, 0));
    let store: lifeboat::storage::DynStore = std::sync::Arc::new(store);
    let (_, items) = restore::engine::load(&store, "old", None, None, None)
        .await
        .expect("a format 1 backup loads for a restore");
    assert_eq!(items.len(), 1);
    rewrite(archive::FORMAT_VERSION + 1);
    let refused = archive::read_manifest(store.as_ref(), "old")
        .await
        .expect_err("a future format");
    assert!(
        refused
            .to_string()
            .contains(&format!("reads versions 1 to {}", archive::FORMAT_VERSION)),
        "{refused}"
    );
}
