//! Domain and tenant reports: definitions (what, how often, to whom) and the same reports
//! on demand. The scheduler (`cleanmail_worker::reports`) sends them by email.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cleanmail_core::address::EmailAddress;
use cleanmail_core::schedule::ReportFrequency;
use cleanmail_schema::models as m;
use cleanmail_schema::store::reports::{self as store, change_percent};
use cleanmail_schema::store::{domains, tenants};
use cleanmail_schema::{DomainId, Page as StorePage, ReportDefinitionId, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::users::check_language;
use super::{Page, PageParams, utc};
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState, Validator};

/// What a report shows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// The quarantined messages of the domain (or every domain of the tenant).
    Quarantine,
    /// Received mail by outcome, with the trend and top senders and recipients.
    Statistics,
}

impl ReportKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Quarantine => "quarantine",
            Self::Statistics => "statistics",
        }
    }

    fn from_stored(s: &str) -> Self {
        if s == "statistics" {
            Self::Statistics
        } else {
            Self::Quarantine
        }
    }
}

/// How often a report is sent: daily at 07:00, weekly on Monday at 07:00, monthly on the
/// 1st at 07:00, in the tenant's time zone; each covers the period that just ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
#[graphql(name = "ReportDefinitionFrequency")]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
}

impl Frequency {
    fn core(self) -> ReportFrequency {
        match self {
            Self::Daily => ReportFrequency::Daily,
            Self::Weekly => ReportFrequency::Weekly,
            Self::Monthly => ReportFrequency::Monthly,
        }
    }

    fn from_stored(s: &str) -> Self {
        match ReportFrequency::parse(s) {
            Some(ReportFrequency::Daily) => Self::Daily,
            Some(ReportFrequency::Monthly) => Self::Monthly,
            _ => Self::Weekly,
        }
    }
}

/// A report a tenant admin set up for the tenant or one domain.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct ReportDefinition {
    pub id: String,
    pub tenant_id: String,
    /// The domain reported on; absent: every domain of the tenant.
    pub domain_id: Option<String>,
    pub name: String,
    pub kind: ReportKind,
    pub frequency: Frequency,
    /// Where it is sent (may be outside the tenant's domains).
    pub recipients: Vec<String>,
    /// `en`, `fr`, `de` or `it`.
    pub language: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<m::ReportDefinition> for ReportDefinition {
    fn from(d: m::ReportDefinition) -> Self {
        Self {
            id: d.id.0,
            tenant_id: d.tenant_id.0,
            domain_id: d.domain_id.map(|d| d.0),
            name: d.name,
            kind: ReportKind::from_stored(&d.kind),
            frequency: Frequency::from_stored(&d.frequency),
            recipients: serde_json::from_str(&d.recipients).unwrap_or_default(),
            language: d.language,
            created_at: utc(d.created_at),
            updated_at: utc(d.updated_at),
        }
    }
}

/// Input to create a report definition: for a domain (`domain_id`) or a whole tenant
/// (`tenant_id` only).
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CreateReportDefinition {
    pub tenant_id: Option<String>,
    pub domain_id: Option<String>,
    pub name: String,
    pub kind: ReportKind,
    pub frequency: Frequency,
    pub recipients: Vec<String>,
    /// Default `en`.
    pub language: Option<String>,
}

/// Changes to a report definition; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct UpdateReportDefinition {
    pub name: Option<String>,
    pub kind: Option<ReportKind>,
    pub frequency: Option<Frequency>,
    pub recipients: Option<Vec<String>>,
    pub language: Option<String>,
}

/// Filters for listing report definitions.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "ReportDefinitionFilter")]
pub struct ReportDefinitionFilter {
    pub tenant_id: Option<String>,
}

fn check_name(v: &mut Validator, name: &str) -> String {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        v.error("name", "must be 1 to 200 characters");
    }
    name.to_owned()
}

fn check_recipients(v: &mut Validator, recipients: &[String]) -> String {
    let mut out = Vec::new();
    if recipients.is_empty() || recipients.len() > 50 {
        v.error("recipients", "must list 1 to 50 addresses");
    }
    for (i, address) in recipients.iter().enumerate() {
        match EmailAddress::parse(address) {
            Ok(a) => out.push(a.to_string()),
            Err(e) => v.error(&format!("recipients[{i}]"), e.to_string()),
        }
    }
    serde_json::to_string(&out).expect("a list of strings serialises")
}

