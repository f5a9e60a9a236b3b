//! DKIM for outbound mail: key pairs per domain, the DNS record to publish, signing with
//! mail-auth, and sealing private keys at rest under the platform secret.
//!
//! ```
//! use cleanmail_core::dkim::{DkimAlgorithm, DkimKeyPair};
//!
//! let key = DkimKeyPair::generate(DkimAlgorithm::Ed25519).unwrap();
//! assert!(key.dns_txt().starts_with("v=DKIM1; k=ed25519; p="));
//! let signed = key
//!     .sign(b"From: a@example.ch\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n", "example.ch", "cm1")
//!     .unwrap();
//! assert!(signed.starts_with(b"DKIM-Signature: "));
//! ```

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::DkimSigner;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Digest as _;

/// Signature algorithm of a DKIM key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DkimAlgorithm {
    /// `rsa-sha256` with a 2048-bit key: verified by every receiver.
    Rsa2048,
    /// `ed25519-sha256` (RFC 8463): short records, not verified everywhere yet.
    Ed25519,
}

impl DkimAlgorithm {
    /// The stored name (`rsa-2048`, `ed25519`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa-2048",
            Self::Ed25519 => "ed25519",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "rsa-2048" | "rsa" => Some(Self::Rsa2048),
            "ed25519" => Some(Self::Ed25519),
            _ => None,
        }
    }

    /// The `k=` tag of the DNS record.
    fn dns_k(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }
}

/// What can go wrong with a key.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("generating the key failed")]
    Generate,
    #[error("the stored key is unreadable (was the platform secret changed?)")]
    Unseal,
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A DKIM key pair: PKCS#8 private key and the public key as published in DNS.
pub struct DkimKeyPair {
    algorithm: DkimAlgorithm,
    pkcs8: Vec<u8>,
    /// `p=` value: SubjectPublicKeyInfo DER for RSA, the raw 32 bytes for Ed25519.
    public: Vec<u8>,
}

impl std::fmt::Debug for DkimKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKeyPair")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl DkimKeyPair {
    /// A new random key.
    pub fn generate(algorithm: DkimAlgorithm) -> Result<Self, DkimError> {
        let (pkcs8, public) = match algorithm {
            DkimAlgorithm::Rsa2048 => {
                let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| DkimError::Generate)?;
                let pkcs8 = key.as_der().map_err(|_| DkimError::Generate)?;
                let public = key.public_key().as_der().map_err(|_| DkimError::Generate)?;
                (pkcs8.as_ref().to_vec(), public.as_ref().to_vec())
            }
            DkimAlgorithm::Ed25519 => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| DkimError::Generate)?;
                let key =
                    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| DkimError::Generate)?;
                (pkcs8.as_ref().to_vec(), key.public_key().as_ref().to_vec())
            }
        };
        Ok(Self {
            algorithm,
            pkcs8,
            public,
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// The public key, base64 (the `p=` tag).
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(&self.public)
    }

    /// The TXT record to publish at `<selector>._domainkey.<domain>`.
    pub fn dns_txt(&self) -> String {
        dns_txt(self.algorithm, &self.public_key_base64())
    }

    /// The message with a `DKIM-Signature` header for `domain` and `selector` prepended.
    /// Signs the headers receivers and DMARC look at (From, To, Subject, Date, …).
    pub fn sign(&self, raw: &[u8], domain: &str, selector: &str) -> Result<Vec<u8>, DkimError> {
        const HEADERS: [&str; 10] = [
            "From",
            "To",
            "Cc",
            "Subject",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
            "MIME-Version",
            "Content-Type",
        ];
        fn sign_with<K: SigningKey<Hasher = Sha256>>(
            key: K,
            raw: &[u8],
            domain: &str,
            selector: &str,
        ) -> Result<mail_auth::dkim::Signature, mail_auth::Error> {
            DkimSigner::from_key(key)
                .domain(domain)
                .selector(selector)
                .headers(HEADERS)
                .sign(raw)
        }
        let signature = match self.algorithm {
            DkimAlgorithm::Rsa2048 => RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(
                PrivatePkcs8KeyDer::from(self.pkcs8.as_slice()),
            ))
            .and_then(|key| sign_with(key, raw, domain, selector)),
            DkimAlgorithm::Ed25519 => Ed25519Key::from_pkcs8_der(&self.pkcs8)
                .and_then(|key| sign_with(key, raw, domain, selector)),
        }
        .map_err(|e| DkimError::Sign(e.to_string()))?;
        let header = signature.to_header();
        let mut signed = Vec::with_capacity(header.len() + raw.len());
        signed.extend_from_slice(header.as_bytes());
        signed.extend_from_slice(raw);
        Ok(signed)
    }

    /// The private key sealed for storage (AES-256-GCM, base64 of nonce and ciphertext).
    pub fn seal(&self, sealer: &KeySealer) -> String {
        sealer.seal(&self.pkcs8)
    }

    /// A key read back from [`DkimKeyPair::seal`]'s output.
    pub fn unseal(
        algorithm: DkimAlgorithm,
        sealed: &str,
        public_base64: &str,
        sealer: &KeySealer,
    ) -> Result<Self, DkimError> {
        let pkcs8 = sealer.open(sealed)?;
        let public = BASE64
            .decode(public_base64)
            .map_err(|_| DkimError::Unseal)?;
        Ok(Self {
            algorithm,
            pkcs8,
            public,
        })
    }
}

