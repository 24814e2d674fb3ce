//! Restores end to end against kubesim over HTTPS: the disaster round trip,
//! namespace mapping, existing-resource policies, CRDs before their custom
//! resources, a corrupt archive refused, and a cluster that forbids a kind.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use lifeboat::backup::{self, BackupSpec};
use lifeboat::catalog::Catalog;
use lifeboat::restore::{self, ExistingResourcePolicy, RestoreSpec, items};
use lifeboat::storage::{DynStore, Locations, put_bytes};
use serde_json::{Value, json};

struct Env {
    catalog: Catalog,
    store: DynStore,
    /// `store` as the only (`default`) location.
    locations: Locations,
    client: kube::Client,
    sim: kubesim::Kubesim,
    dir: tempfile::TempDir,
}

/// The default location's archive key (made by its first backup).
async fn location_key(env: &Env) -> Option<lifeboat::archive::ArchiveKey> {
    lifeboat::volumes::archive_key(&env.catalog, "default")
        .await
        .unwrap()
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (sim, client) = lifeboat_e2e::kubesim(kubesim::Options::default(), true)
        .await
        .unwrap();
    let (catalog, store) = lifeboat_e2e::local_catalog(dir.path()).await.unwrap();
    Env {
        catalog,
        locations: Locations::new(store.clone()),
        store,
        client,
        sim,
        dir,
    }
}

/// Polls `check` until it holds, failing after 30 s.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ready_web(client: &kube::Client, ns: &str) -> bool {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    matches!(api.get_opt("web").await, Ok(Some(d)) if d.status.as_ref().and_then(|s| s.ready_replicas) == Some(3))
}

async fn back_up(env: &Env, name: &str, namespaces: &[&str]) {
    let spec = BackupSpec {
        included_namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let (_, handle) = backup::start(
        &env.catalog,
        &env.locations,
        Some(&env.client),
        name,
        spec,
        None,
        "test",
    )
    .await
    .unwrap();
    let done = handle.await.unwrap();
    assert_eq!(done.phase.as_str(), "Completed", "{:?}", done.reason);
}

/// Starts a restore of `spec` into the cluster `client` reaches.
async fn start_restore(
    env: &Env,
    client: &kube::Client,
    name: &str,
    spec: RestoreSpec,
) -> tokio::task::JoinHandle<Result<restore::RestorePhase, lifeboat::catalog::CatalogError>> {
    let (_, handle) = restore::start(
        &env.catalog,
        &env.locations,
        Some(client),
        name,
        spec,
        "test",
    )
    .await
    .unwrap();
    handle
}

/// Restores into the test's own cluster; returns the phase and the plan with results.
async fn restore_with(env: &Env, name: &str, spec: RestoreSpec) -> (String, Value) {
    let phase = start_restore(env, &env.client, name, spec)
        .await
        .await
        .unwrap()
        .unwrap();
    let record = env.catalog.restore(name).await.unwrap();
    (
        phase.as_str().to_string(),
        serde_json::from_str(record.plan.as_deref().unwrap_or("null")).unwrap(),
    )
}

fn plan_item<'a>(plan: &'a Value, gr: &str, ns: Option<&str>, name: &str) -> &'a Value {
    plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["groupResource"] == gr && i["namespace"].as_str() == ns && i["name"] == name)
        .unwrap_or_else(|| panic!("{gr} {ns:?}/{name} not in the plan"))
}

