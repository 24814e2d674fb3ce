//! The pages. Each reads its data from the page signal inside closures, so
//! live refreshes update what is shown while forms keep what was typed.

mod activity;
mod backup;
mod backups;
mod namespaces;
mod node;
mod notifications;
mod overview;
mod pod;
mod restore;
mod schedules;
mod storage;
mod timeline;
mod workload;

use leptos::prelude::*;
use serde_json::{Value, json};

use crate::PageData;
use crate::api;
use crate::charts;
use crate::model::{EventView, Items, LocationView, NamespaceRow, PodSummary, Proven, Verdict};
use crate::widgets::{badge, between, duration, empty, hook_table, read, reasons, size, when};

pub fn page(kind: &str, page: RwSignal<PageData>) -> AnyView {
    match kind {
        "overview" => overview::overview(page).into_any(),
        "namespaces" => namespaces::namespaces(page).into_any(),
        "namespace" => namespaces::namespace(page).into_any(),
        "pod" => pod::pod(page).into_any(),
        "node" => node::node(page).into_any(),
        "workload" => workload::workload(page).into_any(),
        "timeline" => timeline::timeline(page).into_any(),
        "backups" => backups::backups(page).into_any(),
        "backup" => backup::backup(page).into_any(),
        "schedules" => schedules::schedules(page).into_any(),
        "restore" => restore::restore(page).into_any(),
        "storage" => storage::storage(page).into_any(),
        "activity" => activity::activity(page).into_any(),
        "notifications" => notifications::notifications(page).into_any(),
        _ => view! {
            <h1>"Not found"</h1>
            <p>"There is no such page. " <a href="/">"Go to the overview."</a></p>
        }
        .into_any(),
    }
}

fn data(page: RwSignal<PageData>, name: &'static str) -> impl Fn() -> Value + Copy {
    move || page.with(|p| p.get(name))
}

/// `?key` of the request, if given.
fn query(page: RwSignal<PageData>, key: &str) -> Option<String> {
    page.with_untracked(|p| p.query.get(key).cloned())
}

fn param(page: RwSignal<PageData>) -> String {
    page.with_untracked(|p| p.param.clone().unwrap_or_default())
}

