//! Server-side printing: `meta.k8s.io/v1` `Table` responses, which kubectl
//! asks for on every `get` (`Accept: application/json;as=Table;…`). The
//! columns are kube-apiserver's for each built-in kind (priority 1 columns
//! are the ones `-o wide` adds); custom resources get their CRD's
//! `additionalPrinterColumns` and an Age; anything else Name and Created At.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::resources::ResourceType;

/// Whether an Accept header asks for a Table.
pub fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn col(name: &str, kind: &str, priority: u8, description: &str) -> Value {
    let mut c = json!({"name": name, "type": kind, "format": "", "description": description, "priority": priority});
    if name == "Name" {
        c["format"] = json!("name");
    }
    c
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(text: String) -> String {
    if text.is_empty() {
        "<none>".into()
    } else {
        text
    }
}

fn count(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn len(v: &Value) -> usize {
    v.as_object()
        .map(|m| m.len())
        .or_else(|| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

/// kube-apiserver's `HumanDuration` of how long ago `t` was.
pub fn age(t: &Value, now: DateTime<Utc>) -> String {
    let Some(then) = t
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return "<unknown>".into();
    };
    let seconds = (now - then.with_timezone(&Utc)).num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    let pair = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{small_unit}")
        }
    };
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    let years = days / 365;
    match () {
        _ if seconds < 120 => format!("{seconds}s"),
        _ if minutes < 10 => pair(minutes, "m", seconds % 60, "s"),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 => pair(hours, "h", minutes % 60, "m"),
        _ if hours < 48 => format!("{hours}h"),
        _ if hours < 24 * 8 => pair(days, "d", hours % 24, "h"),
        _ if hours < 24 * 365 * 2 => format!("{days}d"),
        _ if hours < 24 * 365 * 8 => pair(years, "y", days % 365, "d"),
        _ => format!("{years}y"),
    }
}

fn containers(spec: &Value) -> (String, String) {
    let list = spec["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = list.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<String> = list.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

fn selector(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .or_else(|| {
            sel.as_object()
                .filter(|m| !m.contains_key("matchExpressions"))
        })
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.is_string())
                .map(|(k, v)| format!("{k}={}", s(v)))
                .collect()
        })
        .unwrap_or_default();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let values: Vec<String> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        parts.push(format!(
            "{} {} ({})",
            s(&e["key"]),
            s(&e["operator"]).to_lowercase(),
            values.join(",")
        ));
    }
    or_none(parts.join(","))
}

/// A JSONPath of the simple form CRDs use (`.spec.replicas`, `.status.x[0].y`).
fn json_path<'a>(obj: &'a Value, path: &str) -> &'a Value {
    let mut v = obj;
    for part in path.trim_start_matches('.').split('.') {
        if part.is_empty() {
            continue;
        }
        let (key, index) = match part.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        v = &v[key];
        if let Some(i) = index {
            v = &v[i];
        }
    }
    v
}

/// A row's cells from an object, at a time (for ages).
type Cells = Box<dyn Fn(&Value, DateTime<Utc>) -> Vec<Value>>;

/// The column definitions and a row's cells for a resource type.
struct Printer {
    columns: Vec<Value>,
    cells: Cells,
}

