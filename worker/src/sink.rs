//! A downstream SMTP sink for tests: accepts everything and keeps it in memory.
//!
//! Built on [`crate::smtp::SmtpServer`], so it speaks real ESMTP with STARTTLS. Tests in any
//! crate can start one on `127.0.0.1:0`, point a tenant's downstream at it, and then inspect
//! what arrived. [`SinkMode`] makes it fail temporarily or permanently, and
//! [`SmtpSink::go_down`] / [`SmtpSink::come_up`] make connections be refused, to exercise
//! retries and bounces.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::smtp::{
    DataDecision, Envelope, RcptDecision, ServerError, SessionInfo, SmtpConfig, SmtpHandler,
    SmtpServer,
};

/// How the sink answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SinkMode {
    /// Accept every recipient and message.
    #[default]
    Accept,
    /// Answer every RCPT with `451 4.3.0` (a temporary failure).
    TempFail,
    /// Answer every RCPT with `550 5.1.1` (a permanent failure).
    RejectRecipients,
}

/// One message the sink received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkMessage {
    /// MAIL FROM as received (empty for `<>`).
    pub mail_from: String,
    /// RCPT TO addresses as received.
    pub rcpt_to: Vec<String>,
    /// The message, including the sink's own `Received:` header.
    pub data: Vec<u8>,
    /// Whether the message came over TLS.
    pub tls: bool,
}

impl SinkMessage {
    /// The message as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// State shared between the sink's handler and the test.
#[derive(Default)]
struct SinkState {
    mode: Mutex<SinkMode>,
    rejected: Mutex<HashSet<String>>,
    messages: Mutex<Vec<SinkMessage>>,
    arrived: Notify,
    dir: Option<PathBuf>,
}

/// The [`SmtpHandler`] behind the sink.
struct SinkHandler {
    state: Arc<SinkState>,
}

impl SmtpHandler for SinkHandler {
    async fn check_recipient(&self, _session: &SessionInfo, rcpt: &str) -> RcptDecision {
        let rejected = self
            .state
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if rejected.contains(&rcpt.to_ascii_lowercase()) {
            return RcptDecision::UnknownUser;
        }
        drop(rejected);
        let mode = self
            .state
            .mode
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match mode {
            SinkMode::Accept => RcptDecision::Accept,
            SinkMode::TempFail => RcptDecision::TempFail("Sink temporarily failing".to_owned()),
            SinkMode::RejectRecipients => RcptDecision::UnknownUser,
        }
    }

    async fn receive(&self, envelope: Envelope, message: Vec<u8>) -> DataDecision {
        let queue_id = uuid::Uuid::now_v7().simple().to_string();
        if let Some(dir) = &self.state.dir
            && let Err(err) = tokio::fs::write(dir.join(format!("{queue_id}.eml")), &message).await
        {
            return DataDecision::TempFail(format!("writing message: {err}"));
        }
        let received = SinkMessage {
            mail_from: envelope.mail_from,
            rcpt_to: envelope.rcpt_to,
            data: message,
            tls: envelope.session.tls.is_some(),
        };
        self.state
            .messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(received);
        self.state.arrived.notify_waiters();
        DataDecision::Accept { queue_id }
    }
}

/// A running in-memory SMTP sink.
pub struct SmtpSink {
    addr: SocketAddr,
    config: SmtpConfig,
    state: Arc<SinkState>,
    running: Option<(CancellationToken, JoinHandle<()>)>,
}

impl SmtpSink {
    /// Starts a sink on `127.0.0.1:0` with a self-signed STARTTLS certificate.
    pub async fn start() -> Result<Self, ServerError> {
        Self::start_with(SmtpConfig::for_tests(), None).await
    }

    /// Starts a sink with `config`, also writing each message to `dir` as `<id>.eml`.
    pub async fn start_with(config: SmtpConfig, dir: Option<PathBuf>) -> Result<Self, ServerError> {
        let state = Arc::new(SinkState {
            dir,
            ..SinkState::default()
        });
        let mut sink = Self {
            addr: config.listen,
            config,
            state,
            running: None,
        };
        sink.come_up().await?;
        Ok(sink)
    }

    /// The address the sink listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes how the sink answers from the next RCPT on.
    pub fn set_mode(&self, mode: SinkMode) {
        *self.state.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }

    /// Answers RCPT for `address` (case-insensitive) with `550 5.1.1` from now on.
    pub fn reject_address(&self, address: &str) {
        self.state
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(address.to_ascii_lowercase());
    }

    /// All messages received so far.
    pub fn messages(&self) -> Vec<SinkMessage> {
        self.state
            .messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until at least `count` messages arrived, or `timeout` passed; returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<SinkMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.arrived.notified();
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.messages();
            }
        }
    }

    /// Stops listening, so new connections are refused (open sessions are closed with 421).
    pub async fn go_down(&mut self) {
        if let Some((shutdown, task)) = self.running.take() {
            shutdown.cancel();
            let _ = task.await;
        }
    }

    /// Listens again on the same address after [`go_down`](Self::go_down).
    pub async fn come_up(&mut self) -> Result<(), ServerError> {
        if self.running.is_some() {
            return Ok(());
        }
        let mut config = self.config.clone();
        config.listen = self.addr;
        let handler = Arc::new(SinkHandler {
            state: Arc::clone(&self.state),
        });
        let server = SmtpServer::bind(config, handler).await?;
        self.addr = server.local_addr();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        self.running = Some((shutdown, task));
        Ok(())
    }

    /// Shuts the sink down and waits for its sessions to end.
    pub async fn stop(mut self) {
        self.go_down().await;
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some((shutdown, _task)) = self.running.take() {
            shutdown.cancel();
        }
    }
}
