//! One pod: its verdict, containers (state, restarts, last termination),
//! conditions, volumes, events, and its containers' logs: the last lines,
//! the previous instance's (a crash loop's last words), followed live,
//! searched within what is loaded, downloaded.

use std::cell::Cell;
use std::rc::Rc;

use super::*;
use crate::model::{ContainerState, ContainerUsageView, ContainerView, PodDetail};

/// How many lines the log view loads at first, and keeps while following.
const SHOWN_LINES: usize = 1000;

pub(super) fn pod(page: RwSignal<PageData>) -> impl IntoView {
    let pod = data(page, "pod");
    let (namespace, name) = param(page)
        .split_once('/')
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .unwrap_or_default();
    view! {
        <h1>"Pod " <code>{name.clone()}</code></h1>
        <p><a href=format!("/namespaces/{namespace}")>{format!("Namespace {namespace}")}</a></p>
        {move || {
            let p = match read::<PodDetail>(&pod()) {
                Ok(p) => p,
                Err(e) => return e,
            };
            let summary = &p.summary;
            let node = p.node.clone().unwrap_or_default();
            view! {
                <section aria-labelledby="state-h">
                    <h2 id="state-h">"State"</h2>
                    <p>{badge(summary.health.state.as_str())} " "
                       {format!("{} · {}/{} ready · {} restarts · node ", summary.phase, summary.ready,
                                summary.containers, summary.restarts)}
                       <a href=format!("/nodes/{node}")>{node.clone()}</a></p>
                    {reasons(&summary.health)}
                </section>
                <section aria-labelledby="containers-h">
                    <h2 id="containers-h">"Containers"</h2>
                    {container_table(&p.containers)}
                </section>
                <section aria-labelledby="usage-h">
                    <h2 id="usage-h">"CPU and memory"</h2>
                    {charts::usage(&p.usage)}
                    {usage_table(p.usage.containers.clone().unwrap_or_default())}
                </section>
                <section aria-labelledby="events-h">
                    <h2 id="events-h">"Events"</h2>
                    {events_table(p.events.clone(), false)}
                </section>
            }
            .into_any()
        }}
        {log_view(page, namespace, name)}
    }
}

