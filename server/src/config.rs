//! Effective configuration: embedded defaults, then `lifeboat.toml`, then
//! `LIFEBOAT_*` environment variables, then command-line flags, each layer
//! overriding the one before. Unknown keys are errors, never ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::storage::ChecksumMode;

pub use crate::secret::{Secret, mask_url_password};

/// How logs are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text for a person when stderr is a terminal, JSON for a collector otherwise.
    #[default]
    Auto,
    Json,
    Text,
}

impl LogFormat {
    /// `Json` or `Text`: `Auto` decided by whether stderr is a terminal.
    pub fn resolved(self) -> Self {
        use std::io::IsTerminal;
        match self {
            Self::Auto if std::io::stderr().is_terminal() => Self::Text,
            Self::Auto => Self::Json,
            other => other,
        }
    }

    /// As the configuration and `LIFEBOAT_LOG_FORMAT` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Json => "json",
            Self::Text => "text",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Local,
    S3,
}

/// How a location's archives are stored: encrypted to its key (the
/// default), or in the clear, only by this explicit choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveEncryption {
    #[default]
    Age,
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite catalog and, by default, backups live.
    pub data_dir: PathBuf,
    /// Address of the web UI and JSON API.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`; default: `sqlite://<data_dir>/lifeboat.db`.
    pub database_url: Option<Secret>,
    /// Kubeconfig file; default: `$KUBECONFIG`, `~/.kube/config`, or the in-cluster ServiceAccount.
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context; default: the current context.
    pub kube_context: Option<String>,
    pub log_format: LogFormat,
    /// The default storage location, named `default` in the catalog.
    pub storage: StorageConfig,
    /// Who runs schedules and garbage collection when several replicas share PostgreSQL.
    pub scheduler: SchedulerConfig,
    /// Continuous protection's change journal: how segments are cut and
    /// how much waits while storage is down.
    pub journal: JournalConfig,
    /// Sign-in: every route but health, assets and sign-in needs a principal.
    pub auth: AuthConfig,
    /// HTTPS on the listener.
    pub tls: TlsConfig,
    /// The browser bundle (`pkg/lifeboat.js`, `pkg/lifeboat_bg.wasm`); default:
    /// `site/` next to the binary or one directory up (where `.ci/build-ui` puts it).
    pub site_dir: Option<PathBuf>,
}

/// HTTPS on Lifeboat's listener: PEM files, read again when they change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The certificate chain (PEM), e.g. `tls.crt` of a cert-manager Secret.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
}

/// Sign-in through the cluster: bearer tokens checked with TokenReview,
/// browser sessions, permissions checked with SubjectAccessReview.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Turns sign-in off: anyone who reaches the port may do anything. Only
    /// for a laptop; it is logged loudly and `/readyz` reports it.
    pub disabled: bool,
    /// Audiences a token must be issued for (`kubectl create token --audience`);
    /// default: the API server's own.
    pub audiences: Vec<String>,
    /// How long a token's or a permission's answer is reused (seconds).
    pub cache_seconds: u64,
    /// How long a browser session lasts (minutes).
    pub session_minutes: u64,
    /// Mark the session cookie `Secure` (set when Lifeboat is reached over HTTPS).
    pub secure_cookies: bool,
    /// Browser sign-in with an OpenID Connect provider.
    pub oidc: Option<OidcConfig>,
}

/// `[auth.oidc]`: the authorization code flow with PKCE against `issuer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// The provider's issuer URL (discovery is `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// `<Lifeboat's external URL>/login/oidc/callback`, as registered with the provider.
    pub redirect_url: String,
    pub scopes: Vec<String>,
    /// The claim that names the user (Kubernetes' `--oidc-username-claim`).
    pub username_claim: String,
    /// The claim that lists their groups (`--oidc-groups-claim`).
    pub groups_claim: String,
    /// Put before usernames (`oidc:`), as `--oidc-username-prefix` does.
    pub username_prefix: String,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: None,
            redirect_url: String::new(),
            scopes: vec!["openid".into(), "email".into(), "groups".into()],
            username_claim: "email".into(),
            groups_claim: "groups".into(),
            username_prefix: String::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            disabled: false,
            audiences: Vec::new(),
            cache_seconds: 10,
            session_minutes: 480,
            secure_cookies: false,
            oidc: None,
        }
    }
}

