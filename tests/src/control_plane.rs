//! A genuine Kubernetes control plane for the tests: etcd, kube-apiserver
//! and kube-controller-manager, started from the directory `KUBEBUILDER_ASSETS`
//! names (envtest's convention: `kube-apiserver`, `kube-controller-manager`
//! and optionally `etcd`, otherwise found on PATH). Each start makes its own
//! PKI (a CA, a serving certificate, a ServiceAccount key pair), a static
//! admin token in `system:masters`, RBAC authorization and free loopback
//! ports; everything it started is killed when it is dropped.
//!
//! No kubelet and no scheduler run: pods stay Pending. What needs them
//! (volume data, logs, metrics) stays kubesim's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The variable naming the binaries' directory (envtest's name: a
/// `LIFEBOAT_` one would meet Lifeboat's strict configuration).
pub const ASSETS: &str = "KUBEBUILDER_ASSETS";

/// How a control plane is started.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// kube-apiserver's `--etcd-compaction-interval` (its default, 5 min, when None):
    /// short, old watch resourceVersions expire (410 Gone) quickly.
    pub compaction_interval: Option<Duration>,
    /// `--watch-cache=false`: watches are served from etcd, so a compacted
    /// revision is 410 Gone at once (the cache would otherwise still hold it).
    pub no_watch_cache: bool,
    /// `--max-mutating-requests-inflight` with API Priority and Fairness off
    /// (which would exempt the admin): writes past it are answered 429, so
    /// a restore takes long enough to be interrupted.
    pub max_mutating_inflight: Option<u32>,
}

