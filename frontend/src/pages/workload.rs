//! One Deployment, StatefulSet or DaemonSet: counts and conditions, what
//! is wrong, its rollout history (each revision's images), its pods and
//! events, and the backups that hold it.

use super::*;

pub(super) fn workload(page: RwSignal<PageData>) -> impl IntoView {
    let w = data(page, "workload");
    view! {
        {move || {
            let w = w();
            if let Some(e) = api_error(&w) {
                return view! { <h1>"Workload"</h1> {e} }.into_any();
            }
            let s = &w["summary"];
            let ns = text(&w["namespace"]);
            let revisions = items(&w["rollout"]["revisions"]);
            let backups = items(&w["backups"]);
            view! {
                <h1>{text(&w["kind"])} " " <code>{text(&w["name"])}</code></h1>
                <p><a href=format!("/namespaces/{ns}")>{format!("Namespace {ns}")}</a></p>
                <section class=format!("banner {}", s["health"]["state"].as_str().unwrap_or_default()) aria-labelledby="wl-state-h">
                    <h2 id="wl-state-h">"Health: " {badge(s["health"]["state"].as_str().unwrap_or_default())}</h2>
                    <p>{format!("{} ready of {} desired · {} updated · {} available", text(&s["ready"]), text(&s["desired"]), text(&s["updated"]), text(&s["available"]))}</p>
                    {(!items(&w["causes"]).is_empty()).then(|| verdict(&json!({"groups": w["causes"]})))}
                </section>
                <section aria-labelledby="wl-rollout-h">
                    <h2 id="wl-rollout-h">"Rollout history"</h2>
                    {w["rollout"]["error"].as_str().map(|e| view! { <p class="note">{e.to_string()}</p> })}
                    {if revisions.is_empty() { empty("No revisions recorded.").into_any() } else { view! {
                        <table>
                            <thead><tr><th scope="col">"Revision"</th><th scope="col">"Images"</th><th scope="col">"Created"</th><th scope="col">"Replicas"</th></tr></thead>
                            <tbody>{revisions.into_iter().enumerate().map(|(i, r)| view! {
                                <tr data-revision=text(&r["revision"])>
                                    <th scope="row">{text(&r["revision"])} {(i == 0).then_some(" (current)")}</th>
                                    <td>{items(&r["images"]).iter().map(|c| format!("{}: {}", text(&c["container"]), text(&c["image"]))).collect::<Vec<_>>().join(", ")}</td>
                                    <td>{time(&r["createdAt"])}</td>
                                    <td>{text(&r["replicas"])}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any() }}
                </section>
                <section aria-labelledby="wl-cond-h">
                    <h2 id="wl-cond-h">"Conditions"</h2>
                    <table>
                        <thead><tr><th scope="col">"Type"</th><th scope="col">"Status"</th><th scope="col">"Reason"</th><th scope="col">"Message"</th></tr></thead>
                        <tbody>{items(&w["conditions"]).into_iter().map(|c| view! {
                            <tr><th scope="row">{text(&c["type"])}</th><td>{text(&c["status"])}</td><td>{text(&c["reason"])}</td><td>{text(&c["message"])}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                </section>
                <section aria-labelledby="wl-pods-h"><h2 id="wl-pods-h">"Pods"</h2>{pod_table(items(&w["pods"]), false)}</section>
                <section aria-labelledby="wl-events-h"><h2 id="wl-events-h">"Events"</h2>{events_table(items(&w["events"]), false)}</section>
                <section aria-labelledby="wl-backups-h">
                    <h2 id="wl-backups-h">"Backups that hold it"</h2>
                    {if backups.is_empty() { empty("No completed backup holds it yet.").into_any() } else { view! {
                        <ul class="plain">{backups.into_iter().map(|b| view! {
                            <li><a href=format!("/backups/{}", text(&b["name"]))>{text(&b["name"])}</a> " " {badge(b["phase"].as_str().unwrap_or_default())} " " {time(&b["completedAt"])}</li>
                        }).collect_view()}</ul>
                    }.into_any() }}
                </section>
            }
            .into_any()
        }}
    }
}
