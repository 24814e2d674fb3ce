//! CPU and memory from `metrics.k8s.io/v1beta1` (metrics-server's
//! NodeMetrics and PodMetrics), read every [`INTERVAL`] and kept in memory
//! for [`KEPT`] readings (1 hour): per pod (its containers summed, and each
//! container's latest), per node, per namespace and for the cluster.
//!
//! Bounded: a pod or node that is gone from the latest reading is dropped
//! with its history; a reading is 12 bytes, so 10,000 pods cost about
//! 15 MB (`benches/usage_memory.rs` measures it). Without the metrics API
//! the state says so, and how to get it; nothing else changes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

/// How often usage is read.
pub const INTERVAL: Duration = Duration::from_secs(30);
/// How many readings are kept: one hour at [`INTERVAL`].
pub const KEPT: usize = 120;

/// One reading: when (Unix seconds), millicores and KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub at: u32,
    pub cpu_m: u32,
    pub mem_kib: u32,
}

impl Sample {
    /// As the API shows it: `[unixSeconds, millicores, bytes]`.
    pub fn reading(self) -> Reading {
        Reading(self.at, self.cpu_m, u64::from(self.mem_kib) * 1024)
    }
}

/// A bounded series of readings.
#[derive(Clone, Debug, Default)]
pub struct Series(VecDeque<Sample>);

impl Series {
    pub fn push(&mut self, sample: Sample) {
        if self.0.len() == KEPT {
            self.0.pop_front();
        }
        self.0.push_back(sample);
    }

    pub fn latest(&self) -> Option<Sample> {
        self.0.back().copied()
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.0.iter().copied().collect()
    }
}

/// One container's latest usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub cpu_m: u32,
    pub mem_kib: u32,
}

#[derive(Clone, Debug, Default)]
pub struct PodUsage {
    pub history: Series,
    pub containers: Vec<ContainerUsage>,
}

/// The share of its memory limit at which a container is an OOM risk.
pub const OOM_RISK: f64 = 0.9;

pub use frontend::model::{
    Amounts, ContainerUsageView, MetricsAvailability as Availability, NearLimit, Reading,
};

#[derive(Debug)]
struct State {
    availability: Availability,
    pods: HashMap<(String, String), PodUsage>,
    nodes: HashMap<String, Series>,
    namespaces: BTreeMap<String, Series>,
    cluster: Series,
}

/// What was read, shared by every request.
#[derive(Clone, Debug)]
pub struct Usage(Arc<RwLock<State>>);

impl Default for Usage {
    fn default() -> Self {
        Self(Arc::new(RwLock::new(State {
            availability: Availability::Waiting,
            pods: HashMap::new(),
            nodes: HashMap::new(),
            namespaces: BTreeMap::new(),
            cluster: Series::default(),
        })))
    }
}

/// A quantity (`250m`, `1500000n`, `128Mi`, `1Gi`) in units (cores or bytes).
pub fn quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0f64.powi(3),
        "Ti" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some(n * factor)
}

