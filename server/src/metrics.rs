//! Prometheus metrics (`GET /metrics`, OpenMetrics text through
//! `prometheus-client`): what happened in this process since it started
//! (runs finished by phase, their durations, items and bytes, HTTP request
//! latency by route), counted in [`Recorder`]. The engines and the router
//! push into it; nothing here reads them. The state now (gauges) is read
//! from the catalog at each scrape by `http::metrics`. Both are documented
//! in `docs/OPERATIONS.md`.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::DateTime;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

pub(crate) type Labels = Vec<(String, String)>;
pub(crate) type GaugeF = Gauge<f64, AtomicU64>;

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Seconds since the epoch of an RFC 3339 time.
pub(crate) fn epoch(t: Option<&str>) -> Option<f64> {
    let t = DateTime::parse_from_rfc3339(t?).ok()?;
    Some(t.timestamp_millis() as f64 / 1000.0)
}

fn seconds_histogram() -> Histogram {
    // 1 s to about 4.5 h.
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

/// What this process has seen happen.
#[derive(Clone)]
pub struct Recorder {
    backup_runs: Family<Labels, Counter>,
    restore_runs: Family<Labels, Counter>,
    drill_runs: Family<Labels, Counter>,
    backup_duration: Family<Labels, Histogram>,
    restore_duration: Family<Labels, Histogram>,
    backup_items: Counter,
    backup_bytes: Family<Labels, Counter>,
    http: Family<Labels, Histogram>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            backup_runs: Family::default(),
            restore_runs: Family::default(),
            drill_runs: Family::default(),
            backup_duration: Family::new_with_constructor(seconds_histogram),
            restore_duration: Family::new_with_constructor(seconds_histogram),
            backup_items: Counter::default(),
            backup_bytes: Family::default(),
            http: Family::new_with_constructor(|| {
                // 1 ms to about 16 s.
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
        }
    }
}

/// The process's recorder.
pub fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<Recorder> = OnceLock::new();
    RECORDER.get_or_init(Recorder::default)
}

impl Recorder {
    /// A backup run ended (`schedule`: empty for one made by hand).
    pub fn backup_finished(
        &self,
        phase: &str,
        schedule: &str,
        took: Duration,
        items: u64,
        resource_bytes: u64,
        volume_bytes: u64,
    ) {
        let by = labels(&[("phase", phase), ("schedule", schedule)]);
        self.backup_runs.get_or_create(&by).inc();
        self.backup_duration
            .get_or_create(&labels(&[("phase", phase)]))
            .observe(took.as_secs_f64());
        self.backup_items.inc_by(items);
        self.backup_bytes
            .get_or_create(&labels(&[("kind", "resources")]))
            .inc_by(resource_bytes);
        self.backup_bytes
            .get_or_create(&labels(&[("kind", "volumes")]))
            .inc_by(volume_bytes);
    }

    /// A restore run ended (dry runs included, as phase `Planned`).
    pub fn restore_finished(&self, phase: &str, took: Duration) {
        let by = labels(&[("phase", phase)]);
        self.restore_runs.get_or_create(&by).inc();
        self.restore_duration
            .get_or_create(&by)
            .observe(took.as_secs_f64());
    }

    pub fn drill_finished(&self, passed: bool) {
        let result = if passed { "passed" } else { "failed" };
        self.drill_runs
            .get_or_create(&labels(&[("result", result)]))
            .inc();
    }

    /// One HTTP request, by its route's pattern (`/api/v1/backups/{name}`).
    pub fn http_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let class = format!("{}xx", status / 100);
        self.http
            .get_or_create(&labels(&[
                ("method", method),
                ("route", route),
                ("code", &class),
            ]))
            .observe(took.as_secs_f64());
    }

    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "lifeboat_backup_runs",
            "Backup runs finished by this process, by phase and schedule",
            self.backup_runs.clone(),
        );
        r.register(
            "lifeboat_restore_runs",
            "Restore runs finished by this process, by phase",
            self.restore_runs.clone(),
        );
        r.register(
            "lifeboat_drill_runs",
            "Restore drills finished by this process, by result",
            self.drill_runs.clone(),
        );
        r.register_with_unit(
            "lifeboat_backup_duration",
            "How long backup runs took, by phase",
            Unit::Seconds,
            self.backup_duration.clone(),
        );
        r.register_with_unit(
            "lifeboat_restore_duration",
            "How long restore runs took, by phase",
            Unit::Seconds,
            self.restore_duration.clone(),
        );
        r.register(
            "lifeboat_backup_items",
            "Objects written by finished backup runs",
            self.backup_items.clone(),
        );
        r.register_with_unit(
            "lifeboat_backup",
            "Bytes written by finished backup runs: kind=resources (the archive) or volumes (after deduplication)",
            Unit::Bytes,
            self.backup_bytes.clone(),
        );
        r.register_with_unit(
            "lifeboat_http_request_duration",
            "HTTP requests served, by method, route and status class",
            Unit::Seconds,
            self.http.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn recorded_runs_come_out_as_openmetrics() {
        let r = Recorder::default();
        r.backup_finished("Completed", "nightly", Duration::from_secs(3), 42, 1000, 0);
        r.http_request(
            "GET",
            "/api/v1/backups/{name}",
            200,
            Duration::from_millis(4),
        );
        let mut registry = Registry::default();
        r.register(&mut registry);
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        assert!(
            out.contains(r#"lifeboat_backup_runs_total{phase="Completed",schedule="nightly"} 1"#),
            "{out}"
        );
        assert!(out.contains("lifeboat_backup_items_total 42"), "{out}");
        assert!(
            out.contains(r#"lifeboat_backup_bytes_total{kind="resources"} 1000"#),
            "{out}"
        );
        assert!(
            out.contains(r#"lifeboat_http_request_duration_seconds_count{method="GET",route="/api/v1/backups/{name}",code="2xx"} 1"#),
            "{out}"
        );
        assert!(out.ends_with("# EOF\n"), "{out}");
    }
}
