//! Aliases: an address delivered to a user's mailbox.

use diesel::{
    EscapeExpressionMethods as _, ExpressionMethods as _, QueryDsl as _, SelectableHelper as _,
    TextExpressionMethods as _,
};

use crate::db::with_conn;
use crate::models::{Alias, AliasChanges};
use crate::store::users::{Changeset, apply, escape_like};
use crate::tables::{address_claims, aliases};
use crate::{AliasId, Db, DomainId, Page, PageRequest, Scope, StoreError, TenantId, UserId};

/// Filters for listing aliases.
#[derive(Debug, Clone, Default)]
pub struct AliasFilter {
    pub tenant_id: Option<TenantId>,
    pub domain_id: Option<DomainId>,
    pub user_id: Option<UserId>,
    pub status: Option<String>,
    pub q: Option<String>,
}

macro_rules! scoped_aliases {
    ($scope:expr) => {{
        let query =
            crate::filter_tenant_scope!(aliases::table.into_boxed(), $scope, aliases::tenant_id);
        match $scope.user_id() {
            Some(user_id) => query.filter(aliases::user_id.eq(user_id.clone())),
            None => query,
        }
    }};
}

/// Aliases visible in `scope`, oldest first.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &AliasFilter,
    page: &PageRequest,
) -> Result<Page<Alias>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = scoped_aliases!(scope);
        if let Some(tenant_id) = &filter.tenant_id {
            query = query.filter(aliases::tenant_id.eq(tenant_id.clone()));
        }
        if let Some(domain_id) = &filter.domain_id {
            query = query.filter(aliases::domain_id.eq(domain_id.clone()));
        }
        if let Some(user_id) = &filter.user_id {
            query = query.filter(aliases::user_id.eq(user_id.clone()));
        }
        if let Some(status) = &filter.status {
            query = query.filter(aliases::status.eq(status.clone()));
        }
        if let Some(q) = &filter.q {
            query = query.filter(aliases::address.like(format!("%{}%", escape_like(&q.to_lowercase()))).escape('\\'));
        }
        if let Some(after) = &page.after {
            query = query.filter(aliases::id.gt(after.clone()));
        }
        query
            .order(aliases::id.asc())
            .limit(page.limit() + 1)
            .select(Alias::as_select())
            .load(conn)
            .await?
    });
    Ok(page.finish(rows, |a| a.id.0.clone()))
}

/// One alias, if visible in `scope`.
pub async fn get(db: &Db, scope: &Scope, id: &AliasId) -> Result<Alias, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_aliases!(scope)
            .filter(aliases::id.eq(id.clone()))
            .select(Alias::as_select())
            .first(conn)
            .await?)
    })
}

/// Aliases of the given addresses visible in `scope`.
pub async fn by_addresses(
    db: &Db,
    scope: &Scope,
    addresses: &[String],
) -> Result<Vec<Alias>, StoreError> {
    let mut found = Vec::new();
    for chunk in addresses.chunks(500) {
        let rows: Vec<Alias> = with_conn!(db, conn => {
            scoped_aliases!(scope)
                .filter(aliases::address.eq_any(chunk.to_vec()))
                .select(Alias::as_select())
                .load(conn)
                .await?
        });
        found.extend(rows);
    }
    Ok(found)
}

/// Inserts an alias and claims its address (the caller has checked user and domain).
pub async fn create(db: &Db, row: Alias) -> Result<Alias, StoreError> {
    apply(
        db,
        Changeset {
            new_aliases: vec![row.clone()],
            ..Changeset::default()
        },
    )
    .await?;
    Ok(row)
}

/// Updates an alias visible in `scope`.
pub async fn update(
    db: &Db,
    scope: &Scope,
    id: &AliasId,
    mut changes: AliasChanges,
) -> Result<Alias, StoreError> {
    get(db, scope, id).await?;
    changes.updated_at = Some(crate::now());
    with_conn!(db, conn => {
        diesel::update(aliases::table.find(id.clone())).set(&changes).execute(conn).await?;
        Ok(aliases::table.find(id.clone()).select(Alias::as_select()).first(conn).await?)
    })
}

/// Deletes an alias visible in `scope` and frees its address.
pub async fn delete(db: &Db, scope: &Scope, id: &AliasId) -> Result<(), StoreError> {
    let alias = get(db, scope, id).await?;
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            diesel::delete(aliases::table.find(id.clone())).execute(conn).await?;
            diesel::delete(address_claims::table.find(alias.address.clone())).execute(conn).await?;
            Ok::<_, StoreError>(())
        })
        .await
    })
}
