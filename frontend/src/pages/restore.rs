//! The restore wizard: backup → selection and mapping → plan → progress.

use super::*;
use crate::model::{
    Action, BackupContents, BackupSpec, BackupView, CreateRestore, ExistingResourcePolicy, Items,
    PlanItem, PointInTime, RestoreSpec, RestoreView,
};

/// The backups a restore can read: Completed or PartiallyFailed.
fn restorable(v: &Value) -> Vec<BackupView> {
    serde_json::from_value::<Items<BackupView>>(v.clone())
        .map(|list| list.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b.phase == "Completed" || b.phase == "PartiallyFailed")
        .collect()
}

pub(super) fn restore(page: RwSignal<PageData>) -> impl IntoView {
    let backups_list = data(page, "backups");
    let preselected = query(page, "backup").unwrap_or_else(|| {
        // From a namespace page: the newest completed backup covering it.
        let ns = query(page, "namespace");
        page.with_untracked(|p| {
            restorable(&p.get("backups"))
                .into_iter()
                .find(|b| {
                    let inc = serde_json::from_value::<BackupSpec>(b.spec.clone())
                        .map(|s| s.included_namespaces)
                        .unwrap_or_default();
                    ns.as_ref()
                        .is_some_and(|ns| inc.is_empty() || inc.iter().any(|n| n == ns))
                })
                .map(|b| b.name)
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
    // One object of the backup (its contents' "Restore this object…"):
    // `kind/namespace/name` or `kind/name`.
    let object = StoredValue::new(query(page, "object"));
    let object_namespace = object.get_value().and_then(|o| {
        o.split('/')
            .nth(1)
            .filter(|_| o.split('/').count() == 3)
            .map(str::to_string)
    });
    let chosen = RwSignal::new(
        query(page, "namespace")
            .into_iter()
            .chain(object_namespace)
            .collect::<Vec<String>>(),
    );
    let mapping = RwSignal::new(std::collections::BTreeMap::<String, String>::new());
    let policy = RwSignal::new("skip".to_string());
    let allow_partial = RwSignal::new(false);
    let resources = RwSignal::new(String::new());
    // Another cluster: `gp2:standard, …` and `old.example/=registry.local/, …`.
    let classes = RwSignal::new(String::new());
    let images = RwSignal::new(String::new());
    let plan = RwSignal::new(None::<RestoreView>);
    let run = RwSignal::new(None::<RestoreView>);
    let status = RwSignal::new(String::new());
    let load_namespaces = move || {
        let b = backup.get_untracked();
        if b.is_empty() {
            return;
        }
        api::spawn(async move {
            let url = format!("/api/v1/backups/{b}/contents");
            match api::call::<BackupContents>("GET", &url, None::<&()>).await {
                Ok(contents) => {
                    let mut found: Vec<String> = contents
                        .resources
                        .values()
                        .flat_map(|by_ns| by_ns.keys().cloned())
                        .filter(|k| k != "(cluster)")
                        .collect();
                    found.sort();
                    found.dedup();
                    available.set(found);
                }
                Err(e) => status.set(e),
            }
        });
    };
    // A backup named in the address (its page's "Restore…"): its
    // namespaces load at once, as they do when one is chosen below.
    if point_in_time.is_none() {
        load_namespaces();
    }
    let spec = move |dry_run: bool| -> Result<CreateRestore, String> {
        let storage_class_mapping = pairs(&classes.get_untracked(), ':')
            .map_err(|e| format!("StorageClass mapping: {e}"))?;
        let image_mapping =
            pairs(&images.get_untracked(), '=').map_err(|e| format!("Image mapping: {e}"))?;
        let namespace_mapping = mapping
            .get_untracked()
            .into_iter()
            .filter(|(from, to)| !to.trim().is_empty() && to.trim() != from)
            .map(|(f, t)| (f, t.trim().to_string()))
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
        let existing_resource_policy = match policy.get_untracked().as_str() {
            "update" => ExistingResourcePolicy::Update,
            _ => ExistingResourcePolicy::Skip,
        };
        Ok(CreateRestore {
            name: None,
            spec: RestoreSpec {
                backup_name,
                from_schedule,
                at,
                included_namespaces: chosen.get_untracked(),
                included_names: object.get_value().into_iter().collect(),
                storage_class_mapping,
                image_mapping,
                included_resources,
                namespace_mapping,
                existing_resource_policy,
                dry_run,
                allow_partial: allow_partial.get_untracked(),
                ..Default::default()
            },
        })
    };
    // Polls a restore until it leaves New/InProgress, showing it as it goes.
    let follow = move |name: String, into: RwSignal<Option<RestoreView>>| async move {
        loop {
            let url = format!("/api/v1/restores/{name}");
            match api::call::<RestoreView>("GET", &url, None::<&()>).await {
                Ok(v) => {
                    let phase = v.phase.clone();
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
        let body = match spec(true) {
            Ok(body) => body,
            Err(e) => return status.set(e),
        };
        api::spawn(async move {
            match api::call::<RestoreView>("POST", "/api/v1/restores", Some(&body)).await {
                Ok(v) => {
                    status.set(String::new());
                    follow(v.name, plan).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let start = move |_| {
        status.set("Restoring…".into());
        let body = match spec(false) {
            Ok(body) => body,
            Err(e) => return status.set(e),
        };
        api::spawn(async move {
            match api::call::<RestoreView>("POST", "/api/v1/restores", Some(&body)).await {
                Ok(v) => {
                    status.set(String::new());
                    follow(v.name, run).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let backup_names = move || {
        restorable(&backups_list())
            .into_iter()
            .map(|b| (b.name, when(b.completed_at.as_deref())))
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
            </li>
            <li>
                <h2>"2. Namespaces, resources, mapping and conflicts"</h2>
                {object.get_value().map(|o| view! {
                    <p class="note" data-object=o.clone()>"Only this object: " <code>{o.clone()}</code> " (and, for a claim, its volume data). Map its namespace below to restore it next to the original."</p>
                })}
                {move || {
                    let ns = available.get();
                    if ns.is_empty() {
                        return view! { <p class="empty">"Choose a backup: its namespaces show here."</p> }.into_any();
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
                <fieldset class="another-cluster">
                    <legend>"Into another cluster"</legend>
                    <label>"StorageClass mapping (old:new, comma-separated, e.g. gp2:standard) "
                        <input name="storage-class-mapping" prop:value=move || classes.get() on:input=move |ev| classes.set(event_target_value(&ev)) />
                    </label>
                    <label>"Image mapping (old=new prefixes, comma-separated, e.g. old.example/=registry.local/) "
                        <input name="image-mapping" prop:value=move || images.get() on:input=move |ev| images.set(event_target_value(&ev)) />
                    </label>
                </fieldset>
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
                    let forbidden: Vec<PlanItem> = plan
                        .get()
                        .and_then(|r| r.plan)
                        .map(|p| p.items.into_iter().filter(|i| i.action == Action::Forbidden).collect())
                        .unwrap_or_default();
                    (!forbidden.is_empty()).then(|| view! {
                        <fieldset class="allow-partial">
                            <legend>"Items you may not write"</legend>
                            <ul class="plain">{forbidden.into_iter().map(|i| view! {
                                <li>{format!("{} {}{}: {}", i.group_resource,
                                    i.namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default(),
                                    i.name, i.reason.as_deref().unwrap_or("—"))}</li>
                            }).collect_view()}</ul>
                            <label><input type="checkbox" name="allowPartial"
                                prop:checked=move || allow_partial.get()
                                on:change=move |ev| allow_partial.set(event_target_checked(&ev)) />
                                " Restore the rest without these (the restore ends PartiallyFailed)"</label>
                        </fieldset>
                    })
                }}
                <button type="button" class="primary" on:click=start prop:disabled=move || plan.get().is_none_or(|p| p.phase != "Planned")>"Restore now"</button>
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

/// A line's field, or a dash.
fn or_dash(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or("—").to_string()
}

fn plan_view(r: RestoreView) -> impl IntoView {
    let plan = r.plan.unwrap_or_default();
    let summary = plan.summary;
    let count = move |a: Action| summary.count(a);
    // Volume data is listed on its own, with its size, before anything starts.
    let volume_lines: Vec<PlanItem> = plan
        .items
        .iter()
        .filter(|i| i.group_resource == "volumes.lifeboat.io")
        .cloned()
        .collect();
    // What will go wrong unless the options change, shown before anything else.
    let warnings: Vec<(String, String)> = plan
        .items
        .iter()
        .flat_map(|i| {
            let what = format!(
                "{} {}/{}",
                i.group_resource,
                or_dash(i.namespace.as_deref()),
                i.name
            );
            i.warnings.iter().map(move |w| (what.clone(), w.clone()))
        })
        .collect();
    view! {
        <div class="plan" data-phase=r.phase.clone()>
            <p>{badge(&r.phase)} " " {r.phase_reason.clone()}</p>
            {(!warnings.is_empty()).then(|| view! {
                <section class="warnings" role="alert" aria-labelledby="plan-warnings-h">
                    <h3 id="plan-warnings-h">"Warnings"</h3>
                    <ul class="plain">{warnings.into_iter().map(|(what, w)| {
                        let shown = what.clone();
                        view! { <li data-warning=what><strong>{shown}</strong>": "{w}</li> }
                    }).collect_view()}</ul>
                </section>
            })}
            {plan.point_in_time.as_ref().map(point_in_time_view)}
            {(!volume_lines.is_empty()).then(|| view! {
                <section class="volumes" aria-labelledby="plan-volumes-h">
                    <h3 id="plan-volumes-h">"Volume data"</h3>
                    <ul class="plain">{volume_lines.into_iter().map(|v| view! {
                        <li data-volume=v.name.clone()>
                            <strong>{format!("{}/{}", or_dash(v.namespace.as_deref()), v.name)}</strong>
                            {format!(" — {}: {}", v.action.as_str(), or_dash(v.reason.as_deref()))}
                        </li>
                    }).collect_view()}</ul>
                </section>
            })}
            <ul class="counts">
                <li><strong>{count(Action::Create)}</strong>" to create"</li>
                <li><strong>{count(Action::Skip)}</strong>" to skip"</li>
                <li><strong>{count(Action::Conflict)}</strong>" in conflict"</li>
                <li><strong>{count(Action::Update)}</strong>" to update"</li>
                <li><strong>{count(Action::Excluded)}</strong>" excluded"</li>
                {(count(Action::Unknown) > 0).then(|| view! {
                    <li><strong>{count(Action::Unknown)}</strong>" unknown (you may not read them)"</li>
                })}
                {(count(Action::Forbidden) > 0).then(|| view! {
                    <li data-forbidden=count(Action::Forbidden).to_string()><strong>{count(Action::Forbidden)}</strong>" forbidden (you may not write them; each says why)"</li>
                })}
            </ul>
            <details><summary>"Every item"</summary>
                <table>
                    <thead><tr><th scope="col">"Action"</th><th scope="col">"Resource"</th><th scope="col">"Namespace"</th><th scope="col">"Name"</th><th scope="col">"Why / diff"</th></tr></thead>
                    <tbody>{plan.items.into_iter().map(|i| view! {
                        <tr><td>{i.action.as_str()}</td><td>{i.group_resource}</td><td>{or_dash(i.namespace.as_deref())}</td><td>{i.name}</td>
                            <td>{or_dash(i.reason.as_deref())}{(!i.diff.is_empty()).then(|| view! { <pre class="diff">{i.diff.join("\n")}</pre> })}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            </details>
        </div>
    }
}

/// What a point-in-time plan rests on: the backup, the changes replayed,
/// where volume data comes from, and the gaps in the window.
fn point_in_time_view(p: &PointInTime) -> impl IntoView + use<> {
    let p = p.clone();
    view! {
        <section class="point-in-time" aria-labelledby="pit-h">
            <h3 id="pit-h">{format!("As at {}", when(p.at.as_deref()))}</h3>
            <p>"Backup " <a href=format!("/backups/{}", p.base)>{p.base.clone()}</a>
                {format!(" (begun {}), and {} change(s) from {} journal segment(s) replayed over it.",
                    when(p.base_started_at.as_deref()), p.changes_applied, p.segments_read)}</p>
            {p.volumes_from.map(|v| view! { <p>"Volume data: " {v}</p> })}
            {p.unwritten.map(|u| view! { <p class="note">{badge("Warning")} {format!(" {u}")}</p> })}
            {if p.gaps.is_empty() {
                view! { <p data-gaps="none">"No gaps: every change up to the instant is known."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain gaps">{p.gaps.into_iter().map(|g| view! {
                        <li data-gap=g.group_resource.clone()>{badge("Warning")}
                            {format!(" gap {} – {} ({}): {}", when(Some(&g.from)), when(Some(&g.to)), g.group_resource, g.reason)}</li>
                    }).collect_view()}</ul>
                }.into_any()
            }}
        </section>
    }
}

/// `a:b, c:d` (with `sep`) as a mapping; the error names the pair that is
/// not one.
fn pairs(text: &str, sep: char) -> Result<std::collections::BTreeMap<String, String>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once(sep)
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .ok_or_else(|| format!("`{p}` is not old{sep}new"))
        })
        .collect()
}

/// A running or finished restore: counts, then every item it creates or
/// updates with its result as it lands ("waiting" until then).
fn progress_view(r: RestoreView) -> impl IntoView {
    const SHOWN: usize = 500;
    let done = r.items_done;
    let total = r.items_total.unwrap_or(0);
    let plan = r.plan.unwrap_or_default();
    let results = plan
        .summary
        .results
        .iter()
        .map(|(k, v)| format!("{}: {v}", k.as_str()))
        .collect::<Vec<_>>()
        .join(" · ");
    let lines: Vec<PlanItem> = plan
        .items
        .into_iter()
        .filter(|i| matches!(i.action, Action::Create | Action::Update))
        .collect();
    // The post-restore hooks that ran in the pods the items made.
    let hooks: Vec<_> = lines.iter().flat_map(|i| i.hooks.iter().cloned()).collect();
    let more = lines.len().saturating_sub(SHOWN);
    let name = r.name.clone();
    let volumes = r.volumes;
    view! {
        <div class="run" data-phase=r.phase.clone()>
            <p role="status" aria-live="polite">{badge(&r.phase)} {format!(" {done} of {total} items")} " " {r.phase_reason.clone()}</p>
            <progress max=total.max(1).to_string() value=done.to_string() aria-label="Restore progress"></progress>
            {(!volumes.volumes.is_empty()).then(|| view! {
                <p class="volumes">"Volume data: " {format!("{} of {} written", size(Some(volumes.bytes_done as i64)), size(Some(volumes.bytes_total as i64)))}
                    <progress max=volumes.bytes_total.max(1).to_string() value=volumes.bytes_done.to_string() aria-label="Volume data written"></progress>
                </p>
            })}
            <p>{results}</p>
            <table class="items">
                <caption>"Items, in the order they are restored"</caption>
                <thead><tr><th scope="col">"Result"</th><th scope="col">"Resource"</th><th scope="col">"Namespace"</th><th scope="col">"Name"</th><th scope="col">"Message"</th></tr></thead>
                <tbody>{lines.into_iter().take(SHOWN).map(|i| {
                    let result = i.result.map_or("waiting", |r| r.as_str()).to_string();
                    view! {
                        <tr data-result=result.clone()><td>{badge(&result)}</td><td>{i.group_resource}</td><td>{or_dash(i.namespace.as_deref())}</td><td>{i.name}</td><td>{or_dash(i.message.as_deref())}</td></tr>
                    }
                }).collect_view()}</tbody>
            </table>
            {(more > 0).then(|| view! { <p class="note">{format!("…and {more} more: ")}<a href=format!("/api/v1/restores/{name}/log")>"the whole log"</a></p> })}
            {(!hooks.is_empty()).then(|| view! {
                <section aria-labelledby="restore-hooks-h">
                    <h2 id="restore-hooks-h">"Hooks"</h2>
                    {hook_table(hooks)}
                </section>
            })}
        </div>
    }
}
