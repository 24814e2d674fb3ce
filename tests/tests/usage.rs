//! CPU and memory from `metrics.k8s.io`, which kubesim serves as
//! metrics-server does (in discovery, NodeMetrics and PodMetrics computed
//! from the running pods): a pod's containers against their requests and
//! limits, a node's allocatable, requested and used, the history kept; and
//! a cluster without the metrics API gets the explanation, not an error.

use lifeboat_e2e::{kubesim, running_pods, serve_lifeboat};
use serde_json::Value;

const MIB: u64 = 1024 * 1024;

/// The first pod in `shop` named `prefix…` once it runs.
async fn running_pod(url: &str, prefix: &str) -> String {
    running_pods(url, "shop", prefix, 1)
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_shown_against_requests_and_limits_per_pod_and_node() {
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let pod = running_pod(&url, "recommendations-").await;
    // Every web replica runs too, so their requests count on their nodes.
    running_pods(&url, "shop", "web-", 3).await.unwrap();
    let usage = &state.health.as_ref().unwrap().usage;
    // Two readings now (the poller takes one every 30 s).
    usage.poll(&client).await;
    usage.poll(&client).await;

    let p: Value = lifeboat_e2e::get(format!("{url}/api/v1/namespaces/shop/pods/{pod}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let u = &p["usage"];
    assert_eq!(u["availability"]["state"], "served", "{u}");
    // Ours, and any the poller took at start.
    assert!(u["history"].as_array().unwrap().len() >= 2, "{u}");
    let c = &u["containers"][0];
    assert_eq!(c["name"], "recommender");
    assert_eq!(c["requests"]["cpuMillicores"], 50);
    assert_eq!(c["requests"]["memoryBytes"], 128 * MIB);
    assert_eq!(c["limits"]["memoryBytes"], 256 * MIB);
    let used = c["memoryBytes"].as_u64().unwrap();
    assert!(used > 100 * MIB && used < 256 * MIB, "{c}");
    assert!(c["cpuMillicores"].as_u64().unwrap() > 0, "{c}");
    let share = c["memoryOfLimit"].as_f64().unwrap();
    assert_eq!(c["oomRisk"], share >= 0.9, "{c}");

    // Nodes: used, requested (the demo's pods ask 3 × 100m + 50m) and allocatable.
    let nodes: Value = lifeboat_e2e::get(format!("{url}/api/v1/nodes"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = nodes["items"].as_array().unwrap();
    let requested: u64 = items
        .iter()
        .map(|n| n["requested"]["cpuMillicores"].as_u64().unwrap())
        .sum();
    assert_eq!(requested, 350, "{nodes}");
    for n in items {
        assert!(n["usage"]["cpuMillicores"].as_u64().unwrap() >= 150, "{n}");
        assert!(
            n["allocatable"]["cpuMillicores"].as_u64().unwrap() > 0,
            "{n}"
        );
    }
    let name = items[0]["name"].as_str().unwrap();
    let node: Value = lifeboat_e2e::get(format!("{url}/api/v1/nodes/{name}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(node["usage"]["history"].as_array().unwrap().len() >= 2);
    assert!(node["nodeInfo"]["kubeletVersion"].is_string(), "{node}");
    assert!(
        node["pods"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["summary"]["name"].is_string()),
        "{node}"
    );
    let summary: Value = lifeboat_e2e::get(format!("{url}/api/v1/cluster/summary"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(summary["usage"]["history"].as_array().unwrap().len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_metrics_api_the_pages_say_how_to_get_it() {
    let options = kubesim::Options {
        metrics_server: false,
        ..Default::default()
    };
    let (sim, client) = kubesim(options, true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let pod = running_pod(&url, "web-").await;
    state.health.as_ref().unwrap().usage.poll(&client).await;
    let r = lifeboat_e2e::get(format!("{url}/api/v1/namespaces/shop/pods/{pod}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    let a = &p["usage"]["availability"];
    assert_eq!(a["state"], "unavailable", "{p}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("Install metrics-server"),
        "{a}"
    );
    assert!(p["usage"]["containers"][0]["cpuMillicores"].is_null());
    // Requests and limits are the pod's own: shown all the same.
    assert_eq!(
        p["usage"]["containers"][0]["requests"]["cpuMillicores"],
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_lists_containers_near_their_memory_limit() {
    let (sim, client) = kubesim(kubesim::Options::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let recommender = running_pod(&url, "recommendations-").await;
    let web = running_pod(&url, "web-").await;
    let usage = &state.health.as_ref().unwrap().usage;
    // A reading as metrics-server gives it: the recommender at 250 of its
    // 256 MiB, web far below its 128 MiB.
    let pods = serde_json::json!({"items": [
        {"metadata": {"name": recommender, "namespace": "shop"},
         "containers": [{"name": "recommender", "usage": {"cpu": "20m", "memory": "250Mi"}}]},
        {"metadata": {"name": web, "namespace": "shop"},
         "containers": [{"name": "web", "usage": {"cpu": "20m", "memory": "20Mi"}}]}]});
    usage.record(1, &serde_json::json!({"items": []}), &pods);

    let summary: Value = lifeboat_e2e::get(format!("{url}/api/v1/cluster/summary"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let near = summary["pods"]["nearMemoryLimit"].as_array().unwrap();
    assert_eq!(near.len(), 1, "{summary}");
    assert_eq!(near[0]["pod"], recommender.as_str());
    assert_eq!(near[0]["container"], "recommender");
    assert_eq!(near[0]["limitBytes"], 256 * MIB);
    assert_eq!(near[0]["memoryBytes"], 250 * MIB);
    // The pod page agrees.
    let p: Value = lifeboat_e2e::get(format!("{url}/api/v1/namespaces/shop/pods/{recommender}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["usage"]["containers"][0]["oomRisk"], true, "{p}");
}
