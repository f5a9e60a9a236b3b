//! Users (mailboxes). Every address, user or alias, is claimed once platform-wide in
//! `address_claims`, in the same transaction as the row that owns it.

use diesel::{
    EscapeExpressionMethods as _, ExpressionMethods as _, Insertable, QueryDsl as _,
    SelectableHelper as _, TextExpressionMethods as _,
};

use crate::db::with_conn;
use crate::models::{Alias, AliasChanges, User, UserChanges};
use crate::tables::{address_claims, aliases, users};
use crate::{AliasId, Db, DomainId, Page, PageRequest, Scope, StoreError, TenantId, UserId};

/// Filters for listing users.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub tenant_id: Option<TenantId>,
    pub domain_id: Option<DomainId>,
    pub status: Option<String>,
    /// Substring of the address.
    pub q: Option<String>,
}

macro_rules! scoped_users {
    ($scope:expr) => {{
        let query =
            crate::filter_tenant_scope!(users::table.into_boxed(), $scope, users::tenant_id);
        match $scope.user_id() {
            Some(user_id) => query.filter(users::id.eq(user_id.clone())),
            None => query,
        }
    }};
}

/// Users visible in `scope`, oldest first.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &UserFilter,
    page: &PageRequest,
) -> Result<Page<User>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = scoped_users!(scope);
        if let Some(tenant_id) = &filter.tenant_id {
            query = query.filter(users::tenant_id.eq(tenant_id.clone()));
        }
        if let Some(domain_id) = &filter.domain_id {
            query = query.filter(users::domain_id.eq(domain_id.clone()));
        }
        if let Some(status) = &filter.status {
            query = query.filter(users::status.eq(status.clone()));
        }
        if let Some(q) = &filter.q {
            query = query.filter(users::address.like(format!("%{}%", escape_like(&q.to_lowercase()))).escape('\\'));
        }
        if let Some(after) = &page.after {
            query = query.filter(users::id.gt(after.clone()));
        }
        query
            .order(users::id.asc())
            .limit(page.limit() + 1)
            .select(User::as_select())
            .load(conn)
            .await?
    });
    Ok(page.finish(rows, |u| u.id.0.clone()))
}

/// One user, if visible in `scope`.
pub async fn get(db: &Db, scope: &Scope, id: &UserId) -> Result<User, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_users!(scope)
            .filter(users::id.eq(id.clone()))
            .select(User::as_select())
            .first(conn)
            .await?)
    })
}

/// Users of the given addresses visible in `scope`.
pub async fn by_addresses(
    db: &Db,
    scope: &Scope,
    addresses: &[String],
) -> Result<Vec<User>, StoreError> {
    let mut found = Vec::new();
    for chunk in addresses.chunks(500) {
        let rows: Vec<User> = with_conn!(db, conn => {
            scoped_users!(scope)
                .filter(users::address.eq_any(chunk.to_vec()))
                .select(User::as_select())
                .load(conn)
                .await?
        });
        found.extend(rows);
    }
    Ok(found)
}

/// The user with this address, platform-wide: for login only, before any scope exists.
pub async fn unscoped_by_address_for_login(db: &Db, address: &str) -> Result<User, StoreError> {
    with_conn!(db, conn => {
        Ok(users::table
            .filter(users::address.eq(address.to_owned()))
            .select(User::as_select())
            .first(conn)
            .await?)
    })
}

/// Which of these addresses are already claimed, and by which tenant.
pub async fn claimed(db: &Db, addresses: &[String]) -> Result<Vec<(String, TenantId)>, StoreError> {
    let mut found = Vec::new();
    for chunk in addresses.chunks(500) {
        let rows: Vec<(String, TenantId)> = with_conn!(db, conn => {
            address_claims::table
                .filter(address_claims::address.eq_any(chunk.to_vec()))
                .select((address_claims::address, address_claims::tenant_id))
                .load(conn)
                .await?
        });
        found.extend(rows);
    }
    Ok(found)
}

/// Inserts a user and claims its address (the caller has checked the domain is in scope).
pub async fn create(db: &Db, row: User) -> Result<User, StoreError> {
    apply(
        db,
        Changeset {
            new_users: vec![row.clone()],
            ..Changeset::default()
        },
    )
    .await?;
    Ok(row)
}

/// Updates a user visible in `scope`.
pub async fn update(
    db: &Db,
    scope: &Scope,
    id: &UserId,
    mut changes: UserChanges,
) -> Result<User, StoreError> {
    get(db, scope, id).await?;
    changes.updated_at = Some(crate::now());
    with_conn!(db, conn => {
        diesel::update(users::table.find(id.clone())).set(&changes).execute(conn).await?;
        Ok(users::table.find(id.clone()).select(User::as_select()).first(conn).await?)
    })
}

/// Deletes a user visible in `scope`, with its aliases and their address claims.
pub async fn delete(db: &Db, scope: &Scope, id: &UserId) -> Result<(), StoreError> {
    let user = get(db, scope, id).await?;
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let mut addresses: Vec<String> = aliases::table
                .filter(aliases::user_id.eq(id.clone()))
                .select(aliases::address)
                .load(conn)
                .await?;
            addresses.push(user.address.clone());
            diesel::delete(aliases::table.filter(aliases::user_id.eq(id.clone()))).execute(conn).await?;
            diesel::delete(users::table.find(id.clone())).execute(conn).await?;
            diesel::delete(address_claims::table.filter(address_claims::address.eq_any(addresses)))
                .execute(conn)
                .await?;
            Ok::<_, StoreError>(())
        })
        .await
    })
}

