//! Lifeboat's web UI.
//!
//! Built twice: with `ssr` the server renders pages to HTML; with `hydrate`
//! the same components are compiled to wasm and take over in the browser.
//! The dashboard itself is its own piece of work; for now there is one page,
//! which states honestly what this build of Lifeboat can and cannot do yet.

use leptos::prelude::*;

/// What the server knows when it renders the landing page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LandingInfo {
    pub version: String,
    /// One line per component: ("catalog", "ready"), ("cluster", "unavailable: …").
    pub components: Vec<(String, String)>,
}

/// The landing page: version, readiness of each component, and where the API lives.
#[component]
pub fn Landing(info: LandingInfo) -> impl IntoView {
    let rows = info
        .components
        .into_iter()
        .map(|(name, state)| {
            let ok = state == "ready";
            view! {
                <tr>
                    <th scope="row">{name}</th>
                    <td class=if ok { "ok" } else { "bad" }>{state}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <main>
            <h1>{format!("Lifeboat {}", info.version)}</h1>
            <p>
                "Kubernetes backup, disaster recovery and cluster health. "
                "The dashboard is not built yet; the JSON API and the CLI are the way in for now."
            </p>
            <table>
                <caption>"Components"</caption>
                <tbody>{rows}</tbody>
            </table>
            <p>
                "Machine-readable status: " <a href="/readyz">"/readyz"</a> ", liveness: "
                <a href="/healthz">"/healthz"</a>
            </p>
        </main>
    }
}

/// Renders a whole HTML document around [`Landing`].
#[cfg(feature = "ssr")]
pub fn render_landing(info: LandingInfo) -> String {
    let body = view! { <Landing info=info /> }.to_html();
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Lifeboat</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
}

#[cfg(feature = "ssr")]
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:48rem;\
padding:0 1rem;color:#1b1f24;background:#fff}table{border-collapse:collapse}\
th,td{padding:.3rem .8rem;text-align:left;border-bottom:1px solid #d0d7de}\
.ok{color:#116329}.bad{color:#a40e26}";

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn landing_lists_every_component_with_its_state() {
        let html = render_landing(LandingInfo {
            version: "9.9.9".into(),
            components: vec![
                ("catalog".into(), "ready".into()),
                ("cluster".into(), "unavailable: no kubeconfig".into()),
            ],
        });
        assert!(html.contains("<h1>Lifeboat 9.9.9</h1>"), "{html}");
        assert!(html.contains("unavailable: no kubeconfig"));
        assert!(html.contains("class=\"bad\""));
        assert!(html.contains("class=\"ok\""));
    }
}
