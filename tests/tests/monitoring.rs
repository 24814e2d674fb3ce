//! Monitoring: `/metrics` scraped by a real Prometheus (Debian's) with the
//! documented scrape identity, the alert rules checked and unit-tested by
//! promtool, and the dashboard and rules naming only metrics Lifeboat serves.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifeboat_e2e::{Guard, free_port, kubesim, poll_json, serve_lifeboat};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(90);

/// The rule groups of docker/monitoring/alerts.yaml, as a Prometheus rules file.
fn rules_file(dir: &Path) -> std::path::PathBuf {
    let rule: Vec<Value> =
        kubesim::seed::parse(include_str!("../../docker/monitoring/alerts.yaml")).unwrap();
    let path = dir.join("rules.yaml");
    // JSON is YAML: promtool reads it as it is.
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&json!({"groups": rule[0]["spec"]["groups"]})).unwrap(),
    )
    .unwrap();
    path
}

fn promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs (apt-get install prometheus; .ci/setup --tests does)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

#[test]
fn the_alert_rules_are_valid_and_fire_when_they_should() {
    let dir = tempfile::tempdir().unwrap();
    rules_file(dir.path());
    let checked = promtool(dir.path(), &["check", "rules", "rules.yaml"]);
    assert!(checked.contains("SUCCESS: 9 rules found"), "{checked}");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/monitoring/alerts_test.yaml"),
        dir.path().join("alerts_test.yaml"),
    )
    .unwrap();
    let tested = promtool(dir.path(), &["test", "rules", "alerts_test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every `lifeboat_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("lifeboat_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

async fn backup_shop(url: &str) {
    let http = lifeboat_e2e::http(url);
    let r = http
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": "shop-1", "spec": {"includedNamespaces": ["shop"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let done = poll_json(&format!("{url}/api/v1/backups/shop-1"), WITHIN, |b| {
        !matches!(b["phase"].as_str(), Some("New" | "InProgress"))
    })
    .await
    .unwrap();
    assert_eq!(done["phase"], "Completed", "{done}");
}

