//! The work of one backup: discover → list (paginated, filtered on the way)
//! → stream into the archive → log → manifest last. Talks to the cluster and
//! storage only; `runner` records what it produces in the catalog. The rules
//! (`References`, `outcome`) are pure.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::discovery::{ApiCapabilities, ApiResource, Scope, verbs};
use serde_json::{Value, json};

use super::BackupPhase;
use super::spec::{BackupSpec, ClusterResources};
use crate::archive::{self, ArchiveWriter, ClusterInfo, Manifest, ObjectLock};
use crate::backup::BackupSpecExt;
use crate::cluster::discovery::gr;
use crate::cluster::discovery::{self, group_resource};
use crate::cluster::pager::Pager;
use crate::cluster::temporary;
use crate::storage::{DynStore, put_bytes};

/// At most this many exactly-named namespaces are listed one by one; more are
/// listed cluster-wide and filtered on the way (one call per resource and page).
pub const PER_NAMESPACE_LISTING_MAX: usize = 5;

/// What the work of a backup reaches: the cluster and the store.
#[derive(Clone)]
pub struct Work {
    pub store: DynStore,
    pub client: kube::Client,
    /// List calls made (for benchmarks and the log).
    pub list_calls: Arc<AtomicU64>,
    /// Signs the manifest (format 3) and, with `encrypt`, encrypts the
    /// archive; `None` writes both unsigned and in the clear.
    pub archive_key: Option<archive::ArchiveKey>,
    /// Encrypt the archive to `archive_key` (false only for a location
    /// explicitly set to `encryption: none`).
    pub encrypt: bool,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The log of one backup, kept in memory (it is small) and written at the end.
#[derive(Default)]
pub struct Log {
    lines: Vec<Value>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

impl Log {
    pub fn info(&mut self, message: impl Into<String>) {
        self.lines
            .push(json!({"time": now(), "level": "info", "message": message.into()}));
    }
    pub fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(warning = %message, "backup warning");
        self.lines
            .push(json!({"time": now(), "level": "warning", "message": message}));
        self.warnings.push(message);
    }
    pub fn error(&mut self, message: impl Into<String>) {
        let message = message.into();
        self.lines
            .push(json!({"time": now(), "level": "error", "message": message}));
        self.errors.push(message);
    }
    fn jsonl(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            out.extend(serde_json::to_vec(line).unwrap_or_default());
            out.push(b'\n');
        }
        out
    }
}

/// What the selected namespaced objects point at, for `auto` cluster resources.
#[derive(Default)]
struct References {
    persistent_volumes: BTreeSet<String>,
    storage_classes: BTreeSet<String>,
    cluster_roles: BTreeSet<String>,
    /// `plural.group` of custom resources that had objects: their CRDs' names.
    crds: BTreeSet<String>,
    namespaces: BTreeSet<String>,
}

impl References {
    fn note(&mut self, gr: &str, obj: &Value) {
        if let Some(ns) = obj["metadata"]["namespace"].as_str() {
            self.namespaces.insert(ns.to_string());
        }
        match gr {
            gr::PERSISTENT_VOLUME_CLAIMS => {
                if let Some(v) = obj["spec"]["volumeName"].as_str() {
                    self.persistent_volumes.insert(v.to_string());
                }
                if let Some(c) = obj["spec"]["storageClassName"].as_str() {
                    self.storage_classes.insert(c.to_string());
                }
            }
            "rolebindings.rbac.authorization.k8s.io" if obj["roleRef"]["kind"] == "ClusterRole" => {
                if let Some(r) = obj["roleRef"]["name"].as_str() {
                    self.cluster_roles.insert(r.to_string());
                }
            }
            _ => {
                self.crds.insert(gr.to_string());
            }
        }
    }

