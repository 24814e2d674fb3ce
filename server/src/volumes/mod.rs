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
//! - `helper.rs`: short-lived helper pods that mount a claim for an agent.
//! - `agent.rs`: `lifeboat agent`, the DaemonSet's loop.

pub mod agent;
pub mod dispatch;
pub mod helper;
pub mod remote;
pub mod repo;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, CatalogError};
use crate::storage::DynStore;
use repo::{RepoError, StoreBackend, VolumeRepo};

/// The annotation that opts a pod's volumes out: `lifeboat.io/skip-volumes: data,cache`.
pub const SKIP_ANNOTATION: &str = "lifeboat.io/skip-volumes";

/// Whether a task backs a volume up or restores one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// One volume's work for an agent: where the volume is mounted on its node
/// (the pod's uid and the PV's name give the kubelet's path), and for a
/// restore the snapshot to write into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// The manifest's record of a volume is the archive's (format version 2).
pub use crate::archive::{Method, VolumeEntry};
pub use frontend::model::{VolumeProgress, VolumeTotals};

/// The progress of the volume tasks of one backup or restore: a finished
/// task counts what it reported at the end.
pub fn progress_of(tasks: &[crate::catalog::VolumeTaskRecord]) -> VolumeTotals {
    let mut totals = VolumeTotals::default();
    for task in tasks {
        let spec: Option<TaskSpec> = serde_json::from_str(&task.spec).ok();
        let finished: Option<TaskResult> = task
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        let (done, total) = match &finished {
            Some(result) => (result.bytes, result.bytes),
            None => (
                task.bytes_done.max(0) as u64,
                task.bytes_total.max(0) as u64,
            ),
        };
        totals.bytes_done += done;
        totals.bytes_total += total.max(done);
        totals.volumes.push(VolumeProgress {
            namespace: spec
                .as_ref()
                .map(|s| s.namespace.clone())
                .unwrap_or_default(),
            pvc: spec.as_ref().map(|s| s.pvc.clone()).unwrap_or_default(),
            phase: task.state.clone(),
            bytes_done: done,
            bytes_total: total.max(done),
        });
    }
    totals
}

/// The repository of a location, opened with its key from the catalog;
/// `None` when the location has no key or no repository (no volume data yet).
async fn location_repo(
    catalog: &Catalog,
    store: &DynStore,
    location: &str,
) -> Result<Option<VolumeRepo>, RepositoryError> {
    let Some(key) = catalog.repository_key(location).await? else {
        return Ok(None);
    };
    let repo = VolumeRepo::new(
        StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
        &key,
    );
    Ok(Some(repo))
}

/// Runs blocking repository work, mapping "no repository" to `None`.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RepoError> + Send + 'static,
) -> Result<Option<T>, RepositoryError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(Some(value)),
        Ok(Err(RepoError::NotInitialized)) => Ok(None),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}

/// Why repository housekeeping (forgetting, pruning) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Repository(#[from] RepoError),
    #[error("the repository work stopped: {0}")]
    Stopped(#[from] tokio::task::JoinError),
}

/// Forgets a deleted backup's snapshots (tagged `backup=<name>`); their data
/// goes at the next prune. Returns how many were forgotten.
pub async fn forget_backup(
    catalog: &Catalog,
    store: &DynStore,
    location: &str,
    backup: &str,
) -> Result<usize, RepositoryError> {
    let Some(repo) = location_repo(catalog, store, location).await? else {
        return Ok(0);
    };
    let tag = format!("backup={backup}");
    let forgotten = blocking(move || repo.forget_tagged(&tag))
        .await?
        .unwrap_or(0);
    if forgotten > 0 {
        catalog.owe_prune(location).await?;
    }
    Ok(forgotten)
}

/// How long a prune's repository lock lasts unless renewed (it is renewed
/// every third of this while the prune runs).
pub const PRUNE_LOCK_HOLD: std::time::Duration = std::time::Duration::from_secs(300);

