//! What a backup, a restore or a schedule's template selects, one model for
//! all three: namespace and resource globs, label selectors (one parser, in
//! the API server's syntax), and the names Lifeboat gives things.
//!
//! Invariant: pure — no cluster, storage or database here.

use serde_json::Value;

pub mod backup_spec;
pub mod hooks;
pub use backup_spec::{BackupSpec, BackupSpecExt, ClusterResources};

/// A field of a spec and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

pub fn err(field: &str, message: impl Into<String>) -> SpecError {
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

/// Whether a glob is made of what names are made of, plus `*` and `?`.
pub fn valid_glob(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 253
        && g.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '*' | '?')
        })
}

/// Checks include/exclude glob lists, naming the field of the first bad one.
pub fn validate_globs<'a>(
    lists: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> Result<(), SpecError> {
    for (field, globs) in lists {
        if let Some(bad) = globs.iter().find(|g| !valid_glob(g)) {
            return Err(err(
                field,
                format!(
                    "`{bad}` is not a valid name or glob (lower-case letters, digits, '-', '.', '*' and '?')"
                ),
            ));
        }
    }
    Ok(())
}

/// The filters a backup and a restore share, as their specs name them.
pub struct Filters<'a> {
    pub included_namespaces: &'a [String],
    pub excluded_namespaces: &'a [String],
    pub included_resources: &'a [String],
    pub excluded_resources: &'a [String],
    pub label_selector: Option<&'a str>,
}

impl Filters<'_> {
    /// Checks the globs and the label selector, naming the field at fault.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_globs([
            ("includedNamespaces", self.included_namespaces),
            ("excludedNamespaces", self.excluded_namespaces),
            ("includedResources", self.included_resources),
            ("excludedResources", self.excluded_resources),
        ])?;
        if let Some(sel) = self.label_selector {
            LabelSelector::parse(sel).map_err(|m| err("labelSelector", m))?;
        }
        Ok(())
    }
}

/// Included (all when none are listed) and not excluded. `*` matches every
/// name, dots included.
pub fn included(name: &str, included: &[String], excluded: &[String]) -> bool {
    let matches = |g: &String| g == "*" || glob_match(g, name);
    (included.is_empty() || included.iter().any(matches)) && !excluded.iter().any(matches)
}

/// The names of an include list when it names them exactly (no globs, not
/// empty, which means all): `None` otherwise.
pub fn exact_names(included: &[String]) -> Option<Vec<String>> {
    if included.is_empty() || included.iter().any(|g| g.contains(['*', '?'])) {
        return None;
    }
    Some(included.to_vec())
}

/// A DNS-1123 label: what namespaces, backups and restores are named.
pub fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Backup, restore and schedule names become object keys and labels.
pub fn validate_name(name: &str) -> Result<(), SpecError> {
    if dns_label(name) {
        Ok(())
    } else {
        Err(err(
            "name",
            format!(
                "`{name}` must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit"
            ),
        ))
    }
}

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A label selector in the API server's syntax (`app=web,tier in (a,b),!legacy`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok =
        prefix.is_none_or(|p| !p.is_empty() && p.len() <= 253 && p.split('.').all(dns_label));
    name_ok && prefix_ok
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A label selector that does not parse: which requirement is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

impl From<SelectorError> for String {
    fn from(e: SelectorError) -> Self {
        e.0
    }
}

impl LabelSelector {
    /// Parses a selector; the error says which requirement is wrong.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0i32, 0);
        for (i, c) in selector.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&selector[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
            if depth < 0 {
                return Err(SelectorError(format!("`{selector}` has an unmatched ')'")));
            }
        }
        if depth != 0 {
            return Err(SelectorError(format!("`{selector}` has an unmatched '('")));
        }
        parts.push(&selector[start..]);
        let mut out = Vec::new();
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || SelectorError(format!("`{part}` is not a valid label requirement"));
            let set = |v: &str| -> Result<Vec<String>, SelectorError> {
                let inner = v
                    .trim()
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .ok_or_else(bad)?;
                let values: Vec<String> = inner.split(',').map(|x| x.trim().to_string()).collect();
                if values.iter().all(|v| valid_value(v)) {
                    Ok(values)
                } else {
                    Err(bad())
                }
            };
            let requirement = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_string())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().to_string(), set(v)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Requirement::In(k.trim().to_string(), set(v)?)
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(k.trim().to_string(), v.trim().to_string())
            } else {
                Requirement::Exists(part.to_string())
            };
            let (key, value) = match &requirement {
                Requirement::Exists(k) | Requirement::NotExists(k) => (k, None),
                Requirement::Equals(k, v) | Requirement::NotEquals(k, v) => (k, Some(v)),
                Requirement::In(k, _) | Requirement::NotIn(k, _) => (k, None),
            };
            if !valid_key(key) || value.is_some_and(|v| !valid_value(v)) {
                return Err(bad());
            }
            out.push(requirement);
        }
        Ok(Self(out))
    }

    /// Whether a labels map (`metadata.labels`) satisfies every requirement.
    pub fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_names_and_inclusion() {
        assert!(glob_match("shop-*", "shop-eu"));
        assert!(glob_match("d?ta", "data"));
        assert!(!glob_match("shop-*", "ops"));
        let (inc, exc) = (vec!["shop-*".to_string()], vec!["shop-old".to_string()]);
        assert!(included("shop-eu", &inc, &exc));
        assert!(!included("shop-old", &inc, &exc));
        assert!(included("deployments.apps", &["*".to_string()], &[]));
        assert!(validate_name("nightly-20261129").is_ok());
        assert!(validate_name("Nightly").is_err() && validate_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn label_selectors_parse_and_match_like_the_api_server() {
        let labels = json!({"app": "web", "tier": "a", "example.com/team": "x"});
        for (selector, matches) in [
            ("app=web,tier in (a,b)", true),
            ("app==web", true),
            ("app!=web", false),
            ("tier notin (a)", false),
            ("!legacy,example.com/team", true),
            ("", true),
        ] {
            let parsed = LabelSelector::parse(selector).expect(selector);
            assert_eq!(parsed.matches(&labels), matches, "{selector}");
        }
        for bad in ["app in (a", "app)", "-app=x", "app=a b", "tier in a,b"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
