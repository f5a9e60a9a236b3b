//! The backup webmail under `/api/v1/webmail`.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::rest::{Json, Query};
use crate::service::quarantine::{MessageDetail, MessageSearch, StoredMessage};
use crate::service::webmail as service;
use crate::service::{Page, PageParams};
use crate::{ApiError, AppState, Principal};

/// Retained (delivered) messages you can see (a user: their own), newest first.
#[utoipa::path(get, path = "/api/v1/webmail/messages", tag = "webmail",
    params(PageParams, MessageSearch),
    responses(
        (status = 200, description = "One page, newest first", body = Page<StoredMessage>),
        (status = 400, description = "Malformed cursor", body = crate::Problem),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 422, description = "Invalid query", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<PageParams>,
    Query(search): Query<MessageSearch>,
) -> Result<Json<Page<StoredMessage>>, ApiError> {
    Ok(Json(service::list(&state, &who, &search, &page).await?))
}

/// One retained message: envelope, headers, verdict, safe preview and attachment list.
#[utoipa::path(get, path = "/api/v1/webmail/messages/{id}", tag = "webmail",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 200, description = "Found", body = MessageDetail),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 404, description = "Missing, not retained or outside your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<MessageDetail>, ApiError> {
    Ok(Json(service::get(&state, &who, &id).await?))
}

/// Re-delivers a retained message to its recipient's mailbox.
#[utoipa::path(post, path = "/api/v1/webmail/messages/{id}/redistribute", tag = "webmail",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 202, description = "Queued for delivery", body = StoredMessage),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 404, description = "Missing, not retained or outside your scope", body = crate::Problem),
        (status = 409, description = "Still being delivered", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn redistribute(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<StoredMessage>), ApiError> {
    let message = service::redistribute(&state, &who, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(message)))
}

/// Deletes a retained message.
#[utoipa::path(post, path = "/api/v1/webmail/messages/{id}/delete", tag = "webmail",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 404, description = "Missing, not retained or outside your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
