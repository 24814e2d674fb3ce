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
    let spec = json!({"includedNamespaces": ["shop"], "volumeData": false});
    backed_up_with(url, name, spec).await
}

/// Starts backup `name` with `spec` and waits until it has finished.
async fn backed_up_with(url: &str, name: &str, spec: serde_json::Value) -> serde_json::Value {
    let r = lifeboat_e2e::http(url)
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": name, "spec": spec}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    finished(format!("{url}/api/v1/backups/{name}")).await
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

/// The demo cluster with the `hooked` pod, and Lifeboat serving it: the
/// cluster, a client, the pods of `shop`, Lifeboat's directory and URL.
async fn hooked_lifeboat() -> (
    kubesim::Kubesim,
    kube::Client,
    Api<Pod>,
    tempfile::TempDir,
    String,
) {
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let pods = hooked_pod(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = lifeboat_e2e::serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    (sim, client, pods, dir, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_hooks_from_annotations_run_fail_time_out_and_keep_secrets_out_of_the_log() {
    let (_sim, client, pods, _dir, url) = hooked_lifeboat().await;
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

/// Starts a restore with `spec` and waits until it has finished; its answer.
async fn restored(url: &str, spec: serde_json::Value) -> serde_json::Value {
    let r = lifeboat_e2e::http(url)
        .post(format!("{url}/api/v1/restores"))
        .json(&json!({"spec": spec}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let name = r.json::<serde_json::Value>().await.unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    finished(format!("{url}/api/v1/restores/{name}")).await
}

/// The backup or restore at `url` once it has finished.
async fn finished(url: String) -> serde_json::Value {
    lifeboat_e2e::poll_json(&url, Duration::from_secs(120), |r| {
        matches!(
            r["phase"].as_str(),
            Some("Completed" | "PartiallyFailed" | "Failed")
        )
    })
    .await
    .unwrap()
}

fn line<'a>(restore: &'a serde_json::Value, gr: &str, name: &str) -> &'a serde_json::Value {
    restore["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["groupResource"] == gr && i["name"] == name)
        .unwrap_or_else(|| panic!("no {gr} {name} in {restore:#}"))
}

/// A Deployment of `replicas` pods in `orders` with these pod-template
/// labels and annotations; its one container reads a Secret's value.
fn deployment(
    name: &str,
    replicas: u32,
    labels: serde_json::Value,
    annotations: serde_json::Value,
) -> serde_json::Value {
    let mut labels = labels;
    labels["app"] = json!(name);
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": "orders"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": labels, "annotations": annotations},
                                 "spec": {"containers": [{"name": "main", "image": format!("orders/{name}:1"),
                                          "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "orders-db", "key": "password"}}}]}]}}}})
}

/// Restore hooks, Velero's annotations and a spec's rule: init containers
/// go first in the restored templates; commands run in every pod the
/// restored workloads make once they run, recorded on the item with their
/// output (Secret values redacted); a failing `Fail` hook fails its item, a
/// failing `Continue` one is noted; a bad rule is refused before anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_hooks_add_init_containers_run_in_restored_pods_and_a_failing_one_fails_its_item() {
    // The demo's nodes run the pods.
    let (sim, client) = kubesim(Default::default(), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _state) = lifeboat_e2e::serve_lifeboat(client.clone(), &sim, dir.path())
        .await
        .unwrap();
    let secret = "orders-db-password-4471";
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "orders"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orders-db", "namespace": "orders"},
               "stringData": {"password": secret}}),
        deployment(
            "web",
            2,
            json!({}),
            json!({
            "init.hook.restore.velero.io/container-name": "restore-prep",
            "init.hook.restore.velero.io/container-image": "busybox:1.36",
            "init.hook.restore.velero.io/command": "[\"/bin/sh\", \"-c\", \"echo prepared\"]",
            "post.hook.restore.velero.io/command": "[\"/bin/sh\", \"-c\", \"hostname; env\"]",
            "post.hook.restore.velero.io/on-error": "Fail",
            "post.hook.restore.velero.io/wait-for-ready": "true"}),
        ),
        deployment(
            "worker",
            1,
            json!({}),
            json!({
            "post.hook.restore.lifeboat.io/command": "[\"/bin/sh\", \"-c\", \"echo 'no database yet' >&2; exit 3\"]",
            "post.hook.restore.lifeboat.io/on-error": "Fail"}),
        ),
        deployment(
            "cache",
            1,
            json!({}),
            json!({
            "post.hook.restore.lifeboat.io/command": "[\"/bin/sh\", \"-c\", \"exit 4\"]"}),
        ),
        deployment("api", 1, json!({"tier": "api"}), json!({})),
    ];
    for obj in objects {
        let kind = obj["kind"].as_str().unwrap().to_string();
        let path = match kind.as_str() {
            "Namespace" => "/api/v1/namespaces".to_string(),
            "Secret" => "/api/v1/namespaces/orders/secrets".to_string(),
            _ => "/apis/apps/v1/namespaces/orders/deployments".to_string(),
        };
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&obj).unwrap())
            .unwrap();
        client.request::<serde_json::Value>(request).await.unwrap();
    }
    let r = lifeboat_e2e::http(&url)
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": "orders", "spec": {"includedNamespaces": ["orders"], "volumeData": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let b = finished(format!("{url}/api/v1/backups/orders")).await;
    assert_eq!(b["phase"], "Completed", "{b:#}");

    let rule = json!({"resources": [{"name": "api-warmup", "includedNamespaces": ["orders"],
        "labelSelector": {"matchLabels": {"tier": "api"}},
        "postHooks": [
            {"init": {"initContainers": [{"name": "fetch-config", "image": "busybox:1.36", "command": ["true"]}]}},
            {"exec": {"command": ["/bin/sh", "-c", "echo warmed up"], "onError": "Fail", "execTimeout": "10s"}}]}]});
    // A rule that does not read is refused before anything is written.
    let refused = lifeboat_e2e::http(&url)
        .post(format!("{url}/api/v1/restores"))
        .json(
            &json!({"spec": {"backupName": "orders", "hooks": {"resources": [{"name": "bad",
            "postHooks": [{"exec": {"command": ["check"], "onError": "Retry"}}]}]}}}),
        )
        .send()
        .await
        .unwrap();
    let status = refused.status().as_u16();
    let text = refused.text().await.unwrap();
    assert!(status == 400 || status == 422, "{status} {text}");
    assert!(text.contains("hooks") && text.contains("Retry"), "{text}");

    let done = restored(
        &url,
        json!({"backupName": "orders", "namespaceMapping": {"orders": "orders-copy"}, "hooks": rule}),
    )
    .await;
    assert_eq!(done["phase"], "PartiallyFailed", "{done:#}");

    // web: the init container first in its template; the command ran once
    // in each of its two pods, the Secret's value redacted.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "orders-copy");
    let init_names = |name: &'static str| {
        let deployments = deployments.clone();
        async move {
            let d = serde_json::to_value(deployments.get(name).await.unwrap()).unwrap();
            d["spec"]["template"]["spec"]["initContainers"].clone()
        }
    };
    let web_init = init_names("web").await;
    // (The API server defaults the rest of the container.)
    assert_eq!(
        (
            &web_init[0]["name"],
            &web_init[0]["image"],
            &web_init[0]["command"]
        ),
        (
            &json!("restore-prep"),
            &json!("busybox:1.36"),
            &json!(["/bin/sh", "-c", "echo prepared"])
        )
    );
    let web = line(&done, "deployments.apps", "web");
    assert_eq!(web["result"], "created", "{web:#}");
    let runs = web["hooks"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{web:#}");
    let mut pods: Vec<&str> = runs.iter().map(|r| r["pod"].as_str().unwrap()).collect();
    pods.sort();
    pods.dedup();
    assert_eq!(pods.len(), 2, "one run in each pod: {web:#}");
    for r in runs {
        assert_eq!(r["when"], "post-restore");
        assert_eq!(r["exitCode"], 0, "{r:#}");
        assert_eq!(r["namespace"], "orders-copy");
        let out = r["stdout"].as_str().unwrap();
        assert!(
            out.starts_with(r["pod"].as_str().unwrap()),
            "ran in its own pod: {out}"
        );
        assert!(out.contains("DB_PASSWORD=[redacted]"), "{out}");
    }
    assert!(
        !done.to_string().contains(secret),
        "the Secret's value is in the restore"
    );

    // worker: its Fail hook failed, and so did the item, saying why.
    let worker = line(&done, "deployments.apps", "worker");
    assert_eq!(worker["result"], "failed", "{worker:#}");
    let message = worker["message"].as_str().unwrap();
    assert!(
        message.contains("exit code 3") && message.contains("no database yet"),
        "{message}"
    );
    assert_eq!(worker["hooks"][0]["exitCode"], 3);

    // cache: Continue (the default) is noted, the item stands.
    let cache = line(&done, "deployments.apps", "cache");
    assert_eq!(cache["result"], "created", "{cache:#}");
    let message = cache["message"].as_str().unwrap();
    assert!(
        message.contains("on-error: Continue") && message.contains("exit code 4"),
        "{message}"
    );

    // api: the spec's rule, by its labels: its init container, its command.
    let api_init = init_names("api").await;
    assert_eq!(api_init[0]["name"], "fetch-config");
    let api = line(&done, "deployments.apps", "api");
    assert_eq!(api["result"], "created", "{api:#}");
    assert_eq!(api["hooks"][0]["stdout"], "warmed up\n", "{api:#}");
    // The pods the workload made carry the init containers too.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "orders-copy");
    let listed = pods
        .list(&kube::api::ListParams::default().labels("app=api"))
        .await
        .unwrap();
    assert!(!listed.items.is_empty());
    for pod in listed.items {
        let pod = serde_json::to_value(pod).unwrap();
        assert_eq!(pod["spec"]["initContainers"][0]["name"], "fetch-config");
    }
}

/// Backup hooks from a backup spec's rules (Velero's `hooks.resources`):
/// every pre hook of the rules that select a pod runs in order before its
/// volumes would be read, the post hooks after; a pod's own annotations win
/// over the rules; a rule that does not read is refused before the backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_hooks_from_a_spec_rule_run_in_order_and_annotations_win() {
    let (_sim, _client, pods, _dir, url) = hooked_lifeboat().await;
    let rules = json!({"resources": [
        {"name": "quiesce", "includedNamespaces": ["shop"],
         "labelSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["hooked"]}]},
         "pre": [{"exec": {"command": ["/bin/sh", "-c", "echo flushing tables"]}},
                 {"exec": {"command": ["/bin/sh", "-c", "echo tables locked"], "container": "app", "timeout": "5s"}}],
         "post": [{"exec": {"command": ["/bin/sh", "-c", "echo tables unlocked"]}}]},
        {"name": "not-here", "includedNamespaces": ["data"],
         "pre": [{"exec": {"command": ["/bin/sh", "-c", "echo wrong namespace"]}}]}]});
    let spec = |hooks: serde_json::Value| json!({"includedNamespaces": ["shop"], "volumeData": false, "hooks": hooks});
    pods.patch(
        "hooked",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"role": "hooked"}}})),
    )
    .await
    .unwrap();
    let b = backed_up_with(&url, "ruled", spec(rules.clone())).await;
    assert_eq!(b["phase"], "Completed", "{b:#}");
    let log = log_of(&url, "ruled").await;
    let at = |text: &str| {
        log.find(text)
            .unwrap_or_else(|| panic!("no {text:?} in {log}"))
    };
    assert!(at("flushing tables") < at("tables locked"), "{log}");
    assert!(at("tables locked") < at("tables unlocked"), "{log}");
    assert!(!log.contains("wrong namespace"), "{log}");
    // Only the pod the selector picks, of all of shop's.
    let hooks = b["manifest"]["hooks"].as_array().unwrap();
    assert!(hooks.iter().all(|h| h["pod"] == "hooked"), "{hooks:#?}");
    let whens: Vec<&str> = hooks.iter().map(|h| h["when"].as_str().unwrap()).collect();
    assert_eq!(whens, ["pre", "pre", "post"], "{hooks:#?}");

    // The pod's own annotation wins: the rule's hooks do not run for it.
    annotate(
        &pods,
        json!({"pre.hook.backup.lifeboat.io/command": "[\"/bin/sh\", \"-c\", \"echo my own\"]"}),
    )
    .await;
    let b = backed_up_with(&url, "annotated", spec(rules.clone())).await;
    assert_eq!(b["phase"], "Completed", "{b:#}");
    let log = log_of(&url, "annotated").await;
    assert!(
        log.contains("my own") && !log.contains("flushing tables"),
        "{log}"
    );

    // A rule that does not read: refused, naming it; no backup is made.
    let r = lifeboat_e2e::http(&url)
        .post(format!("{url}/api/v1/backups"))
        .json(
            &json!({"name": "refused", "spec": spec(json!({"resources": [{"name": "broken",
            "pre": [{"exec": {"command": ["sync"], "timeout": "whenever"}}]}]}))}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("hooks.resources[0] (broken).pre[0].exec.timeout")
            && text.contains("whenever"),
        "{text}"
    );
    let gone = lifeboat_e2e::http(&url)
        .get(format!("{url}/api/v1/backups/refused"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}
