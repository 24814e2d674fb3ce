//! Backups: the spec, the engine that does one (into `crate::archive`), the
//! runner that records it, and the catalog sync that makes storage the
//! source of truth.

pub mod engine;
pub mod hooks;
pub mod runner;
/// What a backup selects lives with the selection vocabulary, below the
/// archive (whose manifest records it) and the engines.
pub use crate::selection::backup_spec as spec;
pub mod verify;
pub mod volumes;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde_json::json;

use crate::archive::{self, ArchiveError};
use crate::catalog::{BackupRecord, Catalog, CatalogError};
use crate::storage::{DynStore, Locations, StorageError, list_all};
pub use engine::Work;
pub use runner::{BackupContext, Phase};
pub use spec::{BackupSpec, BackupSpecExt, ClusterResources, SpecError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("invalid backup: {0}")]
    Invalid(#[from] SpecError),
    #[error(
        "storage location `{0}` does not exist or is not open here (GET /api/v1/storage-locations lists them)"
    )]
    UnknownLocation(String),
    #[error("no cluster is connected: {0}")]
    NoCluster(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "backup {backup} is being read by restore(s) {}; delete it once they have finished",
        .restores.join(", ")
    )]
    InUse {
        backup: String,
        restores: Vec<String>,
    },
    #[error(
        "backup {backup} is locked by its bucket's S3 Object Lock until {until}: nothing, Lifeboat \
         included, can delete it before then; garbage collection deletes it after that date"
    )]
    Locked { backup: String, until: String },
}

/// Where a backup is in its life: the catalog's rows hold it.
pub use crate::catalog::BackupPhase;

/// Backup names are DNS-1123 labels, as they become object keys and labels.
pub use crate::selection::validate_name;

/// Validates, records (phase New) and starts a backup; returns its record.
pub async fn start(
    catalog: &Catalog,
    locations: &Locations,
    client: Option<&kube::Client>,
    name: &str,
    spec: BackupSpec,
    schedule: Option<String>,
    actor: &str,
) -> Result<(BackupRecord, tokio::task::JoinHandle<Phase>), BackupError> {
    validate_name(name)?;
    spec.validate()?;
    let location = spec.storage_location().to_string();
    let Some(store) = locations.get(&location) else {
        return Err(BackupError::UnknownLocation(location));
    };
    let client = client
        .cloned()
        .ok_or_else(|| BackupError::NoCluster("configure a kubeconfig and restart".into()))?;
    let spec_json = serde_json::to_value(&spec).unwrap_or_default();
    let mut record = BackupRecord::new(name, &location, &spec_json);
    record.schedule = schedule.clone();
    record.owner = Some(crate::replica_id().to_string());
    record.heartbeat_at = Some(crate::catalog::now());
    catalog.insert_backup(&record).await?;
    catalog
        .record_activity(
            actor,
            "backup.created",
            &format!("backup/{name}"),
            &format!("backup {name} started"),
            Some(&spec_json),
        )
        .await?;
    let ctx = BackupContext {
        location: location.clone(),
        volumes: std::sync::Arc::new(crate::volumes::dispatch::Dispatcher {
            catalog: catalog.clone(),
        }),
        catalog: catalog.clone(),
        work: Work {
            store,
            client,
            list_calls: Arc::new(AtomicU64::new(0)),
            archive_key: None,
            encrypt: true,
        },
    };
    let handle = tokio::spawn(runner::run(ctx, name.to_string(), spec, schedule));
    Ok((record, handle))
}

/// Deletes a backup: its storage objects first, then its catalog row.
pub async fn delete(
    catalog: &Catalog,
    locations: &Locations,
    name: &str,
    actor: &str,
) -> Result<(), BackupError> {
    delete_at(catalog, locations, name, actor, chrono::Utc::now()).await
}

