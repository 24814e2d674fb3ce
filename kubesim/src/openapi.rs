//! What kubectl's validation reads: OpenAPI v3 documents (`/openapi/v3`
//! and one per group-version) whose schemas are true for the kinds served,
//! and server-side field validation (`fieldValidation=Strict|Warn|Ignore`)
//! that the documents advertise on every write.
//!
//! Built-in kinds' schemas come from the same message schema as protobuf
//! (`proto::SCHEMA`); a custom resource's is its CRD's `openAPIV3Schema`.
//! OpenAPI v2 is not served: current kubectl reads v3, and kubectl before
//! 1.27 asks for v2 only in its protobuf form (so it needs
//! `--validate=false` here).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::proto::{Field, SCHEMA};
use crate::resources::ResourceType;

/// `io.k8s.…` component name of a message.
fn component(message: &str) -> String {
    let tail = message
        .strip_prefix("apiextensions_apiserver.")
        .map(|t| format!("apiextensions-apiserver.{t}"))
        .unwrap_or_else(|| message.to_string());
    format!("io.k8s.{tail}")
}

fn special(message: &str) -> Option<Value> {
    Some(match message {
        "apimachinery.pkg.apis.meta.v1.Time" | "apimachinery.pkg.apis.meta.v1.MicroTime" => {
            json!({"type": "string", "format": "date-time"})
        }
        "apimachinery.pkg.api.resource.Quantity" => {
            json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]})
        }
        "apimachinery.pkg.util.intstr.IntOrString" => {
            json!({"type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": true})
        }
        "apimachinery.pkg.apis.meta.v1.Duration" => json!({"type": "string"}),
        "apimachinery.pkg.runtime.RawExtension"
        | "apimachinery.pkg.apis.meta.v1.FieldsV1"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1.Json" => {
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
        }
        m if crate::proto::EITHER.contains(&m) => {
            json!({"x-kubernetes-preserve-unknown-fields": true})
        }
        _ => return None,
    })
}

fn scalar(kind: &str) -> Value {
    match kind {
        "string" => json!({"type": "string"}),
        "bytes" => json!({"type": "string", "format": "byte"}),
        "bool" => json!({"type": "boolean"}),
        "int32" => json!({"type": "integer", "format": "int32"}),
        "int64" => json!({"type": "integer", "format": "int64"}),
        _ => json!({"type": "number", "format": "double"}),
    }
}

fn reference(message: &str) -> Value {
    json!({"allOf": [{"$ref": format!("#/components/schemas/{}", component(message))}]})
}

fn field_schema(f: &Field, todo: &mut Vec<String>) -> Value {
    let one = |todo: &mut Vec<String>, kind: &str, m: Option<&String>| match (kind, m) {
        ("message", Some(m)) => {
            todo.push(m.clone());
            reference(m)
        }
        (k, _) => scalar(k),
    };
    match f.k.as_str() {
        "map" => {
            json!({"type": "object", "additionalProperties": one(todo, f.v.as_deref().unwrap_or("string"), f.m.as_ref())})
        }
        kind if f.r => json!({"type": "array", "items": one(todo, kind, f.m.as_ref())}),
        kind => one(todo, kind, f.m.as_ref()),
    }
}

/// The schemas of `roots` and every message they reach, by component name.
/// `kinds` are (message, group, version, kind) of the top-level kinds.
fn schemas(kinds: &[(String, String, String, String)]) -> Map<String, Value> {
    let mut out = Map::new();
    let mut todo: Vec<String> = kinds.iter().map(|k| k.0.clone()).collect();
    let mut seen = BTreeSet::new();
    while let Some(message) = todo.pop() {
        if !seen.insert(message.clone()) {
            continue;
        }
        let schema = match special(&message) {
            Some(s) => s,
            None => {
                if !SCHEMA.messages.contains_key(&message) {
                    continue;
                }
                let mut properties = Map::new();
                for f in crate::proto::json_fields(&message).iter().copied() {
                    properties.insert(f.j.clone(), field_schema(f, &mut todo));
                }
                let gvks: Vec<Value> = kinds
                    .iter()
                    .filter(|k| k.0 == message)
                    .map(|(_, g, v, k)| json!({"group": g, "version": v, "kind": k}))
                    .collect();
                if !gvks.is_empty() {
                    properties.insert("apiVersion".into(), json!({"type": "string"}));
                    properties.insert("kind".into(), json!({"type": "string"}));
                }
                let mut schema = json!({"type": "object", "properties": properties});
                if !gvks.is_empty() {
                    schema["x-kubernetes-group-version-kind"] = json!(gvks);
                }
                schema
            }
        };
        out.insert(component(&message), schema);
    }
    out
}

fn param(name: &str, place: &str, kind: &str) -> Value {
    json!({"name": name, "in": place, "required": place == "path",
           "schema": {"type": kind, "uniqueItems": true}})
}

