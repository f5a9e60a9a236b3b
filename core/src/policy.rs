//! Filtering policy: what happens to a message of each category, quarantine reports, retention
//! and sender allow/block lists.
//!
//! A tenant has one full [`Policy`] (usually a copy of one of the [`BuiltinPolicy`] presets).
//! Its domains and users may each have a [`PolicyOverrides`], where every field is optional.
//! [`resolve`] applies them field by field (tenant -> domain -> user) and records in
//! [`PolicySources`] which level each value came from, so the UI can say "inherited from the
//! domain". Sender lists are the exception: they are additive, each level contributes its own
//! entries and the most specific level that matches a sender decides ([`SenderLists`]).
//!
//! Everything here is plain data with serde support; the persistence layer stores it as JSON.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::address::{DomainName, EmailAddress, is_within};

/// Why a policy value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("thresholds must satisfy tag <= quarantine <= reject (got {0})")]
    ThresholdOrder(String),
    #[error("unknown time zone: {0}")]
    TimeZone(String),
    #[error("invalid time of day {0:?}, expected HH:MM")]
    TimeOfDay(String),
    #[error("day of month must be between 1 and 28, got {0}")]
    DayOfMonth(u8),
    #[error("retention must be at least {min} days, got {0}", min = RetentionDays::MIN)]
    Retention(u16),
    #[error("quarantine expiry must be between 1 and 365 days, got {0}")]
    QuarantineExpiry(u16),
    #[error("subject tag must be at most 32 characters without line breaks")]
    SubjectTag,
    #[error("invalid list entry {0:?}: expected an address, a domain or an IP network")]
    ListEntry(String),
}

/// The category of a message, as decided by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Clean,
    Newsletter,
    Spam,
    Phishing,
    Virus,
}

impl Category {
    /// The lowercase name used in JSON, logs and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Clean => "clean",
            Category::Newsletter => "newsletter",
            Category::Spam => "spam",
            Category::Phishing => "phishing",
            Category::Virus => "virus",
        }
    }

    /// Whether the message counts as caught (spam, phishing or virus).
    pub fn is_threat(self) -> bool {
        matches!(self, Category::Spam | Category::Phishing | Category::Virus)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a policy does with a message of a given category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Deliver unchanged.
    Deliver,
    /// Deliver with a subject prefix.
    Tag,
    /// Keep in quarantine; the user can release it from the report or webmail.
    Quarantine,
    /// Refuse at SMTP time (5xx).
    Reject,
}

impl Disposition {
    /// [`Disposition::Deliver`], as a serde default.
    pub fn deliver() -> Self {
        Disposition::Deliver
    }
}

/// Spam score thresholds. A message scoring at least `quarantine` is spam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// From this score on, deliver with the spam subject tag.
    pub tag: f32,
    /// From this score on, the message is spam and gets the spam disposition.
    pub quarantine: f32,
    /// From this score on, reject at SMTP time, whatever the category action.
    pub reject: Option<f32>,
}

impl Thresholds {
    /// Checks the ordering `tag <= quarantine <= reject`.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let ordered = self.tag <= self.quarantine
            && self.reject.is_none_or(|reject| self.quarantine <= reject)
            && self.tag.is_finite()
            && self.quarantine.is_finite();
        if ordered {
            Ok(())
        } else {
            Err(PolicyError::ThresholdOrder(format!("{self:?}")))
        }
    }
}

/// The disposition of each category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryActions {
    /// Clean mail: delivered unless a policy says otherwise (e.g. hold everything).
    #[serde(default = "Disposition::deliver")]
    pub clean: Disposition,
    pub newsletter: Disposition,
    pub spam: Disposition,
    pub phishing: Disposition,
    pub virus: Disposition,
}

impl CategoryActions {
    /// The disposition for `category`.
    pub fn for_category(&self, category: Category) -> Disposition {
        match category {
            Category::Clean => self.clean,
            Category::Newsletter => self.newsletter,
            Category::Spam => self.spam,
            Category::Phishing => self.phishing,
            Category::Virus => self.virus,
        }
    }
}

