//! Storage locations: `default` comes from the configuration; more are added
//! through the API (a local directory or an S3 bucket). Their settings live in
//! the catalog's `storage_locations` (never secret values), their static
//! credentials in `storage_credentials`, which no API response reads.
//!
//! [`Locations`] is the live registry: the open store of every location, by
//! name, shared by the HTTP handlers, the backup and restore engines, the
//! scheduler and the catalog sync.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use super::{DynStore, LocalStore, LockMode, S3Settings, S3Store, StorageError};
use crate::secret::Secret;
pub use frontend::model::LocationSettings;

/// The location every backup uses unless its spec names another.
pub const DEFAULT: &str = "default";

/// The open store of every location.
#[derive(Clone)]
pub struct Locations {
    stores: Arc<RwLock<BTreeMap<String, DynStore>>>,
}

impl Locations {
    /// A registry with `default` only.
    pub fn new(default: DynStore) -> Self {
        let stores = BTreeMap::from([(DEFAULT.to_string(), default)]);
        Self {
            stores: Arc::new(RwLock::new(stores)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, DynStore>> {
        self.stores.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn default_store(&self) -> DynStore {
        match self.get(DEFAULT) {
            Some(store) => store,
            None => unreachable!("`default` is never removed"),
        }
    }

    pub fn get(&self, name: &str) -> Option<DynStore> {
        self.read().get(name).cloned()
    }

    /// The store of `name`, or an error saying the location is not known here.
    pub fn require(&self, name: &str) -> Result<DynStore, StorageError> {
        self.get(name).ok_or_else(|| StorageError::LocationNotOpen {
            name: name.to_string(),
        })
    }

    pub fn insert(&self, name: &str, store: DynStore) {
        self.stores
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), store);
    }

    /// Forgets a location (never `default`).
    pub fn remove(&self, name: &str) {
        if name != DEFAULT {
            self.stores
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
        }
    }

    /// Every location, `default` included, by name.
    pub fn all(&self) -> Vec<(String, DynStore)> {
        self.read()
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect()
    }
}

/// What `POST /api/v1/storage-locations` takes.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocationSpec {
    pub name: String,
    /// `local` or `s3`.
    pub kind: String,
    /// `local`: an absolute directory on the server.
    #[serde(default)]
    pub path: Option<String>,
    /// `s3`: `http(s)://host:port`; empty for AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    /// Path-style addressing (MinIO, Garage, Ceph); true unless said otherwise.
    #[serde(default)]
    pub path_style: Option<bool>,
    /// Static credentials; without them the AWS default chain of the server is used.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub secret_access_key: Option<Secret>,
    /// `age` (the default: archives encrypted to the location's key) or
    /// `none` (in the clear and unsigned: only by this explicit choice).
    #[serde(default)]
    pub encryption: Option<String>,
    /// `s3`: lock every backup's objects with S3 Object Lock until it
    /// expires; refused unless the bucket has object lock enabled.
    #[serde(default)]
    pub immutable: Option<bool>,
    /// With `immutable`: `governance` (the default) or `compliance`.
    #[serde(default)]
    pub lock_mode: Option<String>,
}

/// A field of a location that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LocationError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> LocationError {
    LocationError {
        field,
        message: message.into(),
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl LocationSpec {
    /// Checks every field, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), LocationError> {
        let n = &self.name;
        let name_ok = !n.is_empty()
            && n.len() <= 63
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && n.starts_with(|c: char| c.is_ascii_alphanumeric())
            && n.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !name_ok {
            return Err(invalid(
                "name",
                format!(
                    "`{n}` must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit"
                ),
            ));
        }
        if let Some(encryption) = non_empty(&self.encryption)
            && !matches!(encryption, "age" | "none")
        {
            return Err(invalid(
                "encryption",
                format!("`{encryption}` is not a choice; use `age` (the default) or `none`"),
            ));
        }
        if let Some(mode) = non_empty(&self.lock_mode) {
            if LockMode::parse(mode).is_none() {
                return Err(invalid(
                    "lockMode",
                    format!(
                        "`{mode}` is not a mode; use `governance` (the default) or `compliance`"
                    ),
                ));
            }
            if self.immutable != Some(true) {
                return Err(invalid("lockMode", "a lock mode needs `immutable: true`"));
            }
        }
        if self.immutable == Some(true) && self.kind != "s3" {
            return Err(invalid(
                "immutable",
                "only an S3 bucket with object lock can be immutable; a local directory cannot",
            ));
        }
        match self.kind.as_str() {
            "local" => {
                let path = non_empty(&self.path)
                    .ok_or_else(|| invalid("path", "a local location needs a directory"))?;
                if !std::path::Path::new(path).is_absolute() {
                    return Err(invalid(
                        "path",
                        format!("`{path}` must be an absolute path on the server"),
                    ));
                }
            }
            "s3" => {
                if non_empty(&self.bucket).is_none() {
                    return Err(invalid("bucket", "an S3 location needs a bucket"));
                }
                if let Some(endpoint) = non_empty(&self.endpoint)
                    && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                {
                    return Err(invalid(
                        "endpoint",
                        format!("`{endpoint}` must start with http:// or https://"),
                    ));
                }
                let secret = self
                    .secret_access_key
                    .as_ref()
                    .is_some_and(|s| !s.expose().is_empty());
                match (non_empty(&self.access_key_id).is_some(), secret) {
                    (true, false) => {
                        return Err(invalid(
                            "secretAccessKey",
                            "an access key id needs its secret access key",
                        ));
                    }
                    (false, true) => {
                        return Err(invalid(
                            "accessKeyId",
                            "a secret access key needs its access key id",
                        ));
                    }
                    _ => {}
                }
            }
            other => {
                return Err(invalid(
                    "kind",
                    format!("`{other}` is not a kind of location; use `local` or `s3`"),
                ));
            }
        }
        Ok(())
    }

    /// The settings the catalog keeps and the API shows: no secret values.
    pub fn settings(&self) -> LocationSettings {
        let mut settings = self.place();
        if non_empty(&self.encryption) == Some("none") {
            settings.encryption = Some("none".into());
        }
        settings.object_lock = self.lock().map(|mode| mode.as_str().into());
        settings
    }

    /// The object lock mode, for an immutable location.
    pub fn lock(&self) -> Option<LockMode> {
        (self.immutable == Some(true))
            .then(|| non_empty(&self.lock_mode).and_then(LockMode::parse))
            .map(|mode| mode.unwrap_or(LockMode::Governance))
    }

    fn place(&self) -> LocationSettings {
        let text = |v: &Option<String>| non_empty(v).map(String::from);
        match self.kind.as_str() {
            "local" => LocationSettings {
                path: text(&self.path),
                ..Default::default()
            },
            _ => LocationSettings {
                endpoint: text(&self.endpoint),
                region: Some(self.region()),
                bucket: text(&self.bucket),
                prefix: Some(text(&self.prefix).unwrap_or_default()),
                path_style: Some(self.path_style.unwrap_or(true)),
                credentials: Some(
                    if self.credentials().is_some() {
                        "static"
                    } else {
                        "aws-default-chain"
                    }
                    .into(),
                ),
                ..Default::default()
            },
        }
    }

    fn region(&self) -> String {
        non_empty(&self.region).unwrap_or("us-east-1").to_string()
    }

    /// The static credentials, when given.
    pub fn credentials(&self) -> Option<(String, String)> {
        let id = non_empty(&self.access_key_id)?;
        let secret = self.secret_access_key.as_ref()?.expose();
        (!secret.is_empty()).then(|| (id.to_string(), secret.to_string()))
    }

    /// Rebuilds a spec from the catalog's settings and stored credentials.
    pub fn from_catalog(
        name: &str,
        kind: &str,
        settings: &LocationSettings,
        credentials: Option<(String, String)>,
    ) -> Self {
        let (access_key_id, secret_access_key) = match credentials {
            Some((id, secret)) => (Some(id), Some(Secret::new(secret))),
            None => (None, None),
        };
        Self {
            name: name.to_string(),
            kind: kind.to_string(),
            path: settings.path.clone(),
            endpoint: settings.endpoint.clone(),
            region: settings.region.clone(),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
            path_style: settings.path_style,
            access_key_id,
            secret_access_key,
            encryption: settings.encryption.clone(),
            immutable: settings.object_lock.is_some().then_some(true),
            lock_mode: settings.object_lock.clone(),
        }
    }

    /// Opens the store (nothing is checked yet: see `ObjectStore::check`).
    pub async fn open(&self) -> Result<DynStore, StorageError> {
        Ok(match self.kind.as_str() {
            "local" => Arc::new(LocalStore::new(std::path::Path::new(
                non_empty(&self.path).unwrap_or_default(),
            ))?),
            _ => {
                let credentials = self.credentials();
                Arc::new(
                    S3Store::new(S3Settings {
                        endpoint: non_empty(&self.endpoint).map(String::from),
                        region: self.region(),
                        bucket: non_empty(&self.bucket).unwrap_or_default().to_string(),
                        prefix: non_empty(&self.prefix).unwrap_or_default().to_string(),
                        path_style: self.path_style.unwrap_or(true),
                        access_key_id: credentials.as_ref().map(|c| c.0.clone()),
                        secret_access_key: credentials.map(|c| c.1),
                        checksum: Default::default(),
                        object_lock: self.lock(),
                    })
                    .await?,
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(body: serde_json::Value) -> LocationSpec {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn each_wrong_field_is_named() {
        let cases = [
            (
                json!({"name": "Bad_Name", "kind": "local", "path": "/x"}),
                "name",
            ),
            (json!({"name": "a", "kind": "ftp"}), "kind"),
            (json!({"name": "a", "kind": "local"}), "path"),
            (
                json!({"name": "a", "kind": "local", "path": "rel/dir"}),
                "path",
            ),
            (json!({"name": "a", "kind": "s3"}), "bucket"),
            (
                json!({"name": "a", "kind": "s3", "bucket": "b", "endpoint": "host:9000"}),
                "endpoint",
            ),
            (
                json!({"name": "a", "kind": "s3", "bucket": "b", "accessKeyId": "id"}),
                "secretAccessKey",
            ),
            (
                json!({"name": "a", "kind": "s3", "bucket": "b", "secretAccessKey": "s"}),
                "accessKeyId",
            ),
            (
                json!({"name": "a", "kind": "local", "path": "/x", "encryption": "rot13"}),
                "encryption",
            ),
            (
                json!({"name": "a", "kind": "local", "path": "/x", "immutable": true}),
                "immutable",
            ),
            (
                json!({"name": "a", "kind": "s3", "bucket": "b", "immutable": true, "lockMode": "forever"}),
                "lockMode",
            ),
            (
                json!({"name": "a", "kind": "s3", "bucket": "b", "lockMode": "compliance"}),
                "lockMode",
            ),
        ];
        for (body, field) in cases {
            let err = spec(body.clone()).validate().unwrap_err();
            assert_eq!(err.field, field, "{body}");
        }
        assert!(
            serde_json::from_value::<LocationSpec>(
                json!({"name": "a", "kind": "s3", "bukket": "b"})
            )
            .is_err()
        );
    }

    #[test]
    fn immutability_is_kept_in_the_settings_and_defaults_to_governance() {
        let s = spec(json!({"name": "vault", "kind": "s3", "bucket": "b", "immutable": true}));
        s.validate().unwrap();
        assert_eq!(s.lock(), Some(LockMode::Governance));
        assert_eq!(s.settings().object_lock.as_deref(), Some("governance"));
        let c = spec(
            json!({"name": "vault", "kind": "s3", "bucket": "b", "immutable": true,
                            "lockMode": "compliance"}),
        );
        let back = LocationSpec::from_catalog("vault", "s3", &c.settings(), None);
        assert_eq!(back.lock(), Some(LockMode::Compliance));
        let plain = spec(json!({"name": "p", "kind": "s3", "bucket": "b"}));
        assert_eq!(plain.lock(), None);
        assert!(plain.settings().object_lock.is_none());
        assert!(
            !serde_json::to_string(&plain.settings())
                .unwrap()
                .contains("object_lock")
        );
    }

    #[test]
    fn settings_never_hold_the_secret_and_round_trip_through_the_catalog() {
        let s = spec(
            json!({"name": "offsite", "kind": "s3", "bucket": "b", "endpoint": "http://h:1",
                            "accessKeyId": "GK1", "secretAccessKey": "very-secret"}),
        );
        s.validate().unwrap();
        let settings = s.settings();
        assert!(
            !serde_json::to_string(&settings)
                .unwrap()
                .contains("very-secret")
        );
        assert!(!format!("{s:?}").contains("very-secret"));
        assert_eq!(settings.credentials.as_deref(), Some("static"));
        let back = LocationSpec::from_catalog("offsite", "s3", &settings, s.credentials());
        assert_eq!(back.settings(), settings);
        assert_eq!(
            back.credentials(),
            Some(("GK1".into(), "very-secret".into()))
        );
        let anonymous = spec(json!({"name": "aws", "kind": "s3", "bucket": "b"}));
        let anonymous = anonymous.settings();
        assert_eq!(anonymous.credentials.as_deref(), Some("aws-default-chain"));
        assert_eq!(anonymous.region.as_deref(), Some("us-east-1"));
    }
}
