//! Commands in containers (`pods/exec` over WebSocket, the protocol
//! kube-apiserver serves and kube-rs speaks), the ground backup and restore
//! hooks stand on: exit codes from the kubelet's status, bounded output, a
//! timeout that ends a hanging command, and the API server's refusals.
//! kubesim serves exec for its simulated containers; kube-apiserver alone
//! cannot (exec needs a kubelet).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use lifeboat::cluster::exec::{self, Command, ExecError, OUTPUT_LIMIT};
use lifeboat_e2e::kubesim;
use serde_json::json;

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A Running pod `hooked` in `shop` with one container, `app`, whose
/// environment holds a Secret's value.
async fn hooked_pod(client: &kube::Client) -> Api<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "hooked"},
        "spec": {"containers": [{"name": "app", "image": "shop/worker:1", "env": [
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-db-credentials", "key": "password"}}},
            {"name": "MODE", "value": "batch"}]}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = kube::runtime::wait::await_condition(
        pods.clone(),
        "hooked",
        kube::runtime::conditions::is_pod_running(),
    );
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the pod runs")
        .unwrap();
    pods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_in_containers_with_their_exit_codes_bounded_output_and_a_timeout() {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    hooked_pod(&client).await;
    let run = |words: Vec<String>, timeout: Duration| {
        let client = client.clone();
        async move {
            exec::run(
                &client,
                &Command {
                    namespace: "shop",
                    pod: "hooked",
                    container: Some("app"),
                    argv: &words,
                    timeout,
                },
            )
            .await
        }
    };
    let long = Duration::from_secs(20);

    // stdout and stderr apart, and the exit code from the kubelet's status.
    let out = run(
        argv(&[
            "/bin/sh",
            "-c",
            "echo checkpoint done; echo 'slow disk' >&2; exit 3",
        ]),
        long,
    )
    .await
    .unwrap();
    assert_eq!(out.exit_code, 3, "{out:?}");
    assert_eq!(out.stdout, "checkpoint done\n");
    assert_eq!(out.stderr, "slow disk\n");
    assert!(!out.truncated);
    let ok = run(argv(&["true"]), long).await.unwrap();
    assert_eq!((ok.exit_code, ok.stdout.as_str()), (0, ""));
    let missing = run(argv(&["pg_ctl", "checkpoint"]), long).await.unwrap();
    assert_eq!(missing.exit_code, 127);
    assert!(missing.stderr.contains("pg_ctl: not found"), "{missing:?}");

    // The container's environment, as it runs: the Secret's value is there
    // (what hooks print must be redacted by whoever records it).
    let env = run(argv(&["env"]), long).await.unwrap();
    assert!(env.stdout.contains("MODE=batch\n"), "{env:?}");
    assert!(env.stdout.contains("API_TOKEN="), "{env:?}");

    // Output beyond the bound is dropped, and the text says how much.
    let big = run(argv(&["seq", "1", "200000"]), long).await.unwrap();
    assert_eq!(big.exit_code, 0);
    assert!(big.truncated);
    assert!(big.stdout.starts_with("1\n2\n3\n"));
    assert!(
        big.stdout.len() < OUTPUT_LIMIT + 100,
        "{}",
        big.stdout.len()
    );
    assert!(big.stdout.ends_with("more bytes not kept]"));

    // A command that hangs is given up at its timeout.
    let hung = run(argv(&["sh", "-c", "sleep 600"]), Duration::from_millis(500)).await;
    assert!(
        matches!(hung, Err(ExecError::TimedOut(t)) if t == Duration::from_millis(500)),
        "{hung:?}"
    );

    // The API server's refusals: a container the pod lacks, a pod that does
    // not exist, and a user without `create pods/exec`.
    let wrong = exec::run(
        &client,
        &Command {
            namespace: "shop",
            pod: "hooked",
            container: Some("sidecar"),
            argv: &argv(&["true"]),
            timeout: long,
        },
    )
    .await;
    let Err(ExecError::Start { source, .. }) = wrong else {
        panic!("{wrong:?}")
    };
    assert!(
        source
            .to_string()
            .contains("container sidecar is not valid"),
        "{source}"
    );
    let gone = exec::run(
        &client,
        &Command {
            namespace: "shop",
            pod: "no-such-pod",
            container: None,
            argv: &argv(&["true"]),
            timeout: long,
        },
    )
    .await;
    assert!(
        matches!(&gone, Err(ExecError::Start { source: kube::Error::Api(s), .. }) if s.code == 404),
        "{gone:?}"
    );
    let viewer = sim.issue_token(kubesim::rbac::User::service_account("shop", "viewer"));
    let viewer = lifeboat_e2e::kubesim_client_for(&sim, &viewer)
        .await
        .unwrap();
    let refused = exec::run(
        &viewer,
        &Command {
            namespace: "shop",
            pod: "hooked",
            container: None,
            argv: &argv(&["true"]),
            timeout: long,
        },
    )
    .await;
    match &refused {
        Err(ExecError::Start {
            source: kube::Error::Api(s),
            ..
        }) => {
            assert_eq!(s.code, 403, "{s:?}");
            assert!(
                s.message.contains("pods/exec") || s.message.contains("exec"),
                "{s:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}
