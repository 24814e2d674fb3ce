//! Running a restore: verify → load → plan → apply, tier by tier.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, verbs};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::RestorePhase;
use super::items::{self, Item};
use super::spec::{ExistingResourcePolicy, RestoreSpec};
use crate::archive::{self, ArchiveError, Manifest};
use crate::catalog::{Catalog, CatalogError};
use crate::cluster::discovery;
use crate::cluster::discovery::gr;
use crate::cluster::pager::Pager;
use crate::storage::DynStore;

/// Objects created at once within one tier.
pub const CONCURRENCY: usize = 8;

#[derive(Clone)]
pub struct RestoreContext {
    pub catalog: Catalog,
    pub store: DynStore,
    pub client: kube::Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Skip,
    Conflict,
    Update,
    Excluded,
}

/// One line of the plan, and after the run its outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanItem {
    pub group_resource: String,
    /// Namespace it lands in (after mapping).
    pub namespace: Option<String>,
    pub name: String,
    pub action: Action,
    /// Why excluded or skipped; the differing fields of a conflict.
    pub reason: Option<String>,
    pub diff: Vec<String>,
    /// `created`, `updated`, `skipped`, `failed`, once applied.
    pub result: Option<String>,
    pub message: Option<String>,
    #[serde(skip)]
    pub object: Value,
    #[serde(skip)]
    pub tier: usize,
}

/// Keeps the entries a restore can use: namespaced objects of the
/// namespaces its spec selects (all without a spec), and every
/// cluster-scoped one (the plan says why each is left out). The rest are
/// skipped unread.
struct Selection {
    spec: Option<RestoreSpec>,
    items: Vec<Item>,
}

impl archive::reader::Visitor for Selection {
    fn wants(&mut self, name: &archive::EntryName) -> bool {
        match (&self.spec, &name.namespace) {
            (Some(spec), Some(ns)) => spec.includes_namespace(ns),
            _ => true,
        }
    }

    fn visit(&mut self, entry: archive::Entry) -> Result<(), ArchiveError> {
        let object: Value =
            serde_json::from_slice(&entry.data).map_err(|e| ArchiveError::Damaged {
                file: archive::RESOURCES_FILE.into(),
                message: format!("`{}` is not JSON: {e}", entry.name.path),
            })?;
        self.items.push(Item {
            group_resource: entry.name.group_resource,
            namespace: entry.name.namespace,
            name: entry.name.name,
            object,
        });
        Ok(())
    }
}

/// Reads a backup through the verifying reader: the manifest, then the
/// archive streamed, keeping only what `spec` selects (everything with
/// `None`). Nothing is returned unless the whole archive matched the manifest.
pub async fn load(
    store: &DynStore,
    backup: &str,
    spec: Option<&RestoreSpec>,
) -> Result<(Manifest, Vec<Item>), ArchiveError> {
    let manifest = archive::read_manifest(store.as_ref(), backup).await?;
    let selection = Selection {
        spec: spec.cloned(),
        items: Vec::new(),
    };
    let selection = archive::read_resources(store.as_ref(), backup, &manifest, selection).await?;
    Ok((manifest, selection.items))
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
}

/// The resources a restore can create, by group-resource.
async fn discover(
    client: &kube::Client,
) -> Result<HashMap<String, (ApiResource, bool)>, RestoreError> {
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

/// Plans every item against the live cluster (nothing is changed).
pub async fn plan(
    ctx: &RestoreContext,
    spec: &RestoreSpec,
    restore_name: &str,
    items: Vec<Item>,
) -> Result<Vec<PlanItem>, RestoreError> {
    let resources = discover(&ctx.client).await?;
    let restored_pvs: BTreeSet<String> = items
        .iter()
        .filter(|i| i.group_resource == gr::PERSISTENT_VOLUMES)
        .filter(|i| i.object["spec"]["persistentVolumeReclaimPolicy"] == "Retain")
        .filter(|i| {
            i.object["spec"]["claimRef"]["namespace"]
                .as_str()
                .is_none_or(|ns| spec.includes_namespace(ns))
        })
        .map(|i| i.name.clone())
        .collect();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
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
            message: None,
            object: Value::Null,
            tier: spec.tier(&item.group_resource),
        };
        if let Some(reason) = items::excluded_reason(&item, spec, &restored_pvs) {
            line.action = Action::Excluded;
            line.reason = Some(reason);
            out.push(line);
            continue;
        }
        line.object = items::rewrite(&item, spec, &restored_pvs, restore_name);
        out.push(line);
    }
    compare_with_live(ctx, spec, &resources, &mut out).await;
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

