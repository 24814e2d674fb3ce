//! Pictures drawn as inline SVG on the server (and kept by hydration): no
//! chart library, no external service.

use leptos::prelude::*;

use crate::model::{
    BackupView, MetricsAvailability, NamespaceBackup, NamespaceTimeline, UsageBlock,
};
use crate::widgets::{between, duration, size, when};

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
pub fn backup_history(backups: &[BackupView]) -> impl IntoView + use<> {
    let mut runs: Vec<&BackupView> = backups
        .iter()
        .filter(|b| b.completed_at.is_some())
        .collect();
    runs.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    let runs: Vec<&BackupView> = runs.into_iter().rev().take(40).rev().collect();
    if runs.is_empty() {
        return None;
    }
    let took: Vec<i64> = runs
        .iter()
        .map(|b| {
            between(b.started_at.as_deref(), b.completed_at.as_deref())
                .unwrap_or(0)
                .max(0)
        })
        .collect();
    let longest = took.iter().copied().max().unwrap_or(1).max(1) as f64;
    let ok = runs.iter().filter(|b| b.phase == "Completed").count();
    let rate = ok * 100 / runs.len();
    let width = W / runs.len() as f64;
    let bars = runs
        .iter()
        .zip(&took)
        .enumerate()
        .map(|(i, (b, secs))| {
            let h = (*secs as f64 / longest * (H - 10.0)).max(3.0);
            let label = format!("{}: {} in {}", b.name, b.phase, duration(*secs));
            view! {
                <rect
                    class=phase_class(&b.phase)
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
pub fn storage_growth(backups: &[BackupView]) -> impl IntoView + use<> {
    let mut sized: Vec<(&str, i64)> = backups
        .iter()
        .filter_map(|b| Some((b.created_at.as_str(), b.size_bytes?)))
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
        size(Some(total)),
        points.len(),
        size(Some(points[0])),
        when(Some(sized[0].0))
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
pub fn timeline(backups: &[NamespaceBackup]) -> impl IntoView + use<> {
    let mut dated: Vec<(&str, &NamespaceBackup)> = backups
        .iter()
        .filter_map(|b| Some((b.completed_at.as_deref()?, b)))
        .collect();
    dated.sort_by(|a, b| a.0.cmp(b.0));
    let (Some(first), Some(last)) = (dated.first().map(|d| d.0), dated.last().map(|d| d.0)) else {
        return None;
    };
    let span = between(Some(first), Some(last)).unwrap_or(0).max(1) as f64;
    let marks = dated
        .iter()
        .map(|(at, b)| {
            let offset = between(Some(first), Some(at)).unwrap_or(0) as f64;
            let x = 8.0 + offset / span * (W - 16.0);
            view! {
                <circle class=phase_class(&b.phase) cx=format!("{x:.1}") cy="20" r="6">
                    <title>{format!("{}: {} at {}", b.name, b.phase, when(Some(at)))}</title>
                </circle>
            }
        })
        .collect_view();
    let summary = format!(
        "{} backups from {} to {}",
        dated.len(),
        when(Some(first)),
        when(Some(last))
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

/// Changes per minute between `since` and `until`: one bar per minute
/// that had any, as tall as its count; gaps shaded.
pub fn changes_per_minute(timeline: &NamespaceTimeline) -> impl IntoView + use<> {
    let (since, until) = (Some(timeline.since.as_str()), Some(timeline.until.as_str()));
    let per_minute = &timeline.per_minute;
    let gaps = &timeline.gaps;
    let span = between(since, until).unwrap_or(0).max(60) as f64;
    let x = |t: &str| {
        4.0 + between(since, Some(t)).unwrap_or(0).clamp(0, span as i64) as f64 / span * (W - 8.0)
    };
    let most = per_minute.iter().map(|m| m.count).max().unwrap_or(1).max(1) as f64;
    let width = ((W - 8.0) / (span / 60.0)).clamp(1.5, 12.0);
    let total: u64 = per_minute.iter().map(|m| m.count).sum();
    let shaded = gaps
        .iter()
        .map(|g| {
            let (a, b) = (x(&g.from), x(&g.to));
            view! {
                <rect class="gap" x=format!("{a:.1}") y="0" width=format!("{:.1}", (b - a).max(2.0)) height=H.to_string()>
                    <title>{format!("gap {} – {}: {}", when(Some(&g.from)), when(Some(&g.to)), g.reason)}</title>
                </rect>
            }
        })
        .collect_view();
    let bars = per_minute
        .iter()
        .map(|m| {
            let n = m.count;
            let h = (n as f64 / most * (H - 12.0)).max(2.0);
            view! {
                <rect class="good" x=format!("{:.1}", x(&m.minute)) y=format!("{:.1}", H - h) width=format!("{width:.1}") height=format!("{h:.1}")>
                    <title>{format!("{n} change(s) at {}", when(Some(&m.minute)))}</title>
                </rect>
            }
        })
        .collect_view();
    let summary = format!(
        "{total} change(s) from {} to {}, in {} minute(s) with changes{}",
        when(since),
        when(until),
        per_minute.len(),
        if gaps.is_empty() {
            String::new()
        } else {
            format!("; {} gap(s)", gaps.len())
        }
    );
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=summary.clone() preserveAspectRatio="none">
                {shaded}
                {bars}
                <line class="axis" x1="0" y1=H.to_string() x2=W.to_string() y2=H.to_string() />
            </svg>
            <figcaption>{summary}</figcaption>
        </figure>
    }
}

/// Millicores as `250m` or `1.5 cores`.
pub fn cores(millicores: f64) -> String {
    if millicores >= 1000.0 {
        format!("{:.2} cores", millicores / 1000.0)
    } else {
        format!("{}m", millicores.round())
    }
}

/// Bytes as MiB or GiB.
pub fn mem(bytes: f64) -> String {
    crate::widgets::size(Some(bytes as i64))
}

/// One column of a usage history (`[[unixSeconds, millicores, bytes], …]`)
/// as a small line: the last hour, its latest value and peak in words.
fn sparkline(values: Vec<f64>, label: &str, show: fn(f64) -> String) -> AnyView {
    const SW: f64 = 160.0;
    const SH: f64 = 32.0;
    let mut values = values;
    // One reading is a level line until the next one comes.
    if values.len() == 1 {
        values.push(values[0]);
    }
    let (Some(latest), Some(peak)) = (
        values.last().copied(),
        values.iter().copied().reduce(f64::max),
    ) else {
        return view! { <span class="note">{format!("{label}: no reading yet")}</span> }.into_any();
    };
    let top = peak.max(1.0);
    let step = if values.len() > 1 {
        SW / (values.len() - 1) as f64
    } else {
        0.0
    };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                SH - 2.0 - v / top * (SH - 4.0)
            )
        })
        .collect();
    let words = format!(
        "{label} over the last hour: now {}, peak {}",
        show(latest),
        show(peak)
    );
    view! {
        <figure class="spark">
            <svg viewBox=format!("0 0 {SW} {SH}") width=SW height=SH role="img" aria-label=words.clone()>
                <polyline points=points.join(" ") fill="none" stroke="currentColor" stroke-width="1.5" />
            </svg>
            <figcaption>{format!("{label} {}", show(latest))}</figcaption>
        </figure>
    }
    .into_any()
}

/// A usage block from the API (`{availability, history, …}`): CPU and
/// memory sparklines, or why there are none.
pub fn usage(block: &UsageBlock) -> AnyView {
    match &block.availability {
        MetricsAvailability::Unavailable { reason } => view! {
            <p class="note" data-usage="unavailable">{reason.clone()}</p>
        }
        .into_any(),
        MetricsAvailability::Served => {
            let cpu = block.history.iter().map(|r| f64::from(r.1)).collect();
            let memory = block.history.iter().map(|r| r.2 as f64).collect();
            view! {
                <div class="sparks" data-usage="served">
                    {sparkline(cpu, "CPU", cores)}
                    {sparkline(memory, "Memory", mem)}
                </div>
            }
            .into_any()
        }
        MetricsAvailability::Waiting => {
            view! { <p class="note" data-usage="waiting">"Reading CPU and memory…"</p> }.into_any()
        }
    }
}