impl AuthConfig {
    pub fn settings(&self) -> crate::auth::AuthSettings {
        crate::auth::AuthSettings {
            disabled: self.disabled,
            audiences: self.audiences.clone(),
            cache_for: std::time::Duration::from_secs(self.cache_seconds),
            session_ttl: std::time::Duration::from_secs(self.session_minutes.max(1) * 60),
            secure_cookies: self.secure_cookies,
            oidc: self.oidc.as_ref().map(|o| crate::auth::oidc::OidcSettings {
                issuer: o.issuer.clone(),
                client_id: o.client_id.clone(),
                client_secret: o
                    .client_secret
                    .as_ref()
                    .map(|s| s.expose().to_string())
                    .unwrap_or_default(),
                redirect_url: o.redirect_url.clone(),
                scopes: o.scopes.clone(),
                username_claim: o.username_claim.clone(),
                groups_claim: o.groups_claim.clone(),
                username_prefix: o.username_prefix.clone(),
            }),
        }
    }
}

/// With PostgreSQL, only the holder of a `coordination.k8s.io/v1` Lease runs
/// schedules and GC; with SQLite (one replica) the server simply runs them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// This replica's identity in the Lease; default: `$HOSTNAME` (the pod name) plus a random suffix.
    pub replica_id: Option<String>,
    /// Namespace of the Lease; default: the ServiceAccount's namespace in a pod, else `default`.
    pub lease_namespace: Option<String>,
    /// Name of the Lease.
    pub lease_name: String,
    /// How long a leader that stopped renewing keeps the Lease (seconds).
    pub lease_duration_seconds: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            replica_id: None,
            lease_namespace: None,
            lease_name: "lifeboat-scheduler".into(),
            lease_duration_seconds: 15,
        }
    }
}

/// The change journal of schedules with continuous protection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// A segment is written at least this often when anything changed (seconds).
    pub segment_seconds: u64,
    /// … or once it holds this many MiB of entries (uncompressed).
    pub segment_mib: u64,
    /// Written segments kept in memory while storage is down (MiB) …
    pub buffer_mib: u64,
    /// … then on local disk under `<data_dir>/journal-spool/` (MiB); past
    /// that the oldest are dropped and recorded as a gap.
    pub spool_mib: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            segment_seconds: 300,
            segment_mib: 8,
            buffer_mib: 64,
            spool_mib: 1024,
        }
    }
}

impl JournalConfig {
    /// The writer's settings; the spool lives under `data_dir`.
    pub fn settings(&self, data_dir: &std::path::Path) -> crate::journal::Settings {
        crate::journal::Settings {
            segment_every: std::time::Duration::from_secs(self.segment_seconds.max(1)),
            segment_bytes: (self.segment_mib.max(1) << 20) as usize,
            buffer_bytes: (self.buffer_mib << 20) as usize,
            spool_bytes: self.spool_mib << 20,
            spool_dir: Some(data_dir.join("journal-spool")),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub kind: StorageKind,
    /// `age` (default) or `none`: archives written in the clear, unsigned.
    pub encryption: ArchiveEncryption,
    /// For `local`: the directory; default `<data_dir>/backups`.
    pub path: Option<PathBuf>,
    pub s3: S3Config,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub checksum: ChecksumMode,
    /// An immutable bucket: every backup's objects are locked with S3 Object
    /// Lock in this mode (`governance` or `compliance`) until it expires. The
    /// bucket must have been created with object lock.
    pub object_lock: Option<crate::storage::LockMode>,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            checksum: ChecksumMode::WhenRequired,
            object_lock: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./lifeboat-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            kubeconfig: None,
            kube_context: None,
            log_format: LogFormat::Auto,
            storage: StorageConfig::default(),
            scheduler: SchedulerConfig::default(),
            journal: JournalConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            site_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read the configuration file {path}: {source}. Fix the path given with --config / LIFEBOAT_CONFIG, or remove it to use the defaults."
    )]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the configuration file {path} is not valid: {message}Fix or remove that key; `lifeboat config show` prints every valid key with its current value."
    )]
    File { path: String, message: String },
    #[error("{source_name} is not valid: {message}. {hint}")]
    Value {
        source_name: String,
        message: String,
        hint: String,
    },
    #[error(
        "the configuration is not valid: {message}Fix it in lifeboat.toml, LIFEBOAT_* or the flags; `lifeboat config show` prints every valid key."
    )]
    Merged { message: String },
}

