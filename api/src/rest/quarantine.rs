//! The quarantine under `/api/v1/quarantine` and release requests under
//! `/api/v1/release-requests`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::rest::{Json, Query};
use crate::service::quarantine::{
    self as service, BulkInput, BulkResult, MessageDetail, MessageSearch, ReleaseInput,
    ReleaseOutcome, ReleaseRequest, ReleaseRequestFilter, SenderListInput, SenderListOutcome,
    StoredMessage,
};
use crate::service::{Page, PageParams};
use crate::{ApiError, AppState, Principal};

/// An optional JSON body: empty means the defaults.
pub(crate) fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid("body", e.to_string()))
}

/// Quarantined messages you can see (a user: their own, aliases included), newest first.
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "quarantine",
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

/// One quarantined message: envelope, headers, verdict with every symbol, safe preview and
/// attachment list.
#[utoipa::path(get, path = "/api/v1/quarantine/{id}", tag = "quarantine",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 200, description = "Found", body = MessageDetail),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 404, description = "Missing, not in quarantine or outside your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<MessageDetail>, ApiError> {
    Ok(Json(service::get(&state, &who, &id).await?))
}

/// The raw message as received (`message/rfc822`; tenant admins and above).
#[utoipa::path(get, path = "/api/v1/quarantine/{id}/raw", tag = "quarantine",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 200, description = "The raw message", content_type = "message/rfc822", body = Vec<u8>),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Your role may not do this", body = crate::Problem),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn raw(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = service::raw(&state, &who, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.eml\""),
            ),
        ],
        bytes,
    ))
}

/// Releases a message (to all, or chosen, original recipients) through the normal delivery
/// path; learnt as ham. An end user's release of phishing or virus becomes a request.
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/release", tag = "quarantine",
    params(("id" = String, Path, description = "Message id")),
    request_body(content = Option<ReleaseInput>, description = "Optional recipients and comment"),
    responses(
        (status = 200, description = "Released or requested", body = ReleaseOutcome),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 404, description = "Missing, not in quarantine or outside your scope", body = crate::Problem),
        (status = 409, description = "No longer in quarantine, or a release was denied", body = crate::Problem),
        (status = 422, description = "Unknown recipients", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn release(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ReleaseOutcome>, ApiError> {
    let input = optional_json(&body)?;
    Ok(Json(service::release(&state, &who, &id, input).await?))
}

/// Deletes a quarantined message (its raw copy goes with its last recipient copy).
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/delete", tag = "quarantine",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 404, description = "Missing, not in quarantine or outside your scope", body = crate::Problem),
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

/// Adds the message's sender to an allow list (yours; admins may choose the level).
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/allow-sender", tag = "quarantine",
    params(("id" = String, Path, description = "Message id")),
    request_body(content = Option<SenderListInput>, description = "Optional entry and level"),
    responses(
        (status = 200, description = "Added", body = SenderListOutcome),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Your role may not use this level", body = crate::Problem),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        (status = 409, description = "The list is full or the policy is read-only", body = crate::Problem),
        (status = 422, description = "Invalid entry", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn allow_sender(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SenderListOutcome>, ApiError> {
    let input = optional_json(&body)?;
    Ok(Json(service::allow_sender(&state, &who, &id, input).await?))
}

/// Adds the message's sender to a block list (yours; admins may choose the level).
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/block-sender", tag = "quarantine",
    params(("id" = String, Path, description = "Message id")),
    request_body(content = Option<SenderListInput>, description = "Optional entry and level"),
    responses(
        (status = 200, description = "Added", body = SenderListOutcome),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Your role may not use this level", body = crate::Problem),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        (status = 409, description = "The list is full or the policy is read-only", body = crate::Problem),
        (status = 422, description = "Invalid entry", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn block_sender(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SenderListOutcome>, ApiError> {
    let input = optional_json(&body)?;
    Ok(Json(service::block_sender(&state, &who, &id, input).await?))
}

/// Reports a message as spam (classifier feedback); works on delivered copies too.
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/report-spam", tag = "quarantine",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 204, description = "Recorded"),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn report_spam(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::report_spam(&state, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One action on up to 500 messages, with a result per message.
#[utoipa::path(post, path = "/api/v1/quarantine/bulk", tag = "quarantine",
    request_body = BulkInput,
    responses(
        (status = 200, description = "Per-item results", body = BulkResult),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 422, description = "Invalid body", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn bulk(
    State(state): State<AppState>,
    who: Principal,
    Json(input): Json<BulkInput>,
) -> Result<Json<BulkResult>, ApiError> {
    Ok(Json(service::bulk(&state, &who, input).await?))
}

/// Release requests you can see (a user: their own), newest first.
#[utoipa::path(get, path = "/api/v1/release-requests", tag = "quarantine",
    params(PageParams, ReleaseRequestFilter),
    responses(
        (status = 200, description = "One page, newest first", body = Page<ReleaseRequest>),
        (status = 401, description = "Not authenticated", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn list_release_requests(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<PageParams>,
    Query(filter): Query<ReleaseRequestFilter>,
) -> Result<Json<Page<ReleaseRequest>>, ApiError> {
    Ok(Json(
        service::release_requests(&state, &who, &filter, &page).await?,
    ))
}

/// Approves a pending release request: the requester's copy is released.
#[utoipa::path(post, path = "/api/v1/release-requests/{id}/approve", tag = "quarantine",
    params(("id" = String, Path, description = "Release request id")),
    responses(
        (status = 200, description = "Approved and released", body = ReleaseRequest),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Your role may not do this", body = crate::Problem),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        (status = 409, description = "Already decided", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn approve_release_request(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ReleaseRequest>, ApiError> {
    Ok(Json(
        service::decide_release_request(&state, &who, &id, true).await?,
    ))
}

/// Denies a pending release request (the message stays in quarantine).
#[utoipa::path(post, path = "/api/v1/release-requests/{id}/deny", tag = "quarantine",
    params(("id" = String, Path, description = "Release request id")),
    responses(
        (status = 200, description = "Denied", body = ReleaseRequest),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Your role may not do this", body = crate::Problem),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        (status = 409, description = "Already decided", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn deny_release_request(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ReleaseRequest>, ApiError> {
    Ok(Json(
        service::decide_release_request(&state, &who, &id, false).await?,
    ))
}
