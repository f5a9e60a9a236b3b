//! Filtering policies, their assignment and the effective policy of a recipient.
//!
//! - A policy is owned by the platform (the built-in recommended ones, read-only), by a
//!   reseller (visible to the reseller and its tenants) or by a tenant. Its settings are the
//!   JSON of [`cleanmail_core::policy::Policy`].
//! - Every tenant uses one full policy (`tenant_policies`); a new tenant starts on
//!   [`STANDARD_POLICY_ID`] (see [`crate::store::tenants::create`]).
//! - Domains and users may carry partial overrides (JSON of
//!   [`cleanmail_core::policy::PolicyOverrides`]); [`cleanmail_core::policy::resolve`] applies
//!   them field by field with provenance.
//!
//! The SMTP ingest worker, which has no caller scope, reads the effective policy of a
//! recipient through [`unscoped_effective_for_user_for_ingest`] or
//! [`unscoped_effective_for_address_for_ingest`].

use cleanmail_core::policy::{
    self as core_policy, BuiltinPolicy, EffectivePolicy, PolicyOverrides,
};
use diesel::result::Error as DieselError;
use diesel::upsert::excluded;
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, JoinOnDsl as _,
    NullableExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
};
use serde::de::DeserializeOwned;

use crate::db::with_conn;
use crate::models::{
    DomainPolicyOverrides, NewPolicy, Policy, PolicyChanges, TenantPolicy, UserPolicyOverrides,
};
use crate::tables::{
    aliases, domain_policy_overrides, policies, tenant_policies, tenants, user_policy_overrides,
    users,
};
use crate::{
    Db, DomainId, Page, PageRequest, PolicyId, ResellerId, Scope, StoreError, TenantId, UserId,
};

/// Id of the built-in "Standard policy with quarantine reporting", every new tenant's policy.
pub const STANDARD_POLICY_ID: &str = "00000000-0000-7000-8000-000000000001";
/// Id of the built-in "Policy without quarantine report".
pub const WITHOUT_REPORT_POLICY_ID: &str = "00000000-0000-7000-8000-000000000002";

/// Owner kinds as stored in `policies.owner_kind`.
pub const OWNER_PLATFORM: &str = "platform";
pub const OWNER_RESELLER: &str = "reseller";
pub const OWNER_TENANT: &str = "tenant";

/// The stored id of a built-in policy.
pub fn builtin_id(builtin: BuiltinPolicy) -> PolicyId {
    PolicyId(
        match builtin {
            BuiltinPolicy::StandardWithQuarantineReport => STANDARD_POLICY_ID,
            BuiltinPolicy::WithoutQuarantineReport => WITHOUT_REPORT_POLICY_ID,
        }
        .to_owned(),
    )
}

/// The stored key (`policies.builtin`) of a built-in policy.
pub fn builtin_key(builtin: BuiltinPolicy) -> &'static str {
    match builtin {
        BuiltinPolicy::StandardWithQuarantineReport => "standard_with_quarantine_report",
        BuiltinPolicy::WithoutQuarantineReport => "without_quarantine_report",
    }
}

fn decode<T: DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Database(DieselError::DeserializationError(Box::new(e))))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Database(DieselError::SerializationError(Box::new(e))))
}

impl Policy {
    /// The decoded settings.
    pub fn decode_settings(&self) -> Result<core_policy::Policy, StoreError> {
        decode(&self.settings)
    }

    /// Whether this is a built-in (read-only) policy.
    pub fn is_builtin(&self) -> bool {
        self.builtin.is_some()
    }

    /// Whether a caller in `scope` who can see this policy may change or delete it: never a
    /// built-in; the platform any other; a reseller its own and its tenants'; a tenant its own.
    pub fn is_writable_in(&self, scope: &Scope) -> bool {
        if self.is_builtin() {
            return false;
        }
        match scope {
            Scope::Platform => true,
            Scope::Reseller { .. } => self.owner_kind != OWNER_PLATFORM,
            Scope::Tenant { tenant_id, .. } => self.tenant_id.as_ref() == Some(tenant_id),
            Scope::User { .. } => false,
        }
    }
}

