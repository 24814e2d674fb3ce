//! One Deployment, StatefulSet or DaemonSet: counts and conditions, what
//! is wrong, its rollout history (each revision's images), its pods and
//! events, and the backups that hold it.

use super::*;
use crate::model::{Verdict, WorkloadDetail};

pub(super) fn workload(page: RwSignal<PageData>) -> impl IntoView {
    let w = data(page, "workload");
    view! {
        {move || {
            let w = match read::<WorkloadDetail>(&w()) {
                Ok(w) => w,
                Err(e) => return view! { <h1>"Workload"</h1> {e} }.into_any(),
            };
            let s = &w.summary;
            let ns = w.namespace.clone();
            let state = s.health.state.as_str();
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
            let causes = Verdict {
                groups: w.causes.clone(),
                ..Default::default()
            };
            view! {
                <h1>{w.kind.clone()} " " <code>{w.name.clone()}</code></h1>
                <p><a href=format!("/namespaces/{ns}")>{format!("Namespace {ns}")}</a></p>
                <section class=format!("banner {state}") aria-labelledby="wl-state-h">
                    <h2 id="wl-state-h">"Health: " {badge(state)}</h2>
                    <p>{format!("{} ready of {} desired · {} updated · {} available", s.ready, s.desired, s.updated, s.available)}</p>
                    {(!w.causes.is_empty()).then(|| verdict(&causes))}
                </section>
                <section aria-labelledby="wl-rollout-h">
                    <h2 id="wl-rollout-h">"Rollout history"</h2>
                    {w.rollout.error.clone().map(|e| view! { <p class="note">{e}</p> })}
                    {if w.rollout.revisions.is_empty() { empty("No revisions recorded.").into_any() } else { view! {
                        <table>
                            <thead><tr><th scope="col">"Revision"</th><th scope="col">"Images"</th><th scope="col">"Created"</th><th scope="col">"Replicas"</th></tr></thead>
                            <tbody>{w.rollout.revisions.iter().enumerate().map(|(i, r)| view! {
                                <tr data-revision=r.revision.to_string()>
                                    <th scope="row">{r.revision} {(i == 0).then_some(" (current)")}</th>
                                    <td>{r.images.iter().map(|c| format!("{}: {}", dash(&c.container), dash(&c.image))).collect::<Vec<_>>().join(", ")}</td>
                                    <td>{when(r.created_at.as_deref())}</td>
                                    <td>{r.replicas.map_or_else(|| "—".to_string(), |n| n.to_string())}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any() }}
                </section>
                <section aria-labelledby="wl-cond-h">
                    <h2 id="wl-cond-h">"Conditions"</h2>
                    <table>
                        <thead><tr><th scope="col">"Type"</th><th scope="col">"Status"</th><th scope="col">"Reason"</th><th scope="col">"Message"</th></tr></thead>
                        <tbody>{w.conditions.iter().map(|c| view! {
                            <tr><th scope="row">{c.kind.clone()}</th><td>{c.status.clone()}</td><td>{dash(&c.reason)}</td><td>{dash(&c.message)}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                </section>
                <section aria-labelledby="wl-pods-h"><h2 id="wl-pods-h">"Pods"</h2>{pod_table(w.pods.clone(), false)}</section>
                <section aria-labelledby="wl-events-h"><h2 id="wl-events-h">"Events"</h2>{events_table(w.events.clone(), false)}</section>
                <section aria-labelledby="wl-backups-h">
                    <h2 id="wl-backups-h">"Backups that hold it"</h2>
                    {if w.backups.is_empty() { empty("No completed backup holds it yet.").into_any() } else { view! {
                        <ul class="plain">{w.backups.iter().map(|b| view! {
                            <li><a href=format!("/backups/{}", b.name)>{b.name.clone()}</a> " " {badge(&b.phase)} " " {when(b.completed_at.as_deref())}</li>
                        }).collect_view()}</ul>
                    }.into_any() }}
                </section>
            }
            .into_any()
        }}
    }
}