/// Every environment variable Lifeboat reads, with the key it sets.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("LIFEBOAT_DATA_DIR", "data_dir"),
    ("LIFEBOAT_LISTEN", "listen"),
    ("LIFEBOAT_DATABASE_URL", "database_url"),
    ("LIFEBOAT_KUBECONFIG", "kubeconfig"),
    ("LIFEBOAT_KUBE_CONTEXT", "kube_context"),
    ("LIFEBOAT_LOG_FORMAT", "log_format"),
    ("LIFEBOAT_STORAGE_KIND", "storage.kind"),
    ("LIFEBOAT_STORAGE_PATH", "storage.path"),
    ("LIFEBOAT_STORAGE_ENCRYPTION", "storage.encryption"),
    ("LIFEBOAT_S3_ENDPOINT", "storage.s3.endpoint"),
    ("LIFEBOAT_S3_REGION", "storage.s3.region"),
    ("LIFEBOAT_S3_BUCKET", "storage.s3.bucket"),
    ("LIFEBOAT_S3_PREFIX", "storage.s3.prefix"),
    ("LIFEBOAT_S3_PATH_STYLE", "storage.s3.path_style"),
    ("LIFEBOAT_S3_ACCESS_KEY_ID", "storage.s3.access_key_id"),
    (
        "LIFEBOAT_S3_SECRET_ACCESS_KEY",
        "storage.s3.secret_access_key",
    ),
    ("LIFEBOAT_S3_CHECKSUM", "storage.s3.checksum"),
    ("LIFEBOAT_S3_OBJECT_LOCK", "storage.s3.object_lock"),
    ("LIFEBOAT_SITE_DIR", "site_dir"),
    ("LIFEBOAT_REPLICA_ID", "scheduler.replica_id"),
    ("LIFEBOAT_LEASE_NAMESPACE", "scheduler.lease_namespace"),
    ("LIFEBOAT_LEASE_NAME", "scheduler.lease_name"),
    (
        "LIFEBOAT_LEASE_DURATION_SECONDS",
        "scheduler.lease_duration_seconds",
    ),
    ("LIFEBOAT_AUTH_DISABLED", "auth.disabled"),
    ("LIFEBOAT_OIDC_ISSUER", "auth.oidc.issuer"),
    ("LIFEBOAT_OIDC_CLIENT_ID", "auth.oidc.client_id"),
    ("LIFEBOAT_OIDC_CLIENT_SECRET", "auth.oidc.client_secret"),
    ("LIFEBOAT_OIDC_REDIRECT_URL", "auth.oidc.redirect_url"),
    ("LIFEBOAT_TLS_CERT_FILE", "tls.cert_file"),
    ("LIFEBOAT_TLS_KEY_FILE", "tls.key_file"),
    ("LIFEBOAT_AUTH_SECURE_COOKIES", "auth.secure_cookies"),
];

/// Variables with the prefix that are not configuration keys.
const ENV_NOT_KEYS: &[&str] = &[
    "LIFEBOAT_CONFIG",
    "LIFEBOAT_LOG",
    "LIFEBOAT_SERVER",
    "LIFEBOAT_TOKEN",
];

/// Builds the effective configuration.
///
/// * `file`: an explicit file path (must exist) or `None` to use `./lifeboat.toml` if present;
/// * `env`: the process environment (passed in so tests need not touch the real one);
/// * `flags`: `(key, value)` pairs from the command line, highest precedence.
pub fn load(
    file: Option<&Path>,
    env: &[(String, String)],
    flags: &[(&str, String)],
) -> Result<Config, ConfigError> {
    let mut merged = toml::Table::new();

    let (path, required) = match file {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from("lifeboat.toml"), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            // Check the file alone first, so its errors name the file and the line.
            toml::from_str::<Config>(&text).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            merged = table;
        }
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            });
        }
    }

    for (name, value) in env {
        if !name.starts_with("LIFEBOAT_")
            || name.starts_with("LIFEBOAT_TEST_")
            || ENV_NOT_KEYS.contains(&name.as_str())
        {
            continue;
        }
        let Some((_, key)) = ENV_KEYS.iter().find(|(n, _)| n == name) else {
            let known: Vec<&str> = ENV_KEYS.iter().map(|(n, _)| *n).collect();
            return Err(ConfigError::Value {
                source_name: format!("environment variable {name}"),
                message: "it is not a Lifeboat setting".into(),
                hint: format!("Unset it, or use one of: {}.", known.join(", ")),
            });
        };
        set_key(
            &mut merged,
            key,
            value,
            &format!("environment variable {name}"),
        )?;
    }
    for (key, value) in flags {
        set_key(&mut merged, key, value, &format!("flag for `{key}`"))?;
    }

    // Through text, so that a bad value is reported with its key and line.
    let text = toml::to_string(&merged).map_err(|e| ConfigError::Merged {
        message: e.to_string(),
    })?;
    let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Merged {
        message: e.to_string(),
    })?;
    config.validate()?;
    Ok(config)
}