/// The TXT record of a public key (`v=DKIM1; k=…; p=…`).
pub fn dns_txt(algorithm: DkimAlgorithm, public_base64: &str) -> String {
    format!("v=DKIM1; k={}; p={public_base64}", algorithm.dns_k())
}

/// Seals private keys at rest under a key derived from the platform secret.
#[derive(Clone)]
pub struct KeySealer {
    key: [u8; 32],
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySealer(..)")
    }
}

const SEAL_CONTEXT: &[u8] = b"cleanmail dkim private keys v1";

impl KeySealer {
    /// The sealer of a deployment; the same secret opens what it sealed.
    pub fn new(platform_secret: &[u8]) -> Self {
        let mut hasher = sha2::Sha256::new();
        hasher.update(SEAL_CONTEXT);
        hasher.update(platform_secret);
        Self {
            key: hasher.finalize().into(),
        }
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.key).expect("32-byte AES key"))
    }

    fn seal(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system random source works");
        let mut data = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(SEAL_CONTEXT),
                &mut data,
            )
            .expect("AES-GCM sealing of a small buffer");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        BASE64.encode(out)
    }

    fn open(&self, sealed: &str) -> Result<Vec<u8>, DkimError> {
        let bytes = BASE64.decode(sealed).map_err(|_| DkimError::Unseal)?;
        if bytes.len() < NONCE_LEN {
            return Err(DkimError::Unseal);
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| DkimError::Unseal)?;
        let mut data = data.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(SEAL_CONTEXT), &mut data)
            .map_err(|_| DkimError::Unseal)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;
    use crate::filter::auth::{AuthOutcome, Authenticator, DnsCache};

    const MESSAGE: &[u8] = b"From: Alice <alice@example.ch>\r\nTo: bob@example.org\r\n\
        Subject: Lunch\r\nDate: Sun, 29 Nov 2026 10:00:00 +0100\r\n\
        Message-ID: <1@example.ch>\r\n\r\nSee you at noon.\r\n";

    async fn dkim_outcome(signed: &[u8], key: &DkimKeyPair) -> AuthOutcome {
        let dns = DnsCache::fixed();
        dns.add_txt("cm1._domainkey.example.ch", &key.dns_txt())
            .unwrap();
        let auth = Authenticator::offline(dns, "mx.cleanmail.test");
        let envelope = Envelope {
            client_ip: Some("192.0.2.1".parse().unwrap()),
            helo: "mail.example.ch".into(),
            mail_from: Some("alice@example.ch".parse().unwrap()),
            recipients: vec!["bob@example.org".parse().unwrap()],
            tls: true,
        };
        let results = auth.authenticate(signed, &envelope).await;
        results
            .dkim
            .first()
            .map(|d| d.outcome)
            .unwrap_or(AuthOutcome::None)
    }

    #[tokio::test]
    async fn signatures_verify_against_the_published_record() {
        for algorithm in [DkimAlgorithm::Rsa2048, DkimAlgorithm::Ed25519] {
            let key = DkimKeyPair::generate(algorithm).unwrap();
            let signed = key.sign(MESSAGE, "example.ch", "cm1").unwrap();
            assert_eq!(
                dkim_outcome(&signed, &key).await,
                AuthOutcome::Pass,
                "{algorithm:?}"
            );

            // A changed body or signed header breaks the signature.
            let text = String::from_utf8(signed).unwrap();
            for tampered in [
                text.replace("at noon", "at one"),
                text.replace("Subject: Lunch", "Subject: Dinner"),
            ] {
                let outcome = dkim_outcome(tampered.as_bytes(), &key).await;
                assert_ne!(outcome, AuthOutcome::Pass, "{algorithm:?}");
            }
        }
    }

    #[tokio::test]
    async fn sealed_keys_open_only_under_the_same_secret() {
        let key = DkimKeyPair::generate(DkimAlgorithm::Ed25519).unwrap();
        let sealer = KeySealer::new(b"platform secret");
        let sealed = key.seal(&sealer);
        assert!(!sealed.contains(&key.public_key_base64()));
        let opened = DkimKeyPair::unseal(
            DkimAlgorithm::Ed25519,
            &sealed,
            &key.public_key_base64(),
            &sealer,
        )
        .unwrap();
        let signed = opened.sign(MESSAGE, "example.ch", "cm1").unwrap();
        assert_eq!(dkim_outcome(&signed, &key).await, AuthOutcome::Pass);

        let other = KeySealer::new(b"another secret");
        assert!(matches!(
            DkimKeyPair::unseal(DkimAlgorithm::Ed25519, &sealed, "", &other),
            Err(DkimError::Unseal)
        ));
    }

    #[test]
    fn the_dns_record_names_the_algorithm() {
        let rsa = DkimKeyPair::generate(DkimAlgorithm::Rsa2048).unwrap();
        assert!(rsa.dns_txt().starts_with("v=DKIM1; k=rsa; p=MII"));
        assert_eq!(
            DkimAlgorithm::parse("rsa-2048"),
            Some(DkimAlgorithm::Rsa2048)
        );
        assert_eq!(DkimAlgorithm::parse("dsa"), None);
    }
}
