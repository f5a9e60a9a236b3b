//! Settings of the inbound SMTP listener: address, TLS and limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the STARTTLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsSetting {
    /// No STARTTLS offered.
    Disabled,
    /// A self-signed certificate for the configured hostname, generated at start.
    #[default]
    SelfSigned,
    /// Certificate chain and private key read from PEM files.
    PemFiles {
        /// Certificate chain, leaf first.
        cert_path: PathBuf,
        /// PKCS#8, PKCS#1 or SEC1 private key.
        key_path: PathBuf,
    },
}

/// Configuration of one SMTP listener.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Address to listen on; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Name announced in the greeting, EHLO reply and `Received:` header.
    pub hostname: String,
    /// STARTTLS certificate source.
    pub tls: TlsSetting,
    /// Largest accepted message in bytes, advertised with SIZE (552 5.3.4 above it).
    pub max_message_size: usize,
    /// Most recipients per message (452 4.5.3 above it).
    pub max_recipients: usize,
    /// Most simultaneous connections overall (421 4.3.2 above it).
    pub max_connections: usize,
    /// Most simultaneous connections from one client IP (421 4.7.0 above it).
    pub max_connections_per_ip: usize,
    /// Most invalid or out-of-sequence commands before the session is closed with 421.
    pub max_bad_commands: usize,
    /// Idle time allowed while waiting for a command (and for the TLS handshake).
    pub command_timeout: Duration,
    /// Idle time allowed between reads while receiving message data.
    pub data_timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 2525)),
            hostname: "localhost".to_owned(),
            tls: TlsSetting::SelfSigned,
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 1000,
            max_connections_per_ip: 20,
            max_bad_commands: 10,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
        }
    }
}

impl SmtpConfig {
    /// Defaults listening on `127.0.0.1:0` with short timeouts, for tests and examples.
    pub fn for_tests() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            hostname: "mx.test".to_owned(),
            command_timeout: Duration::from_secs(30),
            data_timeout: Duration::from_secs(30),
            ..Self::default()
        }
    }
}
