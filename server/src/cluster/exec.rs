//! A command in a pod's container: `pods/exec` over WebSocket
//! (`v5.channel.k8s.io`, else `v4.channel.k8s.io`, as kube-rs offers them),
//! with a timeout, and stdout and stderr bounded to [`OUTPUT_LIMIT`] each.
//! The exit code comes from the status the kubelet sends on the error
//! channel (`NonZeroExitCode` carries it as a cause).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most of stdout, and of stderr, kept from one command.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// What to run, where.
#[derive(Clone, Debug)]
pub struct Command<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    /// `None`: the pod's only container (the API server refuses otherwise).
    pub container: Option<&'a str>,
    pub argv: &'a [String],
    pub timeout: Duration,
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// 0 for success.
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Output beyond [`OUTPUT_LIMIT`] was dropped (and the text says so).
    pub truncated: bool,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Refused or failed before it ran: no such pod or container, not
    /// permitted (`create pods/exec`), the pod not running.
    #[error("could not exec into pod {namespace}/{pod}: {source}")]
    Start {
        namespace: String,
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("the command did not finish within {0:?}")]
    TimedOut(Duration),
    /// The kubelet reported a failure other than an exit code.
    #[error("the command failed: {0}")]
    Failed(String),
}

/// Runs `command` and waits for it, at most its timeout (then the stream is
/// dropped, which ends the exec on the kubelet's side).
pub async fn run(client: &kube::Client, command: &Command<'_>) -> Result<Outcome, ExecError> {
    let started = Instant::now();
    match tokio::time::timeout(command.timeout, attached(client, command)).await {
        Ok(Ok(mut outcome)) => {
            outcome.duration = started.elapsed();
            Ok(outcome)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ExecError::TimedOut(command.timeout)),
    }
}

async fn attached(client: &kube::Client, command: &Command<'_>) -> Result<Outcome, ExecError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), command.namespace);
    let mut params = AttachParams::default()
        .stdin(false)
        .stdout(true)
        .stderr(true);
    if let Some(container) = command.container {
        params = params.container(container);
    }
    let mut process = pods
        .exec(command.pod, command.argv.iter().cloned(), &params)
        .await
        .map_err(|source| ExecError::Start {
            namespace: command.namespace.to_string(),
            pod: command.pod.to_string(),
            source,
        })?;
    let status = process.take_status();
    let (stdout, stderr) = (process.stdout(), process.stderr());
    let ((stdout, cut_out), (stderr, cut_err)) = tokio::join!(bounded(stdout), bounded(stderr));
    let status = match status {
        Some(status) => status.await,
        None => None,
    };
    let _ = process.join().await;
    Ok(Outcome {
        exit_code: exit_code(status.as_ref())?,
        stdout,
        stderr,
        truncated: cut_out || cut_err,
        duration: Duration::ZERO,
    })
}

/// The exit code a status reports: 0 for `Success` (or none sent), the
/// `ExitCode` cause of `NonZeroExitCode`; any other failure is an error.
fn exit_code(status: Option<&Status>) -> Result<i32, ExecError> {
    let Some(status) = status else {
        return Ok(0);
    };
    if status.status.as_deref() != Some("Failure") {
        return Ok(0);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.parse().ok());
    match (status.reason.as_deref(), code) {
        (Some("NonZeroExitCode"), Some(code)) => Ok(code),
        _ => Err(ExecError::Failed(
            status
                .message
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        )),
    }
}

/// Reads a stream to its end, keeping the first [`OUTPUT_LIMIT`] bytes
/// (whole characters) and saying how much was dropped.
async fn bounded(stream: Option<impl AsyncRead + Unpin>) -> (String, bool) {
    let Some(mut stream) = stream else {
        return (String::new(), false);
    };
    let mut kept = Vec::new();
    let mut dropped = 0usize;
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                dropped += n.saturating_sub(room);
            }
        }
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        text.push_str(&format!("\n[… {dropped} more bytes not kept]"));
    }
    (text, dropped > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    #[test]
    fn the_exit_code_is_read_from_the_status_cause() {
        let failed = |reason: &str, code: Option<&str>| Status {
            status: Some("Failure".into()),
            reason: Some(reason.into()),
            message: Some("command terminated with non-zero exit code".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: code.map(String::from),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(exit_code(None).unwrap(), 0);
        let success = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(exit_code(Some(&success)).unwrap(), 0);
        assert_eq!(
            exit_code(Some(&failed("NonZeroExitCode", Some("3")))).unwrap(),
            3
        );
        assert!(matches!(
            exit_code(Some(&failed("InternalError", None))),
            Err(ExecError::Failed(_))
        ));
    }

    #[tokio::test]
    async fn output_beyond_the_limit_is_dropped_and_counted() {
        let big = vec![b'x'; OUTPUT_LIMIT + 10];
        let (text, cut) = bounded(Some(&big[..])).await;
        assert!(cut);
        assert!(text.starts_with(&"x".repeat(OUTPUT_LIMIT)));
        assert!(
            text.ends_with("[… 10 more bytes not kept]"),
            "{}",
            &text[OUTPUT_LIMIT..]
        );
        let (text, cut) = bounded(Some(&b"ok\n"[..])).await;
        assert_eq!((text.as_str(), cut), ("ok\n", false));
    }
}