/// [`delete`], judging an object lock at `now` (garbage collection's clock).
pub async fn delete_at(
    catalog: &Catalog,
    locations: &Locations,
    name: &str,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), BackupError> {
    let record = catalog.backup(name).await?;
    let store = &locations.require(&record.storage_location)?;
    if record.phase == BackupPhase::InProgress.as_str() || record.phase == BackupPhase::New.as_str()
    {
        return Err(BackupError::Invalid(SpecError {
            field: "name".into(),
            message: format!("backup {name} is still running; delete it once it has finished"),
        }));
    }
    if let Some(until) = locked_at(&record, now) {
        return Err(BackupError::Locked {
            backup: name.to_string(),
            until,
        });
    }
    let restores = catalog.restores_reading(name).await?;
    if !restores.is_empty() {
        return Err(BackupError::InUse {
            backup: name.to_string(),
            restores,
        });
    }
    catalog
        .set_backup_phase(name, BackupPhase::Deleting, None)
        .await?;
    engine::remove_objects(store, name).await;
    let left = list_all(store.as_ref(), &archive::backup_prefix(name)).await?;
    if !left.is_empty() {
        return Err(BackupError::Storage(StorageError::Server {
            operation: "delete",
            message: format!(
                "{} object(s) of backup {name} could not be deleted; try again",
                left.len()
            ),
        }));
    }
    // Its volume snapshots are forgotten (their data goes at the next
    // prune); a repository that cannot be opened keeps them, which only costs space.
    match crate::volumes::forget_backup(catalog, store, &record.storage_location, name).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(backup = %name, snapshots = n, "volume snapshots forgotten"),
        Err(e) => {
            tracing::warn!(backup = %name, error = %e, "the backup's volume snapshots could not be forgotten")
        }
    }
    let _ = catalog.delete_volume_tasks_of(name).await;
    catalog.delete_backup(name).await?;
    catalog
        .record_activity(
            actor,
            "backup.deleted",
            &format!("backup/{name}"),
            &format!("backup {name} deleted"),
            None,
        )
        .await?;
    Ok(())
}

/// Until when a backup is still locked at `now` (`None`: it is not).
pub fn locked_at(record: &BackupRecord, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let until = record.locked_until.as_deref()?;
    let date = chrono::DateTime::parse_from_rfc3339(until).ok()?;
    (date > now).then(|| until.to_string())
}

/// What a sync did.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    pub imported: Vec<String>,
    pub missing: Vec<String>,
    pub interrupted: Vec<String>,
}

/// Which New or InProgress backups `fail_interrupted` takes for dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupted {
    /// Every one: the catalog is this replica's alone (SQLite), at start.
    All,
    /// A shared catalog, at start: those this replica ran in an earlier life
    /// (same identity) and those whose runner stopped beating.
    MineOrStale,
    /// A shared catalog, periodically: those whose runner stopped beating.
    Stale,
}

impl Interrupted {
    /// Whether a run with this owner and last heartbeat (or, before its
    /// first, its creation) is taken for interrupted.
    pub fn takes(&self, owner: Option<&str>, heartbeat_at: Option<&str>, created_at: &str) -> bool {
        let stale_before = (chrono::Utc::now()
            - chrono::Duration::from_std(HEARTBEAT_STALE).unwrap_or_default())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let silent = heartbeat_at.unwrap_or(created_at) < stale_before.as_str();
        match self {
            Interrupted::All => true,
            Interrupted::MineOrStale => owner == Some(crate::replica_id()) || silent,
            Interrupted::Stale => silent,
        }
    }
}

/// How often a running backup's runner says it is alive.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// A backup whose runner has been silent this long is taken for interrupted.
pub const HEARTBEAT_STALE: std::time::Duration = std::time::Duration::from_secs(45);

/// Marks backups whose runner has stopped (the server stopped or crashed while
/// they ran) as Failed and removes their partial objects. Backups another
/// live replica is running are left alone (see [`Interrupted`]).
pub async fn fail_interrupted(
    catalog: &Catalog,
    locations: &Locations,
    which: Interrupted,
) -> Result<Vec<String>, BackupError> {
    let mut out = Vec::new();
    for phase in [BackupPhase::New, BackupPhase::InProgress] {
        let filter = crate::catalog::BackupFilter {
            phase: Some(phase.as_str().into()),
            ..Default::default()
        };
        for b in catalog.backups(&filter).await? {
            if !which.takes(b.owner.as_deref(), b.heartbeat_at.as_deref(), &b.created_at) {
                continue;
            }
            if let Some(store) = locations.get(&b.storage_location) {
                engine::remove_objects(&store, &b.name).await;
            }
            catalog
                .finish_backup(
                    &b.name,
                    BackupPhase::Failed,
                    Some("interrupted: the server stopped while this backup was running; its partial data was removed"),
                    b.items_done,
                    None,
                    b.warnings,
                    b.errors + 1,
                    None,
                )
                .await?;
            catalog
                .record_activity(
                    "system",
                    "backup.interrupted",
                    &format!("backup/{}", b.name),
                    "marked Failed (interrupted)",
                    None,
                )
                .await?;
            out.push(b.name);
        }
    }
    Ok(out)
}

