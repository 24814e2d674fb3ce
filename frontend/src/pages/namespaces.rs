//! The namespaces list and one namespace with its workloads and backups.

use super::*;

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
                let body = json!({"name": backup, "spec": {"includedNamespaces": [name]}});
                match api::request("POST", "/api/v1/backups", Some(body)).await {
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
            let n = ns();
            if let Some(e) = api_error(&n) {
                return e.into_any();
            }
            let pods: Vec<Value> = items(&n["pods"]);
            let name_of_ns = text(&n["name"]);
            view! {
                <section class=format!("banner {}", n["health"]["state"].as_str().unwrap_or_default())>
                    <h2>"Health: " {badge(n["health"]["state"].as_str().unwrap_or_default())} " · Protection: " {badge(n["protection"].as_str().unwrap_or_default())} " " {proven(&n["restoreProven"])}</h2>
                    {verdict(&n["verdict"])}
                </section>
                <section aria-labelledby="ns-usage-h">
                    <h2 id="ns-usage-h">"CPU and memory"</h2>
                    {charts::usage(&n["usage"])}
                </section>
                <section aria-labelledby="wl-h">
                    <h2 id="wl-h">"Workloads"</h2>
                    {if items(&n["workloads"]).is_empty() { empty("No Deployments, StatefulSets or DaemonSets.").into_any() } else { view! {
                        <table>
                            <thead><tr><th scope="col">"Kind"</th><th scope="col">"Name"</th><th scope="col">"Ready / desired"</th><th scope="col">"Updated"</th><th scope="col">"Available"</th><th scope="col">"Health"</th></tr></thead>
                            <tbody>{items(&n["workloads"]).into_iter().map(|w| view! {
                                <tr data-workload=text(&w["name"])>
                                    <td>{text(&w["kind"])}</td>
                                    <th scope="row"><a href=format!("/namespaces/{}/{}s/{}", name_of_ns.clone(), text(&w["kind"]).to_lowercase(), text(&w["name"]))>{text(&w["name"])}</a></th>
                                    <td class="ready">{format!("{} / {}", text(&w["ready"]), text(&w["desired"]))}</td>
                                    <td>{text(&w["updated"])}</td><td>{text(&w["available"])}</td>
                                    <td>{badge(w["health"]["state"].as_str().unwrap_or_default())} {reasons(&w["health"])}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any() }}
                </section>
                <section aria-labelledby="pods-h"><h2 id="pods-h">"Pods"</h2>{pod_table(pods, false)}</section>
                <section aria-labelledby="jobs-h">
                    <h2 id="jobs-h">"Jobs and CronJobs"</h2>
                    {if items(&n["jobs"]).is_empty() && items(&n["cronJobs"]).is_empty() { Some(empty("None.")) } else { None }}
                    <ul class="plain">
                        {items(&n["cronJobs"]).into_iter().map(|c| view! { <li>"CronJob " <strong>{text(&c["name"])}</strong> " — " <code>{text(&c["schedule"])}</code> " — last run " {time(&c["lastScheduleTime"])} " " {badge(c["health"]["state"].as_str().unwrap_or_default())}</li> }).collect_view()}
                        {items(&n["jobs"]).into_iter().map(|j| view! { <li>"Job " <strong>{text(&j["name"])}</strong> {format!(" — {} succeeded, {} failed, {} active ", text(&j["succeeded"]), text(&j["failed"]), text(&j["active"]))} {badge(j["health"]["state"].as_str().unwrap_or_default())}</li> }).collect_view()}
                    </ul>
                </section>
                <section aria-labelledby="pvc-h">
                    <h2 id="pvc-h">"Persistent volume claims"</h2>
                    {if items(&n["persistentVolumeClaims"]).is_empty() { empty("None.").into_any() } else { view! {
                        <table><thead><tr><th scope="col">"Claim"</th><th scope="col">"Phase"</th><th scope="col">"Volume"</th><th scope="col">"Storage class"</th><th scope="col">"Data last backed up"</th></tr></thead>
                        <tbody>{items(&n["persistentVolumeClaims"]).into_iter().map(|c| view! {
                            <tr><th scope="row">{text(&c["name"])}</th><td>{badge(c["phase"].as_str().unwrap_or("Pending"))}</td><td>{text(&c["volume"])}</td><td>{text(&c["storageClass"])}</td>
                                <td>{match c["lastBackup"]["backup"].as_str() {
                                    Some(b) => view! { <a href=format!("/backups/{b}")>{time(&c["lastBackup"]["at"])}</a> }.into_any(),
                                    None => "never".into_any(),
                                }}</td></tr>
                        }).collect_view()}</tbody></table>
                    }.into_any() }}
                </section>
                <section aria-labelledby="net-h">
                    <h2 id="net-h">"Services and ingresses"</h2>
                    {if items(&n["services"]).is_empty() && items(&n["ingresses"]).is_empty() { Some(empty("None.")) } else { None }}
                    <ul class="plain">
                        {items(&n["services"]).into_iter().map(|s| view! { <li>"Service " <strong>{text(&s["name"])}</strong> {format!(" — {} {} — ports {}", text(&s["type"]), text(&s["clusterIP"]), items(&s["ports"]).iter().map(|p| text(&p["port"])).collect::<Vec<_>>().join(", "))}</li> }).collect_view()}
                        {items(&n["ingresses"]).into_iter().map(|i| view! { <li>"Ingress " <strong>{text(&i["name"])}</strong> " — " {items(&i["rules"]).iter().map(|r| format!("{}{} → {}", text(&r["host"]), text(&r["path"]), text(&r["service"]))).collect::<Vec<_>>().join("; ")}</li> }).collect_view()}
                    </ul>
                </section>
                <section aria-labelledby="ev-h"><h2 id="ev-h">"Recent events"</h2>{events_table(items(&n["events"]), false)}</section>
                <section aria-labelledby="bk-h">
                    <h2 id="bk-h">"Backups of this namespace"</h2>
                    {charts::timeline(&items(&n["backups"]))}
                    {if items(&n["backups"]).is_empty() { empty("No backup covers this namespace yet: use “Back up now”, or create a schedule.").into_any() } else { view! {
                        <ul class="plain">{items(&n["backups"]).into_iter().map(|b| {
                            let bname = text(&b["name"]);
                            view! { <li><a href=format!("/backups/{bname}")>{bname.clone()}</a> " " {badge(b["phase"].as_str().unwrap_or_default())} " " {time(&b["completedAt"])}</li> }
                        }).collect_view()}</ul>
                    }.into_any() }}
                </section>
            }
            .into_any()
        }}
    }
}
