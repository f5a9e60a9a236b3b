//! Bulk address import and export (`address,type,target,display_name` CSV), for a domain
//! or a whole tenant: a dry run reports per line what would happen; the real run applies
//! everything in one transaction or nothing, and running it again changes nothing.

use std::collections::{HashMap, HashSet};

use cleanmail_core::address::EmailAddress;
use cleanmail_schema::models as m;
use cleanmail_schema::store::{aliases, domains, tenants, users};
use cleanmail_schema::{AliasId, DomainId, PageRequest, Scope, TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::users::AddressStatus;
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState};

/// At most this many data lines per import.
pub const MAX_LINES: usize = 100_000;

/// Where an import or export applies: a domain, or every domain of a tenant.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
pub struct ImportTarget {
    pub tenant_id: Option<String>,
    pub domain_id: Option<String>,
}

/// What happens (or happened) to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, async_graphql::Enum)]
#[serde(rename_all = "snake_case")]
pub enum LineOutcome {
    Created,
    Updated,
    Unchanged,
    Rejected,
}

/// The report on one CSV line.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct ImportLine {
    /// 1-based line number in the file.
    pub line: u32,
    pub address: String,
    /// `user` or `alias`.
    pub kind: String,
    pub outcome: LineOutcome,
    /// Why the line was rejected.
    pub reason: Option<String>,
}

/// Counts per outcome.
#[derive(Debug, Clone, Default, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct ImportSummary {
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub rejected: u32,
}

/// The result of an import.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Whether the changes were written (never on a dry run or when a line is rejected).
    pub applied: bool,
    pub summary: ImportSummary,
    pub lines: Vec<ImportLine>,
}

struct Row {
    line: u32,
    address: Result<EmailAddress, String>,
    raw_address: String,
    kind: String,
    target: String,
    display_name: String,
}

struct Context {
    tenant_id: TenantId,
    scope: Scope,
    domains: HashMap<String, DomainId>,
}

async fn context(
    state: &AppState,
    who: &Principal,
    target: &ImportTarget,
) -> Result<Context, ApiError> {
    let (tenant, only_domain) = match (&target.domain_id, &target.tenant_id) {
        (Some(domain_id), _) => {
            let domain = domains::get(&state.db, &who.scope, &DomainId(domain_id.clone())).await?;
            let tenant = tenants::get(&state.db, &who.scope, &domain.tenant_id).await?;
            if target.tenant_id.as_ref().is_some_and(|t| *t != tenant.id.0) {
                return Err(ApiError::invalid(
                    "domain_id",
                    "is not a domain of tenant_id",
                ));
            }
            (tenant, Some(domain))
        }
        (None, Some(tenant_id)) => (
            tenants::get(&state.db, &who.scope, &TenantId(tenant_id.clone())).await?,
            None,
        ),
        (None, None) => {
            return Err(ApiError::invalid(
                "tenant_id",
                "give tenant_id or domain_id",
            ));
        }
    };
    who.require(Role::TenantAdmin)?;
    let scope = Scope::Tenant {
        reseller_id: tenant.reseller_id.clone(),
        tenant_id: tenant.id.clone(),
    };
    let domains = match only_domain {
        Some(domain) => HashMap::from([(domain.name, domain.id)]),
        None => {
            let mut all = HashMap::new();
            let mut page = PageRequest {
                after: None,
                limit: Some(PageRequest::MAX_LIMIT),
            };
            loop {
                let filter = domains::DomainFilter {
                    tenant_id: Some(tenant.id.clone()),
                    ..Default::default()
                };
                let got = domains::list(&state.db, &scope, &filter, &page).await?;
                all.extend(got.items.into_iter().map(|d| (d.name, d.id)));
                match got.next_cursor {
                    Some(cursor) => page.after = Some(cursor),
                    None => break,
                }
            }
            all
        }
    };
    Ok(Context {
        tenant_id: tenant.id,
        scope,
        domains,
    })
}

fn parse_csv(csv_text: &str) -> Result<Vec<Row>, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(csv_text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| ApiError::invalid("csv", format!("unreadable CSV: {e}")))?;
        let line = record.position().map(|p| p.line() as u32).unwrap_or(0);
        let field = |i: usize| record.get(i).unwrap_or("").to_owned();
        if rows.is_empty() && field(0).eq_ignore_ascii_case("address") {
            continue; // header
        }
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let raw_address = field(0);
        rows.push(Row {
            line,
            address: EmailAddress::parse(&raw_address).map_err(|e| format!("address {e}")),
            raw_address,
            kind: field(1).to_ascii_lowercase(),
            target: field(2),
            display_name: field(3),
        });
        if rows.len() > MAX_LINES {
            return Err(ApiError::invalid(
                "csv",
                format!("at most {MAX_LINES} lines per import"),
            ));
        }
    }
    Ok(rows)
}

