//! DKIM keys of domains for outbound mail. At most one key per domain is active: the one
//! outbound mail is signed with; the others stay published for rotation.

use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
};

use crate::db::with_conn;
use crate::models::DkimKey;
use crate::store::domains;
use crate::tables::dkim_keys;
use crate::{Db, DomainId, Scope, StoreError};

/// The keys of a domain visible in `scope`, newest first.
pub async fn list(
    db: &Db,
    scope: &Scope,
    domain_id: &DomainId,
) -> Result<Vec<DkimKey>, StoreError> {
    domains::get(db, scope, domain_id).await?;
    with_conn!(db, conn => {
        Ok(dkim_keys::table
            .filter(dkim_keys::domain_id.eq(domain_id.clone()))
            .order((dkim_keys::created_at.desc(), dkim_keys::id.desc()))
            .select(DkimKey::as_select())
            .load(conn)
            .await?)
    })
}

/// One key of a domain visible in `scope`.
pub async fn get(
    db: &Db,
    scope: &Scope,
    domain_id: &DomainId,
    id: &str,
) -> Result<DkimKey, StoreError> {
    domains::get(db, scope, domain_id).await?;
    with_conn!(db, conn => {
        Ok(dkim_keys::table
            .filter(dkim_keys::domain_id.eq(domain_id.clone()))
            .filter(dkim_keys::id.eq(id.to_owned()))
            .select(DkimKey::as_select())
            .first(conn)
            .await?)
    })
}

/// The key a domain visible in `scope` signs with, if any.
pub async fn active(
    db: &Db,
    scope: &Scope,
    domain_id: &DomainId,
) -> Result<Option<DkimKey>, StoreError> {
    domains::get(db, scope, domain_id).await?;
    with_conn!(db, conn => {
        Ok(dkim_keys::table
            .filter(dkim_keys::domain_id.eq(domain_id.clone()))
            .filter(dkim_keys::active.eq(true))
            .select(DkimKey::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Stores a new key of a domain visible in `scope` (the caller built `row` for that domain);
/// an active one replaces the domain's active key. A taken selector is a conflict.
pub async fn create(db: &Db, scope: &Scope, row: DkimKey) -> Result<DkimKey, StoreError> {
    let domain = domains::get(db, scope, &row.domain_id).await?;
    if domain.tenant_id != row.tenant_id {
        return Err(StoreError::NotFound);
    }
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            if row.active {
                diesel::update(dkim_keys::table.filter(dkim_keys::domain_id.eq(row.domain_id.clone())))
                    .set(dkim_keys::active.eq(false))
                    .execute(conn)
                    .await?;
            }
            diesel::insert_into(dkim_keys::table).values(&row).execute(conn).await?;
            Ok::<_, StoreError>(())
        })
        .await
    })?;
    Ok(row)
}

/// Makes a key the one its domain signs with.
pub async fn activate(
    db: &Db,
    scope: &Scope,
    domain_id: &DomainId,
    id: &str,
) -> Result<DkimKey, StoreError> {
    let key = get(db, scope, domain_id, id).await?;
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            diesel::update(dkim_keys::table.filter(dkim_keys::domain_id.eq(domain_id.clone())))
                .set(dkim_keys::active.eq(false))
                .execute(conn)
                .await?;
            diesel::update(dkim_keys::table.filter(dkim_keys::id.eq(key.id.clone())))
                .set(dkim_keys::active.eq(true))
                .execute(conn)
                .await?;
            Ok::<_, StoreError>(())
        })
        .await
    })?;
    Ok(DkimKey {
        active: true,
        ..key
    })
}

/// Deletes a key (an active one too: the domain's mail then goes out unsigned).
pub async fn delete(
    db: &Db,
    scope: &Scope,
    domain_id: &DomainId,
    id: &str,
) -> Result<(), StoreError> {
    let key = get(db, scope, domain_id, id).await?;
    with_conn!(db, conn => {
        diesel::delete(dkim_keys::table.filter(dkim_keys::id.eq(key.id))).execute(conn).await?;
        Ok(())
    })
}