/// A subject prefix such as `"[PUB] "` (at most 32 characters, no line breaks).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectTag(String);

impl SubjectTag {
    /// Validates a subject prefix.
    pub fn parse(input: &str) -> Result<Self, PolicyError> {
        if input.chars().count() > 32 || input.contains(['\r', '\n']) {
            return Err(PolicyError::SubjectTag);
        }
        Ok(Self(input.to_owned()))
    }

    /// The prefix, including its trailing space if any.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The subject with this prefix, unless it already starts with it.
    pub fn apply(&self, subject: &str) -> String {
        if subject.starts_with(&self.0) {
            subject.to_owned()
        } else {
            format!("{}{subject}", self.0)
        }
    }
}

impl fmt::Display for SubjectTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IANA time zone name such as `Europe/Zurich`, checked against the tz database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimeZone(String);

impl TimeZone {
    /// Validates an IANA time zone name.
    pub fn parse(input: &str) -> Result<Self, PolicyError> {
        chrono_tz::Tz::from_str(input.trim())
            .map(|tz| Self(tz.name().to_owned()))
            .map_err(|_| PolicyError::TimeZone(input.to_owned()))
    }

    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A wall-clock time `HH:MM` (24 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
}

impl TimeOfDay {
    /// Builds a time from hours (0-23) and minutes (0-59).
    pub fn new(hour: u8, minute: u8) -> Result<Self, PolicyError> {
        if hour < 24 && minute < 60 {
            Ok(Self { hour, minute })
        } else {
            Err(PolicyError::TimeOfDay(format!("{hour}:{minute}")))
        }
    }

    /// Parses `HH:MM`.
    pub fn parse(input: &str) -> Result<Self, PolicyError> {
        let error = || PolicyError::TimeOfDay(input.to_owned());
        let (hour, minute) = input.trim().split_once(':').ok_or_else(error)?;
        let hour = hour.parse().map_err(|_| error())?;
        let minute = minute.parse().map_err(|_| error())?;
        Self::new(hour, minute).map_err(|_| error())
    }

    pub fn hour(self) -> u8 {
        self.hour
    }

