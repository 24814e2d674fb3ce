//! Small pieces every page uses: times, sizes, health badges, errors, and
//! reading a source's answer as the API's own type.

use leptos::prelude::*;
use serde_json::Value;

/// An RFC 3339 time shown as `2026-11-25 12:00:03 UTC`.
pub fn when(t: Option<&str>) -> String {
    match t {
        Some(t) if t.len() >= 19 && t.is_char_boundary(10) && t.is_char_boundary(19) => {
            format!("{} {} UTC", &t[..10], &t[11..19])
        }
        _ => "—".into(),
    }
}

/// Seconds as `45 s`, `3 min`, `2 h`, `4 d`.
pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// Seconds between two RFC 3339 times (whole seconds; None when either is missing).
pub fn between(from: Option<&str>, to: Option<&str>) -> Option<i64> {
    fn epoch(t: Option<&str>) -> Option<i64> {
        let t = t?;
        let (date, rest) = t.split_once('T')?;
        let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut hms = rest.get(..8)?.split(':').map(|p| p.parse::<i64>().ok());
        let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
        // Days from civil (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some((era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + mi * 60 + s)
    }
    Some(epoch(to)? - epoch(from)?)
}

/// Bytes as B, KiB, MiB, GiB.
pub fn size(n: Option<i64>) -> String {
    let Some(n) = n else {
        return "—".into();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut size = n as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < units.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{size:.1} {}", units[unit])
    }
}

/// A health state (`healthy`, `degraded`, `failing`) or phase as a badge.
pub fn badge(state: &str) -> impl IntoView + use<> {
    let class = match state {
        "healthy" | "Completed" | "protected" | "available" | "live" | "Bound" | "Running"
        | "Succeeded" | "created" | "updated" => "badge good",
        "degraded" | "Warning" | "PartiallyFailed" | "stale" | "Pending" | "reconnecting"
        | "InProgress" | "New" | "Planned" | "starting" => "badge warn",
        "failing" | "Failed" | "unprotected" | "unavailable" | "not_permitted" | "Lost"
        | "failed" | "damaged" => "badge bad",
        _ => "badge",
    };
    view! { <span class=class>{state.replace('_', " ")}</span> }
}

/// The reasons behind a health state, as a list (nothing when healthy).
pub fn reasons(health: &crate::model::Health) -> impl IntoView + use<> {
    let items = health.reasons.clone();
    (!items.is_empty()).then(|| {
        view! { <ul class="reasons">{items.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ul> }
    })
}

/// What the API said went wrong for a source, with what to do.
pub fn api_error(v: &Value) -> Option<impl IntoView + use<>> {
    let message = v["error"].as_str()?.to_string();
    let status = v["status"].as_u64();
    let hint = match status {
        Some(503) => {
            "Lifeboat has no cluster to watch: check the kubeconfig it was started with and /readyz."
        }
        Some(403) => {
            "Lifeboat's ServiceAccount is not permitted to read this; grant it list/watch."
        }
        Some(404) => "It may have been deleted; go back to the list.",
        Some(502) => "The backup storage did not answer; check the storage location.",
        _ => "Reload the page; if it persists, check /readyz and the server's log.",
    };
    Some(view! {
        <div class="error" role="alert">
            <strong>{message}</strong>
            <p>{hint}</p>
        </div>
    })
}

/// A source's answer as the API's own type (`crate::model`); an answer
/// that does not read as one is shown as the error it is.
pub fn read<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, AnyView> {
    if let Some(e) = api_error(v) {
        return Err(e.into_any());
    }
    serde_json::from_value(v.clone()).map_err(|e| {
        view! {
            <div class="error" role="alert">
                <strong>{format!("The server's answer could not be read: {e}")}</strong>
                <p>"The page and the server are of different versions: reload the page."</p>
            </div>
        }
        .into_any()
    })
}

/// A paragraph for an empty list, saying what to do next.
pub fn empty(message: &'static str) -> impl IntoView {
    view! { <p class="empty">{message}</p> }
}

/// Hooks as they ran (a backup's around its volume reads, a restore's in
/// the pods it made): where, what, how it ended, its output.
pub fn hook_table(ran: Vec<crate::model::HookRun>) -> impl IntoView {
    view! {
        <table class="hooks">
            <thead><tr>
                <th scope="col">"When"</th><th scope="col">"Pod"</th><th scope="col">"Command"</th>
                <th scope="col">"Outcome"</th><th scope="col">"Took"</th><th scope="col">"Output"</th>
            </tr></thead>
            <tbody>{ran.into_iter().map(|h| {
                let ok = h.exit_code == Some(0);
                let (outcome, output) = (h.outcome(), h.output("\n"));
                view! {
                    <tr data-hook=h.when.clone()>
                        <td>{h.when.clone()}</td>
                        <th scope="row">{format!("{}/{} ({})", h.namespace, h.pod, h.container)}</th>
                        <td><code>{h.command.join(" ")}</code></td>
                        <td>{badge(if ok { "Completed" } else if h.on_error == "Continue" { "Warning" } else { "Failed" })} " " {outcome}</td>
                        <td>{format!("{} ms", h.duration_ms)}</td>
                        <td><pre class="log">{output}</pre></td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table>
    }
}
