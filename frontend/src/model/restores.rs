//! Restores as the API shows them: the plan, line by line, with each
//! line's outcome once applied, and what a point-in-time restore rests on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::VolumeTotals;

/// What to do with an object that already exists in the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExistingResourcePolicy {
    /// Leave it (reported as a conflict when it differs).
    #[default]
    Skip,
    /// Overwrite it with the backed-up version (server-side apply, forced).
    Update,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RestoreSpec {
    pub backup_name: String,
    pub included_namespaces: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    pub included_resources: Vec<String>,
    pub excluded_resources: Vec<String>,
    pub label_selector: Option<String>,
    /// Only these objects (with the other filters): `kind/name` for
    /// cluster-scoped ones and `kind/namespace/name` for namespaced ones;
    /// the kind as `Deployment`, `deployments` or `deployments.apps`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub included_names: Vec<String>,
    /// `old` → `new`.
    pub namespace_mapping: BTreeMap<String, String>,
    pub existing_resource_policy: ExistingResourcePolicy,
    /// Restore `status` too (off: the cluster's controllers rebuild it).
    pub restore_status: bool,
    /// Keep Services' nodePorts (off: the cluster assigns new ones).
    pub preserve_node_ports: bool,
    /// StorageClass `old` → `new`, for claims, volumes and StatefulSets'
    /// `volumeClaimTemplates` (a cluster with other classes).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub storage_class_mapping: BTreeMap<String, String>,
    /// Image prefix `old` → `new` (a registry, a repository), for every
    /// container, init container and ephemeral container; the longest
    /// matching prefix wins.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub image_mapping: BTreeMap<String, String>,
    /// Plan only.
    pub dry_run: bool,
    /// Group-resources restored first, in this order (`secrets`,
    /// `widgets.example.com`); everything else follows in the default order.
    pub resource_priorities: Vec<String>,
    /// `false`: namespaced objects only (and the namespaces themselves), as
    /// Velero's `includeClusterResources: false`; what drills use.
    pub include_cluster_resources: Option<bool>,
    /// Point in time: the schedule whose change journal is replayed over
    /// its newest backup before `at` (which becomes `backupName`).
    pub from_schedule: Option<String>,
    /// The instant (RFC 3339) restored to, with `fromSchedule`.
    pub at: Option<String>,
    /// Restore what the user may write even when the plan holds items they
    /// may not (those are left out, and the restore is PartiallyFailed).
    /// Without it such a restore is refused before anything is written.
    pub allow_partial: bool,
    /// Restore hooks, in Velero's shape: init containers added to the
    /// restored pods (and pod templates), and commands run in them once
    /// they run (`docs/HOOKS.md`). Pods' own annotations win over these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hooks: Option<RestoreHooks>,
    /// The namespaces this restore makes are scratch (a drill's): labelled
    /// as Lifeboat's temporary objects, so no backup takes them in. Set by
    /// drills, never by a request.
    #[serde(skip)]
    pub scratch_namespaces: bool,
}

/// A restore's hooks (Velero's `spec.hooks`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RestoreHooks {
    pub resources: Vec<RestoreHookResource>,
}

/// Hooks for the pods (and pod templates) a rule selects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RestoreHookResource {
    /// Names the rule in errors and results.
    pub name: String,
    /// The backup's namespaces (before mapping); empty: all.
    pub included_namespaces: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    /// Matched against the pod's (or the template's) labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<HookLabelSelector>,
    pub post_hooks: Vec<RestoreHook>,
}

/// A `metav1.LabelSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HookLabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<HookLabelRequirement>,
}

/// `key In (values)`, `NotIn`, `Exists`, `DoesNotExist`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HookLabelRequirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// One hook: init containers, or a command run in the pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RestoreHook {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<InitHook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecHook>,
}

/// Containers put first among the pod's init containers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct InitHook {
    /// Each a `core/v1` Container (`name` and `image` at least).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub init_containers: Vec<Value>,
}

/// A command run in a restored pod's container once it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ExecHook {
    /// The pod's first container when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub command: Vec<String>,
    /// `Fail` (the item fails) or `Continue` (the default, as Velero's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<String>,
    /// How long the command may run (`30s` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec_timeout: Option<String>,
    /// How long to wait for the container to run (`5m` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_timeout: Option<String>,
    /// Wait for the pod to be Ready, not only Running.
    pub wait_for_ready: bool,
}

impl RestoreSpec {
    /// Whether cluster-scoped objects other than namespaces are restored.
    pub fn cluster_resources(&self) -> bool {
        self.include_cluster_resources != Some(false)
    }

    /// The namespace an object from `ns` lands in.
    pub fn target_namespace<'a>(&'a self, ns: &'a str) -> &'a str {
        self.namespace_mapping.get(ns).map_or(ns, String::as_str)
    }
}

/// A request to restore (`POST /api/v1/restores`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRestore {
    /// A DNS label; generated from the backup's name and the time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub spec: RestoreSpec,
}

/// What the plan does with one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Skip,
    Conflict,
    Update,
    Excluded,
    /// Whether it exists is not known: the restoring user may not read it
    /// (or the read failed). Applied as a create; an existing one is left.
    Unknown,
    /// The restoring user may not write it (`preflight`): never tried.
    Forbidden,
}

