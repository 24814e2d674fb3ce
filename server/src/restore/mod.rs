//! Restores: read and verify a backup, plan every item against the live
//! cluster, then apply in dependency order.

pub mod engine;
pub mod items;
pub mod spec;

pub use engine::{PlanItem, RestoreContext};
pub use spec::{ExistingResourcePolicy, RestoreSpec};

use crate::backup::{BackupError, SpecError};
use crate::catalog::{Catalog, RestoreRecord};
use crate::storage::Locations;

/// Validates, records (phase New) and starts a restore.
pub async fn start(
    catalog: &Catalog,
    locations: &Locations,
    client: Option<&kube::Client>,
    name: &str,
    spec: RestoreSpec,
    actor: &str,
) -> Result<
    (
        RestoreRecord,
        tokio::task::JoinHandle<Result<String, crate::catalog::CatalogError>>,
    ),
    BackupError,
> {
    crate::backup::validate_name(name)?;
    spec.validate()?;
    let backup = catalog.backup(&spec.backup_name).await.map_err(|_| {
        BackupError::Invalid(SpecError {
            field: "backupName".into(),
            message: format!(
                "backup `{}` does not exist (GET /api/v1/backups lists them)",
                spec.backup_name
            ),
        })
    })?;
    if !matches!(backup.phase.as_str(), "Completed" | "PartiallyFailed") {
        return Err(BackupError::Invalid(SpecError {
            field: "backupName".into(),
            message: format!(
                "backup `{}` is {}; only finished backups can be restored",
                backup.name, backup.phase
            ),
        }));
    }
    let store = locations.require(&backup.storage_location)?;
    let client = client
        .cloned()
        .ok_or_else(|| BackupError::NoCluster("configure a kubeconfig and restart".into()))?;
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
        catalog: catalog.clone(),
        store,
        client,
    };
    let handle = tokio::spawn(engine::run(ctx, name.to_string(), spec));
    Ok((record, handle))
}
