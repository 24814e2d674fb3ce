//! What a backup selects, as Velero users write it, and its validation.

use serde::{Deserialize, Serialize};

/// Which cluster-scoped resources a backup takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterResources {
    /// Those the selected namespaces need: the Namespace objects, their
    /// PersistentVolumes, the StorageClasses those use, the CRDs of included
    /// custom resources, ClusterRoles bound in them. Everything when no
    /// namespace filter is given.
    #[default]
    Auto,
    All,
    None,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BackupSpec {
    /// Namespace globs; empty means all.
    pub included_namespaces: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    /// `deployments.apps`, `secrets`, `widgets.example.com`, `*`; empty means all.
    pub included_resources: Vec<String>,
    pub excluded_resources: Vec<String>,
    /// A Kubernetes label selector (`app=web,tier in (a,b)`).
    pub label_selector: Option<String>,
    pub include_cluster_resources: ClusterResources,
    /// Storage location name; default `default`.
    pub storage_location: Option<String>,
    /// How long to keep it: `72h`, `30d`, `90m`; default: forever.
    pub ttl: Option<String>,
}

/// A spec problem, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// `*` and `?` globs over namespace or resource names.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn valid_glob(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 253
        && g.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '*' | '?')
        })
}

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

impl BackupSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        for (field, globs) in [
            ("includedNamespaces", &self.included_namespaces),
            ("excludedNamespaces", &self.excluded_namespaces),
            ("includedResources", &self.included_resources),
            ("excludedResources", &self.excluded_resources),
        ] {
            if let Some(bad) = globs.iter().find(|g| !valid_glob(g)) {
                return Err(err(
                    field,
                    format!(
                        "`{bad}` is not a valid name or glob (lower-case letters, digits, '-', '.', '*' and '?')"
                    ),
                ));
            }
        }
        if let Some(sel) = &self.label_selector {
            parse_selector(sel).map_err(|m| err("labelSelector", m))?;
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

    /// When a backup finished at `from` expires, by its TTL (RFC 3339), if it has one.
    pub fn expires_at(&self, from: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let secs = self.ttl.as_deref().and_then(parse_ttl)?;
        Some(
            (from + chrono::Duration::seconds(secs))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
    }

    pub fn storage_location(&self) -> &str {
        self.storage_location.as_deref().unwrap_or("default")
    }

    /// Whether objects in `namespace` are selected.
    pub fn includes_namespace(&self, namespace: &str) -> bool {
        (self.included_namespaces.is_empty()
            || self
                .included_namespaces
                .iter()
                .any(|g| glob_match(g, namespace)))
            && !self
                .excluded_namespaces
                .iter()
                .any(|g| glob_match(g, namespace))
    }

    /// Whether a resource (`deployments.apps`, `pods`) is selected.
    pub fn includes_resource(&self, group_resource: &str) -> bool {
        let matches = |g: &String| glob_match(g, group_resource) || g == "*";
        (self.included_resources.is_empty() || self.included_resources.iter().any(matches))
            && !self.excluded_resources.iter().any(matches)
    }

    /// The namespaces named without globs, when there are only those: then
    /// listing per namespace is cheaper than listing the whole cluster.
    pub fn exact_namespaces(&self) -> Option<Vec<String>> {
        if self.included_namespaces.is_empty()
            || self
                .included_namespaces
                .iter()
                .any(|g| g.contains(['*', '?']))
        {
            return None;
        }
        Some(self.included_namespaces.clone())
    }
}

/// Checks a label selector's syntax the way the API server would.
pub fn parse_selector(sel: &str) -> Result<(), String> {
    let mut depth = 0;
    for c in sel.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return Err(format!("`{sel}` has an unmatched ')'"));
        }
    }
    if depth != 0 {
        return Err(format!("`{sel}` has an unmatched '('"));
    }
    for part in sel.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let key = part
            .trim_start_matches('!')
            .split(['=', '!', ' '])
            .next()
            .unwrap_or_default();
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !ok && !part.contains(" in ") && !part.contains(" notin ") && !part.ends_with(')') {
            return Err(format!("`{part}` is not a valid label requirement"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_filters() {
        assert!(glob_match("shop-*", "shop-eu"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("d?ta", "data"));
        assert!(!glob_match("shop-*", "ops"));
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
