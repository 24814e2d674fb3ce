//! The connection to the Kubernetes API: from a kubeconfig (a named file or
//! context, `$KUBECONFIG`, `~/.kube/config`) or the in-cluster ServiceAccount,
//! exactly as kube-rs resolves it. Lifeboat has no other path to a cluster.

pub mod discovery;
pub mod exec;
pub mod lease;
pub mod pacing;
pub mod pager;
pub mod recreated;
pub mod temporary;

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no cluster configured: {0}. Set kubeconfig / LIFEBOAT_KUBECONFIG (or KUBECONFIG), \
         or run Lifeboat inside the cluster with a ServiceAccount."
    )]
    NoConfig(String),
    #[error(
        "the Kubernetes API at {url} did not answer: {message}. Check that the cluster is up \
         and that the kubeconfig's server address and credentials are right."
    )]
    Unreachable { url: String, message: String },
}

/// Who restore drills act as (RBAC: `docker/rbac.yaml`, `lifeboat-drill`).
pub const DRILL_USER: &str = "lifeboat:drill";
pub const DRILL_GROUP: &str = "lifeboat:drills";

/// A client from `config`, paced ([`pacing`]: a write window, 429s retried
/// after `Retry-After`) in place of kube-rs's own retries.
fn client_for(mut config: kube::Config) -> Result<kube::Client, kube::Error> {
    config.default_retry = false;
    Ok(pacing::paced(kube::Client::try_from(config)?))
}

/// A client for one cluster and the address it talks to.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub url: String,
    /// What the client was built from: the base of impersonating clients.
    pub config: kube::Config,
}

impl Cluster {
    /// Resolves the cluster a kubeconfig file (or the usual search:
    /// `KUBECONFIG`, `~/.kube/config`, in-cluster) and context name.
    pub async fn connect(
        kubeconfig: Option<&std::path::Path>,
        context: Option<&str>,
    ) -> Result<Self, ClusterError> {
        crate::install_crypto_provider();
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let no_config = |e: &dyn std::fmt::Display| ClusterError::NoConfig(e.to_string());
        let kube_config = match kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| ClusterError::NoConfig(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| no_config(&e))?
            }
            None if context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| no_config(&e))?,
            None => kube::Config::infer().await.map_err(|e| no_config(&e))?,
        };
        let url = kube_config.cluster_url.to_string();
        let client = client_for(kube_config.clone()).map_err(|e| no_config(&e))?;
        Ok(Self {
            client,
            url,
            config: kube_config,
        })
    }

    /// A client that acts as `who`: Lifeboat's own credentials with
    /// `Impersonate-User`/`-Group`/`-Uid` headers, so the API server allows
    /// exactly what the user may do (Lifeboat needs `impersonate` on users,
    /// groups, service accounts and uids). With sign-in turned off, Lifeboat's own client.
    pub fn client_as(&self, who: &crate::auth::Principal) -> Result<kube::Client, ClusterError> {
        if who.method == crate::auth::SignIn::Disabled {
            return Ok(self.client.clone());
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(who.username.clone());
        // The API server adds system:authenticated to an impersonated user itself.
        let groups: Vec<String> = who
            .groups
            .iter()
            .filter(|g| *g != "system:authenticated")
            .cloned()
            .collect();
        config.auth_info.impersonate_groups = (!groups.is_empty()).then_some(groups);
        config.auth_info.impersonate_uid = (!who.uid.is_empty()).then(|| who.uid.clone());
        client_for(config).map_err(|e| ClusterError::NoConfig(e.to_string()))
    }

    /// The client restore drills write with: Lifeboat's credentials
    /// impersonating [`DRILL_USER`] (group [`DRILL_GROUP`]), whatever the
    /// sign-in setting, so that a drill can do exactly what the ClusterRole
    /// `lifeboat-drill` (docker/rbac.yaml) grants, and no more.
    pub fn drill_client(&self) -> Result<kube::Client, ClusterError> {
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(DRILL_USER.to_string());
        config.auth_info.impersonate_groups = Some(vec![DRILL_GROUP.to_string()]);
        client_for(config).map_err(|e| ClusterError::NoConfig(e.to_string()))
    }

    /// Asks the API server for its version, within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> Result<String, ClusterError> {
        let unreachable = |message: String| ClusterError::Unreachable {
            url: self.url.clone(),
            message,
        };
        match tokio::time::timeout(timeout, self.client.apiserver_version()).await {
            Ok(Ok(info)) => Ok(info.git_version),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable(format!(
                "no answer within {}s",
                timeout.as_secs()
            ))),
        }
    }
}

/// The bearer token of a kubeconfig's current user (`token`, or the
/// contents of `tokenFile`), as kubectl would send it.
pub fn kubeconfig_token(kc: &kube::config::Kubeconfig) -> Option<String> {
    use secrecy::ExposeSecret;
    let context = kc.current_context.as_deref()?;
    let user = kc
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .user
        .clone()?;
    let auth = kc
        .auth_infos
        .iter()
        .find(|a| a.name == user)?
        .auth_info
        .as_ref()?;
    if let Some(token) = &auth.token {
        return Some(token.expose_secret().to_string());
    }
    let file = auth.token_file.as_ref()?;
    std::fs::read_to_string(file)
        .ok()
        .map(|t| t.trim().to_string())
}
