//! Restore drills: proof that a backup restores. A drill reads a backup,
//! restores its namespaces into scratch namespaces (`<ns>-drill-<id>`,
//! namespaced objects only) as the drill identity (`cluster::DRILL_USER`),
//! waits until what was ready when backed up is ready again (Deployments
//! available, StatefulSets and DaemonSets ready, claims Bound, Jobs not
//! failed, volume data restored), records the outcome and deletes the
//! scratch namespaces. The catalog knows which namespaces a drill made
//! before it makes them, so a clean-up cut short by a stop is resumed
//! (`Drills::recover`, at start and on every GC pass).

pub mod ready;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use crate::archive::{self, ArchiveError};
use crate::backup::{BackupPhase, Interrupted};
use crate::catalog::{Catalog, CatalogError, DrillOutcome, DrillRecord};
use crate::restore::engine::ItemResult;
use crate::restore::{RestorePhase, RestorePlan, RestoreSpec};
use crate::storage::Locations;
use ready::{Check, Expectation};

pub const RUNNING: &str = "Running";
pub const PASSED: &str = "Passed";
pub const FAILED: &str = "Failed";

/// How long a drill waits for its workloads unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest wait a user may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often readiness is looked at.
const POLL: Duration = Duration::from_secs(2);
/// How long a clean-up waits for the scratch namespaces to go.
const CLEANUP_WITHIN: Duration = Duration::from_secs(180);
/// Namespaces a drill never copies: the cluster's own.
const NOT_DRILLED: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];
/// Kinds a drill leaves out because a copy would act on the world: routes
/// that would take the original's traffic (an Ingress or route with the same
/// host) and CronJobs that would run on their schedule.
pub const LEFT_OUT: &[&str] = &[
    "ingresses.networking.k8s.io",
    "ingresses.extensions",
    "httproutes.gateway.networking.k8s.io",
    "grpcroutes.gateway.networking.k8s.io",
    "cronjobs.batch",
];

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("{0}")]
    Invalid(String),
    #[error("backup {backup} is being drilled now (drill {drill}); wait for it to finish")]
    Busy { backup: String, drill: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Why a drill could not read its backup, or clean up after itself.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Key(#[from] crate::volumes::KeyError),
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(
        "namespace {namespace} was not made by drill {drill} (label lifeboat.io/restore is \
         {label:?}); it is left alone"
    )]
    NotOurs {
        namespace: String,
        drill: String,
        label: Option<String>,
    },
    #[error("deleting namespace {namespace}: {source}")]
    Delete {
        namespace: String,
        source: kube::Error,
    },
    #[error("namespace {namespace} is still terminating after {seconds} s")]
    StillTerminating { namespace: String, seconds: u64 },
}

/// Where a drill of namespace `ns` lands: `<ns>-drill-<id>`, shortened to
/// stay a 63-character DNS label.
pub fn scratch_namespace(ns: &str, id: &str) -> String {
    let tail = format!("-drill-{id}");
    let room = 63usize.saturating_sub(tail.len());
    let head = ns[..ns.len().min(room)].trim_end_matches('-');
    format!("{head}{tail}")
}

/// What drills need: the catalog, the stores, and a client acting as the
/// drill identity.
#[derive(Clone)]
pub struct Drills {
    pub catalog: Catalog,
    pub locations: Locations,
    pub client: kube::Client,
}

/// Reads what a drill needs from an archive: the namespaces, and the
/// workloads' state when they were backed up.
#[derive(Default)]
struct Scan {
    namespaces: BTreeSet<String>,
    expectations: Vec<Expectation>,
}

impl archive::reader::Visitor for Scan {
    fn wants(&mut self, name: &archive::EntryName) -> bool {
        let Some(ns) = &name.namespace else {
            return false;
        };
        self.namespaces.insert(ns.clone());
        ready::WATCHED.contains(&name.group_resource.as_str())
    }

