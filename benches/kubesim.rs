//! kubesim benchmarks: `cargo bench -p kubesim --bench kubesim`.
//!
//! Prints one figure per line as `name: value unit`:
//! - listing 10,000 pods in pages of 500 through kube-rs over HTTPS (goal < 1 s),
//!   with serialising the same objects in-process as the reference;
//! - 10 concurrent watchers each receiving 1,000 changes;
//! - resident memory with 50,000 objects stored (goal ≤ 300 MiB).

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kubesim::{Controllers, Kubesim, Options};
use serde_json::json;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pod(ns: &str, i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:05}"), "namespace": ns,
                     "labels": {"app": format!("app-{}", i % 50), "tier": "bench"}},
        "spec": {"nodeName": format!("node-{}", i % 10),
                 "containers": [{"name": "main", "image": "registry.example/app:1.0",
                                 "ports": [{"containerPort": 8080}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
        "status": {"phase": "Running", "podIP": "10.244.1.1",
                   "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

async fn client_for(sim: &Kubesim, dir: &std::path::Path) -> kube::Client {
    let path = dir.join("kubeconfig");
    sim.write_kubeconfig(&path).expect("kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn quiet() -> Options {
    Options {
        controllers: Controllers::none(),
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");

    // ---- resident memory at 50,000 objects
    let before = rss_mib();
    let sim = Kubesim::start(quiet()).await.expect("kubesim");
    let pods = sim.store.find("", "v1", "pods").expect("pods");
    let namespaces = sim.store.find("", "v1", "namespaces").expect("namespaces");
    for n in 0..50 {
        sim.store
            .create(
                &namespaces,
                None,
                json!({"metadata": {"name": format!("mem-{n}")}}),
                false,
            )
            .expect("namespace");
    }
    for i in 0..50_000 {
        let ns = format!("mem-{}", i % 50);
        sim.store
            .create(&pods, Some(&ns), pod(&ns, i), false)
            .expect("pod");
    }
    let after = rss_mib();
    println!("rss_before_50k_objects: {before:.0} MiB");
    println!(
        "rss_with_50k_objects: {after:.0} MiB (process total; the store's share {:.0} MiB)",
        after - before
    );
    println!("objects_stored: {}", sim.store.count());
    drop(sim);

    // ---- list 10,000 pods in pages of 500
    let sim = Kubesim::start(quiet()).await.expect("kubesim");
    let namespaces = sim.store.find("", "v1", "namespaces").expect("namespaces");
    let pods = sim.store.find("", "v1", "pods").expect("pods");
    for ns in ["bench-a", "bench-b"] {
        sim.store
            .create(&namespaces, None, json!({"metadata": {"name": ns}}), false)
            .expect("namespace");
    }
    for i in 0..10_000 {
        let ns = if i % 2 == 0 { "bench-a" } else { "bench-b" };
        sim.store
            .create(&pods, Some(ns), pod(ns, i), false)
            .expect("pod");
    }
    let client = client_for(&sim, dir.path()).await;
    let api: Api<Pod> = Api::all(client.clone());
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut params = ListParams::default().limit(500);
        let mut count = 0;
        loop {
            let page = api.list(&params).await.expect("list");
            count += page.items.len();
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        assert_eq!(count, 10_000);
        best = best.min(started.elapsed());
    }
    let (objects, _) = sim.store.list(
        &pods,
        None,
        &kubesim::selector::LabelSelector::default(),
        &kubesim::selector::FieldSelector::default(),
    );
    let started = Instant::now();
    let bytes: usize = objects
        .chunks(500)
        .map(|c| serde_json::to_vec(c).map_or(0, |v| v.len()))
        .sum();
    let reference = started.elapsed();
    println!(
        "list_10k_pods_pages_of_500: {:.1} ms",
        best.as_secs_f64() * 1000.0
    );
    println!(
        "list_10k_pods_reference_serialize_only: {:.1} ms ({} KiB)",
        reference.as_secs_f64() * 1000.0,
        bytes / 1024
    );
    println!(
        "list_10k_pods_ratio_to_reference: {:.1}x",
        best.as_secs_f64() / reference.as_secs_f64().max(1e-9)
    );

    // ---- 10 concurrent watchers receiving 1,000 changes
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "bench-a");
    cms.create(
        &Default::default(),
        &serde_json::from_value(json!({"metadata": {"name": "ticker"}, "data": {"n": "0"}}))
            .expect("cm"),
    )
    .await
    .expect("create");
    let rv = cms
        .get("ticker")
        .await
        .expect("get")
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut watchers = Vec::new();
    for _ in 0..10 {
        let cms = cms.clone();
        let rv = rv.clone();
        watchers.push(tokio::spawn(async move {
            let stream = cms
                .watch(
                    &WatchParams::default()
                        .fields("metadata.name=ticker")
                        .timeout(120),
                    &rv,
                )
                .await
                .expect("watch");
            tokio::pin!(stream);
            let mut seen = 0;
            while seen < 1_000 {
                match stream.try_next().await.expect("event") {
                    Some(WatchEvent::Modified(_)) => seen += 1,
                    Some(_) => {}
                    None => panic!("watch ended after {seen} changes"),
                }
            }
            Instant::now()
        }));
    }
    let started = Instant::now();
    for n in 1..=1_000 {
        cms.patch(
            "ticker",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"n": n.to_string()}})),
        )
        .await
        .expect("patch");
    }
    let writes_done = started.elapsed();
    let mut last = started;
    for w in watchers {
        last = last.max(w.await.expect("watcher"));
    }
    let all_received = last.duration_since(started);
    println!(
        "watch_10_watchers_1000_changes_all_received: {:.1} ms",
        all_received.as_secs_f64() * 1000.0
    );
    println!(
        "watch_writes_only_reference: {:.1} ms",
        writes_done.as_secs_f64() * 1000.0
    );
    println!(
        "watch_events_delivered_per_second: {:.0} events/s",
        10_000.0 / all_received.as_secs_f64()
    );
    drop(sim);
}
