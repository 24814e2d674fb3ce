//! Recording a backup: runs `engine`'s work and writes what it produces to
//! the catalog (phase, progress, heartbeat, outcome, activity). The engine
//! never touches the catalog; this module never touches the cluster.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use tokio::sync::watch;

use super::BackupPhase;
use super::engine::{self, Log, Work};
use super::hooks;
use super::spec::BackupSpec;
use super::volumes::{self, Planned};
use crate::backup::BackupSpecExt;
use crate::catalog::{Catalog, CatalogError};
use crate::storage::LocationSettings;
use crate::volumes::VolumeEntry;
use crate::volumes::dispatch::VolumeWork;
use crate::volumes::repo::{RepoError, StoreBackend, VolumeRepo};

/// What a backup run needs.
#[derive(Clone)]
pub struct BackupContext {
    pub catalog: Catalog,
    pub work: Work,
    /// The location's name (its repository key is looked up by it).
    pub location: String,
    /// Who reads the volumes: the node agents, through the catalog's queue.
    pub volumes: std::sync::Arc<dyn VolumeWork>,
}

/// How often, at most, a running backup writes its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Says a run is alive every `HEARTBEAT_EVERY` until the guard is dropped.
pub(crate) fn heartbeat<F, Fut>(name: &str, beat: F) -> AbortOnDrop
where
    F: Fn(String) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), CatalogError>> + Send,
{
    let name = name.to_string();
    AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(super::HEARTBEAT_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = beat(name.clone()).await {
                tracing::warn!(run = %name, error = %e, "recording the heartbeat failed");
            }
        }
    }))
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    pub phase: BackupPhase,
    pub reason: Option<String>,
}

