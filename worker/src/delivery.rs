//! Downstream delivery over SMTP with retries and backoff.
//!
//! - [`DeliveryClient::deliver`] sends raw message bytes with the original envelope to a
//!   tenant's downstream server (lettre, opportunistic STARTTLS) and classifies the result.
//! - [`RetryPolicy::next_attempt`] is the pure backoff schedule for temporary failures.
//! - [`build_dsn`] writes the RFC 3464 bounce for a permanent failure.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::address::{Address, Envelope as LettreEnvelope};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// How to use TLS towards a downstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DownstreamTls {
    /// Plain SMTP, never STARTTLS.
    None,
    /// STARTTLS when the server offers it, certificate not verified (RFC 7435).
    #[default]
    Opportunistic,
    /// STARTTLS required and the certificate verified against the web PKI roots.
    Required,
}

/// A downstream SMTP server that receives a domain's filtered mail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Downstream {
    /// Host name or IP address.
    pub host: String,
    /// TCP port, usually 25.
    pub port: u16,
    /// TLS behaviour.
    pub tls: DownstreamTls,
    /// Timeout for each SMTP command and for connecting.
    pub timeout: Duration,
}

impl Downstream {
    /// A downstream at `host:port` with opportunistic STARTTLS and a 60 s timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            tls: DownstreamTls::Opportunistic,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The downstream server accepted the message; `response` is its final reply.
    Delivered {
        /// Reply to the final dot, e.g. `250 2.0.0 Ok: queued as 1234`.
        response: String,
    },
    /// Try again later: 4xx reply, connection refused, timeout, TLS failure.
    TemporaryFailure(String),
    /// Do not retry: 5xx reply or a message/envelope the server cannot take.
    PermanentFailure(String),
}

/// Sends messages downstream, keeping one pooled transport per downstream server.
pub struct DeliveryClient {
    hello_name: String,
    transports: Mutex<HashMap<Downstream, AsyncSmtpTransport<Tokio1Executor>>>,
}

impl DeliveryClient {
    /// A client that introduces itself with `hello_name` in EHLO.
    pub fn new(hello_name: impl Into<String>) -> Self {
        Self {
            hello_name: hello_name.into(),
            transports: Mutex::default(),
        }
    }

    /// Sends `message` as is, with `mail_from` (empty for `<>`) and every recipient in
    /// `rcpt_to`, in one SMTP transaction.
    ///
    /// A 5xx on any recipient fails the whole transaction permanently (lettre does not
    /// report per-recipient results); callers wanting per-recipient bounces group
    /// recipients accordingly.
    pub async fn deliver(
        &self,
        downstream: &Downstream,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> DeliveryOutcome {
        let envelope = match envelope(mail_from, rcpt_to) {
            Ok(envelope) => envelope,
            Err(reason) => return DeliveryOutcome::PermanentFailure(reason),
        };
        let transport = match self.transport(downstream) {
            Ok(transport) => transport,
            Err(reason) => return DeliveryOutcome::TemporaryFailure(reason),
        };
        // lettre always terminates DATA with `\r\n.\r\n`; without this the downstream would
        // get one extra empty line and the bytes would no longer match what we accepted.
        let payload = message.strip_suffix(b"\r\n").unwrap_or(message);
        match transport.send_raw(&envelope, payload).await {
            Ok(response) => DeliveryOutcome::Delivered {
                response: format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ),
            },
            Err(err) => classify_error(&err),
        }
    }

    /// The cached transport for `downstream`, built on first use.
    fn transport(
        &self,
        downstream: &Downstream,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let mut transports = self.transports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(transport) = transports.get(downstream) {
            return Ok(transport.clone());
        }
        let tls = match downstream.tls {
            DownstreamTls::None => Tls::None,
            DownstreamTls::Opportunistic => Tls::Opportunistic(
                TlsParameters::builder(downstream.host.clone())
                    .dangerous_accept_invalid_certs(true)
                    .dangerous_accept_invalid_hostnames(true)
                    .build_rustls()
                    .map_err(|e| format!("tls setup: {e}"))?,
            ),
            DownstreamTls::Required => Tls::Required(
                TlsParameters::builder(downstream.host.clone())
                    .build_rustls()
                    .map_err(|e| format!("tls setup: {e}"))?,
            ),
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&downstream.host)
            .port(downstream.port)
            .tls(tls)
            .timeout(Some(downstream.timeout))
            .hello_name(ClientId::Domain(self.hello_name.clone()))
            .build();
        transports.insert(downstream.clone(), transport.clone());
        Ok(transport)
    }
}

