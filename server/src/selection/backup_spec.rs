//! What a backup selects, as Velero users write it, and its validation.

pub use crate::selection::SpecError;
use crate::selection::{self, err};

pub use frontend::model::{BackupSpec, ClusterResources};

/// Parses a TTL such as `90m`, `72h`, `30d`, `1h30m` into seconds.
pub fn parse_ttl(ttl: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut number = String::new();
    for c in ttl.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
    }
    (number.is_empty() && total > 0).then_some(total)
}

/// The server's rules for a [`BackupSpec`]: its validation, and what it selects.
pub trait BackupSpecExt {
    fn validate(&self) -> Result<(), SpecError>;
    /// When a backup finished at `from` expires, by its TTL (RFC 3339), if it has one.
    fn expires_at(&self, from: chrono::DateTime<chrono::Utc>) -> Option<String>;
    /// Whether objects in `namespace` are selected.
    fn includes_namespace(&self, namespace: &str) -> bool;
    /// Whether a resource (`deployments.apps`, `pods`) is selected.
    fn includes_resource(&self, group_resource: &str) -> bool;
    /// The namespaces a backup of this spec holds, for authorization: the
    /// exactly named ones (less the excluded), or `None` when it reaches
    /// cluster-wide (globs, all namespaces, or every cluster-scoped resource).
    fn namespaces_concerned(&self) -> Option<Vec<String>>;
    /// The namespaces named without globs, when there are only those: then
    /// listing per namespace is cheaper than listing the whole cluster.
    fn exact_namespaces(&self) -> Option<Vec<String>>;
}

impl BackupSpecExt for BackupSpec {
    fn validate(&self) -> Result<(), SpecError> {
        selection::Filters {
            included_namespaces: &self.included_namespaces,
            excluded_namespaces: &self.excluded_namespaces,
            included_resources: &self.included_resources,
            excluded_resources: &self.excluded_resources,
            label_selector: self.label_selector.as_deref(),
        }
        .validate()?;
        if let Some(hooks) = &self.hooks {
            super::hooks::check_backup_hooks(hooks).map_err(|e| err("hooks", e.to_string()))?;
        }
        if let Some(ttl) = &self.ttl
            && parse_ttl(ttl).is_none()
        {
            return Err(err(
                "ttl",
                format!("`{ttl}` is not a duration; use forms such as 90m, 72h, 30d"),
            ));
        }
        if let Some(loc) = &self.storage_location
            && loc.is_empty()
        {
            return Err(err("storageLocation", "must not be empty"));
        }
        Ok(())
    }

    fn expires_at(&self, from: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let secs = self.ttl.as_deref().and_then(parse_ttl)?;
        Some(
            (from + chrono::Duration::seconds(secs))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
    }

    fn includes_namespace(&self, namespace: &str) -> bool {
        selection::included(
            namespace,
            &self.included_namespaces,
            &self.excluded_namespaces,
        )
    }

    fn includes_resource(&self, group_resource: &str) -> bool {
        selection::included(
            group_resource,
            &self.included_resources,
            &self.excluded_resources,
        )
    }

    fn namespaces_concerned(&self) -> Option<Vec<String>> {
        if self.include_cluster_resources == ClusterResources::All {
            return None;
        }
        let named = self.exact_namespaces()?;
        Some(
            named
                .into_iter()
                .filter(|ns| self.includes_namespace(ns))
                .collect(),
        )
    }

    fn exact_namespaces(&self) -> Option<Vec<String>> {
        selection::exact_names(&self.included_namespaces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_filters() {
        let spec = BackupSpec {
            included_namespaces: vec!["shop*".into(), "data".into()],
            excluded_namespaces: vec!["shop-test".into()],
            excluded_resources: vec!["secrets".into(), "*.example.com".into()],
            ..Default::default()
        };
        assert!(spec.includes_namespace("shop"));
        assert!(spec.includes_namespace("data"));
        assert!(!spec.includes_namespace("shop-test"));
        assert!(!spec.includes_namespace("ops"));
        assert!(spec.includes_resource("deployments.apps"));
        assert!(!spec.includes_resource("secrets"));
        assert!(!spec.includes_resource("widgets.example.com"));
        assert_eq!(spec.exact_namespaces(), None);
        let only = BackupSpec {
            included_resources: vec!["deployments.apps".into()],
            included_namespaces: vec!["a".into()],
            ..Default::default()
        };
        assert!(!only.includes_resource("pods"));
        assert_eq!(only.exact_namespaces(), Some(vec!["a".into()]));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |spec: BackupSpec| spec.validate().unwrap_err().field;
        assert_eq!(
            bad(BackupSpec {
                included_namespaces: vec!["Shop".into()],
                ..Default::default()
            }),
            "includedNamespaces"
        );
        assert_eq!(
            bad(BackupSpec {
                excluded_resources: vec!["".into()],
                ..Default::default()
            }),
            "excludedResources"
        );
        assert_eq!(
            bad(BackupSpec {
                label_selector: Some("app in (a".into()),
                ..Default::default()
            }),
            "labelSelector"
        );
        assert_eq!(
            bad(BackupSpec {
                ttl: Some("soon".into()),
                ..Default::default()
            }),
            "ttl"
        );
        assert!(
            BackupSpec {
                ttl: Some("1h30m".into()),
                label_selector: Some("app=web,tier in (a,b)".into()),
                ..Default::default()
            }
            .validate()
            .is_ok()
        );
        assert_eq!(parse_ttl("1h30m"), Some(5400));
        assert_eq!(parse_ttl("30d"), Some(30 * 86400));
    }
}
