//! `lifeboat install` / `uninstall`: the manifests of `docker/` (the one
//! source: `kubectl kustomize docker/` renders the same objects), adjusted
//! for the options chosen, printed or applied with server-side apply.

use std::collections::BTreeMap;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};

const RBAC: &str = include_str!("../../docker/rbac.yaml");
const SERVER: &str = include_str!("../../docker/lifeboat.yaml");
const AGENT: &str = include_str!("../../docker/agent.yaml");

/// The field manager of `lifeboat install`'s server-side apply.
pub const FIELD_MANAGER: &str = "lifeboat-install";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Invalid(String),
    #[error("the shipped manifests do not read: {0}")]
    Manifests(String),
    #[error("{what}: {message}")]
    Cluster { what: String, message: String },
}

/// S3 storage for the default location.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub prefix: Option<String>,
    /// Static credentials (id, secret); without them the pod's AWS chain.
    pub credentials: Option<(String, String)>,
}

/// The image repository `install` defaults to: `lifeboat`, or what the
/// build set in `LIFEBOAT_IMAGE_REPOSITORY` (a registry's path, e.g.
/// `registry.example/team/lifeboat`; see docs/RELEASE.md).
pub const IMAGE_REPOSITORY: &str = match option_env!("LIFEBOAT_IMAGE_REPOSITORY") {
    Some(repository) if !repository.is_empty() => repository,
    _ => "lifeboat",
};

/// The image of this binary's version: what `install` uses by default and
/// `docker/*.yaml` name.
pub fn default_image() -> String {
    format!("{IMAGE_REPOSITORY}:{}", crate::VERSION)
}

/// What `install` renders.
#[derive(Clone, Debug)]
pub struct Options {
    pub namespace: String,
    pub image: String,
    pub replicas: u32,
    /// The node agents' DaemonSet (volume data).
    pub agent: bool,
    /// A PostgreSQL URL: kept in the Secret `lifeboat-db`.
    pub database_url: Option<String>,
    pub s3: Option<S3Options>,
    /// The data PVC's size (the SQLite catalog, and local backups without S3).
    pub data_size: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: "lifeboat".into(),
            image: default_image(),
            replicas: 1,
            agent: true,
            database_url: None,
            s3: None,
            data_size: "1Gi".into(),
        }
    }
}

fn parse(text: &str) -> Result<Vec<Value>, InstallError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| InstallError::Manifests(e.to_string()))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn env(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn env_secret(name: &str, secret: &str, key: &str) -> Value {
    json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
}

fn secret(namespace: &str, name: &str, data: BTreeMap<&str, &str>) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": name, "namespace": namespace,
                        "labels": {"app.kubernetes.io/name": "lifeboat"}},
           "stringData": data})
}

impl Options {
    pub fn validate(&self) -> Result<(), InstallError> {
        if !crate::selection::dns_label(&self.namespace) {
            return Err(InstallError::Invalid(format!(
                "--namespace `{}` is not a namespace name",
                self.namespace
            )));
        }
        if self.replicas == 0 {
            return Err(InstallError::Invalid(
                "--replicas must be at least 1".into(),
            ));
        }
        if self.replicas > 1 && (self.database_url.is_none() || self.s3.is_none()) {
            return Err(InstallError::Invalid(
                "several replicas share a PostgreSQL catalog and an S3 bucket: pass --database-url-file and --bucket, or --replicas 1".into(),
            ));
        }
        if let Some(url) = &self.database_url
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
        {
            return Err(InstallError::Invalid(
                "the database URL must be a PostgreSQL URL (postgres://…); SQLite is the default without one".into(),
            ));
        }
        if self.image.trim().is_empty() {
            return Err(InstallError::Invalid("--image must name an image".into()));
        }
        Ok(())
    }

