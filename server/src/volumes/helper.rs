//! Short-lived helper pods: a pod that only mounts a claim, so that the
//! agent of the node it lands on can reach the claim's volume (a claim no
//! running pod mounts, a temporary claim made from a CSI snapshot, or a
//! fresh claim a restore writes into). They are always removed, and waited
//! for, whatever happened.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

/// How long a helper pod may take to be scheduled, its claim bound, and start.
pub const START_TIMEOUT: Duration = Duration::from_secs(300);
/// The image of helper pods: it only has to stay up while the agent works.
pub const DEFAULT_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// A running helper pod: where it runs and what it mounts.
#[derive(Clone, Debug)]
pub struct Helper {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    /// The PV bound to the claim it mounts.
    pub pv: String,
}

/// A helper pod name for `claim`: `lifeboat-<purpose>-<claim>-<random>`.
pub fn name_for(purpose: &str, claim: &str) -> String {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let base: String = claim.chars().take(36).collect();
    format!("lifeboat-{purpose}-{}-{suffix}", base.trim_end_matches('-'))
}

/// Why a helper pod did not run, or did not go.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("the helper pod could not be written: {0}")]
    Spec(#[from] serde_json::Error),
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("the helper pod {name} ended ({phase}) before the agent was done")]
    Ended { name: String, phase: String },
    #[error(
        "the helper pod {name} did not start within {seconds} s (phase {phase:?}): is claim \
         {claim} bound, and can pods be scheduled?"
    )]
    NotStarted {
        name: String,
        seconds: u64,
        phase: String,
        claim: String,
    },
    #[error("claim {0} has no volume although its pod runs")]
    Unbound(String),
    #[error("{0} was still there 60 s after its deletion")]
    NotGone(String),
}

fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> HelperError {
    let what = what.into();
    move |source| HelperError::Kube { what, source }
}

/// Creates a helper pod that mounts `claim` (read-only when `read_only`)
/// and waits until it runs; the caller must [`remove`] it in every case,
/// also when this fails.
pub async fn start(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    claim: &str,
    read_only: bool,
    image: &str,
    labels: serde_json::Value,
) -> Result<Helper, HelperError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "hold", "image": image,
                            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": read_only}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}],
        },
    }))?;
    pods.create(&PostParams::default(), &pod)
        .await
        .map_err(kube(format!("creating the helper pod {name}")))?;
    let deadline = Instant::now() + START_TIMEOUT;
    let (node, uid) = loop {
        let live = pods
            .get(name)
            .await
            .map_err(kube(format!("reading the helper pod {name}")))?;
        let phase = live
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let node = live.spec.as_ref().and_then(|s| s.node_name.clone());
        if phase == "Running"
            && let Some(node) = node
        {
            break (node, live.metadata.uid.unwrap_or_default());
        }
        if matches!(phase.as_str(), "Failed" | "Succeeded") {
            return Err(HelperError::Ended {
                name: name.to_string(),
                phase,
            });
        }
        if Instant::now() >= deadline {
            return Err(HelperError::NotStarted {
                name: name.to_string(),
                seconds: START_TIMEOUT.as_secs(),
                phase,
                claim: claim.to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // A running pod's claim is bound; wait for the binding to be visible.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let pv = loop {
        let bound = claims
            .get(claim)
            .await
            .map_err(kube(format!("reading claim {claim}")))?
            .spec
            .and_then(|s| s.volume_name);
        if let Some(pv) = bound {
            break pv;
        }
        if Instant::now() >= deadline {
            return Err(HelperError::Unbound(claim.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    Ok(Helper {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid,
        node,
        pv,
    })
}

/// Deletes a helper pod and waits until it is gone (a ReadWriteOnce volume
/// is attached to one node at a time, so the next user must not race it).
pub async fn remove(client: &kube::Client, namespace: &str, name: &str) -> Result<(), HelperError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match pods
        .delete(name, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(kube(format!("deleting the helper pod {name}"))(e)),
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if matches!(pods.get_opt(name).await, Ok(None)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(HelperError::NotGone(name.to_string()))
}
