//! A fault-injecting S3 proxy, written here for the tests: it forwards every
//! request to a real S3 server (Garage) unchanged — the Host header too, so
//! signatures still verify — and by rules answers chosen operations badly
//! at a chosen rate: drops the connection before answering, answers 500 or
//! 503 `SlowDown` (S3's own error XML), stalls, or truncates the body.
//!
//! It is the storage a real bucket is on a bad day; what sits behind it is
//! the real server, so everything that is not a fault is the real protocol.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::{Request, Response};

/// Which S3 operation a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// PutObject (and anything else PUT that is not a part).
    Put,
    UploadPart,
    CreateMultipart,
    CompleteMultipart,
    /// A GET with a `Range` header.
    RangedGet,
    Get,
    /// ListObjectsV2 (a GET of the bucket).
    List,
    Head,
    Delete,
    Any,
}

impl Op {
    fn of(method: &hyper::Method, path: &str, query: &str, ranged: bool) -> Op {
        let has = |key: &str| {
            query
                .split('&')
                .any(|kv| kv == key || kv.starts_with(&format!("{key}=")))
        };
        // Path style: `/<bucket>` is the bucket, `/<bucket>/<key>` an object.
        let bucket_only = path.trim_matches('/').split('/').count() <= 1;
        match *method {
            hyper::Method::PUT if has("partNumber") => Op::UploadPart,
            hyper::Method::PUT => Op::Put,
            hyper::Method::POST if has("uploads") => Op::CreateMultipart,
            hyper::Method::POST if has("uploadId") => Op::CompleteMultipart,
            hyper::Method::GET if bucket_only => Op::List,
            hyper::Method::GET if ranged => Op::RangedGet,
            hyper::Method::GET => Op::Get,
            hyper::Method::HEAD => Op::Head,
            hyper::Method::DELETE => Op::Delete,
            _ => Op::Any,
        }
    }
}

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The connection closes before any answer.
    Drop,
    /// 500 InternalError.
    InternalError,
    /// 503 SlowDown, as S3 answers when throttling.
    SlowDown,
    /// The request waits this long before it is forwarded.
    Stall(Duration),
    /// The answer's body is cut in half (its Content-Length kept).
    Truncate,
    /// The request reaches the server and is carried out, then the
    /// connection closes before the answer: the client cannot know.
    LoseAnswer,
}

/// A rule: `fault` for requests of `op` (or every one, `Op::Any`), at
/// `rate` (0–1), at most `limit` times (`None`: no limit).
#[derive(Clone, Debug)]
pub struct Rule {
    pub op: Op,
    pub fault: Fault,
    pub rate: f64,
    pub limit: Option<u64>,
}

impl Rule {
    pub fn always(op: Op, fault: Fault) -> Self {
        Rule {
            op,
            fault,
            rate: 1.0,
            limit: None,
        }
    }
}

#[derive(Default)]
struct State {
    rules: Vec<(Rule, u64)>,
    /// Faults injected, by operation and kind.
    injected: BTreeMap<String, u64>,
    /// Requests seen, by operation.
    seen: BTreeMap<String, u64>,
    rng: u64,
}

impl State {
    fn next_random(&mut self) -> f64 {
        // xorshift64*: deterministic for a seed, enough for rates.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn choose(&mut self, op: Op) -> Option<Fault> {
        *self.seen.entry(format!("{op:?}")).or_default() += 1;
        let draw = self.next_random();
        let (rule, used) = self.rules.iter_mut().find(|(rule, used)| {
            (rule.op == op || rule.op == Op::Any) && rule.limit.is_none_or(|l| *used < l)
        })?;
        if draw >= rule.rate {
            return None;
        }
        *used += 1;
        let fault = rule.fault;
        *self
            .injected
            .entry(format!("{op:?} {fault:?}"))
            .or_default() += 1;
        Some(fault)
    }
}

