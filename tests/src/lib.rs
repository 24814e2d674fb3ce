//! Test harness: starts real servers on 127.0.0.1 for the end-to-end tests and
//! stops them when the handle is dropped.
//!
//! * S3: Garage (`garage server --single-node --default-bucket`), found as
//!   `$LIFEBOAT_GARAGE_BIN`, `garage` on `PATH`, or where `.ci/run` caches it.
//!   `LIFEBOAT_TEST_S3_ENDPOINT` (+ `_REGION`, `_BUCKET`, `_ACCESS_KEY_ID`,
//!   `_SECRET_ACCESS_KEY`) points the suites at any other server instead.
//! * PostgreSQL: a throwaway cluster from Debian's `postgresql` (initdb in a
//!   temp dir, a free port, run as the `postgres` user when we are root).
//!   `LIFEBOAT_TEST_DATABASE_URL` points at another server instead.
//! * Lifeboat: in this process (`serve_lifeboat`) or as a child process
//!   (`LifeboatProcess`). Every route needs sign-in, so the harness
//!   remembers, per server it starts, the token it signs in with (the
//!   cluster's admin); `http`, `get`, `poll_json` and `SseStream` send it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lifeboat::storage::{Availability, ChecksumMode, ObjectStore, S3Settings, S3Store};

pub mod campaign;
mod ceph;
pub mod control_plane;
pub mod faults;
pub mod trees;

/// The token each Lifeboat server started by the harness is signed into, by base URL.
static TOKENS: std::sync::Mutex<Option<std::collections::HashMap<String, String>>> =
    std::sync::Mutex::new(None);

/// `http://127.0.0.1:1234` of `http://127.0.0.1:1234/api/v1/…`.
fn base_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// From now on, requests the harness sends to the Lifeboat at `url` carry `token`.
pub fn sign_in_as(url: &str, token: &str) {
    if let Ok(mut tokens) = TOKENS.lock() {
        tokens
            .get_or_insert_with(Default::default)
            .insert(base_of(url).to_string(), token.to_string());
    }
}

/// An HTTP client for the Lifeboat at `url`, signed in as the harness
/// signed in there (anonymous for servers it did not start).
pub fn http(url: &str) -> reqwest::Client {
    let token = TOKENS
        .lock()
        .ok()
        .and_then(|t| t.as_ref()?.get(base_of(url)).cloned());
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = token
        .map(|t| format!("Bearer {t}"))
        .and_then(|v| reqwest::header::HeaderValue::from_str(&v).ok())
    {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap_or_default()
}

/// A client sending `token` as its bearer token (another user than the
/// admin [`http`] signs in as), following no redirects.
pub fn with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// `GET url`, signed in (see [`http`]).
pub async fn get(url: impl AsRef<str>) -> reqwest::Result<reqwest::Response> {
    let url = url.as_ref();
    http(url).get(url).send().await
}

/// Runs `cmd` to completion and returns what it printed on stdout; panics
/// with its stderr when it fails (for tests of commands a user runs).
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// POSTs `body` as the signed-in harness user: the status and the JSON
/// answer (`null` when there is none).
pub async fn post_json(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = http(url)
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// Where `.ci/build-ui` installed the npm packages the browser and sign-in
/// tests run (playwright-core, oidc-provider), or `LIFEBOAT_NODE_MODULES`.
pub fn node_modules() -> PathBuf {
    std::env::var("LIFEBOAT_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/lifeboat-ci/npm/node_modules")
        })
}

/// How long a server may take to become ready before the test fails.
pub(crate) const READY_DEADLINE: Duration = Duration::from_secs(60);

