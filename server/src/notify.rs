//! Notifications: webhooks told when something needs a person. The
//! notifier (the leader's, every 2 s) reads the activity log after its
//! cursor, turns entries into events (`EVENTS`), queues one delivery per
//! event and target that wants it, and sends what is due: generic JSON or a
//! Slack-compatible `{"text"}`, retried with backoff (2, 4, 8 … s, at most
//! 5 min apart) up to `MAX_ATTEMPTS`, each attempt recorded. Queueing is
//! idempotent, so a pass cut short is simply run again.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalog::{ActivityRecord, Catalog, CatalogError, Delivery, NotificationTarget};
use crate::config::Secret;
use crate::selection::SpecError;

/// Every event a target can ask for.
pub const EVENTS: &[&str] = &[
    "backup.failed",
    "backup.recovered",
    "restore.failed",
    "drill.failed",
    "drill.recovered",
    "schedule.missed",
];

/// Attempts per delivery before it is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `POST /api/v1/notification-targets` takes.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    pub name: String,
    /// `webhook` (generic JSON, the default) or `slack`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Where to POST; kept like a credential and never shown again.
    #[schema(value_type = String, format = Password)]
    pub url: Secret,
    /// Which events; all of them when empty.
    #[serde(default)]
    pub events: Vec<String>,
}

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

impl TargetSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        crate::selection::validate_name(&self.name).map_err(|e| err("name", e.message))?;
        let kind = self.kind();
        if !matches!(kind, "webhook" | "slack") {
            return Err(err(
                "kind",
                format!("`{kind}` is not a kind of target; use `webhook` or `slack`"),
            ));
        }
        let url = self.url.expose();
        let parsed =
            reqwest::Url::parse(url).map_err(|e| err("url", format!("is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(err("url", "must be an http:// or https:// URL with a host"));
        }
        if let Some(unknown) = self.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err(err(
                "events",
                format!(
                    "`{unknown}` is not an event; use any of {}",
                    EVENTS.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("webhook")
    }

    pub fn record(&self) -> NotificationTarget {
        let events: Vec<&str> = if self.events.is_empty() {
            EVENTS.to_vec()
        } else {
            self.events.iter().map(String::as_str).collect()
        };
        NotificationTarget {
            name: self.name.clone(),
            kind: self.kind().to_string(),
            url: self.url.expose().to_string(),
            events: json!(events).to_string(),
            created_at: crate::catalog::now(),
        }
    }
}

/// Where a target sends, without its secret: scheme and host only.
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or_default()),
        Err(_) => "(not a URL)".into(),
    }
}

fn wants(target: &NotificationTarget, event: &str) -> bool {
    serde_json::from_str::<Vec<String>>(&target.events).is_ok_and(|e| e.iter().any(|e| e == event))
}

fn failed_phase(phase: &str) -> bool {
    matches!(phase, "Failed" | "PartiallyFailed")
}

/// The events one activity entry means, each with its message.
async fn events_of(
    catalog: &Catalog,
    a: &ActivityRecord,
) -> Result<Vec<(&'static str, String)>, CatalogError> {
    let details: Value = a
        .details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    Ok(match a.kind.as_str() {
        "backup.finished" => {
            let phase = details["phase"].as_str().unwrap_or_default();
            if failed_phase(phase) {
                vec![("backup.failed", a.message.clone())]
            } else if phase == "Completed"
                && let Some(schedule) = details["schedule"].as_str()
                && previous_run_failed(catalog, schedule, &a.subject).await?
            {
                vec![(
                    "backup.recovered",
                    format!(
                        "{} (schedule {schedule} recovered after a failure)",
                        a.message
                    ),
                )]
            } else {
                vec![]
            }
        }
        "restore.finished" => {
            let name = a.subject.trim_start_matches("restore/");
            match catalog.restore(name).await {
                Ok(r) if failed_phase(&r.phase) => vec![("restore.failed", a.message.clone())],
                _ => vec![],
            }
        }
        "drill.failed" => vec![("drill.failed", a.message.clone())],
        "drill.passed" => {
            let id = details["drill"].as_str().unwrap_or_default();
            if previous_drill_failed(catalog, id).await? {
                vec![(
                    "drill.recovered",
                    format!("{} (after a failed drill)", a.message),
                )]
            } else {
                vec![]
            }
        }
        "schedule.run" if details["missed"].as_u64().is_some_and(|m| m > 0) => {
            vec![("schedule.missed", a.message.clone())]
        }
        "schedule.failed" => vec![("schedule.missed", a.message.clone())],
        _ => vec![],
    })
}

