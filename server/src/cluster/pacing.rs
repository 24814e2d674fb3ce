//! How Lifeboat's clients pace their requests to an API server that may be
//! far away and busy. Every client [`super::Cluster`] makes goes through
//! [`paced`]:
//!
//! - **Writes** (POST, PUT, PATCH, DELETE) take a slot of an adaptive window
//!   (AIMD, as TCP's congestion window): it starts at [`INITIAL_WINDOW`],
//!   doubles each round while the server accepts (slow start), then grows by
//!   one a round, up to [`MAX_WINDOW`]; a 429 or 5xx halves it (once per
//!   round, so a burst of rejections is one signal). A high latency alone
//!   does not shrink it: more in flight is what hides a remote server's
//!   round trip.
//! - **429, 503 and 504** are retried (up to [`MAX_RETRIES`] times, as
//!   client-go does) after the server's `Retry-After` (at most
//!   [`MAX_RETRY_AFTER`]), or an exponential backoff when it names none, as
//!   client-go does; a write then takes a slot again, in a window the
//!   rejection has halved. kube-rs's own retry layer is turned off for these clients: it would
//!   hide the 429s from the window.
//! - **Reads** (lists, watches, gets) take no slot.
//!
//! [`totals`] counts what happened, process-wide (the restore benchmark and
//! the throttling test read it; `/metrics` does not show it yet).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{self, Method, Request, Response, StatusCode};
use kube::client::Body;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Writes in flight at first.
pub const INITIAL_WINDOW: usize = 8;
/// Writes in flight at most, however well the server takes them.
pub const MAX_WINDOW: usize = 64;
/// Tries after the first for a throttled request (client-go's `maxRetries`).
pub const MAX_RETRIES: u32 = 10;
/// The longest `Retry-After` honoured: longer asks are taken as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

static THROTTLED: AtomicU64 = AtomicU64::new(0);
static RETRIES: AtomicU64 = AtomicU64::new(0);
static GAVE_UP: AtomicU64 = AtomicU64::new(0);
static PEAK_WINDOW: AtomicU64 = AtomicU64::new(INITIAL_WINDOW as u64);

/// What every paced client of this process met so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Responses 429, 503 or 504.
    pub throttled: u64,
    /// Requests sent again after one.
    pub retries: u64,
    /// Requests still throttled after [`MAX_RETRIES`], returned as they were.
    pub gave_up: u64,
    /// The widest write window reached.
    pub peak_window: u64,
}

pub fn totals() -> Totals {
    Totals {
        throttled: THROTTLED.load(Ordering::Relaxed),
        retries: RETRIES.load(Ordering::Relaxed),
        gave_up: GAVE_UP.load(Ordering::Relaxed),
        peak_window: PEAK_WINDOW.load(Ordering::Relaxed),
    }
}

/// What a response says about the server's load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signal {
    /// Taken (whatever the status): the window may grow.
    Accepted,
    /// 429, 503, 504: back off for this long, then try again.
    Throttled(Option<Duration>),
    /// Another 5xx, or no answer: the window shrinks; not retried here.
    Failing,
}

/// How a response is read: the status and `Retry-After` (seconds; an
/// HTTP date or garbage counts as absent).
pub fn classify(status: StatusCode, retry_after: Option<&str>) -> Signal {
    match status.as_u16() {
        429 | 503 | 504 => Signal::Throttled(
            retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER)),
        ),
        500..=599 => Signal::Failing,
        _ => Signal::Accepted,
    }
}

/// The write window of one client, shared by its clones.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<Window>,
    changed: Notify,
}

#[derive(Debug)]
struct Window {
    size: f64,
    /// Below it the window doubles each round; set by the first cut.
    threshold: f64,
    in_flight: usize,
    /// A round: the smoothed time an accepted write takes.
    srtt: Duration,
    /// No second cut before this: one per round.
    next_cut: Option<Instant>,
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            state: Mutex::new(Window {
                size: INITIAL_WINDOW as f64,
                threshold: MAX_WINDOW as f64,
                in_flight: 0,
                srtt: Duration::ZERO,
                next_cut: None,
            }),
            changed: Notify::new(),
        }
    }
}

