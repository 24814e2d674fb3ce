//! The browser's side of the JSON API: requests for actions, and following
//! the live stream. On the server these do nothing (pages are rendered from
//! data the server fetched).

use leptos::prelude::*;
use serde_json::Value;

use crate::{Live, PageData};

#[cfg(feature = "hydrate")]
thread_local! {
    static CSRF: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Remembers the session's CSRF token for the requests this page sends.
pub fn set_csrf(token: Option<String>) {
    #[cfg(feature = "hydrate")]
    CSRF.with(|c| *c.borrow_mut() = token);
    #[cfg(not(feature = "hydrate"))]
    let _ = token;
}

/// Sends a request to the API; the error is the API's own message.
pub async fn request(method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    #[cfg(feature = "hydrate")]
    {
        browser::request(method, path, body).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (method, path, body);
        Err("requests are made from the browser".into())
    }
}

/// [`request`] with a typed body and a typed answer (`crate::model`).
pub async fn call<T: serde::de::DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<&impl serde::Serialize>,
) -> Result<T, String> {
    let body = match body.map(serde_json::to_value).transpose() {
        Ok(body) => body,
        Err(e) => return Err(format!("the request could not be written: {e}")),
    };
    let answer = request(method, path, body).await?;
    serde_json::from_value(answer)
        .map_err(|e| format!("the server's answer could not be read ({e}): reload the page"))
}

/// Reads a text answer as it arrives (a log, `follow` included), handing
/// each run of whole lines to `on_lines`; stops when the answer ends or
/// `keep_going` says no. An error is the API's own message.
pub async fn stream_text(
    path: &str,
    on_lines: impl FnMut(String),
    keep_going: impl Fn() -> bool,
) -> Result<(), String> {
    #[cfg(feature = "hydrate")]
    {
        browser::stream_text(path, on_lines, keep_going).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (path, on_lines, keep_going);
        Err("requests are made from the browser".into())
    }
}

/// Fetches a page's sources again and replaces its data.
pub async fn refresh(page: RwSignal<PageData>) {
    let sources = page.with_untracked(|p| p.sources.clone());
    for (name, path) in sources {
        let value = match request("GET", &path, None).await {
            Ok(v) => v,
            Err(e) => serde_json::json!({"error": e}),
        };
        page.update(|p| {
            p.data.insert(name.clone(), value);
        });
    }
}

/// Follows `/api/v1/stream`: a change refreshes the page (changes within
/// 100 ms are taken together); the indicator says whether the stream is up. Reconnects by
/// itself (EventSource does), and refreshes every 5 s meanwhile for what the
/// stream does not carry (backups and restores progressing).
pub fn follow(page: RwSignal<PageData>, live: RwSignal<Live>) {
    #[cfg(feature = "hydrate")]
    browser::follow(page, live);
    #[cfg(not(feature = "hydrate"))]
    let _ = (page, live);
}

/// Runs `f` in the browser (a no-op when rendering on the server).
pub fn spawn(f: impl std::future::Future<Output = ()> + 'static) {
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(f);
    #[cfg(not(feature = "hydrate"))]
    drop(f);
}

