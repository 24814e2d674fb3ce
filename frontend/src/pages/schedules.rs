//! Schedules: the list and the form that checks the cron as you type.

use super::*;

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
        json!({"name": if n.is_empty() { "preview".to_string() } else { n }, "schedule": cron.get_untracked(), "timezone": zone.get_untracked(),
               "template": {"includedNamespaces": included, "storageLocation": location.get_untracked()}, "retention": {"keepLast": keep_last, "ttl": ttl}, "drill": drill.get_untracked()})
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
        drill.set(s["drill"] == true);
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
                                    <td>{format!("keep {} · ttl {}", s["retention"]["keepLast"].as_i64().map_or("all".into(), |k| k.to_string()), s["retention"]["ttl"].as_str().unwrap_or("none"))}
                                        {(s["drill"] == true).then(|| view! { <br/><small data-drilled="">"each backup drilled"</small> })}</td>
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
