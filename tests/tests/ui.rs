//! The dashboard in a real browser: `lifeboat demo` serves it, Debian's
//! headless Chromium driven by playwright-core (`tests/ui/dashboard.cjs`) uses
//! it. Needs the browser bundle, Node.js, playwright-core and chromium, which
//! `.ci/build-ui` installs. Screenshots of every main page go to
//! `target/ui-screenshots/`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lifeboat_e2e::LifeboatProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_backs_up_browses_and_restores_in_a_real_browser() {
    lifeboat::install_crypto_provider();
    assert!(
        lifeboat::http::ui::find_site_dir(None).is_some(),
        "the browser bundle is not built: run .ci/build-ui"
    );
    assert!(
        lifeboat_e2e::node_modules()
            .join("playwright-core")
            .is_dir(),
        "playwright-core is not installed: run .ci/build-ui"
    );
    let dir = tempfile::tempdir().unwrap();
    let demo = LifeboatProcess::start_demo(dir.path(), &[]).unwrap();
    let spare = dir.path().join("second-location");
    let sign_in_url = demo
        .sign_in_url
        .clone()
        .expect("lifeboat demo prints a one-time sign-in URL");
    lifeboat_e2e::run_browser("backup", &demo.url, &spare, &sign_in_url);

    // The worst day: `shop` is deleted.
    let kubeconfig = dir.path().join("lifeboat-data/demo.kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    namespaces
        .delete("shop", &Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while namespaces.get_opt("shop").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "namespace shop was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The second browser signs in with a token of the cluster's admin.
    let token = lifeboat_e2e::kubeconfig_token(&kubeconfig).expect("the demo kubeconfig's token");
    lifeboat_e2e::run_browser("restore", &demo.url, &spare, &token);
    let restored = namespaces.get_opt("shop-restored").await.unwrap();
    assert!(
        restored.is_some(),
        "the wizard did not create shop-restored"
    );

    // Permission-aware plans: an operator of Lifeboat who holds no
    // Kubernetes rights but creating ConfigMaps in `shop-restored`. Its
    // wizard plan shows what it may not read (`unknown`) and may not write
    // (`forbidden`, with the binding that allows it), and Restore now is
    // refused until the user agrees to a partial restore.
    let operator_role: String = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker/rbac.yaml"),
    )
    .unwrap()
    .split("\n---\n")
    .find(|doc| doc.contains("name: lifeboat-operator\n"))
    .expect("docker/rbac.yaml defines lifeboat-operator")
    .to_string();
    let role_file = dir.path().join("operator.yaml");
    std::fs::write(&role_file, operator_role).unwrap();
    let role_file = role_file.to_str().unwrap();
    for args in [
        &["apply", "-f", role_file][..],
        &["create", "serviceaccount", "ops", "-n", "default"],
        &[
            "create",
            "clusterrolebinding",
            "ops-lifeboat",
            "--clusterrole=lifeboat-operator",
            "--serviceaccount=default:ops",
        ],
        &[
            "create",
            "role",
            "map-writer",
            "-n",
            "shop-restored",
            "--verb=create",
            "--resource=configmaps",
        ],
        &[
            "create",
            "rolebinding",
            "ops-maps",
            "-n",
            "shop-restored",
            "--role=map-writer",
            "--serviceaccount=default:ops",
        ],
    ] {
        lifeboat_e2e::kubectl(&kubeconfig, args).unwrap();
    }
    let ops_token =
        lifeboat_e2e::kubectl(&kubeconfig, &["create", "token", "ops", "-n", "default"]).unwrap();
    let maps_before = lifeboat_e2e::kubectl(
        &kubeconfig,
        &["get", "configmaps", "-n", "shop-restored", "-o", "name"],
    )
    .unwrap();
    lifeboat_e2e::run_browser("forbidden", &demo.url, &spare, ops_token.trim());
    // The refused run wrote nothing, and says so in its record.
    lifeboat_e2e::sign_in_as(&demo.url, &token);
    let restores: serde_json::Value = lifeboat_e2e::get(format!("{}/api/v1/restores", demo.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed: Vec<&serde_json::Value> = restores["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["phase"] == "Failed")
        .collect();
    assert_eq!(failed.len(), 1, "the operator's refused run: {restores}");
    assert!(
        failed[0]["phaseReason"]
            .as_str()
            .is_some_and(|r| r.contains("you may not write")),
        "{}",
        failed[0]
    );
    assert_eq!(
        lifeboat_e2e::kubectl(
            &kubeconfig,
            &["get", "configmaps", "-n", "shop-restored", "-o", "name"]
        )
        .unwrap(),
        maps_before,
        "the refused restore wrote nothing"
    );

    // Continuous protection of `ops`: a schedule keeping a journal, its
    // first backup, then a ConfigMap made and deleted.
    lifeboat_e2e::sign_in_as(&demo.url, &token);
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{}/api/v1/schedules", demo.url),
        serde_json::json!({"name": "ops-pit", "schedule": "0 3 * * *", "continuous": true,
                           "template": {"includedNamespaces": ["ops"]}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    lifeboat_e2e::journal_current(&demo.url, "ops-pit")
        .await
        .expect("the journal of ops-pit became current");
    let (status, body) = lifeboat_e2e::post_json(
        &format!("{}/api/v1/backups", demo.url),
        serde_json::json!({"fromSchedule": "ops-pit", "name": "ops-pit-base"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    lifeboat_e2e::poll_json(
        &format!("{}/api/v1/backups/ops-pit-base", demo.url),
        Duration::from_secs(60),
        |b| b["phase"] == "Completed",
    )
    .await
    .expect("the base backup completed");
    lifeboat_e2e::kubectl(
        &kubeconfig,
        &[
            "create",
            "configmap",
            "keepsake",
            "-n",
            "ops",
            "--from-literal=note=remember-me",
        ],
    )
    .unwrap();
    lifeboat_e2e::kubectl(
        &kubeconfig,
        &["delete", "configmap", "keepsake", "-n", "ops"],
    )
    .unwrap();
    lifeboat_e2e::poll_json(
        &format!("{}/api/v1/namespaces/ops/timeline?hours=1", demo.url),
        Duration::from_secs(60),
        |t| {
            t["changes"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["name"] == "keepsake" && c["op"] == "deleted")
            })
        },
    )
    .await
    .expect("the timeline shows keepsake's deletion");
    lifeboat_e2e::run_browser("timeline", &demo.url, &spare, &token);
    let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(namespaces.into_client(), "ops");
    let back = maps.get_opt("keepsake").await.unwrap();
    assert_eq!(
        back.and_then(|c| c.data)
            .map(|d| d["note"].clone())
            .as_deref(),
        Some("remember-me"),
        "Restore to here did not bring keepsake back"
    );
}
