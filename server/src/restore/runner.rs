//! Recording a restore: runs `engine`'s work and writes what it produces to
//! the catalog (phase, plan, progress, heartbeat, activity). The engine never
//! touches the catalog; this module never touches the cluster.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::RestorePhase;
use super::engine::{self, PlanItem, RestoreError};
use super::spec::RestoreSpec;
use crate::catalog::{Catalog, CatalogError};
use crate::restore::RestoreSpecExt;
use crate::storage::DynStore;

/// What a restore run needs.
#[derive(Clone)]
pub struct RestoreContext {
    pub catalog: Catalog,
    pub store: DynStore,
    pub client: kube::Client,
    /// Lifeboat's own client, for whether the cluster-scoped objects the
    /// user may not read exist (existence only); `None` where there is none.
    pub own_client: Option<kube::Client>,
    /// Told what the pre-flight check found, for a caller that waits for
    /// it before answering (the API's 422 for a refused restore).
    pub preflight: Option<std::sync::Arc<watch::Sender<Preflight>>>,
    /// The backup's location and what writes volume data back (the agents).
    pub location: String,
    pub volumes: std::sync::Arc<dyn crate::volumes::dispatch::VolumeWork>,
}

/// What a restore's pre-flight check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preflight {
    Pending,
    /// Nothing forbidden, a dry run, or `allowPartial`: the run goes on.
    Passed,
    /// Refused before anything was written: the forbidden lines, each as
    /// `<group-resource> <namespace>/<name>: <reason>`.
    Refused(Vec<String>),
}

/// How often a running restore writes its items' results to the catalog (at
/// least; 0.25 ms per item for plans over 1,000 items, as writing the plan
/// costs in proportion to its size). The end writes them all.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The catalog side of one restore.
struct Recorder {
    catalog: Catalog,
    name: String,
    /// A point-in-time restore's report, shown with its plan.
    point_in_time: Option<engine::PointInTime>,
}

impl Recorder {
    /// The plan as recorded: its lines and counts, and the point in time.
    fn plan_text(&self, plan: &[PlanItem]) -> String {
        engine::plan_text(plan, self.point_in_time.as_ref())
    }

    /// The plan before anything is applied (no counts yet).
    async fn planned(
        &self,
        phase: RestorePhase,
        reason: Option<&str>,
        plan: &[PlanItem],
    ) -> Result<(), CatalogError> {
        let total = engine::outcome(plan).total;
        self.catalog
            .update_restore(
                &self.name,
                phase,
                reason,
                Some(&self.plan_text(plan)),
                0,
                Some(total),
                0,
                0,
            )
            .await
    }

    /// The applied plan and its outcome.
    async fn finished(&self, plan: &[PlanItem]) -> Result<engine::Outcome, CatalogError> {
        let o = engine::outcome(plan);
        self.catalog
            .update_restore(
                &self.name,
                o.phase,
                o.reason.as_deref(),
                Some(&self.plan_text(plan)),
                o.done,
                Some(o.total),
                o.conflicts,
                o.failed,
            )
            .await?;
        self.activity(&format!(
            "restore {} {}: {} created or updated, {} failed",
            self.name, o.phase, o.done, o.failed
        ))
        .await?;
        Ok(o)
    }

    async fn failed(&self, error: RestoreError) -> Result<RestorePhase, CatalogError> {
        let reason = error.to_string();
        self.catalog
            .update_restore(
                &self.name,
                RestorePhase::Failed,
                Some(&reason),
                None,
                0,
                None,
                0,
                1,
            )
            .await?;
        self.activity(&format!("restore {} Failed: {reason}", self.name))
            .await?;
        Ok(RestorePhase::Failed)
    }

    async fn activity(&self, message: &str) -> Result<(), CatalogError> {
        self.catalog
            .record_activity(
                "system",
                "restore.finished",
                &format!("restore/{}", self.name),
                message,
                None,
            )
            .await
            .map(drop)
    }

