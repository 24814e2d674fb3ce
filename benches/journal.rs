//! Continuous protection, measured: `cargo bench -p lifeboat-e2e --bench journal`.
//!
//! 1. Journal overhead. kubesim (HTTPS, controllers off) holds 10,000
//!    Running pods (bare, so every change to them is journaled) in 100
//!    namespaces. Lifeboat's real `serve` runs as a child process (this
//!    binary re-executed), so its CPU time is its own (`/proc/<pid>/stat`).
//!    This process patches 100 pods a second for 30 s twice: with the
//!    schedule's journal paused and with it running. Prints the server's
//!    added CPU as a share of one core (goal < 10 %) and the storage the
//!    journal grew by per change.
//! 2. Restore to an instant. kubesim holds 10,000 ConfigMaps in one
//!    namespace; a continuous schedule's base backup, then 100,000 changes
//!    (each ConfigMap edited 10 times) journaled. Prints the time to a plan
//!    (a dry run, POST to Planned) of a plain restore of the base and of a
//!    restore to now replaying the journal over it, and their ratio (goal
//!    ≤ 2).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const NAMESPACES: usize = 100;
const PODS: usize = 10_000;
const RATE: u64 = 100;
const WINDOW: Duration = Duration::from_secs(30);
const CONFIG_MAPS: usize = 10_000;
const EDITS: usize = 10;

async fn serve_child() {
    let dir = std::env::var("BENCH_DATA_DIR").expect("BENCH_DATA_DIR");
    let kubeconfig = std::env::var("BENCH_KUBECONFIG").expect("BENCH_KUBECONFIG");
    let mut config = lifeboat::config::Config {
        data_dir: dir.into(),
        kubeconfig: Some(kubeconfig.into()),
        listen: "127.0.0.1:0".parse().expect("address"),
        ..Default::default()
    };
    config.auth.disabled = true;
    config.journal.segment_seconds = 5;
    if let Err(e) = lifeboat::serve::serve(&config, None, None).await {
        eprintln!("serve failed: {e}");
        std::process::exit(1);
    }
}

fn start_child(
    data: &std::path::Path,
    kubeconfig: &std::path::Path,
) -> (std::process::Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env("BENCH_CHILD", "1")
        .env("BENCH_DATA_DIR", data)
        .env("BENCH_KUBECONFIG", kubeconfig)
        .env("LIFEBOAT_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let url = line
        .trim()
        .strip_prefix("lifeboat listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}

/// The child's CPU time (user + system) in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn seed_pods(store: &kubesim::Store) {
    let find = |r: &str| store.find("", "v1", r).expect("built-in resource");
    let (ns_rt, pod_rt) = (find("namespaces"), find("pods"));
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:02}");
        store
            .create(&ns_rt, None, json!({"metadata": {"name": ns}}), false)
            .expect("namespace");
        for p in 0..PODS / NAMESPACES {
            let pod = json!({"metadata": {"name": format!("worker-{p:03}"), "labels": {"app": "worker"}},
                "spec": {"nodeName": format!("node-{}", p % 3), "containers": [{"name": "main", "image": "registry.example/worker:1.2.3",
                    "env": [{"name": "MODE", "value": "production"}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
                "status": {"phase": "Running", "podIP": "10.0.0.1", "startTime": "2026-11-25T10:00:00Z",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0, "image": "registry.example/worker:1.2.3",
                        "state": {"running": {"startedAt": "2026-11-25T10:00:05Z"}}}]}});
            store.create(&pod_rt, Some(&ns), pod, false).expect("pod");
        }
    }
}

/// A GET's JSON answer (`null` when it is not JSON).
async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    http.get(url)
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .unwrap_or_default()
}

async fn schedule(http: &reqwest::Client, url: &str) -> Value {
    get_json(http, format!("{url}/api/v1/schedules/bench")).await
}

/// Waits until the journal watches every type and has written `changes`.
async fn journal_reaches(
    http: &reqwest::Client,
    url: &str,
    changes: u64,
    within: Duration,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let s = schedule(http, url).await;
        let j = &s["journal"];
        let current = j["resourceTypes"].as_u64().is_some_and(|n| n > 0)
            && j["currentTypes"] == j["resourceTypes"];
        if current
            && j["changesWritten"].as_u64().unwrap_or(0) >= changes
            && j["pendingSegments"] == 0
        {
            return j.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the journal never got there: {s}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Patches `RATE` pods a second for `WINDOW`; the child's CPU seconds used meanwhile.
async fn load(client: &kube::Client, pid: u32, round: &str) -> (f64, u64) {
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
    let cpu0 = cpu_seconds(pid);
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < WINDOW {
        tick.tick().await;
        let i = sent as usize;
        let api: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(client.clone(), &format!("team-{:02}", i % NAMESPACES));
        api.patch(
            &format!("worker-{:03}", (i / NAMESPACES) % (PODS / NAMESPACES)),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"bench/round": round, "bench/change": i.to_string()}}})),
        )
        .await
        .expect("patch");
        sent += 1;
    }
    (cpu_seconds(pid) - cpu0, sent)
}

