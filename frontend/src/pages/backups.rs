//! The backups list: history chart, filters, "Back up now".

use super::*;

pub(super) fn backups(page: RwSignal<PageData>) -> impl IntoView {
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
                                <td>{b["expiresAt"].as_str().map(|_| time(&b["expiresAt"])).unwrap_or_else(|| "never".into())}
                                    {b["lockedUntil"].as_str().map(|_| view! { <br/><small class="note" data-locked="">{format!("locked until {}", time(&b["lockedUntil"]))}</small> })}</td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table>
            }
            .into_any()
        }}
    }
}
