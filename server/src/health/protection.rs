//! A namespace's backup protection: its newest successful backup, against
//! the interval the schedules covering it promise (a day when none does).

use chrono::{DateTime, Utc};

use super::model::Protection;
use crate::backup::{BackupPhase, BackupSpec};
use crate::catalog::{BackupRecord, Catalog, CatalogError};
use crate::selection::BackupSpecExt;

/// Newest successful backup covering each namespace asked about.
pub async fn of_namespaces(
    catalog: &Catalog,
    backups: &[BackupRecord],
    namespaces: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<(Protection, Option<String>)>, CatalogError> {
    // The promise of each running schedule: the time between two of its runs.
    let promises: Vec<(BackupSpec, chrono::Duration)> = catalog
        .schedules()
        .await?
        .iter()
        .filter_map(|s| {
            let runs = crate::schedule::next_runs(s, now);
            let interval = *runs.get(1)? - *runs.first()?;
            Some((serde_json::from_str(&s.template).ok()?, interval))
        })
        .collect();
    Ok(namespaces
        .iter()
        .map(|ns| {
            let last = backups
                .iter()
                .filter(|b| {
                    BackupPhase::parse(&b.phase).is_some_and(BackupPhase::is_restorable)
                        && b.missing_from_storage == 0
                })
                .filter(|b| {
                    serde_json::from_str::<BackupSpec>(&b.spec)
                        .is_ok_and(|s| s.includes_namespace(ns))
                })
                .filter_map(|b| {
                    let t = DateTime::parse_from_rfc3339(b.completed_at.as_deref()?)
                        .ok()?
                        .with_timezone(&Utc);
                    Some((t, b.name.clone()))
                })
                .max();
            let promised = promises
                .iter()
                .filter(|(spec, _)| spec.includes_namespace(ns))
                .map(|(_, interval)| *interval)
                .min();
            (
                super::model::protection(last.as_ref().map(|(t, _)| *t), promised, now),
                last.map(|(_, n)| n),
            )
        })
        .collect())
}
