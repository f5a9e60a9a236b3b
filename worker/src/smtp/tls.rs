//! Builds the rustls server configuration used for STARTTLS.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::config::TlsSetting;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read or parsed.
    #[error("reading {what} from {path}: {source}")]
    Pem {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: String,
        /// The parse or I/O error.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate found in {0}")]
    NoCertificate(String),
    /// Generating the self-signed certificate failed.
    #[error("generating self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Returns the STARTTLS server configuration, or `None` when TLS is disabled.
///
/// Uses the aws-lc-rs provider explicitly, so it works whether or not a process-wide
/// default provider was installed.
pub fn server_config(
    setting: &TlsSetting,
    hostname: &str,
) -> Result<Option<Arc<ServerConfig>>, TlsSetupError> {
    let (certs, key) = match setting {
        TlsSetting::Disabled => return Ok(None),
        TlsSetting::SelfSigned => self_signed(hostname)?,
        TlsSetting::PemFiles {
            cert_path,
            key_path,
        } => {
            let pem_error = |what, path: &std::path::Path| {
                let path = path.display().to_string();
                move |source| TlsSetupError::Pem { what, path, source }
            };
            let certs = CertificateDer::pem_file_iter(cert_path)
                .map_err(pem_error("certificate", cert_path))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(pem_error("certificate", cert_path))?;
            if certs.is_empty() {
                return Err(TlsSetupError::NoCertificate(
                    cert_path.display().to_string(),
                ));
            }
            let key = PrivateKeyDer::from_pem_file(key_path)
                .map_err(pem_error("private key", key_path))?;
            (certs, key)
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Some(Arc::new(config)))
}

/// A fresh self-signed certificate and key for `hostname`.
fn self_signed(
    hostname: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsSetupError> {
    let certified = rcgen::generate_simple_self_signed(vec![hostname.to_owned()])?;
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    Ok((vec![certified.cert.der().clone()], key.into()))
}
