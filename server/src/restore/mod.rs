//! Restores: read and verify a backup, plan every item against the live
//! cluster, then apply in dependency order.

pub mod engine;
pub mod hooks;
pub mod items;
pub mod preflight;
pub mod runner;
pub mod spec;
pub mod volumes;

pub use engine::{ItemResult, PlanItem, RestorePlan};
pub use runner::RestoreContext;
pub use spec::{ExistingResourcePolicy, RestoreSpec, RestoreSpecExt};

use crate::backup::SpecError;
use crate::catalog::{Catalog, RestoreRecord};
use crate::storage::Locations;

/// Why a restore could not be started (nothing was applied).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Invalid(#[from] SpecError),
    #[error("no cluster is connected: {0}")]
    NoCluster(String),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// Where a restore is in its life: the catalog's rows hold it.
pub use crate::catalog::RestorePhase;

/// Marks restores whose runner stopped (the server stopped or crashed while
/// they ran) as Failed, saying how far they got, so that their backup can be
/// deleted again and they can be run again (`update` or `skip` finishes the
/// job). Restores another live replica runs are left alone (see
/// [`crate::backup::Interrupted`]).
pub async fn fail_interrupted(
    catalog: &Catalog,
    which: crate::backup::Interrupted,
) -> Result<Vec<String>, crate::catalog::CatalogError> {
    let mut out = Vec::new();
    for phase in [RestorePhase::New, RestorePhase::InProgress] {
        for r in catalog.restores_in(phase).await? {
            if !which.takes(r.owner.as_deref(), r.heartbeat_at.as_deref(), &r.created_at) {
                continue;
            }
            let applied = match r.items_total {
                Some(total) => format!("{} of {total} items were applied", r.items_done),
                None => "nothing was applied".to_string(),
            };
            let reason = format!(
                "interrupted: the server stopped while this restore was running; {applied}. \
                 Run it again with the update or skip policy to finish"
            );
            catalog
                .update_restore(
                    &r.name,
                    RestorePhase::Failed,
                    Some(&reason),
                    None,
                    r.items_done,
                    r.items_total,
                    r.warnings,
                    r.errors + 1,
                )
                .await?;
            catalog
                .record_activity(
                    "system",
                    "restore.interrupted",
                    &format!("restore/{}", r.name),
                    &format!("restore {} marked Failed: {reason}", r.name),
                    None,
                )
                .await?;
            out.push(r.name);
        }
    }
    Ok(out)
}

/// A name for a restore the user did not name: `<backup>-<UTC timestamp>`,
/// with `-dryrun` before the timestamp for a plan, so a plan never takes
/// the name of the real run that follows it, and `-2`, `-3`… for the second
/// and later in the same second (`attempt` counts from 1). The backup's part
/// is shortened so the whole stays a 63-character DNS label.
pub fn generated_name(
    backup: &str,
    dry_run: bool,
    now: chrono::DateTime<chrono::Utc>,
    attempt: u32,
) -> String {
    let mut tail = format!(
        "{}-{}",
        if dry_run { "-dryrun" } else { "" },
        now.format("%Y%m%d%H%M%S")
    );
    if attempt > 1 {
        tail.push_str(&format!("-{attempt}"));
    }
    let room = 63usize.saturating_sub(tail.len());
    let head = backup[..backup.len().min(room)].trim_end_matches('-');
    format!("{head}{tail}")
}

