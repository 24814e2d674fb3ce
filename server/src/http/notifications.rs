//! Notification targets and their deliveries (administrators: `notifications`
//! in `lifeboat.io`). A target's URL is a secret: accepted, never returned.

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::catalog::{Delivery, NotificationTarget};
use crate::notify::{TargetSpec, shown_url};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notification-targets", get(list).post(create))
        .route(
            "/api/v1/notification-targets/{name}",
            axum::routing::delete(remove),
        )
        .route("/api/v1/notifications/deliveries", get(deliveries))
}

fn view(t: &NotificationTarget) -> serde_json::Value {
    json!({
        "name": t.name, "kind": t.kind, "url": shown_url(&t.url),
        "events": serde_json::from_str::<serde_json::Value>(&t.events).unwrap_or_default(),
        "createdAt": t.created_at,
    })
}

fn delivery_view(d: &Delivery) -> serde_json::Value {
    json!({
        "id": d.id, "target": d.target, "event": d.event, "subject": d.subject,
        "message": d.message, "state": d.state, "attempts": d.attempts,
        "nextAttemptAt": (d.state == "pending").then_some(&d.next_attempt_at),
        "lastError": d.last_error, "createdAt": d.created_at, "deliveredAt": d.delivered_at,
    })
}

async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("list", "notifications")])
        .await?;
    let items: Vec<_> = state
        .catalog
        .notification_targets()
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("create", "notifications")])
        .await?;
    let spec: TargetSpec = super::parse_body(&body, "notification target")?;
    spec.validate().map_err(|e| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: format!("invalid notification target: {e}"),
    })?;
    let record = spec.record();
    state.catalog.insert_notification_target(&record).await?;
    state
        .catalog
        .record_activity(
            &who.actor(),
            "notification.target_added",
            &format!("notification-target/{}", record.name),
            &format!(
                "notification target {} ({}, {}) added",
                record.name,
                record.kind,
                shown_url(&record.url)
            ),
            None,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(&record))).into_response())
}

async fn remove(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("delete", "notifications")])
        .await?;
    state.catalog.delete_notification_target(&name).await?;
    state
        .catalog
        .record_activity(
            &who.actor(),
            "notification.target_removed",
            &format!("notification-target/{name}"),
            &format!("notification target {name} removed"),
            None,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct DeliveriesQuery {
    limit: Option<i64>,
}

async fn deliveries(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("list", "notifications")])
        .await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let items: Vec<_> = state
        .catalog
        .deliveries(limit)
        .await?
        .iter()
        .map(delivery_view)
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}
