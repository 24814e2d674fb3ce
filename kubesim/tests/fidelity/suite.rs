//! The fidelity suite itself: kube-rs (as Lifeboat uses it) and kubectl (a
//! second, independent client) asserting kube-apiserver's behaviour. It is
//! compiled twice: as `on_kubesim` (`tests/fidelity.rs`, against a fresh
//! simulator) and as `on_kube_apiserver` (`tests/fidelity_kube_apiserver.rs`,
//! against the cluster LIFEBOAT_TEST_KUBECONFIG names), so each test's name
//! says which server it ran against. The few that need the simulator's own
//! controllers or settings say so and return early on the real server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::discovery::{ApiResource, Discovery};
use kube::{Client, Config};
use serde_json::json;

/// A cluster to test against: a fresh kubesim, or the one LIFEBOAT_TEST_KUBECONFIG names.
struct Target {
    client: Client,
    kubeconfig: PathBuf,
    sim: Option<kubesim::Kubesim>,
    _dir: tempfile::TempDir,
}

async fn target_with(options: kubesim::Options) -> Target {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, sim) = match super::REAL_SERVER.then(real_server_kubeconfig) {
        Some(path) => (path, None),
        None => {
            let sim = kubesim::Kubesim::start(options).await.unwrap();
            let path = dir.path().join("kubeconfig");
            sim.write_kubeconfig(&path).unwrap();
            (path, Some(sim))
        }
    };
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Target {
        client: Client::try_from(config).unwrap(),
        kubeconfig,
        sim,
        _dir: dir,
    }
}

/// The real server's kubeconfig: `with-control-plane` (or the person
/// running the suite against a cluster of theirs) names it.
fn real_server_kubeconfig() -> PathBuf {
    match std::env::var_os("LIFEBOAT_TEST_KUBECONFIG") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "the kube-apiserver suite needs LIFEBOAT_TEST_KUBECONFIG: run it as \
             `cargo run -p lifeboat-e2e --bin with-control-plane -- cargo test -p kubesim \
             --test fidelity_kube_apiserver` (see docs/TESTING.md)"
        ),
    }
}

async fn target() -> Target {
    target_with(kubesim::Options::default()).await
}

/// A namespace of this test's own.
async fn namespace(t: &Target, name: &str) -> String {
    let ns = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let api: Api<Namespace> = Api::all(t.client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
    )
    .await
    .unwrap();
    ns
}

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

/// The names of the ConfigMaps a test made: every namespace also holds the
/// cluster's `kube-root-ca.crt` (kube-controller-manager publishes it, and
/// so does kubesim), which is not the test's.
fn own(items: &[ConfigMap]) -> Vec<String> {
    items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .filter(|n| n != "kube-root-ca.crt")
        .collect()
}

fn code(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(s) => (s.code, s.reason),
        other => panic!("expected an API error, got {other}"),
    }
}

/// An API error's code and message.
fn status_message(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other}"),
    }
}

/// Waits, by watching, until `check` holds for the named object (or 20 s pass).
async fn eventually<K, F>(api: &Api<K>, name: &str, check: F) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    F: Fn(Option<&K>) -> bool,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let current = api.get_opt(name).await.unwrap();
        if check(current.as_ref()) {
            return current.unwrap_or_else(|| panic!("{name} is gone"));
        }
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(2);
        let rv = "0".to_string();
        let stream = api.watch(&params, &rv).await.unwrap();
        tokio::pin!(stream);
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.next()).await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {name}"
        );
    }
}

async fn eventually_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while api.get_opt(name).await.unwrap().is_some() {
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(2);
        let stream = api.watch(&params, "0").await.unwrap();
        tokio::pin!(stream);
        // Skip the synthetic ADDED, wait for the next change.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            stream.next().await;
            stream.next().await
        })
        .await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} was not deleted"
        );
    }
}

#[tokio::test]
async fn discovery_finds_every_builtin_group_both_ways() {
    let t = target().await;
    for aggregated in [true, false] {
        let discovery = if aggregated {
            Discovery::new(t.client.clone())
                .run_aggregated()
                .await
                .unwrap()
        } else {
            Discovery::new(t.client.clone()).run().await.unwrap()
        };
        for (group, kind) in [
            ("", "Pod"),
            ("", "PersistentVolume"),
            ("apps", "Deployment"),
            ("batch", "CronJob"),
            ("networking.k8s.io", "Ingress"),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            ("storage.k8s.io", "StorageClass"),
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ("coordination.k8s.io", "Lease"),
            ("policy", "PodDisruptionBudget"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("events.k8s.io", "Event"),
        ] {
            let found = discovery
                .groups()
                .filter(|g| g.name() == group)
                .flat_map(|g| g.recommended_resources())
                .any(|(ar, _)| ar.kind == kind);
            assert!(
                found,
                "{kind} in group {group:?} (aggregated: {aggregated})"
            );
        }
        let (pods, caps) = discovery
            .resolve_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Pod"))
            .unwrap();
        assert_eq!(pods.plural, "pods");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    }
    let version = t.client.apiserver_version().await.unwrap();
    assert!(!version.git_version.is_empty());
}

#[tokio::test]
async fn crud_errors_are_kubernetes_status_objects() {
    let t = target().await;
    let ns = namespace(&t, "crud").await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(
        code(
            api.create(&PostParams::default(), &cm("a", &[]))
                .await
                .unwrap_err()
        ),
        (409, "AlreadyExists".into())
    );
    assert_eq!(
        code(api.get("missing").await.unwrap_err()),
        (404, "NotFound".into())
    );
    assert_eq!(
        code(
            api.create(&PostParams::default(), &cm("Not_Valid", &[]))
                .await
                .unwrap_err()
        )
        .0,
        422
    );
    let elsewhere: Api<ConfigMap> = Api::namespaced(t.client.clone(), "no-such-namespace-here");
    assert_eq!(
        code(
            elsewhere
                .create(&PostParams::default(), &cm("a", &[]))
                .await
                .unwrap_err()
        )
        .0,
        404
    );

    // Optimistic concurrency: a stale resourceVersion is a 409 Conflict.
    let mut first = created.clone();
    first.data = Some(BTreeMap::from([("k".into(), "1".into())]));
    let updated = api
        .replace("a", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    let mut stale = created.clone();
    stale.data = Some(BTreeMap::from([("k".into(), "2".into())]));
    assert_eq!(
        code(
            api.replace("a", &PostParams::default(), &stale)
                .await
                .unwrap_err()
        ),
        (409, "Conflict".into())
    );

    // generateName.
    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let made = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // deletecollection with a label selector.
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &cm(&format!("del-{i}"), &[("batch", "x")]),
        )
        .await
        .unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("batch=x"),
    )
    .await
    .unwrap();
    let left = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        own(&left.items).len(),
        2,
        "only a and the generated one remain"
    );
}