/// What applying one item did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ItemResult {
    Created,
    Updated,
    /// Left as it is: identical, a conflict under the skip policy, or it
    /// appeared while restoring.
    Skipped,
    Failed,
}

impl ItemResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemResult::Created => "created",
            ItemResult::Updated => "updated",
            ItemResult::Skipped => "skipped",
            ItemResult::Failed => "failed",
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Skip => "skip",
            Action::Conflict => "conflict",
            Action::Update => "update",
            Action::Excluded => "excluded",
            Action::Unknown => "unknown",
            Action::Forbidden => "forbidden",
        }
    }
}

/// One line of the plan, and after the run its outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlanItem {
    pub group_resource: String,
    /// Namespace it lands in (after mapping).
    pub namespace: Option<String>,
    pub name: String,
    pub action: Action,
    /// Why excluded or skipped; the differing fields of a conflict.
    pub reason: Option<String>,
    pub diff: Vec<String>,
    /// What happened to it, once applied.
    pub result: Option<ItemResult>,
    pub message: Option<String>,
    /// What the plan saw that will go wrong unless something changes (a
    /// claim's StorageClass this cluster does not have, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Post-restore hooks run in the pods this item made, as they ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<super::HookRun>,
    /// The server's working state while it restores (the object to write
    /// and its tier in the dependency order): never part of an answer.
    #[serde(skip)]
    pub object: Value,
    #[serde(skip)]
    pub tier: usize,
}

/// Counts by action and by result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanSummary {
    pub actions: BTreeMap<Action, u64>,
    pub results: BTreeMap<ItemResult, u64>,
}

impl PlanSummary {
    pub fn of(plan: &[PlanItem]) -> Self {
        let mut summary = Self::default();
        for p in plan {
            *summary.actions.entry(p.action).or_default() += 1;
            if let Some(r) = p.result {
                *summary.results.entry(r).or_default() += 1;
            }
        }
        summary
    }

    /// How many lines the plan has with `action`.
    pub fn count(&self, action: Action) -> u64 {
        self.actions.get(&action).copied().unwrap_or(0)
    }
}

/// A window between a point-in-time restore's backup and its instant
/// whose changes are unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GapView {
    pub group_resource: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// What a point-in-time restore rests on (instants in RFC 3339).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PointInTime {
    /// The instant restored to.
    pub at: Option<String>,
    /// The full backup it rests on, and when that began.
    pub base: String,
    pub base_started_at: Option<String>,
    pub segments_read: u64,
    /// Changes applied over the base (up to the instant).
    pub changes_applied: u64,
    /// The journal's window: from its first entry to its last written one.
    pub journal_from: Option<String>,
    pub journal_to: Option<String>,
    /// Windows between the base and the instant whose changes are unknown.
    pub gaps: Vec<GapView>,
    /// Where volume data comes from: the base backup's snapshots.
    pub volumes_from: Option<String>,
    /// Why the newest changes may be missing (the writer's segments still
    /// waiting for storage).
    pub unwritten: Option<String>,
}

/// A restore's plan as the catalog keeps it and the API shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    #[serde(default)]
    pub summary: PlanSummary,
    /// Every line, in the order they are restored (left out of lists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<PlanItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time: Option<PointInTime>,
    /// The plan could not be recorded (it was too big to write, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A restore; `plan` holds the summary and, on its own page, every item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RestoreView {
    pub id: String,
    pub name: String,
    pub backup_name: String,
    /// `New`, `Planned`, `InProgress`, `Completed`, `PartiallyFailed`, `Failed`.
    pub phase: String,
    pub phase_reason: Option<String>,
    /// What it restores (`RestoreSpec`), as stored.
    pub spec: Value,
    /// The plan: counts, and on its own page every item (`null` before planning).
    pub plan: Option<RestorePlan>,
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
    pub volumes: VolumeTotals,
}

impl RestoreView {
    /// Without the plan's items (lists show counts only).
    pub fn summary(mut self) -> Self {
        if let Some(plan) = self.plan.as_mut() {
            plan.items = Vec::new();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_drops_the_plans_items_and_keeps_its_counts() {
        let item = PlanItem {
            group_resource: "configmaps".into(),
            namespace: Some("shop".into()),
            name: "a".into(),
            action: Action::Create,
            reason: None,
            diff: Vec::new(),
            result: Some(ItemResult::Created),
            hooks: Vec::new(),
            warnings: Vec::new(),
            message: None,
            object: Value::Null,
            tier: 0,
        };
        let summary = PlanSummary::of(std::slice::from_ref(&item));
        let view = RestoreView {
            plan: Some(RestorePlan {
                summary: summary.clone(),
                items: vec![item],
                ..Default::default()
            }),
            ..Default::default()
        }
        .summary();
        let plan = view.plan.expect("a plan");
        assert!(plan.items.is_empty());
        assert_eq!(plan.summary, summary);
        assert_eq!(plan.summary.count(Action::Create), 1);
        let text = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            text,
            serde_json::json!({"summary": {"actions": {"create": 1}, "results": {"created": 1}}})
        );
    }
}