fn millicores(v: &Value) -> u32 {
    v.as_str().and_then(quantity).map_or(0, |c| {
        (c * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
    })
}

fn kib(v: &Value) -> u32 {
    v.as_str().and_then(quantity).map_or(0, |b| {
        (b / 1024.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
    })
}

/// What to tell a user whose cluster does not serve the metrics API.
pub const HOW_TO_GET_IT: &str = "The cluster serves no metrics.k8s.io API, so CPU and memory \
    are not shown. Install metrics-server (kubectl apply -f \
    https://github.com/kubernetes-sigs/metrics-server/releases/latest/download/components.yaml) \
    and usage appears here within a minute.";

impl Usage {
    pub fn availability(&self) -> Availability {
        self.read(|s| s.availability.clone())
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let guard = self.0.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodUsage> {
        self.read(|s| {
            s.pods
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        })
    }

    pub fn node(&self, name: &str) -> Option<Series> {
        self.read(|s| s.nodes.get(name).cloned())
    }

    pub fn namespace(&self, name: &str) -> Option<Series> {
        self.read(|s| s.namespaces.get(name).cloned())
    }

    pub fn cluster(&self) -> Series {
        self.read(|s| s.cluster.clone())
    }

    pub fn unavailable(&self, reason: String) {
        let mut s = self.0.write().unwrap_or_else(|e| e.into_inner());
        s.availability = Availability::Unavailable { reason };
    }

    /// Takes one reading: metrics-server's NodeMetricsList and
    /// PodMetricsList at `at` (Unix seconds). Pods and nodes not in it are dropped.
    pub fn record(&self, at: u32, nodes: &Value, pods: &Value) {
        let mut s = self.0.write().unwrap_or_else(|e| e.into_inner());
        s.availability = Availability::Served;
        let mut seen_nodes = std::collections::HashSet::new();
        for n in nodes["items"].as_array().into_iter().flatten() {
            let Some(name) = n["metadata"]["name"].as_str() else {
                continue;
            };
            seen_nodes.insert(name.to_string());
            s.nodes.entry(name.to_string()).or_default().push(Sample {
                at,
                cpu_m: millicores(&n["usage"]["cpu"]),
                mem_kib: kib(&n["usage"]["memory"]),
            });
        }
        s.nodes.retain(|name, _| seen_nodes.contains(name));
        let mut seen_pods = std::collections::HashSet::new();
        let mut by_namespace: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for p in pods["items"].as_array().into_iter().flatten() {
            let (Some(ns), Some(name)) = (
                p["metadata"]["namespace"].as_str(),
                p["metadata"]["name"].as_str(),
            ) else {
                continue;
            };
            let containers: Vec<ContainerUsage> = p["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| ContainerUsage {
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    cpu_m: millicores(&c["usage"]["cpu"]),
                    mem_kib: kib(&c["usage"]["memory"]),
                })
                .collect();
            let cpu: u64 = containers.iter().map(|c| u64::from(c.cpu_m)).sum();
            let mem: u64 = containers.iter().map(|c| u64::from(c.mem_kib)).sum();
            let total = by_namespace.entry(ns.to_string()).or_default();
            total.0 += cpu;
            total.1 += mem;
            let key = (ns.to_string(), name.to_string());
            seen_pods.insert(key.clone());
            let entry = s.pods.entry(key).or_default();
            entry.history.push(Sample {
                at,
                cpu_m: cpu.min(u64::from(u32::MAX)) as u32,
                mem_kib: mem.min(u64::from(u32::MAX)) as u32,
            });
            entry.containers = containers;
        }
        s.pods.retain(|key, _| seen_pods.contains(key));
        let clamp = |v: u64| v.min(u64::from(u32::MAX)) as u32;
        for (ns, (cpu, mem)) in &by_namespace {
            s.namespaces.entry(ns.clone()).or_default().push(Sample {
                at,
                cpu_m: clamp(*cpu),
                mem_kib: clamp(*mem),
            });
        }
        s.namespaces.retain(|ns, _| by_namespace.contains_key(ns));
        let (cpu, mem) = s
            .nodes
            .values()
            .filter_map(Series::latest)
            .filter(|l| l.at == at)
            .fold((0u64, 0u64), |(c, m), l| {
                (c + u64::from(l.cpu_m), m + u64::from(l.mem_kib))
            });
        s.cluster.push(Sample {
            at,
            cpu_m: clamp(cpu),
            mem_kib: clamp(mem),
        });
    }

    /// The containers whose latest memory is at [`OOM_RISK`] of their limit
    /// or more, among `pods` (namespace, name, and each container's memory
    /// limit in bytes, where it has one), nearest to the limit first, at most
    /// `limit` of them. One read of the state for all.
    pub fn near_memory_limit<'a>(
        &self,
        pods: impl IntoIterator<Item = (&'a str, &'a str, Vec<(&'a str, f64)>)>,
        limit: usize,
    ) -> Vec<NearLimit> {
        let mut near = self.read(|s| {
            let mut near = Vec::new();
            for (namespace, pod, limits) in pods {
                if limits.is_empty() {
                    continue;
                }
                let Some(found) = s.pods.get(&(namespace.to_string(), pod.to_string())) else {
                    continue;
                };
                for (container, limit_bytes) in limits {
                    let Some(used) = found.containers.iter().find(|c| c.name == container) else {
                        continue;
                    };
                    let bytes = u64::from(used.mem_kib) * 1024;
                    let share = bytes as f64 / limit_bytes;
                    if limit_bytes > 0.0 && share >= OOM_RISK {
                        near.push(NearLimit {
                            namespace: namespace.to_string(),
                            pod: pod.to_string(),
                            container: container.to_string(),
                            memory_bytes: bytes,
                            limit_bytes: limit_bytes as u64,
                            memory_of_limit: share,
                        });
                    }
                }
            }
            near
        });
        near.sort_by(|a, b| b.memory_of_limit.total_cmp(&a.memory_of_limit));
        near.truncate(limit);
        near
    }

    /// Reads usage every [`INTERVAL`] for as long as the process runs.
    pub fn spawn_poller(&self, client: kube::Client) {
        let usage = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                usage.poll(&client).await;
            }
        });
    }

    /// Takes one reading now (the poller calls it every [`INTERVAL`]).
    pub async fn poll(&self, client: &kube::Client) {
        let get = |path: &'static str| async move {
            let request = axum::http::Request::get(path)
                .body(Vec::new())
                .map_err(|e| e.to_string())?;
            client
                .request::<Value>(request)
                .await
                .map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 404 => HOW_TO_GET_IT.to_string(),
                    kube::Error::Api(s) if s.code == 403 => format!(
                        "Lifeboat may not read metrics.k8s.io ({}); grant it get and list on nodes and pods in that group",
                        s.message
                    ),
                    other => format!("metrics.k8s.io did not answer: {other}"),
                })
        };
        let read = async {
            let nodes = get("/apis/metrics.k8s.io/v1beta1/nodes").await?;
            let pods = get("/apis/metrics.k8s.io/v1beta1/pods").await?;
            Ok::<_, String>((nodes, pods))
        };
        match read.await {
            Ok((nodes, pods)) => {
                let at = chrono::Utc::now().timestamp().clamp(0, i64::from(u32::MAX)) as u32;
                self.record(at, &nodes, &pods);
                drop((nodes, pods));
                super::release_freed_memory();
            }
            Err(e) => {
                tracing::debug!(reason = %e, "no usage this time");
                self.unavailable(e);
            }
        }
    }
}

