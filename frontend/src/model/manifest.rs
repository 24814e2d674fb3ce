//! `manifest.json`, a backup's table of contents as stored in the bucket
//! (docs/ARCHIVE.md), and as the API shows it on a backup's page. The
//! server's archive reader checks it before use; here it is only its shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::BackupSpec;

/// An S3 Object Lock retention mode (what an immutable location locks its
/// backups' objects with).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Nobody without `s3:BypassGovernanceRetention` can delete or shorten it
    /// (Lifeboat never bypasses it).
    Governance,
    /// Nobody at all, the bucket's root account included, until the date.
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "governance" => Some(LockMode::Governance),
            "compliance" => Some(LockMode::Compliance),
            _ => None,
        }
    }
}

/// How a manifest says its archive is encrypted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// `age-x25519` (the server's `archive::crypto::CIPHER`).
    pub cipher: String,
    /// The public age recipient of the key (`age1…`): which key, not the key.
    pub key_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// `gitVersion` of the API server.
    pub server_version: String,
    /// The uid of the `kube-system` namespace: stable for a cluster's life.
    pub id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub size: u64,
    pub sha256: String,
}

/// `manifest.json`: written last; its presence marks a complete backup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format_version: u32,
    pub lifeboat_version: String,
    pub name: String,
    pub cluster: ClusterInfo,
    pub spec: BackupSpec,
    pub started_at: String,
    pub completed_at: String,
    pub expires_at: Option<String>,
    /// Completed or PartiallyFailed (a Failed backup has no manifest).
    pub phase: String,
    pub phase_reason: Option<String>,
    /// Objects per group-resource (`deployments.apps`, `pods`).
    pub resources: BTreeMap<String, u64>,
    pub items: u64,
    /// Size and SHA-256 of every other file of the backup.
    pub files: BTreeMap<String, FileInfo>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    /// Schedule that made it, if any.
    pub schedule: Option<String>,
    /// The PVCs' data (format 2; absent from format 1, which held none).
    #[serde(default)]
    pub volumes: Vec<VolumeEntry>,
    /// How `resources.tar.zst` is encrypted (format 3; absent: it is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// On an immutable location: the S3 Object Lock every object of the
    /// backup is held under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<ObjectLock>,
    /// The backup hooks that ran (docs/HOOKS.md), in the order they ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRun>,
}

/// One backup hook as it ran: where, what, and how it ended (its output
/// bounded, Secret values redacted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HookRun {
    /// `pre` or `post`.
    pub when: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    /// `Fail` or `Continue`.
    pub on_error: String,
    /// `None` when it has none: see `error`.
    pub exit_code: Option<i32>,
    /// Why it did not end with an exit code (a timeout, a refused exec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: u64,
}

impl HookRun {
    /// `exit code N`, or why it has none.
    pub fn outcome(&self) -> String {
        match (self.exit_code, &self.error) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(why)) => why.clone(),
            (None, None) => "no outcome".into(),
        }
    }

    /// What it printed, stdout then stderr, joined by `between`.
    pub fn output(&self, between: &str) -> String {
        [self.stdout.trim_end(), self.stderr.trim_end()]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(between)
    }
}

/// How a volume's data was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// From the running pod's mount, through the kubelet's pods directory.
    Fs,
    /// From a CSI VolumeSnapshot, through a temporary claim and pod.
    Csi,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Fs => "fs",
            Method::Csi => "csi",
        }
    }
}

/// One volume in a backup's manifest (format version 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VolumeEntry {
    pub namespace: String,
    pub pvc: String,
    pub pod: String,
    pub pv: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    pub node: String,
    pub method: Method,
    /// `Completed` or `Failed`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    pub files: u64,
    pub bytes: u64,
    pub bytes_uploaded: u64,
    pub duration_ms: u64,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A backup's S3 Object Lock retention.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ObjectLock {
    pub mode: LockMode,
    /// RFC 3339: nothing of the backup can be deleted before then.
    pub until: String,
}
