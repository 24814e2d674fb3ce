//! Node agents against kubesim with real volume data: one `lifeboat agent`
//! process per simulated node (the DaemonSet's code path, `--node` and
//! `--kubelet-root`), signed in with a token bound to its pod on that node.
//! A backup of the `data` namespace takes the StatefulSet's volumes through
//! them into the location's repository; the snapshot restores to the same
//! tree. Tokens that are not an agent's, or an agent's for another node,
//! are refused. Then what "Completed means restorable" asks of volumes
//! (`docs/RELIABILITY.md`): empty and odd contents, four first backups at
//! once, a damaged repository, storage faults, a prune during a backup.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use kube::api::{Api, DynamicObject};
use lifeboat::storage::DynStore;
use lifeboat::volumes::repo::{StoreBackend, VolumeRepo};
use lifeboat_e2e::trees::{TreeShape, build_tree, tree_digest};
use lifeboat_e2e::{http, lifeboat_bin, poll_json, serve_lifeboat};
use serde_json::{Value, json};

/// A process killed when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn create(client: &kube::Client, path: &str, body: Value) -> Result<Value> {
    let request = http_request(path, body)?;
    client
        .request::<Value>(request)
        .await
        .with_context(|| format!("POST {path}"))
}

fn http_request(path: &str, body: Value) -> Result<axum::http::Request<Vec<u8>>> {
    Ok(axum::http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?)?)
}

/// A pod on `node` running as `sa` in `ns`, and a token bound to it.
async fn pod_token(
    client: &kube::Client,
    ns: &str,
    sa: &str,
    pod: &str,
    node: &str,
) -> Result<String> {
    let created = create(
        client,
        &format!("/api/v1/namespaces/{ns}/pods"),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
               "spec": {"nodeName": node, "serviceAccountName": sa,
                        "containers": [{"name": "agent", "image": "registry.example/lifeboat:dev"}]}}),
    )
    .await?;
    let uid = created["metadata"]["uid"].as_str().unwrap_or_default();
    let answer = create(
        client,
        &format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid}}}),
    )
    .await?;
    answer["status"]["token"]
        .as_str()
        .map(str::to_string)
        .context("TokenRequest gave no token")
}

/// kubesim with controllers and real volume data, Lifeboat in-process, and
/// one agent process per node with its pod-bound token.
struct Setup {
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
    sim: kubesim::Kubesim,
    client: kube::Client,
    url: String,
    state: lifeboat::http::AppState,
    tokens: BTreeMap<&'static str, String>,
    agents: BTreeMap<&'static str, Agent>,
}

