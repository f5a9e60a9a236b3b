//! One SMTP session: the read loop over the sans-I/O `smtp-proto` receivers.
//!
//! Replies are collected in a buffer and written when the session needs more input, which
//! is what PIPELINING asks for. The session is generic over the stream so the same loop runs
//! before and after STARTTLS; STARTTLS ends the plain loop and drops any bytes the client
//! pipelined after it (RFC 3207 section 4.2).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{
    BdatReceiver, DataReceiver, DummyDataReceiver, DummyLineReceiver, RequestReceiver,
};
use smtp_proto::{Error as ProtoError, MAIL_BODY_8BITMIME, MAIL_SMTPUTF8, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::config::SmtpConfig;
use super::handler::{
    DataDecision, Envelope, RcptDecision, SenderDecision, SessionInfo, SmtpHandler,
};
use super::received::received_header;

/// How a run of the read loop ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The client asked for STARTTLS and got `220`; upgrade the stream and run again.
    StartTls,
    /// The session is over.
    Close,
}

/// What the receiver is currently parsing.
enum State {
    Request(RequestReceiver),
    Data(DataReceiver),
    Bdat(BdatReceiver),
    /// Skipping message bytes, then sending `reply`.
    Discard {
        receiver: DummyDataReceiver,
        reply: &'static str,
    },
    /// Skipping the rest of an over-long command line.
    DiscardLine(DummyLineReceiver),
}

/// The open mail transaction.
struct Transaction {
    mail_from: String,
    flags: u64,
    rcpt_to: Vec<String>,
}

/// Whether the session goes on after a command.
enum Flow {
    Continue,
    StartTls,
    Close,
}

/// The per-connection protocol state.
pub(crate) struct Session<H> {
    config: Arc<SmtpConfig>,
    handler: Arc<H>,
    tls_available: bool,
    shutdown: CancellationToken,
    pub(crate) info: SessionInfo,
    transaction: Option<Transaction>,
    bad_commands: usize,
    out: Vec<u8>,
    message: Vec<u8>,
}

impl<H: SmtpHandler> Session<H> {
    pub(crate) fn new(
        config: Arc<SmtpConfig>,
        handler: Arc<H>,
        tls_available: bool,
        shutdown: CancellationToken,
        info: SessionInfo,
    ) -> Self {
        Self {
            config,
            handler,
            tls_available,
            shutdown,
            info,
            transaction: None,
            bad_commands: 0,
            out: Vec::new(),
            message: Vec::new(),
        }
    }

    /// Queues the `220` greeting.
    pub(crate) fn greet(&mut self) {
        let text = format!("220 {} ESMTP Cleanmail", self.config.hostname);
        self.reply(&text);
    }

    /// Forgets everything the client said before TLS (RFC 3207 section 4.2).
    pub(crate) fn started_tls(&mut self, tls: super::handler::TlsInfo) {
        self.info.tls = Some(tls);
        self.info.helo = None;
        self.info.esmtp = false;
        self.transaction = None;
    }