impl DomainPolicyOverrides {
    /// The decoded overrides.
    pub fn decode(&self) -> Result<PolicyOverrides, StoreError> {
        decode(&self.overrides)
    }
}

impl UserPolicyOverrides {
    /// The decoded overrides.
    pub fn decode(&self) -> Result<PolicyOverrides, StoreError> {
        decode(&self.overrides)
    }
}

/// Policies visible in a scope: the platform's to everyone but end users, a reseller's to it
/// and its tenants, a tenant's to it and its reseller. End users see none (they read their
/// effective policy instead).
macro_rules! scoped_policies {
    ($scope:expr) => {{
        let query = policies::table.into_boxed();
        match $scope {
            Scope::Platform => query,
            Scope::Reseller { reseller_id } => query.filter(
                policies::owner_kind
                    .eq(OWNER_PLATFORM)
                    .or(policies::reseller_id.eq(reseller_id.clone()))
                    .or(policies::tenant_id.eq_any(
                        tenants::table
                            .filter(tenants::reseller_id.eq(reseller_id.clone()))
                            .select(tenants::id.nullable()),
                    )),
            ),
            Scope::Tenant {
                reseller_id,
                tenant_id,
            } => query.filter(
                policies::owner_kind
                    .eq(OWNER_PLATFORM)
                    .or(policies::reseller_id.eq(reseller_id.clone()))
                    .or(policies::tenant_id.eq(tenant_id.clone())),
            ),
            Scope::User { .. } => query.filter(policies::id.is_null()),
        }
    }};
}

/// Filters for listing policies.
#[derive(Debug, Clone, Default)]
pub struct PolicyFilter {
    /// `platform`, `reseller` or `tenant`.
    pub owner_kind: Option<String>,
    pub reseller_id: Option<ResellerId>,
    pub tenant_id: Option<TenantId>,
}

/// Policies visible in `scope`, by id (built-ins first).
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &PolicyFilter,
    page: &PageRequest,
) -> Result<Page<Policy>, StoreError> {
    let rows = with_conn!(db, conn => {
        let mut query = scoped_policies!(scope);
        if let Some(owner_kind) = &filter.owner_kind {
            query = query.filter(policies::owner_kind.eq(owner_kind.clone()));
        }
        if let Some(reseller_id) = &filter.reseller_id {
            query = query.filter(policies::reseller_id.eq(reseller_id.clone()));
        }
        if let Some(tenant_id) = &filter.tenant_id {
            query = query.filter(policies::tenant_id.eq(tenant_id.clone()));
        }
        if let Some(after) = &page.after {
            query = query.filter(policies::id.gt(after.clone()));
        }
        query
            .order(policies::id.asc())
            .limit(page.limit() + 1)
            .select(Policy::as_select())
            .load(conn)
            .await?
    });
    Ok(page.finish(rows, |p| p.id.0.clone()))
}

/// One policy, if visible in `scope`.
pub async fn get(db: &Db, scope: &Scope, id: &PolicyId) -> Result<Policy, StoreError> {
    with_conn!(db, conn => {
        Ok(scoped_policies!(scope)
            .filter(policies::id.eq(id.clone()))
            .select(Policy::as_select())
            .first(conn)
            .await?)
    })
}

/// Inserts a policy (the caller has checked that its owner is in scope).
pub async fn create(db: &Db, row: NewPolicy<'_>) -> Result<Policy, StoreError> {
    let id = row.id.clone();
    with_conn!(db, conn => {
        diesel::insert_into(policies::table).values(&row).execute(conn).await?;
        Ok(policies::table.find(id).select(Policy::as_select()).first(conn).await?)
    })
}

