//! The work of a restore: verify → load → plan → apply, tier by tier. Talks
//! to storage and the cluster only; what is recorded in the catalog, and
//! when, is `runner`'s. The rules (`decide`, `outcome`, the plan's summary) are pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, verbs};
use serde::Serialize;
use serde_json::{Value, json};

use super::RestorePhase;
use super::items::{self, Item};
use super::spec::{ExistingResourcePolicy, RestoreSpec};
use crate::archive::{self, ArchiveError, Manifest};
use crate::cluster::discovery;
use crate::cluster::discovery::gr;
use crate::cluster::pager::Pager;
use crate::storage::DynStore;
use crate::volumes::VolumeEntry;

pub use super::volumes::VolumeRestore;
use crate::restore::RestoreSpecExt;

/// Items started at once within one tier. How many of their writes reach
/// the server at once is the client's write window's to decide
/// ([`crate::cluster::pacing`]: more while the server takes them, fewer when
/// it answers 429 or 5xx).
pub const CONCURRENCY: usize = crate::cluster::pacing::MAX_WINDOW;
/// Volume restores run at once (each is a node agent's work).
const VOLUME_CONCURRENCY: usize = 8;

pub use frontend::model::{Action, ItemResult, PlanItem, PlanSummary, PointInTime, RestorePlan};

/// Keeps the entries a restore can use: namespaced objects of the
/// namespaces its spec selects (all without a spec), and every
/// cluster-scoped one (the plan says why each is left out). The rest are
/// skipped unread. What it keeps goes to a parser on its own thread, so
/// objects are parsed while the archive is still being decompressed.
struct Selection {
    spec: Option<RestoreSpec>,
    parser: std::sync::mpsc::SyncSender<archive::Entry>,
}

impl archive::reader::Visitor for Selection {
    fn wants(&mut self, name: &archive::EntryName) -> bool {
        match (&self.spec, &name.namespace) {
            (Some(spec), Some(ns)) => spec.includes_namespace(ns),
            _ => true,
        }
    }

    fn visit(&mut self, entry: archive::Entry) -> Result<(), ArchiveError> {
        self.parser
            .send(entry)
            .map_err(|_| ArchiveError::damaged(archive::RESOURCES_FILE, "the parser stopped"))
    }
}

/// Entries parsed into items, in the order they came; the first entry that
/// is not JSON fails them all.
fn parse_entries(
    entries: std::sync::mpsc::Receiver<archive::Entry>,
) -> Result<Vec<Item>, ArchiveError> {
    let mut items = Vec::new();
    let mut failed = None;
    for entry in entries {
        if failed.is_some() {
            continue;
        }
        match serde_json::from_slice(&entry.data) {
            Ok(object) => items.push(Item {
                group_resource: entry.name.group_resource,
                namespace: entry.name.namespace,
                name: entry.name.name,
                object,
            }),
            Err(e) => {
                failed = Some(ArchiveError::Damaged {
                    file: archive::RESOURCES_FILE.into(),
                    message: format!("`{}` is not JSON: {e}", entry.name.path),
                })
            }
        }
    }
    failed.map_or(Ok(items), Err)
}

/// Reads a backup through the verifying reader: the manifest (its signature
/// checked with `key`, the location's; `known_format` is the format the
/// catalog saw), then the archive streamed (decrypted with `key`), keeping
/// only what `spec` selects (everything with `None`).
/// Nothing is returned unless the whole archive matched the manifest.
pub async fn load(
    store: &DynStore,
    backup: &str,
    spec: Option<&RestoreSpec>,
    key: Option<&archive::ArchiveKey>,
    known_format: Option<i64>,
) -> Result<(Manifest, Vec<Item>), ArchiveError> {
    let manifest = archive::verify_manifest(store.as_ref(), backup, key, known_format).await?;
    // A bounded queue: the parser never holds more than this many entries unread.
    let (entries, queued) = std::sync::mpsc::sync_channel(1024);
    let parser = tokio::task::spawn_blocking(move || parse_entries(queued));
    let selection = Selection {
        spec: spec.cloned(),
        parser: entries,
    };
    // The selection (the queue's sender) is dropped here, so the parser ends.
    let read = archive::read_resources(store.as_ref(), backup, &manifest, key, selection)
        .await
        .map(drop);
    let parsed = parser.await.map_err(|e| {
        ArchiveError::damaged(archive::RESOURCES_FILE, format!("the parser stopped: {e}"))
    })?;
    read?;
    Ok((manifest, parsed?))
}

