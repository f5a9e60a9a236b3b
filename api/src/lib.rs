//! REST (OpenAPI) and GraphQL over one service layer.
//!
//! - [`service`]: every operation once; role checks happen here, scope filtering in
//!   `cleanmail_schema`'s store functions.
//! - [`rest`]: axum handlers under `/api/v1`, documented with utoipa.
//! - [`graphql`]: async-graphql schema at `/graphql`, resolvers calling the same services.
//! - [`web`]: the small HTML pages behind report emails' one-click links (`/links/…`).
//! - [`ApiError`]: one error type, rendered as RFC 9457 problem JSON on REST and as
//!   `extensions.code` on GraphQL.

mod auth;
mod error;
mod graphiql;
pub mod graphql;
mod graphql_limits;
pub mod rest;
mod router;
pub mod service;
pub mod web;

use std::sync::Arc;

pub use auth::{Principal, Role};
pub use error::{ApiError, FieldError, Problem, Validator};
pub use router::{openapi, openapi_json, router};
pub use service::api_keys::bootstrap_platform_admin;

/// Raw messages by blob key: the worker's blob store in production (`cleanmail serve`
/// adapts it), anything in tests.
pub trait MessageBlobs: Send + Sync {
    /// The bytes stored under `key`.
    fn get<'a>(&'a self, key: &'a str) -> futures::future::BoxFuture<'a, Result<Vec<u8>, String>>;
    /// Stores `bytes` under `key` durably (replacing any previous value).
    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
    ) -> futures::future::BoxFuture<'a, Result<(), String>>;
    /// Removes `key`; a missing key is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> futures::future::BoxFuture<'a, Result<(), String>>;
}

/// Wakes the job workers after the API committed jobs (releases, redistributions, sent
/// mail): within the process, or across processes over Redis. Without one, workers find the
/// jobs at their next sweep of the job table.
pub trait JobNotifier: Send + Sync {
    /// `count` jobs of `kind` were just committed.
    fn committed(&self, kind: &str, count: usize);
}

/// Shared state of the API: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: cleanmail_schema::Db,
    tokens: auth::TokenKeys,
    /// Data-residency regions this deployment serves.
    pub regions: Arc<Vec<String>>,
    /// Time zone of tenants created without one.
    pub default_timezone: Arc<str>,
    /// Checks report links (key derived from the same platform secret).
    pub links: cleanmail_core::links::LinkSigner,
    /// Raw messages (quarantine previews, raw downloads, purges); `None`: unavailable.
    pub blobs: Option<Arc<dyn MessageBlobs>>,
    /// Seals and opens DKIM private keys (key derived from the platform secret).
    pub dkim_sealer: cleanmail_core::dkim::KeySealer,
    /// Whether an outbound relay is configured (mail written in the webmail can leave).
    pub outbound_relay: bool,
    /// Wakes the job workers after the API committed jobs; `None`: they sweep.
    pub job_notifier: Option<Arc<dyn JobNotifier>>,
    /// Recipients a mailbox user may address from the webmail per hour (0: no limit).
    pub webmail_send_limit: u32,
}

impl AppState {
    /// Starts building state around a database.
    pub fn builder(db: cleanmail_schema::Db) -> AppStateBuilder {
        AppStateBuilder {
            db,
            jwt_secret: None,
            regions: vec!["ch".to_owned()],
            default_timezone: service::tenants::DEFAULT_TIMEZONE.to_owned(),
            blobs: None,
            outbound_relay: false,
            job_notifier: None,
            webmail_send_limit: service::webmail::DEFAULT_SEND_LIMIT,
        }
    }

    /// Says that the API committed `count` delivery jobs.
    pub(crate) fn deliveries_committed(&self, count: usize) {
        if let Some(notifier) = &self.job_notifier {
            notifier.committed(cleanmail_schema::store::mail::DELIVER_MESSAGE, count);
        }
    }

    /// The blob store, or `Unavailable` when this process has none.
    pub(crate) fn blobs(&self) -> Result<&dyn MessageBlobs, ApiError> {
        self.blobs
            .as_deref()
            .ok_or_else(|| ApiError::Unavailable("no blob store configured".into()))
    }
}

/// Builder for [`AppState`], so tests can swap parts.
pub struct AppStateBuilder {
    db: cleanmail_schema::Db,
    jwt_secret: Option<Vec<u8>>,
    regions: Vec<String>,
    default_timezone: String,
    blobs: Option<Arc<dyn MessageBlobs>>,
    outbound_relay: bool,
    job_notifier: Option<Arc<dyn JobNotifier>>,
    webmail_send_limit: u32,
}

impl AppStateBuilder {
    /// Wakes the job workers after the API committed jobs.
    pub fn job_notifier(mut self, notifier: Arc<dyn JobNotifier>) -> Self {
        self.job_notifier = Some(notifier);
        self
    }

    /// Whether the worker has an outbound relay (default: none, sending is refused).
    pub fn outbound_relay(mut self, configured: bool) -> Self {
        self.outbound_relay = configured;
        self
    }

    /// Recipients a mailbox user may address from the webmail per hour (0: no limit;
    /// default [`service::webmail::DEFAULT_SEND_LIMIT`]).
    pub fn webmail_send_limit(mut self, recipients_per_hour: u32) -> Self {
        self.webmail_send_limit = recipients_per_hour;
        self
    }

    /// The blob store holding raw messages.
    pub fn blobs(mut self, blobs: Arc<dyn MessageBlobs>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// The HMAC secret for login tokens (random per process if not set).
    pub fn jwt_secret(mut self, secret: Vec<u8>) -> Self {
        self.jwt_secret = Some(secret);
        self
    }

    /// The data-residency regions served (default `ch`).
    pub fn regions(mut self, regions: Vec<String>) -> Self {
        self.regions = regions;
        self
    }

    /// The time zone of tenants created without one (default `Europe/Zurich`).
    pub fn default_timezone(mut self, timezone: String) -> Self {
        self.default_timezone = timezone;
        self
    }

    pub fn build(self) -> AppState {
        let secret = self
            .jwt_secret
            .unwrap_or_else(|| random_bytes::<64>().to_vec());
        AppState {
            db: self.db,
            tokens: auth::TokenKeys::from_secret(&secret),
            links: cleanmail_core::links::LinkSigner::new(&secret),
            dkim_sealer: cleanmail_core::dkim::KeySealer::new(&secret),
            outbound_relay: self.outbound_relay,
            job_notifier: self.job_notifier,
            webmail_send_limit: self.webmail_send_limit,
            regions: Arc::new(self.regions),
            default_timezone: self.default_timezone.into(),
            blobs: self.blobs,
        }
    }
}

/// `N` bytes from the operating system's secure random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes
}

/// The GraphQL schema in SDL.
pub fn graphql_sdl() -> String {
    graphql::schema_without_state().sdl()
}
