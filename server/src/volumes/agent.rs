//! `lifeboat agent`: one per node (a DaemonSet). It asks the server for its
//! node's next volume task (a long poll with its ServiceAccount token),
//! finds the volume under the kubelet's pods directory, backs it up into
//! (or restores it from) the location's repository through the server, and
//! reports bytes as it goes. One task at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::remote::{AgentClient, RemoteStore};
use super::repo::{StoreBackend, VolumeRepo};
use super::{TaskKind, TaskResult, TaskSpec};

/// How long one poll for work waits on the server.
pub const POLL_SECONDS: u64 = 20;
/// How often a running task reports its bytes (the server fails it after
/// [`SILENCE_TIMEOUT`](super::dispatch::SILENCE_TIMEOUT) without a report).
pub const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What `POST /api/v1/agent/work` takes.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkRequest {
    pub node: String,
    pub version: String,
}

/// A task as the server hands it to the agent of its node, with the
/// repository key of its location.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub id: String,
    pub kind: TaskKind,
    pub location: String,
    pub spec: TaskSpec,
    /// The location's repository key: to this agent, for this task only.
    #[schema(format = Password)]
    pub key: String,
}

/// What `POST /api/v1/agent/tasks/{id}/progress` takes and answers.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressReport {
    pub bytes_done: u64,
    pub bytes_total: u64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressAnswer {
    /// False once the task has ended on the server (failed, or its backup gone).
    pub proceed: bool,
}

/// What `POST /api/v1/agent/tasks/{id}/finish` takes: a result or an error.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finish {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<TaskResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The most warnings one task reports.
pub const MAX_WARNINGS: usize = 100;

/// What the repository library logged as warnings while this agent's one
/// task ran: each file it could not read, named, and skipped. `None` while
/// no task runs.
static TASK_WARNINGS: std::sync::Mutex<Option<Vec<String>>> = std::sync::Mutex::new(None);

/// A tracing layer that keeps the warnings of libraries that log through
/// the `log` crate (rustic_core) while a task runs, for its result.
pub struct WarningCollector;

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarningCollector {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        // Records of the `log` crate arrive with the target `log`.
        if *event.metadata().level() != tracing::Level::WARN || event.metadata().target() != "log" {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Ok(mut warnings) = TASK_WARNINGS.lock()
            && let Some(warnings) = warnings.as_mut()
            && warnings.len() < MAX_WARNINGS
        {
            warnings.push(message.0);
        }
    }
}

pub struct Agent {
    pub client: AgentClient,
    pub node: String,
    /// The kubelet's root directory as the agent sees it (`/var/lib/kubelet`
    /// mounted at the same path, or `--kubelet-root`).
    pub kubelet_root: PathBuf,
}

