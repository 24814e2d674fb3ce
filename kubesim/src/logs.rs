//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: what the kubelet serves
//! (through the API server's proxy) of a container's output, simulated.
//!
//! Output is a pure function of the pod and the clock, so it is the same
//! for every reader and `follow` sees new lines arrive as time passes:
//! - a crash-looping container (`kubesim.io/crash-loop`) prints its start-up
//!   and the error it exits with, once per restart; `previous` is the
//!   instance before the current one, refused (as the kubelet does) when
//!   there is none;
//! - a `web` container prints an access line every [`WEB_EVERY`];
//! - `postgres` a checkpoint line, anything else a heartbeat, every
//!   [`QUIET_EVERY`].
//!
//! Like a kubelet's rotated log file, at most [`KEPT_LINES`] lines are kept.
//! Parameters as the API server takes them: `container` (required when the
//! pod has several), `previous`, `tailLines`, `sinceSeconds`, `timestamps`,
//! `limitBytes`, `follow`.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::store::Store;

/// How often a `web` container prints an access line.
pub const WEB_EVERY: Duration = Duration::from_millis(400);
/// How often other running containers print a line.
pub const QUIET_EVERY: Duration = Duration::from_secs(5);
/// The most lines a container's log keeps (older ones are rotated away).
pub const KEPT_LINES: u64 = 5_000;

/// One line and when it was written.
type Line = (DateTime<Utc>, String);

