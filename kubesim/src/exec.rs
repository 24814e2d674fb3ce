//! `pods/{name}/exec` over WebSocket, as kube-apiserver serves it (the
//! kubelet's streaming protocol, proxied): the client offers
//! `v5.channel.k8s.io` and/or `v4.channel.k8s.io`; each binary message
//! starts with its channel — 1 stdout, 2 stderr, 3 the outcome as a
//! `metav1.Status` (`Success`, or `Failure` with reason `NonZeroExitCode`
//! and the code as a cause), then the server closes.
//!
//! Authorization is kube-apiserver's since 1.31 (`create` on `pods/exec`;
//! a plain GET without the upgrade is refused, as the kubelet's SPDY
//! protocol is not spoken here). The pod must exist, be Running and have
//! the container.
//!
//! Simulated containers run a small shell: `sh -c SCRIPT` (or bash), the
//! script's commands separated by `;` (a failing one ends it, as `set -e`
//! would not: the last command's status is the exit code, and `exit N`
//! stops). Commands: `true`, `false`, `exit N`, `echo WORDS` (`>&2` at the
//! end writes to stderr), `sleep SECONDS` (a hanging hook), `env` (the
//! container's environment, Secret values resolved as a kubelet would),
//! `hostname`, and the simulated database's `checkpoint [SECONDS]`,
//! `resume` and `check` (`crate::database`). Anything else is `not found`
//! (127).

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use crate::database::{Databases, Health};
use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::store::Store;

/// The subprotocols served, in order of preference.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;

/// What an exec request asks for (repeated `command` parameters in order).
#[derive(Debug)]
pub struct Request {
    pub container: String,
    pub command: Vec<String>,
}

/// Checks the pod, its container and the command; the error is
/// kube-apiserver's (400 before the upgrade).
pub fn prepare(
    store: &Store,
    pods: &ResourceType,
    namespace: &str,
    name: &str,
    pairs: &[(String, String)],
) -> Result<(Request, Value), ApiError> {
    let pod = store.get(pods, Some(namespace), name)?;
    let asked = pairs.iter().find(|(k, _)| k == "container").map(|(_, v)| v);
    let container = crate::logs::container_of(&pod, asked)?;
    let command: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least 1 command".to_string(),
        ));
    }
    if pod["status"]["phase"] != "Running" {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: container not found (\"{container}\")"
        )));
    }
    Ok((Request { container, command }, pod))
}

/// Upgrades to the first subprotocol both sides speak and runs the command.
pub fn serve(
    ws: WebSocketUpgrade,
    store: Store,
    databases: Databases,
    pod: Value,
    request: Request,
) -> Response {
    ws.protocols(PROTOCOLS)
        .on_upgrade(move |socket| run(socket, store, databases, pod, request))
}

async fn send(socket: &mut WebSocket, channel: u8, data: &[u8]) -> bool {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(data);
    socket.send(Message::Binary(frame.into())).await.is_ok()
}

/// The outcome as the kubelet reports it on the error channel.
pub fn status(command: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

async fn run(
    mut socket: WebSocket,
    store: Store,
    databases: Databases,
    pod: Value,
    request: Request,
) {
    let script = script_of(&request.command);
    let env = environment(&store, &pod, &request.container);
    let mut code = 0;
    for words in script {
        let Some((program, args)) = words.split_first() else {
            continue;
        };
        let (out, err, exit) = match program.as_str() {
            "true" | ":" => (String::new(), String::new(), Exit::Code(0)),
            "false" => (String::new(), String::new(), Exit::Code(1)),
            "exit" => {
                let n = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
                (String::new(), String::new(), Exit::Stop(n))
            }
            "echo" => match args.last().map(String::as_str) {
                Some(">&2") => (
                    String::new(),
                    format!("{}\n", args[..args.len() - 1].join(" ")),
                    Exit::Code(0),
                ),
                _ => (
                    format!("{}\n", args.join(" ")),
                    String::new(),
                    Exit::Code(0),
                ),
            },
            "seq" => {
                let n: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
                let (from, to) = match n.as_slice() {
                    [to] => (1, *to),
                    [from, to, ..] => (*from, *to),
                    [] => (1, 0),
                };
                let to = to.min(from.saturating_add(10_000_000));
                (
                    (from..=to).map(|i| format!("{i}\n")).collect(),
                    String::new(),
                    Exit::Code(0),
                )
            }
            "hostname" => (
                format!("{}\n", pod["metadata"]["name"].as_str().unwrap_or_default()),
                String::new(),
                Exit::Code(0),
            ),
            "env" => (
                env.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
                String::new(),
                Exit::Code(0),
            ),
            "sleep" => {
                let seconds: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
                if !sleep_or_hang_up(&mut socket, seconds).await {
                    return;
                }
                (String::new(), String::new(), Exit::Code(0))
            }
            "checkpoint" => {
                let hold = args
                    .first()
                    .and_then(|a| a.parse::<f64>().ok())
                    .map_or(crate::database::DEFAULT_HOLD, |s| {
                        Duration::from_secs_f64(s.clamp(0.0, 3600.0))
                    });
                match databases.checkpoint(&store, &pod, hold) {
                    Ok(()) => ("CHECKPOINT\n".into(), String::new(), Exit::Code(0)),
                    Err(e) => (String::new(), format!("checkpoint: {e}\n"), Exit::Code(1)),
                }
            }
            "resume" => match databases.resume(&store, &pod) {
                Ok(()) => ("resumed\n".into(), String::new(), Exit::Code(0)),
                Err(e) => (String::new(), format!("resume: {e}\n"), Exit::Code(1)),
            },
            "check" => match databases.check(&store, &pod) {
                Ok(files) => {
                    let (mut out, mut err) = (String::new(), String::new());
                    for (file, health) in files {
                        match health {
                            Health::Consistent { records, last } => out.push_str(&format!(
                                "{file}: {records} records, the last {last}: consistent\n"
                            )),
                            Health::Torn { why, .. } => {
                                err.push_str(&format!("{file}: torn: {why}\n"));
                            }
                        }
                    }
                    if out.is_empty() && err.is_empty() {
                        out.push_str("no data files (the pod mounts no volume)\n");
                    }
                    let code = if err.is_empty() { 0 } else { 1 };
                    (out, err, Exit::Code(code))
                }
                Err(e) => (String::new(), format!("check: {e}\n"), Exit::Code(1)),
            },
            other => (
                String::new(),
                format!("sh: 1: {other}: not found\n"),
                Exit::Code(127),
            ),
        };
        if !out.is_empty() && !send(&mut socket, STDOUT, out.as_bytes()).await {
            return;
        }
        if !err.is_empty() && !send(&mut socket, STDERR, err.as_bytes()).await {
            return;
        }
        match exit {
            Exit::Code(n) => code = n,
            Exit::Stop(n) => {
                code = n;
                break;
            }
        }
    }
    let outcome = status(&request.command, code).to_string();
    if send(&mut socket, ERROR, outcome.as_bytes()).await {
        let _ = socket.send(Message::Close(None)).await;
    }
}

enum Exit {
    Code(i32),
    Stop(i32),
}

/// Sleeps `seconds`, or returns false as soon as the client hangs up (a
/// timed-out exec is abandoned by its caller).
async fn sleep_or_hang_up(socket: &mut WebSocket, seconds: f64) -> bool {
    let until = tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)));
    tokio::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return true,
            message = socket.recv() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return false,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The commands to run: `sh -c SCRIPT` split at `;`, each into words
