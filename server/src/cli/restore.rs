//! `lifeboat restore create|get|describe|logs`.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use frontend::model::{Action, ItemResult, Items, RestoreView};
use serde_json::{Value, json};

use super::{Api, Filters};

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum RestoreCommand {
    /// Restore from a backup (plan first with --dry-run), or a schedule's
    /// state at an instant (--from-schedule S --at 2026-11-29T14:32:07Z).
    Create {
        /// Name of the restore (default: <backup>-<timestamp>).
        name: Option<String>,
        /// The backup to restore (with --from-schedule: its base; default:
        /// the schedule's newest backup before --at).
        #[arg(long, required_unless_present = "from_schedule")]
        from_backup: Option<String>,
        /// A schedule with continuous protection: its journal is replayed
        /// over its newest backup before --at.
        #[arg(long, requires = "at")]
        from_schedule: Option<String>,
        /// The instant to restore to (RFC 3339), with --from-schedule.
        #[arg(long, requires = "from_schedule")]
        at: Option<String>,
        #[command(flatten)]
        filters: Filters,
        /// Only these objects: kind/name or kind/namespace/name
        /// (deployment/shop/web), comma-separated.
        #[arg(long, value_delimiter = ',')]
        include_names: Vec<String>,
        /// old:new, several allowed (comma-separated or repeated).
        #[arg(long)]
        namespace_mapping: Vec<String>,
        /// StorageClass old:new (gp2:standard), for claims, volumes and
        /// StatefulSets' claim templates; several allowed.
        #[arg(long)]
        storage_class_mapping: Vec<String>,
        /// Image prefix old=new (old.example/=registry.local/), for every
        /// container; the longest matching prefix wins; several allowed.
        #[arg(long)]
        image_mapping: Vec<String>,
        /// skip (default) or update.
        #[arg(long, default_value = "skip")]
        existing_resource_policy: String,
        /// Restore status fields too.
        #[arg(long)]
        restore_status: bool,
        /// Keep Services' node ports.
        #[arg(long)]
        preserve_node_ports: bool,
        /// Show the plan and stop.
        #[arg(long)]
        dry_run: bool,
        /// Restore these group-resources first, in this order (comma-separated).
        #[arg(long, value_delimiter = ',')]
        resource_priorities: Vec<String>,
        /// Restore what you may write even when the plan holds items you
        /// may not (they are left out); without it such a restore is refused.
        #[arg(long)]
        allow_partial: bool,
        /// Wait for it to finish.
        #[arg(long)]
        wait: bool,
    },
    /// List restores, or show one with its plan and results.
    Get { name: Option<String> },
    /// Everything about one restore, as JSON.
    Describe { name: String },
    /// One line per item: action, result and message.
    Logs { name: String },
}

