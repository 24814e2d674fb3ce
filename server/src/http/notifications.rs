//! Notification targets and their deliveries (administrators: `notifications`
//! in `lifeboat.io`). A target's URL is a secret: accepted, never returned.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use frontend::model::{DeliveryView, Items, NotificationTargetView};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiError, AppState};
use crate::auth::{Check, Principal};
use crate::catalog::{Delivery, NotificationTarget};
use crate::notify::{TargetSpec, shown_url};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
        .routes(routes!(deliveries))
}

fn view(t: &NotificationTarget) -> NotificationTargetView {
    NotificationTargetView {
        name: t.name.clone(),
        kind: t.kind.clone(),
        url: shown_url(&t.url),
        events: serde_json::from_str(&t.events).unwrap_or_default(),
        created_at: t.created_at.clone(),
    }
}

fn delivery_view(d: &Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id.clone(),
        target: d.target.clone(),
        event: d.event.clone(),
        subject: d.subject.clone(),
        message: d.message.clone(),
        state: d.state.clone(),
        attempts: d.attempts,
        next_attempt_at: (d.state == "pending").then(|| d.next_attempt_at.clone()),
        last_error: d.last_error.clone(),
        created_at: d.created_at.clone(),
        delivered_at: d.delivered_at.clone(),
    }
}

#[utoipa::path(get, operation_id = "listNotificationTargets", path = "/api/v1/notification-targets", tag = "notifications",
    description = "Every target, URLs shortened to scheme and host (`list notifications`).",
    responses((status = 200, description = "The targets", body = Items<NotificationTargetView>)))]
async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require(&who, &[Check::cluster("list", "notifications")])
        .await?;
    let items = state
        .catalog
        .notification_targets()
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(Json(Items { items }).into_response())
}

#[utoipa::path(post, operation_id = "createNotificationTarget", path = "/api/v1/notification-targets", tag = "notifications",
    description = "Adds a webhook target (`create notifications`).",
    request_body = TargetSpec,
    responses((status = 201, description = "Added", body = NotificationTargetView)))]
async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: TargetSpec = super::authorized_body(
        &state,
        &who,
        Check::cluster("create", "notifications"),
        &body,
        "notification target",
    )
    .await?;
    spec.validate()
        .map_err(|e| ApiError::invalid(format!("invalid notification target: {e}")))?;
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

#[utoipa::path(delete, operation_id = "deleteNotificationTarget", path = "/api/v1/notification-targets/{name}", tag = "notifications",
    params(("name" = String, Path, description = "The target's name")),
    description = "Removes a target and its pending deliveries (`delete notifications`).",
    responses((status = 204, description = "Removed")))]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveriesQuery {
    /// At most this many (1–500, default 50).
    limit: Option<i64>,
}

#[utoipa::path(get, operation_id = "listDeliveries", path = "/api/v1/notifications/deliveries", tag = "notifications",
    params(DeliveriesQuery),
    description = "Recent deliveries, newest first (`list notifications`).",
    responses((status = 200, description = "The deliveries", body = Items<DeliveryView>)))]
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
    let items = state
        .catalog
        .deliveries(limit)
        .await?
        .iter()
        .map(delivery_view)
        .collect();
    Ok(Json(Items { items }).into_response())
}
