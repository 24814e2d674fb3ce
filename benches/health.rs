//! Health benchmark: `cargo bench -p lifeboat-e2e --bench health`.
//!
//! kubesim (HTTPS, controllers off) holds 10,000 Running pods and 2,000
//! Deployments in 100 namespaces. Lifeboat's real `serve` runs in a child
//! process (this binary, re-executed) against it, so its memory is its own.
//! Prints, as `name: value unit`:
//! - the server's RSS once every watch has listed (goal ≤ 100 MiB), and its peak;
//! - the latency from a change sent to the API to its event on `/api/v1/stream`
//!   over loopback, p50 and p99 of 300 changes (goal p99 < 200 ms);
//! - `/api/v1/cluster/summary` under 50 concurrent clients: requests/s and p99,
//!   and the time of one summary computed afresh after a change.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

const NAMESPACES: usize = 100;
const PODS: usize = 10_000;
const DEPLOYMENTS: usize = 2_000;
const CHANGES: usize = 300;
const CLIENTS: usize = 50;
const LOAD_FOR: Duration = Duration::from_secs(10);

fn status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// What of the server's memory is its heap (glibc's figures, written by
/// the child): in use by live allocations, and free but kept by malloc.
fn heap_figures(data_dir: &std::path::Path) {
    let text = std::fs::read_to_string(data_dir.join("heap")).unwrap_or_default();
    let figures: Vec<f64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .map(|b: f64| b / (1024.0 * 1024.0))
        .collect();
    if let [in_use, free, total] = figures[..] {
        println!(
            "server_heap_in_use: {in_use:.0} MiB (of {total:.0} MiB taken from the system; {free:.0} MiB free in it)"
        );
    }
}

