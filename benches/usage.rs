//! Health you can act on, measured:
//! 1. memory of one hour of usage history (120 readings) for 10,000 pods and
//!    100 nodes, as process RSS growth (goal ≤ 30 MiB), and the time one
//!    reading takes to record;
//! 2. log follow latency: kubesim's web pods write a line every 400 ms
//!    (each stamped with when it was written); Lifeboat streams
//!    `…/log?follow=true&timestamps=true` through to this client; the time
//!    from a line's stamp to its arrival, p50 and p99 of 150 lines (goal p99
//!    < 500 ms). The browser adds its own rendering on top of this.
//!
//! `cargo bench -p lifeboat-e2e --bench usage`

use std::time::{Duration, Instant};

use futures::StreamExt;
use lifeboat::health::usage::{KEPT, Usage};
use lifeboat_e2e::{kubesim, rss_mib, running_pods, serve_lifeboat};
use serde_json::{Value, json};

/// Counts the bytes live on the heap, so that what the history holds is
/// measured exactly (RSS also moves with memory the allocator reuses).
struct Counting;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a
// counter is kept beside it.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, std::sync::atomic::Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_mib() -> f64 {
    LIVE.load(std::sync::atomic::Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

const PODS: usize = 10_000;
const NODES: usize = 100;

fn readings(i: usize) -> (Value, Value) {
    // `i` moves the numbers; the shape is a real PodMetricsList's.
    let nodes: Vec<Value> = (0..NODES)
        .map(|n| json!({"metadata": {"name": format!("node-{n:03}")},
                         "usage": {"cpu": format!("{}n", 1_000_000_000 + i * 1000), "memory": "8123456Ki"}}))
        .collect();
    let pods: Vec<Value> = (0..PODS)
        .map(|p| json!({"metadata": {"name": format!("app-{p:05}-7f9c6d5b4-x2x9q"), "namespace": format!("team-{:03}", p % 100)},
                         "containers": [{"name": "app", "usage": {"cpu": format!("{}n", 12_000_000 + p + i), "memory": format!("{}Ki", 40_000 + p)}}]}))
        .collect();
    (json!({"items": nodes}), json!({"items": pods}))
}

fn history_memory() {
    // One reading is made up front and recorded 120 times (readings differ in
    // their numbers only, which cost the same), so that RSS grows by the
    // history alone.
    let (nodes, pods) = readings(0);
    let usage = Usage::default();
    let before = rss_mib();
    let heap_before = live_mib();
    let started = Instant::now();
    for i in 0..KEPT {
        usage.record(1_800_000_000 + i as u32 * 30, &nodes, &pods);
    }
    let per_reading = started.elapsed() / KEPT as u32;
    let after = rss_mib();
    let heap = live_mib() - heap_before;
    let kept = usage
        .pod("team-007", "app-00007-7f9c6d5b4-x2x9q")
        .map_or(0, |p| p.history.samples().len());
    println!(
        "usage history: {PODS} pods and {NODES} nodes × {KEPT} readings (1 h): +{heap:.1} MiB on the heap, +{:.1} MiB RSS (goal ≤ 30 MiB); {kept} readings kept per pod; one reading recorded in {:.1} ms",
        after - before,
        per_reading.as_secs_f64() * 1000.0
    );
}

async fn follow_latency() {
    let (sim, client) = kubesim(kubesim::Options::default(), true)
        .await
        .expect("kubesim starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let (url, _state) = serve_lifeboat(client, &sim, dir.path())
        .await
        .expect("Lifeboat serves");
    let pods = running_pods(&url, "shop", "web-", 3)
        .await
        .expect("the web pods run");
    let http = lifeboat_e2e::http(&url);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    for pod in pods {
        let (http, url, tx) = (http.clone(), url.clone(), tx.clone());
        tokio::spawn(async move {
            let response = http
                .get(format!(
                    "{url}/api/v1/namespaces/shop/pods/{pod}/log?follow=true&tailLines=0&timestamps=true"
                ))
                .send()
                .await
                .expect("the log answers");
            let mut body = response.bytes_stream();
            let mut carry = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                let arrived = chrono::Utc::now();
                carry.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = carry.find('\n') {
                    let line: String = carry.drain(..=end).collect();
                    let stamp = line.split_whitespace().next().unwrap_or_default();
                    if let Ok(written) = chrono::DateTime::parse_from_rfc3339(stamp) {
                        let ms = (arrived - written.with_timezone(&chrono::Utc))
                            .num_microseconds()
                            .unwrap_or(0) as f64
                            / 1000.0;
                        if tx.send(ms).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let mut samples = Vec::new();
    while samples.len() < 150 {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(ms)) => samples.push(ms),
            _ => break,
        }
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "log follow: line written → received through Lifeboat, {} lines: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (goal p99 < 500 ms)",
        samples.len(),
        at(0.5),
        at(0.99),
        samples.last().copied().unwrap_or(0.0)
    );
}

fn main() {
    history_memory();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(follow_latency());
}