impl Setup {
    async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("cluster");
        // Controllers on: the StatefulSet makes its claims and pods, the
        // provisioner binds them to real directories, the kubelets mount them.
        let mut options = kubesim::Options::default();
        options.controllers.volume_data = Some(data.clone());
        options.restart_interval = Duration::from_millis(100);
        let (sim, client) = lifeboat_e2e::kubesim(options, true).await?;
        let (url, state) = serve_lifeboat(client.clone(), &sim, dir.path()).await?;
        // The agents' identity, as docker/agent.yaml and docker/rbac.yaml make it.
        create(
            &client,
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lifeboat"}}),
        )
        .await?;
        create(&client, "/api/v1/namespaces/lifeboat/serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "lifeboat-agent"}})).await?;
        let rbac: Vec<Value> = kubesim::seed::parse(include_str!("../../docker/rbac.yaml"))?;
        let role = rbac
            .into_iter()
            .find(|o| o["metadata"]["name"] == "lifeboat-node-agent")
            .context("docker/rbac.yaml has the agents' ClusterRole")?;
        create(
            &client,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            role,
        )
        .await?;
        create(&client, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "lifeboat-node-agent"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "lifeboat-node-agent"},
                   "subjects": [{"kind": "ServiceAccount", "name": "lifeboat-agent", "namespace": "lifeboat"}]})).await?;
        let mut setup = Setup {
            dir,
            data,
            sim,
            client,
            url,
            state,
            tokens: BTreeMap::new(),
            agents: BTreeMap::new(),
        };
        for node in ["node-a", "node-b"] {
            let token = pod_token(
                &setup.client,
                "lifeboat",
                "lifeboat-agent",
                &format!("agent-{node}"),
                node,
            )
            .await?;
            setup.tokens.insert(node, token);
            setup.start_agent(node)?;
        }
        Ok(setup)
    }

    /// Starts (or restarts) the agent process of `node`. It runs as root
    /// without the capabilities that bypass file permissions (util-linux's
    /// setpriv), so a file its mode makes unreadable is unreadable to it.
    fn start_agent(&mut self, node: &'static str) -> Result<()> {
        let child = Command::new("setpriv")
            .arg("--bounding-set=-dac_override,-dac_read_search")
            .arg(lifeboat_bin()?)
            .args([
                "agent",
                "--server",
                &self.url,
                "--token",
                &self.tokens[node],
                "--node",
                node,
            ])
            .arg("--kubelet-root")
            .arg(kubesim::controllers::kubelet_root(&self.data, node))
            .env("LIFEBOAT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        self.agents.insert(node, Agent(child));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_back_up_the_volumes_of_their_own_nodes_only() -> Result<()> {
    let setup = Setup::start().await?;
    let Setup {
        dir,
        data,
        sim,
        client,
        url,
        state,
        tokens,
        ..
    } = &setup;

    // Who may not ask for work: an agent for another node, a pod that is
    // not an agent, a user without a pod.
    let work = |token: &str, node: &str| {
        let (url, token, node) = (url.clone(), token.to_string(), node.to_string());
        async move {
            reqwest::Client::new()
                .post(format!("{url}/api/v1/agent/work"))
                .bearer_auth(token)
                .json(&json!({"node": node, "version": "test"}))
                .send()
                .await
        }
    };
    let other_node = work(&tokens["node-a"], "node-b").await?;
    assert_eq!(other_node.status(), 403);
    assert!(other_node.text().await?.contains("runs on node `node-a`"));
    create(
        client,
        "/api/v1/namespaces/data/serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}}),
    )
    .await?;
    let intruder = pod_token(client, "data", "app", "intruder", "node-a").await?;
    let refused = work(&intruder, "node-a").await?;
    assert_eq!(refused.status(), 403, "a pod that is not an agent got work");
    let admin = work(&sim.token, "node-a").await?;
    assert_eq!(admin.status(), 403);
    assert!(admin.text().await?.contains("not bound to a pod"));
    let repository = reqwest::Client::new()
        .get(format!(
            "{url}/api/v1/agent/repository/default/volumes/config"
        ))
        .bearer_auth(&tokens["node-a"])
        .send()
        .await?;
    assert_eq!(
        repository.status(),
        403,
        "an agent without a task reached the repository"
    );

    // The StatefulSet's claims bound and mounted; put a tree in each volume.
    let claims: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "data",
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    );
    // Besides the StatefulSet's claims (class `standard`, whose provisioner
    // has a VolumeSnapshotClass: read through CSI snapshots), two claims of a
    // class without one: `uploads`, mounted by a running pod (read through
    // its mount), and `archive`, mounted by none (read through a helper pod).
    create(client, "/apis/storage.k8s.io/v1/storageclasses",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "plain"},
               "provisioner": "example.com/plain", "reclaimPolicy": "Delete"})).await?;
    for claim in ["uploads", "archive"] {
        create(
            client,
            "/api/v1/namespaces/data/persistentvolumeclaims",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim},
                   "spec": {"storageClassName": "plain", "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .await?;
    }
    create(client, "/api/v1/namespaces/data/pods",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "uploader"},
               "spec": {"containers": [{"name": "app", "image": "registry.example/uploader:1",
                                        "volumeMounts": [{"name": "files", "mountPath": "/files"}]}],
                        "volumes": [{"name": "files", "persistentVolumeClaim": {"claimName": "uploads"}},
                                    {"name": "scratch", "emptyDir": {}}]}})).await?;
    let mut trees = Vec::new();
    for pvc in CLAIMS {
        let pv = bound_volume(&claims, pvc).await?;
        let root = kubesim::controllers::volume_dir(data, &pv).join("tree");
        std::fs::create_dir_all(&root)?;
        build_tree(
            &root,
            TreeShape {
                files: 300,
                sparse_bytes: 64 << 20,
                seed: pvc.len() as u64,
            },
        )?;
        trees.push((pvc, tree_digest(&root)?));
    }
    // Their pods run before the backup reads them.
    pods_running(url, &["postgres-0", "postgres-1", "uploader"]).await?;

    let done = backup(url, "with-data", json!({"includedNamespaces": ["data"]})).await?;
    assert_eq!(done["phase"], "Completed", "{done:#}");
    let volumes = done["manifest"]["volumes"]
        .as_array()
        .context("volumes in the manifest")?;
    assert_eq!(volumes.len(), 4, "{volumes:#?}");

    // Each snapshot restores to the tree that was in the volume.
    let key = state
        .catalog
        .repository_key("default")
        .await?
        .context("a repository key")?;
    let store: DynStore = state.locations.default_store();
    for (pvc, digest) in &trees {
        let volume = volumes
            .iter()
            .find(|v| v["pvc"] == *pvc)
            .context("the claim's volume")?;
        assert_eq!(volume["phase"], "Completed", "{volume:#}");
        let (method, pod) = match *pvc {
            "uploads" => ("fs", "uploader"),
            "archive" => ("fs", "lifeboat-backup-archive-"),
            _ => ("csi", "lifeboat-backup-"),
        };
        assert_eq!(volume["method"], method, "{volume:#}");
        assert!(
            volume["pod"].as_str().is_some_and(|p| p.starts_with(pod)),
            "{volume:#}"
        );
        assert!(volume["bytes"].as_u64() >= Some(digest.bytes), "{volume:#}");
        let snapshot = volume["snapshot"]
            .as_str()
            .context("snapshot id")?
            .to_string();
        let target = dir.path().join(format!("restored-{pvc}"));
        let repo = VolumeRepo::new(
            StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
            &key,
        );
        let into = target.clone();
        tokio::task::spawn_blocking(move || repo.restore(&snapshot, &into)).await??;
        assert_eq!(
            tree_digest(&target.join("tree"))?.digest,
            digest.digest,
            "{pvc}"
        );
    }
    // Opting out: a pod's annotation skips its volume, and a backup's
    // `volumeData: false` skips them all.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "data");
    pods.patch(
        "uploader",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(
            json!({"metadata": {"annotations": {"lifeboat.io/skip-volumes": "files"}}}),
        ),
    )
    .await?;
    for (name, spec) in [
        ("opted-out", json!({"includedNamespaces": ["data"]})),
        (
            "no-data",
            json!({"includedNamespaces": ["data"], "volumeData": false}),
        ),
    ] {
        let b = backup(url, name, spec).await?;
        assert_eq!(b["phase"], "Completed", "{b:#}");
        for v in b["manifest"]["volumes"].as_array().context("volumes")? {
            let (phase, reason) = (
                v["phase"].as_str(),
                v["reason"].as_str().unwrap_or_default(),
            );
            match (name, v["pvc"].as_str()) {
                (_, Some("uploads")) => {
                    assert_eq!(phase, Some("Skipped"), "{v:#}");
                    assert!(reason.contains("lifeboat.io/skip-volumes"), "{v:#}");
                }
                ("opted-out", _) => assert_eq!(phase, Some("Completed"), "{v:#}"),
                _ => {
                    assert_eq!(phase, Some("Skipped"), "{v:#}");
                    assert!(reason.contains("volumeData: false"), "{v:#}");
                }
            }
        }
    }
    // No helper pod, temporary claim or VolumeSnapshot is left behind.
    let left = kubesim_names(client, "/api/v1/namespaces/data/pods").await?;
    assert!(!left.iter().any(|n| n.starts_with("lifeboat-")), "{left:?}");
    let left = kubesim_names(client, "/api/v1/namespaces/data/persistentvolumeclaims").await?;
    assert_eq!(left.len(), 4, "{left:?}");
    let left = kubesim_names(
        client,
        "/apis/snapshot.storage.k8s.io/v1/namespaces/data/volumesnapshots",
    )
    .await?;
    assert!(left.is_empty(), "{left:?}");
    // The key never appears in an API answer.
    assert!(!done.to_string().contains(&key));

    // Restored next to the original: fresh volumes holding the same trees,
    // independent of the originals.
    let copy = restore(
        url,
        json!({"backupName": "with-data", "namespaceMapping": {"data": "data-copy"}}),
    )
    .await?;
    // The bytes each volume's agent wrote, as the restore reports them.
    let written = &copy["volumes"];
    assert_eq!(
        written["volumes"].as_array().map(Vec::len),
        Some(4),
        "{written:#}"
    );
    assert!(
        written["bytesDone"].as_u64() > Some(0) && written["bytesDone"] == written["bytesTotal"],
        "{written:#}"
    );
    let lines = copy["plan"]["items"].as_array().context("the plan")?;
    let volume_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["groupResource"] == "volumes.lifeboat.io")
        .collect();
    assert_eq!(volume_lines.len(), 4, "{lines:#?}");
    for line in &volume_lines {
        assert_eq!(
            (line["namespace"].as_str(), line["result"].as_str()),
            (Some("data-copy"), Some("created")),
            "{line:#}"
        );
    }
    let position = |gr: &str| lines.iter().position(|l| l["groupResource"] == gr);
    assert!(
        position("volumes.lifeboat.io") < position("statefulsets.apps"),
        "the data must be written before the StatefulSet is created"
    );
    let copies = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "data-copy",
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    );
    let originals = trees_by_claim(&claims, data).await?;
    let restored = trees_by_claim(&copies, data).await?;
    for (pvc, digest) in &trees {
        let (original_pv, _) = &originals[*pvc];
        let (copy_pv, copy_root) = &restored[*pvc];
        assert_ne!(
            original_pv, copy_pv,
            "{pvc}: the copy must have its own volume"
        );
        assert_eq!(
            &tree_digest(&copy_root.join("tree"))?.digest,
            &digest.digest,
            "{pvc} in data-copy"
        );
    }
    let (_, copy_root) = &restored["data-postgres-0"];
    std::fs::write(copy_root.join("tree/empty"), b"changed in the copy")?;
    let (_, original_root) = &originals["data-postgres-0"];
    assert_eq!(std::fs::read(original_root.join("tree/empty"))?, b"");
    // No helper pod is left behind.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "data-copy");
    let left: Vec<String> = pods
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .filter(|n| n.starts_with("lifeboat-restore-"))
        .collect();
    assert!(left.is_empty(), "helper pods left: {left:?}");

    // The namespace is lost, its volumes with it (reclaim policy Delete),
    // and restored in place: the StatefulSet's claims come back with the data.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces.delete("data", &Default::default()).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while namespaces.get_opt("data").await?.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "namespace data was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (original_pv, _) in originals.values() {
        assert!(
            !kubesim::controllers::volume_dir(data, original_pv).exists(),
            "{original_pv} survived"
        );
    }
    restore(url, json!({"backupName": "with-data"})).await?;
    let back = trees_by_claim(&claims, data).await?;
    for (pvc, digest) in &trees {
        let (pv, root) = &back[*pvc];
        assert_ne!(pv, &originals[*pvc].0, "{pvc} must get a fresh volume");
        assert_eq!(
            &tree_digest(&root.join("tree"))?.digest,
            &digest.digest,
            "{pvc} restored in place"
        );
    }

    // Verify reads the backup's volume data back: every blob its snapshots
    // reach. One flipped byte in a pack is found and named.
    let verify = || {
        lifeboat::backup::verify::verify(
            &state.catalog,
            &state.locations,
            "with-data",
            "test",
            None,
        )
    };
    let report = verify().await?;
    assert!(report.ok, "{report:?}");
    assert!(
        report
            .checked
            .iter()
            .any(|c| c.starts_with("volume data: ") && c.contains("all their data read back")),
        "{report:?}"
    );
    let packs = lifeboat::storage::list_all(store.as_ref(), "volumes/data/").await?;
    let pack = packs
        .iter()
        .max_by_key(|p| p.size)
        .expect("the repository holds packs");
    let original = lifeboat::storage::get_bytes(store.as_ref(), &pack.key).await?;
    let mut damaged = original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    lifeboat::storage::put_bytes(store.as_ref(), &pack.key, damaged).await?;
    let report = verify().await?;
    assert!(
        !report.ok
            && report
                .problems
                .iter()
                .any(|p| p.starts_with("volume data: ")),
        "{report:?}"
    );
    lifeboat::storage::put_bytes(store.as_ref(), &pack.key, original).await?;

    // Deleting the backups forgets their snapshots; the leader's prune then
    // frees their data, and the repository checks clean.
    for name in ["with-data", "opted-out", "no-data"] {
        let deleted = http(url)
            .delete(format!("{url}/api/v1/backups/{name}"))
            .send()
            .await?;
        assert!(deleted.status().is_success(), "{}", deleted.text().await?);
    }
    let repo = VolumeRepo::new(
        StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
        &key,
    );
    let (snapshots, repo) = tokio::task::spawn_blocking(move || (repo.snapshots(), repo)).await?;
    assert_eq!(snapshots?, Vec::<String>::new());
    let freed = lifeboat::volumes::prune(&state.catalog, &store, "default")
        .await
        .map_err(anyhow::Error::msg)?;
    assert!(
        freed.is_some_and(|bytes| bytes > 0),
        "prune found nothing to remove: {freed:?}"
    );
    assert!(
        !state
            .catalog
            .repository_locked("default", &lifeboat::catalog::now())
            .await?,
        "the prune released the repository lock"
    );
    let again = lifeboat::volumes::prune(&state.catalog, &store, "default")
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(again, Some(0), "a completed prune leaves nothing owed");
    tokio::task::spawn_blocking(move || repo.check()).await??;
    drop(setup);
    Ok(())
}

