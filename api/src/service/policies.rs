//! Filtering policies: CRUD, assignment to tenants, overrides on domains and users, and the
//! explanation of an effective policy.
//!
//! The API shapes here mirror `cleanmail_core::policy` with plain fields (so both REST and
//! GraphQL can read and write them); every value is validated through core's types and
//! reported field by field (`settings.report.at`, `lists.allow[2]`, …).

use chrono::{DateTime, Utc};
use cleanmail_core::policy as core;
use cleanmail_schema::models as m;
use cleanmail_schema::store::{policies as store, resellers, tenants};
use cleanmail_schema::{DomainId, PolicyId, ResellerId, Scope, TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageParams, required_text, utc};
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState, Validator};

/// At most this many entries per allow or block list of one level.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// What happens to a message of a category.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    /// Deliver unchanged.
    Deliver,
    /// Deliver with a subject prefix.
    Tag,
    /// Keep in quarantine.
    Quarantine,
    /// Refuse at SMTP time.
    Reject,
}

impl From<core::Disposition> for PolicyAction {
    fn from(d: core::Disposition) -> Self {
        match d {
            core::Disposition::Deliver => Self::Deliver,
            core::Disposition::Tag => Self::Tag,
            core::Disposition::Quarantine => Self::Quarantine,
            core::Disposition::Reject => Self::Reject,
        }
    }
}

impl From<PolicyAction> for core::Disposition {
    fn from(a: PolicyAction) -> Self {
        match a {
            PolicyAction::Deliver => Self::Deliver,
            PolicyAction::Tag => Self::Tag,
            PolicyAction::Quarantine => Self::Quarantine,
            PolicyAction::Reject => Self::Reject,
        }
    }
}

/// Spam score thresholds: `tag <= quarantine <= reject`.
#[derive(
    Debug,
    Clone,
    Serialize,
    Deserialize,
    ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "SpamThresholdsInput")]
pub struct SpamThresholds {
    /// From this score on, deliver with the spam subject tag.
    pub tag: f64,
    /// From this score on, the message is spam and gets the spam action.
    pub quarantine: f64,
    /// From this score on, reject at SMTP time; absent: never.
    pub reject: Option<f64>,
}

/// The action for each category.
#[derive(
    Debug,
    Clone,
    Serialize,
    Deserialize,
    ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "CategoryActionsInput")]
pub struct CategoryActions {
    pub clean: PolicyAction,
    pub newsletter: PolicyAction,
    pub spam: PolicyAction,
    pub phishing: PolicyAction,
    pub virus: PolicyAction,
}

/// How often quarantine reports are sent.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportFrequency {
    /// No quarantine report.
    Never,
    /// Once a day at `at`.
    Daily,
    /// Twice a day, at `at` and `second_at`.
    TwiceDaily,
    /// Once a week, on `weekday` at `at`.
    Weekly,
    /// Once a month, on `day_of_month` at `at`.
    Monthly,
}

/// A day of the week.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<core::Weekday> for Weekday {
    fn from(d: core::Weekday) -> Self {
        match d {
            core::Weekday::Monday => Self::Monday,
            core::Weekday::Tuesday => Self::Tuesday,
            core::Weekday::Wednesday => Self::Wednesday,
            core::Weekday::Thursday => Self::Thursday,
            core::Weekday::Friday => Self::Friday,
            core::Weekday::Saturday => Self::Saturday,
            core::Weekday::Sunday => Self::Sunday,
        }
    }
}

impl From<Weekday> for core::Weekday {
    fn from(d: Weekday) -> Self {
        match d {
            Weekday::Monday => Self::Monday,
            Weekday::Tuesday => Self::Tuesday,
            Weekday::Wednesday => Self::Wednesday,
            Weekday::Thursday => Self::Thursday,
            Weekday::Friday => Self::Friday,
            Weekday::Saturday => Self::Saturday,
            Weekday::Sunday => Self::Sunday,
        }
    }
}

/// Whether and when users get a quarantine report.
#[derive(
    Debug,
    Clone,
    Serialize,
    Deserialize,
    ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "QuarantineReportInput")]
pub struct QuarantineReport {
    /// `never` switches reports off.
    pub frequency: ReportFrequency,
    /// Time of day `HH:MM` (every frequency but `never`).
    pub at: Option<String>,
    /// Second time of day `HH:MM` (`twice_daily` only).
    pub second_at: Option<String>,
    /// Day of the week (`weekly` only).
    pub weekday: Option<Weekday>,
    /// Day of the month, 1 to 28 (`monthly` only).
    pub day_of_month: Option<i32>,
    /// IANA time zone the times are in, e.g. `Europe/Zurich`.
    pub timezone: String,
}

