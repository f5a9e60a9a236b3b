//! `Scope`: what part of the hierarchy a caller may see. Store functions take one and add
//! the filter themselves, so tenancy is decided here and nowhere else.

use crate::{ResellerId, TenantId, UserId};

/// The visible part of the platform → reseller → tenant → user hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (platform admins).
    Platform,
    /// One reseller and all its tenants.
    Reseller { reseller_id: ResellerId },
    /// One tenant (customer) and its domains, users and aliases.
    Tenant {
        reseller_id: ResellerId,
        tenant_id: TenantId,
    },
    /// One end user: their own mailbox and aliases.
    User {
        reseller_id: ResellerId,
        tenant_id: TenantId,
        user_id: UserId,
    },
}

impl Scope {
    /// The reseller this scope is confined to, if any.
    pub fn reseller_id(&self) -> Option<&ResellerId> {
        match self {
            Scope::Platform => None,
            Scope::Reseller { reseller_id }
            | Scope::Tenant { reseller_id, .. }
            | Scope::User { reseller_id, .. } => Some(reseller_id),
        }
    }

    /// The tenant this scope is confined to, if any.
    pub fn tenant_id(&self) -> Option<&TenantId> {
        match self {
            Scope::Platform | Scope::Reseller { .. } => None,
            Scope::Tenant { tenant_id, .. } | Scope::User { tenant_id, .. } => Some(tenant_id),
        }
    }

    /// The user this scope is confined to, if any.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Scope::User { user_id, .. } => Some(user_id),
            _ => None,
        }
    }
}

/// Adds the scope's filter to a boxed query over a table with a `tenant_id` column.
///
/// `Platform` sees all rows, `Reseller` the rows of its tenants, `Tenant` and `User` the rows
/// of their tenant (store functions narrow `User` further to the user's own rows).
#[macro_export]
#[doc(hidden)]
macro_rules! filter_tenant_scope {
    ($query:expr, $scope:expr, $tenant_column:expr) => {{
        use diesel::{ExpressionMethods as _, QueryDsl as _};
        match $scope {
            $crate::Scope::Platform => $query,
            $crate::Scope::Reseller { reseller_id } => $query.filter(
                $tenant_column.eq_any(
                    $crate::tables::tenants::table
                        .filter($crate::tables::tenants::reseller_id.eq(reseller_id.clone()))
                        .select($crate::tables::tenants::id),
                ),
            ),
            $crate::Scope::Tenant { tenant_id, .. } | $crate::Scope::User { tenant_id, .. } => {
                $query.filter($tenant_column.eq(tenant_id.clone()))
            }
        }
    }};
}