    pub fn minute(self) -> u8 {
        self.minute
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// Day of the week for weekly reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// A day of the month, 1 to 28 (so it exists in every month).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayOfMonth(u8);

impl DayOfMonth {
    /// Validates a day of the month.
    pub fn new(day: u8) -> Result<Self, PolicyError> {
        if (1..=28).contains(&day) {
            Ok(Self(day))
        } else {
            Err(PolicyError::DayOfMonth(day))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// When quarantine reports are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "every", rename_all = "snake_case")]
pub enum ReportSchedule {
    /// No quarantine report.
    Never,
    /// Once a day.
    Daily { at: TimeOfDay },
    /// Twice a day.
    TwiceDaily { first: TimeOfDay, second: TimeOfDay },
    /// Once a week.
    Weekly { weekday: Weekday, at: TimeOfDay },
    /// Once a month.
    Monthly { day: DayOfMonth, at: TimeOfDay },
}

/// The quarantine report schedule and the time zone it is expressed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSettings {
    pub schedule: ReportSchedule,
    pub timezone: TimeZone,
}

/// A number of days of at least 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RetentionDays(u16);

impl RetentionDays {
    /// The shortest retention allowed.
    pub const MIN: u16 = 7;

    /// Validates a retention period.
    pub fn new(days: u16) -> Result<Self, PolicyError> {
        if days >= Self::MIN {
            Ok(Self(days))
        } else {
            Err(PolicyError::Retention(days))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// The backup webmail (a copy of every delivered message): off, or kept for some days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum BackupWebmail {
    Off,
    Keep { days: RetentionDays },
}

/// Days a quarantined message stays releasable, 1 to 365.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuarantineExpiry(u16);

impl QuarantineExpiry {
    /// Validates a quarantine expiry.
    pub fn new(days: u16) -> Result<Self, PolicyError> {
        if (1..=365).contains(&days) {
            Ok(Self(days))
        } else {
            Err(PolicyError::QuarantineExpiry(days))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Parses `addr` or `addr/prefix`.
    pub fn parse(input: &str) -> Result<Self, PolicyError> {
        let error = || PolicyError::ListEntry(input.to_owned());
        let (addr, prefix) = match input.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (input.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| error())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| error())?,
            None => max,
        };
        if prefix > max {
            return Err(error());
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            IpAddr::V4(_) => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One allow or block list entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListEntry {
    /// An exact sender address.
    Address(EmailAddress),
    /// A sender domain and its subdomains.
    Domain(DomainName),
    /// The connecting client's IP network.
    Network(IpNetwork),
}

impl ListEntry {
    /// Parses an address (`a@b.ch`), a domain (`b.ch`, `*.b.ch`, `@b.ch`) or a network.
    pub fn parse(input: &str) -> Result<Self, PolicyError> {
        let trimmed = input.trim();
        let error = || PolicyError::ListEntry(input.to_owned());
        if let Ok(network) = IpNetwork::parse(trimmed) {
            return Ok(Self::Network(network));
        }
        if let Some(domain) = trimmed.strip_prefix('@').or(trimmed.strip_prefix("*.")) {
            return DomainName::parse(domain)
                .map(Self::Domain)
                .map_err(|_| error());
        }
        if trimmed.contains('@') {
            return EmailAddress::parse(trimmed)
                .map(Self::Address)
                .map_err(|_| error());
        }
        DomainName::parse(trimmed)
            .map(Self::Domain)
            .map_err(|_| error())
    }

    /// Whether the entry matches a sender (address and/or client IP).
    pub fn matches(&self, sender: Option<&EmailAddress>, client_ip: Option<IpAddr>) -> bool {
        match self {
            ListEntry::Address(address) => sender == Some(address),
            ListEntry::Domain(domain) => {
                sender.is_some_and(|sender| is_within(sender.domain(), domain.as_str()))
            }
            ListEntry::Network(network) => client_ip.is_some_and(|ip| network.contains(ip)),
        }
    }
}

impl fmt::Display for ListEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListEntry::Address(address) => address.fmt(f),
            ListEntry::Domain(domain) => domain.fmt(f),
            ListEntry::Network(network) => network.fmt(f),
        }
    }
}

/// Allow and block lists of one level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderLists {
    #[serde(default)]
    pub allow: Vec<ListEntry>,
    #[serde(default)]
    pub block: Vec<ListEntry>,
}

impl SenderLists {
    /// Whether both lists are empty.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.block.is_empty()
    }
}

/// A complete policy, as held by a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub thresholds: Thresholds,
    pub actions: CategoryActions,
    /// Subject prefix of delivered newsletters (default `"[PUB] "`).
    pub newsletter_tag: SubjectTag,
    /// Subject prefix of mail between the tag and quarantine thresholds.
    pub spam_tag: SubjectTag,
    pub report: ReportSettings,
    pub quarantine_expiry: QuarantineExpiry,
    pub backup_webmail: BackupWebmail,
    #[serde(default)]
    pub lists: SenderLists,
}

/// Optional values overriding a [`Policy`] at domain or user level; `None` inherits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyOverrides {
    pub thresholds: Option<Thresholds>,
    pub actions: Option<CategoryActions>,
    pub newsletter_tag: Option<SubjectTag>,
    pub spam_tag: Option<SubjectTag>,
    pub report: Option<ReportSettings>,
    pub quarantine_expiry: Option<QuarantineExpiry>,
    pub backup_webmail: Option<BackupWebmail>,
    /// Entries added at this level (lists are additive, never inherited-or-replaced).
    pub lists: Option<SenderLists>,
}

/// The level a policy value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyLevel {
    Tenant,
    Domain,
    User,
}

/// Which level each field of an [`EffectivePolicy`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySources {
    pub thresholds: PolicyLevel,
    pub actions: PolicyLevel,
    pub newsletter_tag: PolicyLevel,
    pub spam_tag: PolicyLevel,
    pub report: PolicyLevel,
    pub quarantine_expiry: PolicyLevel,
    pub backup_webmail: PolicyLevel,
}

/// A list entry with the level that contributed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeveledEntry {
    pub level: PolicyLevel,
    pub entry: ListEntry,
}

