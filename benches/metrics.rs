//! `/metrics` benchmark: `cargo bench -p lifeboat-e2e --bench metrics`.
//!
//! kubesim (controllers off) holds 10,000 pods in 200 namespaces; the
//! catalog holds a successful backup of each namespace and 20 schedules.
//! Lifeboat serves in this process with its watchers running. Prints the
//! scrape's time (median and p95 of 30, after one warm-up) and size; goal
//! < 50 ms and < 1 MiB.

use std::time::{Duration, Instant};

use serde_json::json;

const NAMESPACES: usize = 200;
const PODS: usize = 10_000;
const SCRAPES: usize = 30;

fn seed(store: &kubesim::Store) {
    let find = |r: &str| store.find("", "v1", r).expect("built-in resource");
    let (ns_rt, pod_rt) = (find("namespaces"), find("pods"));
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:03}");
        store
            .create(&ns_rt, None, json!({"metadata": {"name": ns}}), false)
            .expect("namespace");
        for p in 0..PODS / NAMESPACES {
            let pod = json!({"metadata": {"name": format!("app-{p}"), "labels": {"app": "app"}},
                "spec": {"nodeName": "node-a", "containers": [{"name": "main", "image": "registry.example/app:1.2.3"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
            store.create(&pod_rt, Some(&ns), pod, false).expect("pod");
        }
    }
}

#[tokio::main]
async fn main() {
    let (sim, client) = lifeboat_e2e::kubesim(lifeboat_e2e::quiet_kubesim(), false)
        .await
        .expect("kubesim");
    seed(&sim.store);
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, state) = lifeboat_e2e::serve_lifeboat(client, &sim, dir.path())
        .await
        .expect("lifeboat");
    let now = lifeboat::catalog::now();
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:03}");
        let spec = json!({"includedNamespaces": [ns]});
        let mut b = lifeboat::catalog::BackupRecord::new(&format!("{ns}-1"), "default", &spec);
        b.phase = "Completed".into();
        b.completed_at = Some(now.clone());
        b.size_bytes = Some(1 << 20);
        b.schedule = Some(format!("s-{:02}", n % 20));
        state.catalog.insert_backup(&b).await.expect("backup row");
    }
    for s in 0..20 {
        let spec: lifeboat::schedule::ScheduleSpec = serde_json::from_value(json!({
            "name": format!("s-{s:02}"), "schedule": "0 1 * * *",
            "template": {"includedNamespaces": [format!("team-{s:03}")]}, "paused": true}))
        .expect("schedule");
        lifeboat::schedule::create(&state.catalog, &spec, "bench")
            .await
            .expect("schedule row");
    }
    // Once the watchers have listed every namespace.
    let http = lifeboat_e2e::http(&url);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let listed: serde_json::Value = http
            .get(format!("{url}/api/v1/namespaces"))
            .send()
            .await
            .expect("namespaces")
            .json()
            .await
            .unwrap_or_default();
        if listed["items"].as_array().map_or(0, Vec::len) >= NAMESPACES {
            break;
        }
        assert!(Instant::now() < deadline, "the watchers never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let scrape = || async {
        let started = Instant::now();
        let text = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body");
        (started.elapsed(), text)
    };
    let (_, warm) = scrape().await;
    assert!(
        warm.contains("lifeboat_namespace_protection{namespace=\"team-199\""),
        "every namespace is in the scrape"
    );
    let mut times = Vec::with_capacity(SCRAPES);
    let mut size = 0;
    for _ in 0..SCRAPES {
        let (took, text) = scrape().await;
        times.push(took);
        size = text.len();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "metrics scrape, {PODS} pods in {NAMESPACES} namespaces, {NAMESPACES} backups, 20 schedules:"
    );
    println!(
        "  time: {:.1} ms median, {:.1} ms p95 (goal < 50 ms)",
        ms(times[SCRAPES / 2]),
        ms(times[SCRAPES * 95 / 100])
    );
    println!(
        "  size: {:.1} KiB, {} lines (goal < 1 MiB)",
        size as f64 / 1024.0,
        warm.lines().count()
    );
}