/// Why a restore stopped before its items were all tried (an item that
/// fails is recorded on the item, not here).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the backup failed verification, nothing was applied: {0}")]
    Verification(#[from] ArchiveError),
    #[error(transparent)]
    Discovery(#[from] discovery::DiscoveryError),
    #[error("CRDs were not established within 60 s: {0:?}")]
    CrdsNotEstablished(Vec<String>),
    #[error("creating namespace {namespace}: {message}")]
    Namespace { namespace: String, message: String },
    #[error("the change journal could not be replayed, nothing was applied: {0}")]
    Journal(#[from] crate::journal::JournalError),
}

/// The resources a restore can create, by group-resource.
pub type Creatable = HashMap<String, (ApiResource, bool)>;

/// The resources a restore can create (the runner asks while it reads the
/// archive).
pub async fn discover(client: &kube::Client) -> Result<Creatable, RestoreError> {
    Ok(discovery::discover(client).await?.by_name(verbs::CREATE))
}

fn api_for(
    client: &kube::Client,
    ar: &ApiResource,
    namespaced: bool,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    match (namespaced, ns) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, ar),
        _ => Api::all_with(client.clone(), ar),
    }
}

/// Plans every item against the live cluster (nothing is changed), with
/// the resources [`discover`] found.
pub async fn plan(
    client: &kube::Client,
    own: Option<&kube::Client>,
    resources: &Creatable,
    spec: &RestoreSpec,
    restore_name: &str,
    items: Vec<Item>,
    volumes: &[VolumeEntry],
) -> Result<Vec<PlanItem>, RestoreError> {
    let with_data = super::volumes::volumes_with_data(volumes);
    let restored_pvs: BTreeSet<String> = items
        .iter()
        .filter(|i| i.group_resource == gr::PERSISTENT_VOLUMES && spec.cluster_resources())
        .filter(|i| !with_data.contains(&i.name))
        .filter(|i| i.object["spec"]["persistentVolumeReclaimPolicy"] == "Retain")
        .filter(|i| {
            i.object["spec"]["claimRef"]["namespace"]
                .as_str()
                .is_none_or(|ns| spec.includes_namespace(ns))
        })
        .map(|i| i.name.clone())
        .collect();
    let mut out = Vec::with_capacity(items.len());
    for mut item in items {
        let target_ns = item
            .namespace
            .as_deref()
            .map(|ns| spec.target_namespace(ns).to_string());
        let target_name = if item.group_resource == gr::NAMESPACES {
            spec.target_namespace(&item.name).to_string()
        } else {
            item.name.clone()
        };
        let mut line = PlanItem {
            group_resource: item.group_resource.clone(),
            namespace: target_ns.clone(),
            name: target_name.clone(),
            action: Action::Create,
            reason: None,
            diff: Vec::new(),
            result: None,
            hooks: Vec::new(),
            warnings: Vec::new(),
            message: None,
            object: Value::Null,
            tier: spec.tier(&item.group_resource),
        };
        if item.group_resource == gr::PERSISTENT_VOLUMES && with_data.contains(&item.name) {
            line.action = Action::Excluded;
            line.reason = Some(
                "its claim's data comes from the backup into a fresh volume that the StorageClass provisions"
                    .into(),
            );
            out.push(line);
            continue;
        }
        if let Some(reason) = items::excluded_reason(&item, spec, &restored_pvs) {
            line.action = Action::Excluded;
            line.reason = Some(reason);
            out.push(line);
            continue;
        }
        let object = std::mem::take(&mut item.object);
        line.object = items::rewrite_object(object, &item, spec, &restored_pvs, restore_name);
        // Restore hooks' init containers go into the pod (template) now.
        match super::hooks::of_object(
            &line.object,
            &item.group_resource,
            item.namespace.as_deref(),
            spec,
        ) {
            Some(Ok(hooks)) => super::hooks::add_init_containers(
                &mut line.object,
                &item.group_resource,
                &hooks.init_containers,
            ),
            Some(Err(e)) => line.message = Some(format!("its restore hooks are ignored: {e}")),
            None => {}
        }
        out.push(line);
    }
    compare_with_live(client, own, spec, resources, &mut out).await;
    warn_of_missing_classes(client, own, &mut out).await;
    let volume_lines = super::volumes::plan_lines(volumes, spec, &out);
    out.extend(volume_lines);
    out.sort_by(|a, b| {
        (a.tier, &a.group_resource, &a.namespace, &a.name).cmp(&(
            b.tier,
            &b.group_resource,
            &b.namespace,
            &b.name,
        ))
    });
    Ok(out)
}

