//! Sign-in on the HTTP side: every route needs a principal except the
//! public ones (`/healthz`, `/readyz`, the stylesheet and browser bundle,
//! and the sign-in flow itself). A principal comes from a bearer token
//! (checked with a TokenReview) or a session cookie; browsers' writes must
//! carry the session's CSRF token. Without one, the API answers 401 JSON and
//! a page redirects to `/login?next=…`.

use axum::Router;
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::auth::{AuthError, Principal, SignIn};

/// The session cookie.
pub const SESSION_COOKIE: &str = "lifeboat_session";
/// The header a browser's state-changing request carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session's CSRF token, for the page the server renders.
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

/// Routes anyone may reach.
pub fn is_public(method: &Method, path: &str) -> bool {
    // `/logout` checks its own session and CSRF token (a form cannot send headers).
    matches!(
        path,
        "/healthz"
            | "/readyz"
            | "/assets/lifeboat.css"
            | "/login"
            | "/logout"
            | "/login/oidc"
            | "/login/oidc/callback"
    ) || (path.starts_with("/pkg/") && (method == Method::GET || method == Method::HEAD))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_with_token))
        .route("/login/oidc", get(oidc_start))
        .route("/login/oidc/callback", get(oidc_callback))
        .route("/logout", post(logout))
        .route("/api/v1/session", get(whoami))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A JSON error like every other API error.
fn json_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": message, "status": status.as_u16()})),
    )
        .into_response()
}

/// What a request without a valid principal gets: 401 JSON from the API, a
/// redirect to the sign-in page elsewhere.
fn unauthenticated(uri: &axum::http::Uri, why: &str) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path == "/metrics" {
        let mut response = json_error(
            StatusCode::UNAUTHORIZED,
            &format!(
                "{why}: send `Authorization: Bearer <token>` with a token the cluster accepts (`kubectl create token <serviceaccount>`), or sign in at /login"
            ),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"lifeboat\""),
        );
        return response;
    }
    let next = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let location = format!("/login?next={}", urlencode(&next));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// How long a refused token waits for its answer: guessing tokens is slow.
const FAILED_SIGN_IN_DELAY: std::time::Duration = std::time::Duration::from_millis(300);

async fn refused(uri: axum::http::Uri, error: AuthError) -> Response {
    match error {
        AuthError::Unauthenticated(why) => {
            tokio::time::sleep(FAILED_SIGN_IN_DELAY).await;
            unauthenticated(&uri, &why)
        }
        AuthError::Forbidden(why) => json_error(StatusCode::FORBIDDEN, &why),
        AuthError::Unavailable(why) => json_error(StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

/// The middleware: finds the principal (or answers for it), checks CSRF,
/// and records refusals (401, 403) in the activity log, a few a minute.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // The UI's own in-process API reads carry the page's principal already.
    if request.extensions().get::<Principal>().is_some()
        || is_public(request.method(), request.uri().path())
    {
        return next.run(request).await;
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let (response, principal) = principal_then(&state, request, next).await;
    let status = response.status();
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
        && state.auth.may_record_refusal()
    {
        let actor = principal
            .as_ref()
            .map_or("anonymous".to_string(), Principal::actor);
        let (kind, what) = if status == StatusCode::UNAUTHORIZED {
            ("auth.unauthenticated", "not signed in")
        } else {
            ("auth.forbidden", "refused")
        };
        let _ = state
            .catalog
            .record_activity(
                &actor,
                kind,
                &format!("route/{path}"),
                &format!("{method} {path}: {what} ({})", status.as_u16()),
                None,
            )
            .await;
    }
    response
}

/// Runs the request with its principal; returns the response and who it was.
async fn principal_then(
    state: &AppState,
    mut request: Request,
    next: Next,
) -> (Response, Option<Principal>) {
    if state.auth.disabled() {
        let principal = Principal::unauthenticated_admin();
        request.extensions_mut().insert(principal.clone());
        return (next.run(request).await, Some(principal));
    }
    if let Some(token) = bearer(request.headers()) {
        return match state.auth.review_token(token, SignIn::Token).await {
            Ok(principal) => {
                request.extensions_mut().insert(principal.clone());
                (next.run(request).await, Some(principal))
            }
            Err(e) => (refused(request.uri().clone(), e).await, None),
        };
    }
    let Some(id) = cookie(request.headers(), SESSION_COOKIE).map(str::to_string) else {
        return (unauthenticated(request.uri(), "not signed in"), None);
    };
    let session = match state.auth.sessions().get(&id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return (
                unauthenticated(request.uri(), "the session has ended"),
                None,
            );
        }
        Err(e) => {
            let response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("sessions cannot be read: {e}"),
            );
            return (response, None);
        }
    };
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
        let sent = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if sent != Some(session.csrf.as_str()) {
            let response = json_error(
                StatusCode::FORBIDDEN,
                "this request did not carry the session's CSRF token (X-CSRF-Token); reload the page and try again",
            );
            return (response, Some(session.principal));
        }
    }
    let principal = session.principal;
    request.extensions_mut().insert(CsrfToken(session.csrf));
    request.extensions_mut().insert(principal.clone());
    (next.run(request).await, Some(principal))
}