/// The backup webmail (a copy of every delivered message).
#[derive(
    Debug,
    Clone,
    Serialize,
    Deserialize,
    ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "BackupWebmailInput")]
pub struct BackupWebmail {
    pub enabled: bool,
    /// Days messages are kept, at least 7 (required when enabled).
    pub retention_days: Option<i32>,
}

/// Allow and block lists: sender addresses (`a@b.ch`), domains (`b.ch`) or client IP
/// networks (`192.0.2.0/24`).
#[derive(
    Debug,
    Clone,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "SenderListsInput")]
pub struct SenderLists {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub block: Vec<String>,
}

/// Every setting of a policy.
#[derive(
    Debug,
    Clone,
    Serialize,
    Deserialize,
    ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "PolicySettingsInput")]
pub struct PolicySettings {
    pub thresholds: SpamThresholds,
    pub actions: CategoryActions,
    /// Subject prefix of delivered newsletters, e.g. `[PUB] `.
    pub newsletter_tag: String,
    /// Subject prefix of mail between the tag and quarantine thresholds.
    pub spam_tag: String,
    pub report: QuarantineReport,
    /// Days a quarantined message stays releasable, 1 to 365.
    pub quarantine_expiry_days: i32,
    pub backup_webmail: BackupWebmail,
    #[serde(default)]
    pub lists: SenderLists,
}

/// Partial settings for a domain or a user; absent fields are inherited. List entries are
/// added to the inherited ones.
#[derive(
    Debug,
    Clone,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(input_name = "PolicyOverridesInput")]
pub struct PolicyOverrides {
    pub thresholds: Option<SpamThresholds>,
    pub actions: Option<CategoryActions>,
    pub newsletter_tag: Option<String>,
    pub spam_tag: Option<String>,
    pub report: Option<QuarantineReport>,
    pub quarantine_expiry_days: Option<i32>,
    pub backup_webmail: Option<BackupWebmail>,
    pub lists: Option<SenderLists>,
}

/// Who defined a policy.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum PolicyOwner {
    /// The platform: the built-in recommended policies, visible to everyone.
    Platform,
    /// A reseller: visible to it and its tenants.
    Reseller,
    /// A tenant: visible to it and its reseller.
    Tenant,
}

impl PolicyOwner {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => store::OWNER_PLATFORM,
            Self::Reseller => store::OWNER_RESELLER,
            Self::Tenant => store::OWNER_TENANT,
        }
    }

    fn from_stored(s: &str) -> Self {
        match s {
            store::OWNER_RESELLER => Self::Reseller,
            store::OWNER_TENANT => Self::Tenant,
            _ => Self::Platform,
        }
    }
}

/// A filtering policy.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner: PolicyOwner,
    /// The owning reseller (`owner` = `reseller`).
    pub reseller_id: Option<String>,
    /// The owning tenant (`owner` = `tenant`).
    pub tenant_id: Option<String>,
    /// A built-in recommended policy (read-only; copy it to tailor it).
    pub builtin: bool,
    /// Whether you may change or delete it.
    pub editable: bool,
    pub settings: PolicySettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Policy {
    fn from_row(row: m::Policy, scope: &Scope) -> Result<Self, ApiError> {
        let settings = settings_from_core(&row.decode_settings()?);
        Ok(Self {
            editable: row.is_writable_in(scope),
            builtin: row.is_builtin(),
            owner: PolicyOwner::from_stored(&row.owner_kind),
            id: row.id.0,
            name: row.name,
            description: row.description,
            reseller_id: row.reseller_id.map(|r| r.0),
            tenant_id: row.tenant_id.map(|t| t.0),
            settings,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
        })
    }
}

/// Input to create a policy. Its owner is `tenant_id`, else `reseller_id`, else your own
/// tenant or reseller (platform admins: the platform).
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    pub name: String,
    pub description: Option<String>,
    pub reseller_id: Option<String>,
    pub tenant_id: Option<String>,
    /// Default: the settings of the standard policy.
    pub settings: Option<PolicySettings>,
}

/// Changes to a policy; absent fields stay as they are. `settings` replaces all settings.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    pub name: Option<String>,
    pub description: Option<String>,
    pub settings: Option<PolicySettings>,
}

/// Filters for listing policies.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "PolicyFilter")]
pub struct PolicyFilter {
    pub owner: Option<PolicyOwner>,
    pub reseller_id: Option<String>,
    pub tenant_id: Option<String>,
}

/// The policy a tenant uses.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct TenantPolicy {
    pub tenant_id: String,
    pub policy_id: String,
    pub policy_name: String,
    pub updated_at: DateTime<Utc>,
}

