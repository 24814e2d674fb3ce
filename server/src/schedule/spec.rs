//! A schedule as users write it, its validation, and the pure arithmetic the
//! scheduler runs on: next run times, what is due (with the missed-run
//! policy), and which backups retention lets go. No I/O here: the clock is a
//! parameter, so tests control it.

use crate::backup::{BackupSpec, BackupSpecExt, SpecError};
use crate::catalog::{BackupPhase, BackupRecord, ScheduleRecord};
use chrono::{DateTime, TimeZone, Utc};

pub use frontend::model::{Retention, ScheduleSpec};

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Backups of a schedule are named `<schedule>-<YYYYMMDDhhmmss>` (UTC).
pub const MAX_NAME: usize = 63 - 15;

/// A parsed cron expression in its time zone.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl CronSchedule {
    /// Parses five fields or a macro, in an IANA time zone; errors name the field.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, SpecError> {
        let expression = expression.trim();
        let fields = expression.split_whitespace().count();
        if !expression.starts_with('@') && fields != 5 {
            return Err(err(
                "schedule",
                format!(
                    "`{expression}` has {fields} field(s); use five (minute hour day-of-month month day-of-week), e.g. `0 1 * * *`, or a macro such as `@daily`"
                ),
            ));
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| {
                err(
                    "schedule",
                    format!("`{expression}` is not a valid cron expression: {e}"),
                )
            })?;
        let tz: chrono_tz::Tz = timezone.parse().map_err(|_| {
            err(
                "timezone",
                format!("`{timezone}` is not an IANA time zone; use a name such as UTC, Europe/Berlin or America/New_York"),
            )
        })?;
        Ok(Self { cron, tz })
    }

    /// The next `n` run times strictly after `after`.
    pub fn next_runs(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut t = after.with_timezone(&self.tz);
        while out.len() < n {
            match self.cron.find_next_occurrence(&t, false) {
                Ok(next) => {
                    out.push(next.with_timezone(&Utc));
                    t = next;
                }
                Err(_) => break,
            }
        }
        out
    }

    /// The newest run time at or before `at`.
    fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&at.with_timezone(&self.tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// A run that is due: the slot it is for, and how many earlier slots since
/// the last run were missed (they are not run: one run catches up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub slot: DateTime<Utc>,
    pub missed: u32,
}

/// How many missed slots are counted before saying "at least".
pub const MISSED_COUNT_CAP: u32 = 1000;

/// What is due at `now` for a schedule last run for slot `since` (or created
/// / resumed then): the newest slot after `since`, once, however many passed.
pub fn due(cron: &CronSchedule, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<Due> {
    let slot = cron.latest_at_or_before(now)?;
    if slot <= since {
        return None;
    }
    let mut missed = 0;
    let mut t = since;
    while missed < MISSED_COUNT_CAP {
        match cron.next_runs(t, 1).first() {
            Some(next) if *next < slot => {
                missed += 1;
                t = *next;
            }
            _ => break,
        }
    }
    Some(Due { slot, missed })
}

/// The name of the backup a schedule makes for a slot.
pub fn backup_name(schedule: &str, slot: DateTime<Utc>) -> String {
    format!("{schedule}-{}", slot.format("%Y%m%d%H%M%S"))
}

fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Where a schedule's due runs are counted from: its last run, or when it was
/// created or last changed (edits and resumes do not make past slots "missed").
pub fn counted_from(record: &ScheduleRecord) -> DateTime<Utc> {
    [
        record.last_run_at.as_deref(),
        Some(record.created_at.as_str()),
        Some(record.updated_at.as_str()),
    ]
    .into_iter()
    .flatten()
    .filter_map(parse_time)
    .max()
    .unwrap_or_else(|| Utc.timestamp_opt(0, 0).single().unwrap_or_default())
}

/// Why retention lets a backup go.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expired {
    pub backup: String,
    pub reason: String,
}

fn finished(b: &BackupRecord) -> bool {
    [
        BackupPhase::Completed,
        BackupPhase::PartiallyFailed,
        BackupPhase::Failed,
    ]
    .iter()
    .any(|p| p.as_str() == b.phase)
}

fn successful(b: &BackupRecord) -> bool {
    b.phase == BackupPhase::Completed.as_str() || b.phase == BackupPhase::PartiallyFailed.as_str()
}