/// A claim (or a StatefulSet's claim template) naming a StorageClass the
/// cluster does not have would stay Pending for ever: the plan says so on
/// its line, with the mapping that would help. Nothing is said when the
/// classes cannot be read (neither as the user nor as Lifeboat).
async fn warn_of_missing_classes(
    client: &kube::Client,
    own: Option<&kube::Client>,
    plan: &mut [PlanItem],
) {
    use k8s_openapi::api::storage::v1::StorageClass;
    let mut listed = None;
    for c in std::iter::once(client).chain(own) {
        if let Ok(list) = Api::<StorageClass>::all(c.clone())
            .list(&Default::default())
            .await
        {
            listed = Some(list.items);
            break;
        }
    }
    let Some(listed) = listed else {
        return;
    };
    let default = listed.iter().find(|c| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
            .is_some_and(|v| v == "true")
    });
    let mut have: BTreeSet<String> = listed
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let suggestion = default
        .and_then(|c| c.metadata.name.clone())
        .or_else(|| have.iter().next().cloned());
    let writes = |a: Action| matches!(a, Action::Create | Action::Update | Action::Unknown);
    // Classes the restore brings back itself are there when claims come.
    have.extend(
        plan.iter()
            .filter(|l| l.group_resource == "storageclasses.storage.k8s.io" && writes(l.action))
            .map(|l| l.name.clone()),
    );
    let listing = listed
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect::<Vec<_>>()
        .join(", ");
    for line in plan.iter_mut().filter(|l| writes(l.action)) {
        let classes: Vec<String> = match line.group_resource.as_str() {
            gr::PERSISTENT_VOLUME_CLAIMS => line
                .object
                .pointer("/spec/storageClassName")
                .and_then(Value::as_str)
                .map(str::to_string)
                .into_iter()
                .collect(),
            "statefulsets.apps" => line
                .object
                .pointer("/spec/volumeClaimTemplates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.pointer("/spec/storageClassName").and_then(Value::as_str))
                .map(str::to_string)
                .collect(),
            _ => continue,
        };
        for class in classes
            .iter()
            .filter(|c| !c.is_empty() && !have.contains(*c))
        {
            let hint = match &suggestion {
                Some(to) => format!(
                    "map it to one it has: storageClassMapping {{\"{class}\": \"{to}\"}} (this cluster has: {listing})"
                ),
                None => "this cluster has no StorageClass at all".to_string(),
            };
            line.warnings.push(format!(
                "StorageClass `{class}` does not exist in this cluster: the claim would stay Pending; {hint}"
            ));
        }
    }
}