/// What a log request asks for.
struct Query {
    container: String,
    previous: bool,
    tail: Option<u64>,
    since: Option<i64>,
    timestamps: bool,
    limit_bytes: Option<usize>,
    follow: bool,
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request(message)
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn number<T: std::str::FromStr>(
    query: &HashMap<String, String>,
    key: &str,
) -> Result<Option<T>, ApiError> {
    query
        .get(key)
        .map(|v| {
            v.parse()
                .map_err(|_| bad(format!("invalid {key}: {v:?} is not a number")))
        })
        .transpose()
}

/// The container a `log` or `exec` request names (`asked`), or the pod's
/// only one; refused as the API server refuses it.
pub fn container_of(pod: &Value, asked: Option<&String>) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match asked {
        Some(c) if names.contains(&c.as_str()) => Ok(c.clone()),
        Some(c) => Err(bad(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => Err(bad(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

fn parse(pod: &Value, query: &HashMap<String, String>) -> Result<Query, ApiError> {
    let container = container_of(pod, query.get("container"))?;
    let tail: Option<i64> = number(query, "tailLines")?;
    let since: Option<i64> = number(query, "sinceSeconds")?;
    if since.is_some_and(|s| s < 1) {
        return Err(bad(
            "sinceSeconds: Invalid value: must be greater than 0".into()
        ));
    }
    Ok(Query {
        container,
        previous: flag(query, "previous"),
        tail: tail.map(|t| t.max(0) as u64),
        since,
        timestamps: flag(query, "timestamps"),
        limit_bytes: number(query, "limitBytes")?,
        follow: flag(query, "follow"),
    })
}

/// Which output a container has, from its pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Web,
    Postgres,
    Quiet,
}

/// The image of `container` in `pod`.
fn image_of<'a>(pod: &'a Value, container: &str) -> Option<&'a str> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == container)
        .and_then(|c| c["image"].as_str())
}

fn kind_of(pod: &Value, container: &str) -> Kind {
    let image = image_of(pod, container).unwrap_or_default();
    if container == "web" || image.contains("/web:") || image.contains("nginx") {
        Kind::Web
    } else if image.contains("postgres") {
        Kind::Postgres
    } else {
        Kind::Quiet
    }
}

/// A small deterministic hash, so a line's content depends on its pod and number.
fn mix(seed: &str, n: u64) -> u64 {
    crate::fnv1a(seed.bytes().chain(n.to_le_bytes()))
}

fn periodic_line(kind: Kind, pod: &str, n: u64, at: DateTime<Utc>) -> String {
    let h = mix(pod, n);
    match kind {
        Kind::Web => {
            let paths = [
                "/",
                "/products",
                "/products/42",
                "/cart",
                "/checkout",
                "/healthz",
            ];
            let path = paths[(h % paths.len() as u64) as usize];
            let (status, size) = if path == "/checkout" && h.is_multiple_of(7) {
                (502, 157)
            } else {
                (200, 300 + h % 4000)
            };
            format!(
                "10.244.{}.{} - - [{}] \"GET {path} HTTP/1.1\" {status} {size} \"-\" \"Mozilla/5.0\"",
                h % 3,
                2 + (h >> 8) % 250,
                at.format("%d/%b/%Y:%H:%M:%S +0000")
            )
        }
        Kind::Postgres => format!(
            "{} UTC [1] LOG:  checkpoint complete: wrote {} buffers ({}.{}%)",
            at.format("%Y-%m-%d %H:%M:%S%.3f"),
            h % 200,
            h % 3,
            h % 10
        ),
        Kind::Quiet => format!("level=info msg=\"heartbeat\" seq={n}"),
    }
}

/// What a crash-looping container prints before it exits, each time.
fn crash_lines(pod: &Value, container: &str, started: DateTime<Utc>, attempt: i64) -> Vec<Line> {
    let image = image_of(pod, container).unwrap_or("app");
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let at = |ms: i64| started + chrono::Duration::milliseconds(ms);
    vec![
        (
            at(0),
            format!("INFO  starting {image} (attempt {})", attempt + 1),
        ),
        (
            at(40),
            "INFO  loading model from /models/recommendations.bin".into(),
        ),
        (
            at(120),
            format!("INFO  connecting to catalog at http://catalog.{ns}.svc:8080"),
        ),
        (
            at(3120),
            format!("ERROR dial tcp: lookup catalog.{ns}.svc on 10.96.0.10:53: no such host"),
        ),
        (
            at(3125),
            "FATAL cannot start without the catalog service: exiting with status 1".into(),
        ),
    ]
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// When the container (instance) whose log is asked for started, or why
/// there is no such log.
fn container_status<'a>(pod: &'a Value, q: &Query) -> Result<&'a Value, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == q.container.as_str())
        .ok_or_else(|| {
            let reason = if pod["spec"]["nodeName"].is_string() {
                "ContainerCreating"
            } else {
                "PodInitializing"
            };
            bad(format!(
                "container \"{}\" in pod \"{pod_name}\" is waiting to start: {reason}",
                q.container
            ))
        })
}

/// Every line of the asked-for log up to `now`, oldest first (at most
/// [`KEPT_LINES`]), and whether more will come (a running container).
fn lines(pod: &Value, q: &Query, now: DateTime<Utc>) -> Result<(Vec<Line>, bool), ApiError> {
    lines_after(pod, q, None, now)
}

/// [`lines`] written after `after` only (what a follower has not seen):
/// a running container's lines are made from that point, not from its start.
fn lines_after(
    pod: &Value,
    q: &Query,
    after: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(Vec<Line>, bool), ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let status = container_status(pod, q)?;
    let created = pod["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(now, |t| t.with_timezone(&Utc));
    let restarts = status["restartCount"].as_i64().unwrap_or(0);
    let crash_looping = pod["metadata"]["annotations"]["kubesim.io/crash-loop"] == "true";
    if q.previous {
        if restarts == 0 {
            return Err(bad(format!(
                "previous terminated container \"{}\" in pod \"{pod_name}\" not found",
                q.container
            )));
        }
        let started = created + chrono::Duration::seconds(10 * (restarts - 1));
        return Ok(if crash_looping {
            (crash_lines(pod, &q.container, started, restarts - 1), false)
        } else {
            (
                vec![(started, "INFO  terminated by the kubelet".to_string())],
                false,
            )
        });
    }
    if crash_looping {
        let started = created + chrono::Duration::seconds(10 * restarts);
        return Ok((crash_lines(pod, &q.container, started, restarts), false));
    }
    if status["state"]["running"].is_null() {
        let reason = status["state"]["waiting"]["reason"]
            .as_str()
            .unwrap_or("ContainerCreating");
        return Err(bad(format!(
            "container \"{}\" in pod \"{pod_name}\" is waiting to start: {reason}",
            q.container
        )));
    }
    let started = status["state"]["running"]["startedAt"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(created, |t| t.with_timezone(&Utc));
    let kind = kind_of(pod, &q.container);
    let every = match kind {
        Kind::Web => WEB_EVERY,
        _ => QUIET_EVERY,
    };
    let every_ms = every.as_millis() as i64;
    let elapsed = (now - started).num_milliseconds().max(0);
    let count = (elapsed / every_ms) as u64;
    // Lines 0 (start-up) to `count`, of which the newest KEPT_LINES (and
    // of those, the ones after `after`).
    let seen = after.map_or(0, |a| {
        ((a - started).num_milliseconds().max(-1) / every_ms + 1).max(0) as u64
    });
    let first = (count + 1).saturating_sub(KEPT_LINES).max(seen);
    let mut out = Vec::new();
    if first == 0 {
        out.push((started, format!("INFO  {} listening", q.container)));
    }
    for n in first.max(1)..=count {
        let at = started + chrono::Duration::milliseconds(n as i64 * every_ms);
        out.push((at, periodic_line(kind, pod_name, n, at)));
    }
    Ok((out, true))
}

fn render(line: &Line, timestamps: bool) -> String {
    if timestamps {
        format!("{} {}\n", rfc3339(line.0), line.1)
    } else {
        format!("{}\n", line.1)
    }
}

/// Answers a `pods/log` GET.
pub fn serve(
    store: &Store,
    pods: &ResourceType,
    namespace: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let pod = store.get(pods, Some(namespace), name)?;
    let q = parse(&pod, query)?;
    let now = Utc::now();
    let (mut all, more) = lines(&pod, &q, now)?;
    if let Some(since) = q.since {
        let from = now - chrono::Duration::seconds(since);
        all.retain(|(at, _)| *at >= from);
    }
    if let Some(tail) = q.tail {
        let skip = all.len().saturating_sub(tail as usize);
        all.drain(..skip);
    }
    let mut text: String = all.iter().map(|l| render(l, q.timestamps)).collect();
    if let Some(limit) = q.limit_bytes {
        let mut cut = limit.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let text_plain = [(header::CONTENT_TYPE, "text/plain")];
    if !(q.follow && more) {
        return Ok((StatusCode::OK, text_plain, text).into_response());
    }
    // Follow: what there is, then each new line as it is written, until the
    // container stops running or the pod is gone.
    let store = store.clone();
    let pods = pods.clone();
    let (namespace, name) = (namespace.to_string(), name.to_string());
    let stream = crate::stream::async_stream(move |tx| async move {
        if tx.send(Bytes::from(text)).await.is_err() {
            return;
        }
        let mut last = now;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let Ok(pod) = store.get(&pods, Some(&namespace), &name) else {
                return;
            };
            let now = Utc::now();
            let Ok((lines, more)) = lines_after(&pod, &q, Some(last), now) else {
                return;
            };
            let fresh: String = lines
                .iter()
                .filter(|(at, _)| *at > last && *at <= now)
                .map(|l| render(l, q.timestamps))
                .collect();
            last = now;
            if !fresh.is_empty() && tx.send(Bytes::from(fresh)).await.is_err() {
                return;
            }
            if !more {
                return;
            }
        }
    });
    let body = Body::from_stream(stream.map(Ok::<_, std::convert::Infallible>));
    Ok((StatusCode::OK, text_plain, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(crash: bool, restarts: i64, running: bool) -> Value {
        let state = if running {
            json!({"running": {"startedAt": "2026-11-30T12:00:00Z"}})
        } else {
            json!({"waiting": {"reason": "CrashLoopBackOff"}})
        };
        json!({
            "metadata": {"name": "p", "namespace": "shop", "creationTimestamp": "2026-11-30T12:00:00Z",
                         "annotations": if crash { json!({"kubesim.io/crash-loop": "true"}) } else { json!({}) }},
            "spec": {"nodeName": "n1", "containers": [{"name": "web", "image": "registry.example/shop/web:1"}]},
            "status": {"containerStatuses": [{"name": "web", "restartCount": restarts, "state": state}]}
        })
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_web_container_prints_an_access_line_every_interval() {
        let p = pod(false, 0, true);
        let q = parse(&p, &query(&[])).unwrap();
        let (lines, more) = lines(&p, &q, at("2026-11-30T12:00:02Z")).unwrap();
        assert!(more);
        // The start-up line, then one access line per 400 ms.
        assert_eq!(lines.len(), 1 + 5);
        assert!(lines[1].1.contains("\"GET /"), "{:?}", lines[1]);
    }

    #[test]
    fn a_crash_loop_prints_its_error_and_previous_needs_a_restart() {
        let p = pod(true, 0, false);
        let q = parse(&p, &query(&[("previous", "true")])).unwrap();
        let e = lines(&p, &q, Utc::now()).unwrap_err();
        assert!(
            e.message.contains("previous terminated container"),
            "{}",
            e.message
        );
        let p = pod(true, 3, false);
        let q = parse(&p, &query(&[("previous", "true")])).unwrap();
        let (lines, more) = lines(&p, &q, Utc::now()).unwrap();
        assert!(!more);
        assert!(lines.last().unwrap().1.starts_with("FATAL"));
        assert!(lines[0].1.contains("attempt 3"), "{:?}", lines[0]);
    }

    #[test]
    fn a_follower_gets_only_what_it_has_not_seen() {
        let p = pod(false, 0, true);
        let q = parse(&p, &query(&[])).unwrap();
        let (all, _) = lines(&p, &q, at("2026-11-30T12:00:02Z")).unwrap();
        let (fresh, _) = lines_after(
            &p,
            &q,
            Some(at("2026-11-30T12:00:01Z")),
            at("2026-11-30T12:00:02Z"),
        )
        .unwrap();
        // Lines at 1.2, 1.6 and 2.0 s: the newest three of the six.
        assert_eq!(fresh, all[3..].to_vec());
    }

    #[test]
    fn the_log_keeps_only_its_newest_lines() {
        let p = pod(false, 0, true);
        let q = parse(&p, &query(&[])).unwrap();
        let (lines, _) = lines(&p, &q, at("2026-12-01T12:00:00Z")).unwrap();
        assert_eq!(lines.len() as u64, KEPT_LINES);
    }

    #[test]
    fn a_pod_of_several_containers_needs_one_named() {
        let mut p = pod(false, 0, true);
        p["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "x"}));
        let e = parse(&p, &query(&[])).err().unwrap();
        assert!(
            e.message.contains("choose one of: [web sidecar]"),
            "{}",
            e.message
        );
        let e = parse(&p, &query(&[("container", "db")])).err().unwrap();
        assert!(
            e.message.contains("container db is not valid"),
            "{}",
            e.message
        );
    }
}