/// Builds lettre's envelope; an unparsable address is a permanent failure.
fn envelope(mail_from: &str, rcpt_to: &[String]) -> Result<LettreEnvelope, String> {
    let parse = |address: &str| {
        address
            .parse::<Address>()
            .map_err(|e| format!("550 5.1.3 invalid address <{address}>: {e}"))
    };
    let from = if mail_from.is_empty() {
        None
    } else {
        Some(parse(mail_from)?)
    };
    let to = rcpt_to
        .iter()
        .map(|rcpt| parse(rcpt))
        .collect::<Result<Vec<_>, _>>()?;
    LettreEnvelope::new(from, to).map_err(|e| format!("554 5.5.1 invalid envelope: {e}"))
}

/// Maps a lettre error to a temporary or permanent failure.
fn classify_error(err: &lettre::transport::smtp::Error) -> DeliveryOutcome {
    let detail = std::error::Error::source(err)
        .map(ToString::to_string)
        .unwrap_or_default();
    if let Some(code) = err.status() {
        let reason = format!("{code} {detail}").trim_end().to_owned();
        return if err.is_permanent() {
            DeliveryOutcome::PermanentFailure(reason)
        } else {
            DeliveryOutcome::TemporaryFailure(reason)
        };
    }
    if err.is_client() {
        // The message or envelope needs an extension the server lacks (8BITMIME, SMTPUTF8).
        return DeliveryOutcome::PermanentFailure(format!("554 5.6.0 {err}"));
    }
    // Connection refused, timeouts, TLS handshake, garbled replies: all worth a retry.
    DeliveryOutcome::TemporaryFailure(err.to_string())
}

