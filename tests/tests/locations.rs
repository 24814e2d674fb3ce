//! Storage locations added through the API, end to end: Lifeboat's HTTP
//! server in this process, kubesim's demo cluster, a real S3 server (Garage)
//! as the added location, SQLite as the catalog.

use std::time::Duration;

use lifeboat_e2e::{S3Server, kubesim, poll_json, serve_lifeboat};
use serde_json::{Value, json};

async fn delete(url: &str) -> (u16, Value) {
    let r = lifeboat_e2e::http(url).delete(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str) -> Value {
    lifeboat_e2e::get(url).await.unwrap().json().await.unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_location_is_added_checked_used_removed_and_found_again() {
    let s3 = S3Server::start().await.unwrap();
    let prefix = format!("offsite-{}", uuid::Uuid::new_v4().simple());
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let locations = format!("{url}/api/v1/storage-locations");
    let offsite = json!({
        "name": "offsite", "kind": "s3", "endpoint": s3.endpoint, "region": s3.region,
        "bucket": s3.bucket, "prefix": prefix,
        "accessKeyId": s3.access_key_id, "secretAccessKey": s3.secret_access_key,
    });

    // Wrong input and wrong credentials: a clear error, nothing saved, no secret echoed.
    let mut bad = offsite.clone();
    bad["endpoint"] = json!("garage:3900");
    let (status, body) = lifeboat_e2e::post_json(&locations, bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("endpoint"),
        "{body}"
    );
    let mut wrong = offsite.clone();
    wrong["secretAccessKey"] = json!("not-the-secret-at-all");
    let (status, body) = lifeboat_e2e::post_json(&locations, wrong).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("credentials") && message.contains("Nothing was saved"),
        "{body}"
    );
    assert!(!message.contains("not-the-secret-at-all"));
    assert_eq!(names(&get(&locations).await), ["default"]);

    // Added: checked, available, shown without its secret.
    let (status, added) = lifeboat_e2e::post_json(&locations, offsite.clone()).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["availability"], "available");
    assert_eq!(added["config"]["credentials"], "static");
    assert_eq!(added["imported"], json!([]));
    let listed = get(&locations).await;
    assert_eq!(names(&listed), ["default", "offsite"]);
    assert!(!listed.to_string().contains(&s3.secret_access_key));
    let (status, _) = lifeboat_e2e::post_json(&locations, offsite.clone()).await;
    assert_eq!(status, 409, "the same name twice");
    let checked = lifeboat_e2e::post_json(&format!("{locations}/offsite/check"), json!({})).await;
    assert_eq!(
        (checked.0, &checked.1["availability"]),
        (200, &json!("available"))
    );

    // A backup written there, read back from there.
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/backups"),
        json!({"name": "shop-offsite", "spec": {"includedNamespaces": ["shop"], "storageLocation": "offsite"}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let done = poll_json(
        &format!("{url}/api/v1/backups/shop-offsite"),
        Duration::from_secs(60),
        |b| !matches!(b["phase"].as_str(), Some("New" | "InProgress")),
    )
    .await
    .unwrap();
    assert_eq!(done["phase"], "Completed", "{done}");
    assert_eq!(done["storageLocation"], "offsite");
    let in_bucket =
        lifeboat::storage::list_all(&s3.store(&prefix).await.unwrap(), "backups/shop-offsite/")
            .await
            .unwrap();
    assert!(
        in_bucket.iter().any(|o| o.key.ends_with("manifest.json")),
        "{in_bucket:?}"
    );
    let default_dir = dir.path().join("backups/backups/shop-offsite");
    assert!(
        !default_dir.exists(),
        "nothing went to the default location"
    );
    let contents = get(&format!("{url}/api/v1/backups/shop-offsite/contents")).await;
    assert!(
        contents["resources"]["deployments.apps"]["shop"].is_array(),
        "{contents}"
    );
    let usage = get(&format!("{locations}/offsite")).await;
    assert_eq!(usage["backups"], 1);
    assert!(usage["usedBytes"].as_i64().unwrap() > 0);
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/restores"),
        json!({"name": "from-offsite", "spec": {"backupName": "shop-offsite", "dryRun": true}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let planned = poll_json(
        &format!("{url}/api/v1/restores/from-offsite"),
        Duration::from_secs(60),
        |r| r["phase"] == "Planned" || r["phase"] == "Failed",
    )
    .await
    .unwrap();
    assert_eq!(planned["phase"], "Planned", "{planned}");

    // Unknown location for a backup: refused, naming it.
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/backups"),
        json!({"name": "nowhere", "spec": {"storageLocation": "elsewhere"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("elsewhere"));

    // Schedules: an unknown location is refused; one writing to `offsite` keeps it.
    let schedules = format!("{url}/api/v1/schedules");
    let (status, body) = lifeboat_e2e::post_json(
        &schedules,
        json!({"name": "lost", "schedule": "0 1 * * *", "template": {"storageLocation": "elsewhere"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("template.storageLocation"),
        "{body}"
    );
    let (status, body) = lifeboat_e2e::post_json(
        &schedules,
        json!({"name": "offsite-nightly", "schedule": "0 1 * * *", "template": {"storageLocation": "offsite"}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = delete(&format!("{locations}/offsite")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("offsite-nightly"),
        "{body}"
    );
    assert_eq!(delete(&format!("{schedules}/offsite-nightly")).await.0, 204);

    // The default stays; removing `offsite` forgets its backups but leaves the bucket alone.
    assert_eq!(delete(&format!("{locations}/default")).await.0, 409);
    assert_eq!(delete(&format!("{locations}/offsite")).await.0, 204);
    assert_eq!(names(&get(&locations).await), ["default"]);
    let gone = lifeboat_e2e::get(format!("{url}/api/v1/backups/shop-offsite"))
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    assert_eq!(
        lifeboat::storage::list_all(&s3.store(&prefix).await.unwrap(), "backups/shop-offsite/")
            .await
            .unwrap(),
        in_bucket
    );

    // Added again, the bucket's backups come back.
    let (status, again) = lifeboat_e2e::post_json(&locations, offsite.clone()).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["imported"], json!(["shop-offsite"]));

    // A restarted server opens the added location from the catalog.
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let config = lifeboat::config::Config {
        data_dir: dir.path().join("restarted"),
        database_url: Some(lifeboat::config::Secret::new(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("c.db").display()
        ))),
        kubeconfig: Some(kubeconfig),
        ..Default::default()
    };
    let restarted = lifeboat::serve::open(&config).await.unwrap();
    let store = restarted
        .locations
        .get("offsite")
        .expect("offsite is open after a restart");
    assert_eq!(
        store.check().await,
        lifeboat::storage::Availability::Available
    );

    // Two replicas on one catalog: what one adds or removes, the other follows.
    let third = dir.path().join("third");
    let (status, body) = lifeboat_e2e::post_json(
        &locations,
        json!({"name": "third", "kind": "local", "path": third.to_str().unwrap()}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(delete(&format!("{locations}/offsite")).await.0, 204);
    lifeboat::location::reconcile(&restarted.catalog, &restarted.locations)
        .await
        .unwrap();
    assert!(restarted.locations.get("third").is_some());
    assert!(restarted.locations.get("offsite").is_none());
    drop(state);
}