/// Goes to another page.
pub fn navigate(to: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(w) = web_sys::window() {
        let _ = w.location().set_href(to);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = to;
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::Cell;
    use std::rc::Rc;

    use leptos::prelude::*;
    use serde_json::Value;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::Closure;
    use wasm_bindgen_futures::JsFuture;

    use crate::{Live, PageData};

    pub async fn request(method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let window = web_sys::window().ok_or("no window")?;
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        let headers = web_sys::Headers::new().map_err(|_| "headers")?;
        headers
            .set("Accept", "application/json")
            .map_err(|_| "headers")?;
        if let Some(token) = super::CSRF.with(|c| c.borrow().clone()) {
            headers.set("X-CSRF-Token", &token).map_err(|_| "headers")?;
        }
        if let Some(body) = body {
            headers
                .set("Content-Type", "application/json")
                .map_err(|_| "headers")?;
            init.set_body(&wasm_bindgen::JsValue::from_str(&body.to_string()));
        }
        init.set_headers(&headers);
        let req = web_sys::Request::new_with_str_and_init(path, &init)
            .map_err(|_| format!("cannot build a request for {path}"))?;
        let resp = JsFuture::from(window.fetch_with_request(&req))
            .await
            .map_err(|_| "the Lifeboat server did not answer; is it running?".to_string())?;
        let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a response")?;
        let status = resp.status();
        let text = JsFuture::from(resp.text().map_err(|_| "no body")?)
            .await
            .map_err(|_| "the answer could not be read")?
            .as_string()
            .unwrap_or_default();
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(value["error"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| format!("the server answered {status}")))
        }
    }

    pub async fn stream_text(
        path: &str,
        mut on_lines: impl FnMut(String),
        keep_going: impl Fn() -> bool,
    ) -> Result<(), String> {
        let window = web_sys::window().ok_or("no window")?;
        let init = web_sys::RequestInit::new();
        init.set_method("GET");
        let req = web_sys::Request::new_with_str_and_init(path, &init)
            .map_err(|_| format!("cannot build a request for {path}"))?;
        let resp = JsFuture::from(window.fetch_with_request(&req))
            .await
            .map_err(|_| "the Lifeboat server did not answer; is it running?".to_string())?;
        let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a response")?;
        if !resp.ok() {
            let status = resp.status();
            let text = JsFuture::from(resp.text().map_err(|_| "no body")?)
                .await
                .ok()
                .and_then(|t| t.as_string())
                .unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or_default();
            return Err(value["error"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| format!("the server answered {status}")));
        }
        let body = resp.body().ok_or("the answer has no body")?;
        let reader: web_sys::ReadableStreamDefaultReader = body
            .get_reader()
            .dyn_into()
            .map_err(|_| "the answer cannot be read as a stream")?;
        // Bytes after the last newline wait for the rest of their line.
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let chunk = JsFuture::from(reader.read())
                .await
                .map_err(|_| "the answer broke off".to_string())?;
            let field = |name: &str| js_sys::Reflect::get(&chunk, &name.into()).ok();
            if field("done").and_then(|d| d.as_bool()).unwrap_or(true) {
                if !carry.is_empty() {
                    on_lines(String::from_utf8_lossy(&carry).into_owned());
                }
                return Ok(());
            }
            if let Some(value) = field("value") {
                carry.extend(js_sys::Uint8Array::new(&value).to_vec());
                if let Some(end) = carry.iter().rposition(|b| *b == b'\n') {
                    let rest = carry.split_off(end + 1);
                    on_lines(String::from_utf8_lossy(&carry).into_owned());
                    carry = rest;
                }
            }
            if !keep_going() {
                let _ = reader.cancel();
                return Ok(());
            }
        }
    }

    pub fn follow(page: RwSignal<PageData>, live: RwSignal<Live>) {
        let Ok(source) = web_sys::EventSource::new("/api/v1/stream") else {
            return;
        };
        let pending = Rc::new(Cell::new(false));
        let on_open = Closure::<dyn FnMut()>::new(move || live.set(Live::Connected));
        let on_error = Closure::<dyn FnMut()>::new(move || live.set(Live::Reconnecting));
        let on_change = {
            let pending = pending.clone();
            Closure::<dyn FnMut()>::new(move || {
                live.set(Live::Connected);
                if pending.replace(true) {
                    return;
                }
                let pending = pending.clone();
                set_timeout(
                    move || {
                        pending.set(false);
                        leptos::task::spawn_local(super::refresh(page));
                    },
                    std::time::Duration::from_millis(100),
                );
            })
        };
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        for event in ["change", "resync"] {
            let _ =
                source.add_event_listener_with_callback(event, on_change.as_ref().unchecked_ref());
        }
        on_open.forget();
        on_error.forget();
        on_change.forget();
        // The stream carries cluster changes; backups and restores move on their own.
        let _ = set_interval_with_handle(
            move || leptos::task::spawn_local(super::refresh(page)),
            std::time::Duration::from_secs(5),
        );
        std::mem::forget(source);
    }
}
