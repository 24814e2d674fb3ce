//! What a backup selects, schedules, and who runs them. The server's rules
//! for these (validation, glob matching, cron arithmetic) live beside its
//! engines (`lifeboat::selection::backup_spec`, `lifeboat::schedule::spec`);
//! the shapes live here so that the pages, the CLI and the OpenAPI document
//! read the very types the server writes.

use serde::{Deserialize, Serialize};

/// Which cluster-scoped resources a backup takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ClusterResources {
    /// Those the selected namespaces need: the Namespace objects, their
    /// PersistentVolumes, the StorageClasses those use, the CRDs of included
    /// custom resources, ClusterRoles bound in them. Everything when no
    /// namespace filter is given.
    #[default]
    Auto,
    All,
    None,
}

/// What a backup selects, as Velero users write it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BackupSpec {
    /// Namespace globs; empty means all.
    pub included_namespaces: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    /// `deployments.apps`, `secrets`, `widgets.example.com`, `*`; empty means all.
    pub included_resources: Vec<String>,
    pub excluded_resources: Vec<String>,
    /// A Kubernetes label selector (`app=web,tier in (a,b)`).
    pub label_selector: Option<String>,
    pub include_cluster_resources: ClusterResources,
    /// Storage location name; default `default`.
    pub storage_location: Option<String>,
    /// How long to keep it: `72h`, `30d`, `90m`; default: forever.
    pub ttl: Option<String>,
    /// Whether to back up what the selected PVCs hold (through the node
    /// agents); default yes. `false` takes resource state only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_data: Option<bool>,
    /// Backup hooks, in Velero's shape, for the pods the rules select
    /// (`docs/HOOKS.md`). Pods' own hook annotations win over these.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hooks: Option<BackupHooks>,
}

/// A backup's hooks (Velero's `spec.hooks`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BackupHooks {
    pub resources: Vec<BackupHookResource>,
}

/// Commands for the running pods a rule selects, around their volume reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BackupHookResource {
    /// Names the rule in errors and in the log.
    pub name: String,
    /// Namespaces; empty: all the backup takes.
    pub included_namespaces: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    /// Matched against the pod's labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<super::HookLabelSelector>,
    /// Run in order before the pod's volumes are read.
    pub pre: Vec<BackupHook>,
    /// Run in order after, also when a read or a pre hook failed.
    pub post: Vec<BackupHook>,
}

/// One backup hook: a command in a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BackupHook {
    pub exec: BackupExecHook,
}

/// A command run in a pod's container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BackupExecHook {
    /// The pod's first container when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub command: Vec<String>,
    /// `Fail` (the default: the backup fails) or `Continue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<String>,
    /// How long it may run (`30s` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl BackupSpec {
    pub fn storage_location(&self) -> &str {
        self.storage_location.as_deref().unwrap_or("default")
    }
}

/// `POST /api/v1/backups`: a name and a spec. Unknown fields are refused, so
/// a misplaced filter (`includedNamespaces` outside `spec`) is an error, not
/// a backup of everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBackup {
    /// A DNS label, unique among backups (default with `fromSchedule`:
    /// `<schedule>-<YYYYMMDDhhmmss>`).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub spec: BackupSpec,
    /// Back up now with this schedule's template, as one of its backups
    /// (Velero's `backup create --from-schedule`): its retention, drills
    /// and point-in-time restores count it. Not with `spec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_schedule: Option<String>,
}

/// Retention: how long each backup is kept and/or how many of the newest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Retention {
    /// `720h`, `30d`, …: each backup expires this long after it starts.
    pub ttl: Option<String>,
    /// Keep only the newest N successful backups of this schedule.
    pub keep_last: Option<i64>,
}

/// A schedule as the API and CLI take it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleSpec {
    pub name: String,
    /// Five fields (`0 1 * * *`) or a macro (`@daily`, `@hourly`, `@weekly`, …).
    pub schedule: String,
    /// An IANA time zone (`Europe/Berlin`); default UTC.
    #[serde(default = "utc")]
    pub timezone: String,
    /// What each run backs up: the same spec as a backup.
    #[serde(default)]
    pub template: BackupSpec,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub paused: bool,
    /// Drill each backup it makes: restore it into scratch namespaces,
    /// wait until its workloads are ready, record the outcome, clean up.
    #[serde(default)]
    pub drill: bool,
    /// Continuous protection: keep a journal of every change to what the
    /// template selects, so a restore can go back to any instant since the
    /// oldest backup kept (`restore create --from-schedule … --at …`).
    #[serde(default)]
    pub continuous: bool,
}

fn utc() -> String {
    "UTC".into()
}

/// What a change-journal writer reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JournalStatus {
    pub running: bool,
    /// Resource types watched, and how many of them are current (listed
    /// once, or resumed from a cursor).
    pub resource_types: usize,
    pub current_types: usize,
    /// The newest instant written to storage (RFC 3339).
    pub written_until: Option<String>,
    pub segments_written: u64,
    pub changes_written: u64,
    /// Sealed segments waiting for storage, and their bytes (in memory and spooled).
    pub pending_segments: usize,
    pub pending_bytes: u64,
    /// Gaps this process recorded: segments dropped while storage was down,
    /// and watches the API server would no longer resume (410 Gone).
    pub gaps: u64,
    /// The last storage error, while it lasts.
    pub last_error: Option<String>,
}

/// Which replica runs the schedules (`/api/v1/scheduler`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Runner {
    /// `single` (SQLite: this server), `lease` (PostgreSQL replicas
    /// competing for a Lease) or `none` (nobody here can run them).
    pub mode: String,
    /// This replica runs them now.
    pub leader: bool,
    /// This replica's identity in the Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// `namespace/name` of the Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// Who holds the Lease, as last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Why, in words (modes `single` and `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A backup as a schedule's page lists it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ScheduledBackup {
    pub name: String,
    pub phase: String,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub expires_at: Option<String>,
    pub size_bytes: Option<i64>,
}

/// A schedule. A stored template that does not read is shown with `error`
/// and no template, so that it can be replaced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub name: String,
    pub schedule: String,
    pub timezone: String,
    pub template: Option<BackupSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub paused: bool,
    /// Each backup it makes is drilled.
    pub drill: bool,
    /// A change journal is kept (continuous protection).
    pub continuous: bool,
    /// The journal writer's state, when it runs on the replica answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalStatus>,
    pub last_run_at: Option<String>,
    pub next_runs: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Its backups, on the schedule's own page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<Vec<ScheduledBackup>>,
}

/// The schedules, and which replica runs them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleList {
    pub items: Vec<ScheduleView>,
    pub runner: Runner,
}

/// A schedule that validates, and when it would run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SchedulePreview {
    /// Always true: an invalid schedule is a 422.
    pub valid: bool,
    pub next_runs: Vec<String>,
}
