//! `lifeboat notification add|get|remove|deliveries`: webhook targets told
//! of failures, recoveries and missed schedules.

use frontend::model::{DeliveryView, Items, NotificationTargetView};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::{Api, confirm};

#[derive(Subcommand, Debug)]
pub enum NotificationCommand {
    /// Add a webhook target. Its URL is read from a file (it is a secret)
    /// and never shown again.
    Add {
        name: String,
        /// A file holding the webhook URL.
        #[arg(long)]
        url_file: PathBuf,
        /// `webhook` (generic JSON) or `slack` (Slack-compatible text).
        #[arg(long, default_value = "webhook", value_parser = ["webhook", "slack"])]
        kind: String,
        /// Only these events (repeat; default: all of backup.failed,
        /// backup.recovered, restore.failed, drill.failed, drill.recovered,
        /// schedule.missed).
        #[arg(long = "event")]
        events: Vec<String>,
    },
    /// List the targets (URLs shown as scheme and host only).
    Get,
    /// Remove a target (deliveries already made stay in the log).
    Remove {
        name: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// The newest deliveries and their state.
    Deliveries {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

pub async fn run_notification(server: &str, command: NotificationCommand) -> Result<()> {
    let api = Api::new(server);
    let base = "/api/v1/notification-targets";
    match command {
        NotificationCommand::Add {
            name,
            url_file,
            kind,
            events,
        } => {
            let url = std::fs::read_to_string(&url_file)
                .with_context(|| format!("reading {}", url_file.display()))?;
            let added = api
                .json(api.request(reqwest::Method::POST, base).json(
                    &json!({"name": name, "kind": kind, "url": url.trim(), "events": events}),
                ))
                .await?;
            println!(
                "notification target {name} added ({}, {}), for {}",
                added["kind"].as_str().unwrap_or_default(),
                added["url"].as_str().unwrap_or_default(),
                added["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        NotificationCommand::Get => {
            let list = api.json(api.request(reqwest::Method::GET, base)).await?;
            if super::printed_structured(&list)? {
                return Ok(());
            }
            println!("{:<20} {:<8} {:<40} EVENTS", "NAME", "KIND", "URL");
            let list: Items<NotificationTargetView> =
                super::read_as(&list, "list of notification targets")?;
            for t in &list.items {
                println!(
                    "{:<20} {:<8} {:<40} {}",
                    t.name,
                    t.kind,
                    t.url,
                    t.events.join(",")
                );
            }
        }
        NotificationCommand::Remove { name, yes } => {
            if !yes {
                confirm(
                    &format!("Remove notification target {name}?"),
                    &name,
                    "the target is kept",
                )?;
            }
            api.send(api.request(reqwest::Method::DELETE, &format!("{base}/{name}")))
                .await?;
            println!("notification target {name} removed");
        }
        NotificationCommand::Deliveries { limit } => {
            let list = api
                .json(api.request(
                    reqwest::Method::GET,
                    &format!("/api/v1/notifications/deliveries?limit={limit}"),
                ))
                .await?;
            if super::printed_structured(&list)? {
                return Ok(());
            }
            println!(
                "{:<24} {:<16} {:<18} {:<10} {:>8}  MESSAGE",
                "WHEN", "TARGET", "EVENT", "STATE", "ATTEMPTS"
            );
            let list: Items<DeliveryView> = super::read_as(&list, "list of deliveries")?;
            for d in &list.items {
                println!(
                    "{:<24} {:<16} {:<18} {:<10} {:>8}  {}{}",
                    d.created_at,
                    d.target,
                    d.event,
                    d.state,
                    d.attempts,
                    d.message,
                    d.last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