    fn visit(&mut self, entry: archive::reader::Entry) -> Result<(), ArchiveError> {
        let object: Value = serde_json::from_slice(&entry.data).map_err(|e| {
            ArchiveError::damaged(
                archive::RESOURCES_FILE,
                format!("entry `{}` is not JSON: {e}", entry.name.path),
            )
        })?;
        self.expectations
            .extend(ready::expectation(&entry.name.group_resource, &object));
        Ok(())
    }
}

/// The API resource of each kind a drill lists.
fn api_resource(group_resource: &str) -> ApiResource {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    match group_resource {
        "deployments.apps" => ApiResource::erase::<apps::Deployment>(&()),
        "statefulsets.apps" => ApiResource::erase::<apps::StatefulSet>(&()),
        "daemonsets.apps" => ApiResource::erase::<apps::DaemonSet>(&()),
        "jobs.batch" => ApiResource::erase::<batch::Job>(&()),
        "persistentvolumeclaims" => ApiResource::erase::<core::PersistentVolumeClaim>(&()),
        _ => ApiResource::erase::<core::Pod>(&()),
    }
}

/// A namespace's objects of one kind, by name, as JSON.
async fn list(
    client: &kube::Client,
    namespace: &str,
    group_resource: &str,
) -> Result<BTreeMap<String, Value>, kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &api_resource(group_resource));
    let mut out = BTreeMap::new();
    for object in api.list(&ListParams::default()).await? {
        let name = object.metadata.name.clone().unwrap_or_default();
        out.insert(name, serde_json::to_value(object).unwrap_or_default());
    }
    Ok(out)
}

fn failed(reason: impl Into<String>) -> DrillOutcome {
    DrillOutcome {
        passed: false,
        reason: Some(reason.into()),
        checks: json!([]),
        ..Default::default()
    }
}

impl Drills {
    /// Starts a drill of `backup`: recorded (Running), then run in the background.
    pub async fn start(
        &self,
        backup: &str,
        schedule: Option<String>,
        actor: &str,
        timeout: Duration,
    ) -> Result<(DrillRecord, tokio::task::JoinHandle<()>), DrillError> {
        let record = self.catalog.backup(backup).await.map_err(|_| {
            DrillError::Invalid(format!(
                "backup `{backup}` does not exist (GET /api/v1/backups lists them)"
            ))
        })?;
        if !BackupPhase::parse(&record.phase).is_some_and(BackupPhase::is_restorable) {
            return Err(DrillError::Invalid(format!(
                "backup {backup} is {}; only a Completed or PartiallyFailed backup can be drilled",
                record.phase
            )));
        }
        if let Some(running) = self
            .catalog
            .drills(Some(backup))
            .await?
            .into_iter()
            .find(|d| d.phase == RUNNING)
        {
            return Err(DrillError::Busy {
                backup: backup.to_string(),
                drill: running.id,
            });
        }
        let now = crate::catalog::now();
        let drill = DrillRecord {
            id: uuid::Uuid::new_v4().simple().to_string()[..6].to_string(),
            backup: backup.to_string(),
            schedule,
            phase: RUNNING.into(),
            reason: None,
            namespaces: "{}".into(),
            restore_name: None,
            objects: 0,
            volumes: 0,
            ready_ms: None,
            checks: "[]".into(),
            actor: actor.to_string(),
            owner: Some(crate::replica_id().to_string()),
            heartbeat_at: Some(now.clone()),
            created_at: now,
            completed_at: None,
            cleaned_at: None,
        };
        self.catalog.insert_drill(&drill).await?;
        self.catalog
            .record_activity(
                actor,
                "drill.started",
                &format!("backup/{backup}"),
                &format!("drill {} of backup {backup} started", drill.id),
                Some(&json!({"drill": drill.id})),
            )
            .await?;
        let handle = tokio::spawn(self.clone().run(drill.clone(), timeout));
        Ok((drill, handle))
    }

