//! Restore drills end to end: kubesim's demo cluster with the drill
//! identity's RBAC from docker/rbac.yaml, Lifeboat's HTTP server (in this
//! process, or as a process that is killed mid-drill), SQLite, local storage.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, Patch, PatchParams};
use lifeboat_e2e::{LifeboatProcess, kubesim, poll_json, serve_lifeboat};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(120);

/// The drill identity's ClusterRole and binding, as shipped.
fn drill_rbac(sim: &kubesim::Kubesim) {
    let objects: Vec<Value> = kubesim::seed::parse(include_str!("../../docker/rbac.yaml"))
        .unwrap()
        .into_iter()
        .filter(|o| o["metadata"]["name"] == "lifeboat-drill")
        .collect();
    assert_eq!(
        objects.len(),
        2,
        "docker/rbac.yaml has the drill role and binding"
    );
    kubesim::seed::apply(&sim.store, objects).unwrap();
}

/// The demo cluster with the drill identity, and Lifeboat serving it.
async fn demo_with_drills() -> (
    kubesim::Kubesim,
    kube::Client,
    tempfile::TempDir,
    String,
    lifeboat::http::AppState,
) {
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    drill_rbac(&sim);
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    (sim, client, dir, url, state)
}

async fn backup_shop(url: &str, name: &str) {
    backup_of(url, name, "shop").await;
}

async fn backup_of(url: &str, name: &str, namespace: &str) {
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/backups"),
        json!({"name": name, "spec": {"includedNamespaces": [namespace]}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let done = poll_json(&format!("{url}/api/v1/backups/{name}"), WITHIN, |b| {
        !matches!(b["phase"].as_str(), Some("New" | "InProgress"))
    })
    .await
    .unwrap();
    assert_eq!(done["phase"], "Completed", "{done}");
}

async fn start_drill(url: &str, backup: &str, timeout: u64) -> String {
    let (status, drill) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/backups/{backup}/drill"),
        json!({"timeoutSeconds": timeout}),
    )
    .await;
    assert_eq!(status, 202, "{drill}");
    assert_eq!(drill["phase"], "Running");
    drill["id"].as_str().unwrap().to_string()
}

/// Waits until the drill has finished and its scratch namespaces are gone.
async fn finished_and_cleaned(url: &str, id: &str) -> Value {
    poll_json(&format!("{url}/api/v1/drills/{id}"), WITHIN, |d| {
        d["phase"] != "Running" && d["cleanedAt"].is_string()
    })
    .await
    .unwrap()
}

fn check<'a>(drill: &'a Value, object: &str) -> &'a Value {
    drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"] == object)
        .unwrap_or_else(|| panic!("no check of {object}: {drill}"))
}

