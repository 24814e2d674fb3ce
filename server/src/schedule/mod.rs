//! Schedules: cron-driven backups with retention, and the garbage collector.
//! `spec.rs` is the pure part (parsing, due runs, retention); `cluster::lease` decides
//! which replica runs them; this module runs them against the catalog.

pub mod spec;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::backup::{self, BackupError, SpecError};
use crate::catalog::{BackupFilter, BackupPhase, Catalog, CatalogError, ScheduleRecord};
/// Which replica runs the schedules: a Kubernetes Lease ([`crate::cluster::lease`]).
pub use crate::cluster::lease::{Leadership, LeaseElector};
use crate::storage::Locations;
pub use spec::{CronSchedule, Retention, ScheduleSpec, ScheduleSpecExt};

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule: {0}")]
    Invalid(#[from] SpecError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("the cluster did not answer: {0}")]
    Cluster(String),
}

/// How many upcoming run times the API shows.
pub const NEXT_RUNS: usize = 5;

/// The template's storage location must be one the catalog knows.
async fn location_exists(catalog: &Catalog, spec: &ScheduleSpec) -> Result<(), ScheduleError> {
    let location = spec.template.storage_location();
    match catalog.storage_location(location).await {
        Ok(_) => Ok(()),
        Err(CatalogError::NotFound { .. }) => Err(ScheduleError::Invalid(SpecError {
            field: "template.storageLocation".into(),
            message: format!(
                "storage location `{location}` does not exist (GET /api/v1/storage-locations lists them)"
            ),
        })),
        Err(e) => Err(e.into()),
    }
}

/// Validates and records a new schedule.
pub async fn create(
    catalog: &Catalog,
    spec: &ScheduleSpec,
    actor: &str,
) -> Result<ScheduleRecord, ScheduleError> {
    spec.validate()?;
    location_exists(catalog, spec).await?;
    let record = spec.to_record(Utc::now());
    catalog.insert_schedule(&record).await?;
    catalog
        .record_activity(
            actor,
            "schedule.created",
            &format!("schedule/{}", spec.name),
            &format!(
                "schedule {} created: `{}` ({})",
                spec.name, spec.schedule, spec.timezone
            ),
            serde_json::to_value(spec).ok().as_ref(),
        )
        .await?;
    Ok(record)
}

/// Replaces a schedule's definition; its runs so far stay as they are.
pub async fn update(
    catalog: &Catalog,
    spec: &ScheduleSpec,
    actor: &str,
) -> Result<ScheduleRecord, ScheduleError> {
    spec.validate()?;
    location_exists(catalog, spec).await?;
    let existing = catalog.schedule(&spec.name).await?;
    let mut record = spec.to_record(Utc::now());
    record.last_run_at = existing.last_run_at;
    record.created_at = existing.created_at;
    catalog.update_schedule(&record).await?;
    catalog
        .record_activity(
            actor,
            "schedule.updated",
            &format!("schedule/{}", spec.name),
            &format!("schedule {} changed", spec.name),
            serde_json::to_value(spec).ok().as_ref(),
        )
        .await?;
    Ok(catalog.schedule(&spec.name).await?)
}

/// Pauses or resumes; resuming does not run the slots that passed meanwhile.
pub async fn set_paused(
    catalog: &Catalog,
    name: &str,
    paused: bool,
    actor: &str,
) -> Result<(), ScheduleError> {
    catalog.set_schedule_paused(name, paused).await?;
    let word = if paused { "paused" } else { "resumed" };
    catalog
        .record_activity(
            actor,
            &format!("schedule.{word}"),
            &format!("schedule/{name}"),
            &format!("schedule {name} {word}"),
            None,
        )
        .await?;
    Ok(())
}

/// Deletes a schedule; its backups stay (retention no longer applies to them
/// beyond their own TTL).
pub async fn delete(catalog: &Catalog, name: &str, actor: &str) -> Result<(), ScheduleError> {
    if !catalog.delete_schedule(name).await? {
        return Err(CatalogError::NotFound {
            what: "schedule",
            name: name.to_string(),
        }
        .into());
    }
    catalog
        .record_activity(
            actor,
            "schedule.deleted",
            &format!("schedule/{name}"),
            &format!("schedule {name} deleted; its backups were kept"),
            None,
        )
        .await?;
    Ok(())
}

/// The next run times of a schedule after `now` (none while paused).
pub fn next_runs(record: &ScheduleRecord, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    if record.paused != 0 {
        return Vec::new();
    }
    CronSchedule::parse(&record.cron, &record.timezone)
        .map(|c| c.next_runs(now, NEXT_RUNS))
        .unwrap_or_default()
}