/// Why an agent could not get work, or do it.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid pod uid `{pod_uid}` or volume `{pv}` in the task")]
    InvalidTask { pod_uid: String, pv: String },
    #[error(
        "the pod's volumes are not on this node ({}: {source}); is the kubelet's pods directory \
         mounted into the agent at {}?",
        volumes.display(),
        kubelet_root.display()
    )]
    NotOnThisNode {
        volumes: PathBuf,
        kubelet_root: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot resolve the volume's mount {}: {source}", dir.display())]
    Unresolved {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("volume `{pv}` is not mounted in pod {pod_uid} on this node (looked under {})", volumes.display())]
    NotMounted {
        pv: String,
        pod_uid: String,
        volumes: PathBuf,
    },
    #[error("reading the agent's token: {0}")]
    Token(std::io::Error),
    #[error("the server could not be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the server's task does not read: {0}")]
    Task(reqwest::Error),
    #[error("{status}: {body}")]
    Refused { status: StatusCode, body: String },
    #[error(transparent)]
    Repository(#[from] super::repo::RepoError),
    #[error("the volume work stopped: {0}")]
    Stopped(#[from] tokio::task::JoinError),
}

/// Where a pod's PVC-backed volume is mounted on this node:
/// `<root>/pods/<uid>/volumes/<plugin>/<pv>`, and its `mount` directory for
/// CSI volumes. Resolved to the real directory (kubesim's mounts are links).
pub fn volume_path(kubelet_root: &Path, pod_uid: &str, pv: &str) -> Result<PathBuf, AgentError> {
    let plain = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
    if !plain(pod_uid) || !plain(pv) {
        return Err(AgentError::InvalidTask {
            pod_uid: pod_uid.to_string(),
            pv: pv.to_string(),
        });
    }
    let volumes = kubelet_root.join("pods").join(pod_uid).join("volumes");
    let plugins = std::fs::read_dir(&volumes).map_err(|source| AgentError::NotOnThisNode {
        volumes: volumes.clone(),
        kubelet_root: kubelet_root.to_path_buf(),
        source,
    })?;
    for plugin in plugins.flatten() {
        let candidate = plugin.path().join(pv);
        if !candidate.exists() {
            continue;
        }
        let dir = if plugin.file_name() == "kubernetes.io~csi" {
            candidate.join("mount")
        } else {
            candidate
        };
        let real =
            std::fs::canonicalize(&dir).map_err(|source| AgentError::Unresolved { dir, source })?;
        if !real.is_dir() {
            return Err(AgentError::NotADirectory(real));
        }
        return Ok(real);
    }
    Err(AgentError::NotMounted {
        pv: pv.to_string(),
        pod_uid: pod_uid.to_string(),
        volumes,
    })
}

impl Agent {
    /// Asks for work until the process is stopped.
    pub async fn run(self) {
        let mut backoff = Duration::from_secs(1);
        tracing::info!(node = %self.node, server = %self.client.server, "agent started");
        loop {
            match self.poll().await {
                Ok(Some(assignment)) => {
                    backoff = Duration::from_secs(1);
                    self.work(assignment).await;
                }
                Ok(None) => backoff = Duration::from_secs(1),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "asking the server for work failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn poll(&self) -> Result<Option<Assignment>, AgentError> {
        let request = self
            .client
            .request(Method::POST, "/api/v1/agent/work")
            .map_err(AgentError::Token)?
            .timeout(Duration::from_secs(POLL_SECONDS + 15))
            .json(&WorkRequest {
                node: self.node.clone(),
                version: crate::VERSION.to_string(),
            });
        let response = request.send().await?;
        match response.status() {
            StatusCode::OK => response
                .json::<Assignment>()
                .await
                .map(Some)
                .map_err(AgentError::Task),
            StatusCode::NO_CONTENT => Ok(None),
            status => Err(AgentError::Refused {
                status,
                body: response.text().await.unwrap_or_default(),
            }),
        }
    }

    async fn work(&self, assignment: Assignment) {
        let id = assignment.id.clone();
        tracing::info!(task = %id, kind = assignment.kind.as_str(), namespace = %assignment.spec.namespace,
            pvc = %assignment.spec.pvc, "volume task started");
        let finish = match self.execute(assignment).await {
            Ok(result) => Finish {
                result: Some(result),
                error: None,
            },
            Err(error) => {
                tracing::warn!(task = %id, %error, "volume task failed");
                Finish {
                    result: None,
                    error: Some(error.to_string()),
                }
            }
        };
        // The server must hear the end; retry a few times.
        for attempt in 0..5u32 {
            let sent = match self
                .client
                .request(Method::POST, &format!("/api/v1/agent/tasks/{id}/finish"))
            {
                Ok(request) => request
                    .json(&finish)
                    .send()
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(response)
                    if response.status().is_success()
                        || response.status() == StatusCode::CONFLICT =>
                {
                    return;
                }
                Ok(response) => {
                    tracing::warn!(task = %id, status = %response.status(), "reporting the end failed")
                }
                Err(error) => tracing::warn!(task = %id, %error, "reporting the end failed"),
            }
            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        }
    }

    async fn execute(&self, assignment: Assignment) -> Result<TaskResult, AgentError> {
        let spec = assignment.spec;
        let path = volume_path(&self.kubelet_root, &spec.pod_uid, &spec.pv)?;
        let store = Arc::new(RemoteStore::new(self.client.clone(), &assignment.location));
        let repo = VolumeRepo::new(
            StoreBackend::new(store, tokio::runtime::Handle::current()),
            &assignment.key,
        );
        let counter = repo.progress();
        let reporter = {
            let client = self.client.clone();
            let id = assignment.id.clone();
            tokio::spawn(async move {
                loop {
                    let (bytes_done, bytes_total) = counter.get();
                    let report = ProgressReport {
                        bytes_done,
                        bytes_total,
                    };
                    if let Ok(request) =
                        client.request(Method::POST, &format!("/api/v1/agent/tasks/{id}/progress"))
                        && let Ok(response) = request.json(&report).send().await
                        && let Ok(answer) = response.json::<ProgressAnswer>().await
                        && !answer.proceed
                    {
                        tracing::warn!(task = %id, "the server ended this task; its result will be ignored");
                    }
                    tokio::time::sleep(REPORT_EVERY).await;
                }
            })
        };
        let kind = assignment.kind;
        if let Ok(mut warnings) = TASK_WARNINGS.lock() {
            *warnings = Some(Vec::new());
        }
        // The repository's own log lines name the node too.
        let span = tracing::Span::current();
        let outcome = tokio::task::spawn_blocking(move || {
            span.in_scope(|| match kind {
                TaskKind::Backup => repo
                    .backup(
                        &path,
                        &spec.snapshot_path(),
                        &[format!("backup={}", spec.backup)],
                    )
                    .map(|info| TaskResult {
                        snapshot: Some(info.id),
                        files: info.files,
                        bytes: info.bytes,
                        bytes_uploaded: info.bytes_uploaded,
                        warnings: info.warnings,
                    }),
                TaskKind::Restore => {
                    let snapshot = spec.snapshot.clone().unwrap_or_default();
                    repo.restore(&snapshot, &path).map(|info| TaskResult {
                        snapshot: Some(snapshot),
                        files: info.files,
                        bytes: info.bytes,
                        bytes_uploaded: 0,
                        warnings: Vec::new(),
                    })
                }
            })
        })
        .await;
        reporter.abort();
        let mut warnings = TASK_WARNINGS
            .lock()
            .ok()
            .and_then(|mut w| w.take())
            .unwrap_or_default();
        match outcome {
            Ok(result) => result
                .map(|result| {
                    warnings.extend(result.warnings.iter().cloned());
                    warnings.truncate(MAX_WARNINGS);
                    TaskResult { warnings, ..result }
                })
                .map_err(AgentError::from),
            Err(e) => Err(e.into()),
        }
    }
}
