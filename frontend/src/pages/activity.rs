//! The activity log.

use super::*;

pub(super) fn activity(page: RwSignal<PageData>) -> impl IntoView {
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