/// Turns a user into an alias of another user of the same tenant, in one transaction: the
/// user's own aliases move to the target, and its address stays claimed, now as an alias.
pub async fn convert_to_alias(
    db: &Db,
    scope: &Scope,
    id: &UserId,
    target_id: &UserId,
) -> Result<Alias, StoreError> {
    let user = get(db, scope, id).await?;
    let target = get(db, scope, target_id).await?;
    if user.tenant_id != target.tenant_id || user.id == target.id {
        return Err(StoreError::Constraint(
            "the target must be another user of the same tenant".into(),
        ));
    }
    let now = crate::now();
    let alias = Alias {
        id: AliasId::new(),
        tenant_id: user.tenant_id.clone(),
        domain_id: user.domain_id.clone(),
        user_id: target.id.clone(),
        address: user.address.clone(),
        status: "active".into(),
        created_at: now,
        updated_at: now,
    };
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            diesel::update(aliases::table.filter(aliases::user_id.eq(user.id.clone())))
                .set((aliases::user_id.eq(target.id.clone()), aliases::updated_at.eq(now)))
                .execute(conn)
                .await?;
            diesel::delete(users::table.find(user.id.clone())).execute(conn).await?;
            diesel::update(address_claims::table.find(user.address.clone()))
                .set(address_claims::kind.eq("alias"))
                .execute(conn)
                .await?;
            diesel::insert_into(aliases::table).values(&alias).execute(conn).await?;
            Ok::<_, StoreError>(())
        })
        .await
    })?;
    Ok(alias)
}

/// A batch of writes applied all-or-nothing (single creates and bulk imports).
#[derive(Debug, Clone, Default)]
pub struct Changeset {
    pub new_users: Vec<User>,
    pub new_aliases: Vec<Alias>,
    pub user_updates: Vec<(UserId, UserChanges)>,
    pub alias_updates: Vec<(AliasId, AliasChanges)>,
}

#[derive(Insertable)]
#[diesel(table_name = address_claims)]
struct NewClaim<'a> {
    address: &'a str,
    tenant_id: &'a TenantId,
    kind: &'static str,
}

/// Inserts rows into a table: in multi-row statements on PostgreSQL, row by row on SQLite
/// (diesel's portable batch insert does not compile for SQLite).
macro_rules! insert_rows {
    (batched, $conn:ident, $table:expr, $rows:expr) => {
        for chunk in $rows.chunks(500) {
            diesel::insert_into($table)
                .values(chunk)
                .execute($conn)
                .await?;
        }
    };
    (single, $conn:ident, $table:expr, $rows:expr) => {
        for row in $rows.iter() {
            diesel::insert_into($table)
                .values(row)
                .execute($conn)
                .await?;
        }
    };
}

/// The body of [`apply`], instantiated per backend.
macro_rules! apply_changeset {
    ($mode:ident, $conn:ident, $claims:expr, $changeset:expr) => {{
        let changeset = $changeset;
        $conn
            .transaction(async |conn| {
                let claims = $claims;
                let claim_result: Result<(), StoreError> = async {
                    insert_rows!($mode, conn, address_claims::table, claims);
                    Ok(())
                }
                .await;
                claim_result.map_err(|e| match e {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict("the address already exists on the platform".into())
                    }
                    other => other,
                })?;
                insert_rows!($mode, conn, users::table, changeset.new_users);
                for (id, changes) in &changeset.user_updates {
                    diesel::update(users::table.find(id.clone()))
                        .set(changes)
                        .execute(conn)
                        .await?;
                }
                insert_rows!($mode, conn, aliases::table, changeset.new_aliases);
                for (id, changes) in &changeset.alias_updates {
                    diesel::update(aliases::table.find(id.clone()))
                        .set(changes)
                        .execute(conn)
                        .await?;
                }
                Ok::<_, StoreError>(())
            })
            .await
    }};
}

/// Applies a changeset in one transaction: any failure leaves the database untouched.
pub async fn apply(db: &Db, changeset: Changeset) -> Result<(), StoreError> {
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    let claims: Vec<NewClaim<'_>> = changeset
        .new_users
        .iter()
        .map(|u| NewClaim {
            address: &u.address,
            tenant_id: &u.tenant_id,
            kind: "user",
        })
        .chain(changeset.new_aliases.iter().map(|a| NewClaim {
            address: &a.address,
            tenant_id: &a.tenant_id,
            kind: "alias",
        }))
        .collect();
    match db.pool() {
        crate::Pool::Postgres(pool) => {
            let mut pooled = pool.get().await.map_err(StoreError::pool_error)?;
            let conn: &mut diesel_async::AsyncPgConnection = &mut pooled;
            apply_changeset!(batched, conn, &claims, &changeset)
        }
        crate::Pool::Sqlite(pool) => {
            let mut pooled = pool.get().await.map_err(StoreError::pool_error)?;
            let conn: &mut crate::db::SqliteAsync = &mut pooled;
            apply_changeset!(single, conn, &claims, &changeset)
        }
    }
}

pub(crate) fn escape_like(input: &str) -> String {
    input
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
