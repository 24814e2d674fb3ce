//! Dashboard benchmark: `cargo bench -p lifeboat-e2e --bench ui` (after
//! `.ci/build-ui`). Runs `lifeboat demo` in this process and Debian's headless
//! Chromium (playwright-core, `benches/ui.cjs`) against it. Prints:
//! - the overview's first contentful paint on loopback, median of 5 fresh
//!   loads, signed in (the sign-in form with the demo admin's token; each
//!   load a fresh browser context holding only the session cookie) (goal < 200 ms);
//! - the wasm bundle's size, raw and gzip -9 (goal < 0.5 MiB compressed);
//! - the time from a change sent to the API (kubectl, started by the browser
//!   script) to the new value on screen, over the live stream (median and worst of 10).

use std::process::{Command, Stdio};
use std::time::Duration;

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
    let modules = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/lifeboat-ci/npm/node_modules");
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/ui.cjs");
    const CHANGES: usize = 10;
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(&url)
        .arg(config.data_dir.join("demo.kubeconfig"))
        .arg(CHANGES.to_string())
        .env("NODE_PATH", modules)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser side failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let figures = |prefix: &str| -> Vec<f64> {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    };
    let mut fcp = figures("fcp ");
    let mut seen = figures("seen ");
    let mut kubectl = figures("kubectl ");
    for v in [&mut fcp, &mut seen, &mut kubectl] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
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
    println!(
        "change_to_screen_median: {:.0} ms (from starting kubectl; kubectl's own round trip: median {:.0} ms)",
        seen[seen.len() / 2],
        kubectl[kubectl.len() / 2]
    );
    println!(
        "change_to_screen_worst: {:.0} ms (of {})",
        seen[seen.len() - 1],
        seen.len()
    );
}
