//! Pure filtering and multi-tenant policy logic: no I/O beyond the traits it defines.
//!
//! `cleanmail-core` turns a raw message into an explained [`Verdict`]. It knows nothing about
//! databases, HTTP or SMTP sessions: DNS, the virus scanner and the learned model are
//! injected, so the same code runs in the SMTP ingest worker, the API and tests.
//!
//! # Calling the engine
//!
//! Build one [`Engine`] at start-up and share it (`Arc<Engine>`); analysis is synchronous,
//! deterministic and takes `&self`:
//!
//! ```
//! use cleanmail_core::{Engine, Envelope, MessageInput, TenantContext, Category, Action};
//!
//! let engine = Engine::default(); // the shipped model, standard settings, no virus scanner
//! let envelope = Envelope {
//!     client_ip: Some("192.0.2.1".parse().unwrap()),
//!     helo: "mail.example.org".into(),
//!     mail_from: Some("alice@example.org".parse().unwrap()),
//!     recipients: vec!["bob@example.ch".parse().unwrap()],
//!     tls: true,
//! };
//! let raw = b"From: Alice <alice@example.org>\r\nTo: bob@example.ch\r\nSubject: test\r\n\r\n\
//!             XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
//! let input = MessageInput { raw, envelope: &envelope, auth: None, received_at: None };
//! let verdict = engine.analyze(&input, &TenantContext::default());
//! assert_eq!(verdict.category, Category::Spam);
//! assert_eq!(verdict.recipients[0].action, Action::Quarantine);
//! println!("{}", verdict.explanation());
//! ```
//!
//! The steps, in order:
//!
//! 1. **Authentication** (async, needs DNS): [`Authenticator::authenticate`] runs SPF, DKIM,
//!    ARC and DMARC with mail-auth and returns [`AuthResults`]. Run it on your async runtime
//!    and pass the result in [`MessageInput::auth`]; with `None` the auth rules are skipped.
//!    DNS goes through a [`DnsCache`] (in tests, [`DnsCache::fixed`] with fixed records).
//! 2. **Analysis** ([`Engine::analyze`]): the message is parsed once (bounded: see
//!    [`EngineConfig`]), then each analyzer in [`filter`] adds named tags: test strings
//!    (GTUBE, EICAR), headers, content and URLs, bulk/newsletter, phishing, dangerous
//!    attachments (zip archives are inspected with strict limits), the statistical
//!    classifier ([`classifier`]) and, when configured, a [`VirusScanner`] (the worker's clamd
//!    client). The engine calls the scanner synchronously: call `analyze` from a blocking
//!    context (`spawn_blocking`) when a scanner is set.
//! 3. **Scoring and decision**: every tag gets its rule's score ([`filter::RULES`]) and a
//!    sentence; the [`Verdict`] holds the total score, the [`Category`] (clean, newsletter,
//!    spam, phishing, virus), the [`Symbol`]s and, per envelope recipient, the [`Action`]
//!    (deliver, deliver tagged, quarantine, reject) from that recipient's
//!    [`EffectivePolicy`] in the [`TenantContext`], including allow/block lists.
//!
//! Scoring never fails: malformed input yields a verdict plus [`Verdict::warnings`].
//!
//! # Policies
//!
//! [`policy`] holds the tenant [`Policy`], the all-optional [`PolicyOverrides`] of domains and
//! users, their resolution with provenance ([`policy::resolve`]) and the two built-in presets
//! ([`BuiltinPolicy`]). All of it is serde-serialisable for storage as JSON.
//!
//! # Learning
//!
//! The shared model ([`Model`], shipped in `core/model/default.cmbayes`, rebuilt with
//! `cleanmail train`) is read-only. Per-tenant feedback goes into a [`TenantModel`] overlay:
//! [`Engine::learn`] with [`Class::Ham`] for a released message and [`Class::Spam`] for a
//! user's "report spam". Pass the overlay in [`TenantContext::overlay`]. Persisting it
//! ([`TenantModel::to_bytes`]) is the caller's job.
//!
//! # Addresses
//!
//! [`EmailAddress`] and [`DomainName`] are the validated, normalised (lowercase, IDNA ASCII)
//! forms used across crates.
//!
//! # Measuring
//!
//! [`metrics`] computes precision, recall, ham false-positive rate and F1 from labelled
//! outcomes; `cleanmail eval DIR` drives it over a corpus.

pub mod address;
pub mod classifier;
pub mod dkim;
pub mod engine;
pub mod filter;
pub mod html;
pub mod links;
pub mod message;
pub mod metrics;
pub mod policy;
pub mod scan;
pub mod schedule;

/// The languages a user can choose (ISO 639-1 codes): report emails and the pages of their
/// one-click links are written in each of them.
pub const LANGUAGES: [&str; 4] = ["en", "fr", "de", "it"];

pub use address::{AddressError, DomainName, EmailAddress};
pub use classifier::{BayesScore, Class, Model, TenantModel};
pub use engine::{
    Action, Engine, EngineConfig, Envelope, MessageInput, ProtectedUser, RecipientPolicy,
    RecipientVerdict, Symbol, TenantContext, Verdict, default_model,
};
pub use filter::auth::{AuthOutcome, AuthResults, Authenticator, DnsCache};
pub use policy::{
    BuiltinPolicy, Category, EffectivePolicy, Policy, PolicyError, PolicyLevel, PolicyOverrides,
};
pub use scan::{ScanError, ScanOutcome, VirusScanner};
