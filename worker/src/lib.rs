//! SMTP ingest, downstream delivery and scheduled jobs.
//!
//! - [`smtp`]: the ESMTP listener; [`ingest::IngestHandler`] is its production handler
//!   (recipient checks, filtering before `250`, durable group-committed acceptance).
//! - [`jobs`]: the job runner over the database job table (`cleanmail_schema::store::jobs`):
//!   `IngestMessage`, `DeliverMessage`, `PurgeExpiredMessages`.
//! - [`delivery`]: the downstream SMTP client, retry schedule and DSN builder.
//! - [`blobs`]: raw messages in `object_store`.
//! - [`policy::effective_policy_for`]: the single source of recipients' policies.

pub mod blobs;
pub mod clamd;
pub mod delivery;
pub mod ingest;
pub mod jobs;
pub mod policy;
pub mod sink;
pub mod smtp;
