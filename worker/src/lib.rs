//! SMTP ingest, downstream delivery and scheduled jobs.
//!
//! - [`smtp`]: the ESMTP listener; [`ingest::IngestHandler`] is its production handler
//!   (recipient checks at `RCPT`, filtering before answering `DATA`, durable acceptance).
//! - [`jobs`]: the job runner: `IngestMessage`, `DeliverMessage`, `PurgeExpiredMessages`.
//! - [`delivery`]: the downstream SMTP client, retry schedule and DSN builder.
//! - [`reports`]: scheduled quarantine, domain and tenant reports (`run_due`).
//! - [`blobs`]: raw messages in `object_store` (a local folder by default).
//! - [`policy::PolicyCache`]: recipients' stored effective policies, cached briefly; the
//!   SMTP verdict and the ingest job both read them there.
//!
//! # Durability
//!
//! A message is answered `250` only after its raw bytes are in the blob store (and, with
//! `blob_fsync`, flushed to disk with their folder) and its ingest job is committed in the
//! database. The [`ingest::Committer`] folds the acceptances of all sessions waiting at one
//! instant into one blob flush and one transaction (group commit), so both costs are
//! shared.
//!
//! # Why a job table and not apalis
//!
//! The queue is a table in the application database (`cleanmail_schema::store::jobs`), not
//! apalis 1.0: acceptance must commit the job in the same group transaction as the refusal
//! log and counters, and each job must record its effects and delete itself in one
//! transaction with the rows it writes. apalis' SQL storages run on their own sqlx pools and
//! transactions, so neither is possible without a second, non-atomic step; they would also
//! add a second database stack (sqlx) to the build. The table gives:
//!
//! - idempotent enqueueing: a job's id is its key (`ingest_message:<log id>`,
//!   `deliver_message:<log id>:<n>`, `dsn:<job id>`, `purge_expired_messages:<hour>`);
//! - leases (`locked_by`, `locked_until`, renewed by a heartbeat) with
//!   `FOR UPDATE SKIP LOCKED` on PostgreSQL and the single writer connection on SQLite, so
//!   several workers can share one PostgreSQL database and a crashed worker's jobs are picked
//!   up again when its lease runs out;
//! - exactly-once effects in the database: a job's effects and its removal commit together,
//!   and only while its lease is held.
//!
//! Delivery downstream is at-least-once in one narrow window: a crash after the downstream
//! server answered `250` but before the attempt is committed sends the message again on
//! the next run (no SMTP client can close that window).

pub mod blobs;
pub mod clamd;
pub mod delivery;
pub mod ingest;
pub mod jobs;
pub mod learning;
pub mod policy;
pub mod reports;
pub mod sink;
pub mod smtp;
