//! Sender authentication (SPF, DKIM, DMARC, ARC) with mail-auth, and the rules scoring it.
//!
//! Authentication needs DNS and is async, so it is a separate step: the caller runs
//! [`Authenticator::authenticate`] (in the SMTP worker, on its runtime) and passes the
//! [`AuthResults`] to the engine. The DNS lookups go through [`DnsCache`]: in production a
//! caching layer in front of the real resolver, in tests a fixed set of records
//! ([`DnsCache::fixed`]) so that nothing leaves the process.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MX, MessageAuthenticator, Parameters, RecordSet,
    ResolverCache, SpfResult, Txt,
};
use serde::{Deserialize, Serialize};

use super::Tags;
use crate::engine::Envelope;

/// The outcome of one authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthOutcome {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    #[default]
    None,
    TempError,
    PermError,
}

impl AuthOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Pass => "pass",
            AuthOutcome::Fail => "fail",
            AuthOutcome::SoftFail => "softfail",
            AuthOutcome::Neutral => "neutral",
            AuthOutcome::None => "none",
            AuthOutcome::TempError => "temperror",
            AuthOutcome::PermError => "permerror",
        }
    }
}

/// The policy a domain publishes in DMARC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DmarcPolicy {
    #[default]
    None,
    Quarantine,
    Reject,
}

/// One DKIM signature's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimSignatureResult {
    pub domain: String,
    pub selector: String,
    pub outcome: AuthOutcome,
}

/// DMARC's evaluation of the From domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DmarcEvaluation {
    pub domain: String,
    pub outcome: AuthOutcome,
    pub policy: DmarcPolicy,
}

/// All authentication results of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuthResults {
    /// SPF for the MAIL FROM identity (or the HELO identity for bounces).
    pub spf: AuthOutcome,
    pub spf_domain: String,
    pub dkim: Vec<DkimSignatureResult>,
    pub dmarc: DmarcEvaluation,
    pub arc: AuthOutcome,
}

impl AuthResults {
    /// Whether DMARC failed for the From domain.
    pub fn fails_alignment(&self) -> bool {
        self.dmarc.outcome == AuthOutcome::Fail
    }

    /// Whether at least one DKIM signature verified.
    pub fn dkim_pass(&self) -> bool {
        self.dkim.iter().any(|d| d.outcome == AuthOutcome::Pass)
    }

    /// An `Authentication-Results` style summary (`spf=pass dkim=pass dmarc=fail`).
    pub fn summary(&self) -> String {
        let dkim = if self.dkim.is_empty() {
            AuthOutcome::None
        } else if self.dkim_pass() {
            AuthOutcome::Pass
        } else {
            self.dkim[0].outcome
        };
        format!(
            "spf={} dkim={} dmarc={} arc={}",
            self.spf.as_str(),
            dkim.as_str(),
            self.dmarc.outcome.as_str(),
            self.arc.as_str()
        )
    }
}

/// Turns authentication results into tags.
pub fn analyze(auth: &AuthResults, tags: &mut Tags) {
    match auth.spf {
        AuthOutcome::Fail => tags.add("SPF_FAIL", auth.spf_domain.clone()),
        AuthOutcome::SoftFail => tags.add("SPF_SOFTFAIL", auth.spf_domain.clone()),
        AuthOutcome::Pass => tags.add("SPF_PASS", auth.spf_domain.clone()),
        _ => {}
    }
    if let Some(valid) = auth.dkim.iter().find(|d| d.outcome == AuthOutcome::Pass) {
        tags.add(
            "DKIM_VALID",
            format!("d={} s={}", valid.domain, valid.selector),
        );
    } else if let Some(invalid) = auth
        .dkim
        .iter()
        .find(|d| matches!(d.outcome, AuthOutcome::Fail | AuthOutcome::Neutral))
    {
        tags.add(
            "DKIM_INVALID",
            format!("d={} s={}", invalid.domain, invalid.selector),
        );
    }
    let domain = auth.dmarc.domain.clone();
    match (auth.dmarc.outcome, auth.dmarc.policy) {
        (AuthOutcome::Pass, _) => tags.add("DMARC_PASS", domain),
        (AuthOutcome::Fail, DmarcPolicy::Reject) => tags.add("DMARC_FAIL_REJECT", domain),
        (AuthOutcome::Fail, DmarcPolicy::Quarantine) => tags.add("DMARC_FAIL_QUARANTINE", domain),
        (AuthOutcome::Fail, DmarcPolicy::None) => tags.add("DMARC_FAIL_NONE", domain),
        _ => {}
    }
    if auth.arc == AuthOutcome::Fail {
        tags.add("ARC_FAIL", "");
    }
}