    /// Every object, in the order they are applied.
    pub fn render(&self) -> Result<Vec<Value>, InstallError> {
        self.validate()?;
        // The namespace first, then the rest in file order.
        let mut objects = parse(SERVER)?;
        objects.extend(parse(RBAC)?);
        if self.agent {
            objects.extend(parse(AGENT)?);
        }
        let ns = self.namespace.as_str();
        let mut secrets = Vec::new();
        let mut extra_env = Vec::new();
        if let Some(url) = &self.database_url {
            secrets.push(secret(
                ns,
                "lifeboat-db",
                BTreeMap::from([("url", url.as_str())]),
            ));
            extra_env.push(env_secret("LIFEBOAT_DATABASE_URL", "lifeboat-db", "url"));
        }
        if let Some(s3) = &self.s3 {
            extra_env.push(env("LIFEBOAT_STORAGE_KIND", "s3"));
            extra_env.push(env("LIFEBOAT_S3_BUCKET", &s3.bucket));
            for (name, value) in [
                ("LIFEBOAT_S3_ENDPOINT", &s3.endpoint),
                ("LIFEBOAT_S3_REGION", &s3.region),
                ("LIFEBOAT_S3_PREFIX", &s3.prefix),
            ] {
                if let Some(v) = value {
                    extra_env.push(env(name, v));
                }
            }
            if let Some((id, key)) = &s3.credentials {
                secrets.push(secret(
                    ns,
                    "lifeboat-s3",
                    BTreeMap::from([
                        ("access_key_id", id.as_str()),
                        ("secret_access_key", key.as_str()),
                    ]),
                ));
                extra_env.push(env_secret(
                    "LIFEBOAT_S3_ACCESS_KEY_ID",
                    "lifeboat-s3",
                    "access_key_id",
                ));
                extra_env.push(env_secret(
                    "LIFEBOAT_S3_SECRET_ACCESS_KEY",
                    "lifeboat-s3",
                    "secret_access_key",
                ));
            }
        }
        for o in &mut objects {
            if o["metadata"]["namespace"].is_string() {
                o["metadata"]["namespace"] = json!(ns);
            }
            if o["kind"] == "Namespace" {
                o["metadata"]["name"] = json!(ns);
            }
            for s in o
                .get_mut("subjects")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if s["kind"] == "ServiceAccount" {
                    s["namespace"] = json!(ns);
                }
            }
            match (o["kind"].as_str(), o["metadata"]["name"].as_str()) {
                (Some("Deployment"), Some("lifeboat")) => {
                    o["spec"]["replicas"] = json!(self.replicas);
                    let container = &mut o["spec"]["template"]["spec"]["containers"][0];
                    container["image"] = json!(self.image);
                    if let Some(list) = container["env"].as_array_mut() {
                        list.extend(extra_env.iter().cloned());
                    }
                }
                (Some("DaemonSet"), _) => {
                    let container = &mut o["spec"]["template"]["spec"]["containers"][0];
                    container["image"] = json!(self.image);
                    for arg in container["args"].as_array_mut().into_iter().flatten() {
                        if arg.as_str().is_some_and(|a| a.starts_with("--server=")) {
                            *arg = json!(format!("--server=http://lifeboat.{ns}.svc"));
                        }
                    }
                }
                (Some("PersistentVolumeClaim"), Some("lifeboat-data")) => {
                    o["spec"]["resources"]["requests"]["storage"] = json!(self.data_size);
                }
                _ => {}
            }
        }
        // Secrets right after the namespace, before the Deployment reads them.
        let at = objects
            .iter()
            .position(|o| o["kind"] == "Namespace")
            .map_or(0, |i| i + 1);
        for (i, s) in secrets.into_iter().enumerate() {
            objects.insert(at + i, s);
        }
        Ok(objects)
    }
}

/// The objects as YAML documents, or a JSON `List`.
pub fn print(objects: &[Value], format: &str) -> Result<String, InstallError> {
    match format {
        "json" => Ok(serde_json::to_string_pretty(
            &json!({"apiVersion": "v1", "kind": "List", "items": objects}),
        )
        .unwrap_or_default()),
        _ => {
            let mut out = String::new();
            for o in objects {
                out.push_str("---\n");
                out.push_str(
                    &serde_saphyr::to_string(o)
                        .map_err(|e| InstallError::Manifests(e.to_string()))?,
                );
            }
            Ok(out)
        }
    }
}

