//! Schedules, retention and GC: the scheduler driven with a controlled clock
//! against kubesim and a SQLite catalog; the API; and two `lifeboat serve`
//! processes on PostgreSQL competing for the Lease.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lifeboat::archive;
use lifeboat::catalog::{BackupFilter, BackupPhase, Catalog};
use lifeboat::schedule::{CronSchedule, Leadership, Retention, ScheduleSpec, Scheduler};
use lifeboat::storage::list_all;
use lifeboat_e2e::{LifeboatProcess, Postgres, kubesim, local_catalog, poll_json, serve_lifeboat};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(30);

fn spec(name: &str, cron: &str, keep_last: Option<i64>, ttl: Option<&str>) -> ScheduleSpec {
    ScheduleSpec {
        name: name.into(),
        schedule: cron.into(),
        timezone: "UTC".into(),
        template: lifeboat::backup::BackupSpec {
            included_namespaces: vec!["shop".into()],
            ..Default::default()
        },
        retention: Retention {
            ttl: ttl.map(String::from),
            keep_last,
        },
        paused: false,
        drill: false,
        continuous: false,
    }
}

async fn wait_finished(catalog: &Catalog, name: &str) -> String {
    let deadline = Instant::now() + WITHIN;
    loop {
        let phase = catalog.backup(name).await.unwrap().phase;
        if !matches!(phase.as_str(), "New" | "InProgress") {
            return phase;
        }
        assert!(Instant::now() < deadline, "backup {name} never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn time(catalog_time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(catalog_time)
        .unwrap()
        .with_timezone(&Utc)
}

/// A scheduler (single replica, SQLite, local storage) for kubesim's demo cluster.
async fn scheduler_on_demo() -> (kubesim::Kubesim, tempfile::TempDir, Scheduler) {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (catalog, store) = local_catalog(dir.path()).await.unwrap();
    let scheduler = Scheduler {
        catalog,
        locations: lifeboat::storage::Locations::new(store),
        client: Some(client),
        drill_client: None,
        leadership: Leadership::Single,
    };
    (sim, dir, scheduler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_runs_due_slots_once_and_never_two_at_a_time() {
    let (_sim, _dir, scheduler) = scheduler_on_demo().await;
    let catalog = scheduler.catalog.clone();
    let record =
        lifeboat::schedule::create(&catalog, &spec("hourly", "0 * * * *", None, None), "test")
            .await
            .unwrap();
    let cron = CronSchedule::parse("0 * * * *", "UTC").unwrap();
    let slots = cron.next_runs(time(&record.created_at), 6);

    // Before the first slot nothing runs.
    let report = scheduler
        .tick(slots[0] - chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(report.started.is_empty(), "{report:?}");

    // Down for four slots: at slots[4] + 1 min, one run for slots[4], four missed.
    let report = scheduler
        .tick(slots[4] + chrono::Duration::minutes(1))
        .await
        .unwrap();
    let first = lifeboat::schedule::spec::backup_name("hourly", slots[4]);
    assert_eq!(report.started, vec![first.clone()]);
    assert!(
        first.starts_with("hourly-") && first.len() == "hourly-".len() + 14,
        "{first}"
    );
    let activity = catalog.activity(Some("schedule/hourly"), 10).await.unwrap();
    let run = activity.iter().find(|a| a.kind == "schedule.run").unwrap();
    assert!(
        run.message.contains("4 earlier run(s) were missed"),
        "{}",
        run.message
    );

    // A second pass in the same hour starts nothing more.
    let report = scheduler
        .tick(slots[4] + chrono::Duration::minutes(2))
        .await
        .unwrap();
    assert!(report.started.is_empty(), "{report:?}");
    assert_eq!(wait_finished(&catalog, &first).await, "Completed");

    // While a run of the schedule is in progress, the next slot waits for it.
    let mut running =
        lifeboat::catalog::BackupRecord::new("hourly-manual-run", "default", &json!({}));
    running.schedule = Some("hourly".into());
    running.phase = BackupPhase::InProgress.as_str().into();
    catalog.insert_backup(&running).await.unwrap();
    let report = scheduler.tick(slots[5]).await.unwrap();
    assert_eq!(report.still_running, vec!["hourly".to_string()]);
    assert!(report.started.is_empty());
    // Once it is over, the waiting slot runs (once).
    catalog.delete_backup("hourly-manual-run").await.unwrap();
    let report = scheduler
        .tick(slots[5] + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        report.started,
        vec![lifeboat::schedule::spec::backup_name("hourly", slots[5])]
    );

    // A paused schedule does not run; resuming does not run what passed meanwhile.
    lifeboat::schedule::set_paused(&catalog, "hourly", true, "test")
        .await
        .unwrap();
    let later = slots[5] + chrono::Duration::hours(3);
    assert!(scheduler.tick(later).await.unwrap().started.is_empty());
    let runs = catalog
        .backups(&BackupFilter {
            schedule: Some("hourly".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
}

/// A stored template that no longer reads (edited by hand, or written by
/// another version) must not turn into an empty template, which would back
/// up the whole cluster: the run is refused and logged, once per slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_template_is_refused_and_logged_and_nothing_is_backed_up() {
    let (_sim, _dir, scheduler) = scheduler_on_demo().await;
    let catalog = scheduler.catalog.clone();
    let mut record =
        lifeboat::schedule::create(&catalog, &spec("nightly", "0 1 * * *", None, None), "test")
            .await
            .unwrap();
    record.template = "{\"includedNamespaces\": \"shop\"".into();
    catalog.update_schedule(&record).await.unwrap();
    let cron = CronSchedule::parse("0 1 * * *", "UTC").unwrap();
    let slot = cron.next_runs(time(&record.created_at), 1)[0];

    let report = scheduler.tick(slot).await.unwrap();
    assert!(report.started.is_empty(), "{report:?}");
    assert_eq!(report.refused, ["nightly"]);
    assert!(
        catalog
            .backups(&BackupFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let logged = catalog.activity(None, 50).await.unwrap();
    let failed: Vec<_> = logged
        .iter()
        .filter(|a| a.kind == "schedule.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{logged:?}");
    assert!(
        failed[0].message.contains("nothing was backed up")
            && failed[0].message.contains("template"),
        "{}",
        failed[0].message
    );
    // The same slot is not retried (and logged) on every tick.
    let report = scheduler
        .tick(slot + chrono::Duration::seconds(5))
        .await
        .unwrap();
    assert!(report.refused.is_empty() && report.started.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_storage_then_catalog_and_resumes_after_a_crash() {
    let (_sim, _dir, scheduler) = scheduler_on_demo().await;
    let (catalog, store) = (
        scheduler.catalog.clone(),
        scheduler.locations.default_store(),
    );
    let record = lifeboat::schedule::create(
        &catalog,
        &spec("daily", "@daily", Some(2), Some("72h")),
        "test",
    )
    .await
    .unwrap();
    let slots = CronSchedule::parse("@daily", "UTC")
        .unwrap()
        .next_runs(time(&record.created_at), 4);
    let mut names = Vec::new();
    for slot in &slots {
        let report = scheduler.tick(*slot).await.unwrap();
        assert_eq!(report.started.len(), 1, "{report:?}");
        assert_eq!(
            wait_finished(&catalog, &report.started[0]).await,
            "Completed"
        );
        names.push(report.started[0].clone());
    }
    // Each run carries the schedule's TTL.
    assert!(
        catalog
            .backup(&names[0])
            .await
            .unwrap()
            .expires_at
            .is_some()
    );
    let objects = |name: String| {
        let store = store.clone();
        async move {
            list_all(store.as_ref(), &archive::backup_prefix(&name))
                .await
                .unwrap()
                .len()
        }
    };
    assert!(objects(names[0].clone()).await > 0);

    // A restore reading the oldest keeps it for now; keep-last 2 takes the other one.
    catalog
        .insert_restore("reading", &names[0], &json!({}))
        .await
        .unwrap();
    assert_eq!(
        catalog.restores_reading(&names[0]).await.unwrap(),
        vec!["reading"]
    );
    // Held by object lock for another hour (an immutable location), it is
    // not even tried: the store would refuse.
    let now = Utc::now();
    let until = (now + chrono::Duration::hours(1)).to_rfc3339();
    catalog
        .set_backup_locked_until(&names[1], &until)
        .await
        .unwrap();
    let report = scheduler.collect_garbage(now).await.unwrap();
    assert_eq!(report.locked, vec![(names[1].clone(), until)], "{report:?}");
    assert!(report.deleted.is_empty(), "{report:?}");
    assert!(objects(names[1].clone()).await > 0);
    let now = now + chrono::Duration::hours(2);
    let report = scheduler.collect_garbage(now).await.unwrap();
    assert_eq!(report.deleted, vec![names[1].clone()], "{report:?}");
    assert_eq!(report.deferred, vec![names[0].clone()]);
    assert_eq!(objects(names[1].clone()).await, 0, "storage first");
    assert!(catalog.backup(&names[1]).await.is_err(), "then the catalog");
    let expired = catalog
        .activity(Some(&format!("backup/{}", names[1])), 10)
        .await
        .unwrap();
    assert!(
        expired
            .iter()
            .any(|a| a.kind == "backup.expired" && a.message.contains("newest 2")),
        "{expired:?}"
    );

    // A crash in the middle of a deletion: phase Deleting, the manifest already
    // gone, the archive still there. The next pass finishes the job.
    let victim = names[2].clone();
    catalog
        .set_backup_phase(&victim, BackupPhase::Deleting, None)
        .await
        .unwrap();
    store
        .delete(&archive::key(&victim, archive::MANIFEST_FILE))
        .await
        .unwrap();
    assert!(objects(victim.clone()).await > 0);
    let report = scheduler.collect_garbage(now).await.unwrap();
    assert!(report.deleted.contains(&victim), "{report:?}");
    assert_eq!(objects(victim.clone()).await, 0);
    assert!(catalog.backup(&victim).await.is_err());

    // TTL: three days later everything left that expired goes, except what is being read.
    let report = scheduler
        .collect_garbage(now + chrono::Duration::days(4))
        .await
        .unwrap();
    assert_eq!(report.deleted, vec![names[3].clone()], "{report:?}");
    assert_eq!(report.deferred, vec![names[0].clone()]);
    // And a second pass is a no-op: deletion is idempotent.
    let again = scheduler
        .collect_garbage(now + chrono::Duration::days(4))
        .await
        .unwrap();
    assert!(
        again.deleted.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_api_validates_previews_and_logs() {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let http = lifeboat_e2e::http(&url);
    let post = |path: &str, body: Value| http.post(format!("{url}{path}")).json(&body).send();

    let bad = post(
        "/api/v1/schedules",
        json!({"name": "nightly", "schedule": "0 1 * *"}),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("schedule: `0 1 * *` has 4 field(s)"),
        "{body}"
    );
    let bad_zone = post(
        "/api/v1/schedules/preview",
        json!({"name": "nightly", "schedule": "0 1 * * *", "timezone": "Europe/Gotham"}),
    )
    .await
    .unwrap();
    assert_eq!(bad_zone.status(), 422);
    assert!(bad_zone.text().await.unwrap().contains("timezone"));

    let preview: Value = post(
        "/api/v1/schedules/preview",
        json!({"name": "nightly", "schedule": "0 1 * * *", "timezone": "Europe/Berlin"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        preview["nextRuns"].as_array().unwrap().len(),
        5,
        "{preview}"
    );
    assert!(
        state.catalog.schedules().await.unwrap().is_empty(),
        "preview saves nothing"
    );

    let created = post(
        "/api/v1/schedules",
        json!({"name": "nightly", "schedule": "@daily", "template": {"includedNamespaces": ["shop"]},
               "retention": {"keepLast": 7, "ttl": "720h"}}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let dup = post(
        "/api/v1/schedules",
        json!({"name": "nightly", "schedule": "@daily"}),
    )
    .await
    .unwrap();
    assert_eq!(dup.status(), 409);

    let one: Value = lifeboat_e2e::get(format!("{url}/api/v1/schedules/nightly"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        one["retention"],
        json!({"ttl": "720h", "keepLast": 7}),
        "{one}"
    );
    assert_eq!(one["template"]["includedNamespaces"], json!(["shop"]));
    let next: Vec<DateTime<Utc>> = one["nextRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| time(t.as_str().unwrap()))
        .collect();
    assert_eq!(next.len(), 5);
    assert!(
        next.windows(2)
            .all(|w| w[1] - w[0] == chrono::Duration::days(1)),
        "{next:?}"
    );

    let paused: Value = post("/api/v1/schedules/nightly/pause", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (paused["paused"].clone(), paused["nextRuns"].clone()),
        (json!(true), json!([]))
    );
    let resumed: Value = post("/api/v1/schedules/nightly/resume", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["nextRuns"].as_array().unwrap().len(), 5);

    let edited = http
        .put(format!("{url}/api/v1/schedules/nightly"))
        .json(&json!({"name": "nightly", "schedule": "30 2 * * 1", "timezone": "America/New_York"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(edited["schedule"], "30 2 * * 1");
    let list: Value = lifeboat_e2e::get(format!("{url}/api/v1/schedules"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["runner"]["mode"], "single");
    assert_eq!(list["items"][0]["name"], "nightly");

    let deleted = http
        .delete(format!("{url}/api/v1/schedules/nightly"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = lifeboat_e2e::get(format!("{url}/api/v1/schedules/nightly"))
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let kinds: Vec<String> = state
        .catalog
        .activity(Some("schedule/nightly"), 20)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    for kind in [
        "schedule.created",
        "schedule.paused",
        "schedule.resumed",
        "schedule.updated",
        "schedule.deleted",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}

/// Makes every slot since 2020 "missed" for a schedule, as if all replicas had
/// been down since then: the leader then runs it once.
async fn backdate(database_url: &str, schedule: &str) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .unwrap();
    sqlx::query("UPDATE schedules SET created_at = $1, updated_at = $1 WHERE name = $2")
        .bind("2020-01-01T00:00:00.000Z")
        .bind(schedule)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn leader_of(replicas: &[&LifeboatProcess]) -> Vec<String> {
    let mut leaders = Vec::new();
    for r in replicas {
        if let Ok(resp) = lifeboat_e2e::get(format!("{}/api/v1/scheduler", r.url)).await
            && let Ok(v) = resp.json::<Value>().await
            && v["leader"] == true
        {
            leaders.push(v["identity"].as_str().unwrap_or_default().to_string());
        }
    }
    leaders
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_replica_runs_schedules_and_another_takes_over() {
    const LEASE: u64 = 5;
    let pg = Postgres::start().await.unwrap();
    let database_url = pg.fresh_database().await.unwrap();
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let env = |id: &str| {
        vec![
            ("LIFEBOAT_DATABASE_URL", database_url.clone()),
            ("LIFEBOAT_KUBECONFIG", kubeconfig.display().to_string()),
            (
                "LIFEBOAT_DATA_DIR",
                dir.path().join(id).display().to_string(),
            ),
            // Shared storage, as replicas share a bucket.
            (
                "LIFEBOAT_STORAGE_PATH",
                dir.path().join("backups").display().to_string(),
            ),
            ("LIFEBOAT_REPLICA_ID", id.to_string()),
            ("LIFEBOAT_LEASE_NAMESPACE", "default".to_string()),
            ("LIFEBOAT_LEASE_DURATION_SECONDS", LEASE.to_string()),
        ]
    };
    let mut a = LifeboatProcess::start(dir.path(), &env("replica-a")).unwrap();
    let mut b = LifeboatProcess::start(dir.path(), &env("replica-b")).unwrap();

    // Exactly one leads.
    let deadline = Instant::now() + WITHIN;
    let leader = loop {
        let leaders = leader_of(&[&a, &b]).await;
        assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
        if let [one] = leaders.as_slice() {
            break one.clone();
        }
        assert!(Instant::now() < deadline, "no replica became leader");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), "default");
    let lease = leases.get("lifeboat-scheduler").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(leader.as_str())
    );

    // A schedule created on either replica, all of whose slots since 2020 were
    // missed: one backup, started by the leader.
    let http = lifeboat_e2e::http(&b.url);
    let created = http
        .post(format!("{}/api/v1/schedules", b.url))
        .json(&json!({"name": "yearly", "schedule": "0 0 1 1 *", "template": {"includedNamespaces": ["shop"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    backdate(&database_url, "yearly").await;
    let backups = poll_json(
        &format!("{}/api/v1/backups?schedule=yearly", a.url),
        WITHIN,
        |v| {
            v["items"]
                .as_array()
                .is_some_and(|i| i.iter().any(|b| b["phase"] == "Completed"))
        },
    )
    .await
    .unwrap();
    let runs: Value = poll_json(
        &format!("{}/api/v1/activity?subject=schedule/yearly", a.url),
        WITHIN,
        |v| {
            v["items"]
                .as_array()
                .is_some_and(|i| i.iter().any(|a| a["kind"] == "schedule.run"))
        },
    )
    .await
    .unwrap();
    let run_entries: Vec<&Value> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "schedule.run")
        .collect();
    assert_eq!(run_entries.len(), 1, "{runs}");
    assert_eq!(backups["items"].as_array().unwrap().len(), 1, "{backups}");
    let details: Value = match &run_entries[0]["details"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        v => v.clone(),
    };
    assert_eq!(details["replica"], leader.as_str(), "{details}");

    // The leader dies without a word; the other takes over within the lease duration
    // (plus the one-second look of a candidate), and runs the next due schedule.
    let (dead, survivor) = if leader == "replica-a" {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    let killed = Instant::now();
    dead.kill();
    let deadline = killed + Duration::from_secs(LEASE * 3);
    loop {
        if leader_of(&[survivor]).await.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the survivor never took over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let takeover = killed.elapsed();
    println!("takeover after the leader was killed: {takeover:?}");
    assert!(
        takeover <= Duration::from_secs(LEASE + 2),
        "took {takeover:?}"
    );
    let http2 = lifeboat_e2e::http(&survivor.url);
    http2
        .post(format!("{}/api/v1/schedules", survivor.url))
        .json(&json!({"name": "yearly-two", "schedule": "0 0 1 1 *", "template": {"includedNamespaces": ["ops"]}}))
        .send()
        .await
        .unwrap();
    backdate(&database_url, "yearly-two").await;
    poll_json(
        &format!("{}/api/v1/backups?schedule=yearly-two", survivor.url),
        WITHIN,
        |v| v["items"].as_array().is_some_and(|i| i.len() == 1),
    )
    .await
    .unwrap();
}
