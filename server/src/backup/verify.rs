//! `lifeboat backup verify`: every object of a backup read back from
//! storage and checked, and the outcome recorded on the backup.
//!
//! What is checked, in order (a step that cannot run says why):
//! 1. `manifest.json`: it names this backup and, from format 3 on, its
//!    signature is the location key's;
//! 2. `resources.tar.zst`: read whole, decrypted, every entry parsed; size
//!    and SHA-256 as the manifest says, and the objects counted per kind as
//!    the manifest counts them;
//! 3. `log.jsonl.zst`: size and SHA-256;
//! 4. the volume snapshots the manifest lists: each exists in the location's
//!    repository, and the data their trees reach is read back and checked
//!    against its hashes (all of it, or a sample of its packs when asked,
//!    and then said so).

use super::BackupError;
use crate::archive::{self, reader::Counts};
use crate::catalog::Catalog;
use crate::storage::Locations;
use crate::volumes::repo::{StoreBackend, VolumeRepo};

/// What a verification found.
pub use frontend::model::VerifyReport;

/// Verifies backup `name` and records the outcome (and an activity entry)
/// as `actor`. `sample` (`"10%"`, `"1/5"`) reads only part of the volume
/// data; `None` reads all of it.
pub async fn verify(
    catalog: &Catalog,
    locations: &Locations,
    name: &str,
    actor: &str,
    sample: Option<String>,
) -> Result<VerifyReport, BackupError> {
    let record = catalog.backup(name).await?;
    let store = locations.require(&record.storage_location)?;
    let key = crate::volumes::archive_key(catalog, &record.storage_location)
        .await
        .ok()
        .flatten();
    let mut report = VerifyReport {
        backup: name.to_string(),
        sample: sample.clone(),
        ..Default::default()
    };
    match archive::verify_manifest(store.as_ref(), name, key.as_ref(), record.format_version).await
    {
        Err(e) => report
            .problems
            .push(format!("{}: {e}", archive::MANIFEST_FILE)),
        Ok(manifest) => {
            report.checked.push(match &manifest.encryption {
                Some(e) => format!(
                    "{}: format {}, signature valid (key {})",
                    archive::MANIFEST_FILE,
                    manifest.format_version,
                    e.key_id
                ),
                None => format!(
                    "{}: format {} (written before signatures; checksums only)",
                    archive::MANIFEST_FILE,
                    manifest.format_version
                ),
            });
            check_files(&store, name, &manifest, key.as_ref(), &mut report).await;
            check_volumes(
                &store,
                &record.storage_location,
                catalog,
                &manifest,
                sample.as_deref(),
                &mut report,
            )
            .await;
        }
    }
    report.ok = report.problems.is_empty();
    report.verified_at = crate::catalog::now();
    let outcome = if report.ok {
        "ok".to_string()
    } else {
        report.problems.join("\n")
    };
    catalog
        .set_backup_verified(name, &report.verified_at, &outcome)
        .await?;
    let summary = if report.ok {
        format!("backup {name} verified: {}", report.checked.join("; "))
    } else {
        format!(
            "backup {name} failed verification: {}",
            report.problems.join("; ")
        )
    };
    catalog
        .record_activity(
            actor,
            if report.ok {
                "backup.verified"
            } else {
                "backup.verify_failed"
            },
            &format!("backup/{name}"),
            &summary,
            None,
        )
        .await?;
    Ok(report)
}

async fn check_files(
    store: &crate::storage::DynStore,
    name: &str,
    manifest: &archive::Manifest,
    key: Option<&archive::ArchiveKey>,
    report: &mut VerifyReport,
) {
    match archive::read_resources(store.as_ref(), name, manifest, key, Counts::default()).await {
        Err(e) => report
            .problems
            .push(format!("{}: {e}", archive::RESOURCES_FILE)),
        Ok(counts) => {
            let total = counts.total();
            if counts.per_kind != manifest.resources || total != manifest.items {
                report.problems.push(format!(
                    "{}: holds {total} objects, the manifest counts {} (or counts them per kind differently)",
                    archive::RESOURCES_FILE,
                    manifest.items
                ));
            } else {
                let size = manifest
                    .files
                    .get(archive::RESOURCES_FILE)
                    .map_or(0, |f| f.size);
                report.checked.push(format!(
                    "{}: {size} bytes, SHA-256 as the manifest says, {}{total} objects read, as counted",
                    archive::RESOURCES_FILE,
                    if manifest.encryption.is_some() {
                        "decrypted, "
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    if manifest.files.contains_key(archive::LOG_FILE) {
        match archive::read_log(store.as_ref(), name, Some(manifest)).await {
            Ok(_) => report.checked.push(format!(
                "{}: SHA-256 as the manifest says",
                archive::LOG_FILE
            )),
            Err(e) => report.problems.push(format!("{}: {e}", archive::LOG_FILE)),
        }
    }
}

async fn check_volumes(
    store: &crate::storage::DynStore,
    location: &str,
    catalog: &Catalog,
    manifest: &archive::Manifest,
    sample: Option<&str>,
    report: &mut VerifyReport,
) {
    let snapshots: Vec<String> = manifest
        .volumes
        .iter()
        .filter(|v| v.phase == "Completed")
        .filter_map(|v| v.snapshot.clone())
        .collect();
    if snapshots.is_empty() {
        return;
    }
    let password = match catalog.repository_key(location).await {
        Ok(Some(password)) => password,
        Ok(None) => {
            report.problems.push(format!(
                "volume data: {} snapshot(s) cannot be checked: this install has no recovery key \
                 for location `{location}` (lifeboat location set-key)",
                snapshots.len()
            ));
            return;
        }
        Err(e) => {
            report.problems.push(format!("volume data: {e}"));
            return;
        }
    };
    let repo = VolumeRepo::new(
        StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
        &password,
    );
    let count = snapshots.len();
    let sample_owned = sample.map(str::to_string);
    let checked = tokio::task::spawn_blocking(move || {
        repo.verify_snapshots(&snapshots, sample_owned.as_deref())
    })
    .await;
    match checked {
        Ok(Ok(())) => report.checked.push(match sample {
            Some(sample) => format!(
                "volume data: {count} snapshot(s) present; a sample ({sample}) of their packs read back, hashes match"
            ),
            None => format!(
                "volume data: {count} snapshot(s) present; all their data read back, hashes match"
            ),
        }),
        Ok(Err(e)) => report.problems.push(format!("volume data: {e}")),
        Err(e) => report
            .problems
            .push(format!("volume data: the check stopped: {e}")),
    }
}
