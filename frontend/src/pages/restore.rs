//! The restore wizard: backup → selection and mapping → plan → progress.

use super::*;

pub(super) fn restore(page: RwSignal<PageData>) -> impl IntoView {
    let backups_list = data(page, "backups");
    let preselected = query(page, "backup").unwrap_or_else(|| {
        // From a namespace page: the newest completed backup covering it.
        let ns = query(page, "namespace");
        page.with_untracked(|p| {
            let list = items(&p.get("backups")["items"]);
            list.iter()
                .filter(|b| b["phase"] == "Completed" || b["phase"] == "PartiallyFailed")
                .find(|b| {
                    let inc = items(&b["spec"]["includedNamespaces"]);
                    ns.as_ref()
                        .is_some_and(|ns| inc.is_empty() || inc.iter().any(|n| n == ns.as_str()))
                })
                .map(|b| text(&b["name"]))
                .unwrap_or_default()
        })
    });
    let backup = RwSignal::new(preselected);
    // From a timeline's "Restore to here": a schedule's state at an instant.
    let point_in_time = query(page, "schedule").zip(query(page, "at"));
    let instant = StoredValue::new(point_in_time.clone());
    let available = RwSignal::new(match &point_in_time {
        Some(_) => query(page, "namespace").into_iter().collect(),
        None => Vec::<String>::new(),
    });
    let chosen = RwSignal::new(
        query(page, "namespace")
            .into_iter()
            .collect::<Vec<String>>(),
    );
    let mapping = RwSignal::new(std::collections::BTreeMap::<String, String>::new());
    let policy = RwSignal::new("skip".to_string());
    let allow_partial = RwSignal::new(false);
    let resources = RwSignal::new(String::new());
    let plan = RwSignal::new(None::<Value>);
    let run = RwSignal::new(None::<Value>);
    let status = RwSignal::new(String::new());
    let load_namespaces = move || {
        let b = backup.get_untracked();
        if b.is_empty() {
            return;
        }
        api::spawn(async move {
            match api::request("GET", &format!("/api/v1/backups/{b}/contents"), None).await {
                Ok(v) => {
                    let mut found: Vec<String> = v["resources"]
                        .as_object()
                        .map(|r| {
                            r.values()
                                .filter_map(|by_ns| by_ns.as_object())
                                .flat_map(|o| o.keys().cloned())
                                .filter(|k| k != "(cluster)")
                                .collect()
                        })
                        .unwrap_or_default();
                    found.sort();
                    found.dedup();
                    available.set(found);
                }
                Err(e) => status.set(e),
            }
        });
    };
    let spec = move |dry_run: bool| {
        let map: serde_json::Map<String, Value> = mapping
            .get_untracked()
            .into_iter()
            .filter(|(from, to)| !to.trim().is_empty() && to.trim() != from)
            .map(|(f, t)| (f, Value::String(t.trim().to_string())))
            .collect();
        let included_resources: Vec<String> = resources
            .get_untracked()
            .split(',')
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect();
        let (from_schedule, at) = instant.get_value().unzip();
        let backup_name = if at.is_some() {
            String::new()
        } else {
            backup.get_untracked()
        };
        json!({"spec": {"backupName": backup_name, "fromSchedule": from_schedule, "at": at,
                        "includedNamespaces": chosen.get_untracked(),
                        "includedResources": included_resources,
                        "namespaceMapping": map, "existingResourcePolicy": policy.get_untracked(), "dryRun": dry_run,
                        "allowPartial": allow_partial.get_untracked()}})
    };
    // Polls a restore until it leaves New/InProgress, showing it as it goes.
    let follow = move |name: String, into: RwSignal<Option<Value>>| async move {
        loop {
            match api::request("GET", &format!("/api/v1/restores/{name}"), None).await {
                Ok(v) => {
                    let phase = v["phase"].as_str().unwrap_or_default().to_string();
                    into.set(Some(v));
                    if !matches!(phase.as_str(), "New" | "InProgress") {
                        break;
                    }
                }
                Err(e) => {
                    status.set(e);
                    break;
                }
            }
            sleep_ms(400).await;
        }
    };
    let has_source = {
        let pit = point_in_time.is_some();
        move || pit || !backup.get().is_empty()
    };
    let make_plan = move |_| {
        status.set("Planning…".into());
        run.set(None);
        api::spawn(async move {
            match api::request("POST", "/api/v1/restores", Some(spec(true))).await {
                Ok(v) => {
                    status.set(String::new());
                    follow(text(&v["name"]), plan).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let start = move |_| {
        status.set("Restoring…".into());
        api::spawn(async move {
            match api::request("POST", "/api/v1/restores", Some(spec(false))).await {
                Ok(v) => {
                    status.set(String::new());
                    follow(text(&v["name"]), run).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let backup_names = move || {
        items(&backups_list()["items"])
            .into_iter()
            .filter(|b| b["phase"] == "Completed" || b["phase"] == "PartiallyFailed")
            .map(|b| (text(&b["name"]), time(&b["completedAt"])))
            .collect::<Vec<_>>()
    };
    view! {
        <h1>"Restore"</h1>
        <noscript><p class="note">"The restore wizard needs JavaScript; the CLI does the same: lifeboat restore create --from-backup NAME."</p></noscript>
        <ol class="steps">
            {point_in_time.clone().map(|(schedule, at)| view! {
                <li data-point-in-time="">
                    <h2>"1. A point in time"</h2>
                    <p>"As it was at " <strong>{when(Some(&at))}</strong> " (" <code>{at.clone()}</code> "): schedule "
                        <code>{schedule.clone()}</code> "'s newest backup before then, with every change after it replayed up to that instant. The plan names the backup and any gaps."</p>
                </li>
            })}
            <li class:hidden=point_in_time.is_some()>
                <h2>"1. Choose a backup"</h2>
                {move || if backup_names().is_empty() { Some(empty("No completed backups to restore from. Back up first.")) } else { None }}
                <label>"Backup "
                    <select name="backup" on:change=move |ev| { backup.set(event_target_value(&ev)); chosen.set(Vec::new()); plan.set(None); load_namespaces(); }>
                        <option value="" selected=move || backup.get().is_empty()>"— choose —"</option>
                        {move || backup_names().into_iter().map(|(n, at)| {
                            let selected = backup.get_untracked() == n;
                            view! { <option value=n.clone() selected=selected>{format!("{n} ({at})")}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <button type="button" on:click=move |_| load_namespaces()>"Show its namespaces"</button>
            </li>
            <li>
                <h2>"2. Namespaces, resources, mapping and conflicts"</h2>
                {move || {
                    let ns = available.get();
                    if ns.is_empty() {
                        return view! { <p class="empty">"Choose a backup, then “Show its namespaces”."</p> }.into_any();
                    }
                    ns.into_iter().map(|n| {
                        let (n1, n2, n3) = (n.clone(), n.clone(), n.clone());
                        view! {
                            <fieldset class="ns-row">
                                <legend>{n.clone()}</legend>
                                <label><input type="checkbox" name="namespace" value=n.clone()
                                    prop:checked=move || chosen.get().contains(&n1)
                                    on:change=move |ev| { let on = event_target_checked(&ev); let n = n2.clone(); chosen.update(|c| { c.retain(|x| *x != n); if on { c.push(n); } }); } />
                                    " restore"</label>
                                <label>" as namespace " <input name=format!("map-{n}") placeholder=n.clone() on:input=move |ev| { let v = event_target_value(&ev); let n = n3.clone(); mapping.update(|m| { m.insert(n, v); }); } /></label>
                            </fieldset>
                        }
                    }).collect_view().into_any()
                }}
                <label>"Only these resources (comma-separated, e.g. deployments.apps,configmaps; empty for all) "
                    <input name="resources" prop:value=move || resources.get() on:input=move |ev| resources.set(event_target_value(&ev)) />
                </label>
                <label>"If an object already exists "
                    <select name="policy" on:change=move |ev| policy.set(event_target_value(&ev))>
                        <option value="skip">"skip it (keep what is there)"</option>
                        <option value="update">"update it to the backup's version"</option>
                    </select>
                </label>
            </li>
            <li>
                <h2>"3. Review the plan"</h2>
                <button type="button" on:click=make_plan prop:disabled=move || !has_source()>"Show the plan"</button>
                {move || plan.get().map(plan_view)}
            </li>
            <li>
                <h2>"4. Restore"</h2>
                {move || {
                    let forbidden: Vec<Value> = plan
                        .get()
                        .map(|p| items(&p["plan"]["items"]).into_iter().filter(|i| i["action"] == "forbidden").collect())
                        .unwrap_or_default();
                    (!forbidden.is_empty()).then(|| view! {
                        <fieldset class="allow-partial">
                            <legend>"Items you may not write"</legend>
                            <ul class="plain">{forbidden.into_iter().map(|i| view! {
                                <li>{format!("{} {}{}: {}", text(&i["groupResource"]),
                                    i["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default(),
                                    text(&i["name"]), text(&i["reason"]))}</li>
                            }).collect_view()}</ul>
                            <label><input type="checkbox" name="allowPartial"
                                prop:checked=move || allow_partial.get()
                                on:change=move |ev| allow_partial.set(event_target_checked(&ev)) />
                                " Restore the rest without these (the restore ends PartiallyFailed)"</label>
                        </fieldset>
                    })
                }}
                <button type="button" class="primary" on:click=start prop:disabled=move || plan.get().is_none_or(|p| p["phase"] != "Planned")>"Restore now"</button>
                {move || run.get().map(progress_view)}
            </li>
        </ol>
        <p role="status" aria-live="polite" class="status">{move || status.get()}</p>
    }
}

async fn sleep_ms(ms: u32) {
    #[cfg(feature = "hydrate")]
    {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(w) = web_sys::window() {
                let _ =
                    w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ms;
}

fn plan_view(r: Value) -> impl IntoView {
    let actions = r["plan"]["summary"]["actions"].clone();
    let count = |a: &str| actions[a].as_u64().unwrap_or(0);
    let plan_items = items(&r["plan"]["items"]);
    // Volume data is listed on its own, with its size, before anything starts.
    let volume_lines: Vec<Value> = plan_items
        .iter()
        .filter(|i| i["groupResource"] == "volumes.lifeboat.io")
        .cloned()
        .collect();
    view! {
        <div class="plan" data-phase=text(&r["phase"])>
            <p>{badge(r["phase"].as_str().unwrap_or_default())} " " {note(&r["phaseReason"])}</p>
            {point_in_time_view(&r["plan"]["pointInTime"])}
            {(!volume_lines.is_empty()).then(|| view! {
                <section class="volumes" aria-labelledby="plan-volumes-h">
                    <h3 id="plan-volumes-h">"Volume data"</h3>
                    <ul class="plain">{volume_lines.into_iter().map(|v| view! {
                        <li data-volume=text(&v["name"])>
                            <strong>{format!("{}/{}", text(&v["namespace"]), text(&v["name"]))}</strong>
                            {format!(" — {}: {}", text(&v["action"]), text(&v["reason"]))}
                        </li>
                    }).collect_view()}</ul>
                </section>
            })}
            <ul class="counts">
                <li><strong>{count("create")}</strong>" to create"</li>
                <li><strong>{count("skip")}</strong>" to skip"</li>
                <li><strong>{count("conflict")}</strong>" in conflict"</li>
                <li><strong>{count("update")}</strong>" to update"</li>
                <li><strong>{count("excluded")}</strong>" excluded"</li>
                {(count("unknown") > 0).then(|| view! {
                    <li><strong>{count("unknown")}</strong>" unknown (you may not read them)"</li>
                })}
                {(count("forbidden") > 0).then(|| view! {
                    <li data-forbidden=count("forbidden").to_string()><strong>{count("forbidden")}</strong>" forbidden (you may not write them; each says why)"</li>
                })}
            </ul>
            <details><summary>"Every item"</summary>
                <table>
                    <thead><tr><th scope="col">"Action"</th><th scope="col">"Resource"</th><th scope="col">"Namespace"</th><th scope="col">"Name"</th><th scope="col">"Why / diff"</th></tr></thead>
                    <tbody>{plan_items.into_iter().map(|i| view! {
                        <tr><td>{text(&i["action"])}</td><td>{text(&i["groupResource"])}</td><td>{text(&i["namespace"])}</td><td>{text(&i["name"])}</td>
                            <td>{text(&i["reason"])}{(!items(&i["diff"]).is_empty()).then(|| view! { <pre class="diff">{items(&i["diff"]).iter().map(text).collect::<Vec<_>>().join("\n")}</pre> })}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            </details>
        </div>
    }
}

/// What a point-in-time plan rests on: the backup, the changes replayed,
/// where volume data comes from, and the gaps in the window.
fn point_in_time_view(p: &Value) -> Option<impl IntoView + use<>> {
    if !p.is_object() {
        return None;
    }
    let gaps = items(&p["gaps"]);
    Some(view! {
        <section class="point-in-time" aria-labelledby="pit-h">
            <h3 id="pit-h">{format!("As at {}", time(&p["at"]))}</h3>
            <p>"Backup " <a href=format!("/backups/{}", text(&p["base"]))>{text(&p["base"])}</a>
                {format!(" (begun {}), and {} change(s) from {} journal segment(s) replayed over it.",
                    time(&p["baseStartedAt"]), text(&p["changesApplied"]), text(&p["segmentsRead"]))}</p>
            {p["volumesFrom"].as_str().map(|v| view! { <p>"Volume data: " {v.to_string()}</p> })}
            {p["unwritten"].as_str().map(|u| view! { <p class="note">{badge("Warning")} {format!(" {u}")}</p> })}
            {if gaps.is_empty() {
                view! { <p data-gaps="none">"No gaps: every change up to the instant is known."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain gaps">{gaps.into_iter().map(|g| view! {
                        <li data-gap=text(&g["groupResource"])>{badge("Warning")}
                            {format!(" gap {} – {} ({}): {}", time(&g["from"]), time(&g["to"]), text(&g["groupResource"]), text(&g["reason"]))}</li>
                    }).collect_view()}</ul>
                }.into_any()
            }}
        </section>
    })
}

/// A running or finished restore: counts, then every item it creates or
/// updates with its result as it lands ("waiting" until then).
fn progress_view(r: Value) -> impl IntoView {
    const SHOWN: usize = 500;
    let done = r["itemsDone"].as_u64().unwrap_or(0);
    let total = r["itemsTotal"].as_u64().unwrap_or(0);
    let results = r["plan"]["summary"]["results"].clone();
    let lines: Vec<Value> = items(&r["plan"]["items"])
        .into_iter()
        .filter(|i| matches!(i["action"].as_str(), Some("create" | "update")))
        .collect();
    let more = lines.len().saturating_sub(SHOWN);
    let name = text(&r["name"]);
    view! {
        <div class="run" data-phase=text(&r["phase"])>
            <p role="status" aria-live="polite">{badge(r["phase"].as_str().unwrap_or_default())} {format!(" {done} of {total} items")} " " {note(&r["phaseReason"])}</p>
            <progress max=total.max(1).to_string() value=done.to_string() aria-label="Restore progress"></progress>
            {(r["volumes"]["volumes"].as_array().is_some_and(|v| !v.is_empty())).then(|| {
                let volumes = &r["volumes"];
                view! {
                    <p class="volumes">"Volume data: " {format!("{} of {} written", bytes(&volumes["bytesDone"]), bytes(&volumes["bytesTotal"]))}
                        <progress max=volumes["bytesTotal"].as_u64().unwrap_or(0).max(1).to_string() value=volumes["bytesDone"].as_u64().unwrap_or(0).to_string() aria-label="Volume data written"></progress>
                    </p>
                }
            })}
            <p>{results.as_object().map(|o| o.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(" · ")).unwrap_or_default()}</p>
            <table class="items">
                <caption>"Items, in the order they are restored"</caption>
                <thead><tr><th scope="col">"Result"</th><th scope="col">"Resource"</th><th scope="col">"Namespace"</th><th scope="col">"Name"</th><th scope="col">"Message"</th></tr></thead>
                <tbody>{lines.into_iter().take(SHOWN).map(|i| {
                    let result = i["result"].as_str().unwrap_or("waiting").to_string();
                    view! {
                        <tr data-result=result.clone()><td>{badge(&result)}</td><td>{text(&i["groupResource"])}</td><td>{text(&i["namespace"])}</td><td>{text(&i["name"])}</td><td>{text(&i["message"])}</td></tr>
                    }
                }).collect_view()}</tbody>
            </table>
            {(more > 0).then(|| view! { <p class="note">{format!("…and {more} more: ")}<a href=format!("/api/v1/restores/{name}/log")>"the whole log"</a></p> })}
        </div>
    }
}
