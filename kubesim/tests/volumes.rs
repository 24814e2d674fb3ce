//! Volume data in kubesim: with `Controllers::volume_data`, the hostpath
//! provisioner makes a real directory for each PV it creates, each node's
//! kubelet lays out its running pods' claims under
//! `nodes/<node>/kubelet/pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount`,
//! and reclaiming a PV (policy Delete) removes its data.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Config};
use serde_json::json;

async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn claims_get_real_directories_that_nodes_mount_for_their_pods() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let mut options = kubesim::Options::default();
    options.controllers.volume_data = Some(data.path().to_path_buf());
    options.restart_interval = Duration::from_millis(100);
    let sim = kubesim::Kubesim::start(options).await.unwrap();
    kubesim::seed::apply(
        &sim.store,
        kubesim::seed::parse(kubesim::seed::DEMO).unwrap(),
    )
    .unwrap();
    let kubeconfig = data.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    claims
        .create(&pp, &serde_json::from_value(json!({"metadata": {"name": "notes"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})).unwrap())
        .await
        .unwrap();
    pods.create(
        &pp,
        &serde_json::from_value(
            json!({"metadata": {"name": "writer", "annotations": {"kubesim.io/append": "rows.log"}},
        "spec": {"containers": [{"name": "w", "image": "busybox"}],
                 "volumes": [{"name": "notes", "persistentVolumeClaim": {"claimName": "notes"}}]}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();

    // Provisioned: the PV's hostPath is a real directory.
    let pv = until("the claim to bind", async || {
        claims.get("notes").await.ok()?.spec?.volume_name
    })
    .await;
    let dir = kubesim::controllers::volume_dir(data.path(), &pv);
    assert!(dir.is_dir(), "{}", dir.display());
    // Running on a node: its kubelet shows the volume where an agent looks.
    let (node, uid) = until("the pod to run", async || {
        let pod = pods.get("writer").await.ok()?;
        let running = pod.status.as_ref()?.phase.as_deref() == Some("Running");
        if !running {
            return None;
        }
        Some((pod.spec?.node_name?, pod.metadata.uid?))
    })
    .await;
    let mount = kubesim::controllers::kubelet_root(data.path(), &node)
        .join("pods")
        .join(&uid)
        .join("volumes/kubernetes.io~csi")
        .join(&pv)
        .join("mount");
    until("the kubelet's mount", async || mount.exists().then_some(())).await;
    // The annotated pods' "application" writes to its volumes, the demo's
    // postgres replicas' (annotated in the StatefulSet's template) included.
    until("the pod to write", async || {
        std::fs::read_to_string(dir.join("rows.log"))
            .ok()
            .filter(|rows| rows.contains("writer wrote a row"))
    })
    .await;
    let postgres: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "data");
    let db_volume = until("postgres-0's claim to bind", async || {
        postgres
            .get("data-postgres-0")
            .await
            .ok()?
            .spec?
            .volume_name
    })
    .await;
    until("postgres-0 to write", async || {
        std::fs::read_to_string(
            kubesim::controllers::volume_dir(data.path(), &db_volume).join("rows.log"),
        )
        .ok()
        .filter(|rows| rows.contains("postgres-0 wrote a row"))
    })
    .await;
    std::fs::write(mount.join("note.txt"), b"written through the pod's mount").unwrap();
    assert_eq!(
        std::fs::read(dir.join("note.txt")).unwrap(),
        b"written through the pod's mount"
    );

    // A VolumeSnapshot is a copy taken now: later writes do not change it,
    // and a claim made from it starts with it.
    let snapshots: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::discovery::ApiResource {
            group: "snapshot.storage.k8s.io".into(),
            version: "v1".into(),
            api_version: "snapshot.storage.k8s.io/v1".into(),
            kind: "VolumeSnapshot".into(),
            plural: "volumesnapshots".into(),
        },
    );
    snapshots
        .create(
            &pp,
            &serde_json::from_value(json!({"apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot", "metadata": {"name": "notes-1"},
            "spec": {"volumeSnapshotClassName": "kubesim-hostpath",
                     "source": {"persistentVolumeClaimName": "notes"}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let content = until("the snapshot to be ready", async || {
        let snap = snapshots.get("notes-1").await.ok()?;
        (snap.data["status"]["readyToUse"] == true).then(|| {
            snap.data["status"]["boundVolumeSnapshotContentName"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    })
    .await;
    std::fs::write(dir.join("note.txt"), b"changed after the snapshot").unwrap();
    let copy = kubesim::controllers::snapshot_dir(data.path(), &content);
    assert_eq!(
        std::fs::read(copy.join("note.txt")).unwrap(),
        b"written through the pod's mount"
    );
    claims
        .create(&pp, &serde_json::from_value(json!({"metadata": {"name": "notes-restored"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "notes-1"}}})).unwrap())
        .await
        .unwrap();
    let restored_pv = until("the restored claim to bind", async || {
        claims.get("notes-restored").await.ok()?.spec?.volume_name
    })
    .await;
    assert_ne!(restored_pv, pv);
    assert_eq!(
        std::fs::read(kubesim::controllers::volume_dir(data.path(), &restored_pv).join("note.txt"))
            .unwrap(),
        b"written through the pod's mount"
    );
    snapshots
        .delete("notes-1", &DeleteParams::default())
        .await
        .unwrap();
    until("the snapshot's copy to go", async || {
        (!copy.exists()).then_some(())
    })
    .await;

    // The pod goes: its layout goes, the data stays with the claim.
    pods.delete("writer", &DeleteParams::default())
        .await
        .unwrap();
    let pod_dir = kubesim::controllers::kubelet_root(data.path(), &node)
        .join("pods")
        .join(&uid);
    until("the pod's layout to go", async || {
        (!pod_dir.exists()).then_some(())
    })
    .await;
    assert!(dir.join("note.txt").is_file());
    // The claim goes: the PV (reclaim Delete) and its data go too.
    claims
        .delete("notes", &DeleteParams::default())
        .await
        .unwrap();
    until("the volume's data to go", async || {
        (!dir.exists()).then_some(())
    })
    .await;
}
