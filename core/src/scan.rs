//! The virus-scanner seam: the engine calls a [`VirusScanner`] (for example the ClamAV
//! `clamd` client in the worker crate) on the raw message.

/// What the scanner found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome {
    Clean,
    /// Malware was found; the signature name.
    Infected(String),
}

/// Why a scan could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("virus scanner unavailable: {0}")]
    Unavailable(String),
    #[error("virus scanner protocol error: {0}")]
    Protocol(String),
    #[error("message too large for the virus scanner")]
    TooLarge,
}

/// A synchronous virus scanner. Implementations do blocking I/O with timeouts; call the
/// engine from a blocking context (for example `tokio::task::spawn_blocking`).
pub trait VirusScanner: Send + Sync {
    /// Scans `data` (a whole raw message).
    fn scan(&self, data: &[u8]) -> Result<ScanOutcome, ScanError>;
}