impl TenantPolicy {
    fn from_rows((assignment, policy): (m::TenantPolicy, m::Policy)) -> Self {
        Self {
            tenant_id: assignment.tenant_id.0,
            policy_id: policy.id.0,
            policy_name: policy.name,
            updated_at: utc(assignment.updated_at),
        }
    }
}

/// Input to choose a tenant's policy.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignPolicy {
    pub policy_id: String,
}

/// The overrides of a domain or a user (empty when none are set).
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct PolicyOverridesOf {
    /// Set for a domain's overrides.
    pub domain_id: Option<String>,
    /// Set for a user's overrides.
    pub user_id: Option<String>,
    pub overrides: PolicyOverrides,
    /// When they were last set; absent when none are set.
    pub updated_at: Option<DateTime<Utc>>,
}

/// The level an effective value comes from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum PolicyLevel {
    /// The tenant's policy.
    Tenant,
    /// The domain's overrides.
    Domain,
    /// The user's overrides.
    User,
}

impl From<core::PolicyLevel> for PolicyLevel {
    fn from(level: core::PolicyLevel) -> Self {
        match level {
            core::PolicyLevel::Tenant => Self::Tenant,
            core::PolicyLevel::Domain => Self::Domain,
            core::PolicyLevel::User => Self::User,
        }
    }
}

/// The level each effective setting comes from.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct PolicySources {
    pub thresholds: PolicyLevel,
    pub actions: PolicyLevel,
    pub newsletter_tag: PolicyLevel,
    pub spam_tag: PolicyLevel,
    pub report: PolicyLevel,
    pub quarantine_expiry_days: PolicyLevel,
    pub backup_webmail: PolicyLevel,
}

/// An allow or block entry and the level that added it.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct LeveledListEntry {
    pub entry: String,
    pub level: PolicyLevel,
}

/// The effective policy of a user or a domain: every value and the level it came from.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct EffectivePolicy {
    pub tenant_id: String,
    pub domain_id: String,
    /// Absent for a domain's effective policy.
    pub user_id: Option<String>,
    /// The tenant's policy, the base of the resolution.
    pub policy_id: String,
    pub policy_name: String,
    /// The resolved values (lists hold the entries of every level).
    pub settings: PolicySettings,
    /// Where each value comes from.
    pub sources: PolicySources,
    /// Allow entries with their level.
    pub allow: Vec<LeveledListEntry>,
    /// Block entries with their level.
    pub block: Vec<LeveledListEntry>,
    /// The domain's overrides, if any.
    pub domain_overrides: Option<PolicyOverrides>,
    /// The user's overrides, if any.
    pub user_overrides: Option<PolicyOverrides>,
}

impl From<store::ExplainedPolicy> for EffectivePolicy {
    fn from(e: store::ExplainedPolicy) -> Self {
        let sources = e.effective.sources;
        let leveled = |entries: &[core::LeveledEntry]| {
            entries
                .iter()
                .map(|e| LeveledListEntry {
                    entry: e.entry.to_string(),
                    level: e.level.into(),
                })
                .collect()
        };
        Self {
            tenant_id: e.tenant_id.0,
            domain_id: e.domain_id.0,
            user_id: e.user_id.map(|u| u.0),
            policy_id: e.tenant_policy.id.0,
            policy_name: e.tenant_policy.name,
            settings: settings_from_core(&e.effective.policy),
            sources: PolicySources {
                thresholds: sources.thresholds.into(),
                actions: sources.actions.into(),
                newsletter_tag: sources.newsletter_tag.into(),
                spam_tag: sources.spam_tag.into(),
                report: sources.report.into(),
                quarantine_expiry_days: sources.quarantine_expiry.into(),
                backup_webmail: sources.backup_webmail.into(),
            },
            allow: leveled(&e.effective.allow),
            block: leveled(&e.effective.block),
            domain_overrides: e.domain_overrides.as_ref().map(overrides_from_core),
            user_overrides: e.user_overrides.as_ref().map(overrides_from_core),
        }
    }
}

// ---- conversions between the API shapes and core's types ----

fn thresholds_from_core(t: &core::Thresholds) -> SpamThresholds {
    SpamThresholds {
        tag: f64::from(t.tag),
        quarantine: f64::from(t.quarantine),
        reject: t.reject.map(f64::from),
    }
}

fn actions_from_core(a: &core::CategoryActions) -> CategoryActions {
    CategoryActions {
        clean: a.clean.into(),
        newsletter: a.newsletter.into(),
        spam: a.spam.into(),
        phishing: a.phishing.into(),
        virus: a.virus.into(),
    }
}

