//! A namespace's timeline, from the change journals of the schedules with
//! continuous protection that cover it:
//! - `GET /api/v1/namespaces/{namespace}/timeline`: its changes (who made
//!   them: the `managedFields` manager) and their count per minute, with
//!   the gaps, over a window of at most 7 days;
//! - `GET /api/v1/namespaces/{namespace}/timeline/object`: one object as
//!   it was at an instant (its schedule's backup with the journal replayed
//!   over it), optionally with what differs from another instant.
//!
//! Both need `get backups` in the namespace (they read what its backups
//! hold); Secret values are never shown.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::backup::BackupSpec;
use crate::journal::{replay, timeline};
use crate::restore::spec::RestoreSpec;
use crate::selection::BackupSpecExt;
use frontend::model::{
    GapView, MinuteCount, NamespaceTimeline, ObjectAt, TimelineChange, TimelineSource,
};

/// The longest window one request reads.
const MAX_WINDOW: Duration = Duration::days(7);
/// The changes listed (the newest); the counts cover them all.
const SHOWN: usize = 1000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(namespace_timeline))
        .routes(routes!(object_at))
}

fn unprocessable(message: String) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message,
    }
}

fn instant(value: Option<&str>, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    unprocessable(format!(
                        "{field}: `{v}` is not an RFC 3339 instant; use e.g. 2026-11-29T14:32:07Z"
                    ))
                })
        })
        .transpose()
}