/// (single or double quotes group words); any other argv is one command.
fn script_of(command: &[String]) -> Vec<Vec<String>> {
    let shell = command
        .first()
        .is_some_and(|c| matches!(c.rsplit('/').next(), Some("sh" | "bash")));
    match (shell, command.get(1).map(String::as_str), command.get(2)) {
        (true, Some("-c"), Some(script)) => script
            .split(';')
            .map(words)
            .filter(|w| !w.is_empty())
            .collect(),
        _ => vec![command.to_vec()],
    }
}

fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            (None, c) => current.push(c),
        }
    }
    if any || !current.is_empty() {
        out.push(current);
    }
    out
}

/// The container's environment as it runs: literal values, and values
/// from Secrets and ConfigMaps resolved (`valueFrom`), in order.
fn environment(store: &Store, pod: &Value, container: &str) -> Vec<(String, String)> {
    let namespace = pod["metadata"]["namespace"].as_str();
    let spec = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == container);
    let lookup = |resource: &str, name: &Value, key: &Value| -> Option<String> {
        let rt = store.find("", "v1", resource)?;
        let object = store.get(&rt, namespace, name.as_str()?).ok()?;
        let key = key.as_str()?;
        match resource {
            "secrets" => object["data"][key]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .or_else(|| object["stringData"][key].as_str().map(String::from)),
            _ => object["data"][key].as_str().map(String::from),
        }
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for var in spec.and_then(|c| c["env"].as_array()).into_iter().flatten() {
        let Some(name) = var["name"].as_str() else {
            continue;
        };
        let from = &var["valueFrom"];
        let value = if let Some(v) = var["value"].as_str() {
            Some(v.to_string())
        } else if !from["secretKeyRef"].is_null() {
            lookup(
                "secrets",
                &from["secretKeyRef"]["name"],
                &from["secretKeyRef"]["key"],
            )
        } else if !from["configMapKeyRef"].is_null() {
            lookup(
                "configmaps",
                &from["configMapKeyRef"]["name"],
                &from["configMapKeyRef"]["key"],
            )
        } else {
            None
        };
        out.push((name.to_string(), value.unwrap_or_default()));
    }
    out.push((
        "HOSTNAME".into(),
        pod["metadata"]["name"].as_str().unwrap_or_default().into(),
    ));
    out
}

/// `exec` needs the WebSocket upgrade; what the API server says without it.
pub fn upgrade_required() -> ApiError {
    ApiError::bad_request("Upgrade request required".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_into_commands_and_quoted_words() {
        let argv = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            script_of(&argv(&["/bin/sh", "-c", "echo 'a b' c; exit 3"])),
            vec![argv(&["echo", "a b", "c"]), argv(&["exit", "3"])]
        );
        assert_eq!(
            script_of(&argv(&["checkpoint", "--now"])),
            vec![argv(&["checkpoint", "--now"])]
        );
        assert_eq!(words("echo \"\" x"), argv(&["echo", "", "x"]));
    }

    #[test]
    fn a_failure_carries_the_exit_code_as_kube_apiserver_does() {
        let s = status(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(status(&[], 0)["status"], "Success");
    }
}