fn report_from_core(r: &core::ReportSettings) -> QuarantineReport {
    let mut report = QuarantineReport {
        frequency: ReportFrequency::Never,
        at: None,
        second_at: None,
        weekday: None,
        day_of_month: None,
        timezone: r.timezone.to_string(),
    };
    match r.schedule {
        core::ReportSchedule::Never => {}
        core::ReportSchedule::Daily { at } => {
            report.frequency = ReportFrequency::Daily;
            report.at = Some(at.to_string());
        }
        core::ReportSchedule::TwiceDaily { first, second } => {
            report.frequency = ReportFrequency::TwiceDaily;
            report.at = Some(first.to_string());
            report.second_at = Some(second.to_string());
        }
        core::ReportSchedule::Weekly { weekday, at } => {
            report.frequency = ReportFrequency::Weekly;
            report.weekday = Some(weekday.into());
            report.at = Some(at.to_string());
        }
        core::ReportSchedule::Monthly { day, at } => {
            report.frequency = ReportFrequency::Monthly;
            report.day_of_month = Some(i32::from(day.get()));
            report.at = Some(at.to_string());
        }
    }
    report
}

fn backup_from_core(b: &core::BackupWebmail) -> BackupWebmail {
    match b {
        core::BackupWebmail::Off => BackupWebmail {
            enabled: false,
            retention_days: None,
        },
        core::BackupWebmail::Keep { days } => BackupWebmail {
            enabled: true,
            retention_days: Some(i32::from(days.get())),
        },
    }
}

fn lists_from_core(l: &core::SenderLists) -> SenderLists {
    SenderLists {
        allow: l.allow.iter().map(|e| e.to_string()).collect(),
        block: l.block.iter().map(|e| e.to_string()).collect(),
    }
}

/// Core settings in the API shape.
pub fn settings_from_core(p: &core::Policy) -> PolicySettings {
    PolicySettings {
        thresholds: thresholds_from_core(&p.thresholds),
        actions: actions_from_core(&p.actions),
        newsletter_tag: p.newsletter_tag.to_string(),
        spam_tag: p.spam_tag.to_string(),
        report: report_from_core(&p.report),
        quarantine_expiry_days: i32::from(p.quarantine_expiry.get()),
        backup_webmail: backup_from_core(&p.backup_webmail),
        lists: lists_from_core(&p.lists),
    }
}

/// Core overrides in the API shape.
pub fn overrides_from_core(o: &core::PolicyOverrides) -> PolicyOverrides {
    PolicyOverrides {
        thresholds: o.thresholds.as_ref().map(thresholds_from_core),
        actions: o.actions.as_ref().map(actions_from_core),
        newsletter_tag: o.newsletter_tag.as_ref().map(|t| t.to_string()),
        spam_tag: o.spam_tag.as_ref().map(|t| t.to_string()),
        report: o.report.as_ref().map(report_from_core),
        quarantine_expiry_days: o.quarantine_expiry.map(|q| i32::from(q.get())),
        backup_webmail: o.backup_webmail.as_ref().map(backup_from_core),
        lists: o.lists.as_ref().map(lists_from_core),
    }
}

fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

fn thresholds_to_core(
    v: &mut Validator,
    field: &str,
    t: &SpamThresholds,
) -> Option<core::Thresholds> {
    let finite = |x: f64| x.is_finite() && x.abs() <= 1000.0;
    if !finite(t.tag) || !finite(t.quarantine) || t.reject.is_some_and(|r| !finite(r)) {
        v.error(field, "scores must be numbers between -1000 and 1000");
        return None;
    }
    let thresholds = core::Thresholds {
        tag: t.tag as f32,
        quarantine: t.quarantine as f32,
        reject: t.reject.map(|r| r as f32),
    };
    if thresholds.validate().is_err() {
        v.error(
            field,
            "must satisfy tag <= quarantine <= reject (reject may be absent)",
        );
        return None;
    }
    Some(thresholds)
}

fn actions_to_core(a: &CategoryActions) -> core::CategoryActions {
    core::CategoryActions {
        clean: a.clean.into(),
        newsletter: a.newsletter.into(),
        spam: a.spam.into(),
        phishing: a.phishing.into(),
        virus: a.virus.into(),
    }
}

fn tag_to_core(v: &mut Validator, field: &str, tag: &str) -> Option<core::SubjectTag> {
    v.check(field, core::SubjectTag::parse(tag))
}

