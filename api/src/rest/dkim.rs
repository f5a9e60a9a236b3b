//! DKIM keys of a domain under `/api/v1/domains/{domain_id}/dkim-keys`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::rest::Json;
use crate::rest::quarantine::optional_json;
use crate::service::dkim::{self as service, CreateDkimKey, DkimKey};
use crate::{ApiError, AppState, Principal};

/// The domain's DKIM keys, newest first, each with the DNS record to publish.
#[utoipa::path(get, path = "/api/v1/domains/{domain_id}/dkim-keys", tag = "domains",
    params(("domain_id" = String, Path, description = "Domain id")),
    responses(
        (status = 200, description = "The keys", body = Vec<DkimKey>),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Needs the tenant_admin role", body = crate::Problem),
        (status = 404, description = "No such domain in your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(domain_id): Path<String>,
) -> Result<Json<Vec<DkimKey>>, ApiError> {
    Ok(Json(service::list(&state, &who, &domain_id).await?))
}

/// Generates a key pair for the domain. Publish `dns_record`, then activate the key (the
/// domain's first key is active at once unless `active: false`).
#[utoipa::path(post, path = "/api/v1/domains/{domain_id}/dkim-keys", tag = "domains",
    params(("domain_id" = String, Path, description = "Domain id")),
    request_body(content = Option<CreateDkimKey>, description = "Optional selector, algorithm, active"),
    responses(
        (status = 201, description = "Created", body = DkimKey),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Needs the tenant_admin role", body = crate::Problem),
        (status = 404, description = "No such domain in your scope", body = crate::Problem),
        (status = 409, description = "Selector already used by this domain", body = crate::Problem),
        (status = 422, description = "Invalid selector", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(domain_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<DkimKey>), ApiError> {
    let input: CreateDkimKey = optional_json(&body)?;
    let key = service::create(&state, &who, &domain_id, input).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// One key with its DNS record.
#[utoipa::path(get, path = "/api/v1/domains/{domain_id}/dkim-keys/{id}", tag = "domains",
    params(
        ("domain_id" = String, Path, description = "Domain id"),
        ("id" = String, Path, description = "Key id"),
    ),
    responses(
        (status = 200, description = "Found", body = DkimKey),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Needs the tenant_admin role", body = crate::Problem),
        (status = 404, description = "No such key in your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path((domain_id, id)): Path<(String, String)>,
) -> Result<Json<DkimKey>, ApiError> {
    Ok(Json(service::get(&state, &who, &domain_id, &id).await?))
}

/// Deletes a key (if it was the active one, the domain's mail goes out unsigned).
#[utoipa::path(delete, path = "/api/v1/domains/{domain_id}/dkim-keys/{id}", tag = "domains",
    params(
        ("domain_id" = String, Path, description = "Domain id"),
        ("id" = String, Path, description = "Key id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Needs the tenant_admin role", body = crate::Problem),
        (status = 404, description = "No such key in your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((domain_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &who, &domain_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs the domain's outbound mail with this key from now on (the previous active key
/// stays published until you delete it).
#[utoipa::path(post, path = "/api/v1/domains/{domain_id}/dkim-keys/{id}/activate", tag = "domains",
    params(
        ("domain_id" = String, Path, description = "Domain id"),
        ("id" = String, Path, description = "Key id"),
    ),
    responses(
        (status = 200, description = "Active", body = DkimKey),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Needs the tenant_admin role", body = crate::Problem),
        (status = 404, description = "No such key in your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn activate(
    State(state): State<AppState>,
    who: Principal,
    Path((domain_id, id)): Path<(String, String)>,
) -> Result<Json<DkimKey>, ApiError> {
    Ok(Json(
        service::activate(&state, &who, &domain_id, &id).await?,
    ))
}
