//! `application/vnd.kubernetes.protobuf`, the encoding kubectl's typed
//! clients (and client-go's) send and prefer: a `k8s\0` magic, then a
//! `runtime.Unknown` envelope naming the apiVersion and kind, whose `raw`
//! bytes are the object's own message.
//!
//! Messages are read and written from a schema of the Kubernetes API's
//! messages (field numbers, wire types, JSON names) generated from the
//! k8s-pb and k8s-openapi crates by `proto/generate.py`. The JSON side is
//! kube-apiserver's: `Time` is an RFC 3339 string, `Quantity` a string,
//! `IntOrString` a number or a string, `RawExtension`/`FieldsV1`/`JSON`
//! embedded JSON, `int64` a number, `bytes` base64.
//!
//! Go writes every non-pointer scalar even when it is zero; its JSON
//! encoder omits them (`omitempty`), so decoding drops zero values too,
//! except in the fields whose Go type is a pointer (`POINTERS`), where zero
//! is the client's choice. A zero `Time` becomes absent.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, Deserialize)]
pub struct Field {
    /// Field number.
    pub n: u64,
    /// JSON name.
    pub j: String,
    /// Wire kind: string, bytes, bool, int32, int64, double, message, map.
    pub k: String,
    /// The message type (message fields, and maps of messages).
    #[serde(default)]
    pub m: Option<String>,
    /// A map's value kind.
    #[serde(default)]
    pub v: Option<String>,
    #[serde(default)]
    pub r: bool,
    /// Embedded in Go (`json:",inline"`): its fields are the parent's in JSON.
    #[serde(default)]
    pub i: bool,
}

/// The JSON fields of a message, those of embedded messages included
/// (worked out once per message).
pub fn json_fields(message: &str) -> &'static [&'static Field] {
    static FLAT: LazyLock<HashMap<&'static str, Vec<&'static Field>>> = LazyLock::new(|| {
        fn flatten(message: &str, out: &mut Vec<&'static Field>) {
            for f in SCHEMA.messages.get(message).into_iter().flatten() {
                match (f.i, f.m.as_deref()) {
                    (true, Some(inner)) => flatten(inner, out),
                    _ => out.push(f),
                }
            }
        }
        SCHEMA
            .messages
            .keys()
            .map(|name| {
                let mut fields = Vec::new();
                flatten(name, &mut fields);
                (name.as_str(), fields)
            })
            .collect()
    });
    FLAT.get(message).map_or(&[], Vec::as_slice)
}

#[derive(Debug, Deserialize)]
pub struct Kind {
    pub message: String,
    #[serde(default)]
    pub plural: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Schema {
    pub messages: HashMap<String, Vec<Field>>,
    /// `apiVersion/Kind` → message.
    pub kinds: HashMap<String, Kind>,
}

pub static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../proto/k8s-schema.json"))
        .expect("the generated schema is valid JSON")
});

const TIME: &str = "apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "apimachinery.pkg.apis.meta.v1.Duration";
const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "apimachinery.pkg.util.intstr.IntOrString";
const RAW: &[&str] = &[
    "apimachinery.pkg.runtime.RawExtension",
    "apimachinery.pkg.apis.meta.v1.FieldsV1",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.Json",
];
/// A schema or a list of them, a schema or a bool…: one JSON value that is
/// one of two messages. Not translated: a CRD is read and written as JSON.
pub const EITHER: &[&str] = &[
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOrArray",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOrBool",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOrStringArray",
];
const TYPE_META: &str = "apimachinery.pkg.runtime.TypeMeta";

/// Whether a Content-Type or Accept entry names protobuf.
pub fn is_protobuf(media_type: &str) -> bool {
    media_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim() == MEDIA_TYPE)
}

/// The message of an `apiVersion` and `kind`, if the schema has it.
pub fn message_of(api_version: &str, kind: &str) -> Option<&'static str> {
    SCHEMA
        .kinds
        .get(&format!("{api_version}/{kind}"))
        .map(|k| k.message.as_str())
}