fn report_to_core(
    v: &mut Validator,
    prefix: &str,
    r: &QuarantineReport,
) -> Option<core::ReportSettings> {
    let timezone = v.check(
        &path(prefix, "timezone"),
        core::TimeZone::parse(&r.timezone),
    );
    let time = |v: &mut Validator, name: &str, value: &Option<String>| match value {
        Some(value) => v.check(&path(prefix, name), core::TimeOfDay::parse(value)),
        None => {
            v.error(
                &path(prefix, name),
                "is required for this frequency (HH:MM)",
            );
            None
        }
    };
    let schedule = match r.frequency {
        ReportFrequency::Never => Some(core::ReportSchedule::Never),
        ReportFrequency::Daily => time(v, "at", &r.at).map(|at| core::ReportSchedule::Daily { at }),
        ReportFrequency::TwiceDaily => {
            let first = time(v, "at", &r.at);
            let second = time(v, "second_at", &r.second_at);
            match (first, second) {
                (Some(first), Some(second)) if first == second => {
                    v.error(&path(prefix, "second_at"), "must differ from `at`");
                    None
                }
                (Some(first), Some(second)) => {
                    Some(core::ReportSchedule::TwiceDaily { first, second })
                }
                _ => None,
            }
        }
        ReportFrequency::Weekly => {
            let at = time(v, "at", &r.at);
            let weekday = r.weekday.map(core::Weekday::from);
            if weekday.is_none() {
                v.error(&path(prefix, "weekday"), "is required for weekly reports");
            }
            at.zip(weekday)
                .map(|(at, weekday)| core::ReportSchedule::Weekly { weekday, at })
        }
        ReportFrequency::Monthly => {
            let at = time(v, "at", &r.at);
            let day = match r.day_of_month {
                Some(day) => v.check(
                    &path(prefix, "day_of_month"),
                    u8::try_from(day)
                        .map_err(|_| core::PolicyError::DayOfMonth(0))
                        .and_then(core::DayOfMonth::new)
                        .map_err(|_| "must be between 1 and 28"),
                ),
                None => {
                    v.error(
                        &path(prefix, "day_of_month"),
                        "is required for monthly reports",
                    );
                    None
                }
            };
            at.zip(day)
                .map(|(at, day)| core::ReportSchedule::Monthly { day, at })
        }
    };
    Some(core::ReportSettings {
        schedule: schedule?,
        timezone: timezone?,
    })
}

fn expiry_to_core(v: &mut Validator, field: &str, days: i32) -> Option<core::QuarantineExpiry> {
    v.check(
        field,
        u16::try_from(days)
            .ok()
            .and_then(|d| core::QuarantineExpiry::new(d).ok())
            .ok_or("must be between 1 and 365 days"),
    )
}

fn backup_to_core(
    v: &mut Validator,
    prefix: &str,
    b: &BackupWebmail,
) -> Option<core::BackupWebmail> {
    if !b.enabled {
        return Some(core::BackupWebmail::Off);
    }
    let field = path(prefix, "retention_days");
    match b.retention_days {
        Some(days) => v
            .check(
                &field,
                u16::try_from(days)
                    .ok()
                    .and_then(|d| core::RetentionDays::new(d).ok())
                    .ok_or(format!(
                        "must be at least {} days",
                        core::RetentionDays::MIN
                    )),
            )
            .map(|days| core::BackupWebmail::Keep { days }),
        None => {
            v.error(&field, "is required when the backup webmail is enabled");
            None
        }
    }
}

fn lists_to_core(v: &mut Validator, prefix: &str, l: &SenderLists) -> Option<core::SenderLists> {
    let mut ok = true;
    let mut parse = |v: &mut Validator, name: &str, entries: &[String]| {
        if entries.len() > MAX_LIST_ENTRIES {
            v.error(
                &path(prefix, name),
                format!("at most {MAX_LIST_ENTRIES} entries"),
            );
            ok = false;
            return Vec::new();
        }
        let mut parsed = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            match core::ListEntry::parse(entry) {
                Ok(entry) => parsed.push(entry),
                Err(_) => {
                    v.error(
                        &format!("{}[{i}]", path(prefix, name)),
                        format!(
                            "`{entry}` is not a sender address, a domain or an IP network (CIDR)"
                        ),
                    );
                    ok = false;
                }
            }
        }
        parsed
    };
    let allow = parse(v, "allow", &l.allow);
    let block = parse(v, "block", &l.block);
    ok.then_some(core::SenderLists { allow, block })
}

