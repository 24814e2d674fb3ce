//! The `lifeboat` command as a user runs it: configuration errors, `config show`,
//! and `serve` answering `/healthz` and `/readyz`, then stopping on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn lifeboat(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.current_dir(dir)
        .env_remove("KUBECONFIG")
        .env("HOME", dir)
        .env("LIFEBOAT_LOG_FORMAT", "text");
    for (key, _) in std::env::vars() {
        if key.starts_with("LIFEBOAT_") && key != "LIFEBOAT_LOG_FORMAT" {
            cmd.env_remove(key);
        }
    }
    // The client commands sign in as kubectl would: with the current
    // kubeconfig's token, the demo's when there is one under `dir`.
    if demo_kubeconfig(dir).is_file() {
        cmd.env("KUBECONFIG", demo_kubeconfig(dir));
    }
    cmd
}

/// The demo's kubeconfig under `dir` (its user is the simulated cluster's admin).
fn demo_kubeconfig(dir: &Path) -> std::path::PathBuf {
    dir.join("lifeboat-data/demo.kubeconfig")
}

/// An HTTP client signed in with the token of the demo's kubeconfig.
fn signed_in(dir: &Path) -> reqwest::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(demo_kubeconfig(dir)).unwrap();
    let token =
        lifeboat::cluster::kubeconfig_token(&kubeconfig).expect("the demo kubeconfig has a token");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Runs `lifeboat <command> <args…> --server <url>` (the client flags go
/// anywhere, as kubectl's do): whether it succeeded, and what it printed.
fn client(dir: &Path, command: &str, url: &str, args: &[&str]) -> (bool, String) {
    let out = lifeboat(dir)
        .arg(command)
        .args(args)
        .args(["--server", url])
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `--server` is taken before the command, between its words and after its
/// flags; the server's own flags are not offered to the client commands.
#[test]
fn client_flags_go_anywhere_and_server_flags_stay_with_serve() {
    let dir = tempfile::tempdir().unwrap();
    let down = "http://127.0.0.1:9";
    for args in [
        vec![
            "--server",
            down,
            "backup",
            "create",
            "b1",
            "--include-namespaces",
            "shop",
        ],
        vec![
            "backup",
            "--server",
            down,
            "create",
            "b1",
            "--include-namespaces",
            "shop",
        ],
        vec![
            "backup",
            "create",
            "b1",
            "--include-namespaces",
            "shop",
            "--server",
            down,
        ],
    ] {
        let out = lifeboat(dir.path()).args(&args).output().unwrap();
        let said = text(&out);
        assert!(!out.status.success(), "{args:?}: {said}");
        assert!(
            said.contains("cannot reach the Lifeboat server at http://127.0.0.1:9"),
            "{args:?}: {said}"
        );
    }
    let help = lifeboat(dir.path())
        .args(["backup", "create", "--help"])
        .output()
        .unwrap();
    let help = text(&help);
    assert!(help.contains("--server"), "{help}");
    for server_only in ["--listen", "--data-dir", "--database-url", "--kubeconfig"] {
        assert!(!help.contains(server_only), "{server_only} in: {help}");
    }
    let serve_help = text(
        &lifeboat(dir.path())
            .args(["serve", "--help"])
            .output()
            .unwrap(),
    );
    assert!(serve_help.contains("--data-dir") && serve_help.contains("--kubeconfig"));
}

#[test]
fn version_and_config_show() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _lifeboat"),
        ("zsh", "#compdef lifeboat"),
        ("fish", "complete -c lifeboat"),
    ] {
        let out = lifeboat(dir.path())
            .args(["completion", shell])
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && script.contains(marker),
            "{shell}: {script}"
        );
        assert!(
            script.contains("drill") && script.contains("notification"),
            "{shell}"
        );
    }
    // The version, the commit, and where the browser bundle is (none here:
    // LIFEBOAT_SITE_DIR names an empty directory).
    let out = lifeboat(dir.path())
        .arg("version")
        .env("LIFEBOAT_SITE_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines[0], format!("lifeboat {}", env!("CARGO_PKG_VERSION")));
    let commit = lines[1].strip_prefix("commit: ").expect(&printed);
    assert!(
        commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "a checkout's build names its commit: {printed}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "browser bundle: NOT FOUND: no browser bundle in {}",
            dir.path().display()
        )),
        "{printed}"
    );

    std::fs::write(
        dir.path().join("lifeboat.toml"),
        "listen = \"127.0.0.1:9999\"\n[storage.s3]\nsecret_access_key = \"file-secret\"\n",
    )
    .unwrap();
    let out = lifeboat(dir.path())
        .args(["config", "show", "--data-dir", "/srv/lb"])
        .env("LIFEBOAT_DATABASE_URL", "postgres://lb:pg-secret@db/lb")
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("listen = \"127.0.0.1:9999\""), "{shown}");
    assert!(shown.contains("data_dir = \"/srv/lb\""), "{shown}");
    assert!(shown.contains("postgres://lb:********@db/lb"), "{shown}");
    assert!(
        !shown.contains("file-secret") && !shown.contains("pg-secret"),
        "{shown}"
    );
}