// ------------------------------------------------------------------ wire

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.buf.get(self.pos..end).ok_or("truncated field")?;
        self.pos = end;
        Ok(s)
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// One field as read: its number and its payload.
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    /// No Kubernetes field is 32-bit fixed; read and skipped.
    Fixed32,
    Bytes(&'a [u8]),
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Raw<'_>)>, String> {
    let mut r = Reader { buf, pos: 0 };
    let mut out = Vec::new();
    while !r.done() {
        let key = r.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        let raw = match wire {
            0 => Raw::Varint(r.varint()?),
            1 => {
                let b = r.take(8)?;
                Raw::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| "fixed64")?))
            }
            2 => {
                let len = usize::try_from(r.varint()?).map_err(|_| "length overflow")?;
                Raw::Bytes(r.take(len)?)
            }
            5 => {
                r.take(4)?;
                Raw::Fixed32
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((number, raw));
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, number: u64, wire: u64) {
    put_varint(out, (number << 3) | wire);
}

fn put_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_key(out, number, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

// ------------------------------------------------------------------ decode

fn scalar(kind: &str, raw: &Raw) -> Result<Value, String> {
    Ok(match (kind, raw) {
        ("string", Raw::Bytes(b)) => Value::String(
            std::str::from_utf8(b)
                .map_err(|_| "a string field is not UTF-8")?
                .to_string(),
        ),
        ("bytes", Raw::Bytes(b)) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        ("bool", Raw::Varint(v)) => json!(*v != 0),
        ("int32", Raw::Varint(v)) => json!(*v as i32),
        ("int64", Raw::Varint(v)) => json!(*v as i64),
        ("double", Raw::Fixed64(v)) => json!(f64::from_bits(*v)),
        (k, _) => return Err(format!("a {k} field has the wrong wire type")),
    })
}

fn time_string(seconds: i64, nanos: i64, micro: bool) -> Value {
    if seconds == 0 && nanos == 0 {
        return Value::Null;
    }
    match chrono::DateTime::from_timestamp(seconds, nanos.clamp(0, 999_999_999) as u32) {
        Some(t) if micro => json!(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => Value::Null,
    }
}

/// A message's bytes as kube-apiserver's JSON.
pub fn decode_message(name: &str, buf: &[u8]) -> Result<Value, String> {
    if EITHER.contains(&name) {
        return Err(format!(
            "{name} is not supported in protobuf here; send JSON"
        ));
    }
    let raw = fields(buf)?;
    let number = |n: u64| {
        raw.iter().rev().find_map(|(k, v)| match (k == &n, v) {
            (true, Raw::Varint(x)) => Some(*x as i64),
            _ => None,
        })
    };
    let text = |n: u64| {
        raw.iter().rev().find_map(|(k, v)| match (k == &n, v) {
            (true, Raw::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
    };
    match name {
        TIME | MICRO_TIME => {
            return Ok(time_string(
                number(1).unwrap_or(0),
                number(2).unwrap_or(0),
                name == MICRO_TIME,
            ));
        }
        DURATION => {
            let ns = number(1).unwrap_or(0);
            return Ok(json!(format!("{}s", ns as f64 / 1e9)));
        }
        QUANTITY => return Ok(text(1).map(Value::String).unwrap_or(Value::Null)),
        INT_OR_STRING => {
            return Ok(if number(1).unwrap_or(0) == 1 {
                json!(text(3).unwrap_or_default())
            } else {
                json!(number(2).unwrap_or(0) as i32)
            });
        }
        _ if RAW.contains(&name) => {
            return match raw.iter().rev().find(|(k, _)| *k == 1) {
                Some((_, Raw::Bytes(b))) if !b.is_empty() => {
                    serde_json::from_slice(b).map_err(|e| format!("embedded JSON in {name}: {e}"))
                }
                _ => Ok(Value::Null),
            };
        }
        _ => {}
    }
    let schema = SCHEMA
        .messages
        .get(name)
        .ok_or_else(|| format!("no message {name} in the schema"))?;
    let mut out = Map::new();
    for (number, payload) in &raw {
        // Fields this schema does not know are skipped, as a newer client may send them.
        let Some(f) = schema.iter().find(|f| f.n == *number) else {
            continue;
        };
        let value = match f.k.as_str() {
            "message" if f.i => {
                let Raw::Bytes(b) = payload else {
                    return Err(format!("{}: not a message", f.j));
                };
                if let Value::Object(inner) = decode_message(f.m.as_deref().unwrap_or_default(), b)?
                {
                    out.extend(inner);
                }
                continue;
            }
            "message" => {
                let Raw::Bytes(b) = payload else {
                    return Err(format!("{}: not a message", f.j));
                };
                decode_message(f.m.as_deref().unwrap_or_default(), b)?
            }
            "map" => {
                let Raw::Bytes(b) = payload else {
                    return Err(format!("{}: not a map entry", f.j));
                };
                let entry = fields(b)?;
                let key = entry
                    .iter()
                    .find_map(|(k, v)| match (k, v) {
                        (1, Raw::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let kind = f.v.as_deref().unwrap_or("string");
                let value = match entry.iter().find(|(k, _)| *k == 2) {
                    Some((_, Raw::Bytes(b))) if kind == "message" => {
                        decode_message(f.m.as_deref().unwrap_or_default(), b)?
                    }
                    Some(_) if kind == "message" => Value::Null,
                    Some((_, v)) => scalar(kind, v)?,
                    None if kind == "string" => json!(""),
                    None => Value::Null,
                };
                let slot = out.entry(f.j.clone()).or_insert_with(|| json!({}));
                slot[key] = value;
                continue;
            }
            kind => {
                // Packed repeated scalars: one length-delimited run of values.
                if let (true, Raw::Bytes(b), "int32" | "int64" | "bool") = (f.r, payload, kind) {
                    let mut r = Reader { buf: b, pos: 0 };
                    let slot = out.entry(f.j.clone()).or_insert_with(|| json!([]));
                    while !r.done() {
                        let v = scalar(kind, &Raw::Varint(r.varint()?))?;
                        if let Some(a) = slot.as_array_mut() {
                            a.push(v);
                        }
                    }
                    continue;
                }
                scalar(kind, payload)?
            }
        };
        if f.r {
            let slot = out.entry(f.j.clone()).or_insert_with(|| json!([]));
            if let Some(a) = slot.as_array_mut() {
                a.push(value);
            }
        } else if !(value.is_null() || is_go_zero(&f.j, &value)) {
            out.insert(f.j.clone(), value);
        }
    }
    Ok(Value::Object(out))
}

/// Fields whose Go type is a pointer, where a zero value is the client's
/// choice and not Go's default (`replicas: 0`, `runAsNonRoot: false`).
const POINTERS: &[&str] = &[
    "replicas",
    "minReplicas",
    "revisionHistoryLimit",
    "progressDeadlineSeconds",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "backoffLimit",
    "backoffLimitPerIndex",
    "maxFailedIndexes",
    "completions",
    "parallelism",
    "suspend",
    "ttlSecondsAfterFinished",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "shareProcessNamespace",
    "hostUsers",
    "setHostnameAsFQDN",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "readOnlyRootFilesystem",
    "privileged",
    "allowPrivilegeEscalation",
    "defaultMode",
    "mode",
    "optional",
    "immutable",
    "allocateLoadBalancerNodePorts",
    "publishNotReadyAddresses",
    "expirationSeconds",
    "priority",
    "partition",
    "maxSurge",
    "maxUnavailable",
    "minAvailable",
    "averageUtilization",
    "targetCPUUtilizationPercentage",
    "stabilizationWindowSeconds",
    "storageClassName",
    "volumeMode",
    "seccompProfile",
    "deletionGracePeriodSeconds",
    "gracePeriodSeconds",
    "orphanDependents",
    "limit",
    "remainingItemCount",
];

/// Whether Go's JSON encoder would leave this value out (`omitempty` on a
/// non-pointer field): an empty string, zero or false, unless the field is
/// a pointer.
fn is_go_zero(field: &str, value: &Value) -> bool {
    let zero = match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    };
    zero && !POINTERS.contains(&field)
}

/// A request body: the envelope, then the object it carries, with its
/// apiVersion and kind.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(MAGIC)
        .ok_or("the body does not start with the protobuf magic k8s\\0")?;
    let envelope = fields(inner)?;
    let mut type_meta = Value::Null;
    let mut raw: &[u8] = &[];
    for (number, payload) in &envelope {
        match (number, payload) {
            (1, Raw::Bytes(b)) => type_meta = decode_message(TYPE_META, b)?,
            (2, Raw::Bytes(b)) => raw = b,
            (3, Raw::Bytes(b)) if !b.is_empty() => {
                return Err(format!(
                    "content encoding {} is not supported",
                    String::from_utf8_lossy(b)
                ));
            }
            _ => {}
        }
    }
    let api_version = type_meta["apiVersion"].as_str().unwrap_or_default();
    let kind = type_meta["kind"].as_str().unwrap_or_default();
    let message = message_of(api_version, kind)
        .ok_or_else(|| format!("no protobuf message for {api_version} {kind}"))?;
    let mut obj = decode_message(message, raw)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

// ------------------------------------------------------------------ encode

fn encode_scalar(out: &mut Vec<u8>, number: u64, kind: &str, v: &Value) -> Result<(), String> {
    match kind {
        "string" => {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            put_bytes(out, number, s.as_bytes());
        }
        "bytes" => {
            let b = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .map_err(|e| format!("bytes field is not base64: {e}"))?;
            put_bytes(out, number, &b);
        }
        "bool" => {
            put_key(out, number, 0);
            put_varint(out, u64::from(v.as_bool().unwrap_or(false)));
        }
        "int32" | "int64" => {
            put_key(out, number, 0);
            let n = v
                .as_i64()
                .or_else(|| v.as_f64().map(|f| f as i64))
                .unwrap_or(0);
            put_varint(out, n as u64);
        }
        "double" => {
            put_key(out, number, 1);
            out.extend_from_slice(&v.as_f64().unwrap_or(0.0).to_bits().to_le_bytes());
        }
        other => return Err(format!("cannot encode a {other}")),
    }
    Ok(())
}

/// kube-apiserver's JSON of a message, as its bytes.
pub fn encode_message(name: &str, v: &Value) -> Result<Vec<u8>, String> {
    if EITHER.contains(&name) {
        return Err(format!("{name} is not translated to protobuf"));
    }
    let mut out = Vec::new();
    match name {
        TIME | MICRO_TIME => {
            if let Some(t) = v
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            {
                put_key(&mut out, 1, 0);
                put_varint(&mut out, t.timestamp() as u64);
                let nanos = t.timestamp_subsec_nanos();
                if nanos != 0 {
                    put_key(&mut out, 2, 0);
                    put_varint(&mut out, u64::from(nanos));
                }
            }
            return Ok(out);
        }
        QUANTITY => {
            encode_scalar(&mut out, 1, "string", v)?;
            return Ok(out);
        }
        INT_OR_STRING => {
            match v {
                Value::Number(_) => {
                    encode_scalar(&mut out, 1, "int64", &json!(0))?;
                    encode_scalar(&mut out, 2, "int32", v)?;
                }
                other => {
                    encode_scalar(&mut out, 1, "int64", &json!(1))?;
                    encode_scalar(&mut out, 3, "string", other)?;
                }
            }
            return Ok(out);
        }
        DURATION => return Ok(out),
        _ if RAW.contains(&name) => {
            let bytes = serde_json::to_vec(v).map_err(|e| e.to_string())?;
            put_bytes(&mut out, 1, &bytes);
            return Ok(out);
        }
        _ => {}
    }
    let schema = SCHEMA
        .messages
        .get(name)
        .ok_or_else(|| format!("no message {name} in the schema"))?;
    let mut ordered: Vec<&Field> = schema.iter().collect();
    ordered.sort_by_key(|f| f.n);
    for f in ordered {
        if f.i {
            let inner = encode_message(f.m.as_deref().unwrap_or_default(), v)?;
            if !inner.is_empty() {
                put_bytes(&mut out, f.n, &inner);
            }
            continue;
        }
        let value = &v[f.j.as_str()];
        if value.is_null() {
            continue;
        }
        let one = |out: &mut Vec<u8>, item: &Value| -> Result<(), String> {
            match f.k.as_str() {
                "message" => {
                    let bytes = encode_message(f.m.as_deref().unwrap_or_default(), item)?;
                    put_bytes(out, f.n, &bytes);
                    Ok(())
                }
                kind => encode_scalar(out, f.n, kind, item),
            }
        };
        match (f.k.as_str(), value) {
            ("map", Value::Object(m)) => {
                for (key, item) in m {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, key.as_bytes());
                    match f.v.as_deref().unwrap_or("string") {
                        "message" => {
                            let bytes = encode_message(f.m.as_deref().unwrap_or_default(), item)?;
                            put_bytes(&mut entry, 2, &bytes);
                        }
                        kind => encode_scalar(&mut entry, 2, kind, item)?,
                    }
                    put_bytes(&mut out, f.n, &entry);
                }
            }
            (_, Value::Array(items)) if f.r => {
                for item in items {
                    one(&mut out, item)?;
                }
            }
            _ => one(&mut out, value)?,
        }
    }
    Ok(out)
}

/// An object (with apiVersion and kind) in the envelope, or `None` when
/// the schema has no message for its kind.
pub fn encode(obj: &Value) -> Option<Vec<u8>> {
    let api_version = obj["apiVersion"].as_str()?;
    let kind = obj["kind"].as_str()?;
    let message = message_of(api_version, kind)?;
    let raw = encode_message(message, obj).ok()?;
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = MAGIC.to_vec();
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_through_the_wire_format() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                         "creationTimestamp": "2026-11-29T10:00:00Z", "generation": 3},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                      "args": ["-g", "daemon off;"],
                                      "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                                      "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}});
        let wire = encode(&deployment).expect("a known kind");
        assert!(wire.starts_with(MAGIC));
        assert_eq!(decode(&wire).expect("decodes"), deployment);

        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "annotations": {"a": ""}}, "type": "Opaque",
            "data": {"password": "czNjcjN0"}});
        assert_eq!(decode(&encode(&secret).unwrap()).unwrap(), secret);
        // Go's zero values of non-pointer fields are what its JSON leaves out.
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "generation": 0},
            "spec": {"hostIPC": false, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "stdin": false, "image": ""}]}});
        let decoded = decode(&encode(&pod).unwrap()).unwrap();
        pod["metadata"] = json!({"name": "p"});
        pod["spec"] = json!({"terminationGracePeriodSeconds": 0, "containers": [{"name": "c"}]});
        assert_eq!(decoded, pod);
        assert!(encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})).is_none());
        // Fields Go embeds (a volume's source, a selector's name) stay flat in JSON.
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}],
                     "containers": [{"name": "c", "env": [{"name": "X",
                         "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}});
        assert_eq!(decode(&encode(&pod).unwrap()).unwrap(), pod);
    }

    #[test]
    fn empty_go_strings_and_zero_times_are_left_out_and_bad_input_is_an_error() {
        // What Go writes for ObjectMeta{Name: "x"}: every string, and an empty Time.
        let mut meta = Vec::new();
        put_bytes(&mut meta, 1, b"x");
        put_bytes(&mut meta, 2, b"");
        put_bytes(&mut meta, 8, b"");
        let mut ns = Vec::new();
        put_bytes(&mut ns, 1, &meta);
        let mut type_meta = Vec::new();
        put_bytes(&mut type_meta, 1, b"v1");
        put_bytes(&mut type_meta, 2, b"Namespace");
        let mut wire = MAGIC.to_vec();
        put_bytes(&mut wire, 1, &type_meta);
        put_bytes(&mut wire, 2, &ns);
        assert_eq!(
            decode(&wire).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
        );
        assert!(decode(b"{\"kind\": \"Namespace\"}").is_err());
        assert!(decode(&wire[..wire.len() - 3]).is_err(), "truncated");
    }
}