/// A namespace whose Deployment mounts a claim nothing has written yet and
/// one holding the odd contents real volumes hold. Backed up, verified, the
/// namespace deleted and restored: the empty claim comes back as an empty
/// directory (rustic records no node for it; the restore took that for a
/// missing one and withheld the Deployment), the odd one exactly, and the
/// Deployment is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_claim_and_odd_contents_restore_exactly_with_their_deployment() -> Result<()> {
    let setup = Setup::start().await?;
    let Setup {
        data,
        client,
        url,
        state,
        ..
    } = &setup;
    create(client, "/apis/storage.k8s.io/v1/storageclasses",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "plain"},
               "provisioner": "example.com/plain", "reclaimPolicy": "Delete"})).await?;
    create(
        client,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "empty"}}),
    )
    .await?;
    for claim in ["blank", "odd"] {
        create(
            client,
            "/api/v1/namespaces/empty/persistentvolumeclaims",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim},
                   "spec": {"storageClassName": "plain", "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .await?;
    }
    create(client, "/apis/apps/v1/namespaces/empty/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
                        "template": {"metadata": {"labels": {"app": "app"}},
                                     "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                                               "volumeMounts": [{"name": "blank", "mountPath": "/blank"},
                                                                                {"name": "odd", "mountPath": "/odd"}]}],
                                              "volumes": [{"name": "blank", "persistentVolumeClaim": {"claimName": "blank"}},
                                                          {"name": "odd", "persistentVolumeClaim": {"claimName": "odd"}}]}}}})).await?;
    let claims: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "empty",
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    );
    let blank_pv = bound_volume(&claims, "blank").await?;
    let odd_pv = bound_volume(&claims, "odd").await?;
    let blank_root = kubesim::controllers::volume_dir(data, &blank_pv);
    assert_eq!(
        std::fs::read_dir(&blank_root)?.count(),
        0,
        "a fresh volume is empty"
    );
    let odd_root = kubesim::controllers::volume_dir(data, &odd_pv);
    lifeboat_e2e::trees::build_odd_tree(&odd_root, 1000)?;
    let odd = tree_digest(&odd_root)?;
    deployment_running(url, "empty", "app-").await?;

    let done = backup(url, "e1", json!({"includedNamespaces": ["empty"]})).await?;
    assert_eq!(done["phase"], "Completed", "{done:#}");
    let volumes = done["manifest"]["volumes"].as_array().context("volumes")?;
    assert_eq!(volumes.len(), 2, "{volumes:#?}");
    for v in volumes {
        assert_eq!(
            (v["phase"].as_str(), v["method"].as_str()),
            (Some("Completed"), Some("fs")),
            "{v:#}"
        );
    }
    let report =
        lifeboat::backup::verify::verify(&state.catalog, &state.locations, "e1", "test", None)
            .await?;
    assert!(report.ok, "{report:?}");

    // Debian's restic, as an independent reader, finds the odd tree whole.
    let key = state
        .catalog
        .repository_key("default")
        .await?
        .context("a repository key")?;
    let odd_snapshot = volumes
        .iter()
        .find(|v| v["pvc"] == "odd")
        .and_then(|v| v["snapshot"].as_str())
        .context("the odd claim's snapshot")?;
    let repository = setup.dir.path().join("backups/volumes");
    let listed = restic(&repository, &key, &["ls", odd_snapshot])?;
    assert!(listed.contains("/empty/odd/deep/d/d/d"), "{listed}");
    restic(&repository, &key, &["check"])?;

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces.delete("empty", &Default::default()).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while namespaces.get_opt("empty").await?.is_some() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "namespace empty was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !blank_root.exists() && !odd_root.exists(),
        "the volumes went with the namespace"
    );

    let restored = restore(url, json!({"backupName": "e1"})).await?;
    let lines = restored["plan"]["items"].as_array().context("the plan")?;
    let deployment = lines
        .iter()
        .find(|l| l["groupResource"] == "deployments.apps" && l["name"] == "app")
        .context("the Deployment's line")?;
    assert_eq!(deployment["result"], "created", "{deployment:#}");
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "empty");
    assert!(
        deployments.get_opt("app").await?.is_some(),
        "the Deployment is back"
    );
    let blank_back = kubesim::controllers::volume_dir(data, &bound_volume(&claims, "blank").await?);
    assert_ne!(blank_back, blank_root, "a fresh volume");
    assert!(blank_back.is_dir(), "the empty claim's volume exists");
    assert_eq!(std::fs::read_dir(&blank_back)?.count(), 0, "and is empty");
    let odd_back = kubesim::controllers::volume_dir(data, &bound_volume(&claims, "odd").await?);
    let back = tree_digest(&odd_back)?;
    assert_eq!(back.digest, odd.digest, "the odd tree, exactly");
    assert!(
        back.allocated < 4 << 20,
        "the sparse file stayed sparse: {} bytes allocated",
        back.allocated
    );
    Ok(())
}