/// For a point-in-time restore (`fromSchedule` and `at`): names its base,
/// the schedule's newest finished backup that began at or before the
/// instant (or checks the one named). Other restores are left as they are.
pub async fn resolve_point_in_time(
    catalog: &Catalog,
    spec: &mut RestoreSpec,
) -> Result<(), StartError> {
    let invalid = |field: &str, message: String| {
        StartError::Invalid(SpecError {
            field: field.into(),
            message,
        })
    };
    spec.validate()?;
    let (Some(schedule), Some(at)) = (spec.from_schedule.clone(), spec.instant()) else {
        return Ok(());
    };
    if at > chrono::Utc::now() + chrono::Duration::seconds(5) {
        return Err(invalid(
            "at",
            format!("{at} is in the future; restore to an instant that has passed"),
        ));
    }
    let started = |b: &crate::catalog::BackupRecord| {
        b.started_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let finished: Vec<_> = catalog
        .backups(&crate::catalog::BackupFilter {
            schedule: Some(schedule.clone()),
            ..Default::default()
        })
        .await?
        .into_iter()
        .filter(|b| crate::backup::BackupPhase::parse(&b.phase).is_some_and(|p| p.is_restorable()))
        .filter(|b| started(b).is_some_and(|s| s <= at))
        .collect();
    if !spec.backup_name.is_empty() {
        return if finished.iter().any(|b| b.name == spec.backup_name) {
            Ok(())
        } else {
            Err(invalid(
                "backupName",
                format!(
                    "backup `{}` is not a finished backup of schedule {schedule} begun before {at}; leave it out to use the newest one",
                    spec.backup_name
                ),
            ))
        };
    }
    let base = finished
        .into_iter()
        .max_by_key(|b| started(b))
        .ok_or_else(|| {
            invalid(
                "at",
                format!(
                    "schedule {schedule} has no finished backup begun at or before {at}: a point-in-time restore replays the journal over a full backup; choose a later instant"
                ),
            )
        })?;
    spec.backup_name = base.name;
    Ok(())
}

/// Validates, records (phase New) and starts a restore.
pub async fn start(
    catalog: &Catalog,
    locations: &Locations,
    client: Option<&kube::Client>,
    name: &str,
    spec: RestoreSpec,
    actor: &str,
) -> Result<Started, StartError> {
    let clients = Clients {
        acting: client,
        ..Default::default()
    };
    start_as(catalog, locations, clients, name, spec, actor).await
}

/// A started restore: its record, and the run to await.
pub type Started = (
    RestoreRecord,
    tokio::task::JoinHandle<Result<RestorePhase, crate::catalog::CatalogError>>,
);

/// Who a restore acts as and what else it is given.
#[derive(Default)]
pub struct Clients<'a> {
    /// The client it reads and writes with: the user's, impersonated.
    pub acting: Option<&'a kube::Client>,
    /// Lifeboat's own, for whether the cluster-scoped objects the user may
    /// not read exist (existence only), so the plan skips them rather than
    /// calling them unknown.
    pub own: Option<&'a kube::Client>,
    /// Told what the pre-flight check found (the API waits for it).
    pub preflight: Option<std::sync::Arc<tokio::sync::watch::Sender<runner::Preflight>>>,
}

/// [`start`] with [`Clients`].
pub async fn start_as(
    catalog: &Catalog,
    locations: &Locations,
    clients: Clients<'_>,
    name: &str,
    spec: RestoreSpec,
    actor: &str,
) -> Result<Started, StartError> {
    crate::backup::validate_name(name)?;
    let mut spec = spec;
    resolve_point_in_time(catalog, &mut spec).await?;
    let backup = catalog.backup(&spec.backup_name).await.map_err(|_| {
        StartError::Invalid(SpecError {
            field: "backupName".into(),
            message: format!(
                "backup `{}` does not exist (GET /api/v1/backups lists them)",
                spec.backup_name
            ),
        })
    })?;
    if !crate::backup::BackupPhase::parse(&backup.phase).is_some_and(|p| p.is_restorable()) {
        return Err(StartError::Invalid(SpecError {
            field: "backupName".into(),
            message: format!(
                "backup `{}` is {}; only finished backups can be restored",
                backup.name, backup.phase
            ),
        }));
    }
    let store = locations.require(&backup.storage_location)?;
    let client = clients
        .acting
        .cloned()
        .ok_or_else(|| StartError::NoCluster("configure a kubeconfig and restart".into()))?;
    let spec_json = serde_json::to_value(&spec).unwrap_or_default();
    let record = catalog
        .insert_restore(name, &spec.backup_name, &spec_json)
        .await?;
    catalog
        .record_activity(
            actor,
            "restore.created",
            &format!("restore/{name}"),
            &format!("restore {name} from backup {} started", spec.backup_name),
            Some(&spec_json),
        )
        .await?;
    let ctx = RestoreContext {
        location: backup.storage_location.clone(),
        volumes: std::sync::Arc::new(crate::volumes::dispatch::Dispatcher {
            catalog: catalog.clone(),
        }),
        catalog: catalog.clone(),
        store,
        client,
        own_client: clients.own.cloned(),
        preflight: clients.preflight,
    };
    let handle = tokio::spawn(runner::run(ctx, name.to_string(), spec));
    Ok((record, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_differ_for_plans_and_repeats_and_stay_labels() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T22:05:26Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .expect("time");
        assert_eq!(generated_name("ho-1", false, now, 1), "ho-1-20261129220526");
        assert_eq!(
            generated_name("ho-1", true, now, 1),
            "ho-1-dryrun-20261129220526"
        );
        assert_eq!(
            generated_name("ho-1", false, now, 2),
            "ho-1-20261129220526-2"
        );
        let long = format!("{}-x", "a".repeat(61));
        for (dry, attempt) in [(false, 1), (true, 1), (true, 42)] {
            let name = generated_name(&long, dry, now, attempt);
            assert!(name.len() <= 63, "{name}");
            crate::backup::validate_name(&name).expect("a DNS label");
        }
        // Shortening never leaves a doubled dash.
        let name = generated_name(&format!("{}-bcd", "a".repeat(40)), true, now, 1);
        assert!(!name.contains("--"), "{name}");
    }
}