/// A DNS record cache usable by mail-auth, with optional expiry.
pub struct MapCache<K, V> {
    entries: Mutex<HashMap<K, (V, Option<Instant>)>>,
    max_entries: usize,
    /// Answer for names not in the cache (fixed mode: "no such record", no network).
    miss: Option<V>,
}

impl<K: Hash + Eq, V> MapCache<K, V> {
    fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries,
            miss: None,
        }
    }

    fn insert_forever(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key, (value, None));
        }
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for MapCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        match entries.get(name) {
            Some((_, Some(until))) if *until < Instant::now() => self.miss.clone(),
            Some((value, _)) => Some(value.clone()),
            None => self.miss.clone(),
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.lock().ok()?.remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.max_entries {
                let now = Instant::now();
                entries.retain(|_, (_, until)| until.is_none_or(|until| until > now));
                if entries.len() >= self.max_entries {
                    entries.retain(|_, (_, until)| until.is_none());
                }
            }
            entries.insert(key, (value, Some(valid_until)));
        }
    }
}

/// DNS caches for every record type mail-auth looks up.
pub struct DnsCache {
    pub txt: MapCache<Box<str>, Txt>,
    pub mx: MapCache<Box<str>, RecordSet<MX>>,
    pub ipv4: MapCache<Box<str>, RecordSet<Ipv4Addr>>,
    pub ipv6: MapCache<Box<str>, RecordSet<Ipv6Addr>>,
    pub ptr: MapCache<IpAddr, RecordSet<Box<str>>>,
}

/// Why a fixed DNS record was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid {kind} record for {name}: {reason}")]
pub struct RecordError {
    kind: &'static str,
    name: String,
    reason: String,
}

impl DnsCache {
    /// An empty cache holding at most `max_entries` records per type.
    pub fn new(max_entries: usize) -> Self {
        Self {
            txt: MapCache::new(max_entries),
            mx: MapCache::new(max_entries),
            ipv4: MapCache::new(max_entries),
            ipv6: MapCache::new(max_entries),
            ptr: MapCache::new(max_entries),
        }
    }

    /// A cache holding only fixed records (for tests and offline use): TXT names that were not
    /// added answer "no such record" instead of going to the network.
    pub fn fixed() -> Self {
        let mut cache = Self::new(usize::MAX);
        cache.txt.miss = Some(Txt::Error(mail_auth::Error::Dns(
            mail_auth::DnsError::InvalidRecordType,
        )));
        cache
    }

    /// Adds a TXT record that never expires. The name decides how it is parsed:
    /// `_dmarc.*` as DMARC, `*._domainkey.*` as a DKIM key, anything else as SPF.
    pub fn add_txt(&self, name: &str, record: &str) -> Result<(), RecordError> {
        let fqdn = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
        let error = |kind: &'static str, reason: String| RecordError {
            kind,
            name: name.to_owned(),
            reason,
        };
        let txt: Txt = if fqdn.starts_with("_dmarc.") {
            Dmarc::parse(record.as_bytes())
                .map_err(|e| error("DMARC", e.to_string()))?
                .into()
        } else if fqdn.contains("._domainkey.") {
            DomainKey::parse(record.as_bytes())
                .map_err(|e| error("DKIM", e.to_string()))?
                .into()
        } else {
            Spf::parse(record.as_bytes())
                .map_err(|e| error("SPF", e.to_string()))?
                .into()
        };
        self.txt.insert_forever(fqdn.into_boxed_str(), txt);
        Ok(())
    }
}

/// mail-auth parameters wired to a [`DnsCache`].
type CachedParameters<'x, P> = Parameters<
    'x,
    P,
    MapCache<Box<str>, Txt>,
    MapCache<Box<str>, RecordSet<MX>>,
    MapCache<Box<str>, RecordSet<Ipv4Addr>>,
    MapCache<Box<str>, RecordSet<Ipv6Addr>>,
    MapCache<IpAddr, RecordSet<Box<str>>>,
>;

/// Runs SPF, DKIM, ARC and DMARC for one message.
pub struct Authenticator {
    inner: MessageAuthenticator,
    cache: DnsCache,
    /// This gateway's host name (used by SPF macros and reports).
    hostname: String,
}

impl Authenticator {
    /// An authenticator answered by `cache` alone: its resolver points at a closed local
    /// port, so a name the cache does not hold fails fast instead of reaching the network
    /// (tests, offline evaluation, checking a record before it is published).
    pub fn offline(cache: DnsCache, hostname: impl Into<String>) -> Self {
        use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
        let config = ResolverConfig::from_name_servers(vec![NameServerConfig::udp_and_tcp(
            std::net::IpAddr::from([127, 0, 0, 1]),
        )]);
        let mut options = ResolverOpts::default();
        options.timeout = std::time::Duration::from_millis(200);
        options.attempts = 1;
        let resolver = MessageAuthenticator::new(config, options)
            .expect("a resolver with a fixed configuration");
        Self::new(resolver, cache, hostname)
    }

