//! Lifeboat's own temporary objects after a crash: `lifeboat demo` (the
//! binary: kubesim's demo cluster, saved across restarts, Lifeboat and one
//! agent process per node) is SIGKILLed while a backup of `data` holds a
//! VolumeSnapshot, the claim made from it and a helper pod. Started again,
//! it removes them; the next backup holds none of them and restores
//! Completed, as does the backup taken right after the demo first started.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kube::api::Api;
use lifeboat_e2e::{LifeboatProcess, http, poll_json};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(180);

/// Starts a backup of `data` and returns its name.
async fn start_backup(url: &str, name: &str) -> Result<()> {
    let created = http(url)
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": name, "spec": {"includedNamespaces": ["data"]}}))
        .send()
        .await?;
    anyhow::ensure!(
        created.status() == 202,
        "backup {name}: {}",
        created.text().await?
    );
    Ok(())
}

/// Waits for backup `name` to end; returns it.
async fn finished_backup(url: &str, name: &str) -> Result<Value> {
    poll_json(&format!("{url}/api/v1/backups/{name}"), WITHIN, |b| {
        !matches!(b["phase"].as_str(), Some("New" | "InProgress"))
    })
    .await
}

/// Runs a restore to its end; returns it.
async fn restored(url: &str, spec: Value) -> Result<Value> {
    let created = http(url)
        .post(format!("{url}/api/v1/restores"))
        .json(&json!({"spec": spec}))
        .send()
        .await?;
    anyhow::ensure!(created.status() == 202, "{}", created.text().await?);
    let created: Value = created.json().await?;
    let name = created["name"].as_str().context("restore name")?;
    poll_json(&format!("{url}/api/v1/restores/{name}"), WITHIN, |r| {
        !matches!(r["phase"].as_str(), Some("New" | "InProgress"))
    })
    .await
}

async fn temporaries(client: &kube::Client, namespace: &str) -> Result<Vec<String>> {
    lifeboat_e2e::temporaries_by_name(client, Some(namespace)).await
}

