//! The quarantine: list and search, detail with a safe preview, raw download (admins), and
//! the actions: release (through the normal delivery path, learnt as ham), delete, allow or
//! block the sender, report as spam; single and bulk. End users' releases of phishing and
//! virus become release requests that a tenant admin approves (= release) or denies.
//!
//! Every function takes the caller's [`Principal`]; its scope decides what is visible (a
//! user: their own copies, aliases included; an admin: their tenant(s)).

use chrono::{DateTime, Utc};
use cleanmail_core::policy as core;
use cleanmail_schema::models as m;
use cleanmail_schema::store::messages::{self as store, Folder, MessageFilter};
use cleanmail_schema::store::policies as policy_store;
use cleanmail_schema::{MessageId, StoreError, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::rendering::{self, AttachmentInfo, HeaderLine, SafePreview};
use super::{Page, PageParams, utc};
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState, Validator};

/// At most this many ids per bulk request.
pub const MAX_BULK: usize = 500;

/// The category the engine gave a message (for its recipient).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum MessageCategory {
    Clean,
    Newsletter,
    Spam,
    Phishing,
    Virus,
}

impl MessageCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Newsletter => "newsletter",
            Self::Spam => "spam",
            Self::Phishing => "phishing",
            Self::Virus => "virus",
        }
    }

    fn from_stored(s: &str) -> Self {
        match s {
            "newsletter" => Self::Newsletter,
            "spam" => Self::Spam,
            "phishing" => Self::Phishing,
            "virus" => Self::Virus,
            _ => Self::Clean,
        }
    }
}

/// Where a stored copy is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Held in quarantine.
    Quarantined,
    /// Waiting for (re)delivery.
    Queued,
    /// Delivery is being retried.
    Deferred,
    /// Delivered downstream (kept for the backup webmail).
    Delivered,
    /// Delivery failed for good.
    Bounced,
}

impl MessageState {
    fn from_stored(s: &str) -> Self {
        match s {
            "queued" => Self::Queued,
            "deferred" => Self::Deferred,
            "delivered" => Self::Delivered,
            "bounced" => Self::Bounced,
            _ => Self::Quarantined,
        }
    }
}

/// One recipient's stored copy of a message (quarantine or backup webmail).
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct StoredMessage {
    pub id: String,
    pub tenant_id: String,
    pub domain_id: String,
    /// The mailbox this copy belongs to.
    pub user_id: String,
    /// The envelope recipient (the user's address or one of its aliases).
    pub recipient: String,
    /// Envelope sender (empty for the null sender).
    pub mail_from: String,
    /// The From header as received.
    pub from_header: String,
    pub subject: String,
    pub size_bytes: i64,
    pub score: f64,
    pub category: MessageCategory,
    /// What was done: `deliver`, `deliver_tagged`, `quarantine`, `reject`, `released`.
    pub action: String,
    pub state: MessageState,
    pub received_at: DateTime<Utc>,
    /// When the copy is purged.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<m::Message> for StoredMessage {
    fn from(row: m::Message) -> Self {
        Self {
            id: row.id.0,
            tenant_id: row.tenant_id.0,
            domain_id: row.domain_id.0,
            user_id: row.user_id.0,
            recipient: row.recipient,
            mail_from: row.mail_from,
            from_header: row.from_header,
            subject: row.subject,
            size_bytes: row.size_bytes,
            score: row.score,
            category: MessageCategory::from_stored(&row.category),
            action: row.action,
            state: MessageState::from_stored(&row.state),
            received_at: utc(row.received_at),
            expires_at: row.expires_at.map(utc),
        }
    }
}

/// The list cursor of a message (what `next_cursor` holds for it).
pub fn cursor(message: &StoredMessage) -> String {
    store::cursor(message.received_at.naive_utc(), &message.id)
}