async fn overhead() {
    let (sim, client) = lifeboat_e2e::kubesim(lifeboat_e2e::quiet_kubesim(), false)
        .await
        .expect("kubesim");
    seed_pods(&sim.store);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let data = dir.path().join("data");
    let (mut child, url) = start_child(&data, &kubeconfig);
    let pid = child.id();
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{url}/api/v1/schedules"))
        .json(
            &json!({"name": "bench", "schedule": "0 3 * * *", "continuous": true, "paused": true,
                      "template": {"includedNamespaces": ["team-*"]}}),
        )
        .send()
        .await
        .expect("schedule");
    assert_eq!(created.status(), 201);
    // Settled: the watchers have listed (the summary counts every pod).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s: Value = get_json(&http, format!("{url}/api/v1/cluster/summary")).await;
        if s["pods"]["byPhase"]["Running"] == PODS {
            break;
        }
        assert!(Instant::now() < deadline, "never synced");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (without, sent) = load(&client, pid, "off").await;
    http.post(format!("{url}/api/v1/schedules/bench/resume"))
        .send()
        .await
        .expect("resume");
    // The first list of 10,000 pods written, then the measured window.
    let listed = journal_reaches(&http, &url, PODS as u64, Duration::from_secs(180)).await;
    let journal_dir = data.join("backups/journal/bench");
    let (bytes0, changes0) = (
        dir_bytes(&journal_dir),
        listed["changesWritten"].as_u64().unwrap_or(0),
    );
    let (with, sent_on) = load(&client, pid, "on").await;
    let done = journal_reaches(&http, &url, changes0 + sent_on, Duration::from_secs(60)).await;
    let (bytes1, changes1) = (
        dir_bytes(&journal_dir),
        done["changesWritten"].as_u64().unwrap_or(0),
    );
    let secs = WINDOW.as_secs_f64();
    println!(
        "journal_load: {RATE} changes/s to {PODS} pods for {secs:.0} s ({sent} and {sent_on} changes)"
    );
    println!(
        "server_cpu_without_journal: {:.1} % of one core",
        without / secs * 100.0
    );
    println!(
        "server_cpu_with_journal: {:.1} % of one core",
        with / secs * 100.0
    );
    println!(
        "journal_added_cpu: {:.1} % of one core",
        (with - without) / secs * 100.0
    );
    println!(
        "journal_storage_per_change: {:.0} bytes ({} bytes for {} changes, zstd then age)",
        (bytes1 - bytes0) as f64 / (changes1 - changes0).max(1) as f64,
        bytes1 - bytes0,
        changes1 - changes0
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// POSTs a dry-run restore and waits for its plan; the time it took.
async fn plan(http: &reqwest::Client, url: &str, spec: Value) -> (Duration, Value) {
    let t0 = Instant::now();
    let created: Value = http
        .post(format!("{url}/api/v1/restores"))
        .json(&json!({"spec": spec}))
        .send()
        .await
        .expect("restore")
        .json()
        .await
        .expect("json");
    let name = created["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    loop {
        let r: Value = get_json(http, format!("{url}/api/v1/restores/{name}")).await;
        match r["phase"].as_str() {
            Some("Planned") => return (t0.elapsed(), r),
            Some("New" | "InProgress") => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => panic!("the plan failed: {}", r["phaseReason"]),
        }
    }
}

async fn restore_to_an_instant() {
    let (sim, client) = lifeboat_e2e::kubesim(lifeboat_e2e::quiet_kubesim(), false)
        .await
        .expect("kubesim");
    let find = |r: &str| sim.store.find("", "v1", r).expect("built-in resource");
    sim.store
        .create(
            &find("namespaces"),
            None,
            json!({"metadata": {"name": "bulk"}}),
            false,
        )
        .expect("namespace");
    let cm_rt = find("configmaps");
    for i in 0..CONFIG_MAPS {
        sim.store
            .create(&cm_rt, Some("bulk"), json!({"metadata": {"name": format!("settings-{i:05}")}, "data": {"v": "0", "mode": "steady"}}), false)
            .expect("configmap");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let (mut child, url) = start_child(&dir.path().join("data"), &kubeconfig);
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{url}/api/v1/schedules"))
        .json(
            &json!({"name": "bench", "schedule": "0 3 * * *", "continuous": true,
                      "template": {"includedNamespaces": ["bulk"]}}),
        )
        .send()
        .await
        .expect("schedule");
    assert_eq!(created.status(), 201);
    let listed = journal_reaches(&http, &url, CONFIG_MAPS as u64, Duration::from_secs(180)).await;
    let base: Value = http
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"fromSchedule": "bench", "name": "bench-base"}))
        .send()
        .await
        .expect("backup")
        .json()
        .await
        .expect("json");
    assert_eq!(base["name"], "bench-base", "{base}");
    loop {
        let b: Value = get_json(&http, format!("{url}/api/v1/backups/bench-base")).await;
        if b["phase"] == "Completed" {
            break;
        }
        assert!(
            !matches!(b["phase"].as_str(), Some("Failed" | "PartiallyFailed")),
            "{b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 100,000 changes, through the API server (the journal watches them).
    let t0 = Instant::now();
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "bulk");
    for round in 1..=EDITS {
        let edits = (0..CONFIG_MAPS).map(|i| {
            let api = api.clone();
            async move {
                api.patch(
                    &format!("settings-{i:05}"),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"v": round.to_string()}})),
                )
                .await
                .expect("patch")
            }
        });
        futures::stream::iter(edits)
            .buffer_unordered(16)
            .for_each(|_| async {})
            .await;
    }
    let changes = (CONFIG_MAPS * EDITS) as u64;
    let before = listed["changesWritten"].as_u64().unwrap_or(0);
    journal_reaches(&http, &url, before + changes, Duration::from_secs(600)).await;
    println!(
        "journal_entries_made: {changes} in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let (plain, _) = plan(
        &http,
        &url,
        json!({"backupName": "bench-base", "dryRun": true, "namespaceMapping": {"bulk": "bulk-a"}}),
    )
    .await;
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (pit, r) = plan(&http, &url, json!({"fromSchedule": "bench", "at": at, "dryRun": true, "namespaceMapping": {"bulk": "bulk-b"}})).await;
    let p = &r["plan"]["pointInTime"];
    assert!(p["changesApplied"].as_u64().unwrap_or(0) >= changes, "{p}");
    println!(
        "plain_plan: {} ms ({CONFIG_MAPS} objects)",
        plain.as_millis()
    );
    println!(
        "point_in_time_plan: {} ms ({} changes from {} segments over the same backup)",
        pit.as_millis(),
        p["changesApplied"],
        p["segmentsRead"]
    );
    println!(
        "point_in_time_ratio: {:.2} (goal ≤ 2)",
        pit.as_secs_f64() / plain.as_secs_f64()
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var("BENCH_CHILD").is_ok() {
        return serve_child().await;
    }
    // `cargo bench … -- overhead|instant` runs one part.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if only.as_deref().is_none_or(|o| o == "overhead") {
        overhead().await;
    }
    if only.as_deref().is_none_or(|o| o == "instant") {
        restore_to_an_instant().await;
    }
}