/// How often a repository is pruned even when nothing was deleted: restic's
/// two-phase deletion removes the packs an earlier prune marked only at a
/// later one, a day on.
pub const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes repository data that no snapshot references, when it is due
/// (backups were deleted, or the last prune is a day old): run by the
/// scheduler's garbage collection on the leader only.
///
/// It holds the repository's lock in the catalog while it runs: it starts
/// only while no volume task runs on that location, and no agent is given one
/// there until it ends (`Ok(None)`: busy, try later). Packs are deleted in
/// restic's two phases besides (marked, then removed a day later), so even a
/// backup that read the index before the prune keeps the data it reuses.
/// Returns the bytes freed or marked.
pub async fn prune(
    catalog: &Catalog,
    store: &DynStore,
    location: &str,
) -> Result<Option<u64>, RepositoryError> {
    let stale = chrono::Utc::now() - chrono::Duration::seconds(PRUNE_EVERY.as_secs() as i64);
    let due = catalog
        .prune_due(location, &crate::catalog::stamp(stale))
        .await?;
    if !due {
        return Ok(Some(0));
    }
    let Some(repo) = location_repo(catalog, store, location).await? else {
        return Ok(Some(0));
    };
    let holder = uuid::Uuid::new_v4().to_string();
    let expires = || {
        crate::catalog::stamp(
            chrono::Utc::now() + chrono::Duration::seconds(PRUNE_LOCK_HOLD.as_secs() as i64),
        )
    };
    let locked = catalog
        .lock_repository(location, &holder, &crate::catalog::now(), &expires())
        .await?;
    if !locked {
        return Ok(None);
    }
    let renew = {
        let (catalog, location, holder) = (catalog.clone(), location.to_string(), holder.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PRUNE_LOCK_HOLD / 3).await;
                if let Err(e) = catalog
                    .renew_repository_lock(&location, &holder, &expires())
                    .await
                {
                    tracing::warn!(%location, error = %e, "could not renew the repository lock");
                }
            }
        })
    };
    let result = blocking(move || repo.prune(false)).await;
    renew.abort();
    if let Err(e) = catalog.unlock_repository(location, &holder).await {
        tracing::warn!(%location, error = %e, "could not release the repository lock; it expires by itself");
    }
    let freed = result?.unwrap_or(0);
    catalog.pruned(location, &crate::catalog::now()).await?;
    Ok(Some(freed))
}

/// A new recovery key: an age identity (`AGE-SECRET-KEY-1…`, 256 random
/// bits). It is the volume repository's password and the location's archive
/// key both (`crate::archive::crypto`).
pub fn generate_key() -> String {
    crate::archive::crypto::generate_recovery_key()
}

/// Why a recovery key cannot be shown or taken.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "location `{0}` already holds a volume repository made by another Lifeboat install, and \
         this one does not have its recovery key: supply it with `lifeboat location set-key {0}`"
    )]
    Foreign(String),
    #[error(
        "the recovery key for location `{0}` was shown once already and is never shown again; \
         if it is lost, volume data stays readable only through this install"
    )]
    AlreadyShown(String),
    #[error(
        "that key does not open the volume repository of location `{0}`; nothing was changed. \
         Use the recovery key shown when the location was first added"
    )]
    Wrong(String),
    #[error("{0}")]
    Failed(String),
}

/// How long a provisioning waits for another replica's to finish.
pub const PROVISION_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// One provisioning at a time per location inside this process.
fn provisioning_gate(location: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static GATES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::OnceLock::new();
    let gates = GATES.get_or_init(Default::default);
    let mut gates = gates
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    gates.entry(location.to_string()).or_default().clone()
}

