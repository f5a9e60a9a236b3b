//! Users: the mailboxes of a domain. End users see and edit only themselves.

use chrono::{DateTime, Utc};
use cleanmail_core::LANGUAGES;
use cleanmail_core::address::EmailAddress;
use cleanmail_schema::models as m;
use cleanmail_schema::store::{domains, users as store};
use cleanmail_schema::{DomainId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageParams, required_text, utc};
use crate::auth::{Principal, Role, check_password_strength, hash_password};
use crate::{ApiError, AppState, Validator};

/// Whether an address has been confirmed by an admin (imported ones start `unverified`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum AddressStatus {
    Active,
    Unverified,
}

impl AddressStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Unverified => "unverified",
        }
    }

    pub(crate) fn from_stored(s: &str) -> Self {
        if s == "unverified" {
            Self::Unverified
        } else {
            Self::Active
        }
    }
}

/// What a mailbox user may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Sees only their own mailbox data.
    User,
    /// Administers the whole tenant.
    TenantAdmin,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::TenantAdmin => "tenant_admin",
        }
    }
}

/// A mailbox user.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub domain_id: String,
    /// Normal form: lowercase, IDN domain as `xn--`.
    pub address: String,
    pub display_name: String,
    pub role: UserRole,
    /// `en`, `fr`, `de` or `it`.
    pub language: String,
    pub status: AddressStatus,
    /// Whether the user can log in with a password.
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<m::User> for User {
    fn from(u: m::User) -> Self {
        Self {
            id: u.id.0,
            tenant_id: u.tenant_id.0,
            domain_id: u.domain_id.0,
            address: u.address,
            display_name: u.display_name,
            role: if u.role == "tenant_admin" {
                UserRole::TenantAdmin
            } else {
                UserRole::User
            },
            language: u.language,
            status: AddressStatus::from_stored(&u.status),
            has_password: u.password_hash.is_some(),
            created_at: utc(u.created_at),
            updated_at: utc(u.updated_at),
        }
    }
}

/// Input to create a user.
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct CreateUser {
    pub domain_id: String,
    /// The mailbox address; its domain must be the domain's name.
    pub address: String,
    pub display_name: String,
    /// Default `user`.
    pub role: Option<UserRole>,
    /// Default `en`.
    pub language: Option<String>,
    /// Optional password (at least 10 characters) for logging in.
    pub password: Option<String>,
}

/// Changes to a user; absent fields stay as they are. End users may change only their
/// own display name, language and password.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct UpdateUser {
    pub display_name: Option<String>,
    pub role: Option<UserRole>,
    pub language: Option<String>,
    pub status: Option<AddressStatus>,
    pub password: Option<String>,
}

/// Filters for listing users.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "UserFilter")]
pub struct UserFilter {
    pub tenant_id: Option<String>,
    pub domain_id: Option<String>,
    pub status: Option<AddressStatus>,
    /// Part of the address.
    pub q: Option<String>,
}

pub(crate) fn check_language(v: &mut Validator, language: &str) -> String {
    let language = language.trim().to_ascii_lowercase();
    if !LANGUAGES.contains(&language.as_str()) {
        v.error(
            "language",
            format!("must be one of {}", LANGUAGES.join(", ")),
        );
    }
    language
}

fn check_password(v: &mut Validator, password: &str) -> Option<String> {
    match check_password_strength(password) {
        Ok(()) => Some(password.to_owned()),
        Err(reason) => {
            v.error("password", reason);
            None
        }
    }
}

pub async fn list(
    state: &AppState,
    who: &Principal,
    filter: &UserFilter,
    page: &PageParams,
) -> Result<Page<User>, ApiError> {
    let filter = store::UserFilter {
        tenant_id: filter.tenant_id.clone().map(TenantId),
        domain_id: filter.domain_id.clone().map(DomainId),
        status: filter.status.map(|s| s.as_str().to_owned()),
        q: filter.q.clone(),
    };
    Ok(Page::from_store(
        store::list(&state.db, &who.scope, &filter, &page.request()).await?,
        User::from,
    ))
}

pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<User, ApiError> {
    Ok(store::get(&state.db, &who.scope, &UserId(id.to_owned()))
        .await?
        .into())
}

pub async fn create(
    state: &AppState,
    who: &Principal,
    input: CreateUser,
) -> Result<User, ApiError> {
    let domain = domains::get(&state.db, &who.scope, &DomainId(input.domain_id.clone())).await?;
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let address = v.check("address", EmailAddress::parse(&input.address));
    if let Some(address) = &address
        && address.domain() != domain.name
    {
        v.error(
            "address",
            format!("must be an address of the domain {}", domain.name),
        );
    }
    let display_name = required_text(&mut v, "display_name", &input.display_name, 200);
    let language = check_language(&mut v, input.language.as_deref().unwrap_or("en"));
    let password = input
        .password
        .as_deref()
        .and_then(|p| check_password(&mut v, p));
    v.finish()?;
    let now = cleanmail_schema::now();
    let row = m::User {
        id: UserId::new(),
        tenant_id: domain.tenant_id,
        domain_id: domain.id,
        address: address.expect("validated").to_string(),
        display_name,
        role: input.role.unwrap_or(UserRole::User).as_str().to_owned(),
        language,
        status: AddressStatus::Active.as_str().to_owned(),
        password_hash: password.as_deref().map(hash_password).transpose()?,
        created_at: now,
        updated_at: now,
    };
    Ok(store::create(&state.db, row).await?.into())
}

pub async fn update(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: UpdateUser,
) -> Result<User, ApiError> {
    let id = UserId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    if input.role.is_some() || input.status.is_some() {
        who.require(Role::TenantAdmin)?;
    }
    let mut v = Validator::default();
    let display_name = input
        .display_name
        .as_deref()
        .map(|n| required_text(&mut v, "display_name", n, 200));
    let language = input.language.as_deref().map(|l| check_language(&mut v, l));
    let password = input
        .password
        .as_deref()
        .and_then(|p| check_password(&mut v, p));
    v.finish()?;
    let changes = m::UserChanges {
        display_name,
        role: input.role.map(|r| r.as_str().to_owned()),
        language,
        status: input.status.map(|s| s.as_str().to_owned()),
        password_hash: password
            .as_deref()
            .map(hash_password)
            .transpose()?
            .map(Some),
        updated_at: None,
    };
    Ok(store::update(&state.db, &who.scope, &id, changes)
        .await?
        .into())
}

/// Input to turn a user into an alias of another user.
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
pub struct ConvertToAlias {
    /// The user whose mailbox will receive the address from now on.
    pub target_user_id: String,
}

/// Turns a user (typically an imported, unverified one) into an alias of another user.
pub async fn convert_to_alias(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: ConvertToAlias,
) -> Result<super::aliases::Alias, ApiError> {
    let id = UserId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::TenantAdmin)?;
    let target = UserId(input.target_user_id);
    if target == id {
        return Err(ApiError::invalid("target_user_id", "must be another user"));
    }
    match store::convert_to_alias(&state.db, &who.scope, &id, &target).await {
        Ok(alias) => Ok(alias.into()),
        Err(cleanmail_schema::StoreError::NotFound) => {
            Err(ApiError::invalid("target_user_id", "no such user"))
        }
        Err(cleanmail_schema::StoreError::Constraint(message)) => {
            Err(ApiError::invalid("target_user_id", message))
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let id = UserId(id.to_owned());
    store::get(&state.db, &who.scope, &id).await?;
    who.require(Role::TenantAdmin)?;
    Ok(store::delete(&state.db, &who.scope, &id).await?)
}