/// Waits until the demo's postgres pods run.
async fn postgres_running(client: &kube::Client, namespace: &str) -> Result<()> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + WITHIN;
    loop {
        let running = pods
            .list(&Default::default())
            .await?
            .items
            .into_iter()
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
        anyhow::ensure!(
            Instant::now() < deadline,
            "postgres never ran in {namespace}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A claim's volume directory in the demo's volume data.
async fn volume_of(
    client: &kube::Client,
    dir: &Path,
    namespace: &str,
    claim: &str,
) -> Result<PathBuf> {
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Some(pv) = claims
            .get_opt(claim)
            .await?
            .and_then(|c| c.spec)
            .and_then(|s| s.volume_name)
        {
            return Ok(kubesim::controllers::volume_dir(
                &dir.join("lifeboat-data/demo-volumes"),
                &pv,
            ));
        }
        anyhow::ensure!(Instant::now() < deadline, "{namespace}/{claim} never bound");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sha256_of(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut file = std::fs::File::open(path)?;
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backup_leaves_nothing_behind_and_later_backups_restore_completed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut demo = LifeboatProcess::start_demo(dir.path(), &[])?;
    let client = lifeboat_e2e::demo_client(dir.path()).await?;

    // Right after the demo starts: its database's volumes hold little or
    // nothing yet. The backup must be one that restores.
    // (Until the demo's agents have first connected, a backup skips volume
    // data with the reason; the first one that takes it counts.)
    let deadline = Instant::now() + WITHIN;
    let mut attempt = 0;
    let first = loop {
        attempt += 1;
        let name = format!("first-{attempt}");
        start_backup(&demo.url, &name).await?;
        let done = finished_backup(&demo.url, &name).await?;
        let agents_yet = !done
            .to_string()
            .contains("no node agent has ever connected");
        if agents_yet || Instant::now() >= deadline {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(first["phase"], "Completed", "{first:#}");
    let first_volumes = first["manifest"]["volumes"].as_array().context("volumes")?;
    assert!(
        !first_volumes.is_empty() && first_volumes.iter().all(|v| v["phase"] == "Completed"),
        "{first:#}"
    );
    let first = first["name"].as_str().context("name")?.to_string();

    // Enough data that a backup is still reading when it is killed.
    postgres_running(&client, "data").await?;
    let bulk = volume_of(&client, dir.path(), "data", "data-postgres-0")
        .await?
        .join("bulk.bin");
    {
        let mut random = std::fs::File::open("/dev/urandom")?;
        let mut out = std::fs::File::create(&bulk)?;
        std::io::copy(&mut std::io::Read::take(&mut random, 192 << 20), &mut out)?;
    }
    let bulk_sha = sha256_of(&bulk)?;

    // Killed while it holds a snapshot, the claim made from it and a
    // helper pod, once the demo cluster has saved them.
    start_backup(&demo.url, "killed").await?;
    let saved = dir.path().join("lifeboat-data/demo-cluster.json");
    let deadline = Instant::now() + WITHIN;
    let held = loop {
        let now = temporaries(&client, "data").await?;
        let has = |kind: &str| now.iter().any(|t| t.starts_with(kind));
        if has("Pod ") && has("PersistentVolumeClaim ") && has("VolumeSnapshot ") {
            let persisted = std::fs::read_to_string(&saved).unwrap_or_default();
            if now
                .iter()
                .all(|t| persisted.contains(t.rsplit('/').next().unwrap_or_default()))
            {
                break now;
            }
        }
        let phase = http(&demo.url)
            .get(format!("{}/api/v1/backups/killed", demo.url))
            .send()
            .await?
            .json::<Value>()
            .await?["phase"]
            .clone();
        anyhow::ensure!(
            phase == "InProgress" || phase == "New",
            "the backup ended ({phase}) before it could be killed holding its temporaries"
        );
        anyhow::ensure!(Instant::now() < deadline, "no temporaries seen: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    demo.kill();
    drop(demo);

    // Started again: the killed backup is Failed, and its temporaries go.
    let demo = LifeboatProcess::start_demo(dir.path(), &[])?;
    let client = lifeboat_e2e::demo_client(dir.path()).await?;
    let deadline = Instant::now() + WITHIN;
    let left = loop {
        let now = temporaries(&client, "data").await?;
        if now.is_empty() || Instant::now() >= deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        left.is_empty(),
        "held {held:?}, left after the restart: {left:?}"
    );
    let killed = finished_backup(&demo.url, "killed").await?;
    assert_eq!(killed["phase"], "Failed", "{killed:#}");

    // The next backup holds none of them, and restores Completed with the data.
    postgres_running(&client, "data").await?;
    start_backup(&demo.url, "after").await?;
    let after = finished_backup(&demo.url, "after").await?;
    assert_eq!(after["phase"], "Completed", "{after:#}");
    let manifest = &after["manifest"];
    assert_eq!(
        manifest["volumes"].as_array().map(Vec::len),
        Some(2),
        "{manifest:#}"
    );
    assert_eq!(
        manifest["resources"]["persistentvolumeclaims"], 2,
        "{manifest:#}"
    );
    assert!(
        manifest["resources"]["volumesnapshots.snapshot.storage.k8s.io"].is_null(),
        "{manifest:#}"
    );
    let mut contents: Value = http(&demo.url)
        .get(format!("{}/api/v1/backups/after/contents", demo.url))
        .send()
        .await?
        .json()
        .await?;
    // Events about the temporaries are kept for inspection (a restore never
    // brings events back); the objects themselves are not.
    if let Some(resources) = contents["resources"].as_object_mut() {
        resources.remove("events");
        resources.remove("events.events.k8s.io");
    }
    assert!(
        !contents.to_string().contains("lifeboat-snap-")
            && !contents.to_string().contains("lifeboat-backup-"),
        "the backup took temporaries in: {contents:#}"
    );

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces.delete("data", &Default::default()).await?;
    let deadline = Instant::now() + WITHIN;
    while namespaces.get_opt("data").await?.is_some() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "namespace data was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The backup taken right after the demo first started brings postgres back.
    let back = restored(&demo.url, json!({"backupName": first})).await?;
    assert_eq!(back["phase"], "Completed", "{back:#}");
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(client.clone(), "data");
    assert!(
        sets.get_opt("postgres").await?.is_some(),
        "postgres is back"
    );

    // The one after the crash restores beside it, with the volume's bytes.
    let later = restored(
        &demo.url,
        json!({"backupName": "after", "namespaceMapping": {"data": "data-after"}}),
    )
    .await?;
    assert_eq!(later["phase"], "Completed", "{later:#}");
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(client.clone(), "data-after");
    assert!(
        sets.get_opt("postgres").await?.is_some(),
        "postgres is back in data-after"
    );
    let bulk_back = volume_of(&client, dir.path(), "data-after", "data-postgres-0")
        .await?
        .join("bulk.bin");
    assert_eq!(
        sha256_of(&bulk_back)?,
        bulk_sha,
        "the volume's bytes came back"
    );
    assert!(
        temporaries(&client, "data").await?.is_empty()
            && temporaries(&client, "data-after").await?.is_empty(),
        "the restores left helper pods behind"
    );
    Ok(())
}