fn namespace_table(v: &Value) -> AnyView {
    let rows = match read::<Items<NamespaceRow>>(v) {
        Ok(list) => list.items,
        Err(e) => return e,
    };
    if rows.is_empty() {
        return empty("No namespaces are visible yet; the watchers may still be listing.")
            .into_any();
    }
    view! {
        <table>
            <thead><tr><th scope="col">"Namespace"</th><th scope="col">"Health"</th><th scope="col">"Pods"</th><th scope="col">"Workloads"</th><th scope="col">"Protection"</th><th scope="col">"Restore proven"</th><th scope="col">"Last backup"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|n| {
                    let name = n.name.clone();
                    view! {
                        <tr>
                            <th scope="row"><a href=format!("/namespaces/{name}")>{name.clone()}</a></th>
                            <td>{badge(n.health.state.as_str())} {reasons(&n.health)}</td>
                            <td>{n.counts.pods}</td>
                            <td>{n.counts.workloads}</td>
                            <td>{badge(n.protection.as_str())}</td>
                            <td>{proven(&n.restore_proven)}</td>
                            <td>{n.last_backup.map(|b| view! { <a href=format!("/backups/{b}")>{b.clone()}</a> })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// Whether a namespace's restore was proven by a drill, and when.
fn proven(p: &Proven) -> AnyView {
    let age = p.age_seconds.map(duration).unwrap_or_default();
    let backup = p.backup.clone().unwrap_or_default();
    match p.state.as_str() {
        "proven" => view! {
            <a href=format!("/backups/{backup}") class="badge good" data-proven="proven">{format!("restore proven {age} ago")}</a>
        }
        .into_any(),
        "failed" => view! {
            <a href=format!("/backups/{backup}") class="badge bad" data-proven="failed">{format!("last drill failed: {}", p.reason.as_deref().unwrap_or("—"))}</a>
        }
        .into_any(),
        _ => view! { <span class="badge" data-proven="never">"never proven"</span> }.into_any(),
    }
}

/// What is wrong, grouped by cause: each group a folded list of what it
/// holds, the ones that follow from another saying which.
fn verdict(v: &Verdict) -> AnyView {
    if v.groups.is_empty() {
        return view! { <p>{v.headline.clone()}</p> }.into_any();
    }
    view! {
        <ul class="verdict plain">
            {v.groups.iter().map(|g| {
                let more = (g.count as u64).saturating_sub(g.subjects.len() as u64);
                view! {
                    <li data-cause=g.summary.clone() class=if g.explained_by.is_none() { "root" } else { "follows" }>
                        <details>
                            <summary>{badge(g.state.as_str())} " " {g.summary.clone()}
                                {g.explained_by.clone().map(|by| view! { <small class="note">{format!(" — because of: {by}")}</small> })}</summary>
                            <ul>
                                {g.subjects.iter().map(|s| view! { <li><code>{s.clone()}</code></li> }).collect_view()}
                                {(more > 0).then(|| view! { <li class="note">{format!("and {more} more")}</li> })}
                            </ul>
                        </details>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}

fn pod_table(pods: Vec<PodSummary>, with_namespace: bool) -> AnyView {
    if pods.is_empty() {
        return empty("None: every pod is running as intended.").into_any();
    }
    view! {
        <table>
            <thead><tr>
                {with_namespace.then(|| view! { <th scope="col">"Namespace"</th> })}
                <th scope="col">"Pod"</th><th scope="col">"Phase"</th><th scope="col">"Ready"</th><th scope="col">"Restarts"</th><th scope="col">"Age"</th><th scope="col">"Why"</th>
            </tr></thead>
            <tbody>
                {pods.into_iter().map(|p| {
                    let ns = p.namespace.clone();
                    let href = format!("/namespaces/{ns}/pods/{}", p.name);
                    view! {
                        <tr>
                            {with_namespace.then(|| view! { <td><a href=format!("/namespaces/{ns}")>{ns.clone()}</a></td> })}
                            <th scope="row"><a href=href>{p.name.clone()}</a></th>
                            <td>{badge(&p.phase)}</td>
                            <td>{format!("{}/{}", p.ready, p.containers)}</td>
                            <td>{p.restarts}</td>
                            <td>{duration(p.age_seconds)}</td>
                            <td>{reasons(&p.health)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

fn events_table(events: Vec<EventView>, with_namespace: bool) -> AnyView {
    if events.is_empty() {
        return empty("No recent events.").into_any();
    }
    let dash = |v: Option<String>| v.filter(|s| !s.is_empty()).unwrap_or_else(|| "—".into());
    view! {
        <table>
            <thead><tr>
                {with_namespace.then(|| view! { <th scope="col">"Namespace"</th> })}
                <th scope="col">"Type"</th><th scope="col">"Reason"</th><th scope="col">"Object"</th><th scope="col">"Message"</th><th scope="col">"Count"</th><th scope="col">"Last seen"</th>
            </tr></thead>
            <tbody>
                {events.into_iter().map(|e| view! {
                    <tr>
                        {with_namespace.then(|| view! { <td>{dash(e.namespace.clone())}</td> })}
                        <td>{badge(if e.kind.as_deref() == Some("Warning") { "Warning" } else { "Normal" })}</td>
                        <td>{dash(e.reason)}</td>
                        <td>{format!("{}/{}", dash(e.object.kind), dash(e.object.name))}</td>
                        <td>{dash(e.message)}</td>
                        <td>{e.count}</td>
                        <td>{when(e.last_seen.as_deref())}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// A UTC timestamp for names made in the browser (`20261125t120003`).
fn js_stamp() -> String {
    #[cfg(feature = "hydrate")]
    {
        let d = js_date_iso();
        d.chars().filter(|c| c.is_ascii_digit()).take(14).collect()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

#[cfg(feature = "hydrate")]
fn js_date_iso() -> String {
    wasm_bindgen::JsValue::from(js_sys::Date::new_0().to_iso_string())
        .as_string()
        .unwrap_or_default()
}

/// "Storage location" picker over the locations the API lists (unavailable ones say so).
fn location_select(
    locations: impl Fn() -> Value + Copy + Send + Sync + 'static,
    location: RwSignal<String>,
) -> impl IntoView {
    view! {
        <label>"Storage location "
            <select name="location" on:change=move |ev| location.set(event_target_value(&ev))>
                {move || read::<Items<LocationView>>(&locations()).map(|l| l.items).unwrap_or_default().into_iter().map(|l| {
                    let n = l.name;
                    let note = if l.availability == "available" { String::new() } else { format!(" ({})", l.availability) };
                    let selected = location.get() == n;
                    view! { <option value=n.clone() selected=selected>{format!("{n}{note}")}</option> }
                }).collect_view()}
            </select>
        </label>
    }
}
