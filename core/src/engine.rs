//! The engine: raw message + envelope + tenant context in, explained [`Verdict`] out.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use mail_parser::MessageParser;
use serde::{Deserialize, Serialize};

use crate::address::{DomainName, EmailAddress};
use crate::classifier::{BayesScore, Class, Masks, Model, TenantModel, TrainOptions};
use crate::filter::auth::AuthResults;
use crate::filter::{self, Family, Tags};
use crate::message::{self, Extracted};
use crate::policy::{Category, Disposition, EffectivePolicy, ListMatch, Policy};
use crate::scan::{ScanOutcome, VirusScanner};

/// The SMTP envelope of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The connecting client's address.
    pub client_ip: Option<IpAddr>,
    /// The HELO/EHLO name it gave.
    pub helo: String,
    /// `MAIL FROM`, `None` for the null sender (bounces).
    pub mail_from: Option<EmailAddress>,
    /// `RCPT TO` addresses.
    pub recipients: Vec<EmailAddress>,
    /// Whether the session used STARTTLS.
    pub tls: bool,
}

impl Envelope {
    /// A best-effort envelope reconstructed from a stored message's headers (Return-Path for
    /// MAIL FROM; Delivered-To, X-Original-To or To for the recipient). For tools working on
    /// saved messages, such as `cleanmail eval`; the SMTP worker has the real envelope.
    pub fn from_headers(raw: &[u8]) -> Self {
        let mut envelope = Envelope::default();
        let mut recipient = None;
        for line in header_block(raw).split(|&b| b == b'\n') {
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            let name = line[..colon].trim_ascii_end();
            let is = |header: &str| name.eq_ignore_ascii_case(header.as_bytes());
            let slot = if is("return-path") {
                &mut envelope.mail_from
            } else if is("delivered-to") || is("x-original-to") || is("to") {
                &mut recipient
            } else {
                continue;
            };
            if slot.is_some() {
                continue;
            }
            let value = String::from_utf8_lossy(&line[colon + 1..]);
            let value = value.trim();
            let inner = match (value.find('<'), value.rfind('>')) {
                (Some(start), Some(end)) if start < end => &value[start + 1..end],
                _ => value.split(',').next().unwrap_or(""),
            };
            *slot = EmailAddress::parse(inner.trim()).ok();
        }
        envelope.recipients.extend(recipient);
        envelope
    }
}

/// When a stored message was received (Unix seconds): the date of its topmost `Received`
/// header, the one the last receiving server wrote. For tools replaying saved messages, such
/// as `cleanmail eval`, so that the date checks see the time of arrival that the SMTP worker
/// passes as [`MessageInput::received_at`].
pub fn received_time(raw: &[u8]) -> Option<i64> {
    let mut lines = header_block(raw).split(|&b| b == b'\n').skip_while(|line| {
        !line
            .get(..9)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"received:"))
    });
    let mut header = String::from_utf8_lossy(lines.next()?).into_owned();
    for line in lines.take_while(|line| line.first().is_some_and(|b| *b == b' ' || *b == b'\t')) {
        header.push(' ');
        header.push_str(String::from_utf8_lossy(line).trim());
    }
    let (_, date) = header.rsplit_once(';')?;
    mail_parser::DateTime::parse_rfc822(date.trim()).map(|d| d.to_timestamp())
}

/// A stored message's header block: up to its first blank line (CRLF or LF), or its first
/// 64 KB when there is none. Only the header block is scanned.
fn header_block(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"\n") || raw.starts_with(b"\r\n") {
        return &[];
    }
    let limit = raw.len().min(64 * 1024);
    let end = memchr::memchr_iter(b'\n', &raw[..limit])
        .find_map(|at| match &raw[at + 1..] {
            [b'\n', ..] | [b'\r', b'\n', ..] => Some(if at > 0 && raw[at - 1] == b'\r' {
                at - 1
            } else {
                at
            }),
            _ => None,
        })
        .unwrap_or(limit);
    &raw[..end]
}

