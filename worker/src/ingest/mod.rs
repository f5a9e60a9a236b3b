//! SMTP ingest: the production [`SmtpHandler`](crate::smtp::SmtpHandler) and its group
//! committer.
//!
//! The path of one message: `RCPT` is checked against the database
//! ([`unscoped_resolve_recipient_for_smtp`](cleanmail_schema::store::routing::unscoped_resolve_recipient_for_smtp));
//! at the final dot the engine runs on the complete message; if every recipient's action is
//! reject the message is refused (`550 5.7.1`); otherwise the raw bytes and one
//! [`IngestMessage`] job per tenant are handed to the [`Committer`], which writes and flushes
//! the blobs of all sessions' pending messages together, commits their jobs in one
//! transaction, and only then lets the sessions answer `250`.

mod committer;
mod handler;

use chrono::NaiveDateTime;
use cleanmail_core::Verdict;
use cleanmail_schema::{AliasId, DomainId, MessageLogId, TenantId, UserId};
use serde::{Deserialize, Serialize};

pub use committer::Committer;
pub use handler::IngestHandler;

/// Job kind of [`IngestMessage`].
pub const INGEST_MESSAGE: &str = "ingest_message";

/// The job made durable before `250`: one accepted message for one tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestMessage {
    pub log_id: MessageLogId,
    pub tenant_id: TenantId,
    pub blob_key: String,
    pub received_at: NaiveDateTime,
    /// MAIL FROM, empty for `<>`.
    pub mail_from: String,
    pub client_ip: String,
    pub helo: String,
    pub tls: bool,
    pub size_bytes: i64,
    pub headers: HeaderSummary,
    /// This tenant's envelope recipients, in envelope order.
    pub recipients: Vec<IngestRecipient>,
    /// The verdict for exactly these recipients.
    pub verdict: Verdict,
}

/// One envelope recipient, resolved to its mailbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestRecipient {
    /// The address as given in RCPT (normalised).
    pub address: String,
    pub domain_id: DomainId,
    pub user_id: UserId,
    pub alias_id: Option<AliasId>,
}

/// Headers kept in the log and the quarantine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HeaderSummary {
    pub from: String,
    pub subject: String,
    pub message_id: String,
}

impl HeaderSummary {
    /// Reads From, Subject and Message-ID (decoded) from a raw message; a raw 8-bit subject
    /// is decoded in its charset ([`cleanmail_core::message::subject`]).
    pub fn parse(raw: &[u8]) -> Self {
        let Some(message) = mail_parser::MessageParser::new().parse_headers(raw) else {
            return Self::default();
        };
        let from = message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned();
        Self {
            from,
            subject: cleanmail_core::message::subject(&message),
            message_id: message.message_id().unwrap_or_default().to_owned(),
        }
    }
}

/// The start of the UTC hour `at` falls in (traffic counters are hourly).
pub fn hour_of(at: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike as _;
    at.date().and_hms_opt(at.hour(), 0, 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::HeaderSummary;

    #[test]
    fn a_raw_8bit_subject_is_kept_readable() {
        // EUC-KR bytes for "광고" (advertisement), as legacy Korean mailers send them.
        let mut raw = b"From: Shop <shop@mall.example>\r\nSubject: [".to_vec();
        raw.extend_from_slice(&[0xb1, 0xa4, 0xb0, 0xed]);
        raw.extend_from_slice(b"] sale\r\nMessage-ID: <1@mall.example>\r\n");
        raw.extend_from_slice(b"Content-Type: text/plain; charset=euc-kr\r\n\r\nbody\r\n");
        let summary = HeaderSummary::parse(&raw);
        assert_eq!(summary.subject, "[광고] sale");
        assert_eq!(summary.from, "shop@mall.example");
    }
}
