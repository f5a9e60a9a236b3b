//! Operators (platform and reseller staff) and API keys: the credentials behind a principal.

use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, NullableExpressionMethods as _,
    OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
};

use crate::db::with_conn;
use crate::models::{ApiKey, Operator};
use crate::tables::{api_keys, login_attempts, operators, tenants};
use crate::{ApiKeyId, Db, Page, PageRequest, Scope, StoreError};

/// Inserts an operator.
pub async fn create_operator(db: &Db, row: Operator) -> Result<Operator, StoreError> {
    with_conn!(db, conn => {
        diesel::insert_into(operators::table).values(&row).execute(conn).await?;
        Ok(row)
    })
}

/// The operator with this email: for login only, before any scope exists.
pub async fn unscoped_operator_by_email_for_login(
    db: &Db,
    email: &str,
) -> Result<Operator, StoreError> {
    with_conn!(db, conn => {
        Ok(operators::table
            .filter(operators::email.eq(email.to_owned()))
            .select(Operator::as_select())
            .first(conn)
            .await?)
    })
}

/// Inserts an API key (the caller has checked its scope is within its own).
pub async fn create_api_key(db: &Db, row: ApiKey) -> Result<ApiKey, StoreError> {
    with_conn!(db, conn => {
        diesel::insert_into(api_keys::table).values(&row).execute(conn).await?;
        Ok(row)
    })
}

/// The live (not revoked) key with this secret hash: for authentication only.
pub async fn unscoped_live_api_key_by_hash_for_auth(
    db: &Db,
    secret_hash: &str,
) -> Result<ApiKey, StoreError> {
    with_conn!(db, conn => {
        Ok(api_keys::table
            .filter(api_keys::secret_hash.eq(secret_hash.to_owned()))
            .filter(api_keys::revoked_at.is_null())
            .select(ApiKey::as_select())
            .first(conn)
            .await?)
    })
}

macro_rules! scoped_keys {
    ($scope:expr) => {{
        let query = api_keys::table.into_boxed();
        match $scope {
            Scope::Platform => query,
            Scope::Reseller { reseller_id } => query.filter(
                api_keys::reseller_id
                    .eq(reseller_id.clone())
                    .or(api_keys::tenant_id.eq_any(
                        tenants::table
                            .filter(tenants::reseller_id.eq(reseller_id.clone()))
                            .select(tenants::id.nullable()),
                    )),
            ),
            Scope::Tenant { tenant_id, .. } => {
                query.filter(api_keys::tenant_id.eq(tenant_id.clone()))
            }
            Scope::User { .. } => query.filter(api_keys::id.is_null()),
        }
    }};
}

/// API keys visible in `scope` (revoked ones included), oldest first.
pub async fn list_api_keys(
    db: &Db,
    scope: &Scope,
    page: &PageRequest,
) -> Result<Page<ApiKey>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = scoped_keys!(scope);
        if let Some(after) = &page.after {
            query = query.filter(api_keys::id.gt(after.clone()));
        }
        query
            .order(api_keys::id.asc())
            .limit(page.limit() + 1)
            .select(ApiKey::as_select())
            .load(conn)
            .await?
    });
    Ok(page.finish(rows, |k| k.id.0.clone()))
}

/// One API key, if visible in `scope`.
pub async fn get_api_key(db: &Db, scope: &Scope, id: &ApiKeyId) -> Result<ApiKey, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_keys!(scope)
            .filter(api_keys::id.eq(id.clone()))
            .select(ApiKey::as_select())
            .first(conn)
            .await?)
    })
}

/// Revokes a key visible in `scope` (idempotent) and returns it.
pub async fn revoke_api_key(db: &Db, scope: &Scope, id: &ApiKeyId) -> Result<ApiKey, StoreError> {
    let key = get_api_key(db, scope, id).await?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let now = crate::now();
    with_conn!(db, conn => {
        diesel::update(api_keys::table.find(id.clone()))
            .set(api_keys::revoked_at.eq(Some(now)))
            .execute(conn)
            .await?;
    });
    Ok(ApiKey {
        revoked_at: Some(now),
        ..key
    })
}

/// Records that a key was used (best effort, at most once a minute per key).
pub async fn touch_api_key(db: &Db, key: &ApiKey) -> Result<(), StoreError> {
    let now = crate::now();
    if key
        .last_used_at
        .is_some_and(|t| now - t < chrono::Duration::minutes(1))
    {
        return Ok(());
    }
    with_conn!(db, conn => {
        diesel::update(api_keys::table.find(key.id.clone()))
            .set(api_keys::last_used_at.eq(Some(now)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Counts a login attempt for `account` (a normalised login name, known or not) and returns
/// the attempts counted in its window and when that window opened. A window lasts `window`;
/// an attempt after it opens a new one. The count is in the database, so every API process
/// sees the same one, and each attempt adds to it with one atomic upsert, so parallel
/// attempts all count. Rows of closed windows, this account's and others', are deleted on
/// the way.
pub async fn count_login_attempt(
    db: &Db,
    account: &str,
    window: chrono::Duration,
) -> Result<(u32, chrono::NaiveDateTime), StoreError> {
    let now = crate::now();
    with_conn!(db, conn => {
        diesel::delete(login_attempts::table.filter(login_attempts::window_opened_at.le(now - window)))
            .execute(conn)
            .await?;
        diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::account.eq(account),
                login_attempts::attempts.eq(1),
                login_attempts::window_opened_at.eq(now),
            ))
            .on_conflict(login_attempts::account)
            .do_update()
            .set(login_attempts::attempts.eq(login_attempts::attempts + 1))
            .execute(conn)
            .await?;
        // The row is gone only if its window closed in between and another process swept
        // it: then this attempt is the first of a new window.
        let (attempts, opened): (i32, chrono::NaiveDateTime) = login_attempts::table
            .find(account)
            .select((login_attempts::attempts, login_attempts::window_opened_at))
            .first(conn)
            .await
            .optional()?
            .unwrap_or((1, now));
        Ok((u32::try_from(attempts).unwrap_or(u32::MAX), opened))
    })
}

/// Forgets the attempts of an account that just logged in.
pub async fn clear_login_attempts(db: &Db, account: &str) -> Result<(), StoreError> {
    with_conn!(db, conn => {
        diesel::delete(login_attempts::table.find(account)).execute(conn).await?;
        Ok(())
    })
}