    /// Runs a recorded drill to its end: exercise, record, clean up.
    async fn run(self, drill: DrillRecord, timeout: Duration) {
        let _heartbeat = crate::backup::runner::heartbeat(&drill.id, {
            let catalog = self.catalog.clone();
            move |id| {
                let catalog = catalog.clone();
                async move { catalog.drill_heartbeat(&id).await }
            }
        });
        let outcome = self.exercise(&drill, timeout).await;
        crate::metrics::recorder().drill_finished(outcome.passed);
        if let Err(e) = self.catalog.finish_drill(&drill.id, &outcome).await {
            tracing::error!(drill = %drill.id, error = %e, "recording the drill's outcome failed");
        }
        let (kind, message) = if outcome.passed {
            (
                "drill.passed",
                format!(
                    "drill {} of backup {} passed: {} objects restored, ready in {:.1} s",
                    drill.id,
                    drill.backup,
                    outcome.objects,
                    outcome.ready_ms.unwrap_or(0) as f64 / 1000.0
                ),
            )
        } else {
            (
                "drill.failed",
                format!(
                    "drill {} of backup {} failed: {}",
                    drill.id,
                    drill.backup,
                    outcome.reason.as_deref().unwrap_or("no reason recorded")
                ),
            )
        };
        let _ = self
            .catalog
            .record_activity(
                "system",
                kind,
                &format!("backup/{}", drill.backup),
                &message,
                Some(&json!({"drill": drill.id, "checks": outcome.checks})),
            )
            .await;
        // Read back: the namespaces were recorded while it ran.
        let drill = self.catalog.drill(&drill.id).await.unwrap_or(drill);
        self.clean(&drill).await;
    }

