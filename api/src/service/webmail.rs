//! The backup webmail: a user's retained copies of delivered mail (list, search, read with
//! the quarantine's safe rendering) and their redistribution to the mailbox through the
//! normal delivery path. Admins see the retained copies of their scope. Users can also
//! write new messages and replies ([`send`]), which leave through the outbound relay signed
//! with their domain's DKIM key, so a downstream outage does not stop them working.

use chrono::{DateTime, Utc};
use cleanmail_core::policy::BackupWebmail;
use cleanmail_schema::models::MessageLogEntry;
use cleanmail_schema::store::mail::{self, DeliverMessage};
use cleanmail_schema::store::messages::{self as store, Folder};
use cleanmail_schema::store::{domains, policies as policy_store, tenants, users};
use cleanmail_schema::{JobId, MessageId, MessageLogId, Scope, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::quarantine::{MessageDetail, MessageSearch, StoredMessage, detail, drop_blobs};
use super::{Page, PageParams, utc};
use crate::auth::Principal;
use crate::{ApiError, AppState, Validator};

/// Retained messages visible to the caller (a user: their own), newest first.
pub async fn list(
    state: &AppState,
    who: &Principal,
    search: &MessageSearch,
    page: &PageParams,
) -> Result<Page<StoredMessage>, ApiError> {
    let filter = search.to_store(Folder::Retained)?;
    let page = store::list(&state.db, &who.scope, &filter, &page.request()).await?;
    Ok(Page::from_store(page, StoredMessage::from))
}

/// One retained message, rendered safely.
pub async fn get(state: &AppState, who: &Principal, id: &str) -> Result<MessageDetail, ApiError> {
    detail(state, who, id, Folder::Retained).await
}

/// Re-delivers a retained message to its recipient's mailbox (e.g. after an accidental
/// deletion downstream).
pub async fn redistribute(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<StoredMessage, ApiError> {
    let message = store::redistribute(&state.db, &who.scope, &MessageId(id.to_owned())).await?;
    state.deliveries_committed(1);
    Ok(message.into())
}

/// Deletes a retained copy (its blob goes with its last copy).
pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    let keys = store::delete(
        &state.db,
        &who.scope,
        &MessageId(id.to_owned()),
        Folder::Retained,
    )
    .await?;
    drop_blobs(state, keys).await;
    Ok(())
}

/// After a policy change: purges the retained copies (and their blobs) of every user of
/// `tenant_ids` whose backup webmail is now off. Ingest stops keeping copies by itself.
pub(crate) async fn purge_switched_off(
    state: &AppState,
    tenant_ids: &[TenantId],
) -> Result<(), ApiError> {
    for tenant_id in tenant_ids {
        let tenant = tenants::get(&state.db, &Scope::Platform, tenant_id).await?;
        let scope = Scope::Tenant {
            reseller_id: tenant.reseller_id,
            tenant_id: tenant.id,
        };
        let mut off = Vec::new();
        for user_id in store::users_with_retained(&state.db, &scope).await? {
            let explained = policy_store::effective_for_user(&state.db, &scope, &user_id).await?;
            if explained.effective.policy.backup_webmail == BackupWebmail::Off {
                off.push(user_id);
            }
        }
        if !off.is_empty() {
            let keys = store::purge_retained(&state.db, &scope, &off).await?;
            tracing::info!(tenant = %tenant_id, users = off.len(), blobs = keys.len(), "backup webmail switched off: retained copies purged");
            drop_blobs(state, keys).await;
        }
    }
    Ok(())
}

/// At most this many recipients (To and Cc together) per message sent from the webmail.
pub const MAX_SEND_RECIPIENTS: usize = 50;
/// At most this many bytes of text per message sent from the webmail.
pub const MAX_SEND_TEXT: usize = 1024 * 1024;
/// Recipients a mailbox user may address from the webmail per hour, by default: enough for
/// a day of work while the own mail server is down, too few to make a stolen password worth
/// much to a spammer.
pub const DEFAULT_SEND_LIMIT: u32 = 200;

/// A new message, or a reply, written in the backup webmail.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
#[graphql(name = "SendMessageInput")]
pub struct SendMessage {
    /// Recipients. For a reply, default: the original's Reply-To, else its From.
    #[serde(default)]
    #[graphql(default)]
    pub to: Vec<String>,
    #[serde(default)]
    #[graphql(default)]
    pub cc: Vec<String>,
    /// For a reply, default: `Re: ` and the original subject.
    pub subject: Option<String>,
    /// The plain-text body.
    pub text: String,
    /// Id of one of your messages (retained or quarantined) this replies to: sets
    /// `In-Reply-To` and `References`.
    pub in_reply_to: Option<String>,
}

/// A message sent through the outbound relay, and how its delivery went.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct SentMessage {
    /// Its message-log id.
    pub id: String,
    /// Its `Message-ID` header.
    pub message_id: String,
    pub from: String,
    pub recipients: Vec<String>,
    pub subject: String,
    /// The DKIM selector it was signed with; absent when the domain has no active key.
    pub dkim_selector: Option<String>,
    pub queued_at: DateTime<Utc>,
    /// `queued`, `deferred` (the relay will be tried again), `delivered`, `bounced` or
    /// `partially_bounced` (the sender got a delivery status notification).
    pub state: String,
    /// Attempts made to hand it to the relay.
    pub delivery_attempts: i32,
    /// The relay's last reply, per recipient.
    pub last_response: Option<String>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<MessageLogEntry> for SentMessage {
    fn from(entry: MessageLogEntry) -> Self {
        let verdict: serde_json::Value = serde_json::from_str(&entry.verdict).unwrap_or_default();
        Self {
            id: entry.id.0,
            message_id: entry.message_id_header,
            from: entry.mail_from,
            recipients: serde_json::from_str(&entry.rcpt_to).unwrap_or_default(),
            subject: entry.subject,
            dkim_selector: verdict["dkim_selector"].as_str().map(str::to_owned),
            queued_at: utc(entry.received_at),
            state: entry.state,
            delivery_attempts: entry.delivery_attempts,
            last_response: entry.last_response,
            updated_at: utc(entry.updated_at),
        }
    }
}

/// The sent folder: what the caller (a mailbox user) sent from the webmail, newest first,
/// with each message's delivery state.
pub async fn sent(
    state: &AppState,
    who: &Principal,
    page: &PageParams,
) -> Result<Page<SentMessage>, ApiError> {
    let user = sender(state, who).await?;
    let page = store::sent(&state.db, &who.scope, &user.address, &page.request()).await?;
    Ok(Page::from_store(page, Into::into))
}

/// The cursor of a sent message in its list.
pub fn sent_cursor(message: &SentMessage) -> String {
    store::cursor(message.queued_at.naive_utc(), &message.id)
}

/// The mailbox user behind `who`: only users send, as themselves.
async fn sender(
    state: &AppState,
    who: &Principal,
) -> Result<cleanmail_schema::models::User, ApiError> {
    let Scope::User { user_id, .. } = &who.scope else {
        return Err(ApiError::Forbidden(
            "only a mailbox user sends from the webmail, as themselves".into(),
        ));
    };
    Ok(users::get(&state.db, &who.scope, user_id).await?)
}

/// What a reply takes from the message it answers.
struct Original {
    message_id: String,
    references: String,
    reply_to: String,
    subject: String,
}

async fn original(state: &AppState, who: &Principal, id: &str) -> Result<Original, ApiError> {
    let row = store::get(&state.db, &who.scope, &MessageId(id.to_owned())).await?;
    let raw = state
        .blobs()?
        .get(&row.blob_key)
        .await
        .map_err(ApiError::Internal)?;
    let parsed = mail_parser::MessageParser::default().parse_headers(&raw);
    let header_text = |name: &str| {
        parsed
            .as_ref()
            .and_then(|m| m.header_raw(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let first_address = |addr: Option<&mail_parser::Address>| {
        addr.and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_owned)
    };
    let reply_to = parsed
        .as_ref()
        .and_then(|m| first_address(m.reply_to()).or_else(|| first_address(m.from())))
        .unwrap_or_else(|| row.mail_from.clone());
    let message_id = header_text("Message-ID");
    let references = format!("{} {}", header_text("References"), message_id)
        .trim()
        .to_owned();
    Ok(Original {
        message_id,
        references,
        reply_to,
        subject: row.subject,
    })
}

/// Refuses a message that would take `address` over the hourly send limit, saying when
/// enough of the last hour's recipients will have aged out.
async fn check_send_limit(
    state: &AppState,
    who: &Principal,
    address: &str,
    recipients: usize,
) -> Result<(), ApiError> {
    let limit = state.webmail_send_limit as usize;
    if limit == 0 {
        return Ok(());
    }
    if recipients > limit {
        return Err(ApiError::invalid(
            "to",
            format!("at most {limit} recipients per hour may be sent from the webmail"),
        ));
    }
    let now = cleanmail_schema::now();
    let hour = chrono::Duration::hours(1);
    let sent = store::sent_since(&state.db, &who.scope, address, now - hour).await?;
    let used: usize = sent.iter().map(|(_, count)| count).sum();
    if used + recipients <= limit {
        return Ok(());
    }
    // When the oldest sends have aged out far enough for this message.
    let mut still_used = used;
    let mut free_at = now + hour;
    for (at, count) in &sent {
        still_used -= count;
        if still_used + recipients <= limit {
            free_at = *at + hour;
            break;
        }
    }
    let retry_after_secs = u64::try_from((free_at - now).num_seconds())
        .unwrap_or(0)
        .max(1);
    Err(ApiError::RateLimited {
        detail: format!(
            "sending limit reached: at most {limit} recipients per hour from the webmail \
             ({used} used in the last hour, this message has {recipients}); try again in \
             {retry_after_secs} seconds"
        ),
        retry_after_secs,
    })
}

fn parse_recipients(
    v: &mut Validator,
    field: &str,
    list: &[String],
) -> Vec<cleanmail_core::EmailAddress> {
    list.iter()
        .filter_map(|a| v.check(field, a.trim().parse::<cleanmail_core::EmailAddress>()))
        .collect()
}

/// Sends a message (or a reply) from the caller's mailbox through the outbound relay,
/// signed with the domain's active DKIM key: the webmail keeps users working while their
/// own mail server is down. Only a mailbox user can send, as themselves.
pub async fn send(
    state: &AppState,
    who: &Principal,
    input: SendMessage,
) -> Result<SentMessage, ApiError> {
    let user = sender(state, who).await?;
    if !state.outbound_relay {
        return Err(ApiError::NotConfigured(
            "no outbound relay is configured: mail cannot be sent from the webmail".into(),
        ));
    }
    let original = match &input.in_reply_to {
        Some(id) => Some(original(state, who, id).await?),
        None => None,
    };

    let mut v = Validator::default();
    let mut to = parse_recipients(&mut v, "to", &input.to);
    let cc = parse_recipients(&mut v, "cc", &input.cc);
    if let (true, Some(original)) = (input.to.is_empty(), &original) {
        to.extend(v.check(
            "to",
            original.reply_to.parse::<cleanmail_core::EmailAddress>(),
        ));
    }
    if to.is_empty() && cc.is_empty() && v.is_empty() {
        v.error("to", "at least one recipient is required");
    }
    if to.len() + cc.len() > MAX_SEND_RECIPIENTS {
        v.error(
            "to",
            format!("at most {MAX_SEND_RECIPIENTS} recipients (to and cc together)"),
        );
    }
    let subject = match (&input.subject, &original) {
        (Some(subject), _) => subject.trim().to_owned(),
        (None, Some(original)) if original.subject.to_ascii_lowercase().starts_with("re:") => {
            original.subject.clone()
        }
        (None, Some(original)) => format!("Re: {}", original.subject),
        (None, None) => String::new(),
    };
    if subject.chars().count() > 500 || subject.contains(['\r', '\n']) {
        v.error("subject", "must be one line of at most 500 characters");
    }
    if input.text.len() > MAX_SEND_TEXT {
        v.error("text", format!("must be at most {MAX_SEND_TEXT} bytes"));
    }
    v.finish()?;
    check_send_limit(state, who, &user.address, to.len() + cc.len()).await?;

    let domain = domains::get(&state.db, &who.scope, &user.domain_id).await?;
    let log_id = MessageLogId::new();
    let message_id = format!("<{log_id}@{}>", domain.name);
    let mailbox = |address: &str, name: Option<String>| {
        address
            .parse::<lettre::Address>()
            .map(|a| lettre::message::Mailbox::new(name, a))
            .map_err(|e| ApiError::BadRequest(format!("address {address}: {e}")))
    };
    let display_name = Some(user.display_name.clone()).filter(|n| !n.trim().is_empty());
    let mut builder = lettre::Message::builder()
        .from(mailbox(&user.address, display_name)?)
        .subject(subject.clone())
        .message_id(Some(message_id.clone()))
        .header(lettre::message::header::ContentType::TEXT_PLAIN);
    for address in &to {
        builder = builder.to(mailbox(&address.to_string(), None)?);
    }
    for address in &cc {
        builder = builder.cc(mailbox(&address.to_string(), None)?);
    }
    if let Some(original) = original.as_ref().filter(|o| !o.message_id.is_empty()) {
        builder = builder
            .in_reply_to(original.message_id.clone())
            .references(original.references.clone());
    }
    let raw = builder
        .body(input.text)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
        .formatted();
    let (raw, dkim_selector) =
        super::dkim::sign_outbound(state, who, &domain.id, &domain.name, raw).await?;

    let recipients: Vec<String> = to.iter().chain(&cc).map(ToString::to_string).collect();
    let blob_key = format!("outbound/{log_id}.eml");
    let blobs = state.blobs()?;
    blobs
        .put(&blob_key, raw.clone())
        .await
        .map_err(ApiError::Internal)?;
    let now = cleanmail_schema::now();
    let entry = MessageLogEntry {
        id: log_id.clone(),
        tenant_id: user.tenant_id.clone(),
        mail_from: user.address.clone(),
        rcpt_to: serde_json::to_string(&recipients).unwrap_or_else(|_| "[]".into()),
        client_ip: String::new(),
        helo: String::new(),
        tls: true,
        from_header: user.address.clone(),
        subject: subject.clone(),
        message_id_header: message_id.clone(),
        size_bytes: i64::try_from(raw.len()).unwrap_or(i64::MAX),
        score: 0.0,
        category: "outbound".to_owned(),
        verdict: serde_json::json!({ "dkim_selector": dkim_selector }).to_string(),
        actions: "[]".to_owned(),
        state: "queued".to_owned(),
        delivery_attempts: 0,
        last_response: None,
        blob_key: Some(blob_key.clone()),
        received_at: now,
        updated_at: now,
    };
    let job = DeliverMessage {
        log_id: log_id.clone(),
        tenant_id: user.tenant_id.clone(),
        domain_id: None,
        blob_key: blob_key.clone(),
        mail_from: user.address.clone(),
        rcpt_to: recipients.clone(),
        subject_prefix: None,
        arrived_at: now,
        dsn: false,
    }
    .into_job(JobId(format!("deliver_message:{log_id}:outbound")))?;
    if let Err(e) = mail::log_outbound(&state.db, &entry, &job).await {
        drop_blobs(state, vec![blob_key]).await;
        return Err(e.into());
    }
    state.deliveries_committed(1);
    tracing::info!(log = %log_id, user = %user.id, recipients = recipients.len(), signed = dkim_selector.is_some(), "webmail message queued for the outbound relay");
    Ok(entry.into())
}