/// Runs a backup whose catalog row exists (phase New). Never panics; every
/// outcome ends in the catalog as Completed, PartiallyFailed or Failed.
pub async fn run(
    mut ctx: BackupContext,
    name: String,
    spec: BackupSpec,
    schedule: Option<String>,
) -> Phase {
    let started_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let clock = Instant::now();
    let mut volume_bytes = 0u64;
    let catalog = &ctx.catalog;
    let _ = catalog
        .set_backup_phase(&name, BackupPhase::InProgress, None)
        .await;
    let _heartbeat = heartbeat(&name, {
        let catalog = catalog.clone();
        move |name| {
            let catalog = catalog.clone();
            async move { catalog.backup_heartbeat(&name).await }
        }
    });

    // Progress goes to the catalog from its own task, so listing never waits on it.
    let (publish, mut latest) = watch::channel((0u64, 0u64));
    let writer = {
        let (catalog, name) = (catalog.clone(), name.clone());
        tokio::spawn(async move {
            while latest.changed().await.is_ok() {
                let (items, bytes) = *latest.borrow_and_update();
                if let Err(e) = catalog
                    .set_backup_progress(&name, items as i64, bytes as i64)
                    .await
                {
                    tracing::warn!(backup = %name, error = %e, "recording backup progress failed");
                }
            }
        })
    };
    let mut log = Log::default();
    log.info(format!("backup {name} started"));
    let mut last = None::<Instant>;
    // The manifest is signed with the location's key, made on first use, and
    // the archive encrypted to it unless the location was explicitly made to
    // store archives in the clear.
    ctx.work.encrypt = !in_the_clear(catalog, &ctx.location).await;
    if !ctx.work.encrypt {
        log.info(format!(
            "location {} stores archives unencrypted (encryption: none); the manifest is still signed",
            ctx.location
        ));
    }
    let keyed = crate::volumes::archive_key_for_backup(catalog, &ctx.work.store, &ctx.location)
        .await
        .map_err(|e| engine::EngineError::Key(e.to_string()));
    let captured = match keyed {
        Ok(key) => {
            ctx.work.archive_key = Some(key);
            engine::capture(&ctx.work, &name, &spec, &mut log, |items, bytes| {
                if last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                    last = Some(Instant::now());
                    publish.send_replace((items, bytes));
                }
            })
            .await
        }
        Err(e) => Err(e),
    };
    if let Ok(c) = &captured {
        // The final count, whatever the throttle held back.
        publish.send_replace((c.items, c.archive.size));
    }
    drop(publish);
    let _ = writer.await;

    let mut written = None;
    let (phase, reason, size) = match captured {
        Ok(mut captured) => {
            let planned = captured.volume_scan.plan();
            for e in std::mem::take(&mut captured.volume_scan.hook_errors) {
                log.warn(e);
            }
            let pod_hooks = std::mem::take(&mut captured.volume_scan.hooks);
            let listing_ran = std::mem::take(&mut captured.volume_scan.listing_ran);
            let (volumes, hooks_ran, failed_hook) = volume_data(
                &ctx,
                &name,
                &spec,
                planned,
                (pod_hooks, listing_ran),
                &mut log,
            )
            .await;
            captured.volumes = volumes;
            captured.hooks = hooks_ran;
            volume_bytes = captured.volumes.iter().map(|v| v.bytes_uploaded).sum();
            let (phase, reason) = engine::outcome(&log);
            let size = captured.archive.size as i64;
            if let Some(hook) = failed_hook {
                // A hook that fails with `Fail` fails the backup: no manifest,
                // and the reason names the hook, its exit code and stderr.
                let reason = format!("a backup hook failed (on-error: Fail): {hook}");
                (BackupPhase::Failed, Some(reason), None)
            } else {
                log.info(format!(
                    "backup {name} finished: {} objects, {} bytes compressed",
                    captured.items, captured.archive.size
                ));
                match engine::write_log_and_manifest(
                    &ctx.work.store,
                    &name,
                    &spec,
                    &schedule,
                    &started_at,
                    phase,
                    reason.clone(),
                    captured,
                    &mut log,
                )
                .await
                {
                    Ok(dates) => {
                        written = Some(dates);
                        (phase, reason, Some(size))
                    }
                    Err(e) => (BackupPhase::Failed, Some(e.to_string()), None),
                }
            }
        }
        Err(e) => {
            log.error(e.to_string());
            (BackupPhase::Failed, Some(e.to_string()), None)
        }
    };
    if size.is_none() {
        // No manifest: remove whatever was written, so storage holds only complete backups.
        engine::remove_objects(&ctx.work.store, &name).await;
    }
    let items = catalog.backup(&name).await.map_or(0, |b| b.items_done);
    crate::metrics::recorder().backup_finished(
        phase.as_str(),
        schedule.as_deref().unwrap_or_default(),
        clock.elapsed(),
        u64::try_from(items).unwrap_or(0),
        size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        volume_bytes,
    );
    if let Err(e) = catalog
        .finish_backup(
            &name,
            phase,
            reason.as_deref(),
            items,
            size,
            log.warnings.len() as i64,
            log.errors.len() as i64,
            // The manifest's date when there is one; a failed run expires too.
            written
                .as_ref()
                .map_or_else(|| spec.expires_at(Utc::now()), |w| w.expires_at.clone())
                .as_deref(),
        )
        .await
    {
        tracing::error!(backup = %name, error = %e, "recording the backup's outcome failed");
    }
    if written.is_some()
        && let Err(e) = catalog
            .set_backup_format(&name, i64::from(crate::archive::FORMAT_VERSION))
            .await
    {
        tracing::error!(backup = %name, error = %e, "recording the backup's format failed");
    }
    if let Some(until) = written.as_ref().and_then(|w| w.locked_until.as_ref())
        && let Err(e) = catalog.set_backup_locked_until(&name, until).await
    {
        tracing::error!(backup = %name, error = %e, "recording the backup's object lock failed");
    }
    let _ = catalog
        .record_activity(
            "system",
            "backup.finished",
            &format!("backup/{name}"),
            &format!(
                "backup {name} {}{}",
                phase.as_str(),
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            Some(&serde_json::json!({"phase": phase.as_str(), "schedule": schedule})),
        )
        .await;
    Phase { phase, reason }
}

/// Whether `location` was explicitly set to keep archives in the clear
/// (`encryption: none` in its settings).
pub(crate) async fn in_the_clear(catalog: &crate::catalog::Catalog, location: &str) -> bool {
    catalog
        .storage_location(location)
        .await
        .ok()
        .and_then(|l| serde_json::from_str::<LocationSettings>(&l.config).ok())
        .is_some_and(|config| config.in_the_clear())
}

/// Ends every volume still pending as `phase` (Skipped or Failed), saying why.
fn end_pending(planned: Vec<Planned>, phase: &str, reason: &str) -> Vec<VolumeEntry> {
    planned
        .into_iter()
        .map(|p| {
            let mut entry = p.entry;
            if entry.phase == "Pending" {
                entry.phase = phase.into();
                entry.reason = Some(reason.to_string());
            }
            entry
        })
        .collect()
}

