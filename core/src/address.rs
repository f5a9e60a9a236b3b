//! Validated mail addresses and domain names: case-insensitive, IDN domains in their ASCII
//! (punycode) normal form, so one address has exactly one stored spelling.

use std::fmt;

/// Why an address or domain name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("is empty")]
    Empty,
    #[error("must contain exactly one '@' between a local part and a domain")]
    MissingAt,
    #[error("local part is invalid: {0}")]
    LocalPart(&'static str),
    #[error("domain is invalid: {0}")]
    Domain(&'static str),
}

/// A domain name in normal form: lowercase ASCII, IDN labels as punycode (`xn--`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Parses and normalises a domain name (Unicode or ASCII, trailing dot allowed).
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let trimmed = input.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(AddressError::Empty);
        }
        let ascii = idna::domain_to_ascii(trimmed)
            .map_err(|_| AddressError::Domain("not a valid internationalised domain name"))?;
        if ascii.len() > 253 {
            return Err(AddressError::Domain("longer than 253 characters"));
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err(AddressError::Domain(
                "needs at least two labels, e.g. example.com",
            ));
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(AddressError::Domain(
                    "each label must be 1 to 63 characters",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(AddressError::Domain("a label cannot start or end with '-'"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(AddressError::Domain(
                    "only letters, digits and '-' are allowed",
                ));
            }
        }
        Ok(Self(ascii))
    }

    /// The normal (ASCII) form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Unicode form for display (`xn--` labels decoded).
    pub fn to_unicode(&self) -> String {
        idna::domain_to_unicode(&self.0).0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox address `local@domain`, lowercased, with its domain in normal form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    full: String,
    at: usize,
}

impl EmailAddress {
    /// Parses and normalises an address; angle brackets around it are accepted.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let trimmed = input
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if trimmed.is_empty() {
            return Err(AddressError::Empty);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(AddressError::MissingAt)?;
        if local.is_empty() {
            return Err(AddressError::LocalPart("is empty"));
        }
        if local.len() > 64 {
            return Err(AddressError::LocalPart("longer than 64 characters"));
        }
        if local.contains('@') || local.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddressError::LocalPart(
                "contains '@', spaces or control characters",
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(AddressError::LocalPart("dots cannot lead, trail or repeat"));
        }
        let domain = DomainName::parse(domain)?;
        let local = local.to_lowercase();
        let full = format!("{local}@{domain}");
        Ok(Self {
            at: local.len(),
            full,
        })
    }

    /// The normal form `local@domain`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The local part (before `@`).
    pub fn local_part(&self) -> &str {
        &self.full[..self.at]
    }

    /// The domain part in normal form.
    pub fn domain(&self) -> &str {
        &self.full[self.at + 1..]
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl DomainName {
    /// Whether this is `other` or one of its subdomains.
    pub fn is_within(&self, other: &DomainName) -> bool {
        is_within(&self.0, &other.0)
    }

    /// Whether any label is punycode (`xn--`), i.e. the name was internationalised.
    pub fn is_idn(&self) -> bool {
        self.0.split('.').any(|label| label.starts_with("xn--"))
    }
}

/// Whether the ASCII domain `domain` equals `parent` or is one of its subdomains.
pub fn is_within(domain: &str, parent: &str) -> bool {
    domain == parent
        || (domain.len() > parent.len()
            && domain.ends_with(parent)
            && domain.as_bytes()[domain.len() - parent.len() - 1] == b'.')
}

impl std::str::FromStr for DomainName {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

macro_rules! serde_via_str {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <String as serde::Deserialize>::deserialize(deserializer)?;
                <$ty>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(DomainName);
serde_via_str!(EmailAddress);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_case_insensitive_and_idn_normalised() {
        let a = EmailAddress::parse(" <Jean.Dupont@Exämple.CH> ").unwrap();
        assert_eq!(a.as_str(), "jean.dupont@xn--exmple-cua.ch");
        assert_eq!(a.local_part(), "jean.dupont");
        assert_eq!(a.domain(), "xn--exmple-cua.ch");
        assert_eq!(
            DomainName::parse("xn--exmple-cua.ch").unwrap().to_unicode(),
            "exämple.ch"
        );
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert_eq!(EmailAddress::parse(""), Err(AddressError::Empty));
        assert_eq!(EmailAddress::parse("nobody"), Err(AddressError::MissingAt));
        assert!(matches!(
            EmailAddress::parse("a..b@x.ch"),
            Err(AddressError::LocalPart(_))
        ));
        assert!(matches!(
            EmailAddress::parse("a@localhost"),
            Err(AddressError::Domain(_))
        ));
        assert!(matches!(
            DomainName::parse("-bad-.ch"),
            Err(AddressError::Domain(_))
        ));
    }

    #[test]
    fn serde_round_trip_and_subdomains() {
        let address = EmailAddress::parse("A@B.ch").unwrap();
        let json = serde_json::to_string(&address).unwrap();
        assert_eq!(json, "\"a@b.ch\"");
        let back: EmailAddress = serde_json::from_str(&json).unwrap();
        assert_eq!(back, address);
        let sub = DomainName::parse("mail.example.com").unwrap();
        let parent = DomainName::parse("example.com").unwrap();
        assert!(sub.is_within(&parent));
        assert!(
            !DomainName::parse("badexample.com")
                .unwrap()
                .is_within(&parent)
        );
    }
}
