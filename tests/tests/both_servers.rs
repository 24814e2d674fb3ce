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
async fn kubesim() -> (kubesim::Kubesim, kube::Client) {
    lifeboat_e2e::kubesim(kubesim::Options::default(), false)
        .await
        .unwrap()
}

/// The genuine control plane, or None (skipped, said on stderr).
async fn kube_apiserver(test: &str) -> Option<(ControlPlane, kube::Client)> {
    lifeboat::install_crypto_provider();
    let plane = ControlPlane::start_or_skip(test, Options::default())
        .await
        .unwrap()?;
    let client = plane.client().await.unwrap();
    Some((plane, client))
}

/// POSTs `body` to `url` as `who`; the status and the answer.
async fn post(who: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let r = who.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// GETs `url` as `who` until the backup or restore there has finished.
async fn finished(who: &reqwest::Client, url: &str) -> Value {
    let deadline = Instant::now() + WITHIN;
    loop {
        let v: Value = who.get(url).send().await.unwrap().json().await.unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("admin.kubeconfig");
    server.kubeconfig_for(&kc, server.admin_token()).unwrap();
    apply_store(server, &kc, &client).await;
    let (url, _state) = serve_lifeboat(client.clone(), server, dir.path())
        .await
        .unwrap();
    let admin = lifeboat_e2e::http(&url);
    let (status, body) = post(
        &admin,
        &format!("{url}/api/v1/backups"),
        json!({"name": "store-1", "spec": {"includedNamespaces": ["store"]}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let backup = finished(&admin, &format!("{url}/api/v1/backups/store-1")).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_namespace_comes_back_exactly_on_kubesim() {
    let (sim, client) = kubesim().await;
    a_lost_namespace_comes_back_exactly(&sim, client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_namespace_comes_back_exactly_on_kube_apiserver() {
    let Some((plane, client)) = kube_apiserver("a_lost_namespace_comes_back_exactly").await else {
        return;
    };
    a_lost_namespace_comes_back_exactly(&plane, client).await;
}

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
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("admin.kubeconfig");
    server.kubeconfig_for(&kc, server.admin_token()).unwrap();
    apply_store(server, &kc, &client).await;
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
    let (status, body) = post(
        &admin,
        &format!("{url}/api/v1/backups"),
        json!({"name": "store-1", "spec": {"includedNamespaces": ["store"]}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let backup = finished(&admin, &format!("{url}/api/v1/backups/store-1")).await;
    assert_eq!(backup["phase"], "Completed", "{backup}");
    let (status, body) = post(
        &admin,
        &format!("{url}/api/v1/backups"),
        json!({"name": "default-1", "spec": {"includedNamespaces": ["default"]}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    finished(&admin, &format!("{url}/api/v1/backups/default-1")).await;
    let seen: Value = alice
        .get(format!("{url}/api/v1/backups"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_run_with_the_users_own_rights_on_kubesim() {
    let (sim, client) = kubesim().await;
    restores_run_with_the_users_own_rights(&sim, client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_run_with_the_users_own_rights_on_kube_apiserver() {
    let Some((plane, client)) = kube_apiserver("restores_run_with_the_users_own_rights").await
    else {
        return;
    };
    restores_run_with_the_users_own_rights(&plane, client).await;
}
