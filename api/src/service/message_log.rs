//! Message tracking: the message log of the caller's scope (every message received,
//! refused or sent, with its envelope, verdict and delivery state), for admins. Mailbox
//! users see their own mail through the quarantine, the backup webmail and the sent folder.

use chrono::{DateTime, Utc};
use cleanmail_schema::models::MessageLogEntry;
use cleanmail_schema::store::messages as store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::quarantine::{MessageSearch, VerdictSymbol};
use super::{Page, PageParams, utc};
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState};

/// One message-log entry: what arrived (or left), what the filter said, where it went.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct LogEntry {
    pub id: String,
    pub tenant_id: String,
    pub received_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// Envelope sender (MAIL FROM); empty for the null sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    pub client_ip: String,
    pub helo: String,
    pub tls: bool,
    pub from_header: String,
    pub subject: String,
    /// Its `Message-ID` header.
    pub message_id: String,
    pub size_bytes: i64,
    pub score: f64,
    /// `clean`, `newsletter`, `spam`, `phishing`, `virus`, `outbound` (sent from the
    /// backup webmail) or what refused it.
    pub category: String,
    /// `queued`, `delivered`, `deferred`, `bounced`, `partially_bounced`, `quarantined`,
    /// `rejected`, …
    pub state: String,
    pub delivery_attempts: i32,
    /// The downstream server's (or relay's) last reply.
    pub last_response: Option<String>,
    /// The rules that fired, highest score first.
    pub symbols: Vec<VerdictSymbol>,
}

#[derive(Deserialize, Default)]
struct StoredSymbols {
    #[serde(default)]
    symbols: Vec<VerdictSymbol>,
}

impl From<MessageLogEntry> for LogEntry {
    fn from(entry: MessageLogEntry) -> Self {
        let verdict: StoredSymbols = serde_json::from_str(&entry.verdict).unwrap_or_default();
        Self {
            id: entry.id.0,
            tenant_id: entry.tenant_id.0,
            received_at: utc(entry.received_at),
            updated_at: utc(entry.updated_at),
            mail_from: entry.mail_from,
            rcpt_to: serde_json::from_str(&entry.rcpt_to).unwrap_or_default(),
            client_ip: entry.client_ip,
            helo: entry.helo,
            tls: entry.tls,
            from_header: entry.from_header,
            subject: entry.subject,
            message_id: entry.message_id_header,
            size_bytes: entry.size_bytes,
            score: entry.score,
            category: entry.category,
            state: entry.state,
            delivery_attempts: entry.delivery_attempts,
            last_response: entry.last_response,
            symbols: verdict.symbols,
        }
    }
}

/// Message-log entries of the caller's scope (tenant admins and above), newest first.
pub async fn list(
    state: &AppState,
    who: &Principal,
    search: &MessageSearch,
    page: &PageParams,
) -> Result<Page<LogEntry>, ApiError> {
    who.require(Role::TenantAdmin)?;
    if search.user_id.is_some() {
        return Err(ApiError::invalid(
            "user_id",
            "the message log is searched by recipient, not by mailbox",
        ));
    }
    // The same validated filter as the quarantine's; the folder does not apply to the log.
    let filter = search.to_store(cleanmail_schema::store::messages::Folder::Retained)?;
    let page = store::log_list(&state.db, &who.scope, &filter, &page.request()).await?;
    Ok(Page::from_store(page, Into::into))
}

/// The cursor of a log entry in its list.
pub fn cursor(entry: &LogEntry) -> String {
    store::cursor(entry.received_at.naive_utc(), &entry.id)
}