/// Plans (and unless `dry_run`, applies) an import.
pub async fn import(
    state: &AppState,
    who: &Principal,
    target: &ImportTarget,
    csv_text: &str,
    dry_run: bool,
) -> Result<ImportReport, ApiError> {
    let ctx = context(state, who, target).await?;
    let rows = parse_csv(csv_text)?;

    let mut wanted: Vec<String> = Vec::new();
    for row in &rows {
        if let Ok(a) = &row.address {
            wanted.push(a.to_string());
        }
        if let Ok(t) = EmailAddress::parse(&row.target) {
            wanted.push(t.to_string());
        }
    }
    wanted.sort();
    wanted.dedup();
    let existing_users: HashMap<String, m::User> =
        users::by_addresses(&state.db, &ctx.scope, &wanted)
            .await?
            .into_iter()
            .map(|u| (u.address.clone(), u))
            .collect();
    let existing_aliases: HashMap<String, m::Alias> =
        aliases::by_addresses(&state.db, &ctx.scope, &wanted)
            .await?
            .into_iter()
            .map(|a| (a.address.clone(), a))
            .collect();
    let claims: HashMap<String, TenantId> = users::claimed(&state.db, &wanted)
        .await?
        .into_iter()
        .collect();

    let now = cleanmail_schema::now();
    let mut changeset = users::Changeset::default();
    let mut lines: Vec<ImportLine> = Vec::with_capacity(rows.len());
    let mut seen: HashSet<String> = HashSet::new();
    let mut new_user_ids: HashMap<String, UserId> = HashMap::new();

    // Users first, so aliases in the same file can point at them.
    let (user_rows, other_rows): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| r.kind == "user");
    for row in user_rows.into_iter().chain(other_rows) {
        let mut report = ImportLine {
            line: row.line,
            address: row
                .address
                .as_ref()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| row.raw_address.clone()),
            kind: row.kind.clone(),
            outcome: LineOutcome::Rejected,
            reason: None,
        };
        match plan_row(
            row,
            &ctx,
            &existing_users,
            &existing_aliases,
            &claims,
            &mut seen,
            &mut new_user_ids,
            &mut changeset,
            now,
        ) {
            Ok(outcome) => report.outcome = outcome,
            Err(reason) => report.reason = Some(reason),
        }
        lines.push(report);
    }
    lines.sort_by_key(|l| l.line);

    let mut summary = ImportSummary::default();
    for l in &lines {
        match l.outcome {
            LineOutcome::Created => summary.created += 1,
            LineOutcome::Updated => summary.updated += 1,
            LineOutcome::Unchanged => summary.unchanged += 1,
            LineOutcome::Rejected => summary.rejected += 1,
        }
    }
    let applied = !dry_run && summary.rejected == 0;
    if applied {
        users::apply(&state.db, changeset).await?;
    }
    Ok(ImportReport {
        dry_run,
        applied,
        summary,
        lines,
    })
}

