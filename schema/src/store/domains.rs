//! Domains: each belongs to one tenant; names are unique platform-wide.

use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};

use crate::db::with_conn;
use crate::models::{Domain, DomainChanges};
use crate::tables::{address_claims, aliases, domains, users};
use crate::{Db, DomainId, Page, PageRequest, Scope, StoreError, TenantId};

/// Filters for listing domains.
#[derive(Debug, Clone, Default)]
pub struct DomainFilter {
    pub tenant_id: Option<TenantId>,
    pub state: Option<String>,
    /// Exact (normalised) domain name.
    pub name: Option<String>,
}

macro_rules! scoped_domains {
    ($scope:expr) => {{
        let query =
            crate::filter_tenant_scope!(domains::table.into_boxed(), $scope, domains::tenant_id);
        match $scope.user_id() {
            // An end user sees the domain of their own mailbox.
            Some(user_id) => query.filter(
                domains::id.eq_any(
                    users::table
                        .filter(users::id.eq(user_id.clone()))
                        .select(users::domain_id),
                ),
            ),
            None => query,
        }
    }};
}

/// Domains visible in `scope`, oldest first.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &DomainFilter,
    page: &PageRequest,
) -> Result<Page<Domain>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = scoped_domains!(scope);
        if let Some(tenant_id) = &filter.tenant_id {
            query = query.filter(domains::tenant_id.eq(tenant_id.clone()));
        }
        if let Some(state) = &filter.state {
            query = query.filter(domains::state.eq(state.clone()));
        }
        if let Some(name) = &filter.name {
            query = query.filter(domains::name.eq(name.clone()));
        }
        if let Some(after) = &page.after {
            query = query.filter(domains::id.gt(after.clone()));
        }
        query
            .order(domains::id.asc())
            .limit(page.limit() + 1)
            .select(Domain::as_select())
            .load(conn)
            .await?
    });
    Ok(page.finish(rows, |d| d.id.0.clone()))
}

/// One domain, if visible in `scope`.
pub async fn get(db: &Db, scope: &Scope, id: &DomainId) -> Result<Domain, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_domains!(scope)
            .filter(domains::id.eq(id.clone()))
            .select(Domain::as_select())
            .first(conn)
            .await?)
    })
}

/// Domains of the given names that are visible in `scope`.
pub async fn by_names(db: &Db, scope: &Scope, names: &[String]) -> Result<Vec<Domain>, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_domains!(scope)
            .filter(domains::name.eq_any(names.to_vec()))
            .select(Domain::as_select())
            .load(conn)
            .await?)
    })
}

/// Inserts a domain (the caller has checked the tenant is in scope).
pub async fn create(db: &Db, row: Domain) -> Result<Domain, StoreError> {
    with_conn!(db, conn => {
        diesel::insert_into(domains::table).values(&row).execute(conn).await?;
        Ok(row)
    })
}

/// Updates a domain visible in `scope`.
pub async fn update(
    db: &Db,
    scope: &Scope,
    id: &DomainId,
    mut changes: DomainChanges,
) -> Result<Domain, StoreError> {
    get(db, scope, id).await?;
    changes.updated_at = Some(crate::now());
    with_conn!(db, conn => {
        diesel::update(domains::table.find(id.clone())).set(&changes).execute(conn).await?;
        Ok(domains::table.find(id.clone()).select(Domain::as_select()).first(conn).await?)
    })
}

/// Deletes a domain visible in `scope` with all its users and aliases.
pub async fn delete(db: &Db, scope: &Scope, id: &DomainId) -> Result<(), StoreError> {
    get(db, scope, id).await?;
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let alias_addresses: Vec<String> = aliases::table
                .filter(aliases::domain_id.eq(id.clone()))
                .select(aliases::address)
                .load(conn)
                .await?;
            let user_addresses: Vec<String> = users::table
                .filter(users::domain_id.eq(id.clone()))
                .select(users::address)
                .load(conn)
                .await?;
            diesel::delete(aliases::table.filter(aliases::domain_id.eq(id.clone()))).execute(conn).await?;
            // Aliases of other domains that point at this domain's users go with them.
            let user_ids = users::table.filter(users::domain_id.eq(id.clone())).select(users::id);
            let foreign_alias_addresses: Vec<String> = aliases::table
                .filter(aliases::user_id.eq_any(user_ids))
                .select(aliases::address)
                .load(conn)
                .await?;
            diesel::delete(aliases::table.filter(aliases::user_id.eq_any(
                users::table.filter(users::domain_id.eq(id.clone())).select(users::id),
            )))
            .execute(conn)
            .await?;
            diesel::delete(users::table.filter(users::domain_id.eq(id.clone()))).execute(conn).await?;
            for chunk in alias_addresses
                .iter()
                .chain(&user_addresses)
                .chain(&foreign_alias_addresses)
                .cloned()
                .collect::<Vec<_>>()
                .chunks(500)
            {
                diesel::delete(address_claims::table.filter(address_claims::address.eq_any(chunk.to_vec())))
                    .execute(conn)
                    .await?;
            }
            diesel::delete(domains::table.find(id.clone())).execute(conn).await?;
            Ok::<_, StoreError>(())
        })
        .await
    })
}
