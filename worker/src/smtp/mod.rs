//! The inbound ESMTP listener.
//!
//! [`SmtpServer`] accepts connections, enforces connection limits and runs one session per
//! client over the sans-I/O `smtp-proto` parser. Decisions on senders, recipients and
//! messages are delegated to an [`SmtpHandler`]; the server answers `250` to the final dot
//! only after the handler accepted (and persisted) the message.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use cleanmail_worker::smtp::*;
//! # async fn example<H: SmtpHandler>(handler: H) -> Result<(), ServerError> {
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let server = SmtpServer::bind(SmtpConfig::default(), Arc::new(handler)).await?;
//! println!("listening on {}", server.local_addr());
//! tokio::spawn(server.run(shutdown.clone()));
//! // ... later:
//! shutdown.cancel();
//! # Ok(()) }
//! ```

mod config;
mod handler;
mod limits;
mod received;
mod session;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, warn};

pub use config::{SmtpConfig, TlsSetting};
pub use handler::{
    DataDecision, Envelope, RcptDecision, SenderDecision, SessionInfo, SmtpHandler, TlsInfo,
};
pub use received::received_header;
pub use tls::TlsSetupError;

use limits::{ConnectionGuard, ConnectionLimits, Refusal};
use session::{Next, Session};

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding the listen address failed.
    #[error("binding smtp listener on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// The STARTTLS certificate could not be loaded or generated.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

/// A bound SMTP listener, ready to [`run`](SmtpServer::run).
pub struct SmtpServer<H> {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared<H>>,
}

/// State shared by all sessions of one listener.
struct Shared<H> {
    config: Arc<SmtpConfig>,
    handler: Arc<H>,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
}

impl<H: SmtpHandler> SmtpServer<H> {
    /// Loads or generates the TLS certificate and binds `config.listen`.
    pub async fn bind(config: SmtpConfig, handler: Arc<H>) -> Result<Self, ServerError> {
        let tls = tls::server_config(&config.tls, &config.hostname)?.map(TlsAcceptor::from);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_ip);
        Ok(Self {
            listener,
            local_addr,
            shared: Arc::new(Shared {
                config: Arc::new(config),
                handler,
                tls,
                limits,
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Accepts connections until `shutdown` is cancelled, then waits for open sessions.
    ///
    /// On shutdown, sessions waiting for a command get `421 4.3.2` and close; a session in
    /// the middle of a message finishes it (bounded by the data timeout) first.
    pub async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        info!(addr = %self.local_addr, "smtp listener started");
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer_addr) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %err, "smtp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let shared = Arc::clone(&self.shared);
            match shared.limits.acquire(peer_addr.ip()) {
                Ok(guard) => {
                    let shutdown = shutdown.clone();
                    let span = tracing::debug_span!("smtp", peer = %peer_addr);
                    tracker.spawn(
                        connection(shared, stream, peer_addr, shutdown, guard).instrument(span),
                    );
                }
                Err(refusal) => {
                    debug!(peer = %peer_addr, ?refusal, "smtp connection refused");
                    let text = match refusal {
                        Refusal::Global => "421 4.3.2 Too many connections, try again later",
                        Refusal::PerIp => "421 4.7.0 Too many connections from your address",
                    };
                    let timeout = shared.config.command_timeout;
                    tracker.spawn(async move {
                        let mut stream = stream;
                        session::refuse(&mut stream, text, timeout).await;
                    });
                }
            }
        }
        drop(self.listener);
        tracker.close();
        tracker.wait().await;
        info!(addr = %self.local_addr, "smtp listener stopped");
    }
}

/// Runs one client connection: greeting, plain session, optional STARTTLS, TLS session.
async fn connection<H: SmtpHandler>(
    shared: Arc<Shared<H>>,
    mut stream: TcpStream,
    peer_addr: SocketAddr,
    shutdown: CancellationToken,
    _guard: ConnectionGuard,
) {
    let _ = stream.set_nodelay(true);
    let local_addr = stream.local_addr().unwrap_or(peer_addr);
    let info = SessionInfo {
        session_id: uuid::Uuid::now_v7().simple().to_string(),
        peer_addr,
        local_addr,
        helo: None,
        esmtp: false,
        tls: None,
    };
    let mut session = Session::new(
        Arc::clone(&shared.config),
        Arc::clone(&shared.handler),
        shared.tls.is_some(),
        shutdown,
        info,
    );
    session.greet();
    let result = match session.run(&mut stream).await {
        Ok(Next::StartTls) => {
            let Some(acceptor) = shared.tls.clone() else {
                return;
            };
            let timeout = shared.config.command_timeout;
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(mut tls_stream)) => {
                    let (_, connection) = tls_stream.get_ref();
                    let tls_info = TlsInfo {
                        protocol: connection
                            .protocol_version()
                            .map(|v| format!("{v:?}"))
                            .unwrap_or_default(),
                        cipher: connection
                            .negotiated_cipher_suite()
                            .map(|s| format!("{:?}", s.suite()))
                            .unwrap_or_default(),
                    };
                    session.started_tls(tls_info);
                    let result = session.run(&mut tls_stream).await;
                    if result.is_ok() {
                        let _ = tls_stream.shutdown().await;
                    }
                    result
                }
                Ok(Err(err)) => Err(err),
                Err(_elapsed) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "tls handshake timed out",
                )),
            }
        }
        Ok(Next::Close) => {
            let _ = stream.shutdown().await;
            Ok(Next::Close)
        }
        Err(err) => Err(err),
    };
    match result {
        // A client that vanishes without QUIT (or without TLS close_notify) is routine.
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
            debug!(peer = %peer_addr, "smtp client closed the connection");
        }
        Err(err) => debug!(peer = %peer_addr, error = %err, "smtp session ended with error"),
        Ok(_) => debug!(peer = %peer_addr, "smtp session closed"),
    }
}
