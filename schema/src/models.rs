//! Rows as read (`Reseller`), inserted (`NewReseller`) and updated (`ResellerChanges`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::tables::*;
use crate::{
    AliasId, ApiKeyId, DomainId, JobId, MessageId, MessageLogId, OperatorId, PolicyId,
    ReportDefinitionId, ResellerId, TenantId, UserId,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = resellers)]
pub struct Reseller {
    pub id: ResellerId,
    pub name: String,
    pub portal_url: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = resellers)]
pub struct ResellerChanges {
    pub name: Option<String>,
    pub portal_url: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: TenantId,
    pub reseller_id: ResellerId,
    pub name: String,
    pub region: String,
    pub timezone: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = tenants)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = domains)]
pub struct Domain {
    pub id: DomainId,
    pub tenant_id: TenantId,
    pub name: String,
    pub state: String,
    pub destination: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = domains)]
pub struct DomainChanges {
    pub state: Option<String>,
    pub destination: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub domain_id: DomainId,
    pub address: String,
    pub display_name: String,
    pub role: String,
    pub language: String,
    pub status: String,
    pub password_hash: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub role: Option<String>,
    pub language: Option<String>,
    pub status: Option<String>,
    pub password_hash: Option<Option<String>>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = aliases)]
pub struct Alias {
    pub id: AliasId,
    pub tenant_id: TenantId,
    pub domain_id: DomainId,
    pub user_id: UserId,
    pub address: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = aliases)]
pub struct AliasChanges {
    pub user_id: Option<UserId>,
    pub status: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = operators)]
pub struct Operator {
    pub id: OperatorId,
    pub email: String,
    pub role: String,
    pub reseller_id: Option<ResellerId>,
    pub password_hash: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub role: String,
    pub reseller_id: Option<ResellerId>,
    pub tenant_id: Option<TenantId>,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// A stored filtering policy; `settings` is the JSON of [`cleanmail_core::policy::Policy`].
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = policies)]
pub struct Policy {
    pub id: PolicyId,
    /// `platform`, `reseller` or `tenant`.
    pub owner_kind: String,
    pub reseller_id: Option<ResellerId>,
    pub tenant_id: Option<TenantId>,
    /// The preset key of a built-in (read-only) policy.
    pub builtin: Option<String>,
    pub name: String,
    pub description: String,
    pub settings: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A policy to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = policies)]
pub struct NewPolicy<'a> {
    pub id: &'a PolicyId,
    pub owner_kind: &'a str,
    pub reseller_id: Option<&'a ResellerId>,
    pub tenant_id: Option<&'a TenantId>,
    pub builtin: Option<&'a str>,
    pub name: &'a str,
    pub description: &'a str,
    pub settings: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes to a policy; `None` keeps the value.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = policies)]
pub struct PolicyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub settings: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Which policy a tenant uses.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenant_policies)]
pub struct TenantPolicy {
    pub tenant_id: TenantId,
    pub policy_id: PolicyId,
    pub updated_at: NaiveDateTime,
}

/// Overrides of one domain; `overrides` is the JSON of
/// [`cleanmail_core::policy::PolicyOverrides`].
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = domain_policy_overrides)]
pub struct DomainPolicyOverrides {
    pub domain_id: DomainId,
    pub tenant_id: TenantId,
    pub overrides: String,
    pub updated_at: NaiveDateTime,
}

/// Overrides of one user; `overrides` is the JSON of
/// [`cleanmail_core::policy::PolicyOverrides`].
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_policy_overrides)]
pub struct UserPolicyOverrides {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub overrides: String,
    pub updated_at: NaiveDateTime,
}

/// A queued job (see [`crate::store::jobs`]).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = jobs)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub tenant_id: Option<TenantId>,
    pub payload: String,
    pub blob_key: Option<String>,
    pub run_at: NaiveDateTime,
    pub attempts: i32,
    pub locked_by: Option<String>,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    /// When the job failed for good (see [`crate::store::jobs::fail`]); never claimed again.
    pub failed_at: Option<NaiveDateTime>,
}

impl Job {
    /// A job ready to run at `run_at`, never attempted.
    pub fn new(
        id: JobId,
        kind: &str,
        tenant_id: Option<TenantId>,
        payload: String,
        blob_key: Option<String>,
        run_at: NaiveDateTime,
    ) -> Self {
        Self {
            id,
            kind: kind.to_owned(),
            tenant_id,
            payload,
            blob_key,
            run_at,
            attempts: 0,
            locked_by: None,
            locked_until: None,
            last_error: None,
            created_at: crate::now(),
            failed_at: None,
        }
    }
}

