//! A namespace's change timeline, read from the change journals of
//! schedules with continuous protection, and one object at an instant.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{GapView, JournalStatus};

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Added,
    Modified,
    Deleted,
    /// Seen in a (re-)list: its state then, whatever happened before.
    Listed,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Added => "added",
            Op::Modified => "modified",
            Op::Deleted => "deleted",
            Op::Listed => "listed",
        }
    }
}

/// One change to an object, and who made it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TimelineChange {
    pub at: String,
    pub op: Option<Op>,
    pub group_resource: String,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub resource_version: Option<String>,
    /// The field manager of the write (`kubectl-client-side-apply`, …).
    pub manager: Option<String>,
    /// `Apply` or `Update`.
    pub operation: Option<String>,
    /// The schedule whose journal recorded it.
    pub schedule: String,
}

/// A schedule whose journal the timeline read, and how that went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineSource {
    pub name: String,
    pub location: String,
    /// Why its journal could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why its newest changes may be missing (still waiting for storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwritten: Option<String>,
    /// Its writer, when it runs on the replica answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<JournalStatus>,
}

/// How many changes a minute saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MinuteCount {
    pub minute: String,
    pub count: u64,
}

/// A namespace's changes in a window: per minute, the newest 1,000 with
/// who made them, and the gaps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NamespaceTimeline {
    pub namespace: String,
    pub since: String,
    pub until: String,
    pub schedules: Vec<TimelineSource>,
    /// What to do when no schedule keeps a journal of it.
    pub hint: Option<String>,
    pub per_minute: Vec<MinuteCount>,
    /// Newest first.
    pub changes: Vec<TimelineChange>,
    /// All changes in the window (more than are listed).
    pub total: usize,
    pub gaps: Vec<GapView>,
}

/// One field that differs between two states of an object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Difference {
    /// `spec.replicas`, `data.mode`, `spec.template.spec.containers[0].image`.
    pub path: String,
    /// `null` where the field is absent.
    pub before: Value,
    pub after: Value,
}

/// An object as it was at an instant, and what differs from an earlier one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ObjectAt {
    pub schedule: String,
    pub at: String,
    pub exists: bool,
    /// The object as stored (any kind; Secret values redacted).
    pub object: Option<Value>,
    pub compare_to: Option<String>,
    /// The object at `compareTo` (`null` inside when it did not exist).
    pub before: Option<Option<Value>>,
    pub diff: Option<Vec<Difference>>,
    pub gaps: Vec<GapView>,
    /// The backup the replay rests on.
    pub base: String,
}
