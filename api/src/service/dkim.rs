//! DKIM keys of a domain for outbound mail: create (the platform generates the key pair;
//! the private key never leaves it), show the DNS record to publish, activate for signing,
//! delete. Rotation: create a new key inactive, publish its record, then activate it.

use chrono::{DateTime, Utc};
use cleanmail_core::dkim::{DkimAlgorithm, DkimKeyPair};
use cleanmail_schema::models as m;
use cleanmail_schema::store::{dkim_keys as store, domains};
use cleanmail_schema::{DomainId, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::utc;
use crate::auth::{Principal, Role};
use crate::{ApiError, AppState, Validator};

/// The signature algorithm of a key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
#[graphql(name = "DkimKeyAlgorithm")]
pub enum KeyAlgorithm {
    /// `rsa-sha256`, 2048-bit key: verified by every receiver (the default).
    Rsa2048,
    /// `ed25519-sha256` (RFC 8463): short record; not every receiver verifies it yet.
    Ed25519,
}

impl From<KeyAlgorithm> for DkimAlgorithm {
    fn from(a: KeyAlgorithm) -> Self {
        match a {
            KeyAlgorithm::Rsa2048 => Self::Rsa2048,
            KeyAlgorithm::Ed25519 => Self::Ed25519,
        }
    }
}

impl From<DkimAlgorithm> for KeyAlgorithm {
    fn from(a: DkimAlgorithm) -> Self {
        match a {
            DkimAlgorithm::Rsa2048 => Self::Rsa2048,
            DkimAlgorithm::Ed25519 => Self::Ed25519,
        }
    }
}

/// The DNS TXT record that publishes a key.
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct DnsTxtRecord {
    /// Owner name: `<selector>._domainkey.<domain>`.
    pub name: String,
    /// Always `TXT`.
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub record_type: String,
    /// The record's text, as one string (`v=DKIM1; k=…; p=…`).
    pub value: String,
    /// The same text split into character-strings of at most 255 bytes, as a zone file or
    /// DNS provider that limits TXT strings needs it (RSA keys are longer than 255).
    pub strings: Vec<String>,
}

/// A DKIM key of a domain (the private key is never shown).
#[derive(Debug, Clone, Serialize, ToSchema, async_graphql::SimpleObject)]
pub struct DkimKey {
    pub id: String,
    pub domain_id: String,
    pub domain: String,
    pub selector: String,
    pub algorithm: KeyAlgorithm,
    /// Outbound mail of the domain is signed with this key.
    pub active: bool,
    pub dns_record: DnsTxtRecord,
    pub created_at: DateTime<Utc>,
}

impl DkimKey {
    fn from_row(row: m::DkimKey, domain: &str) -> Self {
        let algorithm = DkimAlgorithm::parse(&row.algorithm).unwrap_or(DkimAlgorithm::Rsa2048);
        let value = cleanmail_core::dkim::dns_txt(algorithm, &row.public_key);
        let strings = value
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        Self {
            id: row.id,
            domain_id: row.domain_id.0,
            domain: domain.to_owned(),
            dns_record: DnsTxtRecord {
                name: format!("{}._domainkey.{domain}", row.selector),
                record_type: "TXT".to_owned(),
                value,
                strings,
            },
            selector: row.selector,
            algorithm: algorithm.into(),
            active: row.active,
            created_at: utc(row.created_at),
        }
    }
}

/// Input to create a key.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, async_graphql::InputObject)]
#[graphql(name = "CreateDkimKeyInput")]
pub struct CreateDkimKey {
    /// DNS label(s) under `_domainkey`; default `cm` and the year and month (`cm202611`).
    pub selector: Option<String>,
    /// Default `rsa2048`.
    pub algorithm: Option<KeyAlgorithm>,
    /// Sign with it at once. Default: true for the domain's first key, else false (publish
    /// the record first, then activate).
    pub active: Option<bool>,
}

/// Checks a selector: DNS labels of letters, digits and hyphens, separated by dots.
fn check_selector(v: &mut Validator, selector: &str) -> String {
    let selector = selector.trim().to_ascii_lowercase();
    let valid = !selector.is_empty()
        && selector.len() <= 63
        && selector.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        v.error(
            "selector",
            "must be DNS labels of letters, digits and hyphens (at most 63 characters), e.g. cm2026",
        );
    }
    selector
}

/// The keys of a domain, newest first.
pub async fn list(
    state: &AppState,
    who: &Principal,
    domain_id: &str,
) -> Result<Vec<DkimKey>, ApiError> {
    who.require(Role::TenantAdmin)?;
    let domain_id = DomainId(domain_id.to_owned());
    let domain = domains::get(&state.db, &who.scope, &domain_id).await?;
    let rows = store::list(&state.db, &who.scope, &domain_id).await?;
    Ok(rows
        .into_iter()
        .map(|row| DkimKey::from_row(row, &domain.name))
        .collect())
}