    /// Whether an `auto` backup with a namespace filter takes this cluster-scoped object.
    fn wants(&self, spec: &BackupSpec, gr: &str, obj: &Value) -> bool {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        match gr {
            gr::NAMESPACES => spec.includes_namespace(name),
            gr::PERSISTENT_VOLUMES => {
                self.persistent_volumes.contains(name)
                    || obj["spec"]["claimRef"]["namespace"]
                        .as_str()
                        .is_some_and(|ns| spec.includes_namespace(ns))
            }
            "storageclasses.storage.k8s.io" => self.storage_classes.contains(name),
            gr::CRDS => self.crds.contains(name),
            "clusterroles.rbac.authorization.k8s.io" => self.cluster_roles.contains(name),
            "clusterrolebindings.rbac.authorization.k8s.io" => {
                obj["subjects"].as_array().is_some_and(|s| {
                    s.iter().any(|s| {
                        s["namespace"]
                            .as_str()
                            .is_some_and(|ns| spec.includes_namespace(ns))
                    })
                })
            }
            _ => false,
        }
    }
}

/// Why a backup run stopped (a list that fails is a warning, not this).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the Kubernetes API did not answer: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Discovery(#[from] discovery::DiscoveryError),
    #[error("writing the archive to storage failed: {0}")]
    Archive(#[from] archive::WriteError),
    #[error("writing the {file} to storage failed: {source}")]
    Storage {
        file: &'static str,
        source: crate::storage::StorageError,
    },
    #[error("encoding the {file} failed: {message}")]
    Encode { file: &'static str, message: String },
    #[error("the location's archive key is not available: {0}")]
    Key(String),
}

/// Every listable resource, each underlying resource once (see
/// `take_cohabiting_once`), noting choices in the backup's log.
pub(crate) async fn listable_resources(
    client: &kube::Client,
    log: &mut Log,
) -> Result<Vec<(ApiResource, ApiCapabilities)>, EngineError> {
    let discovered = discovery::discover(client).await?;
    if let Some(why) = &discovered.fallback {
        log.info(why.clone());
    }
    // As Velero: only what can be listed and put back (list, get, create,
    // delete). What is computed on each read, such as metrics.k8s.io's
    // NodeMetrics and PodMetrics, is not state to restore.
    let (listable, read_only): (Vec<_>, Vec<_>) = discovered
        .resources
        .into_iter()
        .filter(|(_, caps)| caps.supports_operation(verbs::LIST))
        .partition(|(_, caps)| {
            [verbs::GET, verbs::CREATE, verbs::DELETE]
                .iter()
                .all(|v| caps.supports_operation(v))
        });
    if !read_only.is_empty() {
        log.info(format!(
            "not backed up, as they cannot be created: {}",
            read_only
                .iter()
                .map(|(ar, _)| group_resource(ar))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (taken, skipped) = discovery::take_cohabiting_once(listable);
    for (ar, kept) in skipped {
        log.info(format!(
            "{}: the same objects as {kept}, taken once through {kept}",
            group_resource(&ar)
        ));
    }
    Ok(taken)
}

/// An object's path in the archive and its bytes.
fn add(batch: &mut Vec<(String, Vec<u8>)>, gr: &str, obj: &Value) {
    let ns = obj["metadata"]["namespace"].as_str();
    let obj_name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let (group, resource) = match gr.split_once('.') {
        Some((r, g)) => (g, r),
        None => ("", gr),
    };
    let path = archive::entry_path(group, resource, ns, obj_name);
    batch.push((path, serde_json::to_vec(obj).unwrap_or_default()));
}

/// Describes a list failure the way a user can act on it.
fn list_failure(gr: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "{gr}: not permitted to list ({}); grant `list` on it to Lifeboat's ServiceAccount to back it up",
            s.message
        ),
        kube::Error::Api(s) => format!(
            "{gr}: listing failed with {} {}: {}",
            s.code, s.reason, s.message
        ),
        other => format!("{gr}: listing failed: {other}"),
    }
}

/// How a backup whose archive was written ends: Completed, or
/// PartiallyFailed with the counts when its log has warnings or errors.
pub fn outcome(log: &Log) -> (BackupPhase, Option<String>) {
    if log.warnings.is_empty() && log.errors.is_empty() {
        return (BackupPhase::Completed, None);
    }
    let reason = format!(
        "{} warning(s), {} error(s); see the log",
        log.warnings.len(),
        log.errors.len()
    );
    (BackupPhase::PartiallyFailed, Some(reason))
}

/// What a backup's listing produced.
pub struct Captured {
    pub items: u64,
    /// The claims and the pods that mount them, for the volume data.
    pub volume_scan: super::volumes::VolumeScan,
    /// The volumes taken (filled after the listing, before the manifest).
    pub volumes: Vec<crate::volumes::VolumeEntry>,
    /// The backup hooks that ran (filled with the volumes).
    pub hooks: Vec<frontend::model::HookRun>,
    counts: BTreeMap<String, u64>,
    pub archive: archive::FileInfo,
    cluster: ClusterInfo,
    /// The key the archive was encrypted with, if it was.
    sealed: Option<archive::ArchiveKey>,
    /// The key the manifest is signed with.
    signer: Option<archive::ArchiveKey>,
}

/// Lists what `spec` selects into the archive `resources.tar.zst`.
/// `on_progress` hears the items and bytes so far, once per resource type
/// that had objects, and once at the end.
pub async fn capture(
    ctx: &Work,
    name: &str,
    spec: &BackupSpec,
    log: &mut Log,
    mut on_progress: impl FnMut(u64, u64),
) -> Result<Captured, EngineError> {
    let cluster = ClusterInfo {
        server_version: ctx
            .client
            .apiserver_version()
            .await
            .map(|v| v.git_version)?,
        id: Api::<Namespace>::all(ctx.client.clone())
            .get("kube-system")
            .await
            .ok()
            .and_then(|n| n.metadata.uid)
            .unwrap_or_default(),
    };
    let resources = listable_resources(&ctx.client, log).await?;
    let (namespaced, cluster_scoped): (Vec<_>, Vec<_>) = resources
        .into_iter()
        .filter(|(ar, _)| spec.includes_resource(&group_resource(ar)))
        .partition(|(_, caps)| caps.scope == Scope::Namespaced);
    log.info(format!(
        "{} namespaced and {} cluster-scoped resource types selected",
        namespaced.len(),
        cluster_scoped.len()
    ));

    let mut writer = ArchiveWriter::start(
        ctx.store.clone(),
        archive::key(name, archive::RESOURCES_FILE),
        ctx.archive_key.clone().filter(|_| ctx.encrypt),
    );
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut items = 0u64;
    let mut refs = References::default();
    let mut volume_scan = super::volumes::VolumeScan::default();
    volume_scan.hook_rules = spec.hooks.clone().map(|h| h.resources).unwrap_or_default();
    let selector = spec.label_selector.as_deref().filter(|s| !s.is_empty());
    let per_namespace = spec
        .exact_namespaces()
        .filter(|n| n.len() <= PER_NAMESPACE_LISTING_MAX);
    let mut failure: Option<archive::WriteError> = None;
    let mut temporary_claims: BTreeSet<(String, String)> = BTreeSet::new();
    let mut left_out = 0u64;
    // Drills' scratch namespaces, and everything in them, are not the user's.
    let scratch: BTreeSet<String> = Api::<Namespace>::all(ctx.client.clone())
        .list(&kube::api::ListParams::default().labels(temporary::TEMPORARY_LABEL))
        .await
        .map(|list| {
            list.items
                .into_iter()
                .filter_map(|ns| ns.metadata.name)
                .collect()
        })
        .unwrap_or_default();

    'resources: for (ar, _) in &namespaced {
        let gr = group_resource(ar);
        let lists: Vec<Option<String>> = match &per_namespace {
            Some(nss) => nss.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        let mut n = 0u64;
        for ns in lists {
            let mut pager = Pager::new(
                &ctx.client,
                ctx.list_calls.clone(),
                ar,
                ns.as_deref(),
                selector,
            );
            loop {
                let page = match pager.next().await {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    Err(e) => {
                        log.warn(list_failure(&gr, &e));
                        continue 'resources;
                    }
                };
                let mut batch = Vec::with_capacity(page.len());
                for obj in page.iter().filter(|o| {
                    o["metadata"]["namespace"]
                        .as_str()
                        .is_some_and(|ns| spec.includes_namespace(ns))
                }) {
                    // Lifeboat's own helper pods, snapshots and snapshot
                    // claims (this backup's, another's running at once, or
                    // a killed one's) are never part of a backup.
                    let in_scratch = obj["metadata"]["namespace"]
                        .as_str()
                        .is_some_and(|ns| scratch.contains(ns));
                    if in_scratch || temporary::is_temporary(obj) {
                        if gr == gr::PERSISTENT_VOLUME_CLAIMS {
                            temporary_claims.insert((
                                obj["metadata"]["namespace"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                                obj["metadata"]["name"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                            ));
                        }
                        left_out += 1;
                        continue;
                    }
                    refs.note(&gr, obj);
                    volume_scan.note(&gr, obj);
                    // A pod without claims runs its hooks where the listing
                    // meets it (one with claims, around their reads).
                    for h in volume_scan.take_listing_hooks() {
                        let (_, ran) = super::hooks::around(&ctx.client, &h, async {}).await;
                        volume_scan.listing_ran.extend(ran);
                    }
                    add(&mut batch, &gr, obj);
                }
                n += batch.len() as u64;
                if let Err(e) = writer.add_batch(batch).await {
                    failure = Some(e);
                    break 'resources;
                }
            }
        }
        if n > 0 {
            *counts.entry(gr.clone()).or_default() += n;
            items += n;
            on_progress(items, writer.raw_bytes);
        }
    }

    let namespace_filter =
        !spec.included_namespaces.is_empty() || !spec.excluded_namespaces.is_empty();
    // Volumes before classes: a selected PV names the StorageClass to take.
    let mut cluster_scoped = cluster_scoped;
    cluster_scoped.sort_by_key(|(ar, _)| match ar.plural.as_str() {
        gr::NAMESPACES => 0,
        gr::PERSISTENT_VOLUMES => 1,
        _ => 2,
    });
    if failure.is_none() && spec.include_cluster_resources != ClusterResources::None {
        'cluster: for (ar, _) in &cluster_scoped {
            let gr = group_resource(ar);
            let auto_refs =
                spec.include_cluster_resources == ClusterResources::Auto && namespace_filter;
            let mut pager = Pager::new(
                &ctx.client,
                ctx.list_calls.clone(),
                ar,
                None,
                if auto_refs { None } else { selector },
            );
            let mut n = 0u64;
            loop {
                let page = match pager.next().await {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    Err(e) => {
                        // Forbidden cluster-scoped types matter only when something would have been taken.
                        if !auto_refs
                            || matches!(gr.as_str(), gr::NAMESPACES | gr::PERSISTENT_VOLUMES)
                        {
                            log.warn(list_failure(&gr, &e));
                        }
                        break;
                    }
                };
                let mut batch = Vec::new();
                for obj in &page {
                    if auto_refs && !refs.wants(spec, &gr, obj) {
                        continue;
                    }
                    if temporary::is_temporary(obj) {
                        left_out += 1;
                        continue;
                    }
                    // The volume of a temporary claim is as temporary as the claim.
                    if gr == gr::PERSISTENT_VOLUMES {
                        let claim = &obj["spec"]["claimRef"];
                        let key = (
                            claim["namespace"].as_str().unwrap_or_default().to_string(),
                            claim["name"].as_str().unwrap_or_default().to_string(),
                        );
                        if temporary_claims.contains(&key) {
                            left_out += 1;
                            continue;
                        }
                    }
                    if gr == gr::PERSISTENT_VOLUMES
                        && let Some(class) = obj["spec"]["storageClassName"].as_str()
                    {
                        refs.storage_classes.insert(class.to_string());
                    }
                    add(&mut batch, &gr, obj);
                }
                n += batch.len() as u64;
                if let Err(e) = writer.add_batch(batch).await {
                    failure = Some(e);
                    break 'cluster;
                }
            }
            if n > 0 {
                *counts.entry(gr).or_default() += n;
                items += n;
            }
        }
    }
    if left_out > 0 {
        log.info(format!(
            "left out {left_out} of Lifeboat's own temporary objects (helper pods, VolumeSnapshots \
             and the claims and volumes made from them, drills' scratch namespaces)"
        ));
    }
    if let Some(e) = failure {
        writer.abort().await;
        return Err(e.into());
    }
    let archive_info = writer.finish().await?;
    on_progress(items, archive_info.size);
    Ok(Captured {
        items,
        volume_scan,
        volumes: Vec::new(),
        hooks: Vec::new(),
        counts,
        archive: archive_info,
        cluster,
        sealed: ctx.archive_key.clone().filter(|_| ctx.encrypt),
        signer: ctx.archive_key.clone(),
    })
}

/// Writes the log, then the manifest, which makes the backup complete; on an
/// immutable location then locks every object of it, and returns until when.
#[allow(clippy::too_many_arguments)]
pub async fn write_log_and_manifest(
    store: &DynStore,
    name: &str,
    spec: &BackupSpec,
    schedule: &Option<String>,
    started_at: &str,
    phase: BackupPhase,
    reason: Option<String>,
    captured: Captured,
    log: &mut Log,
) -> Result<Written, EngineError> {
    let mut files = BTreeMap::new();
    files.insert(
        archive::RESOURCES_FILE.to_string(),
        captured.archive.clone(),
    );
    log.info("writing the log and the manifest");
    let (log_bytes, log_info) =
        archive::compress(&log.jsonl()).map_err(|e| EngineError::Encode {
            file: archive::LOG_FILE,
            message: e.to_string(),
        })?;
    put_bytes(
        store.as_ref(),
        &archive::key(name, archive::LOG_FILE),
        log_bytes,
    )
    .await
    .map_err(|source| EngineError::Storage {
        file: archive::LOG_FILE,
        source,
    })?;
    files.insert(archive::LOG_FILE.to_string(), log_info);
    let expires_at = spec.expires_at(Utc::now());
    let until = lock_until(expires_at.as_deref(), Utc::now());
    let lock = store.lock_mode().map(|mode| ObjectLock {
        mode,
        until: until.to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    let manifest = Manifest {
        format_version: archive::FORMAT_VERSION,
        lifeboat_version: crate::VERSION.to_string(),
        name: name.to_string(),
        cluster: captured.cluster,
        spec: spec.clone(),
        started_at: started_at.to_string(),
        completed_at: now(),
        expires_at: expires_at.clone(),
        phase: phase.as_str().to_string(),
        phase_reason: reason,
        resources: captured.counts,
        items: captured.items,
        files,
        warnings: log.warnings.clone(),
        errors: log.errors.clone(),
        schedule: schedule.clone(),
        volumes: captured.volumes,
        encryption: captured.sealed.as_ref().map(|k| k.encryption()),
        lock: lock.clone(),
        hooks: captured.hooks,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| EngineError::Encode {
        file: archive::MANIFEST_FILE,
        message: e.to_string(),
    })?;
    // The signature goes first: a manifest is never there without it.
    if let Some(key) = &captured.signer {
        let signature =
            serde_json::to_vec_pretty(&key.sign(&bytes)).map_err(|e| EngineError::Encode {
                file: archive::SIGNATURE_FILE,
                message: e.to_string(),
            })?;
        put_bytes(
            store.as_ref(),
            &archive::key(name, archive::SIGNATURE_FILE),
            signature,
        )
        .await
        .map_err(|source| EngineError::Storage {
            file: archive::SIGNATURE_FILE,
            source,
        })?;
    }
    put_bytes(
        store.as_ref(),
        &archive::key(name, archive::MANIFEST_FILE),
        bytes,
    )
    .await
    .map_err(|source| EngineError::Storage {
        file: archive::MANIFEST_FILE,
        source,
    })?;
    let Some(lock) = lock else {
        return Ok(Written {
            expires_at,
            locked_until: None,
        });
    };
    // Locked once complete: a backup that failed halfway can still be removed.
    let mut files: Vec<&str> = manifest.files.keys().map(String::as_str).collect();
    if captured.signer.is_some() {
        files.push(archive::SIGNATURE_FILE);
    }
    files.push(archive::MANIFEST_FILE);
    for file in files {
        store
            .retain(&archive::key(name, file), lock.mode, until)
            .await
            .map_err(|source| EngineError::Storage {
                file: archive::MANIFEST_FILE,
                source,
            })?;
    }
    Ok(Written {
        expires_at,
        locked_until: Some(lock.until),
    })
}

/// The dates a written manifest holds, for the catalog.
pub struct Written {
    pub expires_at: Option<String>,
    pub locked_until: Option<String>,
}

/// How long an immutable location locks a backup without an expiry.
pub const DEFAULT_LOCK_DAYS: i64 = 30;

/// Until when a backup's objects are locked: its expiry, or
/// [`DEFAULT_LOCK_DAYS`] from `now` when it has none, rounded up to the
/// whole second (what S3 Object Lock keeps).
pub fn lock_until(expires_at: Option<&str>, now: DateTime<Utc>) -> DateTime<Utc> {
    let until = expires_at
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| now + chrono::Duration::days(DEFAULT_LOCK_DAYS));
    let whole = until.timestamp() + i64::from(until.timestamp_subsec_nanos() > 0);
    DateTime::from_timestamp(whole, 0).unwrap_or(until)
}

/// Deletes every object of a backup (manifest first, so a half-deleted
/// backup never looks complete).
pub async fn remove_objects(store: &DynStore, name: &str) {
    let _ = store
        .delete(&archive::key(name, archive::MANIFEST_FILE))
        .await;
    if let Ok(objects) =
        crate::storage::list_all(store.as_ref(), &archive::backup_prefix(name)).await
    {
        for o in objects {
            let _ = store.delete(&o.key).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_for(namespaces: &[&str]) -> BackupSpec {
        BackupSpec {
            included_namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn auto_cluster_resources_follow_what_the_namespaced_objects_reference() {
        let spec = spec_for(&["shop"]);
        let mut refs = References::default();
        refs.note(
            gr::PERSISTENT_VOLUME_CLAIMS,
            &json!({"metadata": {"name": "data", "namespace": "shop"},
                    "spec": {"volumeName": "pv-1", "storageClassName": "fast"}}),
        );
        refs.note(
            "rolebindings.rbac.authorization.k8s.io",
            &json!({"metadata": {"name": "ops", "namespace": "shop"},
                    "roleRef": {"kind": "ClusterRole", "name": "view"}}),
        );
        refs.note(
            "widgets.example.com",
            &json!({"metadata": {"name": "w", "namespace": "shop"}}),
        );
        let named = |name: &str| json!({"metadata": {"name": name}});
        assert!(refs.wants(&spec, gr::NAMESPACES, &named("shop")));
        assert!(!refs.wants(&spec, gr::NAMESPACES, &named("other")));
        assert!(refs.wants(&spec, gr::PERSISTENT_VOLUMES, &named("pv-1")));
        // A volume claimed from a selected namespace, though its claim was not listed.
        assert!(refs.wants(
            &spec,
            gr::PERSISTENT_VOLUMES,
            &json!({"metadata": {"name": "pv-9"}, "spec": {"claimRef": {"namespace": "shop"}}})
        ));
        assert!(!refs.wants(&spec, gr::PERSISTENT_VOLUMES, &named("pv-2")));
        assert!(refs.wants(&spec, "storageclasses.storage.k8s.io", &named("fast")));
        assert!(refs.wants(
            &spec,
            "clusterroles.rbac.authorization.k8s.io",
            &named("view")
        ));
        assert!(!refs.wants(
            &spec,
            "clusterroles.rbac.authorization.k8s.io",
            &named("admin")
        ));
        assert!(refs.wants(&spec, gr::CRDS, &named("widgets.example.com")));
        assert!(!refs.wants(&spec, gr::CRDS, &named("gadgets.example.com")));
        let binding = |ns: &str| json!({"metadata": {"name": "b"}, "subjects": [{"kind": "ServiceAccount", "name": "x", "namespace": ns}]});
        assert!(refs.wants(
            &spec,
            "clusterrolebindings.rbac.authorization.k8s.io",
            &binding("shop")
        ));
        assert!(!refs.wants(
            &spec,
            "clusterrolebindings.rbac.authorization.k8s.io",
            &binding("kube-system")
        ));
        assert!(!refs.wants(&spec, "nodes", &named("node-1")));
    }

    #[test]
    fn a_log_with_warnings_or_errors_makes_a_partial_failure() {
        let mut log = Log::default();
        log.info("listing");
        assert_eq!(outcome(&log), (BackupPhase::Completed, None));
        log.warn("secrets: not permitted to list");
        log.error("something else");
        assert_eq!(
            outcome(&log),
            (
                BackupPhase::PartiallyFailed,
                Some("1 warning(s), 1 error(s); see the log".into())
            )
        );
    }
}
