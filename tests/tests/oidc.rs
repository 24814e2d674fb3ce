//! OpenID Connect sign-in end to end: npm's oidc-provider (a certified
//! OpenID Provider) on 127.0.0.1, `lifeboat serve` configured with it, and
//! headless Chromium signing in through the provider's pages. The user's
//! groups claim is bound through the cluster's RBAC (a RoleBinding of the
//! group), and decides what they see. Needs Node.js, oidc-provider,
//! playwright-core and chromium, which `.ci/build-ui` installs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The provider, killed when dropped.
struct Provider(std::process::Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_provider(port: u16, redirect: &str) -> Provider {
    let mut child = Command::new("node")
        .arg(workspace().join("tests/oidc/provider.mjs"))
        .arg(lifeboat_e2e::node_modules())
        .arg(port.to_string())
        .args(["lifeboat", "provider-secret-for-tests", redirect])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node (Node.js) is needed for the OIDC tests: run .ci/build-ui");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines
        .next()
        .and_then(Result::ok)
        .is_some_and(|l| l.starts_with("oidc provider listening on"));
    assert!(
        ready,
        "the OpenID provider did not start (is oidc-provider installed? run .ci/build-ui)"
    );
    // What it prints later is read: on a closed pipe it would stop.
    std::thread::spawn(move || lines.for_each(drop));
    Provider(child)
}

fn sign_in(url: &str, user: &str) -> Value {
    let shots = workspace().join("target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(workspace().join("tests/ui/oidc.cjs"))
        .args([url, shots.to_str().unwrap(), user])
        .env("NODE_PATH", lifeboat_e2e::node_modules())
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "signing in as {user} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_with_openid_connect_and_its_groups_claim_decides() {
    lifeboat::install_crypto_provider();
    assert!(
        lifeboat_e2e::node_modules().join("oidc-provider").is_dir(),
        "oidc-provider is not installed: run .ci/build-ui"
    );
    let dir = tempfile::tempdir().unwrap();
    let (sim, _client) = lifeboat_e2e::kubesim(kubesim::Options::default(), true)
        .await
        .unwrap();
    // The `shop-admins` group (from the provider's groups claim) administers shop.
    kubesim::seed::apply(
        &sim.store,
        kubesim::seed::parse(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: shop-admins, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: shop-admins}]
"#,
        )
        .unwrap(),
    )
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();

    let (lifeboat_port, provider_port) = (
        lifeboat_e2e::free_port().unwrap(),
        lifeboat_e2e::free_port().unwrap(),
    );
    let url = format!("http://127.0.0.1:{lifeboat_port}");
    let redirect = format!("{url}/login/oidc/callback");
    let _provider = start_provider(provider_port, &redirect);
    let env = [
        ("LIFEBOAT_LISTEN", format!("127.0.0.1:{lifeboat_port}")),
        ("LIFEBOAT_KUBECONFIG", kubeconfig.display().to_string()),
        (
            "LIFEBOAT_OIDC_ISSUER",
            format!("http://127.0.0.1:{provider_port}"),
        ),
        ("LIFEBOAT_OIDC_CLIENT_ID", "lifeboat".into()),
        (
            "LIFEBOAT_OIDC_CLIENT_SECRET",
            "provider-secret-for-tests".into(),
        ),
        ("LIFEBOAT_OIDC_REDIRECT_URL", redirect.clone()),
    ];
    let _server = lifeboat_e2e::LifeboatProcess::start(dir.path(), &env).unwrap();

    // alice is in shop-admins: she sees shop, and only shop.
    let alice = sign_in(&url, "alice");
    assert_eq!(alice["session"]["username"], "alice@example.com", "{alice}");
    assert_eq!(alice["session"]["method"], "oidc", "{alice}");
    let groups = alice["session"]["groups"].as_array().unwrap();
    assert!(groups.contains(&Value::from("shop-admins")), "{alice}");
    assert_eq!(alice["namespaces"], serde_json::json!(["shop"]), "{alice}");
    // bob has no group the cluster knows: signed in, he sees nothing.
    let bob = sign_in(&url, "bob");
    assert_eq!(bob["session"]["username"], "bob@example.com", "{bob}");
    assert_eq!(bob["namespaces"], serde_json::json!([]), "{bob}");

    // An answer that no sign-in started (forged, or replayed) is refused.
    let forged = reqwest::get(format!(
        "{url}/login/oidc/callback?code=stolen&state=made-up"
    ))
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
    assert!(forged.text().await.unwrap().contains("unknown, used"));
}
