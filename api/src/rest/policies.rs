//! Policies: CRUD, a tenant's policy, domain and user overrides, and effective policies.

pub mod crud {
    use crate::service::policies::*;
    crate::rest::crud_handlers!(
        service: policies, tag: "policies",
        collection: "/api/v1/policies", item_path: "/api/v1/policies/{id}",
        item: Policy, create: CreatePolicy, update: UpdatePolicy, filter: PolicyFilter,
    );
}

pub mod assignments {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;

    use crate::rest::Json;
    use crate::service::policies::{
        self as service, AssignPolicy, EffectivePolicy, PolicyOverrides, PolicyOverridesOf,
        TenantPolicy,
    };
    use crate::{ApiError, AppState, Principal};

    /// The policy a tenant uses.
    #[utoipa::path(get, path = "/api/v1/tenants/{id}/policy", tag = "policies",
        params(("id" = String, Path, description = "Tenant id")),
        responses(
            (status = 200, description = "The tenant's policy", body = TenantPolicy),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn get_tenant_policy(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
    ) -> Result<Json<TenantPolicy>, ApiError> {
        Ok(Json(service::tenant_policy(&state, &who, &id).await?))
    }

    /// Makes a tenant use a policy (the platform's, its reseller's or its own).
    #[utoipa::path(put, path = "/api/v1/tenants/{id}/policy", tag = "policies",
        params(("id" = String, Path, description = "Tenant id")),
        request_body = AssignPolicy,
        responses(
            (status = 200, description = "Assigned", body = TenantPolicy),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Tenant or policy missing or outside your scope", body = crate::Problem),
            (status = 422, description = "Invalid body", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn put_tenant_policy(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
        Json(input): Json<AssignPolicy>,
    ) -> Result<Json<TenantPolicy>, ApiError> {
        Ok(Json(
            service::assign_tenant_policy(&state, &who, &id, &input.policy_id).await?,
        ))
    }

    /// The policy overrides of a domain (empty when none are set).
    #[utoipa::path(get, path = "/api/v1/domains/{id}/policy-overrides", tag = "policies",
        params(("id" = String, Path, description = "Domain id")),
        responses(
            (status = 200, description = "The overrides", body = PolicyOverridesOf),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn get_domain_overrides(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
    ) -> Result<Json<PolicyOverridesOf>, ApiError> {
        Ok(Json(service::domain_overrides(&state, &who, &id).await?))
    }

    /// Sets (replaces) the policy overrides of a domain; absent fields are inherited.
    #[utoipa::path(put, path = "/api/v1/domains/{id}/policy-overrides", tag = "policies",
        params(("id" = String, Path, description = "Domain id")),
        request_body = PolicyOverrides,
        responses(
            (status = 200, description = "Set", body = PolicyOverridesOf),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
            (status = 422, description = "Invalid fields", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn put_domain_overrides(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
        Json(input): Json<PolicyOverrides>,
    ) -> Result<Json<PolicyOverridesOf>, ApiError> {
        Ok(Json(
            service::set_domain_overrides(&state, &who, &id, input).await?,
        ))
    }

    /// Removes the policy overrides of a domain (idempotent).
    #[utoipa::path(delete, path = "/api/v1/domains/{id}/policy-overrides", tag = "policies",
        params(("id" = String, Path, description = "Domain id")),
        responses(
            (status = 204, description = "Cleared"),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn delete_domain_overrides(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
    ) -> Result<StatusCode, ApiError> {
        service::clear_domain_overrides(&state, &who, &id).await?;
        Ok(StatusCode::NO_CONTENT)
    }

    /// The policy overrides of a user (empty when none are set).
    #[utoipa::path(get, path = "/api/v1/users/{id}/policy-overrides", tag = "policies",
        params(("id" = String, Path, description = "User id")),
        responses(
            (status = 200, description = "The overrides", body = PolicyOverridesOf),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn get_user_overrides(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
    ) -> Result<Json<PolicyOverridesOf>, ApiError> {
        Ok(Json(service::user_overrides(&state, &who, &id).await?))
    }

    /// Sets (replaces) the policy overrides of a user; absent fields are inherited.
    #[utoipa::path(put, path = "/api/v1/users/{id}/policy-overrides", tag = "policies",
        params(("id" = String, Path, description = "User id")),
        request_body = PolicyOverrides,
        responses(
            (status = 200, description = "Set", body = PolicyOverridesOf),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
            (status = 422, description = "Invalid fields", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn put_user_overrides(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
        Json(input): Json<PolicyOverrides>,
    ) -> Result<Json<PolicyOverridesOf>, ApiError> {
        Ok(Json(
            service::set_user_overrides(&state, &who, &id, input).await?,
        ))
    }

    /// Removes the policy overrides of a user (idempotent).
    #[utoipa::path(delete, path = "/api/v1/users/{id}/policy-overrides", tag = "policies",
        params(("id" = String, Path, description = "User id")),
        responses(
            (status = 204, description = "Cleared"),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn delete_user_overrides(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
    ) -> Result<StatusCode, ApiError> {
        service::clear_user_overrides(&state, &who, &id).await?;
        Ok(StatusCode::NO_CONTENT)
    }

    /// A user's effective policy: every value and the level (tenant, domain, user) it came
    /// from. End users may read their own.
    #[utoipa::path(get, path = "/api/v1/users/{id}/effective-policy", tag = "policies",
        params(("id" = String, Path, description = "User id")),
        responses(
            (status = 200, description = "The effective policy", body = EffectivePolicy),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn user_effective_policy(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
    ) -> Result<Json<EffectivePolicy>, ApiError> {
        Ok(Json(service::effective_for_user(&state, &who, &id).await?))
    }

    /// A domain's effective policy (before user overrides), with the level of each value.
    #[utoipa::path(get, path = "/api/v1/domains/{id}/effective-policy", tag = "policies",
        params(("id" = String, Path, description = "Domain id")),
        responses(
            (status = 200, description = "The effective policy", body = EffectivePolicy),
            (status = 401, description = "Not authenticated", body = crate::Problem),
            (status = 403, description = "Your role may not do this", body = crate::Problem),
            (status = 404, description = "Missing or outside your scope", body = crate::Problem),
        ),
        security(("bearer" = [])))]
    pub async fn domain_effective_policy(
        State(state): State<AppState>,
        who: Principal,
        Path(id): Path<String>,
    ) -> Result<Json<EffectivePolicy>, ApiError> {
        Ok(Json(
            service::effective_for_domain(&state, &who, &id).await?,
        ))
    }
}