#[tokio::test]
async fn a_wrong_token_is_401() {
    let t = target().await;
    let Some(sim) = &t.sim else { return }; // needs a token we control
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc");
    kubesim::tls::write_kubeconfig(&path, &sim.url, sim.ca_pem.as_deref(), "wrong").unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let client = Client::try_from(
        Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let api: Api<Namespace> = Api::all(client);
    assert_eq!(
        code(api.list(&ListParams::default()).await.unwrap_err()).0,
        401
    );
}

#[tokio::test]
async fn lists_paginate_over_a_consistent_snapshot_and_select() {
    let t = target().await;
    let ns = namespace(&t, "pages").await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), &ns);
    for i in 0..25 {
        let tier = if i % 5 == 0 { "gold" } else { "plain" };
        api.create(
            &PostParams::default(),
            &cm(&format!("cm-{i:02}"), &[("tier", tier)]),
        )
        .await
        .unwrap();
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(10);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.unwrap();
        pages += 1;
        names.extend(own(&page.items));
        if pages == 1 {
            // Writes during pagination do not show up in later pages.
            api.create(&PostParams::default(), &cm("cm-00a", &[]))
                .await
                .unwrap();
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(names, expected);
    let gold = api
        .list(&ListParams::default().labels("tier=gold"))
        .await
        .unwrap();
    assert_eq!(gold.items.len(), 5);
    let notin = api
        .list(&ListParams::default().labels("tier notin (gold),tier"))
        .await
        .unwrap();
    assert_eq!(notin.items.len(), 20);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=cm-07"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let all: Api<ConfigMap> = Api::all(t.client.clone());
    let in_ns = all
        .list(&ListParams::default().fields(&format!("metadata.namespace={ns}")))
        .await
        .unwrap();
    assert_eq!(own(&in_ns.items).len(), 26);
}

#[tokio::test]
async fn watches_stream_changes_resume_and_expire() {
    let t = target_with(kubesim::Options {
        history: 50,
        ..Default::default()
    })
    .await;
    let ns = namespace(&t, "watch").await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), &ns);
    let start = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    // Only this test's object: the namespace's `kube-root-ca.crt` may be
    // published while the watch runs, as on a real cluster.
    let params = WatchParams::default().fields("metadata.name=w").timeout(10);
    let stream = api.watch(&params, &start).await.unwrap();
    tokio::pin!(stream);
    api.create(&PostParams::default(), &cm("w", &[]))
        .await
        .unwrap();
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match stream
            .try_next()
            .await
            .unwrap()
            .expect("stream ended early")
        {
            WatchEvent::Added(c) => seen.push(("ADDED", c.metadata.resource_version.unwrap())),
            WatchEvent::Modified(c) => {
                seen.push(("MODIFIED", c.metadata.resource_version.unwrap()))
            }
            WatchEvent::Deleted(c) => seen.push(("DELETED", c.metadata.resource_version.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        seen.iter().map(|s| s.0).collect::<Vec<_>>(),
        ["ADDED", "MODIFIED", "DELETED"]
    );
    let rvs: Vec<u64> = seen.iter().map(|s| s.1.parse().unwrap()).collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");

    if t.sim.is_none() {
        eprintln!("skipped on kube-apiserver: the history length is the simulator's setting");
        return;
    }
    // Push the starting version out of the history: resuming from it is 410 Gone.
    for i in 0..60 {
        api.create(&PostParams::default(), &cm(&format!("fill-{i}"), &[]))
            .await
            .unwrap();
    }
    let stream = api
        .watch(&WatchParams::default().timeout(5), &start)
        .await
        .unwrap();
    tokio::pin!(stream);
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    // kube-runtime's watcher copes with that by listing again.
    let events: Vec<_> =
        kube_runtime::watcher(api.clone(), kube_runtime::watcher::Config::default())
            .take(3)
            .try_collect()
            .await
            .unwrap();
    assert!(!events.is_empty());
}

#[tokio::test]
async fn patch_types_and_server_side_apply() {
    let t = target().await;
    let ns = namespace(&t, "patch").await;
    let api: Api<Deployment> = Api::namespaced(t.client.clone(), &ns);
    let deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}},
    });
    // Apply creates; it needs a field manager.
    let pp = PatchParams::apply("fidelity");
    let applied = api
        .patch("d", &pp, &Patch::Apply(deploy.clone()))
        .await
        .unwrap();
    assert_eq!(applied.metadata.generation, Some(1));
    // Strategic merge: containers merge by name.
    let sm =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}});
    let patched = api
        .patch("d", &PatchParams::default(), &Patch::Strategic(sm))
        .await
        .unwrap();
    let images: Vec<String> = patched
        .spec
        .template
        .spec
        .unwrap()
        .containers
        .iter()
        .map(|c| c.image.clone().unwrap())
        .collect();
    assert_eq!(images, ["a:1", "b:2"]);
    assert_eq!(patched.metadata.generation, Some(2));
    // JSON patch.
    let jp: json_patch::Patch = serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 0}, {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}])).unwrap();
    let patched = api
        .patch("d", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["x"], "y");
    // Merge patch removing a label with null.
    let patched = api
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": null}}})),
        )
        .await
        .unwrap();
    assert!(patched.metadata.labels.unwrap_or_default().is_empty());
    // Apply again with force.
    let mut again = deploy.clone();
    again["spec"]["replicas"] = json!(0);
    again["metadata"]["annotations"] = json!({"applied": "twice"});
    let applied = api
        .patch(
            "d",
            &PatchParams::apply("fidelity").force(),
            &Patch::Apply(again),
        )
        .await
        .unwrap();
    assert_eq!(applied.metadata.annotations.unwrap()["applied"], "twice");
    // Status only changes through the status subresource.
    let with_status = api
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_ne!(with_status.status.and_then(|s| s.replicas), Some(7));
    let status = api
        .patch_status(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 99}})),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().observed_generation, Some(99));
}

#[tokio::test]
async fn finalizers_hold_deletion_and_namespaces_terminate() {
    let t = target().await;
    let ns = namespace(&t, "final").await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), &ns);
    let mut held = cm("held", &[]);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.create(&PostParams::default(), &cm("plain", &[]))
        .await
        .unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = api.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());

    let namespaces: Api<Namespace> = Api::all(t.client.clone());
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get(&ns).await.unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    // Nothing new may be created in a terminating namespace.
    assert_eq!(
        code(
            api.create(&PostParams::default(), &cm("late", &[]))
                .await
                .unwrap_err()
        )
        .0,
        403
    );
    eventually_gone(&api, "plain").await;
    assert!(
        namespaces.get_opt(&ns).await.unwrap().is_some(),
        "held back by the finalizer"
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually_gone(&namespaces, &ns).await;
}

