//! One backup: facts, progress, log, contents, download, delete.

use super::*;
use crate::model::{BackupContents, BackupDetail, BackupSpec, DrillView, Items, VerifyReport};

pub(super) fn backup(page: RwSignal<PageData>) -> impl IntoView {
    let b = data(page, "backup");
    let contents = data(page, "contents");
    let name = param(page);
    let shown = RwSignal::new(None::<(String, String)>);
    let log = RwSignal::new(None::<String>);
    let confirm = RwSignal::new(String::new());
    let asking = RwSignal::new(false);
    let status = RwSignal::new(String::new());
    let open = {
        let name = name.clone();
        move |path: String| {
            let name = name.clone();
            api::spawn(async move {
                let url = format!("/api/v1/backups/{name}/contents?path={path}");
                let body = match api::request("GET", &url, None).await {
                    Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
                    Err(e) => e,
                };
                shown.set(Some((path, body)));
            });
        }
    };
    let show_log = {
        let name = name.clone();
        move |_| {
            let name = name.clone();
            api::spawn(async move {
                let text =
                    match api::request("GET", &format!("/api/v1/backups/{name}/log"), None).await {
                        Ok(Value::String(s)) => s,
                        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
                        Err(e) => e,
                    };
                log.set(Some(text));
            });
        }
    };
    let delete = {
        let name = name.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let name = name.clone();
            status.set("Deleting…".into());
            api::spawn(async move {
                match api::request("DELETE", &format!("/api/v1/backups/{name}"), None).await {
                    Ok(_) => api::navigate("/backups"),
                    Err(e) => status.set(format!("Not deleted: {e}")),
                }
            });
        }
    };
    let verifying = RwSignal::new(false);
    let verified = RwSignal::new(None::<VerifyReport>);
    let verify = {
        let name = name.clone();
        move |_| {
            let name = name.clone();
            verifying.set(true);
            verified.set(None);
            api::spawn(async move {
                let url = format!("/api/v1/backups/{name}/verify");
                let answer = match api::call::<VerifyReport>("POST", &url, Some(&json!({}))).await {
                    Ok(report) => report,
                    Err(e) => VerifyReport {
                        problems: vec![e],
                        ..Default::default()
                    },
                };
                verified.set(Some(answer));
                verifying.set(false);
                api::refresh(page).await;
            });
        }
    };
    let drills = data(page, "drills");
    let drilling = RwSignal::new(String::new());
    let drill = {
        let name = name.clone();
        move |_| {
            let name = name.clone();
            drilling.set("Starting a drill…".into());
            api::spawn(async move {
                let url = format!("/api/v1/backups/{name}/drill");
                match api::call::<DrillView>("POST", &url, Some(&json!({}))).await {
                    Ok(d) => drilling.set(format!(
                        "Drill {} started: restoring into scratch namespaces; this page shows its outcome.",
                        d.id
                    )),
                    Err(e) => drilling.set(format!("No drill: {e}")),
                }
                api::refresh(page).await;
            });
        }
    };
    let name_for_check = name.clone();
    view! {
        <h1>"Backup " <code>{name.clone()}</code></h1>
        {move || {
            let detail = match read::<BackupDetail>(&b()) {
                Ok(detail) => detail,
                Err(e) => return e,
            };
            let v = &detail.backup;
            let running = matches!(v.phase.as_str(), "New" | "InProgress");
            view! {
                <dl class="facts">
                    <dt>"Phase"</dt><dd data-phase=v.phase.clone()>{badge(&v.phase)} " " {v.phase_reason.clone()}</dd>
                    <dt>"Items"</dt><dd>{v.items_done}</dd>
                    <dt>"Size"</dt><dd>{size(v.size_bytes)}</dd>
                    <dt>"Location"</dt><dd><a href="/storage">{v.storage_location.clone()}</a></dd>
                    <dt>"Started"</dt><dd>{when(v.started_at.as_deref())}</dd>
                    <dt>"Completed"</dt><dd>{when(v.completed_at.as_deref())}</dd>
                    <dt>"Took"</dt><dd>{between(v.started_at.as_deref(), v.completed_at.as_deref()).map(duration).unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Expires"</dt><dd>{v.expires_at.as_deref().map(|t| when(Some(t))).unwrap_or_else(|| "never".into())}</dd>
                    <dt>"Namespaces"</dt><dd>{namespaces_of(&v.spec)}</dd>
                    <dt>"Warnings / errors"</dt><dd>{format!("{} / {}", v.warnings, v.errors)}</dd>
                    {trust_facts(&detail)}
                </dl>
                {running.then(|| view! {
                    <p role="status" aria-live="polite"><progress aria-label="Backup progress"></progress> {format!(" {} items, {} written so far", v.items_done, size(Some(v.bytes_done)))}</p>
                })}
                {v.missing_from_storage.then(|| view! { <div class="error" role="alert">"This backup's manifest is missing from storage: it cannot be restored. Check the bucket."</div> })}
                {volumes(&detail, running)}
                {hooks(&detail)}
            }
            .into_any()
        }}
        <div class="actions">
            <a class="button" href=format!("/api/v1/backups/{name}/download") download>"Download archive"</a>
            <a class="button" href=format!("/restore?backup={name}")>"Restore from it…"</a>
            <button type="button" on:click=show_log>"Show log"</button>
            <button type="button" on:click=verify prop:disabled=move || verifying.get()>"Verify"</button>
            <button type="button" on:click=drill>"Drill"</button>
            <button type="button" class="danger" on:click=move |_| asking.set(true)>"Delete…"</button>
        </div>
        {move || asking.get().then(|| {
            let expected = name_for_check.clone();
            view! {
                <form class="panel danger-zone" on:submit=delete.clone() aria-labelledby="del-h">
                    <h2 id="del-h">"Delete this backup?"</h2>
                    <p>"Its archive is removed from storage and cannot be brought back. Type its name to confirm."</p>
                    <label>"Backup name" <input name="confirm" autocomplete="off" prop:value=move || confirm.get() on:input=move |ev| confirm.set(event_target_value(&ev)) /></label>
                    <button type="submit" class="danger" prop:disabled=move || confirm.get() != expected>"Delete permanently"</button>
                    <button type="button" on:click=move |_| asking.set(false)>"Cancel"</button>
                    <p role="status" aria-live="polite">{move || status.get()}</p>
                </form>
            }
        })}
        {move || verifying.get().then(|| view! {
            <p role="status" aria-live="polite"><progress aria-label="Verifying"></progress> " Reading every object back from storage…"</p>
        })}
        {move || verified.get().map(|r| {
            let ok = r.ok;
            view! {
                <section class="panel" aria-labelledby="verify-h">
                    <h2 id="verify-h">{if ok { "Verified: nothing wrong" } else { "Verification failed" }}</h2>
                    <ul class="checks">
                        {r.checked.into_iter().map(|c| view! { <li data-check="ok">{"✓ "}{c}</li> }).collect_view()}
                        {r.problems.into_iter().map(|c| view! { <li data-check="problem" class="error">{"✗ "}{c}</li> }).collect_view()}
                    </ul>
                    {(!ok).then(|| view! { <p>"Do not rely on this backup: restore from another one, and check the bucket."</p> })}
                </section>
            }
        })}
        <p role="status" aria-live="polite">{move || drilling.get()}</p>
        {move || drill_list(&drills())}
        {move || log.get().map(|l| view! { <section><h2>"Log"</h2><pre class="log">{l}</pre></section> })}
        <section aria-labelledby="contents-h">
            <h2 id="contents-h">"Contents"</h2>
            {move || {
                let c = contents();
                if c.is_null() {
                    return empty("The contents can be browsed once the backup has completed.").into_any();
                }
                let tree = match read::<BackupContents>(&c) {
                    Ok(contents) => contents.resources,
                    Err(e) => return e,
                };
                let open = open.clone();
                let backup = name.clone();
                view! {
                    <div class="browser">
                        <ul class="tree" aria-label="Resources in this backup">
                            {tree.into_iter().map(|(resource, by_ns)| {
                                let open = open.clone();
                                let count: usize = by_ns.values().map(Vec::len).sum();
                                view! {
                                    <li><details><summary>{format!("{resource} ({count})")}</summary>
                                        <ul>{by_ns.into_iter().map(|(ns, names)| {
                                            let open = open.clone();
                                            let resource = resource.clone();
                                            view! { <li><span class="ns">{ns.clone()}</span><ul>{names.into_iter().map(|n| {
                                                let scope = if ns == "(cluster)" { "cluster".to_string() } else { format!("namespaces/{ns}") };
                                                let path = format!("resources/{resource}/{scope}/{n}.json");
                                                let open = open.clone();
                                                view! { <li><button type="button" class="link" on:click=move |_| open(path.clone())>{n}</button></li> }
                                            }).collect_view()}</ul></li> }
                                        }).collect_view()}</ul>
                                    </details></li>
                                }
                            }).collect_view()}
                        </ul>
                        <div class="object" aria-live="polite">
                            {move || match shown.get() {
                                Some((path, body)) => {
                                    // Surgery: this object alone, through the wizard's plan.
                                    let restore = object_of(&path).map(|object| view! {
                                        <a class="button" href=format!("/restore?backup={backup}&object={object}")>"Restore this object…"</a>
                                    });
                                    view! { <h3><code>{path}</code></h3>{restore}<pre>{body}</pre> }.into_any()
                                }
                                None => view! { <p class="empty">"Choose an object to see it as stored (Secret values are redacted)."</p> }.into_any(),
                            }}
                        </div>
                    </div>
                }
                .into_any()
            }}
        </section>
    }
}