async fn proven(url: &str, namespace: &str) -> Value {
    let list = poll_json(&format!("{url}/api/v1/namespaces"), WITHIN, |l| {
        l["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await
    .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == namespace)
        .map(|n| n["restoreProven"].clone())
        .unwrap_or_else(|| panic!("{namespace} not listed: {list}"))
}

/// Cordons every node: nothing new is scheduled.
async fn cordon_all(client: &kube::Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    for node in nodes.list(&Default::default()).await.unwrap() {
        let name = node.metadata.name.unwrap();
        nodes
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"unschedulable": true}})),
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_of_shop_passes_and_leaves_nothing_behind() {
    let (_sim, client, _dir, url, state) = demo_with_drills().await;
    assert_eq!(proven(&url, "shop").await["state"], "never");
    backup_shop(&url, "shop-1").await;

    let id = start_drill(&url, "shop-1", 90).await;
    let scratch = format!("shop-drill-{id}");
    let drill = finished_and_cleaned(&url, &id).await;
    assert_eq!(drill["phase"], "Passed", "{drill}");
    assert_eq!(drill["namespaces"], json!({"shop": scratch}));
    assert!(drill["objects"].as_i64().unwrap() > 5, "{drill}");
    assert!(drill["readyMs"].as_i64().is_some(), "{drill}");
    // What was available when backed up came up again; the crash-looping
    // Deployment was not available then, and is not required now.
    let web = check(&drill, &format!("deployments.apps {scratch}/web"));
    assert_eq!(
        (web["expected"].as_bool(), web["ok"].as_bool()),
        (Some(true), Some(true)),
        "{web}"
    );
    assert_eq!(web["detail"], "3/3 available");
    let crashing = check(
        &drill,
        &format!("deployments.apps {scratch}/recommendations"),
    );
    assert_eq!(crashing["expected"], false, "{crashing}");
    assert!(
        crashing["detail"]
            .as_str()
            .unwrap()
            .contains("not ready when backed up"),
        "{crashing}"
    );
    // The restore behind it wrote into the scratch namespace only, and left
    // out what would act on the world (the Ingress taking shop's host).
    let restore = lifeboat_e2e::get(format!("{url}/api/v1/restores/drill-{id}"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let items = restore["plan"]["items"].as_array().unwrap();
    let ingress = items
        .iter()
        .find(|i| i["groupResource"] == "ingresses.networking.k8s.io")
        .unwrap();
    assert_eq!(ingress["action"], "excluded", "{ingress}");
    for item in items.iter().filter(|i| i["result"] == "created") {
        let ns = item["namespace"].as_str();
        assert!(
            ns == Some(scratch.as_str()) || (ns.is_none() && item["name"] == scratch.as_str()),
            "a drill wrote outside its scratch namespace: {item}"
        );
    }

    // Nothing is left behind, and the namespace says its restore is proven.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&scratch).await.unwrap().is_none());
    let badge = proven(&url, "shop").await;
    assert_eq!(badge["state"], "proven", "{badge}");
    assert_eq!(badge["drill"], id.as_str());
    assert_eq!(proven(&url, "data").await["state"], "never");
    let activity = state
        .catalog
        .activity(Some("backup/shop-1"), 20)
        .await
        .unwrap();
    assert!(
        activity
            .iter()
            .any(|a| a.kind == "drill.passed" && a.message.contains(&id)),
        "{activity:?}"
    );

    // Drills act as their own identity, not as Lifeboat or the user: without
    // its binding, the cluster refuses them.
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(client.clone());
    bindings
        .delete("lifeboat-drill", &Default::default())
        .await
        .unwrap();
    let refused = start_drill(&url, "shop-1", 600).await;
    // It fails at once (nothing to wait for), naming who was refused and
    // what lets it; with no right to delete either, its clean-up waits.
    let drill = poll_json(&format!("{url}/api/v1/drills/{refused}"), WITHIN, |d| {
        d["phase"] != "Running"
    })
    .await
    .unwrap();
    assert_eq!(drill["phase"], "Failed", "{drill}");
    let reason = drill["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "namespaces shop-drill-{refused}: not restored: forbidden — you may not create namespaces"
        )) && reason.contains("drills act as lifeboat:drill")
            && reason.contains("lifeboat-drill of docker/rbac.yaml"),
        "{reason}"
    );
    assert!(
        namespaces
            .get_opt(&format!("shop-drill-{refused}"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_whose_deployment_never_becomes_available_fails_with_the_reason_and_is_cleaned_up()
{
    let (_sim, client, _dir, url, _state) = demo_with_drills().await;
    backup_shop(&url, "shop-1").await;
    // No node takes new pods: the restored web Deployment cannot become available.
    cordon_all(&client).await;

    let id = start_drill(&url, "shop-1", 5).await;
    let scratch = format!("shop-drill-{id}");
    let drill = finished_and_cleaned(&url, &id).await;
    assert_eq!(drill["phase"], "Failed", "{drill}");
    let reason = drill["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "deployments.apps {scratch}/web not ready after 5 s: 0/3 available"
        )) && reason.contains("Pending, not scheduled"),
        "{reason}"
    );
    assert!(drill["readyMs"].is_null());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&scratch).await.unwrap().is_none());
    let badge = proven(&url, "shop").await;
    assert_eq!(badge["state"], "failed", "{badge}");
    assert_eq!(badge["reason"], reason);

    // A second drill of a backup that is being drilled is refused.
    let first = start_drill(&url, "shop-1", 60).await;
    let (status, body) =
        lifeboat_e2e::post_json(&format!("{url}/api/v1/backups/shop-1/drill"), json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains(&first), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_cut_short_by_a_crash_is_cleaned_up_after_the_restart() {
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    drill_rbac(&sim);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let env = lifeboat_e2e::serve_env(dir.path(), &kubeconfig);
    let mut server = LifeboatProcess::start(dir.path(), &env).unwrap();
    backup_shop(&server.url, "shop-1").await;
    // The drill waits (nothing can be scheduled) when the server is killed.
    cordon_all(&client).await;
    let id = start_drill(&server.url, "shop-1", 600).await;
    let scratch = format!("shop-drill-{id}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &scratch);
    let deadline = Instant::now() + WITHIN;
    while deployments.get_opt("web").await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "the drill restored nothing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.kill();
    assert!(
        namespaces.get_opt(&scratch).await.unwrap().is_some(),
        "the scratch namespace outlives the crash"
    );

    let server = LifeboatProcess::start(dir.path(), &env).unwrap();
    let drill = finished_and_cleaned(&server.url, &id).await;
    assert_eq!(drill["phase"], "Failed", "{drill}");
    assert!(
        drill["reason"].as_str().unwrap().starts_with("interrupted"),
        "{drill}"
    );
    assert!(namespaces.get_opt(&scratch).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_with_a_drill_drills_each_backup_it_makes_once() {
    let (_sim, client, _dir, url, state) = demo_with_drills().await;
    let (status, created) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/schedules"),
        json!({"name": "nightly", "schedule": "0 1 * * *",
               "template": {"includedNamespaces": ["shop"]}, "drill": true}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["drill"], true);
    let cluster = state.cluster.as_ref().as_ref().unwrap();
    let scheduler = lifeboat::schedule::Scheduler {
        catalog: state.catalog.clone(),
        locations: state.locations.clone(),
        client: Some(client.clone()),
        drill_client: Some(cluster.drill_client().unwrap()),
        leadership: lifeboat::schedule::Leadership::Single,
    };
    let drills = lifeboat::drill::Drills {
        catalog: state.catalog.clone(),
        locations: state.locations.clone(),
        client: cluster.drill_client().unwrap(),
    };
    // Nothing to drill before the schedule has a finished backup.
    assert!(drills.start_due().await.unwrap().is_empty());
    let slot = chrono::Utc::now() + chrono::Duration::days(1);
    let report = scheduler.tick(slot).await.unwrap();
    let [backup] = report.started.as_slice() else {
        panic!("{report:?}");
    };
    let done = poll_json(&format!("{url}/api/v1/backups/{backup}"), WITHIN, |b| {
        !matches!(b["phase"].as_str(), Some("New" | "InProgress"))
    })
    .await
    .unwrap();
    assert_eq!(done["phase"], "Completed", "{done}");

    let started = drills.start_due().await.unwrap();
    let [id] = started.as_slice() else {
        panic!("{started:?}");
    };
    // While it runs, and after, that backup is not drilled again.
    assert!(drills.start_due().await.unwrap().is_empty());
    let drill = finished_and_cleaned(&url, id).await;
    assert_eq!(drill["phase"], "Passed", "{drill}");
    assert_eq!(drill["schedule"], "nightly");
    assert_eq!(drill["backup"], backup.as_str());
    assert!(drills.start_due().await.unwrap().is_empty());
    let listed = lifeboat_e2e::get(format!("{url}/api/v1/drills?backup={backup}"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
}

/// A backup of the whole cluster taken while a drill runs leaves the
/// drill's scratch namespace, and everything in it, out: it is labelled as
/// Lifeboat's temporary object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_a_drill_runs_leaves_its_scratch_namespace_out() {
    let (_sim, client, _dir, url, _state) = demo_with_drills().await;
    backup_shop(&url, "shop-1").await;
    // Nothing can be scheduled: the drill waits for its pods until its timeout.
    cordon_all(&client).await;
    let id = start_drill(&url, "shop-1", 30).await;
    let scratch = format!("shop-drill-{id}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let deadline = Instant::now() + WITHIN;
    let labels = loop {
        if let Some(ns) = namespaces.get_opt(&scratch).await.unwrap() {
            break ns.metadata.labels.unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "the scratch namespace never appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        labels.get("lifeboat.io/temporary").map(String::as_str),
        Some("drill-namespace"),
        "{labels:?}"
    );
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/backups"),
        json!({"name": "everything", "spec": {}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let done = poll_json(&format!("{url}/api/v1/backups/everything"), WITHIN, |b| {
        !matches!(b["phase"].as_str(), Some("New" | "InProgress"))
    })
    .await
    .unwrap();
    assert!(
        namespaces.get_opt(&scratch).await.unwrap().is_some(),
        "the drill ended before the backup did; the test proves nothing"
    );
    let contents = lifeboat_e2e::get(format!("{url}/api/v1/backups/everything/contents"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(contents.contains("\"shop\""), "{done}\n{contents}");
    assert!(!contents.contains(&scratch), "{contents}");
    let drill = finished_and_cleaned(&url, &id).await;
    assert_eq!(drill["phase"], "Failed", "{drill}");
}

fn hook_checks(drill: &Value) -> Vec<&Value> {
    drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["object"]
                .as_str()
                .is_some_and(|o| o.starts_with("post-restore hook in pod "))
        })
        .collect()
}

/// A drill of the demo's `data` runs its database's post-restore hook
/// (`check`) in each restored replica and shows what it said; a hook that
/// fails with `on-error: Fail` fails the drill, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_runs_the_post_restore_hooks_and_a_failing_one_fails_it() {
    let (_sim, client, _dir, url, _state) = demo_with_drills().await;
    backup_of(&url, "data-1", "data").await;
    let id = start_drill(&url, "data-1", 120).await;
    let drill = finished_and_cleaned(&url, &id).await;
    assert_eq!(drill["phase"], "Passed", "{drill:#}");
    let hooks = hook_checks(&drill);
    assert_eq!(hooks.len(), 2, "one in each replica: {drill:#}");
    for h in hooks {
        assert_eq!(h["ok"], true, "{h}");
        assert_eq!(h["expected"], true, "{h}");
        assert!(
            h["detail"]
                .as_str()
                .unwrap()
                .starts_with("`check`: exit code 0"),
            "{h}"
        );
    }

    // The query fails: so does the drill.
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(client.clone(), "data");
    sets.patch(
        "postgres",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {
            "post.hook.restore.lifeboat.io/command":
                "[\"/bin/sh\", \"-c\", \"echo 'relation orders does not exist' >&2; exit 1\"]"}}}}})),
    )
    .await
    .unwrap();
    backup_of(&url, "data-2", "data").await;
    let id = start_drill(&url, "data-2", 120).await;
    let drill = finished_and_cleaned(&url, &id).await;
    assert_eq!(drill["phase"], "Failed", "{drill:#}");
    let failed: Vec<&Value> = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false && c["expected"] == true)
        .collect();
    assert!(
        failed.iter().any(|c| c["detail"]
            .as_str()
            .unwrap()
            .contains("relation orders does not exist")),
        "{drill:#}"
    );
}
