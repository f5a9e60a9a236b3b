//! One-click links of report emails: signed, expiring, purpose-bound tokens.
//!
//! A token is an HS256 JWT under a key derived from the platform secret (so it can never
//! pass as a login token, nor a login token as a link). It names one user, optionally one
//! quarantined item, one purpose, an expiry and a unique id (`jti`); the web side refuses a
//! token used for another purpose and records the `jti` of every action it carried out, so
//! an action link works once.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Audience of link tokens.
const AUDIENCE: &str = "cleanmail-link";

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    /// Release one quarantined item to the user's mailbox.
    Release,
    /// Delete one quarantined item.
    Delete,
    /// Allow the sender of one quarantined item.
    AllowSender,
    /// Open the user's quarantine list.
    Quarantine,
    /// Open the user's backup webmail.
    Webmail,
}

impl LinkPurpose {
    /// Actions change something and can be used once; views can be opened until expiry.
    pub fn is_action(self) -> bool {
        matches!(self, Self::Release | Self::Delete | Self::AllowSender)
    }

    /// The name used in URLs and claims.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Delete => "delete",
            Self::AllowSender => "allow_sender",
            Self::Quarantine => "quarantine",
            Self::Webmail => "webmail",
        }
    }
}

/// The claims of a link token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// The user whose data the link opens.
    pub sub: String,
    /// The quarantined item an action link is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub purpose: LinkPurpose,
    /// Expiry (seconds since the Unix epoch).
    pub exp: i64,
    /// Unique token id (recorded when an action is carried out).
    pub jti: String,
    aud: String,
}

impl LinkClaims {
    /// Claims for `user` (and `item`) with `purpose`, expiring at `exp`, with id `jti`.
    pub fn new(
        user: impl Into<String>,
        item: Option<String>,
        purpose: LinkPurpose,
        exp: i64,
        jti: impl Into<String>,
    ) -> Self {
        Self {
            sub: user.into(),
            item,
            purpose,
            exp,
            jti: jti.into(),
            aud: AUDIENCE.to_owned(),
        }
    }
}

/// Why a link token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link has expired")]
    Expired,
    #[error("the link is not valid")]
    Invalid,
    #[error("the link is not valid for this action")]
    WrongPurpose,
}

/// Signs and checks link tokens with one key.
#[derive(Clone)]
pub struct LinkSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

impl LinkSigner {
    /// A signer whose key is derived from the platform secret.
    pub fn new(platform_secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"cleanmail link tokens v1\0");
        hasher.update(platform_secret);
        let key = hasher.finalize();
        Self {
            encoding: EncodingKey::from_secret(&key).expect("a 32-byte HMAC key is valid"),
            decoding: DecodingKey::from_secret(&key).expect("a 32-byte HMAC key is valid"),
        }
    }

    /// The signed token of `claims`.
    pub fn sign(&self, claims: &LinkClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The claims of `token` if it is authentic, for `purpose`, and not expired at `now`
    /// (seconds since the epoch).
    pub fn verify(
        &self,
        token: &str,
        purpose: LinkPurpose,
        now: i64,
    ) -> Result<LinkClaims, LinkError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        // Expiry is checked below against the caller's clock, without leeway.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<LinkClaims>(token, &self.decoding, &validation)
            .map_err(|_| LinkError::Invalid)?
            .claims;
        if claims.exp <= now {
            return Err(LinkError::Expired);
        }
        if claims.purpose != purpose {
            return Err(LinkError::WrongPurpose);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_expiry_purpose_and_tampering() {
        let signer = LinkSigner::new(b"platform secret of at least 32 bytes!!");
        let claims = LinkClaims::new("u1", Some("m1".into()), LinkPurpose::Release, 1_000, "j1");
        let token = signer.sign(&claims);
        assert_eq!(signer.verify(&token, LinkPurpose::Release, 999), Ok(claims));
        assert_eq!(
            signer.verify(&token, LinkPurpose::Release, 1_000),
            Err(LinkError::Expired)
        );
        assert_eq!(
            signer.verify(&token, LinkPurpose::Delete, 10),
            Err(LinkError::WrongPurpose)
        );
        let other = LinkSigner::new(b"another platform secret of 32 bytes!!");
        assert_eq!(
            other.verify(&token, LinkPurpose::Release, 10),
            Err(LinkError::Invalid)
        );
        let mut tampered = token.clone();
        tampered.insert(tampered.len() - 3, 'x');
        assert_eq!(
            signer.verify(&tampered, LinkPurpose::Release, 10),
            Err(LinkError::Invalid)
        );
    }
}
