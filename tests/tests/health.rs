//! Cluster health end to end: Lifeboat's watchers and API in this process,
//! kubesim (controllers on, the demo seed) over HTTPS as a real API server.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use lifeboat_e2e::{SseStream, kubesim, poll_json, serve_lifeboat};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(30);

fn workload<'a>(ns: &'a Value, name: &str) -> Option<&'a Value> {
    ns["workloads"]
        .as_array()?
        .iter()
        .find(|w| w["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_deployment_moves_ready_counts_through_the_stream() {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let shop = format!("{url}/api/v1/namespaces/shop");
    poll_json(&shop, WITHIN, |ns| {
        workload(ns, "web").is_some_and(|w| w["ready"] == 3 && w["desired"] == 3)
    })
    .await
    .unwrap();

    let mut stream = SseStream::open(&format!("{url}/api/v1/stream"), None)
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    // The stream carries the Deployment's counts as they move: first 5 desired
    // with fewer ready, then (as the controllers start pods) 5 of 5.
    let mut seen = Vec::new();
    loop {
        let event = stream
            .next_matching(WITHIN, |e| {
                e.event == "change" && e.data.contains(r#""resource":"deployments.apps""#)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}; counts seen: {seen:?}"));
        let change: Value = serde_json::from_str(&event.data).unwrap();
        if change["name"] != "web" {
            continue;
        }
        let summary = &change["summary"];
        seen.push((summary["ready"].clone(), summary["desired"].clone()));
        if summary["desired"] == 5 && summary["ready"] == 5 {
            assert_eq!(summary["health"]["state"], "healthy", "{change}");
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|(ready, desired)| *desired == 5 && *ready != 5),
        "the stream never showed the rollout in progress: {seen:?}"
    );
    let ns: Value = lifeboat_e2e::get(&shop)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(workload(&ns, "web").unwrap()["ready"], 5, "{ns}");
    let web_pods = ns["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("web-"))
        .count();
    assert_eq!(web_pods, 5, "{ns}");

    // Scaling down shows too, and pods deleted arrive as `deleted` changes.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    stream
        .next_matching(WITHIN, |e| {
            e.data.contains(r#""resource":"pods""#) && e.data.contains(r#""change":"deleted""#)
        })
        .await
        .unwrap();
    poll_json(&shop, WITHIN, |ns| {
        workload(ns, "web").is_some_and(|w| w["ready"] == 1 && w["desired"] == 1)
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_pod_detail_show_what_is_wrong_without_secret_values() {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    // A crash-looping pod (kubesim's kubelet honours the annotation) degrades
    // `shop`, with the reason in words.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let crashing: Pod = serde_json::from_value(json!({
        "metadata": {"name": "worker", "annotations": {"kubesim.io/crash-loop": "true"}},
        "spec": {"containers": [{"name": "worker", "image": "shop/worker:1", "env": [
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-db-credentials", "key": "password"}}},
            {"name": "MODE", "value": "batch"}]}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &crashing)
        .await
        .unwrap();
    let ns = poll_json(&format!("{url}/api/v1/namespaces/shop"), WITHIN, |ns| {
        ns["health"]["reasons"]
            .to_string()
            .contains("container worker of pod worker: CrashLoopBackOff")
    })
    .await
    .unwrap();
    assert_ne!(ns["health"]["state"], "healthy", "{ns}");
    for section in [
        "services",
        "ingresses",
        "events",
        "cronJobs",
        "jobs",
        "persistentVolumeClaims",
    ] {
        assert!(ns[section].is_array(), "{section} missing: {ns}");
    }
    assert_eq!(ns["services"][0]["name"], "web", "{ns}");
    assert_eq!(ns["ingresses"][0]["rules"][0]["service"], "web", "{ns}");
    let ops: Value = poll_json(&format!("{url}/api/v1/namespaces/ops"), WITHIN, |ns| {
        ns["cronJobs"].as_array().is_some_and(|c| !c.is_empty())
    })
    .await
    .unwrap();
    assert_eq!(ops["cronJobs"][0]["name"], "nightly-report");

    let pod = poll_json(
        &format!("{url}/api/v1/namespaces/shop/pods/worker"),
        WITHIN,
        |p| p["containers"][0]["restarts"].as_u64().unwrap_or(0) >= 1,
    )
    .await
    .unwrap();
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "shop/worker:1");
    assert_eq!(container["state"]["reason"], "CrashLoopBackOff", "{pod}");
    assert_eq!(
        container["env"][0],
        json!({"name": "API_TOKEN", "from": {"secret": "web-db-credentials", "key": "password"}})
    );
    assert_eq!(
        container["env"][1],
        json!({"name": "MODE", "value": "batch"})
    );
    assert_eq!(pod["summary"]["health"]["state"], "failing", "{pod}");

    // A Deployment's pod names its Deployment through the ReplicaSet; the
    // Secret's value appears nowhere.
    let detail: Value = lifeboat_e2e::get(format!("{url}/api/v1/namespaces/shop"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let web_pod = detail["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap().starts_with("web-"))
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let web = lifeboat_e2e::get(format!("{url}/api/v1/namespaces/shop/pods/{web_pod}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let web: Value = serde_json::from_str(&web).unwrap();
    assert_eq!(web["owner"]["kind"], "Deployment", "{web}");
    assert_eq!(web["owner"]["name"], "web", "{web}");
    assert_eq!(
        web["containers"][0]["envFrom"][0]["configMap"],
        "web-config"
    );
    let secret_value = lifeboat_e2e::secret_value_of_demo(&client).await;
    for body in [web.to_string(), pod.to_string(), detail.to_string()] {
        assert!(
            !body.contains(&secret_value),
            "a Secret value leaked: {body}"
        );
    }

    let missing = lifeboat_e2e::get(format!("{url}/api/v1/namespaces/shop/pods/nope"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_service_account_sees_what_it_may() {
    let options = kubesim::Options {
        forbidden: vec!["events".into(), "ingresses.networking.k8s.io".into()],
        ..Default::default()
    };
    let (sim, client) = kubesim(options, true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let summary = poll_json(&format!("{url}/api/v1/cluster/summary"), WITHIN, |s| {
        s["watches"]["events"]["state"] == "not_permitted"
            && s["watches"]["ingresses.networking.k8s.io"]["state"] == "not_permitted"
            && s["watches"]["pods"]["state"] == "live"
    })
    .await
    .unwrap();
    assert!(
        summary["watches"]["events"]["reason"]
            .as_str()
            .unwrap()
            .contains("forbidden"),
        "{summary}"
    );
    // Everything else keeps working, and readiness is not lost over a choice of RBAC.
    let ready = poll_json(&format!("{url}/readyz"), WITHIN, |r| r["ready"] == true)
        .await
        .unwrap();
    let watches = ready["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "watches")
        .unwrap()
        .clone();
    assert!(
        watches["detail"]
            .as_str()
            .unwrap()
            .contains("not permitted to watch events, ingresses.networking.k8s.io"),
        "{watches}"
    );
    let shop = poll_json(&format!("{url}/api/v1/namespaces/shop"), WITHIN, |ns| {
        workload(ns, "web").is_some_and(|w| w["ready"] == 3)
    })
    .await
    .unwrap();
    assert_eq!(shop["ingresses"], json!([]), "{shop}");
    assert_eq!(shop["services"][0]["name"], "web");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_restarting_mid_watch_is_survived() {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let readyz = format!("{url}/readyz");
    poll_json(&readyz, WITHIN, |r| r["ready"] == true)
        .await
        .unwrap();
    let mut stream = SseStream::open(&format!("{url}/api/v1/stream"), None)
        .await
        .unwrap();

    // The API server goes away: the stream says "reconnecting", readiness drops.
    let (store, options) = sim.stop().await;
    stream
        .next_matching(WITHIN, |e| {
            e.data.contains(r#""resource":"watch""#)
                && e.data.contains(r#""change":"reconnecting""#)
        })
        .await
        .unwrap();
    let down = poll_json(&readyz, WITHIN, |r| r["ready"] == false)
        .await
        .unwrap();
    assert!(down.to_string().contains("reconnecting"), "{down}");

    // While it is down, the cluster changes (as etcd would under a restarting
    // apiserver); when it returns, the watches catch up by themselves.
    let namespaces = store.find("", "v1", "namespaces").unwrap();
    store
        .create(
            &namespaces,
            None,
            json!({"metadata": {"name": "late"}}),
            false,
        )
        .unwrap();
    let sim = kubesim::Kubesim::start_with_store(options, store)
        .await
        .unwrap();
    poll_json(&readyz, Duration::from_secs(60), |r| r["ready"] == true)
        .await
        .unwrap();
    stream
        .next_matching(WITHIN, |e| {
            e.data.contains(r#""resource":"watch""#) && e.data.contains(r#""change":"live""#)
        })
        .await
        .unwrap();
    poll_json(&format!("{url}/api/v1/namespaces/late"), WITHIN, |ns| {
        ns["name"] == "late"
    })
    .await
    .unwrap();
    // And live changes flow again.
    let deployments: Api<Deployment> = Api::namespaced(client, "shop");
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    stream
        .next_matching(WITHIN, |e| {
            e.data.contains(r#""resource":"deployments.apps""#) && e.data.contains(r#""desired":4"#)
        })
        .await
        .unwrap();
    drop(sim);
}

/// The cause groups of a verdict by their summary.
fn causes(verdict: &Value) -> Vec<(String, Option<String>)> {
    verdict["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            (
                g["summary"].as_str().unwrap_or_default().to_string(),
                g["explainedBy"].as_str().map(String::from),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verdict_groups_causes_and_stays_in_proportion() {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let summary = format!("{url}/api/v1/cluster/summary");
    // The demo's one crash loop: degraded, not failing, and its Deployment
    // is said to follow from it.
    let s = poll_json(&summary, WITHIN, |s| {
        causes(&s["verdict"])
            .iter()
            .any(|(c, by)| c == "1 Deployment: replicas unavailable" && by.is_some())
    })
    .await
    .unwrap();
    assert_eq!(s["health"]["state"], "degraded", "{s}");
    assert_eq!(s["verdict"]["headline"], "1 pod CrashLoopBackOff", "{s}");
    assert!(
        causes(&s["verdict"]).contains(&(
            "1 Deployment: replicas unavailable".into(),
            Some("1 pod CrashLoopBackOff".into())
        )),
        "{s}"
    );
    // The namespace page groups the same way.
    let shop = poll_json(&format!("{url}/api/v1/namespaces/shop"), WITHIN, |ns| {
        ns["verdict"]["headline"] == "1 pod CrashLoopBackOff"
    })
    .await
    .unwrap();
    assert_eq!(
        shop["verdict"]["groups"][0]["subjects"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Nodes that stop being Ready make the cluster fail, and say so first.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for node in ["node-a", "node-b"] {
        nodes
            .patch_status(
                node,
                &PatchParams::default(),
                &Patch::Strategic(json!({"status": {"conditions": [
                    {"type": "Ready", "status": "False", "reason": "KubeletStopped"}]}})),
            )
            .await
            .unwrap();
    }
    let s = poll_json(&summary, WITHIN, |s| s["health"]["state"] == "failing")
        .await
        .unwrap();
    assert!(
        s["verdict"]["headline"]
            .as_str()
            .unwrap()
            .starts_with("2 nodes NotReady"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_shows_its_rollout_history_pods_and_backups() {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let web = format!("{url}/api/v1/namespaces/shop/workloads/deployments/web");
    let w = poll_json(&web, WITHIN, |w| {
        w["pods"].as_array().is_some_and(|p| p.len() == 3)
            && w["rollout"]["revisions"]
                .as_array()
                .is_some_and(|r| r.len() == 1)
    })
    .await
    .unwrap();
    assert_eq!(w["rollout"]["revisions"][0]["revision"], 1, "{w}");
    assert_eq!(
        w["rollout"]["revisions"][0]["images"][0]["image"],
        "registry.example/shop/web:1.14.2"
    );
    assert_eq!(w["backups"], json!([]));
    // A new image is a new revision, on top; the old one stays in the history.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "registry.example/shop/web:1.15.0"}]}}}})),
        )
        .await
        .unwrap();
    let w = poll_json(&web, WITHIN, |w| {
        w["rollout"]["revisions"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
    })
    .await
    .unwrap();
    let revisions = w["rollout"]["revisions"].as_array().unwrap();
    assert_eq!(revisions[0]["revision"], 2, "{w}");
    assert_eq!(
        revisions[0]["images"][0]["image"],
        "registry.example/shop/web:1.15.0"
    );
    assert_eq!(
        revisions[1]["images"][0]["image"],
        "registry.example/shop/web:1.14.2"
    );
    // A StatefulSet's history is its ControllerRevisions.
    let db = poll_json(
        &format!("{url}/api/v1/namespaces/data/workloads/statefulsets/postgres"),
        WITHIN,
        |w| {
            w["rollout"]["revisions"]
                .as_array()
                .is_some_and(|r| r.len() == 1)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        db["rollout"]["revisions"][0]["images"][0]["image"],
        "registry.example/postgres:16"
    );
    // A backup of the namespace holds it.
    let http = lifeboat_e2e::http(&url);
    let r = http
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": "shop-1", "spec": {"includedNamespaces": ["shop"], "volumeData": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let w = poll_json(&web, WITHIN, |w| w["backups"][0]["name"] == "shop-1")
        .await
        .unwrap();
    assert_eq!(w["backups"][0]["phase"], "Completed", "{w}");
    let r = lifeboat_e2e::get(format!(
        "{url}/api/v1/namespaces/shop/workloads/cronjobs/web"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
}
