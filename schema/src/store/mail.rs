//! Writes of the mail path: SMTP acceptance (group commit), ingest results, delivery
//! attempts and the purge of expired messages. Each function is one transaction.
//!
//! The writers run in jobs that carry their tenant id in every row they write; the reads
//! for the quarantine and retention store are in [`crate::store::messages`] and scoped.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::upsert::excluded;
use diesel::{ExpressionMethods as _, QueryDsl as _};

use crate::db::with_conn;
use crate::models::{Job, Message, MessageLogEntry, TrafficCounter};
use crate::store::jobs::delete_claimed;
use crate::tables::{jobs, message_log, messages, tenants, traffic_counters};
use crate::{Db, DomainId, JobId, MessageLogId, StoreError, TenantId};

/// Job kind of [`DeliverMessage`].
pub const DELIVER_MESSAGE: &str = "deliver_message";

/// The payload of a delivery job: one downstream SMTP transaction still to make. Enqueued
/// by ingest, by quarantine releases and backup-webmail redistribution (the API), and for
/// DSNs and outbound mail; run by the worker's `deliver_message` job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeliverMessage {
    pub log_id: MessageLogId,
    pub tenant_id: TenantId,
    /// The domain whose downstream receives the message; `None` for a DSN or outbound mail
    /// (the outbound relay).
    pub domain_id: Option<DomainId>,
    pub blob_key: String,
    /// MAIL FROM (empty for `<>`).
    pub mail_from: String,
    /// Recipients still to deliver.
    pub rcpt_to: Vec<String>,
    /// Prefix added to the Subject (newsletter or spam tag).
    pub subject_prefix: Option<String>,
    /// When the original message arrived (the retry deadline counts from here).
    pub arrived_at: NaiveDateTime,
    /// This is a delivery status notification to a sender.
    pub dsn: bool,
}

impl DeliverMessage {
    /// The job carrying this delivery, due now, under the idempotency key `id`.
    pub fn into_job(self, id: JobId) -> Result<Job, StoreError> {
        let payload = serde_json::to_string(&self).map_err(|e| {
            StoreError::Database(diesel::result::Error::SerializationError(Box::new(e)))
        })?;
        Ok(Job::new(
            id,
            DELIVER_MESSAGE,
            Some(self.tenant_id),
            payload,
            Some(self.blob_key),
            crate::now(),
        ))
    }
}

/// What one SMTP group commit makes durable.
#[derive(Debug, Clone, Default)]
pub struct AcceptedBatch {
    /// Ingest jobs of accepted messages.
    pub jobs: Vec<Job>,
    /// Log entries of messages refused at DATA.
    pub log_entries: Vec<MessageLogEntry>,
    /// Counters of messages refused at DATA.
    pub counters: Vec<TrafficCounter>,
}

/// Adds counters, merged per domain and hour and upserted in (domain, hour) order: two
/// transactions adding to the same counters lock their rows in the same order, so they
/// queue instead of deadlocking.
macro_rules! add_counters {
    ($conn:ident, $counters:expr) => {
        for counter in $crate::store::mail::merge_counters($counters).values() {
            diesel::insert_into(traffic_counters::table)
                .values(counter)
                .on_conflict((traffic_counters::domain_id, traffic_counters::hour))
                .do_update()
                .set((
                    traffic_counters::clean
                        .eq(traffic_counters::clean + excluded(traffic_counters::clean)),
                    traffic_counters::newsletter
                        .eq(traffic_counters::newsletter + excluded(traffic_counters::newsletter)),
                    traffic_counters::spam
                        .eq(traffic_counters::spam + excluded(traffic_counters::spam)),
                    traffic_counters::phishing
                        .eq(traffic_counters::phishing + excluded(traffic_counters::phishing)),
                    traffic_counters::virus
                        .eq(traffic_counters::virus + excluded(traffic_counters::virus)),
                    traffic_counters::rejected
                        .eq(traffic_counters::rejected + excluded(traffic_counters::rejected)),
                ))
                .execute($conn)
                .await?;
        }
    };
}