pub async fn list(
    state: &AppState,
    who: &Principal,
    filter: &ReportDefinitionFilter,
    _page: &PageParams,
) -> Result<Page<ReportDefinition>, ApiError> {
    who.require(Role::TenantAdmin)?;
    let tenant_id = filter.tenant_id.clone().map(TenantId);
    let rows = store::list_definitions(&state.db, &who.scope, tenant_id.as_ref()).await?;
    Ok(Page::from_store(
        StorePage {
            items: rows,
            next_cursor: None,
        },
        ReportDefinition::from,
    ))
}

pub async fn get(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<ReportDefinition, ApiError> {
    who.require(Role::TenantAdmin)?;
    Ok(
        store::get_definition(&state.db, &who.scope, &ReportDefinitionId(id.to_owned()))
            .await?
            .into(),
    )
}

pub async fn create(
    state: &AppState,
    who: &Principal,
    input: CreateReportDefinition,
) -> Result<ReportDefinition, ApiError> {
    let (tenant_id, domain_id) = match (&input.domain_id, &input.tenant_id) {
        (Some(domain_id), _) => {
            let domain = domains::get(&state.db, &who.scope, &DomainId(domain_id.clone())).await?;
            if input
                .tenant_id
                .as_ref()
                .is_some_and(|t| *t != domain.tenant_id.0)
            {
                return Err(ApiError::invalid(
                    "tenant_id",
                    "is not the tenant of the domain",
                ));
            }
            (domain.tenant_id, Some(domain.id))
        }
        (None, Some(tenant_id)) => {
            let tenant = tenants::get(&state.db, &who.scope, &TenantId(tenant_id.clone())).await?;
            (tenant.id, None)
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "tenant_id",
                "give a domain_id or a tenant_id",
            ));
        }
    };
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let name = check_name(&mut v, &input.name);
    let recipients = check_recipients(&mut v, &input.recipients);
    let language = check_language(&mut v, input.language.as_deref().unwrap_or("en"));
    v.finish()?;
    let now = cleanmail_schema::now();
    let row = m::ReportDefinition {
        id: ReportDefinitionId::new(),
        tenant_id,
        domain_id,
        name,
        kind: input.kind.as_str().to_owned(),
        frequency: input.frequency.core().as_str().to_owned(),
        recipients,
        language,
        created_at: now,
        updated_at: now,
    };
    Ok(store::create_definition(&state.db, row).await?.into())
}

pub async fn update(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: UpdateReportDefinition,
) -> Result<ReportDefinition, ApiError> {
    let id = ReportDefinitionId(id.to_owned());
    store::get_definition(&state.db, &who.scope, &id).await?;
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let changes = m::ReportDefinitionChanges {
        name: input.name.as_deref().map(|n| check_name(&mut v, n)),
        kind: input.kind.map(|k| k.as_str().to_owned()),
        frequency: input.frequency.map(|f| f.core().as_str().to_owned()),
        recipients: input
            .recipients
            .as_deref()
            .map(|r| check_recipients(&mut v, r)),
        language: input.language.as_deref().map(|l| check_language(&mut v, l)),
        updated_at: Some(cleanmail_schema::now()),
    };
    v.finish()?;
    Ok(
        store::update_definition(&state.db, &who.scope, &id, changes)
            .await?
            .into(),
    )
}

pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let id = ReportDefinitionId(id.to_owned());
    store::get_definition(&state.db, &who.scope, &id).await?;
    who.require(Role::TenantAdmin)?;
    Ok(store::delete_definition(&state.db, &who.scope, &id).await?)
}

/// Messages of one outcome in a period and the one before.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct StatisticsLine {
    /// `clean`, `newsletter`, `spam`, `phishing`, `virus`, `rejected` or `total`.
    pub outcome: String,
    pub count: i64,
    pub previous: i64,
    /// Change from the previous period in percent (absent when it had none).
    pub change_percent: Option<f64>,
}

/// An address and how many messages it had.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct AddressCount {
    pub address: String,
    pub count: i64,
}

/// Received-mail statistics of a period.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct Statistics {
    pub lines: Vec<StatisticsLine>,
    pub top_senders: Vec<AddressCount>,
    pub top_recipients: Vec<AddressCount>,
}

