//! Message tracking under `/api/v1/message-log`.

use axum::extract::State;

use crate::rest::{Json, Query};
use crate::service::message_log::{self as service, LogEntry};
use crate::service::quarantine::MessageSearch;
use crate::service::{Page, PageParams};
use crate::{ApiError, AppState, Principal};

/// Every message of your scope received, refused or sent, with its envelope, verdict and
/// delivery state, newest first (tenant admins and above). `recipient` searches the envelope
/// recipients; `user_id` does not apply.
#[utoipa::path(get, path = "/api/v1/message-log", tag = "message-log",
    params(PageParams, MessageSearch),
    responses(
        (status = 200, description = "One page, newest first", body = Page<LogEntry>),
        (status = 400, description = "Malformed cursor", body = crate::Problem),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Mailbox users have no message log", body = crate::Problem),
        (status = 422, description = "Invalid search", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<PageParams>,
    Query(search): Query<MessageSearch>,
) -> Result<Json<Page<LogEntry>>, ApiError> {
    Ok(Json(service::list(&state, &who, &search, &page).await?))
}
