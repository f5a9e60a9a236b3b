//! Tenants (customers): visible to the platform, their reseller, and themselves.

use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};

use crate::db::with_conn;
use crate::models::{Tenant, TenantChanges, TenantPolicy};
use crate::tables::{tenant_policies, tenants};
use crate::{Db, Page, PageRequest, PolicyId, ResellerId, Scope, StoreError, TenantId};

/// Tenants visible in `scope` (the tenant table is its own tenancy column).
macro_rules! scoped_tenants {
    ($scope:expr) => {{
        let query = tenants::table.into_boxed();
        match $scope {
            Scope::Platform => query,
            Scope::Reseller { reseller_id } => {
                query.filter(tenants::reseller_id.eq(reseller_id.clone()))
            }
            Scope::Tenant { tenant_id, .. } | Scope::User { tenant_id, .. } => {
                query.filter(tenants::id.eq(tenant_id.clone()))
            }
        }
    }};
}

/// Filters for listing tenants.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    pub reseller_id: Option<ResellerId>,
    pub region: Option<String>,
}

/// Tenants visible in `scope`, oldest first.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &TenantFilter,
    page: &PageRequest,
) -> Result<Page<Tenant>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = scoped_tenants!(scope);
        if let Some(reseller_id) = &filter.reseller_id {
            query = query.filter(tenants::reseller_id.eq(reseller_id.clone()));
        }
        if let Some(region) = &filter.region {
            query = query.filter(tenants::region.eq(region.clone()));
        }
        if let Some(after) = &page.after {
            query = query.filter(tenants::id.gt(after.clone()));
        }
        query
            .order(tenants::id.asc())
            .limit(page.limit() + 1)
            .select(Tenant::as_select())
            .load(conn)
            .await?
    });
    Ok(page.finish(rows, |t| t.id.0.clone()))
}

/// One tenant, if visible in `scope`.
pub async fn get(db: &Db, scope: &Scope, id: &TenantId) -> Result<Tenant, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_tenants!(scope)
            .filter(tenants::id.eq(id.clone()))
            .select(Tenant::as_select())
            .first(conn)
            .await?)
    })
}

/// Inserts a tenant (the caller has checked the reseller is in scope), on the built-in
/// standard policy so that quarantine reports work with no setup. This is the one place
/// where tenants are created.
pub async fn create(db: &Db, row: Tenant) -> Result<Tenant, StoreError> {
    let assignment = TenantPolicy {
        tenant_id: row.id.clone(),
        policy_id: PolicyId(crate::store::policies::STANDARD_POLICY_ID.to_owned()),
        updated_at: row.created_at,
    };
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            diesel::insert_into(tenants::table).values(&row).execute(conn).await?;
            diesel::insert_into(tenant_policies::table).values(&assignment).execute(conn).await?;
            Ok::<_, StoreError>(())
        })
        .await?;
        Ok(row)
    })
}

/// Updates a tenant visible in `scope`.
pub async fn update(
    db: &Db,
    scope: &Scope,
    id: &TenantId,
    mut changes: TenantChanges,
) -> Result<Tenant, StoreError> {
    get(db, scope, id).await?;
    changes.updated_at = Some(crate::now());
    with_conn!(db, conn => {
        diesel::update(tenants::table.find(id.clone())).set(&changes).execute(conn).await?;
        Ok(tenants::table.find(id.clone()).select(Tenant::as_select()).first(conn).await?)
    })
}

/// Deletes a tenant visible in `scope`; refused while it still has domains.
pub async fn delete(db: &Db, scope: &Scope, id: &TenantId) -> Result<(), StoreError> {
    get(db, scope, id).await?;
    with_conn!(db, conn => {
        let domains: i64 = crate::tables::domains::table
            .filter(crate::tables::domains::tenant_id.eq(id.clone()))
            .count()
            .get_result(conn)
            .await?;
        if domains > 0 {
            return Err(StoreError::Constraint(format!(
                "the tenant still has {domains} domain(s); delete them first"
            )));
        }
        conn.transaction(async |conn| {
            diesel::delete(crate::tables::api_keys::table.filter(crate::tables::api_keys::tenant_id.eq(id.clone())))
                .execute(conn)
                .await?;
            diesel::delete(tenants::table.find(id.clone())).execute(conn).await?;
            Ok::<_, StoreError>(())
        })
        .await
    })
}
