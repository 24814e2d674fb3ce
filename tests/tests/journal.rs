//! Continuous protection on kubesim: a schedule's change journal, replayed
//! over its backup to restore namespaces as they were at an instant; the
//! journal resumes where it stopped, and a watch that cannot resume (410)
//! is recorded as a gap that the restore plan shows.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use lifeboat::journal::replay;
use lifeboat_e2e::{kubectl, kubesim, post_json, serve_lifeboat};
use serde_json::{Value, json};

const SCHEDULE: &str = "pit";

struct Env {
    _sim: kubesim::Kubesim,
    _dir: tempfile::TempDir,
    url: String,
    state: lifeboat::http::AppState,
    client: kube::Client,
    kubeconfig: std::path::PathBuf,
}

async fn env(options: kubesim::Options) -> Env {
    let (sim, client) = kubesim(options, true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let kubeconfig = dir.path().join("kubectl.kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let (status, body) = post_json(
        &format!("{url}/api/v1/schedules"),
        json!({"name": SCHEDULE, "schedule": "0 3 * * *", "continuous": true,
               "template": {"includedNamespaces": ["shop", "data"]}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    Env {
        _sim: sim,
        _dir: dir,
        url,
        state,
        client,
        kubeconfig,
    }
}

impl Env {
    /// Starts the writer and waits until every type it watches is current.
    async fn start_journal(&self) {
        self.state.journals.reconcile().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let _ = lifeboat::journal::flush(self.store().as_ref(), SCHEDULE, true).await;
            let s = self.state.journals.status(SCHEDULE).unwrap_or_default();
            if s.resource_types > 0 && s.current_types == s.resource_types {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the journal never became current: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn set_paused(&self, paused: bool) {
        let verb = if paused { "pause" } else { "resume" };
        let (status, body) = post_json(
            &format!("{}/api/v1/schedules/{SCHEDULE}/{verb}", self.url),
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        self.state.journals.reconcile().await.unwrap();
    }

    fn store(&self) -> lifeboat::storage::DynStore {
        self.state.locations.get("default").unwrap()
    }

    async fn key(&self) -> Option<lifeboat::archive::ArchiveKey> {
        lifeboat::volumes::archive_key(&self.state.catalog, "default")
            .await
            .unwrap()
    }

    /// Waits until the journal in storage holds the change that gave
    /// `name` the resourceVersion `rv`; returns an instant just after it.
    async fn recorded(&self, name: &str, rv: &str) -> DateTime<Utc> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let since = DateTime::<Utc>::MIN_UTC;
        loop {
            lifeboat::journal::flush(self.store().as_ref(), SCHEDULE, true)
                .await
                .unwrap();
            let mut found = false;
            let (store, key) = (self.store(), self.key().await);
            replay::changes(
                replay::Source {
                    store: &store,
                    schedule: SCHEDULE,
                    key: key.as_ref(),
                },
                since,
                Utc::now(),
                &|_, _| true,
                |line| {
                    found |= line.name.as_deref() == Some(name)
                        && line.resource_version.as_deref() == Some(rv);
                },
            )
            .await
            .unwrap();
            if found {
                return Utc::now();
            }
            assert!(
                Instant::now() < deadline,
                "{name}@{rv} never reached the journal"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn apply(&self, manifest: &str) -> Value {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), manifest).unwrap();
        let out = kubectl(
            &self.kubeconfig,
            &[
                "apply",
                "-o",
                "json",
                "-f",
                &file.path().display().to_string(),
            ],
        )
        .unwrap();
        serde_json::from_str(&out).unwrap()
    }

    fn kubectl(&self, args: &[&str]) -> String {
        kubectl(&self.kubeconfig, args).unwrap()
    }

    async fn restore(&self, spec: Value) -> Value {
        let (status, created) = post_json(
            &format!("{}/api/v1/restores", self.url),
            json!({"spec": spec}),
        )
        .await;
        assert_eq!(status, 202, "{created}");
        let name = created["name"].as_str().unwrap().to_string();
        lifeboat_e2e::poll_json(
            &format!("{}/api/v1/restores/{name}", self.url),
            Duration::from_secs(120),
            |r| !matches!(r["phase"].as_str(), Some("New" | "InProgress")),
        )
        .await
        .unwrap()
    }
}

fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A backup of the schedule now (as `lifeboat backup create --from-schedule`).
/// `name` empty: the schedule's default name.
async fn base_backup(env: &Env, name: &str) -> String {
    let (status, created) = post_json(
        &format!("{}/api/v1/backups", env.url),
        json!({"fromSchedule": SCHEDULE, "name": name}),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let name = created["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("pit-"), "{name}");
    assert_eq!(created["schedule"], SCHEDULE, "{created}");
    let done = lifeboat_e2e::poll_json(
        &format!("{}/api/v1/backups/{name}", env.url),
        Duration::from_secs(60),
        |b| !matches!(b["phase"].as_str(), Some("New" | "InProgress")),
    )
    .await
    .unwrap();
    assert_eq!(done["phase"], "Completed", "{done}");
    assert_eq!(done["spec"]["includedNamespaces"], json!(["shop", "data"]));
    name
}

fn databases() -> ApiResource {
    ApiResource {
        group: "demo.lifeboat.io".into(),
        version: "v1".into(),
        api_version: "demo.lifeboat.io/v1".into(),
        kind: "Database".into(),
        plural: "databases".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_comes_back_as_it_was_at_an_instant() {
    let env = env(kubesim::Options::default()).await;
    env.start_journal().await;
    let base = base_backup(&env, "").await;

    // Before the instant: a new ConfigMap, an edited one, one to be
    // deleted later, a Secret, the Database and the Deployment's scale.
    let settings = env.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {mode: one}\n",
    );
    env.recorded("settings", &rv(&settings)).await;
    let settings = env.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {mode: two}\n",
    );
    let legacy = env.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: legacy, namespace: shop}\ndata: {keep: me}\n",
    );
    let secret = env.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: api-token, namespace: shop}\nstringData: {token: before}\n",
    );
    let db = env.apply(
        "apiVersion: demo.lifeboat.io/v1\nkind: Database\nmetadata: {name: orders, namespace: data}\nspec: {engine: postgres, version: \"17\", sizeGi: 5}\n",
    );
    env.kubectl(&["scale", "-n", "shop", "deployment/web", "--replicas=4"]);
    let web: Api<Deployment> = Api::namespaced(env.client.clone(), "shop");
    let scaled = serde_json::to_value(web.get("web").await.unwrap()).unwrap();
    for (name, object) in [
        ("settings", &settings),
        ("legacy", &legacy),
        ("api-token", &secret),
        ("orders", &db),
        ("web", &scaled),
    ] {
        env.recorded(name, &rv(object)).await;
    }
    let instant = Utc::now();

    // After it: every one of them changes again, and legacy goes.
    let settings = env.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {mode: three}\n",
    );
    let secret = env.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: api-token, namespace: shop}\nstringData: {token: after}\n",
    );
    let db = env.apply(
        "apiVersion: demo.lifeboat.io/v1\nkind: Database\nmetadata: {name: orders, namespace: data}\nspec: {engine: postgres, version: \"18\", sizeGi: 50}\n",
    );
    env.kubectl(&["scale", "-n", "shop", "deployment/web", "--replicas=1"]);
    env.kubectl(&["delete", "configmap", "-n", "shop", "legacy"]);
    let scaled = serde_json::to_value(web.get("web").await.unwrap()).unwrap();
    for (name, object) in [
        ("settings", &settings),
        ("api-token", &secret),
        ("orders", &db),
        ("web", &scaled),
    ] {
        env.recorded(name, &rv(object)).await;
    }

    let at = instant.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let done = env
        .restore(json!({"fromSchedule": SCHEDULE, "at": at,
                        "namespaceMapping": {"shop": "shop-pit", "data": "data-pit"}}))
        .await;
    assert_eq!(done["phase"], "Completed", "{done}");
    assert_eq!(done["backupName"], base.as_str());
    let pit = &done["plan"]["pointInTime"];
    assert_eq!(pit["base"], base.as_str(), "{pit}");
    assert!(pit["changesApplied"].as_u64().unwrap() >= 6, "{pit}");
    assert_eq!(pit["gaps"], json!([]), "{pit}");

    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), "shop-pit");
    let data = |cm: ConfigMap| cm.data.unwrap_or_default();
    assert_eq!(data(maps.get("settings").await.unwrap())["mode"], "two");
    assert_eq!(data(maps.get("legacy").await.unwrap())["keep"], "me");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "shop-pit");
    let token = secrets.get("api-token").await.unwrap().data.unwrap()["token"].clone();
    assert_eq!(token.0, b"before");
    let restored_web: Api<Deployment> = Api::namespaced(env.client.clone(), "shop-pit");
    let replicas = restored_web.get("web").await.unwrap().spec.replicas;
    assert_eq!(replicas, Some(4));
    let dbs: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), "data-pit", &databases());
    let orders = dbs.get("orders").await.unwrap();
    assert_eq!(orders.data["spec"]["version"], "17");

    // The live namespaces were left as they are now.
    let live: Api<ConfigMap> = Api::namespaced(env.client.clone(), "shop");
    assert_eq!(data(live.get("settings").await.unwrap())["mode"], "three");
    assert!(live.get_opt("legacy").await.unwrap().is_none());
    let live_secrets: Api<Secret> = Api::namespaced(env.client.clone(), "shop");
    let live_token = live_secrets.get("api-token").await.unwrap().data.unwrap()["token"].clone();
    assert_eq!(live_token.0, b"after");

    // The journal holds the Secret's values only encrypted.
    let journal_dir = env._dir.path().join("backups/journal").join(SCHEDULE);
    let mut segments = 0;
    for file in std::fs::read_dir(&journal_dir).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        segments += 1;
        for needle in [&b"YWZ0ZXI="[..], b"YmVmb3Jl", b"stringData", b"api-token"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} in the clear in the journal",
                String::from_utf8_lossy(needle)
            );
        }
    }
    assert!(segments > 2, "{segments}");

    // The timeline: every change with who made it, counted per minute.
    let t: Value = lifeboat_e2e::get(format!(
        "{}/api/v1/namespaces/shop/timeline?hours=1",
        env.url
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let changes = t["changes"].as_array().unwrap();
    let counted: u64 = t["perMinute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, t["total"].as_u64().unwrap(), "{t}");
    let of = |name: &str, op: &str| {
        changes
            .iter()
            .filter(|c| c["name"] == name && c["op"] == op)
            .cloned()
            .collect::<Vec<_>>()
    };
    let edits = of("settings", "modified");
    assert_eq!(edits.len(), 2, "{t}");
    assert_eq!(edits[0]["manager"], "kubectl-client-side-apply", "{t}");
    assert_eq!(of("legacy", "deleted").len(), 1, "{t}");
    assert!(changes.iter().all(|c| c["kind"].is_string()), "{t}");
    // Newest first; the Secret's edit is there, its value is not.
    assert!(
        changes
            .windows(2)
            .all(|w| w[0]["at"].as_str() >= w[1]["at"].as_str())
    );
    assert!(!t.to_string().contains("YWZ0ZXI="), "{t}");

    // What the older edit of settings changed, and a Secret's, redacted.
    let older = &edits[1];
    let object: Value = lifeboat_e2e::get(format!(
        "{}/api/v1/namespaces/shop/timeline/object?resource=configmaps&name=settings&at={}&compareTo=before",
        env.url,
        older["at"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(object["exists"], true, "{object}");
    let diff = object["diff"].as_array().unwrap();
    let mode = diff
        .iter()
        .find(|d| d["path"] == "data.mode")
        .unwrap_or_else(|| panic!("{object}"));
    assert_eq!(
        (&mode["before"], &mode["after"]),
        (&json!("one"), &json!("two")),
        "{object}"
    );
    let secret_edit = &of("api-token", "modified")[0];
    let object: Value = lifeboat_e2e::get(format!(
        "{}/api/v1/namespaces/shop/timeline/object?resource=secrets&name=api-token&at={}&compareTo=before",
        env.url,
        secret_edit["at"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = object["diff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == "data.token")
        .cloned();
    assert_eq!(
        token,
        Some(json!({"path": "data.token", "before": "<redacted>", "after": "<redacted>"})),
        "{object}"
    );
    assert!(
        !object.to_string().contains("YWZ0ZXI=") && !object.to_string().contains("YmVmb3Jl"),
        "{object}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_resumes_after_a_stop_and_records_a_gap_when_it_cannot() {
    // A short watch history, so a long stop outlives it.
    let env = env(kubesim::Options {
        history: 40,
        ..Default::default()
    })
    .await;
    env.start_journal().await;
    base_backup(&env, "").await;

    // A short stop: the watches resume from their cursors, nothing is lost.
    env.set_paused(true).await;
    let during = env.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: while-stopped, namespace: shop}\ndata: {v: '1'}\n",
    );
    env.set_paused(false).await;
    env.start_journal().await;
    env.recorded("while-stopped", &rv(&during)).await;
    let resumed = env.state.journals.status(SCHEDULE).unwrap();
    assert_eq!(resumed.gaps, 0, "{resumed:?}");

    // A long one: more changes than the history keeps, so the watches
    // answer 410 Gone; a gap is recorded and a fresh list bridges it.
    env.set_paused(true).await;
    let stopped_at = Utc::now();
    for i in 0..60 {
        env.kubectl(&[
            "annotate",
            "--overwrite",
            "configmap",
            "-n",
            "shop",
            "web-config",
            &format!("churn={i}"),
        ]);
    }
    let gone = env.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: made-while-blind, namespace: shop}\ndata: {v: '1'}\n",
    );
    env.set_paused(false).await;
    env.start_journal().await;
    env.recorded("made-while-blind", &rv(&gone)).await;

    let mut gaps = Vec::new();
    let (store, key) = (env.store(), env.key().await);
    replay::changes(
        replay::Source {
            store: &store,
            schedule: SCHEDULE,
            key: key.as_ref(),
        },
        stopped_at,
        Utc::now(),
        &|_, _| true,
        |_| {},
    )
    .await
    .unwrap()
    .into_iter()
    .for_each(|g| gaps.push(g));
    assert!(
        gaps.iter().any(|g| g.group_resource == "configmaps"
            && g.from <= stopped_at + chrono::Duration::seconds(1)),
        "{gaps:?}"
    );

    // A plan to an instant inside the gap shows it.
    let at = (stopped_at + chrono::Duration::milliseconds(100))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let planned = env
        .restore(json!({"fromSchedule": SCHEDULE, "at": at, "dryRun": true,
                        "namespaceMapping": {"shop": "shop-plan", "data": "data-plan"}}))
        .await;
    assert_eq!(planned["phase"], "Planned", "{planned}");
    let shown = planned["plan"]["pointInTime"]["gaps"].as_array().unwrap();
    assert!(
        shown.iter().any(|g| g["groupResource"] == "configmaps"
            && g["reason"].as_str().unwrap().contains("could not resume")),
        "{planned}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_point_in_time_requests_are_refused_with_the_reason() {
    let env = env(kubesim::Options::default()).await;
    let url = format!("{}/api/v1/restores", env.url);
    for (spec, field) in [
        (json!({"fromSchedule": SCHEDULE}), "at"),
        (json!({"at": "2026-11-29T14:32:07Z"}), "fromSchedule"),
        (json!({"fromSchedule": SCHEDULE, "at": "yesterday"}), "at"),
        (
            json!({"fromSchedule": SCHEDULE, "at": "2999-01-01T00:00:00Z"}),
            "at",
        ),
        // No backup of the schedule yet: nothing to replay over.
        (
            json!({"fromSchedule": SCHEDULE, "at": "2026-11-29T14:32:07Z"}),
            "at",
        ),
    ] {
        let (status, body) = post_json(&url, json!({"spec": spec})).await;
        assert_eq!(status, 422, "{spec} → {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("{field}:")),
            "{body}"
        );
    }
}

async fn started(env: &Env, backup: &str) -> DateTime<Utc> {
    let b: Value = lifeboat_e2e::get(format!("{}/api/v1/backups/{backup}", env.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    b["startedAt"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_is_kept_as_long_as_the_backups_it_rests_on() {
    let env = env(kubesim::Options::default()).await;
    env.start_journal().await;
    let first = base_backup(&env, "").await;
    let change = env.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: between, namespace: shop}\ndata: {v: '1'}\n",
    );
    env.recorded("between", &rv(&change)).await;
    let second = base_backup(&env, "pit-second").await;
    let second_started: DateTime<Utc> =
        lifeboat_e2e::get(format!("{}/api/v1/backups/{second}", env.url))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["startedAt"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    let later = env.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-second, namespace: shop}\ndata: {v: '1'}\n",
    );
    env.recorded("after-second", &rv(&later)).await;
    let segments = || async { replay::list_segments(&env.store(), SCHEDULE).await.unwrap() };
    let scheduler = lifeboat::schedule::Scheduler {
        catalog: env.state.catalog.clone(),
        locations: env.state.locations.clone(),
        client: Some(env.client.clone()),
        drill_client: None,
        leadership: lifeboat::schedule::Leadership::Single,
    };
    // While the first backup is kept, so is the journal since it began
    // (what the journal wrote before it cannot be replayed: it goes).
    let first_started = started(&env, &first).await;
    let all = segments().await;
    let report = scheduler.collect_garbage(Utc::now()).await.unwrap();
    let before = segments().await;
    assert_eq!(report.journal_segments as usize, all.len() - before.len());
    assert!(before.iter().all(|s| s.to >= first_started), "{before:?}");
    assert!(before.iter().any(|s| s.to < second_started), "{before:?}");
    let r = lifeboat_e2e::http(&env.url)
        .delete(format!("{}/api/v1/backups/{first}", env.url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let report = scheduler.collect_garbage(Utc::now()).await.unwrap();
    let after = segments().await;
    assert_eq!(report.journal_segments as usize, before.len() - after.len());
    assert!(report.journal_segments > 0);
    assert!(after.iter().all(|s| s.to >= second_started), "{after:?}");
    // What the second backup needs is still there: a restore to now works.
    let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let planned = env
        .restore(json!({"fromSchedule": SCHEDULE, "at": at, "dryRun": true,
                        "namespaceMapping": {"shop": "shop-gc", "data": "data-gc"}}))
        .await;
    assert_eq!(planned["phase"], "Planned", "{planned}");
    assert_eq!(
        planned["plan"]["pointInTime"]["gaps"],
        json!([]),
        "{planned}"
    );
}

/// A writer with small bounds, for the storage outage tests.
fn small_journals(env: &Env, buffer_bytes: usize, spool_bytes: u64) -> lifeboat::journal::Journals {
    lifeboat::journal::Journals::new(
        env.state.catalog.clone(),
        env.state.locations.clone(),
        Some(env.client.clone()),
        lifeboat::schedule::Leadership::Single,
        lifeboat::journal::Settings {
            segment_every: Duration::from_secs(3600),
            segment_bytes: 4 << 10,
            buffer_bytes,
            spool_bytes,
            spool_dir: Some(env._dir.path().join("spool")),
        },
    )
}

/// Storage fails for the journal: its directory becomes a file (writes
/// under it fail, as on a bucket that went away) until `heal` puts it back.
struct Outage {
    journal: std::path::PathBuf,
    aside: std::path::PathBuf,
}

impl Outage {
    fn start(env: &Env) -> Self {
        let journal = env._dir.path().join("backups/journal").join(SCHEDULE);
        let aside = env._dir.path().join("journal-aside");
        std::fs::rename(&journal, &aside).unwrap();
        std::fs::write(&journal, b"not a directory").unwrap();
        Self { journal, aside }
    }

    fn heal(self) {
        std::fs::remove_file(&self.journal).unwrap();
        std::fs::rename(&self.aside, &self.journal).unwrap();
    }
}

async fn start_with(env: &Env, journals: &lifeboat::journal::Journals) {
    journals.reconcile().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = lifeboat::journal::flush(env.store().as_ref(), SCHEDULE, true).await;
        let s = journals.status(SCHEDULE).unwrap_or_default();
        if s.resource_types > 0 && s.current_types == s.resource_types && s.pending_segments == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the journal never became current: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A ConfigMap carrying `filler` random letters: they do not compress, so
/// what the journal holds grows by about that much per object, whatever
/// zstd makes of the rest.
fn config_map(name: &str, filler: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: shop}}\ndata: {{filler: '{}'}}\n",
        Alphanumeric.sample_string(&mut rand::rng(), filler)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_storage_is_down_are_written_when_it_returns() {
    let env = env(kubesim::Options::default()).await;
    let journals = small_journals(&env, 8 << 10, 4 << 20);
    start_with(&env, &journals).await;

    let outage = Outage::start(&env);
    let mut made = Vec::new();
    for i in 0..12 {
        let cm = env.apply(&config_map(&format!("offline-{i}"), 3000));
        made.push((format!("offline-{i}"), rv(&cm)));
    }
    let held = lifeboat::journal::flush(env.store().as_ref(), SCHEDULE, true).await;
    assert!(
        held.is_err(),
        "nothing could be written, yet the flush said all was"
    );
    let s = journals.status(SCHEDULE).unwrap();
    assert!(s.pending_segments > 0 && s.last_error.is_some(), "{s:?}");
    // The memory bound holds: what is over it went to the spool on disk.
    let spooled: u64 = std::fs::read_dir(env._dir.path().join("spool").join(SCHEDULE))
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    assert!(spooled > 0, "{s:?}");
    assert!(
        s.pending_bytes - spooled <= 8 << 10,
        "{s:?} spooled {spooled}"
    );

    outage.heal();
    for (name, rv) in &made {
        env.recorded(name, rv).await;
    }
    let s = journals.status(SCHEDULE).unwrap();
    assert_eq!((s.pending_segments, s.gaps), (0, 0), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_buffer_bound_the_journal_records_a_gap_and_lists_again() {
    let env = env(kubesim::Options::default()).await;
    // Room for about one segment in memory, none on disk.
    let journals = small_journals(&env, 6 << 10, 0);
    start_with(&env, &journals).await;
    base_backup(&env, "").await;

    let outage = Outage::start(&env);
    let down_at = Utc::now();
    for i in 0..12 {
        env.apply(&config_map(&format!("lost-{i}"), 3000));
    }
    let _ = lifeboat::journal::flush(env.store().as_ref(), SCHEDULE, true).await;
    let s = journals.status(SCHEDULE).unwrap();
    assert!(s.gaps > 0, "{s:?}");
    assert!(s.pending_bytes <= 6 << 10, "the bound was not kept: {s:?}");
    outage.heal();

    // The re-list after the gap brings the state back: the objects made
    // while storage was down are all in the journal again, after the gap.
    let (store, key) = (env.store(), env.key().await);
    let deadline = Instant::now() + Duration::from_secs(30);
    let gaps = loop {
        lifeboat::journal::flush(store.as_ref(), SCHEDULE, true)
            .await
            .ok();
        let mut listed = Vec::new();
        let gaps = replay::changes(
            replay::Source {
                store: &store,
                schedule: SCHEDULE,
                key: key.as_ref(),
            },
            down_at,
            Utc::now(),
            &|_, _| true,
            |line| {
                if line.op == Some(lifeboat::journal::Op::Listed) {
                    listed.extend(line.name.clone());
                }
            },
        )
        .await
        .unwrap();
        if (0..12).all(|i| listed.contains(&format!("lost-{i}"))) {
            break gaps;
        }
        assert!(Instant::now() < deadline, "not re-listed: {listed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        gaps.iter()
            .any(|g| g.group_resource == "*" && g.reason.contains("buffer")),
        "{gaps:?}"
    );
    let after = env.apply(&config_map("after-outage", 10));
    env.recorded("after-outage", &rv(&after)).await;
    // A restore to now has the gap in its plan, and every object.
    let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let planned = env
        .restore(json!({"fromSchedule": SCHEDULE, "at": at, "dryRun": true,
                        "namespaceMapping": {"shop": "shop-o", "data": "data-o"}}))
        .await;
    let plan = &planned["plan"];
    assert!(
        !plan["pointInTime"]["gaps"].as_array().unwrap().is_empty(),
        "{plan}"
    );
    let names: Vec<&str> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(
        names.contains(&"lost-11") && names.contains(&"after-outage"),
        "{names:?}"
    );
}

/// Polls a namespace's timeline until `done` holds for its changes.
async fn timeline_until(url: &str, namespace: &str, done: impl Fn(&[Value]) -> bool) -> Value {
    lifeboat_e2e::poll_json(
        &format!("{url}/api/v1/namespaces/{namespace}/timeline?hours=1"),
        Duration::from_secs(60),
        |t| t["changes"].as_array().is_some_and(|c| done(c)),
    )
    .await
    .unwrap()
}

fn has(changes: &[Value], name: &str, op: &str) -> bool {
    changes.iter().any(|c| c["name"] == name && c["op"] == op)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_started_again_resumes_its_journal() {
    let (sim, _client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let env = lifeboat_e2e::serve_env(dir.path(), &kubeconfig);
    let mut server = lifeboat_e2e::LifeboatProcess::start(dir.path(), &env).unwrap();
    let (status, body) = post_json(
        &format!("{}/api/v1/schedules", server.url),
        json!({"name": SCHEDULE, "schedule": "0 3 * * *", "continuous": true,
               "template": {"includedNamespaces": ["shop"]}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let current =
        |url: String| async move { lifeboat_e2e::journal_current(&url, SCHEDULE).await.unwrap() };
    current(server.url.clone()).await;
    let (status, body) = post_json(
        &format!("{}/api/v1/backups", server.url),
        json!({"fromSchedule": SCHEDULE, "name": "pit-base"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    lifeboat_e2e::poll_json(
        &format!("{}/api/v1/backups/pit-base", server.url),
        Duration::from_secs(60),
        |b| b["phase"] == "Completed",
    )
    .await
    .unwrap();
    let cm = |name: &str| {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &file,
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: shop}}\ndata: {{v: '1'}}\n"),
        )
        .unwrap();
        kubectl(&kubeconfig, &["apply", "-f", &file.display().to_string()]).unwrap();
    };
    cm("before-crash");
    timeline_until(&server.url, "shop", |c| has(c, "before-crash", "added")).await;

    // Killed: what happens meanwhile reaches the journal after the restart,
    // from the cursors the bucket holds (the API server replays it).
    server.kill();
    cm("while-down");
    kubectl(
        &kubeconfig,
        &["delete", "configmap", "-n", "shop", "before-crash"],
    )
    .unwrap();
    let server = lifeboat_e2e::LifeboatProcess::start(dir.path(), &env).unwrap();
    // Resumed: every type current again from its cursor, without a list.
    let resumed = current(server.url.clone()).await;
    assert_eq!(resumed["journal"]["gaps"], 0, "{resumed}");
    cm("after-restart");
    let t = timeline_until(&server.url, "shop", |c| {
        has(c, "while-down", "added")
            && has(c, "before-crash", "deleted")
            && has(c, "after-restart", "added")
    })
    .await;
    assert_eq!(t["gaps"], json!([]), "{t}");
    // Listed only once: the journal resumed rather than started again.
    let listed = t["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "web-config")
        .count();
    assert_eq!(listed, 1, "{t}");

    let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, created) = post_json(
        &format!("{}/api/v1/restores", server.url),
        json!({"spec": {"fromSchedule": SCHEDULE, "at": at, "dryRun": true,
                        "namespaceMapping": {"shop": "shop-after"}}}),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let planned = lifeboat_e2e::poll_json(
        &format!(
            "{}/api/v1/restores/{}",
            server.url,
            created["name"].as_str().unwrap()
        ),
        Duration::from_secs(60),
        |r| r["phase"] == "Planned",
    )
    .await
    .unwrap();
    let names: Vec<&str> = planned["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["groupResource"] == "configmaps")
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(
        names.contains(&"while-down") && names.contains(&"after-restart"),
        "{names:?}"
    );
    assert!(!names.contains(&"before-crash"), "{names:?}");
    assert_eq!(
        planned["plan"]["pointInTime"]["gaps"],
        json!([]),
        "{planned}"
    );
}