#[tokio::test]
async fn crds_register_and_unregister_resources() {
    let t = target().await;
    let ns = namespace(&t, "crd").await;
    let group = format!(
        "g{}.fidelity.example",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let crds: Api<CustomResourceDefinition> = Api::all(t.client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    eventually(&crds, &format!("widgets.{group}"), |c| {
        c.and_then(|c| {
            c.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "Established")
                .map(|c| c.status == "True")
        })
        .unwrap_or(false)
    })
    .await;
    // kube-apiserver publishes a new group in its aggregated discovery a
    // moment after the CRD is Established: ask again until it is there.
    let gvk = kube::api::GroupVersionKind::gvk(&group, "v1", "Widget");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let ar = loop {
        let discovery = Discovery::new(t.client.clone())
            .run_aggregated()
            .await
            .unwrap();
        if let Some((ar, _)) = discovery.resolve_gvk(&gvk) {
            break ar;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{group} never became discoverable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), &ns, &ar);
    let mut obj = DynamicObject::new("w1", &ar).within(&ns);
    obj.data = json!({"spec": {"size": 3}});
    widgets.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(widgets.get("w1").await.unwrap().data["spec"]["size"], 3);

    crds.delete(&format!("widgets.{group}"), &DeleteParams::default())
        .await
        .unwrap();
    eventually_gone(&crds, &format!("widgets.{group}")).await;
    let ar = ApiResource { ..ar };
    let widgets: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), &ns, &ar);
    assert_eq!(code(widgets.get("w1").await.unwrap_err()).0, 404);
}

#[tokio::test]
async fn services_get_cluster_ips_that_cannot_be_taken_or_changed() {
    let t = target().await;
    let ns = namespace(&t, "svc").await;
    let api: Api<Service> = Api::namespaced(t.client.clone(), &ns);
    let svc = |name: &str, ip: Option<&str>| -> Service {
        let mut spec = json!({"ports": [{"port": 80}], "selector": {"app": name}});
        if let Some(ip) = ip {
            spec["clusterIP"] = json!(ip);
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    let a = api
        .create(&PostParams::default(), &svc("a", None))
        .await
        .unwrap();
    let ip = a.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    // Taking the same IP is refused.
    assert_eq!(
        code(
            api.create(&PostParams::default(), &svc("b", Some(&ip)))
                .await
                .unwrap_err()
        )
        .0,
        422
    );
    // Headless stays headless.
    let headless = api
        .create(&PostParams::default(), &svc("h", Some("None")))
        .await
        .unwrap();
    assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    // clusterIP is immutable.
    let err = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterIP": "10.96.200.200"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(code(err).0, 422);
    // Once released, an IP can be taken.
    api.delete("a", &DeleteParams::default()).await.unwrap();
    eventually_gone(&api, "a").await;
    api.create(&PostParams::default(), &svc("c", Some(&ip)))
        .await
        .unwrap();
}

#[tokio::test]
async fn garbage_collection_follows_owner_references() {
    let t = target().await;
    let ns = namespace(&t, "gc").await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), &ns);
    let owner = api
        .create(&PostParams::default(), &cm("owner", &[]))
        .await
        .unwrap();
    let owned_by =
        |uid: &str| json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]);
    let mut child = cm("child", &[]);
    child.metadata.owner_references =
        Some(serde_json::from_value(owned_by(owner.metadata.uid.as_deref().unwrap())).unwrap());
    api.create(&PostParams::default(), &child).await.unwrap();
    // An ownerReference to a uid that does not exist is collected.
    let mut stale = cm("stale", &[]);
    stale.metadata.owner_references =
        Some(serde_json::from_value(owned_by("00000000-0000-0000-0000-000000000000")).unwrap());
    api.create(&PostParams::default(), &stale).await.unwrap();
    eventually_gone(&api, "stale").await;
    assert!(
        api.get_opt("child").await.unwrap().is_some(),
        "its owner exists"
    );
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually_gone(&api, "child").await;
}

#[tokio::test]
async fn a_job_with_a_foreign_controller_uid_selector_is_refused() {
    let t = target().await;
    let ns = namespace(&t, "job").await;
    let api: Api<Job> = Api::namespaced(t.client.clone(), &ns);
    let foreign = "11111111-2222-3333-4444-555555555555";
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "restored"},
        "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": foreign}},
                 "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": foreign}},
                              "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .unwrap();
    assert_eq!(
        code(api.create(&PostParams::default(), &job).await.unwrap_err()).0,
        422
    );
    // Without the selector it is accepted and gets its own.
    let mut clean = job.clone();
    clean.spec.as_mut().unwrap().selector = None;
    clean.spec.as_mut().unwrap().template.metadata = None;
    let created = api.create(&PostParams::default(), &clean).await.unwrap();
    let uid = created.metadata.uid.unwrap();
    let labels = created
        .spec
        .unwrap()
        .selector
        .unwrap()
        .match_labels
        .unwrap();
    assert_eq!(labels.values().next(), Some(&uid));
}

#[tokio::test]
async fn controllers_run_workloads_and_bind_volumes() {
    let t = target().await;
    if t.sim.is_none() {
        eprintln!(
            "skipped on kube-apiserver: pods become ready only on the simulator's kubelet (no nodes run pods here)"
        );
        return;
    }
    let ns = namespace(&t, "ctl").await;
    let client = t.client.clone();
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("n-{ns}")}})).unwrap(),
        )
        .await
        .unwrap();
    let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client.clone());
    let _ = classes
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubesim.io/hostpath"})).unwrap())
        .await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "w"}]}}}
        })).unwrap())
        .await
        .unwrap();
    eventually(&deploys, "web", |d| {
        d.and_then(|d| d.status.as_ref()?.ready_replicas) == Some(3)
    })
    .await;
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    eventually(&deploys, "web", |d| {
        d.and_then(|d| d.status.as_ref()?.replicas) == Some(1)
    })
    .await;

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    pvcs.create(&PostParams::default(), &serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    })).unwrap())
    .await
    .unwrap();
    let bound = eventually(&pvcs, "data", |p| {
        p.and_then(|p| p.status.as_ref()?.phase.as_deref()) == Some("Bound")
    })
    .await;
    let pv_name = bound.spec.unwrap().volume_name.unwrap();
    let pvs: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(client.clone());
    let pv = pvs.get(&pv_name).await.unwrap();
    assert_eq!(
        pv.spec.unwrap().claim_ref.unwrap().name.as_deref(),
        Some("data")
    );
}

async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    run_kubectl("kubectl", kubeconfig, args).await
}

/// Runs one kubectl binary; panics with its output when it fails.
async fn run_kubectl(bin: &str, kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = try_kubectl(bin, kubeconfig, args).await;
    assert!(ok, "{bin} {args:?}: {stderr}{stdout}");
    stdout
}

