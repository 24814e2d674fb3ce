//! The cluster as the health API shows it: verdicts, roll-ups, events and
//! resource usage. The server computes these from the watched objects
//! (`lifeboat::health`); the overview, namespace, node, pod and workload
//! pages read them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Healthy, degraded (working but not as intended) or failing (not working).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Healthy,
    Degraded,
    Failing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Degraded => "degraded",
            State::Failing => "failing",
        }
    }
}

/// A state and the reasons behind it, in words a person can act on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub state: State,
    pub reasons: Vec<String>,
}

impl Health {
    pub fn healthy() -> Self {
        Self::default()
    }

    /// At least `state`, for `reason`.
    pub fn worsen(&mut self, state: State, reason: impl Into<String>) {
        self.state = self.state.max(state);
        self.reasons.push(reason.into());
    }
}

/// What a pod's containers say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PodSummary {
    pub name: String,
    pub namespace: String,
    pub phase: String,
    pub ready: u32,
    pub containers: u32,
    pub restarts: u64,
    pub age_seconds: i64,
    pub health: Health,
}

/// Replica counts of a Deployment, StatefulSet or DaemonSet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkloadSummary {
    pub kind: String,
    pub name: String,
    pub desired: i64,
    pub ready: i64,
    pub updated: i64,
    pub available: i64,
    pub health: Health,
}

/// A cause and what it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// `15 pods Pending: no Ready nodes`.
    pub summary: String,
    pub state: State,
    /// `node`, `pod`, `Deployment`, `StatefulSet`, `DaemonSet`, `claim`.
    pub kind: String,
    pub count: usize,
    /// `namespace/name` (or a node's name), the first few.
    pub subjects: Vec<String>,
    /// The group whose cause this follows from, when one does.
    pub explained_by: Option<String>,
}

/// The verdict: a state, one line, and the groups, root causes first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub state: State,
    pub headline: String,
    pub groups: Vec<Group>,
}

/// The object an event is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectRef {
    pub kind: Option<String>,
    pub name: Option<String>,
}

/// An Event as people read it: type, reason, message, the object, how often, when last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub object: ObjectRef,
    pub count: u64,
    pub last_seen: Option<String>,
    /// In lists across namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Whether the cluster serves the metrics API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum MetricsAvailability {
    /// Not read yet.
    #[default]
    Waiting,
    Served,
    /// Not served or not readable, and what to do.
    Unavailable {
        reason: String,
    },
}

/// One reading: `[unixSeconds, millicores, bytes]` (compact for sparklines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading(pub u32, pub u32, pub u64);

/// Millicores and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Amounts {
    pub cpu_millicores: Option<u64>,
    pub memory_bytes: Option<u64>,
}

/// One container's latest usage against its requests and limits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContainerUsageView {
    pub name: String,
    pub cpu_millicores: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub requests: Amounts,
    pub limits: Amounts,
    /// Memory used over its limit (0.93 = 93 %).
    pub memory_of_limit: Option<f64>,
    /// At 90 % of its memory limit or more.
    pub oom_risk: bool,
}

/// A series of usage readings, with whether the cluster serves the metrics
/// API at all (and what to do when it does not).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UsageBlock {
    pub availability: MetricsAvailability,
    pub cpu_millicores: Option<u32>,
    pub memory_bytes: Option<u64>,
    /// `[unixSeconds, millicores, bytes]` each, oldest first.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<u64>>))]
    pub history: Vec<Reading>,
    /// A pod's containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<ContainerUsageView>>,
}

/// A container near its memory limit, as the overview lists it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NearLimit {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub memory_bytes: u64,
    pub limit_bytes: u64,
    pub memory_of_limit: f64,
}

/// How one watch is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WatchState {
    Starting,
    Live,
    Reconnecting { reason: String },
    NotPermitted { reason: String },
}

/// A node's name and health.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeHealth {
    pub name: String,
    pub health: Health,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeCounts {
    pub total: usize,
    pub ready: usize,
    pub items: Vec<NodeHealth>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PodCounts {
    pub by_phase: BTreeMap<String, u64>,
    pub unhealthy: Vec<PodSummary>,
    pub near_memory_limit: Vec<NearLimit>,
}

/// Pods and workloads in a namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    pub pods: u64,
    pub workloads: u64,
}

/// A namespace's roll-up in the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamespaceRollUp {
    pub name: String,
    pub health: Health,
    pub counts: Counts,
}

/// The cluster summary: its verdict, nodes, pods by phase, what needs
/// attention, namespace roll-ups, recent warnings and the watches' states.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterSummary {
    /// The verdict's state, with its root causes as reasons.
    pub health: Health,
    pub verdict: Verdict,
    pub nodes: NodeCounts,
    pub pods: PodCounts,
    pub namespaces: Vec<NamespaceRollUp>,
    pub warnings: Vec<EventView>,
    pub watches: BTreeMap<String, WatchState>,
    /// The whole cluster's usage, for those who may see nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageBlock>,
}