/// Sets each line's action from the live cluster: one paginated list per
/// resource (per namespace when only a few are involved), not a GET per item.
async fn compare_with_live(
    ctx: &RestoreContext,
    spec: &RestoreSpec,
    resources: &HashMap<String, (ApiResource, bool)>,
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
    for (gr, namespaces) in wanted {
        // Resources of CRDs restored in this run are not served yet: they are creates.
        let Some((ar, namespaced)) = resources.get(&gr) else {
            continue;
        };
        let scopes: Vec<Option<String>> = if *namespaced && namespaces.len() <= 5 {
            namespaces.into_iter().collect()
        } else {
            vec![None]
        };
        let mut live: HashMap<(Option<String>, String), Value> = HashMap::new();
        let mut failure = None;
        for scope in scopes {
            let mut pager = Pager::new(&ctx.client, calls.clone(), ar, scope.as_deref(), None);
            loop {
                match pager.next().await {
                    Ok(Some(page)) => {
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
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(describe(&e));
                        break;
                    }
                }
            }
        }
        for line in lines
            .iter_mut()
            .filter(|l| l.group_resource == gr && l.action != Action::Excluded)
        {
            if let Some(e) = &failure {
                line.reason = Some(format!("could not read the live objects: {e}"));
                continue;
            }
            let Some(existing) = live.get(&(line.namespace.clone(), line.name.clone())) else {
                continue;
            };
            let diff = items::diff(&line.object, existing);
            if diff.is_empty() {
                line.action = Action::Skip;
                line.reason = Some("exists and is identical".into());
            } else {
                line.action = match spec.existing_resource_policy {
                    ExistingResourcePolicy::Skip => Action::Conflict,
                    ExistingResourcePolicy::Update => Action::Update,
                };
                line.reason = Some("exists and differs".into());
                line.diff = diff;
            }
        }
    }
}

/// Whether an API error is worth another try.
fn retryable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict" || s.code == 429 || s.code >= 500)
        || matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}

