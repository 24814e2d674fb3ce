//! What a restore brings back, and how.

use std::collections::BTreeMap;

use crate::selection::{self, SpecError, dns_label, err};

pub use frontend::model::{ExistingResourcePolicy, RestoreSpec};

/// The server's rules for a [`RestoreSpec`]: validation, what it selects,
/// its order and where it writes.
pub trait RestoreSpecExt {
    fn validate(&self) -> Result<(), SpecError>;
    /// The point in time restored to, when this restore replays a journal.
    fn instant(&self) -> Option<chrono::DateTime<chrono::Utc>>;
    fn includes_namespace(&self, ns: &str) -> bool;
    fn includes_resource(&self, gr: &str) -> bool;
    /// The restore tier of a group-resource: the priorities first, then the default order.
    fn tier(&self, group_resource: &str) -> usize;
    /// The namespaces this restore writes into, for authorization: its own
    /// exactly named namespaces, else those of the backup it reads
    /// (`backup_namespaces`), after mapping; `None` when it reaches
    /// cluster-wide.
    fn target_namespaces(&self, backup_namespaces: Option<Vec<String>>) -> Option<Vec<String>>;
}

impl RestoreSpecExt for RestoreSpec {
    fn instant(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(self.at.as_deref()?)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    fn validate(&self) -> Result<(), SpecError> {
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
        super::hooks::check_spec(self).map_err(|e| err("hooks", e.to_string()))?;
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
        for name in &self.included_names {
            let parts: Vec<&str> = name.split('/').collect();
            if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.trim().is_empty()) {
                return Err(err(
                    "includedNames",
                    format!("`{name}` is neither kind/name nor kind/namespace/name"),
                ));
            }
        }
        // StorageClass names are DNS subdomains.
        let subdomain = |n: &str| n.len() <= 253 && n.split('.').all(dns_label);
        for (from, to) in &self.storage_class_mapping {
            if !subdomain(from) || !subdomain(to) {
                return Err(err(
                    "storageClassMapping",
                    format!("`{from}: {to}`: both sides must be StorageClass names"),
                ));
            }
        }
        for (from, to) in &self.image_mapping {
            if from.trim().is_empty() || from.chars().any(char::is_whitespace) {
                return Err(err(
                    "imageMapping",
                    format!(
                        "`{from}: {to}`: the prefix to replace must be a non-empty image prefix"
                    ),
                ));
            }
            if to.chars().any(char::is_whitespace) {
                return Err(err(
                    "imageMapping",
                    format!("`{from}: {to}`: the replacement must hold no spaces"),
                ));
            }
        }
        Ok(())
    }

    fn includes_namespace(&self, ns: &str) -> bool {
        selection::included(ns, &self.included_namespaces, &self.excluded_namespaces)
    }

    fn includes_resource(&self, gr: &str) -> bool {
        selection::included(gr, &self.included_resources, &self.excluded_resources)
    }

    fn tier(&self, group_resource: &str) -> usize {
        match self
            .resource_priorities
            .iter()
            .position(|p| p == group_resource)
        {
            Some(i) => i,
            None => self.resource_priorities.len() + super::items::tier(group_resource),
        }
    }

    fn target_namespaces(&self, backup_namespaces: Option<Vec<String>>) -> Option<Vec<String>> {
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
}

/// Namespace in the backup → namespace restored into.
pub type NamespaceMapping = BTreeMap<String, String>;

/// `old` → `new`: a StorageClass or image mapping.
pub type Mapping = BTreeMap<String, String>;

/// Parses `a:b,c:d` (the CLI's `--namespace-mapping`).
pub fn parse_mapping(pairs: &[String]) -> Result<NamespaceMapping, SpecError> {
    parse_pairs(pairs, ':', "namespaceMapping")
}

/// `old<sep>new` pairs, comma-separated or repeated (the CLI's mappings:
/// `gp2:standard` for StorageClasses, `old.example/=new.example/` for
/// images, whose references hold colons).
pub fn parse_pairs(pairs: &[String], sep: char, field: &str) -> Result<Mapping, SpecError> {
    pairs
        .iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once(sep)
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .ok_or_else(|| err(field, format!("`{p}` is not old{sep}new")))
        })
        .collect()
}
