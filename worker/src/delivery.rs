//! Downstream delivery over SMTP with retries and backoff.
//!
//! - [`DeliveryClient::deliver`] sends raw message bytes with the original envelope to a
//!   tenant's downstream server (lettre, opportunistic STARTTLS) and classifies the result
//!   per recipient as delivered, temporary or permanent failure.
//! - [`RetryPolicy::next_attempt`] is the pure backoff schedule for temporary failures.
//! - [`build_dsn`] writes the RFC 3464 bounce for a permanent failure.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lettre::address::Address;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Noop, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;

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

/// The result of one delivery attempt for one recipient.
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

/// One recipient's result of a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The envelope recipient.
    pub address: String,
    /// What happened to it.
    pub outcome: DeliveryOutcome,
}

/// The per-recipient result of one delivery attempt to one downstream server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// `host:port` of the downstream server (for logs and the DSN's Remote-MTA).
    pub remote_mta: String,
    /// One entry per envelope recipient, in envelope order.
    pub recipients: Vec<RecipientOutcome>,
}

impl DeliveryReport {
    /// True when every recipient was accepted downstream.
    pub fn all_delivered(&self) -> bool {
        self.recipients
            .iter()
            .all(|r| matches!(r.outcome, DeliveryOutcome::Delivered { .. }))
    }

    /// Recipients to try again later (temporary failures).
    pub fn to_retry(&self) -> Vec<String> {
        self.recipients
            .iter()
            .filter(|r| matches!(r.outcome, DeliveryOutcome::TemporaryFailure(_)))
            .map(|r| r.address.clone())
            .collect()
    }