/// Validates full settings; errors are recorded under `prefix` (e.g. `settings`).
pub(crate) fn settings_to_core(
    v: &mut Validator,
    prefix: &str,
    s: &PolicySettings,
) -> Option<core::Policy> {
    let thresholds = thresholds_to_core(v, &path(prefix, "thresholds"), &s.thresholds);
    let newsletter_tag = tag_to_core(v, &path(prefix, "newsletter_tag"), &s.newsletter_tag);
    let spam_tag = tag_to_core(v, &path(prefix, "spam_tag"), &s.spam_tag);
    let report = report_to_core(v, &path(prefix, "report"), &s.report);
    let quarantine_expiry = expiry_to_core(
        v,
        &path(prefix, "quarantine_expiry_days"),
        s.quarantine_expiry_days,
    );
    let backup_webmail = backup_to_core(v, &path(prefix, "backup_webmail"), &s.backup_webmail);
    let lists = lists_to_core(v, &path(prefix, "lists"), &s.lists);
    Some(core::Policy {
        thresholds: thresholds?,
        actions: actions_to_core(&s.actions),
        newsletter_tag: newsletter_tag?,
        spam_tag: spam_tag?,
        report: report?,
        quarantine_expiry: quarantine_expiry?,
        backup_webmail: backup_webmail?,
        lists: lists?,
    })
}

/// Validates overrides; errors are recorded under their field names.
pub(crate) fn overrides_to_core(
    v: &mut Validator,
    o: &PolicyOverrides,
) -> Option<core::PolicyOverrides> {
    let before = v.len();
    let overrides = core::PolicyOverrides {
        thresholds: o
            .thresholds
            .as_ref()
            .and_then(|t| thresholds_to_core(v, "thresholds", t)),
        actions: o.actions.as_ref().map(actions_to_core),
        newsletter_tag: o
            .newsletter_tag
            .as_deref()
            .and_then(|t| tag_to_core(v, "newsletter_tag", t)),
        spam_tag: o
            .spam_tag
            .as_deref()
            .and_then(|t| tag_to_core(v, "spam_tag", t)),
        report: o
            .report
            .as_ref()
            .and_then(|r| report_to_core(v, "report", r)),
        quarantine_expiry: o
            .quarantine_expiry_days
            .and_then(|d| expiry_to_core(v, "quarantine_expiry_days", d)),
        backup_webmail: o
            .backup_webmail
            .as_ref()
            .and_then(|b| backup_to_core(v, "backup_webmail", b)),
        lists: o.lists.as_ref().and_then(|l| lists_to_core(v, "lists", l)),
    };
    (v.len() == before).then_some(overrides)
}

// ---- operations ----

fn page_of(
    page: cleanmail_schema::Page<m::Policy>,
    scope: &Scope,
) -> Result<Page<Policy>, ApiError> {
    let items = page
        .items
        .into_iter()
        .map(|row| Policy::from_row(row, scope))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

pub async fn list(
    state: &AppState,
    who: &Principal,
    filter: &PolicyFilter,
    page: &PageParams,
) -> Result<Page<Policy>, ApiError> {
    let filter = store::PolicyFilter {
        owner_kind: filter.owner.map(|o| o.as_str().to_owned()),
        reseller_id: filter.reseller_id.clone().map(ResellerId),
        tenant_id: filter.tenant_id.clone().map(TenantId),
    };
    page_of(
        store::list(&state.db, &who.scope, &filter, &page.request()).await?,
        &who.scope,
    )
}

pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<Policy, ApiError> {
    let row = store::get(&state.db, &who.scope, &PolicyId(id.to_owned())).await?;
    Policy::from_row(row, &who.scope)
}

pub async fn create(
    state: &AppState,
    who: &Principal,
    input: CreatePolicy,
) -> Result<Policy, ApiError> {
    // The owner: check it is in scope (404 otherwise) before anything else.
    let (owner, reseller_id, tenant_id) = match (&input.tenant_id, &input.reseller_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "tenant_id",
                "set either tenant_id or reseller_id, not both",
            ));
        }
        (Some(tenant_id), None) => {
            let tenant = tenants::get(&state.db, &who.scope, &TenantId(tenant_id.clone())).await?;
            who.require(Role::TenantAdmin)?;
            (PolicyOwner::Tenant, None, Some(tenant.id))
        }
        (None, Some(reseller_id)) => {
            let reseller =
                resellers::get(&state.db, &who.scope, &ResellerId(reseller_id.clone())).await?;
            who.require(Role::ResellerAdmin)?;
            (PolicyOwner::Reseller, Some(reseller.id), None)
        }
        (None, None) => match &who.scope {
            Scope::Platform => (PolicyOwner::Platform, None, None),
            Scope::Reseller { reseller_id } => {
                (PolicyOwner::Reseller, Some(reseller_id.clone()), None)
            }
            Scope::Tenant { tenant_id, .. } => {
                who.require(Role::TenantAdmin)?;
                (PolicyOwner::Tenant, None, Some(tenant_id.clone()))
            }
            Scope::User { .. } => {
                return Err(ApiError::Forbidden(
                    "this operation needs the tenant_admin role or higher".into(),
                ));
            }
        },
    };
    let mut v = Validator::default();
    let name = required_text(&mut v, "name", &input.name, 200);
    let description = input.description.as_deref().unwrap_or("").trim().to_owned();
    if description.chars().count() > 2000 {
        v.error("description", "must be at most 2000 characters");
    }
    let settings = match &input.settings {
        Some(settings) => settings_to_core(&mut v, "settings", settings),
        None => Some(core::BuiltinPolicy::StandardWithQuarantineReport.policy()),
    };
    v.finish()?;
    let settings = encode_json(&settings.expect("validated"))?;
    let now = cleanmail_schema::now();
    let id = PolicyId::new();
    let row = store::create(
        &state.db,
        m::NewPolicy {
            id: &id,
            owner_kind: owner.as_str(),
            reseller_id: reseller_id.as_ref(),
            tenant_id: tenant_id.as_ref(),
            builtin: None,
            name: &name,
            description: &description,
            settings: &settings,
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    Policy::from_row(row, &who.scope)
}

fn encode_json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(format!("encoding policy: {e}")))
}

