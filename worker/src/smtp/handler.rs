//! The trait the SMTP server calls to decide on recipients and to take over messages.
//!
//! The server owns the protocol; the handler owns policy and durability. A message is
//! answered `250` only after [`SmtpHandler::receive`] returned [`DataDecision::Accept`],
//! so the handler must have made the message durable (blob store + queue) before it returns.

use std::future::Future;
use std::net::SocketAddr;

/// Connection facts the handler may use for its decisions and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Unique id of this SMTP session (also used in logs and the `Received:` header).
    pub session_id: String,
    /// Address of the connecting client.
    pub peer_addr: SocketAddr,
    /// Address of the listener the client connected to.
    pub local_addr: SocketAddr,
    /// Name the client gave in EHLO/HELO, if any yet.
    pub helo: Option<String>,
    /// Whether the client used EHLO (true) or HELO (false).
    pub esmtp: bool,
    /// TLS parameters once STARTTLS completed.
    pub tls: Option<TlsInfo>,
}

/// Negotiated TLS parameters of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version, e.g. `TLSv1_3`.
    pub protocol: String,
    /// Cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

/// The SMTP envelope of one message, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path (MAIL FROM); empty for the null sender `<>`.
    pub mail_from: String,
    /// Accepted forward-paths (RCPT TO), in the order received.
    pub rcpt_to: Vec<String>,
    /// The client declared `BODY=8BITMIME`.
    pub body_8bitmime: bool,
    /// The client declared `SMTPUTF8`.
    pub smtputf8: bool,
    /// Session the message arrived on.
    pub session: SessionInfo,
}

/// The handler's answer to a `MAIL FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderDecision {
    /// `250 2.1.0`.
    Accept,
    /// `550 5.7.1 <reason>`.
    Reject(String),
    /// `451 4.3.0 <reason>`.
    TempFail(String),
}

/// The handler's answer to a `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptDecision {
    /// `250 2.1.5`: the recipient is added to the envelope.
    Accept,
    /// `550 5.1.1`: a served domain, but no such user or alias.
    UnknownUser,
    /// `554 5.7.1`: the domain is not served here.
    RelayDenied,
    /// `550 5.7.1 <reason>`: refused for another permanent reason.
    Reject(String),
    /// `451 4.3.0 <reason>`: try again later (e.g. database unavailable).
    TempFail(String),
}

/// The handler's answer to a complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataDecision {
    /// `250 2.0.0 Ok: queued as <queue_id>`: the message is durable.
    Accept {
        /// Identifier shown to the client, e.g. the message id in the store.
        queue_id: String,
    },
    /// `550 5.7.1 <reason>`: refused (virus, very high spam score, policy).
    Reject(String),
    /// `451 4.3.0 <reason>`: not stored, the client should retry.
    TempFail(String),
}

/// Decides on senders and recipients and takes over accepted messages.
///
/// Implement it with `async fn`s; the server is generic over the handler and keeps it in an
/// `Arc`, so it is shared by all sessions.
pub trait SmtpHandler: Send + Sync + 'static {
    /// Called for every `MAIL FROM`; `from` is empty for the null sender. Accepts by default.
    fn check_sender(
        &self,
        session: &SessionInfo,
        from: &str,
    ) -> impl Future<Output = SenderDecision> + Send {
        let _ = (session, from);
        async { SenderDecision::Accept }
    }

    /// Called for every `RCPT TO` with the address as given (without angle brackets).
    fn check_recipient(
        &self,
        session: &SessionInfo,
        rcpt: &str,
    ) -> impl Future<Output = RcptDecision> + Send;

    /// Called with the complete message (the server's `Received:` header prepended).
    ///
    /// Return [`DataDecision::Accept`] only once the message is durable.
    fn receive(
        &self,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> impl Future<Output = DataDecision> + Send;
}