fn session_cookie(state: &AppState, value: &str, max_age: u64) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if state.auth.settings().secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

/// Where to go after signing in: a path on this server, never elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
    }
}

/// Starts a session for `principal` and sends the browser to `next`.
async fn start_session(state: &AppState, principal: Principal, next: Option<&str>) -> Response {
    let (id, _) = match state.auth.sessions().start(&principal).await {
        Ok(v) => v,
        Err(e) => {
            return login_response(
                state.auth.oidc().is_some(),
                StatusCode::SERVICE_UNAVAILABLE,
                next,
                Some(&format!("the session could not be saved: {e}")),
            );
        }
    };
    tracing::info!(user = %principal.username, method = principal.method.as_str(), "signed in");
    let _ = state
        .catalog
        .record_activity(
            &principal.actor(),
            "session.started",
            &format!("user/{}", principal.username),
            &format!("{} signed in", principal.username),
            Some(&json!({"groups": principal.groups, "method": principal.method})),
        )
        .await;
    let max_age = state.auth.sessions().ttl().as_secs();
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, safe_next(next)),
            (header::SET_COOKIE, session_cookie(state, &id, max_age)),
        ],
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct OidcStart {
    next: Option<String>,
}

/// Sends the browser to the OpenID provider.
async fn oidc_start(State(state): State<AppState>, Query(q): Query<OidcStart>) -> Response {
    let next = safe_next(q.next.as_deref());
    let Some(oidc) = state.auth.oidc() else {
        return login_response(
            false,
            StatusCode::NOT_FOUND,
            Some(&next),
            Some("no OpenID provider is configured ([auth.oidc]); sign in with a token"),
        );
    };
    match oidc.start(&next).await {
        Ok(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        Err(e) => login_response(
            true,
            StatusCode::BAD_GATEWAY,
            Some(&next),
            Some(&e.to_string()),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct OidcAnswer {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's answer: the code is exchanged and the id_token checked.
async fn oidc_callback(State(state): State<AppState>, Query(q): Query<OidcAnswer>) -> Response {
    let Some(oidc) = state.auth.oidc() else {
        return login_response(
            false,
            StatusCode::NOT_FOUND,
            None,
            Some("no OpenID provider is configured"),
        );
    };
    let refuse = |status: StatusCode, why: String| {
        let state = state.clone();
        async move {
            let _ = state
                .catalog
                .record_activity(
                    "anonymous",
                    "session.refused",
                    "route//login/oidc/callback",
                    &format!("an OpenID sign-in was refused: {why}"),
                    None,
                )
                .await;
            login_response(true, status, None, Some(&why))
        }
    };
    if let Some(error) = q.error {
        let why = format!(
            "the provider said {error}: {}",
            q.error_description.unwrap_or_default()
        );
        return refuse(StatusCode::UNAUTHORIZED, why).await;
    }
    let (Some(code), Some(answer_state)) = (q.code, q.state) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the provider's answer has no code or state".into(),
        )
        .await;
    };
    match oidc.finish(&code, &answer_state).await {
        Ok((principal, next)) => start_session(&state, principal, Some(&next)).await,
        Err(e @ crate::auth::oidc::OidcError::Refused(_)) => {
            tokio::time::sleep(FAILED_SIGN_IN_DELAY).await;
            refuse(StatusCode::UNAUTHORIZED, e.to_string()).await
        }
        Err(e) => refuse(StatusCode::BAD_GATEWAY, e.to_string()).await,
    }
}

/// Starts a session for the principal `token` names and sends the browser on.
async fn sign_in(state: &AppState, token: &str, method: SignIn, next: Option<&str>) -> Response {
    let principal = match state.auth.review_token(token, method).await {
        Ok(p) => p,
        Err(AuthError::Unauthenticated(why)) => {
            tokio::time::sleep(FAILED_SIGN_IN_DELAY).await;
            let _ = state
                .catalog
                .record_activity(
                    "anonymous",
                    "session.refused",
                    "route//login",
                    &format!("a sign-in was refused: {why}"),
                    None,
                )
                .await;
            return login_response(
                state.auth.oidc().is_some(),
                StatusCode::UNAUTHORIZED,
                next,
                Some(&why),
            );
        }
        Err(e) => {
            return login_response(
                state.auth.oidc().is_some(),
                StatusCode::SERVICE_UNAVAILABLE,
                next,
                Some(&e.to_string()),
            );
        }
    };
    start_session(state, principal, next).await
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
    /// A one-time code (`lifeboat demo` prints a URL with one).
    code: Option<String>,
}

async fn login_page(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    if let Some(code) = q.code.as_deref() {
        return match state.auth.sessions().redeem_code(code) {
            Some(token) => sign_in(&state, &token, SignIn::Code, q.next.as_deref()).await,
            None => login_response(
                state.auth.oidc().is_some(),
                StatusCode::UNAUTHORIZED,
                q.next.as_deref(),
                Some("this sign-in code is unknown, used or expired; sign in with a token"),
            ),
        };
    }
    login_response(
        state.auth.oidc().is_some(),
        StatusCode::OK,
        q.next.as_deref(),
        None,
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login_with_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // A sign-in form posted from another site would sign the browser in as the attacker.
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if origin != "null" && origin_host != host {
            return json_error(
                StatusCode::FORBIDDEN,
                "the sign-in form was posted from another site",
            );
        }
    }
    let token = form.token.trim();
    if token.is_empty() {
        return login_response(
            state.auth.oidc().is_some(),
            StatusCode::UNAUTHORIZED,
            form.next.as_deref(),
            Some("paste a token first"),
        );
    }
    sign_in(&state, token, SignIn::Session, form.next.as_deref()).await
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

/// Ends the browser's session: a form post carrying the session's CSRF
/// token (field `csrf`), so another site cannot sign a user out.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        match state.auth.sessions().get(id).await {
            Ok(Some(session)) if form.csrf.as_deref() == Some(session.csrf.as_str()) => {
                let _ = state.auth.sessions().end(id).await;
                let _ = state
                    .catalog
                    .record_activity(
                        &session.principal.actor(),
                        "session.ended",
                        &format!("user/{}", session.principal.username),
                        &format!("{} signed out", session.principal.username),
                        None,
                    )
                    .await;
            }
            Ok(Some(_)) => {
                return json_error(
                    StatusCode::FORBIDDEN,
                    "the sign-out form did not carry the session's CSRF token; reload the page and try again",
                );
            }
            _ => {}
        }
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_string()),
            (header::SET_COOKIE, session_cookie(&state, "", 0)),
        ],
    )
        .into_response()
}

