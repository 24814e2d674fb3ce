//! Loading objects: multi-document YAML manifests (seeds), the built-in demo
//! cluster, and the optional save file that lets a demo survive a restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::store::Store;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The demo cluster: nodes, a web shop, a database, a cron job, a CRD with
/// custom resources, RBAC, and one crash-looping deployment.
pub const DEMO: &str = include_str!("../seeds/demo.yaml");

/// The CSI snapshot API's CRDs and kubesim's VolumeSnapshotClass, installed
/// with real volume data (`Controllers::volume_data`).
pub const SNAPSHOTS: &str = include_str!("../seeds/snapshots.yaml");

/// Parses multi-document YAML (or JSON) into objects, skipping empty documents.
pub fn parse(text: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).context("parsing YAML")?;
    let mut out = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                out.extend(
                    m.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The field manager `kubectl apply` (client-side) records.
pub const KUBECTL_APPLY: &str = "kubectl-client-side-apply";

/// Creates every object in order (CRDs before their custom resources) the
/// way `kubectl apply -f` does on a new object: the manifest is saved in
/// `kubectl.kubernetes.io/last-applied-configuration`, and the fields it
/// sets are recorded in `managedFields` for `kubectl-client-side-apply`.
pub fn apply(store: &Store, objects: Vec<Value>) -> anyhow::Result<usize> {
    let mut created = 0;
    for mut obj in objects {
        // Nodes are registered by their kubelet, not applied.
        let registered = obj["kind"] == "Node";
        let mut manifest = obj.clone();
        if let Some(a) = manifest["metadata"]["annotations"].as_object_mut() {
            a.remove(LAST_APPLIED);
            if a.is_empty() {
                manifest["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("annotations"));
            }
        }
        if !registered {
            if !obj["metadata"]["annotations"].is_object() {
                obj["metadata"]["annotations"] = serde_json::json!({});
            }
            obj["metadata"]["annotations"][LAST_APPLIED] = Value::String(format!("{manifest}\n"));
        }
        let manager = if registered { "kubelet" } else { KUBECTL_APPLY };
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let Some(rt) = store.find_kind(&api_version, &kind) else {
            bail!("no resource serves {api_version} {kind} (is its CRD earlier in the file?)");
        };
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        store
            .create_by(&rt, ns.as_deref(), obj, false, Some(manager))
            .map_err(|e| anyhow::anyhow!("creating {kind} {name}: {}", e.message))?;
        created += 1;
    }
    Ok(created)
}

/// Loads a manifest file into the store.
pub fn load_file(store: &Store, path: &Path) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    apply(store, parse(&text)?)
}

/// Loads a save file written by [`persist_loop`], keeping uids and timestamps.
pub fn load_saved(store: &Store, path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let objects: Vec<Value> =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    // CRDs first, so their resources are servable when their objects come.
    let (crds, rest): (Vec<Value>, Vec<Value>) = objects
        .into_iter()
        .partition(|o| o["kind"] == "CustomResourceDefinition");
    for obj in crds.into_iter().chain(rest) {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        if let Some(rt) = store.find_kind(api_version, kind) {
            let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            // What the store made at start (default namespaces) is replaced by the saved copy.
            store.purge(&rt, ns.as_deref(), &name);
            store.import(&rt, obj);
        }
    }
    Ok(())
}

/// Saves every object to `path` (temp file + rename) a moment after changes.
pub async fn persist_loop(store: Store, path: PathBuf) {
    let mut changes = store.watch_changes();
    loop {
        if changes.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let objects: Vec<Value> = store.all().into_iter().map(|(_, o)| o).collect();
        let tmp = path.with_extension("tmp");
        let written = serde_json::to_vec(&objects)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "saving the simulated cluster failed");
        }
    }
}
