//! The API's answers as types, shared by the three sides that touch them:
//! the server builds them (`lifeboat::http::views`), the CLI and the pages
//! read them, and the OpenAPI document (`/api/v1/openapi.json`, feature
//! `openapi`, the server's only) describes them from these very
//! definitions. Fields are camelCase; a field added here appears in all
//! three at once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod cluster;
mod manifest;
mod restores;
mod schedules;
mod timeline;
pub use cluster::*;
pub use manifest::*;
pub use restores::*;
pub use schedules::*;
pub use timeline::*;

/// A list answer: `{"items": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// Every error answer: what went wrong and what to do, and the status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub error: String,
    pub status: u16,
}

/// A backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BackupView {
    pub id: String,
    pub name: String,
    pub storage_location: String,
    pub schedule: Option<String>,
    /// `New`, `InProgress`, `Completed`, `PartiallyFailed`, `Failed`, `Deleting`.
    pub phase: String,
    pub phase_reason: Option<String>,
    /// What it selects (`BackupSpec`), as stored.
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

/// A restore drill.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DrillView {
    pub id: String,
    pub backup: String,
    pub schedule: Option<String>,
    /// `Running`, `Passed` or `Failed`.
    pub phase: String,
    pub reason: Option<String>,
    /// Each namespace of the backup and the scratch namespace it went to.
    pub namespaces: BTreeMap<String, String>,
    pub restore_name: Option<String>,
    pub objects: i64,
    pub volumes: i64,
    /// From the restore's start until everything expected was ready.
    pub ready_ms: Option<i64>,
    pub checks: Vec<DrillCheck>,
    pub actor: String,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// When the scratch namespaces were gone.
    pub cleaned_at: Option<String>,
}

/// What a backup's archive holds: group-resource → namespace (`(cluster)`
/// for cluster-scoped objects) → names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupContents {
    pub resources: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// What one check of a drill found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DrillCheck {
    /// `deployments.apps shop-drill-1a2b3c/web`.
    pub object: String,
    /// Whether it had to become ready for the drill to pass.
    pub expected: bool,
    pub ok: bool,
    pub detail: String,
}

/// What a verification of a backup found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub backup: String,
    pub verified_at: String,
    /// No problem found.
    pub ok: bool,
    /// What was checked and held, one line each.
    pub checked: Vec<String>,
    /// What did not, one line each (naming the object).
    pub problems: Vec<String>,
    /// The volume data was sampled (`sample`), not read whole.
    pub sample: Option<String>,
}

/// Byte progress of a backup's or restore's volumes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VolumeTotals {
    pub volumes: Vec<VolumeProgress>,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// Byte progress of one volume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VolumeProgress {
    pub namespace: String,
    pub pvc: String,
    pub phase: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// A backup's progress while it runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BackupProgress {
    pub items_done: i64,
    pub items_total: Option<i64>,
    pub bytes_done: i64,
    /// The volumes' bytes, from the agents' reports.
    pub volumes: VolumeTotals,
}

/// One backup with its progress and, when storage has it, its manifest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupDetail {
    #[serde(flatten)]
    pub backup: BackupView,
    pub progress: BackupProgress,
    /// The manifest as stored (docs/ARCHIVE.md), when storage has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
}

/// A storage location, with what it holds. Credentials are never part of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LocationView {
    pub name: String,
    /// `local` or `s3`.
    pub kind: String,
    /// Settings without secret values.
    pub config: LocationSettings,
    pub is_default: bool,
    /// `available`, `unavailable`, `unknown` (never checked) or `damaged`
    /// (its volume repository cannot be used).
    pub availability: String,
    pub availability_reason: Option<String>,
    pub checked_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Open on this replica.
    pub open: bool,
    pub backups: u64,
    pub used_bytes: i64,
    /// Backups found in the bucket when the location was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<Vec<String>>,
    /// The volume repository's recovery key: in the answer to adding the
    /// location only, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_key: Option<String>,
    /// What the user must do about the location's volume repository, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// The location's key (which encrypts its archives and volume data):
    /// `null` until its first backup (or the add) makes one.
    pub encryption: Option<LocationKey>,
    /// The S3 Object Lock mode backups here are locked with (`governance`
    /// or `compliance`); `null`: the location is not immutable.
    pub immutability: Option<String>,
}

/// A location's settings as the catalog keeps them and the API shows
/// them: where it is, never its credentials. Keys are snake_case, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct LocationSettings {
    /// A local location's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// The checksum the S3 client sends (the default location's setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `governance` or `compliance` on an immutable location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<String>,
    /// `static` (kept in the catalog) or `aws-default-chain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// `none`: archives are stored in the clear (still signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
}

impl LocationSettings {
    /// Where it is, in a line: the directory, or `s3://bucket/prefix endpoint`.
    pub fn place(&self) -> String {
        match &self.path {
            Some(path) => path.clone(),
            None => format!(
                "s3://{}/{} {}",
                self.bucket.as_deref().unwrap_or_default(),
                self.prefix.as_deref().unwrap_or_default(),
                self.endpoint.as_deref().unwrap_or("(AWS)")
            ),
        }
    }

    /// Archives are stored in the clear (`encryption: none`).
    pub fn in_the_clear(&self) -> bool {
        self.encryption.as_deref() == Some("none")
    }
}

/// A location's key as the API shows it: its public id, never the key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LocationKey {
    pub cipher: String,
    /// The public age recipient (`age1…`).
    pub key_id: String,
    /// The recovery key was shown (or supplied): someone can have kept it.
    pub recovery_key_shown: bool,
}

/// One entry of the activity log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActivityView {
    pub id: String,
    pub at: String,
    pub actor: String,
    /// `backup.completed`, `restore.failed`, `drill.passed`, …
    pub kind: String,
    pub subject: String,
    pub message: String,
    pub details: Value,
}

/// A notification target. Its URL is a secret: only its scheme and host are shown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NotificationTargetView {
    pub name: String,
    /// `webhook` or `slack`.
    pub kind: String,
    /// `https://hooks.example.com/…`: the rest is never shown again.
    pub url: String,
    /// The events it gets; all of them when empty.
    pub events: Vec<String>,
    pub created_at: String,
}

/// One notification and how its delivery went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: String,
    pub target: String,
    /// `backup.failed`, `backup.recovered`, `restore.failed`, …
    pub event: String,
    pub subject: String,
    pub message: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: i64,
    /// While pending: when the next attempt is due.
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_read_back_what_the_server_writes() {
        let backup = BackupView {
            name: "nightly".into(),
            locked_until: Some("2026-12-01T00:00:00Z".into()),
            ..Default::default()
        };
        let text = serde_json::to_string(&Items {
            items: vec![backup.clone()],
        })
        .unwrap();
        assert!(text.contains("\"lockedUntil\""), "{text}");
        let back: Items<BackupView> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.items, vec![backup]);
    }
}