/// Sets a dotted key in a table from a string, typed the way the key expects.
fn set_key(
    table: &mut toml::Table,
    dotted: &str,
    raw: &str,
    source_name: &str,
) -> Result<(), ConfigError> {
    let boolean = ["path_style", "auth.disabled", "auth.secure_cookies"];
    let value = if boolean.iter().any(|b| dotted.ends_with(b)) {
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => toml::Value::Boolean(true),
            "false" | "0" | "no" => toml::Value::Boolean(false),
            _ => {
                return Err(ConfigError::Value {
                    source_name: source_name.into(),
                    message: format!("`{raw}` is not a boolean"),
                    hint: "Use true or false.".into(),
                });
            }
        }
    } else if dotted.ends_with("_seconds") {
        match raw.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => {
                return Err(ConfigError::Value {
                    source_name: source_name.into(),
                    message: format!("`{raw}` is not a whole number of seconds"),
                    hint: "Use a number such as 15.".into(),
                });
            }
        }
    } else {
        toml::Value::String(raw.to_string())
    };
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts.pop().unwrap_or(dotted);
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            unreachable!("just made a table")
        };
        current = next;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

impl Config {
    /// Checks what serde cannot: URL shapes and required combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name: &str, message: String, hint: &str| ConfigError::Value {
            source_name: format!("setting `{name}`"),
            message,
            hint: hint.to_string(),
        };
        if let Some(o) = &self.auth.oidc {
            for (field, value) in [
                ("issuer", &o.issuer),
                ("client_id", &o.client_id),
                ("redirect_url", &o.redirect_url),
            ] {
                if value.is_empty() {
                    return Err(invalid(
                        &format!("auth.oidc.{field}"),
                        "is required for OpenID Connect sign-in".into(),
                        "Set issuer, client_id, client_secret and redirect_url together (LIFEBOAT_OIDC_*), or remove [auth.oidc].",
                    ));
                }
            }
            for (field, value) in [("issuer", &o.issuer), ("redirect_url", &o.redirect_url)] {
                if url::Url::parse(value).is_err() {
                    return Err(invalid(
                        &format!("auth.oidc.{field}"),
                        format!("`{value}` is not a URL"),
                        "Example: https://lifeboat.example.com/login/oidc/callback",
                    ));
                }
            }
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(invalid(
                "tls",
                "cert_file and key_file go together".into(),
                "Set both (LIFEBOAT_TLS_CERT_FILE and LIFEBOAT_TLS_KEY_FILE) for HTTPS, or neither for HTTP.",
            ));
        }
        if let Some(url) = &self.database_url {
            let url = url.expose();
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(invalid(
                    "database_url",
                    "it must start with sqlite:, postgres:// or postgresql://".into(),
                    "Example: postgres://lifeboat:PASSWORD@db.example:5432/lifeboat, or leave it unset for the embedded SQLite catalog.",
                ));
            }
            if url.starts_with("postgres") {
                url::Url::parse(url).map_err(|e| {
                    invalid(
                        "database_url",
                        format!("it is not a valid URL ({e})"),
                        "Example: postgres://lifeboat:PASSWORD@db.example:5432/lifeboat.",
                    )
                })?;
            }
        }
        if !(5..=3600).contains(&self.scheduler.lease_duration_seconds) {
            return Err(invalid(
                "scheduler.lease_duration_seconds",
                format!("{} is out of range", self.scheduler.lease_duration_seconds),
                "Use 5 to 3600 seconds; 15 is Kubernetes' usual choice.",
            ));
        }
        if self.storage.kind == StorageKind::S3 {
            let s3 = &self.storage.s3;
            if s3.bucket.is_empty() {
                return Err(invalid(
                    "storage.s3.bucket",
                    "it is empty, and storage.kind is s3".into(),
                    "Set the bucket name (LIFEBOAT_S3_BUCKET), or use storage.kind = \"local\".",
                ));
            }
            if let Some(endpoint) = &s3.endpoint {
                let parsed = url::Url::parse(endpoint).map_err(|e| {
                    invalid(
                        "storage.s3.endpoint",
                        format!("`{endpoint}` is not a valid URL ({e})"),
                        "Example: https://s3.example.com or http://127.0.0.1:3900.",
                    )
                })?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                    return Err(invalid(
                        "storage.s3.endpoint",
                        format!("`{endpoint}` must be an http:// or https:// URL with a host"),
                        "Example: https://s3.example.com or http://127.0.0.1:3900.",
                    ));
                }
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                return Err(invalid(
                    "storage.s3.access_key_id / secret_access_key",
                    "only one of the two is set".into(),
                    "Set both, or neither to use the AWS default credential chain (AWS_ACCESS_KEY_ID, profiles).",
                ));
            }
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_string(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("lifeboat.db").display()
            ),
        }
    }

    pub fn local_storage_path(&self) -> PathBuf {
        self.storage
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }

    /// The configuration as TOML, secrets masked (passwords in URLs included).
    pub fn to_masked_toml(&self) -> String {
        let mut value =
            toml::Value::try_from(self).unwrap_or(toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = &mut value {
            t.insert(
                "database_url".into(),
                toml::Value::String(mask_url_password(&self.database_url())),
            );
        }
        toml::to_string_pretty(&value).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        assert!(
            load(Some(&missing), &[], &[]).is_err(),
            "an explicit missing file is an error"
        );
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.local_storage_path(),
            PathBuf::from("./lifeboat-data/backups")
        );
        assert!(
            c.database_url()
                .starts_with("sqlite://./lifeboat-data/lifeboat.db")
        );
    }

    #[test]
    fn later_layers_override_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lifeboat.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from-file\"\nlisten = \"127.0.0.1:1111\"\n[storage.s3]\nregion = \"file-region\"\n",
        )
        .unwrap();
        let c = load(
            Some(&file),
            &env(&[
                ("LIFEBOAT_LISTEN", "127.0.0.1:2222"),
                ("LIFEBOAT_S3_REGION", "env-region"),
                ("HOME", "/x"),
            ]),
            &[("listen", "127.0.0.1:3333".into())],
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from-file"));
        assert_eq!(c.listen.port(), 3333);
        assert_eq!(c.storage.s3.region, "env-region");
        // Sign-in is on unless turned off explicitly.
        assert!(!c.auth.disabled);
        let off = load(None, &env(&[("LIFEBOAT_AUTH_DISABLED", "true")]), &[]).unwrap();
        assert!(off.auth.disabled);
        assert!(load(None, &env(&[("LIFEBOAT_AUTH_DISABLED", "maybe")]), &[]).is_err());
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lifeboat.toml");
        std::fs::write(&file, "[storage]\nbukcet = \"x\"\n").unwrap();
        let err = load(Some(&file), &[], &[]).unwrap_err().to_string();
        assert!(err.contains("bukcet"), "{err}");
        assert!(err.contains("lifeboat.toml"), "{err}");

        let err = load(Some(&dir.path().join("none")), &[], &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));

        std::fs::write(&file, "").unwrap();
        let err = load(Some(&file), &env(&[("LIFEBOAT_BUKCET", "x")]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("LIFEBOAT_BUKCET") && err.contains("LIFEBOAT_S3_BUCKET"),
            "{err}"
        );
    }

    #[test]
    fn malformed_values_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lifeboat.toml");
        std::fs::write(&file, "").unwrap();
        let cases = [
            (vec![("LIFEBOAT_LISTEN", "localhost")], "listen"),
            (vec![("LIFEBOAT_DATABASE_URL", "mysql://x")], "database_url"),
            (
                vec![
                    ("LIFEBOAT_STORAGE_KIND", "s3"),
                    ("LIFEBOAT_S3_BUCKET", "b"),
                    ("LIFEBOAT_S3_ENDPOINT", "not a url"),
                ],
                "storage.s3.endpoint",
            ),
            (vec![("LIFEBOAT_STORAGE_KIND", "s3")], "storage.s3.bucket"),
            (
                vec![("LIFEBOAT_S3_PATH_STYLE", "maybe")],
                "LIFEBOAT_S3_PATH_STYLE",
            ),
        ];
        for (vars, needle) in cases {
            let err = load(Some(&file), &env(&vars), &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{vars:?}: {err}");
        }
    }

    #[test]
    fn secrets_are_masked_when_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lifeboat.toml");
        std::fs::write(&file, "").unwrap();
        let c = load(
            Some(&file),
            &env(&[
                ("LIFEBOAT_DATABASE_URL", "postgres://lb:hunter2@db:5432/lb"),
                ("LIFEBOAT_S3_ACCESS_KEY_ID", "GKvisible"),
                ("LIFEBOAT_S3_SECRET_ACCESS_KEY", "topsecretvalue"),
            ]),
            &[],
        )
        .unwrap();
        let shown = c.to_masked_toml();
        assert!(
            !shown.contains("hunter2") && !shown.contains("topsecretvalue"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://lb:********@db:5432/lb"),
            "{shown}"
        );
        assert!(shown.contains("GKvisible"));
        assert!(!format!("{c:?}").contains("topsecretvalue"));
        assert_eq!(
            c.storage.s3.secret_access_key.as_ref().unwrap().expose(),
            "topsecretvalue"
        );
    }
}