#[test]
fn bad_configuration_exits_non_zero_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lifeboat.toml"), "lisen = \"x\"\n").unwrap();
    let out = lifeboat(dir.path())
        .args(["config", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = text(&out);
    assert!(
        msg.contains("lisen") && msg.contains("lifeboat.toml"),
        "{msg}"
    );

    std::fs::write(dir.path().join("lifeboat.toml"), "").unwrap();
    let out = lifeboat(dir.path())
        .arg("serve")
        .env("LIFEBOAT_STORAGE_KIND", "s3")
        .env("LIFEBOAT_S3_BUCKET", "b")
        .env("LIFEBOAT_S3_ENDPOINT", "ftp//nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("storage.s3.endpoint"), "{}", text(&out));
}

#[test]
fn unusable_data_dir_or_storage_stops_serve_with_one_paragraph() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-dir"), b"").unwrap();
    let out = lifeboat(dir.path())
        .args([
            "serve",
            "--data-dir",
            "not-a-dir/data",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains("data directory") && msg.contains("LIFEBOAT_DATA_DIR"),
        "{msg}"
    );

    // S3 with nothing listening: named, with the settings to fix, and no catalog row half-written.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = lifeboat(dir.path())
        .args(["serve", "--data-dir", "data", "--listen", "127.0.0.1:0"])
        .env("LIFEBOAT_STORAGE_KIND", "s3")
        .env("LIFEBOAT_S3_BUCKET", "b")
        .env("LIFEBOAT_S3_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("LIFEBOAT_S3_ACCESS_KEY_ID", "id")
        .env("LIFEBOAT_S3_SECRET_ACCESS_KEY", "never-printed")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("LIFEBOAT_S3_"),
        "{msg}"
    );
    assert!(!msg.contains("never-printed"), "{msg}");
}

/// Starts `serve` and returns the child and its base URL, read from its first line.
fn spawn_serve(dir: &Path, kubeconfig: &Path) -> (Child, String) {
    let mut child = lifeboat(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("lifeboat listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    (child, url)
}

#[tokio::test]
async fn serve_answers_health_and_readiness_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // A cluster that is configured but down: readiness must say so, the server must still run.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: down\nclusters:\n- name: down\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: down\n  context:\n    cluster: down\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    let (mut child, url) = spawn_serve(dir.path(), &kubeconfig);
    let http = reqwest::Client::new();

    let health: serde_json::Value = get_json(&http, format!("{url}/healthz")).await;
    assert_eq!(health["status"], "alive");

    let ready = http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: serde_json::Value = ready.json().await.unwrap();
    let component = |name: &str| {
        ready["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(component("catalog")["ready"], true, "{ready}");
    assert_eq!(component("storage")["ready"], true, "{ready}");
    assert_eq!(component("cluster")["ready"], false, "{ready}");
    assert!(
        component("cluster")["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{ready}"
    );

    // The embedded defaults were used: SQLite catalog and local backups in ./lifeboat-data.
    assert!(dir.path().join("lifeboat-data/lifeboat.db").is_file());
    assert!(dir.path().join("lifeboat-data/backups").is_dir());
    assert_eq!(component("auth")["ready"], true, "{ready}");
    assert!(
        component("auth")["detail"]
            .as_str()
            .unwrap()
            .contains("sign-in required"),
        "{ready}"
    );

    // Nothing else is open: the API answers 401 with JSON (whether or not the
    // route exists), and a page sends the browser to sign in.
    for path in ["/api/v1/storage-locations", "/api/v1/nothing"] {
        let anonymous = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let body: serde_json::Value = anonymous.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    }
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = no_redirects
        .get(format!("{url}/backups?phase=Failed"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers()["location"],
        "/login?next=%2Fbackups%3Fphase%3DFailed"
    );
    let login = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("Sign in to Lifeboat"), "{login}");
    // With the cluster down no token can be checked: sign-in says so.
    let refused = http
        .get(format!("{url}/api/v1/backups"))
        .bearer_auth("some-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "serve did not stop cleanly on SIGTERM: {exit}"
    );

    let activity = lifeboat::catalog::Catalog::connect(&format!(
        "sqlite://{}",
        dir.path().join("lifeboat-data/lifeboat.db").display()
    ))
    .await
    .unwrap()
    .activity(Some("server"), 10)
    .await
    .unwrap();
    assert_eq!(activity.len(), 1);
    assert_eq!(activity[0].kind, "server.started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_against_a_simulated_cluster_through_its_kubeconfig() {
    lifeboat::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn_demo(dir.path());
    // Ready once every watch has listed its resource.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready: serde_json::Value =
            get_json(&signed_in(dir.path()), format!("{url}/readyz")).await;
        if ready["ready"] == true {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {ready}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let kubeconfig = dir.path().join("lifeboat-data/demo.kubeconfig");
    assert!(kubeconfig.is_file());
    // The demo cluster is a real API over HTTPS: its namespaces are listable with kube-rs.
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    let names: Vec<String> = namespaces
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for expected in ["shop", "data", "ops"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }

    // Health from the watchers: the crash-looping pod degrades `shop`; a node going NotReady shows.
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> =
        kube::Api::all(namespaces.clone().into_client());
    nodes
        .patch_status(
            "node-b",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletStopped"}]}})),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let summary: serde_json::Value = signed_in(dir.path())
            .get(format!("{url}/api/v1/cluster/summary"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let shop = summary["namespaces"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["name"] == "shop"))
            .cloned();
        let crash = shop.as_ref().is_some_and(|s| {
            s["health"]["reasons"]
                .to_string()
                .contains("CrashLoopBackOff")
        });
        let not_ready = summary["nodes"]["total"] == 2 && summary["nodes"]["ready"] == 1;
        if crash && not_ready {
            assert_eq!(summary["watches"]["pods"]["state"], "live", "{summary}");
            assert_ne!(summary["health"]["state"], "healthy");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "summary never showed the problems: {summary}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The live stream: a change to the web Deployment arrives, and a client resuming
    // from just before it gets it again.
    let deploys: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(namespaces.clone().into_client(), "shop");
    let mut live = signed_in(dir.path())
        .get(format!("{url}/api/v1/stream"))
        .send()
        .await
        .unwrap();
    deploys
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    let id = next_change(&mut live, |c| {
        c["resource"] == "deployments.apps" && c["name"] == "web"
    })
    .await;
    let mut resumed = signed_in(dir.path())
        .get(format!("{url}/api/v1/stream"))
        .header("Last-Event-ID", (id - 1).to_string())
        .send()
        .await
        .unwrap();
    let again = next_change(&mut resumed, |_| true).await;
    assert_eq!(again, id, "resuming replays from the next id");
    drop((live, resumed));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Reads server-sent events until a `change` matches; returns its id (20 s at most).
async fn next_change(
    resp: &mut reqwest::Response,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> u64 {
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let id = event
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim);
            if let (Some(id), Some(data)) = (id, data) {
                let change: serde_json::Value = serde_json::from_str(data).unwrap();
                if wanted(&change) {
                    return id;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("no matching change within 20 s");
        buffer.push_str(&String::from_utf8_lossy(
            &chunk.unwrap().expect("stream ended"),
        ));
    }
}

/// Starts `lifeboat demo` and returns it with its base URL.
fn spawn_demo(dir: &Path) -> (Child, String) {
    let mut child = lifeboat(dir)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..5 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(u) = line.trim().strip_prefix("lifeboat listening on ") {
            return (child, u.to_string());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("demo did not print its address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_through_the_api_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn_demo(dir.path());
    let http = signed_in(dir.path());

    // Bad input: 422 naming the field, nothing recorded.
    let bad = http
        .post(format!("{url}/api/v1/backups"))
        .json(&serde_json::json!({"name": "x", "spec": {"includedNamespaces": ["Not-Valid"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("includedNamespaces"),
        "{body}"
    );
    let unknown = http
        .post(format!("{url}/api/v1/backups"))
        .json(&serde_json::json!({"name": "y", "spec": {"storageLocation": "elsewhere"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 422);

    // The CLI: create and wait.
    let cli = |args: &[&str]| client(dir.path(), "backup", &url, args);
    let (ok, out) = cli(&["create", "shop-1", "--include-namespaces", "shop", "--wait"]);
    assert!(ok, "{out}");
    assert!(out.contains("Completed"), "{out}");
    let (ok, out) = cli(&["get"]);
    assert!(
        ok && out.contains("shop-1") && out.contains("Completed"),
        "{out}"
    );
    let (ok, out) = cli(&["logs", "shop-1"]);
    assert!(ok && out.contains("finished"), "{out}");
    // For scripts: the API's objects as JSON or YAML, on stdout alone.
    let structured = |format: &str| {
        let out = lifeboat(dir.path())
            .args(["backup", "get", "-o", format, "--server", &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let as_json: serde_json::Value = serde_json::from_str(&structured("json")).unwrap();
    let as_yaml: serde_json::Value = serde_saphyr::from_str(&structured("yaml")).unwrap();
    assert_eq!(as_json, as_yaml);
    assert!(
        as_json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == "shop-1" && b["phase"] == "Completed"),
        "{as_json}"
    );

    // The namespace page: its workloads and pods from the watchers, its backups and protection.
    let shop: serde_json::Value = get_json(&http, format!("{url}/api/v1/namespaces/shop")).await;
    assert_eq!(shop["protection"], "protected", "{shop}");
    assert_eq!(shop["lastBackup"], "shop-1");
    assert!(
        shop["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "web" && w["kind"] == "Deployment"),
        "{shop}"
    );
    let listed: serde_json::Value = get_json(&http, format!("{url}/api/v1/namespaces")).await;
    let ops = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "ops")
        .unwrap();
    assert_eq!(ops["protection"], "unprotected");
    let nodes: serde_json::Value = get_json(&http, format!("{url}/api/v1/nodes")).await;
    assert_eq!(nodes["items"].as_array().unwrap().len(), 2);

    // Contents: the tree, and objects with Secret values redacted.
    let contents: serde_json::Value =
        get_json(&http, format!("{url}/api/v1/backups/shop-1/contents")).await;
    assert!(
        contents["resources"]["deployments.apps"]["shop"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "web")
    );
    let secret: serde_json::Value = http
        .get(format!("{url}/api/v1/backups/shop-1/contents"))
        .query(&[(
            "path",
            "resources/secrets/namespaces/shop/web-db-credentials.json",
        )])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(secret["data"]["password"], "<redacted>");
    assert!(
        !secret
            .to_string()
            .contains("ZGVtby1wYXNzd29yZC1ub3QtcmVhbA"),
        "the base64 value leaked"
    );

    // Download, then inspect offline against the manifest.
    let archive = dir.path().join("shop-1.tar.zst");
    let (ok, out) = cli(&["download", "shop-1", "--file", archive.to_str().unwrap()]);
    assert!(ok, "{out}");
    let manifest = dir
        .path()
        .join("lifeboat-data/backups/backups/shop-1/manifest.json");
    // The archive is encrypted: without the location's recovery key the
    // CLI says what it needs; with it (shown once), it reads and verifies.
    let (ok, out) = cli(&[
        "inspect",
        archive.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("--key-file"), "{out}");
    let (ok, out) = client(dir.path(), "location", &url, &["recovery-key", "default"]);
    assert!(ok, "{out}");
    let recovery = out
        .split_whitespace()
        .find(|w| w.starts_with("AGE-SECRET-KEY-1"))
        .unwrap_or_else(|| panic!("no age identity in {out}"))
        .to_string();
    let key_file = dir.path().join("recovery.key");
    std::fs::write(&key_file, &recovery).unwrap();
    let inspect = || {
        cli(&[
            "inspect",
            archive.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--key-file",
            key_file.to_str().unwrap(),
        ])
    };
    let (ok, out) = inspect();
    assert!(
        ok && out.contains("verified") && out.contains("deployments.apps"),
        "{out}"
    );
    assert!(!out.contains(&recovery), "the key was printed back");
    // Verify reads the backup back where it is stored, and records it.
    let (ok, out) = cli(&["verify", "shop-1"]);
    assert!(
        ok && out.contains("signature valid") && out.contains("verified at"),
        "{out}"
    );
    let (ok, out) = cli(&["verify", "shop-1", "--sample", "lots"]);
    assert!(
        !ok && out.contains("422") && out.contains("sample"),
        "{out}"
    );
    // A damaged archive is caught.
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    let (ok, out) = inspect();
    assert!(!ok && out.contains("checksum"), "{out}");

    // Restore through the CLI: a dry run shows the plan, then a mapped restore.
    let out = lifeboat(dir.path())
        .args([
            "restore",
            "--server",
            &url,
            "create",
            "plan-1",
            "--from-backup",
            "shop-1",
            "--dry-run",
        ])
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(
        out.status.success() && shown.contains("Planned") && shown.contains("skip"),
        "{shown}"
    );
    let out = lifeboat(dir.path())
        .args([
            "restore",
            "--server",
            &url,
            "create",
            "copy-1",
            "--from-backup",
            "shop-1",
        ])
        .args(["--namespace-mapping", "shop:shop-restored", "--wait"])
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(
        out.status.success() && shown.contains("Completed") && shown.contains("shop-restored"),
        "{shown}"
    );
    let out = lifeboat(dir.path())
        .args(["restore", "--server", &url, "get"])
        .output()
        .unwrap();
    assert!(text(&out).contains("copy-1"), "{}", text(&out));

    // Unnamed restores started back to back (within one second) get names
    // of their own, and a plan never takes a real run's name.
    let mut names = Vec::new();
    for dry_run in [true, true, false] {
        let mut cmd = lifeboat(dir.path());
        cmd.args(["restore", "create", "--from-backup", "shop-1"]);
        // The real one is waited for: the backup is deleted below.
        cmd.arg(if dry_run { "--dry-run" } else { "--wait" });
        let out = cmd.args(["--server", &url]).output().unwrap();
        let shown = text(&out);
        assert!(out.status.success(), "{shown}");
        let name = shown
            .lines()
            .find_map(|l| l.strip_prefix("restore ")?.strip_suffix(" started"))
            .unwrap_or_else(|| panic!("no name in: {shown}"))
            .to_string();
        assert_eq!(name.contains("-dryrun-"), dry_run, "{name}");
        names.push(name);
    }
    assert!(
        names[0] != names[1] && names[1] != names[2],
        "distinct names: {names:?}"
    );

    let (ok, out) = cli(&["delete", "shop-1", "--yes"]);
    assert!(ok, "{out}");
    assert!(
        !dir.path()
            .join("lifeboat-data/backups/backups/shop-1")
            .exists()
    );
    let gone = http
        .get(format!("{url}/api/v1/backups/shop-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    // Schedules from the CLI: a bad cron is refused with the field named; a
    // good one shows its next runs; pause, list, delete.
    let schedule = |args: &[&str]| client(dir.path(), "schedule", &url, args);
    let (ok, out) = schedule(&["create", "nightly", "--schedule", "0 1 * *"]);
    assert!(
        !ok && out.contains("422") && out.contains("schedule:"),
        "{out}"
    );
    let (ok, out) = schedule(&[
        "create",
        "nightly",
        "--schedule",
        "0 1 * * *",
        "--timezone",
        "Europe/Berlin",
        "--include-namespaces",
        "shop",
        "--keep-last",
        "7",
        "--ttl",
        "720h",
    ]);
    assert!(ok && out.contains("next runs: "), "{out}");
    let (ok, out) = schedule(&["pause", "nightly"]);
    assert!(ok, "{out}");
    let (ok, out) = schedule(&["get"]);
    assert!(
        ok && out.contains("nightly") && out.contains("0 1 * * *") && out.contains("true"),
        "{out}"
    );
    assert!(out.contains("runner: single"), "{out}");
    let (ok, out) = schedule(&["resume", "nightly"]);
    assert!(ok && out.contains("next runs: "), "{out}");
    let (ok, out) = schedule(&["delete", "nightly", "--yes"]);
    assert!(ok, "{out}");
    let (ok, out) = schedule(&["get", "nightly"]);
    assert!(!ok && out.contains("404"), "{out}");

    // A second storage location from the CLI: checked, used, removed (its files stay).
    let location = |args: &[&str]| client(dir.path(), "location", &url, args);
    let (ok, out) = location(&["add", "bad", "--path", "relative/dir"]);
    assert!(!ok && out.contains("422") && out.contains("path"), "{out}");
    let second = dir.path().join("second");
    let (ok, out) = location(&[
        "add",
        "second",
        "--path",
        second.to_str().unwrap(),
        "--no-encryption",
    ]);
    assert!(ok && out.contains("added"), "{out}");
    let (ok, out) = location(&["get"]);
    assert!(
        ok && out.contains("second") && out.contains("available"),
        "{out}"
    );
    let (ok, out) = cli(&[
        "create",
        "data-2",
        "--include-namespaces",
        "data",
        "--storage-location",
        "second",
        "--wait",
    ]);
    assert!(ok && out.contains("Completed"), "{out}");
    // The postgres replicas' volumes, in bytes, read by the demo's agents.
    assert!(
        out.contains("volume data [####################] 100%"),
        "{out}"
    );
    let manifest = second.join("backups/data-2/manifest.json");
    assert!(manifest.is_file(), "the backup went to the second location");
    // That location was added without encryption: its archive is in the
    // clear (zstd alone reads it) and its manifest still signed.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert!(written.get("encryption").is_none(), "{written}");
    assert!(second.join("backups/data-2/manifest.sig").is_file());
    let plain = Command::new("zstd")
        .args(["-t", "-q"])
        .arg(second.join("backups/data-2/resources.tar.zst"))
        .status()
        .unwrap();
    assert!(plain.success(), "the archive is not plain zstd");
    let (ok, out) = location(&["check", "second"]);
    assert!(ok && out.contains("available"), "{out}");
    let (ok, out) = location(&["remove", "second", "--yes"]);
    assert!(ok && out.contains("removed"), "{out}");
    let (ok, out) = cli(&["get", "data-2"]);
    assert!(!ok && out.contains("404"), "{out}");
    assert!(manifest.is_file(), "removing a location leaves its files");

    // A backup that ends PartiallyFailed (a volumeMode: Block claim, whose
    // data is not taken) exits 3, not 0, naming what was not taken last.
    lifeboat::install_crypto_provider();
    let kc = kube::config::Kubeconfig::read_from(demo_kubeconfig(dir.path())).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let kube_client = kube::Client::try_from(config).unwrap();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(kube_client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "raw"}})).unwrap(),
        )
        .await
        .unwrap();
    let claims: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        kube::Api::namespaced(kube_client, "raw");
    claims
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "disk"},
                "spec": {"storageClassName": "standard", "volumeMode": "Block",
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while claims
        .get("disk")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.volume_name)
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the claim was never bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = lifeboat(dir.path())
        .args([
            "backup",
            "create",
            "raw-1",
            "--include-namespaces",
            "raw",
            "--wait",
        ])
        .args(["--server", &url])
        .output()
        .unwrap();
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(3), "{printed}");
    assert!(printed.contains("PartiallyFailed"), "{printed}");
    let last = printed
        .lines()
        .rev()
        .find(|l| l.starts_with("WARNING"))
        .unwrap_or_default();
    assert!(
        last.contains("raw/disk") && last.contains("volumeMode: Block"),
        "{printed}"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// GETs a URL and parses the JSON answer.
async fn get_json(http: &reqwest::Client, url: String) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}