/// Sets each line's action from the live cluster: one paginated list per
/// resource (per namespace when only a few are involved), not a GET per
/// item; up to [`LISTS_AT_ONCE`] resources are listed at once.
///
/// A read the user may not make is not an absence. A namespaced object
/// they may not read is `unknown`. A cluster-scoped one (the Namespace,
/// ClusterRoles that bindings name, CRDs, StorageClasses: what a restore of
/// a namespace pulls in) is looked up by name with Lifeboat's own account
/// (`own`), existence only: one that exists is skipped, as this restore
/// does not change cluster-scoped objects the user cannot see; nothing of
/// it reaches the plan.
async fn compare_with_live(
    client: &kube::Client,
    own: Option<&kube::Client>,
    spec: &RestoreSpec,
    resources: &Creatable,
    lines: &mut [PlanItem],
) {
    let mut wanted: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.action != Action::Excluded) {
        wanted
            .entry(line.group_resource.clone())
            .or_default()
            .insert(line.namespace.clone());
    }
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    // Resources of CRDs restored in this run are not served yet: they are creates.
    let served: Vec<_> = wanted
        .into_iter()
        .filter_map(|(gr, namespaces)| {
            let (ar, namespaced) = resources.get(&gr)?.clone();
            Some((gr, ar, namespaced, namespaces))
        })
        .collect();
    let listed: HashMap<String, Result<LiveObjects, ListFailure>> = futures::stream::iter(served)
        .map(|(gr, ar, namespaced, namespaces)| {
            let calls = calls.clone();
            async move {
                let scopes: Vec<Option<String>> = if namespaced && namespaces.len() <= 5 {
                    namespaces.into_iter().collect()
                } else {
                    vec![None]
                };
                (gr, list_live(client, calls, &ar, scopes).await)
            }
        })
        .buffer_unordered(LISTS_AT_ONCE)
        .collect()
        .await;
    for line in lines.iter_mut().filter(|l| l.action != Action::Excluded) {
        match listed.get(&line.group_resource) {
            None => {}
            Some(Ok(live)) => {
                let existing = live.get(&(line.namespace.clone(), line.name.clone()));
                decide(line, existing, spec.existing_resource_policy);
            }
            Some(Err(failure)) => {
                let cluster_scoped = line.namespace.is_none();
                match (cluster_scoped, own, resources.get(&line.group_resource)) {
                    (true, Some(own), Some((ar, _))) if failure.forbidden => {
                        let api: Api<DynamicObject> = Api::all_with(own.clone(), ar);
                        match api.get_opt(&line.name).await {
                            Ok(Some(_)) => {
                                line.action = Action::Skip;
                                line.reason = Some(
                                    "exists (cluster-scoped, not changed by this restore)".into(),
                                );
                            }
                            Ok(None) => {
                                line.reason = Some(format!(
                                    "does not exist (Lifeboat looked; you may not read {})",
                                    line.group_resource
                                ));
                            }
                            Err(e) => unknown(line, &describe(&e)),
                        }
                    }
                    _ => unknown(line, &failure.message),
                }
            }
        }
    }
}

/// A line whose live object could not be read: `unknown`, with why.
fn unknown(line: &mut PlanItem, why: &str) {
    line.action = Action::Unknown;
    line.reason = Some(
        if why.contains("403") || why.to_lowercase().contains("forbidden") {
            format!("unknown — you may not read it: {why}")
        } else {
            format!("unknown — the live objects could not be read: {why}")
        },
    );
}

/// Why the live objects of a resource could not be listed.
#[derive(Clone, Debug)]
struct ListFailure {
    /// The API server refused the user (403).
    forbidden: bool,
    message: String,
}

/// How many resources the plan lists at once.
const LISTS_AT_ONCE: usize = 8;

/// Live objects by namespace and name.
type LiveObjects = HashMap<(Option<String>, String), Value>;