/// Sums counters of the same domain and hour, keyed (and so ordered) by both.
pub(crate) fn merge_counters<'a>(
    counters: impl IntoIterator<Item = &'a TrafficCounter>,
) -> BTreeMap<(DomainId, NaiveDateTime), TrafficCounter> {
    let mut merged: BTreeMap<(DomainId, NaiveDateTime), TrafficCounter> = BTreeMap::new();
    for counter in counters {
        let sum = merged
            .entry((counter.domain_id.clone(), counter.hour))
            .or_insert_with(|| TrafficCounter {
                domain_id: counter.domain_id.clone(),
                hour: counter.hour,
                tenant_id: counter.tenant_id.clone(),
                ..TrafficCounter::default()
            });
        sum.clean += counter.clean;
        sum.newsletter += counter.newsletter;
        sum.spam += counter.spam;
        sum.phishing += counter.phishing;
        sum.virus += counter.virus;
        sum.rejected += counter.rejected;
    }
    merged
}

/// Whether a message row or a queued job still refers to the blob `key`.
macro_rules! blob_in_use {
    ($conn:ident, $key:expr) => {{
        let rows: i64 = messages::table
            .filter(messages::blob_key.eq(&$key))
            .count()
            .get_result($conn)
            .await?;
        let queued: i64 = jobs::table
            .filter(jobs::blob_key.eq(&$key))
            .count()
            .get_result($conn)
            .await?;
        rows > 0 || queued > 0
    }};
}
pub(crate) use blob_in_use;

/// Of `keys`, those nothing refers to any more (so their blobs can go). Run inside the
/// transaction that removed the rows.
macro_rules! unused_blob_keys {
    ($conn:ident, $keys:expr) => {{
        let mut keys: Vec<String> = $keys;
        keys.sort();
        keys.dedup();
        let mut unused = Vec::new();
        for key in keys {
            if !$crate::store::mail::blob_in_use!($conn, key) {
                unused.push(key);
            }
        }
        unused
    }};
}
pub(crate) use unused_blob_keys;

/// Whether nothing refers to the blob `key` any more (no message row keeps it, no job will
/// read it): a delivered message whose recipients keep no copy.
pub async fn blob_unused(db: &Db, key: &str) -> Result<bool, StoreError> {
    with_conn!(db, conn => {
        Ok(!blob_in_use!(conn, key))
    })
}

/// Commits one group of SMTP acceptances and refusals in a single transaction.
pub async fn commit_accepted(db: &Db, batch: &AcceptedBatch) -> Result<(), StoreError> {
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            for job in &batch.jobs {
                diesel::insert_into(jobs::table)
                    .values(job)
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
            }
            for entry in &batch.log_entries {
                diesel::insert_into(message_log::table)
                    .values(entry)
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
            }
            add_counters!(conn, &batch.counters);
            Ok::<_, StoreError>(())
        })
        .await
    })
}

/// The effects of one ingest job.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    /// The claimed ingest job, deleted with these effects.
    pub job_id: JobId,
    pub log_entry: MessageLogEntry,
    /// One row per recipient mailbox (quarantine and retention store).
    pub messages: Vec<Message>,
    pub counters: Vec<TrafficCounter>,
    /// Follow-up jobs (deliveries).
    pub jobs: Vec<Job>,
}

/// Records the effects of ingest jobs held by `worker` in one transaction and removes the
/// jobs. A job whose lease was lost is skipped (another worker records it). Returns how many
/// were recorded.
pub async fn record_ingest(
    db: &Db,
    worker: &str,
    outcomes: &[IngestOutcome],
) -> Result<usize, StoreError> {
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let mut recorded = 0;
            let mut counters = Vec::new();
            // Job rows in lock order, counters after them (see `store::jobs::heartbeat`).
            let mut ordered: Vec<&IngestOutcome> = outcomes.iter().collect();
            crate::store::jobs::lock_order(&mut ordered, |o| &o.job_id);
            for outcome in ordered {
                if !delete_claimed!(conn, outcome.job_id, worker) {
                    continue;
                }
                recorded += 1;
                if outcome.messages.is_empty() && outcome.jobs.is_empty() {
                    // Every recipient was dropped; if that is because the whole tenant was
                    // deleted, there is no log left to write to: the job just goes.
                    let tenant: i64 = tenants::table
                        .filter(tenants::id.eq(outcome.log_entry.tenant_id.clone()))
                        .count()
                        .get_result(conn)
                        .await?;
                    if tenant == 0 {
                        continue;
                    }
                }
                diesel::insert_into(message_log::table)
                    .values(&outcome.log_entry)
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                for message in &outcome.messages {
                    diesel::insert_into(messages::table)
                        .values(message)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                counters.extend(&outcome.counters);
                for job in &outcome.jobs {
                    diesel::insert_into(jobs::table)
                        .values(job)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
            }
            add_counters!(conn, counters);
            Ok::<_, StoreError>(recorded)
        })
        .await
    })
}

