//! Lifeboat's web UI.
//!
//! Built twice: with `ssr` the server renders each page to HTML (through
//! `leptos_axum`), with `hydrate` the same components are compiled to wasm and
//! take over in the browser. The server fetches what a page shows from its own
//! JSON API and hands it over as [`PageData`] (also embedded in the page as
//! JSON, so the browser hydrates from exactly the same data). In the browser
//! the page then follows `/api/v1/stream` and refetches its API sources when
//! something changes: the UI only ever reads the public API.

#![recursion_limit = "256"]

// The server renders what the browser hydrates: both must be built with
// Leptos's type-erased components, or hydration fails in the browser. The
// cfg comes from .cargo/config.toml, which RUSTFLAGS in the environment
// replaces.
#[cfg(not(erase_components))]
compile_error!(
    "build with `--cfg erase_components` (set in .cargo/config.toml; add it to RUSTFLAGS when you set that)"
);

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod api;
mod charts;
pub mod model;
mod pages;
mod widgets;

/// Everything a page shows, as fetched from the JSON API by the server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PageData {
    /// `overview`, `namespaces`, `namespace`, `backups`, `backup`, `schedules`,
    /// `restore`, `storage`, `activity`, `not-found`.
    pub page: String,
    pub title: String,
    /// The namespace or backup the page is about.
    pub param: Option<String>,
    /// The request's query parameters (the restore wizard's preselection).
    pub query: BTreeMap<String, String>,
    /// Name → API path the data came from (refetched on live changes).
    pub sources: BTreeMap<String, String>,
    /// Name → the API's answer (or `{"error": "...", "status": N}`).
    pub data: BTreeMap<String, Value>,
    pub version: String,
    /// Who is reading (every page is behind sign-in).
    pub user: Option<SignedIn>,
}

/// The signed-in reader of a page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SignedIn {
    pub username: String,
    /// The session's CSRF token, sent with every state-changing request
    /// (none when the page was read with a bearer token).
    pub csrf: Option<String>,
}

impl PageData {
    /// The answer of source `name` (Null when absent).
    pub fn get(&self, name: &str) -> Value {
        self.data.get(name).cloned().unwrap_or(Value::Null)
    }
}

/// Whether the page follows the live stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Live {
    /// Server-rendered; the browser has not taken over (yet, or without JavaScript).
    Static,
    Connected,
    Reconnecting,
}

const NAV: &[(&str, &str, &str)] = &[
    ("/", "overview", "Overview"),
    ("/namespaces", "namespaces", "Namespaces"),
    ("/backups", "backups", "Backups"),
    ("/schedules", "schedules", "Schedules"),
    ("/restore", "restore", "Restore"),
    ("/storage", "storage", "Storage"),
    ("/activity", "activity", "Activity"),
    ("/notifications", "notifications", "Notifications"),
];

/// The application: header, navigation, the live indicator and the page.
#[component]
pub fn App(data: PageData) -> impl IntoView {
    let current = data.page.clone();
    let version = data.version.clone();
    let user = data.user.clone();
    api::set_csrf(user.as_ref().and_then(|u| u.csrf.clone()));
    let account = user.map(|u| {
        let sign_out = u.csrf.map(|csrf| {
            view! {
                <form method="post" action="/logout" class="sign-out">
                    <input type="hidden" name="csrf" value=csrf />
                    <button type="submit" class="link">"Sign out"</button>
                </form>
            }
        });
        view! { <span class="account" title="Signed in as">{u.username}</span> {sign_out} }
    });
    let page = RwSignal::new(data);
    let live = RwSignal::new(Live::Static);
    api::follow(page, live);
    let nav = NAV
        .iter()
        .map(|(href, key, label)| {
            let here = current == *key
                || (current == "namespace" && *key == "namespaces")
                || (current == "backup" && *key == "backups");
            view! {
                <a href=*href aria-current=if here { Some("page") } else { None }>{*label}</a>
            }
        })
        .collect_view();
    let indicator = move || match live.get() {
        Live::Static => ("live static", "Snapshot"),
        Live::Connected => ("live on", "Live"),
        Live::Reconnecting => ("live off", "Reconnecting…"),
    };
    view! {
        <a class="skip" href="#main">"Skip to content"</a>
        <header class="top">
            <a class="brand" href="/">"Lifeboat"</a>
            <nav aria-label="Main">{nav}</nav>
            <span
                class=move || indicator().0
                role="status"
                aria-live="polite"
                title="Updates arrive over the live stream"
            >
                {move || indicator().1}
            </span>
            {account}
        </header>
        <main id="main" tabindex="-1">{pages::page(&current, page)}</main>
        <footer class="foot">{format!("Lifeboat {version}")} " · " <a href="/api/v1/cluster/summary">"JSON API"</a> " · " <a href="/readyz">"readiness"</a></footer>
    }
}