/// Exponential backoff for temporary delivery failures (RFC 5321 section 4.5.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt.
    pub initial_delay: Duration,
    /// Upper bound for the wait between attempts.
    pub max_delay: Duration,
    /// How long after arrival to keep trying before giving up with a DSN.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(3600),
            max_age: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failed_attempts` failures: initial, doubling, capped at `max_delay`.
    pub fn delay_after(&self, failed_attempts: u32) -> Duration {
        let doublings = failed_attempts.saturating_sub(1).min(31);
        self.initial_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// When to try again after the `failed_attempts`-th failure at `now`, for a message
    /// that arrived at `arrived_at`; `None` means give up (send a DSN).
    ///
    /// The last attempt is scheduled at the deadline itself, so a message is always tried
    /// once more just before it expires.
    pub fn next_attempt(
        &self,
        arrived_at: DateTime<Utc>,
        failed_attempts: u32,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let max_age = chrono::Duration::from_std(self.max_age).unwrap_or(chrono::TimeDelta::MAX);
        let deadline = arrived_at.checked_add_signed(max_age)?;
        if now >= deadline {
            return None;
        }
        let delay = chrono::Duration::from_std(self.delay_after(failed_attempts))
            .unwrap_or(chrono::TimeDelta::MAX);
        let next = now.checked_add_signed(delay).unwrap_or(deadline);
        Some(next.min(deadline))
    }
}

/// One recipient a DSN reports as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecipient {
    /// The envelope recipient.
    pub address: String,
    /// The last reply or error, e.g. `550 5.1.1 user unknown`.
    pub reason: String,
}

/// What a delivery status notification is about.
#[derive(Debug, Clone)]
pub struct DsnInput<'a> {
    /// Our host name (Reporting-MTA, MAILER-DAEMON domain).
    pub reporting_mta: &'a str,
    /// The downstream server that refused the message, if it answered.
    pub remote_mta: Option<&'a str>,
    /// MAIL FROM of the original message; no DSN is made when it is empty.
    pub original_sender: &'a str,
    /// The recipients that failed.
    pub recipients: &'a [FailedRecipient],
    /// When the original message arrived.
    pub arrival_date: DateTime<Utc>,
    /// The original message; its header section is returned (text/rfc822-headers).
    pub original_message: &'a [u8],
    /// True when retries ran out (4.4.7) rather than a 5xx reply.
    pub expired: bool,
    /// The time to stamp on the report.
    pub now: DateTime<Utc>,
}

/// A bounce ready to be queued for delivery to the original sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// Always empty: DSNs use the null reverse-path `<>` so they never bounce back.
    pub mail_from: String,
    /// The original sender.
    pub rcpt_to: Vec<String>,
    /// The complete RFC 3464 `multipart/report` message.
    pub message: Vec<u8>,
}

/// Builds the RFC 3464 delivery status notification for failed recipients.
///
/// Returns `None` when the original MAIL FROM was empty (a bounce is never bounced) or
/// there is nothing to report.
pub fn build_dsn(input: &DsnInput<'_>) -> Option<Dsn> {
    let sender = input.original_sender.trim();
    if sender.is_empty() || input.recipients.is_empty() {
        return None;
    }
    let mta = one_line(input.reporting_mta);
    let boundary = format!("{}/{mta}", uuid::Uuid::new_v4().simple());
    let date = input.now.to_rfc2822();
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\n\
         To: <{}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{}@{mta}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n",
        one_line(sender),
        uuid::Uuid::new_v4().simple(),
    ));

    // Part 1: the human-readable explanation.
    out.push_str(&format!(
        "--{boundary}\r\n\
         Content-Description: Notification\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         This is the mail system at host {mta}.\r\n\
         \r\n\
         I'm sorry to have to inform you that your message could not\r\n\
         be delivered to one or more recipients.\r\n\
         \r\n"
    ));
    if input.expired {
        out.push_str("Delivery was retried until the message expired.\r\n\r\n");
    }
    for recipient in input.recipients {
        out.push_str(&format!(
            "<{}>: {}\r\n",
            one_line(&recipient.address),
            one_line(&recipient.reason)
        ));
    }
    out.push_str("\r\n");

    // Part 2: the machine-readable delivery status.
    out.push_str(&format!(
        "--{boundary}\r\n\
         Content-Description: Delivery report\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {mta}\r\n\
         Arrival-Date: {}\r\n",
        input.arrival_date.to_rfc2822()
    ));
    for recipient in input.recipients {
        let status = if input.expired {
            "4.4.7".to_owned()
        } else {
            enhanced_status(&recipient.reason).unwrap_or_else(|| "5.0.0".to_owned())
        };
        out.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {status}\r\n",
            one_line(&recipient.address)
        ));
        if let Some(remote) = input.remote_mta {
            out.push_str(&format!("Remote-MTA: dns; {}\r\n", one_line(remote)));
        }
        if reply_code(&recipient.reason).is_some() {
            out.push_str(&format!(
                "Diagnostic-Code: smtp; {}\r\n",
                one_line(&recipient.reason)
            ));
        } else {
            out.push_str(&format!(
                "Diagnostic-Code: X-Cleanmail; {}\r\n",
                one_line(&recipient.reason)
            ));
        }
        out.push_str(&format!("Last-Attempt-Date: {date}\r\n"));
    }
    out.push_str("\r\n");

    // Part 3: the original header section.
    out.push_str(&format!(
        "--{boundary}\r\n\
         Content-Description: Undelivered Message Headers\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n"
    ));
    let mut message = out.into_bytes();
    let headers = header_section(input.original_message);
    message.extend_from_slice(headers);
    if !headers.ends_with(b"\r\n") {
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Some(Dsn {
        mail_from: String::new(),
        rcpt_to: vec![sender.to_owned()],
        message,
    })
}

/// The header section of a raw message (up to the first empty line).
fn header_section(message: &[u8]) -> &[u8] {
    if let Some(pos) = message.windows(4).position(|w| w == b"\r\n\r\n") {
        return &message[..pos + 2];
    }
    if let Some(pos) = message.windows(2).position(|w| w == b"\n\n") {
        return &message[..pos + 1];
    }
    message
}

/// The three-digit reply code at the start of `reason`, if any.
fn reply_code(reason: &str) -> Option<u16> {
    let code = reason.get(..3)?;
    let code: u16 = code.parse().ok()?;
    (200..600).contains(&code).then_some(code)
}

/// The enhanced status code (`5.1.1`) following the reply code in `reason`, if any.
fn enhanced_status(reason: &str) -> Option<String> {
    let code = reply_code(reason)?;
    let candidate = reason.get(4..)?.split_whitespace().next()?;
    let parts: Vec<&str> = candidate.split('.').collect();
    let valid = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && parts[0] == (code / 100).to_string();
    if valid {
        Some(candidate.to_owned())
    } else {
        Some(format!("{}.0.0", code / 100))
    }
}

/// Collapses control characters so text stays on one header line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use mail_parser::MimeHeaders;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = RetryPolicy::default();
        let minutes: Vec<u64> = (1..=9)
            .map(|n| policy.delay_after(n).as_secs() / 60)
            .collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(policy.delay_after(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn next_attempt_stops_at_max_age() {
        let policy = RetryPolicy::default();
        let arrived = at("2026-11-01T00:00:00Z");
        assert_eq!(
            policy.next_attempt(arrived, 1, at("2026-11-01T00:00:30Z")),
            Some(at("2026-11-01T00:01:30Z"))
        );
        // Close to the deadline the last attempt lands exactly on it.
        assert_eq!(
            policy.next_attempt(arrived, 50, at("2026-11-05T23:30:00Z")),
            Some(at("2026-11-06T00:00:00Z"))
        );
        assert_eq!(
            policy.next_attempt(arrived, 51, at("2026-11-06T00:00:00Z")),
            None
        );
    }

    #[test]
    fn status_codes_are_extracted() {
        assert_eq!(
            enhanced_status("550 5.1.1 user unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("554 transaction failed").as_deref(),
            Some("5.0.0")
        );
        assert_eq!(enhanced_status("Connection refused"), None);
    }

    #[test]
    fn no_dsn_for_null_sender() {
        let recipients = [FailedRecipient {
            address: "a@example.com".to_owned(),
            reason: "550 5.1.1 unknown".to_owned(),
        }];
        let input = DsnInput {
            reporting_mta: "mx.test",
            remote_mta: None,
            original_sender: "",
            recipients: &recipients,
            arrival_date: Utc::now(),
            original_message: b"Subject: x\r\n\r\nbody\r\n",
            expired: false,
            now: Utc::now(),
        };
        assert!(build_dsn(&input).is_none());
    }

    #[test]
    fn dsn_is_a_delivery_status_report() {
        let recipients = [FailedRecipient {
            address: "gone@example.com".to_owned(),
            reason: "550 5.1.1 Recipient address rejected: user unknown".to_owned(),
        }];
        let input = DsnInput {
            reporting_mta: "mx.test",
            remote_mta: Some("mail.example.com"),
            original_sender: "sender@example.org",
            recipients: &recipients,
            arrival_date: at("2026-11-29T10:00:00Z"),
            original_message:
                b"Subject: hello\r\nMessage-ID: <m1@example.org>\r\n\r\nsecret body\r\n",
            expired: false,
            now: at("2026-11-29T10:05:00Z"),
        };
        let dsn = build_dsn(&input).unwrap();
        assert_eq!(dsn.mail_from, "");
        assert_eq!(dsn.rcpt_to, ["sender@example.org"]);
        let parsed = mail_parser::MessageParser::default()
            .parse(&dsn.message)
            .unwrap();
        assert_eq!(
            parsed.content_type().unwrap().subtype(),
            Some("report"),
            "{}",
            String::from_utf8_lossy(&dsn.message)
        );
        assert_eq!(parsed.parts.len(), 4);
        let text = String::from_utf8(dsn.message).unwrap();
        assert!(text.contains("report-type=delivery-status"));
        assert!(text.contains("Final-Recipient: rfc822; gone@example.com\r\n"));
        assert!(text.contains("Action: failed\r\nStatus: 5.1.1\r\n"));
        assert!(text.contains("Remote-MTA: dns; mail.example.com\r\n"));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 Recipient"));
        assert!(text.contains("Message-ID: <m1@example.org>"));
        assert!(!text.contains("secret body"));
    }

    #[test]
    fn expired_dsn_uses_4_4_7() {
        let recipients = [FailedRecipient {
            address: "a@example.com".to_owned(),
            reason: "Connection refused".to_owned(),
        }];
        let input = DsnInput {
            reporting_mta: "mx.test",
            remote_mta: None,
            original_sender: "s@example.org",
            recipients: &recipients,
            arrival_date: Utc::now(),
            original_message: b"Subject: x\r\n\r\nbody\r\n",
            expired: true,
            now: Utc::now(),
        };
        let text = String::from_utf8(build_dsn(&input).unwrap().message).unwrap();
        assert!(text.contains("Status: 4.4.7\r\n"));
        assert!(text.contains("Diagnostic-Code: X-Cleanmail; Connection refused\r\n"));
    }
}
