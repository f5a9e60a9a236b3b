//! Aliases: extra addresses delivered to a user's mailbox.

use chrono::{DateTime, Utc};
use cleanmail_core::address::EmailAddress;
use cleanmail_schema::models as m;
use cleanmail_schema::store::{aliases as store, domains, users};
use cleanmail_schema::{AliasId, DomainId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::users::AddressStatus;
use super::{Page, PageParams, utc};
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState, Validator};

/// An alias address of a user.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct Alias {
    pub id: String,
    pub tenant_id: String,
    pub domain_id: String,
    /// The user whose mailbox receives this address.
    pub user_id: String,
    pub address: String,
    pub status: AddressStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<m::Alias> for Alias {
    fn from(a: m::Alias) -> Self {
        Self {
            id: a.id.0,
            tenant_id: a.tenant_id.0,
            domain_id: a.domain_id.0,
            user_id: a.user_id.0,
            address: a.address,
            status: AddressStatus::from_stored(&a.status),
            created_at: utc(a.created_at),
            updated_at: utc(a.updated_at),
        }
    }
}

/// Input to create an alias.
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct CreateAlias {
    pub user_id: String,
    /// The alias address; its domain must be one of the tenant's domains.
    pub address: String,
}

/// Changes to an alias; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct UpdateAlias {
    /// Point the alias at another user of the same tenant.
    pub user_id: Option<String>,
    pub status: Option<AddressStatus>,
}

/// Filters for listing aliases.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "AliasFilter")]
pub struct AliasFilter {
    pub tenant_id: Option<String>,
    pub domain_id: Option<String>,
    pub user_id: Option<String>,
    pub status: Option<AddressStatus>,
    pub q: Option<String>,
}

pub async fn list(
    state: &AppState,
    who: &Principal,
    filter: &AliasFilter,
    page: &PageParams,
) -> Result<Page<Alias>, ApiError> {
    let filter = store::AliasFilter {
        tenant_id: filter.tenant_id.clone().map(TenantId),
        domain_id: filter.domain_id.clone().map(DomainId),
        user_id: filter.user_id.clone().map(UserId),
        status: filter.status.map(|s| s.as_str().to_owned()),
        q: filter.q.clone(),
    };
    Ok(Page::from_store(
        store::list(&state.db, &who.scope, &filter, &page.request()).await?,
        Alias::from,
    ))
}

pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<Alias, ApiError> {
    Ok(store::get(&state.db, &who.scope, &AliasId(id.to_owned()))
        .await?
        .into())
}

pub async fn create(
    state: &AppState,
    who: &Principal,
    input: CreateAlias,
) -> Result<Alias, ApiError> {
    let user = users::get(&state.db, &who.scope, &UserId(input.user_id.clone())).await?;
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let address = v.check("address", EmailAddress::parse(&input.address));
    v.finish()?;
    let address = address.expect("validated");
    let domain = domains::by_names(&state.db, &who.scope, &[address.domain().to_owned()])
        .await?
        .into_iter()
        .find(|d| d.tenant_id == user.tenant_id)
        .ok_or_else(|| {
            ApiError::invalid("address", "its domain is not a domain of the user's tenant")
        })?;
    let now = cleanmail_schema::now();
    let row = m::Alias {
        id: AliasId::new(),
        tenant_id: user.tenant_id,
        domain_id: domain.id,
        user_id: user.id,
        address: address.to_string(),
        status: AddressStatus::Active.as_str().to_owned(),
        created_at: now,
        updated_at: now,
    };
    Ok(store::create(&state.db, row).await?.into())
}

pub async fn update(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: UpdateAlias,
) -> Result<Alias, ApiError> {
    let id = AliasId(id.to_owned());
    let alias = store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::TenantAdmin)?;
    let user_id = match input.user_id {
        Some(user_id) => {
            let user = users::get(&state.db, &who.scope, &UserId(user_id))
                .await
                .map_err(|e| match e {
                    cleanmail_schema::StoreError::NotFound => {
                        ApiError::invalid("user_id", "no such user")
                    }
                    other => other.into(),
                })?;
            if user.tenant_id != alias.tenant_id {
                return Err(ApiError::invalid(
                    "user_id",
                    "must be a user of the alias's tenant",
                ));
            }
            Some(user.id)
        }
        None => None,
    };
    let changes = m::AliasChanges {
        user_id,
        status: input.status.map(|s| s.as_str().to_owned()),
        updated_at: None,
    };
    Ok(store::update(&state.db, &who.scope, &id, changes)
        .await?
        .into())
}

pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let id = AliasId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::TenantAdmin)?;
    Ok(store::delete(&state.db, &who.scope, &id).await?)
}