/// Which backups garbage collection deletes at `now`: deletions that were
/// interrupted (resumed), finished backups past their expiry, and per schedule
/// those beyond its newest `keep_last` successful ones (failed runs older than
/// the oldest kept success go too). Running backups are never chosen.
pub fn retention_victims(
    backups: &[BackupRecord],
    keep_last: &std::collections::BTreeMap<String, i64>,
    now: DateTime<Utc>,
) -> Vec<Expired> {
    let mut out: Vec<Expired> = Vec::new();
    let mut chosen = std::collections::BTreeSet::new();
    let mut choose = |b: &BackupRecord, reason: String, out: &mut Vec<Expired>| {
        if chosen.insert(b.name.clone()) {
            out.push(Expired {
                backup: b.name.clone(),
                reason,
            });
        }
    };
    for b in backups {
        if b.phase == BackupPhase::Deleting.as_str() {
            choose(
                b,
                "resuming a deletion that was interrupted".into(),
                &mut out,
            );
        } else if finished(b)
            && let Some(expiry) = b.expires_at.as_deref().and_then(parse_time)
            && expiry <= now
        {
            choose(
                b,
                format!("expired at {}", b.expires_at.as_deref().unwrap_or_default()),
                &mut out,
            );
        }
    }
    for (schedule, keep) in keep_last {
        let mut mine: Vec<&BackupRecord> = backups
            .iter()
            .filter(|b| b.schedule.as_deref() == Some(schedule.as_str()) && finished(b))
            .collect();
        // Newest first; names end in the slot's timestamp, creation time breaks ties.
        mine.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.name.cmp(&a.name)));
        let keep = usize::try_from(*keep).unwrap_or(0);
        let mut kept = 0usize;
        for b in mine {
            if successful(b) {
                if kept < keep {
                    kept += 1;
                } else {
                    choose(
                        b,
                        format!("beyond the newest {keep} of schedule {schedule}"),
                        &mut out,
                    );
                }
            } else if kept >= keep {
                choose(
                    b,
                    format!("a failed run older than the newest {keep} of schedule {schedule}"),
                    &mut out,
                );
            }
        }
    }
    out
}

/// The server's rules for a [`ScheduleSpec`]: validation, the template each
/// run uses, and its catalog row.
pub trait ScheduleSpecExt: Sized {
    /// Checks every field; the error names the first bad one.
    fn validate(&self) -> Result<CronSchedule, SpecError>;
    /// The backup spec each run uses (retention's TTL applied).
    fn backup_template(&self) -> BackupSpec;
    /// The catalog row for this spec at `now` (a new one: no last run).
    fn to_record(&self, now: DateTime<Utc>) -> ScheduleRecord;
    /// The spec a catalog row describes; a template that does not read is
    /// an error (never an empty template, which would back up everything).
    fn from_record(r: &ScheduleRecord) -> Result<Self, SpecError>;
}

impl ScheduleSpecExt for ScheduleSpec {
    fn validate(&self) -> Result<CronSchedule, SpecError> {
        crate::backup::validate_name(&self.name)?;
        if self.name.len() > MAX_NAME {
            return Err(err(
                "name",
                format!(
                    "`{}` is {} characters; schedule names have at most {MAX_NAME}, as each backup is named <schedule>-<YYYYMMDDhhmmss>",
                    self.name,
                    self.name.len()
                ),
            ));
        }
        let cron = CronSchedule::parse(&self.schedule, &self.timezone)?;
        if let Some(ttl) = &self.retention.ttl
            && crate::backup::spec::parse_ttl(ttl).is_none()
        {
            return Err(err(
                "retention.ttl",
                format!("`{ttl}` is not a duration; use e.g. 72h, 30d or 1h30m"),
            ));
        }
        self.backup_template()
            .validate()
            .map_err(|e| err(&format!("template.{}", e.field), e.message))?;
        if let Some(n) = self.retention.keep_last
            && !(1..=10_000).contains(&n)
        {
            return Err(err(
                "retention.keepLast",
                format!("{n} is out of range; keep between 1 and 10000 backups"),
            ));
        }
        Ok(cron)
    }

    fn backup_template(&self) -> BackupSpec {
        let mut template = self.template.clone();
        if self.retention.ttl.is_some() {
            template.ttl = self.retention.ttl.clone();
        }
        template
    }

    fn to_record(&self, now: DateTime<Utc>) -> ScheduleRecord {
        let now = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        ScheduleRecord {
            name: self.name.clone(),
            cron: self.schedule.trim().to_string(),
            timezone: self.timezone.clone(),
            template: serde_json::to_string(&self.backup_template()).unwrap_or_default(),
            ttl_seconds: self
                .retention
                .ttl
                .as_deref()
                .and_then(crate::backup::spec::parse_ttl),
            keep_last: self.retention.keep_last,
            paused: i64::from(self.paused),
            last_run_at: None,
            created_at: now.clone(),
            updated_at: now,
            drill: i64::from(self.drill),
            continuous: i64::from(self.continuous),
        }
    }