/// A running control plane.
pub struct ControlPlane {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The admin's bearer token (`system:masters`).
    pub token: String,
    /// The CA that signed the serving certificate (PEM).
    pub ca_pem: String,
    /// `kube-apiserver --version`, e.g. `Kubernetes v1.28.7`.
    pub version: String,
    /// The admin's kubeconfig.
    pub kubeconfig: PathBuf,
    children: Vec<(&'static str, Child)>,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts one from `KUBEBUILDER_ASSETS`; `None`, with one line on
    /// stderr naming `test`, when the variable is not set.
    pub async fn start_or_skip(test: &str, options: Options) -> Result<Option<Self>> {
        match std::env::var_os(ASSETS) {
            Some(dir) if !dir.is_empty() => Ok(Some(Self::start(Path::new(&dir), options).await?)),
            _ => {
                eprintln!(
                    "skipped {test} on kube-apiserver: {ASSETS} is not set (a directory holding \
                     kube-apiserver and kube-controller-manager; .ci/test sets it when \
                     ../shared/control-plane/ exists, see docs/TESTING.md)"
                );
                Ok(None)
            }
        }
    }

    /// Starts etcd, kube-apiserver and kube-controller-manager from `assets`
    /// and waits until the API server is ready and the controllers have
    /// made the `default` ServiceAccount.
    pub async fn start(assets: &Path, options: Options) -> Result<Self> {
        // A port found free can be taken by another process before etcd or
        // kube-apiserver binds it: such a start is tried again, twice.
        let mut attempt = 1;
        loop {
            match Self::start_once(assets, options.clone()).await {
                Err(e) if attempt < 3 && format!("{e:#}").contains("address already in use") => {
                    eprintln!("control plane: a port was taken meanwhile; starting again ({e:#})");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once(assets: &Path, options: Options) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        let binary = |name: &str| -> Result<PathBuf> {
            let there = assets.join(name);
            if there.is_file() {
                return Ok(there);
            }
            which(name).with_context(|| {
                format!(
                    "{name} is neither in {ASSETS}={} nor on PATH (etcd: apt-get install etcd-server)",
                    assets.display()
                )
            })
        };
        let (etcd, apiserver, controllers) = (
            binary("etcd")?,
            binary("kube-apiserver")?,
            binary("kube-controller-manager")?,
        );
        let pki = Pki::generate()?;
        pki.write(d)?;
        let token = hex::encode(rand::random::<[u8; 16]>());
        std::fs::write(
            d.join("tokens.csv"),
            format!("{token},admin,admin,system:masters\n"),
        )?;
        let mut plane = Self {
            url: String::new(),
            token,
            ca_pem: pki.ca_pem.clone(),
            version: String::new(),
            kubeconfig: d.join("admin.kubeconfig"),
            children: Vec::new(),
            dir,
        };
        let out = Command::new(&apiserver).arg("--version").output()?;
        plane.version = String::from_utf8_lossy(&out.stdout).trim().to_string();

        let [client, peer, port, cm_port] = super::free_ports()?;
        let etcd_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        plane.spawn(
            "etcd",
            Command::new(&etcd)
                .arg("--name=t")
                .arg(format!("--data-dir={}", d.join("etcd").display()))
                .arg(format!("--listen-client-urls={etcd_url}"))
                .arg(format!("--advertise-client-urls={etcd_url}"))
                .arg(format!("--listen-peer-urls={peer_url}"))
                .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                .arg(format!("--initial-cluster=t={peer_url}"))
                .arg("--log-level=warn"),
        )?;

        plane.url = format!("https://127.0.0.1:{port}");
        let path = |f: &str| d.join(f).display().to_string();
        let mut api = Command::new(&apiserver);
        api.arg(format!("--etcd-servers={etcd_url}"))
            .arg(format!("--secure-port={port}"))
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            .arg(format!("--token-auth-file={}", path("tokens.csv")))
            .arg("--authorization-mode=Node,RBAC")
            .arg(format!("--client-ca-file={}", path("ca.crt")))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg("--api-audiences=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", path("sa.pub")))
            .arg(format!(
                "--service-account-signing-key-file={}",
                path("sa.key")
            ))
            .arg(format!("--tls-cert-file={}", path("apiserver.crt")))
            .arg(format!("--tls-private-key-file={}", path("apiserver.key")))
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            .arg(format!("--cert-dir={}", path("certs")));
        if let Some(every) = options.compaction_interval {
            api.arg(format!(
                "--etcd-compaction-interval={}s",
                every.as_secs().max(1)
            ));
        }
        if options.no_watch_cache {
            api.arg("--watch-cache=false");
        }
        if let Some(n) = options.max_mutating_inflight {
            api.arg("--enable-priority-and-fairness=false")
                .arg(format!("--max-mutating-requests-inflight={n}"));
        }
        plane.spawn("kube-apiserver", &mut api)?;
        plane.wait_ready().await?;
        kubesim::tls::write_kubeconfig(
            &plane.kubeconfig,
            &plane.url,
            Some(&plane.ca_pem),
            &plane.token,
        )?;

        let kubeconfig = plane.kubeconfig.display().to_string();
        plane.spawn(
            "kube-controller-manager",
            Command::new(&controllers)
                .arg(format!("--kubeconfig={kubeconfig}"))
                .arg(format!("--authentication-kubeconfig={kubeconfig}"))
                .arg(format!("--authorization-kubeconfig={kubeconfig}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--secure-port={cm_port}"))
                .arg("--controllers=*")
                .arg(format!(
                    "--service-account-private-key-file={}",
                    path("sa.key")
                ))
                .arg(format!("--root-ca-file={}", path("ca.crt")))
                .arg("--use-service-account-credentials")
                .arg(format!("--cluster-signing-cert-file={}", path("ca.crt")))
                .arg(format!("--cluster-signing-key-file={}", path("ca.key")))
                .arg("--service-cluster-ip-range=10.96.0.0/16")
                .arg(format!("--cert-dir={}", path("cm-certs"))),
        )?;
        plane.wait_for_controllers().await?;
        Ok(plane)
    }

    /// A kube-rs client as the admin, through the kubeconfig, as Lifeboat connects.
    pub async fn client(&self) -> Result<kube::Client> {
        self.client_for(&self.token).await
    }

    /// A kube-rs client with `token` (a ServiceAccount's, from TokenRequest).
    pub async fn client_for(&self, token: &str) -> Result<kube::Client> {
        let path = self
            .dir
            .path()
            .join(format!("client-{}.kubeconfig", &sha(token)[..12]));
        self.write_kubeconfig_for(&path, token)?;
        connect(&path).await
    }

    /// Writes a kubeconfig reaching this server with `token`.
    pub fn write_kubeconfig_for(&self, path: &Path, token: &str) -> Result<()> {
        kubesim::tls::write_kubeconfig(path, &self.url, Some(&self.ca_pem), token)?;
        Ok(())
    }

    /// The last lines each process logged (for a failure's message).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (name, _) in &self.children {
            let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {name} (last 20 lines)\n"));
            for line in &lines[lines.len().saturating_sub(20)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn spawn(&mut self, name: &'static str, command: &mut Command) -> Result<()> {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log")))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.children.push((name, child));
        Ok(())
    }

    /// Fails with the logs when a process ended.
    fn check_alive(&mut self) -> Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let name = *name;
                bail!("{name} exited ({status}):\n{}", self.logs());
            }
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?;
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            self.check_alive()?;
            let answer = http
                .get(format!("{}/readyz", self.url))
                .bearer_auth(&self.token)
                .send()
                .await;
            if let Ok(r) = answer
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("kube-apiserver was not ready within 90 s:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The controllers are up once the `default` ServiceAccount and the
    /// `kube-root-ca.crt` ConfigMap exist in `default`.
    async fn wait_for_controllers(&mut self) -> Result<()> {
        use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
        let client = self.client().await?;
        let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), "default");
        let maps: kube::Api<ConfigMap> = kube::Api::namespaced(client, "default");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            self.check_alive()?;
            if accounts.get_opt("default").await.ok().flatten().is_some()
                && maps
                    .get_opt("kube-root-ca.crt")
                    .await
                    .ok()
                    .flatten()
                    .is_some()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-controller-manager made no default ServiceAccount within 90 s:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // The controllers first, etcd last.
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A kube-rs client through the kubeconfig at `path`, as Lifeboat connects.
async fn connect(path: &Path) -> Result<kube::Client> {
    let cluster = lifeboat::cluster::Cluster::connect(Some(path), None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(cluster.client)
}

fn sha(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// The control plane's keys and certificates, PEM: kubesim's authority
/// code, and a ServiceAccount signing key pair.
struct Pki {
    ca_pem: String,
    ca_key: String,
    server_pem: String,
    server_key: String,
    sa_key: String,
    sa_pub: String,
}

impl Pki {
    fn generate() -> Result<Self> {
        let a = kubesim::tls::authority(
            "lifeboat-tests-ca",
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
            ],
        )?;
        let sa = rcgen::KeyPair::generate()?;
        Ok(Self {
            ca_pem: a.ca_pem,
            ca_key: a.ca_key_pem,
            server_pem: a.server_pem,
            server_key: a.server_key_pem,
            sa_key: sa.serialize_pem(),
            sa_pub: sa.public_key_pem(),
        })
    }

    fn write(&self, dir: &Path) -> Result<()> {
        for (file, text) in [
            ("ca.crt", &self.ca_pem),
            ("ca.key", &self.ca_key),
            ("apiserver.crt", &self.server_pem),
            ("apiserver.key", &self.server_key),
            ("sa.key", &self.sa_key),
            ("sa.pub", &self.sa_pub),
        ] {
            std::fs::write(dir.join(file), text)?;
        }
        Ok(())
    }
}
