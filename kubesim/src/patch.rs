//! Patch semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and
//! strategic merge patch for the common cases of built-in types (lists of
//! objects keyed by `name`, such as containers, env, ports and volumes, are
//! merged by key; `$patch: delete` removes an entry).

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or_default().trim();
        Some(match ct {
            "application/merge-patch+json" => Self::Merge,
            "application/json-patch+json" => Self::Json,
            "application/strategic-merge-patch+json" => Self::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+json" => Self::Apply,
            _ => return None,
        })
    }
}

/// Applies `patch` to `target` in place.
pub fn apply(target: &mut Value, patch: &Value, kind: PatchType) -> Result<(), String> {
    match kind {
        PatchType::Merge => {
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchType::Json => {
            let ops: json_patch::Patch =
                serde_json::from_value(patch.clone()).map_err(|e| e.to_string())?;
            json_patch::patch(target, &ops).map_err(|e| e.to_string())
        }
        PatchType::Strategic | PatchType::Apply => {
            strategic_merge(target, patch);
            Ok(())
        }
    }
}

/// The key that identifies entries of a list for strategic merge, if any.
fn merge_key(items: &[Value]) -> Option<&'static str> {
    ["name", "containerPort", "mountPath", "ip", "port"]
        .into_iter()
        .find(|key| !items.is_empty() && items.iter().all(|i| i.get(*key).is_some()))
}

fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if key.starts_with("$setElementOrder") || key == "$retainKeys" {
            continue;
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Object(_) => {
                strategic_merge(target_map.entry(key.clone()).or_insert(Value::Null), value)
            }
            Value::Array(patch_items) => {
                let existing = target_map.get_mut(key);
                match (existing, merge_key(patch_items)) {
                    (Some(Value::Array(items)), Some(mk))
                        if items.iter().all(|i| i.get(mk).is_some()) =>
                    {
                        for p in patch_items {
                            let id = p.get(mk).cloned();
                            let pos = items.iter().position(|i| i.get(mk) == id.as_ref());
                            let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
                            match (pos, delete) {
                                (Some(i), true) => {
                                    items.remove(i);
                                }
                                (Some(i), false) => strategic_merge(&mut items[i], p),
                                (None, false) => {
                                    let mut fresh = Value::Null;
                                    strategic_merge(&mut fresh, p);
                                    items.push(fresh);
                                }
                                (None, true) => {}
                            }
                        }
                    }
                    _ => {
                        target_map.insert(key.clone(), value.clone());
                    }
                }
            }
            _ => {
                target_map.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut obj = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
        ]}});
        apply(
            &mut obj,
            &json!({"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}}),
            PatchType::Strategic,
        )
        .unwrap();
        let images: Vec<_> = obj["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["image"].as_str().unwrap())
            .collect();
        assert_eq!(images, ["a:1", "b:2", "c:1"]);
        // A merge patch replaces the list instead.
        apply(
            &mut obj,
            &json!({"spec": {"containers": [{"name": "z"}]}}),
            PatchType::Merge,
        )
        .unwrap();
        assert_eq!(obj["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn json_patch_and_null_removal() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        apply(
            &mut obj,
            &json!({"metadata": {"labels": {"a": null}}}),
            PatchType::Merge,
        )
        .unwrap();
        assert_eq!(obj, json!({"metadata": {"labels": {"b": "2"}}}));
        apply(
            &mut obj,
            &json!([{"op": "add", "path": "/metadata/labels/c", "value": "3"}]),
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(obj["metadata"]["labels"]["c"], "3");
        assert!(
            apply(
                &mut obj,
                &json!([{"op": "test", "path": "/x", "value": 1}]),
                PatchType::Json
            )
            .is_err()
        );
    }
}