/// Makes the catalog agree with storage: backups with a manifest in storage
/// but not in the catalog are imported; catalog backups whose manifest has
/// gone are marked missing (and unmarked if it comes back).
pub async fn sync(
    catalog: &Catalog,
    store: &DynStore,
    location: &str,
) -> Result<SyncReport, BackupError> {
    let mut report = SyncReport::default();
    let objects = list_all(store.as_ref(), "backups/").await?;
    let in_storage: std::collections::BTreeSet<String> = objects
        .iter()
        .filter_map(|o| {
            let rest = o.key.strip_prefix("backups/")?;
            let (name, file) = rest.split_once('/')?;
            (file == archive::MANIFEST_FILE).then(|| name.to_string())
        })
        .collect();
    let known = catalog
        .backups(&crate::catalog::BackupFilter {
            storage_location: Some(location.into()),
            ..Default::default()
        })
        .await?;
    for name in &in_storage {
        if let Some(existing) = known.iter().find(|b| &b.name == name) {
            if existing.missing_from_storage != 0 {
                catalog.set_backup_missing(name, false).await?;
            }
            continue;
        }
        let manifest = match archive::read_manifest(store.as_ref(), name).await {
            Ok(m) => m,
            Err(ArchiveError::Missing { source, .. } | ArchiveError::Storage(source)) => {
                return Err(source.into());
            }
            Err(e) => {
                tracing::warn!(backup = %name, error = %e, "a manifest in storage is not readable; skipped");
                continue;
            }
        };
        let spec_json = serde_json::to_value(&manifest.spec).unwrap_or_default();
        let mut record = BackupRecord::new(name, location, &spec_json);
        record.schedule = manifest.schedule.clone();
        record.phase = manifest.phase.clone();
        record.phase_reason = manifest.phase_reason.clone();
        record.items_done = manifest.items as i64;
        record.items_total = Some(manifest.items as i64);
        record.size_bytes = Some(manifest.files.values().map(|f| f.size as i64).sum());
        record.bytes_done = record.size_bytes.unwrap_or(0);
        record.warnings = manifest.warnings.len() as i64;
        record.errors = manifest.errors.len() as i64;
        record.started_at = Some(manifest.started_at.clone());
        record.completed_at = Some(manifest.completed_at.clone());
        record.expires_at = manifest.expires_at.clone();
        record.locked_until = manifest.lock.as_ref().map(|l| l.until.clone());
        record.format_version = Some(i64::from(manifest.format_version));
        record.created_at = manifest.started_at.clone();
        match catalog.insert_backup(&record).await {
            Ok(()) => {}
            Err(CatalogError::AlreadyExists { .. }) => {
                // Names are unique across locations: the one listed first stays.
                tracing::warn!(backup = %name, %location, "a backup of this name is listed from another location; this copy is not listed");
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        catalog
            .record_activity(
                "system",
                "backup.imported",
                &format!("backup/{name}"),
                &format!("backup {name} found in storage and added to the catalog"),
                Some(&json!({"location": location})),
            )
            .await?;
        report.imported.push(name.clone());
    }
    for b in known {
        let finished = b.phase == BackupPhase::Completed.as_str()
            || b.phase == BackupPhase::PartiallyFailed.as_str();
        if finished && !in_storage.contains(&b.name) && b.missing_from_storage == 0 {
            catalog.set_backup_missing(&b.name, true).await?;
            report.missing.push(b.name);
        }
    }
    Ok(report)
}