/// One message to analyze.
#[derive(Debug, Clone, Copy)]
pub struct MessageInput<'a> {
    /// The message as received (headers and body).
    pub raw: &'a [u8],
    pub envelope: &'a Envelope,
    /// The result of [`crate::Authenticator::authenticate`], if it was run.
    pub auth: Option<&'a AuthResults>,
    /// When the message was received (Unix seconds); enables date checks.
    pub received_at: Option<i64>,
}

/// A user of the tenant whose name must not be impersonated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedUser {
    pub display_name: String,
    pub address: EmailAddress,
}

/// One recipient's effective policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipientPolicy {
    pub address: EmailAddress,
    pub policy: EffectivePolicy,
}

/// What the engine knows about the receiving tenant.
#[derive(Debug, Clone)]
pub struct TenantContext {
    /// The tenant's own domains (spoofing and look-alikes are checked against them).
    pub protected_domains: Vec<DomainName>,
    /// The tenant's users (display-name impersonation is checked against them).
    pub protected_users: Vec<ProtectedUser>,
    /// The tenant's learned corrections to the shared model.
    pub overlay: Option<Arc<TenantModel>>,
    /// Per-recipient policies; recipients not listed get `default_policy`.
    pub recipients: Vec<RecipientPolicy>,
    pub default_policy: EffectivePolicy,
}

impl Default for TenantContext {
    fn default() -> Self {
        Self {
            protected_domains: Vec::new(),
            protected_users: Vec::new(),
            overlay: None,
            recipients: Vec::new(),
            default_policy: EffectivePolicy::from_tenant(&Policy::standard()),
        }
    }
}

impl TenantContext {
    /// The effective policy of `recipient`.
    pub fn policy_for(&self, recipient: &EmailAddress) -> &EffectivePolicy {
        self.recipients
            .iter()
            .find(|r| &r.address == recipient)
            .map_or(&self.default_policy, |r| &r.policy)
    }
}

/// A rule that fired, with its score and a sentence explaining it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Symbol {
    pub name: String,
    pub score: f32,
    pub explanation: String,
}

/// What to do with the message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Deliver,
    /// Deliver with this prefix added to the subject.
    DeliverTagged {
        subject_prefix: String,
    },
    Quarantine,
    Reject,
}

/// The decision for one recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipientVerdict {
    pub recipient: EmailAddress,
    /// The category under this recipient's thresholds.
    pub category: Category,
    pub action: Action,
    /// Why, in one sentence.
    pub reason: String,
    /// An allow/block list entry that decided, if any.
    pub list_match: Option<ListMatch>,
}

/// The engine's decision about a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Sum of the symbol scores.
    pub score: f32,
    /// The category at the engine's reference threshold (the standard policy's).
    pub category: Category,
    /// Every rule that fired, highest score first.
    pub symbols: Vec<Symbol>,
    pub auth: Option<AuthResults>,
    pub bayes: Option<BayesScore>,
    /// Per-recipient actions, in envelope order.
    pub recipients: Vec<RecipientVerdict>,
    /// Non-fatal problems (truncated analysis, scanner unavailable, ...).
    pub warnings: Vec<String>,
}

impl Verdict {
    /// A human explanation naming every symbol and its contribution.
    pub fn explanation(&self) -> String {
        let mut out = format!(
            "Score {:.1}: {}.",
            self.score,
            match self.category {
                Category::Clean => "clean",
                Category::Newsletter => "newsletter or bulk mail",
                Category::Spam => "spam",
                Category::Phishing => "phishing",
                Category::Virus => "virus or dangerous content",
            }
        );
        for symbol in &self.symbols {
            out.push_str(&format!(
                "\n{} ({:+.1}): {}",
                symbol.name, symbol.score, symbol.explanation
            ));
        }
        out
    }

    /// Whether a symbol fired.
    pub fn has_symbol(&self, name: &str) -> bool {
        self.symbols.iter().any(|s| s.name == name)
    }