pub async fn run_restore(server: &str, command: RestoreCommand) -> Result<()> {
    let api = Api::new(server);
    match command {
        RestoreCommand::Create {
            name,
            from_backup,
            from_schedule,
            at,
            filters,
            include_names,
            namespace_mapping,
            storage_class_mapping,
            image_mapping,
            existing_resource_policy,
            restore_status,
            preserve_node_ports,
            dry_run,
            resource_priorities,
            allow_partial,
            wait,
        } => {
            let mapping = lifeboat::restore::spec::parse_mapping(&namespace_mapping)
                .map_err(|e| anyhow!("--namespace-mapping: {}", e.message))?;
            let classes = lifeboat::restore::spec::parse_pairs(
                &storage_class_mapping,
                ':',
                "storageClassMapping",
            )
            .map_err(|e| anyhow!("--storage-class-mapping: {}", e.message))?;
            let images = lifeboat::restore::spec::parse_pairs(&image_mapping, '=', "imageMapping")
                .map_err(|e| anyhow!("--image-mapping: {}", e.message))?;
            let mut spec = filters.spec();
            for (k, v) in [
                ("backupName", json!(from_backup.unwrap_or_default())),
                ("fromSchedule", json!(from_schedule)),
                ("at", json!(at)),
                ("includedNames", json!(include_names)),
                ("namespaceMapping", json!(mapping)),
                ("storageClassMapping", json!(classes)),
                ("imageMapping", json!(images)),
                ("existingResourcePolicy", json!(existing_resource_policy)),
                ("restoreStatus", json!(restore_status)),
                ("preserveNodePorts", json!(preserve_node_ports)),
                ("dryRun", json!(dry_run)),
                ("resourcePriorities", json!(resource_priorities)),
                ("allowPartial", json!(allow_partial)),
            ] {
                spec.insert(k.into(), v);
            }
            let body = json!({"name": name, "spec": spec});
            let created = api
                .json(
                    api.request(reqwest::Method::POST, "/api/v1/restores")
                        .json(&body),
                )
                .await?;
            let name = created["name"].as_str().unwrap_or_default().to_string();
            println!("restore {name} started");
            if wait || dry_run {
                let stderr_is_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
                loop {
                    let r = api
                        .json(
                            api.request(reqwest::Method::GET, &format!("/api/v1/restores/{name}")),
                        )
                        .await?;
                    let view: RestoreView = super::read_as(&r, "restore")?;
                    let phase = view.phase.clone();
                    if lifeboat::restore::RestorePhase::parse(&phase)
                        .is_some_and(|p| p.is_running())
                    {
                        if stderr_is_tty {
                            eprint!("\r\x1b[2K{}", progress_line(&view));
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    if stderr_is_tty {
                        eprintln!("\r\x1b[2K{}", progress_line(&view));
                    }
                    print_plan(&view);
                    println!(
                        "{phase}{}",
                        view.phase_reason
                            .as_deref()
                            .map(|s| format!(": {s}"))
                            .unwrap_or_default()
                    );
                    if phase == lifeboat::backup::BackupPhase::Failed.as_str() {
                        bail!("restore {name} failed");
                    }
                    if phase == lifeboat::restore::RestorePhase::PartiallyFailed.as_str() {
                        // The items that did not come back, last.
                        let items = view.plan.iter().flat_map(|p| &p.items);
                        for item in items.filter(|i| i.result == Some(ItemResult::Failed)) {
                            println!(
                                "FAILED {} {}{}: {}",
                                item.group_resource,
                                item.namespace
                                    .as_deref()
                                    .map(|ns| format!("{ns}/"))
                                    .unwrap_or_default(),
                                item.name,
                                item.message.as_deref().unwrap_or("no reason given")
                            );
                        }
                        return Err(super::PartiallyFailed(format!(
                            "restore {name} partially failed: the items above did not come back"
                        ))
                        .into());
                    }
                    return Ok(());
                }
            }
            Ok(())
        }
        RestoreCommand::Get { name: Some(name) } => {
            let r = api
                .json(api.request(reqwest::Method::GET, &format!("/api/v1/restores/{name}")))
                .await?;
            if super::printed_structured(&r)? {
                return Ok(());
            }
            let view: RestoreView = super::read_as(&r, "restore")?;
            print_plan(&view);
            println!("{}", view.phase);
            Ok(())
        }
        RestoreCommand::Describe { name } => {
            let r = api
                .json(api.request(reqwest::Method::GET, &format!("/api/v1/restores/{name}")))
                .await?;
            if super::printed_structured(&r)? {
                return Ok(());
            }
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        RestoreCommand::Logs { name } => {
            let text = api
                .send(api.request(
                    reqwest::Method::GET,
                    &format!("/api/v1/restores/{name}/log"),
                ))
                .await?
                .text()
                .await?;
            for line in text.lines() {
                let i: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                println!(
                    "{:<9} {:<8} {}/{}/{} {}",
                    i["action"].as_str().unwrap_or_default(),
                    i["result"].as_str().unwrap_or("-"),
                    i["groupResource"].as_str().unwrap_or_default(),
                    i["namespace"].as_str().unwrap_or("-"),
                    i["name"].as_str().unwrap_or_default(),
                    i["message"]
                        .as_str()
                        .or(i["reason"].as_str())
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        RestoreCommand::Get { name: None } => {
            let list = api
                .json(api.request(reqwest::Method::GET, "/api/v1/restores"))
                .await?;
            if super::printed_structured(&list)? {
                return Ok(());
            }
            let list: Items<RestoreView> = super::read_as(&list, "list of restores")?;
            println!("{:<40} {:<24} {:<16} CREATED", "NAME", "BACKUP", "PHASE");
            for r in &list.items {
                println!(
                    "{:<40} {:<24} {:<16} {}",
                    r.name, r.backup_name, r.phase, r.created_at
                );
            }
            Ok(())
        }
    }
}

/// `InProgress: [#####---------------]  25% 120/480 objects; volume data
/// [##------------------]  10% 1.0 GiB of 10.0 GiB`.
fn progress_line(r: &RestoreView) -> String {
    let total = r.items_total.unwrap_or(0);
    let mut line = format!(
        "{}: {} {}/{} objects",
        r.phase,
        super::backup::progress_bar(r.items_done, total, false),
        r.items_done,
        r.items_total.map_or_else(|| "?".into(), |t| t.to_string())
    );
    if !r.volumes.volumes.is_empty() {
        let (done, total) = (r.volumes.bytes_done as i64, r.volumes.bytes_total as i64);
        line.push_str(&format!(
            "; volume data {} {} of {}",
            super::backup::progress_bar(done, total, false),
            super::human_bytes(done),
            super::human_bytes(total)
        ));
    }
    line
}

fn print_plan(restore: &RestoreView) {
    let Some(plan) = restore.plan.as_ref() else {
        return;
    };
    if let Some(pit) = &plan.point_in_time {
        println!(
            "point in time {}: backup {} (begun {}) and {} journal change(s) from {} segment(s)",
            pit.at.as_deref().unwrap_or_default(),
            pit.base,
            pit.base_started_at.as_deref().unwrap_or_default(),
            pit.changes_applied,
            pit.segments_read,
        );
        if let Some(v) = &pit.volumes_from {
            println!("volume data: {v}");
        }
        for g in &pit.gaps {
            println!(
                "GAP {} – {} ({}): {}",
                g.from, g.to, g.group_resource, g.reason
            );
        }
        if let Some(u) = &pit.unwritten {
            println!("warning: {u}");
        }
    }
    println!(
        "{:<10} {:<9} {:<44} {:<20} NAME / DETAIL",
        "ACTION", "RESULT", "RESOURCE", "NAMESPACE"
    );
    for i in plan.items.iter().filter(|i| i.action != Action::Excluded) {
        let detail = match (&i.message, i.diff.is_empty()) {
            (Some(m), _) => m.clone(),
            (None, false) => format!("differs: {}", i.diff.join(", ")),
            _ => String::new(),
        };
        println!(
            "{:<10} {:<9} {:<44} {:<20} {} {detail}",
            i.action.as_str(),
            i.result.map_or("-", ItemResult::as_str),
            i.group_resource,
            i.namespace.as_deref().unwrap_or("-"),
            i.name,
        );
    }
    for i in &plan.items {
        for w in &i.warnings {
            println!(
                "WARNING {} {}/{}: {w}",
                i.group_resource,
                i.namespace.as_deref().unwrap_or("-"),
                i.name
            );
        }
    }
    for h in plan.items.iter().flat_map(|i| &i.hooks) {
        let (outcome, output) = (h.outcome(), h.output(" / "));
        println!(
            "HOOK {} {}/{} ({}) `{}`: {outcome} in {} ms{}",
            h.when,
            h.namespace,
            h.pod,
            h.container,
            h.command.join(" "),
            h.duration_ms,
            if output.is_empty() {
                String::new()
            } else {
                format!(": {output}")
            }
        );
    }
    println!(
        "summary: {}",
        serde_json::to_string(&plan.summary).unwrap_or_default()
    );
}
