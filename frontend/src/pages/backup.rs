//! One backup: facts, progress, log, contents, download, delete.

use super::*;

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
    let verified = RwSignal::new(None::<Value>);
    let verify = {
        let name = name.clone();
        move |_| {
            let name = name.clone();
            verifying.set(true);
            verified.set(None);
            api::spawn(async move {
                let url = format!("/api/v1/backups/{name}/verify");
                let answer = match api::request("POST", &url, Some(serde_json::json!({}))).await {
                    Ok(v) => v,
                    Err(e) => serde_json::json!({"ok": false, "problems": [e]}),
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
                match api::request("POST", &url, Some(serde_json::json!({}))).await {
                    Ok(d) => drilling.set(format!(
                        "Drill {} started: restoring into scratch namespaces; this page shows its outcome.",
                        text(&d["id"])
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
            let v = b();
            if let Some(e) = api_error(&v) {
                return e.into_any();
            }
            let phase = v["phase"].as_str().unwrap_or_default().to_string();
            let running = matches!(phase.as_str(), "New" | "InProgress");
            view! {
                <dl class="facts">
                    <dt>"Phase"</dt><dd data-phase=phase.clone()>{badge(&phase)} " " {note(&v["phaseReason"])}</dd>
                    <dt>"Items"</dt><dd>{text(&v["itemsDone"])}</dd>
                    <dt>"Size"</dt><dd>{bytes(&v["sizeBytes"])}</dd>
                    <dt>"Location"</dt><dd><a href="/storage">{text(&v["storageLocation"])}</a></dd>
                    <dt>"Started"</dt><dd>{time(&v["startedAt"])}</dd>
                    <dt>"Completed"</dt><dd>{time(&v["completedAt"])}</dd>
                    <dt>"Took"</dt><dd>{seconds_between(&v["startedAt"], &v["completedAt"]).map(duration).unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Expires"</dt><dd>{v["expiresAt"].as_str().map(|_| time(&v["expiresAt"])).unwrap_or_else(|| "never".into())}</dd>
                    <dt>"Namespaces"</dt><dd>{let ns = items(&v["spec"]["includedNamespaces"]); if ns.is_empty() { "all".to_string() } else { ns.iter().map(text).collect::<Vec<_>>().join(", ") }}</dd>
                    <dt>"Warnings / errors"</dt><dd>{format!("{} / {}", text(&v["warnings"]), text(&v["errors"]))}</dd>
                    {trust_facts(&v)}
                </dl>
                {running.then(|| view! {
                    <p role="status" aria-live="polite"><progress aria-label="Backup progress"></progress> {format!(" {} items, {} written so far", text(&v["itemsDone"]), bytes(&v["bytesDone"]))}</p>
                })}
                {(v["missingFromStorage"] == true).then(|| view! { <div class="error" role="alert">"This backup's manifest is missing from storage: it cannot be restored. Check the bucket."</div> })}
                {volumes(&v, running)}
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
            let ok = r["ok"] == true;
            view! {
                <section class="panel" aria-labelledby="verify-h">
                    <h2 id="verify-h">{if ok { "Verified: nothing wrong" } else { "Verification failed" }}</h2>
                    <ul class="checks">
                        {items(&r["checked"]).into_iter().map(|c| view! { <li data-check="ok">{"✓ "}{text(&c)}</li> }).collect_view()}
                        {items(&r["problems"]).into_iter().map(|c| view! { <li data-check="problem" class="error">{"✗ "}{text(&c)}</li> }).collect_view()}
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
                if let Some(e) = api_error(&c) {
                    return e.into_any();
                }
                let tree = c["resources"].as_object().cloned().unwrap_or_default();
                let open = open.clone();
                view! {
                    <div class="browser">
                        <ul class="tree" aria-label="Resources in this backup">
                            {tree.into_iter().map(|(resource, by_ns)| {
                                let open = open.clone();
                                let count: usize = by_ns.as_object().map(|o| o.values().map(|v| v.as_array().map_or(0, Vec::len)).sum()).unwrap_or(0);
                                view! {
                                    <li><details><summary>{format!("{resource} ({count})")}</summary>
                                        <ul>{by_ns.as_object().cloned().unwrap_or_default().into_iter().map(|(ns, names)| {
                                            let open = open.clone();
                                            let resource = resource.clone();
                                            view! { <li><span class="ns">{ns.clone()}</span><ul>{items(&names).into_iter().map(|n| {
                                                let n = text(&n);
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
                                Some((path, body)) => view! { <h3><code>{path}</code></h3><pre>{body}</pre> }.into_any(),
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

/// The volume data: while running, each volume's bytes from the agents;
/// once written, what the manifest lists (size, files, method, duration, why not).
fn volumes(v: &Value, running: bool) -> AnyView {
    let progress = &v["progress"]["volumes"];
    if running {
        let total = progress["bytesTotal"].as_f64().unwrap_or(0.0);
        if progress["volumes"].as_array().is_none_or(Vec::is_empty) {
            return ().into_any();
        }
        let done = progress["bytesDone"].as_f64().unwrap_or(0.0);
        return view! {
            <section aria-labelledby="volumes-h">
                <h2 id="volumes-h">"Volume data"</h2>
                <p role="status" aria-live="polite">
                    <progress aria-label="Volume data progress" max=total.max(1.0) value=done></progress>
                    {format!(" {} of {}", bytes(&progress["bytesDone"]), bytes(&progress["bytesTotal"]))}
                </p>
                <table>
                    <thead><tr><th scope="col">"Claim"</th><th scope="col">"State"</th><th scope="col">"Done"</th></tr></thead>
                    <tbody>{items(&progress["volumes"]).into_iter().map(|p| view! {
                        <tr>
                            <th scope="row">{format!("{}/{}", text(&p["namespace"]), text(&p["pvc"]))}</th>
                            <td>{badge(p["phase"].as_str().unwrap_or_default())}</td>
                            <td>{format!("{} of {}", bytes(&p["bytesDone"]), bytes(&p["bytesTotal"]))}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table>
            </section>
        }
        .into_any();
    }
    let listed = items(&v["manifest"]["volumes"]);
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
                        <th scope="row"><a href=format!("/namespaces/{}", text(&vol["namespace"]))>{format!("{}/{}", text(&vol["namespace"]), text(&vol["pvc"]))}</a></th>
                        <td>{badge(vol["phase"].as_str().unwrap_or_default())}</td>
                        <td>{bytes(&vol["bytes"])}</td>
                        <td>{text(&vol["files"])}</td>
                        <td>{text(&vol["method"])}</td>
                        <td>{duration(vol["durationMs"].as_i64().unwrap_or(0) / 1000)}</td>
                        <td>{note(&vol["reason"])}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table>
        </section>
    }
    .into_any()
}

/// The backup's restore drills, newest first, each with what it checked.
fn drill_list(v: &Value) -> AnyView {
    let all = items(&v["items"]);
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
                let phase = d["phase"].as_str().unwrap_or_default().to_string();
                let scratch: Vec<String> = d["namespaces"].as_object().into_iter().flatten()
                    .map(|(from, to)| format!("{from} → {}", to.as_str().unwrap_or_default())).collect();
                let outcome = match phase.as_str() {
                    "Passed" => format!("{} objects, {} volumes, ready in {:.1} s", text(&d["objects"]), text(&d["volumes"]),
                        d["readyMs"].as_f64().unwrap_or(0.0) / 1000.0),
                    "Running" => "restoring and waiting for the workloads…".to_string(),
                    _ => text(&d["reason"]),
                };
                let cleaned = if d["cleanedAt"].is_string() { "scratch namespaces deleted" } else if phase == "Running" { "" } else { "scratch namespaces being deleted" };
                view! {
                    <article class="panel" data-drill=text(&d["id"]) data-drill-phase=phase.clone()>
                        <h3>{badge(&phase)} " drill " <code>{text(&d["id"])}</code> " · " {time(&d["createdAt"])}</h3>
                        <p>{outcome}</p>
                        <p class="note">{scratch.join(", ")} " " {cleaned}</p>
                        <ul class="checks">{items(&d["checks"]).into_iter().map(|c| {
                            let (mark, class) = match (c["ok"].as_bool(), c["expected"].as_bool()) {
                                (Some(true), _) => ("✓ ", "ok"),
                                (_, Some(false)) => ("– ", "not-required"),
                                _ => ("✗ ", "problem"),
                            };
                            view! { <li data-check=class class:error=class == "problem">{mark}{text(&c["object"])}": "{text(&c["detail"])}</li> }
                        }).collect_view()}</ul>
                    </article>
                }
            }).collect_view()}
        </section>
    }
    .into_any()
}

/// Encrypted, signed, verified: what the manifest and the last verification say.
fn trust_facts(v: &Value) -> impl IntoView {
    let manifest = &v["manifest"];
    let format = manifest["formatVersion"].as_u64();
    let encryption = match (&manifest["encryption"]["keyId"], format) {
        (Value::String(key), _) => format!(
            "age (X25519), key {}…",
            key.chars().take(16).collect::<String>()
        ),
        (_, Some(f)) => format!("none (archive format {f}, written before encryption)"),
        _ => "—".into(),
    };
    let signed = match format {
        Some(f) if f >= 3 => "HMAC-SHA-256, checked before every restore".to_string(),
        Some(_) => "no (written before signatures)".into(),
        None => "—".into(),
    };
    let verification = match (v["verifiedAt"].as_str(), v["verification"].as_str()) {
        (Some(_), Some("ok")) => format!("{}: ok", time(&v["verifiedAt"])),
        (Some(_), Some(problems)) => format!(
            "{}: failed — {}",
            time(&v["verifiedAt"]),
            problems.lines().next().unwrap_or_default()
        ),
        _ => "never".into(),
    };
    let failed = v["verification"].as_str().is_some_and(|o| o != "ok");
    let locked = match v["lockedUntil"].as_str() {
        Some(_) => format!(
            "until {} (S3 Object Lock, {}): nobody can delete it before then",
            time(&v["lockedUntil"]),
            manifest["lock"]["mode"].as_str().unwrap_or("governance")
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