    /// Recipients refused for good, ready for [`build_dsn`].
    pub fn bounced(&self) -> Vec<FailedRecipient> {
        self.recipients
            .iter()
            .filter_map(|r| match &r.outcome {
                DeliveryOutcome::PermanentFailure(reason) => Some(FailedRecipient {
                    address: r.address.clone(),
                    reason: reason.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// One outcome for the whole attempt: a temporary failure if any recipient must be
    /// retried, else a permanent failure if any bounced, else delivered.
    pub fn summary(&self) -> DeliveryOutcome {
        let find = |temporary: bool| {
            self.recipients.iter().find_map(|r| match &r.outcome {
                DeliveryOutcome::TemporaryFailure(reason) if temporary => {
                    Some(DeliveryOutcome::TemporaryFailure(reason.clone()))
                }
                DeliveryOutcome::PermanentFailure(reason) if !temporary => {
                    Some(DeliveryOutcome::PermanentFailure(reason.clone()))
                }
                _ => None,
            })
        };
        find(true).or_else(|| find(false)).unwrap_or_else(|| {
            self.recipients
                .first()
                .map(|r| r.outcome.clone())
                .unwrap_or(DeliveryOutcome::PermanentFailure(
                    "554 5.5.1 no recipients".to_owned(),
                ))
        })
    }
}

/// Idle connections kept per downstream server.
const MAX_IDLE_PER_DOWNSTREAM: usize = 8;
/// Idle connections older than this are closed instead of reused.
const MAX_IDLE_TIME: Duration = Duration::from_secs(30);

/// An idle downstream connection.
struct Pooled {
    connection: AsyncSmtpConnection,
    idle_since: Instant,
}

/// Sends messages downstream over SMTP, reusing idle connections per downstream server.
///
/// Built on lettre's `AsyncSmtpConnection` rather than its transport so that each recipient
/// gets its own result (one unknown user does not fail the others) and so the socket has
/// `TCP_NODELAY` (lettre writes the final dot separately, which otherwise stalls ~40 ms on
/// delayed ACKs).
pub struct DeliveryClient {
    hello_name: ClientId,
    idle: Mutex<HashMap<Downstream, Vec<Pooled>>>,
}

/// Why a protocol step failed.
enum StepError {
    /// A 4xx/5xx reply; the connection is still usable.
    Reply { permanent: bool, reason: String },
    /// I/O error, timeout or garbled reply; the connection must be dropped.
    Broken(String),
}

impl StepError {
    fn outcome(&self) -> DeliveryOutcome {
        match self {
            StepError::Reply {
                permanent: true,
                reason,
            } => DeliveryOutcome::PermanentFailure(reason.clone()),
            StepError::Reply { reason, .. } | StepError::Broken(reason) => {
                DeliveryOutcome::TemporaryFailure(reason.clone())
            }
        }
    }
}

impl DeliveryClient {
    /// A client that introduces itself with `hello_name` in EHLO.
    pub fn new(hello_name: impl Into<String>) -> Self {
        Self {
            hello_name: ClientId::Domain(hello_name.into()),
            idle: Mutex::default(),
        }
    }

    /// Sends `message` as is, with `mail_from` (empty for `<>`) and every recipient in
    /// `rcpt_to`, in one SMTP transaction, and reports each recipient's outcome.
    pub async fn deliver(
        &self,
        downstream: &Downstream,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> DeliveryReport {
        let mut outcomes: Vec<Option<DeliveryOutcome>> = vec![None; rcpt_to.len()];
        let report = |outcomes: Vec<Option<DeliveryOutcome>>| DeliveryReport {
            remote_mta: format!("{}:{}", downstream.host, downstream.port),
            recipients: rcpt_to
                .iter()
                .zip(outcomes)
                .map(|(address, outcome)| RecipientOutcome {
                    address: address.clone(),
                    outcome: outcome.unwrap_or_else(|| {
                        DeliveryOutcome::TemporaryFailure("not attempted".to_owned())
                    }),
                })
                .collect(),
        };
        let fail_all = |outcome: DeliveryOutcome| report(vec![Some(outcome); rcpt_to.len()]);

        let from = match parse_address(mail_from) {
            Ok(from) => from,
            Err(reason) => return fail_all(DeliveryOutcome::PermanentFailure(reason)),
        };
        let mut recipients = Vec::new();
        for (index, rcpt) in rcpt_to.iter().enumerate() {
            match parse_address(rcpt) {
                Ok(Some(address)) => recipients.push((index, address)),
                Ok(None) => {
                    outcomes[index] = Some(DeliveryOutcome::PermanentFailure(
                        "550 5.1.3 empty recipient address".to_owned(),
                    ));
                }
                Err(reason) => outcomes[index] = Some(DeliveryOutcome::PermanentFailure(reason)),
            }
        }
        if recipients.is_empty() {
            return report(outcomes);
        }

        let mut connection = match self.connection(downstream).await {
            Ok(connection) => connection,
            Err(err) => {
                let outcome = err.outcome();
                for (index, _) in &recipients {
                    outcomes[*index] = Some(outcome.clone());
                }
                return report(outcomes);
            }
        };
        let usable = transaction(
            &mut connection,
            downstream.timeout,
            from,
            mail_from,
            &recipients,
            message,
            &mut outcomes,
        )
        .await;
        if usable {
            self.release(downstream, connection);
        }
        report(outcomes)
    }

    /// An idle connection that still answers NOOP, or a new one.
    async fn connection(&self, downstream: &Downstream) -> Result<AsyncSmtpConnection, StepError> {
        loop {
            let pooled = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.get_mut(downstream).and_then(Vec::pop)
            };
            let Some(mut pooled) = pooled else {
                break;
            };
            if pooled.idle_since.elapsed() < MAX_IDLE_TIME
                && step(downstream.timeout, async {
                    pooled.connection.command(Noop).await
                })
                .await
                .is_ok()
            {
                return Ok(pooled.connection);
            }
        }
        self.connect(downstream).await
    }

    /// Opens a connection: TCP, greeting, EHLO and STARTTLS as configured.
    async fn connect(&self, downstream: &Downstream) -> Result<AsyncSmtpConnection, StepError> {
        let target = format!("{}:{}", downstream.host, downstream.port);
        let tcp = tokio::time::timeout(
            downstream.timeout,
            TcpStream::connect((downstream.host.as_str(), downstream.port)),
        )
        .await
        .map_err(|_| StepError::Broken(format!("connecting to {target}: timed out")))?
        .map_err(|err| StepError::Broken(format!("connecting to {target}: {err}")))?;
        let _ = tcp.set_nodelay(true);
        let mut connection = step(
            downstream.timeout,
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello_name),
        )
        .await?;
        let parameters = match downstream.tls {
            DownstreamTls::None => None,
            DownstreamTls::Opportunistic if connection.can_starttls() => Some(
                TlsParameters::builder(downstream.host.clone())
                    .dangerous_accept_invalid_certs(true)
                    .dangerous_accept_invalid_hostnames(true)
                    .build_rustls(),
            ),
            DownstreamTls::Opportunistic => None,
            DownstreamTls::Required if connection.can_starttls() => {
                Some(TlsParameters::builder(downstream.host.clone()).build_rustls())
            }
            DownstreamTls::Required => {
                return Err(StepError::Broken(format!(
                    "{target} does not offer STARTTLS, which is required"
                )));
            }
        };
        if let Some(parameters) = parameters {
            let parameters =
                parameters.map_err(|err| StepError::Broken(format!("tls setup: {err}")))?;
            step(
                downstream.timeout,
                connection.starttls(parameters, &self.hello_name),
            )
            .await?;
        }
        Ok(connection)
    }

    /// Keeps a healthy connection for the next message to the same downstream.
    fn release(&self, downstream: &Downstream, connection: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(downstream.clone()).or_default();
        if list.len() < MAX_IDLE_PER_DOWNSTREAM {
            list.push(Pooled {
                connection,
                idle_since: Instant::now(),
            });
        }
    }
}

/// Runs MAIL, RCPT (each), DATA and the message; fills `outcomes` for the recipients in
/// `recipients`. Returns whether the connection can be reused.
async fn transaction(
    connection: &mut AsyncSmtpConnection,
    timeout: Duration,
    from: Option<Address>,
    mail_from: &str,
    recipients: &[(usize, Address)],
    message: &[u8],
    outcomes: &mut [Option<DeliveryOutcome>],
) -> bool {
    let set_all = |outcomes: &mut [Option<DeliveryOutcome>],
                   indexes: &mut dyn Iterator<Item = usize>,
                   outcome: DeliveryOutcome| {
        for index in indexes {
            outcomes[index] = Some(outcome.clone());
        }
    };

    let mut parameters = Vec::new();
    let needs_utf8 = !mail_from.is_ascii()
        || recipients
            .iter()
            .any(|(_, a)| !AsRef::<str>::as_ref(a).is_ascii());
    let info = connection.server_info();
    if needs_utf8 {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            let outcome = DeliveryOutcome::PermanentFailure(
                "553 5.6.7 downstream server does not support SMTPUTF8".to_owned(),
            );
            set_all(outcomes, &mut recipients.iter().map(|(i, _)| *i), outcome);
            return true;
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            let outcome = DeliveryOutcome::PermanentFailure(
                "554 5.6.3 downstream server does not support 8BITMIME".to_owned(),
            );
            set_all(outcomes, &mut recipients.iter().map(|(i, _)| *i), outcome);
            return true;
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }

    if let Err(err) = step(timeout, connection.command(Mail::new(from, parameters))).await {
        set_all(
            outcomes,
            &mut recipients.iter().map(|(i, _)| *i),
            err.outcome(),
        );
        return matches!(err, StepError::Reply { .. }) && reset(connection, timeout).await;
    }

    let mut accepted = Vec::new();
    for (position, (index, address)) in recipients.iter().enumerate() {
        match step(
            timeout,
            connection.command(Rcpt::new(address.clone(), vec![])),
        )
        .await
        {
            Ok(_) => accepted.push(*index),
            Err(err @ StepError::Reply { .. }) => outcomes[*index] = Some(err.outcome()),
            Err(err) => {
                let rest = recipients[position..].iter().map(|(i, _)| *i);
                set_all(
                    outcomes,
                    &mut accepted.iter().copied().chain(rest),
                    err.outcome(),
                );
                return false;
            }
        }
    }
    if accepted.is_empty() {
        return reset(connection, timeout).await;
    }

    if let Err(err) = step(timeout, connection.command(Data)).await {
        set_all(outcomes, &mut accepted.iter().copied(), err.outcome());
        return matches!(err, StepError::Reply { .. }) && reset(connection, timeout).await;
    }
    // lettre always ends DATA with `\r\n.\r\n`; without this the downstream would get one
    // extra empty line and the bytes would no longer match what we accepted.
    let payload = message.strip_suffix(b"\r\n").unwrap_or(message);
    match step(timeout, connection.message(payload)).await {
        Ok(response) => {
            let response = format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            );
            set_all(
                outcomes,
                &mut accepted.iter().copied(),
                DeliveryOutcome::Delivered { response },
            );
            true
        }
        Err(err) => {
            set_all(outcomes, &mut accepted.iter().copied(), err.outcome());
            matches!(err, StepError::Reply { .. })
        }
    }
}

/// Sends RSET after a failed transaction; true when the connection is still usable.
async fn reset(connection: &mut AsyncSmtpConnection, timeout: Duration) -> bool {
    step(timeout, connection.command(Rset)).await.is_ok()
}

/// Runs one protocol step under `timeout` and classifies its error.
async fn step<T>(
    timeout: Duration,
    future: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, StepError> {
    match tokio::time::timeout(timeout, future).await {
        Err(_elapsed) => Err(StepError::Broken(
            "timed out waiting for the server".to_owned(),
        )),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(classify_error(&err)),
    }
}

/// Parses an envelope address; empty means the null path.
fn parse_address(address: &str) -> Result<Option<Address>, String> {
    if address.is_empty() {
        return Ok(None);
    }
    address
        .parse::<Address>()
        .map(Some)
        .map_err(|e| format!("553 5.1.3 invalid address <{address}>: {e}"))
}

/// Maps a lettre error to a reply failure (connection usable) or a broken connection.
fn classify_error(err: &lettre::transport::smtp::Error) -> StepError {
    let detail = std::error::Error::source(err)
        .map(ToString::to_string)
        .unwrap_or_default();
    match err.status() {
        Some(code) => StepError::Reply {
            permanent: err.is_permanent(),
            reason: format!("{code} {detail}").trim_end().to_owned(),
        },
        // Connection refused or reset, TLS handshake, garbled replies: all worth a retry.
        None => StepError::Broken(err.to_string()),
    }
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