fn name_of(o: &Value) -> String {
    format!(
        "{} {}",
        o["kind"].as_str().unwrap_or_default(),
        o["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// The API of one object's kind, from discovery.
fn api_for(
    client: &kube::Client,
    discovery: &Discovery,
    o: &Value,
) -> Result<Api<DynamicObject>, InstallError> {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = o["kind"].as_str().unwrap_or_default();
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = discovery
        .resolve_gvk(&gvk)
        .ok_or_else(|| InstallError::Cluster {
            what: name_of(o),
            message: format!("the cluster does not serve {api_version} {kind}"),
        })?;
    Ok(match (caps.scope, o["metadata"]["namespace"].as_str()) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    })
}

async fn discover(client: &kube::Client) -> Result<Discovery, InstallError> {
    Discovery::new(client.clone())
        .run()
        .await
        .map_err(|e| InstallError::Cluster {
            what: "discovery".into(),
            message: e.to_string(),
        })
}

/// Applies every object with server-side apply; returns what was applied.
pub async fn apply(client: &kube::Client, objects: &[Value]) -> Result<Vec<String>, InstallError> {
    let discovery = discover(client).await?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut done = Vec::new();
    for o in objects {
        let api = api_for(client, &discovery, o)?;
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        api.patch(name, &params, &Patch::Apply(o))
            .await
            .map_err(|e| InstallError::Cluster {
                what: name_of(o),
                message: e.to_string(),
            })?;
        done.push(name_of(o));
    }
    Ok(done)
}

/// Deletes the objects in reverse order; the data claim only with
/// `delete_data` (it holds the catalog, and local backups). Never the bucket.
pub async fn remove(
    client: &kube::Client,
    objects: &[Value],
    delete_data: bool,
) -> Result<Vec<String>, InstallError> {
    let discovery = discover(client).await?;
    let mut done = Vec::new();
    for o in objects.iter().rev() {
        let keep =
            (o["kind"] == "PersistentVolumeClaim" || o["kind"] == "Namespace") && !delete_data;
        if keep {
            continue;
        }
        let api = api_for(client, &discovery, o)?;
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => done.push(name_of(o)),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(InstallError::Cluster {
                    what: name_of(o),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    #[test]
    fn defaults_are_the_shipped_manifests() {
        let objects = Options::default().render().unwrap();
        let mut shipped = parse(SERVER).unwrap();
        shipped.extend(parse(RBAC).unwrap());
        shipped.extend(parse(AGENT).unwrap());
        assert_eq!(objects, shipped);
    }

    #[test]
    fn options_reach_every_object_they_concern() {
        let options = Options {
            namespace: "backup-system".into(),
            image: "registry.example/lifeboat:1.2.3".into(),
            replicas: 2,
            agent: true,
            database_url: Some("postgres://lifeboat@db/lifeboat".into()),
            s3: Some(S3Options {
                bucket: "backups".into(),
                endpoint: Some("https://s3.example".into()),
                credentials: Some(("AKID".into(), "s3cr3t".into())),
                ..Default::default()
            }),
            data_size: "5Gi".into(),
        };
        let objects = options.render().unwrap();
        assert_eq!(objects[0]["kind"], "Namespace");
        assert_eq!(objects[0]["metadata"]["name"], "backup-system");
        assert!(objects.iter().all(|o| o["metadata"]["namespace"].is_null()
            || o["metadata"]["namespace"] == "backup-system"));
        let deployment = find(&objects, "Deployment", "lifeboat");
        assert_eq!(deployment["spec"]["replicas"], 2);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "registry.example/lifeboat:1.2.3");
        let env = container["env"].to_string();
        assert!(
            env.contains("LIFEBOAT_DATABASE_URL") && env.contains("lifeboat-db"),
            "{env}"
        );
        assert!(
            !env.contains("s3cr3t") && !env.contains("postgres://"),
            "secrets stay in Secrets: {env}"
        );
        assert_eq!(
            find(&objects, "Secret", "lifeboat-s3")["stringData"]["secret_access_key"],
            "s3cr3t"
        );
        let agent = find(&objects, "DaemonSet", "lifeboat-agent");
        assert!(
            agent
                .to_string()
                .contains("--server=http://lifeboat.backup-system.svc")
        );
        let binding = find(&objects, "ClusterRoleBinding", "lifeboat");
        assert_eq!(binding["subjects"][0]["namespace"], "backup-system");
        assert_eq!(
            find(&objects, "PersistentVolumeClaim", "lifeboat-data")["spec"]["resources"]["requests"]
                ["storage"],
            "5Gi"
        );
        // Several replicas without a shared catalog and bucket are refused.
        let lonely = Options {
            replicas: 2,
            ..Options::default()
        };
        assert!(
            lonely
                .render()
                .unwrap_err()
                .to_string()
                .contains("--database-url-file")
        );
        let without_agent = Options {
            agent: false,
            ..Options::default()
        }
        .render()
        .unwrap();
        assert!(!without_agent.iter().any(|o| o["kind"] == "DaemonSet"));
    }

    #[test]
    fn yaml_output_reads_back_as_the_same_objects() {
        let objects = Options::default().render().unwrap();
        let yaml = print(&objects, "yaml").unwrap();
        assert_eq!(parse(&yaml).unwrap(), objects);
    }
}