/// `BENCH_SMAPS=1`: the server's resident memory by mapping (its binary,
/// the heap, anonymous mappings, libraries), largest first.
fn smaps(pid: u32) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    let mut current = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words
            .first()
            .is_some_and(|w| w.contains('-') && !w.ends_with(':'))
        {
            current = words.get(5).map_or("[anonymous]".into(), |n| n.to_string());
        } else if words.first() == Some(&"Rss:") {
            *by.entry(current.clone()).or_default() += words[1].parse::<u64>().unwrap_or(0);
        }
    }
    let mut by: Vec<_> = by.into_iter().collect();
    by.sort_by_key(|(_, kib)| std::cmp::Reverse(*kib));
    for (name, kib) in by.iter().take(8) {
        println!("server_rss_in {name}: {:.1} MiB", *kib as f64 / 1024.0);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The child: Lifeboat's `serve`, configured by the parent through the environment.
async fn serve_child() {
    let dir = std::env::var("BENCH_DATA_DIR").expect("BENCH_DATA_DIR");
    // glibc's heap figures, for the parent to print beside the RSS.
    let heap_file = std::path::Path::new(&dir).join("heap");
    std::thread::spawn(move || {
        loop {
            // SAFETY: mallinfo2 takes no arguments and only reads glibc's counters.
            let m = unsafe { libc::mallinfo2() };
            let _ = std::fs::write(
                &heap_file,
                format!(
                    "{} {} {}",
                    m.uordblks + m.hblkhd,
                    m.fordblks,
                    m.arena + m.hblkhd
                ),
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let kubeconfig = std::env::var("BENCH_KUBECONFIG").expect("BENCH_KUBECONFIG");
    let mut config = lifeboat::config::Config {
        data_dir: dir.into(),
        kubeconfig: Some(kubeconfig.into()),
        listen: "127.0.0.1:0".parse().expect("address"),
        ..Default::default()
    };
    config.auth.disabled = std::env::var("BENCH_AUTH_DISABLED").is_ok();
    if let Err(e) = lifeboat::serve::serve(&config, None, None).await {
        eprintln!("serve failed: {e}");
        std::process::exit(1);
    }
}

fn seed(store: &kubesim::Store) {
    let find = |r: &str, g: &str| store.find(g, "v1", r).expect("built-in resource");
    let (ns_rt, pod_rt, deploy_rt) = (
        find("namespaces", ""),
        find("pods", ""),
        find("deployments", "apps"),
    );
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:02}");
        store
            .create(&ns_rt, None, json!({"metadata": {"name": ns}}), false)
            .expect("namespace");
        for d in 0..DEPLOYMENTS / NAMESPACES {
            let app = format!("app-{d}");
            let template = json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [{
                "name": "main", "image": "registry.example/app:1.2.3", "ports": [{"containerPort": 8080}],
                "env": [{"name": "MODE", "value": "production"},
                        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-token", "key": "token"}}}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}});
            store
                .create(
                    &deploy_rt,
                    Some(&ns),
                    json!({"metadata": {"name": app, "labels": {"app": app}},
                           "spec": {"replicas": 5, "selector": {"matchLabels": {"app": app}}, "template": template},
                           "status": {"replicas": 5, "readyReplicas": 5, "updatedReplicas": 5, "availableReplicas": 5}}),
                    false,
                )
                .expect("deployment");
            for p in 0..PODS / DEPLOYMENTS {
                let mut pod = template.clone();
                pod["metadata"]["name"] = json!(format!("{app}-7d9f8c6b5-{p:05}"));
                pod["spec"]["nodeName"] = json!(format!("node-{}", p % 3));
                pod["status"] = json!({"phase": "Running", "podIP": "10.0.0.1", "startTime": "2026-11-25T10:00:00Z",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0, "image": "registry.example/app:1.2.3",
                        "state": {"running": {"startedAt": "2026-11-25T10:00:05Z"}}}]});
                store.create(&pod_rt, Some(&ns), pod, false).expect("pod");
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var("BENCH_CHILD").is_ok() {
        return serve_child().await;
    }
    // `BENCH_NO_METRICS_SERVER=1`: a cluster without metrics-server, to see
    // what the usage readings add to the server's memory.
    let options = kubesim::Options {
        metrics_server: std::env::var_os("BENCH_NO_METRICS_SERVER").is_none(),
        ..lifeboat_e2e::quiet_kubesim()
    };
    let (sim, client) = lifeboat_e2e::kubesim(options, false)
        .await
        .expect("kubesim");
    seed(&sim.store);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");

    let started = Instant::now();
    let (mut child, url) = start_child(&dir.path().join("data"), &kubeconfig, false);
    let pid = child.id();
    lifeboat_e2e::sign_in_as(&url, &sim.token);
    let http = lifeboat_e2e::http(&url);
    let summary_url = format!("{url}/api/v1/cluster/summary");
    wait_synced(&http, &summary_url, started).await;
    println!(
        "objects_watched: {} pods, {} deployments",
        PODS, DEPLOYMENTS
    );
    println!(
        "time_to_first_full_summary: {} ms",
        started.elapsed().as_millis()
    );
    println!(
        "server_rss_watching: {:.0} MiB",
        status_kib(pid, "VmRSS:") / 1024.0
    );
    heap_figures(&dir.path().join("data"));
    if std::env::var_os("BENCH_SMAPS").is_some() {
        smaps(pid);
    }

    // Change → SSE latency: one Deployment patched at a time, timed from
    // sending the patch to its change event arriving on the stream.
    let mut stream = lifeboat_e2e::SseStream::open(&format!("{url}/api/v1/stream"), None)
        .await
        .expect("stream");
    let mut latencies = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let ns = format!("team-{:02}", i % NAMESPACES);
        let name = format!("app-{}", i % (DEPLOYMENTS / NAMESPACES));
        let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), &ns);
        let t0 = Instant::now();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"bench/change": i.to_string()}}})),
        )
        .await
        .expect("patch");
        let wanted_ns = format!(r#""namespace":"{ns}""#);
        let wanted_name = format!(r#""name":"{name}""#);
        stream
            .next_matching(Duration::from_secs(10), |e| {
                e.data.contains(r#""resource":"deployments.apps""#)
                    && e.data.contains(&wanted_ns)
                    && e.data.contains(&wanted_name)
            })
            .await
            .expect("change event");
        latencies.push(t0.elapsed());
    }
    latencies.sort();
    println!(
        "change_to_sse_p50: {:.1} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0
    );
    println!(
        "change_to_sse_p99: {:.1} ms",
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );

    // One summary computed afresh (a change invalidates the cached one).
    let api: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "team-00");
    api.patch(
        "app-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"bench/change": "fresh"}}})),
    )
    .await
    .expect("patch");
    stream
        .next_matching(Duration::from_secs(10), |e| {
            e.data.contains(r#""namespace":"team-00""#) && e.data.contains(r#""name":"app-0""#)
        })
        .await
        .expect("change event");
    drop(stream);
    let t0 = Instant::now();
    http.get(&summary_url)
        .send()
        .await
        .expect("summary")
        .bytes()
        .await
        .expect("body");
    println!("summary_uncached: {} ms", t0.elapsed().as_millis());

    // A reader the server has not seen: their token's TokenReview and the
    // SubjectAccessReviews of the summary, cold.
    let newcomer = lifeboat_e2e::http(&url);
    let fresh = sim.issue_token(kubesim::rbac::User {
        name: "newcomer".into(),
        uid: String::new(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
    });
    let t0 = Instant::now();
    let cold = newcomer
        .get(&summary_url)
        .bearer_auth(&fresh)
        .send()
        .await
        .expect("summary");
    assert!(cold.status().is_success());
    cold.bytes().await.expect("body");
    println!(
        "summary_first_request_of_a_new_token: {} ms (TokenReview + 2 SubjectAccessReviews + summary)",
        t0.elapsed().as_millis()
    );
    let reviews: Api<k8s_openapi::api::authorization::v1::SubjectAccessReview> =
        Api::all(client.clone());
    let review: k8s_openapi::api::authorization::v1::SubjectAccessReview =
        serde_json::from_value(json!({"spec": {"user": "someone", "groups": ["team"],
            "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "team-00"}}}))
        .expect("review");
    let mut round_trips = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        reviews
            .create(&Default::default(), &review)
            .await
            .expect("review");
        round_trips.push(t0.elapsed());
    }
    round_trips.sort();
    println!(
        "subject_access_review_round_trip_p50: {:.1} ms",
        percentile(&round_trips, 0.5).as_secs_f64() * 1000.0
    );

    // 50 clients asking for the summary as fast as they can for 10 s.
    let (rate, p99) = load(&http, &summary_url).await;
    println!("summary_50_clients: {rate:.0} requests/s");
    println!(
        "summary_50_clients_p99: {:.0} ms",
        p99.as_secs_f64() * 1000.0
    );
    println!(
        "server_rss_peak: {:.0} MiB",
        status_kib(pid, "VmHWM:") / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();

    // The same load on a server with sign-in turned off: what authorization costs.
    let started = Instant::now();
    let (mut open, open_url) = start_child(&dir.path().join("data-open"), &kubeconfig, true);
    let anonymous = reqwest::Client::new();
    let open_summary = format!("{open_url}/api/v1/cluster/summary");
    wait_synced(&anonymous, &open_summary, started).await;
    let (open_rate, open_p99) = load(&anonymous, &open_summary).await;
    println!("summary_50_clients_without_auth: {open_rate:.0} requests/s");
    println!(
        "summary_50_clients_p99_without_auth: {:.0} ms",
        open_p99.as_secs_f64() * 1000.0
    );
    println!(
        "auth_p99_ratio: {:.2} (with sign-in and SAR cache warm ÷ without)",
        p99.as_secs_f64() / open_p99.as_secs_f64().max(1e-6)
    );
    let _ = open.kill();
    let _ = open.wait();
}

/// Starts Lifeboat's `serve` as a child process (this program re-executed);
/// returns it and its base URL.
fn start_child(
    data: &std::path::Path,
    kubeconfig: &std::path::Path,
    open: bool,
) -> (std::process::Child, String) {
    let exe = std::env::current_exe().expect("own path");
    // `BENCH_CHILD_WRAPPER="heaptrack -o /tmp/serve"`: the server runs under
    // a profiler (its own output lines come first).
    let mut command = match std::env::var("BENCH_CHILD_WRAPPER") {
        Ok(wrapper) => {
            let mut words = wrapper.split_whitespace();
            let mut command = Command::new(words.next().expect("a wrapper command"));
            command.args(words).arg(exe);
            command
        }
        Err(_) => Command::new(exe),
    };
    command
        .env("BENCH_CHILD", "1")
        .env("BENCH_DATA_DIR", data)
        .env("BENCH_KUBECONFIG", kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if open {
        command.env("BENCH_AUTH_DISABLED", "1");
    }
    let mut child = command.spawn().expect("child");
    let url = child.stdout.take().and_then(|out| {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.trim()
                    .strip_prefix("lifeboat listening on ")
                    .map(str::to_string)
            })
    });
    match url {
        Some(url) => (child, url),
        None => {
            let status = child.wait();
            panic!("the server ended before it listened: {status:?}");
        }
    }
}

/// Waits until the server's summary counts every pod and every watch is live.
async fn wait_synced(http: &reqwest::Client, summary_url: &str, started: Instant) {
    loop {
        let summary: serde_json::Value = http
            .get(summary_url)
            .send()
            .await
            .expect("summary")
            .json()
            .await
            .unwrap_or_default();
        let watching = summary["pods"]["byPhase"]["Running"] == PODS
            && summary["watches"]
                .as_object()
                .is_some_and(|w| w.values().all(|s| s["state"] == "live"));
        if watching {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never synced: {summary}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `CLIENTS` clients asking for `url` as fast as they can for `LOAD_FOR`:
/// requests per second and the p99 latency.
async fn load(http: &reqwest::Client, url: &str) -> (f64, Duration) {
    let deadline = Instant::now() + LOAD_FOR;
    let timings = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, url, timings) = (http.clone(), url.to_string(), timings.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let resp = http.get(&url).send().await.expect("summary");
                    assert!(resp.status().is_success());
                    resp.bytes().await.expect("body");
                    mine.push(t0.elapsed());
                }
                timings.lock().expect("lock").extend(mine);
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client");
    }
    let mut timings = std::mem::take(&mut *timings.lock().expect("lock"));
    timings.sort();
    (
        timings.len() as f64 / LOAD_FOR.as_secs_f64(),
        percentile(&timings, 0.99),
    )
}
