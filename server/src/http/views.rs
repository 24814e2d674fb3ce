//! What the API shows: one response type per resource, every field
//! camelCase, built from the catalog's rows. Rows are the database's shape
//! and are never serialised directly; a column can change without changing
//! the API, and a field the API adds (counts, parsed specs) lives here.

use serde::Serialize;
use serde_json::Value;

use crate::catalog::{
    ActivityRecord, BackupRecord, DrillRecord, RestoreRecord, StorageLocationRecord,
};

/// JSON text stored in a column, as a value (`null` if it does not read).
fn json_column(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A backup.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupView {
    pub id: String,
    pub name: String,
    pub storage_location: String,
    pub schedule: Option<String>,
    pub phase: String,
    pub phase_reason: Option<String>,
    pub spec: Value,
    pub items_done: i64,
    pub items_total: Option<i64>,
    pub bytes_done: i64,
    pub size_bytes: Option<i64>,
    pub warnings: i64,
    pub errors: i64,
    /// Its manifest is gone from storage: it cannot be restored.
    pub missing_from_storage: bool,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub owner: Option<String>,
    pub heartbeat_at: Option<String>,
    /// When it was last verified (`lifeboat backup verify`), and the outcome:
    /// `ok`, or the problems found, one per line.
    pub verified_at: Option<String>,
    pub verification: Option<String>,
    /// Until when S3 Object Lock holds its objects (immutable locations).
    pub locked_until: Option<String>,
}

impl From<&BackupRecord> for BackupView {
    fn from(b: &BackupRecord) -> Self {
        Self {
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

/// A restore drill.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrillView {
    pub id: String,
    pub backup: String,
    pub schedule: Option<String>,
    /// `Running`, `Passed` or `Failed`.
    pub phase: String,
    pub reason: Option<String>,
    /// Each namespace of the backup and the scratch namespace it went to.
    pub namespaces: Value,
    pub restore_name: Option<String>,
    pub objects: i64,
    pub volumes: i64,
    /// From the restore's start until everything expected was ready.
    pub ready_ms: Option<i64>,
    /// Every check: `{object, expected, ok, detail}`.
    pub checks: Value,
    pub actor: String,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// When the scratch namespaces were gone.
    pub cleaned_at: Option<String>,
}

impl From<&DrillRecord> for DrillView {
    fn from(d: &DrillRecord) -> Self {
        Self {
            id: d.id.clone(),
            backup: d.backup.clone(),
            schedule: d.schedule.clone(),
            phase: d.phase.clone(),
            reason: d.reason.clone(),
            namespaces: json_column(&d.namespaces),
            restore_name: d.restore_name.clone(),
            objects: d.objects,
            volumes: d.volumes,
            ready_ms: d.ready_ms,
            checks: json_column(&d.checks),
            actor: d.actor.clone(),
            created_at: d.created_at.clone(),
            completed_at: d.completed_at.clone(),
            cleaned_at: d.cleaned_at.clone(),
        }
    }
}

/// A backup's progress while it runs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupProgress {
    pub items_done: i64,
    pub items_total: Option<i64>,
    pub bytes_done: i64,
    /// The volumes' bytes, from the agents' reports.
    pub volumes: crate::volumes::VolumeTotals,
}

/// One backup with its progress and, when storage has it, its manifest.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupDetail {
    #[serde(flatten)]
    pub backup: BackupView,
    pub progress: BackupProgress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<crate::archive::Manifest>,
}

/// A backup as a schedule's page lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledBackup {
    pub name: String,
    pub phase: String,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub expires_at: Option<String>,
    pub size_bytes: Option<i64>,
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

/// A restore; `plan` holds the summary and, on its own page, every item.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreView {
    pub id: String,
    pub name: String,
    pub backup_name: String,
    pub phase: String,
    pub phase_reason: Option<String>,
    pub spec: Value,
    pub plan: Value,
    pub items_done: i64,
    pub items_total: Option<i64>,
    pub warnings: i64,
    pub errors: i64,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub created_at: String,
    pub owner: Option<String>,
    pub heartbeat_at: Option<String>,
    /// The volumes' bytes written so far, from the agents' reports.
    pub volumes: crate::volumes::VolumeTotals,
}