/// Four backups of one namespace started together against a location that
/// has no key yet, as four `lifeboat backup create` calls on a fresh
/// install: one key and one repository come of it (they made four, and
/// every later volume operation failed with a MAC error), Debian's restic
/// checks it clean, every backup is Completed and verifies, and none took
/// in the others' helper pods, snapshots or snapshot claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_first_backups_at_once_make_one_repository_and_take_no_temporaries() -> Result<()> {
    let setup = Setup::start().await?;
    let Setup {
        dir,
        client,
        url,
        state,
        ..
    } = &setup;
    pods_running(url, &["postgres-0", "postgres-1"]).await?;
    assert!(state.catalog.repository_key("default").await?.is_none());
    let own_pods = kubesim_names(client, "/api/v1/namespaces/data/pods")
        .await?
        .into_iter()
        .filter(|n| !n.starts_with("lifeboat-"))
        .count() as u64;
    // What a killed backup of an older version left behind (unlabelled but
    // for the backup's name), what a killed one of this version leaves
    // (labelled), and a user's pod whose name merely looks like one.
    create(client, "/api/v1/namespaces/data/pods",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "lifeboat-backup-data-postgres-0-0a1b2c",
                            "labels": {"lifeboat.io/backup": "old", "app.kubernetes.io/managed-by": "lifeboat"}},
               "spec": {"containers": [{"name": "hold", "image": "registry.k8s.io/pause:3.10"}]}})).await?;
    create(client, "/api/v1/namespaces/data/persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "lifeboat-snap-data-postgres-0-0a1b2c", "labels": {"lifeboat.io/backup": "old"}},
               "spec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}})).await?;
    create(client, "/apis/snapshot.storage.k8s.io/v1/namespaces/data/volumesnapshots",
        json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
               "metadata": {"name": "lifeboat-snap-data-postgres-1-3d4e5f",
                            "labels": lifeboat::cluster::temporary::labels(
                                "snapshot", &lifeboat::cluster::temporary::Operation::Backup("killed".into()))},
               "spec": {"source": {"persistentVolumeClaimName": "data-postgres-1"}}})).await?;
    create(client, "/api/v1/namespaces/data/pods",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lifeboat-backup-tool", "labels": {"app": "tool"}},
               "spec": {"containers": [{"name": "tool", "image": "registry.example/tool:1"}]}})).await?;
    let own_pods = own_pods + 1;
    let names = ["c1", "c2", "c3", "c4"];
    let started = futures::future::join_all(names.iter().map(|name| {
        http(url)
            .post(format!("{url}/api/v1/backups"))
            .json(&json!({"name": name, "spec": {"includedNamespaces": ["data"]}}))
            .send()
    }))
    .await;
    for answer in started {
        assert_eq!(answer?.status(), 202);
    }
    for name in names {
        let done = poll_json(
            &format!("{url}/api/v1/backups/{name}"),
            Duration::from_secs(180),
            |b| !matches!(b["phase"].as_str(), Some("New" | "InProgress")),
        )
        .await?;
        assert_eq!(done["phase"], "Completed", "{done:#}");
        let manifest = &done["manifest"];
        let volumes = manifest["volumes"].as_array().context("volumes")?;
        assert_eq!(volumes.len(), 2, "{name}: {volumes:#?}");
        assert!(
            volumes.iter().all(|v| v["phase"] == "Completed"),
            "{volumes:#?}"
        );
        let resources = &manifest["resources"];
        assert_eq!(
            resources["persistentvolumeclaims"], 2,
            "{name}: {resources:#}"
        );
        assert_eq!(resources["pods"], own_pods, "{name}: {resources:#}");
        assert!(
            resources["volumesnapshots.snapshot.storage.k8s.io"].is_null(),
            "{name}: {resources:#}"
        );
    }
    let repository = dir.path().join("backups/volumes");
    let keys = std::fs::read_dir(repository.join("keys"))?.count();
    assert_eq!(keys, 1, "one repository, one key");
    let key = state
        .catalog
        .repository_key("default")
        .await?
        .context("a repository key")?;
    restic(&repository, &key, &["check"])?;
    let snapshots = restic(&repository, &key, &["snapshots", "--json"])?;
    let snapshots: Vec<Value> = serde_json::from_str(&snapshots)?;
    assert_eq!(snapshots.len(), 8, "two volumes from each of four backups");
    for name in names {
        let report =
            lifeboat::backup::verify::verify(&state.catalog, &state.locations, name, "test", None)
                .await?;
        assert!(report.ok, "{name}: {report:?}");
    }
    // The sweep (at start and every GC pass) removes the leftovers of
    // operations no longer running, and nothing it did not label.
    let mut removed = lifeboat::schedule::sweep_temporaries(&state.catalog, client).await?;
    removed.sort();
    assert_eq!(
        removed,
        vec![
            "PersistentVolumeClaim data/lifeboat-snap-data-postgres-0-0a1b2c (backup old)",
            "Pod data/lifeboat-backup-data-postgres-0-0a1b2c (backup old)",
            "VolumeSnapshot data/lifeboat-snap-data-postgres-1-3d4e5f (backup killed)",
        ]
    );
    let pods = kubesim_names(client, "/api/v1/namespaces/data/pods").await?;
    assert!(
        pods.contains(&"lifeboat-backup-tool".to_string()),
        "{pods:?}"
    );
    Ok(())
}