/// Every live object of one resource in `scopes` (`None`: all namespaces).
async fn list_live(
    client: &kube::Client,
    calls: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ar: &ApiResource,
    scopes: Vec<Option<String>>,
) -> Result<LiveObjects, ListFailure> {
    let mut live = HashMap::new();
    for scope in scopes {
        let mut pager = Pager::new(client, calls.clone(), ar, scope.as_deref(), None);
        while let Some(page) = pager.next().await.map_err(|e| ListFailure {
            forbidden: matches!(&e, kube::Error::Api(s) if s.code == 403),
            message: describe(&e),
        })? {
            for obj in page {
                let key = (
                    obj["metadata"]["namespace"].as_str().map(str::to_string),
                    obj["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                live.insert(key, obj);
            }
        }
    }
    Ok(live)
}

/// A line's action given the live object of its name, if any: created when
/// there is none, skipped when identical, otherwise a conflict or an update
/// by the policy (with the fields that differ).
pub fn decide(line: &mut PlanItem, existing: Option<&Value>, policy: ExistingResourcePolicy) {
    let Some(existing) = existing else {
        return;
    };
    let diff = items::diff(&line.object, existing);
    if diff.is_empty() {
        line.action = Action::Skip;
        line.reason = Some("exists and is identical".into());
    } else {
        line.action = match policy {
            ExistingResourcePolicy::Skip => Action::Conflict,
            ExistingResourcePolicy::Update => Action::Update,
        };
        line.reason = Some("exists and differs".into());
        line.diff = diff;
    }
}

/// Whether an API error is worth another try (429s were retried by the
/// client, after the server's `Retry-After`, before they get here).
fn retryable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict" || s.code >= 500 && s.code != 503 && s.code != 504)
        || matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}

/// A ServiceAccount the cluster made while the restore ran (the
/// controllers make `default` in every new namespace): the backup's
/// `imagePullSecrets` and `secrets` are added to it, as Velero does, so pods
/// pulling from a private registry still can. `Updated` when something was
/// added, `Skipped` when it already held them.
async fn merge_service_account(
    api: &Api<DynamicObject>,
    name: &str,
    wanted: &DynamicObject,
) -> Result<ItemResult, kube::Error> {
    let live = api.get(name).await?;
    let mut patch = serde_json::Map::new();
    for field in ["imagePullSecrets", "secrets"] {
        let mut merged: Vec<Value> = live.data[field].as_array().cloned().unwrap_or_default();
        let before = merged.len();
        for reference in wanted.data[field].as_array().into_iter().flatten() {
            if !merged.iter().any(|m| m["name"] == reference["name"]) {
                merged.push(reference.clone());
            }
        }
        if merged.len() != before {
            patch.insert(field.to_string(), Value::Array(merged));
        }
    }
    if patch.is_empty() {
        return Ok(ItemResult::Skipped);
    }
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(Value::Object(patch)),
    )
    .await?;
    Ok(ItemResult::Updated)
}

async fn apply_one(
    client: &kube::Client,
    resources: &HashMap<String, (ApiResource, bool)>,
    line: &mut PlanItem,
) {
    let Some((ar, namespaced)) = resources.get(&line.group_resource) else {
        line.result = Some(ItemResult::Failed);
        line.message = Some(format!(
            "the cluster does not serve {} (is its CRD restored?)",
            line.group_resource
        ));
        return;
    };
    let api = api_for(client, ar, *namespaced, line.namespace.as_deref());
    // The object is no longer needed on the line once sent (its result is what is kept).
    let mut obj: DynamicObject = match serde_json::from_value(std::mem::take(&mut line.object)) {
        Ok(o) => o,
        Err(e) => {
            line.result = Some(ItemResult::Failed);
            line.message = Some(format!("not a Kubernetes object: {e}"));
            return;
        }
    };
    obj.types = Some(kube::api::TypeMeta {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
    });
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=4 {
        let outcome = match line.action {
            Action::Update => api
                .patch(
                    &line.name,
                    &PatchParams::apply("lifeboat").force(),
                    &Patch::Apply(&obj),
                )
                .await
                .map(|_| ItemResult::Updated),
            _ => match api.create(&PostParams::default(), &obj).await {
                Ok(_) => Ok(ItemResult::Created),
                Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                    if line.group_resource == "serviceaccounts" {
                        merge_service_account(&api, &line.name, &obj).await
                    } else {
                        Ok(ItemResult::Skipped)
                    }
                }
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(result) => {
                line.result = Some(result);
                if result == ItemResult::Updated && line.action != Action::Update {
                    line.message = Some(
                        "the cluster had made it meanwhile (as it makes each namespace's \
                         `default`); the backup's image pull secrets and secrets were added to it"
                            .into(),
                    );
                }
                if result == ItemResult::Skipped {
                    line.message = Some(if line.action == Action::Unknown {
                        "it exists (you may not read it); left as it is".into()
                    } else {
                        "it appeared in the cluster while restoring; left as it is".into()
                    });
                }
                return;
            }
            Err(e) if attempt < 4 && retryable(&e) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                line.result = Some(ItemResult::Failed);
                line.message = Some(describe(&e));
                return;
            }
        }
    }
}

