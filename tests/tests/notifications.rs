//! Notifications end to end: a scheduled backup fails (its location's
//! directory is replaced by a file) and then recovers; a local HTTP
//! receiver, which answers 500 to the first attempt of each delivery, gets
//! both from a generic webhook and a Slack-compatible one. Lifeboat
//! in-process on kubesim's demo, SQLite.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use lifeboat::notify::Notifier;
use lifeboat::schedule::{Leadership, Scheduler};
use lifeboat_e2e::{kubesim, poll_json, serve_lifeboat};
use serde_json::{Value, json};

/// What the receiver got: (path, body), and the paths it refused once.
#[derive(Clone, Default)]
struct Received {
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
    refused: Arc<Mutex<Vec<String>>>,
}

async fn receive(
    State(r): State<Received>,
    Path(path): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    // The first attempt of each message fails, as a flaky receiver would.
    let key = format!("{path} {body}");
    let mut refused = r.refused.lock().unwrap();
    if !refused.contains(&key) {
        refused.push(key);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.bodies.lock().unwrap().push((path, body));
    StatusCode::NO_CONTENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_and_the_recovery_reach_webhooks_despite_a_flaky_receiver() {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let targets = format!("{url}/api/v1/notification-targets");

    // A bad target is refused naming the field; good ones are shown without their secret.
    let (status, body) =
        lifeboat_e2e::post_json(&targets, json!({"name": "bad", "url": "hooks.example/x"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("url"), "{body}");
    let (status, body) = lifeboat_e2e::post_json(
        &targets,
        json!({"name": "ops", "url": format!("{receiver}/hook/ops-secret-token")}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = lifeboat_e2e::post_json(
        &targets,
        json!({"name": "chat", "kind": "slack", "url": format!("{receiver}/slack/T0/B0/chat-secret-token"),
               "events": ["backup.failed", "backup.recovered"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let listed = lifeboat_e2e::get(&targets)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains("secret-token") && listed.contains("http://127.0.0.1/…"),
        "{listed}"
    );

    let notifier = Notifier::new(state.catalog.clone());
    // The first pass starts from now: history is not news.
    assert_eq!(notifier.pass(Utc::now()).await.unwrap().queued, 0);

    // A schedule writing to a location whose directory becomes a file: it fails.
    let flaky = dir.path().join("flaky");
    std::fs::create_dir(&flaky).unwrap();
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/storage-locations"),
        json!({"name": "flaky", "kind": "local", "path": flaky.display().to_string()}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/schedules"),
        json!({"name": "nightly", "schedule": "0 1 * * *",
               "template": {"includedNamespaces": ["shop"], "storageLocation": "flaky"}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let scheduler = Scheduler {
        catalog: state.catalog.clone(),
        locations: state.locations.clone(),
        client: Some(client.clone()),
        drill_client: None,
        leadership: Leadership::Single,
    };
    let aside = dir.path().join("flaky-aside");
    std::fs::rename(&flaky, &aside).unwrap();
    std::fs::write(&flaky, "not a directory").unwrap();
    let run = |days: i64| {
        let scheduler = scheduler.clone();
        let url = url.clone();
        async move {
            let report = scheduler
                .tick(Utc::now() + chrono::Duration::days(days))
                .await
                .unwrap();
            let [name] = report.started.as_slice() else {
                panic!("{report:?}");
            };
            poll_json(
                &format!("{url}/api/v1/backups/{name}"),
                Duration::from_secs(60),
                |b| !matches!(b["phase"].as_str(), Some("New" | "InProgress")),
            )
            .await
            .unwrap()
        }
    };
    let failed = run(1).await;
    assert_eq!(failed["phase"], "Failed", "{failed}");

    // Queued for both, refused once each, delivered on the retry.
    let pass = notifier.pass(Utc::now()).await.unwrap();
    assert_eq!(
        (pass.queued, pass.retrying, pass.delivered),
        (2, 2, 0),
        "{pass:?}"
    );
    let pass = notifier.pass(Utc::now()).await.unwrap();
    assert_eq!(pass.delivered, 0, "not before its backoff: {pass:?}");
    let later = Utc::now() + chrono::Duration::seconds(3);
    let pass = notifier.pass(later).await.unwrap();
    assert_eq!(pass.delivered, 2, "{pass:?}");

    // The directory is back: the next run succeeds, and that is news too.
    std::fs::remove_file(&flaky).unwrap();
    std::fs::rename(&aside, &flaky).unwrap();
    let recovered = run(2).await;
    assert_eq!(recovered["phase"], "Completed", "{recovered}");
    let pass = notifier.pass(Utc::now()).await.unwrap();
    assert_eq!(pass.queued, 2, "{pass:?}");
    notifier
        .pass(later + chrono::Duration::seconds(5))
        .await
        .unwrap();

    let bodies = received.bodies.lock().unwrap().clone();
    let failed_name = failed["name"].as_str().unwrap();
    let recovered_name = recovered["name"].as_str().unwrap();
    let hook: Vec<&Value> = bodies
        .iter()
        .filter(|(p, _)| p == "hook/ops-secret-token")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(hook.len(), 2, "{bodies:?}");
    assert_eq!(hook[0]["event"], "backup.failed");
    assert_eq!(hook[0]["subject"], format!("backup/{failed_name}"));
    assert!(
        hook[0]["message"].as_str().unwrap().contains("Failed"),
        "{hook:?}"
    );
    assert_eq!(hook[1]["event"], "backup.recovered");
    assert_eq!(hook[1]["subject"], format!("backup/{recovered_name}"));
    let slack: Vec<&str> = bodies
        .iter()
        .filter(|(p, _)| p.starts_with("slack/"))
        .map(|(_, b)| b["text"].as_str().unwrap())
        .collect();
    assert_eq!(slack.len(), 2, "{bodies:?}");
    assert!(
        slack[0].starts_with(":rotating_light: *Lifeboat* backup.failed: backup ")
            && slack[0].contains(failed_name),
        "{slack:?}"
    );
    assert!(slack[1].starts_with(":white_check_mark:"), "{slack:?}");

    // The deliveries say what happened: each delivered on its second attempt.
    let deliveries = lifeboat_e2e::get(format!("{url}/api/v1/notifications/deliveries"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let items = deliveries["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{deliveries}");
    for d in items {
        assert_eq!(
            (d["state"].as_str(), d["attempts"].as_i64()),
            (Some("delivered"), Some(2)),
            "{d}"
        );
    }
    assert!(!deliveries.to_string().contains("secret-token"));
}