/// Garage behind the test crate's fault-injecting proxy, as an added S3
/// location: round after round, one kind of fault on one kind of request at
/// a rate, while the `data` namespace and its volumes are backed up there.
/// Whatever ends Completed verifies (archive and every volume blob read
/// back) with the faults off; the rest ends Failed or PartiallyFailed with
/// a reason. With the storage gone for good, a backup fails and says so,
/// and the earlier backups stay intact and restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_faults_never_leave_a_completed_backup_that_does_not_restore() -> Result<()> {
    use lifeboat_e2e::faults::{Fault, FaultProxy, Op, Rule};
    let setup = Setup::start().await?;
    let Setup {
        data,
        client,
        url,
        state,
        ..
    } = &setup;
    let s3 = lifeboat_e2e::S3Server::start().await?;
    let proxy = FaultProxy::start(&s3.endpoint, 31).await?;
    let (status, added) = lifeboat_e2e::post_json(
        &format!("{url}/api/v1/storage-locations"),
        json!({"name": "flaky", "kind": "s3", "endpoint": proxy.url, "region": s3.region,
               "bucket": s3.bucket, "prefix": format!("flaky-{}", uuid::Uuid::new_v4().simple()),
               "accessKeyId": s3.access_key_id, "secretAccessKey": s3.secret_access_key}),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let claims: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "data",
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    );
    for (n, pvc) in ["data-postgres-0", "data-postgres-1"].iter().enumerate() {
        let root =
            kubesim::controllers::volume_dir(data, &bound_volume(&claims, pvc).await?).join("tree");
        std::fs::create_dir_all(&root)?;
        build_tree(
            &root,
            TreeShape {
                files: 200,
                sparse_bytes: 0,
                seed: n as u64 + 7,
            },
        )?;
    }
    pods_running(url, &["postgres-0", "postgres-1"]).await?;
    let spec = json!({"includedNamespaces": ["data"], "storageLocation": "flaky"});
    let good = backup(url, "good", spec.clone()).await?;
    assert_eq!(good["phase"], "Completed", "{good:#}");

    let verify = |name: String| async move {
        lifeboat::backup::verify::verify(&state.catalog, &state.locations, &name, "test", None)
            .await
    };
    let ops = [
        Op::Put,
        Op::UploadPart,
        Op::CompleteMultipart,
        Op::Get,
        Op::RangedGet,
        Op::List,
        Op::Head,
    ];
    let faults = [
        Fault::Drop,
        Fault::InternalError,
        Fault::SlowDown,
        Fault::Truncate,
        Fault::LoseAnswer,
        Fault::Stall(Duration::from_secs(2)),
    ];
    let (mut runs, mut completed, mut unrestorable) = (0, 0, Vec::new());
    let mut outcomes = BTreeMap::new();
    for (round, fault) in faults.iter().enumerate() {
        // Each fault kind on every operation at once, on a third of them.
        proxy.set(
            ops.iter()
                .map(|op| Rule {
                    op: *op,
                    fault: *fault,
                    rate: 0.3,
                    limit: Some(20),
                })
                .collect(),
        );
        let name = format!("faulty-{round}");
        let done = backup(url, &name, spec.clone()).await?;
        proxy.set(Vec::new());
        runs += 1;
        let phase = done["phase"].as_str().unwrap_or_default().to_string();
        *outcomes.entry(format!("{fault:?} → {phase}")).or_insert(0) += 1;
        match phase.as_str() {
            "Completed" => {
                completed += 1;
                let report = verify(name.clone()).await?;
                if !report.ok {
                    unrestorable.push(format!("{name}: {report:?}"));
                }
            }
            "Failed" | "PartiallyFailed" => {
                assert!(
                    done["phaseReason"].as_str().is_some_and(|r| !r.is_empty())
                        || done["errors"].as_i64() > Some(0)
                        || done["warnings"].as_i64() > Some(0),
                    "{name} ended {phase} without saying why: {done:#}"
                );
            }
            other => panic!("{name} ended {other}"),
        }
    }
    eprintln!(
        "storage faults: {} injected over {runs} backups ({completed} Completed, {} of them unrestorable): {:?}; {outcomes:?}",
        proxy.injected_total(),
        unrestorable.len(),
        proxy.injected()
    );
    assert!(proxy.injected_total() >= 20, "{:?}", proxy.injected());
    assert!(unrestorable.is_empty(), "{unrestorable:#?}");

    // Storage gone for good: the backup fails, and says it was the storage.
    proxy.set(vec![Rule::always(Op::Any, Fault::Drop)]);
    let down = backup(url, "while-down", spec.clone()).await?;
    proxy.set(Vec::new());
    assert_eq!(down["phase"], "Failed", "{down:#}");
    let reason = down["phaseReason"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        reason.contains("storage") || reason.contains("s3") || reason.contains("reach"),
        "{down:#}"
    );
    // What was Completed before is intact and restores.
    let report = verify("good".into()).await?;
    assert!(report.ok, "{report:?}");
    let copy = restore(
        url,
        json!({"backupName": "good", "namespaceMapping": {"data": "data-good"}}),
    )
    .await?;
    assert_eq!(copy["phase"], "Completed");
    Ok(())
}

/// The damage two creations at once left before provisioning was made
/// exclusive: two key files, the config of the second, the catalog keeping
/// the first. A backup finds it, fails its volumes naming the damage and
/// what to do, and writes nothing over it; `/readyz` and the Storage list
/// report it. The recovery `docs/RELIABILITY.md` gives (move `volumes/`
/// aside) lets the next backup make a new repository with the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_repository_is_reported_and_never_created_over() -> Result<()> {
    let setup = Setup::start().await?;
    let Setup { url, state, .. } = &setup;
    pods_running(url, &["postgres-0", "postgres-1"]).await?;
    let store: DynStore = state.locations.default_store();
    let (kept, other) = (
        lifeboat::volumes::generate_key(),
        lifeboat::volumes::generate_key(),
    );
    for key in [&kept, &other] {
        // The second creation wrote its own key file and config over the first's.
        let _ = store.delete("volumes/config").await;
        let repo = VolumeRepo::new(
            StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
            key,
        );
        tokio::task::spawn_blocking(move || repo.init()).await??;
    }
    state
        .catalog
        .ensure_repository_key("default", &kept, &lifeboat::catalog::now())
        .await?;
    let config_before = lifeboat::storage::get_bytes(store.as_ref(), "volumes/config").await?;

    let done = backup(url, "on-damage", json!({"includedNamespaces": ["data"]})).await?;
    assert_eq!(done["phase"], "PartiallyFailed", "{done:#}");
    for v in done["manifest"]["volumes"].as_array().context("volumes")? {
        let reason = v["reason"].as_str().unwrap_or_default();
        assert_eq!(v["phase"], "Failed", "{v:#}");
        assert!(
            reason.contains("damaged") && reason.contains("docs/RELIABILITY.md"),
            "{v:#}"
        );
    }
    let keys = lifeboat::storage::list_all(store.as_ref(), "volumes/keys/").await?;
    assert_eq!(keys.len(), 2, "nothing was created over it: {keys:?}");
    assert_eq!(
        lifeboat::storage::get_bytes(store.as_ref(), "volumes/config").await?,
        config_before
    );
    let ready: Value = reqwest::get(format!("{url}/readyz")).await?.json().await?;
    let volumes = ready["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "volumes"))
        .context("the volumes component")?;
    assert!(
        volumes["detail"]
            .as_str()
            .is_some_and(|d| d.contains("DAMAGED in location default")),
        "{ready:#}"
    );
    let locations: Value = http(url)
        .get(format!("{url}/api/v1/storage-locations"))
        .send()
        .await?
        .json()
        .await?;
    let default = locations["items"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == "default"))
        .context("the default location")?;
    assert_eq!(default["availability"], "damaged", "{default:#}");

    // The recovery: the damaged repository moved aside; the next backup makes
    // a new one with the key the catalog kept, and the report clears.
    for object in lifeboat::storage::list_all(store.as_ref(), "volumes/").await? {
        let bytes = lifeboat::storage::get_bytes(store.as_ref(), &object.key).await?;
        let aside = object.key.replacen("volumes/", "volumes-damaged/", 1);
        lifeboat::storage::put_bytes(store.as_ref(), &aside, bytes).await?;
        store.delete(&object.key).await?;
    }
    let after = backup(
        url,
        "after-recovery",
        json!({"includedNamespaces": ["data"]}),
    )
    .await?;
    assert_eq!(after["phase"], "Completed", "{after:#}");
    let keys = lifeboat::storage::list_all(store.as_ref(), "volumes/keys/").await?;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let repo = VolumeRepo::new(
        StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
        &kept,
    );
    tokio::task::spawn_blocking(move || repo.check()).await??;
    let ready: Value = reqwest::get(format!("{url}/readyz")).await?.json().await?;
    assert!(
        !ready.to_string().contains("DAMAGED"),
        "the report clears once the repository opens: {ready:#}"
    );
    Ok(())
}