/// A contents path (`resources/deployments.apps/namespaces/shop/web.json`)
/// as a restore's `includedNames` entry (`deployments.apps/shop/web`).
fn object_of(path: &str) -> Option<String> {
    let inner = path.strip_prefix("resources/")?.strip_suffix(".json")?;
    match inner.split('/').collect::<Vec<_>>().as_slice() {
        [resource, "cluster", name] => Some(format!("{resource}/{name}")),
        [resource, "namespaces", ns, name] => Some(format!("{resource}/{ns}/{name}")),
        _ => None,
    }
}

/// The namespaces a backup's spec selects, as a line.
fn namespaces_of(spec: &Value) -> String {
    match serde_json::from_value::<BackupSpec>(spec.clone()) {
        Ok(spec) if spec.included_namespaces.is_empty() => "all".into(),
        Ok(spec) => spec.included_namespaces.join(", "),
        Err(_) => "—".into(),
    }
}

/// The volume data: while running, each volume's bytes from the agents;
/// once written, what the manifest lists (size, files, method, duration, why not).
fn volumes(detail: &BackupDetail, running: bool) -> AnyView {
    let progress = &detail.progress.volumes;
    if running {
        if progress.volumes.is_empty() {
            return ().into_any();
        }
        let (done, total) = (progress.bytes_done, progress.bytes_total);
        return view! {
            <section aria-labelledby="volumes-h">
                <h2 id="volumes-h">"Volume data"</h2>
                <p role="status" aria-live="polite">
                    <progress aria-label="Volume data progress" max=total.max(1) as f64 value=done as f64></progress>
                    {format!(" {} of {}", size(Some(done as i64)), size(Some(total as i64)))}
                </p>
                <table>
                    <thead><tr><th scope="col">"Claim"</th><th scope="col">"State"</th><th scope="col">"Done"</th></tr></thead>
                    <tbody>{progress.volumes.iter().map(|p| view! {
                        <tr>
                            <th scope="row">{format!("{}/{}", p.namespace, p.pvc)}</th>
                            <td>{badge(&p.phase)}</td>
                            <td>{format!("{} of {}", size(Some(p.bytes_done as i64)), size(Some(p.bytes_total as i64)))}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table>
            </section>
        }
        .into_any();
    }
    let listed = detail
        .manifest
        .as_ref()
        .map(|m| m.volumes.clone())
        .unwrap_or_default();
    if listed.is_empty() {
        return ().into_any();
    }
    view! {
        <section aria-labelledby="volumes-h">
            <h2 id="volumes-h">"Volume data"</h2>
            <table>
                <thead><tr>
                    <th scope="col">"Claim"</th><th scope="col">"State"</th><th scope="col">"Size"</th>
                    <th scope="col">"Files"</th><th scope="col">"Method"</th><th scope="col">"Took"</th><th scope="col">"Why"</th>
                </tr></thead>
                <tbody>{listed.into_iter().map(|vol| view! {
                    <tr>
                        <th scope="row"><a href=format!("/namespaces/{}", vol.namespace)>{format!("{}/{}", vol.namespace, vol.pvc)}</a></th>
                        <td>{badge(&vol.phase)}</td>
                        <td>{size(Some(vol.bytes as i64))}</td>
                        <td>{vol.files}</td>
                        <td>{vol.method.as_str()}</td>
                        <td>{duration((vol.duration_ms / 1000) as i64)}</td>
                        <td>{vol.reason}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table>
        </section>
    }
    .into_any()
}

/// The backup hooks that ran around the pods' volume reads (docs/HOOKS.md).
fn hooks(detail: &BackupDetail) -> AnyView {
    let ran = detail
        .manifest
        .as_ref()
        .map(|m| m.hooks.clone())
        .unwrap_or_default();
    if ran.is_empty() {
        return ().into_any();
    }
    view! {
        <section aria-labelledby="hooks-h">
            <h2 id="hooks-h">"Hooks"</h2>
            {hook_table(ran)}
        </section>
    }
    .into_any()
}

/// The backup's restore drills, newest first, each with what it checked.
fn drill_list(v: &Value) -> AnyView {
    let all = match read::<Items<DrillView>>(v) {
        Ok(list) => list.items,
        Err(e) => return e,
    };
    if all.is_empty() {
        return view! {
            <section aria-labelledby="drills-h">
                <h2 id="drills-h">"Restore drills"</h2>
                {empty("Never drilled: \"Drill\" restores this backup into scratch namespaces, waits for its workloads and deletes them again.")}
            </section>
        }
        .into_any();
    }
    view! {
        <section aria-labelledby="drills-h">
            <h2 id="drills-h">"Restore drills"</h2>
            {all.into_iter().map(|d| {
                let scratch: Vec<String> = d.namespaces.iter().map(|(from, to)| format!("{from} → {to}")).collect();
                let outcome = match d.phase.as_str() {
                    "Passed" => format!("{} objects, {} volumes, ready in {:.1} s", d.objects, d.volumes,
                        d.ready_ms.unwrap_or(0) as f64 / 1000.0),
                    "Running" => "restoring and waiting for the workloads…".to_string(),
                    _ => d.reason.clone().unwrap_or_else(|| "—".into()),
                };
                let cleaned = if d.cleaned_at.is_some() { "scratch namespaces deleted" } else if d.phase == "Running" { "" } else { "scratch namespaces being deleted" };
                view! {
                    <article class="panel" data-drill=d.id.clone() data-drill-phase=d.phase.clone()>
                        <h3>{badge(&d.phase)} " drill " <code>{d.id.clone()}</code> " · " {when(Some(&d.created_at))}</h3>
                        <p>{outcome}</p>
                        <p class="note">{scratch.join(", ")} " " {cleaned}</p>
                        <ul class="checks">{d.checks.into_iter().map(|c| {
                            let (mark, class) = match (c.ok, c.expected) {
                                (true, _) => ("✓ ", "ok"),
                                (false, false) => ("– ", "not-required"),
                                (false, true) => ("✗ ", "problem"),
                            };
                            view! { <li data-check=class class:error=class == "problem">{mark}{c.object}": "{c.detail}</li> }
                        }).collect_view()}</ul>
                    </article>
                }
            }).collect_view()}
        </section>
    }
    .into_any()
}

/// Encrypted, signed, verified: what the manifest and the last verification say.
fn trust_facts(detail: &BackupDetail) -> impl IntoView {
    let v = &detail.backup;
    let manifest = detail.manifest.as_ref();
    let format = manifest.map(|m| m.format_version);
    let encryption = match (manifest.and_then(|m| m.encryption.as_ref()), format) {
        (Some(e), _) => format!(
            "age (X25519), key {}…",
            e.key_id.chars().take(16).collect::<String>()
        ),
        (_, Some(f)) => format!("none (archive format {f}, written before encryption)"),
        _ => "—".into(),
    };
    let signed = match format {
        Some(f) if f >= 3 => "HMAC-SHA-256, checked before every restore".to_string(),
        Some(_) => "no (written before signatures)".into(),
        None => "—".into(),
    };
    let at = v.verified_at.as_deref();
    let verification = match (at, v.verification.as_deref()) {
        (Some(_), Some("ok")) => format!("{}: ok", when(at)),
        (Some(_), Some(problems)) => format!(
            "{}: failed — {}",
            when(at),
            problems.lines().next().unwrap_or_default()
        ),
        _ => "never".into(),
    };
    let failed = v.verification.as_deref().is_some_and(|o| o != "ok");
    let locked = match v.locked_until.as_deref() {
        Some(until) => format!(
            "until {} (S3 Object Lock, {}): nobody can delete it before then",
            when(Some(until)),
            manifest
                .and_then(|m| m.lock.as_ref())
                .map_or("governance", |l| l.mode.as_str())
        ),
        None => "no (the location is not immutable)".into(),
    };
    view! {
        <dt>"Encryption"</dt><dd data-fact="encryption">{encryption}</dd>
        <dt>"Signed"</dt><dd data-fact="signed">{signed}</dd>
        <dt>"Verified"</dt><dd data-fact="verified" class:error=failed>{verification}</dd>
        <dt>"Locked"</dt><dd data-fact="locked">{locked}</dd>
    }
}
