//! The namespaces list and one namespace with its workloads and backups.

use super::*;
use crate::model::{BackupSpec, BackupView, CreateBackup, NamespaceDetail};

pub(super) fn namespaces(page: RwSignal<PageData>) -> impl IntoView {
    let list = data(page, "namespaces");
    view! {
        <h1>"Namespaces"</h1>
        {move || namespace_table(&list())}
    }
}

pub(super) fn namespace(page: RwSignal<PageData>) -> impl IntoView {
    let ns = data(page, "namespace");
    let name = param(page);
    let status = RwSignal::new(String::new());
    let back_up_now = {
        let name = name.clone();
        move |_| {
            let name = name.clone();
            status.set("Starting a backup…".into());
            api::spawn(async move {
                let backup = format!("{name}-{}", js_stamp());
                let body = CreateBackup {
                    name: backup.clone(),
                    spec: BackupSpec {
                        included_namespaces: vec![name],
                        ..Default::default()
                    },
                    from_schedule: None,
                };
                match api::call::<BackupView>("POST", "/api/v1/backups", Some(&body)).await {
                    Ok(_) => api::navigate(&format!("/backups/{backup}")),
                    Err(e) => status.set(format!("The backup could not start: {e}")),
                }
            });
        }
    };
    view! {
        <h1>"Namespace " <code>{name.clone()}</code></h1>
        <div class="actions">
            <button type="button" on:click=back_up_now>"Back up now"</button>
            <a class="button" href=format!("/restore?namespace={name}")>"Restore…"</a>
            <a class="button" href=format!("/namespaces/{name}/timeline")>"Timeline"</a>
            <span role="status" aria-live="polite">{move || status.get()}</span>
        </div>
        {move || {
            let n = match read::<NamespaceDetail>(&ns()) {
                Ok(n) => n,
                Err(e) => return e,
            };
            let name_of_ns = n.name.clone();
            let state = n.health.state.as_str();
            let dash = |v: &Option<String>| v.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "—".into());
            view! {
                <section class=format!("banner {state}")>
                    <h2>"Health: " {badge(state)} " · Protection: " {badge(n.protection.as_str())} " " {proven(&n.restore_proven)}</h2>
                    {verdict(&n.verdict)}
                </section>
                <section aria-labelledby="ns-usage-h">
                    <h2 id="ns-usage-h">"CPU and memory"</h2>
                    {charts::usage(&n.usage)}
                </section>
                <section aria-labelledby="wl-h">
                    <h2 id="wl-h">"Workloads"</h2>
                    {if n.workloads.is_empty() { empty("No Deployments, StatefulSets or DaemonSets.").into_any() } else { view! {
                        <table>
                            <thead><tr><th scope="col">"Kind"</th><th scope="col">"Name"</th><th scope="col">"Ready / desired"</th><th scope="col">"Updated"</th><th scope="col">"Available"</th><th scope="col">"Health"</th></tr></thead>
                            <tbody>{n.workloads.iter().map(|w| view! {
                                <tr data-workload=w.name.clone()>
                                    <td>{w.kind.clone()}</td>
                                    <th scope="row"><a href=format!("/namespaces/{}/{}s/{}", name_of_ns.clone(), w.kind.to_lowercase(), w.name)>{w.name.clone()}</a></th>
                                    <td class="ready">{format!("{} / {}", w.ready, w.desired)}</td>
                                    <td>{w.updated}</td><td>{w.available}</td>
                                    <td>{badge(w.health.state.as_str())} {reasons(&w.health)}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any() }}
                </section>
                <section aria-labelledby="pods-h"><h2 id="pods-h">"Pods"</h2>{pod_table(n.pods.clone(), false)}</section>
                <section aria-labelledby="jobs-h">
                    <h2 id="jobs-h">"Jobs and CronJobs"</h2>
                    {if n.jobs.is_empty() && n.cron_jobs.is_empty() { Some(empty("None.")) } else { None }}
                    <ul class="plain">
                        {n.cron_jobs.iter().map(|c| view! { <li>"CronJob " <strong>{c.name.clone()}</strong> " — " <code>{dash(&c.schedule)}</code> " — last run " {when(c.last_schedule_time.as_deref())} " " {badge(c.health.state.as_str())}</li> }).collect_view()}
                        {n.jobs.iter().map(|j| view! { <li>"Job " <strong>{j.name.clone()}</strong> {format!(" — {} succeeded, {} failed, {} active ", j.succeeded, j.failed, j.active)} {badge(j.health.state.as_str())}</li> }).collect_view()}
                    </ul>
                </section>
                <section aria-labelledby="pvc-h">
                    <h2 id="pvc-h">"Persistent volume claims"</h2>
                    {if n.persistent_volume_claims.is_empty() { empty("None.").into_any() } else { view! {
                        <table><thead><tr><th scope="col">"Claim"</th><th scope="col">"Phase"</th><th scope="col">"Volume"</th><th scope="col">"Storage class"</th><th scope="col">"Data last backed up"</th></tr></thead>
                        <tbody>{n.persistent_volume_claims.iter().map(|c| view! {
                            <tr><th scope="row">{c.name.clone()}</th><td>{badge(c.phase.as_deref().unwrap_or("Pending"))}</td><td>{dash(&c.volume)}</td><td>{dash(&c.storage_class)}</td>
                                <td>{match &c.last_backup {
                                    Some(b) => view! { <a href=format!("/backups/{}", b.backup)>{when(Some(&b.at))}</a> }.into_any(),
                                    None => "never".into_any(),
                                }}</td></tr>
                        }).collect_view()}</tbody></table>
                    }.into_any() }}
                </section>
                <section aria-labelledby="net-h">
                    <h2 id="net-h">"Services and ingresses"</h2>
                    {if n.services.is_empty() && n.ingresses.is_empty() { Some(empty("None.")) } else { None }}
                    <ul class="plain">
                        {n.services.iter().map(|s| view! { <li>"Service " <strong>{s.name.clone()}</strong> {format!(" — {} {} — ports {}", dash(&s.kind), dash(&s.cluster_ip), s.ports.iter().map(|p| p.port.to_string()).collect::<Vec<_>>().join(", "))}</li> }).collect_view()}
                        {n.ingresses.iter().map(|i| view! { <li>"Ingress " <strong>{i.name.clone()}</strong> " — " {i.rules.iter().map(|r| format!("{}{} → {}", dash(&r.host), dash(&r.path), dash(&r.service))).collect::<Vec<_>>().join("; ")}</li> }).collect_view()}
                    </ul>
                </section>
                <section aria-labelledby="ev-h"><h2 id="ev-h">"Recent events"</h2>{events_table(n.events.clone(), false)}</section>
                <section aria-labelledby="bk-h">
                    <h2 id="bk-h">"Backups of this namespace"</h2>
                    {charts::timeline(&n.backups)}
                    {if n.backups.is_empty() { empty("No backup covers this namespace yet: use “Back up now”, or create a schedule.").into_any() } else { view! {
                        <ul class="plain">{n.backups.iter().map(|b| {
                            let bname = b.name.clone();
                            view! { <li><a href=format!("/backups/{bname}")>{bname.clone()}</a> " " {badge(&b.phase)} " " {when(b.completed_at.as_deref())}</li> }
                        }).collect_view()}</ul>
                    }.into_any() }}
                </section>
            }
            .into_any()
        }}
    }
}
