//! The JSON API's shape: every GET route on the demo cluster (after a
//! backup, a restore and a schedule exist) answers with camelCase field
//! names. Keys that are data — Kubernetes labels and annotations, resource
//! names, file names, counts by phase — are not field names and are skipped.

use serde_json::Value;

/// Fields whose values are maps keyed by data, not by field names.
const DATA_KEYED: &[&str] = &[
    "labels",
    "annotations",
    "selector",
    "nodeSelector",
    "resources",
    "files",
    "namespaceMapping",
    "counts",
    "actions",
    "results",
    "byPhase",
    "pods",
    "capacity",
    "allocatable",
    "data",
    "watches",
    "components",
    "matchLabels",
];

fn camel(key: &str) -> bool {
    key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every field name in `v` that is not camelCase, with its path.
fn snake_fields(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let here = format!("{path}.{k}");
                if !camel(k) {
                    out.push(here.clone());
                }
                if !DATA_KEYED.contains(&k.as_str()) {
                    snake_fields(child, &here, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                snake_fields(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_get_route_answers_in_camel_case() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = lifeboat_e2e::kubesim(kubesim::Options::default(), true)
        .await
        .unwrap();
    let (url, _state) = lifeboat_e2e::serve_lifeboat(client, &sim, dir.path())
        .await
        .unwrap();
    let http = lifeboat_e2e::http(&url);
    let post = |path: &str, body: Value| {
        let (http, url) = (http.clone(), url.clone());
        let path = path.to_string();
        async move {
            let r = http
                .post(format!("{url}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "POST {path}: {}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    post(
        "/api/v1/backups",
        serde_json::json!({"name": "b1", "spec": {"includedNamespaces": ["shop"]}}),
    )
    .await;
    let within = std::time::Duration::from_secs(30);
    lifeboat_e2e::poll_json(&format!("{url}/api/v1/backups/b1"), within, |b| {
        b["phase"] == "Completed"
    })
    .await
    .unwrap();
    let restore = post(
        "/api/v1/restores",
        serde_json::json!({"spec": {"backupName": "b1", "dryRun": true}}),
    )
    .await;
    let restore_name = restore["name"].as_str().unwrap().to_string();
    lifeboat_e2e::poll_json(
        &format!("{url}/api/v1/restores/{restore_name}"),
        within,
        |r| r["phase"] == "Planned",
    )
    .await
    .unwrap();
    post(
        "/api/v1/schedules",
        serde_json::json!({"name": "nightly", "schedule": "0 1 * * *", "timezone": "UTC",
                           "template": {"includedNamespaces": ["shop"]}, "retention": {"keepLast": 3}}),
    )
    .await;
    let pods: Value = http
        .get(format!("{url}/api/v1/namespaces/shop"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pod = pods["pods"][0]["name"]
        .as_str()
        .unwrap_or("none")
        .to_string();

    let routes = [
        "/api/v1/cluster/summary".to_string(),
        "/api/v1/namespaces".into(),
        "/api/v1/namespaces/shop".into(),
        format!("/api/v1/namespaces/shop/pods/{pod}"),
        "/api/v1/nodes".into(),
        "/api/v1/backups".into(),
        "/api/v1/backups/b1".into(),
        "/api/v1/backups/b1/contents".into(),
        "/api/v1/restores".into(),
        format!("/api/v1/restores/{restore_name}"),
        "/api/v1/schedules".into(),
        "/api/v1/schedules/nightly".into(),
        "/api/v1/scheduler".into(),
        "/api/v1/storage-locations".into(),
        "/api/v1/storage-locations/default".into(),
        "/api/v1/activity".into(),
        "/readyz".into(),
    ];
    // The walker itself catches what it is for.
    let mut caught = Vec::new();
    snake_fields(
        &serde_json::json!({"items": [{"items_done": 1, "labels": {"app.kubernetes.io/name": "x"}}]}),
        "",
        &mut caught,
    );
    assert_eq!(caught, [".items[0].items_done"]);

    let mut wrong = Vec::new();
    let mut fields = 0;
    for route in &routes {
        let r = http.get(format!("{url}{route}")).send().await.unwrap();
        assert!(r.status().is_success(), "GET {route}: {}", r.status());
        let body: Value = r.json().await.unwrap();
        fields += body.to_string().matches("\":").count();
        snake_fields(&body, route, &mut wrong);
    }
    assert!(fields > 500, "only {fields} fields were read");
    assert!(
        wrong.is_empty(),
        "fields not in camelCase:\n{}",
        wrong.join("\n")
    );
}