/// Runs one kubectl binary: whether it succeeded, stdout, stderr.
async fn try_kubectl(
    bin: &str,
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> (bool, String, String) {
    let out = tokio::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{bin}: {e} (.ci/setup --tests installs kubectl)"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The kubectl binaries to test with: `KUBESIM_KUBECTLS` (paths separated
/// by `:`; `.ci/test` names Debian's 1.20 and PyPI's current one), or the
/// `kubectl` on PATH.
fn kubectls() -> Vec<String> {
    std::env::var("KUBESIM_KUBECTLS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(':').map(str::to_string).collect())
        .unwrap_or_else(|| vec!["kubectl".to_string()])
}

#[tokio::test]
async fn kubectl_is_a_second_client() {
    let t = target().await;
    if tokio::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .await
        .is_err()
    {
        panic!("kubectl is missing: install Debian's kubernetes-client (`.ci/setup --tests` does)");
    }
    let ns = namespace(&t, "kubectl").await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.yaml");
    std::fs::write(
        &manifest,
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-kubectl\n  namespace: {ns}\ndata:\n  a: \"1\"\n"),
    )
    .unwrap();
    let kc = t.kubeconfig.as_path();
    let file = manifest.to_str().unwrap();
    // No OpenAPI schemas are served, so client-side validation is off.
    kubectl(kc, &["apply", "--validate=false", "-f", file]).await;
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("\"1\"", "\"2\""),
    )
    .unwrap();
    kubectl(kc, &["apply", "--validate=false", "-f", file]).await;
    let got: serde_json::Value = serde_json::from_str(
        &kubectl(
            kc,
            &["get", "configmap", "from-kubectl", "-n", &ns, "-o", "json"],
        )
        .await,
    )
    .unwrap();
    assert_eq!(got["data"]["a"], "2");
    let resources = kubectl(kc, &["api-resources"]).await;
    for needle in [
        "deployments",
        "customresourcedefinitions",
        "horizontalpodautoscalers",
        "leases",
    ] {
        assert!(
            resources.contains(needle),
            "{needle} missing from api-resources:\n{resources}"
        );
    }
    // `wait` sees an object a finalizer holds, and times out on it.
    kubectl(
        kc,
        &[
            "patch",
            "configmap",
            "from-kubectl",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ],
    )
    .await;
    kubectl(kc, &["delete", "--wait=false", "-f", file]).await;
    let waited = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args([
            "wait",
            "--for=delete",
            "configmap/from-kubectl",
            "-n",
            &ns,
            "--timeout=2s",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        !waited.status.success(),
        "wait returned while the finalizer still held the object"
    );
    assert!(
        String::from_utf8_lossy(&waited.stderr).contains("timed out"),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), &ns);
    assert!(
        api.get("from-kubectl")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    api.patch(
        "from-kubectl",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let left = kubectl(
        kc,
        &[
            "get",
            "configmap",
            "from-kubectl",
            "-n",
            &ns,
            "--ignore-not-found",
            "-o",
            "name",
        ],
    )
    .await;
    assert!(left.trim().is_empty(), "{left}");
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), &ns);
    assert!(api.get_opt("from-kubectl").await.unwrap().is_none());

    // `kubectl scale` finds the scale subresource through discovery and sets
    // the replicas through it; kube-rs reads the same Scale.
    let deployment = dir.path().join("d.yaml");
    std::fs::write(
        &deployment,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: scaled\n  namespace: {ns}\n\
             spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: scaled\n  template:\n    \
             metadata:\n      labels:\n        app: scaled\n    spec:\n      containers:\n      \
             - name: web\n        image: nginx:1.27\n"
        ),
    )
    .unwrap();
    kubectl(
        kc,
        &[
            "apply",
            "--validate=false",
            "-f",
            deployment.to_str().unwrap(),
        ],
    )
    .await;
    kubectl(
        kc,
        &["scale", "deployment", "scaled", "--replicas=4", "-n", &ns],
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(t.client.clone(), &ns);
    let spec = deployments.get("scaled").await.unwrap().spec;
    assert_eq!(spec.replicas, Some(4));
    let scale = deployments.get_scale("scaled").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(4));
    assert_eq!(
        scale.status.unwrap().selector.as_deref(),
        Some("app=scaled")
    );
    let (code_, _) = code(
        deployments
            .patch_scale(
                "scaled",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": -1}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(code_, 422, "a negative count is invalid");
}

#[tokio::test]
async fn a_saved_cluster_survives_a_restart_and_restarts_keep_the_store() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("cluster.json");
    let options = kubesim::Options {
        persist: Some(save.clone()),
        ..Default::default()
    };
    let sim = kubesim::Kubesim::start(options.clone()).await.unwrap();
    let objects = kubesim::seed::parse(kubesim::seed::DEMO).unwrap();
    kubesim::seed::apply(&sim.store, objects).unwrap();
    let cms = sim.store.find("", "v1", "configmaps").unwrap();
    let before = sim.store.get(&cms, Some("shop"), "web-config").unwrap();
    // The save file is written shortly after changes: wait until it holds the seed.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let saved = std::fs::read_to_string(&save).unwrap_or_default();
        if saved.contains("web-config") && saved.contains("databases.demo.lifeboat.io") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster was not saved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(sim);
    let again = kubesim::Kubesim::start(options).await.unwrap();
    let after = again.store.get(&cms, Some("shop"), "web-config").unwrap();
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    let db = again
        .store
        .find("demo.lifeboat.io", "v1", "databases")
        .expect("the CRD came back");
    assert!(again.store.get(&db, Some("data"), "orders").is_ok());

    // stop() + start_with_store(): the "same" API server comes back on the same port.
    let (store, opts) = again.stop().await;
    let port = opts.port;
    let back = kubesim::Kubesim::start_with_store(opts, store)
        .await
        .unwrap();
    assert_eq!(back.addr.port(), port);
    assert!(back.store.get(&cms, Some("shop"), "web-config").is_ok());
}

/// What kube-apiserver and kube-controller-manager add to every cluster:
/// `kube-root-ca.crt` in each namespace, defaults on what clients leave
/// out, a Job's labels from its template, and `managedFields`.
#[tokio::test]
async fn namespaces_hold_the_ca_and_objects_come_back_defaulted() {
    let t = target().await;
    let ns = namespace(&t, "defaults").await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), &ns);
    let ca = eventually(&cms, "kube-root-ca.crt", |c| c.is_some()).await;
    assert!(
        ca.data.unwrap_or_default()["ca.crt"].starts_with("-----BEGIN CERTIFICATE-----"),
        "the cluster's CA bundle"
    );

    let deployments: Api<Deployment> = Api::namespaced(t.client.clone(), &ns);
    let created = deployments
        .create(
            &PostParams {
                field_manager: Some("fidelity".into()),
                ..Default::default()
            },
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                               "ports": [{"containerPort": 80}]}]}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let d = serde_json::to_value(&created).unwrap();
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    let pod = &d["spec"]["template"]["spec"];
    for (field, value) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
    ] {
        assert_eq!(pod[field], value, "{field}");
    }
    let c = &pod["containers"][0];
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    let managed = d["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        managed.iter().any(|m| m["manager"] == "fidelity"
            && m["operation"] == "Update"
            && m["fieldsType"] == "FieldsV1"
            && m["fieldsV1"]["f:spec"]["f:template"].is_object()),
        "{managed:?}"
    );

    let services: Api<Service> = Api::namespaced(t.client.clone(), &ns);
    let svc = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let s = serde_json::to_value(&svc).unwrap();
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["sessionAffinity"], "None");
    assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(s["spec"]["internalTrafficPolicy"], "Cluster");
    assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(s["spec"]["ports"][0]["protocol"], "TCP");

    let jobs: Api<Job> = Api::namespaced(t.client.clone(), &ns);
    let job = jobs
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "once"},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox:1.36"}]}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let labels = job.metadata.labels.unwrap_or_default();
    let uid = job.metadata.uid.unwrap();
    assert_eq!(labels.get("job-name").map(String::as_str), Some("once"));
    assert_eq!(
        labels
            .get("batch.kubernetes.io/job-name")
            .map(String::as_str),
        Some("once")
    );
    assert_eq!(labels.get("batch.kubernetes.io/controller-uid"), Some(&uid));
    assert_eq!(job.spec.unwrap().backoff_limit, Some(6));
}

