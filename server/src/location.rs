//! Storage locations as a user manages them: add (checked before anything is
//! saved, then the backups its bucket holds imported), check, remove (never
//! the default, a location a schedule writes to, or one in use; its objects
//! stay), and keeping every replica's open locations in step with the catalog.
//! The HTTP handlers only translate; `serve` reconciles and syncs here.

use crate::backup::{self, BackupError, BackupPhase};
use crate::catalog::{BackupFilter, Catalog, CatalogError};
use crate::storage::LocationSettings;
use crate::storage::{
    Availability, LocationError, LocationSpec, Locations, ObjectStore, locations::DEFAULT,
};

/// Why a location use case was refused.
#[derive(Debug, thiserror::Error)]
pub enum LocationUseError {
    #[error("invalid storage location: {0}")]
    Invalid(#[from] LocationError),
    #[error("storage location `{0}` already exists")]
    AlreadyExists(String),
    #[error("storage location `{name}` cannot be used: {reason} Nothing was saved.")]
    Unusable { name: String, reason: String },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Backup(#[from] BackupError),
}

/// Adds a location: validated, opened and checked before anything is saved;
/// then the backups already in it are imported (their names are returned).
pub async fn add(
    catalog: &Catalog,
    locations: &Locations,
    spec: &LocationSpec,
    actor: &str,
) -> Result<Vec<String>, LocationUseError> {
    spec.validate()?;
    if catalog.storage_location(&spec.name).await.is_ok() {
        return Err(LocationUseError::AlreadyExists(spec.name.clone()));
    }
    let unusable = |reason: String| LocationUseError::Unusable {
        name: spec.name.clone(),
        reason,
    };
    let store = spec.open().await.map_err(|e| unusable(e.to_string()))?;
    if let Availability::Unavailable { reason } = store.check().await {
        return Err(unusable(reason));
    }
    if spec.lock().is_some() {
        require_object_lock(store.as_ref())
            .await
            .map_err(|e| unusable(e.to_string()))?;
    }
    let credentials = spec.credentials();
    catalog
        .insert_storage_location(
            &spec.name,
            &spec.kind,
            &spec.settings(),
            credentials.as_ref().map(|(i, s)| (i.as_str(), s.as_str())),
        )
        .await?;
    catalog
        .set_availability(&spec.name, &Availability::Available)
        .await?;
    locations.insert(&spec.name, store.clone());
    catalog
        .record_activity(
            actor,
            "storage.added",
            &format!("storage-location/{}", spec.name),
            &format!(
                "storage location {} added ({})",
                spec.name,
                store.describe()
            ),
            None,
        )
        .await?;
    // The bucket is the source of truth: whatever backups it holds are ours now.
    let report = backup::sync(catalog, &store, &spec.name).await?;
    Ok(report.imported)
}

/// Refuses to promise immutability on a bucket that cannot keep it: object
/// lock must be enabled on the bucket itself (only possible when it is created).
pub async fn require_object_lock(store: &dyn ObjectStore) -> Result<(), ObjectLockError> {
    match store.object_lock_enabled().await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ObjectLockError::NotEnabled(store.describe())),
        Err(e) => Err(ObjectLockError::Unreadable(e)),
    }
}

/// Why a location cannot keep its backups immutable.
#[derive(Debug, thiserror::Error)]
pub enum ObjectLockError {
    #[error(
        "{0} does not have S3 Object Lock enabled, so Lifeboat cannot make its backups \
         immutable. Object lock can only be turned on when a bucket is created (for example \
         `aws s3api create-bucket --object-lock-enabled-for-bucket`); use such a bucket, or \
         add this one without `immutable`"
    )]
    NotEnabled(String),
    #[error("whether the bucket has S3 Object Lock enabled could not be read: {0}")]
    Unreadable(crate::storage::StorageError),
}

/// Checks a location now and records what it found.
pub async fn check(
    catalog: &Catalog,
    locations: &Locations,
    name: &str,
    actor: &str,
) -> Result<Availability, LocationUseError> {
    catalog.storage_location(name).await?;
    let store = locations.require(name).map_err(BackupError::from)?;
    let availability = store.check().await;
    catalog.set_availability(name, &availability).await?;
    catalog
        .record_activity(
            actor,
            "storage.checked",
            &format!("storage-location/{name}"),
            &format!("storage location {name} is {availability}"),
            None,
        )
        .await?;
    Ok(availability)
}

