//! ClamAV `clamd` client (INSTREAM) implementing the core virus-scanner trait.
//!
//! Synchronous `std::net` with connect/read/write timeouts: the engine calls scanners from a
//! blocking context. Protocol: `zINSTREAM\0`, then chunks of `u32` big-endian length + data,
//! a zero-length chunk, and one reply line `stream: OK` or `stream: <name> FOUND`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use cleanmail_core::{ScanError, ScanOutcome, VirusScanner};

/// Chunk size sent to clamd.
const CHUNK: usize = 64 * 1024;
/// Longest reply accepted.
const MAX_REPLY: u64 = 4096;

/// A clamd TCP client.
#[derive(Debug, Clone)]
pub struct ClamdClient {
    addr: SocketAddr,
    timeout: Duration,
    /// clamd's `StreamMaxLength`; larger messages are not sent.
    max_stream: usize,
}

impl ClamdClient {
    /// A client for `addr` (for example `127.0.0.1:3310`) with a 30 s timeout and clamd's
    /// default 25 MB stream limit.
    pub fn new(addr: impl ToSocketAddrs) -> std::io::Result<Self> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address for clamd"))?;
        Ok(Self {
            addr,
            timeout: Duration::from_secs(30),
            max_stream: 25 * 1024 * 1024,
        })
    }

    /// Sets the connect/read/write timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the largest stream sent (must not exceed clamd's `StreamMaxLength`).
    pub fn with_max_stream(mut self, bytes: usize) -> Self {
        self.max_stream = bytes;
        self
    }

    fn connect(&self) -> Result<TcpStream, ScanError> {
        let stream = TcpStream::connect_timeout(&self.addr, self.timeout)
            .map_err(|e| ScanError::Unavailable(format!("{}: {e}", self.addr)))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| ScanError::Unavailable(e.to_string()))?;
        Ok(stream)
    }

    fn reply(stream: &mut TcpStream) -> Result<String, ScanError> {
        let mut reply = Vec::new();
        stream
            .take(MAX_REPLY)
            .read_to_end(&mut reply)
            .map_err(|e| ScanError::Protocol(format!("reading reply: {e}")))?;
        let reply = String::from_utf8_lossy(&reply);
        Ok(reply.trim_end_matches(['\0', '\n', '\r']).to_owned())
    }

    /// Sends `PING` and expects `PONG`.
    pub fn ping(&self) -> Result<(), ScanError> {
        let mut stream = self.connect()?;
        stream
            .write_all(b"zPING\0")
            .map_err(|e| ScanError::Unavailable(e.to_string()))?;
        match Self::reply(&mut stream)?.as_str() {
            "PONG" => Ok(()),
            other => Err(ScanError::Protocol(format!(
                "unexpected PING reply {other:?}"
            ))),
        }
    }
}

/// Parses an INSTREAM reply line.
pub fn parse_reply(reply: &str) -> Result<ScanOutcome, ScanError> {
    let body = reply.strip_prefix("stream: ").unwrap_or(reply);
    if body == "OK" {
        Ok(ScanOutcome::Clean)
    } else if let Some(name) = body.strip_suffix(" FOUND") {
        Ok(ScanOutcome::Infected(name.to_owned()))
    } else if body.contains("size limit exceeded") {
        Err(ScanError::TooLarge)
    } else {
        Err(ScanError::Protocol(format!("unexpected reply {reply:?}")))
    }
}

impl VirusScanner for ClamdClient {
    fn scan(&self, data: &[u8]) -> Result<ScanOutcome, ScanError> {
        if data.len() > self.max_stream {
            return Err(ScanError::TooLarge);
        }
        let mut stream = self.connect()?;
        let io = |e: std::io::Error| ScanError::Unavailable(format!("sending to clamd: {e}"));
        stream.write_all(b"zINSTREAM\0").map_err(io)?;
        for chunk in data.chunks(CHUNK) {
            stream
                .write_all(&(chunk.len() as u32).to_be_bytes())
                .map_err(io)?;
            stream.write_all(chunk).map_err(io)?;
        }
        stream.write_all(&0u32.to_be_bytes()).map_err(io)?;
        stream.flush().map_err(io)?;
        parse_reply(&Self::reply(&mut stream)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_parsed() {
        assert_eq!(parse_reply("stream: OK").unwrap(), ScanOutcome::Clean);
        assert_eq!(
            parse_reply("stream: Eicar-Signature FOUND").unwrap(),
            ScanOutcome::Infected("Eicar-Signature".into())
        );
        assert!(matches!(
            parse_reply("INSTREAM size limit exceeded. ERROR"),
            Err(ScanError::TooLarge)
        ));
        assert!(parse_reply("garbage").is_err());
    }

    /// Runs against a real clamd when `TEST_CLAMD_ADDR` is set (see `.ci/start-clamd`).
    #[test]
    fn scans_with_a_real_clamd() {
        let Ok(addr) = std::env::var("TEST_CLAMD_ADDR") else {
            // Straight to stderr: libtest would capture `println!` of a passing test.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: the real clamd test: set TEST_CLAMD_ADDR=127.0.0.1:3310"
            );
            return;
        };
        let client = ClamdClient::new(addr.as_str()).unwrap();
        client.ping().expect("clamd answers PING");
        let clean = b"From: a@b.example\r\nSubject: hi\r\n\r\nNothing to see here.\r\n";
        assert_eq!(client.scan(clean).unwrap(), ScanOutcome::Clean);
        // The custom signature installed by .ci/start-clamd.
        let infected =
            b"From: a@b.example\r\nSubject: hi\r\n\r\nCLEANMAIL-CLAMD-TEST-SIGNATURE-7f3a\r\n";
        match client.scan(infected).unwrap() {
            ScanOutcome::Infected(name) => assert!(name.contains("Cleanmail"), "{name}"),
            ScanOutcome::Clean => panic!("the test signature was not detected"),
        }
        // Through the engine.
        let engine = cleanmail_core::Engine::default().with_scanner(std::sync::Arc::new(client));
        let envelope = cleanmail_core::Envelope::default();
        let input = cleanmail_core::MessageInput {
            raw: infected,
            envelope: &envelope,
            auth: None,
            received_at: None,
        };
        let verdict = engine.analyze(&input, &cleanmail_core::TenantContext::default());
        assert_eq!(verdict.category, cleanmail_core::Category::Virus);
        assert!(verdict.has_symbol("CLAMAV_VIRUS"));
    }
}
