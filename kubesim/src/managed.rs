//! `metadata.managedFields`: which manager last set which fields, recorded
//! on every write that names a manager (kube-apiserver takes the
//! `fieldManager` parameter, or the client's User-Agent up to its first
//! `/`). The field sets are `FieldsV1` as the API server writes them:
//! `f:` for map keys, `k:` for list items keyed by their name (or port),
//! `.` for a container that is itself set. Conflict detection between
//! managers is not simulated.

use serde_json::{Map, Value, json};

use crate::clock::now;

/// The metadata fields the server owns; never recorded.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

/// The key of a list item: its name, or its port and protocol (ports have no name of their own in containers).
fn item_key(item: &Map<String, Value>) -> Option<String> {
    for keys in [
        &["name"][..],
        &["containerPort", "protocol"][..],
        &["port", "protocol"][..],
        &["type"][..],
        &["key"][..],
        &["ip"][..],
    ] {
        let mut key = Map::new();
        for k in keys {
            match item.get(*k) {
                Some(v) if !v.is_null() => {
                    key.insert((*k).to_string(), v.clone());
                }
                _ if *k == "protocol" => {
                    key.insert("protocol".into(), json!("TCP"));
                }
                _ => break,
            }
        }
        if key.len() == keys.len() {
            return Some(format!("k:{}", Value::Object(key)));
        }
    }
    None
}

/// The field set of a value below a field.
fn set_of(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            out.insert(".".into(), json!({}));
            for (k, child) in m {
                out.insert(format!("f:{k}"), set_of(child));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let keyed: Option<Vec<(String, Value)>> = items
                .iter()
                .map(|i| {
                    let m = i.as_object()?;
                    let key = item_key(m)?;
                    Some((key, set_of(i)))
                })
                .collect();
            match keyed {
                Some(keyed) if !keyed.is_empty() => {
                    Value::Object(keyed.into_iter().collect::<Map<String, Value>>())
                }
                // Scalar lists and lists without keys are atomic.
                _ => json!({}),
            }
        }
        _ => json!({}),
    }
}

/// The fields a client set in `obj` (not apiVersion, kind, status or the
/// server's metadata).
pub fn fields_of(obj: &Value) -> Value {
    let mut out = Map::new();
    let Some(m) = obj.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                let mut meta = Map::new();
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if !SYSTEM_METADATA.contains(&mk.as_str()) {
                        meta.insert(format!("f:{mk}"), set_of(mv));
                    }
                }
                if !meta.is_empty() {
                    out.insert("f:metadata".into(), Value::Object(meta));
                }
            }
            _ => {
                out.insert(format!("f:{k}"), set_of(v));
            }
        }
    }
    Value::Object(out)
}

/// `entries` with this manager's entry for `operation` replaced (or added).
pub fn record(
    entries: &Value,
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: Option<&str>,
    fields: Value,
) -> Value {
    let mut out: Vec<Value> = entries
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| {
                    !(e["manager"] == manager
                        && e["operation"] == operation
                        && e["subresource"].as_str() == subresource)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(sub) = subresource {
        entry["subresource"] = json!(sub);
    }
    out.push(entry);
    Value::Array(out)
}

/// The manager kube-apiserver names when the client gave no `fieldManager`:
/// its User-Agent up to the first `/` (`kubectl/v1.32.4 …` → `kubectl`).
pub fn from_user_agent(user_agent: &str) -> Option<String> {
    let name: String = user_agent
        .split('/')
        .next()
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    (!name.trim().is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_sets_look_like_the_api_servers() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "uid": "u", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx", "args": ["-v"], "ports": [{"containerPort": 80}]}]}}},
            "status": {"replicas": 2}});
        let f = fields_of(&obj);
        assert_eq!(f["f:metadata"], json!({"f:labels": {".": {}, "f:app": {}}}));
        let web = &f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(web["f:image"], json!({}));
        assert_eq!(web["f:args"], json!({}));
        assert!(web["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object());
        assert!(f.get("f:status").is_none() && f.get("f:kind").is_none());
        let entries = record(
            &Value::Null,
            "kubectl",
            "Update",
            "apps/v1",
            None,
            f.clone(),
        );
        let again = record(&entries, "kubectl", "Update", "apps/v1", None, f);
        assert_eq!(again.as_array().map(Vec::len), Some(1));
        let two = record(
            &again,
            "kube-controller-manager",
            "Update",
            "apps/v1",
            Some("status"),
            json!({}),
        );
        assert_eq!(two.as_array().map(Vec::len), Some(2));
        assert_eq!(
            from_user_agent("kubectl/v1.32.4 (linux/amd64)").as_deref(),
            Some("kubectl")
        );
    }
}