/// Whether the run of `schedule` before the backup `subject` failed.
async fn previous_run_failed(
    catalog: &Catalog,
    schedule: &str,
    subject: &str,
) -> Result<bool, CatalogError> {
    let name = subject.trim_start_matches("backup/");
    let mut runs = catalog
        .backups(&crate::catalog::BackupFilter {
            schedule: Some(schedule.to_string()),
            ..Default::default()
        })
        .await?;
    runs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
    let Some(at) = runs.iter().position(|b| b.name == name) else {
        return Ok(false);
    };
    Ok(at > 0 && failed_phase(&runs[at - 1].phase))
}

/// Whether the drill before `id` of the same namespaces failed.
async fn previous_drill_failed(catalog: &Catalog, id: &str) -> Result<bool, CatalogError> {
    let drills = catalog.drills(None).await?;
    let Some(this) = drills.iter().find(|d| d.id == id) else {
        return Ok(false);
    };
    let spaces = |d: &crate::catalog::DrillRecord| -> BTreeSet<String> {
        serde_json::from_str::<std::collections::BTreeMap<String, String>>(&d.namespaces)
            .map(|m| m.into_keys().collect())
            .unwrap_or_default()
    };
    let mine = spaces(this);
    let previous = drills
        .iter()
        .filter(|d| d.id != id && d.phase != crate::drill::RUNNING)
        .filter(|d| d.completed_at < this.completed_at)
        .filter(|d| !spaces(d).is_disjoint(&mine))
        .max_by(|a, b| a.completed_at.cmp(&b.completed_at));
    Ok(previous.is_some_and(|d| d.phase == crate::drill::FAILED))
}

/// The body a target receives.
pub fn payload(kind: &str, d: &Delivery) -> Value {
    match kind {
        "slack" => {
            let icon = if d.event.ends_with(".recovered") {
                ":white_check_mark:"
            } else {
                ":rotating_light:"
            };
            json!({"text": format!("{icon} *Lifeboat* {}: {}", d.event, d.message)})
        }
        _ => json!({
            "event": d.event, "subject": d.subject, "message": d.message, "at": d.created_at,
            "activityId": d.activity_id, "deliveryId": d.id, "lifeboatVersion": crate::VERSION,
        }),
    }
}

/// How long after attempt `n` (1, 2, …) the next one is made.
pub fn backoff(attempts: i64) -> Duration {
    Duration::from_secs(
        2u64.saturating_pow(u32::try_from(attempts.clamp(1, 30)).unwrap_or(30))
            .min(300),
    )
}

/// What a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub queued: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub given_up: usize,
}

/// Reads the activity log and sends what is due.
#[derive(Clone)]
pub struct Notifier {
    pub catalog: Catalog,
    pub http: reqwest::Client,
}

impl Notifier {
    pub fn new(catalog: Catalog) -> Self {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { catalog, http }
    }