/// Search filters (all optional, combined with AND; text matches are case-insensitive
/// substrings).
#[derive(Debug, Clone, Default, Deserialize, IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "MessageSearch")]
pub struct MessageSearch {
    /// Substring of the recipient address.
    pub recipient: Option<String>,
    /// Substring of the envelope sender or the From header.
    pub sender: Option<String>,
    /// Substring of the subject.
    pub subject: Option<String>,
    pub category: Option<MessageCategory>,
    /// Lowest score (inclusive).
    pub min_score: Option<f64>,
    /// Highest score (inclusive).
    pub max_score: Option<f64>,
    /// Received at or after (RFC 3339).
    pub received_after: Option<DateTime<Utc>>,
    /// Received before (RFC 3339).
    pub received_before: Option<DateTime<Utc>>,
    /// One mailbox (admins).
    pub user_id: Option<String>,
}

impl MessageSearch {
    pub(crate) fn to_store(&self, folder: Folder) -> Result<MessageFilter, ApiError> {
        let mut v = Validator::default();
        let text = |v: &mut Validator, field: &str, value: &Option<String>| {
            let value = value.as_deref().map(str::trim).filter(|s| !s.is_empty());
            if value.is_some_and(|s| s.chars().count() > 200) {
                v.error(field, "must be at most 200 characters");
            }
            value.map(str::to_owned)
        };
        let filter = MessageFilter {
            state: None,
            folder: Some(folder),
            user_id: self.user_id.clone().map(UserId),
            recipient: text(&mut v, "recipient", &self.recipient),
            sender: text(&mut v, "sender", &self.sender),
            subject: text(&mut v, "subject", &self.subject),
            category: self.category.map(|c| c.as_str().to_owned()),
            min_score: self.min_score,
            max_score: self.max_score,
            received_after: self.received_after.map(|t| t.naive_utc()),
            received_before: self.received_before.map(|t| t.naive_utc()),
        };
        if let (Some(min), Some(max)) = (self.min_score, self.max_score)
            && min > max
        {
            v.error("min_score", "must not be above max_score");
        }
        if let (Some(from), Some(until)) = (self.received_after, self.received_before)
            && from > until
        {
            v.error("received_after", "must not be after received_before");
        }
        v.finish()?;
        Ok(filter)
    }
}

/// The SMTP envelope of a message.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct Envelope {
    pub mail_from: String,
    /// Every envelope recipient of the original transaction.
    pub rcpt_to: Vec<String>,
    pub client_ip: String,
    pub helo: String,
    pub tls: bool,
}

/// A rule that fired.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, async_graphql::SimpleObject)]
pub struct VerdictSymbol {
    pub name: String,
    pub score: f64,
    /// What it means, in one sentence.
    pub explanation: String,
}

/// The filtering engine's verdict.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct VerdictDetail {
    pub score: f64,
    /// The category for this copy's recipient.
    pub category: MessageCategory,
    /// Why this recipient's action was chosen.
    pub reason: String,
    /// Every symbol that fired, highest score first.
    pub symbols: Vec<VerdictSymbol>,
    /// Non-fatal analysis problems.
    pub warnings: Vec<String>,
}

/// Everything about one stored copy, rendered safely.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct MessageDetail {
    pub message: StoredMessage,
    pub envelope: Envelope,
    pub headers: Vec<HeaderLine>,
    pub verdict: VerdictDetail,
    pub preview: SafePreview,
    pub attachments: Vec<AttachmentInfo>,
    /// A pending release request of this copy, if any.
    pub pending_release_request: Option<String>,
}

