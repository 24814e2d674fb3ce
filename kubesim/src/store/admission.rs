//! Admission: what kube-apiserver's registry strategies and admission
//! plugins do to an object on create — kind-specific defaults and checks
//! (namespaces, Secrets' `stringData`, Jobs' selectors and labels, CRD
//! names, the default StorageClass) — and Service IP and node-port
//! allocation.

use serde_json::{Value, json};

use super::*;

/// A Secret's `stringData` is write-only, on create and on every update
/// and patch: merged into `data`, base64-encoded, and not stored.
pub(super) fn fold_string_data(obj: &mut Value) {
    if let Some(Value::Object(plain)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
        if !obj["data"].is_object() {
            obj["data"] = json!({});
        }
        for (k, v) in plain {
            use base64::Engine;
            let text = v.as_str().unwrap_or_default();
            obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
}

impl Store {
    /// Kind-specific defaults and checks on create.
    pub(super) fn admit_create(
        &self,
        state: &mut State,
        rt: &ResourceType,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        let name = name_of(obj).to_string();
        match (rt.group.as_str(), rt.resource.as_str()) {
            ("", "namespaces") => {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
                obj["status"] = json!({"phase": "Active"});
                if let Some(m) = obj["metadata"].as_object_mut() {
                    m.remove("generation");
                }
                let labels = obj["metadata"]
                    .as_object_mut()
                    .map(|m| m.entry("labels").or_insert(json!({})));
                if let Some(labels) = labels {
                    labels["kubernetes.io/metadata.name"] = json!(name);
                }
            }
            ("", "services") => self.allocate_service(state, obj, None)?,
            ("", "secrets") => {
                fold_string_data(obj);
                if obj["type"].is_null() {
                    obj["type"] = json!("Opaque");
                }
            }
            ("", "pods") if obj["status"]["phase"].is_null() => {
                obj["status"] = json!({"phase": "Pending", "conditions": []});
            }
            ("", "persistentvolumeclaims") => {
                // The DefaultStorageClass admission plugin.
                if obj["spec"]["storageClassName"].is_null() && obj["spec"]["volumeName"].is_null()
                {
                    let default_class = state
                        .objects
                        .get(&("storage.k8s.io".to_string(), "storageclasses".to_string()))
                        .and_then(|b| {
                            b.values().map(Stored::value).find(|c| {
                                c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
                            })
                        })
                        .and_then(|c| c["metadata"]["name"].as_str().map(str::to_string));
                    if let Some(class) = default_class {
                        obj["spec"]["storageClassName"] = json!(class);
                    }
                }
                if obj["status"]["phase"].is_null() {
                    obj["status"] = json!({"phase": "Pending"});
                }
            }
            ("", "persistentvolumes") if obj["status"]["phase"].is_null() => {
                obj["status"] = json!({"phase": "Available"});
            }
            ("batch", "jobs") => {
                let manual = obj["spec"]["manualSelector"].as_bool() == Some(true);
                if !obj["spec"]["selector"].is_null() && !manual {
                    return Err(ApiError::invalid(
                        "Job",
                        &name,
                        &format!(
                            "spec.selector: Invalid value: {}: `selector` will be auto-generated",
                            obj["spec"]["selector"]
                        ),
                    ));
                }
                let uid = uid_of(obj).to_string();
                if !manual {
                    obj["spec"]["selector"] =
                        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
                    let template_labels = &mut obj["spec"]["template"]["metadata"]["labels"];
                    if !template_labels.is_object() {
                        *template_labels = json!({});
                    }
                    template_labels["batch.kubernetes.io/controller-uid"] = json!(uid);
                    template_labels["controller-uid"] = json!(uid);
                    template_labels["batch.kubernetes.io/job-name"] = json!(name);
                    template_labels["job-name"] = json!(name);
                }
                // A Job without labels takes its template's.
                let own = &obj["metadata"]["labels"];
                if own.as_object().is_none_or(|l| l.is_empty()) {
                    obj["metadata"]["labels"] =
                        obj["spec"]["template"]["metadata"]["labels"].clone();
                }
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let spec = &obj["spec"];
                let expected = format!(
                    "{}.{}",
                    spec["names"]["plural"].as_str().unwrap_or_default(),
                    spec["group"].as_str().unwrap_or_default()
                );
                if name != expected {
                    return Err(ApiError::invalid(
                        "CustomResourceDefinition",
                        &name,
                        &format!(
                            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
                        ),
                    ));
                }
                if resources::from_crd(obj).is_empty() {
                    return Err(ApiError::invalid(
                        "CustomResourceDefinition",
                        &name,
                        "spec.versions: Invalid value: must have at least one served version",
                    ));
                }
                let at = now();
                obj["status"] = json!({
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": at},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "lastTransitionTime": at},
                    ],
                    "acceptedNames": spec["names"].clone(),
                    "storedVersions": [resources::crd_storage_version(obj)],
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Allocates (or checks) a Service's clusterIP and node ports.
    pub(super) fn allocate_service(
        &self,
        state: &mut State,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let name = name_of(obj).to_string();
        let invalid = |msg: String| ApiError::invalid("Service", &name, &msg);
        if let Some(old) = old {
            let old_ip = &old["spec"]["clusterIP"];
            let new_ip = &obj["spec"]["clusterIP"];
            if !new_ip.is_null() && new_ip != old_ip {
                return Err(invalid(format!(
                    "spec.clusterIPs[0]: Invalid value: []string{{{new_ip}}}: may not change once set"
                )));
            }
            obj["spec"]["clusterIP"] = old_ip.clone();
            obj["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            return Ok(());
        }
        let requested = obj["spec"]["clusterIP"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ip = match requested.as_str() {
            "None" => "None".to_string(),
            "" => {
                let mut candidate = state.next_ip;
                let mut tries = 0;
                while state.allocated_ips.contains(&candidate) {
                    candidate =
                        SERVICE_RANGE_BASE + ((candidate - SERVICE_RANGE_BASE + 1) % 65_534);
                    tries += 1;
                    if tries > 65_534 {
                        return Err(invalid(
                            "spec.clusterIPs: Internal error: range is full".into(),
                        ));
                    }
                }
                state.next_ip = candidate + 1;
                state.allocated_ips.insert(candidate);
                ip_string(candidate)
            }
            wanted => {
                let Some(parsed) =
                    parse_ip(wanted).filter(|ip| ip >> 16 == SERVICE_RANGE_BASE >> 16)
                else {
                    return Err(invalid(format!(
                        "spec.clusterIPs: Invalid value: []string{{\"{wanted}\"}}: failed to allocate IP {wanted}: the provided IP ({wanted}) is not in the valid range. The range of valid IPs is 10.96.0.0/16"
                    )));
                };
                if !state.allocated_ips.insert(parsed) {
                    return Err(invalid(format!(
                        "spec.clusterIPs: Invalid value: []string{{\"{wanted}\"}}: failed to allocate IP {wanted}: provided IP is already allocated"
                    )));
                }
                wanted.to_string()
            }
        };
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
        if obj["spec"]["type"].is_null() {
            obj["spec"]["type"] = json!("ClusterIP");
        }
        let wants_node_ports = matches!(
            obj["spec"]["type"].as_str(),
            Some("NodePort" | "LoadBalancer")
        );
        if let Some(ports) = obj["spec"]["ports"].as_array_mut() {
            for port in ports {
                if port["protocol"].is_null() {
                    port["protocol"] = json!("TCP");
                }
                if port["targetPort"].is_null() {
                    port["targetPort"] = port["port"].clone();
                }
                if !wants_node_ports {
                    continue;
                }
                match port["nodePort"].as_u64() {
                    Some(p) => {
                        let p = u16::try_from(p).unwrap_or(0);
                        if !(30000..=32767).contains(&p) || !state.allocated_node_ports.insert(p) {
                            return Err(invalid(format!(
                                "spec.ports[0].nodePort: Invalid value: {p}: provided port is already allocated"
                            )));
                        }
                    }
                    None => {
                        let free =
                            (30000..=32767u16).find(|p| !state.allocated_node_ports.contains(p));
                        if let Some(p) = free {
                            state.allocated_node_ports.insert(p);
                            port["nodePort"] = json!(p);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn release_service(state: &mut State, obj: &Value) {
        if let Some(ip) = obj["spec"]["clusterIP"].as_str().and_then(parse_ip) {
            state.allocated_ips.remove(&ip);
        }
        if let Some(ports) = obj["spec"]["ports"].as_array() {
            for p in ports {
                if let Some(np) = p["nodePort"].as_u64().and_then(|p| u16::try_from(p).ok()) {
                    state.allocated_node_ports.remove(&np);
                }
            }
        }
    }
}