/// What happens to a delivery job after an attempt.
#[derive(Debug, Clone)]
pub enum NextStep {
    /// Finished (delivered, bounced or given up): the job is removed.
    Done,
    /// Try again at `run_at` with the job's payload replaced (fewer recipients left).
    RetryAt {
        run_at: NaiveDateTime,
        payload: String,
    },
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    pub job_id: JobId,
    pub log_id: MessageLogId,
    /// Per envelope recipient: (address, new state, last response).
    pub recipients: Vec<(String, String, String)>,
    /// The message log's new state and last response.
    pub log_state: String,
    pub response: String,
    pub next: NextStep,
    /// Follow-up jobs (a DSN to the sender).
    pub jobs: Vec<Job>,
}

/// Records a delivery attempt of a job held by `worker` and removes or reschedules the job,
/// in one transaction. Returns false (and changes nothing) when the lease was lost.
pub async fn record_delivery_attempt(
    db: &Db,
    worker: &str,
    attempt: &DeliveryAttempt,
) -> Result<bool, StoreError> {
    let now = crate::now();
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let held = match &attempt.next {
                NextStep::Done => delete_claimed!(conn, attempt.job_id, worker),
                NextStep::RetryAt { run_at, payload } => {
                    diesel::update(
                        jobs::table
                            .filter(jobs::id.eq(attempt.job_id.clone()))
                            .filter(jobs::locked_by.eq(worker)),
                    )
                    .set((
                        jobs::run_at.eq(*run_at),
                        jobs::payload.eq(payload),
                        jobs::locked_by.eq(None::<String>),
                        jobs::locked_until.eq(None::<NaiveDateTime>),
                        jobs::last_error.eq(Some(attempt.response.clone())),
                    ))
                    .execute(conn)
                    .await?
                        == 1
                }
            };
            if !held {
                return Ok::<_, StoreError>(false);
            }
            for (address, state, response) in &attempt.recipients {
                diesel::update(
                    messages::table
                        .filter(messages::log_id.eq(attempt.log_id.clone()))
                        .filter(messages::recipient.eq(address)),
                )
                .set((
                    messages::state.eq(state),
                    messages::last_response.eq(Some(response)),
                    messages::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            }
            diesel::update(message_log::table.find(attempt.log_id.clone()))
                .set((
                    message_log::state.eq(&attempt.log_state),
                    message_log::last_response.eq(Some(&attempt.response)),
                    message_log::delivery_attempts.eq(message_log::delivery_attempts + 1),
                    message_log::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            for job in &attempt.jobs {
                diesel::insert_into(jobs::table)
                    .values(job)
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
            }
            Ok(true)
        })
        .await
    })
}

/// Deletes messages whose retention or quarantine period ended before `now` (mail still
/// waiting for delivery is kept), and returns the blob keys no row or job uses any more.
pub async fn purge_expired_messages(
    db: &Db,
    now: NaiveDateTime,
) -> Result<Vec<String>, StoreError> {
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            let expired = messages::table
                .filter(messages::expires_at.lt(now))
                .filter(messages::state.ne_all(["queued", "deferred"]));
            let keys: Vec<String> = expired.select(messages::blob_key).load(conn).await?;
            diesel::delete(
                messages::table
                    .filter(messages::expires_at.lt(now))
                    .filter(messages::state.ne_all(["queued", "deferred"])),
            )
            .execute(conn)
            .await?;
            let unused = unused_blob_keys!(conn, keys);
            Ok::<_, StoreError>(unused)
        })
        .await
    })
}

/// Records an outbound message (e.g. sent from the backup webmail) and its delivery job in
/// one transaction.
pub async fn log_outbound(db: &Db, entry: &MessageLogEntry, job: &Job) -> Result<(), StoreError> {
    with_conn!(db, conn => {
        conn.transaction(async |conn| {
            diesel::insert_into(message_log::table).values(entry).execute(conn).await?;
            diesel::insert_into(jobs::table).values(job).execute(conn).await?;
            Ok::<_, StoreError>(())
        })
        .await
    })
}
