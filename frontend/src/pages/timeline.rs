//! A namespace's timeline: its changes per minute from the change journal,
//! each with who made it and what it changed, and "Restore to here", which
//! opens the restore wizard at that instant (a plan first, as always).

use super::*;
use crate::model::{NamespaceTimeline, ObjectAt, Op, TimelineChange};

/// The windows offered, in hours.
const WINDOWS: &[(&str, u32)] = &[
    ("1 hour", 1),
    ("24 hours", 24),
    ("3 days", 72),
    ("7 days", 168),
];

pub(super) fn timeline(page: RwSignal<PageData>) -> impl IntoView {
    let t = data(page, "timeline");
    let namespace = param(page);
    let status = RwSignal::new(String::new());
    // The change whose difference is shown, and the answer.
    let shown = RwSignal::new(None::<(String, ObjectAt)>);
    let window = move |hours: u32| {
        let path = format!("/api/v1/namespaces/{}/timeline?hours={hours}", param(page));
        status.set("Loading…".into());
        api::spawn(async move {
            match api::request("GET", &path, None).await {
                Ok(v) => {
                    page.update(|p| {
                        p.data.insert("timeline".into(), v);
                        p.sources.insert("timeline".into(), path);
                    });
                    status.set(String::new());
                }
                Err(e) => status.set(e),
            }
        });
    };
    let show_diff = move |change: TimelineChange| {
        let ns = param(page);
        let name = change.name.clone().unwrap_or_default();
        let label = format!(
            "{} {}/{} at {}",
            change.op.map_or("—", Op::as_str),
            change.kind.as_deref().unwrap_or("—"),
            name,
            when(Some(&change.at))
        );
        let path = format!(
            "/api/v1/namespaces/{ns}/timeline/object?resource={}&name={name}&at={}&compareTo=before&schedule={}",
            change.group_resource, change.at, change.schedule
        );
        status.set("Reading both states…".into());
        api::spawn(async move {
            match api::call::<ObjectAt>("GET", &path, None::<&()>).await {
                Ok(v) => {
                    shown.set(Some((label, v)));
                    status.set(String::new());
                }
                Err(e) => status.set(e),
            }
        });
    };
    view! {
        <h1>"Timeline of " <code>{namespace.clone()}</code></h1>
        <p class="note">"Every change to what continuous protection keeps of this namespace, with who made it. Restore the namespace as it was after any of them."</p>
        <div class="actions">
            {WINDOWS.iter().map(|(label, hours)| {
                let hours = *hours;
                view! { <button type="button" on:click=move |_| window(hours)>{format!("Last {label}")}</button> }
            }).collect_view()}
            <a class="button" href=format!("/namespaces/{namespace}")>"Back to the namespace"</a>
            <span role="status" aria-live="polite">{move || status.get()}</span>
        </div>
        {move || {
            let v = match read::<NamespaceTimeline>(&t()) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let total = v.total;
            view! {
                {v.hint.clone().map(|h| view! { <p class="note" data-hint="">{h}</p> })}
                <section aria-labelledby="tl-chart-h">
                    <h2 id="tl-chart-h">"Changes per minute"</h2>
                    {charts::changes_per_minute(&v)}
                </section>
                {(!v.gaps.is_empty()).then(|| view! {
                    <section aria-labelledby="tl-gaps-h" class="gaps">
                        <h2 id="tl-gaps-h">"Gaps"</h2>
                        <p class="note">"Changes inside a gap are unknown: a restore to an instant inside one gets the state before it."</p>
                        <ul class="plain">{v.gaps.iter().map(|g| view! {
                            <li data-gap=g.group_resource.clone()>{badge("Warning")} {format!(" {} – {} ({}): {}", when(Some(&g.from)), when(Some(&g.to)), g.group_resource, g.reason)}</li>
                        }).collect_view()}</ul>
                    </section>
                })}
                <section aria-labelledby="tl-changes-h">
                    <h2 id="tl-changes-h">{format!("Changes ({total}, newest first)")}</h2>
                    {if v.changes.is_empty() {
                        empty("No changes in this window.").into_any()
                    } else {
                        view! {
                            <table class="changes">
                                <thead><tr><th scope="col">"When"</th><th scope="col">"Change"</th><th scope="col">"Object"</th><th scope="col">"By"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                                <tbody>{v.changes.iter().map(|c| {
                                    let restore_here = format!(
                                        "/restore?schedule={}&at={}&namespace={}",
                                        c.schedule, c.at, param(page)
                                    );
                                    let by = match (&c.manager, &c.operation) {
                                        (Some(m), Some(o)) => format!("{m} ({o})"),
                                        (Some(m), None) => m.clone(),
                                        _ => "—".into(),
                                    };
                                    let object = format!("{}/{}", c.kind.as_deref().unwrap_or("—"), c.name.as_deref().unwrap_or("—"));
                                    let change = c.clone();
                                    view! {
                                        <tr data-change=object.clone()>
                                            <td>{when(Some(&c.at))}</td>
                                            <td>{badge(c.op.map_or("", Op::as_str))}</td>
                                            <th scope="row">{object.clone()}</th>
                                            <td>{by}</td>
                                            <td>
                                                <button type="button" on:click=move |_| show_diff(change.clone())>"What changed"</button>
                                                " "
                                                <a class="button" href=restore_here aria-label=format!("Restore to here: after {object} at {}", when(Some(&c.at)))>"Restore to here"</a>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}</tbody>
                            </table>
                        }.into_any()
                    }}
                </section>
            }
            .into_any()
        }}
        {move || shown.get().map(|(label, v)| view! {
            <section aria-labelledby="tl-diff-h" class="diff-view">
                <h2 id="tl-diff-h">{format!("What changed: {label}")}</h2>
                {if v.diff.as_ref().is_none_or(Vec::is_empty) {
                    view! { <p class="empty">"No field differs (only what the server maintains changed)."</p> }.into_any()
                } else {
                    view! {
                        <table class="diff">
                            <thead><tr><th scope="col">"Field"</th><th scope="col">"Before"</th><th scope="col">"After"</th></tr></thead>
                            <tbody>{v.diff.unwrap_or_default().into_iter().map(|d| view! {
                                <tr><th scope="row"><code>{d.path.clone()}</code></th>
                                    <td><code>{compact(&d.before)}</code></td>
                                    <td><code>{compact(&d.after)}</code></td></tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any()
                }}
            </section>
        })}
    }
}

/// A JSON value in one line (`—` for absent).
fn compact(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