/// One quarantined message in a domain or tenant quarantine report.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct QuarantinedItem {
    pub id: String,
    pub received_at: DateTime<Utc>,
    pub recipient: String,
    pub mail_from: String,
    pub from_header: String,
    pub subject: String,
    pub category: String,
    pub score: f64,
}

/// A report's content for its latest complete period.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct ReportData {
    pub definition_id: String,
    pub kind: ReportKind,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// `statistics` reports.
    pub statistics: Option<Statistics>,
    /// `quarantine` reports (newest first, at most 1000).
    pub quarantined: Option<Vec<QuarantinedItem>>,
}

/// The report of a definition for its latest complete period at `at` (default now).
pub async fn data(
    state: &AppState,
    who: &Principal,
    id: &str,
    at: Option<DateTime<Utc>>,
) -> Result<ReportData, ApiError> {
    let definition =
        store::get_definition(&state.db, &who.scope, &ReportDefinitionId(id.to_owned())).await?;
    who.require(Role::TenantAdmin)?;
    let tenant = tenants::get(&state.db, &who.scope, &definition.tenant_id).await?;
    let tz: Tz = tenant.timezone.parse().unwrap_or(chrono_tz::Europe::Zurich);
    let frequency = Frequency::from_stored(&definition.frequency).core();
    let (start, end) = frequency.last_period(tz, at.unwrap_or_else(Utc::now));
    let kind = ReportKind::from_stored(&definition.kind);
    let domain = definition.domain_id.as_ref();
    let (statistics, quarantined) = match kind {
        ReportKind::Statistics => {
            let (previous_start, _) = frequency.period_ending(tz, start);
            let now = store::statistics(
                &state.db,
                &who.scope,
                domain,
                start.naive_utc(),
                end.naive_utc(),
                10,
            )
            .await?;
            let before = store::statistics(
                &state.db,
                &who.scope,
                domain,
                previous_start.naive_utc(),
                start.naive_utc(),
                0,
            )
            .await?;
            let lines = now
                .totals
                .rows(&before.totals)
                .iter()
                .map(|&(outcome, count, previous)| StatisticsLine {
                    outcome: outcome.to_owned(),
                    count,
                    previous,
                    change_percent: change_percent(count, previous),
                })
                .collect();
            let counts = |list: Vec<(String, i64)>| {
                list.into_iter()
                    .map(|(address, count)| AddressCount { address, count })
                    .collect()
            };
            (
                Some(Statistics {
                    lines,
                    top_senders: counts(now.top_senders),
                    top_recipients: counts(now.top_recipients),
                }),
                None,
            )
        }
        ReportKind::Quarantine => {
            let rows = store::quarantined_between(
                &state.db,
                &who.scope,
                domain,
                start.naive_utc(),
                end.naive_utc(),
                1000,
            )
            .await?;
            let items = rows
                .into_iter()
                .map(|m| QuarantinedItem {
                    id: m.id.0,
                    received_at: utc(m.received_at),
                    recipient: m.recipient,
                    mail_from: m.mail_from,
                    from_header: m.from_header,
                    subject: m.subject,
                    category: m.category,
                    score: m.score,
                })
                .collect();
            (None, Some(items))
        }
    };
    Ok(ReportData {
        definition_id: definition.id.0,
        kind,
        period_start: start,
        period_end: end,
        statistics,
        quarantined,
    })
}

/// A statistics report as CSV: `outcome,count,previous,change_percent`, then the top lists
/// as `top_sender,<address>,<count>,` and `top_recipient,<address>,<count>,`.
pub fn statistics_csv(data: &ReportData) -> Result<String, ApiError> {
    let Some(stats) = &data.statistics else {
        return Err(ApiError::BadRequest(
            "CSV is available for statistics reports".into(),
        ));
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::Internal(e.to_string());
    out.write_record(["outcome", "count", "previous", "change_percent"])
        .map_err(internal)?;
    for line in &stats.lines {
        out.write_record([
            line.outcome.clone(),
            line.count.to_string(),
            line.previous.to_string(),
            line.change_percent
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ])
        .map_err(internal)?;
    }
    for (label, list) in [
        ("top_sender", &stats.top_senders),
        ("top_recipient", &stats.top_recipients),
    ] {
        for entry in list {
            out.write_record([
                label.to_owned(),
                entry.address.clone(),
                entry.count.to_string(),
                String::new(),
            ])
            .map_err(internal)?;
        }
    }
    let bytes = out
        .into_inner()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(e.to_string()))
}
