//! Reports: definitions of domain and tenant reports, the runs of report slots (one row per
//! user or definition and slot: the exactly-once key), used one-click link tokens, and the
//! reads reports are made of (quarantined items of a period, traffic statistics).

use chrono::NaiveDateTime;
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, JoinOnDsl as _, OptionalExtension as _,
    QueryDsl as _, SelectableHelper as _,
};

use crate::db::with_conn;
use crate::models::{
    Job, Message, MessageLogEntry, ReportDefinition, ReportDefinitionChanges, ReportRun,
    TrafficCounter, User,
};
use crate::tables::{
    jobs, message_log, messages, report_definitions, report_runs, resellers, tenants,
    traffic_counters, used_link_tokens, users,
};
use crate::{Db, DomainId, ReportDefinitionId, ResellerId, Scope, StoreError, TenantId, UserId};

/// A user who may receive a quarantine report, with what the report needs to know.
#[derive(Debug, Clone)]
pub struct ReportUser {
    pub user: User,
    pub reseller_id: ResellerId,
    /// The tenant's time zone (IANA name).
    pub tenant_timezone: String,
    /// The reseller's portal, if it configured one.
    pub portal_url: Option<String>,
}

impl ReportUser {
    /// The user's own scope (what their report may show).
    pub fn scope(&self) -> Scope {
        Scope::User {
            reseller_id: self.reseller_id.clone(),
            tenant_id: self.user.tenant_id.clone(),
            user_id: self.user.id.clone(),
        }
    }
}

/// UNSCOPED: active users with quarantined messages received in `(after, until]`, for the
/// report scheduler only (it acts for every tenant and builds each user's scope from the
/// row). Never call this from a request handler.
pub async fn unscoped_users_with_quarantine_for_reports(
    db: &Db,
    after: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Vec<ReportUser>, StoreError> {
    with_conn!(db, conn => {
        let user_ids: Vec<UserId> = messages::table
            .filter(messages::state.eq("quarantined"))
            .filter(messages::received_at.gt(after))
            .filter(messages::received_at.le(until))
            .select(messages::user_id)
            .distinct()
            .load(conn)
            .await?;
        let mut out = Vec::with_capacity(user_ids.len());
        for chunk in user_ids.chunks(500) {
            let rows: Vec<(User, ResellerId, String, Option<String>)> = users::table
                .inner_join(tenants::table.on(tenants::id.eq(users::tenant_id)))
                .inner_join(resellers::table.on(resellers::id.eq(tenants::reseller_id)))
                .filter(users::id.eq_any(chunk.to_vec()))
                .filter(users::status.eq("active"))
                .order(users::id)
                .select((
                    User::as_select(),
                    tenants::reseller_id,
                    tenants::timezone,
                    resellers::portal_url,
                ))
                .load(conn)
                .await?;
            out.extend(rows.into_iter().map(|(user, reseller_id, tenant_timezone, portal_url)| {
                ReportUser { user, reseller_id, tenant_timezone, portal_url }
            }));
        }
        Ok(out)
    })
}

/// The user behind a link token with what a link page needs; `NotFound` for an unknown or
/// inactive user. UNSCOPED: the signed token is the caller's only credential, and names
/// the user; never call this with an id that did not come from a verified token.
pub async fn unscoped_user_for_link(db: &Db, user_id: &UserId) -> Result<ReportUser, StoreError> {
    let (user, reseller_id, tenant_timezone, portal_url) = with_conn!(db, conn => {
        users::table
            .inner_join(tenants::table.on(tenants::id.eq(users::tenant_id)))
            .inner_join(resellers::table.on(resellers::id.eq(tenants::reseller_id)))
            .filter(users::id.eq(user_id.clone()))
            .filter(users::status.eq("active"))
            .select((
                User::as_select(),
                tenants::reseller_id,
                tenants::timezone,
                resellers::portal_url,
            ))
            .first::<(User, ResellerId, String, Option<String>)>(conn)
            .await?
    });
    Ok(ReportUser {
        user,
        reseller_id,
        tenant_timezone,
        portal_url,
    })
}

/// The latest slot that ran for a user's quarantine report and what it covered.
pub async fn last_user_run(
    db: &Db,
    scope: &Scope,
    user_id: &UserId,
) -> Result<Option<(NaiveDateTime, NaiveDateTime)>, StoreError> {
    with_conn!(db, conn => {
        let query = crate::filter_tenant_scope!(report_runs::table.into_boxed(), scope, report_runs::tenant_id);
        Ok(query
            .filter(report_runs::user_id.eq(user_id.clone()))
            .order(report_runs::slot.desc())
            .select((report_runs::slot, report_runs::covered_until))
            .first(conn)
            .await
            .optional()?)
    })
}

/// The latest slot that ran for a report definition.
pub async fn last_definition_run(
    db: &Db,
    scope: &Scope,
    definition_id: &ReportDefinitionId,
) -> Result<Option<NaiveDateTime>, StoreError> {
    with_conn!(db, conn => {
        let query = crate::filter_tenant_scope!(report_runs::table.into_boxed(), scope, report_runs::tenant_id);
        Ok(query
            .filter(report_runs::definition_id.eq(definition_id.clone()))
            .order(report_runs::slot.desc())
            .select(report_runs::slot)
            .first(conn)
            .await
            .optional()?)
    })
}

/// Claims a report slot: inserts `run` and, in the same transaction, the email's message
/// log entry and delivery job. Returns false (and writes nothing) when the slot already ran,
/// e.g. because another worker claimed it first.
pub async fn claim_run(
    db: &Db,
    run: &ReportRun,
    log_entry: Option<&MessageLogEntry>,
    job: Option<&Job>,
) -> Result<bool, StoreError> {
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let inserted = diesel::insert_into(report_runs::table)
                .values(run)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if inserted == 0 {
                return Ok::<_, StoreError>(false);
            }
            if let Some(entry) = log_entry {
                diesel::insert_into(message_log::table)
                    .values(entry)
                    .execute(conn)
                    .await?;
            }
            if let Some(job) = job {
                diesel::insert_into(jobs::table)
                    .values(job)
                    .execute(conn)
                    .await?;
            }
            Ok(true)
        })
        .await
    })
}

