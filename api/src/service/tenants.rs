//! Tenants (customers) of a reseller, each pinned to a data-residency region.

use chrono::{DateTime, Utc};
use cleanmail_schema::models as m;
use cleanmail_schema::store::{resellers, tenants as store};
use cleanmail_schema::{ResellerId, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageParams, required_text, utc};
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState, Validator};

/// The time zone of a tenant that sets none, unless the deployment configures another
/// (`default_timezone`).
pub const DEFAULT_TIMEZONE: &str = "Europe/Zurich";

/// A tenant: one customer of a reseller.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct Tenant {
    pub id: String,
    pub reseller_id: String,
    pub name: String,
    /// Data-residency region (e.g. `ch`): the tenant's data stays there.
    pub region: String,
    /// IANA time zone for schedules and reports.
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<m::Tenant> for Tenant {
    fn from(t: m::Tenant) -> Self {
        Self {
            id: t.id.0,
            reseller_id: t.reseller_id.0,
            name: t.name,
            region: t.region,
            timezone: t.timezone,
            created_at: utc(t.created_at),
            updated_at: utc(t.updated_at),
        }
    }
}

/// Input to create a tenant.
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct CreateTenant {
    pub reseller_id: String,
    pub name: String,
    /// One of the regions this deployment serves (e.g. `ch`).
    pub region: String,
    /// IANA time zone (default: the deployment's `default_timezone`, `Europe/Zurich` unless set).
    pub timezone: Option<String>,
}

/// Changes to a tenant; absent fields stay as they are. The region cannot change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub timezone: Option<String>,
}

/// Filters for listing tenants.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "TenantFilter")]
pub struct TenantFilter {
    pub reseller_id: Option<String>,
    pub region: Option<String>,
}

fn check_timezone(v: &mut Validator, tz: &str) -> String {
    let tz = tz.trim();
    if tz.parse::<chrono_tz::Tz>().is_err() {
        v.error(
            "timezone",
            format!("`{tz}` is not an IANA time zone such as Europe/Zurich"),
        );
    }
    tz.to_owned()
}

pub async fn list(
    state: &AppState,
    who: &Principal,
    filter: &TenantFilter,
    page: &PageParams,
) -> Result<Page<Tenant>, ApiError> {
    let filter = store::TenantFilter {
        reseller_id: filter.reseller_id.clone().map(ResellerId),
        region: filter.region.clone(),
    };
    Ok(Page::from_store(
        store::list(&state.db, &who.scope, &filter, &page.request()).await?,
        Tenant::from,
    ))
}

pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<Tenant, ApiError> {
    Ok(store::get(&state.db, &who.scope, &TenantId(id.to_owned()))
        .await?
        .into())
}

pub async fn create(
    state: &AppState,
    who: &Principal,
    input: CreateTenant,
) -> Result<Tenant, ApiError> {
    let reseller_id = ResellerId(input.reseller_id.clone());
    resellers::get(&state.db, &who.scope, &reseller_id).await?;
    who.require(Role::ResellerAdmin)?;
    let mut v = Validator::default();
    let name = required_text(&mut v, "name", &input.name, 200);
    let region = input.region.trim().to_ascii_lowercase();
    if !state.regions.contains(&region) {
        v.error(
            "region",
            format!(
                "region `{region}` is not served by this deployment (it serves: {}); the tenant's data must stay in its region",
                state.regions.join(", ")
            ),
        );
    }
    let timezone = check_timezone(
        &mut v,
        input.timezone.as_deref().unwrap_or(&state.default_timezone),
    );
    v.finish()?;
    let now = cleanmail_schema::now();
    let row = m::Tenant {
        id: TenantId::new(),
        reseller_id,
        name,
        region,
        timezone,
        created_at: now,
        updated_at: now,
    };
    Ok(store::create(&state.db, row).await?.into())
}

pub async fn update(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: UpdateTenant,
) -> Result<Tenant, ApiError> {
    let id = TenantId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let changes = m::TenantChanges {
        name: input
            .name
            .as_deref()
            .map(|n| required_text(&mut v, "name", n, 200)),
        timezone: input
            .timezone
            .as_deref()
            .map(|tz| check_timezone(&mut v, tz)),
        updated_at: None,
    };
    v.finish()?;
    Ok(store::update(&state.db, &who.scope, &id, changes)
        .await?
        .into())
}

pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let id = TenantId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::ResellerAdmin)?;
    Ok(store::delete(&state.db, &who.scope, &id).await?)
}
