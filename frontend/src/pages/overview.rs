//! The overview: cluster health, nodes, failing pods, warnings, namespaces.

use super::*;

pub(super) fn overview(page: RwSignal<PageData>) -> impl IntoView {
    let summary = data(page, "summary");
    let namespaces = data(page, "namespaces");
    view! {
        <h1>"Cluster overview"</h1>
        {move || api_error(&summary())}
        {move || {
            let s = summary();
            (s["error"].is_null() && !s.is_null()).then(|| {
                let state = s["health"]["state"].as_str().unwrap_or("unknown").to_string();
                let phases = s["pods"]["byPhase"].as_object().cloned().unwrap_or_default();
                let not_permitted: Vec<String> = s["watches"]
                    .as_object()
                    .map(|w| w.iter().filter(|(_, v)| v["state"] == "not_permitted").map(|(k, _)| k.clone()).collect())
                    .unwrap_or_default();
                view! {
                    <section class=format!("banner {state}") aria-labelledby="health-h">
                        <h2 id="health-h">"Cluster health: " {badge(&state)}</h2>
                        {verdict(&s["verdict"])}
                    </section>
                    {(!not_permitted.is_empty()).then(|| view! {
                        <p class="note">"Not permitted to watch: " {not_permitted.join(", ")} ". Grant Lifeboat's ServiceAccount list/watch on them to see them here."</p>
                    })}
                    <div class="cards">
                        <section class="card" aria-labelledby="nodes-h">
                            <h2 id="nodes-h">"Nodes"</h2>
                            <p class="big">{format!("{} / {}", text(&s["nodes"]["ready"]), text(&s["nodes"]["total"]))} <small>" ready"</small></p>
                            <ul class="plain">
                                {items(&s["nodes"]["items"]).into_iter().map(|n| view! {
                                    <li><a href=format!("/nodes/{}", text(&n["name"]))>{text(&n["name"])}</a> " " {badge(n["health"]["state"].as_str().unwrap_or_default())} {reasons(&n["health"])}</li>
                                }).collect_view()}
                            </ul>
                        </section>
                        {(!s["usage"].is_null()).then(|| view! {
                            <section class="card" aria-labelledby="usage-h">
                                <h2 id="usage-h">"CPU and memory"</h2>
                                {charts::usage(&s["usage"])}
                            </section>
                        })}
                        <section class="card" aria-labelledby="pods-h">
                            <h2 id="pods-h">"Pods"</h2>
                            <ul class="plain">
                                {phases.into_iter().map(|(phase, n)| view! { <li>{badge(&phase)} " " {n.to_string()}</li> }).collect_view()}
                            </ul>
                        </section>
                    </div>
                    <section aria-labelledby="failing-h">
                        <h2 id="failing-h">"Pods that need attention"</h2>
                        {pod_table(items(&s["pods"]["unhealthy"]), true)}
                    </section>
                    {(!items(&s["pods"]["nearMemoryLimit"]).is_empty()).then(|| view! {
                        <section aria-labelledby="oom-h">
                            <h2 id="oom-h">"Containers near their memory limit"</h2>
                            <p class="note">"At 90% of their memory limit or more in the latest reading: the kernel kills a container (OOMKilled) that goes past it."</p>
                            {near_limit_table(items(&s["pods"]["nearMemoryLimit"]))}
                        </section>
                    })}
                    <section aria-labelledby="warn-h">
                        <h2 id="warn-h">"Recent warning events"</h2>
                        {events_table(items(&s["warnings"]), true)}
                    </section>
                }
            })
        }}
        <section aria-labelledby="ns-h">
            <h2 id="ns-h">"Namespaces and their protection"</h2>
            {move || namespace_table(&namespaces())}
        </section>
    }
}

fn near_limit_table(near: Vec<Value>) -> impl IntoView {
    view! {
        <table data-near-memory-limit="">
            <thead><tr>
                <th scope="col">"Namespace"</th><th scope="col">"Pod"</th><th scope="col">"Container"</th><th scope="col">"Memory"</th><th scope="col">"Limit"</th><th scope="col">"Of limit"</th>
            </tr></thead>
            <tbody>
                {near.into_iter().map(|n| {
                    let ns = text(&n["namespace"]);
                    let pod = text(&n["pod"]);
                    view! {
                        <tr>
                            <td><a href=format!("/namespaces/{ns}")>{ns.clone()}</a></td>
                            <th scope="row"><a href=format!("/namespaces/{ns}/pods/{pod}")>{pod.clone()}</a></th>
                            <td>{text(&n["container"])}</td>
                            <td>{bytes(&n["memoryBytes"])}</td>
                            <td>{bytes(&n["limitBytes"])}</td>
                            <td><span class="oom">{format!("{:.0}%", n["memoryOfLimit"].as_f64().unwrap_or(0.0) * 100.0)}</span></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