    /// The verdict for a message the engine failed on (a bug: analysis is meant never to
    /// fail): every recipient's copy is quarantined unchecked, with the `FILTER_ERROR` symbol,
    /// so that the message is neither lost nor delivered without being filtered. An
    /// administrator sees why in the quarantine and can release it.
    pub fn analysis_failed(recipients: &[EmailAddress], error: &str) -> Self {
        let rule = filter::rule("FILTER_ERROR").expect("FILTER_ERROR is a rule");
        Self {
            score: rule.score,
            category: Category::Spam,
            symbols: vec![Symbol {
                name: rule.name.to_owned(),
                score: rule.score,
                explanation: format!("{} ({error})", rule.description),
            }],
            auth: None,
            bayes: None,
            recipients: recipients
                .iter()
                .map(|recipient| RecipientVerdict {
                    recipient: recipient.clone(),
                    category: Category::Spam,
                    action: Action::Quarantine,
                    reason: rule.description.to_owned(),
                    list_match: None,
                })
                .collect(),
            warnings: vec![format!("analysis failed: {error}")],
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// The threshold used for [`Verdict::category`] (recipients use their own policy's).
    pub reference_threshold: f32,
    /// Bytes of a message that are parsed; the rest is ignored with a warning.
    pub max_message_size: usize,
    /// Size above which the virus scanner is not called.
    pub max_scan_size: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            reference_threshold: 5.0,
            max_message_size: 64 * 1024 * 1024,
            max_scan_size: 32 * 1024 * 1024,
        }
    }
}

/// The filtering engine. Build it once and share it (`Arc<Engine>`); `analyze` is `&self`.
pub struct Engine {
    parser: MessageParser,
    model: Arc<Model>,
    config: EngineConfig,
    scanner: Option<Arc<dyn VirusScanner>>,
}

const DEFAULT_MODEL: &[u8] = include_bytes!("../model/default.cmbayes");

/// The default model shipped with the binary (trained on the corpus `train` split).
pub fn default_model() -> Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| Arc::new(Model::from_bytes(DEFAULT_MODEL).unwrap_or_default()))
        .clone()
}

impl Default for Engine {
    fn default() -> Self {
        Self::new(default_model(), EngineConfig::default())
    }
}

impl Engine {
    /// An engine with a model and settings, without a virus scanner.
    pub fn new(model: Arc<Model>, config: EngineConfig) -> Self {
        filter::prepare();
        Self {
            // MIME, Date, Subject and address headers are parsed; the rest stay raw.
            parser: MessageParser::new().with_minimal_headers(),
            model,
            config,
            scanner: None,
        }
    }

    /// Adds a virus scanner.
    pub fn with_scanner(mut self, scanner: Arc<dyn VirusScanner>) -> Self {
        self.scanner = Some(scanner);
        self
    }

    /// The statistical model in use.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The classifier features of a message (what [`TenantModel::learn`] takes).
    pub fn features(&self, raw: &[u8], envelope: &Envelope) -> Vec<u32> {
        let raw = &raw[..raw.len().min(self.config.max_message_size)];
        let Some(parsed) = self.parser.parse(raw) else {
            return Vec::new();
        };
        let extracted = message::extract(&parsed);
        crate::classifier::features(&extracted, &masks(&parsed, envelope))
    }

