//! `ApiError`: the one error type of the API layer. It becomes RFC 9457 problem JSON on
//! REST and a coded error (`extensions.code`) on GraphQL, from the same match.

use async_graphql::ErrorExtensions as _;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cleanmail_schema::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid input field.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct FieldError {
    /// The field, as named in the request (e.g. `address`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// What a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(String),
    #[error("service unavailable")]
    Unavailable(String),
    /// A feature this deployment is not configured for (503, the reason is shown).
    #[error("{0}")]
    NotConfigured(String),
    /// Too many attempts, or too much mail, in a time window (429 with `Retry-After`).
    #[error("{detail}")]
    RateLimited {
        detail: String,
        /// Seconds until the request may succeed again.
        retry_after_secs: u64,
    },
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence.
    pub detail: String,
    /// Machine-readable code, the same as GraphQL's `extensions.code`.
    pub code: String,
    /// Field-level details of a validation failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    /// A validation failure of one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::Conflict(_) => "CONFLICT",
            Self::Internal(_) => "INTERNAL",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::NotConfigured(_) => "NOT_CONFIGURED",
            Self::RateLimited { .. } => "RATE_LIMITED",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) | Self::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The problem document (5xx details are logged, never sent).
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            Self::Unauthenticated => {
                "send `Authorization: Bearer <token or API key>`; the credential was missing, invalid, expired or revoked".to_owned()
            }
            Self::NotFound => "no such resource, or it is outside your scope".to_owned(),
            Self::Validation(errors) => format!(
                "{} field(s) are invalid: {}",
                errors.len(),
                errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "an internal error occurred; it has been logged".to_owned()
            }
            Self::Unavailable(cause) => {
                tracing::error!(%cause, "dependency unavailable");
                "a backing service is unavailable; try again shortly".to_owned()
            }
            other => other.to_string(),
        };
        Problem {
            kind: format!(
                "https://cleanmail.dev/problems/{}",
                self.code().to_lowercase().replace('_', "-")
            ),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: self.code().to_owned(),
            errors: match self {
                Self::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// The GraphQL form: message plus `extensions.code` (and `extensions.fields`).
    pub fn into_graphql(self) -> async_graphql::Error {
        let problem = self.problem();
        let message = match &self {
            Self::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            _ => problem.detail.clone(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", problem.code.clone());
            if let Self::RateLimited {
                retry_after_secs, ..
            } = &self
            {
                ext.set("retryAfter", *retry_after_secs);
            }
            if !problem.errors.is_empty() {
                let fields: Vec<async_graphql::Value> = problem
                    .errors
                    .iter()
                    .map(|e| {
                        let mut map = async_graphql::indexmap::IndexMap::new();
                        map.insert(
                            async_graphql::Name::new("field"),
                            async_graphql::Value::from(e.field.clone()),
                        );
                        map.insert(
                            async_graphql::Name::new("message"),
                            async_graphql::Value::from(e.message.clone()),
                        );
                        async_graphql::Value::Object(map)
                    })
                    .collect();
                ext.set("fields", async_graphql::Value::List(fields));
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let mut response = (self.status(), axum::Json(problem)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        if let Self::RateLimited {
            retry_after_secs, ..
        } = &self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_secs),
            );
        }
        if matches!(self, Self::Unauthenticated) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(message) | StoreError::Constraint(message) => {
                Self::Conflict(message)
            }
            StoreError::Invalid(message) => Self::BadRequest(message),
            StoreError::Unavailable(message) => Self::Unavailable(message),
            StoreError::Database(err) => Self::Internal(err.to_string()),
        }
    }
}

/// Collects field errors; `finish` fails if any were found.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// Records an error for `field`.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Runs a parse and records its error under `field`.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.error(field, err.to_string());
                None
            }
        }
    }

    /// How many errors were recorded.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether no error was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}