/// Whether a namespace's backups keep their promise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Protection {
    /// A successful backup covering it within the expected interval.
    Protected,
    /// Covered, but the last success is older than promised.
    Stale,
    /// No successful backup covers it.
    #[default]
    Unprotected,
}

impl Protection {
    pub fn as_str(self) -> &'static str {
        match self {
            Protection::Protected => "protected",
            Protection::Stale => "stale",
            Protection::Unprotected => "unprotected",
        }
    }
}

/// Whether a namespace's restore was proven by a drill: its newest
/// finished drill, and how long ago.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Proven {
    /// `proven`, `failed` or `never`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Why the drill failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A namespace in the list: its health, counts and protection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRow {
    pub name: String,
    pub health: Health,
    pub counts: Counts,
    pub protection: Protection,
    /// The newest successful backup holding it.
    pub last_backup: Option<String>,
    pub restore_proven: Proven,
}

/// A Job in a namespace's page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub name: String,
    pub succeeded: i64,
    pub failed: i64,
    pub active: i64,
    pub completions: Option<i64>,
    pub start_time: Option<String>,
    pub completion_time: Option<String>,
    pub health: Health,
}

/// A CronJob in a namespace's page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CronJobView {
    pub name: String,
    pub schedule: Option<String>,
    pub suspend: bool,
    pub last_schedule_time: Option<String>,
    pub last_successful_time: Option<String>,
    pub health: Health,
}

/// The newest backup holding a claim's data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimBackup {
    pub backup: String,
    pub at: String,
}

/// A PersistentVolumeClaim in a namespace's page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClaimView {
    pub name: String,
    pub phase: Option<String>,
    pub volume: Option<String>,
    pub storage_class: Option<String>,
    pub health: Health,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<ClaimBackup>,
}

/// A port by number or by name (Kubernetes' IntOrString).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PortRef {
    Number(i64),
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => f.write_str(n),
        }
    }
}

/// One port of a Service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<PortRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i64>,
}

/// An address a load balancer gave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadBalancerAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// A Service in a namespace's page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub name: String,
    /// `ClusterIP`, `NodePort`, `LoadBalancer`, `ExternalName`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    pub ports: Vec<ServicePort>,
    pub selector: BTreeMap<String, String>,
    pub load_balancer: Vec<LoadBalancerAddress>,
}

/// One host and path of an Ingress, and the Service behind it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngressRule {
    pub host: Option<String>,
    pub path: Option<String>,
    pub service: Option<String>,
    pub port: Option<PortRef>,
}

/// Hosts served over TLS, and the Secret holding their certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// An Ingress in a namespace's page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngressView {
    pub name: String,
    pub class: Option<String>,
    pub rules: Vec<IngressRule>,
    pub tls: Vec<IngressTls>,
    pub address: Vec<LoadBalancerAddress>,
}

/// A backup holding a namespace, as its page lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NamespaceBackup {
    pub name: String,
    pub phase: String,
    pub completed_at: Option<String>,
    pub size_bytes: Option<i64>,
}

/// One namespace: its health, workloads, Jobs, pods, claims, Services,
/// Ingresses, recent events, usage, protection and the backups holding it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NamespaceDetail {
    pub name: String,
    pub health: Health,
    pub counts: Counts,
    pub workloads: Vec<WorkloadSummary>,
    pub jobs: Vec<JobView>,
    pub cron_jobs: Vec<CronJobView>,
    pub pods: Vec<PodSummary>,
    pub persistent_volume_claims: Vec<ClaimView>,
    pub services: Vec<ServiceView>,
    pub ingresses: Vec<IngressView>,
    pub events: Vec<EventView>,
    pub usage: UsageBlock,
    pub verdict: Verdict,
    pub protection: Protection,
    pub restore_proven: Proven,
    pub last_backup: Option<String>,
    /// The backups holding it that the reader may see, newest first.
    pub backups: Vec<NamespaceBackup>,
}

/// What a node can give its pods.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Allocatable {
    pub cpu_millicores: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// How many pods (a quantity, as the node reports it).
    pub pods: Option<String>,
}

/// A node's taint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: String,
}

/// A condition of a node or a pod, as Kubernetes reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// A node's address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeAddress {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

/// The software a node runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub kubelet_version: Option<String>,
    pub container_runtime_version: Option<String>,
    pub os_image: Option<String>,
    pub kernel_version: Option<String>,
    pub architecture: Option<String>,
}

