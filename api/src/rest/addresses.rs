//! Users, aliases, and the bulk address import and export.

pub mod users {
    use crate::service::users::*;
    crate::rest::crud_handlers!(
        service: users, tag: "users",
        collection: "/api/v1/users", item_path: "/api/v1/users/{id}",
        item: User, create: CreateUser, update: UpdateUser, filter: UserFilter,
    );
}

/// Turning a user into an alias (after an import, for addresses that were aliases).
pub mod convert {
    use axum::extract::{Path, State};

    use crate::rest::Json;
    use crate::service::aliases::Alias;
    use crate::service::users::{self, ConvertToAlias};
    use crate::{ApiError, AppState, Principal};

    /// Turns a user into an alias of another user of the same tenant; the user's own
    /// aliases move to the target.
    #[utoipa::path(post, path = "/api/v1/users/{id}/convert-to-alias", tag = "users",
        params(("id" = String, Path, description = "The user to turn into an alias")),
        request_body = ConvertToAlias,
        responses(
            (status = 200, description = "The alias that replaced the user", body = Alias),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
            (status = 422, description = "Invalid target", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn convert_to_alias(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
        Json(input): Json<ConvertToAlias>,
    ) -> Result<Json<Alias>, ApiError> {
        Ok(Json(
            users::convert_to_alias(&state, &who, &id, input).await?,
        ))
    }
}

pub mod aliases {
    use crate::service::aliases::*;
    crate::rest::crud_handlers!(
        service: aliases, tag: "aliases",
        collection: "/api/v1/aliases", item_path: "/api/v1/aliases/{id}",
        item: Alias, create: CreateAlias, update: UpdateAlias, filter: AliasFilter,
    );
}

pub mod import {
    use axum::extract::State;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use serde::Deserialize;
    use utoipa::IntoParams;

    use crate::rest::{Json, Query};
    use crate::service::import::{self, ImportReport, ImportTarget};
    use crate::{ApiError, AppState, Principal};

    /// Options of an import.
    #[derive(Debug, Deserialize, IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct ImportOptions {
        /// Report what would happen without writing anything (default false).
        #[serde(default)]
        pub dry_run: bool,
    }

    /// Imports users and aliases from CSV (`address,type,target,display_name`; a header
    /// line is optional). All-or-nothing: if any line is rejected, nothing is written and
    /// the answer is 422 with the per-line report.
    #[utoipa::path(post, path = "/api/v1/imports", tag = "import",
        params(ImportTarget, ImportOptions),
        request_body(content = String, content_type = "text/csv", description = "CSV: address,type,target,display_name"),
        responses(
            (status = 200, description = "Dry run report, or the import was applied", body = ImportReport),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 404, description = "Tenant or domain missing or outside your scope", body = crate::Problem),
            (status = 422, description = "Rejected lines: nothing was written", body = ImportReport),
        ),
        security(("bearer" = [])))]
    pub async fn import_addresses(
        State(state): State<AppState>,
        who: Principal,
        Query(target): Query<ImportTarget>,
        Query(options): Query<ImportOptions>,
        body: String,
    ) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
        let report = import::import(&state, &who, &target, &body, options.dry_run).await?;
        let status = if report.dry_run || report.applied {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Ok((status, Json(report)))
    }

    /// Exports the users and aliases of a domain or tenant in the import format.
    #[utoipa::path(get, path = "/api/v1/exports/addresses.csv", tag = "import",
        params(ImportTarget),
        responses(
            (status = 200, description = "CSV: address,type,target,display_name", body = String, content_type = "text/csv"),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 404, description = "Tenant or domain missing or outside your scope", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn export_addresses(
        State(state): State<AppState>,
        who: Principal,
        Query(target): Query<ImportTarget>,
    ) -> Result<impl IntoResponse, ApiError> {
        let csv = import::export(&state, &who, &target).await?;
        Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv))
    }
}