/// What one scheduler pass did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct TickReport {
    /// Backups started.
    pub started: Vec<String>,
    /// Schedules whose previous run is still going (tried again next pass).
    pub still_running: Vec<String>,
    /// Schedules that could not run: their stored template does not read.
    pub refused: Vec<String>,
}

/// What one garbage collection did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct GcReport {
    pub deleted: Vec<String>,
    /// Kept for now because a restore is reading them.
    pub deferred: Vec<String>,
    /// Could not be deleted (tried again next time).
    pub failed: Vec<String>,
    /// Volume repositories pruned: (location, bytes freed or marked).
    pub pruned: Vec<(String, u64)>,
    /// Volume repositories whose prune waits for their running tasks.
    pub prune_deferred: Vec<String>,
    /// Due for deletion but held by S3 Object Lock: (backup, locked until).
    pub locked: Vec<(String, String)>,
    /// Journal segments deleted with the backups they rested on.
    pub journal_segments: u64,
    /// Lifeboat's temporary objects of operations no longer running, removed.
    pub temporaries: Vec<String>,
}

/// Removes Lifeboat's temporary objects (helper pods, VolumeSnapshots and
/// their claims) whose backup or restore is no longer running: after a
/// restart (`serve` at start) and on every GC pass. The cluster is listed
/// before the catalog is read, so an operation that starts meanwhile has
/// its row before any object of its own, and is never swept.
pub async fn sweep_temporaries(
    catalog: &Catalog,
    client: &kube::Client,
) -> Result<Vec<String>, ScheduleError> {
    use crate::cluster::temporary::{self, Operation};
    let found = temporary::list(client)
        .await
        .map_err(|e| ScheduleError::Cluster(e.to_string()))?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut running = std::collections::BTreeSet::new();
    for phase in [backup::BackupPhase::New, backup::BackupPhase::InProgress] {
        let filter = crate::catalog::BackupFilter {
            phase: Some(phase.as_str().into()),
            ..Default::default()
        };
        for b in catalog.backups(&filter).await? {
            running.insert(Operation::Backup(b.name));
        }
    }
    for phase in [
        crate::restore::RestorePhase::New,
        crate::restore::RestorePhase::InProgress,
    ] {
        for r in catalog.restores_in(phase).await? {
            running.insert(Operation::Restore(r.name));
        }
    }
    let stale: Vec<_> = found
        .into_iter()
        .filter(|f| !running.contains(&f.operation))
        .collect();
    let removed = temporary::remove(client, stale).await;
    let names: Vec<String> = removed.iter().map(ToString::to_string).collect();
    if !names.is_empty() {
        tracing::warn!(objects = ?names, "removed temporary objects of operations that are no longer running");
    }
    Ok(names)
}

/// Runs schedules and GC for one replica, when it leads.
#[derive(Clone)]
pub struct Scheduler {
    pub catalog: Catalog,
    pub locations: Locations,
    pub client: Option<kube::Client>,
    /// The drill identity's client (`Cluster::drill_client`): drills of
    /// schedules that ask for them, and resuming their clean-ups.
    pub drill_client: Option<kube::Client>,
    pub leadership: Leadership,
}