/// Updates a policy visible and writable in `scope`.
pub async fn update(
    db: &Db,
    scope: &Scope,
    id: &PolicyId,
    mut changes: PolicyChanges,
) -> Result<Policy, StoreError> {
    let policy = get(db, scope, id).await?;
    if !policy.is_writable_in(scope) {
        return Err(StoreError::Constraint(
            "this policy is read-only for you".into(),
        ));
    }
    changes.updated_at = Some(crate::now());
    with_conn!(db, conn => {
        diesel::update(policies::table.find(id.clone())).set(&changes).execute(conn).await?;
        Ok(policies::table.find(id.clone()).select(Policy::as_select()).first(conn).await?)
    })
}

/// Deletes a policy visible and writable in `scope`; refused while a tenant uses it.
pub async fn delete(db: &Db, scope: &Scope, id: &PolicyId) -> Result<(), StoreError> {
    let policy = get(db, scope, id).await?;
    if !policy.is_writable_in(scope) {
        return Err(StoreError::Constraint(
            "this policy is read-only for you".into(),
        ));
    }
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let assigned: i64 = tenant_policies::table
                .filter(tenant_policies::policy_id.eq(id.clone()))
                .count()
                .get_result(conn)
                .await?;
            if assigned > 0 {
                return Err(StoreError::Constraint(format!(
                    "the policy is assigned to {assigned} tenant(s); assign them another policy first"
                )));
            }
            diesel::delete(policies::table.find(id.clone())).execute(conn).await?;
            Ok::<_, StoreError>(())
        })
        .await
    })
}