/// A backup while GC prunes the same repository: the prune waits while a
/// volume task runs (its lock is refused), runs once the backup is done,
/// and every backup still there verifies; Debian's restic checks the
/// repository clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_and_a_prune_of_one_repository_leave_every_backup_restorable() -> Result<()> {
    let setup = Setup::start().await?;
    let Setup {
        dir,
        data,
        client,
        url,
        state,
        ..
    } = &setup;
    let claims: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "data",
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    );
    let pv = bound_volume(&claims, "data-postgres-0").await?;
    let root = kubesim::controllers::volume_dir(data, &pv);
    std::fs::create_dir_all(root.join("tree"))?;
    build_tree(
        &root.join("tree"),
        TreeShape {
            files: 300,
            sparse_bytes: 0,
            seed: 3,
        },
    )?;
    pods_running(url, &["postgres-0", "postgres-1"]).await?;
    let spec = json!({"includedNamespaces": ["data"]});
    for name in ["p1", "p2"] {
        let done = backup(url, name, spec.clone()).await?;
        assert_eq!(done["phase"], "Completed", "{done:#}");
        // p2 holds data p1 does not, so deleting p1 leaves something to prune.
        change_some(&root.join("tree"))?;
    }
    let deleted = http(url)
        .delete(format!("{url}/api/v1/backups/p1"))
        .send()
        .await?;
    assert!(deleted.status().is_success(), "{}", deleted.text().await?);

    // Bulk, so the next backup's volume task runs a while.
    {
        let mut random = std::fs::File::open("/dev/urandom")?;
        let mut out = std::fs::File::create(root.join("bulk.bin"))?;
        std::io::copy(&mut std::io::Read::take(&mut random, 96 << 20), &mut out)?;
    }
    let created = http(url)
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": "p3", "spec": spec}))
        .send()
        .await?;
    assert_eq!(created.status(), 202);
    let store: DynStore = state.locations.default_store();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let tasks = state.catalog.volume_tasks_of("p3").await?;
        if tasks.iter().any(|t| t.state == "running") {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no task ran: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let busy = lifeboat::volumes::prune(&state.catalog, &store, "default")
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(busy, None, "a prune ran while a volume task did");
    let p3 = poll_json(
        &format!("{url}/api/v1/backups/p3"),
        Duration::from_secs(180),
        |b| !matches!(b["phase"].as_str(), Some("New" | "InProgress")),
    )
    .await?;
    assert_eq!(p3["phase"], "Completed", "{p3:#}");
    let pruned = lifeboat::volumes::prune(&state.catalog, &store, "default")
        .await
        .map_err(anyhow::Error::msg)?;
    assert!(pruned.is_some(), "the prune ran once the backup was done");
    for name in ["p2", "p3"] {
        let report =
            lifeboat::backup::verify::verify(&state.catalog, &state.locations, name, "test", None)
                .await?;
        assert!(report.ok, "{name}: {report:?}");
    }
    let key = state
        .catalog
        .repository_key("default")
        .await?
        .context("a key")?;
    restic(&dir.path().join("backups/volumes"), &key, &["check"])?;
    Ok(())
}

/// Rewrites every tenth file under `root` with new bytes.
fn change_some(root: &std::path::Path) -> Result<()> {
    lifeboat_e2e::trees::change_files(root, 10)?;
    Ok(())
}

/// Runs Debian's `restic` on a repository directory with `key`; its stdout.
fn restic(repository: &std::path::Path, key: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("restic")
        .arg("-r")
        .arg(repository)
        .args(args)
        .env("RESTIC_PASSWORD", key)
        .env(
            "RESTIC_CACHE_DIR",
            repository.with_extension("restic-cache"),
        )
        .output()
        .context("running Debian's restic (apt-get install restic)")?;
    anyhow::ensure!(
        out.status.success(),
        "restic {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until a pod whose name starts with `prefix` runs in `namespace`.
async fn deployment_running(url: &str, namespace: &str, prefix: &str) -> Result<()> {
    poll_json(
        &format!("{url}/api/v1/namespaces/{namespace}"),
        Duration::from_secs(30),
        |ns| {
            ns["pods"].as_array().is_some_and(|pods| {
                pods.iter().any(|p| {
                    p["name"].as_str().is_some_and(|n| n.starts_with(prefix))
                        && p["phase"] == "Running"
                })
            })
        },
    )
    .await?;
    Ok(())
}

/// The PV a claim is bound to, once the StatefulSet controller has made
/// the claim and the provisioner bound it.
async fn bound_volume(claims: &Api<DynamicObject>, pvc: &str) -> Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let claim = claims.get_opt(pvc).await?;
        if let Some(pv) = claim
            .as_ref()
            .and_then(|c| c.data["spec"]["volumeName"].as_str())
        {
            return Ok(pv.to_string());
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "{pvc} never bound");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until these pods of namespace `data` run (as the dashboard sees them).
async fn pods_running(url: &str, names: &[&str]) -> Result<()> {
    poll_json(
        &format!("{url}/api/v1/namespaces/data"),
        Duration::from_secs(30),
        |ns| {
            names.iter().all(|name| {
                ns["pods"].as_array().is_some_and(|pods| {
                    pods.iter()
                        .any(|p| p["name"] == *name && p["phase"] == "Running")
                })
            })
        },
    )
    .await?;
    Ok(())
}

/// The claims the test puts data in.
const CLAIMS: [&str; 4] = ["data-postgres-0", "data-postgres-1", "uploads", "archive"];

/// The names of the objects a list path returns.
async fn kubesim_names(client: &kube::Client, path: &str) -> Result<Vec<String>> {
    let list: Value = client
        .request(axum::http::Request::get(path).body(Vec::new())?)
        .await?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect())
}

/// Runs a backup to its end and returns it, whatever its phase.
async fn backup(url: &str, name: &str, spec: Value) -> Result<Value> {
    let created = http(url)
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": name, "spec": spec}))
        .send()
        .await?;
    assert_eq!(created.status(), 202, "{}", created.text().await?);
    poll_json(
        &format!("{url}/api/v1/backups/{name}"),
        Duration::from_secs(120),
        |b| !matches!(b["phase"].as_str(), Some("New" | "InProgress")),
    )
    .await
}

/// Runs a restore to its end and returns it; it must complete.
async fn restore(url: &str, spec: Value) -> Result<Value> {
    let created = http(url)
        .post(format!("{url}/api/v1/restores"))
        .json(&json!({"spec": spec}))
        .send()
        .await?;
    assert_eq!(created.status(), 202, "{}", created.text().await?);
    let created: Value = created.json().await?;
    let name = created["name"]
        .as_str()
        .context("restore name")?
        .to_string();
    let done = poll_json(
        &format!("{url}/api/v1/restores/{name}"),
        Duration::from_secs(120),
        |r| !matches!(r["phase"].as_str(), Some("New" | "InProgress")),
    )
    .await?;
    assert_eq!(done["phase"], "Completed", "{done:#}");
    Ok(done)
}

/// The StatefulSet's claims in a namespace: each one's PV and its directory,
/// once bound.
async fn trees_by_claim(
    claims: &Api<DynamicObject>,
    data: &std::path::Path,
) -> Result<std::collections::BTreeMap<&'static str, (String, std::path::PathBuf)>> {
    let mut out = std::collections::BTreeMap::new();
    for pvc in CLAIMS {
        let claim = claims.get(pvc).await?;
        let pv = claim.data["spec"]["volumeName"]
            .as_str()
            .context("bound")?
            .to_string();
        out.insert(
            pvc,
            (pv.clone(), kubesim::controllers::volume_dir(data, &pv)),
        );
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_backup_fails_its_volume_and_the_next_backup_succeeds() -> Result<()> {
    let mut setup = Setup::start().await?;
    // Enough data that the agent is still at it when it is killed.
    let claims: Api<DynamicObject> = Api::namespaced_with(
        setup.client.clone(),
        "data",
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    );
    let pv = bound_volume(&claims, "data-postgres-0").await?;
    // A file the agent may not read, in the other replica's volume.
    let other = bound_volume(&claims, "data-postgres-1").await?;
    let unreadable = kubesim::controllers::volume_dir(&setup.data, &other).join("unreadable.bin");
    std::fs::write(&unreadable, b"secret")?;
    std::fs::write(unreadable.with_file_name("notes.txt"), b"readable")?;
    std::fs::set_permissions(
        &unreadable,
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )?;
    let big = kubesim::controllers::volume_dir(&setup.data, &pv).join("big.bin");
    let mut random = std::fs::File::open("/dev/urandom")?;
    let mut out = std::fs::File::create(&big)?;
    std::io::copy(&mut std::io::Read::take(&mut random, 256 << 20), &mut out)?;
    drop(out);
    pods_running(&setup.url, &["postgres-0", "postgres-1"]).await?;

    let url = setup.url.clone();
    let created = http(&url)
        .post(format!("{url}/api/v1/backups"))
        .json(&json!({"name": "interrupted", "spec": {"includedNamespaces": ["data"]}}))
        .send()
        .await?;
    assert_eq!(created.status(), 202);
    // Kill the agent that reads the big volume once it has made progress.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let node = loop {
        let tasks = setup.state.catalog.volume_tasks_of("interrupted").await?;
        if let Some(task) = tasks.iter().find(|t| {
            t.spec.contains("data-postgres-0") && t.state == "running" && t.bytes_done > 0
        }) {
            break task.node.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the big volume's task never ran: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let node: &'static str = if node == "node-a" { "node-a" } else { "node-b" };
    setup.agents.remove(node);

    let done = poll_json(
        &format!("{}/api/v1/backups/interrupted", setup.url),
        Duration::from_secs(90),
        |b| !matches!(b["phase"].as_str(), Some("New" | "InProgress")),
    )
    .await?;
    assert_eq!(done["phase"], "PartiallyFailed", "{done:#}");
    let volumes = done["manifest"]["volumes"].as_array().context("volumes")?;
    let killed = volumes
        .iter()
        .find(|v| v["pvc"] == "data-postgres-0")
        .context("the big volume")?;
    assert_eq!(killed["phase"], "Failed", "{killed:#}");
    assert!(
        killed["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped reporting"),
        "{killed:#}"
    );
    let other = volumes
        .iter()
        .find(|v| v["pvc"] == "data-postgres-1")
        .context("the other volume")?;
    assert_eq!(other["phase"], "Completed", "{other:#}");
    // The unreadable file is named in a warning, and the rest was backed up.
    let warnings = other["warnings"].as_array().context("warnings")?;
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("unreadable.bin"))),
        "{other:#}"
    );
    assert!(other["files"].as_u64() >= Some(1), "{other:#}");
    std::fs::remove_file(&unreadable)?;

    // The repository is sound, and with the agent back the next backup completes.
    let key = setup
        .state
        .catalog
        .repository_key("default")
        .await?
        .context("key")?;
    let repo = VolumeRepo::new(
        StoreBackend::new(
            setup.state.locations.default_store(),
            tokio::runtime::Handle::current(),
        ),
        &key,
    );
    tokio::task::spawn_blocking(move || repo.check()).await??;
    setup.start_agent(node)?;
    let after = backup(&url, "after", json!({"includedNamespaces": ["data"]})).await?;
    assert_eq!(after["phase"], "Completed", "{after:#}");
    Ok(())
}