/// RBAC as kube-apiserver enforces it for a ServiceAccount: requests its
/// roles do not allow get 403, and it can grant (in a Role) or bind only
/// what it holds itself, unless it has `escalate` or `bind`.
#[tokio::test]
async fn rbac_authorizes_service_accounts_and_prevents_escalation() {
    let t = target().await;
    let Some(sim) = &t.sim else {
        eprintln!("skipped on kube-apiserver: tokens are issued by the simulator here");
        return;
    };
    let ns = namespace(&t, "rbac").await;
    let token = sim.issue_token(kubesim::rbac::User::service_account(&ns, "robot"));
    let path = t._dir.path().join("robot.kubeconfig");
    sim.write_kubeconfig_for(&path, &token).unwrap();
    let config = Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&path).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let robot = Client::try_from(config).unwrap();
    let dyn_api = |client: &Client, kind: &str, plural: &str| -> Api<DynamicObject> {
        let ar = ApiResource {
            group: "rbac.authorization.k8s.io".into(),
            version: "v1".into(),
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        Api::namespaced_with(client.clone(), &ns, &ar)
    };
    let object = |v: serde_json::Value| -> DynamicObject { serde_json::from_value(v).unwrap() };
    let role = |name: &str, rules: serde_json::Value| {
        object(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                      "metadata": {"name": name}, "rules": rules}),
        )
    };
    let binding = |name: &str, role: &str| {
        object(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": ns}]}),
        )
    };
    let pods_as_robot: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(robot.clone(), &ns);
    let err = pods_as_robot
        .list(&ListParams::default())
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected a Status")
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert!(
        status.message.contains(&format!(
            "User \"system:serviceaccount:{ns}:robot\" cannot list resource \"pods\" in API group \"\" in the namespace \"{ns}\""
        )),
        "{}",
        status.message
    );

    // The admin lets the robot read pods and manage RBAC in its namespace.
    let (roles, bindings) = (
        dyn_api(&t.client, "Role", "roles"),
        dyn_api(&t.client, "RoleBinding", "rolebindings"),
    );
    let pp = PostParams::default();
    roles
        .create(&pp, &role("rbac-manager", json!([
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["get", "list", "create", "update", "patch"]}])))
        .await
        .unwrap();
    bindings
        .create(&pp, &binding("robot-manager", "rbac-manager"))
        .await
        .unwrap();
    assert!(pods_as_robot.list(&ListParams::default()).await.is_ok());

    let (robot_roles, robot_bindings) = (
        dyn_api(&robot, "Role", "roles"),
        dyn_api(&robot, "RoleBinding", "rolebindings"),
    );
    robot_roles
        .create(
            &pp,
            &role(
                "reader",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
            ),
        )
        .await
        .expect("granting what it holds is allowed");
    let refused = robot_roles
        .create(
            &pp,
            &role(
                "deleter",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]),
            ),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = refused else {
        panic!("expected a Status")
    };
    assert_eq!(status.code, 403);
    assert!(
        status
            .message
            .contains("is attempting to grant RBAC permissions not currently held")
            && status
                .message
                .contains(r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#),
        "{}",
        status.message
    );
    roles
        .create(
            &pp,
            &role(
                "deleter",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]),
            ),
        )
        .await
        .unwrap();
    let (code_, _) = code(
        robot_bindings
            .create(&pp, &binding("robot-deletes", "deleter"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code_, 403, "binding a role with more than it holds");

    // `escalate` and `bind` lift both checks.
    roles
        .create(&pp, &role("escalator", json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate", "bind"]}])))
        .await
        .unwrap();
    bindings
        .create(&pp, &binding("robot-escalates", "escalator"))
        .await
        .unwrap();
    robot_roles
        .create(
            &pp,
            &role(
                "deleter-2",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]),
            ),
        )
        .await
        .expect("escalate");
    robot_bindings
        .create(&pp, &binding("robot-deletes", "deleter"))
        .await
        .expect("bind");
}

/// The commands a newcomer types first, with every kubectl under test:
/// typed clients speak protobuf (answered in protobuf), `get` asks for the
/// server's Table (`-o wide` shows its priority columns), and `apply`
/// validates through the OpenAPI documents and server-side field
/// validation, as on a real cluster — no `--validate=false`.
#[tokio::test]
async fn imperative_kubectl_commands_work_with_old_and_current_kubectl() {
    let t = target().await;
    let kc = t.kubeconfig.clone();
    let mut spoke_protobuf = Vec::new();
    for bin in kubectls() {
        let bin = bin.as_str();
        let ns = format!(
            "imperative-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let (ok, out, log) = try_kubectl(bin, &kc, &["create", "namespace", &ns, "-v=8"]).await;
        assert!(
            ok && out.contains(&format!("namespace/{ns} created")),
            "{bin}: {out}{log}"
        );
        let sent_protobuf = log.contains("Content-Type: application/vnd.kubernetes.protobuf");
        if sent_protobuf {
            // The answer came back in the format asked for first.
            assert!(
                log.matches("Content-Type: application/vnd.kubernetes.protobuf")
                    .count()
                    >= 2,
                "{bin} sent protobuf and got another format back: {log}"
            );
            spoke_protobuf.push(bin.to_string());
        }
        let n = ns.as_str();
        run_kubectl(
            bin,
            &kc,
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=2",
                "-n",
                n,
            ],
        )
        .await;
        run_kubectl(
            bin,
            &kc,
            &[
                "create",
                "configmap",
                "settings",
                "--from-literal=mode=fast",
                "-n",
                n,
            ],
        )
        .await;
        run_kubectl(
            bin,
            &kc,
            &["scale", "deployment", "web", "--replicas=3", "-n", n],
        )
        .await;
        run_kubectl(
            bin,
            &kc,
            &["label", "configmap", "settings", "tier=gold", "-n", n],
        )
        .await;
        run_kubectl(
            bin,
            &kc,
            &["annotate", "configmap", "settings", "owner=team-a", "-n", n],
        )
        .await;

        let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), n);
        let settings = cms.get("settings").await.unwrap();
        assert_eq!(settings.data.unwrap()["mode"], "fast", "{bin}");
        assert_eq!(settings.metadata.labels.unwrap()["tier"], "gold", "{bin}");
        assert_eq!(
            settings.metadata.annotations.unwrap()["owner"],
            "team-a",
            "{bin}"
        );
        let deployments: Api<Deployment> = Api::namespaced(t.client.clone(), n);
        let web = deployments.get("web").await.unwrap();
        let spec = web.spec;
        assert_eq!(spec.replicas, Some(3), "{bin}");
        assert_eq!(
            spec.strategy.and_then(|s| s.type_).as_deref(),
            Some("RollingUpdate"),
            "{bin}: Go's empty strategy is defaulted"
        );

        // The server's Table: its columns, and the wide ones with -o wide.
        let table = run_kubectl(bin, &kc, &["get", "configmaps", "-n", n]).await;
        let header: Vec<&str> = table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(header, ["NAME", "DATA", "AGE"], "{bin}: {table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("settings ") && l.split_whitespace().nth(1) == Some("1")),
            "{table}"
        );
        let wide = run_kubectl(
            bin,
            &kc,
            &["get", "deployment", "web", "-n", n, "-o", "wide"],
        )
        .await;
        let header: Vec<&str> = wide
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            [
                "NAME",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ],
            "{bin}: {wide}"
        );
        assert!(
            wide.contains("nginx:1.27") && wide.contains("app=web"),
            "{wide}"
        );

        run_kubectl(bin, &kc, &["delete", "configmap", "settings", "-n", n]).await;
        assert!(cms.get_opt("settings").await.unwrap().is_none(), "{bin}");
        run_kubectl(bin, &kc, &["delete", "namespace", n, "--wait=false"]).await;
    }
    if std::env::var_os("KUBESIM_KUBECTLS").is_some() {
        assert!(
            !spoke_protobuf.is_empty(),
            "a current kubectl sends protobuf; none of {:?} did",
            kubectls()
        );
    }
}

