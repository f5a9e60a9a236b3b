//! Rows as read (`Reseller`), inserted (`NewReseller`) and updated (`ResellerChanges`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::tables::*;
use crate::{AliasId, ApiKeyId, DomainId, OperatorId, PolicyId, ResellerId, TenantId, UserId};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = resellers)]
pub struct Reseller {
    pub id: ResellerId,
    pub name: String,
    pub portal_url: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = resellers)]
pub struct ResellerChanges {
    pub name: Option<String>,
    pub portal_url: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: TenantId,
    pub reseller_id: ResellerId,
    pub name: String,
    pub region: String,
    pub timezone: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = tenants)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = domains)]
pub struct Domain {
    pub id: DomainId,
    pub tenant_id: TenantId,
    pub name: String,
    pub state: String,
    pub destination: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = domains)]
pub struct DomainChanges {
    pub state: Option<String>,
    pub destination: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub domain_id: DomainId,
    pub address: String,
    pub display_name: String,
    pub role: String,
    pub language: String,
    pub status: String,
    pub password_hash: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub role: Option<String>,
    pub language: Option<String>,
    pub status: Option<String>,
    pub password_hash: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = aliases)]
pub struct Alias {
    pub id: AliasId,
    pub tenant_id: TenantId,
    pub domain_id: DomainId,
    pub user_id: UserId,
    pub address: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = aliases)]
pub struct AliasChanges {
    pub user_id: Option<UserId>,
    pub status: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = operators)]
pub struct Operator {
    pub id: OperatorId,
    pub email: String,
    pub role: String,
    pub reseller_id: Option<ResellerId>,
    pub password_hash: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub role: String,
    pub reseller_id: Option<ResellerId>,
    pub tenant_id: Option<TenantId>,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// A stored filtering policy; `settings` is the JSON of [`cleanmail_core::policy::Policy`].
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = policies)]
pub struct Policy {
    pub id: PolicyId,
    /// `platform`, `reseller` or `tenant`.
    pub owner_kind: String,
    pub reseller_id: Option<ResellerId>,
    pub tenant_id: Option<TenantId>,
    /// The preset key of a built-in (read-only) policy.
    pub builtin: Option<String>,
    pub name: String,
    pub description: String,
    pub settings: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A policy to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = policies)]
pub struct NewPolicy<'a> {
    pub id: &'a PolicyId,
    pub owner_kind: &'a str,
    pub reseller_id: Option<&'a ResellerId>,
    pub tenant_id: Option<&'a TenantId>,
    pub builtin: Option<&'a str>,
    pub name: &'a str,
    pub description: &'a str,
    pub settings: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes to a policy; `None` keeps the value.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = policies)]
pub struct PolicyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub settings: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Which policy a tenant uses.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenant_policies)]
pub struct TenantPolicy {
    pub tenant_id: TenantId,
    pub policy_id: PolicyId,
    pub updated_at: NaiveDateTime,
}

/// Overrides of one domain; `overrides` is the JSON of
/// [`cleanmail_core::policy::PolicyOverrides`].
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = domain_policy_overrides)]
pub struct DomainPolicyOverrides {
    pub domain_id: DomainId,
    pub tenant_id: TenantId,
    pub overrides: String,
    pub updated_at: NaiveDateTime,
}

/// Overrides of one user; `overrides` is the JSON of
/// [`cleanmail_core::policy::PolicyOverrides`].
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_policy_overrides)]
pub struct UserPolicyOverrides {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub overrides: String,
    pub updated_at: NaiveDateTime,
}
