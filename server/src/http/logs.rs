//! `GET /api/v1/namespaces/{namespace}/pods/{name}/log`: a container's
//! output, proxied from the API server's `pods/log` (the kubelet's) and
//! streamed as it comes. Lifeboat keeps none of it; the reader needs their
//! own `get pods/log` in the namespace, asked of the cluster.

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, AppState};
use crate::auth::{Check, Principal};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(log))
}

/// The largest chunk passed on at once.
const CHUNK_BYTES: usize = 16 * 1024;
/// Without `tailLines`, `sinceSeconds` or `limitBytes`, a read stops after
/// this much (a container's log on its node can be far larger).
pub const DEFAULT_LIMIT_BYTES: i64 = 4 * 1024 * 1024;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct LogQuery {
    /// The container; required when the pod has several.
    container: Option<String>,
    /// The previous (terminated) instance's output: a crash loop's last words.
    #[serde(default)]
    previous: bool,
    /// Only the last N lines.
    #[param(minimum = 0)]
    tail_lines: Option<i64>,
    /// Only lines written in the last N seconds.
    #[param(minimum = 1)]
    since_seconds: Option<i64>,
    /// At most this many bytes (default 4 MiB unless `tailLines` or
    /// `sinceSeconds` bound the read).
    #[param(minimum = 1)]
    limit_bytes: Option<i64>,
    /// Each line prefixed with its RFC 3339 time.
    #[serde(default)]
    timestamps: bool,
    /// Keep the answer open and send new lines as they are written.
    #[serde(default)]
    follow: bool,
}

#[utoipa::path(get, operation_id = "getPodLog",
    path = "/api/v1/namespaces/{namespace}/pods/{name}/log", tag = "cluster",
    params(
        ("namespace" = String, Path, description = "The pod's namespace"),
        ("name" = String, Path, description = "The pod"),
        LogQuery,
    ),
    description = "A container's output from the API server's `pods/log`, streamed (with `follow`, until the container stops or the reader leaves). Needs the caller's own `get pods/log` in the namespace. Errors the cluster gives (no previous instance, a container still starting) come back with its words.",
    responses((status = 200, description = "The lines", body = String, content_type = "text/plain")))]
async fn log(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(
            &who,
            &[Check::kubernetes("get", "", "pods", Some(&namespace)).with_subresource("log")],
        )
        .await?;
    let invalid = |message: String| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message,
    };
    // A DNS subdomain, as Kubernetes names pods and namespaces.
    let object_name = |n: &str| {
        !n.is_empty()
            && n.len() <= 253
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if !object_name(&namespace) || !object_name(&name) {
        return Err(invalid(format!(
            "{namespace}/{name} is not a pod's name: names are lowercase letters, digits, '-' and '.'"
        )));
    }
    if q.tail_lines.is_some_and(|n| n < 0) {
        return Err(invalid("tailLines must be 0 or more".into()));
    }
    if q.since_seconds.is_some_and(|n| n < 1) {
        return Err(invalid("sinceSeconds must be 1 or more".into()));
    }
    if q.limit_bytes.is_some_and(|n| n < 1) {
        return Err(invalid("limitBytes must be 1 or more".into()));
    }
    let cluster = state.cluster.as_ref().as_ref().map_err(|e| {
        ApiError::unavailable(format!(
            "no cluster is connected, so there are no logs to read: {e}"
        ))
    })?;
    let bounded = q.tail_lines.is_some() || q.since_seconds.is_some() || q.follow;
    let params = LogParams {
        container: q.container,
        follow: q.follow,
        limit_bytes: q.limit_bytes.or((!bounded).then_some(DEFAULT_LIMIT_BYTES)),
        previous: q.previous,
        since_seconds: q.since_seconds,
        tail_lines: q.tail_lines,
        timestamps: q.timestamps,
        ..Default::default()
    };
    let pods = kube::Api::<Pod>::namespaced(cluster.client.clone(), &namespace);
    let reader = pods.log_stream(&name, &params).await.map_err(|e| match e {
        kube::Error::Api(s) => ApiError {
            status: StatusCode::from_u16(s.code)
                .ok()
                .filter(|c| c.is_client_error())
                .unwrap_or(StatusCode::BAD_GATEWAY),
            message: format!("the cluster answered: {}", s.message),
        },
        other => ApiError {
            status: StatusCode::BAD_GATEWAY,
            message: format!(
                "the cluster's log of pod {namespace}/{name} could not be read: {other}"
            ),
        },
    })?;
    let chunks = futures::stream::unfold(Box::pin(reader), |mut reader| async move {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        match reader.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(buffer), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            // Lines as they come, not when a proxy's buffer fills.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