/// Runs `query` through Prometheus's HTTP API until it returns a series.
async fn query(prometheus: &str, query: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WITHIN;
    loop {
        let answer: Value = match http
            .get(format!("{prometheus}/api/v1/query"))
            .query(&[("query", query)])
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(e) => json!({"error": e.to_string()}),
        };
        if let Some(result) = answer["data"]["result"].as_array()
            && !result.is_empty()
        {
            return result.clone();
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never returned {query}: {answer}; targets: {}",
            http.get(format!("{prometheus}/api/v1/targets"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_lifeboat_as_its_own_identity() {
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    // docker/rbac.yaml, and Prometheus's ServiceAccount bound as documented.
    let mut rbac = kubesim::seed::parse(include_str!("../../docker/rbac.yaml")).unwrap();
    rbac.extend(
        kubesim::seed::parse(
            "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: prometheus-lifeboat}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lifeboat-metrics-reader}
subjects: [{kind: ServiceAccount, name: prometheus, namespace: monitoring}]",
        )
        .unwrap(),
    );
    kubesim::seed::apply(&sim.store, rbac).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();

    // Without a token, or with one that may not read metrics: refused.
    let anonymous = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let stranger = sim.issue_token(kubesim::rbac::User::service_account("monitoring", "other"));
    let refused = reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    backup_shop(&url).await;
    // And one run of a schedule.
    let http = lifeboat_e2e::http(&url);
    let created = http
        .post(format!("{url}/api/v1/schedules"))
        .json(&json!({"name": "nightly", "schedule": "0 1 * * *",
                      "template": {"includedNamespaces": ["shop"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let scheduler = lifeboat::schedule::Scheduler {
        catalog: state.catalog.clone(),
        locations: state.locations.clone(),
        client: Some(client.clone()),
        drill_client: None,
        leadership: lifeboat::schedule::Leadership::Single,
    };
    let report = scheduler
        .tick(chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    let [run] = report.started.as_slice() else {
        panic!("{report:?}");
    };
    let done = poll_json(&format!("{url}/api/v1/backups/{run}"), WITHIN, |b| {
        !matches!(b["phase"].as_str(), Some("New" | "InProgress"))
    })
    .await
    .unwrap();
    assert_eq!(done["phase"], "Completed", "{done}");
    // And a restore's plan.
    let planned = http
        .post(format!("{url}/api/v1/restores"))
        .json(&json!({"name": "plan-1", "spec": {"backupName": "shop-1", "dryRun": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(planned.status(), 202);
    poll_json(&format!("{url}/api/v1/restores/plan-1"), WITHIN, |r| {
        r["phase"] == "Planned"
    })
    .await
    .unwrap();
    let token = sim.issue_token(kubesim::rbac::User::service_account(
        "monitoring",
        "prometheus",
    ));
    let scraped = reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = scraped.text().await.unwrap();
    for series in [
        r#"lifeboat_backup_runs_total{phase="Completed",schedule=""} 1"#,
        r#"lifeboat_namespace_protection{namespace="shop",state="protected"} 1"#,
        r#"lifeboat_namespace_protection{namespace="data",state="unprotected"} 1"#,
        r#"lifeboat_backups{phase="Completed",location="default"} 2"#,
        r#"lifeboat_backup_runs_total{phase="Completed",schedule="nightly"} 1"#,
        r#"lifeboat_schedule_interval_seconds{schedule="nightly"} 86400"#,
        r#"lifeboat_restore_runs_total{phase="Planned"} 1"#,
        r#"lifeboat_restores{phase="Planned"} 1"#,
    ] {
        assert!(text.contains(series), "{series} not in:\n{text}");
    }
    assert!(
        text.contains(r#"route="/api/v1/backups/{name}""#),
        "requests are timed by route pattern: {text}"
    );
    assert!(
        !text.contains("route=\"/api/v1/backups/shop-1\""),
        "never by concrete path"
    );

    // The dashboard and the alerts ask only for what is served.
    let served = metric_names(&text);
    for (what, source) in [
        (
            "dashboard",
            include_str!("../../docker/monitoring/grafana-dashboard.json"),
        ),
        (
            "alerts",
            include_str!("../../docker/monitoring/alerts.yaml"),
        ),
    ] {
        let asked = metric_names(source);
        assert!(asked.len() > 5, "{what}: {asked:?}");
        let missing: Vec<&String> = asked.difference(&served).collect();
        assert!(
            missing.is_empty(),
            "{what} asks for {missing:?}, not served"
        );
    }

    // A real Prometheus scrapes it with that identity.
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::write(prom_dir.join("token"), &token).unwrap();
    let target = url.trim_start_matches("http://");
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: lifeboat
    metrics_path: /metrics
    authorization: {{credentials_file: {}}}
    static_configs: [{{targets: ['{target}']}}]
",
            prom_dir.join("token").display()
        ),
    )
    .unwrap();
    let port = free_port().unwrap();
    let log = std::fs::File::create(prom_dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            prom_dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            prom_dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("prometheus runs (apt-get install prometheus; .ci/setup --tests does)");
    let _prometheus = Guard(Some(child));
    let prometheus = format!("http://127.0.0.1:{port}");
    let up = query(&prometheus, r#"up{job="lifeboat"} == 1"#).await;
    assert_eq!(up.len(), 1, "{up:?}");
    let runs = query(
        &prometheus,
        r#"lifeboat_backup_runs_total{phase="Completed"}"#,
    )
    .await;
    assert_eq!(runs.len(), 2, "a manual run and a scheduled one: {runs:?}");
    let last = query(
        &prometheus,
        r#"lifeboat_namespace_last_backup_timestamp_seconds{namespace="shop"}"#,
    )
    .await;
    let at: f64 = last[0]["value"][1].as_str().unwrap().parse().unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(now - at < 300.0 && at <= now + 1.0, "{at} vs {now}");
}