impl RestoreView {
    /// Without the plan's items (lists show counts only).
    pub fn summary(mut self) -> Self {
        if let Some(plan) = self.plan.as_object_mut() {
            plan.remove("items");
        }
        self
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
            plan: r.plan.as_deref().map_or(Value::Null, json_column),
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

/// A storage location, with what it holds. Credentials are never part of it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationView {
    pub name: String,
    pub kind: String,
    /// Settings without secret values.
    pub config: Value,
    pub is_default: bool,
    pub availability: String,
    pub availability_reason: Option<String>,
    pub checked_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Open on this replica.
    pub open: bool,
    pub backups: usize,
    pub used_bytes: i64,
    /// Backups found in the bucket when the location was added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported: Option<Vec<String>>,
    /// The volume repository's recovery key: in the answer to adding the
    /// location only, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_key: Option<String>,
    /// What the user must do about the location's volume repository, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// The location's key (which encrypts its archives and volume data):
    /// `None` until its first backup (or the add) makes one.
    pub encryption: Option<LocationKey>,
    /// The S3 Object Lock mode backups here are locked with (`governance`
    /// or `compliance`); `None`: the location is not immutable.
    pub immutability: Option<String>,
}

/// A location's key as the API shows it: its public id, never the key.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationKey {
    pub cipher: String,
    /// The public age recipient (`age1…`).
    pub key_id: String,
    /// The recovery key was shown (or supplied): someone can have kept it.
    pub recovery_key_shown: bool,
}

impl LocationView {
    /// `backups` may hold other locations' backups; only this one's count.
    pub fn new(row: &StorageLocationRecord, open: bool, backups: &[BackupRecord]) -> Self {
        let mine = || backups.iter().filter(|b| b.storage_location == row.name);
        Self {
            name: row.name.clone(),
            kind: row.kind.clone(),
            config: json_column(&row.config),
            is_default: row.is_default != 0,
            availability: row.availability.clone(),
            availability_reason: row.availability_reason.clone(),
            checked_at: row.checked_at.clone(),
            created_at: row.created_at.clone(),
            updated_at: row.updated_at.clone(),
            open,
            backups: mine().count(),
            used_bytes: mine().filter_map(|b| b.size_bytes).sum(),
            imported: None,
            recovery_key: None,
            notice: None,
            encryption: None,
            immutability: json_column(&row.config)["object_lock"]
                .as_str()
                .map(String::from),
        }
    }

    /// Fills `encryption` from the catalog's keys (location, key, shown).
    pub fn with_key(mut self, keys: &[(String, String, bool)]) -> Self {
        self.encryption = keys
            .iter()
            .find(|(location, _, _)| *location == self.name)
            .and_then(|(_, key, shown)| {
                let key = crate::archive::ArchiveKey::from_recovery_key(key).ok()?;
                Some(LocationKey {
                    cipher: crate::archive::crypto::CIPHER.into(),
                    key_id: key.key_id().to_string(),
                    recovery_key_shown: *shown,
                })
            });
        self
    }
}

/// One entry of the activity log.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityView {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub message: String,
    pub details: Value,
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

/// A schedule. A stored template that does not read is shown with `error`
/// and no template, so that it can be replaced.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub name: String,
    pub schedule: String,
    pub timezone: String,
    pub template: Option<crate::backup::BackupSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<crate::schedule::spec::Retention>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub paused: bool,
    /// Each backup it makes is drilled.
    pub drill: bool,
    pub last_run_at: Option<String>,
    pub next_runs: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Its backups, on the schedule's own page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups: Option<Vec<ScheduledBackup>>,
}

impl ScheduleView {
    pub fn new(record: &crate::catalog::ScheduleRecord, next_runs: Vec<String>) -> Self {
        let spec = crate::schedule::ScheduleSpec::from_record(record);
        let (template, retention, error) = match spec {
            Ok(spec) => (Some(spec.template), Some(spec.retention), None),
            Err(e) => (None, None, Some(e.message)),
        };
        Self {
            name: record.name.clone(),
            schedule: record.cron.clone(),
            timezone: record.timezone.clone(),
            template,
            retention,
            error,
            paused: record.paused != 0,
            drill: record.drill != 0,
            last_run_at: record.last_run_at.clone(),
            next_runs,
            created_at: record.created_at.clone(),
            updated_at: record.updated_at.clone(),
            backups: None,
        }
    }
}
