//! Recovery keys of volume repositories, on a real S3 server (Garage): a
//! new location gets its repository and key, shown once; another install
//! adding the same bucket must be given that key, a wrong one changes
//! nothing, and the key is never shown twice.

use anyhow::Result;
use lifeboat::storage::list_all;
use lifeboat_e2e::{S3Server, http, quiet_kubesim, serve_lifeboat};
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
    Ok(())
}