/// A journal's gap as the API shows it.
fn gap_view(g: &crate::journal::Gap) -> GapView {
    let at = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    GapView {
        group_resource: g.group_resource.clone(),
        from: at(&g.from),
        to: at(&g.to),
        reason: g.reason.clone(),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The schedules with continuous protection whose template covers `namespace`.
async fn covering(state: &AppState, namespace: &str) -> Result<Vec<(String, String)>, ApiError> {
    Ok(state
        .catalog
        .schedules()
        .await?
        .into_iter()
        .filter(|s| s.continuous != 0)
        .filter_map(|s| {
            let template: BackupSpec = serde_json::from_str(&s.template).ok()?;
            template
                .includes_namespace(namespace)
                .then(|| (s.name.clone(), template.storage_location().to_string()))
        })
        .collect())
}

async fn may_read(state: &AppState, who: &Principal, namespace: &str) -> Result<(), ApiError> {
    state
        .auth
        .require(
            who,
            &Check::in_each("get", "backups", Some(&[namespace.to_string()])),
        )
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Window {
    /// From (RFC 3339); default: 24 hours before `until`.
    since: Option<String>,
    /// Until (RFC 3339); default: now.
    until: Option<String>,
    /// Instead of `since`: this many hours before `until` (1 to 168).
    hours: Option<u32>,
}

#[utoipa::path(get, operation_id = "getNamespaceTimeline", path = "/api/v1/namespaces/{namespace}/timeline", tag = "cluster",
    params(("namespace" = String, Path, description = "The namespace"), Window),
    description = "The namespace's changes from the journals of schedules with continuous protection: per minute, the newest 1,000 with who made them, and the gaps. At most 7 days at once; `get backups` in the namespace.",
    responses((status = 200, description = "The changes, per minute and newest first, and the gaps", body = NamespaceTimeline)))]
async fn namespace_timeline(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(namespace): Path<String>,
    Query(window): Query<Window>,
) -> Result<Response, ApiError> {
    may_read(&state, &who, &namespace).await?;
    let until = instant(window.until.as_deref(), "until")?.unwrap_or_else(Utc::now);
    let since = match (instant(window.since.as_deref(), "since")?, window.hours) {
        (Some(since), _) => since,
        (None, Some(h)) if (1..=168).contains(&h) => until - Duration::hours(i64::from(h)),
        (None, Some(h)) => {
            return Err(unprocessable(format!(
                "hours: {h} is out of range; use 1 to 168"
            )));
        }
        (None, None) => until - Duration::hours(24),
    };
    if since >= until || until - since > MAX_WINDOW {
        return Err(unprocessable(format!(
            "since must come before until, at most {} days before it",
            MAX_WINDOW.num_days()
        )));
    }
    let mut changes: Vec<TimelineChange> = Vec::new();
    let mut times = Vec::new();
    let mut gaps = Vec::new();
    let mut schedules = Vec::new();
    for (schedule, location) in covering(&state, &namespace).await? {
        let Some(store) = state.locations.get(&location) else {
            schedules.push(TimelineSource {
                name: schedule,
                location,
                error: Some("the location is not open".into()),
                ..Default::default()
            });
            continue;
        };
        // What the writer holds goes to storage first (when it runs here).
        let unwritten = crate::journal::flush(store.as_ref(), &schedule, false)
            .await
            .err()
            .map(|e| e.to_string());
        let key = crate::volumes::archive_key(&state.catalog, &location)
            .await
            .ok()
            .flatten();
        let read = replay::changes(
            replay::Source {
                store: &store,
                schedule: &schedule,
                key: key.as_ref(),
            },
            since,
            until,
            &|_, ns| ns == Some(namespace.as_str()),
            |line| {
                let Some(at) = line.at else { return };
                times.push(at);
                changes.push(TimelineChange {
                    at: rfc3339(at),
                    op: line.op,
                    kind: line.object_kind(),
                    group_resource: line.group_resource.clone(),
                    name: line.name.clone(),
                    resource_version: line.resource_version.clone(),
                    manager: line.manager.clone(),
                    operation: line.operation.clone(),
                    schedule: schedule.clone(),
                });
            },
        )
        .await;
        match read {
            Ok(found) => {
                gaps.extend(found.iter().map(gap_view));
                schedules.push(TimelineSource {
                    writer: state.journals.status(&schedule),
                    name: schedule,
                    location,
                    error: None,
                    unwritten,
                });
            }
            Err(e) => schedules.push(TimelineSource {
                name: schedule,
                location,
                error: Some(e.to_string()),
                ..Default::default()
            }),
        }
    }
    let total = changes.len();
    changes.reverse();
    changes.truncate(SHOWN);
    let per_minute = timeline::per_minute(times)
        .into_iter()
        .map(|(minute, count)| MinuteCount {
            minute: rfc3339(minute),
            count,
        })
        .collect();
    let hint = schedules.is_empty().then(|| {
        format!("No schedule with continuous protection covers {namespace}: create one with continuous: true (lifeboat schedule create … --continuous) to record every change.")
    });
    Ok(Json(NamespaceTimeline {
        namespace,
        since: rfc3339(since),
        until: rfc3339(until),
        schedules,
        hint,
        per_minute,
        changes,
        total,
        gaps,
    })
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct ObjectQuery {
    /// The group-resource (`configmaps`, `deployments.apps`).
    resource: String,
    name: String,
    /// The instant (RFC 3339).
    at: String,
    /// Another instant to compare with (the earlier state), or `before`:
    /// just before `at` (what the change at `at` did).
    compare_to: Option<String>,
    /// The schedule whose journal is read; default: the first that covers the namespace.
    schedule: Option<String>,
}

/// The object as it was at `at`, and the replay's report. `read` keeps
/// what a base backup held of the object, so that two instants over the
/// same base read its archive once.
async fn state_at(
    state: &AppState,
    schedule: &str,
    (namespace, resource, name): (&str, &str, &str),
    at: DateTime<Utc>,
    read: &mut Option<(String, Vec<crate::restore::items::Item>)>,
) -> Result<(Option<Value>, replay::Report), ApiError> {
    let mut spec = RestoreSpec {
        from_schedule: Some(schedule.to_string()),
        at: Some(rfc3339(at)),
        included_namespaces: vec![namespace.to_string()],
        ..Default::default()
    };
    // Without a backup before the instant, the journal alone (it lists
    // everything when it begins).
    let base = match crate::restore::resolve_point_in_time(&state.catalog, &mut spec).await {
        Ok(()) => Some(state.catalog.backup(&spec.backup_name).await?),
        Err(_) => None,
    };
    let location = match &base {
        Some(b) => b.storage_location.clone(),
        None => {
            let record = state.catalog.schedule(schedule).await?;
            serde_json::from_str::<BackupSpec>(&record.template)
                .map(|t| t.storage_location().to_string())
                .unwrap_or_else(|_| "default".into())
        }
    };
    let store = state.locations.require(&location)?;
    let key = crate::volumes::archive_key(&state.catalog, &location)
        .await
        .ok()
        .flatten();
    let (items, since) = match &base {
        Some(b) => {
            let cached = read
                .as_ref()
                .filter(|(n, _)| *n == b.name)
                .map(|(_, i)| i.clone());
            let items = match cached {
                Some(items) => items,
                None => {
                    let (_, items) = crate::restore::engine::load(
                        &store,
                        &b.name,
                        Some(&spec),
                        key.as_ref(),
                        b.format_version,
                    )
                    .await
                    .map_err(|e| {
                        ApiError::new(
                            StatusCode::BAD_GATEWAY,
                            format!("backup {} could not be read: {e}", b.name),
                        )
                    })?;
                    let items: Vec<_> = items
                        .into_iter()
                        .filter(|i| i.group_resource == resource && i.name == name)
                        .collect();
                    *read = Some((b.name.clone(), items.clone()));
                    items
                }
            };
            let since = b
                .started_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or(at, |t| t.with_timezone(&Utc));
            (items, since)
        }
        None => (Vec::new(), DateTime::<Utc>::MIN_UTC),
    };
    let mut report = replay::Report {
        at: Some(at),
        base: spec.backup_name.clone(),
        ..Default::default()
    };
    let replayed = replay::to_instant(
        replay::Source {
            store: &store,
            schedule,
            key: key.as_ref(),
        },
        items,
        since,
        at,
        &|gr, ns| gr == resource && ns == Some(namespace),
        &mut report,
    )
    .await
    .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    let object = replayed
        .into_iter()
        .find(|i| i.name == name && i.namespace.as_deref() == Some(namespace))
        .map(|i| i.object);
    Ok((object, report))
}

#[utoipa::path(get, operation_id = "getObjectAtInstant", path = "/api/v1/namespaces/{namespace}/timeline/object", tag = "cluster",
    params(("namespace" = String, Path, description = "The namespace"), ObjectQuery),
    description = "One object as it was at an instant (its schedule's newest backup before it, with the journal replayed), and with `compareTo` what differs from that earlier instant. Secret values are redacted; `get backups` in the namespace.",
    responses((status = 200, description = "The object at the instant, and what differs", body = ObjectAt)))]
async fn object_at(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(namespace): Path<String>,
    Query(q): Query<ObjectQuery>,
) -> Result<Response, ApiError> {
    may_read(&state, &who, &namespace).await?;
    let at = instant(Some(&q.at), "at")?.unwrap_or_else(Utc::now);
    let compare_to = match q.compare_to.as_deref() {
        Some("before") => Some(at - Duration::milliseconds(1)),
        other => instant(other, "compareTo")?,
    };
    let covering = covering(&state, &namespace).await?;
    let schedule = match &q.schedule {
        Some(s) if covering.iter().any(|(n, _)| n == s) => s.clone(),
        Some(s) => {
            return Err(unprocessable(format!(
                "schedule {s} keeps no journal of {namespace}"
            )));
        }
        None => match covering.first() {
            Some((n, _)) => n.clone(),
            None => {
                return Err(ApiError::not_found(format!(
                    "no schedule with continuous protection covers {namespace}"
                )));
            }
        },
    };
    let object = (namespace.as_str(), q.resource.as_str(), q.name.as_str());
    let mut read = None;
    let (after, report) = state_at(&state, &schedule, object, at, &mut read).await?;
    let before = match compare_to {
        Some(t) => Some(state_at(&state, &schedule, object, t, &mut read).await?.0),
        None => None,
    };
    let diff = before.as_ref().map(|b| {
        timeline::diff(
            b.as_ref().unwrap_or(&Value::Null),
            after.as_ref().unwrap_or(&Value::Null),
        )
    });
    let shown = |o: Option<Value>| o.map(super::backups::redact);
    let gaps = report.gaps.iter().map(gap_view).collect();
    Ok(Json(ObjectAt {
        schedule,
        at: rfc3339(at),
        exists: after.is_some(),
        object: shown(after),
        compare_to: compare_to.map(rfc3339),
        before: before.map(shown),
        diff,
        gaps,
        base: report.base,
    })
    .into_response())
}
