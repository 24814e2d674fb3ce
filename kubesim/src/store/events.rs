//! Events through two APIs, one storage: kube-apiserver keeps
//! `events.k8s.io/v1` Events in the storage of core `v1` Events (one
//! object in etcd, two shapes), converting on every read and write. An
//! Event made through either API is read, watched, changed and deleted
//! through both.

use serde_json::{Map, Value};

use crate::resources::ResourceType;

/// `events.k8s.io/v1` field ↔ core `v1` field, as kube-apiserver's
/// conversion (`pkg/apis/events/v1/conversion.go`) pairs them. The other
/// fields (`eventTime`, `series`, `related`, `action`, `reason`, `type`,
/// `reportingInstance`, metadata) have the same name in both.
const RENAMED: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Whether `rt` is `events.k8s.io`'s Event, kept with core Events.
pub fn is_events_api(rt: &ResourceType) -> bool {
    rt.group == "events.k8s.io" && rt.resource == "events"
}

/// The (group, resource) objects of `rt` are kept under.
pub fn storage_key(rt: &ResourceType) -> (String, String) {
    if is_events_api(rt) {
        (String::new(), "events".to_string())
    } else {
        (rt.group.clone(), rt.resource.clone())
    }
}

fn rename(object: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = object.remove(from) {
        object.insert(to.to_string(), value);
    }
}

/// An `events.k8s.io/v1` Event in the core shape it is stored in.
pub fn to_core(mut obj: Value) -> Value {
    if let Some(object) = obj.as_object_mut() {
        for (events, core) in RENAMED {
            rename(object, events, core);
        }
    }
    obj
}

/// A stored core Event in the `events.k8s.io/v1` shape.
pub fn from_core(mut obj: Value) -> Value {
    if let Some(object) = obj.as_object_mut() {
        for (events, core) in RENAMED {
            rename(object, core, events);
        }
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_two_shapes_convert_both_ways() {
        let core = json!({
            "metadata": {"name": "e", "namespace": "shop"},
            "involvedObject": {"kind": "Pod", "name": "web-0"},
            "message": "pulled",
            "reason": "Pulled",
            "source": {"component": "kubelet"},
            "count": 3,
            "reportingComponent": "kubelet"
        });
        let events = from_core(core.clone());
        assert_eq!(events["regarding"]["name"], "web-0");
        assert_eq!(events["note"], "pulled");
        assert_eq!(events["deprecatedCount"], 3);
        assert_eq!(events["deprecatedSource"]["component"], "kubelet");
        assert_eq!(events["reportingController"], "kubelet");
        assert_eq!(events["reason"], "Pulled");
        assert!(events.get("message").is_none() && events.get("involvedObject").is_none());
        assert_eq!(to_core(events), core);
    }
}
