//! The activity log.

use super::*;

pub(super) fn activity(page: RwSignal<PageData>) -> impl IntoView {
    let list = data(page, "activity");
    let deliveries = data(page, "deliveries");
    view! {
        <h1>"Activity"</h1>
        {move || {
            let v = deliveries();
            let rows = items(&v["items"]);
            // Only administrators see deliveries; others see the log alone.
            (!rows.is_empty()).then(|| view! {
                <section aria-labelledby="deliveries-h">
                    <h2 id="deliveries-h">"Notifications sent"</h2>
                    <table>
                        <thead><tr><th scope="col">"When"</th><th scope="col">"Target"</th><th scope="col">"Event"</th><th scope="col">"State"</th><th scope="col">"Attempts"</th><th scope="col">"Message"</th></tr></thead>
                        <tbody>{rows.into_iter().map(|d| {
                            let state = text(&d["state"]);
                            let error = d["lastError"].as_str().map(|e| format!(" (last error: {e})")).unwrap_or_default();
                            view! {
                                <tr data-delivery=state.clone()>
                                    <td>{time(&d["createdAt"])}</td><td>{text(&d["target"])}</td><td>{text(&d["event"])}</td>
                                    <td>{badge(match state.as_str() { "delivered" => "created", "failed" => "failed", _ => "Pending" })} " " {state.clone()}</td>
                                    <td>{text(&d["attempts"])}</td><td>{text(&d["message"])}{error}</td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table>
                </section>
            })
        }}
        <h2>"Log"</h2>
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