    /// A short plain-text copy of a message for training: the sender's From, Subject, Date and
    /// Message-ID headers and the first `words` words of its visible text. The training corpus
    /// has almost no short ham (its ham is long list and commercial mail), so without such
    /// copies the classifier learns that shortness itself is spam-like.
    pub fn short_copy(&self, raw: &[u8], words: usize) -> Option<Vec<u8>> {
        let raw = &raw[..raw.len().min(self.config.max_message_size)];
        let parsed = self.parser.parse(raw)?;
        let extracted = message::extract(&parsed);
        let text: Vec<&str> = extracted.text.split_whitespace().take(words).collect();
        if text.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(512);
        for name in ["From", "To", "Subject", "Date", "Message-ID"] {
            if let Some(value) = parsed.header_raw(name) {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b":");
                out.extend_from_slice(value.trim_end().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        );
        out.extend_from_slice(text.join(" ").as_bytes());
        out.extend_from_slice(b"\r\n");
        Some(out)
    }

    /// Trains a new shared model from labelled raw messages with the default
    /// [`TrainOptions`]: counts for the Bayes layer, then the logistic layer on the features
    /// that are kept ([`TRAIN_EPOCHS`] epochs, ham weighted [`TRAIN_HAM_WEIGHT`] times), with a
    /// short copy of every message ([`Engine::short_copy`]) learned alongside it. Features
    /// seen fewer than `min_count` times are dropped when the model is written
    /// ([`Model::to_bytes`]).
    pub fn train_model<'a>(&self, messages: impl IntoIterator<Item = (&'a [u8], Class)>) -> Model {
        self.train_model_with(messages, &TrainOptions::default())
    }

    /// [`Engine::train_model`] with explicit options.
    pub fn train_model_with<'a>(
        &self,
        messages: impl IntoIterator<Item = (&'a [u8], Class)>,
        options: &TrainOptions,
    ) -> Model {
        let mut examples: Vec<(Vec<u32>, Class)> = Vec::new();
        for (raw, class) in messages {
            examples.push((self.features(raw, &Envelope::from_headers(raw)), class));
            if options.short_copy_words > 0
                && let Some(copy) = self.short_copy(raw, options.short_copy_words)
            {
                examples.push((self.features(&copy, &Envelope::from_headers(&copy)), class));
            }
        }
        Model::train(&examples, options)
    }

    /// Learns a message into a tenant's overlay (released => ham, reported => spam). A reported
    /// message is learned until the classifier alone gives it [`LEARNED_SPAM_POINTS`] (and
    /// at least p = 0.95): with few features, the low-evidence penalty of
    /// [`classifier_points`] would otherwise keep it under the threshold however often it is
    /// reported.
    pub fn learn(&self, overlay: &mut TenantModel, raw: &[u8], envelope: &Envelope, class: Class) {
        let features = self.features(raw, envelope);
        // After learning, the overlay has a weight for every feature of the message.
        let logit = classifier_logit_for(LEARNED_SPAM_POINTS, features.len());
        let unwanted = (1.0 / (1.0 + (-logit).exp())).clamp(0.95, 0.999);
        overlay.learn_to(&self.model, &features, class, unwanted);
    }

    /// Analyzes one message. Never panics on malformed input; problems become warnings.
    pub fn analyze(&self, input: &MessageInput<'_>, ctx: &TenantContext) -> Verdict {
        let mut warnings = Vec::new();
        let mut raw = input.raw;
        if raw.len() > self.config.max_message_size {
            warnings.push(format!(
                "message of {} bytes analysed only in its first {} bytes",
                raw.len(),
                self.config.max_message_size
            ));
            raw = &raw[..self.config.max_message_size];
        }
        let mut tags = Tags::default();
        let parsed = self.parser.parse(raw);
        let mut bayes = None;
        match &parsed {
            Some(parsed) => {
                let extracted = message::extract(parsed);
                if extracted.truncated {
                    warnings.push("only part of the message body was analysed".to_owned());
                }
                bayes = self.run_analyzers(input, raw, parsed, &extracted, ctx, &mut tags);
            }
            None => {
                warnings.push("the message could not be parsed as MIME".to_owned());
                filter::test_strings::analyze(raw, &Extracted::default(), &mut tags);
                tags.add("MISSING_FROM", "");
            }
        }
        if let Some(auth) = input.auth {
            filter::auth::analyze(auth, &mut tags);
        }
        if let Some(scanner) = &self.scanner {
            if input.raw.len() > self.config.max_scan_size {
                warnings.push("message too large for the virus scanner".to_owned());
            } else {
                match scanner.scan(input.raw) {
                    Ok(ScanOutcome::Infected(name)) => tags.add("CLAMAV_VIRUS", name),
                    Ok(ScanOutcome::Clean) => {}
                    Err(error) => warnings.push(error.to_string()),
                }
            }
        }
        self.decide(tags, bayes, input, ctx, warnings)
    }

    fn run_analyzers(
        &self,
        input: &MessageInput<'_>,
        raw: &[u8],
        parsed: &mail_parser::Message<'_>,
        extracted: &Extracted<'_>,
        ctx: &TenantContext,
        tags: &mut Tags,
    ) -> Option<BayesScore> {
        filter::test_strings::analyze(raw, extracted, tags);
        filter::headers::analyze(parsed, extracted, input.envelope, input.received_at, tags);
        filter::content::analyze(extracted, tags);
        filter::phrases::analyze(extracted, tags);
        filter::bulk::analyze(parsed, extracted, tags);
        let mail_from_domain = input.envelope.mail_from.as_ref().map(|a| a.domain());
        filter::phishing::analyze(extracted, mail_from_domain, input.auth, ctx, tags);
        filter::attachments::analyze(extracted, tags);
        let features = crate::classifier::features(extracted, &masks(parsed, input.envelope));
        if self.model.is_empty() && ctx.overlay.is_none() {
            return None;
        }
        let score = self.model.score(&features, ctx.overlay.as_deref());
        if score.features_used >= 5 {
            let p = score.spam;
            let points = classifier_points(&score);
            let name = match p {
                p if p < 0.01 => "BAYES_00",
                p if p < 0.05 => "BAYES_05",
                p if p < 0.20 => "BAYES_20",
                p if p < 0.80 => "BAYES_50",
                p if p < 0.95 => "BAYES_80",
                p if p < 0.99 => "BAYES_95",
                p if p < 0.999 => "BAYES_99",
                _ => "BAYES_999",
            };
            tags.add_scored(
                name,
                format!(
                    "spam probability {:.3}, Bayes {:.3}, from {} significant features",
                    p, score.bayes, score.features_used
                ),
                points,
            );
        }
        Some(score)
    }

    fn decide(
        &self,
        tags: Tags,
        bayes: Option<BayesScore>,
        input: &MessageInput<'_>,
        ctx: &TenantContext,
        warnings: Vec<String>,
    ) -> Verdict {
        let mut symbols = Vec::with_capacity(tags.len());
        let mut score = 0.0f32;
        let mut phish_score = 0.0f32;
        let mut virus = false;
        for tag in tags.iter() {
            let Some(rule) = filter::rule(tag.name) else {
                continue;
            };
            let points = (tag.score.unwrap_or(rule.score) * 100.0).round() / 100.0;
            score += points;
            match rule.family {
                Family::Phish => phish_score += rule.score.max(1.0),
                Family::Virus => virus = true,
                _ => {}
            }
            let explanation = if tag.detail.is_empty() {
                format!("{}.", rule.description)
            } else {
                format!("{} ({}).", rule.description, tag.detail)
            };
            symbols.push(Symbol {
                name: rule.name.to_owned(),
                score: points,
                explanation,
            });
        }
        symbols.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        let bulk = filter::bulk::is_bulk(&tags);
        let phishy = phish_score >= 3.0
            || bayes.is_some_and(|b| b.phish > 0.9 && b.spam > 0.5)
            || tags.has("HTML_CREDENTIAL_FORM_ATTACHMENT")
            || tags.has("SPOOFED_PROTECTED_DOMAIN");
        let categorize = |threshold: f32| {
            if virus {
                Category::Virus
            } else if score >= threshold {
                if phishy {
                    Category::Phishing
                } else {
                    Category::Spam
                }
            } else if bulk {
                Category::Newsletter
            } else {
                Category::Clean
            }
        };
        let category = categorize(self.config.reference_threshold);
        let sender = input.envelope.mail_from.clone();
        let recipients = input
            .envelope
            .recipients
            .iter()
            .map(|recipient| {
                let policy = ctx.policy_for(recipient);
                let category = categorize(policy.policy.thresholds.quarantine);
                recipient_verdict(recipient, policy, category, score, sender.as_ref(), input)
            })
            .collect();
        Verdict {
            score,
            category,
            symbols,
            auth: input.auth.cloned(),
            bayes,
            recipients,
            warnings,
        }
    }
}

