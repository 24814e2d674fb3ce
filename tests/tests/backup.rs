//! Backups end to end: kubesim over HTTPS as the cluster, a local directory
//! or a real S3 server (Garage) as storage, SQLite as the catalog.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;

use lifeboat::archive;
use lifeboat::backup::{self, BackupError, BackupSpec, ClusterResources};
use lifeboat::catalog::{BackupPhase, BackupRecord, Catalog};
use lifeboat::storage::{DynStore, Locations, get_bytes, list_all, put_bytes};
use lifeboat_e2e::{S3Server, kubesim};
use serde_json::{Value, json};

struct Env {
    catalog: Catalog,
    store: DynStore,
    /// `store` as the only (`default`) location.
    locations: Locations,
    client: kube::Client,
    sim: kubesim::Kubesim,
    dir: tempfile::TempDir,
}

async fn env_with(options: kubesim::Options, store: Option<DynStore>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = kubesim(options, true).await.unwrap();
    let (catalog, local) = lifeboat_e2e::local_catalog(dir.path()).await.unwrap();
    let store = store.unwrap_or(local);
    Env {
        catalog,
        locations: Locations::new(store.clone()),
        store,
        client,
        sim,
        dir,
    }
}

async fn env() -> Env {
    env_with(kubesim::Options::default(), None).await
}

async fn run(env: &Env, name: &str, spec: BackupSpec) -> backup::Phase {
    let (_, handle) = backup::start(
        &env.catalog,
        &env.locations,
        Some(&env.client),
        name,
        spec,
        None,
        "test",
    )
    .await
    .unwrap();
    handle.await.unwrap()
}