    /// Restores the backup into scratch namespaces and waits for it.
    async fn exercise(&self, drill: &DrillRecord, timeout: Duration) -> DrillOutcome {
        let started = Instant::now();
        let backup = match self.catalog.backup(&drill.backup).await {
            Ok(b) => b,
            Err(e) => return failed(format!("the backup is gone: {e}")),
        };
        let scan = match self.scan(&backup).await {
            Ok(scan) => scan,
            Err(e) => return failed(format!("the backup could not be read: {e}")),
        };
        let mapping: BTreeMap<String, String> = scan
            .namespaces
            .iter()
            .filter(|ns| !NOT_DRILLED.contains(&ns.as_str()) && !ns.contains("-drill-"))
            .map(|ns| (ns.clone(), scratch_namespace(ns, &drill.id)))
            .collect();
        if mapping.is_empty() {
            return failed("the backup holds no namespaced objects to restore");
        }
        // Recorded before anything is made: a clean-up after a crash knows them.
        if let Err(e) = self
            .catalog
            .set_drill_namespaces(&drill.id, &json!(mapping).to_string())
            .await
        {
            return failed(format!("recording the scratch namespaces failed: {e}"));
        }
        let restore_name = format!("drill-{}", drill.id);
        let spec = RestoreSpec {
            backup_name: backup.name.clone(),
            included_namespaces: mapping.keys().cloned().collect(),
            namespace_mapping: mapping.clone(),
            include_cluster_resources: Some(false),
            excluded_resources: LEFT_OUT.iter().map(|r| r.to_string()).collect(),
            scratch_namespaces: true,
            // The plan states what the drill identity may not write; the
            // drill restores the rest and judges readiness as always.
            allow_partial: true,
            ..Default::default()
        };
        let mut outcome = DrillOutcome {
            restore_name: Some(restore_name.clone()),
            ..failed("")
        };
        let restored = crate::restore::start(
            &self.catalog,
            &self.locations,
            Some(&self.client),
            &restore_name,
            spec,
            &format!("drill/{}", drill.id),
        )
        .await;
        let phase = match restored {
            Ok((_, handle)) => match handle.await {
                Ok(Ok(phase)) => phase,
                Ok(Err(e)) => {
                    outcome.reason = Some(format!("the restore could not be recorded: {e}"));
                    return outcome;
                }
                Err(e) => {
                    outcome.reason = Some(format!("the restore stopped: {e}"));
                    return outcome;
                }
            },
            Err(e) => {
                outcome.reason = Some(format!("the restore did not start: {e}"));
                return outcome;
            }
        };
        let record = self.catalog.restore(&restore_name).await.ok();
        let plan: RestorePlan = record
            .as_ref()
            .and_then(|r| r.plan.as_deref())
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        outcome.objects = record.as_ref().map_or(0, |r| r.items_done);
        let items = plan.items;
        let mut checks: Vec<Check> = Vec::new();
        for item in items {
            let object = match &item.namespace {
                Some(ns) => format!("{} {ns}/{}", item.group_resource, item.name),
                None => format!("{} {}", item.group_resource, item.name),
            };
            let volume = item.group_resource == crate::restore::volumes::GROUP_RESOURCE;
            // What the drill identity may not write was never tried: as failed as a 403.
            let forbidden = item.action == crate::restore::engine::Action::Forbidden;
            let result = if forbidden {
                Some(ItemResult::Failed)
            } else {
                item.result
            };
            match result {
                Some(ItemResult::Failed) => {
                    let message = if forbidden {
                        item.reason.as_deref().unwrap_or("forbidden")
                    } else {
                        item.message.as_deref().unwrap_or("no reason given")
                    };
                    let hint = if message.contains("403") || forbidden {
                        format!(
                            " (drills act as {}: the ClusterRole and binding lifeboat-drill of docker/rbac.yaml let them)",
                            crate::cluster::DRILL_USER
                        )
                    } else {
                        String::new()
                    };
                    checks.push(Check {
                        object,
                        expected: true,
                        ok: false,
                        detail: format!("not restored: {message}{hint}"),
                    });
                }
                Some(ItemResult::Created) if volume => {
                    outcome.volumes += 1;
                    checks.push(Check {
                        object,
                        expected: true,
                        ok: true,
                        detail: "volume data restored into a new claim".into(),
                    });
                }
                _ => {}
            }
            // What the post-restore hooks proved (a database answering a
            // query, say); one that fails with on-error: Fail fails the drill.
            for h in &item.hooks {
                let (outcome, said) = (h.outcome(), h.output(" / "));
                checks.push(Check {
                    object: format!(
                        "post-restore hook in pod {}/{} ({})",
                        h.namespace, h.pod, h.container
                    ),
                    expected: h.on_error == "Fail",
                    ok: h.exit_code == Some(0),
                    detail: format!(
                        "`{}`: {outcome}{}",
                        h.command.join(" "),
                        if said.is_empty() {
                            String::new()
                        } else {
                            format!(": {said}")
                        }
                    ),
                });
            }
        }
        // The data restored is the data backed up: every blob of its
        // snapshots read back and hashed (what `backup verify` does).
        if outcome.volumes > 0 {
            let actor = format!("drill/{}", drill.id);
            match crate::backup::verify::verify(
                &self.catalog,
                &self.locations,
                &backup.name,
                &actor,
                None,
            )
            .await
            {
                Ok(report) => checks.push(Check {
                    object: format!("volume data of backup {}", backup.name),
                    expected: true,
                    ok: report.ok,
                    detail: if report.ok {
                        "every blob read back, hashes match".into()
                    } else {
                        report.problems.join("; ")
                    },
                }),
                Err(e) => checks.push(Check {
                    object: format!("volume data of backup {}", backup.name),
                    expected: true,
                    ok: false,
                    detail: format!("could not be verified: {e}"),
                }),
            }
        }
        if phase == RestorePhase::Failed {
            outcome.reason = Some(format!(
                "the restore failed: {}",
                record
                    .and_then(|r| r.phase_reason)
                    .unwrap_or_else(|| "no reason recorded".into())
            ));
            outcome.checks = json!(checks);
            return outcome;
        }
        // Then wait for what was ready to be ready again; with objects not
        // restored the drill has failed already, and one look is enough.
        let restored_all = checks.iter().all(|c| c.ok || !c.expected);
        let deadline = if restored_all {
            started + timeout
        } else {
            Instant::now()
        };
        let waited = loop {
            let live = self.readiness(&scan.expectations, &mapping).await;
            let all_ready = live.iter().all(|c| c.ok || !c.expected);
            if all_ready || Instant::now() >= deadline {
                break (live, all_ready);
            }
            tokio::time::sleep(POLL).await;
        };
        let (live, all_ready) = waited;
        checks.extend(live);
        let first_problem = checks.iter().find(|c| c.expected && !c.ok).cloned();
        outcome.passed = all_ready && first_problem.is_none();
        if all_ready {
            outcome.ready_ms =
                Some(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
        }
        outcome.reason = first_problem.map(|c| {
            if all_ready || !restored_all {
                format!("{}: {}", c.object, c.detail)
            } else {
                format!(
                    "{} not ready after {} s: {}",
                    c.object,
                    timeout.as_secs(),
                    c.detail
                )
            }
        });
        outcome.checks = json!(checks);
        outcome
    }

    /// The backup's namespaces and workloads, through the verifying reader.
    async fn scan(&self, backup: &crate::catalog::BackupRecord) -> Result<Scan, StepError> {
        let (location, known_format) = (&backup.storage_location, backup.format_version);
        let backup = backup.name.as_str();
        let store = self.locations.require(location)?;
        let key = crate::volumes::archive_key(&self.catalog, location).await?;
        let manifest =
            archive::verify_manifest(store.as_ref(), backup, key.as_ref(), known_format).await?;
        Ok(archive::read_resources(
            store.as_ref(),
            backup,
            &manifest,
            key.as_ref(),
            Scan::default(),
        )
        .await?)
    }

    /// Each expectation against the scratch namespaces now.
    async fn readiness(
        &self,
        expectations: &[Expectation],
        mapping: &BTreeMap<String, String>,
    ) -> Vec<Check> {
        let mut live: BTreeMap<(String, String), Result<BTreeMap<String, Value>, kube::Error>> =
            BTreeMap::new();
        let mut out = Vec::new();
        for e in expectations {
            let Some(target) = mapping.get(&e.namespace) else {
                continue;
            };
            for gr in [e.group_resource.as_str(), "pods"] {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    live.entry((target.clone(), gr.to_string()))
                {
                    slot.insert(list(&self.client, target, gr).await);
                }
            }
            let object = format!("{} {target}/{}", e.group_resource, e.name);
            let found = match &live[&(target.clone(), e.group_resource.clone())] {
                Ok(objects) => objects
                    .get(&e.name)
                    .ok_or_else(|| ready::NotReady::from("not in the scratch namespace")),
                Err(why) => Err(ready::NotReady(format!("could not be read: {why}"))),
            };
            let state = found.and_then(|o| ready::state(&e.group_resource, o));
            let (ok, mut detail) = match state {
                Ok(line) => (true, line),
                Err(ready::NotReady(line)) => (false, line),
            };
            if !ok
                && let Ok(pods) = &live[&(target.clone(), "pods".to_string())]
                && let Some(why) =
                    ready::pod_reason(&e.selector, &pods.values().cloned().collect::<Vec<_>>())
            {
                detail = format!("{detail}; {why}");
            }
            if let Some(note) = &e.note {
                detail = format!("{detail} ({note})");
            }
            out.push(Check {
                object,
                expected: e.expected,
                ok,
                detail,
            });
        }
        out
    }

    /// Deletes a drill's scratch namespaces and records it once they are gone.
    async fn clean(&self, drill: &DrillRecord) {
        match self.delete_namespaces(drill).await {
            Ok(()) => {
                if let Err(e) = self.catalog.set_drill_cleaned(&drill.id).await {
                    tracing::warn!(drill = %drill.id, error = %e, "recording the clean-up failed");
                }
            }
            Err(e) => {
                tracing::warn!(drill = %drill.id, error = %e, "the drill's scratch namespaces are not gone yet; retried on the next pass")
            }
        }
    }

    async fn delete_namespaces(&self, drill: &DrillRecord) -> Result<(), StepError> {
        let mapping: BTreeMap<String, String> =
            serde_json::from_str(&drill.namespaces).unwrap_or_default();
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mine = format!("drill-{}", drill.id);
        let mut waiting = Vec::new();
        for scratch in mapping.values() {
            let Some(ns) = api.get_opt(scratch).await? else {
                continue;
            };
            let label = ns
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("lifeboat.io/restore"));
            if label != Some(&mine) {
                return Err(StepError::NotOurs {
                    namespace: scratch.clone(),
                    drill: drill.id.clone(),
                    label: label.cloned(),
                });
            }
            match api.delete(scratch, &DeleteParams::background()).await {
                Ok(_) => waiting.push(scratch.clone()),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(source) => {
                    return Err(StepError::Delete {
                        namespace: scratch.clone(),
                        source,
                    });
                }
            }
        }
        let deadline = Instant::now() + CLEANUP_WITHIN;
        for scratch in waiting {
            loop {
                match api.get_opt(&scratch).await {
                    Ok(None) => break,
                    Ok(Some(_)) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                    Ok(Some(_)) => {
                        return Err(StepError::StillTerminating {
                            namespace: scratch,
                            seconds: CLEANUP_WITHIN.as_secs(),
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Fails the drills whose runner stopped (`which`, as for backups) and
    /// deletes the scratch namespaces of every finished drill not cleaned
    /// up yet. Returns the drills cleaned up.
    pub async fn recover(&self, which: Interrupted) -> Result<Vec<String>, CatalogError> {
        let mut cleaned = Vec::new();
        for drill in self.catalog.drills_not_cleaned().await? {
            if drill.phase == RUNNING {
                if !which.takes(
                    drill.owner.as_deref(),
                    drill.heartbeat_at.as_deref(),
                    &drill.created_at,
                ) {
                    continue;
                }
                let reason = "interrupted: Lifeboat stopped during the drill; its scratch namespaces are deleted";
                self.catalog
                    .finish_drill(
                        &drill.id,
                        &DrillOutcome {
                            restore_name: drill.restore_name.clone(),
                            ..failed(reason)
                        },
                    )
                    .await?;
                self.catalog
                    .record_activity(
                        "system",
                        "drill.failed",
                        &format!("backup/{}", drill.backup),
                        &format!(
                            "drill {} of backup {} failed: {reason}",
                            drill.id, drill.backup
                        ),
                        Some(&json!({"drill": drill.id})),
                    )
                    .await?;
            }
            if self.delete_namespaces(&drill).await.is_ok() {
                self.catalog.set_drill_cleaned(&drill.id).await?;
                cleaned.push(drill.id);
            }
        }
        Ok(cleaned)
    }

    /// Starts a drill of each drilled schedule's newest finished backup
    /// that has none yet (one per schedule at a time).
    pub async fn start_due(&self) -> Result<Vec<String>, CatalogError> {
        let mut started = Vec::new();
        for schedule in self.catalog.schedules().await? {
            if schedule.drill == 0 {
                continue;
            }
            let backups = self
                .catalog
                .backups(&crate::catalog::BackupFilter {
                    schedule: Some(schedule.name.clone()),
                    ..Default::default()
                })
                .await?;
            let newest = backups
                .iter()
                .filter(|b| BackupPhase::parse(&b.phase).is_some_and(BackupPhase::is_restorable))
                .max_by(|a, b| a.created_at.cmp(&b.created_at));
            let Some(newest) = newest else {
                continue;
            };
            if !self.catalog.drills(Some(&newest.name)).await?.is_empty() {
                continue;
            }
            let running = self.catalog.drills(None).await?.into_iter().any(|d| {
                d.phase == RUNNING && d.schedule.as_deref() == Some(schedule.name.as_str())
            });
            if running {
                continue;
            }
            match self
                .start(
                    &newest.name,
                    Some(schedule.name.clone()),
                    "scheduler",
                    DEFAULT_TIMEOUT,
                )
                .await
            {
                Ok((drill, _)) => started.push(drill.id),
                Err(DrillError::Catalog(e)) => return Err(e),
                Err(e) => {
                    tracing::warn!(backup = %newest.name, error = %e, "the scheduled drill did not start")
                }
            }
        }
        Ok(started)
    }
}

/// Whether a namespace's restore was proven: its newest finished drill, and
/// how long ago at `now`.
pub use frontend::model::Proven;

pub fn proven(
    drills: &[DrillRecord],
    namespace: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Proven {
    let newest = drills
        .iter()
        .filter(|d| d.phase != RUNNING && d.completed_at.is_some())
        .filter(|d| {
            serde_json::from_str::<BTreeMap<String, String>>(&d.namespaces)
                .is_ok_and(|m| m.contains_key(namespace))
        })
        .max_by(|a, b| a.completed_at.cmp(&b.completed_at));
    let Some(d) = newest else {
        return Proven {
            state: "never".into(),
            ..Default::default()
        };
    };
    let age = d
        .completed_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (now - t.with_timezone(&chrono::Utc)).num_seconds().max(0));
    let passed = d.phase == PASSED;
    Proven {
        state: if passed { "proven" } else { "failed" }.into(),
        at: d.completed_at.clone(),
        age_seconds: age,
        drill: Some(d.id.clone()),
        backup: Some(d.backup.clone()),
        reason: if passed { None } else { d.reason.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_namespaces_are_labels_named_after_their_source() {
        assert_eq!(scratch_namespace("shop", "1a2b3c"), "shop-drill-1a2b3c");
        let long = format!("{}-x", "a".repeat(60));
        let scratch = scratch_namespace(&long, "1a2b3c");
        assert!(
            scratch.len() <= 63 && scratch.ends_with("-drill-1a2b3c"),
            "{scratch}"
        );
        assert!(crate::selection::dns_label(&scratch), "{scratch}");
    }

    #[test]
    fn a_namespace_is_proven_by_its_newest_finished_drill() {
        let drill = |id: &str, phase: &str, at: &str, ns: &str| DrillRecord {
            id: id.into(),
            backup: "b".into(),
            schedule: None,
            phase: phase.into(),
            reason: (phase == FAILED).then(|| "web not ready".into()),
            namespaces: json!({ns: scratch_namespace(ns, id)}).to_string(),
            restore_name: None,
            objects: 0,
            volumes: 0,
            ready_ms: None,
            checks: "[]".into(),
            actor: "t".into(),
            owner: None,
            heartbeat_at: None,
            created_at: at.into(),
            completed_at: (phase != RUNNING).then(|| at.into()),
            cleaned_at: None,
        };
        let drills = vec![
            drill("aaaaaa", PASSED, "2026-11-30T01:00:00Z", "shop"),
            drill("bbbbbb", FAILED, "2026-11-30T02:00:00Z", "shop"),
            drill("cccccc", RUNNING, "2026-11-30T03:00:00Z", "shop"),
            drill("dddddd", PASSED, "2026-11-30T02:30:00Z", "data"),
        ];
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T04:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let shop = proven(&drills, "shop", now);
        assert_eq!(shop.state, "failed");
        assert_eq!(shop.reason.as_deref(), Some("web not ready"));
        let data = proven(&drills, "data", now);
        assert_eq!(data.state, "proven");
        assert_eq!(data.drill.as_deref(), Some("dddddd"));
        assert_eq!(data.age_seconds, Some(7200));
        assert_eq!(data.reason, None);
        assert_eq!(proven(&drills, "ops", now).state, "never");
    }
}
