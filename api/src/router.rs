//! All routes in one place: REST under `/api/v1`, GraphQL at `/graphql`, the OpenAPI
//! document at `/openapi.json`, Swagger UI at `/docs`, GraphiQL at `GET /graphql` (assets from
//! the binary, see `graphiql.rs`), and health probes.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::rest::addresses::{aliases, convert, import, users};
use crate::rest::hierarchy::{domains, resellers, tenants};
use crate::rest::policies::{assignments, crud as policies};
use crate::rest::reports::definitions as report_definitions;
use crate::rest::{Json, access, dkim, message_log, quarantine, webmail};
use crate::{ApiError, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cleanmail API",
        description = "Multi-tenant inbound email security: resellers, tenants, domains, users, aliases, access, filtering policies and the quarantine.\n\nAuthenticate with `Authorization: Bearer <token>` using a login token (`POST /api/v1/auth/login`) or an API key. Errors are RFC 9457 problem JSON. Lists are cursor-paginated: pass `next_cursor` back as `after`.",
        license(name = "AGPL-3.0-only")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Login and identity"),
        (name = "resellers"), (name = "tenants"), (name = "domains"),
        (name = "users"), (name = "aliases"),
        (name = "import", description = "Bulk address import and export (CSV)"),
        (name = "api-keys", description = "Long-lived credentials for automation"),
        (name = "policies", description = "Filtering policies, their assignment, overrides and effective values"),
        (name = "reports", description = "Domain and tenant reports: definitions and on-demand content"),
        (name = "quarantine", description = "Quarantined messages, their release, sender lists and release requests"),
        (name = "message-log", description = "Message tracking: every message received, refused or sent, its verdict and delivery state"),
        (name = "webmail", description = "The backup webmail: retained copies of delivered mail, redistribution, sending during an outage"),
        (name = "health")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A login token or an API key (`cm_…`)"))
                    .build(),
            ),
        );
    }
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(access::login))
        .routes(routes!(access::me))
        .routes(routes!(resellers::list, resellers::create))
        .routes(routes!(
            resellers::get,
            resellers::update,
            resellers::delete
        ))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::get, tenants::update, tenants::delete))
        .routes(routes!(domains::list, domains::create))
        .routes(routes!(domains::get, domains::update, domains::delete))
        .routes(routes!(dkim::list, dkim::create))
        .routes(routes!(dkim::get, dkim::delete))
        .routes(routes!(dkim::activate))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(convert::convert_to_alias))
        .routes(routes!(aliases::list, aliases::create))
        .routes(routes!(aliases::get, aliases::update, aliases::delete))
        .routes(routes!(import::import_addresses))
        .routes(routes!(import::export_addresses))
        .routes(routes!(access::list_api_keys, access::create_api_key))
        .routes(routes!(access::get_api_key, access::delete_api_key))
        .routes(routes!(access::revoke_api_key))
        .routes(routes!(policies::list, policies::create))
        .routes(routes!(policies::get, policies::update, policies::delete))
        .routes(routes!(
            assignments::get_tenant_policy,
            assignments::put_tenant_policy
        ))
        .routes(routes!(
            assignments::get_domain_overrides,
            assignments::put_domain_overrides,
            assignments::delete_domain_overrides
        ))
        .routes(routes!(
            assignments::get_user_overrides,
            assignments::put_user_overrides,
            assignments::delete_user_overrides
        ))
        .routes(routes!(assignments::user_effective_policy))
        .routes(routes!(assignments::domain_effective_policy))
        .routes(routes!(
            report_definitions::list,
            report_definitions::create
        ))
        .routes(routes!(
            report_definitions::get,
            report_definitions::update,
            report_definitions::delete
        ))
        .routes(routes!(crate::rest::reports::data))
        .routes(routes!(quarantine::list))
        .routes(routes!(quarantine::bulk))
        .routes(routes!(quarantine::get))
        .routes(routes!(quarantine::raw))
        .routes(routes!(quarantine::release))
        .routes(routes!(quarantine::delete))
        .routes(routes!(quarantine::allow_sender))
        .routes(routes!(quarantine::block_sender))
        .routes(routes!(quarantine::report_spam))
        .routes(routes!(quarantine::list_release_requests))
        .routes(routes!(quarantine::approve_release_request))
        .routes(routes!(quarantine::deny_release_request))
        .routes(routes!(webmail::list))
        .routes(routes!(webmail::get))
        .routes(routes!(webmail::redistribute))
        .routes(routes!(webmail::delete))
        .routes(routes!(webmail::send))
        .routes(routes!(webmail::sent))
        .routes(routes!(message_log::list))
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The OpenAPI document as pretty JSON (what `openapi/openapi.json` holds).
pub fn openapi_json() -> String {
    openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (rest, openapi) = api_routes().split_for_parts();
    let schema = crate::graphql::schema(state.clone());
    rest.route(
        "/graphql",
        get(crate::graphiql::page).post(crate::graphql::handler),
    )
    .route(
        "/links/{purpose}",
        get(crate::web::links::open).post(crate::web::links::act),
    )
    .merge(crate::graphiql::routes())
    .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi))
    .fallback(not_found)
    .layer(axum::Extension(schema))
    .layer(tower_http::limit::RequestBodyLimitLayer::new(
        32 * 1024 * 1024,
    ))
    .layer(tower_http::trace::TraceLayer::new_for_http())
    .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Health of a probe.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database is unreachable", body = crate::Problem),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<(StatusCode, Json<Health>), ApiError> {
    state.db.ping().await?;
    Ok((
        StatusCode::OK,
        Json(Health {
            status: "ok".into(),
        }),
    ))
}
