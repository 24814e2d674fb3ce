//! The API's contract: `/api/v1/openapi.json`, generated from the handlers,
//! fuzzed by Schemathesis (from PyPI; `.ci/setup --tests` installs it)
//! against a real server on kubesim's demo cluster. Every operation gets
//! examples, boundary cases and random (valid and invalid) inputs; the run
//! fails on any 5xx, and on any answer whose status, content type or body
//! the document does not allow.

use std::path::PathBuf;
use std::process::Command;

use lifeboat_e2e::{kubesim, serve_lifeboat};
use serde_json::{Value, json};

/// Schemathesis's `st`: `$LIFEBOAT_SCHEMATHESIS`, else the virtualenv
/// `.ci/setup --tests` makes, else the PATH's.
fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("LIFEBOAT_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let venv = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/lifeboat-ci/venv/bin/st"))
        .filter(|p| p.exists());
    venv.unwrap_or_else(|| PathBuf::from("st"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_contract() {
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let http = lifeboat_e2e::http(&url);

    // The served document is the one the code generates, and it needs sign-in.
    let anonymous = reqwest::get(format!("{url}/api/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let served: Value = lifeboat_e2e::get(format!("{url}/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served,
        serde_json::to_value(lifeboat::http::openapi()).unwrap()
    );
    assert_eq!(served["info"]["version"], lifeboat::VERSION);

    // Something to find: a completed backup, so that `{name}` paths have
    // one to answer about besides the 404s of generated names.
    let r = http
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": "shop-1", "spec": {"includedNamespaces": ["shop"], "volumeData": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    lifeboat_e2e::poll_json(
        &format!("{url}/api/v1/backups/shop-1"),
        std::time::Duration::from_secs(60),
        |b| b["phase"] == "Completed",
    )
    .await
    .unwrap();

    // The operations about one backup or namespace also get real ones,
    // so that their success answers are checked too, not only their 404s.
    let config = dir.path().join("schemathesis.toml");
    let mut toml = String::new();
    for id in [
        "getBackup",
        "getBackupLog",
        "getBackupContents",
        "downloadBackup",
        "verifyBackup",
    ] {
        toml.push_str(&format!(
            "[[operations]]\ninclude-operation-id = \"{id}\"\nparameters = {{ name = \"shop-1\" }}\n\n"
        ));
    }
    toml.push_str(
        "[[operations]]\ninclude-operation-id = \"getNamespace\"\nparameters = { name = \"shop\" }\n",
    );
    std::fs::write(&config, toml).unwrap();
    let report = dir.path().join("report");
    let st = schemathesis();
    let token = sim.token.clone();
    let schema = format!("{url}/api/v1/openapi.json");
    // `st` blocks; the server runs on this runtime's other worker.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&st)
            .arg("--config-file")
            .arg(&config)
            .args([
                "run",
                &schema,
                "--header",
                &format!("Authorization: Bearer {token}"),
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "15",
                "--seed",
                "7",
                "--workers",
                "2",
                "--request-timeout",
                "20",
                "--no-color",
                "--generation-database",
                "none",
                // Streams never end while they are followed (tested in
                // health.rs and backups.rs); the agents' long poll waits 25 s.
                "--exclude-path-regex",
                "/(progress|stream)$|^/api/v1/agent/work$",
                "--report",
                "junit",
                "--report-dir",
            ])
            .arg(&report)
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| {
        panic!(
            "Schemathesis (`st`) does not run: {e}. `.ci/setup --tests` installs it \
             (pip install schemathesis into ~/.cache/lifeboat-ci/venv)"
        )
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "Schemathesis found problems:\n{text}");
    // Every operation selected was tested (all but the excluded ones).
    let count = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.trim().split('/').next()?.parse::<usize>().ok())
    };
    let (selected, tested) = (count("Selected:"), count("Tested:"));
    assert!(
        selected.is_some_and(|n| n >= 45) && selected == tested,
        "not every operation was tested (selected {selected:?}, tested {tested:?}):\n{text}"
    );
}