/// Quarantined messages visible in `scope` (optionally of one domain) received in
/// `(after, until]`, newest first, at most `limit`.
pub async fn quarantined_between(
    db: &Db,
    scope: &Scope,
    domain_id: Option<&DomainId>,
    after: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<Message>, StoreError> {
    with_conn!(db, conn => {
        let mut query = crate::filter_tenant_scope!(messages::table.into_boxed(), scope, messages::tenant_id);
        if let Some(user_id) = scope.user_id() {
            query = query.filter(messages::user_id.eq(user_id.clone()));
        }
        if let Some(domain_id) = domain_id {
            query = query.filter(messages::domain_id.eq(domain_id.clone()));
        }
        Ok(query
            .filter(messages::state.eq("quarantined"))
            .filter(messages::received_at.gt(after))
            .filter(messages::received_at.le(until))
            .order((messages::received_at.desc(), messages::id.desc()))
            .limit(limit)
            .select(Message::as_select())
            .load(conn)
            .await?)
    })
}

/// Records that the action token `jti` was used; false when it already was (a replay).
pub async fn use_link_token(
    db: &Db,
    scope: &Scope,
    jti: &str,
    purpose: &str,
) -> Result<bool, StoreError> {
    let (Some(tenant_id), Some(user_id)) = (scope.tenant_id(), scope.user_id()) else {
        return Err(StoreError::NotFound);
    };
    with_conn!(db, conn => {
        let inserted = diesel::insert_into(used_link_tokens::table)
            .values((
                used_link_tokens::jti.eq(jti),
                used_link_tokens::tenant_id.eq(tenant_id.clone()),
                used_link_tokens::user_id.eq(user_id.clone()),
                used_link_tokens::purpose.eq(purpose),
                used_link_tokens::used_at.eq(crate::now()),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(inserted == 1)
    })
}

/// Whether the action token `jti` of the user in `scope` was used.
pub async fn link_token_used(db: &Db, scope: &Scope, jti: &str) -> Result<bool, StoreError> {
    let Some(user_id) = scope.user_id() else {
        return Err(StoreError::NotFound);
    };
    with_conn!(db, conn => {
        let found: Option<String> = used_link_tokens::table
            .filter(used_link_tokens::jti.eq(jti))
            .filter(used_link_tokens::user_id.eq(user_id.clone()))
            .select(used_link_tokens::jti)
            .first(conn)
            .await
            .optional()?;
        Ok(found.is_some())
    })
}

/// Forgets a used token again (its action failed, so the link may be tried once more).
pub async fn unuse_link_token(db: &Db, scope: &Scope, jti: &str) -> Result<(), StoreError> {
    let Some(user_id) = scope.user_id() else {
        return Err(StoreError::NotFound);
    };
    with_conn!(db, conn => {
        diesel::delete(
            used_link_tokens::table
                .filter(used_link_tokens::jti.eq(jti))
                .filter(used_link_tokens::user_id.eq(user_id.clone())),
        )
        .execute(conn)
        .await?;
        Ok(())
    })
}

/// Report definitions visible in `scope`, optionally of one domain (`Some(None)`: the
/// tenant-wide ones), oldest first.
pub async fn list_definitions(
    db: &Db,
    scope: &Scope,
    tenant_id: Option<&TenantId>,
) -> Result<Vec<ReportDefinition>, StoreError> {
    with_conn!(db, conn => {
        let mut query = crate::filter_tenant_scope!(report_definitions::table.into_boxed(), scope, report_definitions::tenant_id);
        if let Some(tenant_id) = tenant_id {
            query = query.filter(report_definitions::tenant_id.eq(tenant_id.clone()));
        }
        Ok(query
            .order(report_definitions::id)
            .select(ReportDefinition::as_select())
            .load(conn)
            .await?)
    })
}

/// UNSCOPED: every report definition, for the report scheduler only.
pub async fn unscoped_all_definitions_for_reports(
    db: &Db,
) -> Result<Vec<(ReportDefinition, ResellerId, String)>, StoreError> {
    with_conn!(db, conn => {
        Ok(report_definitions::table
            .inner_join(tenants::table.on(tenants::id.eq(report_definitions::tenant_id)))
            .order(report_definitions::id)
            .select((ReportDefinition::as_select(), tenants::reseller_id, tenants::timezone))
            .load(conn)
            .await?)
    })
}

/// One report definition visible in `scope`.
pub async fn get_definition(
    db: &Db,
    scope: &Scope,
    id: &ReportDefinitionId,
) -> Result<ReportDefinition, StoreError> {
    with_conn!(db, conn => {
        let query = crate::filter_tenant_scope!(report_definitions::table.into_boxed(), scope, report_definitions::tenant_id);
        Ok(query
            .filter(report_definitions::id.eq(id.clone()))
            .select(ReportDefinition::as_select())
            .first(conn)
            .await?)
    })
}

/// Stores a new report definition (the caller checked the tenant and domain are in scope).
pub async fn create_definition(
    db: &Db,
    row: ReportDefinition,
) -> Result<ReportDefinition, StoreError> {
    with_conn!(db, conn => {
        diesel::insert_into(report_definitions::table)
            .values(&row)
            .execute(conn)
            .await?;
        Ok(row)
    })
}

/// Changes a report definition visible in `scope`.
pub async fn update_definition(
    db: &Db,
    scope: &Scope,
    id: &ReportDefinitionId,
    changes: ReportDefinitionChanges,
) -> Result<ReportDefinition, StoreError> {
    let existing = get_definition(db, scope, id).await?;
    with_conn!(db, conn => {
        diesel::update(report_definitions::table.find(existing.id.clone()))
            .set(&changes)
            .execute(conn)
            .await?;
        Ok::<_, StoreError>(())
    })?;
    get_definition(db, scope, id).await
}

/// Deletes a report definition visible in `scope`.
pub async fn delete_definition(
    db: &Db,
    scope: &Scope,
    id: &ReportDefinitionId,
) -> Result<(), StoreError> {
    let existing = get_definition(db, scope, id).await?;
    with_conn!(db, conn => {
        diesel::delete(report_definitions::table.find(existing.id))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Messages per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrafficTotals {
    pub clean: i64,
    pub newsletter: i64,
    pub spam: i64,
    pub phishing: i64,
    pub virus: i64,
    pub rejected: i64,
}

impl TrafficTotals {
    /// All messages.
    pub fn total(&self) -> i64 {
        self.clean + self.newsletter + self.spam + self.phishing + self.virus + self.rejected
    }

    /// `(label, this period, previous period)` per outcome, then the total.
    pub fn rows(&self, previous: &TrafficTotals) -> [(&'static str, i64, i64); 7] {
        [
            ("clean", self.clean, previous.clean),
            ("newsletter", self.newsletter, previous.newsletter),
            ("spam", self.spam, previous.spam),
            ("phishing", self.phishing, previous.phishing),
            ("virus", self.virus, previous.virus),
            ("rejected", self.rejected, previous.rejected),
            ("total", self.total(), previous.total()),
        ]
    }

    fn add(&mut self, c: &TrafficCounter) {
        self.clean += c.clean;
        self.newsletter += c.newsletter;
        self.spam += c.spam;
        self.phishing += c.phishing;
        self.virus += c.virus;
        self.rejected += c.rejected;
    }
}

/// Received-mail statistics of a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficStatistics {
    pub totals: TrafficTotals,
    /// Most frequent envelope senders of stored messages, with their counts.
    pub top_senders: Vec<(String, i64)>,
    /// Most frequent recipients of stored messages, with their counts.
    pub top_recipients: Vec<(String, i64)>,
}

/// Statistics of mail received in `[from, to)` visible in `scope`, optionally of one
/// domain; the top lists have at most `top` entries.
pub async fn statistics(
    db: &Db,
    scope: &Scope,
    domain_id: Option<&DomainId>,
    from: NaiveDateTime,
    to: NaiveDateTime,
    top: i64,
) -> Result<TrafficStatistics, StoreError> {
    let (counters, top_senders, top_recipients) = with_conn!(db, conn => {
        let mut query = crate::filter_tenant_scope!(traffic_counters::table.into_boxed(), scope, traffic_counters::tenant_id);
        if let Some(domain_id) = domain_id {
            query = query.filter(traffic_counters::domain_id.eq(domain_id.clone()));
        }
        let counters: Vec<TrafficCounter> = query
            .filter(traffic_counters::hour.ge(from).and(traffic_counters::hour.lt(to)))
            .select(TrafficCounter::as_select())
            .load(conn)
            .await?;
        macro_rules! top_by {
            ($column:expr) => {{
                let grouped = messages::table
                    .group_by($column)
                    .select(($column, diesel::dsl::count_star()))
                    .into_boxed();
                let mut query = crate::filter_tenant_scope!(grouped, scope, messages::tenant_id);
                if let Some(domain_id) = domain_id {
                    query = query.filter(messages::domain_id.eq(domain_id.clone()));
                }
                let rows: Vec<(String, i64)> = query
                    .filter(messages::received_at.ge(from).and(messages::received_at.lt(to)))
                    .order((diesel::dsl::count_star().desc(), $column.asc()))
                    .limit(top)
                    .load(conn)
                    .await?;
                rows
            }};
        }
        let senders = top_by!(messages::mail_from);
        let recipients = top_by!(messages::recipient);
        (counters, senders, recipients)
    });
    let mut totals = TrafficTotals::default();
    for counter in &counters {
        totals.add(counter);
    }
    Ok(TrafficStatistics {
        totals,
        top_senders,
        top_recipients,
    })
}

/// The change from `previous` to `current` in percent, `None` when `previous` is 0.
pub fn change_percent(current: i64, previous: i64) -> Option<f64> {
    (previous != 0).then(|| ((current - previous) as f64 / previous as f64 * 1000.0).round() / 10.0)
}