    /// Writes the latest plan a running `apply` published, until the sender
    /// is dropped. A failed write only delays what the UI sees.
    fn progress_writer(
        &self,
        mut latest: watch::Receiver<Option<(String, engine::Outcome)>>,
    ) -> tokio::task::JoinHandle<()> {
        let (catalog, name) = (self.catalog.clone(), self.name.clone());
        // The channel's first value counts as a change: the plan is written first.
        latest.mark_changed();
        tokio::spawn(async move {
            while latest.changed().await.is_ok() {
                let Some((plan, o)) = latest.borrow_and_update().clone() else {
                    continue;
                };
                if let Err(e) = catalog
                    .update_restore(
                        &name,
                        RestorePhase::InProgress,
                        None,
                        Some(plan.as_str()),
                        o.done,
                        Some(o.total),
                        o.conflicts,
                        o.failed,
                    )
                    .await
                {
                    tracing::warn!(restore = %name, error = %e, "recording restore progress failed");
                }
            }
        })
    }
}

/// Runs a restore whose catalog row exists: verify, plan, and unless a dry run, apply.
pub async fn run(
    ctx: RestoreContext,
    name: String,
    spec: RestoreSpec,
) -> Result<RestorePhase, CatalogError> {
    let clock = Instant::now();
    let phase = run_recorded(ctx, name, spec).await;
    if let Ok(phase) = &phase {
        crate::metrics::recorder().restore_finished(phase.as_str(), clock.elapsed());
    }
    phase
}