/// The parts of the stored verdict JSON shown to users.
#[derive(Deserialize)]
struct StoredVerdict {
    #[serde(default)]
    symbols: Vec<VerdictSymbol>,
    #[serde(default)]
    recipients: Vec<StoredRecipientVerdict>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct StoredRecipientVerdict {
    recipient: String,
    #[serde(default)]
    reason: String,
}

/// Loads and renders a copy the caller can see (shared with the backup webmail).
pub(crate) async fn detail(
    state: &AppState,
    who: &Principal,
    id: &str,
    folder: Folder,
) -> Result<MessageDetail, ApiError> {
    let row = visible(state, who, id, folder).await?;
    let log =
        cleanmail_schema::store::messages::log_entry(&state.db, &who.scope, &row.log_id).await?;
    let raw = state
        .blobs()?
        .get(&row.blob_key)
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading message {}: {e}", row.id)))?;
    let rendered = tokio::task::spawn_blocking(move || rendering::render(&raw))
        .await
        .map_err(|e| ApiError::Internal(format!("rendering: {e}")))?;
    let stored: StoredVerdict = serde_json::from_str(&row.verdict).unwrap_or(StoredVerdict {
        symbols: Vec::new(),
        recipients: Vec::new(),
        warnings: Vec::new(),
    });
    let reason = stored
        .recipients
        .iter()
        .find(|r| r.recipient == row.recipient)
        .map(|r| r.reason.clone())
        .unwrap_or_default();
    let pending = store::pending_request_for(&state.db, &who.scope, &row.id).await?;
    Ok(MessageDetail {
        envelope: Envelope {
            mail_from: row.mail_from.clone(),
            rcpt_to: serde_json::from_str(&row.rcpt_to).unwrap_or_default(),
            client_ip: log.client_ip,
            helo: log.helo,
            tls: log.tls,
        },
        headers: rendered.headers,
        verdict: VerdictDetail {
            score: row.score,
            category: MessageCategory::from_stored(&row.category),
            reason,
            symbols: stored.symbols,
            warnings: stored.warnings,
        },
        preview: rendered.preview,
        attachments: rendered.attachments,
        pending_release_request: pending.map(|r| r.id),
        message: row.into(),
    })
}

/// A copy visible to the caller in `folder` (404 otherwise).
pub(crate) async fn visible(
    state: &AppState,
    who: &Principal,
    id: &str,
    folder: Folder,
) -> Result<m::Message, ApiError> {
    let row = store::get(&state.db, &who.scope, &MessageId(id.to_owned())).await?;
    let in_folder = match folder {
        Folder::Quarantine => row.state == m::Message::QUARANTINED,
        Folder::Retained => m::Message::RETAINED.contains(&row.state.as_str()),
    };
    if in_folder {
        Ok(row)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Deletes blobs nothing refers to any more (after the rows went); failures are logged,
/// an orphaned file is harmless.
pub(crate) async fn drop_blobs(state: &AppState, keys: Vec<String>) {
    let Some(blobs) = state.blobs.as_ref() else {
        return;
    };
    for key in keys {
        if let Err(err) = blobs.delete(&key).await {
            tracing::warn!(%key, %err, "deleting an unused blob failed");
        }
    }
}

// ---- reads ----

/// Quarantined messages visible to the caller, newest first.
pub async fn list(
    state: &AppState,
    who: &Principal,
    search: &MessageSearch,
    page: &PageParams,
) -> Result<Page<StoredMessage>, ApiError> {
    let filter = search.to_store(Folder::Quarantine)?;
    let page = store::list(&state.db, &who.scope, &filter, &page.request()).await?;
    Ok(Page::from_store(page, StoredMessage::from))
}

/// One quarantined message with envelope, headers, verdict, safe preview and attachments.
pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<MessageDetail, ApiError> {
    detail(state, who, id, Folder::Quarantine).await
}

/// The raw message (admins only: it may carry live malware).
pub async fn raw(state: &AppState, who: &Principal, id: &str) -> Result<Vec<u8>, ApiError> {
    let row = store::get(&state.db, &who.scope, &MessageId(id.to_owned())).await?;
    who.require(Role::TenantAdmin)?;
    state
        .blobs()?
        .get(&row.blob_key)
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading message {}: {e}", row.id)))
}

// ---- release ----

/// Whom to release a message to.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "ReleaseInput")]
pub struct ReleaseInput {
    /// Original recipients to release to (default: every quarantined recipient of this
    /// message you can see; for an end user, their own copies).
    pub recipients: Option<Vec<String>>,
    /// A note for the admin when the release becomes a request.
    pub comment: Option<String>,
}

/// What a release did.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// Queued for delivery through the normal delivery path.
    Released,
    /// Phishing or virus released by an end user: a tenant admin decides.
    Requested,
}

/// The outcome of a release.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct ReleaseOutcome {
    pub id: String,
    pub status: ReleaseStatus,
    /// Recipients the message is being delivered to (`released`).
    pub recipients: Vec<String>,
    /// The release request (`requested`).
    pub request_id: Option<String>,
}

fn needs_approval(who: &Principal, row: &m::Message) -> bool {
    who.role == Role::User && matches!(row.category.as_str(), "phishing" | "virus")
}

/// Releases a quarantined message: delivered through the normal delivery path and recorded
/// as ham for the classifier. An end user's release of phishing or virus becomes a release
/// request instead.
pub async fn release(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: ReleaseInput,
) -> Result<ReleaseOutcome, ApiError> {
    let row = visible(state, who, id, Folder::Quarantine).await?;
    if needs_approval(who, &row) {
        let comment = input.comment.as_deref().unwrap_or("").trim().to_owned();
        if comment.chars().count() > 1000 {
            return Err(ApiError::invalid(
                "comment",
                "must be at most 1000 characters",
            ));
        }
        let request =
            store::request_release(&state.db, &who.scope, &row.id, &who.subject, &comment).await?;
        return Ok(ReleaseOutcome {
            id: row.id.0,
            status: ReleaseStatus::Requested,
            recipients: Vec::new(),
            request_id: Some(request.id),
        });
    }
    let released = match store::release(
        &state.db,
        &who.scope,
        &row.id,
        input.recipients.as_deref(),
        &who.subject,
    )
    .await
    {
        Err(StoreError::Invalid(message)) => return Err(ApiError::invalid("recipients", message)),
        other => other?,
    };
    state.deliveries_committed(released.jobs);
    Ok(ReleaseOutcome {
        id: row.id.0,
        status: ReleaseStatus::Released,
        recipients: released.messages.into_iter().map(|m| m.recipient).collect(),
        request_id: None,
    })
}

/// Deletes a quarantined message (its blob goes with its last copy).
pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let keys = store::delete(
        &state.db,
        &who.scope,
        &MessageId(id.to_owned()),
        Folder::Quarantine,
    )
    .await?;
    drop_blobs(state, keys).await;
    Ok(())
}