/// One inbound message (for one tenant) in the message log.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_log)]
pub struct MessageLogEntry {
    pub id: MessageLogId,
    pub tenant_id: TenantId,
    pub mail_from: String,
    /// JSON array of the envelope recipients.
    pub rcpt_to: String,
    pub client_ip: String,
    pub helo: String,
    pub tls: bool,
    pub from_header: String,
    pub subject: String,
    pub message_id_header: String,
    pub size_bytes: i64,
    pub score: f64,
    pub category: String,
    /// JSON of the engine's verdict.
    pub verdict: String,
    /// JSON array of per-recipient actions as carried out.
    pub actions: String,
    pub state: String,
    pub delivery_attempts: i32,
    pub last_response: Option<String>,
    pub blob_key: Option<String>,
    pub received_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// One recipient mailbox's copy of an inbound message: quarantined, or delivered and kept
/// in the retention store until `expires_at`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct Message {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub domain_id: DomainId,
    pub user_id: UserId,
    pub log_id: MessageLogId,
    /// The envelope recipient this copy is for (the user's address or one of its aliases).
    pub recipient: String,
    pub mail_from: String,
    /// JSON array of the envelope recipients.
    pub rcpt_to: String,
    pub from_header: String,
    pub subject: String,
    pub message_id_header: String,
    pub size_bytes: i64,
    pub score: f64,
    pub category: String,
    /// `deliver`, `deliver_tagged`, `quarantine` or `reject` (kept in quarantine).
    pub action: String,
    /// JSON of the engine's verdict (symbols, explanation).
    pub verdict: String,
    /// `quarantined`, `queued`, `deferred`, `delivered` or `bounced`.
    pub state: String,
    pub blob_key: String,
    pub last_response: Option<String>,
    pub received_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

impl Message {
    /// State of a message held in quarantine.
    pub const QUARANTINED: &'static str = "quarantined";
    /// States of a retained copy (the backup webmail): waiting for, or past, delivery.
    pub const RETAINED: [&'static str; 4] = ["queued", "deferred", "delivered", "bounced"];

    /// Filter: messages held in quarantine.
    pub fn quarantined() -> diesel::dsl::Eq<messages::state, &'static str> {
        use diesel::ExpressionMethods as _;
        messages::state.eq(Self::QUARANTINED)
    }
}

/// Counts to add to one domain's traffic counters for one hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = traffic_counters)]
pub struct TrafficCounter {
    pub domain_id: DomainId,
    pub hour: NaiveDateTime,
    pub tenant_id: TenantId,
    pub clean: i64,
    pub newsletter: i64,
    pub spam: i64,
    pub phishing: i64,
    pub virus: i64,
    pub rejected: i64,
}

/// A report a tenant admin defined for the tenant (`domain_id` `None`) or one domain.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = report_definitions)]
pub struct ReportDefinition {
    pub id: ReportDefinitionId,
    pub tenant_id: TenantId,
    pub domain_id: Option<DomainId>,
    pub name: String,
    /// `quarantine` or `statistics`.
    pub kind: String,
    /// `daily`, `weekly` or `monthly`.
    pub frequency: String,
    /// JSON array of recipient addresses.
    pub recipients: String,
    pub language: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = report_definitions)]
pub struct ReportDefinitionChanges {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub frequency: Option<String>,
    pub recipients: Option<String>,
    pub language: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// One report slot that ran (for a user's quarantine report or a definition).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = report_runs)]
pub struct ReportRun {
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: Option<UserId>,
    pub definition_id: Option<ReportDefinitionId>,
    pub slot: NaiveDateTime,
    /// What arrived up to this instant is covered (the next report starts here).
    pub covered_until: NaiveDateTime,
    /// Items reported; 0 means nothing new and no email.
    pub items: i32,
    pub log_id: Option<MessageLogId>,
    pub created_at: NaiveDateTime,
}

/// Classifier feedback: a message released from quarantine (`ham`) or reported (`spam`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = classifier_feedback)]
pub struct ClassifierFeedback {
    pub id: String,
    pub tenant_id: TenantId,
    pub message_id: MessageId,
    pub log_id: MessageLogId,
    pub user_id: UserId,
    /// `ham` or `spam`.
    pub kind: String,
    /// The category the engine had decided.
    pub category: String,
    pub score: f64,
    pub mail_from: String,
    pub subject: String,
    pub blob_key: String,
    /// The principal who gave the feedback.
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// An end user's request to release a phishing or virus message, decided by a tenant admin.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = release_requests)]
pub struct ReleaseRequest {
    pub id: String,
    pub tenant_id: TenantId,
    pub message_id: MessageId,
    pub user_id: UserId,
    /// `pending`, `approved` or `denied`.
    pub state: String,
    pub requested_by: String,
    pub comment: String,
    pub decided_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
}

/// A DKIM key of a domain for outbound mail (private key sealed under the platform secret).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = dkim_keys)]
pub struct DkimKey {
    pub id: String,
    pub tenant_id: TenantId,
    pub domain_id: DomainId,
    pub selector: String,
    /// `rsa-2048` or `ed25519` (`cleanmail_core::dkim::DkimAlgorithm`).
    pub algorithm: String,
    /// Base64, the DNS record's `p=` value.
    pub public_key: String,
    pub sealed_private_key: String,
    /// Outbound mail of the domain is signed with this key (at most one per domain).
    pub active: bool,
    pub created_at: NaiveDateTime,
}
