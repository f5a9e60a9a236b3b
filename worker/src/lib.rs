//! SMTP ingest, downstream delivery and scheduled jobs.
//!
//! - [`smtp`]: the ESMTP listener; [`ingest::IngestHandler`] is its production handler
//!   (recipient checks at `RCPT`, filtering before answering `DATA`, durable acceptance).
//! - [`jobs`]: the job runner: `IngestMessage`, `DeliverMessage`, `PurgeExpiredMessages`.
//! - [`delivery`]: the downstream SMTP client, retry schedule and DSN builder.
//! - [`reports`]: scheduled quarantine, domain and tenant reports (`run_due`).
//! - [`blobs`]: raw messages in `object_store`: a local folder by default, or an
//!   S3-compatible bucket (`blob_url = "s3://bucket/prefix"`).
//! - [`notices`]: wake-ups for the job loops, in the process or over Redis (`queue_url`).
//! - [`policy::PolicyCache`]: recipients' stored effective policies, cached briefly; the
//!   SMTP verdict and the ingest job both read them there.
//!
//! # Durability
//!
//! A message is answered `250` only after its raw bytes are in the blob store (and, with
//! `blob_fsync`, flushed to disk with their folder; an S3 `PUT` is durable when it returns)
//! and its ingest job is committed in the database. The [`ingest::Committer`] folds the acceptances of all sessions waiting at one
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
//!   and only while its lease is held;
//! - failures kept in sight: a failed attempt is retried with a growing delay and
//!   `last_error`, and given up after `store::jobs::MAX_ATTEMPTS` (a delivery job when its
//!   message is older than `delivery_max_age`, like its downstream retries); a job that can never
//!   succeed (a payload this version cannot read) fails at once. Failed jobs stay in the
//!   table (`failed_at`, `last_error`) for operators and are not claimed again. A recipient
//!   deleted between acceptance and its ingest job is a permanent condition too: it is
//!   logged as `dropped` and the other recipients get the message;
//! - no deadlocks between job transactions: the ones that wait for row locks take job rows
//!   in id order and counters in (domain, hour) order, and the lease heartbeat and claims
//!   skip locked rows (`FOR UPDATE SKIP LOCKED`) instead of waiting.
//!
//! Delivery downstream is at-least-once in one narrow window: a crash after the downstream
//! server answered `250` but before the attempt is committed sends the message again on
//! the next run (no SMTP client can close that window).
//!
//! # Several processes: Redis as the wake-up channel
//!
//! The SMTP listener and the workers keep no state beyond the database, the blob store and
//! the queue, so several can run against one PostgreSQL and one blob store (an S3 bucket
//! when they run on different hosts). By default each process's job loops wake up on
//! notices from the same process and sweep the table every 250 ms, which is how jobs from
//! other processes are found. With `queue_url = "redis://…"` Redis carries the notices
//! between processes ([`notices`]): after a transaction that enqueued jobs commits, the
//! enqueuer pushes a notice onto a Redis list per job kind; each worker process keeps one
//! connection per kind blocked in `BLPOP` and, when a notice arrives, claims from the table
//! under lease as always (the API notices its deliveries too, through `api::JobNotifier`).
//! The table is then swept only every 5 s, for retries coming due, scheduled and learning
//! jobs, and any notice lost. Redis is never the record of a job: losing
//! Redis or a notice costs latency, never mail, and a job committed with its effects (the
//! reason the queue is a table) stays exactly as it is.

pub mod blobs;
pub mod clamd;
pub mod delivery;
pub mod ingest;
pub mod jobs;
pub mod learning;
pub mod notices;
pub mod policy;
pub mod reports;
pub mod sink;
pub mod smtp;

/// Runs `f`, turning a panic into its message: the engine is called on untrusted mail, and a
/// bug it has on one message must cost that message only (held, or its feedback failed),
/// never the worker or the other messages of a batch.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}
