//! Domain and tenant report definitions, and their reports on demand (JSON, CSV).

pub mod definitions {
    use crate::service::reports::*;
    crate::rest::crud_handlers!(
        service: reports, tag: "reports",
        collection: "/api/v1/reports", item_path: "/api/v1/reports/{id}",
        item: ReportDefinition, create: CreateReportDefinition, update: UpdateReportDefinition,
        filter: ReportDefinitionFilter,
    );
}

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::rest::{Json, Query};
use crate::service::reports::{self, ReportData};
use crate::{ApiError, AppState, Principal};

/// Which period and format.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DataParams {
    /// The latest complete period at this instant (RFC 3339; default now).
    pub at: Option<DateTime<Utc>>,
    /// `json` (default) or `csv` (statistics reports).
    pub format: Option<String>,
}

/// A report's content for its latest complete period.
#[utoipa::path(get, path = "/api/v1/reports/{id}/data", tag = "reports",
    params(("id" = String, Path, description = "Opaque id"), DataParams),
    responses(
        (status = 200, description = "The report (JSON, or CSV with `format=csv`)", body = ReportData,
            content((ReportData = "application/json"), (String = "text/csv"))),
        (status = 400, description = "CSV of a quarantine report, or an unknown format", body = crate::Problem),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Your role may not do this", body = crate::Problem),
        (status = 404, description = "Missing or outside your scope", body = crate::Problem),
    ),
    security(("bearer" = [])))]
pub async fn data(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(params): Query<DataParams>,
) -> Result<Response, ApiError> {
    let data = reports::data(&state, &who, &id, params.at).await?;
    match params.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(data).into_response()),
        "csv" => Ok((
            [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            reports::statistics_csv(&data)?,
        )
            .into_response()),
        other => Err(ApiError::BadRequest(format!(
            "unknown format {other}: use json or csv"
        ))),
    }
}