/// Records that a message (quarantined or delivered) is spam, for the classifier.
pub async fn report_spam(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    store::report_spam(
        &state.db,
        &who.scope,
        &MessageId(id.to_owned()),
        &who.subject,
    )
    .await?;
    Ok(())
}

// ---- sender lists ----

/// The policy level a sender-list entry is added at.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum ListLevel {
    /// The recipient's own lists (the only level for end users).
    User,
    /// The recipient domain's overrides (admins).
    Domain,
    /// The tenant's policy (admins; the policy must be the tenant's own).
    Tenant,
}

/// Which entry to add, and where.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "SenderListInput")]
pub struct SenderListInput {
    /// Default: the message's envelope sender address. May be an address, a domain or an IP
    /// network.
    pub entry: Option<String>,
    /// Default `user`.
    pub level: Option<ListLevel>,
}

/// Which list an entry went to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum SenderList {
    Allow,
    Block,
}

/// The entry that was added.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct SenderListOutcome {
    pub entry: String,
    pub list: SenderList,
    pub level: ListLevel,
    /// The user, domain or tenant whose list changed.
    pub owner_id: String,
}

/// Adds the message's sender to the allow list (of the recipient, or for admins the chosen
/// level); it is removed from the same level's block list.
pub async fn allow_sender(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: SenderListInput,
) -> Result<SenderListOutcome, ApiError> {
    add_to_list(state, who, id, input, SenderList::Allow).await
}

/// Adds the message's sender to the block list (of the recipient, or for admins the chosen
/// level); it is removed from the same level's allow list.
pub async fn block_sender(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: SenderListInput,
) -> Result<SenderListOutcome, ApiError> {
    add_to_list(state, who, id, input, SenderList::Block).await
}

fn add_entry(
    lists: &mut core::SenderLists,
    entry: &core::ListEntry,
    list: SenderList,
) -> Result<(), ApiError> {
    let (add, remove) = match list {
        SenderList::Allow => (&mut lists.allow, &mut lists.block),
        SenderList::Block => (&mut lists.block, &mut lists.allow),
    };
    remove.retain(|e| e != entry);
    if !add.contains(entry) {
        if add.len() >= super::policies::MAX_LIST_ENTRIES {
            return Err(ApiError::Conflict(format!(
                "the list already holds {} entries",
                super::policies::MAX_LIST_ENTRIES
            )));
        }
        add.push(entry.clone());
    }
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(format!("encoding policy: {e}")))
}

