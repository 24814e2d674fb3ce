//! Volume data: what PVCs hold, backed up and restored by node agents into
//! a deduplicated, encrypted repository per storage location.
//!
//! - `repo.rs`: the repository (restic's format through `rustic_core`) over
//!   an [`ObjectStore`](crate::storage::ObjectStore).
//! - `remote.rs`: the `ObjectStore` an agent reaches the repository
//!   through — the server's `/api/v1/agent/repository/…`, so agents hold
//!   no storage credentials.
//! - `dispatch.rs`: the server's side of the agents' work: a task per volume
//!   in the catalog, claimed by the agent of the pod's node, failed when
//!   no agent runs there or it stops reporting.
//! - `agent.rs`: `lifeboat agent`, the DaemonSet's loop.

pub mod agent;
pub mod dispatch;
pub mod remote;
pub mod repo;

use serde::{Deserialize, Serialize};

/// The annotation that opts a pod's volumes out: `lifeboat.io/skip-volumes: data,cache`.
pub const SKIP_ANNOTATION: &str = "lifeboat.io/skip-volumes";

/// Whether a task backs a volume up or restores one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Backup,
    Restore,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Backup => "backup",
            TaskKind::Restore => "restore",
        }
    }
}

/// How a volume's data was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// From the running pod's mount, through the kubelet's pods directory.
    Fs,
    /// From a CSI VolumeSnapshot, through a temporary claim and pod.
    Csi,
}

/// One volume's work for an agent: where the volume is mounted on its node
/// (the pod's uid and the PV's name give the kubelet's path), and for a
/// restore the snapshot to write into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    pub namespace: String,
    pub pvc: String,
    pub pod: String,
    pub pod_uid: String,
    pub pv: String,
    /// The backup the snapshot belongs to (tagged `backup=<name>`).
    pub backup: String,
    /// The snapshot to restore (restores only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

impl TaskSpec {
    /// The path the snapshot stores the volume under: `/<namespace>/<pvc>`.
    /// The previous snapshot of the same path is the next one's parent.
    pub fn snapshot_path(&self) -> String {
        format!("/{}/{}", self.namespace, self.pvc)
    }
}

/// What an agent reports when a task is done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    pub files: u64,
    pub bytes: u64,
    /// Bytes written to storage (packed, compressed, encrypted); backups only.
    #[serde(default)]
    pub bytes_uploaded: u64,
    /// Files that could not be read or written, each named.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One volume in a backup's manifest (format version 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// Byte progress of one volume, as the API shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeProgress {
    pub namespace: String,
    pub pvc: String,
    pub phase: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
}