/// The `/openapi/v3` index: one document per group-version.
pub fn index(types: &[ResourceType]) -> Value {
    let mut paths = Map::new();
    for (path, doc) in documents(types, &[]) {
        let hash = fnv(&doc.to_string());
        paths.insert(
            path.trim_start_matches('/').to_string(),
            json!({"serverRelativeURL": format!("/openapi/v3{path}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The document of one group-version (`/api/v1`, `/apis/apps/v1`), if served.
pub fn document(types: &[ResourceType], crds: &[Value], path: &str) -> Option<Value> {
    documents(types, crds)
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, d)| d)
}

fn documents(types: &[ResourceType], crds: &[Value]) -> Vec<(String, Value)> {
    let mut by_gv: BTreeMap<String, Vec<&ResourceType>> = BTreeMap::new();
    for rt in types {
        by_gv
            .entry(gv_path(&rt.group, &rt.version))
            .or_default()
            .push(rt);
    }
    by_gv
        .into_iter()
        .map(|(path, rts)| {
            let doc = gv_document(&rts, crds);
            (path, doc)
        })
        .collect()
}

fn gv_document(rts: &[&ResourceType], crds: &[Value]) -> Value {
    let mut paths = Map::new();
    let mut kinds = Vec::new();
    let mut custom = Map::new();
    for rt in rts {
        let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
        let schema_ref = match crate::proto::message_of(&rt.api_version(), &rt.kind) {
            Some(message) => {
                kinds.push((
                    message.to_string(),
                    rt.group.clone(),
                    rt.version.clone(),
                    rt.kind.clone(),
                ));
                format!("#/components/schemas/{}", component(message))
            }
            None => {
                // A custom resource: its CRD's schema for this version.
                let name = format!("{}.{}.{}", reverse_domain(&rt.group), rt.version, rt.kind);
                custom.insert(name.clone(), custom_schema(rt, crds));
                format!("#/components/schemas/{name}")
            }
        };
        let body = json!({"content": {"application/json": {"schema": {"$ref": schema_ref}}}});
        let op = |action: &str, extra: Vec<Value>| {
            let mut params = extra;
            params.push(param("pretty", "query", "string"));
            json!({
                "operationId": format!("{action}{}", rt.kind),
                "parameters": params,
                "requestBody": if matches!(action, "create" | "replace" | "patch") { body.clone() } else { Value::Null },
                "responses": {"200": body.clone()},
                "x-kubernetes-action": match action { "replace" => "put", "create" => "post", "read" => "get", a => a },
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        let writes = || {
            vec![
                param("dryRun", "query", "string"),
                param("fieldManager", "query", "string"),
                param("fieldValidation", "query", "string"),
            ]
        };
        let base = gv_path(&rt.group, &rt.version);
        let (collection, item, scope) = if rt.namespaced {
            (
                format!("{base}/namespaces/{{namespace}}/{}", rt.resource),
                format!("{base}/namespaces/{{namespace}}/{}/{{name}}", rt.resource),
                vec![param("namespace", "path", "string")],
            )
        } else {
            (
                format!("{base}/{}", rt.resource),
                format!("{base}/{}/{{name}}", rt.resource),
                Vec::new(),
            )
        };
        let mut item_params = vec![param("name", "path", "string")];
        item_params.extend(scope.clone());
        let mut patch_params = writes();
        patch_params.push(param("force", "query", "boolean"));
        paths.insert(
            collection,
            json!({
                "parameters": scope,
                "get": op("list", vec![param("labelSelector", "query", "string"), param("limit", "query", "integer")]),
                "post": op("create", writes()),
            }),
        );
        paths.insert(
            item,
            json!({
                "parameters": item_params,
                "get": op("read", Vec::new()),
                "put": op("replace", writes()),
                "patch": op("patch", patch_params),
                "delete": op("delete", vec![param("dryRun", "query", "string")]),
            }),
        );
    }
    let mut components = schemas(&kinds);
    components.extend(custom);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::resources::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": components},
    })
}

fn reverse_domain(group: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    parts.join(".")
}

/// The CRD's schema of `rt`'s version, with apiVersion, kind and metadata.
fn crd_version_schema(rt: &ResourceType, crds: &[Value]) -> Option<Value> {
    let crd = crds.iter().find(|c| {
        c["spec"]["group"] == rt.group.as_str()
            && c["spec"]["names"]["plural"] == rt.resource.as_str()
    })?;
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == rt.version.as_str())
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
}

fn custom_schema(rt: &ResourceType, crds: &[Value]) -> Value {
    let mut schema = crd_version_schema(rt, crds)
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    schema["properties"]["apiVersion"] = json!({"type": "string"});
    schema["properties"]["kind"] = json!({"type": "string"});
    schema["properties"]["metadata"] = reference("apimachinery.pkg.apis.meta.v1.ObjectMeta");
    schema["x-kubernetes-group-version-kind"] =
        json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]);
    schema
}

// ------------------------------------------------------------ validation

/// The fields of `obj` that its kind does not have, as kube-apiserver
/// names them (`spec.template.spec.containers[0].imagePullPolcy`).
pub fn unknown_fields(rt: &ResourceType, crds: &[Value], obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match crate::proto::message_of(&rt.api_version(), &rt.kind) {
        Some(message) => walk_message(message, obj, "", &mut out, true),
        None => {
            if let Some(schema) = crd_version_schema(rt, crds) {
                let meta = "apimachinery.pkg.apis.meta.v1.ObjectMeta";
                if let Some(m) = obj.as_object() {
                    for (k, v) in m {
                        match k.as_str() {
                            "apiVersion" | "kind" => {}
                            "metadata" => walk_message(meta, v, "metadata", &mut out, false),
                            // A root that keeps unknown fields keeps them at the top too.
                            _ if schema["properties"].get(k).is_none()
                                && schema["x-kubernetes-preserve-unknown-fields"] == true => {}
                            _ => walk_structural(&schema["properties"][k], v, k, &mut out),
                        }
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

fn walk_message(message: &str, v: &Value, path: &str, out: &mut Vec<String>, top: bool) {
    if special(message).is_some() {
        return;
    }
    let Some(obj) = v.as_object() else {
        return;
    };
    let fields = crate::proto::json_fields(message);
    for (k, child) in obj {
        // Patch directives are not fields.
        if k.starts_with('$') || (top && matches!(k.as_str(), "apiVersion" | "kind")) {
            continue;
        }
        let Some(f) = fields.iter().find(|f| f.j == *k) else {
            out.push(join(path, k));
            continue;
        };
        let here = join(path, k);
        let Some(m) = f.m.as_deref() else { continue };
        match (f.k.as_str(), child) {
            ("map", Value::Object(entries)) => {
                for (key, item) in entries {
                    walk_message(m, item, &format!("{here}[{key}]"), out, false);
                }
            }
            (_, Value::Array(items)) if f.r => {
                for (i, item) in items.iter().enumerate() {
                    walk_message(m, item, &format!("{here}[{i}]"), out, false);
                }
            }
            _ => walk_message(m, child, &here, out, false),
        }
    }
}

/// A structural schema (a CRD's): unknown properties unless preserved.
fn walk_structural(schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    if schema.is_null() {
        out.push(path.to_string());
        return;
    }
    if schema["x-kubernetes-preserve-unknown-fields"] == true
        || schema["x-kubernetes-embedded-resource"] == true
    {
        return;
    }
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            for (k, child) in m {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => walk_structural(s, child, &join(path, k), out),
                    None if additional.is_object() => {
                        walk_structural(additional, child, &format!("{path}[{k}]"), out)
                    }
                    None if additional == &Value::Bool(true) => {}
                    None if props.is_none() && schema["type"] != "object" => {}
                    None => out.push(join(path, k)),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_structural(&schema["items"], item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(resource: &str) -> ResourceType {
        crate::resources::builtin_named(resource)
    }

    #[test]
    fn documents_advertise_field_validation_with_true_schemas() {
        let types = crate::resources::builtin();
        let index = index(&types);
        assert!(
            index["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        let doc = document(&types, &[], "/apis/apps/v1").unwrap();
        let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        let patch = &item["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        let d = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            d["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        assert!(d["properties"]["spec"].is_object());
        let containers =
            &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["type"], "array");
    }

    #[test]
    fn unknown_fields_are_named_by_path() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"a": "b"}},
            "spec": {"replicas": 1, "replica": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx", "imagePullPolcy": "Always",
                 "resources": {"limits": {"cpu": "1"}}}]}}}});
        assert_eq!(
            unknown_fields(&rt("deployments"), &[], &obj),
            [
                "spec.replica",
                "spec.template.spec.containers[0].imagePullPolcy"
            ]
        );
        let crd = json!({"spec": {"group": "example.com", "names": {"plural": "widgets"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}});
        let widgets = ResourceType {
            group: "example.com".into(),
            version: "v1".into(),
            resource: "widgets".into(),
            kind: "Widget".into(),
            ..rt("configmaps")
        };
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                       "spec": {"size": 1, "colour": "red"}});
        assert_eq!(unknown_fields(&widgets, &[crd], &w), ["spec.colour"]);
        // A root schema that preserves unknown fields (as the demo's
        // Database) accepts any top-level field, as kube-apiserver does.
        let open = json!({"spec": {"group": "example.com", "names": {"plural": "widgets"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object",
                "x-kubernetes-preserve-unknown-fields": true}}}]}});
        assert!(unknown_fields(&widgets, &[open], &w).is_empty());
    }
}