async fn namespace_gone(client: &kube::Client, ns: &str) -> bool {
    let api: Api<Namespace> = Api::all(client.clone());
    matches!(api.get_opt(ns).await, Ok(None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_namespace_comes_back_exactly() {
    let env = env().await;
    until("the demo shop to be ready", || {
        ready_web(&env.client, "shop")
    })
    .await;
    back_up(&env, "before-disaster", &["shop"]).await;
    let (_, originals) = restore::engine::load(
        &env.store,
        "before-disaster",
        None,
        location_key(&env).await.as_ref(),
        None,
    )
    .await
    .unwrap();

    // Disaster.
    Api::<Namespace>::all(env.client.clone())
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    until("shop to be gone", || namespace_gone(&env.client, "shop")).await;

    let spec = RestoreSpec {
        backup_name: "before-disaster".into(),
        ..Default::default()
    };
    let (phase, plan) = restore_with(&env, "bring-back-shop", spec.clone()).await;
    assert_eq!(phase, "Completed", "{plan:#}");
    assert_eq!(
        plan_item(&plan, "deployments.apps", Some("shop"), "web")["result"],
        "created"
    );
    assert_eq!(
        plan_item(&plan, "namespaces", None, "shop")["result"],
        "created"
    );
    // Pods and ReplicaSets are left to their controllers.
    assert_eq!(plan["summary"]["results"]["failed"], Value::Null);

    // Every restored object matches the original, modulo what the cluster owns.
    let discovery = kube::Discovery::new(env.client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let mut compared = 0;
    for item in &originals {
        if items::excluded_reason(item, &spec, &Default::default()).is_some() {
            continue;
        }
        let (group, plural) = match item.group_resource.split_once('.') {
            Some((r, g)) => (g.to_string(), r.to_string()),
            None => (String::new(), item.group_resource.clone()),
        };
        let (ar, _) = discovery
            .groups()
            .filter(|g| g.name() == group)
            .flat_map(|g| g.recommended_resources())
            .find(|(ar, _)| ar.plural == plural)
            .unwrap();
        let api: Api<DynamicObject> = match &item.namespace {
            Some(ns) => Api::namespaced_with(env.client.clone(), ns, &ar),
            None => Api::all_with(env.client.clone(), &ar),
        };
        let live = serde_json::to_value(api.get(&item.name).await.unwrap()).unwrap();
        let wanted = items::rewrite(item, &spec, &Default::default(), "bring-back-shop");
        let mut diff = items::diff(&wanted, &live);
        // Allocated by the cluster: a new clusterIP, the default storage class on a PVC.
        diff.retain(|d| !d.starts_with("metadata.labels.lifeboat.io"));
        assert!(
            diff.is_empty(),
            "{} {:?}/{} differs: {diff:?}",
            item.group_resource,
            item.namespace,
            item.name
        );
        compared += 1;
    }
    assert!(compared >= 10, "compared only {compared} objects");
    // The controllers bring the pods back.
    until("web's pods to be ready again", || {
        ready_web(&env.client, "shop")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_restore_lands_next_to_the_original() {
    let env = env().await;
    back_up(&env, "shop-backup", &["shop"]).await;
    let spec = RestoreSpec {
        backup_name: "shop-backup".into(),
        namespace_mapping: [("shop".to_string(), "shop-copy".to_string())].into(),
        ..Default::default()
    };
    let (phase, plan) = restore_with(&env, "copy", spec).await;
    assert_eq!(phase, "Completed", "{plan:#}");
    let copy: Api<ConfigMap> = Api::namespaced(env.client.clone(), "shop-copy");
    let cm = copy.get("web-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["CURRENCY"], "EUR");
    assert_eq!(cm.metadata.labels.unwrap()["lifeboat.io/restore"], "copy");
    let original: Api<ConfigMap> = Api::namespaced(env.client.clone(), "shop");
    assert!(
        original.get("web-config").await.is_ok(),
        "the original is untouched"
    );
    let rb: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        Api::namespaced(env.client.clone(), "shop-copy");
    let subjects = rb.get("web-config-reader").await.unwrap().subjects.unwrap();
    assert_eq!(subjects[0].namespace.as_deref(), Some("shop-copy"));
    until("the copy's deployment to be ready", || {
        ready_web(&env.client, "shop-copy")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_objects_are_skipped_or_updated_by_policy_and_dry_runs_change_nothing() {
    let env = env().await;
    back_up(&env, "snap", &["shop"]).await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "shop");
    cms.patch(
        "web-config",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"CURRENCY": "USD"}})),
    )
    .await
    .unwrap();

    let dry = RestoreSpec {
        backup_name: "snap".into(),
        dry_run: true,
        ..Default::default()
    };
    let (phase, plan) = restore_with(&env, "plan-only", dry).await;
    assert_eq!(phase, "Planned");
    let line = plan_item(&plan, "configmaps", Some("shop"), "web-config");
    assert_eq!(line["action"], "conflict");
    assert_eq!(line["diff"], json!(["data.CURRENCY"]));
    assert_eq!(
        plan_item(&plan, "secrets", Some("shop"), "web-db-credentials")["action"],
        "skip"
    );

    let skip = RestoreSpec {
        backup_name: "snap".into(),
        ..Default::default()
    };
    let (phase, _) = restore_with(&env, "skip", skip).await;
    assert_eq!(phase, "Completed");
    assert_eq!(
        cms.get("web-config").await.unwrap().data.unwrap()["CURRENCY"],
        "USD",
        "skip leaves it"
    );

    let update = RestoreSpec {
        backup_name: "snap".into(),
        existing_resource_policy: ExistingResourcePolicy::Update,
        ..Default::default()
    };
    let (phase, plan) = restore_with(&env, "update", update).await;
    assert_eq!(phase, "Completed", "{plan:#}");
    assert_eq!(
        plan_item(&plan, "configmaps", Some("shop"), "web-config")["result"],
        "updated"
    );
    assert_eq!(
        cms.get("web-config").await.unwrap().data.unwrap()["CURRENCY"],
        "EUR",
        "update restores it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_are_restored_before_their_custom_resources() {
    let env = env().await;
    back_up(&env, "data-backup", &["data"]).await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(env.client.clone());
    crds.delete("databases.demo.lifeboat.io", &DeleteParams::default())
        .await
        .unwrap();
    Api::<Namespace>::all(env.client.clone())
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    until("data to be gone", || namespace_gone(&env.client, "data")).await;

    let (phase, plan) = restore_with(
        &env,
        "data-back",
        RestoreSpec {
            backup_name: "data-backup".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(phase, "Completed", "{plan:#}");
    assert_eq!(
        plan_item(
            &plan,
            "customresourcedefinitions.apiextensions.k8s.io",
            None,
            "databases.demo.lifeboat.io"
        )["result"],
        "created"
    );
    assert_eq!(
        plan_item(&plan, "databases.demo.lifeboat.io", Some("data"), "orders")["result"],
        "created"
    );
    let discovery = kube::Discovery::new(env.client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let (ar, _) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "demo.lifeboat.io",
            "v1",
            "Database",
        ))
        .unwrap();
    let dbs: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), "data", &ar);
    assert_eq!(
        dbs.get("orders").await.unwrap().data["spec"]["engine"],
        "postgres"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_archive_is_refused_before_anything_is_applied() {
    let env = env().await;
    back_up(&env, "damaged", &["ops"]).await;
    Api::<Namespace>::all(env.client.clone())
        .delete("ops", &DeleteParams::default())
        .await
        .unwrap();
    until("ops to be gone", || namespace_gone(&env.client, "ops")).await;
    // Same size, different bytes: only the checksum can tell.
    let key = lifeboat::archive::key("damaged", "resources.tar.zst");
    let mut bytes = lifeboat::storage::get_bytes(env.store.as_ref(), &key)
        .await
        .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    put_bytes(env.store.as_ref(), &key, bytes).await.unwrap();

    // Verify reads it back and says what is wrong, naming the object, and
    // records it on the backup.
    let report =
        lifeboat::backup::verify::verify(&env.catalog, &env.locations, "damaged", "test", None)
            .await
            .unwrap();
    assert!(!report.ok, "{report:?}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with("resources.tar.zst") && p.contains("checksum")),
        "{report:?}"
    );
    let record = env.catalog.backup("damaged").await.unwrap();
    assert_eq!(
        record.verified_at.as_deref(),
        Some(report.verified_at.as_str())
    );
    assert!(record.verification.unwrap().contains("resources.tar.zst"));

    let (phase, _) = restore_with(
        &env,
        "from-damaged",
        RestoreSpec {
            backup_name: "damaged".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(phase, "Failed");
    let reason = env
        .catalog
        .restore("from-damaged")
        .await
        .unwrap()
        .phase_reason
        .unwrap();
    assert!(
        reason.contains("resources.tar.zst") && reason.contains("checksum"),
        "{reason}"
    );
    assert!(
        namespace_gone(&env.client, "ops").await,
        "nothing was applied"
    );

    // The manifest is signed with the location's key: a manifest edited in
    // the bucket (here to vouch for the damaged archive), one swapped in
    // from another backup, or one whose signature was removed is refused,
    // naming what differs, before anything is read or applied.
    back_up(&env, "intact", &["shop"]).await;
    back_up(&env, "other", &["shop"]).await;
    let report =
        lifeboat::backup::verify::verify(&env.catalog, &env.locations, "intact", "test", None)
            .await
            .unwrap();
    assert!(report.ok, "{report:?}");
    assert!(
        report.checked.iter().any(|c| c.contains("signature valid"))
            && report.checked.iter().any(|c| c.contains("decrypted")),
        "{report:?}"
    );
    assert_eq!(
        env.catalog
            .backup("intact")
            .await
            .unwrap()
            .verification
            .as_deref(),
        Some("ok")
    );
    let manifest_key = |name: &str| lifeboat::archive::key(name, "manifest.json");
    let read = |key: String| {
        let store = env.store.clone();
        async move {
            lifeboat::storage::get_bytes(store.as_ref(), &key)
                .await
                .unwrap()
        }
    };
    let original = read(manifest_key("intact")).await;
    let mut edited: serde_json::Value = serde_json::from_slice(&original).unwrap();
    edited["items"] = json!(edited["items"].as_u64().unwrap() + 1);
    // A downgrade: the same manifest rewritten as format 2, which was never
    // signed, to slip past the signature check.
    let mut downgraded: serde_json::Value = serde_json::from_slice(&original).unwrap();
    downgraded["formatVersion"] = json!(2);
    downgraded.as_object_mut().unwrap().remove("encryption");
    let downgraded = serde_json::to_vec_pretty(&downgraded).unwrap();
    let other = read(manifest_key("other")).await;
    let signature_key = lifeboat::archive::key("intact", "manifest.sig");
    let signature = read(signature_key.clone()).await;
    for (case, manifest, keep_signature, why) in [
        (
            "edited",
            serde_json::to_vec_pretty(&edited).unwrap(),
            true,
            "manifest.json was changed in the bucket after Lifeboat wrote it (it does not match its signature)",
        ),
        (
            "swapped",
            other.clone(),
            true,
            "manifest.json was changed in the bucket after Lifeboat wrote it (it is the manifest of backup `other`)",
        ),
        (
            "downgraded",
            downgraded.clone(),
            true,
            "manifest.json was changed in the bucket after Lifeboat wrote it (it claims archive format 2 but the backup was written in format 3",
        ),
        (
            "unsigned",
            original.clone(),
            false,
            "manifest.sig was changed in the bucket after Lifeboat wrote it (the signature is missing)",
        ),
        (
            "downgraded-and-unsigned",
            downgraded.clone(),
            false,
            "manifest.json was changed in the bucket after Lifeboat wrote it (it claims archive format 2 but the backup was written in format 3",
        ),
    ] {
        put_bytes(env.store.as_ref(), &manifest_key("intact"), manifest)
            .await
            .unwrap();
        if !keep_signature {
            env.store.delete(&signature_key).await.unwrap();
        }
        let restore = format!("from-{case}");
        let (phase, _) = restore_with(
            &env,
            &restore,
            RestoreSpec {
                backup_name: "intact".into(),
                namespace_mapping: [("shop".to_string(), format!("shop-{case}"))].into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(phase, "Failed", "{case}");
        let reason = env
            .catalog
            .restore(&restore)
            .await
            .unwrap()
            .phase_reason
            .unwrap();
        assert!(reason.contains(why), "{case}: {reason}");
        let report =
            lifeboat::backup::verify::verify(&env.catalog, &env.locations, "intact", "test", None)
                .await
                .unwrap();
        assert!(
            !report.ok && report.problems.iter().any(|p| p.contains(why)),
            "{case}: {report:?}"
        );
        assert!(
            namespace_gone(&env.client, &format!("shop-{case}")).await,
            "{case}: something was applied"
        );
        put_bytes(env.store.as_ref(), &signature_key, signature.clone())
            .await
            .unwrap();
    }
    // An install that never saw the backup (a fresh catalog) still notices a
    // downgraded manifest while its signature is there.
    put_bytes(env.store.as_ref(), &manifest_key("intact"), downgraded)
        .await
        .unwrap();
    let refused = lifeboat::archive::verify_manifest(
        env.store.as_ref(),
        "intact",
        location_key(&env).await.as_ref(),
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("a signature sits beside it"), "{refused}");
    // Put back as written, it restores.
    put_bytes(env.store.as_ref(), &manifest_key("intact"), original)
        .await
        .unwrap();
    let (phase, _) = restore_with(
        &env,
        "from-intact",
        RestoreSpec {
            backup_name: "intact".into(),
            namespace_mapping: [("shop".to_string(), "shop-intact".to_string())].into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(phase, "Completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_forbids_a_kind_gets_everything_else() {
    // Back up from one cluster...
    let env = env().await;
    back_up(&env, "portable", &["shop"]).await;
    // ...restore into another that does not let Lifeboat create ConfigMaps.
    let (_other_sim, other) = lifeboat_e2e::kubesim(
        kubesim::Options {
            forbidden: vec!["configmaps".into()],
            ..Default::default()
        },
        false,
    )
    .await
    .unwrap();
    let handle = start_restore(
        &env,
        &other,
        "elsewhere",
        RestoreSpec {
            backup_name: "portable".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        handle.await.unwrap().unwrap(),
        restore::RestorePhase::PartiallyFailed
    );
    let record = env.catalog.restore("elsewhere").await.unwrap();
    let plan: Value = serde_json::from_str(record.plan.as_deref().unwrap()).unwrap();
    let cm = plan_item(&plan, "configmaps", Some("shop"), "web-config");
    assert_eq!(cm["result"], "failed");
    assert!(cm["message"].as_str().unwrap().contains("403"), "{cm}");
    assert_eq!(
        plan_item(&plan, "deployments.apps", Some("shop"), "web")["result"],
        "created"
    );
    let deploys: Api<Deployment> = Api::namespaced(other.clone(), "shop");
    assert!(deploys.get("web").await.is_ok());
}

/// Namespace `name` with `count` ConfigMaps (`cm-000`, …) in the source
/// cluster, backed up as backup `name`.
async fn back_up_config_maps(env: &Env, name: &str, count: usize) {
    let mut objects =
        vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})];
    objects.extend((0..count).map(|i| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": format!("cm-{i:03}"), "namespace": name}, "data": {"i": i.to_string()}})
    }));
    kubesim::seed::apply(&env.sim.store, objects).unwrap();
    back_up(env, name, &[name]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_restore_shows_each_items_result_as_it_lands() {
    let env = env().await;
    back_up_config_maps(&env, "bulk", 200).await;
    // A cluster whose API server answers writes 20 ms later, as a remote one would.
    let (_slow_sim, slow) = lifeboat_e2e::kubesim(
        kubesim::Options {
            write_latency: Duration::from_millis(20),
            ..Default::default()
        },
        false,
    )
    .await
    .unwrap();
    let handle = start_restore(
        &env,
        &slow,
        "bulk-elsewhere",
        RestoreSpec {
            backup_name: "bulk".into(),
            ..Default::default()
        },
    )
    .await;
    // Watch the catalog the way the API and the wizard read it.
    let mut midway = None;
    let mut last_done = 0;
    while !handle.is_finished() {
        let r = env.catalog.restore("bulk-elsewhere").await.unwrap();
        assert!(r.items_done >= last_done, "progress went backwards");
        last_done = r.items_done;
        if r.phase == "InProgress"
            && let Some(plan) = r.plan.as_deref()
        {
            let plan: Value = serde_json::from_str(plan).unwrap();
            let items = plan["items"].as_array().unwrap();
            // Created, or found made meanwhile (the namespace's `default`
            // ServiceAccount, which the controllers make): landed either way.
            let landed = items
                .iter()
                .filter(|i| {
                    i["action"] == "create"
                        && matches!(
                            i["result"].as_str(),
                            Some("created" | "updated" | "skipped")
                        )
                })
                .count() as i64;
            let waiting = items
                .iter()
                .filter(|i| i["action"] == "create" && i["result"].is_null())
                .count();
            assert_eq!(landed, r.items_done, "the count matches the items' results");
            if landed > 0 && waiting > 0 {
                midway = Some((landed, waiting));
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        handle.await.unwrap().unwrap(),
        restore::RestorePhase::Completed
    );
    let (landed, waiting) = midway.expect("some items had landed while others waited");
    assert!(landed >= 1 && waiting >= 1);
    let r = env.catalog.restore("bulk-elsewhere").await.unwrap();
    assert_eq!(Some(r.items_done), r.items_total);
    assert!(
        r.items_done >= 201,
        "the namespace and its 200 ConfigMaps: {}",
        r.items_done
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_api_server_is_not_flooded_and_every_item_lands() {
    let env = env().await;
    back_up_config_maps(&env, "busy", 240).await;
    // A remote API server whose writes' priority level has 4 seats and a
    // queue of 4: past that it answers 429 with `Retry-After: 1`, as APF does.
    let (busy_sim, busy) = lifeboat_e2e::kubesim(
        kubesim::Options {
            write_latency: Duration::from_millis(15),
            write_limit: Some(kubesim::flowcontrol::WriteLimit { seats: 4, queue: 4 }),
            ..Default::default()
        },
        false,
    )
    .await
    .unwrap();
    let before = lifeboat::cluster::pacing::totals();
    let handle = start_restore(
        &env,
        &busy,
        "busy-elsewhere",
        RestoreSpec {
            backup_name: "busy".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        handle.await.unwrap().unwrap(),
        restore::RestorePhase::Completed
    );
    let r = env.catalog.restore("busy-elsewhere").await.unwrap();
    assert_eq!(r.errors, 0);
    assert!(r.items_done >= 241, "{}", r.items_done);
    let level = busy_sim.writes.as_ref().unwrap();
    let after = lifeboat::cluster::pacing::totals();
    // The window starts above what the level takes, so the server pushes back…
    assert!(level.rejected() > 0, "no 429 was ever sent");
    // …and each 429 was waited out and sent again, none given up on.
    assert!(after.retries - before.retries >= level.rejected());
    assert_eq!(after.gave_up, before.gave_up);
    // The client backed off: far fewer rejections than writes.
    assert!(
        level.rejected() * 4 < level.served(),
        "{} rejected of {} served",
        level.rejected(),
        level.served()
    );
    let cms: Api<ConfigMap> = Api::namespaced(busy.clone(), "busy");
    let restored = cms.list(&Default::default()).await.unwrap().items;
    let restored = restored
        .iter()
        .filter(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("cm-"))
        })
        .count();
    assert_eq!(restored, 240);
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// What a user sees after a real disaster with objects made by `kubectl
/// apply`: everything comes back with kubectl's annotation and the Job's
/// `job-name` labels, kubectl applies the same files again without a
/// warning, and a plan of the same backup finds every object identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applied_objects_come_back_and_a_second_plan_finds_them_identical() {
    let env = env().await;
    let kc = env.dir.path().join("admin.kubeconfig");
    env.sim.write_kubeconfig(&kc).unwrap();
    let (crd, manifest) = (fixture("store-crd.yaml"), fixture("store.yaml"));
    lifeboat_e2e::kubectl(&kc, &["apply", "--validate=false", "-f", &crd]).unwrap();
    lifeboat_e2e::kubectl(&kc, &["apply", "--validate=false", "-f", &manifest]).unwrap();
    until("the store's StatefulSet to have its claim", || async {
        let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(env.client.clone(), "store");
        matches!(pvcs.get_opt("data-db-0").await, Ok(Some(_)))
    })
    .await;
    back_up(&env, "store-1", &["store"]).await;
    let (_, backed_up) = restore::engine::load(
        &env.store,
        "store-1",
        None,
        location_key(&env).await.as_ref(),
        None,
    )
    .await
    .unwrap();
    let api_deployment = backed_up
        .iter()
        .find(|i| i.group_resource == "deployments.apps" && i.name == "api")
        .expect("the Deployment is backed up");
    assert!(
        api_deployment.object["metadata"]["annotations"]
            ["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string(),
        "kubesim keeps what kubectl apply sent"
    );

    Api::<Namespace>::all(env.client.clone())
        .delete("store", &DeleteParams::default())
        .await
        .unwrap();
    until("store to be gone", || namespace_gone(&env.client, "store")).await;
    let (phase, plan) = restore_with(
        &env,
        "store-back",
        RestoreSpec {
            backup_name: "store-1".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(phase, "Completed", "{plan:#}");

    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "store");
    let live = deployments.get("api").await.unwrap();
    let annotations = live.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("kubectl.kubernetes.io/last-applied-configuration"),
        api_deployment.object["metadata"]["annotations"]
            ["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .map(str::to_string)
            .as_ref(),
        "restored as it was backed up"
    );
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(env.client.clone(), "store");
    let labels = jobs.get("migrate").await.unwrap().metadata.labels.unwrap();
    assert_eq!(labels.get("job-name").map(String::as_str), Some("migrate"));
    assert_eq!(
        labels
            .get("batch.kubernetes.io/job-name")
            .map(String::as_str),
        Some("migrate")
    );

    // The user's next `kubectl apply` works as before the disaster.
    let again =
        lifeboat_e2e::kubectl(&kc, &["apply", "--validate=false", "-f", &manifest]).unwrap();
    assert!(
        !again.contains("missing the kubectl.kubernetes.io/last-applied-configuration"),
        "{again}"
    );

    let (phase, plan) = restore_with(
        &env,
        "store-plan",
        RestoreSpec {
            backup_name: "store-1".into(),
            dry_run: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(phase, "Planned", "{plan:#}");
    let items = plan["items"].as_array().unwrap();
    let planned: Vec<&Value> = items.iter().filter(|i| i["action"] != "excluded").collect();
    assert!(
        planned.len() >= 20,
        "only {} items planned: {plan:#}",
        planned.len()
    );
    let not_identical: Vec<String> = planned
        .iter()
        .filter(|i| i["action"] != "skip" || i["reason"] != "exists and is identical")
        .map(|i| {
            format!(
                "{} {}/{}: {} {} {}",
                i["groupResource"], i["namespace"], i["name"], i["action"], i["reason"], i["diff"]
            )
        })
        .collect();
    assert!(
        not_identical.is_empty(),
        "after a restore, every object should be identical:\n{}",
        not_identical.join("\n")
    );
}

/// The ClusterRole shipped in docker/lifeboat.yaml restores a Role that
/// grants more than Lifeboat itself holds, and its binding. Without its
/// `escalate`/`bind` rule the API server refuses both, as kube-apiserver's
/// escalation prevention does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_cluster_role_restores_roles_that_grant_more_than_it_holds() {
    let env = env().await;
    kubesim::seed::apply(
        &env.sim.store,
        vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "pod-deleter", "namespace": "team"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "pod-deleter", "namespace": "team"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-deleter"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "team"}]}),
        ],
    )
    .unwrap();
    back_up(&env, "team-1", &["team"]).await;
    Api::<Namespace>::all(env.client.clone())
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    until("team to be gone", || namespace_gone(&env.client, "team")).await;

    // Lifeboat as installed: its namespace, ServiceAccount, ClusterRole and binding.
    let shipped: Vec<Value> = kubesim::seed::parse(include_str!("../../docker/lifeboat.yaml"))
        .unwrap()
        .into_iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("Namespace" | "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding")
            )
        })
        .collect();
    assert_eq!(shipped.len(), 4, "the manifest's identity and RBAC");
    let role = shipped
        .iter()
        .find(|o| o["kind"] == "ClusterRole")
        .unwrap()
        .clone();
    let mut without_escalate = role.clone();
    without_escalate["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| !r["verbs"].as_array().unwrap().contains(&json!("escalate")));
    assert_ne!(
        without_escalate, role,
        "the shipped role has an escalate rule"
    );
    let others: Vec<Value> = shipped
        .iter()
        .filter(|o| o["kind"] != "ClusterRole")
        .cloned()
        .collect();
    kubesim::seed::apply(&env.sim.store, [vec![without_escalate], others].concat()).unwrap();
    let token = env
        .sim
        .issue_token(kubesim::rbac::User::service_account("lifeboat", "lifeboat"));
    let as_lifeboat = lifeboat_e2e::kubesim_client_for(&env.sim, &token)
        .await
        .unwrap();
    let spec = RestoreSpec {
        backup_name: "team-1".into(),
        ..Default::default()
    };

    let phase = start_restore(&env, &as_lifeboat, "without-escalate", spec.clone())
        .await
        .await
        .unwrap()
        .unwrap();
    assert_eq!(phase.as_str(), "PartiallyFailed");
    let plan: Value = serde_json::from_str(
        env.catalog
            .restore("without-escalate")
            .await
            .unwrap()
            .plan
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    let refused = plan_item(
        &plan,
        "roles.rbac.authorization.k8s.io",
        Some("team"),
        "pod-deleter",
    );
    assert_eq!(refused["result"], "failed", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with("403")
            && message.contains("attempting to grant RBAC permissions not currently held")
            && message.contains(r#"Verbs:["get" "list" "delete"]"#),
        "{message}"
    );
    // Without `bind`, binding a role needs its rules, and it was not created.
    let binding = plan_item(
        &plan,
        "rolebindings.rbac.authorization.k8s.io",
        Some("team"),
        "pod-deleter",
    );
    assert_eq!(binding["result"], "failed", "{binding}");
    assert!(
        binding["message"].as_str().unwrap().starts_with("403"),
        "{binding}"
    );
    assert_eq!(
        plan_item(&plan, "namespaces", None, "team")["result"],
        "created",
        "what Lifeboat may create, it creates"
    );

    // As shipped.
    let roles: Api<DynamicObject> = Api::all_with(
        env.client.clone(),
        &kube::discovery::ApiResource::erase::<k8s_openapi::api::rbac::v1::ClusterRole>(&()),
    );
    roles
        .patch(
            "lifeboat",
            &PatchParams::default(),
            &Patch::Merge(json!({"rules": role["rules"]})),
        )
        .await
        .unwrap();
    let phase = start_restore(&env, &as_lifeboat, "as-shipped", spec)
        .await
        .await
        .unwrap()
        .unwrap();
    let record = env.catalog.restore("as-shipped").await.unwrap();
    assert_eq!(phase.as_str(), "Completed", "{:?}", record.plan);
    let live: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(env.client.clone(), "team");
    let rules = live.get("pod-deleter").await.unwrap().rules.unwrap();
    assert!(rules[0].verbs.contains(&"delete".to_string()));
}

/// What a server killed mid-restore leaves behind: a restore InProgress,
/// partly applied, whose runner no longer beats. At the next start it is
/// marked Failed with how far it got (a live replica's is left alone), its
/// backup can be deleted again, and running it again finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restore_is_failed_and_can_be_run_again() {
    use lifeboat::backup::{BackupError, Interrupted};
    let env = env().await;
    back_up(&env, "snap", &["shop"]).await;
    env.catalog
        .insert_restore("cut-short", "snap", &json!({"backupName": "snap"}))
        .await
        .unwrap();
    env.catalog
        .update_restore(
            "cut-short",
            restore::RestorePhase::InProgress,
            None,
            None,
            3,
            Some(11),
            0,
            0,
        )
        .await
        .unwrap();
    assert!(matches!(
        backup::delete(&env.catalog, &env.locations, "snap", "test").await,
        Err(BackupError::InUse { .. })
    ));
    // Its runner beat a moment ago: on a shared catalog another replica
    // leaves it alone.
    assert!(
        restore::fail_interrupted(&env.catalog, Interrupted::Stale)
            .await
            .unwrap()
            .is_empty()
    );
    // A start on SQLite (one replica) takes every running restore for dead.
    let failed = restore::fail_interrupted(&env.catalog, Interrupted::All)
        .await
        .unwrap();
    assert_eq!(failed, ["cut-short"]);
    let record = env.catalog.restore("cut-short").await.unwrap();
    assert_eq!(record.phase, "Failed");
    let reason = record.phase_reason.unwrap_or_default();
    assert!(
        reason.starts_with("interrupted") && reason.contains("3 of 11 items were applied"),
        "{reason}"
    );

    let (phase, plan) = restore_with(
        &env,
        "finish",
        RestoreSpec {
            backup_name: "snap".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(phase, "Completed", "{plan:#}");
    backup::delete(&env.catalog, &env.locations, "snap", "test")
        .await
        .expect("the backup is no longer held by a restore that will never end");
}

/// Into a cluster without the backup's StorageClass and registry: the plan
/// warns that the claim would stay Pending and names the mapping that helps;
/// with `storageClassMapping` and `imageMapping` the claim binds on the
/// class this cluster has and every container's image is rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_class_and_image_mappings_fit_a_backup_to_another_cluster() {
    let env = env().await;
    let post = |path: &'static str, body: Value| {
        let client = env.client.clone();
        async move {
            let request = axum::http::Request::post(path)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap())
                .unwrap();
            client.request::<Value>(request).await.unwrap();
        }
    };
    post("/apis/storage.k8s.io/v1/storageclasses",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
               "provisioner": "kubesim.io/hostpath", "reclaimPolicy": "Delete"})).await;
    post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy"}}),
    )
    .await;
    post("/api/v1/namespaces/legacy/persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
               "spec": {"storageClassName": "fast", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})).await;
    post("/apis/apps/v1/namespaces/legacy/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "legacy"}},
                        "template": {"metadata": {"labels": {"app": "legacy"}},
                                     "spec": {"initContainers": [{"name": "migrate", "image": "old.example/tools/migrate:1"}],
                                              "containers": [{"name": "app", "image": "old.example/shop/app:2"},
                                                             {"name": "proxy", "image": "quay.example/proxy:3"}]}}}})).await;
    back_up(&env, "legacy-1", &["legacy"]).await;
    // The target cluster has no `fast`.
    let classes: Api<DynamicObject> = Api::all_with(
        env.client.clone(),
        &kube::api::ApiResource::erase::<k8s_openapi::api::storage::v1::StorageClass>(&()),
    );
    classes
        .delete("fast", &DeleteParams::default())
        .await
        .unwrap();
    let base = RestoreSpec {
        backup_name: "legacy-1".into(),
        namespace_mapping: [("legacy".to_string(), "moved".to_string())].into(),
        include_cluster_resources: Some(false),
        ..Default::default()
    };

    // The plan warns, and says which mapping would help.
    let (phase, plan) = restore_with(
        &env,
        "look",
        RestoreSpec {
            dry_run: true,
            ..base.clone()
        },
    )
    .await;
    assert_eq!(phase, "Planned");
    let claim = plan_item(&plan, "persistentvolumeclaims", Some("moved"), "data");
    let warning = claim["warnings"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{claim}"));
    assert!(
        warning.contains("StorageClass `fast` does not exist")
            && warning.contains(r#"storageClassMapping {"fast": "standard"}"#),
        "{warning}"
    );

    // Invalid mappings are refused before anything.
    let refused = restore::start(
        &env.catalog,
        &env.locations,
        Some(&env.client),
        "bad",
        RestoreSpec {
            storage_class_mapping: [("fast".to_string(), "Not A Class".to_string())].into(),
            ..base.clone()
        },
        "test",
    )
    .await;
    assert!(
        matches!(&refused, Err(restore::StartError::Invalid(e)) if e.field == "storageClassMapping"),
        "{:?}",
        refused.map(|_| ())
    );

    // Mapped: no warning; the claim binds on `standard`; images rewritten.
    let (phase, plan) = restore_with(
        &env,
        "mapped",
        RestoreSpec {
            storage_class_mapping: [("fast".to_string(), "standard".to_string())].into(),
            image_mapping: [("old.example/".to_string(), "registry.local/".to_string())].into(),
            ..base.clone()
        },
    )
    .await;
    assert_eq!(phase, "Completed", "{plan:#}");
    let claim = plan_item(&plan, "persistentvolumeclaims", Some("moved"), "data");
    assert!(claim.get("warnings").is_none(), "{claim}");
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(env.client.clone(), "moved");
    until("the mapped claim binds", || async {
        claims.get("data").await.is_ok_and(|c| {
            c.status.and_then(|s| s.phase).as_deref() == Some("Bound")
                && c.spec.and_then(|s| s.storage_class_name).as_deref() == Some("standard")
        })
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "moved");
    let app = serde_json::to_value(deployments.get("app").await.unwrap()).unwrap();
    let pod = &app["spec"]["template"]["spec"];
    assert_eq!(
        pod["initContainers"][0]["image"],
        "registry.local/tools/migrate:1"
    );
    assert_eq!(pod["containers"][0]["image"], "registry.local/shop/app:2");
    assert_eq!(
        pod["containers"][1]["image"], "quay.example/proxy:3",
        "not in the mapping"
    );
}

/// One object out of a backup: `includedNames` restores exactly the named
/// ConfigMap (into a mapped namespace, which the restore makes), and
/// nothing else of `shop`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn included_names_restore_one_object_and_nothing_else() {
    let env = env().await;
    back_up(&env, "shop-1", &["shop"]).await;
    let (phase, plan) = restore_with(
        &env,
        "one",
        RestoreSpec {
            backup_name: "shop-1".into(),
            included_names: vec!["configmap/shop/web-config".into()],
            namespace_mapping: [("shop".to_string(), "surgery".to_string())].into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(phase, "Completed", "{plan:#}");
    let written: Vec<String> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["action"] != "excluded")
        .map(|i| {
            format!(
                "{}/{}",
                i["groupResource"].as_str().unwrap(),
                i["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(written, ["configmaps/web-config"], "{plan:#}");
    let web = plan_item(&plan, "deployments.apps", Some("surgery"), "web");
    assert_eq!(web["reason"], "not among includedNames");
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), "surgery");
    let restored = maps.get("web-config").await.unwrap();
    assert_eq!(
        restored
            .data
            .unwrap_or_default()
            .get("CURRENCY")
            .map(String::as_str),
        Some("EUR")
    );
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "surgery");
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
