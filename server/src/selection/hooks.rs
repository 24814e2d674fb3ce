//! Hooks as users write them, read and checked: durations, commands,
//! `on-error`, label selectors, and a backup spec's hook rules. Running
//! them is `backup::hooks` and `restore::hooks`.

use std::time::Duration;

use frontend::model::{BackupHooks, HookLabelSelector};

use crate::selection::{LabelSelector, SelectorError};

/// A hook rule that does not read: the field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct HookRuleError {
    pub field: String,
    pub problem: String,
}

impl HookRuleError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// What a failing hook does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// The backup fails (the restored item fails).
    Fail,
    /// A warning; the rest goes on.
    Continue,
}

impl OnError {
    /// `Fail` or `Continue`, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("fail") {
            Some(OnError::Fail)
        } else if text.eq_ignore_ascii_case("continue") {
            Some(OnError::Continue)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Fail => "Fail",
            OnError::Continue => "Continue",
        }
    }
}

/// Parses `30s`, `2m`, `1h`, `1m30s`, or plain seconds.
pub fn duration(text: &str) -> Option<Duration> {
    if let Ok(seconds) = text.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    super::backup_spec::parse_ttl(text.trim()).map(|s| Duration::from_secs(s as u64))
}

/// A hook's command: a JSON array of strings, or one string (as Velero).
pub fn command(text: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(text.trim()) {
        Ok(argv) => argv,
        Err(_) => vec![text.to_string()],
    }
}

/// Whether a command has something to run.
pub fn runnable(argv: &[String]) -> bool {
    !argv.iter().all(|a| a.trim().is_empty())
}

/// A `metav1.LabelSelector` as a selector (the error says what is wrong).
pub fn selector(s: &HookLabelSelector) -> Result<LabelSelector, SelectorError> {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in &s.match_expressions {
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({})", e.key, e.values.join(",")),
            "NotIn" => format!("{} notin ({})", e.key, e.values.join(",")),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => {
                return Err(SelectorError(format!(
                    "operator `{other}` is none of In, NotIn, Exists, DoesNotExist"
                )));
            }
        });
    }
    LabelSelector::parse(&parts.join(","))
}

/// The name a rule goes by in errors: `hooks.resources[0] (name)`.
pub fn rule_name(i: usize, name: &str) -> String {
    if name.is_empty() {
        format!("hooks.resources[{i}]")
    } else {
        format!("hooks.resources[{i}] ({name})")
    }
}

/// A backup spec's hook rules, checked; the error names the field.
pub fn check_backup_hooks(hooks: &BackupHooks) -> Result<(), HookRuleError> {
    for (i, rule) in hooks.resources.iter().enumerate() {
        let name = rule_name(i, &rule.name);
        if let Some(s) = &rule.label_selector {
            selector(s)
                .map_err(|e| HookRuleError::new(format!("{name}.labelSelector"), e.to_string()))?;
        }
        if rule.pre.is_empty() && rule.post.is_empty() {
            return Err(HookRuleError::new(name, "give pre or post hooks"));
        }
        for (when, list) in [("pre", &rule.pre), ("post", &rule.post)] {
            for (j, hook) in list.iter().enumerate() {
                let at = format!("{name}.{when}[{j}].exec");
                if !runnable(&hook.exec.command) {
                    return Err(HookRuleError::new(format!("{at}.command"), "is empty"));
                }
                if let Some(v) = &hook.exec.on_error
                    && OnError::parse(v).is_none()
                {
                    return Err(HookRuleError::new(
                        format!("{at}.onError"),
                        format!("`{v}` is neither Fail nor Continue"),
                    ));
                }
                if let Some(v) = &hook.exec.timeout
                    && duration(v).is_none()
                {
                    return Err(HookRuleError::new(
                        format!("{at}.timeout"),
                        format!("`{v}` is not a duration; use e.g. 30s or 2m"),
                    ));
                }
            }
        }
    }
    Ok(())
}
