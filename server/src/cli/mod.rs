//! The `lifeboat` client commands: the CLI side of the JSON API. They talk to
//! a running server (`--server`, default http://127.0.0.1:8080) and sign in
//! with a bearer token: `--token`, else LIFEBOAT_TOKEN, else the current
//! kubeconfig user's token (as kubectl would send it), except `backup
//! inspect`, which reads a downloaded archive offline. One file per command group.

pub mod backup;
pub mod install;
pub mod location;
pub mod notification;
pub mod restore;
pub mod schedule;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The exit code of a command whose backup or restore it waited for ended
/// PartiallyFailed: not 0, so a script can tell, and not 1 (failed).
pub const EXIT_PARTIALLY_FAILED: u8 = 3;

/// A run the command waited for ended PartiallyFailed; `main` exits with
/// [`EXIT_PARTIALLY_FAILED`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PartiallyFailed(pub String);

/// What a backup or restore selects; the same flags for both.
#[derive(clap::Args, Debug)]
pub struct Filters {
    /// Namespaces (globs), comma-separated; default all.
    #[arg(long, value_delimiter = ',')]
    include_namespaces: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    exclude_namespaces: Vec<String>,
    /// Resources such as deployments.apps,secrets; default all.
    #[arg(long, value_delimiter = ',')]
    include_resources: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    exclude_resources: Vec<String>,
    /// Label selector, e.g. app=web.
    #[arg(long)]
    selector: Option<String>,
}

impl Filters {
    /// The filter fields of a backup or restore spec, as the API takes them.
    fn spec(&self) -> serde_json::Map<String, Value> {
        let v = json!({
            "includedNamespaces": self.include_namespaces, "excludedNamespaces": self.exclude_namespaces,
            "includedResources": self.include_resources, "excludedResources": self.exclude_resources,
            "labelSelector": self.selector,
        });
        v.as_object().cloned().unwrap_or_default()
    }
}

/// The token given with `--token` or LIFEBOAT_TOKEN (set once by `main`).
static TOKEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// How `get` and `describe` print: a table (or text) for people, or the
/// API's JSON, or the same as YAML, for scripts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
    Yaml,
}

static OUTPUT: std::sync::OnceLock<Output> = std::sync::OnceLock::new();

/// Sets the format of `get` and `describe` (`-o`).
pub fn set_output(output: Output) {
    let _ = OUTPUT.set(output);
}

pub fn output() -> Output {
    OUTPUT.get().copied().unwrap_or_default()
}

/// Prints `value` as JSON or YAML when `-o` asks for it; `false` when the
/// command is to print its table.
fn printed_structured(value: &Value) -> Result<bool> {
    match output() {
        Output::Table => Ok(false),
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(value)?);
            Ok(true)
        }
        Output::Yaml => {
            print!("{}", serde_saphyr::to_string(value)?);
            Ok(true)
        }
    }
}

/// An answer read as the API's own type (`frontend::model`, the types the
/// server writes and the OpenAPI document describes).
fn read_as<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T> {
    serde_json::from_value(value.clone()).map_err(|e| {
        anyhow::anyhow!(
            "the server's answer is not a {what} as this CLI ({}) reads one: {e}. Use the CLI of the server's version, or -o json",
            lifeboat::VERSION
        )
    })
}

/// Sets the token the client commands sign in with (`--token` / LIFEBOAT_TOKEN).
pub fn set_token(token: Option<String>) {
    let _ = TOKEN.set(token.filter(|t| !t.trim().is_empty()));
}

/// The current kubeconfig user's bearer token (`KUBECONFIG` or `~/.kube/config`).
fn kubeconfig_token() -> Option<String> {
    lifeboat::cluster::kubeconfig_token(&kube::config::Kubeconfig::read().ok()?)
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(server: &str) -> Self {
        let token = TOKEN.get().cloned().flatten().or_else(kubeconfig_token);
        Self {
            http: reqwest::Client::new(),
            base: server.trim_end_matches('/').to_string(),
            token,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach the Lifeboat server at {}; start it with `lifeboat serve` or pass --server URL",
                self.base
            )
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let message = body["error"].as_str().unwrap_or("no details");
        if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
            bail!(
                "the server answered {status}: {message}. The CLI found no token: pass --token, set LIFEBOAT_TOKEN, or use a kubeconfig whose user has a token"
            )
        }
        bail!("the server answered {status}: {message}")
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        Ok(self.send(req).await?.json().await?)
    }
}

/// Asks the user to type `name` to go ahead; anything else stops with `otherwise`.
fn confirm(question: &str, name: &str, otherwise: &str) -> Result<()> {
    eprint!("{question} type its name to confirm (or pass --yes): ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != name {
        bail!("not confirmed; {otherwise}");
    }
    Ok(())
}

fn human_bytes(n: i64) -> String {
    lifeboat::human_bytes(n.max(0) as u64)
}