/// A node in the list: health, cordon, versions and resources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeRow {
    pub name: String,
    pub health: Health,
    /// Its capacity as the node reports it (`cpu`, `memory`, `pods`, …).
    pub capacity: BTreeMap<String, String>,
    pub kubelet_version: Option<String>,
    pub unschedulable: bool,
    pub allocatable: Allocatable,
    /// What the running pods on it request.
    pub requested: Amounts,
    pub usage: UsageBlock,
}

/// A pod on a node, with its latest usage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodePod {
    pub summary: PodSummary,
    pub cpu_millicores: Option<u32>,
    pub memory_bytes: Option<u64>,
}

/// One node: conditions and pressure, capacity, allocatable, requested and
/// used, taints, versions, cordon, and its pods with their usage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodeDetail {
    pub name: String,
    pub health: Health,
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
    pub conditions: Vec<Condition>,
    /// The pressure conditions that are true (`MemoryPressure`, …).
    pub pressure: Vec<String>,
    pub capacity: BTreeMap<String, String>,
    pub node_info: NodeInfo,
    pub addresses: Vec<NodeAddress>,
    pub labels: BTreeMap<String, String>,
    /// As far as the reader may list them.
    pub pods: Vec<NodePod>,
    pub allocatable: Allocatable,
    pub requested: Amounts,
    pub usage: UsageBlock,
}

/// Where an environment variable's value comes from; a Secret's value is
/// never read, only named.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EnvRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A field of the pod (`fieldRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A resource of the container (`resourceFieldRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// One environment variable: a literal value from the pod spec, or a reference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvVarView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<EnvRef>,
}

/// A whole ConfigMap or Secret as environment variables (`envFrom`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EnvFromView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// A port a container declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub container_port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// A container's requests and limits, as quantities (`250m`, `128Mi`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resources {
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

/// What a container is doing, or last did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ContainerState {
    Waiting {
        reason: Option<String>,
        message: Option<String>,
    },
    Running {
        #[serde(rename = "startedAt")]
        started_at: Option<String>,
    },
    Terminated {
        reason: Option<String>,
        #[serde(rename = "exitCode")]
        exit_code: Option<i64>,
        message: Option<String>,
        #[serde(rename = "finishedAt")]
        finished_at: Option<String>,
    },
}

/// A container of a pod: its spec (image, ports, env as references) joined
/// with its status (ready, restarts, state and the last termination).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    pub name: String,
    pub image: Option<String>,
    pub ports: Vec<ContainerPort>,
    pub resources: Resources,
    pub env: Vec<EnvVarView>,
    pub env_from: Vec<EnvFromView>,
    pub ready: bool,
    pub restarts: u64,
    pub state: Option<ContainerState>,
    pub last_state: Option<ContainerState>,
}

/// What a pod's volume is backed by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VolumeSource {
    /// The claim's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<BTreeMap<String, String>>,
    /// Any other kind, by its field name (`hostPath`, `projected`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeView {
    pub name: String,
    pub source: VolumeSource,
}

/// A kind and a name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindName {
    pub kind: String,
    pub name: String,
}

/// The controller a pod belongs to (a Deployment through its ReplicaSet).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Owner {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<KindName>,
}

/// One pod: its containers with their states and environment, volumes,
/// conditions, owner, recent events and usage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PodDetail {
    pub name: String,
    pub namespace: String,
    pub summary: PodSummary,
    pub node: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    pub start_time: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub owner: Option<Owner>,
    pub conditions: Vec<Condition>,
    pub init_containers: Vec<ContainerView>,
    pub containers: Vec<ContainerView>,
    pub volumes: Vec<VolumeView>,
    pub events: Vec<EventView>,
    pub usage: UsageBlock,
}

/// A container's image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerImage {
    pub container: Option<String>,
    pub image: Option<String>,
}

/// One revision of a workload's rollout (a ReplicaSet or ControllerRevision).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub revision: i64,
    pub name: Option<String>,
    pub created_at: Option<String>,
    /// A Deployment's ReplicaSet's replicas.
    pub replicas: Option<i64>,
    pub images: Vec<ContainerImage>,
}

/// A workload's rollout history, newest first, or why it could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollout {
    pub revisions: Vec<Revision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One Deployment, StatefulSet or DaemonSet: counts and conditions, what is
/// wrong, its rollout history, its pods and events, and the backups that hold it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkloadDetail {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub summary: WorkloadSummary,
    pub conditions: Vec<Condition>,
    pub images: Vec<ContainerImage>,
    /// `spec.selector.matchLabels`.
    pub selector: BTreeMap<String, String>,
    pub rollout: Rollout,
    pub pods: Vec<PodSummary>,
    pub events: Vec<EventView>,
    /// Completed (or PartiallyFailed) backups that hold it.
    pub backups: Vec<NamespaceBackup>,
    /// The verdict's groups it is part of.
    pub causes: Vec<Group>,
}
