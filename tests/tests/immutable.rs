//! Immutable storage locations, end to end on Ceph RGW (which enforces S3
//! Object Lock): Lifeboat's HTTP server in this process, kubesim's demo
//! cluster, SQLite as the catalog.

use std::time::{Duration, Instant};

use aws_sdk_s3::types::ObjectLockRetentionMode;
use chrono::Utc;
use lifeboat::schedule::{Leadership, Scheduler};
use lifeboat_e2e::{S3Server, kubesim, poll_json, raw_client, serve_lifeboat};
use serde_json::{Value, json};

async fn send(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = lifeboat_e2e::http(url).request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every version and delete marker under `prefix`: (key, version id).
async fn versions(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<(String, String)> {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let versions = out.versions().iter().map(|v| (v.key(), v.version_id()));
    let markers = out
        .delete_markers()
        .iter()
        .map(|m| (m.key(), m.version_id()));
    versions
        .chain(markers)
        .map(|(k, v)| (k.unwrap().to_string(), v.unwrap_or("null").to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_backup_outlives_every_delete_until_its_date_and_then_goes() {
    let ceph = S3Server::start_ceph().await.unwrap();
    let s3 = raw_client(&ceph);
    let locked_bucket = "lifeboat-locked";
    s3.create_bucket()
        .bucket(locked_bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let locations = format!("{url}/api/v1/storage-locations");
    let location = |name: &str, bucket: &str| {
        json!({
            "name": name, "kind": "s3", "endpoint": ceph.endpoint, "region": ceph.region,
            "bucket": bucket, "accessKeyId": ceph.access_key_id,
            "secretAccessKey": ceph.secret_access_key, "immutable": true,
        })
    };

    // A bucket without object lock cannot be promised immutable.
    let (status, body) = send(
        reqwest::Method::POST,
        &locations,
        Some(location("not-locked", &ceph.bucket)),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("does not have S3 Object Lock enabled"),
        "{body}"
    );
    assert!(!message.contains(&ceph.secret_access_key));

    // One created with it can.
    let (status, added) = send(
        reqwest::Method::POST,
        &locations,
        Some(location("vault", locked_bucket)),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["immutability"], "governance", "the default mode");

    // A backup there is locked until it expires.
    let (status, body) = send(
        reqwest::Method::POST,
        &format!("{url}/api/v1/backups"),
        Some(json!({"name": "shop-locked", "spec": {
            "includedNamespaces": ["shop"], "storageLocation": "vault", "ttl": "30s"}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let done = poll_json(
        &format!("{url}/api/v1/backups/shop-locked"),
        Duration::from_secs(60),
        |b| !matches!(b["phase"].as_str(), Some("New" | "InProgress")),
    )
    .await
    .unwrap();
    assert_eq!(done["phase"], "Completed", "{done}");
    // Until its expiry, to the whole second S3 keeps.
    let expires =
        chrono::DateTime::parse_from_rfc3339(done["expiresAt"].as_str().unwrap()).unwrap();
    let locked =
        chrono::DateTime::parse_from_rfc3339(done["lockedUntil"].as_str().unwrap()).unwrap();
    assert!(
        locked >= expires && locked - expires < chrono::Duration::seconds(1),
        "{done}"
    );
    assert_eq!(done["manifest"]["lock"]["mode"], "governance", "{done}");
    let until = chrono::DateTime::parse_from_rfc3339(done["lockedUntil"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);

    // Each object carries the retention, and the store itself refuses to
    // delete it with the location's own credentials.
    let objects = versions(&s3, locked_bucket, "backups/shop-locked/").await;
    let files: Vec<&str> = objects
        .iter()
        .map(|(k, _)| k.rsplit('/').next().unwrap())
        .collect();
    for file in [
        "manifest.json",
        "manifest.sig",
        "resources.tar.zst",
        "log.jsonl.zst",
    ] {
        assert!(files.contains(&file), "{file} in {objects:?}");
    }
    for (key, version) in &objects {
        let retention = s3
            .get_object_retention()
            .bucket(locked_bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .unwrap();
        let retention = retention.retention().unwrap();
        assert_eq!(
            retention.mode(),
            Some(&ObjectLockRetentionMode::Governance),
            "{key}"
        );
        let retained = retention.retain_until_date().unwrap().secs();
        assert!(retained >= until.timestamp(), "{key}: {retained} < {until}");
        let deleted = s3
            .delete_object()
            .bucket(locked_bucket)
            .key(key)
            .version_id(version)
            .send()
            .await;
        assert!(deleted.is_err(), "{key} was deleted despite its lock");
    }
    assert_eq!(
        versions(&s3, locked_bucket, "backups/shop-locked/").await,
        objects,
        "every version is still there"
    );

    // Lifeboat does not try either: a user's delete is refused with the date
    // (garbage collection skipping a locked backup that keep-last lets go:
    // tests/schedules.rs).
    let (status, body) = send(
        reqwest::Method::DELETE,
        &format!("{url}/api/v1/backups/shop-locked"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("locked"), "{body}");
    let scheduler = Scheduler {
        catalog: state.catalog.clone(),
        locations: state.locations.clone(),
        client: None,
        drill_client: None,
        leadership: Leadership::Single,
    };
    let report = scheduler.collect_garbage(Utc::now()).await.unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");

    // After the date, garbage collection removes every version of it.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let report = scheduler.collect_garbage(Utc::now()).await.unwrap();
        if report.deleted == ["shop-locked"] {
            break;
        }
        assert!(report.failed.is_empty(), "{report:?}");
        assert!(Instant::now() < deadline, "not collected: {report:?}");
        // Waiting for a date on the clock, not for readiness.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        versions(&s3, locked_bucket, "backups/shop-locked/").await,
        vec![]
    );
    let (status, _) = send(
        reqwest::Method::GET,
        &format!("{url}/api/v1/backups/shop-locked"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}