#[expect(
    clippy::too_many_arguments,
    reason = "one planning step over the import's shared maps"
)]
fn plan_row(
    row: &Row,
    ctx: &Context,
    existing_users: &HashMap<String, m::User>,
    existing_aliases: &HashMap<String, m::Alias>,
    claims: &HashMap<String, TenantId>,
    seen: &mut HashSet<String>,
    new_user_ids: &mut HashMap<String, UserId>,
    changeset: &mut users::Changeset,
    now: chrono::NaiveDateTime,
) -> Result<LineOutcome, String> {
    let address = row.address.clone()?;
    let key = address.to_string();
    if !seen.insert(key.clone()) {
        return Err("the address appears more than once in the file".into());
    }
    let domain_id = ctx.domains.get(address.domain()).ok_or_else(|| {
        format!(
            "the domain {} is not part of this import's scope",
            address.domain()
        )
    })?;
    let claimed_elsewhere = claims.get(&key).is_some_and(|t| *t != ctx.tenant_id);
    if claimed_elsewhere {
        return Err("the address belongs to another customer".into());
    }
    let display_name = row.display_name.trim();
    if display_name.chars().count() > 200 {
        return Err("display_name must be at most 200 characters".into());
    }
    match row.kind.as_str() {
        "user" => {
            if existing_aliases.contains_key(&key) {
                return Err("the address is an alias; delete the alias first".into());
            }
            if let Some(user) = existing_users.get(&key) {
                if !display_name.is_empty() && display_name != user.display_name {
                    changeset.user_updates.push((
                        user.id.clone(),
                        m::UserChanges {
                            display_name: Some(display_name.to_owned()),
                            updated_at: Some(now),
                            ..Default::default()
                        },
                    ));
                    return Ok(LineOutcome::Updated);
                }
                return Ok(LineOutcome::Unchanged);
            }
            let id = UserId::new();
            new_user_ids.insert(key.clone(), id.clone());
            changeset.new_users.push(m::User {
                id,
                tenant_id: ctx.tenant_id.clone(),
                domain_id: domain_id.clone(),
                display_name: if display_name.is_empty() {
                    address.local_part().to_owned()
                } else {
                    display_name.to_owned()
                },
                address: key,
                role: "user".into(),
                language: "en".into(),
                status: AddressStatus::Unverified.as_str().into(),
                password_hash: None,
                created_at: now,
                updated_at: now,
            });
            Ok(LineOutcome::Created)
        }
        "alias" => {
            let target = EmailAddress::parse(&row.target)
                .map_err(|e| format!("target {e}"))?
                .to_string();
            let target_id = existing_users
                .get(&target)
                .map(|u| u.id.clone())
                .or_else(|| new_user_ids.get(&target).cloned())
                .ok_or_else(|| format!("the target user {target} does not exist in this tenant"))?;
            if existing_users.contains_key(&key) {
                return Err(
                    "the address is a user; an address is either a user or an alias".into(),
                );
            }
            if let Some(alias) = existing_aliases.get(&key) {
                if alias.user_id != target_id {
                    changeset.alias_updates.push((
                        alias.id.clone(),
                        m::AliasChanges {
                            user_id: Some(target_id),
                            updated_at: Some(now),
                            ..Default::default()
                        },
                    ));
                    return Ok(LineOutcome::Updated);
                }
                return Ok(LineOutcome::Unchanged);
            }
            changeset.new_aliases.push(m::Alias {
                id: AliasId::new(),
                tenant_id: ctx.tenant_id.clone(),
                domain_id: domain_id.clone(),
                user_id: target_id,
                address: key,
                status: AddressStatus::Unverified.as_str().into(),
                created_at: now,
                updated_at: now,
            });
            Ok(LineOutcome::Created)
        }
        other => Err(format!("type must be `user` or `alias`, not `{other}`")),
    }
}

/// Exports the users and aliases of a domain or tenant in the import format.
pub async fn export(
    state: &AppState,
    who: &Principal,
    target: &ImportTarget,
) -> Result<String, ApiError> {
    let ctx = context(state, who, target).await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| ApiError::Internal(format!("writing CSV: {e}"));
    writer
        .write_record(["address", "type", "target", "display_name"])
        .map_err(csv_err)?;
    let mut addresses_by_user: HashMap<UserId, String> = HashMap::new();
    let mut page = PageRequest {
        after: None,
        limit: Some(PageRequest::MAX_LIMIT),
    };
    let domain_ids: HashSet<&DomainId> = ctx.domains.values().collect();
    loop {
        let filter = users::UserFilter {
            tenant_id: Some(ctx.tenant_id.clone()),
            ..Default::default()
        };
        let got = users::list(&state.db, &ctx.scope, &filter, &page).await?;
        for u in &got.items {
            addresses_by_user.insert(u.id.clone(), u.address.clone());
            if domain_ids.contains(&u.domain_id) {
                writer
                    .write_record([u.address.as_str(), "user", "", u.display_name.as_str()])
                    .map_err(csv_err)?;
            }
        }
        match got.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    let mut page = PageRequest {
        after: None,
        limit: Some(PageRequest::MAX_LIMIT),
    };
    loop {
        let filter = aliases::AliasFilter {
            tenant_id: Some(ctx.tenant_id.clone()),
            ..Default::default()
        };
        let got = aliases::list(&state.db, &ctx.scope, &filter, &page).await?;
        for a in got
            .items
            .iter()
            .filter(|a| domain_ids.contains(&a.domain_id))
        {
            let target = addresses_by_user
                .get(&a.user_id)
                .map(String::as_str)
                .unwrap_or("");
            writer
                .write_record([a.address.as_str(), "alias", target, ""])
                .map_err(csv_err)?;
        }
        match got.next_cursor {
            Some(cursor) => page.after = Some(cursor),
            None => break,
        }
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(e.to_string()))
}
