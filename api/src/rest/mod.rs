//! REST handlers under `/api/v1`: thin adapters from HTTP to the service layer.

pub mod access;
pub mod addresses;
pub mod dkim;
pub mod hierarchy;
pub mod message_log;
pub mod policies;
pub mod quarantine;
pub mod reports;
pub mod webmail;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;

use crate::auth::Principal;
use crate::{ApiError, AppState};

/// JSON body whose rejection is problem JSON.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Query string whose rejection is problem JSON.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::Validation(vec![crate::FieldError {
                field: "body".into(),
                message: e.body_text(),
            }]),
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Validation(vec![crate::FieldError {
            field: "query".into(),
            message: rejection.body_text(),
        }])
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state.authenticate(header).await
    }
}

/// Generates list/get/create/update/delete handlers for one resource of the service layer.
macro_rules! crud_handlers {
    (
        service: $svc:ident, tag: $tag:literal,
        collection: $collection:literal, item_path: $item_path:literal,
        item: $Item:ty, create: $Create:ty, update: $Update:ty, filter: $Filter:ty $(,)?
    ) => {
        use $crate::service::Page;

        #[utoipa::path(get, path = $collection, tag = $tag,
            params($crate::service::PageParams, $Filter),
            responses(
                (status = 200, description = "One page, oldest first", body = Page<$Item>),
                (status = 401, description = "Not authenticated", body = $crate::Problem),
                (status = 422, description = "Invalid query", body = $crate::Problem),
            ),
            security(("bearer" = [])))]
        pub async fn list(
            axum::extract::State(state): axum::extract::State<$crate::AppState>,
            who: $crate::Principal,
            $crate::rest::Query(page): $crate::rest::Query<$crate::service::PageParams>,
            $crate::rest::Query(filter): $crate::rest::Query<$Filter>,
        ) -> Result<$crate::rest::Json<Page<$Item>>, $crate::ApiError> {
            Ok($crate::rest::Json($crate::service::$svc::list(&state, &who, &filter, &page).await?))
        }

        #[utoipa::path(get, path = $item_path, tag = $tag,
            params(("id" = String, Path, description = "Opaque id")),
            responses(
                (status = 200, description = "Found", body = $Item),
                (status = 401, description = "Not authenticated", body = $crate::Problem),
                (status = 404, description = "Missing or outside your scope", body = $crate::Problem),
            ),
            security(("bearer" = [])))]
        pub async fn get(
            axum::extract::State(state): axum::extract::State<$crate::AppState>,
            who: $crate::Principal,
            axum::extract::Path(id): axum::extract::Path<String>,
        ) -> Result<$crate::rest::Json<$Item>, $crate::ApiError> {
            Ok($crate::rest::Json($crate::service::$svc::get(&state, &who, &id).await?))
        }

        #[utoipa::path(post, path = $collection, tag = $tag,
            request_body = $Create,
            responses(
                (status = 201, description = "Created", body = $Item),
                (status = 401, description = "Not authenticated", body = $crate::Problem),
                (status = 403, description = "Your role may not do this", body = $crate::Problem),
                (status = 404, description = "The parent is missing or outside your scope", body = $crate::Problem),
                (status = 409, description = "Conflicts with an existing resource", body = $crate::Problem),
                (status = 422, description = "Invalid fields", body = $crate::Problem),
            ),
            security(("bearer" = [])))]
        pub async fn create(
            axum::extract::State(state): axum::extract::State<$crate::AppState>,
            who: $crate::Principal,
            $crate::rest::Json(input): $crate::rest::Json<$Create>,
        ) -> Result<(axum::http::StatusCode, $crate::rest::Json<$Item>), $crate::ApiError> {
            let created = $crate::service::$svc::create(&state, &who, input).await?;
            Ok((axum::http::StatusCode::CREATED, $crate::rest::Json(created)))
        }

        #[utoipa::path(patch, path = $item_path, tag = $tag,
            params(("id" = String, Path, description = "Opaque id")),
            request_body = $Update,
            responses(
                (status = 200, description = "Updated", body = $Item),
                (status = 401, description = "Not authenticated", body = $crate::Problem),
                (status = 403, description = "Your role may not do this", body = $crate::Problem),
                (status = 404, description = "Missing or outside your scope", body = $crate::Problem),
                (status = 422, description = "Invalid fields", body = $crate::Problem),
            ),
            security(("bearer" = [])))]
        pub async fn update(
            axum::extract::State(state): axum::extract::State<$crate::AppState>,
            who: $crate::Principal,
            axum::extract::Path(id): axum::extract::Path<String>,
            $crate::rest::Json(input): $crate::rest::Json<$Update>,
        ) -> Result<$crate::rest::Json<$Item>, $crate::ApiError> {
            Ok($crate::rest::Json($crate::service::$svc::update(&state, &who, &id, input).await?))
        }

        #[utoipa::path(delete, path = $item_path, tag = $tag,
            params(("id" = String, Path, description = "Opaque id")),
            responses(
                (status = 204, description = "Deleted"),
                (status = 401, description = "Not authenticated", body = $crate::Problem),
                (status = 403, description = "Your role may not do this", body = $crate::Problem),
                (status = 404, description = "Missing or outside your scope", body = $crate::Problem),
                (status = 409, description = "Still referenced", body = $crate::Problem),
            ),
            security(("bearer" = [])))]
        pub async fn delete(
            axum::extract::State(state): axum::extract::State<$crate::AppState>,
            who: $crate::Principal,
            axum::extract::Path(id): axum::extract::Path<String>,
        ) -> Result<axum::http::StatusCode, $crate::ApiError> {
            $crate::service::$svc::delete(&state, &who, &id).await?;
            Ok(axum::http::StatusCode::NO_CONTENT)
        }
    };
}
pub(crate) use crud_handlers;