/// A container's usage against its spec's requests and limits, as the API
/// shows it; `oomRisk` when its memory is at [`OOM_RISK`] of its limit or more.
pub fn container_view(spec: &Value, usage: Option<&ContainerUsage>) -> ContainerUsageView {
    let request =
        |kind: &str, name: &str| spec["resources"][kind][name].as_str().and_then(quantity);
    let memory_limit = request("limits", "memory");
    let (cpu_m, bytes) = usage.map_or((None, None), |u| {
        (Some(u.cpu_m), Some(u64::from(u.mem_kib) * 1024))
    });
    let share = match (bytes, memory_limit) {
        (Some(b), Some(l)) if l > 0.0 => Some(b as f64 / l),
        _ => None,
    };
    let cores = |c: f64| (c * 1000.0).round() as u64;
    ContainerUsageView {
        name: spec["name"].as_str().unwrap_or_default().to_string(),
        cpu_millicores: cpu_m,
        memory_bytes: bytes,
        requests: Amounts {
            cpu_millicores: request("requests", "cpu").map(cores),
            memory_bytes: request("requests", "memory").map(|b| b as u64),
        },
        limits: Amounts {
            cpu_millicores: request("limits", "cpu").map(cores),
            memory_bytes: memory_limit.map(|b| b as u64),
        },
        memory_of_limit: share,
        oom_risk: share.is_some_and(|s| s >= OOM_RISK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reading(pod_mem: &str) -> (Value, Value) {
        (
            json!({"items": [{"metadata": {"name": "n1"}, "usage": {"cpu": "250000000n", "memory": "1Gi"}}]}),
            json!({"items": [{"metadata": {"name": "p", "namespace": "shop"},
                              "containers": [{"name": "c", "usage": {"cpu": "12m", "memory": pod_mem}}]}]}),
        )
    }

    #[test]
    fn readings_are_kept_per_pod_node_namespace_and_cluster_and_bounded() {
        let usage = Usage::default();
        for i in 0..(KEPT as u32 + 5) {
            let (nodes, pods) = reading("64Mi");
            usage.record(1000 + i, &nodes, &pods);
        }
        let pod = usage.pod("shop", "p").unwrap();
        assert_eq!(pod.history.samples().len(), KEPT);
        assert_eq!(
            pod.history.latest(),
            Some(Sample {
                at: 1000 + KEPT as u32 + 4,
                cpu_m: 12,
                mem_kib: 65536
            })
        );
        assert_eq!(usage.node("n1").unwrap().latest().unwrap().cpu_m, 250);
        assert_eq!(usage.namespace("shop").unwrap().samples().len(), KEPT);
        assert_eq!(usage.cluster().latest().unwrap().mem_kib, 1024 * 1024);
        // A pod gone from the reading is gone from memory.
        usage.record(5000, &json!({"items": []}), &json!({"items": []}));
        assert!(usage.pod("shop", "p").is_none());
        assert!(usage.node("n1").is_none());
        assert_eq!(usage.availability(), Availability::Served);
    }

    #[test]
    fn a_container_near_its_memory_limit_is_an_oom_risk() {
        let spec = json!({"name": "c", "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}});
        let near = ContainerUsage {
            name: "c".into(),
            cpu_m: 30,
            mem_kib: 240 * 1024,
        };
        let v = container_view(&spec, Some(&near));
        assert!(v.oom_risk);
        assert_eq!(v.requests.cpu_millicores, Some(50));
        assert_eq!(v.limits.memory_bytes, Some(256 * 1024 * 1024));
        let calm = ContainerUsage {
            mem_kib: 100 * 1024,
            ..near
        };
        assert!(!container_view(&spec, Some(&calm)).oom_risk);
        // Without a limit there is no share to judge.
        let v = container_view(&json!({"name": "c"}), Some(&calm));
        assert!(!v.oom_risk);
        assert!(v.memory_of_limit.is_none());
    }

    #[test]
    fn containers_near_their_limit_are_listed_nearest_first() {
        let usage = Usage::default();
        let pods = json!({"items": [
            {"metadata": {"name": "a", "namespace": "shop"},
             "containers": [{"name": "app", "usage": {"cpu": "1m", "memory": "250Mi"}},
                            {"name": "sidecar", "usage": {"cpu": "1m", "memory": "10Mi"}}]},
            {"metadata": {"name": "b", "namespace": "shop"},
             "containers": [{"name": "app", "usage": {"cpu": "1m", "memory": "235Mi"}}]},
            {"metadata": {"name": "c", "namespace": "shop"},
             "containers": [{"name": "app", "usage": {"cpu": "1m", "memory": "100Mi"}}]}]});
        usage.record(1, &json!({"items": []}), &pods);
        let mib = 1024.0 * 1024.0;
        let asked = [
            ("shop", "b", vec![("app", 256.0 * mib)]),
            (
                "shop",
                "a",
                vec![("app", 256.0 * mib), ("sidecar", 11.0 * mib)],
            ),
            ("shop", "c", vec![("app", 256.0 * mib)]),
            // No limit, no judgement; a pod without a reading is skipped.
            ("shop", "d", vec![("app", 1.0)]),
        ];
        let near = usage.near_memory_limit(asked.clone(), 10);
        let names: Vec<_> = near
            .iter()
            .map(|n| (n.pod.as_str(), n.container.as_str()))
            .collect();
        assert_eq!(names, [("a", "app"), ("b", "app"), ("a", "sidecar")]);
        assert_eq!(near[0].limit_bytes, 256 * 1024 * 1024);
        assert_eq!(near[0].memory_bytes, 250 * 1024 * 1024);
        assert_eq!(usage.near_memory_limit(asked, 1).len(), 1);
    }
}
