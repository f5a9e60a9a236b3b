//! Login, the caller's identity, and API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::ACCESS_TOKEN_SECONDS;
use crate::rest::{Json, Query};
use crate::service::api_keys::{self, ApiKey, CreateApiKey, CreatedApiKey};
use crate::service::{Page, PageParams};
use crate::{ApiError, AppState, Principal, Role};

/// Credentials for `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// Exchanges an email and password for a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "Wrong email or password", body = crate::Problem),
        (status = 429, description = "Too many attempts for this account; see `Retry-After`", body = crate::Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let access_token = state.login(&body.email, &body.password).await?;
    Ok(Json(LoginResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_SECONDS,
    }))
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct Me {
    pub subject: String,
    pub role: Role,
    pub reseller_id: Option<String>,
    pub tenant_id: Option<String>,
    pub user_id: Option<String>,
}

impl From<&Principal> for Me {
    fn from(p: &Principal) -> Self {
        Self {
            subject: p.subject.clone(),
            role: p.role,
            reseller_id: p.scope.reseller_id().map(|r| r.0.clone()),
            tenant_id: p.scope.tenant_id().map(|t| t.0.clone()),
            user_id: p.scope.user_id().map(|u| u.0.clone()),
        }
    }
}

/// The authenticated caller and their scope.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Not authenticated", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn me(who: Principal) -> Json<Me> {
    Json(Me::from(&who))
}

/// API keys visible to the caller (revoked ones included).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    params(PageParams),
    responses(
        (status = 200, description = "One page, oldest first", body = Page<ApiKey>),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Your role may not do this", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    Ok(Json(api_keys::list(&state, &who, &page).await?))
}

/// One API key.
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "Opaque id")),
    responses(
        (status = 200, description = "Found", body = ApiKey),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn get_api_key(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(api_keys::get(&state, &who, &id).await?))
}

/// Creates an API key; its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys",
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; store the secret now", body = CreatedApiKey),
        (status = 403, description = "Your role may not do this", body = crate::Problem),
        (status = 404, description = "Tenant or reseller missing or outside your scope", body = crate::Problem),
        (status = 422, description = "Invalid fields", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    who: Principal,
    Json(input): Json<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(api_keys::create(&state, &who, input).await?),
    ))
}

/// Revokes an API key (idempotent); `DELETE` does the same.
#[utoipa::path(post, path = "/api/v1/api-keys/{id}/revoke", tag = "api-keys",
    params(("id" = String, Path, description = "Opaque id")),
    responses(
        (status = 200, description = "Revoked", body = ApiKey),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(api_keys::revoke(&state, &who, &id).await?))
}

/// Revokes an API key (idempotent).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "Opaque id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn delete_api_key(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    api_keys::revoke(&state, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
