//! Backup benchmark: `cargo bench -p lifeboat-e2e --bench backup`.
//!
//! 10,000 objects across 50 namespaces in kubesim (HTTPS, controllers off),
//! backed up to a local directory. Prints, as `name: value unit`:
//! - the backup's wall time and the time of a raw paginated listing of the same
//!   resources in the same run, and their ratio (goal ≤ 1.3);
//! - list calls made, compressed bytes per object;
//! - peak RSS of the process during the backup above its idle level (goal ≤ 100 MiB).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{Discovery, verbs};
use lifeboat::backup::{BackupContext, BackupSpec, Work, runner};
use lifeboat::catalog::BackupRecord;
use lifeboat_e2e::rss_mib;
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (sim, client) = lifeboat_e2e::kubesim(lifeboat_e2e::quiet_kubesim(), false)
        .await
        .expect("kubesim");
    lifeboat_e2e::seed_bench_objects(&sim.store, 50, 199).expect("seed");

    // Raw listing of the same resources the backup selects, paginated the same way.
    let discovery = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("discovery");
    let resources: Vec<_> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .filter(|(_, caps)| caps.supports_operation(verbs::LIST))
        .collect();
    // Best of three runs each, alternating, so that noise on two shared cores evens out.
    let mut raw = Duration::MAX;
    let mut raw_objects = 0usize;
    let mut raw_calls = 0usize;
    // The same listing through a kube-rs client as kube-rs builds it (its
    // own retries, no pacing): what Lifeboat's pacing costs a read.
    let dir_for_config = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir_for_config.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let unpaced = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig"),
            &Default::default(),
        )
        .await
        .expect("config"),
    )
    .expect("client");
    let list_with = |client: kube::Client| {
        let resources = &resources;
        async move {
            let mut objects = 0usize;
            for (ar, _) in resources {
                let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
                let mut params = ListParams::default().limit(lifeboat::cluster::pager::PAGE_SIZE);
                loop {
                    let page = api.list(&params).await.expect("list");
                    objects += page.items.len();
                    match page.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(t) => params = params.continue_token(&t),
                        None => break,
                    }
                }
            }
            objects
        }
    };
    let (mut paced_best, mut unpaced_best) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        let started = Instant::now();
        list_with(client.clone()).await;
        paced_best = paced_best.min(started.elapsed());
        let started = Instant::now();
        list_with(unpaced.clone()).await;
        unpaced_best = unpaced_best.min(started.elapsed());
    }
    let list_all = || async {
        let (mut objects, mut calls) = (0usize, 0usize);
        for (ar, _) in &resources {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
            let mut params = ListParams::default().limit(lifeboat::cluster::pager::PAGE_SIZE);
            loop {
                calls += 1;
                let page = api.list(&params).await.expect("list");
                objects += page.items.len();
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(t) => params = params.continue_token(&t),
                    None => break,
                }
            }
        }
        (objects, calls)
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let (catalog, store) = lifeboat_e2e::local_catalog(dir.path())
        .await
        .expect("catalog");
    let ctx = BackupContext {
        location: "default".into(),
        volumes: Arc::new(lifeboat::volumes::dispatch::Dispatcher {
            catalog: catalog.clone(),
        }),
        catalog: catalog.clone(),
        work: Work {
            store: store.clone(),
            client: client.clone(),
            list_calls: Arc::new(AtomicU64::new(0)),
            archive_key: None,
            encrypt: true,
        },
    };

    // The location's key and volume repository exist before the backups
    // are measured, as after `location add` (the default location makes
    // them on its first backup: a one-time scrypt key derivation).
    lifeboat::volumes::provision(&catalog, &store, "default")
        .await
        .expect("the location's key");
    let idle = rss_mib();
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max((rss_mib() * 1024.0) as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut backup = Duration::MAX;
    for round in 0..3 {
        let started = Instant::now();
        (raw_objects, raw_calls) = list_all().await;
        raw = raw.min(started.elapsed());
        let name = format!("bench-{round}");
        catalog
            .insert_backup(&BackupRecord::new(&name, "default", &json!({})))
            .await
            .expect("record");
        ctx.work.list_calls.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let phase = runner::run(ctx.clone(), name, BackupSpec::default(), None).await;
        backup = backup.min(started.elapsed());
        assert_eq!(phase.phase.as_str(), "Completed", "{:?}", phase.reason);
    }
    sampler.abort();
    let record = catalog.backup("bench-2").await.expect("record");
    let size = record.size_bytes.unwrap_or(0) as f64;
    let items = record.items_done as f64;

    println!("objects_in_cluster: {raw_objects}");
    println!(
        "raw_paginated_listing_best_of_3: {:.0} ms ({raw_calls} list calls)",
        raw.as_secs_f64() * 1000.0
    );
    println!(
        "raw_listing_paced_vs_plain_kube_rs_client_best_of_3: {:.0} ms / {:.0} ms",
        paced_best.as_secs_f64() * 1000.0,
        unpaced_best.as_secs_f64() * 1000.0
    );
    println!(
        "backup_wall_time_best_of_3: {:.0} ms",
        backup.as_secs_f64() * 1000.0
    );
    println!(
        "backup_to_listing_ratio: {:.2}",
        backup.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "backup_list_calls: {}",
        ctx.work.list_calls.load(Ordering::Relaxed)
    );
    println!("backup_objects: {items}");
    println!(
        "compressed_bytes_per_object: {:.0} B",
        size / items.max(1.0)
    );
    // Encryption overhead: the capture alone (list, pack, compress, upload),
    // best of three, with the location's key (age) and in the clear.
    let key = lifeboat::archive::ArchiveKey::from_recovery_key(&lifeboat::volumes::generate_key())
        .expect("key");
    let plain = capture_best_of_3(&ctx.work, "plain").await;
    let sealed_work = Work {
        archive_key: Some(key),
        encrypt: true,
        ..ctx.work.clone()
    };
    let sealed = capture_best_of_3(&sealed_work, "sealed").await;
    println!(
        "capture_best_of_3: {:.0} ms in the clear, {:.0} ms encrypted",
        plain.as_secs_f64() * 1000.0,
        sealed.as_secs_f64() * 1000.0
    );
    println!(
        "encryption_overhead_ratio: {:.2} (goal <= 1.1)",
        sealed.as_secs_f64() / plain.as_secs_f64()
    );
    println!("rss_idle: {idle:.0} MiB");
    println!(
        "rss_peak_above_idle_during_backup: {:.0} MiB",
        peak.load(Ordering::Relaxed) as f64 / 1024.0 - idle
    );
}

/// The fastest of three captures of everything into `<prefix>-N`.
async fn capture_best_of_3(work: &Work, prefix: &str) -> Duration {
    let mut best = Duration::MAX;
    for round in 0..3 {
        let mut log = lifeboat::backup::engine::Log::default();
        let started = Instant::now();
        lifeboat::backup::engine::capture(
            work,
            &format!("{prefix}-{round}"),
            &BackupSpec::default(),
            &mut log,
            |_, _| {},
        )
        .await
        .expect("capture");
        best = best.min(started.elapsed());
    }
    best
}