    fn from_record(r: &ScheduleRecord) -> Result<Self, SpecError> {
        let template: BackupSpec = serde_json::from_str(&r.template).map_err(|e| SpecError {
            field: "template".into(),
            message: format!(
                "the stored backup template of schedule {} does not read ({e}); replace the schedule's template (PUT /api/v1/schedules/{})",
                r.name, r.name
            ),
        })?;
        Ok(Self {
            name: r.name.clone(),
            schedule: r.cron.clone(),
            timezone: r.timezone.clone(),
            retention: Retention {
                ttl: template.ttl.clone().filter(|_| r.ttl_seconds.is_some()),
                keep_last: r.keep_last,
            },
            template,
            paused: r.paused != 0,
            drill: r.drill != 0,
            continuous: r.continuous != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_macros_and_time_zones() {
        let daily = CronSchedule::parse("0 1 * * *", "UTC").unwrap();
        assert_eq!(
            daily.next_runs(t("2026-11-25T12:00:00Z"), 3),
            vec![
                t("2026-11-26T01:00:00Z"),
                t("2026-11-27T01:00:00Z"),
                t("2026-11-28T01:00:00Z")
            ]
        );
        let macro_daily = CronSchedule::parse("@daily", "UTC").unwrap();
        assert_eq!(
            macro_daily.next_runs(t("2026-11-25T12:00:00Z"), 1),
            vec![t("2026-11-26T00:00:00Z")]
        );
        let hourly = CronSchedule::parse("@hourly", "UTC").unwrap();
        assert_eq!(
            hourly.next_runs(t("2026-11-25T12:30:00Z"), 1),
            vec![t("2026-11-25T13:00:00Z")]
        );
        // 01:00 in Berlin is 00:00 UTC in winter, 23:00 UTC the day before in summer.
        let berlin = CronSchedule::parse("0 1 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            berlin.next_runs(t("2026-11-25T12:00:00Z"), 1),
            vec![t("2026-11-26T00:00:00Z")]
        );
        assert_eq!(
            berlin.next_runs(t("2026-07-01T12:00:00Z"), 1),
            vec![t("2026-07-01T23:00:00Z")]
        );
        // Across the spring-forward gap, 02:30 does not exist on 2027-03-28 in Berlin:
        // the run is not doubled and the series goes on.
        let gap = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let runs = gap.next_runs(t("2027-03-27T12:00:00Z"), 2);
        assert_eq!(runs.len(), 2);
        assert!(
            runs[0] < runs[1] && runs[1] - runs[0] >= chrono::Duration::hours(23),
            "{runs:?}"
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = CronSchedule::parse("0 1 * *", "UTC").unwrap_err();
        assert_eq!(e.field, "schedule");
        assert!(e.message.contains("4 field"), "{e}");
        let e = CronSchedule::parse("0 25 * * *", "UTC").unwrap_err();
        assert_eq!(e.field, "schedule");
        let e = CronSchedule::parse("0 1 * * * *", "UTC").unwrap_err();
        assert!(e.message.contains("6 field"), "{e}");
        let e = CronSchedule::parse("0 1 * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(e.field, "timezone");
        let spec = |name: &str, keep: Option<i64>, ttl: Option<&str>| ScheduleSpec {
            name: name.into(),
            schedule: "@daily".into(),
            timezone: "UTC".into(),
            template: BackupSpec::default(),
            retention: Retention {
                ttl: ttl.map(String::from),
                keep_last: keep,
            },
            paused: false,
            drill: false,
            continuous: false,
        };
        assert!(spec("nightly", Some(7), Some("720h")).validate().is_ok());
        assert_eq!(
            spec("Nightly", None, None).validate().unwrap_err().field,
            "name"
        );
        assert_eq!(
            spec(&"n".repeat(49), None, None)
                .validate()
                .unwrap_err()
                .field,
            "name"
        );
        assert_eq!(
            spec("n", Some(0), None).validate().unwrap_err().field,
            "retention.keepLast"
        );
        assert_eq!(
            spec("n", None, Some("soon")).validate().unwrap_err().field,
            "retention.ttl"
        );
        let mut bad_template = spec("n", None, None);
        bad_template.template.included_namespaces = vec!["Not Valid".into()];
        assert!(
            bad_template
                .validate()
                .unwrap_err()
                .field
                .starts_with("template.")
        );
    }

    #[test]
    fn a_missed_run_happens_once_not_once_per_slot() {
        let hourly = CronSchedule::parse("0 * * * *", "UTC").unwrap();
        // Last ran for 09:00; at 09:59 nothing is due.
        assert_eq!(
            due(
                &hourly,
                t("2026-11-25T09:00:00Z"),
                t("2026-11-25T09:59:59Z")
            ),
            None
        );
        // At 10:00 exactly, the 10:00 slot is due, nothing missed.
        assert_eq!(
            due(
                &hourly,
                t("2026-11-25T09:00:00Z"),
                t("2026-11-25T10:00:00Z")
            ),
            Some(Due {
                slot: t("2026-11-25T10:00:00Z"),
                missed: 0
            })
        );
        // Down from 09:30 to 14:20: one run, for 14:00; 10:00–13:00 were missed.
        assert_eq!(
            due(
                &hourly,
                t("2026-11-25T09:00:00Z"),
                t("2026-11-25T14:20:00Z")
            ),
            Some(Due {
                slot: t("2026-11-25T14:00:00Z"),
                missed: 4
            })
        );
        // Once that run is recorded, nothing more until 15:00.
        assert_eq!(
            due(
                &hourly,
                t("2026-11-25T14:00:00Z"),
                t("2026-11-25T14:59:00Z")
            ),
            None
        );
        // Years of downtime are counted only up to the cap.
        let minutely = CronSchedule::parse("* * * * *", "UTC").unwrap();
        let d = due(
            &minutely,
            t("2020-01-01T00:00:00Z"),
            t("2026-11-25T14:20:30Z"),
        )
        .unwrap();
        assert_eq!(
            (d.slot, d.missed),
            (t("2026-11-25T14:20:00Z"), MISSED_COUNT_CAP)
        );
        assert_eq!(backup_name("nightly", d.slot), "nightly-20261125142000");
    }

    fn backup(
        name: &str,
        schedule: Option<&str>,
        phase: BackupPhase,
        created: &str,
        expires: Option<&str>,
    ) -> BackupRecord {
        let mut b = BackupRecord::new(name, "default", &serde_json::json!({}));
        b.schedule = schedule.map(String::from);
        b.phase = phase.as_str().into();
        b.created_at = created.into();
        b.expires_at = expires.map(String::from);
        b
    }

    #[test]
    fn retention_by_ttl_and_keep_last() {
        use BackupPhase::*;
        let now = t("2026-11-25T12:00:00Z");
        let backups = vec![
            backup(
                "n-5",
                Some("n"),
                Completed,
                "2026-11-25T05:00:00.000Z",
                None,
            ),
            backup("n-4", Some("n"), Failed, "2026-11-25T04:00:00.000Z", None),
            backup(
                "n-3",
                Some("n"),
                Completed,
                "2026-11-25T03:00:00.000Z",
                None,
            ),
            backup(
                "n-2",
                Some("n"),
                PartiallyFailed,
                "2026-11-25T02:00:00.000Z",
                None,
            ),
            backup("n-1", Some("n"), Failed, "2026-11-25T01:00:00.000Z", None),
            backup(
                "n-running",
                Some("n"),
                InProgress,
                "2026-11-25T00:00:00.000Z",
                None,
            ),
            backup(
                "manual-old",
                None,
                Completed,
                "2026-11-01T00:00:00.000Z",
                Some("2026-11-20T00:00:00.000Z"),
            ),
            backup(
                "manual-new",
                None,
                Completed,
                "2026-11-24T00:00:00.000Z",
                Some("2026-12-20T00:00:00.000Z"),
            ),
            backup(
                "half-deleted",
                None,
                Deleting,
                "2026-11-02T00:00:00.000Z",
                None,
            ),
            backup(
                "other-1",
                Some("other"),
                Completed,
                "2026-11-02T00:00:00.000Z",
                None,
            ),
        ];
        let keep = [("n".to_string(), 2)].into_iter().collect();
        let victims: Vec<String> = retention_victims(&backups, &keep, now)
            .into_iter()
            .map(|e| e.backup)
            .collect();
        // Kept: n-5 and n-3 (the newest two successes), the failed n-4 between
        // them, the running one, unexpired manual, schedules without keep-last.
        assert_eq!(victims, vec!["manual-old", "half-deleted", "n-2", "n-1"]);
        // Without keep-last only expiry and resumption apply.
        let victims = retention_victims(&backups, &Default::default(), now);
        assert_eq!(victims.len(), 2);
        // Deciding twice gives the same answer: deletion is idempotent.
        assert_eq!(
            retention_victims(&backups, &keep, now),
            retention_victims(&backups, &keep, now)
        );
    }
}
