//! The pages. Each reads its data from the page signal inside closures, so
//! live refreshes update what is shown while forms keep what was typed.

use leptos::prelude::*;
use serde_json::{Value, json};

use crate::PageData;
use crate::api;
use crate::charts;
use crate::widgets::{
    api_error, badge, bytes, duration, empty, items, note, reasons, seconds_between, text, time,
};

pub fn page(kind: &str, page: RwSignal<PageData>) -> AnyView {
    match kind {
        "overview" => overview(page).into_any(),
        "namespaces" => namespaces(page).into_any(),
        "namespace" => namespace(page).into_any(),
        "backups" => backups(page).into_any(),
        "backup" => backup(page).into_any(),
        "schedules" => schedules(page).into_any(),
        "restore" => restore(page).into_any(),
        "storage" => storage(page).into_any(),
        "activity" => activity(page).into_any(),
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

// ------------------------------------------------------------------ overview

fn overview(page: RwSignal<PageData>) -> impl IntoView {
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
                        {reasons(&s["health"])}
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
                                    <li>{text(&n["name"])} " " {badge(n["health"]["state"].as_str().unwrap_or_default())} {reasons(&n["health"])}</li>
                                }).collect_view()}
                            </ul>
                        </section>
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

fn namespace_table(v: &Value) -> AnyView {
    if let Some(e) = api_error(v) {
        return e.into_any();
    }
    let rows = items(&v["items"]);
    if rows.is_empty() {
        return empty("No namespaces are visible yet; the watchers may still be listing.")
            .into_any();
    }
    view! {
        <table>
            <thead><tr><th scope="col">"Namespace"</th><th scope="col">"Health"</th><th scope="col">"Pods"</th><th scope="col">"Workloads"</th><th scope="col">"Protection"</th><th scope="col">"Last backup"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|n| {
                    let name = text(&n["name"]);
                    view! {
                        <tr>
                            <th scope="row"><a href=format!("/namespaces/{name}")>{name.clone()}</a></th>
                            <td>{badge(n["health"]["state"].as_str().unwrap_or_default())} {reasons(&n["health"])}</td>
                            <td>{text(&n["counts"]["pods"])}</td>
                            <td>{text(&n["counts"]["workloads"])}</td>
                            <td>{badge(n["protection"].as_str().unwrap_or_default())}</td>
                            <td>{n["lastBackup"].as_str().map(|b| view! { <a href=format!("/backups/{b}")>{b.to_string()}</a> })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

fn pod_table(pods: Vec<Value>, with_namespace: bool) -> AnyView {
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
                    let ns = text(&p["namespace"]);
                    let name = text(&p["name"]);
                    view! {
                        <tr>
                            {with_namespace.then(|| view! { <td><a href=format!("/namespaces/{ns}")>{ns.clone()}</a></td> })}
                            <th scope="row">{name}</th>
                            <td>{badge(p["phase"].as_str().unwrap_or_default())}</td>
                            <td>{format!("{}/{}", text(&p["ready"]), text(&p["containers"]))}</td>
                            <td>{text(&p["restarts"])}</td>
                            <td>{duration(p["ageSeconds"].as_i64().unwrap_or(0))}</td>
                            <td>{reasons(&p["health"])}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

fn events_table(events: Vec<Value>, with_namespace: bool) -> AnyView {
    if events.is_empty() {
        return empty("No recent events.").into_any();
    }
    view! {
        <table>
            <thead><tr>
                {with_namespace.then(|| view! { <th scope="col">"Namespace"</th> })}
                <th scope="col">"Type"</th><th scope="col">"Reason"</th><th scope="col">"Object"</th><th scope="col">"Message"</th><th scope="col">"Count"</th><th scope="col">"Last seen"</th>
            </tr></thead>
            <tbody>
                {events.into_iter().map(|e| view! {
                    <tr>
                        {with_namespace.then(|| view! { <td>{text(&e["namespace"])}</td> })}
                        <td>{badge(if e["type"] == "Warning" { "Warning" } else { "Normal" })}</td>
                        <td>{text(&e["reason"])}</td>
                        <td>{format!("{}/{}", text(&e["object"]["kind"]), text(&e["object"]["name"]))}</td>
                        <td>{text(&e["message"])}</td>
                        <td>{text(&e["count"])}</td>
                        <td>{time(&e["lastSeen"])}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

// ---------------------------------------------------------------- namespaces

fn namespaces(page: RwSignal<PageData>) -> impl IntoView {
    let list = data(page, "namespaces");
    view! {
        <h1>"Namespaces"</h1>
        {move || namespace_table(&list())}
    }
}

fn namespace(page: RwSignal<PageData>) -> impl IntoView {
    let ns = data(page, "namespace");
    let name = param(page);
    let status = RwSignal::new(String::new());
    let back_up_now = {
        let name = name.clone();
        move |_| {
            let name = name.clone();
            status.set("Starting a backup…".into());
            api::spawn(async move {
                let backup = format!("{name}-{}", js_stamp());
                let body = json!({"name": backup, "spec": {"includedNamespaces": [name]}});
                match api::request("POST", "/api/v1/backups", Some(body)).await {
                    Ok(_) => api::navigate(&format!("/backups/{backup}")),
                    Err(e) => status.set(format!("The backup could not start: {e}")),
                }
            });
        }
    };
    view! {
        <h1>"Namespace " <code>{name.clone()}</code></h1>
        <div class="actions">
            <button type="button" on:click=back_up_now>"Back up now"</button>
            <a class="button" href=format!("/restore?namespace={name}")>"Restore…"</a>
            <span role="status" aria-live="polite">{move || status.get()}</span>
        </div>
        {move || {
            let n = ns();
            if let Some(e) = api_error(&n) {
                return e.into_any();
            }
            let pods: Vec<Value> = items(&n["pods"]);
            view! {
                <section class=format!("banner {}", n["health"]["state"].as_str().unwrap_or_default())>
                    <h2>"Health: " {badge(n["health"]["state"].as_str().unwrap_or_default())} " · Protection: " {badge(n["protection"].as_str().unwrap_or_default())}</h2>
                    {reasons(&n["health"])}
                </section>
                <section aria-labelledby="wl-h">
                    <h2 id="wl-h">"Workloads"</h2>
                    {if items(&n["workloads"]).is_empty() { empty("No Deployments, StatefulSets or DaemonSets.").into_any() } else { view! {
                        <table>
                            <thead><tr><th scope="col">"Kind"</th><th scope="col">"Name"</th><th scope="col">"Ready / desired"</th><th scope="col">"Updated"</th><th scope="col">"Available"</th><th scope="col">"Health"</th></tr></thead>
                            <tbody>{items(&n["workloads"]).into_iter().map(|w| view! {
                                <tr data-workload=text(&w["name"])>
                                    <td>{text(&w["kind"])}</td><th scope="row">{text(&w["name"])}</th>
                                    <td class="ready">{format!("{} / {}", text(&w["ready"]), text(&w["desired"]))}</td>
                                    <td>{text(&w["updated"])}</td><td>{text(&w["available"])}</td>
                                    <td>{badge(w["health"]["state"].as_str().unwrap_or_default())} {reasons(&w["health"])}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any() }}
                </section>
                <section aria-labelledby="pods-h"><h2 id="pods-h">"Pods"</h2>{pod_table(pods, false)}</section>
                <section aria-labelledby="jobs-h">
                    <h2 id="jobs-h">"Jobs and CronJobs"</h2>
                    {if items(&n["jobs"]).is_empty() && items(&n["cronJobs"]).is_empty() { Some(empty("None.")) } else { None }}
                    <ul class="plain">
                        {items(&n["cronJobs"]).into_iter().map(|c| view! { <li>"CronJob " <strong>{text(&c["name"])}</strong> " — " <code>{text(&c["schedule"])}</code> " — last run " {time(&c["lastScheduleTime"])} " " {badge(c["health"]["state"].as_str().unwrap_or_default())}</li> }).collect_view()}
                        {items(&n["jobs"]).into_iter().map(|j| view! { <li>"Job " <strong>{text(&j["name"])}</strong> {format!(" — {} succeeded, {} failed, {} active ", text(&j["succeeded"]), text(&j["failed"]), text(&j["active"]))} {badge(j["health"]["state"].as_str().unwrap_or_default())}</li> }).collect_view()}
                    </ul>
                </section>
                <section aria-labelledby="pvc-h">
                    <h2 id="pvc-h">"Persistent volume claims"</h2>
                    {if items(&n["persistentVolumeClaims"]).is_empty() { empty("None.").into_any() } else { view! {
                        <table><thead><tr><th scope="col">"Claim"</th><th scope="col">"Phase"</th><th scope="col">"Volume"</th><th scope="col">"Storage class"</th></tr></thead>
                        <tbody>{items(&n["persistentVolumeClaims"]).into_iter().map(|c| view! {
                            <tr><th scope="row">{text(&c["name"])}</th><td>{badge(c["phase"].as_str().unwrap_or("Pending"))}</td><td>{text(&c["volume"])}</td><td>{text(&c["storageClass"])}</td></tr>
                        }).collect_view()}</tbody></table>
                    }.into_any() }}
                </section>
                <section aria-labelledby="net-h">
                    <h2 id="net-h">"Services and ingresses"</h2>
                    {if items(&n["services"]).is_empty() && items(&n["ingresses"]).is_empty() { Some(empty("None.")) } else { None }}
                    <ul class="plain">
                        {items(&n["services"]).into_iter().map(|s| view! { <li>"Service " <strong>{text(&s["name"])}</strong> {format!(" — {} {} — ports {}", text(&s["type"]), text(&s["clusterIP"]), items(&s["ports"]).iter().map(|p| text(&p["port"])).collect::<Vec<_>>().join(", "))}</li> }).collect_view()}
                        {items(&n["ingresses"]).into_iter().map(|i| view! { <li>"Ingress " <strong>{text(&i["name"])}</strong> " — " {items(&i["rules"]).iter().map(|r| format!("{}{} → {}", text(&r["host"]), text(&r["path"]), text(&r["service"]))).collect::<Vec<_>>().join("; ")}</li> }).collect_view()}
                    </ul>
                </section>
                <section aria-labelledby="ev-h"><h2 id="ev-h">"Recent events"</h2>{events_table(items(&n["events"]), false)}</section>
                <section aria-labelledby="bk-h">
                    <h2 id="bk-h">"Backups of this namespace"</h2>
                    {charts::timeline(&items(&n["backups"]))}
                    {if items(&n["backups"]).is_empty() { empty("No backup covers this namespace yet: use “Back up now”, or create a schedule.").into_any() } else { view! {
                        <ul class="plain">{items(&n["backups"]).into_iter().map(|b| {
                            let bname = text(&b["name"]);
                            view! { <li><a href=format!("/backups/{bname}")>{bname.clone()}</a> " " {badge(b["phase"].as_str().unwrap_or_default())} " " {time(&b["completedAt"])}</li> }
                        }).collect_view()}</ul>
                    }.into_any() }}
                </section>
            }
            .into_any()
        }}
    }
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

// ------------------------------------------------------------------- backups

fn backups(page: RwSignal<PageData>) -> impl IntoView {
    let list = data(page, "backups");
    let locations = data(page, "locations");
    let phase = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let namespaces = RwSignal::new(String::new());
    let location = RwSignal::new("default".to_string());
    let status = RwSignal::new(String::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, ns, at) = (
            name.get_untracked(),
            namespaces.get_untracked(),
            location.get_untracked(),
        );
        let included: Vec<String> = ns
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        status.set(format!("Starting backup {n}…"));
        api::spawn(async move {
            let body =
                json!({"name": n, "spec": {"includedNamespaces": included, "storageLocation": at}});
            match api::request("POST", "/api/v1/backups", Some(body)).await {
                Ok(_) => api::navigate(&format!("/backups/{n}")),
                Err(e) => status.set(e),
            }
        });
    };
    view! {
        <h1>"Backups"</h1>
        {move || charts::backup_history(&items(&list()["items"]))}
        <details class="panel">
            <summary>"Back up now"</summary>
            <form on:submit=create>
                <label>"Name" <input name="name" required pattern="[a-z0-9]([a-z0-9\\-]*[a-z0-9])?" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                <label>"Namespaces (comma-separated, empty for all)" <input name="namespaces" prop:value=move || namespaces.get() on:input=move |ev| namespaces.set(event_target_value(&ev)) /></label>
                {location_select(locations, location)}
                <button type="submit">"Start backup"</button>
                <p role="status" aria-live="polite" class="status">{move || status.get()}</p>
            </form>
        </details>
        <label class="filter">"Phase "
            <select on:change=move |ev| phase.set(event_target_value(&ev))>
                <option value="">"all"</option>
                {["Completed", "PartiallyFailed", "Failed", "InProgress", "New"].map(|p| view! { <option value=p>{p}</option> }).collect_view()}
            </select>
        </label>
        {move || {
            let v = list();
            if let Some(e) = api_error(&v) {
                return e.into_any();
            }
            let wanted = phase.get();
            let rows: Vec<Value> = items(&v["items"]).into_iter().filter(|b| wanted.is_empty() || b["phase"] == wanted.as_str()).collect();
            if rows.is_empty() {
                return empty("No backups yet. Start one above, from a namespace's page, or create a schedule.").into_any();
            }
            view! {
                <table>
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Phase"</th><th scope="col">"Created"</th><th scope="col">"Took"</th><th scope="col">"Items"</th><th scope="col">"Size"</th><th scope="col">"Schedule"</th><th scope="col">"Location"</th><th scope="col">"Expires"</th></tr></thead>
                    <tbody>{rows.into_iter().map(|b| {
                        let n = text(&b["name"]);
                        view! {
                            <tr>
                                <th scope="row"><a href=format!("/backups/{n}")>{n.clone()}</a></th>
                                <td>{badge(b["phase"].as_str().unwrap_or_default())}</td>
                                <td>{time(&b["createdAt"])}</td>
                                <td>{seconds_between(&b["startedAt"], &b["completedAt"]).map(duration).unwrap_or_else(|| "—".into())}</td>
                                <td>{text(&b["itemsDone"])}</td>
                                <td>{bytes(&b["sizeBytes"])}</td>
                                <td>{text(&b["schedule"])}</td>
                                <td>{text(&b["storageLocation"])}</td>
                                <td>{b["expiresAt"].as_str().map(|_| time(&b["expiresAt"])).unwrap_or_else(|| "never".into())}</td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table>
            }
            .into_any()
        }}
    }
}

/// "Storage location" picker over the locations the API lists (unavailable ones say so).
fn location_select(
    locations: impl Fn() -> Value + Copy + Send + Sync + 'static,
    location: RwSignal<String>,
) -> impl IntoView {
    view! {
        <label>"Storage location "
            <select name="location" on:change=move |ev| location.set(event_target_value(&ev))>
                {move || items(&locations()["items"]).into_iter().map(|l| {
                    let n = text(&l["name"]);
                    let note = if l["availability"] == "available" { String::new() } else { format!(" ({})", text(&l["availability"])) };
                    let selected = location.get() == n;
                    view! { <option value=n.clone() selected=selected>{format!("{n}{note}")}</option> }
                }).collect_view()}
            </select>
        </label>
    }
}

fn backup(page: RwSignal<PageData>) -> impl IntoView {
    let b = data(page, "backup");
    let contents = data(page, "contents");
    let name = param(page);
    let shown = RwSignal::new(None::<(String, String)>);
    let log = RwSignal::new(None::<String>);
    let confirm = RwSignal::new(String::new());
    let asking = RwSignal::new(false);
    let status = RwSignal::new(String::new());
    let open = {
        let name = name.clone();
        move |path: String| {
            let name = name.clone();
            api::spawn(async move {
                let url = format!("/api/v1/backups/{name}/contents?path={path}");
                let body = match api::request("GET", &url, None).await {
                    Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
                    Err(e) => e,
                };
                shown.set(Some((path, body)));
            });
        }
    };
    let show_log = {
        let name = name.clone();
        move |_| {
            let name = name.clone();
            api::spawn(async move {
                let text =
                    match api::request("GET", &format!("/api/v1/backups/{name}/log"), None).await {
                        Ok(Value::String(s)) => s,
                        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
                        Err(e) => e,
                    };
                log.set(Some(text));
            });
        }
    };
    let delete = {
        let name = name.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let name = name.clone();
            status.set("Deleting…".into());
            api::spawn(async move {
                match api::request("DELETE", &format!("/api/v1/backups/{name}"), None).await {
                    Ok(_) => api::navigate("/backups"),
                    Err(e) => status.set(format!("Not deleted: {e}")),
                }
            });
        }
    };
    let name_for_check = name.clone();
    view! {
        <h1>"Backup " <code>{name.clone()}</code></h1>
        {move || {
            let v = b();
            if let Some(e) = api_error(&v) {
                return e.into_any();
            }
            let phase = v["phase"].as_str().unwrap_or_default().to_string();
            let running = matches!(phase.as_str(), "New" | "InProgress");
            view! {
                <dl class="facts">
                    <dt>"Phase"</dt><dd data-phase=phase.clone()>{badge(&phase)} " " {note(&v["phaseReason"])}</dd>
                    <dt>"Items"</dt><dd>{text(&v["itemsDone"])}</dd>
                    <dt>"Size"</dt><dd>{bytes(&v["sizeBytes"])}</dd>
                    <dt>"Location"</dt><dd><a href="/storage">{text(&v["storageLocation"])}</a></dd>
                    <dt>"Started"</dt><dd>{time(&v["startedAt"])}</dd>
                    <dt>"Completed"</dt><dd>{time(&v["completedAt"])}</dd>
                    <dt>"Took"</dt><dd>{seconds_between(&v["startedAt"], &v["completedAt"]).map(duration).unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Expires"</dt><dd>{v["expiresAt"].as_str().map(|_| time(&v["expiresAt"])).unwrap_or_else(|| "never".into())}</dd>
                    <dt>"Namespaces"</dt><dd>{let ns = items(&v["spec"]["includedNamespaces"]); if ns.is_empty() { "all".to_string() } else { ns.iter().map(text).collect::<Vec<_>>().join(", ") }}</dd>
                    <dt>"Warnings / errors"</dt><dd>{format!("{} / {}", text(&v["warnings"]), text(&v["errors"]))}</dd>
                </dl>
                {running.then(|| view! {
                    <p role="status" aria-live="polite"><progress aria-label="Backup progress"></progress> {format!(" {} items, {} written so far", text(&v["itemsDone"]), bytes(&v["bytesDone"]))}</p>
                })}
                {(v["missingFromStorage"] == true).then(|| view! { <div class="error" role="alert">"This backup's manifest is missing from storage: it cannot be restored. Check the bucket."</div> })}
            }
            .into_any()
        }}
        <div class="actions">
            <a class="button" href=format!("/api/v1/backups/{name}/download") download>"Download archive"</a>
            <a class="button" href=format!("/restore?backup={name}")>"Restore from it…"</a>
            <button type="button" on:click=show_log>"Show log"</button>
            <button type="button" class="danger" on:click=move |_| asking.set(true)>"Delete…"</button>
        </div>
        {move || asking.get().then(|| {
            let expected = name_for_check.clone();
            view! {
                <form class="panel danger-zone" on:submit=delete.clone() aria-labelledby="del-h">
                    <h2 id="del-h">"Delete this backup?"</h2>
                    <p>"Its archive is removed from storage and cannot be brought back. Type its name to confirm."</p>
                    <label>"Backup name" <input name="confirm" autocomplete="off" prop:value=move || confirm.get() on:input=move |ev| confirm.set(event_target_value(&ev)) /></label>
                    <button type="submit" class="danger" prop:disabled=move || confirm.get() != expected>"Delete permanently"</button>
                    <button type="button" on:click=move |_| asking.set(false)>"Cancel"</button>
                    <p role="status" aria-live="polite">{move || status.get()}</p>
                </form>
            }
        })}
        {move || log.get().map(|l| view! { <section><h2>"Log"</h2><pre class="log">{l}</pre></section> })}
        <section aria-labelledby="contents-h">
            <h2 id="contents-h">"Contents"</h2>
            {move || {
                let c = contents();
                if c.is_null() {
                    return empty("The contents can be browsed once the backup has completed.").into_any();
                }
                if let Some(e) = api_error(&c) {
                    return e.into_any();
                }
                let tree = c["resources"].as_object().cloned().unwrap_or_default();
                let open = open.clone();
                view! {
                    <div class="browser">
                        <ul class="tree" aria-label="Resources in this backup">
                            {tree.into_iter().map(|(resource, by_ns)| {
                                let open = open.clone();
                                let count: usize = by_ns.as_object().map(|o| o.values().map(|v| v.as_array().map_or(0, Vec::len)).sum()).unwrap_or(0);
                                view! {
                                    <li><details><summary>{format!("{resource} ({count})")}</summary>
                                        <ul>{by_ns.as_object().cloned().unwrap_or_default().into_iter().map(|(ns, names)| {
                                            let open = open.clone();
                                            let resource = resource.clone();
                                            view! { <li><span class="ns">{ns.clone()}</span><ul>{items(&names).into_iter().map(|n| {
                                                let n = text(&n);
                                                let scope = if ns == "(cluster)" { "cluster".to_string() } else { format!("namespaces/{ns}") };
                                                let path = format!("resources/{resource}/{scope}/{n}.json");
                                                let open = open.clone();
                                                view! { <li><button type="button" class="link" on:click=move |_| open(path.clone())>{n}</button></li> }
                                            }).collect_view()}</ul></li> }
                                        }).collect_view()}</ul>
                                    </details></li>
                                }
                            }).collect_view()}
                        </ul>
                        <div class="object" aria-live="polite">
                            {move || match shown.get() {
                                Some((path, body)) => view! { <h3><code>{path}</code></h3><pre>{body}</pre> }.into_any(),
                                None => view! { <p class="empty">"Choose an object to see it as stored (Secret values are redacted)."</p> }.into_any(),
                            }}
                        </div>
                    </div>
                }
                .into_any()
            }}
        </section>
    }
}

// ----------------------------------------------------------------- schedules

fn schedules(page: RwSignal<PageData>) -> impl IntoView {
    let list = data(page, "schedules");
    let locations = data(page, "locations");
    let location = RwSignal::new("default".to_string());
    let name = RwSignal::new(String::new());
    let cron = RwSignal::new("0 1 * * *".to_string());
    let zone = RwSignal::new("UTC".to_string());
    let namespaces = RwSignal::new(String::new());
    let keep = RwSignal::new("7".to_string());
    let ttl = RwSignal::new(String::new());
    let preview = RwSignal::new(Err::<Vec<String>, String>(String::new()));
    let status = RwSignal::new(String::new());
    let body = move || {
        let included: Vec<String> = namespaces
            .get_untracked()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let keep_last = keep.get_untracked().trim().parse::<i64>().ok();
        let ttl = Some(ttl.get_untracked()).filter(|t| !t.trim().is_empty());
        let n = name.get_untracked();
        json!({"name": if n.is_empty() { "preview".to_string() } else { n }, "schedule": cron.get_untracked(), "timezone": zone.get_untracked(),
               "template": {"includedNamespaces": included, "storageLocation": location.get_untracked()}, "retention": {"keepLast": keep_last, "ttl": ttl}})
    };
    let check = move || {
        api::spawn(async move {
            let result = api::request("POST", "/api/v1/schedules/preview", Some(body())).await;
            preview.set(result.map(|v| items(&v["nextRuns"]).iter().map(time).collect()));
        });
    };
    let editing = RwSignal::new(None::<String>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        api::spawn(async move {
            let (method, path, done) = match editing.get_untracked() {
                Some(n) => ("PUT", format!("/api/v1/schedules/{n}"), "saved"),
                None => ("POST", "/api/v1/schedules".to_string(), "created"),
            };
            match api::request(method, &path, Some(body())).await {
                Ok(_) => {
                    status.set(format!("Schedule {} {done}.", name.get_untracked()));
                    editing.set(None);
                    api::refresh(page).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    // Fills the form with a schedule to change it.
    let edit = move |s: Value| {
        name.set(text(&s["name"]));
        cron.set(text(&s["schedule"]));
        zone.set(text(&s["timezone"]));
        location.set(
            s["template"]["storageLocation"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
        );
        namespaces.set(
            items(&s["template"]["includedNamespaces"])
                .iter()
                .map(text)
                .collect::<Vec<_>>()
                .join(", "),
        );
        keep.set(
            s["retention"]["keepLast"]
                .as_i64()
                .map(|k| k.to_string())
                .unwrap_or_default(),
        );
        ttl.set(
            s["retention"]["ttl"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        editing.set(Some(text(&s["name"])));
        check();
    };
    let act = move |path: String, method: &'static str| {
        api::spawn(async move {
            match api::request(method, &path, None).await {
                Ok(_) => api::refresh(page).await,
                Err(e) => status.set(e),
            }
        });
    };
    view! {
        <h1>"Schedules"</h1>
        {move || {
            let v = list();
            if let Some(e) = api_error(&v) {
                return e.into_any();
            }
            let runner = v["runner"].clone();
            let rows = items(&v["items"]);
            view! {
                <p class="note">{match runner["mode"].as_str() {
                    Some("lease") => format!("Runs on the replica holding the Lease {} (now: {}).", text(&runner["lease"]), text(&runner["holder"])),
                    Some("none") => text(&runner["detail"]),
                    _ => "This server runs the schedules.".to_string(),
                }}</p>
                {if rows.is_empty() { empty("No schedules yet: create one below to back up on a timetable with retention.").into_any() } else { view! {
                    <table>
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"When"</th><th scope="col">"Namespaces"</th><th scope="col">"Retention"</th><th scope="col">"Last run"</th><th scope="col">"Next runs"</th><th scope="col">"Actions"</th></tr></thead>
                        <tbody>{rows.into_iter().map(|s| {
                            let n = text(&s["name"]);
                            let paused = s["paused"] == true;
                            let (n1, n2) = (n.clone(), n.clone());
                            let row = s.clone();
                            view! {
                                <tr>
                                    <th scope="row">{n.clone()} {paused.then(|| badge("paused"))}</th>
                                    <td><code>{text(&s["schedule"])}</code> " " {text(&s["timezone"])}</td>
                                    <td>{let ns = items(&s["template"]["includedNamespaces"]); if ns.is_empty() { "all".to_string() } else { ns.iter().map(text).collect::<Vec<_>>().join(", ") }}</td>
                                    <td>{format!("keep {} · ttl {}", s["retention"]["keepLast"].as_i64().map_or("all".into(), |k| k.to_string()), s["retention"]["ttl"].as_str().unwrap_or("none"))}</td>
                                    <td>{time(&s["lastRunAt"])}</td>
                                    <td><ul class="plain small">{items(&s["nextRuns"]).iter().take(3).map(|t| view! { <li>{time(t)}</li> }).collect_view()}</ul></td>
                                    <td class="row-actions">
                                        {if paused {
                                            view! { <button type="button" on:click=move |_| act(format!("/api/v1/schedules/{n1}/resume"), "POST")>"Resume"</button> }.into_any()
                                        } else {
                                            view! { <button type="button" on:click=move |_| act(format!("/api/v1/schedules/{n1}/pause"), "POST")>"Pause"</button> }.into_any()
                                        }}
                                        <button type="button" on:click=move |_| edit(row.clone())>"Edit"</button>
                                        <button type="button" class="danger" on:click=move |_| act(format!("/api/v1/schedules/{n2}"), "DELETE")>"Delete"</button>
                                    </td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table>
                }.into_any() }}
            }
            .into_any()
        }}
        <form class="panel" on:submit=create aria-labelledby="new-h">
            <h2 id="new-h">{move || match editing.get() { Some(n) => format!("Edit schedule {n}"), None => "New schedule".to_string() }}</h2>
            <label>"Name" <input name="name" required prop:disabled=move || editing.get().is_some() prop:value=move || name.get() on:input=move |ev| { name.set(event_target_value(&ev)); } /></label>
            <label>"Cron (five fields or @daily)" <input name="cron" required prop:value=move || cron.get() on:input=move |ev| { cron.set(event_target_value(&ev)); check(); } aria-describedby="cron-help" /></label>
            <label>"Time zone" <input name="timezone" prop:value=move || zone.get() on:input=move |ev| { zone.set(event_target_value(&ev)); check(); } /></label>
            <label>"Namespaces (comma-separated, empty for all)" <input name="namespaces" prop:value=move || namespaces.get() on:input=move |ev| namespaces.set(event_target_value(&ev)) /></label>
            {location_select(locations, location)}
            <label>"Keep the newest" <input name="keep" inputmode="numeric" prop:value=move || keep.get() on:input=move |ev| keep.set(event_target_value(&ev)) /></label>
            <label>"Delete after (e.g. 720h, 30d; empty: never)" <input name="ttl" prop:value=move || ttl.get() on:input=move |ev| ttl.set(event_target_value(&ev)) /></label>
            <div id="cron-help" class="preview" role="status" aria-live="polite">
                {move || match preview.get() {
                    Ok(runs) => view! { <p>"Next runs:"</p><ol>{runs.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ol> }.into_any(),
                    Err(e) if e.is_empty() => view! { <p>"Type a cron expression to see its next five runs."</p> }.into_any(),
                    Err(e) => view! { <p class="invalid">{e}</p> }.into_any(),
                }}
            </div>
            <button type="submit">{move || if editing.get().is_some() { "Save schedule" } else { "Create schedule" }}</button>
            {move || editing.get().is_some().then(|| view! { <button type="button" on:click=move |_| editing.set(None)>"Cancel editing"</button> })}
            <p role="status" aria-live="polite" class="status">{move || status.get()}</p>
        </form>
    }
}

// ------------------------------------------------------------------- restore

fn restore(page: RwSignal<PageData>) -> impl IntoView {
    let backups_list = data(page, "backups");
    let preselected = query(page, "backup").unwrap_or_else(|| {
        // From a namespace page: the newest completed backup covering it.
        let ns = query(page, "namespace");
        page.with_untracked(|p| {
            let list = items(&p.get("backups")["items"]);
            list.iter()
                .filter(|b| b["phase"] == "Completed" || b["phase"] == "PartiallyFailed")
                .find(|b| {
                    let inc = items(&b["spec"]["includedNamespaces"]);
                    ns.as_ref()
                        .is_some_and(|ns| inc.is_empty() || inc.iter().any(|n| n == ns.as_str()))
                })
                .map(|b| text(&b["name"]))
                .unwrap_or_default()
        })
    });
    let backup = RwSignal::new(preselected);
    let available = RwSignal::new(Vec::<String>::new());
    let chosen = RwSignal::new(
        query(page, "namespace")
            .into_iter()
            .collect::<Vec<String>>(),
    );
    let mapping = RwSignal::new(std::collections::BTreeMap::<String, String>::new());
    let policy = RwSignal::new("skip".to_string());
    let resources = RwSignal::new(String::new());
    let plan = RwSignal::new(None::<Value>);
    let run = RwSignal::new(None::<Value>);
    let status = RwSignal::new(String::new());
    let load_namespaces = move || {
        let b = backup.get_untracked();
        if b.is_empty() {
            return;
        }
        api::spawn(async move {
            match api::request("GET", &format!("/api/v1/backups/{b}/contents"), None).await {
                Ok(v) => {
                    let mut found: Vec<String> = v["resources"]
                        .as_object()
                        .map(|r| {
                            r.values()
                                .filter_map(|by_ns| by_ns.as_object())
                                .flat_map(|o| o.keys().cloned())
                                .filter(|k| k != "(cluster)")
                                .collect()
                        })
                        .unwrap_or_default();
                    found.sort();
                    found.dedup();
                    available.set(found);
                }
                Err(e) => status.set(e),
            }
        });
    };
    let spec = move |dry_run: bool| {
        let map: serde_json::Map<String, Value> = mapping
            .get_untracked()
            .into_iter()
            .filter(|(from, to)| !to.trim().is_empty() && to.trim() != from)
            .map(|(f, t)| (f, Value::String(t.trim().to_string())))
            .collect();
        let included_resources: Vec<String> = resources
            .get_untracked()
            .split(',')
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect();
        json!({"spec": {"backupName": backup.get_untracked(), "includedNamespaces": chosen.get_untracked(),
                        "includedResources": included_resources,
                        "namespaceMapping": map, "existingResourcePolicy": policy.get_untracked(), "dryRun": dry_run}})
    };
    // Polls a restore until it leaves New/InProgress, showing it as it goes.
    let follow = move |name: String, into: RwSignal<Option<Value>>| async move {
        loop {
            match api::request("GET", &format!("/api/v1/restores/{name}"), None).await {
                Ok(v) => {
                    let phase = v["phase"].as_str().unwrap_or_default().to_string();
                    into.set(Some(v));
                    if !matches!(phase.as_str(), "New" | "InProgress") {
                        break;
                    }
                }
                Err(e) => {
                    status.set(e);
                    break;
                }
            }
            sleep_ms(400).await;
        }
    };
    let make_plan = move |_| {
        status.set("Planning…".into());
        run.set(None);
        api::spawn(async move {
            match api::request("POST", "/api/v1/restores", Some(spec(true))).await {
                Ok(v) => {
                    status.set(String::new());
                    follow(text(&v["name"]), plan).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let start = move |_| {
        status.set("Restoring…".into());
        api::spawn(async move {
            match api::request("POST", "/api/v1/restores", Some(spec(false))).await {
                Ok(v) => {
                    status.set(String::new());
                    follow(text(&v["name"]), run).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let backup_names = move || {
        items(&backups_list()["items"])
            .into_iter()
            .filter(|b| b["phase"] == "Completed" || b["phase"] == "PartiallyFailed")
            .map(|b| (text(&b["name"]), time(&b["completedAt"])))
            .collect::<Vec<_>>()
    };
    view! {
        <h1>"Restore"</h1>
        <noscript><p class="note">"The restore wizard needs JavaScript; the CLI does the same: lifeboat restore create --from-backup NAME."</p></noscript>
        <ol class="steps">
            <li>
                <h2>"1. Choose a backup"</h2>
                {move || if backup_names().is_empty() { Some(empty("No completed backups to restore from. Back up first.")) } else { None }}
                <label>"Backup "
                    <select name="backup" on:change=move |ev| { backup.set(event_target_value(&ev)); chosen.set(Vec::new()); plan.set(None); load_namespaces(); }>
                        <option value="" selected=move || backup.get().is_empty()>"— choose —"</option>
                        {move || backup_names().into_iter().map(|(n, at)| {
                            let selected = backup.get_untracked() == n;
                            view! { <option value=n.clone() selected=selected>{format!("{n} ({at})")}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <button type="button" on:click=move |_| load_namespaces()>"Show its namespaces"</button>
            </li>
            <li>
                <h2>"2. Namespaces, resources, mapping and conflicts"</h2>
                {move || {
                    let ns = available.get();
                    if ns.is_empty() {
                        return view! { <p class="empty">"Choose a backup, then “Show its namespaces”."</p> }.into_any();
                    }
                    ns.into_iter().map(|n| {
                        let (n1, n2, n3) = (n.clone(), n.clone(), n.clone());
                        view! {
                            <fieldset class="ns-row">
                                <legend>{n.clone()}</legend>
                                <label><input type="checkbox" name="namespace" value=n.clone()
                                    prop:checked=move || chosen.get().contains(&n1)
                                    on:change=move |ev| { let on = event_target_checked(&ev); let n = n2.clone(); chosen.update(|c| { c.retain(|x| *x != n); if on { c.push(n); } }); } />
                                    " restore"</label>
                                <label>" as namespace " <input name=format!("map-{n}") placeholder=n.clone() on:input=move |ev| { let v = event_target_value(&ev); let n = n3.clone(); mapping.update(|m| { m.insert(n, v); }); } /></label>
                            </fieldset>
                        }
                    }).collect_view().into_any()
                }}
                <label>"Only these resources (comma-separated, e.g. deployments.apps,configmaps; empty for all) "
                    <input name="resources" prop:value=move || resources.get() on:input=move |ev| resources.set(event_target_value(&ev)) />
                </label>
                <label>"If an object already exists "
                    <select name="policy" on:change=move |ev| policy.set(event_target_value(&ev))>
                        <option value="skip">"skip it (keep what is there)"</option>
                        <option value="update">"update it to the backup's version"</option>
                    </select>
                </label>
            </li>
            <li>
                <h2>"3. Review the plan"</h2>
                <button type="button" on:click=make_plan prop:disabled=move || backup.get().is_empty()>"Show the plan"</button>
                {move || plan.get().map(plan_view)}
            </li>
            <li>
                <h2>"4. Restore"</h2>
                <button type="button" class="primary" on:click=start prop:disabled=move || plan.get().is_none_or(|p| p["phase"] != "Planned")>"Restore now"</button>
                {move || run.get().map(progress_view)}
            </li>
        </ol>
        <p role="status" aria-live="polite" class="status">{move || status.get()}</p>
    }
}

async fn sleep_ms(ms: u32) {
    #[cfg(feature = "hydrate")]
    {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(w) = web_sys::window() {
                let _ =
                    w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ms;
}

fn plan_view(r: Value) -> impl IntoView {
    let actions = r["plan"]["summary"]["actions"].clone();
    let count = |a: &str| actions[a].as_u64().unwrap_or(0);
    let plan_items = items(&r["plan"]["items"]);
    view! {
        <div class="plan" data-phase=text(&r["phase"])>
            <p>{badge(r["phase"].as_str().unwrap_or_default())} " " {note(&r["phaseReason"])}</p>
            <ul class="counts">
                <li><strong>{count("create")}</strong>" to create"</li>
                <li><strong>{count("skip")}</strong>" to skip"</li>
                <li><strong>{count("conflict")}</strong>" in conflict"</li>
                <li><strong>{count("update")}</strong>" to update"</li>
                <li><strong>{count("excluded")}</strong>" excluded"</li>
            </ul>
            <details><summary>"Every item"</summary>
                <table>
                    <thead><tr><th scope="col">"Action"</th><th scope="col">"Resource"</th><th scope="col">"Namespace"</th><th scope="col">"Name"</th><th scope="col">"Why / diff"</th></tr></thead>
                    <tbody>{plan_items.into_iter().map(|i| view! {
                        <tr><td>{text(&i["action"])}</td><td>{text(&i["groupResource"])}</td><td>{text(&i["namespace"])}</td><td>{text(&i["name"])}</td>
                            <td>{text(&i["reason"])}{(!items(&i["diff"]).is_empty()).then(|| view! { <pre class="diff">{items(&i["diff"]).iter().map(text).collect::<Vec<_>>().join("\n")}</pre> })}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            </details>
        </div>
    }
}

/// A running or finished restore: counts, then every item it creates or
/// updates with its result as it lands ("waiting" until then).
fn progress_view(r: Value) -> impl IntoView {
    const SHOWN: usize = 500;
    let done = r["itemsDone"].as_u64().unwrap_or(0);
    let total = r["itemsTotal"].as_u64().unwrap_or(0);
    let results = r["plan"]["summary"]["results"].clone();
    let lines: Vec<Value> = items(&r["plan"]["items"])
        .into_iter()
        .filter(|i| matches!(i["action"].as_str(), Some("create" | "update")))
        .collect();
    let more = lines.len().saturating_sub(SHOWN);
    let name = text(&r["name"]);
    view! {
        <div class="run" data-phase=text(&r["phase"])>
            <p role="status" aria-live="polite">{badge(r["phase"].as_str().unwrap_or_default())} {format!(" {done} of {total} items")} " " {note(&r["phaseReason"])}</p>
            <progress max=total.max(1).to_string() value=done.to_string() aria-label="Restore progress"></progress>
            <p>{results.as_object().map(|o| o.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(" · ")).unwrap_or_default()}</p>
            <table class="items">
                <caption>"Items, in the order they are restored"</caption>
                <thead><tr><th scope="col">"Result"</th><th scope="col">"Resource"</th><th scope="col">"Namespace"</th><th scope="col">"Name"</th><th scope="col">"Message"</th></tr></thead>
                <tbody>{lines.into_iter().take(SHOWN).map(|i| {
                    let result = i["result"].as_str().unwrap_or("waiting").to_string();
                    view! {
                        <tr data-result=result.clone()><td>{badge(&result)}</td><td>{text(&i["groupResource"])}</td><td>{text(&i["namespace"])}</td><td>{text(&i["name"])}</td><td>{text(&i["message"])}</td></tr>
                    }
                }).collect_view()}</tbody>
            </table>
            {(more > 0).then(|| view! { <p class="note">{format!("…and {more} more: ")}<a href=format!("/api/v1/restores/{name}/log")>"the whole log"</a></p> })}
        </div>
    }
}

// ------------------------------------------------------ storage and activity

fn storage(page: RwSignal<PageData>) -> impl IntoView {
    let locations = data(page, "locations");
    let backups = data(page, "backups");
    let status = RwSignal::new(String::new());
    let removing = RwSignal::new(None::<String>);
    let test = move |name: String| {
        status.set(format!("Testing {name}…"));
        api::spawn(async move {
            match api::request(
                "POST",
                &format!("/api/v1/storage-locations/{name}/check"),
                None,
            )
            .await
            {
                Ok(v) => {
                    status.set(format!("{name} is {}", text(&v["availability"])));
                    api::refresh(page).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let remove = move |name: String| {
        removing.set(None);
        status.set(format!("Removing {name}…"));
        api::spawn(async move {
            match api::request("DELETE", &format!("/api/v1/storage-locations/{name}"), None).await {
                Ok(_) => {
                    status.set(format!(
                        "{name} removed; its backups stay in its bucket or directory"
                    ));
                    api::refresh(page).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    view! {
        <h1>"Storage locations"</h1>
        <p class="note">"Backups are written to " <code>"default"</code> " (set in the configuration: " <code>"storage.*"</code> ") unless they name another location. Adding a location that already holds Lifeboat backups lists them here."</p>
        {move || {
            let v = locations();
            if let Some(e) = api_error(&v) {
                return e.into_any();
            }
            view! {
                <table>
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Kind"</th><th scope="col">"Where"</th><th scope="col">"Availability"</th><th scope="col">"Checked"</th><th scope="col">"Backups"</th><th scope="col">"Used"</th><th scope="col">"Actions"</th></tr></thead>
                    <tbody>{items(&v["items"]).into_iter().map(|l| {
                        let name = text(&l["name"]);
                        let c = &l["config"];
                        let place = match c["path"].as_str() {
                            Some(path) => path.to_string(),
                            None => format!("s3://{}/{} {}", text(&c["bucket"]), text(&c["prefix"]), text(&c["endpoint"])),
                        };
                        let (n1, n2, n3) = (name.clone(), name.clone(), name.clone());
                        let is_default = l["isDefault"].as_i64() == Some(1);
                        view! {
                            <tr data-location=name.clone()>
                                <th scope="row">{name.clone()}{is_default.then_some(" (default)")}</th>
                                <td>{text(&l["kind"])}</td>
                                <td><code>{place}</code></td>
                                <td>{badge(l["availability"].as_str().unwrap_or_default())} " " {note(&l["availabilityReason"])}</td>
                                <td>{time(&l["checkedAt"])}</td>
                                <td>{text(&l["backups"])}</td>
                                <td>{bytes(&l["usedBytes"])}</td>
                                <td>
                                    <button type="button" on:click=move |_| test(n1.clone()) aria-label=format!("Test {name}")>"Test"</button>
                                    {(!is_default).then(|| view! {
                                        <button type="button" class="danger" on:click=move |_| removing.set(Some(n2.clone()))>"Remove…"</button>
                                    })}
                                    {move || (removing.get().as_deref() == Some(n3.as_str())).then(|| {
                                        let n = n3.clone();
                                        view! {
                                            <div class="confirm" role="alertdialog" aria-label=format!("Remove {n}")>
                                                <p>{format!("Lifeboat will stop listing the backups in {n}; nothing in the bucket or directory is deleted.")}</p>
                                                <button type="button" class="danger" on:click={let n = n.clone(); move |_| remove(n.clone())}>{format!("Remove {n}")}</button>
                                                <button type="button" on:click=move |_| removing.set(None)>"Keep it"</button>
                                            </div>
                                        }
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table>
            }
            .into_any()
        }}
        <p role="status" aria-live="polite" class="status">{move || status.get()}</p>
        {add_location(page)}
        <h2>"Storage used over time"</h2>
        {move || {
            let all = items(&backups()["items"]);
            let names: Vec<String> = items(&locations()["items"]).iter().map(|l| text(&l["name"])).collect();
            let charts: Vec<_> = names.into_iter().filter_map(|n| {
                let mine: Vec<Value> = all.iter().filter(|b| b["storageLocation"] == n.as_str()).cloned().collect();
                (!mine.is_empty()).then(|| view! { <h3>{n}</h3> {charts::storage_growth(&mine)} })
            }).collect();
            if charts.is_empty() {
                return empty("No backups yet: the chart shows each location's growth once there are some.").into_any();
            }
            charts.collect_view().into_any()
        }}
    }
}

/// The form that adds a local or S3 location; the server checks it before saving.
fn add_location(page: RwSignal<PageData>) -> impl IntoView {
    let kind = RwSignal::new("s3".to_string());
    let status = RwSignal::new(String::new());
    // The form's text fields: `name`, then `path` (local), then the S3 ones.
    const FIELDS: [&str; 8] = [
        "name",
        "path",
        "endpoint",
        "region",
        "bucket",
        "prefix",
        "accessKeyId",
        "secretAccessKey",
    ];
    let fields = FIELDS.map(|_| RwSignal::new(String::new()));
    let field = move |name: &str| {
        let i = FIELDS.iter().position(|f| *f == name);
        fields[i.expect("one of FIELDS")]
    };
    let path_style = RwSignal::new(true);
    let value = move |name: &str| field(name).get_untracked().trim().to_string();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let k = kind.get_untracked();
        let mut body = json!({"name": value("name"), "kind": k});
        let wanted = if k == "local" {
            &FIELDS[1..2]
        } else {
            &FIELDS[2..]
        };
        for f in wanted {
            let v = value(f);
            if !v.is_empty() {
                body[*f] = Value::String(v);
            }
        }
        if k == "s3" {
            body["pathStyle"] = Value::Bool(path_style.get_untracked());
        }
        let name = value("name");
        status.set(format!("Checking {name} (list, write, delete)…"));
        api::spawn(async move {
            match api::request("POST", "/api/v1/storage-locations", Some(body)).await {
                Ok(v) => {
                    let imported = items(&v["imported"]).len();
                    status.set(format!("Added {name}: available; {imported} backup(s) already in it are now listed."));
                    for f in fields {
                        f.set(String::new());
                    }
                    api::refresh(page).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let input = move |name: &'static str, label: &'static str, hint: &'static str, secret: bool| {
        let signal = field(name);
        view! {
            <label>{label} " " <input name=name placeholder=hint type=if secret { "password" } else { "text" } autocomplete="off"
                prop:value=move || signal.get() on:input=move |ev| signal.set(event_target_value(&ev)) /></label>
        }
    };
    view! {
        <details class="panel">
            <summary>"Add a location"</summary>
            <form on:submit=submit class="add-location">
                {input("name", "Name", "offsite", false)}
                <fieldset>
                    <legend>"Kind"</legend>
                    <label><input type="radio" name="kind" value="s3" prop:checked=move || kind.get() == "s3" on:change=move |_| kind.set("s3".into()) />" S3-compatible bucket"</label>
                    <label><input type="radio" name="kind" value="local" prop:checked=move || kind.get() == "local" on:change=move |_| kind.set("local".into()) />" Directory on the server"</label>
                </fieldset>
                {move || if kind.get() == "local" {
                    input("path", "Directory (absolute)", "/var/lib/lifeboat/second", false).into_any()
                } else {
                    view! {
                        {input("endpoint", "Endpoint", "https://s3.example.com:9000 (empty for AWS)", false)}
                        {input("region", "Region", "us-east-1", false)}
                        {input("bucket", "Bucket", "lifeboat-backups", false)}
                        {input("prefix", "Prefix (optional)", "cluster-a", false)}
                        <label><input type="checkbox" name="pathStyle" prop:checked=move || path_style.get() on:change=move |ev| path_style.set(event_target_checked(&ev)) />" Path-style addressing (MinIO, Garage, Ceph)"</label>
                        {input("accessKeyId", "Access key id", "empty: the server's AWS credentials", false)}
                        {input("secretAccessKey", "Secret access key", "stored in the catalog, never shown again", true)}
                    }.into_any()
                }}
                <button type="submit" class="primary">"Check and add"</button>
                <p role="status" aria-live="polite" class="status">{move || status.get()}</p>
            </form>
        </details>
    }
}

fn activity(page: RwSignal<PageData>) -> impl IntoView {
    let list = data(page, "activity");
    view! {
        <h1>"Activity"</h1>
        {move || {
            let v = list();
            if let Some(e) = api_error(&v) {
                return e.into_any();
            }
            let rows = items(&v["items"]);
            if rows.is_empty() {
                return empty("Nothing has happened yet.").into_any();
            }
            view! {
                <table>
                    <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th><th scope="col">"Subject"</th><th scope="col">"Message"</th></tr></thead>
                    <tbody>{rows.into_iter().map(|a| view! {
                        <tr><td>{time(&a["at"])}</td><td>{text(&a["actor"])}</td><td>{text(&a["kind"])}</td><td>{text(&a["subject"])}</td><td>{text(&a["message"])}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            }
            .into_any()
        }}
    }
}
