//! Journeys that need no kubelet, run the same way against kubesim and a
//! genuine kube-apiserver 1.28.7 with its controller-manager
//! (`lifeboat_e2e::control_plane`, from `KUBEBUILDER_ASSETS`; skipped with a
//! line saying so when it is not set). Each journey is one function over
//! [`ApiServer`]; the test names end in the server they ran against. Where
//! the two differ, kube-apiserver is right and kubesim is fixed.
//!
//! Objects are made as users make them: `kubectl apply` of the store
//! fixture (18 kinds, a CRD and its custom resource), so the server defaults
//! them and records managedFields and kubectl's annotation.

use std::path::Path;
use std::time::{Duration, Instant};

use lifeboat_e2e::control_plane::{ControlPlane, Options};
use lifeboat_e2e::{ApiServer, kubectl, serve_lifeboat, with_token};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(90);

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// kubesim, with a kube-rs client through its kubeconfig.
async fn kubesim(options: kubesim::Options) -> (kubesim::Kubesim, kube::Client) {
    lifeboat_e2e::kubesim(options, false).await.unwrap()
}

/// The genuine control plane, or None (skipped, said on stderr).
async fn kube_apiserver(test: &str, options: Options) -> Option<(ControlPlane, kube::Client)> {
    lifeboat::install_crypto_provider();
    let plane = ControlPlane::start_or_skip(test, options).await.unwrap()?;
    let client = plane.client().await.unwrap();
    Some((plane, client))
}

