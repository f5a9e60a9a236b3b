//! Shared helpers for the worker's integration tests: a recording handler and a raw client.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cleanmail_worker::smtp::{
    DataDecision, Envelope, RcptDecision, SessionInfo, SmtpConfig, SmtpHandler, SmtpServer,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

/// Installs the aws-lc-rs rustls provider (dependencies.md pitfall 6).
pub fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A handler serving `example.com` with users `alice` and `bob`.
///
/// Messages containing `X-Test-Virus` are rejected with a reason; `X-Test-Tempfail` gets 451.
#[derive(Default)]
pub struct RecordingHandler {
    pub received: Mutex<Vec<(Envelope, Vec<u8>)>>,
}

impl SmtpHandler for RecordingHandler {
    async fn check_recipient(&self, _session: &SessionInfo, rcpt: &str) -> RcptDecision {
        let Some((user, domain)) = rcpt.rsplit_once('@') else {
            return RcptDecision::UnknownUser;
        };
        if !domain.eq_ignore_ascii_case("example.com") {
            return RcptDecision::RelayDenied;
        }
        match user.to_ascii_lowercase().as_str() {
            "alice" | "bob" | "carol" | "dave" => RcptDecision::Accept,
            _ => RcptDecision::UnknownUser,
        }
    }

    async fn receive(&self, envelope: Envelope, message: Vec<u8>) -> DataDecision {
        let text = String::from_utf8_lossy(&message);
        if text.contains("X-Test-Virus") {
            return DataDecision::Reject("Virus found: Eicar-Test-Signature".to_owned());
        }
        if text.contains("X-Test-Tempfail") {
            return DataDecision::TempFail("Storage unavailable, try later".to_owned());
        }
        let mut received = self.received.lock().unwrap();
        received.push((envelope, message));
        DataDecision::Accept {
            queue_id: format!("Q{}", received.len()),
        }
    }
}

impl RecordingHandler {
    pub fn messages(&self) -> Vec<(Envelope, Vec<u8>)> {
        self.received.lock().unwrap().clone()
    }
}

/// A running server for one test; cancels it on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handler: Arc<RecordingHandler>,
    pub shutdown: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(config: SmtpConfig) -> Self {
        init();
        let handler = Arc::new(RecordingHandler::default());
        let server = SmtpServer::bind(config, Arc::clone(&handler))
            .await
            .unwrap();
        let addr = server.local_addr();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        Self {
            addr,
            handler,
            shutdown,
            task: Some(task),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A line-oriented SMTP client for protocol-level tests.
pub struct RawClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (read, writer) = stream.into_split();
        Self {
            reader: BufReader::new(read),
            writer,
        }
    }

    /// Connects and checks the 220 greeting.
    pub async fn connect_greeted(addr: SocketAddr) -> Self {
        let mut client = Self::connect(addr).await;
        let greeting = client.reply().await;
        assert!(greeting.starts_with("220 "), "greeting: {greeting}");
        client
    }

    pub async fn send(&mut self, bytes: &str) {
        self.writer.write_all(bytes.as_bytes()).await.unwrap();
    }

    /// Reads one complete (possibly multi-line) reply; empty string on EOF.
    pub async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
                    .await
                    .expect("reply within 10 s")
                    .unwrap_or(0);
            if read == 0 {
                return reply;
            }
            reply.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return reply;
            }
        }
    }

    /// Sends one command line and returns the reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    /// True once the server closed the connection.
    pub async fn closed(&mut self) -> bool {
        let mut line = String::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}