/// A CSI snapshot that never becomes ready (its driver does not answer, as
/// with a broken CSI driver) fails its volume with the reason after the
/// timeout, and the VolumeSnapshot and temporary claim are removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_never_becomes_ready_times_out_and_leaves_nothing() -> Result<()> {
    use lifeboat::backup::volumes::{Take, VolumeScan, back_up};
    let dir = tempfile::tempdir()?;
    let mut options = kubesim::Options::default();
    options.controllers.volume_data = Some(dir.path().join("cluster"));
    let (_sim, client) = lifeboat_e2e::kubesim(options, false).await?;
    create(&client, "/apis/storage.k8s.io/v1/storageclasses",
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "broken"},
               "provisioner": "csi.example.com"})).await?;
    create(&client, "/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses",
        json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
               "metadata": {"name": "broken-snapshots"}, "driver": "csi.example.com", "deletionPolicy": "Delete"})).await?;
    create(
        &client,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}}),
    )
    .await?;
    create(
        &client,
        "/api/v1/namespaces/app/persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
               "spec": {"storageClassName": "broken", "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await?;
    let claims: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "app",
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    );
    bound_volume(&claims, "data").await?;
    let claim = serde_json::to_value(claims.get("data").await?)?;

    let mut scan = VolumeScan::default();
    scan.note("persistentvolumeclaims", &claim);
    let (catalog, _) = lifeboat_e2e::local_catalog(dir.path()).await?;
    let dispatcher = lifeboat::volumes::dispatch::Dispatcher { catalog };
    let take = Take {
        work: &dispatcher,
        client: &client,
        backup: "never-ready",
        location: "default",
        helper_image: lifeboat::volumes::helper::DEFAULT_IMAGE,
        snapshot_timeout: Duration::from_secs(2),
    };
    let (entries, hooks_ran) = back_up(take, scan.plan(), Vec::new()).await;
    assert!(hooks_ran.is_empty());
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(
        (entry.phase.as_str(), entry.method),
        ("Failed", lifeboat::volumes::Method::Csi),
        "{entry:?}"
    );
    let reason = entry.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("was not ready to use within 2 s"),
        "{reason}"
    );
    let snapshots = kubesim_names(
        &client,
        "/apis/snapshot.storage.k8s.io/v1/namespaces/app/volumesnapshots",
    )
    .await?;
    assert!(snapshots.is_empty(), "{snapshots:?}");
    let claims = kubesim_names(&client, "/api/v1/namespaces/app/persistentvolumeclaims").await?;
    assert_eq!(claims, vec!["data".to_string()]);
    Ok(())
}

/// Backup hooks around a pod's volume reads (docs/HOOKS.md): the pre hook
/// runs before the agent reads the pod's claim and the post hook after it,
/// both in the log; a pre hook that fails with `Fail` leaves the claim
/// unread (no task ever reaches an agent) and fails the backup, while the
/// post hook still runs; with `Continue` the claim is read and the backup,
/// PartiallyFailed, restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_around_a_pods_volume_reads_and_a_failing_pre_hook_leaves_them_unread()
-> Result<()> {
    let setup = Setup::start().await?;
    let Setup {
        data,
        client,
        url,
        state,
        ..
    } = &setup;
    let pv = database_pod(
        client,
        "db",
        json!({
            "pre.hook.backup.velero.io/command": "[\"/bin/sh\", \"-c\", \"echo checkpoint complete\"]",
            "post.hook.backup.velero.io/command": "[\"/bin/sh\", \"-c\", \"echo writes resumed\"]"}),
    )
    .await?;
    std::fs::write(
        kubesim::controllers::volume_dir(data, &pv).join("base.dat"),
        b"committed rows\n",
    )?;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "db");
    let log_of = |name: &'static str| async move {
        Ok::<String, anyhow::Error>(
            lifeboat_e2e::get(format!("{url}/api/v1/backups/{name}/log"))
                .await?
                .text()
                .await?,
        )
    };

    // Velero's annotations: pre, the read, post.
    let done = backup(url, "hooked", json!({"includedNamespaces": ["db"]})).await?;
    assert_eq!(done["phase"], "Completed", "{done:#}");
    let volume = &done["manifest"]["volumes"][0];
    assert_eq!(
        (volume["pvc"].as_str(), volume["phase"].as_str()),
        (Some("pgdata"), Some("Completed")),
        "{volume:#}"
    );
    let log = log_of("hooked").await?;
    assert!(
        log.contains("pre hook in db/pg-0 container postgres")
            && log.contains("checkpoint complete"),
        "{log}"
    );
    assert!(
        log.contains("post hook in db/pg-0 container postgres") && log.contains("writes resumed"),
        "{log}"
    );
    assert_eq!(state.catalog.volume_tasks_of("hooked").await?.len(), 1);

    // A pre hook that fails with Fail: the claim is never read, the post
    // hook still runs, the backup fails and says why.
    let annotate = |annotations: Value| {
        let pods = pods.clone();
        async move {
            pods.patch(
                "pg-0",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"metadata": {"annotations": annotations}})),
            )
            .await
        }
    };
    annotate(json!({"pre.hook.backup.lifeboat.io/command":
        "[\"/bin/sh\", \"-c\", \"echo 'could not checkpoint: too many clients' >&2; exit 2\"]"}))
    .await?;
    let failed = backup(url, "refused", json!({"includedNamespaces": ["db"]})).await?;
    assert_eq!(failed["phase"], "Failed", "{failed:#}");
    let reason = failed["phaseReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("exit code 2") && reason.contains("too many clients"),
        "{reason}"
    );
    assert!(
        state.catalog.volume_tasks_of("refused").await?.is_empty(),
        "a claim was read though its pod's pre hook failed"
    );

    // With Continue the claim is read; the backup is kept and restores.
    annotate(json!({"pre.hook.backup.lifeboat.io/on-error": "Continue"})).await?;
    let kept = backup(url, "continued", json!({"includedNamespaces": ["db"]})).await?;
    assert_eq!(kept["phase"], "PartiallyFailed", "{kept:#}");
    assert_eq!(
        kept["manifest"]["volumes"][0]["phase"], "Completed",
        "{kept:#}"
    );
    let log = log_of("continued").await?;
    assert!(
        log.contains("exit code 2")
            && log.contains("on-error: Continue")
            && log.contains("writes resumed"),
        "{log}"
    );
    let report = lifeboat::backup::verify::verify(
        &state.catalog,
        &state.locations,
        "continued",
        "test",
        None,
    )
    .await?;
    assert!(report.ok, "{report:?}");
    Ok(())
}