/// Creates or refreshes the built-in policies from [`BuiltinPolicy`] (run after migrations).
pub async fn sync_builtins(db: &Db) -> Result<(), StoreError> {
    for builtin in BuiltinPolicy::ALL {
        let id = builtin_id(builtin);
        let settings = encode(&builtin.policy())?;
        let now = crate::now();
        let existing: Option<Policy> = with_conn!(db, conn => {
            policies::table.find(id.clone()).select(Policy::as_select()).first(conn).await.optional()?
        });
        match existing {
            Some(row) if row.name == builtin.name() && row.settings == settings => {}
            Some(_) => {
                let changes = PolicyChanges {
                    name: Some(builtin.name().to_owned()),
                    description: None,
                    settings: Some(settings),
                    updated_at: Some(now),
                };
                with_conn!(db, conn => {
                    diesel::update(policies::table.find(id.clone())).set(&changes).execute(conn).await?;
                });
            }
            None => {
                create(
                    db,
                    NewPolicy {
                        id: &id,
                        owner_kind: OWNER_PLATFORM,
                        reseller_id: None,
                        tenant_id: None,
                        builtin: Some(builtin_key(builtin)),
                        name: builtin.name(),
                        description: "",
                        settings: &settings,
                        created_at: now,
                        updated_at: now,
                    },
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// The policy a tenant visible in `scope` uses (the standard one if none was recorded).
pub async fn tenant_policy(
    db: &Db,
    scope: &Scope,
    tenant_id: &TenantId,
) -> Result<(TenantPolicy, Policy), StoreError> {
    let tenant = crate::store::tenants::get(db, scope, tenant_id).await?;
    assigned_policy(db, &tenant.id, tenant.created_at).await
}

async fn assigned_policy(
    db: &Db,
    tenant_id: &TenantId,
    since: chrono::NaiveDateTime,
) -> Result<(TenantPolicy, Policy), StoreError> {
    with_conn!(db, conn => {
        let found: Option<(TenantPolicy, Policy)> = tenant_policies::table
            .inner_join(policies::table)
            .filter(tenant_policies::tenant_id.eq(tenant_id.clone()))
            .select((TenantPolicy::as_select(), Policy::as_select()))
            .first(conn)
            .await
            .optional()?;
        match found {
            Some(found) => Ok(found),
            None => {
                let policy = policies::table
                    .find(STANDARD_POLICY_ID.to_owned())
                    .select(Policy::as_select())
                    .first(conn)
                    .await?;
                let assignment = TenantPolicy {
                    tenant_id: tenant_id.clone(),
                    policy_id: policy.id.clone(),
                    updated_at: since,
                };
                Ok((assignment, policy))
            }
        }
    })
}

/// Makes a tenant visible in `scope` use a policy. The policy must be visible to the
/// tenant itself (the platform's, its reseller's or its own); otherwise it is `NotFound`.
pub async fn assign_to_tenant(
    db: &Db,
    scope: &Scope,
    tenant_id: &TenantId,
    policy_id: &PolicyId,
) -> Result<(TenantPolicy, Policy), StoreError> {
    let tenant = crate::store::tenants::get(db, scope, tenant_id).await?;
    let tenant_scope = Scope::Tenant {
        reseller_id: tenant.reseller_id.clone(),
        tenant_id: tenant.id.clone(),
    };
    let policy = get(db, &tenant_scope, policy_id).await?;
    let row = TenantPolicy {
        tenant_id: tenant.id.clone(),
        policy_id: policy.id.clone(),
        updated_at: crate::now(),
    };
    with_conn!(db, conn => {
        diesel::insert_into(tenant_policies::table)
            .values(&row)
            .on_conflict(tenant_policies::tenant_id)
            .do_update()
            .set((
                tenant_policies::policy_id.eq(excluded(tenant_policies::policy_id)),
                tenant_policies::updated_at.eq(excluded(tenant_policies::updated_at)),
            ))
            .execute(conn)
            .await?;
    });
    Ok((row, policy))
}

/// The overrides of a domain visible in `scope`, if it has any.
pub async fn domain_overrides(
    db: &Db,
    scope: &Scope,
    domain_id: &DomainId,
) -> Result<Option<DomainPolicyOverrides>, StoreError> {
    crate::store::domains::get(db, scope, domain_id).await?;
    with_conn!(db, conn => {
        Ok(crate::filter_tenant_scope!(
            domain_policy_overrides::table.into_boxed(),
            scope,
            domain_policy_overrides::tenant_id
        )
        .filter(domain_policy_overrides::domain_id.eq(domain_id.clone()))
        .select(DomainPolicyOverrides::as_select())
        .first(conn)
        .await
        .optional()?)
    })
}

/// Sets (replaces) the overrides of a domain visible in `scope`.
pub async fn set_domain_overrides(
    db: &Db,
    scope: &Scope,
    domain_id: &DomainId,
    overrides: &PolicyOverrides,
) -> Result<DomainPolicyOverrides, StoreError> {
    let domain = crate::store::domains::get(db, scope, domain_id).await?;
    let row = DomainPolicyOverrides {
        domain_id: domain.id,
        tenant_id: domain.tenant_id,
        overrides: encode(overrides)?,
        updated_at: crate::now(),
    };
    with_conn!(db, conn => {
        diesel::insert_into(domain_policy_overrides::table)
            .values(&row)
            .on_conflict(domain_policy_overrides::domain_id)
            .do_update()
            .set((
                domain_policy_overrides::overrides.eq(excluded(domain_policy_overrides::overrides)),
                domain_policy_overrides::updated_at.eq(excluded(domain_policy_overrides::updated_at)),
            ))
            .execute(conn)
            .await?;
    });
    Ok(row)
}

/// Removes the overrides of a domain visible in `scope` (idempotent).
pub async fn clear_domain_overrides(
    db: &Db,
    scope: &Scope,
    domain_id: &DomainId,
) -> Result<(), StoreError> {
    let domain = crate::store::domains::get(db, scope, domain_id).await?;
    with_conn!(db, conn => {
        diesel::delete(domain_policy_overrides::table.find(domain.id)).execute(conn).await?;
        Ok(())
    })
}

/// The overrides of a user visible in `scope`, if they have any.
pub async fn user_overrides(
    db: &Db,
    scope: &Scope,
    user_id: &UserId,
) -> Result<Option<UserPolicyOverrides>, StoreError> {
    crate::store::users::get(db, scope, user_id).await?;
    with_conn!(db, conn => {
        Ok(crate::filter_tenant_scope!(
            user_policy_overrides::table.into_boxed(),
            scope,
            user_policy_overrides::tenant_id
        )
        .filter(user_policy_overrides::user_id.eq(user_id.clone()))
        .select(UserPolicyOverrides::as_select())
        .first(conn)
        .await
        .optional()?)
    })
}

/// Sets (replaces) the overrides of a user visible in `scope`.
pub async fn set_user_overrides(
    db: &Db,
    scope: &Scope,
    user_id: &UserId,
    overrides: &PolicyOverrides,
) -> Result<UserPolicyOverrides, StoreError> {
    let user = crate::store::users::get(db, scope, user_id).await?;
    let row = UserPolicyOverrides {
        user_id: user.id,
        tenant_id: user.tenant_id,
        overrides: encode(overrides)?,
        updated_at: crate::now(),
    };
    with_conn!(db, conn => {
        diesel::insert_into(user_policy_overrides::table)
            .values(&row)
            .on_conflict(user_policy_overrides::user_id)
            .do_update()
            .set((
                user_policy_overrides::overrides.eq(excluded(user_policy_overrides::overrides)),
                user_policy_overrides::updated_at.eq(excluded(user_policy_overrides::updated_at)),
            ))
            .execute(conn)
            .await?;
    });
    Ok(row)
}

/// Removes the overrides of a user visible in `scope` (idempotent).
pub async fn clear_user_overrides(
    db: &Db,
    scope: &Scope,
    user_id: &UserId,
) -> Result<(), StoreError> {
    let user = crate::store::users::get(db, scope, user_id).await?;
    with_conn!(db, conn => {
        diesel::delete(user_policy_overrides::table.find(user.id)).execute(conn).await?;
        Ok(())
    })
}

/// The effective policy of a domain or user, with what it was resolved from.
#[derive(Debug, Clone)]
pub struct ExplainedPolicy {
    pub tenant_id: TenantId,
    pub domain_id: DomainId,
    pub user_id: Option<UserId>,
    /// The tenant's full policy.
    pub tenant_policy: Policy,
    pub domain_overrides: Option<PolicyOverrides>,
    pub user_overrides: Option<PolicyOverrides>,
    /// The resolved values and the level each came from.
    pub effective: EffectivePolicy,
}

/// Resolves the policy of a tenant, one of its domains and optionally one of its users.
/// Callers have established that the ids belong together and are allowed.
async fn explain(
    db: &Db,
    tenant_id: &TenantId,
    tenant_created_at: chrono::NaiveDateTime,
    domain_id: &DomainId,
    user_id: Option<&UserId>,
) -> Result<ExplainedPolicy, StoreError> {
    let (_, tenant_policy) = assigned_policy(db, tenant_id, tenant_created_at).await?;
    let (domain_row, user_row) = with_conn!(db, conn => {
        let domain_row: Option<DomainPolicyOverrides> = domain_policy_overrides::table
            .find(domain_id.clone())
            .filter(domain_policy_overrides::tenant_id.eq(tenant_id.clone()))
            .select(DomainPolicyOverrides::as_select())
            .first(conn)
            .await
            .optional()?;
        let user_row: Option<UserPolicyOverrides> = match user_id {
            Some(user_id) => user_policy_overrides::table
                .find(user_id.clone())
                .filter(user_policy_overrides::tenant_id.eq(tenant_id.clone()))
                .select(UserPolicyOverrides::as_select())
                .first(conn)
                .await
                .optional()?,
            None => None,
        };
        (domain_row, user_row)
    });
    let settings = tenant_policy.decode_settings()?;
    let domain_overrides = domain_row.as_ref().map(|r| r.decode()).transpose()?;
    let user_overrides = user_row.as_ref().map(|r| r.decode()).transpose()?;
    let effective = core_policy::resolve(
        &settings,
        domain_overrides.as_ref(),
        user_overrides.as_ref(),
    );
    Ok(ExplainedPolicy {
        tenant_id: tenant_id.clone(),
        domain_id: domain_id.clone(),
        user_id: user_id.cloned(),
        tenant_policy,
        domain_overrides,
        user_overrides,
        effective,
    })
}

/// The effective policy of a user visible in `scope` (an end user sees only their own).
pub async fn effective_for_user(
    db: &Db,
    scope: &Scope,
    user_id: &UserId,
) -> Result<ExplainedPolicy, StoreError> {
    let user = crate::store::users::get(db, scope, user_id).await?;
    let tenant = crate::store::tenants::get(db, scope, &user.tenant_id).await?;
    explain(
        db,
        &tenant.id,
        tenant.created_at,
        &user.domain_id,
        Some(&user.id),
    )
    .await
}

/// The effective policy of a domain visible in `scope` (before any user override).
pub async fn effective_for_domain(
    db: &Db,
    scope: &Scope,
    domain_id: &DomainId,
) -> Result<ExplainedPolicy, StoreError> {
    let domain = crate::store::domains::get(db, scope, domain_id).await?;
    let tenant = crate::store::tenants::get(db, scope, &domain.tenant_id).await?;
    explain(db, &tenant.id, tenant.created_at, &domain.id, None).await
}

/// UNSCOPED: the effective policy of a user, for the SMTP ingest worker only.
///
/// The worker has no caller and no [`Scope`]: it acts for the tenant that owns the
/// recipient, which it learned from the recipient itself. Never call this from a request
/// handler; use [`effective_for_user`] with the caller's scope instead.
pub async fn unscoped_effective_for_user_for_ingest(
    db: &Db,
    user_id: &UserId,
) -> Result<EffectivePolicy, StoreError> {
    let (tenant_id, domain_id, created_at) = with_conn!(db, conn => {
        users::table
            .inner_join(tenants::table.on(tenants::id.eq(users::tenant_id)))
            .filter(users::id.eq(user_id.clone()))
            .select((users::tenant_id, users::domain_id, tenants::created_at))
            .first::<(TenantId, DomainId, chrono::NaiveDateTime)>(conn)
            .await?
    });
    Ok(
        explain(db, &tenant_id, created_at, &domain_id, Some(user_id))
            .await?
            .effective,
    )
}

/// UNSCOPED: the user a recipient address (a user's own address or one of their aliases)
/// delivers to, and that user's effective policy, for the SMTP ingest worker only.
///
/// `address` should be in normal form (`EmailAddress::parse(..).to_string()`); it is
/// normalised here too. `NotFound` when no user or alias has this address. Never call this
/// from a request handler.
pub async fn unscoped_effective_for_address_for_ingest(
    db: &Db,
    address: &str,
) -> Result<(UserId, EffectivePolicy), StoreError> {
    let address = cleanmail_core::address::EmailAddress::parse(address)
        .map(|a| a.to_string())
        .unwrap_or_else(|_| address.trim().to_lowercase());
    let user_id: UserId = with_conn!(db, conn => {
        let direct: Option<UserId> = users::table
            .filter(users::address.eq(address.clone()))
            .select(users::id)
            .first(conn)
            .await
            .optional()?;
        match direct {
            Some(id) => id,
            None => aliases::table
                .filter(aliases::address.eq(address.clone()))
                .select(aliases::user_id)
                .first(conn)
                .await?,
        }
    });
    let effective = unscoped_effective_for_user_for_ingest(db, &user_id).await?;
    Ok((user_id, effective))
}

/// Tenants visible in `scope` that use the policy `policy_id`.
pub async fn tenants_using(
    db: &Db,
    scope: &Scope,
    policy_id: &PolicyId,
) -> Result<Vec<TenantId>, StoreError> {
    with_conn!(db, conn => {
        Ok(crate::filter_tenant_scope!(
            tenant_policies::table.into_boxed(),
            scope,
            tenant_policies::tenant_id
        )
        .filter(tenant_policies::policy_id.eq(policy_id.clone()))
        .select(tenant_policies::tenant_id)
        .load(conn)
        .await?)
    })
}