impl Scheduler {
    /// One pass at `now`: each unpaused schedule with a due slot gets one
    /// backup `<schedule>-<slot>` (missed slots are counted and logged, not
    /// run); a schedule whose last backup is still running waits.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, ScheduleError> {
        let mut report = TickReport::default();
        for record in self.catalog.schedules().await? {
            if record.paused != 0 {
                continue;
            }
            let cron = match CronSchedule::parse(&record.cron, &record.timezone) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(schedule = %record.name, error = %e, "schedule cannot be parsed; skipped");
                    continue;
                }
            };
            let Some(due) = spec::due(&cron, spec::counted_from(&record), now) else {
                continue;
            };
            let running = self
                .catalog
                .backups(&BackupFilter {
                    schedule: Some(record.name.clone()),
                    ..Default::default()
                })
                .await?
                .into_iter()
                .any(|b| {
                    b.phase == BackupPhase::New.as_str()
                        || b.phase == BackupPhase::InProgress.as_str()
                });
            if running {
                report.still_running.push(record.name.clone());
                continue;
            }
            // Fencing: a replica that lost the Lease since the pass began stops here.
            if !self.leadership.is_leader() {
                break;
            }
            let name = spec::backup_name(&record.name, due.slot);
            let subject = format!("schedule/{}", record.name);
            let details = serde_json::json!({"slot": due.slot.to_rfc3339(), "missed": due.missed, "backup": name,
                                            "replica": self.leadership.identity()});
            let template = match ScheduleSpec::from_record(&record) {
                Ok(spec) => spec.backup_template(),
                Err(e) => {
                    // Never an empty template: that would back up everything.
                    tracing::error!(schedule = %record.name, error = %e.message, "schedule not run");
                    self.catalog
                        .record_activity(
                            "scheduler",
                            "schedule.failed",
                            &subject,
                            &format!(
                                "schedule {} did not run for {}: {}; nothing was backed up",
                                record.name,
                                due.slot.to_rfc3339(),
                                e.message
                            ),
                            Some(&details),
                        )
                        .await?;
                    report.refused.push(record.name.clone());
                    // Once per slot, not on every tick.
                    self.catalog
                        .set_schedule_last_run(&record.name, &due.slot.to_rfc3339())
                        .await?;
                    continue;
                }
            };
            match backup::start(
                &self.catalog,
                &self.locations,
                self.client.as_ref(),
                &name,
                template,
                Some(record.name.clone()),
                "scheduler",
            )
            .await
            {
                Ok(_) => {
                    let missed = match due.missed {
                        0 => String::new(),
                        n if n >= spec::MISSED_COUNT_CAP => {
                            format!(
                                "; at least {n} earlier runs were missed while no replica was running schedules, one run catches up"
                            )
                        }
                        n => format!(
                            "; {n} earlier run(s) were missed while no replica was running schedules, one run catches up"
                        ),
                    };
                    self.catalog
                        .record_activity(
                            "scheduler",
                            "schedule.run",
                            &subject,
                            &format!(
                                "schedule {} started backup {name} for {}{missed}",
                                record.name,
                                due.slot.to_rfc3339()
                            ),
                            Some(&details),
                        )
                        .await?;
                    report.started.push(name);
                }
                // Started before a crash, but the run was not recorded: it is done.
                Err(BackupError::Catalog(CatalogError::AlreadyExists { .. })) => {}
                Err(e) => {
                    self.catalog
                        .record_activity(
                            "scheduler",
                            "schedule.failed",
                            &subject,
                            &format!(
                                "schedule {} could not start backup {name}: {e}",
                                record.name
                            ),
                            Some(&details),
                        )
                        .await?;
                }
            }
            self.catalog
                .set_schedule_last_run(&record.name, &due.slot.to_rfc3339())
                .await?;
        }
        Ok(report)
    }

    /// Deletes what retention lets go at `now` (storage first, then the
    /// catalog; a deletion cut short is resumed next time). Backups a running
    /// restore is reading wait.
    pub async fn collect_garbage(&self, now: DateTime<Utc>) -> Result<GcReport, ScheduleError> {
        let mut report = GcReport::default();
        let backups = self.catalog.backups(&Default::default()).await?;
        let keep_last: BTreeMap<String, i64> = self
            .catalog
            .schedules()
            .await?
            .into_iter()
            .filter_map(|s| Some((s.name, s.keep_last?)))
            .collect();
        for victim in spec::retention_victims(&backups, &keep_last, now) {
            if !self.leadership.is_leader() {
                break;
            }
            if let Some(record) = backups.iter().find(|b| b.name == victim.backup)
                && let Some(until) = backup::locked_at(record, now)
            {
                // Never tried early: the store would refuse it anyway.
                tracing::info!(backup = %victim.backup, %until, reason = %victim.reason, "due for deletion but locked until then");
                report.locked.push((victim.backup, until));
                continue;
            }
            let readers = self.catalog.restores_reading(&victim.backup).await?;
            if !readers.is_empty() {
                tracing::info!(backup = %victim.backup, restores = ?readers, "kept while restores read it");
                report.deferred.push(victim.backup);
                continue;
            }
            let subject = format!("backup/{}", victim.backup);
            match backup::delete_at(&self.catalog, &self.locations, &victim.backup, "gc", now).await
            {
                Ok(()) => {
                    self.catalog
                        .record_activity(
                            "gc",
                            "backup.expired",
                            &subject,
                            &format!(
                                "backup {} deleted by retention: {}",
                                victim.backup, victim.reason
                            ),
                            None,
                        )
                        .await?;
                    report.deleted.push(victim.backup);
                }
                Err(BackupError::Catalog(CatalogError::NotFound { .. })) => {}
                Err(e) => {
                    tracing::warn!(backup = %victim.backup, error = %e, "garbage collection could not delete a backup; will retry");
                    report.failed.push(victim.backup);
                }
            }
        }
        if self.leadership.is_leader() {
            self.prune_volume_repositories(&mut report).await;
            self.forget_journals(&mut report).await?;
            if let Some(client) = &self.client {
                match sweep_temporaries(&self.catalog, client).await {
                    Ok(removed) => report.temporaries = removed,
                    Err(e) => {
                        tracing::warn!(error = %e, "looking for leftover temporary objects failed; will retry")
                    }
                }
            }
        }
        Ok(report)
    }

    /// Journals are kept as long as the backups they rest on: segments that
    /// end before a schedule's oldest backup go; a schedule gone (or no
    /// longer continuous) with no backup left takes its journal with it.
    async fn forget_journals(&self, report: &mut GcReport) -> Result<(), ScheduleError> {
        let backups = self.catalog.backups(&Default::default()).await?;
        let continuous: std::collections::BTreeSet<String> = self
            .catalog
            .schedules()
            .await?
            .into_iter()
            .filter(|s| s.continuous != 0)
            .map(|s| s.name)
            .collect();
        for (location, store) in self.locations.all() {
            let journaled = match crate::journal::journaled_schedules(&store).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(%location, error = %e, "listing journals failed; retried next pass");
                    continue;
                }
            };
            for schedule in journaled {
                let oldest = backups
                    .iter()
                    .filter(|b| b.schedule.as_deref() == Some(schedule.as_str()))
                    .filter(|b| b.storage_location == location)
                    .filter(|b| BackupPhase::parse(&b.phase).is_some_and(|p| p.is_restorable()))
                    .filter_map(|b| b.started_at.as_deref())
                    .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .min();
                let keep_from = match oldest {
                    Some(t) => Some(t),
                    // Waiting for its first backup.
                    None if continuous.contains(&schedule) => continue,
                    None => None,
                };
                match crate::journal::forget_before(&store, &schedule, keep_from).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(%schedule, %location, segments = n, "journal segments deleted by retention");
                        report.journal_segments += n;
                    }
                    Err(e) => {
                        tracing::warn!(%schedule, %location, error = %e, "journal retention failed; retried next pass")
                    }
                }
            }
        }
        Ok(())
    }

    /// Prunes the volume repositories of every open location where it is due
    /// (on the leader): data no snapshot references any more goes.
    async fn prune_volume_repositories(&self, report: &mut GcReport) {
        for (location, store) in self.locations.all() {
            match crate::volumes::prune(&self.catalog, &store, &location).await {
                Ok(Some(0)) => {}
                Ok(None) => {
                    tracing::info!(%location, "volume repository busy with backups or restores; pruned at a later pass");
                    report.prune_deferred.push(location);
                }
                Ok(Some(bytes)) => {
                    tracing::info!(%location, bytes, "volume repository pruned");
                    report.pruned.push((location, bytes));
                }
                Err(e) => {
                    tracing::warn!(%location, error = %e, "pruning the volume repository failed")
                }
            }
        }
    }

    fn drills(&self) -> Option<crate::drill::Drills> {
        Some(crate::drill::Drills {
            catalog: self.catalog.clone(),
            locations: self.locations.clone(),
            client: self.drill_client.clone()?,
        })
    }

    /// Runs passes for ever: schedules (and their drills) every 2 s, GC
    /// (and drill clean-ups) every 30 s, only while this replica leads.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_gc: Option<std::time::Instant> = None;
            loop {
                tick.tick().await;
                if !self.leadership.is_leader() {
                    continue;
                }
                if let Err(e) = self.tick(Utc::now()).await {
                    tracing::warn!(error = %e, "scheduler pass failed; will retry");
                }
                let drills = self.drills();
                if let Some(drills) = &drills
                    && let Err(e) = drills.start_due().await
                {
                    tracing::warn!(error = %e, "starting scheduled drills failed; will retry");
                }
                if last_gc.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(30)) {
                    last_gc = Some(std::time::Instant::now());
                    if let Err(e) = self.collect_garbage(Utc::now()).await {
                        tracing::warn!(error = %e, "garbage collection failed; will retry");
                    }
                    // Scratch namespaces of drills cut short, here or on a dead replica.
                    if let Some(drills) = &drills
                        && let Err(e) = drills.recover(crate::backup::Interrupted::Stale).await
                    {
                        tracing::warn!(error = %e, "resuming drill clean-ups failed; will retry");
                    }
                }
            }
        })
    }
}
