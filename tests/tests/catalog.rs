//! The catalog on both engines: the same suite on a SQLite file and on a real
//! PostgreSQL server started by the harness.

use lifeboat::catalog::{
    BackupFilter, BackupPhase, BackupRecord, Catalog, CatalogError, ScheduleRecord,
    VolumeTaskRecord,
};
use lifeboat::storage::Availability;
use lifeboat_e2e::Postgres;
use serde_json::json;

async fn suite(catalog: &Catalog) {
    catalog.ping().await.unwrap();

    // Storage locations: upsert keeps one default, availability is recorded.
    catalog
        .upsert_storage_location(
            "default",
            "local",
            &lifeboat::storage::LocationSettings {
                path: Some("/x".into()),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    catalog
        .upsert_storage_location(
            "offsite",
            "s3",
            &lifeboat::storage::LocationSettings {
                bucket: Some("b".into()),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    let locations = catalog.storage_locations().await.unwrap();
    assert_eq!(locations.len(), 2);
    let defaults: Vec<_> = locations
        .iter()
        .filter(|l| l.is_default == 1)
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(defaults, ["offsite"], "exactly one default");
    catalog
        .set_availability(
            "offsite",
            &Availability::Unavailable {
                reason: "bucket gone".into(),
            },
        )
        .await
        .unwrap();
    let offsite = catalog.storage_location("offsite").await.unwrap();
    assert_eq!(offsite.availability, "unavailable");
    assert_eq!(offsite.availability_reason.as_deref(), Some("bucket gone"));
    assert!(offsite.checked_at.is_some());
    assert!(matches!(
        catalog
            .set_availability("nowhere", &Availability::Available)
            .await,
        Err(CatalogError::NotFound { .. })
    ));

    // Backups: unique names, filters, phase transitions stamp times.
    let mut nightly = BackupRecord::new(
        "nightly-1",
        "default",
        &json!({"includedNamespaces": ["shop"]}),
    );
    nightly.schedule = Some("nightly".into());
    catalog.insert_backup(&nightly).await.unwrap();
    catalog
        .insert_backup(&BackupRecord::new("manual-1", "offsite", &json!({})))
        .await
        .unwrap();
    assert!(matches!(
        catalog
            .insert_backup(&BackupRecord::new("manual-1", "default", &json!({})))
            .await,
        Err(CatalogError::AlreadyExists { .. })
    ));
    catalog
        .set_backup_phase("nightly-1", BackupPhase::InProgress, None)
        .await
        .unwrap();
    catalog
        .set_backup_phase("nightly-1", BackupPhase::Completed, None)
        .await
        .unwrap();
    let got = catalog.backup("nightly-1").await.unwrap();
    assert_eq!(got.phase, "Completed");
    assert!(got.started_at.is_some() && got.completed_at.is_some());
    assert!(got.started_at <= got.completed_at);
    assert_eq!(got.spec, nightly.spec);
    let by_schedule = catalog
        .backups(&BackupFilter {
            schedule: Some("nightly".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_schedule.len(), 1);
    let new_ones = catalog
        .backups(&BackupFilter {
            phase: Some("New".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        new_ones.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        ["manual-1"]
    );
    assert_eq!(
        catalog
            .backups(&BackupFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
    // A backup must name a known storage location.
    assert!(
        catalog
            .insert_backup(&BackupRecord::new("orphan", "nowhere", &json!({})))
            .await
            .is_err()
    );
    assert!(catalog.delete_backup("manual-1").await.unwrap());
    assert!(!catalog.delete_backup("manual-1").await.unwrap());
    assert!(matches!(
        catalog.backup("manual-1").await,
        Err(CatalogError::NotFound { .. })
    ));

    // Restores and schedules.
    let restore = catalog
        .insert_restore(
            "r-1",
            "nightly-1",
            &json!({"namespaceMapping": {"shop": "shop2"}}),
        )
        .await
        .unwrap();
    assert_eq!(restore.phase, "New");
    assert_eq!(catalog.restores(Some("nightly-1")).await.unwrap().len(), 1);
    assert!(catalog.restores(Some("other")).await.unwrap().is_empty());
    assert_eq!(
        catalog.restore_phase_counts().await.unwrap(),
        vec![("New".to_string(), 1)]
    );
    let schedule = ScheduleRecord {
        name: "nightly".into(),
        cron: "0 1 * * *".into(),
        timezone: "Europe/Berlin".into(),
        template: json!({}).to_string(),
        ttl_seconds: Some(7 * 86400),
        keep_last: Some(7),
        paused: 0,
        last_run_at: None,
        created_at: lifeboat::catalog::now(),
        updated_at: lifeboat::catalog::now(),
        drill: 0,
        continuous: 0,
    };
    catalog.insert_schedule(&schedule).await.unwrap();
    catalog.set_schedule_paused("nightly", true).await.unwrap();
    let schedules = catalog.schedules().await.unwrap();
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].paused, 1);
    assert_eq!(schedules[0].timezone, "Europe/Berlin");

    // Activity: appended, newest first, filterable by subject.
    for i in 0..3 {
        catalog
            .record_activity(
                "api",
                "backup.created",
                "backup/nightly-1",
                &format!("event {i}"),
                Some(&json!({"i": i})),
            )
            .await
            .unwrap();
    }
    catalog
        .record_activity("system", "server.started", "server", "up", None)
        .await
        .unwrap();
    let about = catalog
        .activity(Some("backup/nightly-1"), 10)
        .await
        .unwrap();
    assert_eq!(
        about.iter().map(|a| a.message.as_str()).collect::<Vec<_>>(),
        ["event 2", "event 1", "event 0"]
    );
    assert_eq!(catalog.activity(None, 2).await.unwrap()[0].message, "up");

    // Locations added through the API: credentials apart, removal forgets their backups.
    catalog
        .insert_storage_location(
            "added",
            "s3",
            &lifeboat::storage::LocationSettings {
                bucket: Some("b2".into()),
                ..Default::default()
            },
            Some(("GK2", "s3cr3t-value")),
        )
        .await
        .unwrap();
    assert!(matches!(
        catalog
            .insert_storage_location("added", "local", &Default::default(), None)
            .await,
        Err(CatalogError::AlreadyExists { .. })
    ));
    assert_eq!(
        catalog.storage_credentials("added").await.unwrap(),
        Some(("GK2".to_string(), "s3cr3t-value".to_string()))
    );
    let shown = format!("{:?}", catalog.storage_locations().await.unwrap());
    assert!(shown.contains("b2") && !shown.contains("s3cr3t-value"));
    catalog
        .insert_backup(&BackupRecord::new("in-added", "added", &json!({})))
        .await
        .unwrap();
    assert_eq!(catalog.delete_storage_location("added").await.unwrap(), 1);
    assert!(catalog.backup("in-added").await.is_err());
    assert_eq!(catalog.storage_credentials("added").await.unwrap(), None);
    assert!(
        matches!(
            catalog.delete_storage_location("offsite").await,
            Err(CatalogError::NotFound { .. })
        ),
        "the default location is never removed"
    );
    assert!(catalog.storage_location("offsite").await.is_ok());

    repository_lock(catalog).await;
}

/// A prune's repository lock against the agents' task queue.
async fn repository_lock(catalog: &Catalog) {
    let task = |id: &str, location: &str| VolumeTaskRecord {
        id: id.into(),
        kind: "backup".into(),
        owner: "nightly-1".into(),
        location: location.into(),
        node: "node-a".into(),
        spec: "{}".into(),
        state: "pending".into(),
        agent: None,
        bytes_done: 0,
        bytes_total: 0,
        result: None,
        error: None,
        created_at: "2026-11-30T07:00:00.000Z".into(),
        updated_at: "2026-11-30T07:00:00.000Z".into(),
    };
    let t = |s: &str| format!("2026-11-30T{s}.000Z");
    catalog
        .insert_volume_task(&task("t1", "default"))
        .await
        .unwrap();
    let claimed = catalog
        .claim_volume_task("node-a", "agent-a", &t("07:00:01"))
        .await
        .unwrap()
        .expect("t1 is claimable");
    assert_eq!(claimed.state, "running");
    // A task runs there: no lock.
    assert!(
        !catalog
            .lock_repository("default", "pruner-1", &t("07:00:02"), &t("07:05:02"))
            .await
            .unwrap()
    );
    catalog
        .finish_volume_task("t1", "done", Some("{}"), None, &t("07:00:03"))
        .await
        .unwrap();
    assert!(
        catalog
            .lock_repository("default", "pruner-1", &t("07:00:04"), &t("07:05:04"))
            .await
            .unwrap()
    );
    assert!(
        !catalog
            .lock_repository("default", "pruner-2", &t("07:00:05"), &t("07:05:05"))
            .await
            .unwrap(),
        "one holder at a time"
    );
    assert!(
        catalog
            .repository_locked("default", &t("07:00:05"))
            .await
            .unwrap()
    );
    // While it is held, no task of that location is handed out; others are.
    catalog
        .insert_volume_task(&task("t2", "default"))
        .await
        .unwrap();
    catalog
        .insert_volume_task(&task("t3", "other"))
        .await
        .unwrap();
    let next = catalog
        .claim_volume_task("node-a", "agent-a", &t("07:00:06"))
        .await
        .unwrap()
        .expect("t3 is claimable");
    assert_eq!(next.id, "t3");
    assert!(
        catalog
            .claim_volume_task("node-a", "agent-a", &t("07:00:07"))
            .await
            .unwrap()
            .is_none()
    );
    // Renewed by its holder only; a holder that stops renewing loses it.
    assert!(
        catalog
            .renew_repository_lock("default", "pruner-1", &t("07:10:00"))
            .await
            .unwrap()
    );
    assert!(
        !catalog
            .renew_repository_lock("default", "pruner-2", &t("07:20:00"))
            .await
            .unwrap()
    );
    assert!(
        !catalog
            .repository_locked("default", &t("07:10:01"))
            .await
            .unwrap()
    );
    assert!(
        catalog
            .lock_repository("default", "pruner-2", &t("07:10:02"), &t("07:15:02"))
            .await
            .unwrap(),
        "an expired hold is taken over"
    );
    catalog
        .unlock_repository("default", "pruner-1")
        .await
        .unwrap();
    assert!(
        catalog
            .repository_locked("default", &t("07:10:03"))
            .await
            .unwrap(),
        "only the holder unlocks"
    );
    catalog
        .unlock_repository("default", "pruner-2")
        .await
        .unwrap();
    assert_eq!(
        catalog
            .claim_volume_task("node-a", "agent-a", &t("07:10:04"))
            .await
            .unwrap()
            .map(|t| t.id),
        Some("t2".into())
    );
    // Prunes are due when owed, and again a day after the last.
    assert!(!catalog.prune_due("other", &t("07:00:00")).await.unwrap());
    catalog.owe_prune("other").await.unwrap();
    assert!(catalog.prune_due("other", &t("07:00:00")).await.unwrap());
    catalog.pruned("other", &t("07:11:00")).await.unwrap();
    assert!(!catalog.prune_due("other", &t("07:00:00")).await.unwrap());
    assert!(catalog.prune_due("other", &t("07:12:00")).await.unwrap());
}

#[tokio::test]
async fn sqlite_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("nested/dir/lifeboat.db").display()
    );
    let catalog = Catalog::connect(&url).await.unwrap();
    suite(&catalog).await;
    // Migrations are idempotent: opening again keeps the data.
    drop(catalog);
    let again = Catalog::connect(&url).await.unwrap();
    assert!(again.backup("nightly-1").await.is_ok());
}

#[tokio::test]
async fn postgres_catalog() {
    let server = Postgres::start().await.unwrap();
    let url = server.fresh_database().await.unwrap();
    let catalog = Catalog::connect(&url).await.unwrap();
    suite(&catalog).await;
    let again = Catalog::connect(&url).await.unwrap();
    assert!(again.backup("nightly-1").await.is_ok());
    // Replicas starting at the same instant on an empty database: the
    // migrations run once (sqlx holds an advisory lock), every replica connects.
    let empty = server.fresh_database().await.unwrap();
    let replicas = futures::future::join_all((0..4).map(|_| Catalog::connect(&empty))).await;
    for r in replicas {
        r.unwrap().ping().await.unwrap();
    }
}

#[tokio::test]
async fn both_engines_have_the_same_schema() {
    let server = Postgres::start().await.unwrap();
    let pg = Catalog::connect(&server.fresh_database().await.unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Catalog::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("c.db").display()
    ))
    .await
    .unwrap();
    let (a, b) = (sqlite.schema().await.unwrap(), pg.schema().await.unwrap());
    assert!(a.iter().any(|(t, _)| t == "activity"));
    assert_eq!(a, b);
}

#[tokio::test]
async fn unreachable_or_unwritable_databases_are_explained() {
    let port = lifeboat_e2e::free_port().unwrap();
    let err = Catalog::connect(&format!("postgres://lifeboat:pw@127.0.0.1:{port}/lifeboat"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PostgreSQL is running") && !err.contains(":pw@"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    // A "directory" that is a file cannot hold the database.
    let err = Catalog::connect(&format!("sqlite://{}/lifeboat.db?mode=rwc", file.display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("data_dir"), "{err}");
}