/// Escapes JSON for a `<script type="application/json">` element.
pub fn script_json(data: &PageData) -> String {
    serde_json::to_string(data)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The whole HTML document around [`App`]: the data it was rendered from,
/// the stylesheet, and the scripts that load the wasm and hydrate.
#[cfg(feature = "ssr")]
pub fn shell(options: leptos::config::LeptosOptions, data: PageData) -> impl IntoView {
    use leptos::hydration::HydrationScripts;
    let title = format!("{} · Lifeboat", data.title);
    let json = script_json(&data);
    // Inlined (under the page's nonce): the first paint waits on no other request.
    let nonce = leptos::nonce::use_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <title>{title}</title>
                <style nonce=nonce inner_html=STYLESHEET></style>
                <link rel="icon" href="data:," />
                <script id="page-data" type="application/json" inner_html=json></script>
                <HydrationScripts options />
            </head>
            <body>
                <App data />
            </body>
        </html>
    }
}

/// The stylesheet: inlined in every page, and served at `/assets/lifeboat.css`.
pub const STYLESHEET: &str = include_str!("../style/lifeboat.css");

/// The browser's entry point: read the page's data and hydrate.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let data: PageData = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("page-data"))
        .and_then(|e| e.text_content())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    leptos::mount::hydrate_body(move || view! { <App data /> });
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn page_data_survives_the_script_element() {
        let mut data = PageData {
            page: "backup".into(),
            title: "</script><script>alert(1)</script>".into(),
            ..Default::default()
        };
        data.data
            .insert("x".into(), serde_json::json!({"a": "b & c < d"}));
        let embedded = script_json(&data);
        assert!(!embedded.contains("</script>") && !embedded.contains('<'));
        let back: PageData = serde_json::from_str(&embedded).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn the_overview_renders_health_nodes_and_namespaces_without_javascript() {
        let mut data = PageData {
            page: "overview".into(),
            title: "Overview".into(),
            version: "9.9.9".into(),
            ..Default::default()
        };
        use crate::model::{
            ClusterSummary, Group, Health, Items, NamespaceRow, NearLimit, NodeCounts, NodeHealth,
            PodCounts, Proven, State, Verdict,
        };
        let health = |state: State, reasons: &[&str]| Health {
            state,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
        };
        let group =
            |summary: &str, state: State, kind: &str, subject: &str, by: Option<&str>| Group {
                summary: summary.into(),
                state,
                kind: kind.into(),
                count: 1,
                subjects: vec![subject.into()],
                explained_by: by.map(String::from),
            };
        let summary = ClusterSummary {
            health: health(State::Degraded, &["1 pod CrashLoopBackOff"]),
            verdict: Verdict {
                state: State::Degraded,
                headline: "1 pod CrashLoopBackOff".into(),
                groups: vec![
                    group(
                        "1 pod CrashLoopBackOff",
                        State::Failing,
                        "pod",
                        "shop/web-1",
                        None,
                    ),
                    group(
                        "1 Deployment: replicas unavailable",
                        State::Degraded,
                        "Deployment",
                        "shop/web",
                        Some("1 pod CrashLoopBackOff"),
                    ),
                ],
            },
            nodes: NodeCounts {
                total: 2,
                ready: 1,
                items: vec![
                    NodeHealth {
                        name: "node-a".into(),
                        health: health(State::Healthy, &[]),
                    },
                    NodeHealth {
                        name: "node-b".into(),
                        health: health(
                            State::Failing,
                            &["node node-b is NotReady (KubeletStopped)"],
                        ),
                    },
                ],
            },
            pods: PodCounts {
                by_phase: [("Running".to_string(), 5)].into(),
                unhealthy: Vec::new(),
                near_memory_limit: vec![NearLimit {
                    namespace: "shop".into(),
                    pod: "recommendations-7d9".into(),
                    container: "recommender".into(),
                    memory_bytes: 251_658_240,
                    limit_bytes: 268_435_456,
                    memory_of_limit: 0.9375,
                }],
            },
            ..Default::default()
        };
        // As the server writes them (JSON), read back by the page.
        data.data
            .insert("summary".into(), serde_json::to_value(&summary).unwrap());
        let namespaces = Items {
            items: vec![NamespaceRow {
                name: "shop".into(),
                health: health(State::Degraded, &[]),
                restore_proven: Proven {
                    state: "never".into(),
                    ..Default::default()
                },
                ..Default::default()
            }],
        };
        data.data.insert(
            "namespaces".into(),
            serde_json::to_value(&namespaces).unwrap(),
        );
        // Rendered as the server does: under a reactive owner.
        let owner = Owner::new();
        let html = owner.with(|| view! { <App data /> }.to_html());
        for expected in [
            "1 pod CrashLoopBackOff",
            "shop/web-1",
            "because of: 1 pod CrashLoopBackOff",
            "node-b",
            "KubeletStopped",
            "shop",
            "unprotected",
            "Lifeboat 9.9.9",
            "Containers near their memory limit",
            "/namespaces/shop/pods/recommendations-7d9",
            "94%",
            "never proven",
        ] {
            assert!(html.contains(expected), "{expected} missing from {html}");
        }
    }
}
