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

/// Starts backup `name` of `shop` (resource state only) and waits until it
/// has finished; its answer.
async fn backed_up(url: &str, name: &str) -> serde_json::Value {
    let r = lifeboat_e2e::http(url)
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": name, "spec": {"includedNamespaces": ["shop"], "volumeData": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    lifeboat_e2e::poll_json(
        &format!("{url}/api/v1/backups/{name}"),
        Duration::from_secs(60),
        |b| {
            matches!(
                b["phase"].as_str(),
                Some("Completed" | "PartiallyFailed" | "Failed")
            )
        },
    )
    .await
    .unwrap()
}

async fn annotate(pods: &Api<Pod>, annotations: serde_json::Value) {
    pods.patch(
        "hooked",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"annotations": annotations}})),
    )
    .await
    .unwrap();
}

async fn log_of(url: &str, name: &str) -> String {
    lifeboat_e2e::get(format!("{url}/api/v1/backups/{name}/log"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_hooks_from_annotations_run_fail_time_out_and_keep_secrets_out_of_the_log() {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let pods = hooked_pod(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = lifeboat_e2e::serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let secret = lifeboat_e2e::secret_value_of_demo(&client).await;

    // Velero's annotations, unchanged: both hooks run, their output and
    // exit codes in the log, the Secret's value never.
    annotate(
        &pods,
        json!({
            "pre.hook.backup.velero.io/command": "[\"/bin/sh\", \"-c\", \"echo frozen; env\"]",
            "post.hook.backup.velero.io/command": "[\"/bin/sh\", \"-c\", \"echo thawed\"]",
        }),
    )
    .await;
    let b = backed_up(&url, "velero-hooked").await;
    assert_eq!(b["phase"], "Completed", "{b}");
    let log = log_of(&url, "velero-hooked").await;
    let pre = log
        .lines()
        .find(|l| l.contains("pre hook in shop/hooked container app"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        pre.contains("exit code 0") && pre.contains("frozen") && pre.contains("MODE=batch"),
        "{pre}"
    );
    assert!(pre.contains("API_TOKEN=[redacted]"), "{pre}");
    assert!(
        log.contains("post hook in shop/hooked container app") && log.contains("thawed"),
        "{log}"
    );
    assert!(
        !log.contains(&secret),
        "a Secret's value is in the log: {log}"
    );

    // Lifeboat's names win over Velero's; a failing hook with Continue is a
    // warning (PartiallyFailed, the backup is kept).
    annotate(
        &pods,
        json!({
            "pre.hook.backup.lifeboat.io/command": "[\"/bin/sh\", \"-c\", \"echo 'disk busy' >&2; exit 4\"]",
            "pre.hook.backup.lifeboat.io/on-error": "Continue",
            "post.hook.backup.velero.io/command": null,
        }),
    )
    .await;
    let b = backed_up(&url, "continued").await;
    assert_eq!(b["phase"], "PartiallyFailed", "{b}");
    let log = log_of(&url, "continued").await;
    assert!(
        log.contains("exit code 4")
            && log.contains("disk busy")
            && log.contains("on-error: Continue"),
        "{log}"
    );
    assert!(
        !log.contains("frozen"),
        "Velero's pre hook ran though Lifeboat's is set: {log}"
    );

    // With Fail (the default), the backup fails, naming the exit code and stderr.
    annotate(&pods, json!({"pre.hook.backup.lifeboat.io/on-error": null})).await;
    let b = backed_up(&url, "failed").await;
    assert_eq!(b["phase"], "Failed", "{b}");
    let reason = b["phaseReason"].as_str().unwrap();
    assert!(
        reason.contains("on-error: Fail")
            && reason.contains("exit code 4")
            && reason.contains("disk busy"),
        "{reason}"
    );

    // A hook that hangs past its timeout fails as well.
    annotate(
        &pods,
        json!({
            "pre.hook.backup.lifeboat.io/command": "[\"sh\", \"-c\", \"sleep 600\"]",
            "pre.hook.backup.lifeboat.io/timeout": "1s",
        }),
    )
    .await;
    let b = backed_up(&url, "hung").await;
    assert_eq!(b["phase"], "Failed", "{b}");
    assert!(
        b["phaseReason"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1s"),
        "{b}"
    );

    // An annotation that does not read: a warning naming it, no hook runs.
    annotate(
        &pods,
        json!({"pre.hook.backup.lifeboat.io/timeout": "soon"}),
    )
    .await;
    let b = backed_up(&url, "misread").await;
    assert_eq!(b["phase"], "PartiallyFailed", "{b}");
    let log = log_of(&url, "misread").await;
    assert!(
        log.contains("timeout: `soon` is not a duration") && log.contains("its hooks did not run"),
        "{log}"
    );
}