/// Waits until every CRD in `names` is Established and its resources are discoverable.
async fn wait_for_crds(
    client: &kube::Client,
    names: &[String],
) -> Result<HashMap<String, (ApiResource, bool)>, RestoreError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let resources = discover(client).await?;
        if names.iter().all(|n| resources.contains_key(n)) {
            return Ok(resources);
        }
        if tokio::time::Instant::now() > deadline {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| !resources.contains_key(*n))
                .cloned()
                .collect();
            return Err(RestoreError::CrdsNotEstablished(missing));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Applies the plan tier by tier with the resources [`discover`] found (a
/// CRD restored here adds its own); returns it with each item's result.
/// `on_progress` sees the plan each time an item lands (results are written
/// in place, so it keeps `plan`'s order); it should be cheap.
pub async fn apply(
    client: &kube::Client,
    mut resources: Creatable,
    restore_name: &str,
    scratch_namespaces: bool,
    mut plan: Vec<PlanItem>,
    volumes: Option<&VolumeRestore>,
    mut on_progress: impl FnMut(&[PlanItem]),
) -> Result<Vec<PlanItem>, RestoreError> {
    // Namespaces that objects land in must exist, even when the backup did not carry them.
    let namespaces_rt = resources.get(gr::NAMESPACES).map(|(ar, _)| ar.clone());
    if let Some(ar) = namespaces_rt {
        let wanted: BTreeSet<String> = plan
            .iter()
            .filter(|p| matches!(p.action, Action::Create | Action::Update | Action::Unknown))
            .filter_map(|p| p.namespace.clone())
            .collect();
        // A namespace the plan leaves out (not among `includedNames`, say)
        // is not carried: it is made bare when its objects need it.
        let carried: BTreeSet<String> = plan
            .iter()
            .filter(|p| p.group_resource == gr::NAMESPACES && p.action != Action::Excluded)
            .map(|p| p.name.clone())
            .collect();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        for ns in wanted.difference(&carried) {
            // Only a namespace known to be missing is created; one the
            // restoring user may not read is left to the items, whose
            // results then say what the API server refused.
            if matches!(api.get_opt(ns).await, Ok(None)) {
                let namespace_error = |message: String| RestoreError::Namespace {
                    namespace: ns.clone(),
                    message,
                };
                let mut labels = json!({"lifeboat.io/restore": restore_name});
                if scratch_namespaces {
                    labels[crate::cluster::temporary::TEMPORARY_LABEL] =
                        json!(crate::cluster::temporary::SCRATCH_NAMESPACE);
                }
                let obj: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "labels": labels},
                }))
                .map_err(|e| namespace_error(e.to_string()))?;
                api.create(&PostParams::default(), &obj)
                    .await
                    .map_err(|e| namespace_error(describe(&e)))?;
            }
        }
    }
    let tiers: BTreeSet<usize> = plan.iter().map(|p| p.tier).collect();
    // Claims whose data did not come back: nothing that mounts them is created.
    let mut failed_claims: BTreeSet<(String, String)> = BTreeSet::new();
    for tier in tiers {
        // Each line leaves the plan with its object (not a copy) and comes back with its result.
        let batch: Vec<(usize, PlanItem)> = plan
            .iter_mut()
            .enumerate()
            .filter(|(_, p)| p.tier == tier)
            .map(|(i, p)| {
                let object = std::mem::take(&mut p.object);
                let mut line = p.clone();
                line.object = object;
                (i, line)
            })
            .collect();
        let res = &resources;
        let failed_claims_now = &failed_claims;
        let volume_slots = &tokio::sync::Semaphore::new(VOLUME_CONCURRENCY);
        let mut finished = futures::stream::iter(batch)
            .map(|(i, mut line)| {
                let client = client.clone();
                async move {
                    match line.action {
                        Action::Create | Action::Update | Action::Unknown
                            if let Some(why) =
                                super::volumes::blocked_by(&line, failed_claims_now) =>
                        {
                            line.result = Some(ItemResult::Failed);
                            line.message = Some(why);
                        }
                        Action::Create if line.group_resource == super::volumes::GROUP_RESOURCE => {
                            match volumes {
                                Some(ctx) => {
                                    let _slot = volume_slots.acquire().await;
                                    super::volumes::apply_line(
                                        &client,
                                        ctx,
                                        restore_name,
                                        &mut line,
                                    )
                                    .await
                                }
                                None => {
                                    line.result = Some(ItemResult::Failed);
                                    line.message =
                                        Some("volume data cannot be restored here".into());
                                }
                            }
                        }
                        Action::Create | Action::Update | Action::Unknown => {
                            apply_one(&client, res, &mut line).await
                        }
                        Action::Skip | Action::Conflict => line.result = Some(ItemResult::Skipped),
                        Action::Excluded | Action::Forbidden => {}
                    }
                    (i, line)
                }
            })
            .buffer_unordered(CONCURRENCY);
        let mut landed = Vec::new();
        while let Some((i, line)) = finished.next().await {
            plan[i] = line;
            landed.push(i);
            on_progress(&plan);
        }
        drop(finished);
        for i in landed {
            let line = &plan[i];
            if line.group_resource == super::volumes::GROUP_RESOURCE
                && line.result == Some(ItemResult::Failed)
                && let Some(ns) = &line.namespace
            {
                failed_claims.insert((ns.clone(), line.name.clone()));
            }
        }
        let crds: Vec<String> = plan
            .iter()
            .filter(|p| {
                p.tier == tier
                    && p.group_resource == gr::CRDS
                    && p.result == Some(ItemResult::Created)
            })
            .map(|p| p.name.clone())
            .collect();
        if !crds.is_empty() {
            resources = wait_for_crds(client, &crds).await?;
        }
    }
    Ok(plan)
}

