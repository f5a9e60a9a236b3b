//! Resellers: visible to the platform, and each to itself.

use diesel::{
    EscapeExpressionMethods as _, ExpressionMethods as _, QueryDsl as _, SelectableHelper as _,
    TextExpressionMethods as _,
};

use crate::db::with_conn;
use crate::models::{Reseller, ResellerChanges};
use crate::tables::resellers;
use crate::{Db, Page, PageRequest, ResellerId, Scope, StoreError};

/// Filters for listing resellers.
#[derive(Debug, Clone, Default)]
pub struct ResellerFilter {
    /// Part of the name.
    pub q: Option<String>,
}

/// Resellers visible in `scope`, oldest first.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &ResellerFilter,
    page: &PageRequest,
) -> Result<Page<Reseller>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = resellers::table.into_boxed();
        match scope {
            Scope::Platform => {}
            Scope::Reseller { reseller_id } => {
                query = query.filter(resellers::id.eq(reseller_id.clone()));
            }
            Scope::Tenant { .. } | Scope::User { .. } => return Ok(Page::empty()),
        }
        if let Some(q) = &filter.q {
            query = query.filter(
                resellers::name
                    .like(format!("%{}%", crate::store::users::escape_like(q)))
                    .escape('\\'),
            );
        }
        if let Some(after) = &page.after {
            query = query.filter(resellers::id.gt(after.clone()));
        }
        query
            .order(resellers::id.asc())
            .limit(page.limit() + 1)
            .select(Reseller::as_select())
            .load(conn)
            .await?
    });
    Ok(page.finish(rows, |r| r.id.0.clone()))
}

/// One reseller, if visible in `scope`.
pub async fn get(db: &Db, scope: &Scope, id: &ResellerId) -> Result<Reseller, StoreError> {
    match scope {
        Scope::Platform => {}
        Scope::Reseller { reseller_id } if reseller_id == id => {}
        _ => return Err(StoreError::NotFound),
    }
    with_conn!(db, conn => {
        Ok(resellers::table
            .find(id.clone())
            .select(Reseller::as_select())
            .first(conn)
            .await?)
    })
}

/// Inserts a reseller (the caller has checked it may).
pub async fn create(db: &Db, row: Reseller) -> Result<Reseller, StoreError> {
    with_conn!(db, conn => {
        diesel::insert_into(resellers::table).values(&row).execute(conn).await?;
        Ok(row)
    })
}

/// Updates a reseller visible in `scope`.
pub async fn update(
    db: &Db,
    scope: &Scope,
    id: &ResellerId,
    mut changes: ResellerChanges,
) -> Result<Reseller, StoreError> {
    get(db, scope, id).await?;
    changes.updated_at = Some(crate::now());
    with_conn!(db, conn => {
        diesel::update(resellers::table.find(id.clone())).set(&changes).execute(conn).await?;
        Ok(resellers::table.find(id.clone()).select(Reseller::as_select()).first(conn).await?)
    })
}

/// Deletes a reseller visible in `scope`; refused while it still has tenants.
pub async fn delete(db: &Db, scope: &Scope, id: &ResellerId) -> Result<(), StoreError> {
    get(db, scope, id).await?;
    with_conn!(db, conn => {
        let tenants: i64 = crate::tables::tenants::table
            .filter(crate::tables::tenants::reseller_id.eq(id.clone()))
            .count()
            .get_result(conn)
            .await?;
        if tenants > 0 {
            return Err(StoreError::Constraint(format!(
                "the reseller still has {tenants} tenant(s); delete them first"
            )));
        }
        diesel::delete(resellers::table.find(id.clone())).execute(conn).await?;
        Ok(())
    })
}
