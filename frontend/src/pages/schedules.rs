//! Schedules: the list and the form that checks the cron as you type.

use super::*;
use crate::model::{
    BackupSpec, Retention, ScheduleList, SchedulePreview, ScheduleSpec, ScheduleView,
};

pub(super) fn schedules(page: RwSignal<PageData>) -> impl IntoView {
    let list = data(page, "schedules");
    let locations = data(page, "locations");
    let location = RwSignal::new("default".to_string());
    let name = RwSignal::new(String::new());
    let cron = RwSignal::new("0 1 * * *".to_string());
    let zone = RwSignal::new("UTC".to_string());
    let namespaces = RwSignal::new(String::new());
    let keep = RwSignal::new("7".to_string());
    let ttl = RwSignal::new(String::new());
    let drill = RwSignal::new(false);
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
        ScheduleSpec {
            name: if n.is_empty() {
                "preview".to_string()
            } else {
                n
            },
            schedule: cron.get_untracked(),
            timezone: zone.get_untracked(),
            template: BackupSpec {
                included_namespaces: included,
                storage_location: Some(location.get_untracked()),
                ..Default::default()
            },
            retention: Retention { keep_last, ttl },
            paused: false,
            drill: drill.get_untracked(),
            continuous: false,
        }
    };
    let check = move || {
        api::spawn(async move {
            let result: Result<SchedulePreview, String> =
                api::call("POST", "/api/v1/schedules/preview", Some(&body())).await;
            preview.set(result.map(|p| p.next_runs.iter().map(|t| when(Some(t))).collect()));
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
            match api::call::<ScheduleView>(method, &path, Some(&body())).await {
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
    let edit = move |s: ScheduleView| {
        let template = s.template.unwrap_or_default();
        let retention = s.retention.unwrap_or_default();
        name.set(s.name.clone());
        cron.set(s.schedule);
        zone.set(s.timezone);
        location.set(template.storage_location().to_string());
        namespaces.set(template.included_namespaces.join(", "));
        drill.set(s.drill);
        keep.set(
            retention
                .keep_last
                .map(|k| k.to_string())
                .unwrap_or_default(),
        );
        ttl.set(retention.ttl.unwrap_or_default());
        editing.set(Some(s.name));
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
            let list = match read::<ScheduleList>(&list()) {
                Ok(list) => list,
                Err(e) => return e,
            };
            let runner = list.runner;
            let rows = list.items;
            view! {
                <p class="note">{match runner.mode.as_str() {
                    "lease" => format!("Runs on the replica holding the Lease {} (now: {}).", runner.lease.unwrap_or_default(), runner.holder.unwrap_or_default()),
                    "none" => runner.detail.unwrap_or_default(),
                    _ => "This server runs the schedules.".to_string(),
                }}</p>
                {if rows.is_empty() { empty("No schedules yet: create one below to back up on a timetable with retention.").into_any() } else { view! {
                    <table>
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"When"</th><th scope="col">"Namespaces"</th><th scope="col">"Retention"</th><th scope="col">"Last run"</th><th scope="col">"Next runs"</th><th scope="col">"Actions"</th></tr></thead>
                        <tbody>{rows.into_iter().map(|s| {
                            let n = s.name.clone();
                            let paused = s.paused;
                            let (n1, n2) = (n.clone(), n.clone());
                            let row = s.clone();
                            let template = s.template.unwrap_or_default();
                            let retention = s.retention.unwrap_or_default();
                            view! {
                                <tr>
                                    <th scope="row">{n.clone()} {paused.then(|| badge("paused"))}</th>
                                    <td><code>{s.schedule}</code> " " {s.timezone}</td>
                                    <td>{if template.included_namespaces.is_empty() { "all".to_string() } else { template.included_namespaces.join(", ") }}</td>
                                    <td>{format!("keep {} · ttl {}", retention.keep_last.map_or("all".into(), |k| k.to_string()), retention.ttl.as_deref().unwrap_or("none"))}
                                        {s.drill.then(|| view! { <br/><small data-drilled="">"each backup drilled"</small> })}</td>
                                    <td>{when(s.last_run_at.as_deref())}</td>
                                    <td><ul class="plain small">{s.next_runs.iter().take(3).map(|t| view! { <li>{when(Some(t))}</li> }).collect_view()}</ul></td>
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
            <label><input type="checkbox" name="drill" prop:checked=move || drill.get() on:change=move |ev| drill.set(event_target_checked(&ev)) />" Drill each backup: restore it into scratch namespaces, wait for its workloads, delete them again"</label>
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
