//! What a restore brings back, and how.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::selection::{self, SpecError, dns_label, err};

/// What to do with an object that already exists in the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExistingResourcePolicy {
    /// Leave it (reported as a conflict when it differs).
    #[default]
    Skip,
    /// Overwrite it with the backed-up version (server-side apply, forced).
    Update,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RestoreSpec {
    pub backup_name: String,
    pub included_namespaces: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    pub included_resources: Vec<String>,
    pub excluded_resources: Vec<String>,
    pub label_selector: Option<String>,
    /// `old` → `new`.
    pub namespace_mapping: BTreeMap<String, String>,
    pub existing_resource_policy: ExistingResourcePolicy,
    /// Restore `status` too (off: the cluster's controllers rebuild it).
    pub restore_status: bool,
    /// Keep Services' nodePorts (off: the cluster assigns new ones).
    pub preserve_node_ports: bool,
    /// Plan only.
    pub dry_run: bool,
    /// Group-resources restored first, in this order (`secrets`,
    /// `widgets.example.com`); everything else follows in the default order.
    pub resource_priorities: Vec<String>,
    /// `false`: namespaced objects only (and the namespaces themselves), as
    /// Velero's `includeClusterResources: false`; what drills use.
    pub include_cluster_resources: Option<bool>,
    /// Point in time: the schedule whose change journal is replayed over
    /// its newest backup before `at` (which becomes `backupName`).
    pub from_schedule: Option<String>,
    /// The instant (RFC 3339) restored to, with `fromSchedule`.
    pub at: Option<String>,
    /// Restore what the user may write even when the plan holds items they
    /// may not (those are left out, and the restore is PartiallyFailed).
    /// Without it such a restore is refused before anything is written.
    pub allow_partial: bool,
    /// The namespaces this restore makes are scratch (a drill's): labelled
    /// as Lifeboat's temporary objects, so no backup takes them in. Set by
    /// drills, never by a request.
    #[serde(skip)]
    pub scratch_namespaces: bool,
}

impl RestoreSpec {
    /// The point in time restored to, when this restore replays a journal.
    pub fn instant(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(self.at.as_deref()?)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// Whether cluster-scoped objects other than namespaces are restored.
    pub fn cluster_resources(&self) -> bool {
        self.include_cluster_resources != Some(false)
    }
}

impl RestoreSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        match (&self.from_schedule, &self.at) {
            (Some(_), None) => {
                return Err(err(
                    "at",
                    "is required with fromSchedule: the instant to restore to (RFC 3339, e.g. 2026-11-29T14:32:07Z)",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "fromSchedule",
                    "is required with at: the schedule whose journal is replayed",
                ));
            }
            _ => {}
        }
        if self.at.is_some() && self.instant().is_none() {
            return Err(err(
                "at",
                format!(
                    "`{}` is not an RFC 3339 instant; use e.g. 2026-11-29T14:32:07Z",
                    self.at.as_deref().unwrap_or_default()
                ),
            ));
        }
        if self.backup_name.is_empty() && self.from_schedule.is_none() {
            return Err(err("backupName", "is required (or fromSchedule and at)"));
        }
        selection::Filters {
            included_namespaces: &self.included_namespaces,
            excluded_namespaces: &self.excluded_namespaces,
            included_resources: &self.included_resources,
            excluded_resources: &self.excluded_resources,
            label_selector: self.label_selector.as_deref(),
        }
        .validate()?;
        for (from, to) in &self.namespace_mapping {
            if !dns_label(from) || !dns_label(to) {
                return Err(err(
                    "namespaceMapping",
                    format!("`{from}:{to}`: both sides must be namespace names"),
                ));
            }
        }
        Ok(())
    }

    pub fn includes_namespace(&self, ns: &str) -> bool {
        selection::included(ns, &self.included_namespaces, &self.excluded_namespaces)
    }

    pub fn includes_resource(&self, gr: &str) -> bool {
        selection::included(gr, &self.included_resources, &self.excluded_resources)
    }

    /// The restore tier of a group-resource: the priorities first, then the default order.
    pub fn tier(&self, group_resource: &str) -> usize {
        match self
            .resource_priorities
            .iter()
            .position(|p| p == group_resource)
        {
            Some(i) => i,
            None => self.resource_priorities.len() + super::items::tier(group_resource),
        }
    }

    /// The namespaces this restore writes into, for authorization: its own
    /// exactly named namespaces, else those of the backup it reads
    /// (`backup_namespaces`), after mapping; `None` when it reaches
    /// cluster-wide.
    pub fn target_namespaces(&self, backup_namespaces: Option<Vec<String>>) -> Option<Vec<String>> {
        let sources = match selection::exact_names(&self.included_namespaces) {
            Some(named) => named,
            None => backup_namespaces?,
        };
        let mut targets: Vec<String> = sources
            .iter()
            .filter(|ns| self.includes_namespace(ns))
            .map(|ns| self.target_namespace(ns).to_string())
            .collect();
        targets.sort();
        targets.dedup();
        Some(targets)
    }

    /// The namespace an object from `ns` lands in.
    pub fn target_namespace<'a>(&'a self, ns: &'a str) -> &'a str {
        self.namespace_mapping.get(ns).map_or(ns, String::as_str)
    }
}

/// Namespace in the backup → namespace restored into.
pub type NamespaceMapping = BTreeMap<String, String>;

/// Parses `a:b,c:d` (the CLI's `--namespace-mapping`).
pub fn parse_mapping(pairs: &[String]) -> Result<NamespaceMapping, SpecError> {
    pairs
        .iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once(':')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .ok_or_else(|| err("namespaceMapping", format!("`{p}` is not old:new")))
        })
        .collect()
}
