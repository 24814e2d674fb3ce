//! `GET /metrics`: the state now, as gauges read from the catalog, the
//! open storage locations and the watchers at each scrape (backups and
//! restores by phase, the last successful backup per schedule and per
//! namespace, each namespace's protection and restore proof, locations'
//! availability and usage, watch states), after the process's counters
//! ([`crate::metrics::Recorder`]). Nothing per pod: a scrape stays small on
//! a big cluster.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};

use crate::catalog::{BackupRecord, Catalog, CatalogError};
use crate::metrics::{GaugeF, Labels, epoch, labels, recorder};

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
                    .set(f64::from(u8::from(proven.state == s)));
            }
            if proven.state == "proven"
                && let Some(t) = epoch(proven.at.as_deref())
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