/// `kubectl apply` as a newcomer runs it, with validation on: a good
/// manifest applies (and again unchanged), a misspelt field is refused
/// with its path, as kube-apiserver's strict field validation does.
#[tokio::test]
async fn kubectl_apply_validates_against_the_servers_schemas() {
    let t = target().await;
    let kc = t.kubeconfig.clone();
    // kubectl from 1.27 validates through OpenAPI v3; older ones read v2
    // in its protobuf form, which kubesim does not serve.
    let mut current = None;
    for bin in kubectls() {
        let version = run_kubectl(&bin, &kc, &["version", "--client", "-o", "json"]).await;
        let minor: u32 =
            serde_json::from_str::<serde_json::Value>(&version).unwrap()["clientVersion"]["minor"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('+')
                .parse()
                .unwrap_or(0);
        if minor >= 27 {
            current = Some(bin);
            break;
        }
    }
    let Some(bin) = current else {
        eprintln!("skipped: no kubectl of 1.27 or later is under test");
        return;
    };
    let ns = namespace(&t, "apply").await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: api, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: api}}}}\n  template:\n    metadata: {{labels: {{app: api}}}}\n    spec:\n      containers:\n        - name: api\n          image: registry.example/api:1.0\n          env: [{{name: MODE, valueFrom: {{configMapKeyRef: {{name: cfg, key: mode}}}}}}]\n"),
    )
    .unwrap();
    let file = good.to_str().unwrap();
    let out = run_kubectl(&bin, &kc, &["apply", "-f", file]).await;
    assert!(out.contains("deployment.apps/api created"), "{out}");
    let out = run_kubectl(&bin, &kc, &["apply", "-f", file]).await;
    assert!(out.contains("deployment.apps/api unchanged"), "{out}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: api, namespace: {ns}}}\nspec:\n  selector: {{app: api}}\n  ports: [{{port: 80, targetPrt: 8080}}]\n"),
    )
    .unwrap();
    let (ok, out, err) = try_kubectl(&bin, &kc, &["apply", "-f", bad.to_str().unwrap()]).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains(r#"unknown field "spec.ports[0].targetPrt""#),
        "{err}"
    );
    let services: Api<Service> = Api::namespaced(t.client.clone(), &ns);
    assert!(
        services.get_opt("api").await.unwrap().is_none(),
        "nothing was created"
    );
}