/// A namespace `ns` with one claim, `pgdata`, and one Running pod, `pg-0`,
/// mounting it, with these annotations; the claim's PersistentVolume.
async fn database_pod(client: &kube::Client, ns: &str, annotations: Value) -> Result<String> {
    let classes: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::api::ApiResource::erase::<k8s_openapi::api::storage::v1::StorageClass>(&()),
    );
    if classes.get_opt("plain").await?.is_none() {
        create(client, "/apis/storage.k8s.io/v1/storageclasses",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "plain"},
                   "provisioner": "example.com/plain", "reclaimPolicy": "Delete"})).await?;
    }
    create(
        client,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await?;
    create(
        client,
        &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pgdata"},
               "spec": {"storageClassName": "plain", "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await?;
    create(client, &format!("/api/v1/namespaces/{ns}/pods"),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "pg-0", "annotations": annotations},
               "spec": {"containers": [{"name": "postgres", "image": "postgres:16",
                                         "volumeMounts": [{"name": "pgdata", "mountPath": "/var/lib/postgresql/data"}]}],
                        "volumes": [{"name": "pgdata", "persistentVolumeClaim": {"claimName": "pgdata"}}]}})).await?;
    let claims: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    );
    let pv = bound_volume(&claims, "pgdata").await?;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    let running = kube::runtime::wait::await_condition(
        pods,
        "pg-0",
        kube::runtime::conditions::is_pod_running(),
    );
    tokio::time::timeout(Duration::from_secs(30), running).await??;
    Ok(pv)
}

/// kubesim's database (`kubesim.io/database`) writes its records in halves
/// while its volume is read. Without hooks a copy can end inside a record:
/// torn. With `checkpoint` as the pre hook and `resume` as the post hook,
/// twenty copies in a row, taken while it writes, are whole, and each holds
/// more records than the last (the writes went on between them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hooked_copy_of_a_writing_database_is_whole_every_time_and_an_unhooked_one_can_tear()
-> Result<()> {
    use kubesim::database::{Health, check};
    let setup = Setup::start().await?;
    let Setup {
        dir,
        data,
        client,
        url,
        state,
        ..
    } = &setup;
    let pv = database_pod(
        client,
        "db",
        json!({"kubesim.io/database": "pgdata.db",
               "post.hook.restore.lifeboat.io/command": "check",
               "post.hook.restore.lifeboat.io/on-error": "Fail"}),
    )
    .await?;
    // The database writes.
    let file = kubesim::controllers::volume_dir(data, &pv).join("pgdata.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read(&file).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count()) < 3 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the database never wrote"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store: DynStore = state.locations.default_store();
    // Backs up the namespace with its volume and reads the copy's file.
    let copy_of = |name: String| {
        let store = store.clone();
        async move {
            let done = backup(url, &name, json!({"includedNamespaces": ["db"]})).await?;
            let key = state
                .catalog
                .repository_key("default")
                .await?
                .context("a repository key")?;
            let snapshot = done["manifest"]["volumes"][0]["snapshot"]
                .as_str()
                .context("the volume's snapshot")?
                .to_string();
            let into = dir.path().join(&name);
            let repo = VolumeRepo::new(
                StoreBackend::new(store, tokio::runtime::Handle::current()),
                &key,
            );
            let target = into.clone();
            tokio::task::spawn_blocking(move || repo.restore(&snapshot, &target)).await??;
            let health = check(&std::fs::read(into.join("pgdata.db"))?);
            Ok::<(Value, Health), anyhow::Error>((done, health))
        }
    };

    // Unhooked: within twenty copies, one ends inside a record. (When the
    // file grew during the read the backup warns that it changed; a read
    // that fell inside a record's half-written moment cannot tell.)
    let mut torn = None;
    for i in 0..20 {
        if let (_, Health::Torn { why, .. }) = copy_of(format!("bare-{i}")).await? {
            torn = Some(why);
            break;
        }
    }
    let why = torn.context("twenty unhooked copies of a writing database, none torn")?;
    assert!(why.contains("half-written"), "{why}");

    // Hooked: twenty copies, every one whole, each with more than the last.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "db");
    pods.patch(
        "pg-0",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"annotations": {
            "pre.hook.backup.lifeboat.io/command": "[\"/bin/sh\", \"-c\", \"checkpoint 120\"]",
            "post.hook.backup.lifeboat.io/command": "resume"}}})),
    )
    .await?;
    let mut last = 0;
    for i in 0..20 {
        match copy_of(format!("hooked-{i}")).await? {
            (done, Health::Consistent { last: now, .. }) => {
                // Held still while read: no warning.
                assert_eq!(done["phase"], "Completed", "{done:#}");
                assert!(now > last, "copy {i}: record {now} after {last}");
                last = now;
            }
            (_, Health::Torn { why, .. }) => anyhow::bail!("hooked copy {i} is torn: {why}"),
        }
    }
    // Restored next to it, the database starts from the copy and its
    // post-restore hook finds every record whole.
    let copy = restore(
        url,
        json!({"backupName": "hooked-19", "namespaceMapping": {"db": "db-copy"}}),
    )
    .await?;
    let pod = copy["plan"]["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|i| i["groupResource"] == "pods" && i["name"] == "pg-0")
        .context("the pod's line")?;
    assert_eq!(pod["result"], "created", "{pod:#}");
    assert_eq!(pod["hooks"][0]["exitCode"], 0, "{pod:#}");
    let said = pod["hooks"][0]["stdout"].as_str().unwrap_or_default();
    assert!(
        said.starts_with("pgdata.db: ") && said.contains("consistent"),
        "{pod:#}"
    );

    // The post hook let it go on writing (a checkpoint alone holds 120 s).
    let held = std::fs::metadata(&file)?.len();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&file)?.len() <= held {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the database stopped writing after the last hooked copy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
