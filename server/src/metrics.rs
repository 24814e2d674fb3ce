//! Prometheus metrics (`GET /metrics`, OpenMetrics text through
//! `prometheus-client`). Two kinds, each documented in `docs/OPERATIONS.md`:
//!
//! - what happened in this process since it started: runs finished by
//!   phase, their durations, items and bytes, HTTP request latency by
//!   route (counters and histograms in [`Recorder`], shared by the runners
//!   and the router);
//! - the state now, read at each scrape from the catalog, the open storage
//!   locations and the watchers: backups and restores by phase, the last
//!   successful backup per schedule and per namespace, each namespace's
//!   protection and restore proof, locations' availability and usage, watch
//!   states. Nothing per pod: a scrape stays small on a big cluster.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::catalog::{BackupRecord, Catalog, CatalogError};

type Labels = Vec<(String, String)>;
type GaugeF = Gauge<f64, AtomicU64>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Seconds since the epoch of an RFC 3339 time.
fn epoch(t: Option<&str>) -> Option<f64> {
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

    fn register(&self, r: &mut Registry) {
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

/// The state now, as gauges.
#[derive(Default)]
struct State {
    backups: Family<Labels, GaugeF>,
    restores: Family<Labels, GaugeF>,
    last_success_schedule: Family<Labels, GaugeF>,
    schedule_created: Family<Labels, GaugeF>,
    schedule_interval: Family<Labels, GaugeF>,
    schedule_paused: Family<Labels, GaugeF>,
    last_success_namespace: Family<Labels, GaugeF>,
    protection: Family<Labels, GaugeF>,
    proven: Family<Labels, GaugeF>,
    proven_at: Family<Labels, GaugeF>,
    location_available: Family<Labels, GaugeF>,
    location_used: Family<Labels, GaugeF>,
    watch_up: Family<Labels, GaugeF>,
}

impl State {
    fn register(self, r: &mut Registry) {
        r.register(
            "lifeboat_backups",
            "Backups in the catalog, by phase and storage location",
            self.backups,
        );
        r.register(
            "lifeboat_restores",
            "Restores in the catalog, by phase",
            self.restores,
        );
        r.register_with_unit(
            "lifeboat_schedule_last_success_timestamp",
            "When the newest successful backup of each schedule completed (Unix time)",
            Unit::Seconds,
            self.last_success_schedule,
        );
        r.register_with_unit(
            "lifeboat_schedule_created_timestamp",
            "When each schedule was created (Unix time): what an alert measures from until its first success",
            Unit::Seconds,
            self.schedule_created,
        );
        r.register_with_unit(
            "lifeboat_schedule_interval",
            "The time between two runs of each schedule",
            Unit::Seconds,
            self.schedule_interval,
        );
        r.register(
            "lifeboat_schedule_paused",
            "1 when the schedule is paused",
            self.schedule_paused,
        );
        r.register_with_unit(
            "lifeboat_namespace_last_backup_timestamp",
            "When the newest successful backup holding each namespace completed (Unix time)",
            Unit::Seconds,
            self.last_success_namespace,
        );
        r.register(
            "lifeboat_namespace_protection",
            "Each namespace's protection: 1 for its state (protected, stale, unprotected)",
            self.protection,
        );
        r.register(
            "lifeboat_namespace_restore_proven",
            "Each namespace's newest restore drill: 1 for its state (proven, failed, never)",
            self.proven,
        );
        r.register_with_unit(
            "lifeboat_namespace_restore_proven_timestamp",
            "When a drill last proved the namespace restores (Unix time)",
            Unit::Seconds,
            self.proven_at,
        );
        r.register(
            "lifeboat_storage_location_available",
            "1 when the storage location's last check passed",
            self.location_available,
        );
        r.register_with_unit(
            "lifeboat_storage_location_used",
            "Bytes of the backups' archives in each storage location, from the catalog",
            Unit::Bytes,
            self.location_used,
        );
        r.register(
            "lifeboat_watch_up",
            "1 when the watch of a resource is live (0: starting, reconnecting or not permitted)",
            self.watch_up,
        );
    }
}

fn successful(b: &BackupRecord) -> bool {
    crate::backup::BackupPhase::parse(&b.phase).is_some_and(|p| p.is_restorable())
        && b.missing_from_storage == 0
}

/// Renders every metric for one scrape.
pub async fn render(
    catalog: &Catalog,
    health: Option<&crate::health::watch::ClusterState>,
    now: DateTime<Utc>,
) -> Result<String, CatalogError> {
    let state = State::default();
    let backups = catalog.backups(&Default::default()).await?;
    let mut by_phase: BTreeMap<(String, String), f64> = BTreeMap::new();
    for b in &backups {
        *by_phase
            .entry((b.phase.clone(), b.storage_location.clone()))
            .or_default() += 1.0;
    }
    for ((phase, location), n) in by_phase {
        state
            .backups
            .get_or_create(&labels(&[("phase", &phase), ("location", &location)]))
            .set(n);
    }
    for (phase, n) in catalog.restore_phase_counts().await? {
        state
            .restores
            .get_or_create(&labels(&[("phase", &phase)]))
            .set(n as f64);
    }
    for s in catalog.schedules().await? {
        let by = labels(&[("schedule", &s.name)]);
        let last = backups
            .iter()
            .filter(|b| b.schedule.as_deref() == Some(s.name.as_str()) && successful(b))
            .filter_map(|b| epoch(b.completed_at.as_deref()))
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        if let Some(t) = last {
            state.last_success_schedule.get_or_create(&by).set(t);
        }
        if let Some(t) = epoch(Some(&s.created_at)) {
            state.schedule_created.get_or_create(&by).set(t);
        }
        let runs = crate::schedule::next_runs(&s, now);
        if let (Some(a), Some(b)) = (runs.first(), runs.get(1)) {
            state
                .schedule_interval
                .get_or_create(&by)
                .set((*b - *a).num_seconds() as f64);
        }
        state
            .schedule_paused
            .get_or_create(&by)
            .set(f64::from(u8::from(s.paused != 0)));
    }
    if let Some(health) = health {
        let namespaces: Vec<String> = health
            .namespaces
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let protection =
            crate::health::protection::of_namespaces(catalog, &backups, &namespaces, now).await?;
        let drills = catalog.drills(None).await?;
        for (ns, (p, last)) in namespaces.iter().zip(protection) {
            let p = serde_json::to_value(p).unwrap_or_default();
            for s in ["protected", "stale", "unprotected"] {
                state
                    .protection
                    .get_or_create(&labels(&[("namespace", ns), ("state", s)]))
                    .set(f64::from(u8::from(p == s)));
            }
            if let Some(t) = last
                .and_then(|name| backups.iter().find(|b| b.name == name))
                .and_then(|b| epoch(b.completed_at.as_deref()))
            {
                state
                    .last_success_namespace
                    .get_or_create(&labels(&[("namespace", ns)]))
                    .set(t);
            }
            let proven = crate::drill::proven(&drills, ns, now);
            for s in ["proven", "failed", "never"] {
                state
                    .proven
                    .get_or_create(&labels(&[("namespace", ns), ("state", s)]))
                    .set(f64::from(u8::from(proven["state"] == s)));
            }
            if proven["state"] == "proven"
                && let Some(t) = epoch(proven["at"].as_str())
            {
                state
                    .proven_at
                    .get_or_create(&labels(&[("namespace", ns)]))
                    .set(t);
            }
        }
        for (resource, watch) in health.watch_states() {
            state
                .watch_up
                .get_or_create(&labels(&[("resource", resource)]))
                .set(f64::from(u8::from(
                    watch == crate::health::watch::WatchState::Live,
                )));
        }
    }
    for l in catalog.storage_locations().await? {
        let by = labels(&[("location", &l.name)]);
        state
            .location_available
            .get_or_create(&by)
            .set(f64::from(u8::from(l.availability == "available")));
        let used: i64 = backups
            .iter()
            .filter(|b| b.storage_location == l.name)
            .filter_map(|b| b.size_bytes)
            .sum();
        state.location_used.get_or_create(&by).set(used as f64);
    }
    let mut registry = Registry::default();
    recorder().register(&mut registry);
    state.register(&mut registry);
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    if let Err(e) = encode(&mut out, &registry) {
        tracing::error!(error = %e, "encoding the metrics failed");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