/// Loads a policy visible to the caller and checks they may change it.
async fn writable(state: &AppState, who: &Principal, id: &PolicyId) -> Result<m::Policy, ApiError> {
    let policy = store::get(&state.db, &who.scope, id).await?;
    who.require(Role::TenantAdmin)?;
    if policy.is_builtin() {
        return Err(ApiError::Forbidden(
            "built-in policies are read-only; create your own policy from their settings".into(),
        ));
    }
    if !policy.is_writable_in(&who.scope) {
        return Err(ApiError::Forbidden(
            "this policy belongs to your reseller or the platform and is read-only for you".into(),
        ));
    }
    Ok(policy)
}

pub async fn update(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: UpdatePolicy,
) -> Result<Policy, ApiError> {
    let id = PolicyId(id.to_owned());
    writable(state, who, &id).await?;
    let mut v = Validator::default();
    let name = input
        .name
        .as_deref()
        .map(|n| required_text(&mut v, "name", n, 200));
    let description = input.description.as_deref().map(|d| d.trim().to_owned());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 2000)
    {
        v.error("description", "must be at most 2000 characters");
    }
    let settings = input
        .settings
        .as_ref()
        .map(|s| settings_to_core(&mut v, "settings", s));
    v.finish()?;
    let changes = m::PolicyChanges {
        name,
        description,
        settings: settings.flatten().as_ref().map(encode_json).transpose()?,
        updated_at: None,
    };
    let row = store::update(&state.db, &who.scope, &id, changes).await?;
    let users = store::tenants_using(&state.db, &Scope::Platform, &id).await?;
    super::webmail::purge_switched_off(state, &users).await?;
    Policy::from_row(row, &who.scope)
}

pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let id = PolicyId(id.to_owned());
    writable(state, who, &id).await?;
    Ok(store::delete(&state.db, &who.scope, &id).await?)
}

/// The policy a tenant uses (tenant admins and above).
pub async fn tenant_policy(
    state: &AppState,
    who: &Principal,
    tenant_id: &str,
) -> Result<TenantPolicy, ApiError> {
    let tenant_id = TenantId(tenant_id.to_owned());
    tenants::get(&state.db, &who.scope, &tenant_id).await?;
    who.require(Role::TenantAdmin)?;
    Ok(TenantPolicy::from_rows(
        store::tenant_policy(&state.db, &who.scope, &tenant_id).await?,
    ))
}

/// Makes a tenant use a policy visible to it.
pub async fn assign_tenant_policy(
    state: &AppState,
    who: &Principal,
    tenant_id: &str,
    policy_id: &str,
) -> Result<TenantPolicy, ApiError> {
    let tenant_id = TenantId(tenant_id.to_owned());
    tenants::get(&state.db, &who.scope, &tenant_id).await?;
    who.require(Role::TenantAdmin)?;
    let assigned = store::assign_to_tenant(
        &state.db,
        &who.scope,
        &tenant_id,
        &PolicyId(policy_id.to_owned()),
    )
    .await?;
    super::webmail::purge_switched_off(state, std::slice::from_ref(&tenant_id)).await?;
    Ok(TenantPolicy::from_rows(assigned))
}

fn overrides_of(
    domain_id: Option<String>,
    user_id: Option<String>,
    stored: Option<(String, chrono::NaiveDateTime)>,
) -> Result<PolicyOverridesOf, ApiError> {
    let (overrides, updated_at) = match stored {
        Some((json, at)) => {
            let overrides: core::PolicyOverrides = serde_json::from_str(&json)
                .map_err(|e| ApiError::Internal(format!("decoding overrides: {e}")))?;
            (overrides_from_core(&overrides), Some(utc(at)))
        }
        None => (PolicyOverrides::default(), None),
    };
    Ok(PolicyOverridesOf {
        domain_id,
        user_id,
        overrides,
        updated_at,
    })
}