/// Gives `location` a recovery key and a repository when it has neither,
/// and finishes a creation that a killed process left half done (a key in
/// the catalog, no repository). Returns the new key, or `None` when the
/// location already had a key or holds another install's repository.
///
/// It happens once, whatever runs at once: single-flight inside the
/// process, and across replicas under the location's repository lock in
/// the catalog (the lock a prune takes). The bucket is never asked to
/// create-if-absent (Garage ignores `If-None-Match`); the check and the
/// creation both happen under the lock. The key is recorded before the
/// repository is written, so a crash in between leaves a key the next call
/// completes, never a repository nobody holds the key of.
pub async fn provision(
    catalog: &Catalog,
    store: &DynStore,
    location: &str,
) -> Result<Option<String>, KeyError> {
    let failed = |e: String| KeyError::Failed(e);
    let gate = provisioning_gate(location);
    let _one_here = gate.lock().await;
    // Made already (by whoever held the gate or the lock before): nothing
    // to do, and no lock to wait for while that one's tasks run.
    if let Some(key) = catalog
        .repository_key(location)
        .await
        .map_err(|e| failed(e.to_string()))?
        && repository_exists(store, &key).await?
    {
        return Ok(None);
    }
    let holder = format!("provision-{}", uuid::Uuid::new_v4());
    let deadline = std::time::Instant::now() + PROVISION_WAIT;
    loop {
        let until = crate::catalog::stamp(chrono::Utc::now() + chrono::Duration::seconds(60));
        if catalog
            .lock_repository(location, &holder, &crate::catalog::now(), &until)
            .await
            .map_err(|e| failed(e.to_string()))?
        {
            break;
        }
        if std::time::Instant::now() >= deadline {
            return Err(failed(format!(
                "the volume repository of location `{location}` stayed locked for {} s (another \
                 replica making it, or a prune); try again",
                PROVISION_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let outcome = provision_locked(catalog, store, location).await;
    if let Err(e) = catalog.unlock_repository(location, &holder).await {
        tracing::warn!(%location, error = %e, "could not release the repository lock; it expires by itself");
    }
    outcome
}

/// Whether the location holds a repository (its `config`), whoever made it.
async fn repository_exists(store: &DynStore, key: &str) -> Result<bool, KeyError> {
    let probe = VolumeRepo::new(
        StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
        key,
    );
    tokio::task::spawn_blocking(move || probe.exists())
        .await
        .map_err(|e| KeyError::Failed(e.to_string()))?
        .map_err(|e| KeyError::Failed(e.to_string()))
}

/// [`provision`]'s work, under the location's repository lock.
async fn provision_locked(
    catalog: &Catalog,
    store: &DynStore,
    location: &str,
) -> Result<Option<String>, KeyError> {
    let failed = |e: String| KeyError::Failed(e);
    let known = catalog
        .repository_key(location)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (key, new) = match known {
        Some(key) => (key, false),
        None => (generate_key(), true),
    };
    let repo = VolumeRepo::new(
        StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
        &key,
    );
    if repository_exists(store, &key).await? {
        // Ours (a key here), or another install's (none here): nothing to make.
        return Ok(None);
    }
    let stored = if new {
        catalog
            .ensure_repository_key(location, &key, &crate::catalog::now())
            .await
            .map_err(|e| failed(e.to_string()))?
    } else {
        key.clone()
    };
    if stored != key {
        // Recorded meanwhile outside this lock (`set-key`): theirs stands.
        return Ok(None);
    }
    let location_name = location.to_string();
    tokio::task::spawn_blocking(move || -> Result<(), RepoError> {
        let stray = repo.clear_interrupted_creation()?;
        if stray > 0 {
            tracing::warn!(location = %location_name, stray, "removed the key files of a repository creation that never finished");
        }
        repo.init()
    })
    .await
    .map_err(|e| failed(e.to_string()))?
    .map_err(|e| failed(e.to_string()))?;
    tracing::info!(%location, "volume repository created");
    Ok(new.then_some(stored))
}

/// Damaged repositories found by this process, by location: what
/// `/readyz` and the Storage page report until an open succeeds again.
fn damage_registry() -> &'static std::sync::Mutex<std::collections::BTreeMap<String, String>> {
    static DAMAGE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::BTreeMap<String, String>>,
    > = std::sync::OnceLock::new();
    DAMAGE.get_or_init(Default::default)
}

/// Notes what an open of `location`'s repository found: damage is kept
/// until an open succeeds.
pub fn note_open(location: &str, outcome: &Result<(), RepoError>) {
    let mut damage = damage_registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match outcome {
        Err(err @ RepoError::Damaged(_)) => {
            if damage
                .insert(location.to_string(), err.to_string())
                .is_none()
            {
                tracing::error!(%location, error = %err, "the volume repository is damaged");
            }
        }
        Ok(()) => {
            damage.remove(location);
        }
        Err(_) => {}
    }
}

/// The damaged repositories known here: location → what is wrong.
pub fn damaged() -> std::collections::BTreeMap<String, String> {
    damage_registry()
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default()
}

/// Opens `location`'s repository with its key (when it has one) to find
/// damage, as `serve` does at start for each location.
pub async fn check_open(catalog: &Catalog, store: &DynStore, location: &str) {
    let Ok(Some(repo)) = location_repo(catalog, store, location).await else {
        return;
    };
    let outcome = tokio::task::spawn_blocking(move || repo.open().map(|_| ())).await;
    if let Ok(outcome) = outcome {
        note_open(location, &outcome);
    }
}

/// The archive key of `location` for a new backup: from its recovery key,
/// made (with the volume repository) when the location has none. A bucket
/// holding another install's repository, without its key here, is refused:
/// backups there wait for `lifeboat location set-key`, rather than being
/// written under a second key or in the clear.
pub async fn archive_key_for_backup(
    catalog: &Catalog,
    store: &DynStore,
    location: &str,
) -> Result<crate::archive::ArchiveKey, KeyError> {
    if catalog
        .repository_key(location)
        .await
        .map_err(|e| KeyError::Failed(e.to_string()))?
        .is_none()
    {
        provision(catalog, store, location).await?;
    }
    archive_key(catalog, location)
        .await?
        .ok_or_else(|| KeyError::Foreign(location.to_string()))
}

/// The archive key of `location` from its stored recovery key, if it has one.
pub async fn archive_key(
    catalog: &Catalog,
    location: &str,
) -> Result<Option<crate::archive::ArchiveKey>, KeyError> {
    let Some(key) = catalog
        .repository_key(location)
        .await
        .map_err(|e| KeyError::Failed(e.to_string()))?
    else {
        return Ok(None);
    };
    crate::archive::ArchiveKey::from_recovery_key(&key)
        .map(Some)
        .map_err(|e| KeyError::Failed(e.to_string()))
}

/// The location's recovery key, once: made (with the repository) when the
/// location has none; refused when it was shown before.
pub async fn reveal_key(
    catalog: &Catalog,
    store: &DynStore,
    location: &str,
) -> Result<String, KeyError> {
    let failed = |e: crate::catalog::CatalogError| KeyError::Failed(e.to_string());
    if catalog
        .repository_key(location)
        .await
        .map_err(failed)?
        .is_none()
        && provision(catalog, store, location).await?.is_none()
    {
        return Err(KeyError::Foreign(location.to_string()));
    }
    catalog
        .reveal_repository_key(location, &crate::catalog::now())
        .await
        .map_err(failed)?
        .ok_or_else(|| KeyError::AlreadyShown(location.to_string()))
}

/// Takes a recovery key for a location (an imported bucket): it must open
/// the repository the location holds; a wrong key changes nothing.
pub async fn set_key(
    catalog: &Catalog,
    store: &DynStore,
    location: &str,
    key: &str,
) -> Result<(), KeyError> {
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(KeyError::Wrong(location.to_string()));
    }
    let repo = VolumeRepo::new(
        StoreBackend::new(store.clone(), tokio::runtime::Handle::current()),
        &key,
    );
    let opened = tokio::task::spawn_blocking(move || repo.open().map(|_| ()))
        .await
        .map_err(|e| KeyError::Failed(e.to_string()))?;
    match opened {
        Ok(()) | Err(RepoError::NotInitialized) => {}
        Err(RepoError::WrongKey) => return Err(KeyError::Wrong(location.to_string())),
        Err(e) => return Err(KeyError::Failed(e.to_string())),
    }
    catalog
        .set_repository_key(location, &key, &crate::catalog::now())
        .await
        .map_err(|e| KeyError::Failed(e.to_string()))
}
