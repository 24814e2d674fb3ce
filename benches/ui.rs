//! Dashboard benchmark: `cargo bench -p lifeboat-e2e --bench ui` (after
//! `.ci/build-ui`). Runs `lifeboat demo` in this process and Debian's headless
//! Chromium (playwright-core, `benches/ui.cjs`) against it. Prints:
//! - the overview's first contentful paint on loopback, median of 5 fresh loads (goal < 1 s);
//! - the wasm bundle's size, raw and gzip -9 (goal < 1.5 MiB compressed);
//! - the time from a change sent to the API to the new value on screen, over
//!   the live stream (median and worst of 10).

use std::process::{Command, Stdio};

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use kube::api::{Patch, PatchParams};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    lifeboat::install_crypto_provider();
    let site = lifeboat::http::ui::find_site_dir(None)
        .expect("the browser bundle is not built: run .ci/build-ui");
    let wasm = site.join("pkg/lifeboat_bg.wasm");
    let raw = std::fs::metadata(&wasm).expect("wasm").len();
    let gz = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -9c '{}' | wc -c", wasm.display()))
        .output()
        .expect("gzip");
    let gz: u64 = String::from_utf8_lossy(&gz.stdout)
        .trim()
        .parse()
        .unwrap_or(0);

    let dir = tempfile::tempdir().expect("tempdir");
    let port = lifeboat_e2e::free_port().expect("port");
    let config = lifeboat::config::Config {
        data_dir: dir.path().join("data"),
        listen: format!("127.0.0.1:{port}").parse().expect("address"),
        site_dir: Some(site),
        ..Default::default()
    };
    let demo_config = config.clone();
    tokio::spawn(async move { lifeboat::demo::run(&demo_config).await });
    let url = format!("http://127.0.0.1:{port}");
    lifeboat_e2e::poll_json(&format!("{url}/readyz"), Duration::from_secs(60), |r| {
        r["ready"] == true
    })
    .await
    .expect("demo ready");
    let kc = kube::config::Kubeconfig::read_from(config.data_dir.join("demo.kubeconfig"))
        .expect("kubeconfig");
    let kconf = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(kconf).expect("client");
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client, "shop");

    let modules = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/lifeboat-ci/npm/node_modules");
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/ui.cjs");
    const CHANGES: usize = 10;
    let mut node = tokio::process::Command::new("node")
        .arg(script)
        .arg(&url)
        .arg(CHANGES.to_string())
        .env("NODE_PATH", modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    let mut stdin = node.stdin.take().expect("stdin");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let mut failures = Vec::new();
    let mut fcp = Vec::new();
    let mut seen = Vec::new();
    let mut replicas = 3;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(v) = line.strip_prefix("fcp ") {
            fcp.push(v.parse::<f64>().unwrap_or(f64::MAX));
        } else if line == "ready" {
            replicas = if replicas == 3 { 4 } else { 3 };
            let t0 = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis();
            deployments
                .patch(
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
                )
                .await
                .expect("patch");
            stdin
                .write_all(format!("{t0}\n").as_bytes())
                .await
                .expect("to node");
            stdin.flush().await.expect("to node");
        } else if let Some(v) = line.strip_prefix("seen ") {
            seen.push(v.parse::<u64>().unwrap_or(u64::MAX));
        } else {
            failures.push(line);
        }
    }
    let status = node.wait().await.expect("node");
    assert!(
        status.success(),
        "the browser side failed ({status}): {failures:?}"
    );
    fcp.sort_by(|a, b| a.total_cmp(b));
    seen.sort();
    println!(
        "overview_first_contentful_paint_median: {:.0} ms (of {} loads, best {:.0} ms)",
        fcp[fcp.len() / 2],
        fcp.len(),
        fcp[0]
    );
    println!(
        "wasm_bundle: {:.2} MiB raw, {:.2} MiB gzip -9",
        raw as f64 / 1048576.0,
        gz as f64 / 1048576.0
    );
    println!("sse_change_to_screen_median: {} ms", seen[seen.len() / 2]);
    println!(
        "sse_change_to_screen_worst: {} ms (of {})",
        seen[seen.len() - 1],
        seen.len()
    );
}
