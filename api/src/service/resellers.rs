//! Resellers: created by the platform, each managing its own tenants.

use chrono::{DateTime, Utc};
use cleanmail_schema::models as m;
use cleanmail_schema::store::resellers as store;
use cleanmail_schema::{ResellerId, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Page, PageParams, required_text, utc};
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState, Validator};

/// A reseller: sells the platform to its tenants.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct Reseller {
    pub id: String,
    pub name: String,
    /// Where report links point when set (the reseller's own portal).
    pub portal_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<m::Reseller> for Reseller {
    fn from(r: m::Reseller) -> Self {
        Self {
            id: r.id.0,
            name: r.name,
            portal_url: r.portal_url,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        }
    }
}

/// Input to create a reseller.
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct CreateReseller {
    pub name: String,
    pub portal_url: Option<String>,
}

/// Changes to a reseller; absent fields stay as they are (`portal_url: ""` clears it).
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct UpdateReseller {
    pub name: Option<String>,
    pub portal_url: Option<String>,
}

fn check_portal_url(v: &mut Validator, url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
        v.error(
            "portal_url",
            "must be an http(s) URL of at most 2000 characters",
        );
    }
    Some(url.to_owned())
}

/// Filters for listing resellers.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "ResellerFilter")]
pub struct ResellerFilter {
    /// Part of the name.
    pub q: Option<String>,
}

pub async fn list(
    state: &AppState,
    who: &Principal,
    filter: &ResellerFilter,
    page: &PageParams,
) -> Result<Page<Reseller>, ApiError> {
    let filter = store::ResellerFilter {
        q: filter.q.clone(),
    };
    Ok(Page::from_store(
        store::list(&state.db, &who.scope, &filter, &page.request()).await?,
        Reseller::from,
    ))
}

pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<Reseller, ApiError> {
    Ok(
        store::get(&state.db, &who.scope, &ResellerId(id.to_owned()))
            .await?
            .into(),
    )
}

pub async fn create(
    state: &AppState,
    who: &Principal,
    input: CreateReseller,
) -> Result<Reseller, ApiError> {
    who.require(Role::PlatformAdmin)?;
    let mut v = Validator::default();
    let name = required_text(&mut v, "name", &input.name, 200);
    let portal_url = input
        .portal_url
        .as_deref()
        .and_then(|u| check_portal_url(&mut v, u));
    v.finish()?;
    let now = cleanmail_schema::now();
    let row = m::Reseller {
        id: ResellerId::new(),
        name,
        portal_url,
        created_at: now,
        updated_at: now,
    };
    Ok(store::create(&state.db, row).await?.into())
}

pub async fn update(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: UpdateReseller,
) -> Result<Reseller, ApiError> {
    let id = ResellerId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::ResellerAdmin)?;
    let mut v = Validator::default();
    let changes = m::ResellerChanges {
        name: input
            .name
            .as_deref()
            .map(|n| required_text(&mut v, "name", n, 200)),
        portal_url: input
            .portal_url
            .as_deref()
            .map(|u| check_portal_url(&mut v, u)),
        updated_at: None,
    };
    v.finish()?;
    Ok(store::update(&state.db, &who.scope, &id, changes)
        .await?
        .into())
}

pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let id = ResellerId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::PlatformAdmin)?;
    Ok(store::delete(&state.db, &Scope::Platform, &id).await?)
}
