//! What the timeline shows, pure: changes counted per minute, and the
//! difference between two states of an object, Secret values never shown.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Changes per minute: (the minute's start, how many), oldest first.
pub fn per_minute(times: impl IntoIterator<Item = DateTime<Utc>>) -> Vec<(DateTime<Utc>, u64)> {
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    for t in times {
        *counts.entry(t.timestamp().div_euclid(60)).or_default() += 1;
    }
    counts
        .into_iter()
        .filter_map(|(minute, n)| Some((DateTime::from_timestamp(minute * 60, 0)?, n)))
        .collect()
}

/// One field that differs between two states of an object.
pub use frontend::model::Difference;

/// Fields the server changes on every write: not what a person changed.
const NOISE: &[&str] = &[
    "metadata.resourceVersion",
    "metadata.generation",
    "metadata.managedFields",
    "status.observedGeneration",
];

/// The fields that differ between `before` and `after` (either may be
/// `null`: created or deleted), leaves only, in path order. A Secret's
/// values are compared but shown as `<redacted>`, as is kubectl's
/// last-applied annotation on a Secret (it holds the values).
pub fn diff(before: &Value, after: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(before, after, String::new(), &mut out);
    out.retain(|d| {
        !NOISE
            .iter()
            .any(|n| d.path == *n || d.path.starts_with(&format!("{n}.")))
    });
    let secret = before["kind"] == "Secret" || after["kind"] == "Secret";
    if secret {
        for d in &mut out {
            let hidden = d.path.starts_with("data.")
                || d.path.starts_with("stringData.")
                || d.path
                    == "metadata.annotations.kubectl.kubernetes.io/last-applied-configuration";
            if hidden {
                for v in [&mut d.before, &mut d.after] {
                    if !v.is_null() {
                        *v = Value::String("<redacted>".into());
                    }
                }
            }
        }
    }
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(before: &Value, after: &Value, path: String, out: &mut Vec<Difference>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                walk(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    join(&path, k),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, format!("{path}[{i}]"), out);
            }
        }
        (Value::Null, Value::Object(b)) => {
            for (k, v) in b {
                walk(&Value::Null, v, join(&path, k), out);
            }
        }
        (Value::Object(a), Value::Null) => {
            for (k, v) in a {
                walk(v, &Value::Null, join(&path, k), out);
            }
        }
        (a, b) if a != b => out.push(Difference {
            path,
            before: a.clone(),
            after: b.clone(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_are_counted_by_minute() {
        let t = |s: i64| DateTime::from_timestamp(1_764_400_000 + s, 0).unwrap();
        let counted = per_minute([t(0), t(10), t(59), t(61), t(600)]);
        // 1_764_400_000 is 40 s into its minute.
        assert_eq!(
            counted.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        assert!(counted.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(counted[0].0.timestamp() % 60, 0);
    }

    #[test]
    fn leaves_that_differ_are_listed_without_server_noise() {
        let before = json!({"kind": "Deployment", "metadata": {"resourceVersion": "1", "labels": {"a": "1"}},
                            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "web:1"}]}}}});
        let after = json!({"kind": "Deployment", "metadata": {"resourceVersion": "9", "labels": {"a": "1", "b": "2"}},
                           "spec": {"replicas": 4, "template": {"spec": {"containers": [{"image": "web:2"}]}}}});
        let d = diff(&before, &after);
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "metadata.labels.b",
                "spec.replicas",
                "spec.template.spec.containers[0].image"
            ]
        );
        assert_eq!(d[1].before, json!(2));
        assert_eq!(d[1].after, json!(4));
        // Created: every leaf is new.
        assert_eq!(
            diff(&Value::Null, &json!({"data": {"x": "1"}}))[0].path,
            "data.x"
        );
    }

    #[test]
    fn secret_values_are_compared_but_never_shown() {
        let before = json!({"kind": "Secret", "data": {"token": "YmVmb3Jl", "same": "eA=="}});
        let after = json!({"kind": "Secret", "data": {"token": "YWZ0ZXI=", "same": "eA=="}, "type": "Opaque"});
        let d = diff(&before, &after);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].path, "data.token");
        assert_eq!(d[0].before, json!("<redacted>"));
        assert_eq!(d[0].after, json!("<redacted>"));
        assert!(!serde_json::to_string(&d).unwrap().contains("YWZ0ZXI="));
    }
}
