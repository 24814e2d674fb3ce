//! One node: its verdict and pressure, CPU and memory (allocatable,
//! requested, used, the last hour), taints, versions, cordon, and its pods
//! with their usage.

use super::*;
use crate::model::NodeDetail;

pub(super) fn node(page: RwSignal<PageData>) -> impl IntoView {
    let node = data(page, "node");
    let name = param(page);
    view! {
        <h1>"Node " <code>{name}</code></h1>
        {move || {
            let n = match read::<NodeDetail>(&node()) {
                Ok(n) => n,
                Err(e) => return e,
            };
            let state = n.health.state.as_str();
            let cpu = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |c| charts::cores(c as f64));
            let memory = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |b| charts::mem(b as f64));
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
            view! {
                <section class=format!("banner {state}") aria-labelledby="node-state-h">
                    <h2 id="node-state-h">"Health: " {badge(state)}
                        {n.unschedulable.then(|| view! { " " <span class="badge warn">"cordoned"</span> })}</h2>
                    {reasons(&n.health)}
                    <p>{if n.pressure.is_empty() { "No pressure.".to_string() } else { format!("Under pressure: {}", n.pressure.join(", ")) }}</p>
                </section>
                <section aria-labelledby="node-usage-h">
                    <h2 id="node-usage-h">"CPU and memory"</h2>
                    {charts::usage(&n.usage)}
                    <table>
                        <thead><tr><th scope="col">""</th><th scope="col">"Allocatable"</th><th scope="col">"Requested"</th><th scope="col">"Used"</th></tr></thead>
                        <tbody>
                            <tr><th scope="row">"CPU"</th><td>{cpu(n.allocatable.cpu_millicores)}</td><td>{cpu(n.requested.cpu_millicores)}</td><td>{cpu(n.usage.cpu_millicores.map(u64::from))}</td></tr>
                            <tr><th scope="row">"Memory"</th><td>{memory(n.allocatable.memory_bytes)}</td><td>{memory(n.requested.memory_bytes)}</td><td>{memory(n.usage.memory_bytes)}</td></tr>
                            <tr><th scope="row">"Pods"</th><td>{dash(&n.allocatable.pods)}</td><td>{n.pods.len()}</td><td>"—"</td></tr>
                        </tbody>
                    </table>
                </section>
                <section aria-labelledby="node-info-h">
                    <h2 id="node-info-h">"System"</h2>
                    <dl class="facts">
                        <dt>"Kubelet"</dt><dd>{dash(&n.node_info.kubelet_version)}</dd>
                        <dt>"Container runtime"</dt><dd>{dash(&n.node_info.container_runtime_version)}</dd>
                        <dt>"OS image"</dt><dd>{dash(&n.node_info.os_image)}</dd>
                        <dt>"Kernel"</dt><dd>{dash(&n.node_info.kernel_version)}</dd>
                        <dt>"Taints"</dt><dd>{if n.taints.is_empty() { "none".to_string() } else {
                            n.taints.iter().map(|t| format!("{}={}:{}", t.key, t.value.as_deref().unwrap_or_default(), t.effect)).collect::<Vec<_>>().join(", ")
                        }}</dd>
                    </dl>
                </section>
                <section aria-labelledby="node-cond-h">
                    <h2 id="node-cond-h">"Conditions"</h2>
                    <table>
                        <thead><tr><th scope="col">"Type"</th><th scope="col">"Status"</th><th scope="col">"Reason"</th><th scope="col">"Message"</th></tr></thead>
                        <tbody>{n.conditions.iter().map(|c| view! {
                            <tr><th scope="row">{c.kind.clone()}</th><td>{c.status.clone()}</td><td>{dash(&c.reason)}</td><td>{dash(&c.message)}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                </section>
                <section aria-labelledby="node-pods-h">
                    <h2 id="node-pods-h">"Pods on this node"</h2>
                    <table>
                        <thead><tr><th scope="col">"Namespace"</th><th scope="col">"Pod"</th><th scope="col">"Phase"</th><th scope="col">"CPU"</th><th scope="col">"Memory"</th><th scope="col">"Why"</th></tr></thead>
                        <tbody>{n.pods.iter().map(|p| {
                            let s = &p.summary;
                            let (ns, pod) = (s.namespace.clone(), s.name.clone());
                            view! {
                                <tr>
                                    <td><a href=format!("/namespaces/{ns}")>{ns.clone()}</a></td>
                                    <th scope="row"><a href=format!("/namespaces/{ns}/pods/{pod}")>{pod.clone()}</a></th>
                                    <td>{badge(&s.phase)}</td>
                                    <td>{cpu(p.cpu_millicores.map(u64::from))}</td>
                                    <td>{memory(p.memory_bytes)}</td>
                                    <td>{reasons(&s.health)}</td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table>
                </section>
            }
            .into_any()
        }}
    }
}
