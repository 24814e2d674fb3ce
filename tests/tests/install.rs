//! `lifeboat install` / `uninstall` (the binary) against kubesim: the
//! manifests equal `kubectl kustomize docker/`, apply cleanly with kubectl's
//! server-side apply, install and uninstall through the kubeconfig, and a
//! server configured from the rendered Deployment (its env, its Secrets) on
//! Garage answers `/readyz`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;
use lifeboat_e2e::{LifeboatProcess, S3Server, kubectl, kubesim, lifeboat_bin, stdout_of};
use serde_json::Value;

fn lifeboat(args: &[&str]) -> String {
    stdout_of(Command::new(lifeboat_bin().unwrap()).args(args))
}

/// Objects by (kind, name).
fn by_name(objects: Vec<Value>) -> BTreeMap<(String, String), Value> {
    objects
        .into_iter()
        .map(|o| {
            (
                (
                    o["kind"].as_str().unwrap_or_default().to_string(),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
                o,
            )
        })
        .collect()
}

#[test]
fn the_defaults_are_what_kustomize_renders_from_docker() {
    let listed: Value =
        serde_json::from_str(&lifeboat(&["install", "--dry-run", "-o", "json"])).unwrap();
    let installed = by_name(listed["items"].as_array().unwrap().clone());
    let docker = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker");
    let out = stdout_of(
        Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()))
            .args(["kustomize", docker]),
    );
    let kustomized = by_name(kubesim::seed::parse(&out).unwrap());
    assert_eq!(
        installed.keys().collect::<Vec<_>>(),
        kustomized.keys().collect::<Vec<_>>()
    );
    assert_eq!(installed, kustomized);
}

async fn readyz(url: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = reqwest::get(format!("{url}/readyz"))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 200 || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The environment the rendered Deployment gives its container, with
/// Secret references resolved from the rendered Secrets.
fn container_env(objects: &[Value]) -> Vec<(String, String)> {
    let secrets: BTreeMap<&str, &Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .map(|o| (o["metadata"]["name"].as_str().unwrap(), &o["stringData"]))
        .collect();
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let name = e["name"].as_str()?.to_string();
            if let Some(v) = e["value"].as_str() {
                return Some((name, v.to_string()));
            }
            let r = &e["valueFrom"]["secretKeyRef"];
            let v = secrets.get(r["name"].as_str()?)?[r["key"].as_str()?].as_str()?;
            Some((name, v.to_string()))
        })
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_applies_uninstall_removes_and_the_settings_serve() {
    let (sim, client) = kubesim(kubesim::Options::default(), false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let kubeconfig_arg = kubeconfig.display().to_string();
    let s3 = S3Server::start().await.unwrap();
    let secret_file = write(dir.path(), "s3-secret", &s3.secret_access_key);
    let options = [
        "--namespace",
        "backup-system",
        "--image",
        "registry.example/lifeboat:1.0.0",
        "--bucket",
        &s3.bucket,
        "--endpoint",
        &s3.endpoint,
        "--region",
        &s3.region,
        "--prefix",
        "installed",
        "--access-key-id",
        &s3.access_key_id,
        "--secret-access-key-file",
        &secret_file,
    ];

    // The printed manifests apply cleanly with kubectl's server-side apply.
    let mut args = vec!["install", "--dry-run", "-o", "yaml"];
    args.extend(options);
    let yaml = lifeboat(&args);
    let rendered = kubesim::seed::parse(&yaml).unwrap();
    assert!(
        rendered
            .iter()
            .any(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "lifeboat-s3"),
        "{yaml}"
    );
    let manifests = write(dir.path(), "lifeboat.yaml", &yaml);
    let applied = kubectl(
        &kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "test",
            "-f",
            &manifests,
        ],
    )
    .unwrap();
    assert!(
        applied.contains("deployment.apps/lifeboat serverside-applied"),
        "{applied}"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "backup-system");
    let deployment = deployments.get("lifeboat").await.unwrap();
    let container = &deployment.spec.template.spec.unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example/lifeboat:1.0.0")
    );

    // Lifeboat configured as that Deployment configures it answers /readyz.
    let mut env: Vec<(&str, String)> = Vec::new();
    let from_manifests = container_env(&rendered);
    assert!(
        from_manifests
            .iter()
            .any(|(k, v)| k == "LIFEBOAT_S3_SECRET_ACCESS_KEY" && *v == s3.secret_access_key),
        "{from_manifests:?}"
    );
    for (k, v) in &from_manifests {
        env.push((k.as_str(), v.clone()));
    }
    env.push(("LIFEBOAT_KUBECONFIG", kubeconfig_arg.clone()));
    env.push((
        "LIFEBOAT_DATA_DIR",
        dir.path().join("data").display().to_string(),
    ));
    let server = LifeboatProcess::start(dir.path(), &env).unwrap();
    assert_eq!(readyz(&server.url).await, 200);
    drop(server);

    // `install` applies the same through the kubeconfig, again and again.
    let mut args = vec![
        "install",
        "--kubeconfig",
        &kubeconfig_arg,
        "--namespace",
        "lb2",
        "--no-agent",
    ];
    for _ in 0..2 {
        let out = lifeboat(&args);
        assert!(out.contains("applied Deployment lifeboat"), "{out}");
    }
    let lb2: Api<Deployment> = Api::namespaced(client.clone(), "lb2");
    assert!(lb2.get_opt("lifeboat").await.unwrap().is_some());

    // `uninstall` removes it and keeps the catalog's claim.
    args[0] = "uninstall";
    let out = lifeboat(&args);
    assert!(
        out.contains("deleted Deployment lifeboat") && out.contains("kept namespace lb2"),
        "{out}"
    );
    assert!(lb2.get_opt("lifeboat").await.unwrap().is_none());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "lb2");
    assert!(claims.get_opt("lifeboat-data").await.unwrap().is_some());
}
