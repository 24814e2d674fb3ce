//! Scale benchmark: `cargo bench -p lifeboat-e2e --bench scale`.
//!
//! kubesim (HTTPS, controllers off) holds 100,000 objects in 1,000
//! namespaces: in each, 40 Pods, 30 ConfigMaps, 10 Secrets and one custom
//! resource of each of 20 CRDs. The backup and the restore run in child
//! processes (this binary, re-executed), so their memory is their own.
//! Prints, as `name: value unit`:
//! - the whole-cluster backup: wall time, list calls against the bound
//!   (resource types × pages of 500, counted by a raw listing of every
//!   listable type), objects, archive size and the child's peak RSS;
//! - the restore of one namespace out of that archive under another name:
//!   wall time, objects created and the child's peak RSS (the archive is
//!   streamed; nothing but the selected namespace is kept).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{Discovery, verbs};
use serde_json::json;

const NAMESPACES: usize = 1_000;
const PODS: usize = 40;
const CONFIG_MAPS: usize = 30;
const SECRETS: usize = 10;
const CRDS: usize = 20;
/// The namespace restored, and where to.
const RESTORED: &str = "team-0500";
const RESTORED_AS: &str = "copy-0500";

fn seed(store: &kubesim::Store) -> usize {
    let find = |g: &str, v: &str, r: &str| store.find(g, v, r).expect("resource");
    let crd_rt = find("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    for k in 0..CRDS {
        store
            .create(
                &crd_rt,
                None,
                json!({"metadata": {"name": format!("gadgets{k}.scale.example")},
                  "spec": {"group": "scale.example", "scope": "Namespaced",
                    "names": {"plural": format!("gadgets{k}"), "singular": format!("gadget{k}"),
                              "kind": format!("Gadget{k}"), "listKind": format!("Gadget{k}List")},
                    "versions": [{"name": "v1", "served": true, "storage": true,
                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
                false,
            )
            .expect("crd");
    }
    let (ns_rt, pod_rt, cm_rt, secret_rt) = (
        find("", "v1", "namespaces"),
        find("", "v1", "pods"),
        find("", "v1", "configmaps"),
        find("", "v1", "secrets"),
    );
    let crs: Vec<_> = (0..CRDS)
        .map(|k| find("scale.example", "v1", &format!("gadgets{k}")))
        .collect();
    let mut created = 0;
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:04}");
        store
            .create(&ns_rt, None, json!({"metadata": {"name": ns}}), false)
            .expect("namespace");
        let annotations =
            json!({"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": ns});
        for p in 0..PODS {
            let app = format!("app-{}", p % 8);
            store
                .create(
                    &pod_rt,
                    Some(&ns),
                    json!({"metadata": {"name": format!("{app}-6c7d9f-{p:03}"), "labels": {"app": app},
                                        "annotations": annotations},
                      "spec": {"nodeName": format!("node-{}", p % 5), "containers": [{"name": "main",
                        "image": "registry.example/app:1.2.3", "ports": [{"containerPort": 8080}],
                        "env": [{"name": "MODE", "value": "production"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
                      "status": {"phase": "Running", "podIP": "10.0.0.1"}}),
                    false,
                )
                .expect("pod");
        }
        for c in 0..CONFIG_MAPS {
            store
                .create(
                    &cm_rt,
                    Some(&ns),
                    json!({"metadata": {"name": format!("config-{c:03}"), "annotations": annotations},
                      "data": {"settings.yaml": format!("replicas: {c}\nfeature: enabled\nowner: {ns}\n")}}),
                    false,
                )
                .expect("configmap");
        }
        for s in 0..SECRETS {
            store
                .create(
                    &secret_rt,
                    Some(&ns),
                    json!({"metadata": {"name": format!("secret-{s:03}")},
                      "stringData": {"token": format!("t-{n}-{s}")}}),
                    false,
                )
                .expect("secret");
        }
        for (k, rt) in crs.iter().enumerate() {
            store
                .create(
                    rt,
                    Some(&ns),
                    json!({"apiVersion": "scale.example/v1", "kind": format!("Gadget{k}"),
                      "metadata": {"name": format!("gadget-{k}")},
                      "spec": {"size": k, "owner": ns}}),
                    false,
                )
                .expect("custom resource");
        }
        created += PODS + CONFIG_MAPS + SECRETS + CRDS;
    }
    created
}

/// What the children share, given through the environment: the cluster
/// (its kubeconfig) and a data directory (catalog and backups).
async fn child_env() -> (
    lifeboat::cluster::Cluster,
    lifeboat::catalog::Catalog,
    lifeboat::storage::DynStore,
) {
    let dir = std::path::PathBuf::from(std::env::var("BENCH_DATA_DIR").expect("BENCH_DATA_DIR"));
    let config = lifeboat::config::Config {
        kubeconfig: Some(
            std::env::var("BENCH_KUBECONFIG")
                .expect("BENCH_KUBECONFIG")
                .into(),
        ),
        ..Default::default()
    };
    let cluster = lifeboat::cluster::Cluster::connect(config.kubeconfig.as_deref(), None)
        .await
        .expect("cluster");
    let (catalog, store) = lifeboat_e2e::local_catalog(&dir).await.expect("catalog");
    (cluster, catalog, store)
}

async fn child_backup() {
    let (cluster, catalog, store) = child_env().await;
    lifeboat::volumes::provision(&catalog, &store, "default")
        .await
        .expect("the location's key");
    catalog
        .insert_backup(&lifeboat::catalog::BackupRecord::new(
            "scale",
            "default",
            &json!({}),
        ))
        .await
        .expect("record");
    let list_calls = Arc::new(AtomicU64::new(0));
    let ctx = lifeboat::backup::BackupContext {
        location: "default".into(),
        volumes: Arc::new(lifeboat::volumes::dispatch::Dispatcher {
            catalog: catalog.clone(),
        }),
        catalog: catalog.clone(),
        work: lifeboat::backup::Work {
            store: store.clone(),
            client: cluster.client.clone(),
            list_calls: list_calls.clone(),
            archive_key: None,
            encrypt: true,
        },
    };
    let started = Instant::now();
    let done = lifeboat::backup::runner::run(
        ctx,
        "scale".into(),
        lifeboat::backup::BackupSpec::default(),
        None,
    )
    .await;
    let wall = started.elapsed();
    assert_eq!(done.phase.as_str(), "Completed", "{:?}", done.reason);
    let record = catalog.backup("scale").await.expect("record");
    println!("backup_wall_time: {:.1} s", wall.as_secs_f64());
    println!("backup_objects: {}", record.items_done);
    println!(
        "backup_objects_per_second: {:.0}",
        record.items_done as f64 / wall.as_secs_f64()
    );
    println!("backup_list_calls: {}", list_calls.load(Ordering::Relaxed));
    println!(
        "archive_size: {:.1} MiB",
        record.size_bytes.unwrap_or(0) as f64 / (1024.0 * 1024.0)
    );
    println!("backup_peak_rss: {:.0} MiB", lifeboat_e2e::peak_rss_mib());
}

async fn child_restore() {
    let (cluster, catalog, store) = child_env().await;
    let locations = lifeboat::storage::Locations::new(store);
    let spec = lifeboat::restore::RestoreSpec {
        backup_name: "scale".into(),
        included_namespaces: vec![RESTORED.into()],
        namespace_mapping: [(RESTORED.to_string(), RESTORED_AS.to_string())].into(),
        ..Default::default()
    };
    let started = Instant::now();
    let (_, handle) = lifeboat::restore::start(
        &catalog,
        &locations,
        Some(&cluster.client),
        "one-namespace",
        spec,
        "bench",
    )
    .await
    .expect("start");
    let phase = handle.await.expect("runner").expect("run");
    let wall = started.elapsed();
    assert_eq!(phase, lifeboat::restore::RestorePhase::Completed);
    let record = catalog.restore("one-namespace").await.expect("record");
    println!(
        "restore_one_namespace_wall_time: {:.2} s",
        wall.as_secs_f64()
    );
    println!("restore_one_namespace_objects: {}", record.items_done);
    println!(
        "restore_one_namespace_peak_rss: {:.0} MiB",
        lifeboat_e2e::peak_rss_mib()
    );
}

/// Runs this binary as child `role`; its output goes to ours.
fn run_child(role: &str, data: &std::path::Path, kubeconfig: &std::path::Path) {
    let status = Command::new(std::env::current_exe().expect("own path"))
        .env("BENCH_CHILD", role)
        .env("BENCH_DATA_DIR", data)
        .env("BENCH_KUBECONFIG", kubeconfig)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .expect("child");
    assert!(status.success(), "the {role} child failed");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    match std::env::var("BENCH_CHILD").as_deref() {
        Ok("backup") => return child_backup().await,
        Ok("restore") => return child_restore().await,
        _ => {}
    }
    let (sim, client) = lifeboat_e2e::kubesim(lifeboat_e2e::quiet_kubesim(), false)
        .await
        .expect("kubesim");
    let started = Instant::now();
    let seeded = seed(&sim.store);
    println!(
        "objects_seeded: {seeded} in {NAMESPACES} namespaces ({:.1} s)",
        started.elapsed().as_secs_f64()
    );

    // The bound: a paginated listing of every listable type, as the backup pages.
    let discovery = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("discovery");
    let (mut types, mut pages) = (0usize, 0usize);
    let started = Instant::now();
    for (ar, _) in discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .filter(|(_, caps)| caps.supports_operation(verbs::LIST))
    {
        types += 1;
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let mut params = ListParams::default().limit(lifeboat::cluster::pager::PAGE_SIZE);
        loop {
            pages += 1;
            let page = api.list(&params).await.expect("list");
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(t) => params = params.continue_token(&t),
                None => break,
            }
        }
    }
    println!(
        "raw_paginated_listing: {:.1} s, {types} resource types, {pages} pages (the list-call bound)",
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    run_child("backup", &data, &kubeconfig);
    run_child("restore", &data, &kubeconfig);

    // What the restore made is there, under its new name.
    let copied = sim
        .store
        .all()
        .into_iter()
        .filter(|(_, o)| o["metadata"]["namespace"] == RESTORED_AS)
        .count();
    println!("objects_in_restored_namespace: {copied}");
}