async fn apply_one(
    client: &kube::Client,
    resources: &HashMap<String, (ApiResource, bool)>,
    line: &mut PlanItem,
) {
    let Some((ar, namespaced)) = resources.get(&line.group_resource) else {
        line.result = Some("failed".into());
        line.message = Some(format!(
            "the cluster does not serve {} (is its CRD restored?)",
            line.group_resource
        ));
        return;
    };
    let api = api_for(client, ar, *namespaced, line.namespace.as_deref());
    let mut obj: DynamicObject = match serde_json::from_value(line.object.clone()) {
        Ok(o) => o,
        Err(e) => {
            line.result = Some("failed".into());
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
                .map(|_| "updated"),
            _ => match api.create(&PostParams::default(), &obj).await {
                Ok(_) => Ok("created"),
                Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                    Ok("skipped")
                }
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(result) => {
                line.result = Some(result.into());
                if result == "skipped" {
                    line.message =
                        Some("it appeared in the cluster while restoring; left as it is".into());
                }
                return;
            }
            Err(e) if attempt < 4 && retryable(&e) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                line.result = Some("failed".into());
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

/// Applies the plan tier by tier; returns it with each item's result.
pub async fn apply(
    ctx: &RestoreContext,
    restore_name: &str,
    mut plan: Vec<PlanItem>,
) -> Result<Vec<PlanItem>, RestoreError> {
    let mut resources = discover(&ctx.client).await?;
    // Namespaces that objects land in must exist, even when the backup did not carry them.
    let namespaces_rt = resources.get(gr::NAMESPACES).map(|(ar, _)| ar.clone());
    if let Some(ar) = namespaces_rt {
        let wanted: BTreeSet<String> = plan
            .iter()
            .filter(|p| matches!(p.action, Action::Create | Action::Update))
            .filter_map(|p| p.namespace.clone())
            .collect();
        let carried: BTreeSet<String> = plan
            .iter()
            .filter(|p| p.group_resource == gr::NAMESPACES)
            .map(|p| p.name.clone())
            .collect();
        let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
        for ns in wanted.difference(&carried) {
            if api.get_opt(ns).await.ok().flatten().is_none() {
                let namespace_error = |message: String| RestoreError::Namespace {
                    namespace: ns.clone(),
                    message,
                };
                let obj: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"lifeboat.io/restore": restore_name}},
                }))
                .map_err(|e| namespace_error(e.to_string()))?;
                api.create(&PostParams::default(), &obj)
                    .await
                    .map_err(|e| namespace_error(describe(&e)))?;
            }
        }
    }
    // Results are written in place, so the plan keeps `plan`'s order.
    let total = plan
        .iter()
        .filter(|p| matches!(p.action, Action::Create | Action::Update))
        .count() as i64;
    // Writing the plan costs in proportion to its size: big restores record less often.
    let every = PROGRESS_EVERY.max(Duration::from_micros(250 * plan.len() as u64));
    let mut last_recorded = std::time::Instant::now();
    let tiers: BTreeSet<usize> = plan.iter().map(|p| p.tier).collect();
    for tier in tiers {
        let batch: Vec<(usize, PlanItem)> = plan
            .iter()
            .enumerate()
            .filter(|(_, p)| p.tier == tier)
            .map(|(i, p)| (i, p.clone()))
            .collect();
        let client = ctx.client.clone();
        let res = resources.clone();
        let mut finished = futures::stream::iter(batch)
            .map(|(i, mut line)| {
                let client = client.clone();
                let res = res.clone();
                async move {
                    match line.action {
                        Action::Create | Action::Update => {
                            apply_one(&client, &res, &mut line).await
                        }
                        Action::Skip | Action::Conflict => line.result = Some("skipped".into()),
                        Action::Excluded => {}
                    }
                    (i, line)
                }
            })
            .buffer_unordered(CONCURRENCY);
        // Each item's result becomes visible as it lands, at most every `every`.
        while let Some((i, line)) = finished.next().await {
            plan[i] = line;
            if last_recorded.elapsed() >= every {
                record_progress(ctx, restore_name, &plan, total).await;
                last_recorded = std::time::Instant::now();
            }
        }
        let crds: Vec<String> = plan
            .iter()
            .filter(|p| {
                p.tier == tier
                    && p.group_resource == gr::CRDS
                    && p.result.as_deref() == Some("created")
            })
            .map(|p| p.name.clone())
            .collect();
        if !crds.is_empty() {
            resources = wait_for_crds(&ctx.client, &crds).await?;
        }
    }
    Ok(plan)
}

/// How often a running restore writes its items' results to the catalog (at
/// least; 0.25 ms per item for plans over 1,000 items). The end writes them all.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Created or updated, failed, and conflicting items so far.
fn counts(plan: &[PlanItem]) -> (i64, i64, i64) {
    let result = |r: &str| {
        plan.iter()
            .filter(|p| p.result.as_deref() == Some(r))
            .count() as i64
    };
    let conflicts = plan.iter().filter(|p| p.action == Action::Conflict).count() as i64;
    (
        result("created") + result("updated"),
        result("failed"),
        conflicts,
    )
}

/// Writes the plan with the results so far; a failed write only delays what the UI sees.
async fn record_progress(ctx: &RestoreContext, name: &str, plan: &[PlanItem], total: i64) {
    let (done, failed, conflicts) = counts(plan);
    let plan_json = json!({"summary": summary(plan), "items": plan});
    if let Err(e) = ctx
        .catalog
        .update_restore(
            name,
            RestorePhase::InProgress,
            None,
            Some(&plan_json),
            done,
            Some(total),
            conflicts,
            failed,
        )
        .await
    {
        tracing::warn!(restore = %name, error = %e, "recording restore progress failed");
    }
}