/// The outcome of checking a sender against the lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ListMatch {
    Allowed { level: PolicyLevel, entry: String },
    Blocked { level: PolicyLevel, entry: String },
}

/// The policy in force for one recipient, with provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectivePolicy {
    pub policy: Policy,
    pub sources: PolicySources,
    /// Allow entries of every level.
    pub allow: Vec<LeveledEntry>,
    /// Block entries of every level.
    pub block: Vec<LeveledEntry>,
}

impl EffectivePolicy {
    /// A tenant-level policy with no domain or user overrides.
    pub fn from_tenant(policy: &Policy) -> Self {
        resolve(policy, None, None)
    }

    /// Checks a sender against the lists: the most specific level with a match decides; at the
    /// same level, a block entry wins over an allow entry.
    pub fn check_lists(
        &self,
        sender: Option<&EmailAddress>,
        client_ip: Option<IpAddr>,
    ) -> Option<ListMatch> {
        for level in [PolicyLevel::User, PolicyLevel::Domain, PolicyLevel::Tenant] {
            let hit = |entries: &[LeveledEntry]| {
                entries
                    .iter()
                    .find(|e| e.level == level && e.entry.matches(sender, client_ip))
                    .map(|e| e.entry.to_string())
            };
            if let Some(entry) = hit(&self.block) {
                return Some(ListMatch::Blocked { level, entry });
            }
            if let Some(entry) = hit(&self.allow) {
                return Some(ListMatch::Allowed { level, entry });
            }
        }
        None
    }
}

/// Resolves the effective policy: tenant values, overridden field by field by the domain's,
/// then by the user's overrides.
pub fn resolve(
    tenant: &Policy,
    domain: Option<&PolicyOverrides>,
    user: Option<&PolicyOverrides>,
) -> EffectivePolicy {
    let mut policy = tenant.clone();
    let mut sources = PolicySources {
        thresholds: PolicyLevel::Tenant,
        actions: PolicyLevel::Tenant,
        newsletter_tag: PolicyLevel::Tenant,
        spam_tag: PolicyLevel::Tenant,
        report: PolicyLevel::Tenant,
        quarantine_expiry: PolicyLevel::Tenant,
        backup_webmail: PolicyLevel::Tenant,
    };
    let leveled = |lists: &SenderLists, level: PolicyLevel| {
        let allow: Vec<LeveledEntry> = lists
            .allow
            .iter()
            .map(|entry| LeveledEntry {
                level,
                entry: entry.clone(),
            })
            .collect();
        let block: Vec<LeveledEntry> = lists
            .block
            .iter()
            .map(|entry| LeveledEntry {
                level,
                entry: entry.clone(),
            })
            .collect();
        (allow, block)
    };
    let (mut allow, mut block) = leveled(&tenant.lists, PolicyLevel::Tenant);
    for (overrides, level) in [(domain, PolicyLevel::Domain), (user, PolicyLevel::User)] {
        let Some(overrides) = overrides else { continue };
        macro_rules! apply {
            ($($field:ident),*) => {$(
                if let Some(value) = &overrides.$field {
                    policy.$field = value.clone();
                    sources.$field = level;
                }
            )*};
        }
        apply!(
            thresholds,
            actions,
            newsletter_tag,
            spam_tag,
            report,
            quarantine_expiry,
            backup_webmail
        );
        if let Some(lists) = &overrides.lists {
            let (more_allow, more_block) = leveled(lists, level);
            allow.extend(more_allow);
            block.extend(more_block);
            policy.lists.allow.extend(lists.allow.iter().cloned());
            policy.lists.block.extend(lists.block.iter().cloned());
        }
    }
    EffectivePolicy {
        policy,
        sources,
        allow,
        block,
    }
}