/// How a restore's items ended: the counts its row keeps and its phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Items to create or update.
    pub total: i64,
    /// Of those, created, updated, or found there at apply time (made
    /// meanwhile, as a namespace's `default` ServiceAccount is by the
    /// controllers): the progress that reaches `total` when all went well.
    pub done: i64,
    pub failed: i64,
    /// Existing objects that differ, left alone under the skip policy.
    pub conflicts: i64,
    /// Completed, or PartiallyFailed when an item failed.
    pub phase: RestorePhase,
    pub reason: Option<String>,
}

pub fn outcome(plan: &[PlanItem]) -> Outcome {
    let result = |r: ItemResult| plan.iter().filter(|p| p.result == Some(r)).count() as i64;
    let failed = result(ItemResult::Failed);
    let forbidden = plan
        .iter()
        .filter(|p| p.action == Action::Forbidden)
        .count() as i64;
    Outcome {
        total: plan
            .iter()
            .filter(|p| matches!(p.action, Action::Create | Action::Update | Action::Unknown))
            .count() as i64,
        done: result(ItemResult::Created)
            + result(ItemResult::Updated)
            + plan
                .iter()
                .filter(|p| {
                    matches!(p.action, Action::Create | Action::Update | Action::Unknown)
                        && p.result == Some(ItemResult::Skipped)
                })
                .count() as i64,
        failed,
        conflicts: plan.iter().filter(|p| p.action == Action::Conflict).count() as i64,
        phase: if failed == 0 && forbidden == 0 {
            RestorePhase::Completed
        } else {
            RestorePhase::PartiallyFailed
        },
        reason: match (failed, forbidden) {
            (0, 0) => None,
            (f, 0) => Some(format!("{f} item(s) failed; see the items")),
            (0, n) => Some(format!(
                "{n} item(s) you may not write were left out (allowPartial); see the items"
            )),
            (f, n) => Some(format!(
                "{f} item(s) failed and {n} you may not write were left out; see the items"
            )),
        },
    }
}