    /// Runs the read loop on `stream` until the session ends or asks for STARTTLS.
    pub(crate) async fn run<S>(&mut self, stream: &mut S) -> io::Result<Next>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf = vec![0u8; 16 * 1024];
        let mut state = State::Request(RequestReceiver::default());
        loop {
            self.flush(stream).await?;
            let waiting_for_command = matches!(state, State::Request(_));
            let timeout = if waiting_for_command || matches!(state, State::DiscardLine(_)) {
                self.config.command_timeout
            } else {
                self.config.data_timeout
            };
            let read = tokio::select! {
                biased;
                () = self.shutdown.cancelled(), if waiting_for_command => {
                    self.reply_421("4.3.2 Server shutting down");
                    self.flush(stream).await?;
                    return Ok(Next::Close);
                }
                read = tokio::time::timeout(timeout, stream.read(&mut buf)) => read,
            };
            let n = match read {
                Ok(Ok(0)) => return Ok(Next::Close),
                Ok(Ok(n)) => n,
                Ok(Err(err)) => return Err(err),
                Err(_elapsed) => {
                    self.reply_421("4.4.2 Timeout waiting for client");
                    self.flush(stream).await?;
                    return Ok(Next::Close);
                }
            };
            let mut bytes = buf[..n].iter();
            while !bytes.as_slice().is_empty() {
                match &mut state {
                    State::Request(receiver) => {
                        let before = bytes.as_slice();
                        let parsed = receiver.ingest(&mut bytes).map(Request::into_owned);
                        let flow = match parsed {
                            Ok(request) => self.command(request, &mut state).await,
                            Err(ProtoError::NeedsMoreData { .. }) => break,
                            Err(ProtoError::ResponseTooLong) => {
                                state = State::DiscardLine(DummyLineReceiver::default());
                                self.bad_command("500 5.5.2 Line too long")
                            }
                            Err(err) => {
                                // Never read the rest of a refused line as a new command.
                                let consumed = before.len() - bytes.as_slice().len();
                                if consumed > 0 && before[consumed - 1] != b'\n' {
                                    state = State::DiscardLine(DummyLineReceiver::default());
                                }
                                self.parse_error(err)
                            }
                        };
                        match flow {
                            Flow::Continue => {}
                            Flow::StartTls => {
                                self.flush(stream).await?;
                                return Ok(Next::StartTls);
                            }
                            Flow::Close => {
                                self.flush(stream).await?;
                                return Ok(Next::Close);
                            }
                        }
                    }
                    State::DiscardLine(receiver) => {
                        if receiver.ingest(&mut bytes) {
                            state = State::Request(RequestReceiver::default());
                        }
                    }
                    State::Data(receiver) => {
                        let mut message = std::mem::take(&mut self.message);
                        let done = receiver.ingest(&mut bytes, &mut message);
                        self.message = message;
                        if self.message.len() > self.config.max_message_size {
                            self.message = Vec::new();
                            self.transaction = None;
                            if done {
                                self.reply(TOO_BIG);
                                state = State::Request(RequestReceiver::default());
                            } else {
                                state = State::Discard {
                                    receiver: DummyDataReceiver::new_data(receiver),
                                    reply: TOO_BIG,
                                };
                            }
                        } else if done {
                            state = State::Request(RequestReceiver::default());
                            self.deliver().await;
                        }
                    }
                    State::Bdat(receiver) => {
                        let mut message = std::mem::take(&mut self.message);
                        let done = receiver.ingest(&mut bytes, &mut message);
                        self.message = message;
                        if done {
                            let is_last = receiver.is_last;
                            state = State::Request(RequestReceiver::default());
                            if is_last {
                                self.deliver().await;
                            } else {
                                self.reply("250 2.0.0 Chunk received");
                            }
                        }
                    }
                    State::Discard { receiver, reply } => {
                        if receiver.ingest(&mut bytes) {
                            let reply = *reply;
                            state = State::Request(RequestReceiver::default());
                            self.reply(reply);
                        }
                    }
                }
            }
        }
    }

    /// Handles one parsed command.
    async fn command(&mut self, request: Request<String>, state: &mut State) -> Flow {
        match request {
            Request::Ehlo { host } => {
                self.transaction = None;
                self.info.helo = Some(host);
                self.info.esmtp = true;
                self.ehlo_reply();
                Flow::Continue
            }
            Request::Helo { host } => {
                self.transaction = None;
                self.info.helo = Some(host);
                self.info.esmtp = false;
                let text = format!("250 {}", self.config.hostname);
                self.reply(&text);
                Flow::Continue
            }
            Request::Mail { from } => {
                if self.info.helo.is_none() {
                    return self.bad_command("503 5.5.1 Send EHLO or HELO first");
                }
                if self.transaction.is_some() {
                    return self.bad_command("503 5.5.1 Nested MAIL command");
                }
                if from.size > self.config.max_message_size {
                    self.reply(TOO_BIG);
                    return Flow::Continue;
                }
                match self.handler.check_sender(&self.info, &from.address).await {
                    SenderDecision::Accept => {
                        self.transaction = Some(Transaction {
                            mail_from: from.address,
                            flags: from.flags,
                            rcpt_to: Vec::new(),
                        });
                        self.message.clear();
                        self.reply("250 2.1.0 Sender OK");
                    }
                    SenderDecision::Reject(reason) => self.reply_reason("550 5.7.1", &reason),
                    SenderDecision::TempFail(reason) => self.reply_reason("451 4.3.0", &reason),
                }
                Flow::Continue
            }
            Request::Rcpt { to } => {
                let Some(transaction) = &self.transaction else {
                    return self.bad_command("503 5.5.1 Need MAIL before RCPT");
                };
                if transaction.rcpt_to.contains(&to.address) {
                    self.reply("250 2.1.5 Recipient OK");
                    return Flow::Continue;
                }
                if transaction.rcpt_to.len() >= self.config.max_recipients {
                    self.reply("452 4.5.3 Too many recipients");
                    return Flow::Continue;
                }
                let decision = self.handler.check_recipient(&self.info, &to.address).await;
                match decision {
                    RcptDecision::Accept => {
                        if let Some(transaction) = &mut self.transaction {
                            transaction.rcpt_to.push(to.address);
                        }
                        self.reply("250 2.1.5 Recipient OK");
                    }
                    RcptDecision::UnknownUser => {
                        self.reply("550 5.1.1 Recipient address rejected: user unknown");
                    }
                    RcptDecision::RelayDenied => {
                        self.reply("554 5.7.1 Relay access denied");
                    }
                    RcptDecision::Reject(reason) => self.reply_reason("550 5.7.1", &reason),
                    RcptDecision::TempFail(reason) => self.reply_reason("451 4.3.0", &reason),
                }
                Flow::Continue
            }
            Request::Data => {
                match &self.transaction {
                    None => return self.bad_command("503 5.5.1 Need MAIL command"),
                    Some(transaction) if transaction.rcpt_to.is_empty() => {
                        self.reply("554 5.5.1 No valid recipients");
                        return Flow::Continue;
                    }
                    Some(_) => {}
                }
                self.message.clear();
                *state = State::Data(DataReceiver::new());
                self.reply("354 End data with <CR><LF>.<CR><LF>");
                Flow::Continue
            }
            Request::Bdat {
                chunk_size,
                is_last,
            } => {
                let ready = self
                    .transaction
                    .as_ref()
                    .is_some_and(|t| !t.rcpt_to.is_empty());
                if !ready {
                    let reply = "503 5.5.1 Need MAIL and RCPT before BDAT";
                    self.bad_commands += 1;
                    if chunk_size == 0 {
                        self.reply(reply);
                    } else {
                        *state = State::Discard {
                            receiver: DummyDataReceiver::new_bdat(chunk_size),
                            reply,
                        };
                    }
                } else if self.message.len() + chunk_size > self.config.max_message_size {
                    self.transaction = None;
                    self.message = Vec::new();
                    *state = State::Discard {
                        receiver: DummyDataReceiver::new_bdat(chunk_size),
                        reply: TOO_BIG,
                    };
                } else if chunk_size > 0 {
                    *state = State::Bdat(BdatReceiver::new(chunk_size, is_last));
                } else if is_last {
                    self.deliver().await;
                } else {
                    self.reply("250 2.0.0 Chunk received");
                }
                self.close_if_too_many_errors()
            }
            Request::Rset => {
                self.transaction = None;
                self.message = Vec::new();
                self.reply("250 2.0.0 Reset OK");
                Flow::Continue
            }
            Request::Noop { .. } => {
                self.reply("250 2.0.0 OK");
                Flow::Continue
            }
            Request::Quit => {
                self.reply("221 2.0.0 Bye");
                Flow::Close
            }
            Request::StartTls => {
                if self.info.tls.is_some() {
                    return self.bad_command("503 5.5.1 TLS already active");
                }
                if !self.tls_available {
                    return self.bad_command("502 5.5.1 STARTTLS not available");
                }
                self.reply("220 2.0.0 Ready to start TLS");
                Flow::StartTls
            }
            Request::Vrfy { .. } => {
                self.reply(
                    "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery",
                );
                Flow::Continue
            }
            Request::Help { .. } => {
                self.reply("214 2.0.0 See RFC 5321");
                Flow::Continue
            }
            Request::Expn { .. }
            | Request::Auth { .. }
            | Request::Lhlo { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.bad_command("502 5.5.1 Command not implemented"),
        }
    }

    /// Hands the complete message to the handler and answers the final dot (or last BDAT).
    async fn deliver(&mut self) {
        let message = std::mem::take(&mut self.message);
        let Some(transaction) = self.transaction.take() else {
            self.reply("503 5.5.1 Need MAIL command");
            return;
        };
        let envelope = Envelope {
            mail_from: transaction.mail_from,
            rcpt_to: transaction.rcpt_to,
            body_8bitmime: transaction.flags & MAIL_BODY_8BITMIME != 0,
            smtputf8: transaction.flags & MAIL_SMTPUTF8 != 0,
            session: self.info.clone(),
        };
        let header = received_header(&envelope, &self.config.hostname, chrono::Utc::now());
        let mut full = Vec::with_capacity(header.len() + message.len());
        full.extend_from_slice(header.as_bytes());
        full.extend_from_slice(&message);
        drop(message);
        match self.handler.receive(envelope, full).await {
            DataDecision::Accept { queue_id } => {
                let text = format!("250 2.0.0 Ok: queued as {}", clean(&queue_id));
                self.reply(&text);
            }
            DataDecision::Reject(reason) => self.reply_reason("550 5.7.1", &reason),
            DataDecision::TempFail(reason) => self.reply_reason("451 4.3.0", &reason),
        }
    }

    /// Answers a command the parser refused.
    fn parse_error(&mut self, err: ProtoError) -> Flow {
        let text = match err {
            ProtoError::UnknownCommand => "500 5.5.1 Command unrecognized".to_owned(),
            ProtoError::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax".to_owned(),
            ProtoError::InvalidRecipientAddress => {
                "501 5.1.3 Bad recipient address syntax".to_owned()
            }
            ProtoError::SyntaxError { syntax } => format!("501 5.5.2 Syntax: {syntax}"),
            ProtoError::InvalidParameter { param } => {
                format!("501 5.5.4 Invalid parameter {}", clean(param))
            }
            ProtoError::UnsupportedParameter { param } => {
                format!("504 5.5.4 Unsupported parameter {}", clean(&param))
            }
            other => format!("500 5.5.2 {}", clean(&other.to_string())),
        };
        self.bad_command(&text)
    }

    /// Answers an erroneous command and counts it against the bad-command cap.
    fn bad_command(&mut self, text: &str) -> Flow {
        self.bad_commands += 1;
        if self.bad_commands > self.config.max_bad_commands {
            return self.close_if_too_many_errors();
        }
        self.reply(text);
        Flow::Continue
    }

    /// Closes the session with `421` once the bad-command cap is exceeded.
    fn close_if_too_many_errors(&mut self) -> Flow {
        if self.bad_commands > self.config.max_bad_commands {
            self.reply_421("4.7.0 Too many errors, closing connection");
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    /// Queues the EHLO reply with the extensions on offer.
    fn ehlo_reply(&mut self) {
        let peer = self.info.peer_addr.ip();
        let mut lines = vec![format!("{} Hello [{peer}]", self.config.hostname)];
        lines.push(format!("SIZE {}", self.config.max_message_size));
        lines.push("PIPELINING".to_owned());
        lines.push("8BITMIME".to_owned());
        lines.push("SMTPUTF8".to_owned());
        lines.push("ENHANCEDSTATUSCODES".to_owned());
        lines.push("CHUNKING".to_owned());
        if self.tls_available && self.info.tls.is_none() {
            lines.push("STARTTLS".to_owned());
        }
        let last = lines.len() - 1;
        for (index, line) in lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            let text = format!("250{separator}{line}");
            self.reply(&text);
        }
    }

    fn reply(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn reply_reason(&mut self, code: &str, reason: &str) {
        let text = format!("{code} {}", clean(reason));
        self.reply(&text);
    }

    fn reply_421(&mut self, text: &str) {
        let text = format!("421 {text} ({})", self.config.hostname);
        self.reply(&text);
    }

    /// Writes the queued replies.
    async fn flush<S>(&mut self, stream: &mut S) -> io::Result<()>
    where
        S: AsyncWrite + Unpin,
    {
        if self.out.is_empty() {
            return Ok(());
        }
        let write = async {
            stream.write_all(&self.out).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.config.command_timeout, write).await {
            Ok(result) => result?,
            Err(_elapsed) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"));
            }
        }
        self.out.clear();
        Ok(())
    }
}

const TOO_BIG: &str = "552 5.3.4 Message size exceeds fixed maximum message size";

/// Makes handler-supplied text safe for a single reply line.
fn clean(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(400)
        .collect();
    if text.trim().is_empty() {
        "Rejected".to_owned()
    } else {
        text
    }
}

/// Writes a one-line reply to a connection refused before a session starts.
pub(crate) async fn refuse<S>(stream: &mut S, text: &str, timeout: Duration)
where
    S: AsyncWrite + Unpin,
{
    let line = format!("{text}\r\n");
    let _ = tokio::time::timeout(timeout, async {
        stream.write_all(line.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
