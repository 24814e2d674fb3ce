//! One node: its verdict and pressure, CPU and memory (allocatable,
//! requested, used, the last hour), taints, versions, cordon, and its pods
//! with their usage.

use super::*;

pub(super) fn node(page: RwSignal<PageData>) -> impl IntoView {
    let node = data(page, "node");
    let name = param(page);
    view! {
        <h1>"Node " <code>{name}</code></h1>
        {move || {
            let n = node();
            if let Some(e) = api_error(&n) {
                return e.into_any();
            }
            let state = n["health"]["state"].as_str().unwrap_or_default().to_string();
            let pressure: Vec<String> = items(&n["pressure"]).iter().map(text).collect();
            let cpu = |v: &Value| v.as_f64().map_or_else(|| "—".to_string(), charts::cores);
            let memory = |v: &Value| v.as_f64().map_or_else(|| "—".to_string(), charts::mem);
            let taints = items(&n["taints"]);
            view! {
                <section class=format!("banner {state}") aria-labelledby="node-state-h">
                    <h2 id="node-state-h">"Health: " {badge(&state)}
                        {(n["unschedulable"] == true).then(|| view! { " " <span class="badge warn">"cordoned"</span> })}</h2>
                    {reasons(&n["health"])}
                    <p>{if pressure.is_empty() { "No pressure.".to_string() } else { format!("Under pressure: {}", pressure.join(", ")) }}</p>
                </section>
                <section aria-labelledby="node-usage-h">
                    <h2 id="node-usage-h">"CPU and memory"</h2>
                    {charts::usage(&n["usage"])}
                    <table>
                        <thead><tr><th scope="col">""</th><th scope="col">"Allocatable"</th><th scope="col">"Requested"</th><th scope="col">"Used"</th></tr></thead>
                        <tbody>
                            <tr><th scope="row">"CPU"</th><td>{cpu(&n["allocatable"]["cpuMillicores"])}</td><td>{cpu(&n["requested"]["cpuMillicores"])}</td><td>{cpu(&n["usage"]["cpuMillicores"])}</td></tr>
                            <tr><th scope="row">"Memory"</th><td>{memory(&n["allocatable"]["memoryBytes"])}</td><td>{memory(&n["requested"]["memoryBytes"])}</td><td>{memory(&n["usage"]["memoryBytes"])}</td></tr>
                            <tr><th scope="row">"Pods"</th><td>{text(&n["allocatable"]["pods"])}</td><td>{items(&n["pods"]).len()}</td><td>"—"</td></tr>
                        </tbody>
                    </table>
                </section>
                <section aria-labelledby="node-info-h">
                    <h2 id="node-info-h">"System"</h2>
                    <dl class="facts">
                        <dt>"Kubelet"</dt><dd>{text(&n["nodeInfo"]["kubeletVersion"])}</dd>
                        <dt>"Container runtime"</dt><dd>{text(&n["nodeInfo"]["containerRuntimeVersion"])}</dd>
                        <dt>"OS image"</dt><dd>{text(&n["nodeInfo"]["osImage"])}</dd>
                        <dt>"Kernel"</dt><dd>{text(&n["nodeInfo"]["kernelVersion"])}</dd>
                        <dt>"Taints"</dt><dd>{if taints.is_empty() { "none".to_string() } else {
                            taints.iter().map(|t| format!("{}={}:{}", text(&t["key"]), t["value"].as_str().unwrap_or_default(), text(&t["effect"]))).collect::<Vec<_>>().join(", ")
                        }}</dd>
                    </dl>
                </section>
                <section aria-labelledby="node-cond-h">
                    <h2 id="node-cond-h">"Conditions"</h2>
                    <table>
                        <thead><tr><th scope="col">"Type"</th><th scope="col">"Status"</th><th scope="col">"Reason"</th><th scope="col">"Message"</th></tr></thead>
                        <tbody>{items(&n["conditions"]).into_iter().map(|c| view! {
                            <tr><th scope="row">{text(&c["type"])}</th><td>{text(&c["status"])}</td><td>{text(&c["reason"])}</td><td>{text(&c["message"])}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                </section>
                <section aria-labelledby="node-pods-h">
                    <h2 id="node-pods-h">"Pods on this node"</h2>
                    <table>
                        <thead><tr><th scope="col">"Namespace"</th><th scope="col">"Pod"</th><th scope="col">"Phase"</th><th scope="col">"CPU"</th><th scope="col">"Memory"</th><th scope="col">"Why"</th></tr></thead>
                        <tbody>{items(&n["pods"]).into_iter().map(|p| {
                            let s = &p["summary"];
                            let (ns, pod) = (text(&s["namespace"]), text(&s["name"]));
                            view! {
                                <tr>
                                    <td><a href=format!("/namespaces/{ns}")>{ns.clone()}</a></td>
                                    <th scope="row"><a href=format!("/namespaces/{ns}/pods/{pod}")>{pod.clone()}</a></th>
                                    <td>{badge(s["phase"].as_str().unwrap_or_default())}</td>
                                    <td>{cpu(&p["cpuMillicores"])}</td>
                                    <td>{memory(&p["memoryBytes"])}</td>
                                    <td>{reasons(&s["health"])}</td>
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