/// One key of a domain.
pub async fn get(
    state: &AppState,
    who: &Principal,
    domain_id: &str,
    id: &str,
) -> Result<DkimKey, ApiError> {
    who.require(Role::TenantAdmin)?;
    let domain_id = DomainId(domain_id.to_owned());
    let domain = domains::get(&state.db, &who.scope, &domain_id).await?;
    let row = store::get(&state.db, &who.scope, &domain_id, id).await?;
    Ok(DkimKey::from_row(row, &domain.name))
}

/// Generates a key pair for a domain and stores it sealed.
pub async fn create(
    state: &AppState,
    who: &Principal,
    domain_id: &str,
    input: CreateDkimKey,
) -> Result<DkimKey, ApiError> {
    let domain_id = DomainId(domain_id.to_owned());
    let domain = domains::get(&state.db, &who.scope, &domain_id).await?;
    who.require(Role::TenantAdmin)?;
    let mut v = Validator::default();
    let selector = match &input.selector {
        Some(selector) => check_selector(&mut v, selector),
        None => format!("cm{}", Utc::now().format("%Y%m")),
    };
    v.finish()?;
    let algorithm: DkimAlgorithm = input.algorithm.unwrap_or(KeyAlgorithm::Rsa2048).into();
    let active = match input.active {
        Some(active) => active,
        None => store::list(&state.db, &who.scope, &domain_id)
            .await?
            .is_empty(),
    };
    // RSA key generation takes tens of milliseconds: off the async threads.
    let key = tokio::task::spawn_blocking(move || DkimKeyPair::generate(algorithm))
        .await
        .map_err(|e| ApiError::Internal(format!("key generation task: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let row = m::DkimKey {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: domain.tenant_id.clone(),
        domain_id,
        selector: selector.clone(),
        algorithm: algorithm.as_str().to_owned(),
        public_key: key.public_key_base64(),
        sealed_private_key: key.seal(&state.dkim_sealer),
        active,
        created_at: cleanmail_schema::now(),
    };
    let row = store::create(&state.db, &who.scope, row)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict(format!(
                "the domain already has a key with selector `{selector}`"
            )),
            other => other.into(),
        })?;
    Ok(DkimKey::from_row(row, &domain.name))
}

/// Makes a key the one the domain's outbound mail is signed with.
pub async fn activate(
    state: &AppState,
    who: &Principal,
    domain_id: &str,
    id: &str,
) -> Result<DkimKey, ApiError> {
    let domain_id = DomainId(domain_id.to_owned());
    let domain = domains::get(&state.db, &who.scope, &domain_id).await?;
    store::get(&state.db, &who.scope, &domain_id, id).await?;
    who.require(Role::TenantAdmin)?;
    let row = store::activate(&state.db, &who.scope, &domain_id, id).await?;
    Ok(DkimKey::from_row(row, &domain.name))
}

/// Deletes a key; the domain's mail goes out unsigned if it was the active one.
pub async fn delete(
    state: &AppState,
    who: &Principal,
    domain_id: &str,
    id: &str,
) -> Result<(), ApiError> {
    let domain_id = DomainId(domain_id.to_owned());
    store::get(&state.db, &who.scope, &domain_id, id).await?;
    who.require(Role::TenantAdmin)?;
    Ok(store::delete(&state.db, &who.scope, &domain_id, id).await?)
}

/// Signs `raw` with the active key of `domain_id`, if the domain has one: the signed bytes
/// and the selector used.
pub(crate) async fn sign_outbound(
    state: &AppState,
    who: &Principal,
    domain_id: &DomainId,
    domain_name: &str,
    raw: Vec<u8>,
) -> Result<(Vec<u8>, Option<String>), ApiError> {
    let Some(row) = store::active(&state.db, &who.scope, domain_id).await? else {
        return Ok((raw, None));
    };
    let algorithm = DkimAlgorithm::parse(&row.algorithm)
        .ok_or_else(|| ApiError::Internal(format!("unknown DKIM algorithm {}", row.algorithm)))?;
    let key = DkimKeyPair::unseal(
        algorithm,
        &row.sealed_private_key,
        &row.public_key,
        &state.dkim_sealer,
    )
    .map_err(|e| ApiError::Internal(format!("DKIM key {}: {e}", row.id)))?;
    let signed = key
        .sign(&raw, domain_name, &row.selector)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((signed, Some(row.selector)))
}
