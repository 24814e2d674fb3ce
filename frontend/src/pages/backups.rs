//! The backups list: history chart, filters, "Back up now".

use super::*;
use crate::model::{BackupSpec, BackupView, CreateBackup, Items};

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
            let body = CreateBackup {
                name: n.clone(),
                spec: BackupSpec {
                    included_namespaces: included,
                    storage_location: Some(at),
                    ..Default::default()
                },
                from_schedule: None,
            };
            match api::call::<BackupView>("POST", "/api/v1/backups", Some(&body)).await {
                Ok(_) => api::navigate(&format!("/backups/{n}")),
                Err(e) => status.set(e),
            }
        });
    };
    view! {
        <h1>"Backups"</h1>
        {move || charts::backup_history(&read::<Items<BackupView>>(&list()).map(|l| l.items).unwrap_or_default())}
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
            let list = match read::<Items<BackupView>>(&list()) {
                Ok(list) => list,
                Err(e) => return e,
            };
            let wanted = phase.get();
            let rows: Vec<BackupView> = list.items.into_iter().filter(|b| wanted.is_empty() || b.phase == wanted).collect();
            if rows.is_empty() {
                return empty("No backups yet. Start one above, from a namespace's page, or create a schedule.").into_any();
            }
            view! {
                <table>
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Phase"</th><th scope="col">"Created"</th><th scope="col">"Took"</th><th scope="col">"Items"</th><th scope="col">"Size"</th><th scope="col">"Schedule"</th><th scope="col">"Location"</th><th scope="col">"Expires"</th></tr></thead>
                    <tbody>{rows.into_iter().map(|b| {
                        let took = between(b.started_at.as_deref(), b.completed_at.as_deref()).map(duration).unwrap_or_else(|| "—".into());
                        let expires = b.expires_at.as_deref().map(|t| when(Some(t))).unwrap_or_else(|| "never".into());
                        view! {
                            <tr>
                                <th scope="row"><a href=format!("/backups/{}", b.name)>{b.name.clone()}</a></th>
                                <td>{badge(&b.phase)}</td>
                                <td>{when(Some(&b.created_at))}</td>
                                <td>{took}</td>
                                <td>{b.items_done}</td>
                                <td>{size(b.size_bytes)}</td>
                                <td>{b.schedule.unwrap_or_else(|| "—".into())}</td>
                                <td>{b.storage_location}</td>
                                <td>{expires}
                                    {b.locked_until.map(|t| view! { <br/><small class="note" data-locked="">{format!("locked until {}", when(Some(&t)))}</small> })}</td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table>
            }
            .into_any()
        }}
    }
}