async fn manifest(env: &Env, name: &str) -> archive::Manifest {
    let bytes = get_bytes(
        env.store.as_ref(),
        &archive::key(name, archive::MANIFEST_FILE),
    )
    .await
    .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Backs up namespace `shop` as `name`; it must complete.
async fn back_up_shop(env: &Env, name: &str) {
    let spec = BackupSpec {
        included_namespaces: vec!["shop".into()],
        ..Default::default()
    };
    let done = run(env, name, spec).await;
    assert_eq!(done.phase, BackupPhase::Completed, "{:?}", done.reason);
}

/// The entry paths a shell pipeline ending in `| tar -t` lists (empty when
/// it fails), and its stderr.
fn tar_listing(pipeline: &str) -> (BTreeSet<String>, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{pipeline} | tar -t"))
        .output()
        .expect("sh, age, zstd and tar (`apt-get install age zstd`)");
    (
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The location's recovery key in a file (`age -i` reads it).
async fn key_file(env: &Env) -> std::path::PathBuf {
    let key = env
        .catalog
        .repository_key("default")
        .await
        .unwrap()
        .expect("the first backup made the location's key");
    let path = env.dir.path().join("recovery.key");
    std::fs::write(&path, format!("{key}\n")).unwrap();
    path
}

/// `age -d -i KEY FILE | zstd -dc`: the archive's way out without Lifeboat.
fn open_archive(file: &std::path::Path, key: &std::path::Path) -> String {
    format!(
        "age -d -i '{}' '{}' | zstd -dc",
        key.display(),
        file.display()
    )
}

/// Entry paths of the archive, read with the plain `age`, `zstd` and `tar`
/// tools and the location's recovery key.
async fn archive_paths(env: &Env, name: &str) -> BTreeSet<String> {
    let local_root = env.dir.path();
    let file = local_root.join(format!("backups/backups/{name}/resources.tar.zst"));
    let key = key_file(env).await;
    let (paths, stderr) = tar_listing(&open_archive(&file, &key));
    assert!(!paths.is_empty(), "{stderr}");
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_set_to_no_encryption_keeps_plain_signed_archives() {
    let env = env().await;
    env.catalog
        .upsert_storage_location(
            "default",
            "local",
            &lifeboat::storage::LocationSettings {
                encryption: Some("none".into()),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    back_up_shop(&env, "plain").await;
    let m = manifest(&env, "plain").await;
    assert_eq!((m.format_version, &m.encryption), (3, &None));
    let objects: Vec<String> = list_all(env.store.as_ref(), "backups/plain/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(
        objects.iter().any(|k| k.ends_with("manifest.sig")),
        "still signed: {objects:?}"
    );
    let file = env
        .dir
        .path()
        .join("backups/backups/plain/resources.tar.zst");
    let (paths, stderr) = tar_listing(&format!("zstd -dc '{}'", file.display()));
    assert!(
        paths.contains("resources/deployments.apps/namespaces/shop/web.json"),
        "{stderr}"
    );
    let log = String::from_utf8(
        archive::read_log(env.store.as_ref(), "plain", Some(&m))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(log.contains("stores archives unencrypted"), "{log}");
    // It reads back, signature checked, for a restore.
    let key = lifeboat::volumes::archive_key(&env.catalog, "default")
        .await
        .unwrap();
    let (_, items) = lifeboat::restore::engine::load(&env.store, "plain", None, key.as_ref(), None)
        .await
        .unwrap();
    assert_eq!(items.len() as u64, m.items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_under_a_key_from_before_encryption_open_with_its_derived_identity() {
    // A location whose key Lifeboat made before archives were encrypted: a
    // hex key, not an age identity. Its archives are encrypted to an
    // identity derived from it, which the CLI prints for `age -i`.
    let env = env().await;
    let legacy = "4f2a9c1e-7b3d5a60-0c1d2e3f-8a9b0c1d-2e3f4a5b";
    env.catalog
        .ensure_repository_key("default", legacy, &lifeboat::catalog::now())
        .await
        .unwrap();
    back_up_shop(&env, "legacy").await;
    let key_file = env.dir.path().join("legacy.key");
    std::fs::write(&key_file, legacy).unwrap();
    let identity = lifeboat_e2e::stdout_of(
        Command::new(lifeboat_e2e::lifeboat_bin().unwrap())
            .args(["location", "archive-identity", "--key-file"])
            .arg(&key_file),
    );
    assert!(identity.contains("AGE-SECRET-KEY-1"), "{identity}");
    let identity_file = env.dir.path().join("legacy.identity");
    std::fs::write(&identity_file, &identity).unwrap();
    let file = env
        .dir
        .path()
        .join("backups/backups/legacy/resources.tar.zst");
    let (paths, stderr) = tar_listing(&open_archive(&file, &identity_file));
    assert!(
        paths.contains("resources/deployments.apps/namespaces/shop/web.json"),
        "{stderr}"
    );
    // The legacy key itself is no age identity: age refuses it.
    let (paths, stderr) = tar_listing(&open_archive(&file, &key_file));
    assert!(
        paths.is_empty(),
        "the legacy key opened the archive as an identity"
    );
    assert!(stderr.contains("age"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backup_takes_every_kind_and_reads_with_tar_and_zstd() {
    let env = env().await;
    // Let the demo's controllers create pods, replica sets and volumes first.
    wait_for_pods(&env, "shop", 4).await;
    let done = run(&env, "full", BackupSpec::default()).await;
    assert_eq!(done.phase, BackupPhase::Completed, "{:?}", done.reason);
    let m = manifest(&env, "full").await;
    for gr in [
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
        "daemonsets.apps",
        "pods",
        "services",
        "configmaps",
        "secrets",
        "persistentvolumeclaims",
        "persistentvolumes",
        "namespaces",
        "ingresses.networking.k8s.io",
        "horizontalpodautoscalers.autoscaling",
        "cronjobs.batch",
        "roles.rbac.authorization.k8s.io",
        "rolebindings.rbac.authorization.k8s.io",
        "storageclasses.storage.k8s.io",
        "customresourcedefinitions.apiextensions.k8s.io",
        "databases.demo.lifeboat.io",
        "nodes",
    ] {
        assert!(
            m.resources.get(gr).copied().unwrap_or(0) > 0,
            "{gr} missing from {:?}",
            m.resources
        );
    }
    assert_eq!(m.items, m.resources.values().sum::<u64>());
    assert_eq!(m.format_version, 3);
    assert!(m.cluster.server_version.starts_with("v1."));
    assert!(
        !m.cluster.id.is_empty(),
        "kube-system's uid identifies the cluster"
    );
    // Readable without Lifeboat, at the documented paths.
    let paths = archive_paths(&env, "full").await;
    for p in [
        "resources/deployments.apps/namespaces/shop/web.json",
        "resources/databases.demo.lifeboat.io/namespaces/data/orders.json",
        "resources/namespaces/cluster/shop.json",
        "resources/configmaps/namespaces/shop/web-config.json",
    ] {
        assert!(paths.contains(p), "{p} not in archive");
    }
    assert_eq!(paths.len() as u64, m.items);
    // Checksums in the manifest match the files; objects keep their kind, lose managedFields.
    let local = env.dir.path().join("backups/backups/full");
    for (file, info) in &m.files {
        let bytes = std::fs::read(local.join(file)).unwrap();
        assert_eq!(bytes.len() as u64, info.size, "{file}");
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            info.sha256,
            "{file}"
        );
    }
    let key = key_file(&env).await;
    let extract = |path: &str| {
        let out = lifeboat_e2e::stdout_of(Command::new("sh").arg("-c").arg(format!(
            "{} | tar -xO {path}",
            open_archive(&local.join("resources.tar.zst"), &key)
        )));
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let web = extract("resources/deployments.apps/namespaces/shop/web.json");
    assert_eq!(web["kind"], "Deployment");
    // The archive is encrypted: no Secret value is in any stored object in
    // the clear (nor base64-encoded), though the decrypted archive holds it.
    let secret = extract("resources/secrets/namespaces/shop/web-db-credentials.json");
    let encoded = secret["data"]["password"].as_str().unwrap().to_string();
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&encoded)
            .unwrap(),
        b"demo-password-not-real"
    );
    assert_eq!(
        m.encryption.as_ref().map(|e| e.cipher.as_str()),
        Some(archive::crypto::CIPHER)
    );
    for object in list_all(env.store.as_ref(), "backups/full/").await.unwrap() {
        let bytes = get_bytes(env.store.as_ref(), &object.key).await.unwrap();
        for needle in ["demo-password-not-real", encoded.as_str()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds `{needle}` in the clear",
                object.key
            );
        }
    }
    assert_eq!(web["apiVersion"], "apps/v1");
    assert!(web["metadata"]["managedFields"].is_null());
    // The catalog agrees.
    let record = env.catalog.backup("full").await.unwrap();
    assert_eq!(record.phase, "Completed");
    assert_eq!(record.items_done as u64, m.items);
    assert_eq!(
        record.size_bytes,
        Some(m.files["resources.tar.zst"].size as i64)
    );
    drop(env.sim);
}

async fn wait_for_pods(env: &Env, ns: &str, n: usize) {
    use k8s_openapi::api::core::v1::Pod;
    let api: kube::Api<Pod> = kube::Api::namespaced(env.client.clone(), ns);
    let stream = kube::runtime::watcher(api.clone(), Default::default());
    let mut stream = Box::pin(stream);
    loop {
        let pods = api.list(&Default::default()).await.unwrap();
        if pods.items.len() >= n {
            return;
        }
        use futures::StreamExt;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_namespaces_resources_labels_and_cluster_scope() {
    let env = env().await;
    wait_for_pods(&env, "data", 2).await;
    let spec = BackupSpec {
        included_namespaces: vec!["da*".into()],
        excluded_resources: vec!["events".into(), "events.events.k8s.io".into()],
        ..Default::default()
    };
    assert_eq!(
        run(&env, "data-only", spec).await.phase,
        BackupPhase::Completed
    );
    let paths = archive_paths(&env, "data-only").await;
    assert!(
        paths
            .iter()
            .all(|p| !p.contains("/namespaces/shop/") && !p.contains("/namespaces/ops/")),
        "{paths:?}"
    );
    assert!(paths.iter().all(|p| !p.starts_with("resources/events")));
    // auto: the namespace itself, its volumes and their class, the CRD of its custom resources; no nodes.
    assert!(paths.contains("resources/namespaces/cluster/data.json"));
    assert!(!paths.contains("resources/namespaces/cluster/shop.json"));
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("resources/persistentvolumes/cluster/pvc-")),
        "{paths:?}"
    );
    assert!(paths.contains("resources/storageclasses.storage.k8s.io/cluster/standard.json"));
    assert!(paths.contains("resources/customresourcedefinitions.apiextensions.k8s.io/cluster/databases.demo.lifeboat.io.json"));
    assert!(!paths.iter().any(|p| p.starts_with("resources/nodes/")));

    let spec = BackupSpec {
        included_namespaces: vec!["shop".into()],
        included_resources: vec![
            "deployments.apps".into(),
            "configmaps".into(),
            "secrets".into(),
        ],
        excluded_resources: vec!["secrets".into()],
        label_selector: Some("app=web".into()),
        include_cluster_resources: ClusterResources::None,
        ..Default::default()
    };
    assert_eq!(
        run(&env, "web-only", spec).await.phase,
        BackupPhase::Completed
    );
    let paths = archive_paths(&env, "web-only").await;
    assert_eq!(
        paths,
        BTreeSet::from(["resources/deployments.apps/namespaces/shop/web.json".to_string()]),
        "only the web Deployment carries app=web among the included kinds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_page_of_objects_is_captured_whole() {
    let env = env().await;
    let cms = env.sim.store.find("", "v1", "configmaps").unwrap();
    for i in 0..1_234 {
        env.sim
            .store
            .create(
                &cms,
                Some("ops"),
                json!({"metadata": {"name": format!("many-{i:04}")}, "data": {"i": i.to_string()}}),
                false,
            )
            .unwrap();
    }
    // The cluster's CA bundle, which kubesim publishes in every namespace
    // shortly after it appears, as kube-controller-manager does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while env
        .sim
        .store
        .get(&cms, Some("ops"), "kube-root-ca.crt")
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no kube-root-ca.crt in ops"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let spec = BackupSpec {
        included_namespaces: vec!["ops".into()],
        included_resources: vec!["configmaps".into()],
        ..Default::default()
    };
    assert_eq!(run(&env, "paged", spec).await.phase, BackupPhase::Completed);
    let m = manifest(&env, "paged").await;
    // The test's 1,234 and the CA bundle the cluster publishes in every namespace.
    assert_eq!(m.resources["configmaps"], 1_235);
    let paths = archive_paths(&env, "paged").await;
    assert_eq!(paths.len(), 1_235, "only configmaps were included");
    assert!(paths.contains("resources/configmaps/namespaces/ops/kube-root-ca.crt.json"));
    assert!(paths.contains("resources/configmaps/namespaces/ops/many-1233.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_resource_is_a_warning_and_partial_failure() {
    let env = env_with(
        kubesim::Options {
            forbidden: vec!["secrets".into()],
            ..Default::default()
        },
        None,
    )
    .await;
    let done = run(
        &env,
        "restricted",
        BackupSpec {
            included_namespaces: vec!["shop".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(done.phase, BackupPhase::PartiallyFailed);
    let m = manifest(&env, "restricted").await;
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("secrets") && w.contains("not permitted")),
        "{:?}",
        m.warnings
    );
    assert!(!m.resources.contains_key("secrets"));
    assert!(
        m.resources["deployments.apps"] >= 2,
        "the rest was still backed up"
    );
    let record = env.catalog.backup("restricted").await.unwrap();
    assert_eq!(record.phase, "PartiallyFailed");
    assert_eq!(record.warnings, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field() {
    let env = env().await;
    let refuse = |spec: BackupSpec, name: &'static str| {
        let env = &env;
        async move {
            backup::start(
                &env.catalog,
                &env.locations,
                Some(&env.client),
                name,
                spec,
                None,
                "test",
            )
            .await
            .err()
            .unwrap()
        }
    };
    let field = |e: BackupError| match e {
        BackupError::Invalid(s) => s.field,
        other => panic!("expected a validation error, got {other}"),
    };
    assert_eq!(
        field(refuse(BackupSpec::default(), "Bad_Name").await),
        "name"
    );
    assert_eq!(
        field(
            refuse(
                BackupSpec {
                    included_namespaces: vec!["Shop".into()],
                    ..Default::default()
                },
                "b"
            )
            .await
        ),
        "includedNamespaces"
    );
    assert_eq!(
        field(
            refuse(
                BackupSpec {
                    label_selector: Some("app in (x".into()),
                    ..Default::default()
                },
                "b"
            )
            .await
        ),
        "labelSelector"
    );
    let unknown = refuse(
        BackupSpec {
            storage_location: Some("offsite".into()),
            ..Default::default()
        },
        "b",
    )
    .await;
    assert!(
        matches!(unknown, BackupError::UnknownLocation(_)),
        "{unknown}"
    );
    assert!(
        env.catalog
            .backups(&Default::default())
            .await
            .unwrap()
            .is_empty(),
        "nothing recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_backup_is_failed_and_cleaned_and_others_are_untouched() {
    let env = env().await;
    assert_eq!(
        run(
            &env,
            "good",
            BackupSpec {
                included_namespaces: vec!["ops".into()],
                ..Default::default()
            }
        )
        .await
        .phase,
        BackupPhase::Completed
    );
    // A backup that was running when the server died: a row InProgress and a partial archive.
    let mut partial = BackupRecord::new("crashed", "default", &json!({}));
    partial.phase = "InProgress".into();
    env.catalog.insert_backup(&partial).await.unwrap();
    put_bytes(
        env.store.as_ref(),
        &archive::key("crashed", archive::RESOURCES_FILE),
        vec![1, 2, 3],
    )
    .await
    .unwrap();
    let before = list_all(env.store.as_ref(), "backups/good/").await.unwrap();

    let interrupted =
        backup::fail_interrupted(&env.catalog, &env.locations, backup::Interrupted::All)
            .await
            .unwrap();
    assert_eq!(interrupted, ["crashed"]);
    let crashed = env.catalog.backup("crashed").await.unwrap();
    assert_eq!(crashed.phase, "Failed");
    assert!(crashed.phase_reason.unwrap().contains("interrupted"));
    assert!(
        list_all(env.store.as_ref(), "backups/crashed/")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        list_all(env.store.as_ref(), "backups/good/").await.unwrap(),
        before
    );
    assert_eq!(env.catalog.backup("good").await.unwrap().phase, "Completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_catalog_fails_only_backups_whose_runner_is_gone() {
    use backup::Interrupted::{MineOrStale, Stale};
    let env = env().await;
    let locations = &env.locations;
    let minutes_ago = |m: i64| {
        (chrono::Utc::now() - chrono::Duration::minutes(m))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let running = |name: &str, owner: &str, beat: String| {
        let mut b = BackupRecord::new(name, "default", &json!({}));
        b.phase = "InProgress".into();
        b.owner = Some(owner.into());
        b.heartbeat_at = Some(beat);
        b
    };
    for b in [
        running("theirs-alive", "replica-b", minutes_ago(0)),
        running("theirs-dead", "replica-c", minutes_ago(2)),
        running("mine-before", lifeboat::replica_id(), minutes_ago(0)),
    ] {
        env.catalog.insert_backup(&b).await.unwrap();
    }
    // Periodically: only a silent runner is taken for dead.
    let failed = backup::fail_interrupted(&env.catalog, locations, Stale)
        .await
        .unwrap();
    assert_eq!(failed, ["theirs-dead"]);
    // At start: also what this replica ran before it restarted.
    let failed = backup::fail_interrupted(&env.catalog, locations, MineOrStale)
        .await
        .unwrap();
    assert_eq!(failed, ["mine-before"]);
    let alive = env.catalog.backup("theirs-alive").await.unwrap();
    assert_eq!(
        alive.phase, "InProgress",
        "another replica's running backup is left alone"
    );

    // A backup started here says who runs it, and that it is alive.
    let (record, handle) = backup::start(
        &env.catalog,
        locations,
        Some(&env.client),
        "owned",
        BackupSpec::default(),
        None,
        "test",
    )
    .await
    .unwrap();
    assert_eq!(record.owner.as_deref(), Some(lifeboat::replica_id()));
    assert!(record.heartbeat_at.is_some());
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_catalog_finds_every_backup_in_an_existing_bucket() {
    let s3 = S3Server::start().await.unwrap();
    let prefix = format!("sync-{}", uuid::Uuid::new_v4());
    let store: DynStore = Arc::new(s3.store(&prefix).await.unwrap());
    let env = env_with(kubesim::Options::default(), Some(store.clone())).await;
    for (name, ns) in [("first", "shop"), ("second", "data")] {
        let spec = BackupSpec {
            included_namespaces: vec![ns.into()],
            ttl: Some("72h".into()),
            ..Default::default()
        };
        assert_eq!(run(&env, name, spec).await.phase, BackupPhase::Completed);
    }

    // Disaster: a new installation with an empty catalog, pointed at the same bucket.
    let dir = tempfile::tempdir().unwrap();
    let fresh = Catalog::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("new.db").display()
    ))
    .await
    .unwrap();
    fresh
        .upsert_storage_location("default", "s3", &Default::default(), true)
        .await
        .unwrap();
    let report = backup::sync(&fresh, &store, "default").await.unwrap();
    assert_eq!(report.imported, ["first", "second"]);
    let first = fresh.backup("first").await.unwrap();
    let original = env.catalog.backup("first").await.unwrap();
    assert_eq!(first.phase, "Completed");
    assert_eq!(first.items_done, original.items_done);
    assert!(first.expires_at.is_some());
    assert_eq!(
        serde_json::from_str::<BackupSpec>(&first.spec)
            .unwrap()
            .included_namespaces,
        ["shop"]
    );
    // Syncing again changes nothing; a manifest that disappears is marked.
    assert_eq!(
        backup::sync(&fresh, &store, "default").await.unwrap(),
        Default::default()
    );
    store
        .delete(&archive::key("second", archive::MANIFEST_FILE))
        .await
        .unwrap();
    let report = backup::sync(&fresh, &store, "default").await.unwrap();
    assert_eq!(report.missing, ["second"]);
    assert_eq!(
        fresh.backup("second").await.unwrap().missing_from_storage,
        1
    );

    // Deleting removes storage objects first, then the row.
    backup::delete(&fresh, &Locations::new(store.clone()), "first", "test")
        .await
        .unwrap();
    assert!(
        list_all(store.as_ref(), "backups/first/")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(fresh.backup("first").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_that_fails_mid_backup_leaves_no_manifest() {
    // A bucket that does not exist: every upload fails.
    let s3 = S3Server::start().await.unwrap();
    let mut settings = s3.settings("gone");
    settings.bucket = "no-such-bucket".into();
    let store: DynStore = Arc::new(lifeboat::storage::S3Store::new(settings).await.unwrap());
    let env = env_with(kubesim::Options::default(), Some(store)).await;
    let done = run(
        &env,
        "doomed",
        BackupSpec {
            included_namespaces: vec!["shop".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(done.phase, BackupPhase::Failed);
    let reason = done.reason.unwrap();
    assert!(reason.contains("no-such-bucket"), "{reason}");
    let record = env.catalog.backup("doomed").await.unwrap();
    assert_eq!(record.phase, "Failed");
    assert_eq!(record.size_bytes, None);
}
