//! What the API shows: one response type per resource, every field
//! camelCase, built from the catalog's rows. Rows are the database's shape
//! and are never serialised directly; a column can change without changing
//! the API, and a field the API adds (counts, parsed specs) lives here.

use serde_json::Value;

pub use frontend::model::{
    ActivityView, BackupDetail, BackupProgress, BackupView, DrillView, Items, LocationKey,
    LocationView, RestoreView, ScheduleList, SchedulePreview, ScheduleView, ScheduledBackup,
};

use crate::catalog::{
    ActivityRecord, BackupRecord, DrillRecord, RestoreRecord, StorageLocationRecord,
};

/// JSON text stored in a column, as a value (`null` if it does not read).
fn json_column(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl From<&BackupRecord> for BackupView {
    fn from(b: &BackupRecord) -> Self {
        BackupView {
            id: b.id.clone(),
            name: b.name.clone(),
            storage_location: b.storage_location.clone(),
            schedule: b.schedule.clone(),
            phase: b.phase.clone(),
            phase_reason: b.phase_reason.clone(),
            spec: json_column(&b.spec),
            items_done: b.items_done,
            items_total: b.items_total,
            bytes_done: b.bytes_done,
            size_bytes: b.size_bytes,
            warnings: b.warnings,
            errors: b.errors,
            missing_from_storage: b.missing_from_storage != 0,
            started_at: b.started_at.clone(),
            completed_at: b.completed_at.clone(),
            expires_at: b.expires_at.clone(),
            created_at: b.created_at.clone(),
            owner: b.owner.clone(),
            heartbeat_at: b.heartbeat_at.clone(),
            verified_at: b.verified_at.clone(),
            verification: b.verification.clone(),
            locked_until: b.locked_until.clone(),
        }
    }
}

impl From<&DrillRecord> for DrillView {
    fn from(d: &DrillRecord) -> Self {
        Self {
            id: d.id.clone(),
            backup: d.backup.clone(),
            schedule: d.schedule.clone(),
            phase: d.phase.clone(),
            reason: d.reason.clone(),
            namespaces: serde_json::from_str(&d.namespaces).unwrap_or_default(),
            restore_name: d.restore_name.clone(),
            objects: d.objects,
            volumes: d.volumes,
            ready_ms: d.ready_ms,
            checks: serde_json::from_str(&d.checks).unwrap_or_default(),
            actor: d.actor.clone(),
            created_at: d.created_at.clone(),
            completed_at: d.completed_at.clone(),
            cleaned_at: d.cleaned_at.clone(),
        }
    }
}

impl From<&BackupRecord> for ScheduledBackup {
    fn from(b: &BackupRecord) -> Self {
        Self {
            name: b.name.clone(),
            phase: b.phase.clone(),
            created_at: b.created_at.clone(),
            completed_at: b.completed_at.clone(),
            expires_at: b.expires_at.clone(),
            size_bytes: b.size_bytes,
        }
    }
}

impl From<&RestoreRecord> for RestoreView {
    fn from(r: &RestoreRecord) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            backup_name: r.backup_name.clone(),
            phase: r.phase.clone(),
            phase_reason: r.phase_reason.clone(),
            spec: json_column(&r.spec),
            plan: r.plan.as_deref().and_then(|p| serde_json::from_str(p).ok()),
            items_done: r.items_done,
            items_total: r.items_total,
            warnings: r.warnings,
            errors: r.errors,
            started_at: r.started_at.clone(),
            completed_at: r.completed_at.clone(),
            created_at: r.created_at.clone(),
            owner: r.owner.clone(),
            heartbeat_at: r.heartbeat_at.clone(),
            volumes: Default::default(),
        }
    }
}

/// A location as the API shows it, with its key's public id from the
/// catalog's keys (location, key, shown). `backups` may hold other
/// locations' backups; only this one's count.
pub fn location_view(
    row: &StorageLocationRecord,
    open: bool,
    backups: &[BackupRecord],
    keys: &[(String, String, bool)],
) -> LocationView {
    let mine = || backups.iter().filter(|b| b.storage_location == row.name);
    // A damaged volume repository outranks the store's availability: the
    // store answers, but volume data there can be neither written nor read.
    let damage = crate::volumes::damaged().remove(&row.name);
    let (availability, availability_reason) = match damage {
        Some(reason) => ("damaged".to_string(), Some(reason)),
        None => (row.availability.clone(), row.availability_reason.clone()),
    };
    LocationView {
        name: row.name.clone(),
        kind: row.kind.clone(),
        config: serde_json::from_str(&row.config).unwrap_or_default(),
        is_default: row.is_default != 0,
        availability,
        availability_reason,
        checked_at: row.checked_at.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        open,
        backups: mine().count() as u64,
        used_bytes: mine().filter_map(|b| b.size_bytes).sum(),
        imported: None,
        recovery_key: None,
        notice: None,
        encryption: keys
            .iter()
            .find(|(location, _, _)| *location == row.name)
            .and_then(|(_, key, shown)| {
                let key = crate::archive::ArchiveKey::from_recovery_key(key).ok()?;
                Some(LocationKey {
                    cipher: crate::archive::crypto::CIPHER.into(),
                    key_id: key.key_id().to_string(),
                    recovery_key_shown: *shown,
                })
            }),
        immutability: serde_json::from_str::<crate::storage::LocationSettings>(&row.config)
            .ok()
            .and_then(|c| c.object_lock),
    }
}

impl From<&ActivityRecord> for ActivityView {
    fn from(a: &ActivityRecord) -> Self {
        Self {
            id: a.id.clone(),
            at: a.at.clone(),
            actor: a.actor.clone(),
            kind: a.kind.clone(),
            subject: a.subject.clone(),
            message: a.message.clone(),
            details: a.details.as_deref().map_or(Value::Null, json_column),
        }
    }
}

/// A schedule as the API shows it, from its catalog row.
pub fn schedule_view(
    record: &crate::catalog::ScheduleRecord,
    next_runs: Vec<String>,
) -> ScheduleView {
    use crate::schedule::ScheduleSpecExt;
    let spec = crate::schedule::ScheduleSpec::from_record(record);
    let (template, retention, error) = match spec {
        Ok(spec) => (Some(spec.template), Some(spec.retention), None),
        Err(e) => (None, None, Some(e.message)),
    };
    ScheduleView {
        name: record.name.clone(),
        schedule: record.cron.clone(),
        timezone: record.timezone.clone(),
        template,
        retention,
        error,
        paused: record.paused != 0,
        drill: record.drill != 0,
        continuous: record.continuous != 0,
        journal: None,
        last_run_at: record.last_run_at.clone(),
        next_runs,
        created_at: record.created_at.clone(),
        updated_at: record.updated_at.clone(),
        backups: None,
    }
}