    /// One pass at `now`: queue the events since the cursor, send what is due.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<Pass, CatalogError> {
        let mut pass = Pass::default();
        let targets = self.catalog.notification_targets().await?;
        match self.catalog.notification_cursor().await? {
            // First run: what happened before is history, not news.
            None => {
                if let Some(newest) = self.catalog.activity(None, 1).await?.first() {
                    self.catalog.set_notification_cursor(&newest.id).await?;
                } else {
                    self.catalog.set_notification_cursor("").await?;
                }
            }
            Some(cursor) => {
                let entries = self.catalog.activity_after(Some(&cursor), 500).await?;
                for a in &entries {
                    for (event, message) in events_of(&self.catalog, a).await? {
                        for t in targets.iter().filter(|t| wants(t, event)) {
                            if self
                                .catalog
                                .queue_delivery(&t.name, event, a, &message)
                                .await?
                            {
                                pass.queued += 1;
                            }
                        }
                    }
                }
                if let Some(last) = entries.last() {
                    self.catalog.set_notification_cursor(&last.id).await?;
                }
            }
        }
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        // What was queued just now is due now too.
        let now = now.max(Utc::now());
        for d in self.catalog.due_deliveries(&stamp(now), 50).await? {
            let Some(target) = targets.iter().find(|t| t.name == d.target) else {
                self.catalog
                    .record_attempt(&d.id, Err(("the target was removed", None)))
                    .await?;
                pass.given_up += 1;
                continue;
            };
            let body = payload(&target.kind, &d);
            let sent = self.http.post(&target.url).json(&body).send().await;
            let error = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("the receiver answered {}", r.status())),
                // Never the URL: it is a secret.
                Err(e) => Some(format!(
                    "could not be sent: {}",
                    if e.is_timeout() {
                        "no answer in time".to_string()
                    } else if e.is_connect() {
                        "the receiver could not be reached".to_string()
                    } else {
                        "the request failed".to_string()
                    }
                )),
            };
            match error {
                None => {
                    self.catalog.record_attempt(&d.id, Ok(())).await?;
                    pass.delivered += 1;
                }
                Some(error) if d.attempts + 1 >= MAX_ATTEMPTS => {
                    self.catalog
                        .record_attempt(&d.id, Err((&error, None)))
                        .await?;
                    tracing::warn!(target = %d.target, event = %d.event, %error, "a notification was given up");
                    pass.given_up += 1;
                }
                Some(error) => {
                    let next = now
                        + chrono::Duration::from_std(backoff(d.attempts + 1)).unwrap_or_default();
                    self.catalog
                        .record_attempt(&d.id, Err((&error, Some(&stamp(next)))))
                        .await?;
                    pass.retrying += 1;
                }
            }
        }
        Ok(pass)
    }

    /// Runs passes every 2 s while this replica leads.
    pub fn spawn(self, leadership: crate::schedule::Leadership) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if !leadership.is_leader() {
                    continue;
                }
                if let Err(e) = self.pass(Utc::now()).await {
                    tracing::warn!(error = %e, "the notification pass failed; will retry");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> TargetSpec {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn targets_are_checked_field_by_field() {
        for (body, field) in [
            (json!({"name": "Ops!", "url": "https://h/x"}), "name"),
            (
                json!({"name": "ops", "kind": "email", "url": "https://h/x"}),
                "kind",
            ),
            (json!({"name": "ops", "url": "hooks.slack.com/x"}), "url"),
            (json!({"name": "ops", "url": "ftp://h/x"}), "url"),
            (
                json!({"name": "ops", "url": "https://h/x", "events": ["backup.done"]}),
                "events",
            ),
        ] {
            assert_eq!(
                spec(body.clone()).validate().unwrap_err().field,
                field,
                "{body}"
            );
        }
        let ok = spec(
            json!({"name": "ops", "kind": "slack", "url": "https://hooks.example/T0/B0/secret"}),
        );
        ok.validate().unwrap();
        assert_eq!(ok.record().events, json!(EVENTS).to_string());
        assert_eq!(shown_url(&ok.record().url), "https://hooks.example/…");
        assert!(!format!("{ok:?}").contains("secret"));
    }

    #[test]
    fn retries_back_off_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(20), Duration::from_secs(300));
    }

    #[test]
    fn slack_gets_text_and_webhooks_get_the_event() {
        let d = Delivery {
            id: "d1".into(),
            target: "t".into(),
            event: "backup.recovered".into(),
            activity_id: "a1".into(),
            subject: "backup/nightly-1".into(),
            message: "backup nightly-1 Completed".into(),
            state: "pending".into(),
            attempts: 0,
            next_attempt_at: String::new(),
            last_error: None,
            created_at: String::new(),
            delivered_at: None,
        };
        assert_eq!(
            payload("slack", &d)["text"],
            ":white_check_mark: *Lifeboat* backup.recovered: backup nightly-1 Completed"
        );
        let generic = payload("webhook", &d);
        assert_eq!(generic["event"], "backup.recovered");
        assert_eq!(generic["subject"], "backup/nightly-1");
    }
}