/// The plan as the catalog keeps it (JSON text, [`RestorePlan`]): its
/// counts and lines, and a point-in-time restore's report. Written straight
/// from the lines: a plan of 10,000 lines is recorded as it starts, as it
/// goes and when it ends.
pub fn plan_text(plan: &[PlanItem], point_in_time: Option<&PointInTime>) -> String {
    /// [`RestorePlan`], borrowing its lines.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Recorded<'a> {
        summary: PlanSummary,
        items: &'a [PlanItem],
        #[serde(skip_serializing_if = "Option::is_none")]
        point_in_time: Option<&'a PointInTime>,
    }
    serde_json::to_string(&Recorded {
        summary: PlanSummary::of(plan),
        items: plan,
        point_in_time,
    })
    .unwrap_or_else(|e| {
        json!({"error": format!("the plan could not be recorded: {e}")}).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(object: Value) -> PlanItem {
        PlanItem {
            group_resource: "configmaps".into(),
            namespace: Some("shop".into()),
            name: "settings".into(),
            action: Action::Create,
            reason: None,
            diff: Vec::new(),
            result: None,
            hooks: Vec::new(),
            warnings: Vec::new(),
            message: None,
            object,
            tier: 0,
        }
    }

    #[test]
    fn the_recorded_plan_reads_back_as_the_apis_type() {
        let mut done = line(config_map("a"));
        done.result = Some(ItemResult::Created);
        let mut forbidden = line(config_map("b"));
        forbidden.action = Action::Forbidden;
        forbidden.reason = Some("you may not create configmaps in shop".into());
        let report = PointInTime {
            base: "nightly-1".into(),
            changes_applied: 3,
            ..Default::default()
        };
        let plan = [done, forbidden];
        let text = plan_text(&plan, Some(&report));
        let read: RestorePlan = serde_json::from_str(&text).unwrap();
        assert_eq!(read.summary, PlanSummary::of(&plan));
        assert_eq!(read.summary.count(Action::Forbidden), 1);
        assert_eq!(read.point_in_time, Some(report));
        let lines: Vec<_> = read
            .items
            .iter()
            .map(|i| (i.action, i.result, i.reason.clone()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (Action::Create, Some(ItemResult::Created), None),
                (
                    Action::Forbidden,
                    None,
                    Some("you may not create configmaps in shop".into())
                ),
            ]
        );
        // The object to write is the server's own: never recorded.
        assert!(!text.contains("\"data\""), "{text}");
    }

    fn config_map(value: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "namespace": "shop"},
               "data": {"mode": value}})
    }

    #[test]
    fn decide_creates_skips_identical_and_follows_the_policy_on_differences() {
        let mut absent = line(config_map("fast"));
        decide(&mut absent, None, ExistingResourcePolicy::Skip);
        assert_eq!(absent.action, Action::Create);

        // The live object carries what the server adds; that is not a difference.
        let mut live = config_map("fast");
        live["metadata"]["uid"] = json!("4c1b");
        live["metadata"]["resourceVersion"] = json!("812");
        let mut same = line(config_map("fast"));
        decide(&mut same, Some(&live), ExistingResourcePolicy::Update);
        assert_eq!(same.action, Action::Skip, "{:?}", same.diff);

        let mut differs = line(config_map("slow"));
        decide(&mut differs, Some(&live), ExistingResourcePolicy::Skip);
        assert_eq!(differs.action, Action::Conflict);
        assert_eq!(differs.diff, vec!["data.mode".to_string()]);
        let mut differs = line(config_map("slow"));
        decide(&mut differs, Some(&live), ExistingResourcePolicy::Update);
        assert_eq!(differs.action, Action::Update);
    }

    #[test]
    fn outcome_counts_results_and_fails_partially_on_any_failed_item() {
        let with = |action, result| PlanItem {
            action,
            result,
            hooks: Vec::new(),
            warnings: Vec::new(),
            ..line(Value::Null)
        };
        let mut plan = vec![
            with(Action::Create, Some(ItemResult::Created)),
            with(Action::Update, Some(ItemResult::Updated)),
            with(Action::Conflict, Some(ItemResult::Skipped)),
            with(Action::Excluded, None),
        ];
        let o = outcome(&plan);
        assert_eq!((o.total, o.done, o.failed, o.conflicts), (2, 2, 0, 1));
        assert_eq!((o.phase, o.reason), (RestorePhase::Completed, None));
        assert_eq!(
            serde_json::to_value(PlanSummary::of(&plan)).unwrap(),
            json!({"actions": {"create": 1, "update": 1, "conflict": 1, "excluded": 1},
                   "results": {"created": 1, "updated": 1, "skipped": 1}})
        );

        // Made meanwhile (a namespace's default ServiceAccount): done, not failed.
        plan.push(with(Action::Create, Some(ItemResult::Skipped)));
        let o = outcome(&plan);
        assert_eq!((o.total, o.done, o.failed), (3, 3, 0));
        assert_eq!(o.phase, RestorePhase::Completed);

        plan.push(with(Action::Create, Some(ItemResult::Failed)));
        let o = outcome(&plan);
        assert_eq!((o.total, o.done, o.failed), (4, 3, 1));
        assert_eq!(o.phase, RestorePhase::PartiallyFailed);
        assert_eq!(o.reason.as_deref(), Some("1 item(s) failed; see the items"));
    }
}