/// Who the request is, and (for a browser session) its CSRF token.
async fn whoami(request: Request) -> Response {
    let principal = request.extensions().get::<Principal>().cloned();
    let csrf = request.extensions().get::<CsrfToken>().map(|c| c.0.clone());
    match principal {
        Some(p) => axum::Json(json!({
            "username": p.username, "uid": p.uid, "groups": p.groups, "method": p.method,
            "csrfToken": csrf,
        }))
        .into_response(),
        None => json_error(StatusCode::UNAUTHORIZED, "not signed in"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The sign-in page: a plain form (it works without the browser bundle).
fn login_response(
    oidc: bool,
    status: StatusCode,
    next: Option<&str>,
    error: Option<&str>,
) -> Response {
    let next = safe_next(next);
    let oidc = if oidc {
        format!(
            r#"<p><a class="button primary" href="/login/oidc?next={}">Sign in with your organisation's account</a></p>
<p class="hint">Or with a Kubernetes token:</p>"#,
            escape(&urlencode(&next))
        )
    } else {
        String::new()
    };
    let error = error
        .map(|e| format!(r#"<div class="error" role="alert">{}</div>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Lifeboat</title><link rel="stylesheet" href="/assets/lifeboat.css"></head>
<body><main class="login">
<h1>Sign in to Lifeboat</h1>
<p>Lifeboat signs you in as the cluster knows you, and lets you do what the cluster's RBAC lets you do.</p>
{error}
{oidc}
<form method="post" action="/login" class="panel">
<label for="token">Kubernetes token</label>
<textarea id="token" name="token" rows="4" required autocomplete="off" spellcheck="false"></textarea>
<input type="hidden" name="next" value="{next}">
<p class="hint">Get one with <code>kubectl create token &lt;serviceaccount&gt; -n &lt;namespace&gt;</code>; any token the cluster's API server accepts works.</p>
<button type="submit">Sign in</button>
</form>
</main></body></html>"#,
        next = escape(&next),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