/// Counts by action, for the API.
pub fn summary(plan: &[PlanItem]) -> Value {
    let mut actions: BTreeMap<&str, u64> = BTreeMap::new();
    let mut results: BTreeMap<&str, u64> = BTreeMap::new();
    for p in plan {
        let a = match p.action {
            Action::Create => "create",
            Action::Skip => "skip",
            Action::Conflict => "conflict",
            Action::Update => "update",
            Action::Excluded => "excluded",
        };
        *actions.entry(a).or_default() += 1;
        if let Some(r) = &p.result {
            *results.entry(r.as_str()).or_default() += 1;
        }
    }
    json!({"actions": actions, "results": results})
}

/// Runs a restore whose catalog row exists: verify, plan, and unless a dry run, apply.
pub async fn run(
    ctx: RestoreContext,
    name: String,
    spec: RestoreSpec,
) -> Result<RestorePhase, CatalogError> {
    let fail = |reason: String| {
        let catalog = ctx.catalog.clone();
        let name = name.clone();
        async move {
            catalog
                .update_restore(
                    &name,
                    RestorePhase::Failed,
                    Some(&reason),
                    None,
                    0,
                    None,
                    0,
                    1,
                )
                .await?;
            catalog
                .record_activity(
                    "system",
                    "restore.finished",
                    &format!("restore/{name}"),
                    &format!("restore {name} Failed: {reason}"),
                    None,
                )
                .await?;
            Ok::<_, CatalogError>(RestorePhase::Failed)
        }
    };
    ctx.catalog
        .update_restore(&name, RestorePhase::InProgress, None, None, 0, None, 0, 0)
        .await?;
    // Says this runner is alive until the run ends (the guard stops it).
    let _heartbeat = {
        let (catalog, name) = (ctx.catalog.clone(), name.clone());
        crate::backup::engine::AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::backup::HEARTBEAT_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = catalog.restore_heartbeat(&name).await {
                    tracing::warn!(restore = %name, error = %e, "recording the heartbeat failed");
                }
            }
        }))
    };
    let (_, items) = match load(&ctx.store, &spec.backup_name, Some(&spec)).await {
        Ok(v) => v,
        Err(e) => return fail(RestoreError::from(e).to_string()).await,
    };
    let planned = match plan(&ctx, &spec, &name, items).await {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()).await,
    };
    let total = planned
        .iter()
        .filter(|p| matches!(p.action, Action::Create | Action::Update))
        .count() as i64;
    let plan_json = json!({"summary": summary(&planned), "items": planned});
    if spec.dry_run {
        ctx.catalog
            .update_restore(
                &name,
                RestorePhase::Planned,
                Some("dry run: nothing was applied"),
                Some(&plan_json),
                0,
                Some(total),
                0,
                0,
            )
            .await?;
        return Ok(RestorePhase::Planned);
    }
    ctx.catalog
        .update_restore(
            &name,
            RestorePhase::InProgress,
            None,
            Some(&plan_json),
            0,
            Some(total),
            0,
            0,
        )
        .await?;
    let applied = match apply(&ctx, &name, planned).await {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()).await,
    };
    let (done, failed, conflicts) = counts(&applied);
    let phase = if failed == 0 {
        RestorePhase::Completed
    } else {
        RestorePhase::PartiallyFailed
    };
    let reason = (failed > 0).then(|| format!("{failed} item(s) failed; see the items"));
    let plan_json = json!({"summary": summary(&applied), "items": applied});
    ctx.catalog
        .update_restore(
            &name,
            phase,
            reason.as_deref(),
            Some(&plan_json),
            done,
            Some(total),
            conflicts,
            failed,
        )
        .await?;
    ctx.catalog
        .record_activity(
            "system",
            "restore.finished",
            &format!("restore/{name}"),
            &format!("restore {name} {phase}: {done} created or updated, {failed} failed"),
            None,
        )
        .await?;
    Ok(phase)
}