/// A write's slot in the window; given back when dropped.
pub struct Slot {
    pacer: Arc<Pacer>,
    sent: Instant,
}

impl Pacer {
    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        // The state stays consistent under a panic (plain numbers).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The window's size now.
    pub fn size(&self) -> usize {
        self.window().size as usize
    }

    /// Waits for a slot: fewer writes in flight than the window.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a slot freed in between wakes it.
            notified.as_mut().enable();
            {
                let mut w = self.window();
                if (w.in_flight as f64) < w.size.floor().max(1.0) {
                    w.in_flight += 1;
                    return Slot {
                        pacer: self.clone(),
                        sent: Instant::now(),
                    };
                }
            }
            notified.await;
        }
    }

    /// Adjusts the window for a write's outcome (`rtt`: how long it took).
    /// `Retry-After` is the rejected request's own wait; it does not stretch the round.
    fn record(&self, signal: Signal, rtt: Duration) {
        let mut w = self.window();
        let now = Instant::now();
        match signal {
            Signal::Accepted => {
                w.srtt = if w.srtt.is_zero() {
                    rtt
                } else {
                    (w.srtt * 7 + rtt) / 8
                };
                w.size = if w.size < w.threshold {
                    w.size + 1.0
                } else {
                    w.size + 1.0 / w.size
                }
                .min(MAX_WINDOW as f64);
                PEAK_WINDOW.fetch_max(w.size as u64, Ordering::Relaxed);
            }
            Signal::Throttled(_) | Signal::Failing => {
                if w.next_cut.is_none_or(|t| now >= t) {
                    w.size = (w.size / 2.0).max(1.0);
                    w.threshold = w.size;
                    // Writes sent before the cut answer within a round: their
                    // rejections are the same signal.
                    w.next_cut = Some(now + w.srtt.max(rtt));
                }
            }
        }
    }
}

impl Slot {
    fn finish(self, signal: Signal) {
        self.pacer.record(signal, self.sent.elapsed());
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pacer.window().in_flight -= 1;
        self.pacer.changed.notify_waiters();
    }
}

fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// A copy to send again, when the body is in memory (every kube-rs request's is).
fn copy(req: &Request<Body>) -> Option<Request<Body>> {
    let body = req.body().try_clone()?;
    let mut out = Request::new(body);
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.version_mut() = req.version();
    *out.headers_mut() = req.headers().clone();
    *out.extensions_mut() = req.extensions().clone();
    Some(out)
}

/// The backoff when a throttled answer names no `Retry-After`: 250 ms doubling, at most 8 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250)
        .saturating_mul(1 << attempt.min(5))
        .min(Duration::from_secs(8))
}

async fn send(
    inner: kube::Client,
    pacer: Arc<Pacer>,
    mut req: Request<Body>,
) -> Result<Response<Body>, kube::Error> {
    let write = is_write(req.method());
    let mut attempt = 0;
    loop {
        let again = if attempt < MAX_RETRIES {
            copy(&req)
        } else {
            None
        };
        let slot = if write {
            Some(pacer.acquire().await)
        } else {
            None
        };
        let res = inner.send(req).await;
        let signal = match &res {
            Ok(r) => classify(
                r.status(),
                r.headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            ),
            Err(_) => Signal::Failing,
        };
        if let Some(slot) = slot {
            slot.finish(signal);
        }
        let Signal::Throttled(after) = signal else {
            return res;
        };
        THROTTLED.fetch_add(1, Ordering::Relaxed);
        let Some(next) = again else {
            if attempt >= MAX_RETRIES {
                GAVE_UP.fetch_add(1, Ordering::Relaxed);
            }
            return res;
        };
        let wait = after.unwrap_or_else(|| backoff(attempt));
        tracing::debug!(
            status = res.as_ref().map(|r| r.status().as_u16()).unwrap_or(0),
            wait_ms = wait.as_millis() as u64,
            attempt,
            "the API server is throttling; waiting before trying again"
        );
        tokio::time::sleep(wait).await;
        RETRIES.fetch_add(1, Ordering::Relaxed);
        attempt += 1;
        req = next;
    }
}