/// The journey `$journey` as two tests, named for the server each runs on.
/// Each server's start options may follow (kubesim's, then the control plane's).
macro_rules! on_both_servers {
    ($journey:ident, $on_kubesim:ident, $on_kube_apiserver:ident) => {
        on_both_servers!(
            $journey,
            $on_kubesim,
            $on_kube_apiserver,
            kubesim::Options::default(),
            Options::default()
        );
    };
    ($journey:ident, $on_kubesim:ident, $on_kube_apiserver:ident, $sim:expr, $plane:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $on_kubesim() {
            let (sim, client) = kubesim($sim).await;
            $journey(&sim, client).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $on_kube_apiserver() {
            let Some((plane, client)) = kube_apiserver(stringify!($journey), $plane).await else {
                return;
            };
            $journey(&plane, client).await;
        }
    };
}

/// POSTs `body` to `url` as `who`; the status and the answer.
async fn post(who: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let r = who.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// GETs `url` as `who`: its JSON answer.
async fn get_json(who: &reqwest::Client, url: &str) -> Value {
    who.get(url).send().await.unwrap().json().await.unwrap()
}

/// Starts the backup `body` describes through the API of the Lifeboat at
/// `url` and waits for it to finish; its record.
async fn back_up(admin: &reqwest::Client, url: &str, body: Value) -> Value {
    let (status, answer) = post(admin, &format!("{url}/api/v1/backups"), body.clone()).await;
    assert_eq!(status, 202, "{answer}");
    finished(
        admin,
        &format!("{url}/api/v1/backups/{}", body["name"].as_str().unwrap()),
    )
    .await
}

/// GETs `url` as `who` until the backup or restore there has finished.
async fn finished(who: &reqwest::Client, url: &str) -> Value {
    let deadline = Instant::now() + WITHIN;
    loop {
        let v = get_json(who, url).await;
        if !matches!(v["phase"].as_str(), Some("New" | "InProgress") | None) {
            return v;
        }
        assert!(Instant::now() < deadline, "{url} did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Applies the store fixture with kubectl, as a user would, and waits for
/// what the controllers make of it (the StatefulSet's claim).
async fn apply_store(server: &impl ApiServer, kubeconfig: &Path, client: &kube::Client) {
    kubectl(kubeconfig, &["apply", "-f", &fixture("store-crd.yaml")]).unwrap();
    kubectl(
        kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/coupons.store.example.com",
        ],
    )
    .unwrap();
    kubectl(kubeconfig, &["apply", "-f", &fixture("store.yaml")])
        .unwrap_or_else(|e| panic!("{}: {e}", server.server_name()));
    let claims: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        kube::Api::namespaced(client.clone(), "store");
    let deadline = Instant::now() + WITHIN;
    while claims.get_opt("data-db-0").await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the StatefulSet's claim was never made"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A directory of the test's own, the admin's kubeconfig in it, and the
/// store fixture applied through it.
async fn with_the_store(
    server: &impl ApiServer,
    client: &kube::Client,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("admin.kubeconfig");
    server.kubeconfig_for(&kc, server.admin_token()).unwrap();
    apply_store(server, &kc, client).await;
    (dir, kc)
}

async fn delete_namespace(client: &kube::Client, name: &str) {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    namespaces.delete(name, &Default::default()).await.unwrap();
    let deadline = Instant::now() + WITHIN;
    while namespaces.get_opt(name).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "namespace {name} was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The plan's lines that are not `skip — exists and is identical`.
fn not_identical(plan: &Value) -> Vec<String> {
    plan["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["action"] != "excluded")
        .filter(|i| i["action"] != "skip" || i["reason"] != "exists and is identical")
        .map(|i| {
            format!(
                "{} {}/{}: {} {} {}",
                i["groupResource"], i["namespace"], i["name"], i["action"], i["reason"], i["diff"]
            )
        })
        .collect()
}

// ------------------------------------------------- kubectl-applied objects

/// Back up the kubectl-applied store, lose the namespace, restore it: every
/// object comes back as it was (kubectl's annotation included), kubectl
/// applies the same files again, and a second plan is all `skip`.
async fn a_lost_namespace_comes_back_exactly(server: &impl ApiServer, client: kube::Client) {
    let (dir, kc) = with_the_store(server, &client).await;
    // The namespace's `default` ServiceAccount pulls from a private registry.
    kubectl(
        &kc,
        &[
            "patch",
            "serviceaccount",
            "default",
            "-n",
            "store",
            "-p",
            r#"{"imagePullSecrets": [{"name": "regcred"}]}"#,
        ],
    )
    .unwrap();
    let (url, _state) = serve_lifeboat(client.clone(), server, dir.path())
        .await
        .unwrap();
    let admin = lifeboat_e2e::http(&url);
    let backup = back_up(
        &admin,
        &url,
        json!({"name": "store-1", "spec": {"includedNamespaces": ["store"]}}),
    )
    .await;
    assert_eq!(backup["phase"], "Completed", "{backup}");
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), "store");
    let before = deployments.get("api").await.unwrap();

    delete_namespace(&client, "store").await;
    let (status, body) = post(
        &admin,
        &format!("{url}/api/v1/restores"),
        json!({"name": "store-back", "spec": {"backupName": "store-1"}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let restored = finished(&admin, &format!("{url}/api/v1/restores/store-back")).await;
    assert_eq!(restored["phase"], "Completed", "{restored}");
    assert_eq!(
        restored["itemsDone"], restored["itemsTotal"],
        "every item landed: {restored}"
    );
    // The controllers remake `default` as soon as the namespace is back; the
    // backup's image pull secret is still on it.
    let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(client.clone(), "store");
    let default = accounts.get("default").await.unwrap();
    assert_eq!(
        default
            .image_pull_secrets
            .unwrap_or_default()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["regcred"],
        "on {}: {restored}",
        server.server_name()
    );
    let after = deployments.get("api").await.unwrap();
    let applied = |d: &k8s_openapi::api::apps::v1::Deployment| {
        d.metadata.annotations.as_ref().and_then(|a| {
            a.get("kubectl.kubernetes.io/last-applied-configuration")
                .cloned()
        })
    };
    assert!(applied(&before).is_some());
    assert_eq!(
        applied(&after),
        applied(&before),
        "kubectl's annotation is kept"
    );
    assert_eq!(
        after.spec, before.spec,
        "the Deployment's spec is as it was"
    );
    let coupons = kubectl(
        &kc,
        &[
            "get",
            "coupons.store.example.com",
            "-n",
            "store",
            "-o",
            "name",
        ],
    )
    .unwrap();
    assert!(!coupons.trim().is_empty(), "the custom resources are back");

    // The user's next `kubectl apply` works as before the disaster.
    let again = kubectl(&kc, &["apply", "-f", &fixture("store.yaml")]).unwrap();
    assert!(
        !again.contains("missing the kubectl.kubernetes.io/last-applied-configuration"),
        "{again}"
    );
    let (status, body) = post(
        &admin,
        &format!("{url}/api/v1/restores"),
        json!({"name": "store-plan", "spec": {"backupName": "store-1", "dryRun": true}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let plan = finished(&admin, &format!("{url}/api/v1/restores/store-plan")).await;
    assert_eq!(plan["phase"], "Planned", "{plan}");
    let planned = plan["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["action"] != "excluded")
        .count();
    assert!(planned >= 20, "only {planned} items planned: {plan}");
    let differ = not_identical(&plan);
    assert!(
        differ.is_empty(),
        "on {}, after a restore every object should be identical:\n{}",
        server.server_name(),
        differ.join("\n")
    );
}

on_both_servers!(
    a_lost_namespace_comes_back_exactly,
    a_lost_namespace_comes_back_exactly_on_kubesim,
    a_lost_namespace_comes_back_exactly_on_kube_apiserver
);

// ------------------------------------------------------ sign-in and RBAC

const RBAC: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: alice, namespace: store}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: store-admins, namespace: store}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: ServiceAccount, name: alice, namespace: store}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: everything, namespace: store}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: default, namespace: store}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: ops, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ops-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lifeboat-operator}
subjects: [{kind: ServiceAccount, name: ops, namespace: default}]
"#;

/// A token as `kubectl create token` makes it (TokenRequest).
fn token_of(kubeconfig: &Path, namespace: &str, account: &str) -> String {
    kubectl(kubeconfig, &["create", "token", account, "-n", namespace])
        .unwrap()
        .trim()
        .to_string()
}

/// Sign-in and permission-aware restores on the server's own RBAC:
/// - `kubectl create token` tokens are reviewed (TokenReview);
/// - a namespace admin holds `lifeboat-namespace-user` through the
///   aggregated `admin` (SubjectAccessReview) and sees that namespace only;
/// - their restore is impersonated: the RoleBinding to `cluster-admin` is
///   forbidden by the API server's escalation check before anything is
///   written, the real run is refused (422) without allowPartial, and with
///   it everything else comes back;
/// - an operator without Kubernetes rights is refused every write.
async fn restores_run_with_the_users_own_rights(server: &impl ApiServer, client: kube::Client) {
    let (dir, kc) = with_the_store(server, &client).await;
    let roles = dir.path().join("rbac.yaml");
    std::fs::write(
        &roles,
        format!(
            "{}\n---\n{RBAC}",
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/rbac.yaml")
            )
            .unwrap()
        ),
    )
    .unwrap();
    kubectl(&kc, &["apply", "-f", roles.to_str().unwrap()]).unwrap();
    let (url, _state) = serve_lifeboat(client.clone(), server, dir.path())
        .await
        .unwrap();
    let admin = lifeboat_e2e::http(&url);
    let alice = with_token(&token_of(&kc, "store", "alice"));
    let ops = with_token(&token_of(&kc, "default", "ops"));

    // Signed in with reviewed tokens; alice sees her namespace's backups only.
    let backup = back_up(
        &admin,
        &url,
        json!({"name": "store-1", "spec": {"includedNamespaces": ["store"]}}),
    )
    .await;
    assert_eq!(backup["phase"], "Completed", "{backup}");
    back_up(
        &admin,
        &url,
        json!({"name": "default-1", "spec": {"includedNamespaces": ["default"]}}),
    )
    .await;
    let seen = get_json(&alice, &format!("{url}/api/v1/backups")).await;
    let names: Vec<&str> = seen["items"]
        .as_array()
        .unwrap_or_else(|| panic!("alice may list her backups: {seen}"))
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["store-1"], "{seen}");
    let bad = with_token("not-a-token")
        .get(format!("{url}/api/v1/backups"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    // The binding and the ConfigMaps are lost.
    kubectl(&kc, &["delete", "rolebinding", "everything", "-n", "store"]).unwrap();
    kubectl(&kc, &["delete", "configmap", "api-config", "-n", "store"]).unwrap();
    let maps = || kubectl(&kc, &["get", "configmaps", "-n", "store", "-o", "name"]).unwrap();
    let lost = maps();

    // Alice's plan: the escalating binding is forbidden, in the API
    // server's words; what exists cluster-wide is skipped, never `create`.
    let restores = format!("{url}/api/v1/restores");
    let (status, body) = post(
        &alice,
        &restores,
        json!({"name": "alice-plan", "spec": {"backupName": "store-1", "dryRun": true}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let plan = finished(&alice, &format!("{restores}/alice-plan")).await;
    assert_eq!(plan["phase"], "Planned", "{plan}");
    let lines = plan["plan"]["items"].as_array().unwrap();
    let forbidden: Vec<(&str, &str)> = lines
        .iter()
        .filter(|i| i["action"] == "forbidden")
        .map(|i| {
            (
                i["groupResource"].as_str().unwrap(),
                i["name"].as_str().unwrap(),
            )
        })
        .collect();
    // The binding escalates; `admin` grants nothing on a custom resource
    // whose CRD aggregates no role to it.
    assert_eq!(
        forbidden,
        [
            ("rolebindings.rbac.authorization.k8s.io", "everything"),
            ("coupons.store.example.com", "winter")
        ],
        "on {}: {plan}",
        server.server_name()
    );
    let escalation = lines
        .iter()
        .find(|i| i["name"] == "everything")
        .and_then(|i| i["reason"].as_str())
        .unwrap();
    assert!(
        escalation.contains("is attempting to grant RBAC permissions not currently held"),
        "the API server's own words: {escalation}"
    );
    let namespace_line = lines
        .iter()
        .find(|i| i["groupResource"] == "namespaces" && i["name"] == "store")
        .expect("the plan has the Namespace");
    assert_eq!(namespace_line["action"], "skip", "{namespace_line}");

    // The real run is refused before anything is written.
    let (status, body) = post(
        &alice,
        &restores,
        json!({"name": "alice-run", "spec": {"backupName": "store-1"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(maps(), lost, "nothing was written");
    // With allowPartial, everything else comes back, the binding does not.
    let (status, body) = post(
        &alice,
        &restores,
        json!({"name": "alice-partial", "spec": {"backupName": "store-1", "allowPartial": true}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let partial = finished(&alice, &format!("{restores}/alice-partial")).await;
    assert_eq!(partial["phase"], "PartiallyFailed", "{partial}");
    assert!(
        partial["plan"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["result"] != "failed"),
        "{partial}"
    );
    assert!(
        maps().contains("configmap/api-config"),
        "the ConfigMap is back: {}",
        maps()
    );
    assert!(
        kubectl(&kc, &["get", "rolebinding", "everything", "-n", "store"]).is_err(),
        "the escalating binding was not written"
    );

    // An operator without Kubernetes rights: every write forbidden, named.
    let (status, body) = post(
        &ops,
        &restores,
        json!({"name": "ops-run", "spec": {"backupName": "store-1", "namespaceMapping": {"store": "store-copy"}}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let listed = body["forbidden"].as_array().unwrap();
    assert!(
        listed.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.contains("may not create configmaps in store-copy"))),
        "{body}"
    );
    assert!(
        kubectl(&kc, &["get", "namespace", "store-copy"]).is_err(),
        "the refused restore wrote nothing"
    );
}

on_both_servers!(
    restores_run_with_the_users_own_rights,
    restores_run_with_the_users_own_rights_on_kubesim,
    restores_run_with_the_users_own_rights_on_kube_apiserver
);

// ------------------------------------------------- the whole cluster

/// A backup of everything discovery finds, the kubectl-applied store and
/// its custom resource included: Completed with no warning, cluster-scoped
/// objects in it, and each Event taken once although the server serves
/// Events through both `v1` and `events.k8s.io`.
async fn the_whole_cluster_backs_up_without_warnings(
    server: &impl ApiServer,
    client: kube::Client,
) {
    let (dir, kc) = with_the_store(server, &client).await;
    // An Event made through `events.k8s.io`, as kube-rs's Recorder makes
    // them: both servers keep it as one object and serve it through `v1` too.
    kubectl(&kc, &["create", "configmap", "marker", "-n", "store"]).unwrap();
    let through_events_api: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(client.clone(), "store");
    through_events_api
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "marker-noticed"},
                "eventTime": "2026-12-07T10:00:00.000000Z",
                "reportingController": "lifeboat.io/tests",
                "reportingInstance": "tests-1",
                "action": "Marking",
                "reason": "Marked",
                "note": "a marker for the whole-cluster backup",
                "type": "Normal",
                "regarding": {"kind": "ConfigMap", "namespace": "store", "name": "marker", "apiVersion": "v1"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let through_v1: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(client.clone(), "store");
    let read = through_v1.get("marker-noticed").await.unwrap();
    assert_eq!(
        read.message.as_deref(),
        Some("a marker for the whole-cluster backup"),
        "on {}: the Event through v1",
        server.server_name()
    );
    let (url, _state) = serve_lifeboat(client.clone(), server, dir.path())
        .await
        .unwrap();
    let admin = lifeboat_e2e::http(&url);
    let backup = back_up(&admin, &url, json!({"name": "everything", "spec": {}})).await;
    let log = admin
        .get(format!("{url}/api/v1/backups/everything/log"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        (backup["phase"].as_str(), backup["warnings"].as_i64()),
        (Some("Completed"), Some(0)),
        "on {}: {backup}\n{log}",
        server.server_name()
    );
    let contents = get_json(&admin, &format!("{url}/api/v1/backups/everything/contents")).await;
    let resources = &contents["resources"];
    for (gr, ns, name) in [
        ("coupons.store.example.com", "store", "winter"),
        (
            "customresourcedefinitions.apiextensions.k8s.io",
            "(cluster)",
            "coupons.store.example.com",
        ),
        (
            "clusterroles.rbac.authorization.k8s.io",
            "(cluster)",
            "admin",
        ),
        ("namespaces", "(cluster)", "store"),
        ("deployments.apps", "store", "api"),
    ] {
        let names = resources[gr][ns].as_array();
        assert!(
            names.is_some_and(|n| n.iter().any(|n| n == name)),
            "{gr} {ns}/{name} is not in the backup: {}",
            resources[gr]
        );
    }
    let events: Vec<String> = ["events", "events.events.k8s.io"]
        .iter()
        .filter_map(|gr| resources[gr].as_object())
        .flat_map(|by_ns| {
            by_ns.iter().flat_map(|(ns, names)| {
                names
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |n| format!("{ns}/{}", n.as_str().unwrap_or_default()))
            })
        })
        .collect();
    assert!(
        events.iter().any(|e| e == "store/marker-noticed"),
        "the Event is backed up: {events:?}"
    );
    let mut once = events.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), events.len(), "an Event taken twice: {events:?}");
}

on_both_servers!(
    the_whole_cluster_backs_up_without_warnings,
    the_whole_cluster_backs_up_without_warnings_on_kubesim,
    the_whole_cluster_backs_up_without_warnings_on_kube_apiserver
);

// ------------------------------------------------- install and uninstall

/// `lifeboat install` / `uninstall` (the binary) through a kubeconfig, with
/// server-side apply: installing twice changes nothing the second time,
/// uninstalling keeps the namespace and the catalog's claim, and only
/// `--delete-data` removes them.
async fn install_and_uninstall_are_idempotent(server: &impl ApiServer, client: kube::Client) {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("admin.kubeconfig");
    server.kubeconfig_for(&kc, server.admin_token()).unwrap();
    let kubeconfig = kc.display().to_string();
    let lifeboat = |args: &[&str]| -> String {
        lifeboat_e2e::stdout_of(
            std::process::Command::new(lifeboat_e2e::lifeboat_bin().unwrap())
                .args(args)
                .args(["--kubeconfig", &kubeconfig, "--namespace", "lb"]),
        )
    };
    for _ in 0..2 {
        let out = lifeboat(&["install"]);
        assert!(out.contains("applied Deployment lifeboat"), "{out}");
    }
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), "lb");
    let installed = deployments.get("lifeboat").await.unwrap();
    assert_eq!(
        installed.spec.template.spec.unwrap().containers[0].image,
        Some(lifeboat::install::default_image())
    );
    let roles: kube::Api<ClusterRole> = kube::Api::all(client.clone());
    assert!(roles.get_opt("lifeboat-operator").await.unwrap().is_some());
    let claims: kube::Api<PersistentVolumeClaim> = kube::Api::namespaced(client.clone(), "lb");
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());

    let out = lifeboat(&["uninstall"]);
    assert!(
        out.contains("deleted Deployment lifeboat") && out.contains("kept namespace lb"),
        "{out}"
    );
    assert!(deployments.get_opt("lifeboat").await.unwrap().is_none());
    assert!(claims.get_opt("lifeboat-data").await.unwrap().is_some());
    assert!(roles.get_opt("lifeboat-operator").await.unwrap().is_none());

    // Again from the start, then everything, data included.
    lifeboat(&["install"]);
    let out = lifeboat(&["uninstall", "--delete-data"]);
    assert!(out.contains("deleted Deployment lifeboat"), "{out}");
    let deadline = Instant::now() + WITHIN;
    while namespaces.get_opt("lb").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "on {}: namespace lb was never deleted",
            server.server_name()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

on_both_servers!(
    install_and_uninstall_are_idempotent,
    install_and_uninstall_are_idempotent_on_kubesim,
    install_and_uninstall_are_idempotent_on_kube_apiserver
);

// ------------------------------------------------- the change journal

/// `lifeboat serve` (a process, data under `dir`) with the continuous
/// schedule `store-pit` of `store`, its journal current; and its environment,
/// to start it again.
async fn protecting_the_store(
    dir: &Path,
    kubeconfig: &Path,
) -> (lifeboat_e2e::LifeboatProcess, Vec<(&'static str, String)>) {
    let env = lifeboat_e2e::serve_env(dir, kubeconfig);
    let lifeboat = lifeboat_e2e::LifeboatProcess::start(dir, &env).unwrap();
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{}/api/v1/schedules", lifeboat.url),
        json!({"name": "store-pit", "schedule": "0 3 * * *", "continuous": true,
               "template": {"includedNamespaces": ["store"]}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    lifeboat_e2e::journal_current(&lifeboat.url, "store-pit")
        .await
        .unwrap();
    (lifeboat, env)
}

/// Continuous protection of `store` by `lifeboat serve` (a process): after
/// a SIGKILL, the journal resumes from the cursors in the bucket (the API
/// server replays what happened while it was down) with no gap and no second
/// list, and a point-in-time restore brings the ConfigMap and Secret made
/// while it was down into another namespace, without the one deleted then.
async fn the_journal_resumes_after_a_kill_and_restores_to_an_instant(
    server: &impl ApiServer,
    client: kube::Client,
) {
    let (dir, kc) = with_the_store(server, &client).await;
    let (mut lifeboat, env) = protecting_the_store(dir.path(), &kc).await;
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{}/api/v1/backups", lifeboat.url),
        json!({"fromSchedule": "store-pit", "name": "pit-base"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    lifeboat_e2e::poll_json(
        &format!("{}/api/v1/backups/pit-base", lifeboat.url),
        WITHIN,
        |b| b["phase"] == "Completed",
    )
    .await
    .unwrap();
    let timeline = |url: String, done: fn(&[Value]) -> bool| async move {
        lifeboat_e2e::poll_json(
            &format!("{url}/api/v1/namespaces/store/timeline?hours=1"),
            WITHIN,
            |t| t["changes"].as_array().is_some_and(|c| done(c)),
        )
        .await
        .unwrap()
    };
    let has =
        |c: &[Value], name: &str, op: &str| c.iter().any(|c| c["name"] == name && c["op"] == op);
    kubectl(
        &kc,
        &[
            "create",
            "configmap",
            "before-crash",
            "-n",
            "store",
            "--from-literal=v=1",
        ],
    )
    .unwrap();
    timeline(lifeboat.url.clone(), |c| {
        c.iter()
            .any(|c| c["name"] == "before-crash" && c["op"] == "added")
    })
    .await;

    lifeboat.kill();
    kubectl(
        &kc,
        &[
            "create",
            "configmap",
            "while-down",
            "-n",
            "store",
            "--from-literal=v=2",
        ],
    )
    .unwrap();
    kubectl(
        &kc,
        &[
            "create",
            "secret",
            "generic",
            "while-down-key",
            "-n",
            "store",
            "--from-literal=key=opensesame",
        ],
    )
    .unwrap();
    kubectl(&kc, &["delete", "configmap", "before-crash", "-n", "store"]).unwrap();
    let lifeboat = lifeboat_e2e::LifeboatProcess::start(dir.path(), &env).unwrap();
    let resumed = lifeboat_e2e::journal_current(&lifeboat.url, "store-pit")
        .await
        .unwrap();
    assert_eq!(
        resumed["journal"]["gaps"],
        0,
        "on {}: {resumed}",
        server.server_name()
    );
    let t = timeline(lifeboat.url.clone(), |c| {
        let has = |name: &str, op: &str| c.iter().any(|c| c["name"] == name && c["op"] == op);
        has("while-down", "added")
            && has("while-down-key", "added")
            && has("before-crash", "deleted")
    })
    .await;
    assert_eq!(t["gaps"], json!([]), "{t}");
    let changes = t["changes"].as_array().unwrap();
    assert!(has(changes, "before-crash", "deleted"));
    assert_eq!(
        changes.iter().filter(|c| c["name"] == "api-config").count(),
        1,
        "listed once: the journal resumed rather than started again: {t}"
    );

    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, created) = lifeboat_e2e::post_json(
        &format!("{}/api/v1/restores", lifeboat.url),
        json!({"name": "to-now", "spec": {"fromSchedule": "store-pit", "at": at,
                        "namespaceMapping": {"store": "store-after"}}}),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let done = lifeboat_e2e::poll_json(
        &format!("{}/api/v1/restores/to-now", lifeboat.url),
        WITHIN,
        |r| !matches!(r["phase"].as_str(), Some("New" | "InProgress")),
    )
    .await
    .unwrap();
    assert_eq!(
        done["phase"],
        "Completed",
        "on {}: {done}",
        server.server_name()
    );
    assert_eq!(done["plan"]["pointInTime"]["gaps"], json!([]), "{done}");
    let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "store-after");
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client, "store-after");
    assert!(maps.get_opt("while-down").await.unwrap().is_some());
    assert!(maps.get_opt("before-crash").await.unwrap().is_none());
    let key = secrets.get("while-down-key").await.unwrap();
    assert_eq!(
        key.data.unwrap()["key"].0,
        b"opensesame",
        "the Secret made while Lifeboat was down is restored as it was"
    );
}

on_both_servers!(
    the_journal_resumes_after_a_kill_and_restores_to_an_instant,
    the_journal_resumes_after_a_kill_and_restores_to_an_instant_on_kubesim,
    the_journal_resumes_after_a_kill_and_restores_to_an_instant_on_kube_apiserver
);

// ------------------------------------------- a cursor the server forgot

/// Lifeboat is down while the server forgets the journal's cursor (kubesim:
/// more changes than its watch history; kube-apiserver: etcd compacted
/// every 5 s, without the watch cache). After the restart the watch answers
/// 410 Gone: the journal records a gap and a re-list bridges it, so what was
/// made meanwhile is in the journal and the gap is shown, not hidden.
async fn a_forgotten_cursor_is_a_gap_bridged_by_a_relist(
    server: &impl ApiServer,
    client: kube::Client,
) {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    let (dir, kc) = with_the_store(server, &client).await;
    let (mut lifeboat, env) = protecting_the_store(dir.path(), &kc).await;
    kubectl(&kc, &["create", "configmap", "before-blind", "-n", "store"]).unwrap();
    lifeboat_e2e::poll_json(
        &format!("{}/api/v1/namespaces/store/timeline?hours=1", lifeboat.url),
        WITHIN,
        |t| {
            t["changes"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["name"] == "before-blind"))
        },
    )
    .await
    .unwrap();
    let maps: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "store");
    let cursor = maps
        .get("before-blind")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    lifeboat.kill();
    for i in 0..60 {
        kubectl(
            &kc,
            &[
                "annotate",
                "--overwrite",
                "configmap",
                "-n",
                "store",
                "api-config",
                &format!("churn={i}"),
            ],
        )
        .unwrap();
    }
    kubectl(
        &kc,
        &["create", "configmap", "made-while-blind", "-n", "store"],
    )
    .unwrap();
    // Until the server answers a watch from the cursor with 410 Gone.
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut stream = maps
            .watch(&kube::api::WatchParams::default().timeout(1), &cursor)
            .await
            .unwrap()
            .boxed();
        let first = tokio::time::timeout(Duration::from_secs(3), stream.next()).await;
        if let Ok(Some(Ok(kube::api::WatchEvent::Error(e)))) = &first
            && e.code == 410
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "on {}: the server still resumes from {cursor}: {first:?}",
            server.server_name()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let lifeboat = lifeboat_e2e::LifeboatProcess::start(dir.path(), &env).unwrap();
    // The journal, read back from the bucket: the re-list brought what was
    // made meanwhile, and the gap is there for a plan to show.
    let t = lifeboat_e2e::poll_json(
        &format!("{}/api/v1/namespaces/store/timeline?hours=1", lifeboat.url),
        WITHIN,
        |t| {
            t["changes"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["name"] == "made-while-blind"))
                && t["gaps"].as_array().is_some_and(|g| !g.is_empty())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("on {}: {e}", server.server_name()));
    // The schedule says so too: the writer counted the gap it wrote.
    let status = lifeboat_e2e::get(format!("{}/api/v1/schedules/store-pit", lifeboat.url))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        status["journal"]["gaps"].as_u64().is_some_and(|g| g > 0),
        "on {}: {status}",
        server.server_name()
    );
    assert!(
        t["gaps"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["groupResource"] == "configmaps")),
        "the timeline shows the gap: {t}"
    );
}

on_both_servers!(
    a_forgotten_cursor_is_a_gap_bridged_by_a_relist,
    a_forgotten_cursor_is_a_gap_bridged_by_a_relist_on_kubesim,
    a_forgotten_cursor_is_a_gap_bridged_by_a_relist_on_kube_apiserver,
    kubesim::Options {
        history: 40,
        ..Default::default()
    },
    Options {
        compaction_interval: Some(Duration::from_secs(5)),
        no_watch_cache: true,
        ..Default::default()
    }
);

// ------------------------------------------------- a restore killed midway

/// A restore of 1,500 ConfigMaps into another namespace, `lifeboat serve`
/// killed with SIGKILL while it runs (the server writes slowly: kubesim 20 ms
/// late, kube-apiserver two mutating requests at a time, answering 429 past
/// them): after the restart
/// the restore is Failed, saying what was applied and how to finish; its
/// backup can be deleted; and running it again finishes the namespace.
async fn a_restore_killed_midway_is_failed_and_can_be_finished(
    server: &impl ApiServer,
    client: kube::Client,
) {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("admin.kubeconfig");
    server.kubeconfig_for(&kc, server.admin_token()).unwrap();
    kube::Api::<Namespace>::all(client.clone())
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "bulk"}})).unwrap(),
        )
        .await
        .unwrap();
    let maps: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "bulk");
    futures::stream::iter(0..1500)
        .for_each_concurrent(16, |i| {
            let maps = maps.clone();
            async move {
                let map: ConfigMap = serde_json::from_value(
                    json!({"metadata": {"name": format!("map-{i:04}")}, "data": {"i": i.to_string()}}),
                )
                .unwrap();
                // A server that takes two writes at a time answers 429 to the rest.
                loop {
                    match maps.create(&Default::default(), &map).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(e)) if e.code == 429 => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        })
        .await;
    let env = lifeboat_e2e::serve_env(dir.path(), &kc);
    let mut lifeboat = lifeboat_e2e::LifeboatProcess::start(dir.path(), &env).unwrap();
    let admin = lifeboat_e2e::http(&lifeboat.url);
    let url = lifeboat.url.clone();
    let backup = back_up(
        &admin,
        &url,
        json!({"name": "bulk-1", "spec": {"includedNamespaces": ["bulk"]}}),
    )
    .await;
    assert_eq!(backup["phase"], "Completed", "{backup}");
    let restores = format!("{url}/api/v1/restores");
    let (status, body) = post(
        &admin,
        &restores,
        json!({"name": "bulk-copy", "spec": {"backupName": "bulk-1", "namespaceMapping": {"bulk": "bulk-copy"}}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    loop {
        let r = get_json(&admin, &format!("{restores}/bulk-copy")).await;
        if r["phase"] == "InProgress" {
            break;
        }
        assert!(
            matches!(r["phase"].as_str(), Some("New" | "InProgress")),
            "on {}: the restore ended before it could be killed: {r}",
            server.server_name()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lifeboat.kill();

    let lifeboat = lifeboat_e2e::LifeboatProcess::start(dir.path(), &env).unwrap();
    let admin = lifeboat_e2e::http(&lifeboat.url);
    let restores = format!("{}/api/v1/restores", lifeboat.url);
    let failed = get_json(&admin, &format!("{restores}/bulk-copy")).await;
    assert_eq!(failed["phase"], "Failed", "{failed}");
    let reason = failed["phaseReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("interrupted: the server stopped while this restore was running")
            && reason.contains("Run it again"),
        "{failed}"
    );
    // Run again: what the first run wrote is there and identical, the rest is created.
    let (status, body) = post(
        &admin,
        &restores,
        json!({"name": "bulk-copy-2", "spec": {"backupName": "bulk-1", "namespaceMapping": {"bulk": "bulk-copy"}}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let again = finished(&admin, &format!("{restores}/bulk-copy-2")).await;
    assert_eq!(again["phase"], "Completed", "{again}");
    // Every map of the backup is there, each once. `kube-root-ca.crt` is
    // the cluster's (kube-controller-manager publishes it, retrying when
    // the server answers 429 to it too): never restored, so not counted.
    let copies: kube::Api<ConfigMap> = kube::Api::namespaced(client, "bulk-copy");
    let restored: std::collections::BTreeSet<String> = copies
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .filter(|n| n != "kube-root-ca.crt")
        .collect();
    let missing: Vec<String> = (0..1500)
        .map(|i| format!("map-{i:04}"))
        .filter(|n| !restored.contains(n))
        .collect();
    assert!(missing.is_empty(), "not restored: {missing:?}");
    assert_eq!(restored.len(), 1500, "{restored:?}");
    // The backup the killed restore read can be deleted.
    let deleted = admin
        .delete(format!("{}/api/v1/backups/bulk-1", lifeboat.url))
        .send()
        .await
        .unwrap();
    assert!(
        deleted.status().is_success(),
        "{}",
        deleted.text().await.unwrap_or_default()
    );
    lifeboat_e2e::poll_json(&format!("{}/api/v1/backups", lifeboat.url), WITHIN, |b| {
        b["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|b| b["name"] != "bulk-1"))
    })
    .await
    .unwrap();
}

on_both_servers!(
    a_restore_killed_midway_is_failed_and_can_be_finished,
    a_restore_killed_midway_is_failed_and_can_be_finished_on_kubesim,
    a_restore_killed_midway_is_failed_and_can_be_finished_on_kube_apiserver,
    kubesim::Options {
        write_latency: Duration::from_millis(20),
        ..Default::default()
    },
    Options {
        max_mutating_inflight: Some(2),
        ..Default::default()
    }
);