/// Points of the statistical classifier: the logit of the logistic layer's spam probability
/// (the larger of its spam and phish heads'), scaled and offset, minus a penalty for little
/// evidence. The constants were fitted on 5-fold out-of-fold predictions over the `train`
/// split (twelve fold partitions), rules included, so that 5 points lets through at most 0.2 %
/// of ham there on average (4.67 of 2,519; 4 to 7 per partition). The offset rose from 1.8 to 2.3 with the
/// second head (the larger of two logits is higher for every message, ham included), then to
/// 2.8 with CJK bigrams, which made the model surer of ham, and came down to 2.56 when header
/// and structure features got their own input normalisation (96.4 % of spam caught out of fold
/// against 95.7 %, at the same 4.67 ham).
///
/// The corpus ham is long mailing-list and commercial mail, so a calibration fitted on it
/// alone gives an undecided classifier (p = 0.5) almost 4 points, and short personal mail,
/// which the model knows little about, lands there. Hence the penalty: a message with fewer
/// than [`CLASSIFIER_KNOWN_FULL`] features known to the model loses up to
/// [`CLASSIFIER_LOW_EVIDENCE_PENALTY`] points, in proportion to the missing ones. The fit had
/// to keep every short personal note of `core/tests/fixtures/short-ham` (one-liners,
/// replies, eleven languages, from a client whose HELO is not a domain name) under 2.5 points
/// in total with every fold's model; `core/tests/fixtures/short-ham-unseen` was not used in
/// the fit and checks it.
pub fn classifier_points(score: &BayesScore) -> f32 {
    let p = score.spam.clamp(1e-5, 1.0 - 1e-5);
    (CLASSIFIER_SCALE * (p / (1.0 - p)).ln() + CLASSIFIER_OFFSET
        - CLASSIFIER_LOW_EVIDENCE_PENALTY * missing_evidence(score.known)) as f32
}

