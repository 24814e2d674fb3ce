//! `lifeboat schedule create|get|pause|resume|delete`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};

use super::{Api, Filters, confirm};
use frontend::model::ScheduleList;

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Create a schedule: backups on a cron expression, with retention.
    Create {
        name: String,
        /// Five cron fields ("0 1 * * *") or a macro (@daily, @hourly, @weekly).
        #[arg(long)]
        schedule: String,
        /// IANA time zone of the expression (Europe/Berlin); default UTC.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[command(flatten)]
        filters: Filters,
        /// Cluster-scoped resources: auto, all or none.
        #[arg(long, default_value = "auto")]
        include_cluster_resources: String,
        /// Delete each backup this long after it ran (720h, 30d).
        #[arg(long)]
        ttl: Option<String>,
        /// Keep only the newest N successful backups.
        #[arg(long)]
        keep_last: Option<i64>,
        /// Write its backups to this storage location (default: `default`).
        #[arg(long)]
        storage_location: Option<String>,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        /// Drill each backup it makes: restore it into scratch namespaces,
        /// wait for its workloads, record the outcome, delete them.
        #[arg(long)]
        drill: bool,
        /// Continuous protection: journal every change to what it selects,
        /// so `restore create --from-schedule … --at …` can go back to any
        /// instant since its oldest backup.
        #[arg(long)]
        continuous: bool,
    },
    /// List schedules, or show one with its next runs and backups.
    Get { name: Option<String> },
    /// Stop running it (its backups stay).
    Pause { name: String },
    /// Run it again from the next slot on (slots passed meanwhile are not run).
    Resume { name: String },
    /// Delete the schedule (its backups stay).
    Delete {
        name: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run_schedule(server: &str, command: ScheduleCommand) -> Result<()> {
    let api = Api::new(server);
    match command {
        ScheduleCommand::Create {
            name,
            schedule,
            timezone,
            filters,
            include_cluster_resources,
            ttl,
            keep_last,
            storage_location,
            paused,
            drill,
            continuous,
        } => {
            let mut template = filters.spec();
            template.insert(
                "includeClusterResources".into(),
                json!(include_cluster_resources),
            );
            template.insert("storageLocation".into(), json!(storage_location));
            let body = json!({"name": name, "schedule": schedule, "timezone": timezone,
                "template": template, "retention": {"ttl": ttl, "keepLast": keep_last}, "paused": paused,
                "drill": drill, "continuous": continuous});
            let created = api
                .json(
                    api.request(reqwest::Method::POST, "/api/v1/schedules")
                        .json(&body),
                )
                .await?;
            println!("schedule {name} created");
            print_next_runs(&created);
        }
        ScheduleCommand::Get { name: None } => {
            let list = api
                .json(api.request(reqwest::Method::GET, "/api/v1/schedules"))
                .await?;
            if super::printed_structured(&list)? {
                return Ok(());
            }
            println!(
                "{:<24} {:<20} {:<18} {:<8} {:<26} NEXT RUN",
                "NAME", "SCHEDULE", "TIMEZONE", "PAUSED", "LAST RUN"
            );
            let list: ScheduleList = super::read_as(&list, "list of schedules")?;
            for s in &list.items {
                println!(
                    "{:<24} {:<20} {:<18} {:<8} {:<26} {}",
                    s.name,
                    s.schedule,
                    s.timezone,
                    s.paused,
                    s.last_run_at.as_deref().unwrap_or("never"),
                    s.next_runs.first().map_or("-", String::as_str),
                );
            }
            println!(
                "\nrunner: {} (leader here: {})",
                list.runner.mode, list.runner.leader
            );
        }
        ScheduleCommand::Get { name: Some(name) } => {
            let s = api
                .json(api.request(reqwest::Method::GET, &format!("/api/v1/schedules/{name}")))
                .await?;
            if super::printed_structured(&s)? {
                return Ok(());
            }
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        ScheduleCommand::Pause { name } => {
            api.json(api.request(
                reqwest::Method::POST,
                &format!("/api/v1/schedules/{name}/pause"),
            ))
            .await?;
            println!("schedule {name} paused");
        }
        ScheduleCommand::Resume { name } => {
            let s = api
                .json(api.request(
                    reqwest::Method::POST,
                    &format!("/api/v1/schedules/{name}/resume"),
                ))
                .await?;
            println!("schedule {name} resumed");
            print_next_runs(&s);
        }
        ScheduleCommand::Delete { name, yes } => {
            if !yes {
                confirm(
                    &format!("delete schedule {name}? its backups are kept."),
                    &name,
                    "nothing was deleted",
                )?;
            }
            api.send(api.request(
                reqwest::Method::DELETE,
                &format!("/api/v1/schedules/{name}"),
            ))
            .await?;
            println!("schedule {name} deleted; its backups were kept");
        }
    }
    Ok(())
}

fn print_next_runs(schedule: &Value) {
    let next: Vec<&str> = schedule["nextRuns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if next.is_empty() {
        println!("no upcoming runs (paused)");
    } else {
        println!("next runs: {}", next.join(", "));
    }
}
