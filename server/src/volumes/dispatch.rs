//! The server's side of the agents' work. A backup or restore hands each
//! volume to [`VolumeWork::run`]; the [`Dispatcher`] puts a task in the
//! catalog for the pod's node and waits for the agent there to claim it,
//! report progress and finish it. It never waits without bound:
//!
//! - no agent asked for work from that node in [`AGENT_STALE`]: the task
//!   fails at once, naming the node;
//! - nobody claims it in [`CLAIM_TIMEOUT`], or the agent that claimed it
//!   stops reporting for [`SILENCE_TIMEOUT`] (killed, node gone): it fails
//!   with that reason.
//!
//! Why a queue the agents poll rather than an object they watch: agents
//! then need no write access to the cluster and no CRD, they authenticate
//! like every other client (their ServiceAccount token, checked by the
//! server's sign-in), and the server alone decides which agent may see which
//! task and repository key.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{TaskKind, TaskResult, TaskSpec};
use crate::catalog::{Catalog, VolumeTaskRecord, now};

/// An agent that has not asked for work for this long is gone.
pub const AGENT_STALE: Duration = Duration::from_secs(60);
/// A task nobody claims for this long (while its repository is not locked
/// by a prune) fails.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(120);
/// A running task whose agent has not reported for this long fails.
pub const SILENCE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the dispatcher looks at its tasks.
const POLL: Duration = Duration::from_millis(250);

/// One volume to back up or restore on a node.
#[derive(Clone, Debug)]
pub struct VolumeTask {
    pub kind: TaskKind,
    /// The backup or restore this is part of.
    pub owner: String,
    pub location: String,
    pub node: String,
    pub spec: TaskSpec,
}

/// Why a volume task did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The reason recorded in the task's row: the agent's report, or why
    /// the dispatcher gave up on the agent.
    #[error("{0}")]
    Failed(String),
    #[error("the task could not be recorded: {0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("the task could not be written: {0}")]
    Spec(#[from] serde_json::Error),
    #[error("the agent's result does not read: {0}")]
    Result(serde_json::Error),
    #[error("the task disappeared from the catalog")]
    Disappeared,
}

/// Why one volume's data was not read or written: the task, its helper
/// pod, or (backups through CSI) the snapshot and its temporary claim.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Helper(#[from] super::helper::HelperError),
    #[error("the temporary object could not be written: {0}")]
    Spec(#[from] serde_json::Error),
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("VolumeSnapshot {name} failed: {message}")]
    SnapshotFailed { name: String, message: String },
    #[error(
        "VolumeSnapshot {name} of class {class} was not ready to use within {seconds} s; check \
         the CSI driver and the snapshot controller"
    )]
    SnapshotNotReady {
        name: String,
        class: String,
        seconds: u64,
    },
}

/// Does the volume work of backups and restores; the engines see only this.
#[async_trait]
pub trait VolumeWork: Send + Sync {
    /// Runs one task to its end (its byte progress is in its task row).
    async fn run(&self, task: VolumeTask) -> Result<TaskResult, TaskError>;

    /// Whether any agent has ever connected (none: the DaemonSet is not installed).
    async fn agents_known(&self) -> bool;
}

/// [`VolumeWork`] through the catalog's task queue and the node agents.
#[derive(Clone)]
pub struct Dispatcher {
    pub catalog: Catalog,
}

fn age(stamp: &str, now: DateTime<Utc>) -> Duration {
    DateTime::parse_from_rfc3339(stamp)
        .map(|t| (now - t.with_timezone(&Utc)).to_std().unwrap_or_default())
        .unwrap_or(Duration::MAX)
}

impl Dispatcher {
    async fn fail(&self, id: &str, reason: String) -> Result<TaskResult, TaskError> {
        let _ = self
            .catalog
            .finish_volume_task(id, "failed", None, Some(&reason), &now())
            .await;
        Err(TaskError::Failed(reason))
    }

    fn outcome(record: &VolumeTaskRecord) -> Option<Result<TaskResult, TaskError>> {
        match record.state.as_str() {
            "done" => Some(
                serde_json::from_str(record.result.as_deref().unwrap_or("{}"))
                    .map_err(TaskError::Result),
            ),
            "failed" => Some(Err(TaskError::Failed(
                record
                    .error
                    .clone()
                    .unwrap_or_else(|| "failed without a reason".into()),
            ))),
            _ => None,
        }
    }
}

#[async_trait]
impl VolumeWork for Dispatcher {
    async fn agents_known(&self) -> bool {
        self.catalog.agents_known().await.unwrap_or(false)
    }

    async fn run(&self, task: VolumeTask) -> Result<TaskResult, TaskError> {
        let seen = self.catalog.agent_seen_at(&task.node).await?;
        let stamp = now();
        let id = uuid::Uuid::new_v4().to_string();
        let spec = serde_json::to_string(&task.spec)?;
        self.catalog
            .insert_volume_task(&VolumeTaskRecord {
                id: id.clone(),
                kind: task.kind.as_str().into(),
                owner: task.owner.clone(),
                location: task.location.clone(),
                node: task.node.clone(),
                spec,
                state: "pending".into(),
                agent: None,
                bytes_done: 0,
                bytes_total: 0,
                result: None,
                error: None,
                created_at: stamp.clone(),
                updated_at: stamp,
            })
            .await?;
        if seen
            .as_deref()
            .is_none_or(|s| age(s, Utc::now()) > AGENT_STALE)
        {
            return self
                .fail(
                    &id,
                    format!(
                        "no Lifeboat agent is running on node `{}` (none asked for work in the last \
                         {} s): check the lifeboat-agent DaemonSet's pod there",
                        task.node,
                        AGENT_STALE.as_secs()
                    ),
                )
                .await;
        }
        // A task waits unclaimed while a prune holds its repository; the
        // claim timeout counts only the time it could have been taken.
        let mut claimable_since = std::time::Instant::now();
        loop {
            tokio::time::sleep(POLL).await;
            let Some(record) = self.catalog.volume_task(&id).await? else {
                return Err(TaskError::Disappeared);
            };
            if let Some(outcome) = Self::outcome(&record) {
                return outcome;
            }
            let now_t = Utc::now();
            let silent = age(&record.updated_at, now_t);
            match record.state.as_str() {
                "pending"
                    if self
                        .catalog
                        .repository_locked(&task.location, &now())
                        .await
                        .unwrap_or(false) =>
                {
                    claimable_since = std::time::Instant::now();
                }
                "pending" if claimable_since.elapsed() > CLAIM_TIMEOUT => {
                    return self
                        .fail(
                            &id,
                            format!(
                                "the agent on node `{}` did not take the task within {} s",
                                task.node,
                                CLAIM_TIMEOUT.as_secs()
                            ),
                        )
                        .await;
                }
                "running" if silent > SILENCE_TIMEOUT => {
                    return self
                        .fail(
                            &id,
                            format!(
                                "the agent on node `{}` stopped reporting {} s into the task \
                                 (last report at {}); it may have been killed or its node lost",
                                task.node,
                                age(&record.created_at, now_t).as_secs(),
                                record.updated_at
                            ),
                        )
                        .await;
                }
                _ => {}
            }
        }
    }
}