/// The logit at which [`classifier_points`] gives `points` to a message with `known` known
/// features (its inverse).
fn classifier_logit_for(points: f64, known: usize) -> f64 {
    (points - CLASSIFIER_OFFSET + CLASSIFIER_LOW_EVIDENCE_PENALTY * missing_evidence(known))
        / CLASSIFIER_SCALE
}

/// The share of [`CLASSIFIER_KNOWN_FULL`] features a message lacks (0 to 1).
fn missing_evidence(known: usize) -> f64 {
    1.0 - (known as f64 / CLASSIFIER_KNOWN_FULL).min(1.0)
}

const CLASSIFIER_SCALE: f64 = 2.0;
/// The classifier's points that a message reported as spam is learned to (see
/// [`Engine::learn`]).
pub const LEARNED_SPAM_POINTS: f64 = 6.0;
const CLASSIFIER_OFFSET: f64 = 2.56;
/// Messages with at least this many features known to the model get no low-evidence penalty.
pub const CLASSIFIER_KNOWN_FULL: f64 = 50.0;
/// The penalty of a message none of whose features the model knows.
pub const CLASSIFIER_LOW_EVIDENCE_PENALTY: f64 = 6.0;

/// Epochs of the logistic layer's training (chosen by cross-validation on `train`).
pub const TRAIN_EPOCHS: usize = 20;
/// How much more a ham example weighs than a spam one when training the logistic layer.
pub const TRAIN_HAM_WEIGHT: f64 = 4.0;

fn recipient_verdict(
    recipient: &EmailAddress,
    effective: &EffectivePolicy,
    category: Category,
    score: f32,
    sender: Option<&EmailAddress>,
    input: &MessageInput<'_>,
) -> RecipientVerdict {
    let policy = &effective.policy;
    let list_match = effective.check_lists(sender, input.envelope.client_ip);
    let tagged = |prefix: &crate::policy::SubjectTag| Action::DeliverTagged {
        subject_prefix: prefix.as_str().to_owned(),
    };
    let from_disposition = |disposition: Disposition, prefix| match disposition {
        Disposition::Deliver => Action::Deliver,
        Disposition::Tag => tagged(prefix),
        Disposition::Quarantine => Action::Quarantine,
        Disposition::Reject => Action::Reject,
    };
    let (action, reason) = match (&list_match, category) {
        (_, Category::Virus) => (
            from_disposition(policy.actions.virus, &policy.spam_tag),
            "dangerous content is never let through by allow lists".to_owned(),
        ),
        (Some(ListMatch::Blocked { level, entry }), _) => (
            Action::Reject,
            format!("sender matches the {level:?} block list entry {entry}").to_lowercase(),
        ),
        (Some(ListMatch::Allowed { level, entry }), _) => (
            Action::Deliver,
            format!("sender matches the {level:?} allow list entry {entry}").to_lowercase(),
        ),
        (None, _) if policy.thresholds.reject.is_some_and(|r| score >= r) => (
            Action::Reject,
            format!("score {score:.1} reaches the reject threshold"),
        ),
        (None, Category::Spam | Category::Phishing) => (
            from_disposition(policy.actions.for_category(category), &policy.spam_tag),
            format!(
                "{category} with score {score:.1} (threshold {:.1})",
                policy.thresholds.quarantine
            ),
        ),
        (None, _) if score >= policy.thresholds.tag => (
            tagged(&policy.spam_tag),
            format!("score {score:.1} reaches the tag threshold"),
        ),
        (None, Category::Newsletter) => (
            from_disposition(policy.actions.newsletter, &policy.newsletter_tag),
            "newsletter or bulk mail".to_owned(),
        ),
        (None, _) => (Action::Deliver, "clean".to_owned()),
    };
    RecipientVerdict {
        recipient: recipient.clone(),
        category,
        action,
        reason,
        list_match,
    }
}

