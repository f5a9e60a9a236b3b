//! API keys: long-lived credentials for automation, scoped to a reseller or a tenant,
//! stored hashed, shown once, revocable.

use chrono::{DateTime, Utc};
use cleanmail_schema::models as m;
use cleanmail_schema::store::{access as store, resellers, tenants};
use cleanmail_schema::{ApiKeyId, ResellerId, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Page, PageParams, required_text, utc};
use crate::auth::{Principal, Role, generate_api_key};
use crate::{ApiError, AppState, Validator};

/// An API key (without its secret).
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// The role the key acts with.
    pub role: Role,
    pub reseller_id: Option<String>,
    pub tenant_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<m::ApiKey> for ApiKey {
    fn from(k: m::ApiKey) -> Self {
        Self {
            id: k.id.0,
            name: k.name,
            prefix: k.prefix,
            role: k.role.parse().unwrap_or(Role::User),
            reseller_id: k.reseller_id.map(|r| r.0),
            tenant_id: k.tenant_id.map(|t| t.0),
            created_at: utc(k.created_at),
            last_used_at: k.last_used_at.map(utc),
            revoked_at: k.revoked_at.map(utc),
        }
    }
}

/// A newly created key: the secret appears here once and is never shown again.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct CreatedApiKey {
    /// Send as `Authorization: Bearer <secret>`.
    pub secret: String,
    pub api_key: ApiKey,
}

/// Input to create a key: give `tenant_id` for a tenant key, else `reseller_id` for a
/// reseller key; with neither, the key gets the caller's own reseller or tenant scope.
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct CreateApiKey {
    pub name: String,
    pub reseller_id: Option<String>,
    pub tenant_id: Option<String>,
}

pub async fn list(
    state: &AppState,
    who: &Principal,
    page: &PageParams,
) -> Result<Page<ApiKey>, ApiError> {
    who.require(Role::TenantAdmin)?;
    Ok(Page::from_store(
        store::list_api_keys(&state.db, &who.scope, &page.request()).await?,
        ApiKey::from,
    ))
}

pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<ApiKey, ApiError> {
    who.require(Role::TenantAdmin)?;
    Ok(
        store::get_api_key(&state.db, &who.scope, &ApiKeyId(id.to_owned()))
            .await?
            .into(),
    )
}

pub async fn create(
    state: &AppState,
    who: &Principal,
    input: CreateApiKey,
) -> Result<CreatedApiKey, ApiError> {
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let name = required_text(&mut v, "name", &input.name, 200);
    v.finish()?;
    let tenant_id = input
        .tenant_id
        .or_else(|| who.scope.tenant_id().map(|t| t.0.clone()));
    let (role, reseller_id, tenant_id) = match (
        tenant_id,
        input
            .reseller_id
            .or_else(|| who.scope.reseller_id().map(|r| r.0.clone())),
    ) {
        (Some(tenant_id), _) => {
            let tenant = tenants::get(&state.db, &who.scope, &TenantId(tenant_id)).await?;
            (Role::TenantAdmin, Some(tenant.reseller_id), Some(tenant.id))
        }
        (None, Some(reseller_id)) => {
            let reseller = resellers::get(&state.db, &who.scope, &ResellerId(reseller_id)).await?;
            who.require(Role::ResellerAdmin)?;
            (Role::ResellerAdmin, Some(reseller.id), None)
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "tenant_id",
                "give tenant_id or reseller_id for the key's scope",
            ));
        }
    };
    let (secret, prefix, secret_hash) = generate_api_key();
    let row = m::ApiKey {
        id: ApiKeyId::new(),
        name,
        prefix,
        secret_hash,
        role: role.as_str().to_owned(),
        reseller_id,
        tenant_id,
        created_at: cleanmail_schema::now(),
        last_used_at: None,
        revoked_at: None,
    };
    let api_key = store::create_api_key(&state.db, row).await?.into();
    Ok(CreatedApiKey { secret, api_key })
}

pub async fn revoke(state: &AppState, who: &Principal, id: &str) -> Result<ApiKey, ApiError> {
    who.require(Role::TenantAdmin)?;
    Ok(
        store::revoke_api_key(&state.db, &who.scope, &ApiKeyId(id.to_owned()))
            .await?
            .into(),
    )
}

/// Creates a platform admin operator and a platform API key for it (CLI bootstrap).
pub async fn bootstrap_platform_admin(
    db: &cleanmail_schema::Db,
    email: &str,
    password: Option<&str>,
) -> Result<String, ApiError> {
    let email = cleanmail_core::address::EmailAddress::parse(email)
        .map_err(|e| ApiError::invalid("email", e.to_string()))?
        .to_string();
    if let Some(password) = password {
        crate::auth::check_password_strength(password)
            .map_err(|e| ApiError::invalid("password", e))?;
    }
    let now = cleanmail_schema::now();
    store::create_operator(
        db,
        m::Operator {
            id: cleanmail_schema::OperatorId::new(),
            email: email.clone(),
            role: Role::PlatformAdmin.as_str().to_owned(),
            reseller_id: None,
            password_hash: password.map(crate::auth::hash_password).transpose()?,
            created_at: now,
        },
    )
    .await
    .map_err(|e| match e {
        cleanmail_schema::StoreError::Conflict(_) => {
            ApiError::Conflict(format!("an operator {email} already exists"))
        }
        other => other.into(),
    })?;
    let (secret, prefix, secret_hash) = generate_api_key();
    store::create_api_key(
        db,
        m::ApiKey {
            id: ApiKeyId::new(),
            name: format!("bootstrap key of {email}"),
            prefix,
            secret_hash,
            role: Role::PlatformAdmin.as_str().to_owned(),
            reseller_id: None,
            tenant_id: None,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        },
    )
    .await?;
    Ok(secret)
}