/// A client of the cluster with `token`, impersonating `as_user` (and its
/// groups) when given.
async fn client_for(t: &Target, token: &str, as_user: Option<(&str, &[&str])>) -> Client {
    let path = t._dir.path().join(format!(
        "{}.kubeconfig",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    t.sim
        .as_ref()
        .expect("a simulator")
        .write_kubeconfig_for(&path, token)
        .unwrap();
    let mut config = Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&path).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    if let Some((user, groups)) = as_user {
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn tokens_are_reviewed_and_die_with_their_service_account() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let t = target().await;
    let Some(sim) = &t.sim else {
        eprintln!("skipped on kube-apiserver: an expired token is made by the simulator");
        return;
    };
    let ns = namespace(&t, "tokens").await;
    let kc = t.kubeconfig.clone();
    // kubectl create token (kubectl 1.24+; the current kubectl is last in the list).
    let current = kubectls().pop().expect("a kubectl");
    run_kubectl(
        &current,
        &kc,
        &["create", "serviceaccount", "robot", "-n", &ns],
    )
    .await;
    let token = run_kubectl(&current, &kc, &["create", "token", "robot", "-n", &ns])
        .await
        .trim()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let for_lifeboat = run_kubectl(
        &current,
        &kc,
        &[
            "create",
            "token",
            "robot",
            "-n",
            &ns,
            "--audience",
            "lifeboat",
            "--duration",
            "20m",
        ],
    )
    .await
    .trim()
    .to_string();

    let reviews: Api<TokenReview> = Api::all(t.client.clone());
    let review = |token: &str, audiences: &[&str]| {
        let reviews = reviews.clone();
        let body: TokenReview = serde_json::from_value(json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token, "audiences": audiences}}))
        .unwrap();
        async move {
            let answer = reviews.create(&PostParams::default(), &body).await.unwrap();
            serde_json::to_value(answer.status.unwrap_or_default()).unwrap()
        }
    };
    let status = review(&token, &[]).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["username"],
        format!("system:serviceaccount:{ns}:robot")
    );
    let groups = status["user"]["groups"].as_array().unwrap();
    assert!(
        groups.contains(&json!(format!("system:serviceaccounts:{ns}"))),
        "{status}"
    );
    assert!(
        !status["user"]["uid"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{status}"
    );
    // A token for the API server is not one for Lifeboat, and the other way round.
    let status = review(&token, &["lifeboat"]).await;
    assert_ne!(status["authenticated"], true, "{status}");
    assert!(
        status["error"].as_str().unwrap().contains("audiences"),
        "{status}"
    );
    let status = review(&for_lifeboat, &["lifeboat"]).await;
    assert_eq!(
        (status["authenticated"].clone(), status["audiences"].clone()),
        (json!(true), json!(["lifeboat"])),
        "{status}"
    );
    assert_ne!(review(&for_lifeboat, &[]).await["authenticated"], true);

    // The token authenticates requests: RBAC then answers, not 401.
    let robot = client_for(&t, &token, None).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(robot.clone(), &ns);
    assert_eq!(
        code(pods.list(&ListParams::default()).await.unwrap_err()).0,
        403
    );

    // TokenRequest through kube-rs: the minimum lifetime is ten minutes.
    let sas: Api<ServiceAccount> = Api::namespaced(t.client.clone(), &ns);
    let short: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 60}}))
            .unwrap();
    let err = sas
        .create_token_request("robot", &PostParams::default(), &short)
        .await
        .unwrap_err();
    assert_eq!(code(err).0, 422);
    let err = sas
        .create_token_request("nobody", &PostParams::default(), &TokenRequest::default())
        .await
        .unwrap_err();
    assert_eq!(code(err).0, 404);

    // Deleting the ServiceAccount revokes its tokens.
    sas.delete("robot", &DeleteParams::default()).await.unwrap();
    let status = review(&token, &[]).await;
    assert_ne!(status["authenticated"], true, "{status}");
    assert!(
        status["error"].as_str().unwrap().contains("not found"),
        "{status}"
    );
    assert_eq!(
        code(pods.list(&ListParams::default()).await.unwrap_err()).0,
        401
    );

    // An expired token is refused too.
    let expired = sim.issue_credential(kubesim::authn::Credential {
        expires: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        ..kubesim::authn::Credential::fixed(kubesim::rbac::User::service_account(&ns, "old"))
    });
    let status = review(&expired, &[]).await;
    assert!(
        status["error"].as_str().unwrap().contains("expired"),
        "{status}"
    );
}

#[tokio::test]
async fn access_reviews_aggregation_and_impersonation_follow_rbac() {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let t = target().await;
    if t.sim.is_none() {
        eprintln!("skipped on kube-apiserver: it needs a token without impersonate");
        return;
    }
    let ns = namespace(&t, "reviews").await;
    let kc = t.kubeconfig.clone();
    let object = |v: serde_json::Value| -> DynamicObject { serde_json::from_value(v).unwrap() };
    let rbac = |kind: &str, plural: &str, namespaced: Option<&str>| -> Api<DynamicObject> {
        let ar = ApiResource {
            group: "rbac.authorization.k8s.io".into(),
            version: "v1".into(),
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        match namespaced {
            Some(ns) => Api::namespaced_with(t.client.clone(), ns, &ar),
            None => Api::all_with(t.client.clone(), &ar),
        }
    };
    let pp = PostParams::default();
    // A role aggregated into the built-in `admin`, as an add-on ships one.
    let addon = format!("widgets-admin-{ns}");
    rbac("ClusterRole", "clusterroles", None)
        .create(&pp, &object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": addon, "labels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["create", "get"]}]})))
        .await
        .unwrap();
    let admin = eventually(
        &rbac("ClusterRole", "clusterroles", None),
        "admin",
        |role: Option<&DynamicObject>| {
            let Some(role) = role else { return false };
            role.data["rules"].as_array().is_some_and(|rules| {
                rules
                    .iter()
                    .any(|r| r["apiGroups"] == json!(["example.com"]))
            })
        },
    )
    .await;
    // `admin` also holds what `edit` and `view` aggregate.
    let rules = admin.data["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| {
        r["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("rolebindings"))
    }));
    assert!(rules.iter().any(|r| {
        r["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("deployments"))
    }));

    rbac("RoleBinding", "rolebindings", Some(&ns))
        .create(&pp, &object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "alice-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]})))
        .await
        .unwrap();

    let reviews: Api<SubjectAccessReview> = Api::all(t.client.clone());
    let may =
        |user: &str, groups: &[&str], verb: &str, group: &str, resource: &str, namespace: &str| {
            let reviews = reviews.clone();
            let body: SubjectAccessReview = serde_json::from_value(json!({
            "spec": {"user": user, "groups": groups, "resourceAttributes": {
                "verb": verb, "group": group, "resource": resource, "namespace": namespace}}}))
            .unwrap();
            async move {
                let status = reviews
                    .create(&PostParams::default(), &body)
                    .await
                    .unwrap()
                    .status
                    .unwrap();
                (status.allowed, status.reason.unwrap_or_default())
            }
        };
    let (allowed, reason) = may("alice", &[], "create", "example.com", "widgets", &ns).await;
    assert!(allowed, "{reason}");
    assert!(reason.contains("RoleBinding \"alice-admin\""), "{reason}");
    assert!(
        !may("alice", &[], "create", "example.com", "widgets", "default")
            .await
            .0
    );
    assert!(!may("bob", &[], "get", "", "pods", &ns).await.0);
    // Groups count: system:masters may do anything.
    assert!(
        may("bob", &["system:masters"], "delete", "", "nodes", "")
            .await
            .0
    );
    // A review needs a user or a group.
    let empty: SubjectAccessReview = serde_json::from_value(
        json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}),
    )
    .unwrap();
    assert_eq!(code(reviews.create(&pp, &empty).await.unwrap_err()).0, 422);

    // kubectl auth can-i impersonates and asks with a SelfSubjectAccessReview.
    for bin in kubectls() {
        let (yes, out, err) = try_kubectl(
            &bin,
            &kc,
            &[
                "auth",
                "can-i",
                "create",
                "deployments.apps",
                "-n",
                &ns,
                "--as",
                "alice",
            ],
        )
        .await;
        assert!(yes && out.trim() == "yes", "{bin}: {out}{err}");
        let (yes, out, _) = try_kubectl(
            &bin,
            &kc,
            &[
                "auth",
                "can-i",
                "create",
                "deployments.apps",
                "-n",
                "default",
                "--as",
                "alice",
            ],
        )
        .await;
        assert!(!yes && out.trim() == "no", "{bin}: {out}");
    }

    // Impersonation is itself authorized: a ServiceAccount needs `impersonate`.
    let sim = t.sim.as_ref().unwrap();
    let token = sim.issue_token(kubesim::rbac::User::service_account(&ns, "lifeboat"));
    let configmaps =
        |client: Client, namespace: &str| -> Api<ConfigMap> { Api::namespaced(client, namespace) };
    let as_alice = client_for(&t, &token, Some(("alice", &[]))).await;
    let (status, message) = status_message(
        configmaps(as_alice.clone(), &ns)
            .create(&pp, &cm("one", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 403);
    assert!(
        message.contains(&format!(
            "User \"system:serviceaccount:{ns}:lifeboat\" cannot impersonate resource \"users\""
        )),
        "{message}"
    );
    rbac("ClusterRole", "clusterroles", None)
        .create(&pp, &object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": format!("impersonator-{ns}")},
            "rules": [{"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]}]})))
        .await
        .unwrap();
    rbac("ClusterRoleBinding", "clusterrolebindings", None)
        .create(&pp, &object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("impersonator-{ns}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("impersonator-{ns}")},
            "subjects": [{"kind": "ServiceAccount", "name": "lifeboat", "namespace": ns}]})))
        .await
        .unwrap();
    // Now the request is alice's: allowed where she is admin, refused elsewhere in her name.
    configmaps(as_alice.clone(), &ns)
        .create(&pp, &cm("one", &[]))
        .await
        .unwrap();
    let (status, message) = status_message(
        configmaps(as_alice, "default")
            .create(&pp, &cm("one", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 403);
    assert!(
        message.contains("User \"alice\" cannot create resource \"configmaps\""),
        "{message}"
    );
    // A group granted cluster-wide through impersonated groups.
    let as_group = client_for(&t, &token, Some(("carol", &["system:masters"]))).await;
    configmaps(as_group, "default")
        .create(&pp, &cm(&format!("by-carol-{ns}"), &[]))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secrets_string_data_is_folded_into_data_on_every_write() {
    use k8s_openapi::api::core::v1::Secret;
    let t = target().await;
    let ns = namespace(&t, "string-data").await;
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), &ns);
    let value =
        |s: &Secret, k: &str| String::from_utf8(s.data.as_ref().unwrap()[k].0.clone()).unwrap();
    let created: Secret = serde_json::from_value(json!({
        "metadata": {"name": "token"}, "stringData": {"token": "one"}}))
    .unwrap();
    let created = secrets
        .create(&PostParams::default(), &created)
        .await
        .unwrap();
    assert_eq!(value(&created, "token"), "one");
    assert!(created.string_data.is_none());
    // A merge patch (what kubectl apply sends for a Secret's change).
    let patched = secrets
        .patch(
            "token",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"token": "two", "extra": "x"}})),
        )
        .await
        .unwrap();
    assert_eq!(value(&patched, "token"), "two");
    assert_eq!(value(&patched, "extra"), "x");
    assert!(patched.string_data.is_none());
    // A replace.
    let mut replaced = secrets.get("token").await.unwrap();
    replaced.string_data = Some(BTreeMap::from([("token".to_string(), "three".to_string())]));
    let replaced = secrets
        .replace("token", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(value(&replaced, "token"), "three");
    assert!(secrets.get("token").await.unwrap().string_data.is_none());
}