/// Recipient identities to keep out of learned features: envelope recipients plus the
/// addresses in To/Cc/Delivered-To/X-Original-To.
fn masks(parsed: &mail_parser::Message<'_>, envelope: &Envelope) -> Masks {
    let mut masks = Masks::default();
    let mut add = |address: &str| {
        let address = address.trim().trim_matches(['<', '>']).to_ascii_lowercase();
        if let Some((local, domain)) = address.rsplit_once('@') {
            if local.len() >= 3 && !masks.locals.iter().any(|l| l == local) {
                masks.locals.push(local.to_owned());
            }
            if !domain.is_empty() && !masks.domains.iter().any(|d| d == domain) {
                masks.domains.push(domain.to_owned());
            }
            if !masks.addresses.contains(&address) {
                masks.addresses.push(address);
            }
        }
    };
    for recipient in &envelope.recipients {
        add(&recipient.to_string());
    }
    for address in parsed.to().into_iter().chain(parsed.cc()) {
        for addr in address.iter().take(20) {
            if let Some(a) = addr.address() {
                add(a);
            }
        }
    }
    for name in ["Delivered-To", "X-Original-To"] {
        if let Some(value) = parsed.header_raw(name) {
            add(value);
        }
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::{header_block, received_time};

    #[test]
    fn the_header_block_ends_at_the_first_blank_line() {
        assert_eq!(
            header_block(b"A: 1\r\nB: 2\r\n\r\nbody\r\n"),
            b"A: 1\r\nB: 2"
        );
        assert_eq!(
            header_block(b"A: 1\nB: 2\n\nbody\r\n\r\nmore"),
            b"A: 1\nB: 2"
        );
        assert_eq!(header_block(b"\r\nbody"), b"");
        assert_eq!(header_block(b"A: 1\r\nB: 2\r\n"), b"A: 1\r\nB: 2\r\n");
        assert_eq!(header_block(b""), b"");
    }

    #[test]
    fn received_time_is_the_topmost_received_date() {
        let raw = b"Return-Path: <a@example.com>\r\n\
            Received: from relay.example.net (relay.example.net [192.0.2.7])\r\n\
            \tby mx.example.org with ESMTP id 1A2B;\r\n\
            \tMon, 3 Jun 2002 12:18:39 +0100\r\n\
            Received: from client by relay.example.net; Mon, 3 Jun 2002 11:00:00 +0000\r\n\
            Subject: hi\r\n\r\nbody; Tue, 4 Jun 2002 12:00:00 +0000\r\n";
        // 2002-06-03 11:18:39 UTC.
        assert_eq!(received_time(raw), Some(1_023_103_119));
        let unfolded = b"received: by mx.example.org; Mon, 3 Jun 2002 11:18:39 +0000\n\nbody";
        assert_eq!(received_time(unfolded), Some(1_023_103_119));
    }

    #[test]
    fn no_usable_received_header_gives_no_time() {
        assert_eq!(
            received_time(b"Subject: hi\r\n\r\nReceived: x; Mon, 3 Jun 2002 11:18:39 +0000\r\n"),
            None
        );
        assert_eq!(
            received_time(b"Received: from a by b with SMTP\r\nSubject: hi\r\n\r\n"),
            None
        );
        assert_eq!(
            received_time(b"Received: from a by b; not a date\r\n\r\n"),
            None
        );
        assert_eq!(received_time(b""), None);
    }
}