async fn add_to_list(
    state: &AppState,
    who: &Principal,
    id: &str,
    input: SenderListInput,
    list: SenderList,
) -> Result<SenderListOutcome, ApiError> {
    let row = store::get(&state.db, &who.scope, &MessageId(id.to_owned())).await?;
    let level = input.level.unwrap_or(ListLevel::User);
    if level != ListLevel::User {
        who.require(Role::TenantAdmin)?;
    }
    let text = input.entry.clone().unwrap_or_else(|| row.mail_from.clone());
    if text.trim().is_empty() {
        return Err(ApiError::invalid(
            "entry",
            "the message has no sender address (null sender); give an entry",
        ));
    }
    let entry =
        core::ListEntry::parse(&text).map_err(|e| ApiError::invalid("entry", e.to_string()))?;
    let db = &state.db;
    let scope = &who.scope;
    let owner_id = match level {
        ListLevel::User => {
            let mut overrides = match policy_store::user_overrides(db, scope, &row.user_id).await? {
                Some(stored) => stored.decode()?,
                None => core::PolicyOverrides::default(),
            };
            add_entry(
                overrides.lists.get_or_insert_with(Default::default),
                &entry,
                list,
            )?;
            policy_store::set_user_overrides(db, scope, &row.user_id, &overrides).await?;
            row.user_id.0.clone()
        }
        ListLevel::Domain => {
            let mut overrides =
                match policy_store::domain_overrides(db, scope, &row.domain_id).await? {
                    Some(stored) => stored.decode()?,
                    None => core::PolicyOverrides::default(),
                };
            add_entry(
                overrides.lists.get_or_insert_with(Default::default),
                &entry,
                list,
            )?;
            policy_store::set_domain_overrides(db, scope, &row.domain_id, &overrides).await?;
            row.domain_id.0.clone()
        }
        ListLevel::Tenant => {
            let (_, policy) = policy_store::tenant_policy(db, scope, &row.tenant_id).await?;
            if !policy.is_writable_in(scope) {
                return Err(ApiError::Conflict(
                    "the tenant uses a built-in or shared policy: add the entry at domain level, or give the tenant its own policy".into(),
                ));
            }
            let mut settings = policy.decode_settings()?;
            add_entry(&mut settings.lists, &entry, list)?;
            let changes = m::PolicyChanges {
                settings: Some(encode(&settings)?),
                ..m::PolicyChanges::default()
            };
            policy_store::update(db, scope, &policy.id, changes).await?;
            row.tenant_id.0.clone()
        }
    };
    Ok(SenderListOutcome {
        entry: entry.to_string(),
        list,
        level,
        owner_id,
    })
}

// ---- release requests ----

/// An end user's request to release a phishing or virus message.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct ReleaseRequest {
    pub id: String,
    pub tenant_id: String,
    pub message_id: String,
    pub user_id: String,
    pub state: ReleaseRequestState,
    pub comment: String,
    pub requested_by: String,
    pub decided_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// Where a release request stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseRequestState {
    Pending,
    Approved,
    Denied,
}

impl ReleaseRequestState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => store::REQUEST_PENDING,
            Self::Approved => store::REQUEST_APPROVED,
            Self::Denied => store::REQUEST_DENIED,
        }
    }

    fn from_stored(s: &str) -> Self {
        match s {
            store::REQUEST_APPROVED => Self::Approved,
            store::REQUEST_DENIED => Self::Denied,
            _ => Self::Pending,
        }
    }
}

impl From<m::ReleaseRequest> for ReleaseRequest {
    fn from(r: m::ReleaseRequest) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id.0,
            message_id: r.message_id.0,
            user_id: r.user_id.0,
            state: ReleaseRequestState::from_stored(&r.state),
            comment: r.comment,
            requested_by: r.requested_by,
            decided_by: r.decided_by,
            created_at: utc(r.created_at),
            decided_at: r.decided_at.map(utc),
        }
    }
}

