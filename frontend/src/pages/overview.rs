//! The overview: cluster health, nodes, failing pods, warnings, namespaces.

use super::*;
use crate::model::{ClusterSummary, NearLimit, WatchState};

pub(super) fn overview(page: RwSignal<PageData>) -> impl IntoView {
    let summary = data(page, "summary");
    let namespaces = data(page, "namespaces");
    view! {
        <h1>"Cluster overview"</h1>
        {move || {
            let s = match read::<ClusterSummary>(&summary()) {
                Ok(s) => s,
                Err(e) => return e,
            };
            let state = s.health.state.as_str();
            let not_permitted: Vec<String> = s
                .watches
                .iter()
                .filter(|(_, w)| matches!(w, WatchState::NotPermitted { .. }))
                .map(|(k, _)| k.clone())
                .collect();
            view! {
                <section class=format!("banner {state}") aria-labelledby="health-h">
                    <h2 id="health-h">"Cluster health: " {badge(state)}</h2>
                    {verdict(&s.verdict)}
                </section>
                {(!not_permitted.is_empty()).then(|| view! {
                    <p class="note">"Not permitted to watch: " {not_permitted.join(", ")} ". Grant Lifeboat's ServiceAccount list/watch on them to see them here."</p>
                })}
                <div class="cards">
                    <section class="card" aria-labelledby="nodes-h">
                        <h2 id="nodes-h">"Nodes"</h2>
                        <p class="big">{format!("{} / {}", s.nodes.ready, s.nodes.total)} <small>" ready"</small></p>
                        <ul class="plain">
                            {s.nodes.items.iter().map(|n| view! {
                                <li><a href=format!("/nodes/{}", n.name)>{n.name.clone()}</a> " " {badge(n.health.state.as_str())} {reasons(&n.health)}</li>
                            }).collect_view()}
                        </ul>
                    </section>
                    {s.usage.as_ref().map(|usage| view! {
                        <section class="card" aria-labelledby="usage-h">
                            <h2 id="usage-h">"CPU and memory"</h2>
                            {charts::usage(usage)}
                        </section>
                    })}
                    <section class="card" aria-labelledby="pods-h">
                        <h2 id="pods-h">"Pods"</h2>
                        <ul class="plain">
                            {s.pods.by_phase.iter().map(|(phase, n)| view! { <li>{badge(phase)} " " {n.to_string()}</li> }).collect_view()}
                        </ul>
                    </section>
                </div>
                <section aria-labelledby="failing-h">
                    <h2 id="failing-h">"Pods that need attention"</h2>
                    {pod_table(s.pods.unhealthy.clone(), true)}
                </section>
                {(!s.pods.near_memory_limit.is_empty()).then(|| view! {
                    <section aria-labelledby="oom-h">
                        <h2 id="oom-h">"Containers near their memory limit"</h2>
                        <p class="note">"At 90% of their memory limit or more in the latest reading: the kernel kills a container (OOMKilled) that goes past it."</p>
                        {near_limit_table(s.pods.near_memory_limit.clone())}
                    </section>
                })}
                <section aria-labelledby="warn-h">
                    <h2 id="warn-h">"Recent warning events"</h2>
                    {events_table(s.warnings.clone(), true)}
                </section>
            }
            .into_any()
        }}
        <section aria-labelledby="ns-h">
            <h2 id="ns-h">"Namespaces and their protection"</h2>
            {move || namespace_table(&namespaces())}
        </section>
    }
}

fn near_limit_table(near: Vec<NearLimit>) -> impl IntoView {
    view! {
        <table data-near-memory-limit="">
            <thead><tr>
                <th scope="col">"Namespace"</th><th scope="col">"Pod"</th><th scope="col">"Container"</th><th scope="col">"Memory"</th><th scope="col">"Limit"</th><th scope="col">"Of limit"</th>
            </tr></thead>
            <tbody>
                {near.into_iter().map(|n| {
                    let ns = n.namespace.clone();
                    let pod = n.pod.clone();
                    view! {
                        <tr>
                            <td><a href=format!("/namespaces/{ns}")>{ns.clone()}</a></td>
                            <th scope="row"><a href=format!("/namespaces/{ns}/pods/{pod}")>{pod.clone()}</a></th>
                            <td>{n.container.clone()}</td>
                            <td>{size(Some(n.memory_bytes as i64))}</td>
                            <td>{size(Some(n.limit_bytes as i64))}</td>
                            <td><span class="oom">{format!("{:.0}%", n.memory_of_limit * 100.0)}</span></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
