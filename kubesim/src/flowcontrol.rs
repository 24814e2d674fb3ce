//! A limit on mutating requests in flight, as kube-apiserver's API Priority
//! and Fairness keeps one per priority level (and, before APF,
//! `--max-mutating-requests-inflight`): a request takes one of `seats`;
//! when all are taken it waits in a queue of `queue` places; when the queue
//! is full too it is rejected at once with what kube-apiserver answers then:
//! `429 Too Many Requests`, `Retry-After: 1` and a plain-text body (not a
//! `Status`), with the `X-Kubernetes-PF-*` headers naming the flow schema and
//! priority level.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The flow schema and priority level kubesim reports (those of a real
/// cluster's catch-all for workloads: `global-default`).
const FLOW_SCHEMA_UID: &str = "1b8b1a9f-3f4a-4a53-9cbb-6f8f62d4d0f1";
const PRIORITY_LEVEL_UID: &str = "6c1c4f0e-6d57-4b58-a0ad-0a1a3a2c8e11";

/// Seats and queue of the writes' priority level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteLimit {
    /// Mutating requests served at once.
    pub seats: usize,
    /// Requests that may wait for a seat; past that, 429.
    pub queue: usize,
}

/// The level's state, shared by every request.
#[derive(Debug)]
pub struct WriteSeats {
    limit: WriteLimit,
    seats: Arc<Semaphore>,
    waiting: AtomicUsize,
    rejected: AtomicU64,
    served: AtomicU64,
    peak: AtomicUsize,
}

/// A seat held for one request; released when dropped.
pub struct Seat {
    _permit: OwnedSemaphorePermit,
}

impl WriteSeats {
    pub fn new(limit: WriteLimit) -> Self {
        Self {
            limit,
            seats: Arc::new(Semaphore::new(limit.seats.max(1))),
            waiting: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            served: AtomicU64::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// A seat, after waiting in the queue if there is room; `Err` is the 429 to send.
    pub async fn admit(&self) -> Result<Seat, Response> {
        let permit = match self.seats.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Joining the queue is one atomic step, so it never holds more than `queue`.
                let joined = self
                    .waiting
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                        (w < self.limit.queue).then_some(w + 1)
                    })
                    .is_ok();
                if !joined {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(too_many_requests());
                }
                let permit = self.seats.clone().acquire_owned().await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                permit.map_err(|_| too_many_requests())?
            }
        };
        self.served.fetch_add(1, Ordering::Relaxed);
        let busy = self.limit.seats.max(1) - self.seats.available_permits();
        self.peak.fetch_max(busy, Ordering::Relaxed);
        Ok(Seat { _permit: permit })
    }

    /// Requests rejected with 429 so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Requests admitted so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// The most seats taken at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// kube-apiserver's rejection (`apiserver/pkg/server/filters`: `tooManyRequests`).
fn too_many_requests() -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests, please try again later.\n",
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "X-Kubernetes-PF-FlowSchema-UID",
        HeaderValue::from_static(FLOW_SCHEMA_UID),
    );
    h.insert(
        "X-Kubernetes-PF-PriorityLevel-UID",
        HeaderValue::from_static(PRIORITY_LEVEL_UID),
    );
    r
}

/// Whether a request counts against the writes' level.
pub fn is_mutating(method: &axum::http::Method) -> bool {
    use axum::http::Method;
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn seats_then_queue_then_429_with_retry_after() {
        let level = Arc::new(WriteSeats::new(WriteLimit { seats: 2, queue: 1 }));
        let a = level.admit().await.expect("seat 1");
        let _b = level.admit().await.expect("seat 2");
        // The third waits in the queue until a seat frees.
        let queued = tokio::spawn({
            let level = level.clone();
            async move { level.admit().await.map(|_| ()) }
        });
        while level.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The queue is full: the fourth is refused as kube-apiserver refuses it.
        let refused = level.admit().await.err().expect("429");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        assert!(
            refused
                .headers()
                .contains_key("X-Kubernetes-PF-PriorityLevel-UID")
        );
        assert_eq!(level.rejected(), 1);
        drop(a);
        assert!(queued.await.expect("join").is_ok());
        assert_eq!((level.served(), level.peak()), (3, 2));
    }
}