/// Takes the backup's volume data through the agents and logs each volume:
/// a failed one is a warning (the backup ends PartiallyFailed), a skipped
/// one says why. Each hooked pod's hooks run around its reads (those of
/// pods without claims ran during the listing); every hook is logged.
async fn volume_data(
    ctx: &BackupContext,
    name: &str,
    spec: &BackupSpec,
    planned: Vec<Planned>,
    (pod_hooks, ran_while_listing): (Vec<hooks::PodHooks>, Vec<hooks::Ran>),
    log: &mut Log,
) -> (
    Vec<VolumeEntry>,
    Vec<frontend::model::HookRun>,
    Option<String>,
) {
    let readable = planned.iter().any(|p| p.reader.is_some());
    // The hooks of pods without claims ran during the listing.
    let mut ran = ran_while_listing;
    let mut hooks_left = Some(pod_hooks);
    let entries = if !readable {
        planned.into_iter().map(|p| p.entry).collect()
    } else if spec.volume_data == Some(false) {
        end_pending(
            planned,
            "Skipped",
            "volume data is turned off for this backup (volumeData: false)",
        )
    } else if !ctx.volumes.agents_known().await {
        end_pending(
            planned,
            "Skipped",
            "no node agent has ever connected to this Lifeboat; install the lifeboat-agent \
             DaemonSet (docker/agent.yaml) to back up volume data",
        )
    } else {
        match prepare_repository(ctx).await {
            Ok(()) => {
                let take = volumes::Take {
                    work: ctx.volumes.as_ref(),
                    client: &ctx.work.client,
                    backup: name,
                    location: &ctx.location,
                    helper_image: crate::volumes::helper::DEFAULT_IMAGE,
                    snapshot_timeout: volumes::SNAPSHOT_READY_TIMEOUT,
                };
                let (entries, hooks_ran) =
                    volumes::back_up(take, planned, hooks_left.take().unwrap_or_default()).await;
                ran.extend(hooks_ran);
                entries
            }
            Err(unusable) => end_pending(planned, "Failed", &unusable.to_string()),
        }
    };
    // Volumes not read here: each hooked pod's hooks run back to back.
    for h in hooks_left.unwrap_or_default() {
        ran.extend(hooks::around(&ctx.work.client, &h, async {}).await.1);
    }
    let mut failed_hook = None;
    for r in &ran {
        match (r.succeeded(), r.on_error) {
            (true, _) => log.info(r.describe()),
            (false, hooks::OnError::Continue) => {
                log.warn(format!("{} (on-error: Continue)", r.describe()))
            }
            (false, hooks::OnError::Fail) => {
                log.error(r.describe());
                if failed_hook.is_none() {
                    failed_hook = Some(r.describe());
                }
            }
        }
    }
    for e in &entries {
        let volume = format!("volume {}/{}", e.namespace, e.pvc);
        for warning in &e.warnings {
            log.warn(format!("{volume}: {warning}"));
        }
        match e.phase.as_str() {
            "Completed" => log.info(format!(
                "{volume}: {} files, {} bytes, {} bytes uploaded, snapshot {}",
                e.files,
                e.bytes,
                e.bytes_uploaded,
                e.snapshot.as_deref().unwrap_or("?")
            )),
            "Failed" => log.warn(format!(
                "{volume} failed: {}",
                e.reason.as_deref().unwrap_or("no reason given")
            )),
            _ if e
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with(volumes::BLOCK_REFUSED)) =>
            {
                log.warn(format!(
                    "{volume} not backed up: {}",
                    e.reason.as_deref().unwrap_or_default()
                ))
            }
            _ => log.info(format!(
                "{volume} skipped: {}",
                e.reason.as_deref().unwrap_or_default()
            )),
        }
    }
    (
        entries,
        ran.iter().map(hooks::Ran::record).collect(),
        failed_hook,
    )
}

/// The location's repository key and the repository, made on first use
/// (or finished, when a killed process left a key and no repository); an
/// existing repository must open with the key this install has (a bucket
/// from another install needs its recovery key first). Damage found here
/// is reported (`volumes::damaged`), never built over.
async fn prepare_repository(ctx: &BackupContext) -> Result<(), RepositoryUnusable> {
    let known = ctx.catalog.repository_key(&ctx.location).await?;
    if known.is_none() {
        crate::volumes::provision(&ctx.catalog, &ctx.work.store, &ctx.location).await?;
    }
    let key = match ctx.catalog.repository_key(&ctx.location).await? {
        Some(key) => key,
        None => return Err(crate::volumes::KeyError::Foreign(ctx.location.clone()).into()),
    };
    let open = || {
        let repo = VolumeRepo::new(
            StoreBackend::new(ctx.work.store.clone(), tokio::runtime::Handle::current()),
            &key,
        );
        async move {
            tokio::task::spawn_blocking(move || repo.open().map(|_| ()))
                .await
                .map_err(|e| RepoError::Repository(e.to_string()))?
        }
    };
    let mut opened = open().await;
    if matches!(opened, Err(RepoError::NotInitialized)) {
        crate::volumes::provision(&ctx.catalog, &ctx.work.store, &ctx.location).await?;
        opened = open().await;
    }
    crate::volumes::note_open(&ctx.location, &opened);
    Ok(opened?)
}

/// Why the volume repository cannot take this backup's volume data.
#[derive(Debug, thiserror::Error)]
enum RepositoryUnusable {
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Key(#[from] crate::volumes::KeyError),
    #[error(transparent)]
    Repository(#[from] RepoError),
}
