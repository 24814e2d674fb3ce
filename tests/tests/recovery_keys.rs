//! Recovery keys, on a real S3 server (Garage): a new location gets its
//! volume repository and key, shown once; its backups' archives are
//! encrypted to that key and their manifests signed with it. Another
//! install adding the same bucket lists those backups but cannot read them
//! until it is given that key; a wrong one changes nothing, and the key is
//! never shown twice.

use anyhow::Result;
use lifeboat::storage::list_all;
use lifeboat_e2e::{S3Server, http, poll_json, quiet_kubesim, serve_lifeboat};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_key_is_shown_once_and_another_install_must_bring_it() -> Result<()> {
    let s3 = S3Server::start().await?;
    let (sim, client) = lifeboat_e2e::kubesim(quiet_kubesim(), false).await?;
    let (first_dir, second_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (first, _) = serve_lifeboat(client.clone(), &sim, first_dir.path()).await?;
    let (second, second_state) = serve_lifeboat(client, &sim, second_dir.path()).await?;
    let location = json!({"name": "shared", "kind": "s3", "bucket": s3.bucket, "endpoint": s3.endpoint,
        "region": s3.region, "prefix": "team", "pathStyle": true,
        "accessKeyId": s3.access_key_id, "secretAccessKey": s3.secret_access_key});
    let add = |url: String| {
        let location = location.clone();
        async move {
            let response = http(&url)
                .post(format!("{url}/api/v1/storage-locations"))
                .json(&location)
                .send()
                .await?;
            assert_eq!(response.status(), 201);
            anyhow::Ok(response.json::<Value>().await?)
        }
    };
    let key_call = |url: &str, method: reqwest::Method, body: Option<Value>| {
        let request = http(url).request(
            method,
            format!("{url}/api/v1/storage-locations/shared/recovery-key"),
        );
        match body {
            Some(body) => request.json(&body),
            None => request,
        }
        .send()
    };

    // The first install: the key comes with the answer, once.
    let added = add(first.clone()).await?;
    let key = added["recoveryKey"]
        .as_str()
        .expect("a recovery key")
        .to_string();
    assert!(key.len() >= 40, "{key}");
    assert!(
        added["notice"]
            .as_str()
            .unwrap_or_default()
            .contains("shown once")
    );
    let described: Value = http(&first)
        .get(format!("{first}/api/v1/storage-locations/shared"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        !described.to_string().contains(&key),
        "the key was shown again"
    );
    let again = key_call(&first, reqwest::Method::POST, None).await?;
    assert_eq!(again.status(), 409);
    assert!(again.text().await?.contains("never shown again"));
    let store = s3.store("team").await?;
    let objects = list_all(&store, "volumes/").await?;
    assert!(
        objects.iter().any(|o| o.key == "volumes/config"),
        "{objects:?}"
    );

    // A backup there is encrypted to that key (`age1…` names it, the key
    // itself is nowhere in the bucket) and signed.
    let created = http(&first)
        .post(format!("{first}/api/v1/backups"))
        .json(
            &json!({"name": "shared-1", "spec": {"storageLocation": "shared",
            "includedNamespaces": ["default"]}}),
        )
        .send()
        .await?;
    assert!(created.status().is_success(), "{}", created.text().await?);
    let done = poll_json(
        &format!("{first}/api/v1/backups/shared-1"),
        std::time::Duration::from_secs(60),
        |b| b["phase"] != "New" && b["phase"] != "InProgress",
    )
    .await?;
    assert_eq!(done["phase"], "Completed", "{done:#}");
    let manifest: Value = serde_json::from_slice(
        &lifeboat::storage::get_bytes(&store, "backups/shared-1/manifest.json").await?,
    )?;
    assert_eq!(
        manifest["encryption"]["cipher"], "age-x25519",
        "{manifest:#}"
    );
    let key_id = manifest["encryption"]["keyId"].as_str().unwrap_or_default();
    assert!(key_id.starts_with("age1"), "{manifest:#}");
    for object in list_all(&store, "backups/shared-1/").await? {
        let bytes = lifeboat::storage::get_bytes(&store, &object.key).await?;
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "{} holds the key",
            object.key
        );
    }
    let restore = |url: String, name: &'static str| async move {
        let created = http(&url)
            .post(format!("{url}/api/v1/restores"))
            .json(&json!({"name": name, "spec": {"backupName": "shared-1", "dryRun": true}}))
            .send()
            .await?;
        assert!(created.status().is_success(), "{}", created.text().await?);
        poll_json(
            &format!("{url}/api/v1/restores/{name}"),
            std::time::Duration::from_secs(60),
            |r| {
                ["Planned", "Completed", "Failed", "PartiallyFailed"]
                    .contains(&r["phase"].as_str().unwrap_or_default())
            },
        )
        .await
    };

    // Another install adding the bucket does not get (or make) a key.
    let imported = add(second.clone()).await?;
    assert!(imported.get("recoveryKey").is_none(), "{imported:#}");
    assert!(
        imported["notice"]
            .as_str()
            .unwrap_or_default()
            .contains("set-key"),
        "{imported:#}"
    );
    let foreign = key_call(&second, reqwest::Method::POST, None).await?;
    assert_eq!(foreign.status(), 409);
    assert!(foreign.text().await?.contains("another Lifeboat install"));
    // It lists the backup, and says plainly why it cannot read it yet.
    let synced = http(&second)
        .post(format!("{second}/api/v1/backups/sync"))
        .send()
        .await?;
    assert!(synced.status().is_success(), "{}", synced.text().await?);
    let refused = restore(second.clone(), "without-key").await?;
    assert_eq!(refused["phase"], "Failed", "{refused:#}");
    let reason = refused["phaseReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no recovery key") && reason.contains(key_id),
        "{reason}"
    );

    // A wrong key is refused and changes nothing, in the bucket or the catalog.
    let before = list_all(&store, "").await?;
    let wrong = key_call(
        &second,
        reqwest::Method::PUT,
        Some(json!({"recoveryKey": "not-the-key"})),
    )
    .await?;
    assert_eq!(wrong.status(), 422);
    assert!(wrong.text().await?.contains("nothing was changed"));
    assert_eq!(list_all(&store, "").await?, before);
    assert_eq!(second_state.catalog.repository_key("shared").await?, None);

    // The right one is taken; it counts as shown.
    let right = key_call(
        &second,
        reqwest::Method::PUT,
        Some(json!({"recoveryKey": key})),
    )
    .await?;
    assert_eq!(right.status(), 204, "{}", right.text().await?);
    assert_eq!(
        second_state
            .catalog
            .repository_key("shared")
            .await?
            .as_deref(),
        Some(key.as_str())
    );
    let shown = key_call(&second, reqwest::Method::POST, None).await?;
    assert_eq!(shown.status(), 409);
    // With the key, the other install reads (decrypts and verifies) the backup.
    let planned = restore(second.clone(), "with-key").await?;
    assert_eq!(planned["phase"], "Planned", "{planned:#}");
    Ok(())
}