fn printer(rt: &ResourceType, crd: Option<&Value>) -> Printer {
    let name = |o: &Value| json!(s(&o["metadata"]["name"]));
    let age_of = |o: &Value, now| json!(age(&o["metadata"]["creationTimestamp"], now));
    let desc_name = "Name must be unique within a namespace.";
    let desc_age = "CreationTimestamp is a timestamp representing the server time when this object was created.";
    let base = |extra: Vec<Value>| {
        let mut c = vec![col("Name", "string", 0, desc_name)];
        c.extend(extra);
        c
    };
    // Workloads add their template's containers and images (and selector)
    // with -o wide.
    let wide = |selector: bool, extra: Vec<Value>| {
        let mut c = base(extra);
        c.push(col(
            "Containers",
            "string",
            1,
            "Names of each container in the template.",
        ));
        c.push(col(
            "Images",
            "string",
            1,
            "Images referenced by each container in the template.",
        ));
        if selector {
            c.push(col(
                "Selector",
                "string",
                1,
                "A label query over pods that are managed by this workload.",
            ));
        }
        c
    };
    macro_rules! p {
        ($cols:expr, $f:expr) => {
            Printer {
                columns: $cols,
                cells: Box::new($f),
            }
        };
    }
    match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "pods") => p!(
            base(vec![
                col(
                    "Ready",
                    "string",
                    0,
                    "The aggregate readiness state of this pod for accepting traffic."
                ),
                col(
                    "Status",
                    "string",
                    0,
                    "The aggregate status of the containers in this pod."
                ),
                col(
                    "Restarts",
                    "string",
                    0,
                    "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."
                ),
                col("Age", "string", 0, desc_age),
                col(
                    "IP",
                    "string",
                    1,
                    "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."
                ),
                col(
                    "Node",
                    "string",
                    1,
                    "NodeName is a request to schedule this pod onto a specific node."
                ),
                col(
                    "Nominated Node",
                    "string",
                    1,
                    "nominatedNodeName is set only when this pod preempts other pods on the node."
                ),
                col(
                    "Readiness Gates",
                    "string",
                    1,
                    "If specified, all readiness gates will be evaluated for pod readiness."
                ),
            ]),
            move |o: &Value, now| {
                let statuses = o["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
                let ready = statuses.iter().filter(|c| c["ready"] == true).count();
                let restarts: i64 = statuses.iter().map(|c| count(&c["restartCount"])).sum();
                let mut status = s(&o["status"]["phase"]);
                for c in &statuses {
                    if let Some(reason) = c["state"]["waiting"]["reason"].as_str() {
                        status = reason.to_string();
                    } else if let Some(reason) = c["state"]["terminated"]["reason"].as_str() {
                        status = reason.to_string();
                    }
                }
                if !o["metadata"]["deletionTimestamp"].is_null() {
                    status = "Terminating".into();
                }
                vec![
                    name(o),
                    json!(format!("{ready}/{total}")),
                    json!(or_none(status)),
                    json!(restarts.to_string()),
                    age_of(o, now),
                    json!(or_none(s(&o["status"]["podIP"]))),
                    json!(or_none(s(&o["spec"]["nodeName"]))),
                    json!(or_none(s(&o["status"]["nominatedNodeName"]))),
                    json!("<none>"),
                ]
            }
        ),
        ("", "namespaces") => p!(
            base(vec![
                col("Status", "string", 0, "The status of the namespace"),
                col("Age", "string", 0, desc_age),
            ]),
            move |o: &Value, now| vec![name(o), json!(s(&o["status"]["phase"])), age_of(o, now)]
        ),
        ("", "nodes") => p!(
            base(vec![
                col("Status", "string", 0, "The status of the node"),
                col("Roles", "string", 0, "The roles of the node"),
                col("Age", "string", 0, desc_age),
                col(
                    "Version",
                    "string",
                    0,
                    "Kubelet Version reported by the node."
                ),
                col(
                    "Internal-IP",
                    "string",
                    1,
                    "List of addresses reachable to the node."
                ),
                col(
                    "External-IP",
                    "string",
                    1,
                    "List of addresses reachable to the node."
                ),
                col(
                    "OS-Image",
                    "string",
                    1,
                    "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."
                ),
                col(
                    "Kernel-Version",
                    "string",
                    1,
                    "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."
                ),
                col(
                    "Container-Runtime",
                    "string",
                    1,
                    "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."
                ),
            ]),
            move |o: &Value, now| {
                let ready = o["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Ready")
                    .map_or("Unknown", |c| {
                        if c["status"] == "True" {
                            "Ready"
                        } else {
                            "NotReady"
                        }
                    });
                let mut status = ready.to_string();
                if o["spec"]["unschedulable"] == true {
                    status.push_str(",SchedulingDisabled");
                }
                let roles: Vec<String> = o["metadata"]["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, _)| {
                        k.strip_prefix("node-role.kubernetes.io/")
                            .map(str::to_string)
                    })
                    .collect();
                let address = |kind: &str| {
                    o["status"]["addresses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|a| a["type"] == kind)
                        .map_or("<none>".to_string(), |a| s(&a["address"]))
                };
                let info = &o["status"]["nodeInfo"];
                vec![
                    name(o),
                    json!(status),
                    json!(or_none(roles.join(","))),
                    age_of(o, now),
                    json!(s(&info["kubeletVersion"])),
                    json!(address("InternalIP")),
                    json!(address("ExternalIP")),
                    json!(or_none(s(&info["osImage"]))),
                    json!(or_none(s(&info["kernelVersion"]))),
                    json!(or_none(s(&info["containerRuntimeVersion"]))),
                ]
            }
        ),
        ("", "services") => p!(
            base(vec![
                col(
                    "Type",
                    "string",
                    0,
                    "type determines how the Service is exposed."
                ),
                col(
                    "Cluster-IP",
                    "string",
                    0,
                    "clusterIP is the IP address of the service and is usually assigned randomly."
                ),
                col(
                    "External-IP",
                    "string",
                    0,
                    "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."
                ),
                col(
                    "Port(s)",
                    "string",
                    0,
                    "The list of ports that are exposed by this service."
                ),
                col("Age", "string", 0, desc_age),
                col(
                    "Selector",
                    "string",
                    1,
                    "Route service traffic to pods with label keys and values matching this selector."
                ),
            ]),
            move |o: &Value, now| {
                let spec = &o["spec"];
                let kind = s(&spec["type"]);
                let ports: Vec<String> = spec["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| match p["nodePort"].as_i64() {
                        Some(np) if kind == "NodePort" || kind == "LoadBalancer" => {
                            format!("{}:{np}/{}", s(&p["port"]), s(&p["protocol"]))
                        }
                        _ => format!("{}/{}", s(&p["port"]), s(&p["protocol"])),
                    })
                    .collect();
                let external = match kind.as_str() {
                    "ExternalName" => s(&spec["externalName"]),
                    "LoadBalancer" => o["status"]["loadBalancer"]["ingress"]
                        .as_array()
                        .and_then(|i| i.first())
                        .map_or("<pending>".to_string(), |i| s(&i["ip"])),
                    _ => or_none(
                        spec["externalIPs"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(s)
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                };
                vec![
                    name(o),
                    json!(kind),
                    json!(or_none(s(&spec["clusterIP"]))),
                    json!(external),
                    json!(or_none(ports.join(","))),
                    age_of(o, now),
                    json!(selector(&spec["selector"])),
                ]
            }
        ),
        ("", "configmaps") => p!(
            base(vec![
                col(
                    "Data",
                    "integer",
                    0,
                    "Data contains the configuration data."
                ),
                col("Age", "string", 0, desc_age),
            ]),
            move |o: &Value, now| vec![
                name(o),
                json!(len(&o["data"]) + len(&o["binaryData"])),
                age_of(o, now)
            ]
        ),
        ("", "secrets") => p!(
            base(vec![
                col(
                    "Type",
                    "string",
                    0,
                    "Used to facilitate programmatic handling of secret data."
                ),
                col("Data", "integer", 0, "Data contains the secret data."),
                col("Age", "string", 0, desc_age),
            ]),
            move |o: &Value, now| vec![
                name(o),
                json!(s(&o["type"])),
                json!(len(&o["data"])),
                age_of(o, now)
            ]
        ),
        ("", "serviceaccounts") => p!(
            base(vec![
                col(
                    "Secrets",
                    "string",
                    0,
                    "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."
                ),
                col("Age", "string", 0, desc_age),
            ]),
            move |o: &Value, now| vec![
                name(o),
                json!(len(&o["secrets"]).to_string()),
                age_of(o, now)
            ]
        ),
        ("", "persistentvolumeclaims") => p!(
            base(vec![
                col(
                    "Status",
                    "string",
                    0,
                    "Phase represents the current phase of PersistentVolumeClaim."
                ),
                col(
                    "Volume",
                    "string",
                    0,
                    "VolumeName is the binding reference to the PersistentVolume backing this claim."
                ),
                col(
                    "Capacity",
                    "string",
                    0,
                    "Capacity represents the actual resources of the underlying volume."
                ),
                col(
                    "Access Modes",
                    "string",
                    0,
                    "AccessModes contains the desired access modes the volume should have."
                ),
                col(
                    "StorageClass",
                    "string",
                    0,
                    "StorageClassName is the name of the StorageClass required by the claim."
                ),
                col(
                    "VolumeAttributesClass",
                    "string",
                    0,
                    "VolumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim."
                ),
                col("Age", "string", 0, desc_age),
                col(
                    "VolumeMode",
                    "string",
                    1,
                    "volumeMode defines what type of volume is required by the claim."
                ),
            ]),
            move |o: &Value, now| vec![
                name(o),
                json!(s(&o["status"]["phase"])),
                json!(s(&o["spec"]["volumeName"])),
                json!(s(&o["status"]["capacity"]["storage"])),
                json!(access_modes(&o["status"]["accessModes"])),
                json!(s(&o["spec"]["storageClassName"])),
                json!(or_none(s(&o["spec"]["volumeAttributesClassName"]))),
                age_of(o, now),
                json!(s(&o["spec"]["volumeMode"])),
            ]
        ),
        ("apps", "deployments") => p!(
            wide(
                true,
                vec![
                    col("Ready", "string", 0, "Number of the pod with ready state"),
                    col(
                        "Up-to-date",
                        "string",
                        0,
                        "Total number of non-terminated pods targeted by this deployment that have the desired template spec."
                    ),
                    col(
                        "Available",
                        "string",
                        0,
                        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."
                    ),
                    col("Age", "string", 0, desc_age),
                ]
            ),
            move |o: &Value, now| {
                let st = &o["status"];
                let (names, images) = containers(&o["spec"]["template"]["spec"]);
                vec![
                    name(o),
                    json!(format!(
                        "{}/{}",
                        count(&st["readyReplicas"]),
                        count(&o["spec"]["replicas"])
                    )),
                    json!(count(&st["updatedReplicas"])),
                    json!(count(&st["availableReplicas"])),
                    age_of(o, now),
                    json!(names),
                    json!(images),
                    json!(selector(&o["spec"]["selector"])),
                ]
            }
        ),
        ("apps", "replicasets") => p!(
            wide(
                true,
                vec![
                    col(
                        "Desired",
                        "integer",
                        0,
                        "Replicas is the number of desired pods."
                    ),
                    col(
                        "Current",
                        "integer",
                        0,
                        "Replicas is the most recently observed number of replicas."
                    ),
                    col(
                        "Ready",
                        "integer",
                        0,
                        "The number of ready replicas for this replica set."
                    ),
                    col("Age", "string", 0, desc_age),
                ]
            ),
            move |o: &Value, now| {
                let (names, images) = containers(&o["spec"]["template"]["spec"]);
                vec![
                    name(o),
                    json!(count(&o["spec"]["replicas"])),
                    json!(count(&o["status"]["replicas"])),
                    json!(count(&o["status"]["readyReplicas"])),
                    age_of(o, now),
                    json!(names),
                    json!(images),
                    json!(selector(&o["spec"]["selector"])),
                ]
            }
        ),
        ("apps", "statefulsets") => p!(
            wide(
                false,
                vec![
                    col("Ready", "string", 0, "Number of the pod with ready state"),
                    col("Age", "string", 0, desc_age),
                ]
            ),
            move |o: &Value, now| {
                let (names, images) = containers(&o["spec"]["template"]["spec"]);
                vec![
                    name(o),
                    json!(format!(
                        "{}/{}",
                        count(&o["status"]["readyReplicas"]),
                        count(&o["spec"]["replicas"])
                    )),
                    age_of(o, now),
                    json!(names),
                    json!(images),
                ]
            }
        ),
        ("apps", "daemonsets") => p!(
            wide(
                true,
                vec![
                    col(
                        "Desired",
                        "integer",
                        0,
                        "The total number of nodes that should be running the daemon pod."
                    ),
                    col(
                        "Current",
                        "integer",
                        0,
                        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."
                    ),
                    col(
                        "Ready",
                        "integer",
                        0,
                        "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."
                    ),
                    col(
                        "Up-to-date",
                        "integer",
                        0,
                        "The total number of nodes that are running updated daemon pod"
                    ),
                    col(
                        "Available",
                        "integer",
                        0,
                        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"
                    ),
                    col(
                        "Node Selector",
                        "string",
                        0,
                        "NodeSelector is a selector which must be true for the pod to fit on a node."
                    ),
                    col("Age", "string", 0, desc_age),
                ]
            ),
            move |o: &Value, now| {
                let st = &o["status"];
                let (names, images) = containers(&o["spec"]["template"]["spec"]);
                let node_selector: Vec<String> = o["spec"]["template"]["spec"]["nodeSelector"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", s(v)))
                    .collect();
                vec![
                    name(o),
                    json!(count(&st["desiredNumberScheduled"])),
                    json!(count(&st["currentNumberScheduled"])),
                    json!(count(&st["numberReady"])),
                    json!(count(&st["updatedNumberScheduled"])),
                    json!(count(&st["numberAvailable"])),
                    json!(or_none(node_selector.join(","))),
                    age_of(o, now),
                    json!(names),
                    json!(images),
                    json!(selector(&o["spec"]["selector"])),
                ]
            }
        ),
        ("batch", "jobs") => p!(
            wide(
                true,
                vec![
                    col("Status", "string", 0, "Status of the job."),
                    col(
                        "Completions",
                        "string",
                        0,
                        "The completion status of the job"
                    ),
                    col(
                        "Duration",
                        "string",
                        0,
                        "Time required to complete the job."
                    ),
                    col("Age", "string", 0, desc_age),
                ]
            ),
            move |o: &Value, now| {
                let st = &o["status"];
                let conditions = st["conditions"].as_array().cloned().unwrap_or_default();
                let has = |t: &str| {
                    conditions
                        .iter()
                        .any(|c| c["type"] == t && c["status"] == "True")
                };
                let status = if has("Complete") {
                    "Complete"
                } else if has("Failed") {
                    "Failed"
                } else if o["spec"]["suspend"] == true {
                    "Suspended"
                } else {
                    "Running"
                };
                let duration = match (st["startTime"].as_str(), st["completionTime"].as_str()) {
                    (Some(start), Some(end)) => DateTime::parse_from_rfc3339(end)
                        .ok()
                        .map(|e| age(&json!(start), e.with_timezone(&Utc)))
                        .unwrap_or_default(),
                    (Some(start), None) => age(&json!(start), now),
                    _ => String::new(),
                };
                let (names, images) = containers(&o["spec"]["template"]["spec"]);
                vec![
                    name(o),
                    json!(status),
                    json!(format!(
                        "{}/{}",
                        count(&st["succeeded"]),
                        o["spec"]["completions"].as_i64().unwrap_or(1)
                    )),
                    json!(duration),
                    age_of(o, now),
                    json!(names),
                    json!(images),
                    json!(selector(&o["spec"]["selector"])),
                ]
            }
        ),
        ("batch", "cronjobs") => p!(
            wide(
                true,
                vec![
                    col(
                        "Schedule",
                        "string",
                        0,
                        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."
                    ),
                    col(
                        "Timezone",
                        "string",
                        0,
                        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."
                    ),
                    col(
                        "Suspend",
                        "boolean",
                        0,
                        "This flag tells the controller to suspend subsequent executions."
                    ),
                    col(
                        "Active",
                        "integer",
                        0,
                        "A list of pointers to currently running jobs."
                    ),
                    col(
                        "Last Schedule",
                        "string",
                        0,
                        "Information when was the last time the job was successfully scheduled."
                    ),
                    col("Age", "string", 0, desc_age),
                ]
            ),
            move |o: &Value, now| {
                let template = &o["spec"]["jobTemplate"]["spec"];
                let (names, images) = containers(&template["template"]["spec"]);
                let last = match &o["status"]["lastScheduleTime"] {
                    Value::Null => "<none>".to_string(),
                    t => age(t, now),
                };
                vec![
                    name(o),
                    json!(s(&o["spec"]["schedule"])),
                    json!(or_none(s(&o["spec"]["timeZone"]))),
                    json!(o["spec"]["suspend"] == true),
                    json!(len(&o["status"]["active"])),
                    json!(last),
                    age_of(o, now),
                    json!(names),
                    json!(images),
                    json!(selector(&template["selector"])),
                ]
            }
        ),
        ("networking.k8s.io", "ingresses") => p!(
            base(vec![
                col(
                    "Class",
                    "string",
                    0,
                    "ingressClassName is the name of an IngressClass cluster resource."
                ),
                col(
                    "Hosts",
                    "string",
                    0,
                    "Hosts that incoming requests are matched against before the ingress rule"
                ),
                col(
                    "Address",
                    "string",
                    0,
                    "Address is a list containing ingress points for the load-balancer"
                ),
                col(
                    "Ports",
                    "string",
                    0,
                    "Ports of TLS configurations that open"
                ),
                col("Age", "string", 0, desc_age),
            ]),
            move |o: &Value, now| {
                let hosts: Vec<String> = o["spec"]["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| s(&r["host"]))
                    .collect();
                let hosts = if hosts.is_empty() {
                    "*".to_string()
                } else {
                    hosts.join(",")
                };
                let ports = if o["spec"]["tls"].as_array().is_some_and(|t| !t.is_empty()) {
                    "80, 443"
                } else {
                    "80"
                };
                vec![
                    name(o),
                    json!(or_none(s(&o["spec"]["ingressClassName"]))),
                    json!(hosts),
                    json!(""),
                    json!(ports),
                    age_of(o, now),
                ]
            }
        ),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => p!(
            base(vec![
                col(
                    "Role",
                    "string",
                    0,
                    "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."
                ),
                col("Age", "string", 0, desc_age),
                col("Users", "string", 1, "Users in the binding"),
                col("Groups", "string", 1, "Groups in the binding"),
                col(
                    "ServiceAccounts",
                    "string",
                    1,
                    "ServiceAccounts in the binding"
                ),
            ]),
            move |o: &Value, now| {
                let subjects = o["subjects"].as_array().cloned().unwrap_or_default();
                let of = |kind: &str| {
                    subjects
                        .iter()
                        .filter(|x| x["kind"] == kind)
                        .map(|x| match x["namespace"].as_str() {
                            Some(ns) if kind == "ServiceAccount" => {
                                format!("{ns}/{}", s(&x["name"]))
                            }
                            _ => s(&x["name"]),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                vec![
                    name(o),
                    json!(format!(
                        "{}/{}",
                        s(&o["roleRef"]["kind"]),
                        s(&o["roleRef"]["name"])
                    )),
                    age_of(o, now),
                    json!(of("User")),
                    json!(of("Group")),
                    json!(of("ServiceAccount")),
                ]
            }
        ),
        ("autoscaling", "horizontalpodautoscalers") => p!(
            base(vec![
                col(
                    "Reference",
                    "string",
                    0,
                    "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."
                ),
                col(
                    "Targets",
                    "string",
                    0,
                    "the metrics the autoscaler scales on, current against target"
                ),
                col(
                    "MinPods",
                    "string",
                    0,
                    "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."
                ),
                col(
                    "MaxPods",
                    "integer",
                    0,
                    "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up."
                ),
                col(
                    "Replicas",
                    "integer",
                    0,
                    "currentReplicas is current number of replicas of pods managed by this autoscaler."
                ),
                col("Age", "string", 0, desc_age),
            ]),
            move |o: &Value, now| {
                let target = &o["spec"]["scaleTargetRef"];
                let targets: Vec<String> = o["spec"]["metrics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        let t = &m["resource"]["target"];
                        let goal = match (t["averageUtilization"].as_i64(), &t["averageValue"]) {
                            (Some(u), _) => format!("{u}%"),
                            (None, v) => s(v),
                        };
                        format!("{}: <unknown>/{goal}", s(&m["resource"]["name"]))
                    })
                    .collect();
                vec![
                    name(o),
                    json!(format!("{}/{}", s(&target["kind"]), s(&target["name"]))),
                    json!(or_none(targets.join(", "))),
                    json!(o["spec"]["minReplicas"].as_i64().unwrap_or(1).to_string()),
                    json!(count(&o["spec"]["maxReplicas"])),
                    json!(count(&o["status"]["currentReplicas"])),
                    age_of(o, now),
                ]
            }
        ),
        ("policy", "poddisruptionbudgets") => p!(
            base(vec![
                col(
                    "Min Available",
                    "string",
                    0,
                    "The minimum number of pods that must be available simultaneously."
                ),
                col(
                    "Max Unavailable",
                    "string",
                    0,
                    "The maximum number of pods that may be unavailable simultaneously."
                ),
                col(
                    "Allowed Disruptions",
                    "integer",
                    0,
                    "Calculated number of pods that may be disrupted at this time."
                ),
                col("Age", "string", 0, desc_age),
            ]),
            move |o: &Value, now| vec![
                name(o),
                json!(if o["spec"]["minAvailable"].is_null() {
                    "N/A".to_string()
                } else {
                    s(&o["spec"]["minAvailable"])
                }),
                json!(if o["spec"]["maxUnavailable"].is_null() {
                    "N/A".to_string()
                } else {
                    s(&o["spec"]["maxUnavailable"])
                }),
                json!(count(&o["status"]["disruptionsAllowed"])),
                age_of(o, now),
            ]
        ),
        ("storage.k8s.io", "storageclasses") => p!(
            base(vec![
                col(
                    "Provisioner",
                    "string",
                    0,
                    "provisioner indicates the type of the provisioner."
                ),
                col(
                    "ReclaimPolicy",
                    "string",
                    0,
                    "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class."
                ),
                col(
                    "VolumeBindingMode",
                    "string",
                    0,
                    "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound."
                ),
                col(
                    "AllowVolumeExpansion",
                    "string",
                    0,
                    "allowVolumeExpansion shows whether the storage class allow volume expand."
                ),
                col("Age", "string", 0, desc_age),
            ]),
            move |o: &Value, now| {
                let mut n = s(&o["metadata"]["name"]);
                if o["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
                    == "true"
                {
                    n.push_str(" (default)");
                }
                vec![
                    json!(n),
                    json!(s(&o["provisioner"])),
                    json!(o["reclaimPolicy"].as_str().unwrap_or("Delete")),
                    json!(o["volumeBindingMode"].as_str().unwrap_or("Immediate")),
                    json!(o["allowVolumeExpansion"] == true),
                    age_of(o, now),
                ]
            }
        ),
        _ if crd.is_some() => {
            let version = crd
                .and_then(|c| c["spec"]["versions"].as_array())
                .and_then(|vs| vs.iter().find(|v| v["name"] == rt.version.as_str()))
                .cloned()
                .unwrap_or(Value::Null);
            let extra: Vec<Value> = version["additionalPrinterColumns"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut columns = base(Vec::new());
            for c in &extra {
                columns.push(col(
                    c["name"].as_str().unwrap_or_default(),
                    c["type"].as_str().unwrap_or("string"),
                    c["priority"].as_u64().unwrap_or(0) as u8,
                    c["description"].as_str().unwrap_or_default(),
                ));
            }
            let has_age = extra
                .iter()
                .any(|c| c["jsonPath"] == ".metadata.creationTimestamp");
            if !has_age {
                columns.push(col("Age", "date", 0, desc_age));
            }
            p!(columns, move |o: &Value, now| {
                let mut cells = vec![name(o)];
                for c in &extra {
                    let v = json_path(o, c["jsonPath"].as_str().unwrap_or_default());
                    cells.push(if c["type"] == "date" {
                        json!(age(v, now))
                    } else {
                        v.clone()
                    });
                }
                if !has_age {
                    cells.push(age_of(o, now));
                }
                cells
            })
        }
        _ => p!(
            base(vec![col("Created At", "date", 0, desc_age)]),
            move |o: &Value, _| vec![name(o), o["metadata"]["creationTimestamp"].clone()]
        ),
    }
}

fn access_modes(modes: &Value) -> String {
    let short: Vec<&str> = modes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    short.join(",")
}

/// A Table of `objects`; each row carries the object's metadata (or the
/// whole object with `includeObject=Object`, none with `None`).
pub fn render(
    rt: &ResourceType,
    crd: Option<&Value>,
    objects: &[Value],
    list_meta: Value,
    include_object: &str,
) -> Value {
    let printer = printer(rt, crd);
    let now = Utc::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                            "metadata": o["metadata"].clone()}),
            };
            json!({"cells": (printer.cells)(o, now), "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": printer.columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectls() {
        let now = Utc::now();
        let ago = |secs: i64| json!((now - chrono::Duration::seconds(secs)).to_rfc3339());
        assert_eq!(age(&ago(5), now), "5s");
        assert_eq!(age(&ago(185), now), "3m5s");
        assert_eq!(age(&ago(3600 * 5 + 60 * 7), now), "5h7m");
        assert_eq!(age(&ago(86_400 * 3), now), "3d");
        assert_eq!(age(&ago(86_400 * 400), now), "400d");
    }
}
