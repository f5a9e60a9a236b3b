//! Domains of a tenant, with their state and downstream mail server.

use chrono::{DateTime, Utc};
use cleanmail_core::address::DomainName;
use cleanmail_schema::models as m;
use cleanmail_schema::store::{domains as store, tenants};
use cleanmail_schema::{DomainId, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageParams, utc};
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState, Validator};

/// Where a domain is in its life cycle.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum DomainState {
    /// Set up, not yet receiving production mail.
    Onboarding,
    /// Receiving and filtering mail.
    Live,
    /// Mail is refused.
    Suspended,
}

impl DomainState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onboarding => "onboarding",
            Self::Live => "live",
            Self::Suspended => "suspended",
        }
    }

    fn from_stored(s: &str) -> Self {
        match s {
            "live" => Self::Live,
            "suspended" => Self::Suspended,
            _ => Self::Onboarding,
        }
    }
}

/// A mail domain served by the platform.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct Domain {
    pub id: String,
    pub tenant_id: String,
    /// The name in ASCII normal form (IDN labels as `xn--`).
    pub name: String,
    /// The name for display (Unicode).
    pub display_name: String,
    pub state: DomainState,
    /// Downstream mail server, `host:port`.
    pub destination: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<m::Domain> for Domain {
    fn from(d: m::Domain) -> Self {
        let display_name = DomainName::parse(&d.name)
            .map(|n| n.to_unicode())
            .unwrap_or_else(|_| d.name.clone());
        Self {
            id: d.id.0,
            tenant_id: d.tenant_id.0,
            name: d.name,
            display_name,
            state: DomainState::from_stored(&d.state),
            destination: d.destination,
            created_at: utc(d.created_at),
            updated_at: utc(d.updated_at),
        }
    }
}

/// Input to create a domain.
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct CreateDomain {
    pub tenant_id: String,
    /// Domain name (Unicode or ASCII).
    pub name: String,
    /// Downstream mail server, `host:port`.
    pub destination: String,
    /// Default `onboarding`.
    pub state: Option<DomainState>,
}

/// Changes to a domain; absent fields stay as they are. The name cannot change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct UpdateDomain {
    pub state: Option<DomainState>,
    pub destination: Option<String>,
}

/// Filters for listing domains.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "DomainFilter")]
pub struct DomainFilter {
    pub tenant_id: Option<String>,
    pub state: Option<DomainState>,
    /// Exact domain name (Unicode or ASCII).
    pub name: Option<String>,
}

/// Validates a downstream `host:port`.
pub(crate) fn check_destination(v: &mut Validator, destination: &str) -> String {
    let destination = destination.trim();
    let valid = destination.rsplit_once(':').is_some_and(|(host, port)| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        !host.is_empty()
            && (host.parse::<std::net::IpAddr>().is_ok()
                || DomainName::parse(host).is_ok()
                || host == "localhost")
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if !valid {
        v.error(
            "destination",
            "must be `host:port` of the downstream mail server, e.g. mx.example.ch:25",
        );
    }
    destination.to_owned()
}

pub async fn list(
    state: &AppState,
    who: &Principal,
    filter: &DomainFilter,
    page: &PageParams,
) -> Result<Page<Domain>, ApiError> {
    let filter = store::DomainFilter {
        tenant_id: filter.tenant_id.clone().map(TenantId),
        state: filter.state.map(|s| s.as_str().to_owned()),
        name: filter.name.as_deref().map(|n| {
            DomainName::parse(n)
                .map(|d| d.to_string())
                .unwrap_or_else(|_| n.to_owned())
        }),
    };
    Ok(Page::from_store(
        store::list(&state.db, &who.scope, &filter, &page.request()).await?,
        Domain::from,
    ))
}

pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<Domain, ApiError> {
    Ok(store::get(&state.db, &who.scope, &DomainId(id.to_owned()))
        .await?
        .into())
}

pub async fn create(
    state: &AppState,
    who: &Principal,
    input: CreateDomain,
) -> Result<Domain, ApiError> {
    let tenant_id = TenantId(input.tenant_id.clone());
    tenants::get(&state.db, &who.scope, &tenant_id).await?;
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let name = v.check("name", DomainName::parse(&input.name));
    let destination = check_destination(&mut v, &input.destination);
    v.finish()?;
    let now = cleanmail_schema::now();
    let row = m::Domain {
        id: DomainId::new(),
        tenant_id,
        name: name.expect("validated").to_string(),
        state: input
            .state
            .unwrap_or(DomainState::Onboarding)
            .as_str()
            .to_owned(),
        destination,
        created_at: now,
        updated_at: now,
    };
    store::create(&state.db, row)
        .await
        .map(Domain::from)
        .map_err(|e| match e {
            cleanmail_schema::StoreError::Conflict(_) => {
                ApiError::Conflict("this domain already exists on the platform".into())
            }
            other => other.into(),
        })
}

pub async fn update(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: UpdateDomain,
) -> Result<Domain, ApiError> {
    let id = DomainId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let changes = m::DomainChanges {
        state: input.state.map(|s| s.as_str().to_owned()),
        destination: input
            .destination
            .as_deref()
            .map(|d| check_destination(&mut v, d)),
        updated_at: None,
    };
    v.finish()?;
    Ok(store::update(&state.db, &who.scope, &id, changes)
        .await?
        .into())
}

pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let id = DomainId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::TenantAdmin)?;
    Ok(store::delete(&state.db, &who.scope, &id).await?)
}