/// Filter of release requests.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "ReleaseRequestFilter")]
pub struct ReleaseRequestFilter {
    pub state: Option<ReleaseRequestState>,
}

/// Release requests visible to the caller (a user: their own), newest first.
pub async fn release_requests(
    state: &AppState,
    who: &Principal,
    filter: &ReleaseRequestFilter,
    page: &PageParams,
) -> Result<Page<ReleaseRequest>, ApiError> {
    let page = store::release_requests(
        &state.db,
        &who.scope,
        filter.state.map(ReleaseRequestState::as_str),
        &page.request(),
    )
    .await?;
    Ok(Page::from_store(page, ReleaseRequest::from))
}

/// Approves (releases the requester's copy) or denies a pending release request (tenant
/// admins and above).
pub async fn decide_release_request(
    state: &AppState,
    who: &Principal,
    request_id: &str,
    approve: bool,
) -> Result<ReleaseRequest, ApiError> {
    let request = store::release_request(&state.db, &who.scope, request_id).await?;
    who.require(Role::TenantAdmin)?;
    if request.state != store::REQUEST_PENDING {
        return Err(ApiError::Conflict(format!(
            "the request was already {}",
            request.state
        )));
    }
    let (decided, released) =
        store::decide_release_request(&state.db, &who.scope, request_id, approve, &who.subject)
            .await?;
    if let Some(released) = released {
        state.deliveries_committed(released.jobs);
    }
    Ok(decided.into())
}

// ---- bulk ----

/// An action applied to many messages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Release,
    Delete,
    AllowSender,
    BlockSender,
    ReportSpam,
}

/// The same action on several quarantined messages.
#[derive(Debug, Clone, Deserialize, ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
#[graphql(name = "BulkQuarantineInput")]
pub struct BulkInput {
    pub action: BulkAction,
    /// Message ids, at most 500.
    pub ids: Vec<String>,
    /// For `allow_sender` / `block_sender`: the level (default `user`).
    pub level: Option<ListLevel>,
}

/// The outcome for one id of a bulk request.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct BulkItemResult {
    pub id: String,
    pub ok: bool,
    /// For a release: `released` or `requested`.
    pub status: Option<ReleaseStatus>,
    /// The error code when `ok` is false (`NOT_FOUND`, `CONFLICT`, …).
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Per-item results of a bulk request, in request order.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct BulkResult {
    pub results: Vec<BulkItemResult>,
    pub succeeded: i32,
    pub failed: i32,
}

/// Applies one action to each id; each item succeeds or fails on its own.
pub async fn bulk(
    state: &AppState,
    who: &Principal,
    input: BulkInput,
) -> Result<BulkResult, ApiError> {
    if input.ids.is_empty() || input.ids.len() > MAX_BULK {
        return Err(ApiError::invalid(
            "ids",
            format!("give between 1 and {MAX_BULK} ids"),
        ));
    }
    let mut results = Vec::with_capacity(input.ids.len());
    for id in &input.ids {
        let lists = SenderListInput {
            entry: None,
            level: input.level,
        };
        let outcome: Result<Option<ReleaseStatus>, ApiError> = match input.action {
            BulkAction::Release => release(state, who, id, ReleaseInput::default())
                .await
                .map(|o| Some(o.status)),
            BulkAction::Delete => delete(state, who, id).await.map(|()| None),
            BulkAction::AllowSender => allow_sender(state, who, id, lists).await.map(|_| None),
            BulkAction::BlockSender => block_sender(state, who, id, lists).await.map(|_| None),
            BulkAction::ReportSpam => report_spam(state, who, id).await.map(|()| None),
        };
        results.push(match outcome {
            Ok(status) => BulkItemResult {
                id: id.clone(),
                ok: true,
                status,
                code: None,
                message: None,
            },
            Err(err) => {
                let problem = err.problem();
                BulkItemResult {
                    id: id.clone(),
                    ok: false,
                    status: None,
                    code: Some(problem.code),
                    message: Some(problem.detail),
                }
            }
        });
    }
    let succeeded = results.iter().filter(|r| r.ok).count() as i32;
    Ok(BulkResult {
        failed: results.len() as i32 - succeeded,
        succeeded,
        results,
    })
}