    /// An authenticator using `resolver` (for example
    /// `MessageAuthenticator::new_system_conf()`) behind `cache`.
    pub fn new(
        resolver: MessageAuthenticator,
        cache: DnsCache,
        hostname: impl Into<String>,
    ) -> Self {
        Self {
            inner: resolver,
            cache,
            hostname: hostname.into(),
        }
    }

    /// The DNS cache (to pre-load records).
    pub fn cache(&self) -> &DnsCache {
        &self.cache
    }

    fn params<'x, P>(&'x self, params: P) -> CachedParameters<'x, P> {
        Parameters::new(params)
            .with_txt_cache(&self.cache.txt)
            .with_mx_cache(&self.cache.mx)
            .with_ipv4_cache(&self.cache.ipv4)
            .with_ipv6_cache(&self.cache.ipv6)
            .with_ptr_cache(&self.cache.ptr)
    }

    /// Authenticates a raw message received with `envelope`. Never fails: problems become
    /// `temperror`/`permerror`/`none` outcomes.
    pub async fn authenticate(&self, raw: &[u8], envelope: &Envelope) -> AuthResults {
        let mut results = AuthResults::default();
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            results.spf = AuthOutcome::PermError;
            return results;
        };
        let helo = if envelope.helo.is_empty() {
            "unknown"
        } else {
            envelope.helo.as_str()
        };
        let mail_from = envelope
            .mail_from
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let spf_output = match envelope.client_ip {
            Some(ip) => {
                let params = if mail_from.is_empty() {
                    SpfParameters::verify_ehlo(ip, helo, &self.hostname)
                } else {
                    SpfParameters::verify_mail_from(ip, helo, &self.hostname, &mail_from)
                };
                self.inner.verify_spf(self.params(params)).await
            }
            None => mail_auth::SpfOutput::new(String::new()),
        };
        results.spf = match spf_output.result() {
            SpfResult::Pass => AuthOutcome::Pass,
            SpfResult::Fail => AuthOutcome::Fail,
            SpfResult::SoftFail => AuthOutcome::SoftFail,
            SpfResult::Neutral => AuthOutcome::Neutral,
            SpfResult::TempError => AuthOutcome::TempError,
            SpfResult::PermError => AuthOutcome::PermError,
            SpfResult::None => AuthOutcome::None,
        };
        results.spf_domain = spf_output.domain().to_owned();
        let dkim_output = self.inner.verify_dkim(self.params(&message)).await;
        results.dkim = dkim_output
            .iter()
            .map(|output| DkimSignatureResult {
                domain: output.signature().map(|s| s.d.clone()).unwrap_or_default(),
                selector: output.signature().map(|s| s.s.clone()).unwrap_or_default(),
                outcome: dkim_outcome(output.result()),
            })
            .collect();
        let arc_output = self.inner.verify_arc(self.params(&message)).await;
        results.arc = dkim_outcome(arc_output.result());
        let mail_from_domain = mail_from
            .rsplit_once('@')
            .map_or(helo, |(_, domain)| domain)
            .to_owned();
        let dmarc_output = self
            .inner
            .verify_dmarc(self.params(DmarcParameters::new(
                &message,
                &dkim_output,
                &mail_from_domain,
                &spf_output,
            )))
            .await;
        results.dmarc = DmarcEvaluation {
            domain: dmarc_output.domain().to_owned(),
            outcome: if dmarc_output.dmarc_record().is_none() {
                AuthOutcome::None
            } else if matches!(dmarc_output.spf_result(), DmarcResult::Pass)
                || matches!(dmarc_output.dkim_result(), DmarcResult::Pass)
            {
                AuthOutcome::Pass
            } else if matches!(dmarc_output.spf_result(), DmarcResult::TempError(_))
                || matches!(dmarc_output.dkim_result(), DmarcResult::TempError(_))
            {
                AuthOutcome::TempError
            } else {
                AuthOutcome::Fail
            },
            policy: match dmarc_output.policy() {
                mail_auth::dmarc::Policy::Reject => DmarcPolicy::Reject,
                mail_auth::dmarc::Policy::Quarantine => DmarcPolicy::Quarantine,
                _ => DmarcPolicy::None,
            },
        };
        results
    }
}

fn dkim_outcome(result: &DkimResult) -> AuthOutcome {
    match result {
        DkimResult::Pass => AuthOutcome::Pass,
        DkimResult::Neutral(_) => AuthOutcome::Neutral,
        DkimResult::Fail(_) => AuthOutcome::Fail,
        DkimResult::PermError(_) => AuthOutcome::PermError,
        DkimResult::TempError(_) => AuthOutcome::TempError,
        DkimResult::None => AuthOutcome::None,
    }
}