/// The proxy: `url` is what the S3 client is given as its endpoint.
pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error_xml(code: &str, message: &str) -> Bytes {
    Bytes::from(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
    ))
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`http://127.0.0.1:PORT`); `seed` makes the rates repeatable.
    pub async fn start(upstream: &str, seed: u64) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            rng: seed | 1,
            ..Default::default()
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let upstream = upstream.trim_end_matches('/').to_string();
        let task = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let (state, client, upstream) =
                        (state.clone(), client.clone(), upstream.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let (state, client, upstream) =
                                (state.clone(), client.clone(), upstream.clone());
                            async move { handle(req, &state, &client, &upstream).await }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        Ok(FaultProxy { url, state, task })
    }

    /// Replaces the rules (and so ends the faults with an empty list).
    pub fn set(&self, rules: Vec<Rule>) {
        if let Ok(mut state) = self.state.lock() {
            state.rules = rules.into_iter().map(|r| (r, 0)).collect();
        }
    }

    /// Faults injected so far, by `"<op> <fault>"`.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.state
            .lock()
            .map(|s| s.injected.clone())
            .unwrap_or_default()
    }

    /// How many faults were injected in all.
    pub fn injected_total(&self) -> u64 {
        self.injected().values().sum()
    }

    /// Requests seen so far, by operation.
    pub fn seen(&self) -> BTreeMap<String, u64> {
        self.state
            .lock()
            .map(|s| s.seen.clone())
            .unwrap_or_default()
    }
}

/// A dropped connection: hyper closes it without an answer when the
/// service fails.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    req: Request<Incoming>,
    state: &Mutex<State>,
    client: &reqwest::Client,
    upstream: &str,
) -> Result<Response<BoxBody<Bytes, Dropped>>, Dropped> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let ranged = req.headers().contains_key(hyper::header::RANGE);
    let op = Op::of(req.method(), &path, &query, ranged);
    let fault = state.lock().ok().and_then(|mut s| s.choose(op));
    let (parts, body) = req.into_parts();
    // The request is read whole either way, as a server would.
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let status_answer = |status: u16, code: &str, message: &str| {
        let mut answer = Response::new(whole(error_xml(code, message)));
        *answer.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        answer.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/xml"),
        );
        Ok(answer)
    };
    match fault {
        Some(Fault::Drop) => return Err(Dropped),
        Some(Fault::InternalError) => {
            return status_answer(500, "InternalError", "injected by the fault proxy");
        }
        Some(Fault::SlowDown) => {
            return status_answer(503, "SlowDown", "Please reduce your request rate.");
        }
        Some(Fault::Stall(wait)) => tokio::time::sleep(wait).await,
        Some(Fault::Truncate | Fault::LoseAnswer) | None => {}
    }
    let target = match parts.uri.path_and_query() {
        Some(pq) => format!("{upstream}{pq}"),
        None => upstream.to_string(),
    };
    let method =
        reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).map_err(|_| Dropped)?;
    let mut forward = client.request(method, &target).body(body);
    for (name, value) in &parts.headers {
        // Host is kept as the client signed it; hop-by-hop headers are not forwarded.
        if matches!(name.as_str(), "connection" | "transfer-encoding") {
            continue;
        }
        forward = forward.header(name.as_str(), value.as_bytes());
    }
    let answer = forward.send().await.map_err(|_| Dropped)?;
    if fault == Some(Fault::LoseAnswer) {
        return Err(Dropped);
    }
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let mut bytes = answer.bytes().await.map_err(|_| Dropped)?;
    let mut response = Response::new(whole(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    for (name, value) in &headers {
        if matches!(name.as_str(), "connection" | "transfer-encoding") {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            hyper::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    if fault == Some(Fault::Truncate) {
        if bytes.len() < 2 {
            // Nothing to cut: the connection goes instead.
            return Err(Dropped);
        }
        // Half the body under the full Content-Length, then the connection
        // fails: what a client sees when a server dies mid-answer.
        bytes.truncate(bytes.len() / 2);
        let frames = futures::stream::iter([Ok(hyper::body::Frame::data(bytes)), Err(Dropped)]);
        *response.body_mut() = BoxBody::new(StreamBody::new(frames));
        return Ok(response);
    }
    *response.body_mut() = whole(bytes);
    Ok(response)
}

fn whole(bytes: Bytes) -> BoxBody<Bytes, Dropped> {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}