pub async fn domain_overrides(
    state: &AppState,
    who: &Principal,
    domain_id: &str,
) -> Result<PolicyOverridesOf, ApiError> {
    let domain_id = DomainId(domain_id.to_owned());
    cleanmail_schema::store::domains::get(&state.db, &who.scope, &domain_id).await?;
    who.require(Role::TenantAdmin)?;
    let row = store::domain_overrides(&state.db, &who.scope, &domain_id).await?;
    overrides_of(
        Some(domain_id.0),
        None,
        row.map(|r| (r.overrides, r.updated_at)),
    )
}

pub async fn set_domain_overrides(
    state: &AppState,
    who: &Principal,
    domain_id: &str,
    input: PolicyOverrides,
) -> Result<PolicyOverridesOf, ApiError> {
    let domain_id = DomainId(domain_id.to_owned());
    cleanmail_schema::store::domains::get(&state.db, &who.scope, &domain_id).await?;
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let overrides = overrides_to_core(&mut v, &input);
    v.finish()?;
    let row = store::set_domain_overrides(
        &state.db,
        &who.scope,
        &domain_id,
        &overrides.expect("validated"),
    )
    .await?;
    super::webmail::purge_switched_off(state, std::slice::from_ref(&row.tenant_id)).await?;
    overrides_of(
        Some(domain_id.0),
        None,
        Some((row.overrides, row.updated_at)),
    )
}

pub async fn clear_domain_overrides(
    state: &AppState,
    who: &Principal,
    domain_id: &str,
) -> Result<(), ApiError> {
    let domain_id = DomainId(domain_id.to_owned());
    cleanmail_schema::store::domains::get(&state.db, &who.scope, &domain_id).await?;
    who.require(Role::TenantAdmin)?;
    Ok(store::clear_domain_overrides(&state.db, &who.scope, &domain_id).await?)
}

pub async fn user_overrides(
    state: &AppState,
    who: &Principal,
    user_id: &str,
) -> Result<PolicyOverridesOf, ApiError> {
    let user_id = UserId(user_id.to_owned());
    cleanmail_schema::store::users::get(&state.db, &who.scope, &user_id).await?;
    who.require(Role::TenantAdmin)?;
    let row = store::user_overrides(&state.db, &who.scope, &user_id).await?;
    overrides_of(
        None,
        Some(user_id.0),
        row.map(|r| (r.overrides, r.updated_at)),
    )
}

pub async fn set_user_overrides(
    state: &AppState,
    who: &Principal,
    user_id: &str,
    input: PolicyOverrides,
) -> Result<PolicyOverridesOf, ApiError> {
    let user_id = UserId(user_id.to_owned());
    cleanmail_schema::store::users::get(&state.db, &who.scope, &user_id).await?;
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let overrides = overrides_to_core(&mut v, &input);
    v.finish()?;
    let row = store::set_user_overrides(
        &state.db,
        &who.scope,
        &user_id,
        &overrides.expect("validated"),
    )
    .await?;
    super::webmail::purge_switched_off(state, std::slice::from_ref(&row.tenant_id)).await?;
    overrides_of(None, Some(user_id.0), Some((row.overrides, row.updated_at)))
}

pub async fn clear_user_overrides(
    state: &AppState,
    who: &Principal,
    user_id: &str,
) -> Result<(), ApiError> {
    let user_id = UserId(user_id.to_owned());
    cleanmail_schema::store::users::get(&state.db, &who.scope, &user_id).await?;
    who.require(Role::TenantAdmin)?;
    Ok(store::clear_user_overrides(&state.db, &who.scope, &user_id).await?)
}

/// A user's effective policy: end users may read their own only.
pub async fn effective_for_user(
    state: &AppState,
    who: &Principal,
    user_id: &str,
) -> Result<EffectivePolicy, ApiError> {
    Ok(
        store::effective_for_user(&state.db, &who.scope, &UserId(user_id.to_owned()))
            .await?
            .into(),
    )
}

/// A domain's effective policy (tenant admins and above).
pub async fn effective_for_domain(
    state: &AppState,
    who: &Principal,
    domain_id: &str,
) -> Result<EffectivePolicy, ApiError> {
    let domain_id = DomainId(domain_id.to_owned());
    cleanmail_schema::store::domains::get(&state.db, &who.scope, &domain_id).await?;
    who.require(Role::TenantAdmin)?;
    Ok(
        store::effective_for_domain(&state.db, &who.scope, &domain_id)
            .await?
            .into(),
    )
}