/// The tower service between a [`kube::Client`] and the one under it.
#[derive(Clone)]
struct Paced {
    inner: kube::Client,
    pacer: Arc<Pacer>,
}

impl tower::Service<Request<Body>> for Paced {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        Box::pin(send(self.inner.clone(), self.pacer.clone(), req))
    }
}

/// `inner` (built with `default_retry` off) behind a write window of its
/// own. Must be called within a Tokio runtime.
pub fn paced(inner: kube::Client) -> kube::Client {
    let ns = inner.default_namespace().to_string();
    kube::Client::new(
        Paced {
            inner,
            pacer: Arc::new(Pacer::default()),
        },
        ns,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_statuses_carry_their_retry_after_within_bounds() {
        let s = |code: u16| StatusCode::from_u16(code).expect("status");
        assert_eq!(
            classify(s(429), Some("1")),
            Signal::Throttled(Some(Duration::from_secs(1)))
        );
        assert_eq!(
            classify(s(503), Some("3600")),
            Signal::Throttled(Some(MAX_RETRY_AFTER))
        );
        assert_eq!(
            classify(s(504), Some("Wed, 21 Oct 2026 07:28:00 GMT")),
            Signal::Throttled(None)
        );
        assert_eq!(classify(s(500), Some("1")), Signal::Failing);
        for ok in [200, 201, 404, 409, 422] {
            assert_eq!(classify(s(ok), None), Signal::Accepted, "{ok}");
        }
    }

    #[tokio::test]
    async fn the_window_grows_while_accepted_and_halves_once_per_round_when_throttled() {
        let pacer = Arc::new(Pacer::default());
        // Slow start: one more per accepted write, up to the cap.
        let round = Duration::from_millis(50);
        for _ in 0..100 {
            pacer.record(Signal::Accepted, round);
        }
        assert_eq!(pacer.size(), MAX_WINDOW);
        // A burst of rejections within one round (answered at once) is one cut.
        for _ in 0..5 {
            pacer.record(
                Signal::Throttled(Some(Duration::from_secs(1))),
                Duration::ZERO,
            );
        }
        assert_eq!(pacer.size(), MAX_WINDOW / 2);
        // Past the threshold growth is additive: about +1 per window of acceptances.
        for _ in 0..MAX_WINDOW / 2 + 2 {
            pacer.record(Signal::Accepted, round);
        }
        assert_eq!(pacer.size(), MAX_WINDOW / 2 + 1);
    }

    #[tokio::test]
    async fn writes_wait_for_a_slot_and_a_cut_window_admits_fewer() {
        let pacer = Arc::new(Pacer::default());
        let mut held: Vec<Slot> =
            futures::future::join_all((0..INITIAL_WINDOW).map(|_| pacer.acquire())).await;
        // Polled here, so "pending" means it asked and was told to wait.
        let mut waiting = Box::pin(pacer.acquire());
        assert!(
            futures::poll!(&mut waiting).is_pending(),
            "the window is full"
        );
        // A rejection halves the window: freeing one slot of eight in flight admits no one.
        held.pop()
            .expect("slot")
            .finish(Signal::Throttled(Some(Duration::from_secs(1))));
        assert!(
            futures::poll!(&mut waiting).is_pending(),
            "seven in flight, window four"
        );
        held.truncate(3);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("admitted once fewer than four are in flight");
    }
}
