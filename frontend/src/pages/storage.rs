//! Storage locations: availability, usage, growth, add, test, remove.

use super::*;
use crate::model::{BackupView, Items, LocationKey, LocationView};

pub(super) fn storage(page: RwSignal<PageData>) -> impl IntoView {
    let locations = data(page, "locations");
    let backups = data(page, "backups");
    let status = RwSignal::new(String::new());
    let removing = RwSignal::new(None::<String>);
    let test = move |name: String| {
        status.set(format!("Testing {name}…"));
        api::spawn(async move {
            let url = format!("/api/v1/storage-locations/{name}/check");
            match api::call::<LocationView>("POST", &url, None::<&()>).await {
                Ok(v) => {
                    status.set(format!("{name} is {}", v.availability));
                    api::refresh(page).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let remove = move |name: String| {
        removing.set(None);
        status.set(format!("Removing {name}…"));
        api::spawn(async move {
            match api::request("DELETE", &format!("/api/v1/storage-locations/{name}"), None).await {
                Ok(_) => {
                    status.set(format!(
                        "{name} removed; its backups stay in its bucket or directory"
                    ));
                    api::refresh(page).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    view! {
        <h1>"Storage locations"</h1>
        <p class="note">"Backups are written to " <code>"default"</code> " (set in the configuration: " <code>"storage.*"</code> ") unless they name another location. Adding a location that already holds Lifeboat backups lists them here."</p>
        {move || {
            let list = match read::<Items<LocationView>>(&locations()) {
                Ok(list) => list,
                Err(e) => return e,
            };
            view! {
                <table>
                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Kind"</th><th scope="col">"Where"</th><th scope="col">"Availability"</th><th scope="col">"Checked"</th><th scope="col">"Backups"</th><th scope="col">"Used"</th><th scope="col">"Encryption"</th><th scope="col">"Immutability"</th><th scope="col">"Actions"</th></tr></thead>
                    <tbody>{list.items.into_iter().map(|l| {
                        let name = l.name.clone();
                        let place = l.config.place();
                        let (n1, n2, n3) = (name.clone(), name.clone(), name.clone());
                        let is_default = l.is_default;
                        view! {
                            <tr data-location=name.clone()>
                                <th scope="row">{name.clone()}{is_default.then_some(" (default)")}</th>
                                <td>{l.kind.clone()}</td>
                                <td><code>{place}</code></td>
                                <td>{badge(&l.availability)} " " {l.availability_reason.clone().unwrap_or_default()}</td>
                                <td>{when(l.checked_at.as_deref())}</td>
                                <td>{l.backups}</td>
                                <td>{size(Some(l.used_bytes))}</td>
                                <td data-encryption=name.clone()>{encryption(&name, l.encryption.as_ref(), l.config.in_the_clear())}</td>
                                <td data-immutability=name.clone()>{match l.immutability.as_deref() {
                                    Some(mode) => format!("S3 Object Lock ({mode}): each backup is locked until it expires"),
                                    None => "none: anyone with the bucket's credentials can delete backups".to_string(),
                                }}</td>
                                <td>
                                    <button type="button" on:click=move |_| test(n1.clone()) aria-label=format!("Test {name}")>"Test"</button>
                                    {(!is_default).then(|| view! {
                                        <button type="button" class="danger" on:click=move |_| removing.set(Some(n2.clone()))>"Remove…"</button>
                                    })}
                                    {move || (removing.get().as_deref() == Some(n3.as_str())).then(|| {
                                        let n = n3.clone();
                                        view! {
                                            <div class="confirm" role="alertdialog" aria-label=format!("Remove {n}")>
                                                <p>{format!("Lifeboat will stop listing the backups in {n}; nothing in the bucket or directory is deleted.")}</p>
                                                <button type="button" class="danger" on:click={let n = n.clone(); move |_| remove(n.clone())}>{format!("Remove {n}")}</button>
                                                <button type="button" on:click=move |_| removing.set(None)>"Keep it"</button>
                                            </div>
                                        }
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table>
            }
            .into_any()
        }}
        <p role="status" aria-live="polite" class="status">{move || status.get()}</p>
        {add_location(page)}
        <h2>"Storage used over time"</h2>
        {move || {
            let all = read::<Items<BackupView>>(&backups()).map(|l| l.items).unwrap_or_default();
            let names: Vec<String> = read::<Items<LocationView>>(&locations())
                .map(|list| list.items.into_iter().map(|l| l.name).collect())
                .unwrap_or_default();
            let charts: Vec<_> = names.into_iter().filter_map(|n| {
                let mine: Vec<BackupView> = all.iter().filter(|b| b.storage_location == n).cloned().collect();
                (!mine.is_empty()).then(|| view! { <h3>{n}</h3> {charts::storage_growth(&mine)} })
            }).collect();
            if charts.is_empty() {
                return empty("No backups yet: the chart shows each location's growth once there are some.").into_any();
            }
            charts.collect_view().into_any()
        }}
    }
}

/// A location's key: its id, and a warning while nobody has seen the
/// recovery key (lose the catalog, and the backups cannot be read).
fn encryption(name: &str, key: Option<&LocationKey>, in_the_clear: bool) -> AnyView {
    if in_the_clear {
        return view! {
            <p class="warning" role="note">"None, by choice: archives are stored in the clear (still signed). Anyone who can read the bucket reads Secrets' values."</p>
        }
        .into_any();
    }
    match key {
        None => view! { <span>"made by the first backup"</span> }.into_any(),
        Some(key) => {
            let short = format!(
                "age, key {}…",
                key.key_id.chars().take(16).collect::<String>()
            );
            let unsaved = !key.recovery_key_shown;
            view! {
                <span>{short}</span>
                {unsaved.then(|| view! {
                    <p class="warning" role="note">
                        "Recovery key not saved yet: without it, a new install cannot read these backups. Run "
                        <code>{format!("lifeboat location recovery-key {name}")}</code> " and keep what it shows."
                    </p>
                })}
            }
            .into_any()
        }
    }
}

/// The form that adds a local or S3 location; the server checks it before saving.
fn add_location(page: RwSignal<PageData>) -> impl IntoView {
    let kind = RwSignal::new("s3".to_string());
    let status = RwSignal::new(String::new());
    // The new location's recovery key (shown once, here) or what to do instead.
    let recovery = RwSignal::new(None::<(String, String, String)>);
    // The form's text fields: `name`, then `path` (local), then the S3 ones.
    const FIELDS: [&str; 8] = [
        "name",
        "path",
        "endpoint",
        "region",
        "bucket",
        "prefix",
        "accessKeyId",
        "secretAccessKey",
    ];
    let fields = FIELDS.map(|_| RwSignal::new(String::new()));
    let field = move |name: &str| {
        let i = FIELDS.iter().position(|f| *f == name);
        fields[i.expect("one of FIELDS")]
    };
    let path_style = RwSignal::new(true);
    let in_the_clear = RwSignal::new(false);
    let immutable = RwSignal::new(false);
    let lock_mode = RwSignal::new("governance".to_string());
    let value = move |name: &str| field(name).get_untracked().trim().to_string();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let k = kind.get_untracked();
        let mut body = json!({"name": value("name"), "kind": k});
        let wanted = if k == "local" {
            &FIELDS[1..2]
        } else {
            &FIELDS[2..]
        };
        for f in wanted {
            let v = value(f);
            if !v.is_empty() {
                body[*f] = Value::String(v);
            }
        }
        if k == "s3" {
            body["pathStyle"] = Value::Bool(path_style.get_untracked());
            if immutable.get_untracked() {
                body["immutable"] = Value::Bool(true);
                body["lockMode"] = Value::String(lock_mode.get_untracked());
            }
        }
        if in_the_clear.get_untracked() {
            body["encryption"] = Value::String("none".into());
        }
        let name = value("name");
        status.set(format!("Checking {name} (list, write, delete)…"));
        api::spawn(async move {
            match api::call::<LocationView>("POST", "/api/v1/storage-locations", Some(&body)).await
            {
                Ok(v) => {
                    let imported = v.imported.as_ref().map_or(0, Vec::len);
                    status.set(format!("Added {name}: available; {imported} backup(s) already in it are now listed."));
                    if let Some(key) = v.recovery_key {
                        recovery.set(Some((
                            name.clone(),
                            key,
                            v.notice.unwrap_or_else(|| "—".into()),
                        )));
                    } else if let Some(notice) = v.notice {
                        recovery.set(Some((name.clone(), String::new(), notice)));
                    }
                    for f in fields {
                        f.set(String::new());
                    }
                    api::refresh(page).await;
                }
                Err(e) => status.set(e),
            }
        });
    };
    let input = move |name: &'static str, label: &'static str, hint: &'static str, secret: bool| {
        let signal = field(name);
        view! {
            <label>{label} " " <input name=name placeholder=hint type=if secret { "password" } else { "text" } autocomplete="off"
                prop:value=move || signal.get() on:input=move |ev| signal.set(event_target_value(&ev)) /></label>
        }
    };
    view! {
        <details class="panel">
            <summary>"Add a location"</summary>
            <form on:submit=submit class="add-location">
                {input("name", "Name", "offsite", false)}
                <fieldset>
                    <legend>"Kind"</legend>
                    <label><input type="radio" name="kind" value="s3" prop:checked=move || kind.get() == "s3" on:change=move |_| kind.set("s3".into()) />" S3-compatible bucket"</label>
                    <label><input type="radio" name="kind" value="local" prop:checked=move || kind.get() == "local" on:change=move |_| kind.set("local".into()) />" Directory on the server"</label>
                </fieldset>
                {move || if kind.get() == "local" {
                    input("path", "Directory (absolute)", "/var/lib/lifeboat/second", false).into_any()
                } else {
                    view! {
                        {input("endpoint", "Endpoint", "https://s3.example.com:9000 (empty for AWS)", false)}
                        {input("region", "Region", "us-east-1", false)}
                        {input("bucket", "Bucket", "lifeboat-backups", false)}
                        {input("prefix", "Prefix (optional)", "cluster-a", false)}
                        <label><input type="checkbox" name="pathStyle" prop:checked=move || path_style.get() on:change=move |ev| path_style.set(event_target_checked(&ev)) />" Path-style addressing (MinIO, Garage, Ceph)"</label>
                        {input("accessKeyId", "Access key id", "empty: the server's AWS credentials", false)}
                        {input("secretAccessKey", "Secret access key", "stored in the catalog, never shown again", true)}
                        <fieldset>
                            <legend>"Immutability"</legend>
                            <label><input type="checkbox" name="immutable" prop:checked=move || immutable.get() on:change=move |ev| immutable.set(event_target_checked(&ev)) />" Lock each backup with S3 Object Lock until it expires (the bucket must have been created with object lock)"</label>
                            <label>"Mode " <select name="lockMode" prop:value=move || lock_mode.get() on:change=move |ev| lock_mode.set(event_target_value(&ev)) prop:disabled=move || !immutable.get()>
                                <option value="governance">"governance: only principals allowed to bypass governance can remove a lock"</option>
                                <option value="compliance">"compliance: nobody can, the account's root included"</option>
                            </select></label>
                        </fieldset>
                    }.into_any()
                }}
                <label><input type="checkbox" name="unencrypted" prop:checked=move || in_the_clear.get() on:change=move |ev| in_the_clear.set(event_target_checked(&ev)) />" Store backups unencrypted (not recommended: anyone who can read the bucket reads Secrets' values)"</label>
                <button type="submit" class="primary">"Check and add"</button>
                <p role="status" aria-live="polite" class="status">{move || status.get()}</p>
            </form>
            {move || recovery.get().map(|(name, key, notice)| view! {
                <div class="panel warning" role="alert" aria-label=format!("Recovery key of {name}")>
                    {(!key.is_empty()).then(|| view! {
                        <p>"Recovery key of " <strong>{name.clone()}</strong> ", shown this once:"</p>
                        <p><code class="recovery-key">{key.clone()}</code></p>
                    })}
                    <p>{notice}</p>
                    <button type="button" on:click=move |_| recovery.set(None)>"I have kept it"</button>
                </div>
            })}
        </details>
    }
}