/// The recommended policies offered to new tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinPolicy {
    /// Quarantine at 5, newsletters delivered with `[PUB] `, viruses refused at SMTP time,
    /// report daily 09:00 Europe/Zurich.
    StandardWithQuarantineReport,
    /// The same filtering, without quarantine reports.
    WithoutQuarantineReport,
}

impl BuiltinPolicy {
    /// Every preset, in display order.
    pub const ALL: [BuiltinPolicy; 2] = [
        BuiltinPolicy::StandardWithQuarantineReport,
        BuiltinPolicy::WithoutQuarantineReport,
    ];

    /// The display name from the product seed.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinPolicy::StandardWithQuarantineReport => {
                "Standard policy with quarantine reporting"
            }
            BuiltinPolicy::WithoutQuarantineReport => "Policy without quarantine report",
        }
    }

    /// The preset's policy.
    pub fn policy(self) -> Policy {
        let mut policy = Policy::standard();
        if self == BuiltinPolicy::WithoutQuarantineReport {
            policy.report.schedule = ReportSchedule::Never;
        }
        policy
    }
}

impl Policy {
    /// "Standard policy with quarantine reporting".
    pub fn standard() -> Self {
        Policy {
            thresholds: Thresholds {
                tag: 5.0,
                quarantine: 5.0,
                reject: None,
            },
            actions: CategoryActions {
                clean: Disposition::Deliver,
                newsletter: Disposition::Tag,
                spam: Disposition::Quarantine,
                phishing: Disposition::Quarantine,
                // Refused at DATA (`550 5.7.1`): no copy of malware is kept, and the sender
                // learns at once (no backscatter).
                virus: Disposition::Reject,
            },
            newsletter_tag: SubjectTag("[PUB] ".to_owned()),
            spam_tag: SubjectTag("[SPAM] ".to_owned()),
            report: ReportSettings {
                schedule: ReportSchedule::Daily {
                    at: TimeOfDay { hour: 9, minute: 0 },
                },
                timezone: TimeZone("Europe/Zurich".to_owned()),
            },
            quarantine_expiry: QuarantineExpiry(30),
            backup_webmail: BackupWebmail::Keep {
                days: RetentionDays(30),
            },
            lists: SenderLists::default(),
        }
    }

    /// Checks cross-field constraints (newtypes already hold individually valid values).
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.thresholds.validate()
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::standard()
    }
}