fn container_table(containers: &[ContainerView]) -> AnyView {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let exit = |code: &Option<i64>| code.map_or_else(|| "—".to_string(), |c| c.to_string());
    view! {
        <table>
            <thead><tr><th scope="col">"Container"</th><th scope="col">"Image"</th><th scope="col">"State"</th><th scope="col">"Ready"</th><th scope="col">"Restarts"</th><th scope="col">"Last ended"</th></tr></thead>
            <tbody>{containers.iter().map(|c| {
                let now = match &c.state {
                    Some(ContainerState::Waiting { reason, .. }) => format!("waiting: {}", dash(reason)),
                    Some(ContainerState::Terminated { reason, exit_code, .. }) => format!("terminated: {} (exit {})", dash(reason), exit(exit_code)),
                    Some(ContainerState::Running { .. }) => "running".into(),
                    None => "—".into(),
                };
                let ended = match &c.last_state {
                    Some(ContainerState::Terminated { reason, exit_code, .. }) => format!("{} (exit {})", dash(reason), exit(exit_code)),
                    _ => "—".into(),
                };
                view! {
                    <tr>
                        <th scope="row">{c.name.clone()}</th>
                        <td><code>{dash(&c.image)}</code></td>
                        <td>{now}</td>
                        <td>{if c.ready { "yes" } else { "no" }}</td>
                        <td>{c.restarts}</td>
                        <td>{ended}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table>
    }
    .into_any()
}

/// Each container's latest usage against its requests and limits.
fn usage_table(containers: Vec<ContainerUsageView>) -> AnyView {
    let cpu = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |c| charts::cores(c as f64));
    let memory = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |b| charts::mem(b as f64));
    view! {
        <table>
            <thead><tr><th scope="col">"Container"</th><th scope="col">"CPU used"</th><th scope="col">"requested"</th><th scope="col">"limit"</th>
                <th scope="col">"Memory used"</th><th scope="col">"requested"</th><th scope="col">"limit"</th></tr></thead>
            <tbody>{containers.into_iter().map(|c| view! {
                <tr>
                    <th scope="row">{c.name.clone()}</th>
                    <td>{cpu(c.cpu_millicores.map(u64::from))}</td>
                    <td>{cpu(c.requests.cpu_millicores)}</td>
                    <td>{cpu(c.limits.cpu_millicores)}</td>
                    <td>{memory(c.memory_bytes)}
                        {c.oom_risk.then(|| view! { " " <span class="oom" data-oom-risk="">{format!("OOM risk: {:.0}% of its limit", c.memory_of_limit.unwrap_or(0.0) * 100.0)}</span> })}</td>
                    <td>{memory(c.requests.memory_bytes)}</td>
                    <td>{memory(c.limits.memory_bytes)}</td>
                </tr>
            }).collect_view()}</tbody>
        </table>
    }
    .into_any()
}

/// The log panel: which container, its current or previous instance,
/// following, a search over the loaded lines, and a download link.
fn log_view(page: RwSignal<PageData>, namespace: String, name: String) -> impl IntoView {
    let pod = data(page, "pod");
    let listed = move || {
        read::<PodDetail>(&pod())
            .map(|p| p.containers)
            .unwrap_or_default()
    };
    let containers = move || -> Vec<String> { listed().into_iter().map(|c| c.name).collect() };
    // A container that has restarted opens on its previous instance: the
    // one whose output says why it ended.
    let first = listed().into_iter().next().unwrap_or_default();
    let container = RwSignal::new(first.name);
    let previous = RwSignal::new(first.restarts > 0);
    let follow = RwSignal::new(false);
    let search = RwSignal::new(String::new());
    let lines = RwSignal::new(Vec::<String>::new());
    let status = RwSignal::new(String::new());
    // Each load gets a number; an older load still streaming stops itself.
    let generation = Rc::new(Cell::new(0u64));
    let base = format!("/api/v1/namespaces/{namespace}/pods/{name}/log");
    let path = {
        let base = base.clone();
        move |tail: bool| {
            let mut query = format!("container={}", container.get_untracked());
            if previous.get_untracked() {
                query.push_str("&previous=true");
            }
            if tail {
                query.push_str(&format!("&tailLines={SHOWN_LINES}"));
            }
            if follow.get_untracked() && !previous.get_untracked() {
                query.push_str("&follow=true");
            }
            format!("{base}?{query}")
        }
    };
    let load = {
        let generation = generation.clone();
        let path = path.clone();
        move || {
            let mine = generation.get() + 1;
            generation.set(mine);
            let generation = generation.clone();
            let url = path(true);
            lines.set(Vec::new());
            status.set("Loading…".into());
            api::spawn(async move {
                let still_mine = {
                    let generation = generation.clone();
                    move || generation.get() == mine
                };
                let result = api::stream_text(
                    &url,
                    |chunk| {
                        lines.update(|l| {
                            l.extend(chunk.lines().map(String::from));
                            let over = l.len().saturating_sub(SHOWN_LINES);
                            l.drain(..over);
                        });
                        if follow.get_untracked() {
                            status.set("Following: new lines appear as they are written.".into());
                        }
                    },
                    still_mine,
                )
                .await;
                if generation.get() == mine {
                    status.set(match result {
                        Ok(()) if lines.with_untracked(Vec::is_empty) => "No output.".into(),
                        Ok(()) => String::new(),
                        Err(e) => e,
                    });
                }
            });
        }
    };
    // Loaded once the page runs in the browser (a no-op when rendering on the server).
    load();
    let reload = {
        let load = load.clone();
        move |_| load()
    };
    let download = {
        let path = path.clone();
        move || {
            let _ = (container.get(), previous.get());
            path(false).replace("&follow=true", "")
        }
    };
    let shown = move || {
        let needle = search.get().to_lowercase();
        lines.with(|l| {
            l.iter()
                .filter(|line| needle.is_empty() || line.to_lowercase().contains(&needle))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    let matches = move || {
        let needle = search.get();
        (!needle.is_empty()).then(|| {
            let n = lines.with(|l| {
                l.iter()
                    .filter(|line| line.to_lowercase().contains(&needle.to_lowercase()))
                    .count()
            });
            format!("{n} matching lines")
        })
    };
    view! {
        <section aria-labelledby="logs-h" class="logs">
            <h2 id="logs-h">"Logs"</h2>
            <form class="log-controls" on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default()>
                <label>"Container "
                    <select on:change={
                        let load = load.clone();
                        move |ev| { container.set(event_target_value(&ev)); load(); }
                    }>
                        {move || containers().into_iter().map(|c| {
                            let selected = c == container.get_untracked();
                            view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label><input type="checkbox" name="previous" prop:checked=move || previous.get() on:change={
                    let load = load.clone();
                    move |ev| { previous.set(event_target_checked(&ev)); load(); }
                } />" Previous instance"</label>
                <label><input type="checkbox" name="follow" prop:checked=move || follow.get() on:change={
                    let load = load.clone();
                    move |ev| { follow.set(event_target_checked(&ev)); load(); }
                } />" Follow"</label>
                <label>"Search " <input type="search" name="search" prop:value=move || search.get() on:input=move |ev| search.set(event_target_value(&ev)) /></label>
                <button type="button" on:click=reload>"Reload"</button>
                <a class="button" href=download download=format!("{name}.log")>"Download"</a>
            </form>
            <p role="status" aria-live="polite" class="status">{move || status.get()} " " {matches}</p>
            <pre class="log" role="log" aria-label="Log lines" tabindex="0">{shown}</pre>
        </section>
    }
}