/// One Event, two APIs: kube-apiserver keeps `events.k8s.io/v1` Events in
/// core `v1` Events' storage. What is made, changed or deleted through one
/// is read and watched through the other, each in its own shape.
#[tokio::test]
async fn an_event_is_one_object_through_both_event_apis() {
    type CoreEvent = k8s_openapi::api::core::v1::Event;
    type NewEvent = k8s_openapi::api::events::v1::Event;
    let t = target().await;
    let ns = namespace(&t, "events").await;
    let core: Api<CoreEvent> = Api::namespaced(t.client.clone(), &ns);
    let new: Api<NewEvent> = Api::namespaced(t.client.clone(), &ns);
    let start = core
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let params = WatchParams::default()
        .fields("metadata.name=noticed")
        .timeout(10);
    let stream = core.watch(&params, &start).await.unwrap();
    tokio::pin!(stream);

    // Made through events.k8s.io, as kube-rs's Recorder makes them.
    let made = new
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "noticed"},
                "eventTime": "2026-12-07T10:00:00.000000Z",
                "reportingController": "lifeboat.io/tests",
                "reportingInstance": "tests-1",
                "action": "Noticing",
                "reason": "Noticed",
                "type": "Normal",
                "note": "the store was noticed",
                "regarding": {"kind": "ConfigMap", "namespace": ns, "name": "store", "apiVersion": "v1"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(made.note.as_deref(), Some("the store was noticed"));

    // Watched and read through v1, in v1's shape.
    let added = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a watch event in time")
        .expect("the watch goes on")
        .unwrap();
    match added {
        WatchEvent::Added(e) => assert_eq!(e.message.as_deref(), Some("the store was noticed")),
        other => panic!("expected ADDED, got {other:?}"),
    }
    let read = core.get("noticed").await.unwrap();
    assert_eq!(read.message.as_deref(), Some("the store was noticed"));
    assert_eq!(read.involved_object.name.as_deref(), Some("store"));
    assert_eq!(
        read.reporting_component.as_deref(),
        Some("lifeboat.io/tests")
    );
    assert_eq!(read.action.as_deref(), Some("Noticing"));
    assert_eq!(
        read.metadata.resource_version, made.metadata.resource_version,
        "the same object, not a copy"
    );

    // Changed through v1, read through events.k8s.io.
    core.patch(
        "noticed",
        &PatchParams::default(),
        &Patch::Merge(json!({"message": "noticed again"})),
    )
    .await
    .unwrap();
    let changed = new.get("noticed").await.unwrap();
    assert_eq!(changed.note.as_deref(), Some("noticed again"));
    assert_eq!(
        changed.regarding.and_then(|r| r.name).as_deref(),
        Some("store")
    );

    // Made through v1, listed through events.k8s.io.
    core.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "old-style"},
            "reason": "Marked",
            "message": "made the old way",
            "type": "Normal",
            "source": {"component": "tests"},
            "involvedObject": {"kind": "ConfigMap", "namespace": ns, "name": "store", "apiVersion": "v1"}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let listed = new.list(&ListParams::default()).await.unwrap();
    let old_style = listed
        .items
        .iter()
        .find(|e| e.metadata.name.as_deref() == Some("old-style"))
        .expect("the v1 Event is listed through events.k8s.io");
    assert_eq!(old_style.note.as_deref(), Some("made the old way"));
    assert_eq!(
        old_style
            .deprecated_source
            .as_ref()
            .and_then(|s| s.component.as_deref()),
        Some("tests")
    );

    // Deleted through events.k8s.io: gone from v1.
    new.delete("noticed", &DeleteParams::default())
        .await
        .unwrap();
    assert!(core.get_opt("noticed").await.unwrap().is_none());
}
