//! The backup webmail under `/api/v1/webmail`.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::rest::{Json, Query};
use crate::service::quarantine::{MessageDetail, MessageSearch, StoredMessage};
use crate::service::webmail::{self as service, SendMessage, SentMessage};
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

/// The sent folder: what you sent from the webmail, newest first, with each message's
/// delivery state (mailbox users).
#[utoipa::path(get, path = "/api/v1/webmail/sent", tag = "webmail",
    params(PageParams),
    responses(
        (status = 200, description = "One page, newest first", body = Page<SentMessage>),
        (status = 400, description = "Malformed cursor", body = crate::Problem),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Not a mailbox user", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn sent(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<SentMessage>>, ApiError> {
    Ok(Json(service::sent(&state, &who, &page).await?))
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

/// Sends a new message or a reply from your mailbox through the platform's outbound relay,
/// signed with your domain's active DKIM key: keeps you working while your own mail server
/// is down. Only mailbox users can send, as themselves.
#[utoipa::path(post, path = "/api/v1/webmail/send", tag = "webmail",
    request_body = SendMessage,
    responses(
        (status = 202, description = "Queued for the outbound relay", body = SentMessage),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Not a mailbox user", body = crate::Problem),
        (status = 404, description = "The message replied to is not yours", body = crate::Problem),
        (status = 422, description = "Invalid recipients, subject or text", body = crate::Problem),
        (status = 429, description = "Hourly send limit reached; see `Retry-After`", body = crate::Problem),
        (status = 503, description = "No outbound relay configured", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn send(
    State(state): State<AppState>,
    who: Principal,
    Json(input): Json<SendMessage>,
) -> Result<(StatusCode, Json<SentMessage>), ApiError> {
    let sent = service::send(&state, &who, input).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}
