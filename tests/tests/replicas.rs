//! Two replicas first using a location at once: two `lifeboat serve`
//! processes on one PostgreSQL catalog and one bucket (Garage), each asked
//! for three backups at the same moment, on a location that has no key and
//! no repository yet. Each process's single-flight cannot see the other's;
//! the catalog's repository lock must: one key, one repository, which
//! Debian's restic checks clean with the recovery key, and six Completed
//! backups that verify.

use std::time::Duration;

use anyhow::{Context, Result};
use lifeboat_e2e::{LifeboatProcess, Postgres, S3Server, http, kubesim, poll_json};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_provisioning_one_location_at_once_make_one_repository() -> Result<()> {
    let pg = Postgres::start().await?;
    let database_url = pg.fresh_database().await?;
    let s3 = S3Server::start().await?;
    let prefix = format!("replicas-{}", uuid::Uuid::new_v4().simple());
    let (sim, _client) = kubesim(Default::default(), true).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    let env = |id: &str| {
        let mut env = vec![
            ("LIFEBOAT_DATABASE_URL", database_url.clone()),
            ("LIFEBOAT_KUBECONFIG", kubeconfig.display().to_string()),
            (
                "LIFEBOAT_DATA_DIR",
                dir.path().join(id).display().to_string(),
            ),
            ("LIFEBOAT_REPLICA_ID", id.to_string()),
            ("LIFEBOAT_LEASE_NAMESPACE", "default".to_string()),
        ];
        env.extend(s3.serve_env(&s3.endpoint, &prefix));
        env
    };
    let a = LifeboatProcess::start(dir.path(), &env("replica-a"))?;
    let b = LifeboatProcess::start(dir.path(), &env("replica-b"))?;

    // Six first backups, three through each replica, all at once.
    let asks: Vec<(String, String)> = (0..6)
        .map(|n| {
            let url = if n % 2 == 0 { &a.url } else { &b.url };
            (url.clone(), format!("first-{n}"))
        })
        .collect();
    let answers = futures::future::join_all(asks.iter().map(|(url, name)| {
        http(url)
            .post(format!("{url}/api/v1/backups"))
            .json(&json!({"name": name, "spec": {"includedNamespaces": ["shop"]}}))
            .send()
    }))
    .await;
    for answer in answers {
        let answer = answer?;
        assert_eq!(answer.status(), 202, "{}", answer.text().await?);
    }
    for (url, name) in &asks {
        let done = poll_json(
            &format!("{url}/api/v1/backups/{name}"),
            Duration::from_secs(120),
            |b| !matches!(b["phase"].as_str(), Some("New" | "InProgress")),
        )
        .await?;
        assert_eq!(done["phase"], "Completed", "{done:#}");
        let report: Value = http(url)
            .post(format!("{url}/api/v1/backups/{name}/verify"))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(report["ok"], true, "{report:#}");
    }

    // One key file, one repository: restic opens and checks it with the key.
    let store = s3.store(&prefix).await?;
    let keys = lifeboat::storage::list_all(&store, "volumes/keys/").await?;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let revealed: Value = http(&b.url)
        .post(format!(
            "{}/api/v1/storage-locations/default/recovery-key",
            b.url
        ))
        .send()
        .await?
        .json()
        .await?;
    let key = revealed["recoveryKey"]
        .as_str()
        .context("the recovery key")?;
    s3.restic_check(&prefix, key, &dir.path().join("restic-cache"))?;
    // And both replicas report it healthy.
    for replica in [&a, &b] {
        let ready: Value = reqwest::get(format!("{}/readyz", replica.url))
            .await?
            .json()
            .await?;
        let volumes = ready["components"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "volumes"))
            .context("a volumes component")?;
        assert_eq!(
            volumes["detail"], "no damaged volume repository found",
            "{ready:#}"
        );
    }
    Ok(())
}
