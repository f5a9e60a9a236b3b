//! Mail routing lookups for the SMTP listener and the delivery job.
//!
//! These run before any tenant is known (an SMTP client names an address, not a tenant),
//! so they are unscoped by necessity; their names say so. They return ids only, from which
//! the caller carries the tenant forward.

use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};

use crate::db::with_conn;
use crate::tables::{aliases, domains, users};
use crate::{AliasId, Db, DomainId, StoreError, TenantId, UserId};

/// Where mail for one address goes, as far as the platform knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientRoute {
    /// A user's mailbox, addressed directly or through one of its aliases.
    Mailbox {
        tenant_id: TenantId,
        domain_id: DomainId,
        user_id: UserId,
        /// The alias the address belongs to, if it is not the user's own address.
        alias_id: Option<AliasId>,
    },
    /// The domain is served here, but no user or alias has this address.
    UnknownUser,
    /// The domain is served here but suspended: mail is refused.
    DomainSuspended,
    /// The domain is not served here (accepting would make an open relay).
    NotServed,
}

/// Resolves an envelope recipient (already normalised: lowercase, IDNA ASCII domain) to a
/// mailbox, for the SMTP `RCPT` check. Unscoped: the address is all the caller has.
pub async fn unscoped_resolve_recipient_for_smtp(
    db: &Db,
    address: &str,
) -> Result<RecipientRoute, StoreError> {
    let Some((_, domain_name)) = address.rsplit_once('@') else {
        return Ok(RecipientRoute::NotServed);
    };
    with_conn!(db, conn => {
        let domain: Option<(DomainId, String)> = domains::table
            .filter(domains::name.eq(domain_name))
            .select((domains::id, domains::state))
            .first(conn)
            .await
            .optional()?;
        let Some((_, state)) = domain else {
            return Ok(RecipientRoute::NotServed);
        };
        if state == "suspended" {
            return Ok(RecipientRoute::DomainSuspended);
        }
        let user: Option<(TenantId, DomainId, UserId)> = users::table
            .filter(users::address.eq(address))
            .select((users::tenant_id, users::domain_id, users::id))
            .first(conn)
            .await
            .optional()?;
        if let Some((tenant_id, domain_id, user_id)) = user {
            return Ok(RecipientRoute::Mailbox { tenant_id, domain_id, user_id, alias_id: None });
        }
        let alias: Option<(AliasId, TenantId, DomainId, UserId)> = aliases::table
            .filter(aliases::address.eq(address))
            .select((aliases::id, aliases::tenant_id, aliases::domain_id, aliases::user_id))
            .first(conn)
            .await
            .optional()?;
        Ok(match alias {
            Some((alias_id, tenant_id, domain_id, user_id)) => RecipientRoute::Mailbox {
                tenant_id,
                domain_id,
                user_id,
                alias_id: Some(alias_id),
            },
            None => RecipientRoute::UnknownUser,
        })
    })
}

/// The downstream `host:port` of a domain of `tenant_id`, read at each delivery attempt so a
/// changed destination applies to queued mail. `None` when the domain is gone.
pub async fn unscoped_domain_destination_for_delivery(
    db: &Db,
    tenant_id: &TenantId,
    domain_id: &DomainId,
) -> Result<Option<String>, StoreError> {
    with_conn!(db, conn => {
        Ok(domains::table
            .filter(domains::id.eq(domain_id.clone()))
            .filter(domains::tenant_id.eq(tenant_id.clone()))
            .select(domains::destination)
            .first(conn)
            .await
            .optional()?)
    })
}