/// A port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `N` distinct ports that were free a moment ago: all are held until the
/// last is found, so the system cannot hand out one of them twice.
pub fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let held = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&held) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// A child process killed (and reaped) on drop.
pub struct Guard(pub Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Guard {
    /// Fails with the server's log if it has already exited.
    pub(crate) fn ensure_running(&mut self, what: &str, log: &Path) -> Result<()> {
        if let Some(child) = self.0.as_mut()
            && let Some(status) = child.try_wait()?
        {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{what} exited with {status} before it was ready:\n{log}");
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ S3

/// A running S3-compatible server with one bucket and one key.
pub struct S3Server {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// What the server is, for messages: "garage", "ceph-rgw", or "external".
    pub kind: &'static str,
    _guards: Vec<Guard>,
    _dir: Option<tempfile::TempDir>,
}

impl S3Server {
    /// Starts Garage, or uses the server named by `LIFEBOAT_TEST_S3_ENDPOINT`.
    pub async fn start() -> Result<Self> {
        match Self::external() {
            Some(s) => Ok(s),
            None => Self::start_garage().await,
        }
    }

    /// Starts a throwaway Ceph RGW (one monitor, one memstore OSD, one radosgw), or
    /// uses `LIFEBOAT_TEST_S3_ENDPOINT`. Ceph enforces versioning and object lock.
    pub async fn start_ceph() -> Result<Self> {
        match Self::external() {
            Some(s) => Ok(s),
            None => ceph::start().await,
        }
    }

    fn external() -> Option<Self> {
        let endpoint = std::env::var("LIFEBOAT_TEST_S3_ENDPOINT").ok()?;
        let var = |name: &str, default: &str| {
            std::env::var(format!("LIFEBOAT_TEST_S3_{name}")).unwrap_or_else(|_| default.into())
        };
        Some(Self {
            endpoint,
            region: var("REGION", "us-east-1"),
            bucket: var("BUCKET", "lifeboat-test"),
            access_key_id: var("ACCESS_KEY_ID", ""),
            secret_access_key: var("SECRET_ACCESS_KEY", ""),
            kind: "external",
            _guards: Vec::new(),
            _dir: None,
        })
    }

    async fn start_garage() -> Result<Self> {
        let bin = garage_binary()?;
        let dir = tempfile::tempdir()?;
        let [s3_port, rpc_port, admin_port] = free_ports()?;
        let rpc_secret = random_hex(32);
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc_port}\"\nrpc_secret = \"{rpc_secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin_port}\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
            ),
        )?;
        let access_key_id = format!("GK{}", random_hex(12));
        let secret_access_key = random_hex(32);
        let bucket = "lifeboat-test".to_string();
        let log_path = dir.path().join("garage.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &access_key_id)
            .env("GARAGE_DEFAULT_SECRET_KEY", &secret_access_key)
            .env("GARAGE_DEFAULT_BUCKET", &bucket)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Self {
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            region: "garage".into(),
            bucket,
            access_key_id,
            secret_access_key,
            kind: "garage",
            _guards: vec![Guard(Some(child))],
            _dir: None,
        };
        // Ready when the bucket answers with our key.
        let store = server.store("readiness").await?;
        let started = Instant::now();
        loop {
            server._guards[0].ensure_running("garage", &log_path)?;
            match store.check().await {
                Availability::Available => break,
                Availability::Unavailable { reason } if started.elapsed() > READY_DEADLINE => {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    bail!("garage was not ready after {READY_DEADLINE:?}: {reason}\n{log}");
                }
                Availability::Unavailable { .. } => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        server._dir = Some(dir);
        Ok(server)
    }

    /// Settings for this server's bucket under `prefix`.
    pub fn settings(&self, prefix: &str) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            prefix: prefix.to_string(),
            path_style: true,
            access_key_id: Some(self.access_key_id.clone()),
            secret_access_key: Some(self.secret_access_key.clone()),
            checksum: ChecksumMode::WhenRequired,
            object_lock: None,
        }
    }

    pub async fn store(&self, prefix: &str) -> Result<S3Store> {
        Ok(S3Store::new(self.settings(prefix)).await?)
    }

    /// The environment that makes a `lifeboat` process use this bucket under
    /// `prefix` as its default location, reached at `endpoint` (this server's,
    /// or a proxy's in front of it).
    pub fn serve_env(&self, endpoint: &str, prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("LIFEBOAT_STORAGE_KIND", "s3".to_string()),
            ("LIFEBOAT_S3_ENDPOINT", endpoint.to_string()),
            ("LIFEBOAT_S3_REGION", self.region.clone()),
            ("LIFEBOAT_S3_BUCKET", self.bucket.clone()),
            ("LIFEBOAT_S3_PREFIX", prefix.to_string()),
            ("LIFEBOAT_S3_ACCESS_KEY_ID", self.access_key_id.clone()),
            (
                "LIFEBOAT_S3_SECRET_ACCESS_KEY",
                self.secret_access_key.clone(),
            ),
        ]
    }

    /// Debian's `restic check` of the volume repository under `prefix`, read
    /// straight from this server with the recovery `key`.
    pub fn restic_check(&self, prefix: &str, key: &str, cache: &Path) -> Result<()> {
        let repository = format!("s3:{}/{}/{prefix}/volumes", self.endpoint, self.bucket);
        let out = Command::new("restic")
            .args([
                "-r",
                &repository,
                "-o",
                &format!("s3.region={}", self.region),
            ])
            .args(["check", "--no-lock"])
            .env("RESTIC_PASSWORD", key)
            .env("AWS_ACCESS_KEY_ID", &self.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_access_key)
            .env("RESTIC_CACHE_DIR", cache)
            .output()
            .context("running Debian's restic (apt-get install restic)")?;
        anyhow::ensure!(
            out.status.success(),
            "restic check: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

/// A client for the cluster of a `lifeboat demo` run in `dir`, from the
/// kubeconfig it wrote (rewritten at each start).
pub async fn demo_client(dir: &Path) -> Result<kube::Client> {
    lifeboat::install_crypto_provider();
    let kc = kube::config::Kubeconfig::read_from(dir.join("lifeboat-data/demo.kubeconfig"))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Lifeboat's temporary objects (helper pods, VolumeSnapshots, snapshot
/// claims) in `namespace`, or everywhere, as `Kind namespace/name`: found by
/// their names, so a test does not trust the label it checks.
pub async fn temporaries_by_name(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<String>> {
    use kube::api::{Api, DynamicObject};
    let mut out = Vec::new();
    for (group, kind, plural) in [
        ("", "Pod", "pods"),
        ("", "PersistentVolumeClaim", "persistentvolumeclaims"),
        (
            "snapshot.storage.k8s.io",
            "VolumeSnapshot",
            "volumesnapshots",
        ),
    ] {
        let resource = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(group, "v1", kind),
            plural,
        );
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        for item in api.list(&Default::default()).await?.items {
            let name = item.metadata.name.unwrap_or_default();
            if ["lifeboat-backup-", "lifeboat-restore-", "lifeboat-snap-"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                out.push(format!(
                    "{kind} {}/{name}",
                    item.metadata.namespace.unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

fn garage_binary() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("LIFEBOAT_GARAGE_BIN") {
        return Ok(PathBuf::from(bin));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("garage");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let cached = Path::new(&home).join(".cache/lifeboat-ci/garage-2.5.0/bin/garage");
        if cached.is_file() {
            return Ok(cached);
        }
    }
    bail!(
        "the Garage S3 server was not found. Install it with `.ci/install-garage` (cargo install \
         garage --version 2.5.0 --locked), set LIFEBOAT_GARAGE_BIN to its binary, or point the \
         tests at another S3 server with LIFEBOAT_TEST_S3_ENDPOINT"
    )
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let data: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(data)
}

// ------------------------------------------------------------------ PostgreSQL

/// A running PostgreSQL server; [`Postgres::fresh_database`] gives each test its own database.
pub struct Postgres {
    /// URL of the maintenance database (`postgres`).
    pub url: String,
    _guard: Guard,
    _dir: Option<tempfile::TempDir>,
}

impl Postgres {
    /// Starts a throwaway server, or uses `LIFEBOAT_TEST_DATABASE_URL`.
    pub async fn start() -> Result<Self> {
        if let Ok(url) = std::env::var("LIFEBOAT_TEST_DATABASE_URL") {
            return Ok(Self {
                url,
                _guard: Guard(None),
                _dir: None,
            });
        }
        let bin = postgres_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("lifeboat-pg").tempdir()?;
        let as_root = nix_is_root();
        if as_root {
            // PostgreSQL refuses to run as root: hand the directory to `postgres`.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()?;
            if !status.success() {
                bail!("chown of {} to postgres failed", dir.path().display());
            }
        }
        let run = |program: &Path| {
            if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        let data = dir.path().join("data");
        let out = run(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = free_port()?;
        let log_path = dir.path().join("postgres.log");
        let log = std::fs::File::create(&log_path)?;
        if as_root {
            let _ = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&log_path)
                .status();
        }
        let child = run(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .arg("-k")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        let mut guard = Guard(Some(child));
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let started = Instant::now();
        loop {
            guard.ensure_running("postgres", &log_path)?;
            match sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
            {
                Ok(pool) => {
                    pool.close().await;
                    break;
                }
                Err(e) if started.elapsed() > READY_DEADLINE => {
                    bail!("postgres was not ready after {READY_DEADLINE:?}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(Self {
            url,
            _guard: guard,
            _dir: Some(dir),
        })
    }

    /// Creates an empty database and returns its URL.
    pub async fn fresh_database(&self) -> Result<String> {
        let name = format!("lifeboat_test_{}", uuid::Uuid::new_v4().simple());
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await?;
        pool.close().await;
        let base = self
            .url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .context("database URL has no path")?;
        Ok(format!("{base}/{name}"))
    }
}

fn nix_is_root() -> bool {
    // SAFETY-free: ask `id` rather than pull in libc for one call.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn postgres_bin_dir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("LIFEBOAT_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .filter(|p| p.join("initdb").is_file())
        .context(
            "PostgreSQL server binaries were not found under /usr/lib/postgresql. Install them \
             with `apt-get install postgresql`, or set LIFEBOAT_TEST_DATABASE_URL",
        )
}

/// A plain aws-sdk-s3 client for a test server, for what Lifeboat itself never
/// does (creating buckets, listing multipart uploads).
pub fn raw_client(server: &S3Server) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&server.endpoint)
        .region(Region::new(server.region.clone()))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .credentials_provider(Credentials::new(
            &server.access_key_id,
            &server.secret_access_key,
            None,
            None,
            "lifeboat-tests",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

// ------------------------------------------------------------------ Kubernetes

/// An API server the journeys run against: kubesim, or a genuine
/// kube-apiserver ([`control_plane::ControlPlane`]).
pub trait ApiServer: Send + Sync {
    /// `kubesim` or `kube-apiserver`, as the tests' output names it.
    fn server_name(&self) -> &'static str;
    /// The admin's bearer token.
    fn admin_token(&self) -> &str;
    /// Writes a kubeconfig reaching this server with `token`.
    fn kubeconfig_for(&self, path: &Path, token: &str) -> Result<()>;
}

impl ApiServer for kubesim::Kubesim {
    fn server_name(&self) -> &'static str {
        "kubesim"
    }
    fn admin_token(&self) -> &str {
        &self.token
    }
    fn kubeconfig_for(&self, path: &Path, token: &str) -> Result<()> {
        Ok(self.write_kubeconfig_for(path, token)?)
    }
}

impl ApiServer for control_plane::ControlPlane {
    fn server_name(&self) -> &'static str {
        "kube-apiserver"
    }
    fn admin_token(&self) -> &str {
        &self.token
    }
    fn kubeconfig_for(&self, path: &Path, token: &str) -> Result<()> {
        self.write_kubeconfig_for(path, token)
    }
}

/// kubesim (HTTPS, token, generated CA) and a kube-rs client that reaches it
/// through a kubeconfig, exactly as Lifeboat reaches a real cluster.
pub async fn kubesim(
    options: kubesim::Options,
    demo: bool,
) -> Result<(kubesim::Kubesim, kube::Client)> {
    lifeboat::install_crypto_provider();
    let sim = kubesim::Kubesim::start(options).await?;
    if demo {
        kubesim::seed::apply(&sim.store, kubesim::seed::parse(kubesim::seed::DEMO)?)?;
    }
    let token = sim.token.clone();
    let client = kubesim_client_for(&sim, &token).await?;
    Ok((sim, client))
}

/// A kube-rs client that reaches `sim` through a kubeconfig with `token`
/// (the admin's, or a user made with [`kubesim::Kubesim::issue_token`],
/// authorized through RBAC), exactly as Lifeboat connects.
pub async fn kubesim_client_for(sim: &kubesim::Kubesim, token: &str) -> Result<kube::Client> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig_for(&path, token)?;
    let cluster = lifeboat::cluster::Cluster::connect(Some(&path), None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(cluster.client)
}

/// Runs `kubectl --kubeconfig KUBECONFIG ARGS…` (Debian's, or `$KUBECTL`)
/// and returns what it printed; a failure is an error with its output.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = std::process::Command::new(&bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .with_context(|| {
            format!("running {bin}: install Debian's kubernetes-client (.ci/setup --tests does)")
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        anyhow::bail!(
            "kubectl {args:?} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text)
}

/// Fills a simulator with `namespaces` namespaces of `per_namespace` objects
/// (half ConfigMaps, then Pods, Services and Secrets), for benchmarks.
/// Returns how many objects were created.
pub fn seed_bench_objects(
    store: &kubesim::Store,
    namespaces: usize,
    per_namespace: usize,
) -> Result<usize> {
    use serde_json::json;
    let find = |r: &str| store.find("", "v1", r).context("built-in resource");
    let (ns_rt, cm, pod, svc, secret) = (
        find("namespaces")?,
        find("configmaps")?,
        find("pods")?,
        find("services")?,
        find("secrets")?,
    );
    let mut created = 0;
    let api_err = |e: kubesim::error::ApiError| anyhow::anyhow!("{}", e.message);
    for n in 0..namespaces {
        let ns = format!("team-{n:02}");
        store
            .create(&ns_rt, None, json!({"metadata": {"name": ns}}), false)
            .map_err(api_err)?;
        created += 1;
        for i in 0..per_namespace {
            let labels = json!({"app": format!("app-{}", i % 10)});
            let (rt, obj) = match i * 10 / per_namespace.max(1) {
                0..=4 => (
                    &cm,
                    json!({"metadata": {"name": format!("config-{i}"), "labels": labels},
                    "data": {"settings.yaml": format!("replicas: {i}\nfeature: enabled\nowner: team-{n}\n")}}),
                ),
                5..=7 => (
                    &pod,
                    json!({"metadata": {"name": format!("app-{i}"), "labels": labels},
                    "spec": {"containers": [{"name": "main", "image": "registry.example/app:1.2.3", "ports": [{"containerPort": 8080}]}]}}),
                ),
                8 => (
                    &svc,
                    json!({"metadata": {"name": format!("svc-{i}")}, "spec": {"ports": [{"port": 80}], "selector": labels}}),
                ),
                _ => (
                    &secret,
                    json!({"metadata": {"name": format!("secret-{i}")}, "stringData": {"token": format!("t-{n}-{i}")}}),
                ),
            };
            store.create(rt, Some(&ns), obj, false).map_err(api_err)?;
            created += 1;
        }
    }
    Ok(created)
}

/// kubesim with every controller off, for benchmarks.
pub fn quiet_kubesim() -> kubesim::Options {
    kubesim::Options {
        controllers: kubesim::Controllers::none(),
        ..Default::default()
    }
}

/// A SQLite catalog in `dir` with the `default` storage location registered,
/// and a local-directory store under `dir/backups`.
pub async fn local_catalog(
    dir: &Path,
) -> Result<(lifeboat::catalog::Catalog, lifeboat::storage::DynStore)> {
    let catalog = lifeboat::catalog::Catalog::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("c.db").display()
    ))
    .await?;
    catalog
        .upsert_storage_location("default", "local", &Default::default(), true)
        .await?;
    let store: lifeboat::storage::DynStore =
        std::sync::Arc::new(lifeboat::storage::LocalStore::new(dir.join("backups"))?);
    Ok((catalog, store))
}

/// Lifeboat's HTTP server in this process, against `sim` (through `client`,
/// and the admin's kubeconfig for impersonation), with its watchers
/// started, a SQLite catalog and local backups under `dir`, and sign-in as
/// in production; the harness signs in as the cluster's admin (see
/// [`http`]). Returns its base URL and state; it serves until the test ends.
pub async fn serve_lifeboat(
    client: kube::Client,
    sim: &impl ApiServer,
    dir: &Path,
) -> Result<(String, lifeboat::http::AppState)> {
    let kubeconfig = dir.join("lifeboat.kubeconfig");
    sim.kubeconfig_for(&kubeconfig, sim.admin_token())?;
    let connected = lifeboat::cluster::Cluster::connect(Some(&kubeconfig), None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (catalog, storage) = local_catalog(dir).await?;
    let health = lifeboat::health::watch::ClusterState::start(&client);
    let auth = lifeboat::auth::Auth::new(
        lifeboat::config::AuthConfig::default().settings(),
        Some(client.clone()),
        catalog.clone(),
    );
    let locations = lifeboat::storage::Locations::new(storage);
    let journals = lifeboat::journal::Journals::new(
        catalog.clone(),
        locations.clone(),
        Some(client.clone()),
        lifeboat::schedule::Leadership::Single,
        lifeboat::journal::Settings {
            spool_dir: Some(dir.join("journal-spool")),
            ..Default::default()
        },
    );
    let state = lifeboat::http::AppState {
        catalog,
        locations,
        cluster: std::sync::Arc::new(Ok(lifeboat::cluster::Cluster {
            client,
            ..connected
        })),
        health: Some(health),
        leadership: lifeboat::schedule::Leadership::Single,
        site_dir: lifeboat::http::ui::find_site_dir(None),
        auth,
        journals,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    sign_in_as(&url, sim.admin_token());
    let router = lifeboat::http::router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((url, state))
}

/// This process's resident memory (VmRSS) in MiB, for benchmarks.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// This process's peak resident memory (`VmHWM`) in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The names of the pods of `namespace` named `prefix…`, once `count` of
/// them are Running (as Lifeboat's namespace view shows them).
pub async fn running_pods(
    url: &str,
    namespace: &str,
    prefix: &str,
    count: usize,
) -> Result<Vec<String>> {
    let running = |v: &serde_json::Value| -> Vec<String> {
        v["pods"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["phase"] == "Running")
            .filter_map(|p| p["name"].as_str())
            .filter(|n| n.starts_with(prefix))
            .map(String::from)
            .collect()
    };
    let ns = poll_json(
        &format!("{url}/api/v1/namespaces/{namespace}"),
        std::time::Duration::from_secs(30),
        |v| running(v).len() >= count,
    )
    .await?;
    Ok(running(&ns))
}

/// The environment of a `lifeboat serve` process ([`LifeboatProcess::start`])
/// on `kubeconfig`, keeping its data under `dir/data`.
pub fn serve_env(dir: &Path, kubeconfig: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("LIFEBOAT_KUBECONFIG", kubeconfig.display().to_string()),
        ("LIFEBOAT_DATA_DIR", dir.join("data").display().to_string()),
    ]
}

/// Waits until the continuous schedule `schedule` of the Lifeboat at `url`
/// watches every type it journals; its answer then.
pub async fn journal_current(url: &str, schedule: &str) -> Result<serde_json::Value> {
    poll_json(
        &format!("{url}/api/v1/schedules/{schedule}"),
        std::time::Duration::from_secs(60),
        |s| {
            let j = &s["journal"];
            j["resourceTypes"].as_u64().is_some_and(|n| n > 0)
                && j["currentTypes"] == j["resourceTypes"]
        },
    )
    .await
}

/// The password seeded in the demo's `web-db-credentials` Secret (long
/// enough to search for in what must not hold it).
pub async fn secret_value_of_demo(client: &kube::Client) -> String {
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "shop");
    let secret = secrets
        .get("web-db-credentials")
        .await
        .expect("the demo's Secret");
    let bytes = secret.data.unwrap_or_default()["password"].0.clone();
    let value = String::from_utf8(bytes).expect("a text password");
    assert!(
        value.len() >= 6,
        "the demo password is too short to search for"
    );
    value
}

/// Polls `url` (JSON) until `done` holds for it, or fails after `within`
/// with the last answer. Returns that answer.
pub async fn poll_json(
    url: &str,
    within: std::time::Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let answer: serde_json::Value = match get(url).await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(e) => serde_json::json!({"unreachable": e.to_string()}),
        };
        if done(&answer) {
            return Ok(answer);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{url} never answered as expected within {within:?}; last: {answer}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A server-sent event stream read event by event.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

/// One server-sent event: its name (`message` when unnamed), id and data.
#[derive(Debug)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<u64>,
    pub data: String,
}

impl SseStream {
    pub async fn open(url: &str, last_event_id: Option<u64>) -> Result<Self> {
        let mut request = http(url).get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await?.error_for_status()?;
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next event for which `wanted` holds, skipping others; fails after `within`.
    pub async fn next_matching(
        &mut self,
        within: Duration,
        wanted: impl Fn(&SseEvent) -> bool,
    ) -> Result<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    raw.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_string())
                };
                let event = SseEvent {
                    event: field("event:").unwrap_or_else(|| "message".into()),
                    id: field("id:").and_then(|v| v.parse().ok()),
                    data: field("data:").unwrap_or_default(),
                };
                if wanted(&event) {
                    return Ok(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .map_err(|_| anyhow::anyhow!("no matching event within {within:?}"))??
                .context("the stream ended")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// The `lifeboat` binary of this build (`cargo test --workspace` builds it
/// next to the test binaries), or `LIFEBOAT_BIN`.
pub fn lifeboat_bin() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("LIFEBOAT_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/lifeboat
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("lifeboat"))
        .context("test binary has no parent directory")?;
    if !bin.is_file() {
        bail!(
            "{} does not exist; build it with `cargo build -p lifeboat` (cargo test --workspace does), or set LIFEBOAT_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// Runs one phase of the browser journeys (`tests/ui/dashboard.cjs`) in
/// headless Chromium against the Lifeboat at `url`, signing in with
/// `sign_in` (a one-time URL or a token); panics with its output when a
/// step fails. Screenshots go to `target/ui-screenshots/`.
pub fn run_browser(phase: &str, url: &str, spare_dir: &Path, sign_in: &str) {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let shots = workspace.join("target/ui-screenshots");
    let out = Command::new("node")
        .arg(workspace.join("tests/ui/dashboard.cjs"))
        .args([phase, url])
        .arg(&shots)
        .arg(spare_dir)
        .arg(sign_in)
        .env("NODE_PATH", node_modules())
        .output()
        .expect("node (Node.js) is needed for the browser tests: run .ci/build-ui");
    assert!(
        out.status.success(),
        "browser phase {phase} failed (screenshot in {}):\n{}{}",
        shots.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `lifeboat serve` process, killed (SIGKILL) when dropped.
pub struct LifeboatProcess {
    pub url: String,
    /// The one-time sign-in URL `lifeboat demo` printed.
    pub sign_in_url: Option<String>,
    child: Option<Child>,
}

/// The bearer token of a kubeconfig's current user.
pub fn kubeconfig_token(path: &Path) -> Option<String> {
    lifeboat::cluster::kubeconfig_token(&kube::config::Kubeconfig::read_from(path).ok()?)
}

impl LifeboatProcess {
    /// Starts `lifeboat serve --listen 127.0.0.1:0` in `dir` with `env` and
    /// waits for its "listening" line. With `LIFEBOAT_KUBECONFIG` in `env`,
    /// the harness signs in with that kubeconfig's token (as the CLI would).
    pub fn start(dir: &Path, env: &[(&str, String)]) -> Result<Self> {
        Self::start_command(dir, "serve", env)
    }

    /// `lifeboat demo` (kubesim's demo cluster and the server against it).
    pub fn start_demo(dir: &Path, env: &[(&str, String)]) -> Result<Self> {
        Self::start_command(dir, "demo", env)
    }

    fn start_command(dir: &Path, command: &str, env: &[(&str, String)]) -> Result<Self> {
        Self::start_binary(&lifeboat_bin()?, dir, command, env)
    }

    /// `bin command --listen 127.0.0.1:0` in `dir` with `env` (and nothing
    /// of the harness's LIFEBOAT_SITE_DIR): another build of lifeboat, such
    /// as the release archive's.
    pub fn start_binary(
        bin: &Path,
        dir: &Path,
        command: &str,
        env: &[(&str, String)],
    ) -> Result<Self> {
        use std::io::BufRead;
        // A fixed address comes in `env` (LIFEBOAT_LISTEN); otherwise any free port.
        let listen: &[&str] = if env.iter().any(|(k, _)| *k == "LIFEBOAT_LISTEN") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(bin)
            .arg(command)
            .args(listen)
            .current_dir(dir)
            .env_remove("LIFEBOAT_SITE_DIR")
            .env("LIFEBOAT_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut reader = std::io::BufReader::new(stdout);
        let mut url = None;
        let mut sign_in_url = None;
        let mut seen = Vec::new();
        for _ in 0..10 {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            if let Some(u) = line.trim().strip_prefix("lifeboat listening on ") {
                url = Some(u.to_string());
                break;
            }
            if let Some((_, u)) = line
                .trim()
                .split_once("sign in (once, within 10 minutes): ")
            {
                sign_in_url = Some(u.to_string());
            }
            seen.push(line);
        }
        let Some(url) = url else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("lifeboat {command} did not start: {seen:?}");
        };
        let kubeconfig = env
            .iter()
            .find(|(k, _)| *k == "LIFEBOAT_KUBECONFIG")
            .map(|(_, v)| PathBuf::from(v))
            .or_else(|| (command == "demo").then(|| dir.join("lifeboat-data/demo.kubeconfig")));
        if let Some(token) = kubeconfig.as_deref().and_then(kubeconfig_token) {
            sign_in_as(&url, &token);
        }
        Ok(Self {
            url: url.to_string(),
            sign_in_url,
            child: Some(child),
        })
    }

    /// The process id (for reading its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills it at once, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LifeboatProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