/// Removes a location from Lifeboat (its objects stay where they are);
/// returns how many backups the catalog no longer lists.
pub async fn remove(
    catalog: &Catalog,
    locations: &Locations,
    name: &str,
    actor: &str,
) -> Result<u64, LocationUseError> {
    let row = catalog.storage_location(name).await?;
    let refuse = LocationUseError::Refused;
    if row.is_default != 0 || name == DEFAULT {
        return Err(refuse(format!(
            "`{name}` is the default location, set in the configuration (storage.*); it cannot be removed here"
        )));
    }
    for schedule in catalog.schedules().await? {
        let template: serde_json::Value =
            serde_json::from_str(&schedule.template).unwrap_or_default();
        if template["storageLocation"] == name {
            return Err(refuse(format!(
                "schedule {} writes its backups to `{name}`; change or delete the schedule first",
                schedule.name
            )));
        }
    }
    let backups = catalog
        .backups(&BackupFilter {
            storage_location: Some(name.to_string()),
            ..Default::default()
        })
        .await?;
    for b in &backups {
        let busy = BackupPhase::parse(&b.phase)
            .is_some_and(|p| p.is_running() || p == BackupPhase::Deleting);
        if busy {
            return Err(refuse(format!(
                "backup {} in `{name}` is {}; remove the location once it has finished",
                b.name, b.phase
            )));
        }
        let readers = catalog.restores_reading(&b.name).await?;
        if !readers.is_empty() {
            return Err(refuse(format!(
                "restore(s) {} are reading backup {} in `{name}`; remove the location once they have finished",
                readers.join(", "),
                b.name
            )));
        }
    }
    let forgotten = catalog.delete_storage_location(name).await?;
    locations.remove(name);
    catalog
        .record_activity(
            actor,
            "storage.removed",
            &format!("storage-location/{name}"),
            &format!(
                "storage location {name} removed; {forgotten} backup(s) left in it are no longer listed (add the location again to list them)"
            ),
            None,
        )
        .await?;
    Ok(forgotten)
}

/// Makes the open locations match the catalog: opens those added through the
/// API (here or by another replica) and forgets those removed. One that cannot
/// be opened is left out (its backups answer 503 until it can) rather than
/// stopping the server.
pub async fn reconcile(
    catalog: &Catalog,
    locations: &Locations,
) -> Result<(), crate::catalog::CatalogError> {
    let rows = catalog.storage_locations().await?;
    for (name, _) in locations.all() {
        if !rows.iter().any(|r| r.name == name) {
            locations.remove(&name);
        }
    }
    for row in rows {
        if row.is_default != 0 || locations.get(&row.name).is_some() {
            continue;
        }
        let settings: LocationSettings = serde_json::from_str(&row.config).unwrap_or_default();
        let credentials = catalog.storage_credentials(&row.name).await?;
        let spec = LocationSpec::from_catalog(&row.name, &row.kind, &settings, credentials);
        match spec.open().await {
            Ok(store) => locations.insert(&row.name, store),
            Err(e) => {
                tracing::warn!(location = %row.name, error = %e, "a storage location could not be opened");
                let reason = format!("could not be opened: {e}");
                catalog
                    .set_availability(&row.name, &Availability::Unavailable { reason })
                    .await?;
            }
        }
    }
    Ok(())
}

/// Checks every location (recording its availability when `check` is set)
/// and imports the backups each holds that the catalog does not know.
pub async fn sync_all(catalog: &Catalog, locations: &Locations, check: bool) {
    for (name, store) in locations.all() {
        if check {
            let availability = store.check().await;
            if let Err(e) = catalog.set_availability(&name, &availability).await {
                tracing::warn!(location = %name, error = %e, "recording availability failed");
            }
            if availability != Availability::Available {
                tracing::warn!(location = %name, %availability, "storage location unavailable");
                continue;
            }
        }
        match crate::backup::sync(catalog, &store, &name).await {
            Ok(report) if !report.imported.is_empty() || !report.missing.is_empty() => {
                tracing::info!(location = %name, imported = ?report.imported, missing = ?report.missing, "catalog synced with storage");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(location = %name, error = %e, "syncing the catalog with storage failed; will retry")
            }
        }
    }
}