macro_rules! serde_via_str {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                <$ty>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(SubjectTag);
serde_via_str!(TimeZone);
serde_via_str!(TimeOfDay);
serde_via_str!(IpNetwork);
serde_via_str!(ListEntry);

macro_rules! serde_via_int {
    ($ty:ty, $int:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <$int>::deserialize(deserializer)?;
                <$ty>::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_int!(RetentionDays, u16);
serde_via_int!(QuarantineExpiry, u16);
serde_via_int!(DayOfMonth, u8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_presets_match_the_seed() {
        let standard = BuiltinPolicy::StandardWithQuarantineReport.policy();
        assert_eq!(
            BuiltinPolicy::StandardWithQuarantineReport.name(),
            "Standard policy with quarantine reporting"
        );
        assert_eq!(standard.thresholds.quarantine, 5.0);
        assert_eq!(standard.actions.newsletter, Disposition::Tag);
        assert_eq!(standard.actions.virus, Disposition::Reject);
        assert_eq!(standard.newsletter_tag.as_str(), "[PUB] ");
        assert_eq!(standard.report.timezone.as_str(), "Europe/Zurich");
        assert_eq!(
            standard.report.schedule,
            ReportSchedule::Daily {
                at: TimeOfDay::parse("09:00").unwrap()
            }
        );
        let quiet = BuiltinPolicy::WithoutQuarantineReport.policy();
        assert_eq!(quiet.report.schedule, ReportSchedule::Never);
        assert_eq!(quiet.thresholds, standard.thresholds);
        standard.validate().unwrap();
    }

    #[test]
    fn resolution_is_field_by_field_with_provenance() {
        let tenant = Policy::standard();
        let domain = PolicyOverrides {
            quarantine_expiry: Some(QuarantineExpiry::new(14).unwrap()),
            newsletter_tag: Some(SubjectTag::parse("[NEWS] ").unwrap()),
            ..Default::default()
        };
        let user = PolicyOverrides {
            newsletter_tag: Some(SubjectTag::parse("").unwrap()),
            ..Default::default()
        };
        let effective = resolve(&tenant, Some(&domain), Some(&user));
        assert_eq!(effective.policy.quarantine_expiry.get(), 14);
        assert_eq!(effective.sources.quarantine_expiry, PolicyLevel::Domain);
        assert_eq!(effective.policy.newsletter_tag.as_str(), "");
        assert_eq!(effective.sources.newsletter_tag, PolicyLevel::User);
        assert_eq!(effective.sources.thresholds, PolicyLevel::Tenant);
    }

    #[test]
    fn most_specific_list_level_wins() {
        let mut tenant = Policy::standard();
        tenant
            .lists
            .block
            .push(ListEntry::parse("spammy.example").unwrap());
        tenant
            .lists
            .block
            .push(ListEntry::parse("198.51.100.0/24").unwrap());
        let user = PolicyOverrides {
            lists: Some(SenderLists {
                allow: vec![ListEntry::parse("friend@spammy.example").unwrap()],
                block: vec![],
            }),
            ..Default::default()
        };
        let effective = resolve(&tenant, None, Some(&user));
        let friend = EmailAddress::parse("friend@spammy.example").unwrap();
        let other = EmailAddress::parse("other@mail.spammy.example").unwrap();
        assert!(matches!(
            effective.check_lists(Some(&friend), None),
            Some(ListMatch::Allowed {
                level: PolicyLevel::User,
                ..
            })
        ));
        assert!(matches!(
            effective.check_lists(Some(&other), None),
            Some(ListMatch::Blocked {
                level: PolicyLevel::Tenant,
                ..
            })
        ));
        let ip = "198.51.100.7".parse().unwrap();
        assert!(matches!(
            effective.check_lists(None, Some(ip)),
            Some(ListMatch::Blocked { .. })
        ));
        assert_eq!(
            effective.check_lists(None, Some("192.0.2.1".parse().unwrap())),
            None
        );
    }

    #[test]
    fn validation_refuses_bad_values() {
        assert!(RetentionDays::new(6).is_err());
        assert!(RetentionDays::new(7).is_ok());
        assert!(DayOfMonth::new(31).is_err());
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert!(TimeOfDay::parse("25:00").is_err());
        assert!(IpNetwork::parse("10.0.0.0/33").is_err());
        let bad = Thresholds {
            tag: 6.0,
            quarantine: 5.0,
            reject: None,
        };
        assert!(bad.validate().is_err());
        let json = r#"{"mode":"keep","days":3}"#;
        assert!(serde_json::from_str::<BackupWebmail>(json).is_err());
    }

    #[test]
    fn policy_json_round_trip() {
        let mut policy = BuiltinPolicy::StandardWithQuarantineReport.policy();
        policy.report.schedule = ReportSchedule::Monthly {
            day: DayOfMonth::new(3).unwrap(),
            at: TimeOfDay::parse("07:30").unwrap(),
        };
        policy
            .lists
            .allow
            .push(ListEntry::parse("2001:db8::/32").unwrap());
        let json = serde_json::to_string(&policy).unwrap();
        let back: Policy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, policy);
        let overrides: PolicyOverrides = serde_json::from_str("{}").unwrap();
        assert_eq!(overrides, PolicyOverrides::default());
    }
}
