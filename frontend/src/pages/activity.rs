//! The activity log.

use super::*;
use crate::model::{ActivityView, DeliveryView, Items};

pub(super) fn activity(page: RwSignal<PageData>) -> impl IntoView {
    let list = data(page, "activity");
    let deliveries = data(page, "deliveries");
    view! {
        <h1>"Activity"</h1>
        {move || {
            let rows = read::<Items<DeliveryView>>(&deliveries()).map(|l| l.items).unwrap_or_default();
            // Only administrators see deliveries; others see the log alone.
            (!rows.is_empty()).then(|| view! {
                <section aria-labelledby="deliveries-h">
                    <h2 id="deliveries-h">"Notifications sent"</h2>
                    <table>
                        <thead><tr><th scope="col">"When"</th><th scope="col">"Target"</th><th scope="col">"Event"</th><th scope="col">"State"</th><th scope="col">"Attempts"</th><th scope="col">"Message"</th></tr></thead>
                        <tbody>{rows.into_iter().map(|d| {
                            let state = d.state.clone();
                            let error = d.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default();
                            view! {
                                <tr data-delivery=state.clone()>
                                    <td>{when(Some(&d.created_at))}</td><td>{d.target}</td><td>{d.event}</td>
                                    <td>{badge(match state.as_str() { "delivered" => "created", "failed" => "failed", _ => "Pending" })} " " {state.clone()}</td>
                                    <td>{d.attempts}</td><td>{d.message}{error}</td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table>
                </section>
            })
        }}
        <h2>"Log"</h2>
        {move || {
            let rows = match read::<Items<ActivityView>>(&list()) {
                Ok(list) => list.items,
                Err(e) => return e,
            };
            if rows.is_empty() {
                return empty("Nothing has happened yet.").into_any();
            }
            view! {
                <table>
                    <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th><th scope="col">"Subject"</th><th scope="col">"Message"</th></tr></thead>
                    <tbody>{rows.into_iter().map(|a| view! {
                        <tr><td>{when(Some(&a.at))}</td><td>{a.actor}</td><td>{a.kind}</td><td>{a.subject}</td><td>{a.message}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            }
            .into_any()
        }}
    }
}