async fn run_recorded(
    ctx: RestoreContext,
    name: String,
    spec: RestoreSpec,
) -> Result<RestorePhase, CatalogError> {
    let mut recorder = Recorder {
        catalog: ctx.catalog.clone(),
        name: name.clone(),
        point_in_time: None,
    };
    ctx.catalog
        .update_restore(&name, RestorePhase::InProgress, None, None, 0, None, 0, 0)
        .await?;
    let _heartbeat = crate::backup::runner::heartbeat(&name, {
        let catalog = ctx.catalog.clone();
        move |name| {
            let catalog = catalog.clone();
            async move { catalog.restore_heartbeat(&name).await }
        }
    });
    let key = crate::volumes::archive_key(&ctx.catalog, &ctx.location)
        .await
        .ok()
        .flatten();
    let known_format = ctx
        .catalog
        .backup(&spec.backup_name)
        .await
        .ok()
        .and_then(|b| b.format_version);
    // The cluster's resources are discovered while the archive is read.
    let (loaded, resources) = tokio::join!(
        engine::load(
            &ctx.store,
            &spec.backup_name,
            Some(&spec),
            key.as_ref(),
            known_format,
        ),
        engine::discover(&ctx.client)
    );
    let (manifest, items) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return recorder.failed(e.into()).await,
    };
    let resources = match resources {
        Ok(r) => r,
        Err(e) => return recorder.failed(e).await,
    };
    let items = match (&spec.from_schedule, spec.instant()) {
        (Some(schedule), Some(at)) => {
            let base_started = ctx
                .catalog
                .backup(&spec.backup_name)
                .await
                .ok()
                .and_then(|b| chrono::DateTime::parse_from_rfc3339(b.started_at.as_deref()?).ok());
            let since = base_started.map_or(at, |t| t.with_timezone(&chrono::Utc));
            let mut report = crate::journal::replay::Report {
                at: Some(at),
                base: spec.backup_name.clone(),
                base_started_at: Some(since),
                volumes_from: (!manifest.volumes.is_empty()).then(|| {
                    format!(
                        "backup {} ({} volume(s), taken from {since}): the newest volume snapshots before the instant",
                        spec.backup_name,
                        manifest.volumes.len()
                    )
                }),
                ..Default::default()
            };
            // What the writer holds goes to storage first (when it runs here).
            report.unwritten = crate::journal::flush(ctx.store.as_ref(), schedule, true)
                .await
                .err()
                .map(|e| e.to_string());
            let selected = |gr: &str, ns: Option<&str>| {
                spec.includes_resource(gr) && ns.is_none_or(|ns| spec.includes_namespace(ns))
            };
            let replayed = crate::journal::replay::to_instant(
                crate::journal::replay::Source {
                    store: &ctx.store,
                    schedule,
                    key: key.as_ref(),
                },
                items,
                since,
                at,
                &selected,
                &mut report,
            )
            .await;
            match replayed {
                Ok(items) => {
                    recorder.point_in_time = Some(report.view());
                    items
                }
                Err(e) => return recorder.failed(RestoreError::Journal(e)).await,
            }
        }
        _ => items,
    };
    // The pre-flight's cluster-wide reviews are asked while the plan lists
    // the live objects.
    let kinds: std::collections::BTreeSet<String> =
        items.iter().map(|i| i.group_resource.clone()).collect();
    let (planned, known) = tokio::join!(
        engine::plan(
            &ctx.client,
            ctx.own_client.as_ref(),
            &resources,
            &spec,
            &name,
            items,
            &manifest.volumes,
        ),
        super::preflight::prefetch(
            &ctx.client,
            kinds,
            spec.existing_resource_policy == super::spec::ExistingResourcePolicy::Update,
        )
    );
    let planned = match planned {
        Ok(p) => p,
        Err(e) => return recorder.failed(e).await,
    };
    // Pre-flight: what the user may not write is marked before anything is.
    let mut planned = planned;
    let forbidden =
        super::preflight::check_with(&ctx.client, &resources, &mut planned, known).await;
    let tell = |found: Preflight| {
        if let Some(sender) = &ctx.preflight {
            sender.send_replace(found);
        }
    };
    if spec.dry_run {
        tell(Preflight::Passed);
        let reason = if forbidden > 0 {
            format!(
                "dry run: nothing was applied; {forbidden} item(s) you may not write (a real run \
                 is refused unless allowPartial)"
            )
        } else {
            "dry run: nothing was applied".to_string()
        };
        recorder
            .planned(RestorePhase::Planned, Some(&reason), &planned)
            .await?;
        return Ok(RestorePhase::Planned);
    }
    if forbidden > 0 && !spec.allow_partial {
        let lines = planned
            .iter()
            .filter(|p| p.action == engine::Action::Forbidden)
            .map(|p| {
                format!(
                    "{} {}{}: {}",
                    p.group_resource,
                    p.namespace
                        .as_deref()
                        .map(|ns| format!("{ns}/"))
                        .unwrap_or_default(),
                    p.name,
                    p.reason.as_deref().unwrap_or_default()
                )
            })
            .collect();
        tell(Preflight::Refused(lines));
        let reason = format!(
            "refused before anything was written: {forbidden} item(s) you may not write (each \
             names the permission and a binding that grants it); restore with allowPartial to \
             bring back the rest"
        );
        recorder
            .planned(RestorePhase::Failed, Some(&reason), &planned)
            .await?;
        recorder
            .activity(&format!("restore {name} Failed: {reason}"))
            .await?;
        return Ok(RestorePhase::Failed);
    }
    tell(Preflight::Passed);
    // The plan, then each item's result as it lands (at most every `every`),
    // are written by their own task: the first items go out meanwhile.
    let every = PROGRESS_EVERY.max(Duration::from_micros(250 * planned.len() as u64));
    let recorded = |plan: &[PlanItem]| recorder.plan_text(plan);
    let (publish, latest) = watch::channel(Some((recorded(&planned), engine::outcome(&planned))));
    let writer = recorder.progress_writer(latest);
    let mut last = Instant::now();
    let volumes = engine::VolumeRestore {
        work: ctx.volumes.clone(),
        location: ctx.location.clone(),
        backup: spec.backup_name.clone(),
        helper_image: crate::volumes::helper::DEFAULT_IMAGE.to_string(),
    };
    // The commands to run in the pods of what is created, read before the
    // objects leave the plan.
    let post_hooks = super::hooks::post_hooks_of(&planned, &spec);
    let applied = engine::apply(
        &ctx.client,
        resources,
        &name,
        spec.scratch_namespaces,
        planned,
        Some(&volumes),
        |plan| {
            if last.elapsed() >= every {
                last = Instant::now();
                publish.send_replace(Some((recorded(plan), engine::outcome(plan))));
            }
        },
    )
    .await;
    let applied = match applied {
        Ok(mut plan) if !post_hooks.is_empty() => {
            publish.send_replace(Some((recorded(&plan), engine::outcome(&plan))));
            super::hooks::run_all(&ctx.client, &mut plan, post_hooks).await;
            Ok(plan)
        }
        other => other,
    };
    drop(publish);
    // The last progress write lands before the outcome, never after it.
    let _ = writer.await;
    let applied = match applied {
        Ok(p) => p,
        Err(e) => return recorder.failed(e).await,
    };
    Ok(recorder.finished(&applied).await?.phase)
}
