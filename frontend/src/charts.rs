//! Pictures drawn as inline SVG on the server (and kept by hydration): no
//! chart library, no external service.

use leptos::prelude::*;
use serde_json::Value;

use crate::widgets::{bytes, duration, seconds_between, text, time};

const W: f64 = 600.0;
const H: f64 = 120.0;

fn phase_class(phase: &str) -> &'static str {
    match phase {
        "Completed" => "good",
        "PartiallyFailed" => "warn",
        "Failed" => "bad",
        _ => "muted",
    }
}

/// Backups oldest to newest: one bar each, as tall as it took, coloured by
/// outcome; and the success rate in words.
pub fn backup_history(backups: &[Value]) -> impl IntoView + use<> {
    let mut runs: Vec<&Value> = backups
        .iter()
        .filter(|b| !b["completedAt"].is_null())
        .collect();
    runs.sort_by(|a, b| a["createdAt"].as_str().cmp(&b["createdAt"].as_str()));
    let runs: Vec<&Value> = runs.into_iter().rev().take(40).rev().collect();
    if runs.is_empty() {
        return None;
    }
    let took: Vec<i64> = runs
        .iter()
        .map(|b| {
            seconds_between(&b["startedAt"], &b["completedAt"])
                .unwrap_or(0)
                .max(0)
        })
        .collect();
    let longest = took.iter().copied().max().unwrap_or(1).max(1) as f64;
    let ok = runs
        .iter()
        .filter(|b| matches!(b["phase"].as_str(), Some("Completed")))
        .count();
    let rate = ok * 100 / runs.len();
    let width = W / runs.len() as f64;
    let bars = runs
        .iter()
        .zip(&took)
        .enumerate()
        .map(|(i, (b, secs))| {
            let h = (*secs as f64 / longest * (H - 10.0)).max(3.0);
            let label = format!(
                "{}: {} in {}",
                text(&b["name"]),
                text(&b["phase"]),
                duration(*secs)
            );
            view! {
                <rect
                    class=phase_class(b["phase"].as_str().unwrap_or_default())
                    x=format!("{:.1}", i as f64 * width + 1.0)
                    y=format!("{:.1}", H - h)
                    width=format!("{:.1}", (width - 2.0).max(1.0))
                    height=format!("{h:.1}")
                >
                    <title>{label}</title>
                </rect>
            }
        })
        .collect_view();
    let summary = format!(
        "Last {} finished backups: {rate}% succeeded; the longest took {}.",
        runs.len(),
        duration(longest as i64)
    );
    Some(view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=summary.clone() preserveAspectRatio="none">
                {bars}
            </svg>
            <figcaption>{summary}</figcaption>
        </figure>
    })
}

/// Storage used over time: the running total of backup sizes, one point per backup.
pub fn storage_growth(backups: &[Value]) -> impl IntoView + use<> {
    let mut sized: Vec<(&str, i64)> = backups
        .iter()
        .filter_map(|b| Some((b["createdAt"].as_str()?, b["sizeBytes"].as_i64()?)))
        .collect();
    sized.sort();
    if sized.is_empty() {
        return None;
    }
    let mut total = 0i64;
    let points: Vec<i64> = sized
        .iter()
        .map(|(_, s)| {
            total += s;
            total
        })
        .collect();
    let max = (*points.last().unwrap_or(&1)).max(1) as f64;
    let step = if points.len() > 1 {
        W / (points.len() - 1) as f64
    } else {
        W
    };
    let xy = |i: usize, p: i64| (i as f64 * step, H - (p as f64 / max) * (H - 6.0));
    let mut path: String = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let cmd = if i == 0 { "M" } else { "L" };
            let (x, y) = xy(i, *p);
            format!("{cmd}{x:.1},{y:.1} ")
        })
        .collect();
    if points.len() == 1 {
        // One backup: a level line across, so the chart is not blank.
        path.push_str(&format!("L{W:.1},{:.1}", xy(0, points[0]).1));
    }
    let summary = format!(
        "{} in {} backups, growing from {} on {}",
        bytes(&Value::from(total)),
        points.len(),
        bytes(&Value::from(points[0])),
        time(&Value::from(sized[0].0))
    );
    Some(view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=summary.clone() preserveAspectRatio="none">
                <path class="line" d=path />
            </svg>
            <figcaption>{summary}</figcaption>
        </figure>
    })
}

/// A namespace's backups on a time line: one mark per backup, coloured by outcome.
pub fn timeline(backups: &[Value]) -> impl IntoView + use<> {
    let mut dated: Vec<&Value> = backups
        .iter()
        .filter(|b| b["createdAt"].is_string() || b["completedAt"].is_string())
        .collect();
    dated.sort_by(|a, b| a["completedAt"].as_str().cmp(&b["completedAt"].as_str()));
    if dated.is_empty() {
        return None;
    }
    let first = dated[0]["completedAt"].clone();
    let last = dated[dated.len() - 1]["completedAt"].clone();
    let span = seconds_between(&first, &last).unwrap_or(0).max(1) as f64;
    let marks = dated
        .iter()
        .map(|b| {
            let at = seconds_between(&first, &b["completedAt"]).unwrap_or(0) as f64;
            let x = 8.0 + at / span * (W - 16.0);
            view! {
                <circle class=phase_class(b["phase"].as_str().unwrap_or_default()) cx=format!("{x:.1}") cy="20" r="6">
                    <title>{format!("{}: {} at {}", text(&b["name"]), text(&b["phase"]), time(&b["completedAt"]))}</title>
                </circle>
            }
        })
        .collect_view();
    let summary = format!(
        "{} backups from {} to {}",
        dated.len(),
        time(&first),
        time(&last)
    );
    Some(view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {W} 40") role="img" aria-label=summary.clone() preserveAspectRatio="none">
                <line class="axis" x1="0" y1="20" x2=W.to_string() y2="20" />
                {marks}
            </svg>
            <figcaption>{summary}</figcaption>
        </figure>
    })
}
