//! Notifications: webhook targets (add, remove) and what was sent.

use super::*;
use crate::model::{Items, NotificationTargetView};

const EVENTS: [(&str, &str); 6] = [
    ("backup.failed", "a backup failed"),
    ("backup.recovered", "a schedule recovered after a failure"),
    ("restore.failed", "a restore failed"),
    ("drill.failed", "a restore drill failed"),
    ("drill.recovered", "a drill passed after a failed one"),
    ("schedule.missed", "a schedule missed its window"),
];

pub(super) fn notifications(page: RwSignal<PageData>) -> impl IntoView {
    let targets = data(page, "targets");
    let status = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let kind = RwSignal::new("webhook".to_string());
    let chosen = EVENTS.map(|_| RwSignal::new(true));
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let events: Vec<&str> = EVENTS
            .iter()
            .zip(chosen)
            .filter(|(_, on)| on.get_untracked())
            .map(|((e, _), _)| *e)
            .collect();
        let n = name.get_untracked();
        let body = json!({"name": n, "kind": kind.get_untracked(), "url": url.get_untracked(), "events": events});
        api::spawn(async move {
            match api::request("POST", "/api/v1/notification-targets", Some(body)).await {
                Ok(_) => {
                    status.set(format!(
                        "Added {n}: it is told of what it asked for from now on."
                    ));
                    name.set(String::new());
                    url.set(String::new());
                    api::refresh(page).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let remove = move |n: String| {
        api::spawn(async move {
            match api::request("DELETE", &format!("/api/v1/notification-targets/{n}"), None).await {
                Ok(_) => status.set(format!("Removed {n}.")),
                Err(e) => status.set(e),
            }
            api::refresh(page).await;
        });
    };
    view! {
        <h1>"Notifications"</h1>
        <p class="note">"Webhooks told when something needs a person; what was sent, and whether it arrived, is on the " <a href="/activity">"Activity"</a> " page."</p>
        {move || {
            let rows = match read::<Items<NotificationTargetView>>(&targets()) {
                Ok(list) => list.items,
                Err(e) => return e,
            };
            if rows.is_empty() {
                return empty("No targets yet: add a webhook below to hear of failed backups, restores and drills.").into_any();
            }
            view! {
                <table>
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Kind"</th><th scope="col">"Sends to"</th><th scope="col">"Events"</th><th scope="col">"Actions"</th></tr></thead>
                    <tbody>{rows.into_iter().map(|t| {
                        let n = t.name.clone();
                        let gone = n.clone();
                        view! {
                            <tr data-target=n.clone()>
                                <th scope="row">{n.clone()}</th>
                                <td>{t.kind}</td>
                                <td><code>{t.url}</code></td>
                                <td>{t.events.join(", ")}</td>
                                <td><button type="button" class="danger" aria-label=format!("Remove {n}") on:click=move |_| remove(gone.clone())>"Remove"</button></td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table>
            }
            .into_any()
        }}
        <p role="status" aria-live="polite" class="status">{move || status.get()}</p>
        <details class="panel">
            <summary>"Add a target"</summary>
            <form on:submit=add class="add-target">
                <label>"Name " <input name="name" required prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                <label>"Kind " <select name="kind" prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                    <option value="webhook">"Webhook (JSON)"</option>
                    <option value="slack">"Slack-compatible"</option>
                </select></label>
                <label>"URL (kept secret, never shown again) " <input name="url" type="password" autocomplete="off" required prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) /></label>
                <fieldset>
                    <legend>"Tell it when"</legend>
                    {EVENTS.iter().zip(chosen).map(|((event, label), on)| view! {
                        <label><input type="checkbox" name=*event prop:checked=move || on.get() on:change=move |ev| on.set(event_target_checked(&ev)) />" " {*label}</label>
                    }).collect_view()}
                </fieldset>
                <button type="submit" class="primary">"Add target"</button>
            </form>
        </details>
    }
}
