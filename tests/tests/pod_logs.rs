//! Pod logs through Lifeboat: proxied from kubesim's `pods/log` (which
//! simulates the kubelet's output) as kube-apiserver serves it: the
//! crash-looping container's previous instance holds its error, `follow`
//! delivers new lines as they are written, and a reader without their own
//! `get pods/log` is refused.

use std::time::Duration;

use futures::StreamExt;
use lifeboat_e2e::{kubesim, poll_json, serve_lifeboat, with_token};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The name of the first pod in `shop` whose name starts with `prefix`.
async fn pod_named(url: &str, prefix: &str) -> String {
    let ns = poll_json(
        &format!("{url}/api/v1/namespaces/shop"),
        Duration::from_secs(30),
        |v| {
            v["pods"].as_array().is_some_and(|pods| {
                pods.iter()
                    .any(|p| p["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            })
        },
    )
    .await
    .unwrap();
    ns["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .find(|n| n.starts_with(prefix))
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_show_a_crash_loops_last_words_follow_new_lines_and_need_pods_log() {
    let options = kubesim::Options {
        restart_interval: Duration::from_millis(300),
        ..Default::default()
    };
    let (sim, client) = kubesim(options, true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = serve_lifeboat(client, &sim, dir.path()).await.unwrap();
    let http = lifeboat_e2e::http(&url);
    let crashing = pod_named(&url, "recommendations-").await;
    let log =
        |pod: &str, query: &str| format!("{url}/api/v1/namespaces/shop/pods/{pod}/log?{query}");

    // Once it has restarted, its previous instance's output ends with why.
    poll_json(
        &format!("{url}/api/v1/namespaces/shop/pods/{crashing}"),
        Duration::from_secs(30),
        |p| {
            p["containers"][0]["restarts"]
                .as_i64()
                .is_some_and(|n| n >= 1)
        },
    )
    .await
    .unwrap();
    let r = http
        .get(log(&crashing, "previous=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.contains("FATAL cannot start without the catalog service")),
        "{text}"
    );
    assert!(
        text.contains("ERROR dial tcp: lookup catalog.shop.svc"),
        "{text}"
    );

    // A web pod: its last lines, with times, then new ones as they are written.
    let web = pod_named(&url, "web-").await;
    let r = http
        .get(log(&web, "tailLines=3&timestamps=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(text.lines().count() <= 3, "{text}");
    let r = http
        .get(log(&web, "follow=true&tailLines=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.bytes_stream();
    let line = tokio::time::timeout(Duration::from_secs(1), async {
        let mut seen = String::new();
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("HTTP/1.1\"") {
                return seen;
            }
        }
        seen
    })
    .await
    .expect("follow delivers a new line within a second");
    assert!(line.contains("\"GET /"), "{line}");

    // The cluster's own refusals, in its words: no previous instance yet.
    let r = http.get(log(&web, "previous=true")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("previous terminated container \"web\""),
        "{body}"
    );

    // Seeing the pod is not reading its logs: that is `get pods/log`.
    kubesim::seed::apply(
        &sim.store,
        vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "pod-lister", "namespace": "shop"},
                   "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "pod-lister", "namespace": "shop"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-lister"},
                   "subjects": [{"kind": "ServiceAccount", "name": "lister", "namespace": "shop"}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "log-reader", "namespace": "shop"},
                   "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "log-reader", "namespace": "shop"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "log-reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "shop"}]}),
        ],
    )
    .unwrap();
    let lister =
        with_token(&sim.issue_token(kubesim::rbac::User::service_account("shop", "lister")));
    let r = lister.get(log(&web, "tailLines=1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("pods/log"),
        "{body}"
    );
    let reader =
        with_token(&sim.issue_token(kubesim::rbac::User::service_account("shop", "reader")));
    let r = reader.get(log(&web, "tailLines=1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap().lines().count(), 1);
}
