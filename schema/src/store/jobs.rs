//! A small transactional job queue in the application database.
//!
//! Why not a job library: acceptance at SMTP time must commit the ingest job in the same
//! group-committed transaction as everything else, and each job must record its effects
//! and remove itself in one transaction (exactly-once effects in the database). Both need
//! the job row in the diesel connection's transaction, which an external queue with its own
//! pool cannot join.
//!
//! - A job's `id` is its idempotency key; enqueueing the same id twice keeps one row.
//! - Workers [`claim`] due jobs under a lease (`locked_by`, `locked_until`), with
//!   `FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has a single writer connection.
//!   A running worker extends its leases ([`heartbeat`]); a crashed worker's jobs become
//!   claimable again when the lease runs out.
//! - Row locks: transactions that wait for job rows take them in [`lock_order`]; [`claim`]
//!   and [`heartbeat`] never wait (`SKIP LOCKED`). See [`heartbeat`] for the deadlock this
//!   prevents.
//! - A job finishes by deleting its row (`id` and `locked_by` must match, see
//!   [`delete_claimed`]) in the transaction that records its effects, or is rescheduled with
//!   [`retry_later`] (with a growing delay, given up after [`MAX_ATTEMPTS`]); a job that
//!   can never succeed (a payload this version cannot read) is [`fail`]ed at once and kept
//!   for operators.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
    SelectableHelper as _,
};

use crate::db::with_conn;
use crate::models::Job;
use crate::tables::jobs;
use crate::{Db, JobId, Pool, StoreError};

fn from_now(lease: Duration) -> NaiveDateTime {
    crate::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60))
}

/// Adds jobs; a job whose id is already queued is left as it is.
pub async fn enqueue(db: &Db, new_jobs: &[Job]) -> Result<(), StoreError> {
    with_conn!(db, conn => {
        for job in new_jobs {
            diesel::insert_into(jobs::table)
                .values(job)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        }
        Ok(())
    })
}

/// Takes up to `limit` due jobs of the given kinds for `worker`, oldest first, leasing them
/// for `lease` and counting the attempt.
pub async fn claim(
    db: &Db,
    kinds: &[&str],
    worker: &str,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Job>, StoreError> {
    let now = crate::now();
    let until = from_now(lease);
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    macro_rules! claim_body {
        ($conn:ident, $lock:ident) => {{
            $conn
                .transaction(async |conn| {
                    let due = jobs::table
                        .filter(jobs::kind.eq_any(kinds.clone()))
                        .filter(jobs::run_at.le(now))
                        .filter(jobs::failed_at.is_null())
                        .filter(jobs::locked_until.is_null().or(jobs::locked_until.lt(now)))
                        .order(jobs::run_at.asc())
                        .limit(limit)
                        .select(jobs::id);
                    let ids: Vec<JobId> = claim_body!(@lock $lock, due).load(conn).await?;
                    if ids.is_empty() {
                        return Ok::<_, StoreError>(Vec::new());
                    }
                    diesel::update(jobs::table.filter(jobs::id.eq_any(ids.clone())))
                        .set((
                            jobs::locked_by.eq(worker),
                            jobs::locked_until.eq(until),
                            jobs::attempts.eq(jobs::attempts + 1),
                        ))
                        .execute(conn)
                        .await?;
                    Ok(jobs::table
                        .filter(jobs::id.eq_any(ids))
                        .order(jobs::run_at.asc())
                        .select(Job::as_select())
                        .load(conn)
                        .await?)
                })
                .await
        }};
        (@lock skip_locked, $query:expr) => { $query.for_update().skip_locked() };
        (@lock none, $query:expr) => { $query };
    }
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    match db.pool() {
        Pool::Postgres(pool) => {
            let mut conn = pool.get().await.map_err(StoreError::pool_error)?;
            claim_body!(conn, skip_locked)
        }
        // One pooled connection: claims are serialised, no row locks needed.
        Pool::Sqlite(pool) => {
            let mut conn = pool.get().await.map_err(StoreError::pool_error)?;
            claim_body!(conn, none)
        }
    }
}

/// Extends the lease of every job `worker` holds that no transaction is finishing.
///
/// Lock order: a job transaction (ingest, learning, a delivery attempt) locks its own job
/// rows one by one ([`lock_order`]) and then other rows. A plain `UPDATE … WHERE
/// locked_by = $1` locks the same rows in the table's scan order, so it could hold the row
/// such a transaction wants next while waiting for one that transaction already holds:
/// PostgreSQL's `deadlock detected` (seen once). On PostgreSQL the heartbeat therefore
/// selects its rows (in id order) with `FOR UPDATE SKIP LOCKED` and never waits for a row
/// lock, so it cannot be part of a lock cycle: a row it skips is being deleted or released
/// by the transaction holding it or, should that transaction roll back, renewed by the next
/// beat (every third of the lease). SQLite has one writer connection, so nothing
/// interleaves there.
pub async fn heartbeat(db: &Db, worker: &str, lease: Duration) -> Result<usize, StoreError> {
    let until = from_now(lease);
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    match db.pool() {
        Pool::Postgres(pool) => {
            let mut conn = pool.get().await.map_err(StoreError::pool_error)?;
            conn.transaction(async |conn| {
                let held: Vec<JobId> = jobs::table
                    .filter(jobs::locked_by.eq(worker))
                    .order(jobs::id.asc())
                    .select(jobs::id)
                    .for_update()
                    .skip_locked()
                    .load(conn)
                    .await?;
                if held.is_empty() {
                    return Ok::<_, StoreError>(0);
                }
                Ok(diesel::update(
                    jobs::table
                        .filter(jobs::id.eq_any(held))
                        .filter(jobs::locked_by.eq(worker)),
                )
                .set(jobs::locked_until.eq(until))
                .execute(conn)
                .await?)
            })
            .await
        }
        Pool::Sqlite(pool) => {
            let mut conn = pool.get().await.map_err(StoreError::pool_error)?;
            Ok(
                diesel::update(jobs::table.filter(jobs::locked_by.eq(worker)))
                    .set(jobs::locked_until.eq(until))
                    .execute(&mut conn)
                    .await?,
            )
        }
    }
}

/// Sorts job ids into the one order in which a transaction that may wait for row locks
/// takes several job rows (ascending id, byte order), so two transactions that need the
/// same rows queue behind each other instead of deadlocking. [`claim`] and [`heartbeat`]
/// skip locked rows instead of waiting, so their order does not matter.
pub fn lock_order<T>(items: &mut [T], job_id: impl Fn(&T) -> &JobId) {
    items.sort_by(|a, b| job_id(a).cmp(job_id(b)));
}

/// Attempts after which a job that keeps failing is given up ([`retry_later`]; deliveries,
/// whose attempts are mostly downstream answers, follow their own schedule instead).
pub const MAX_ATTEMPTS: i32 = 20;

/// The delay before attempt `attempts + 1` of a failing job: 2^attempts seconds, at most an
/// hour (2 s, 4 s, … ; about 15 hours over [`MAX_ATTEMPTS`]).
pub fn retry_delay(attempts: i32) -> Duration {
    Duration::from_secs((1u64 << attempts.clamp(1, 12)).min(3600))
}

/// What [`retry_later`] did with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Rescheduled after [`retry_delay`].
    Later,
    /// Given up after [`MAX_ATTEMPTS`]: failed for good (see [`fail`]).
    GaveUp,
    /// `worker` no longer holds the job; nothing changed.
    LeaseLost,
}

/// Releases a claimed job after a failed attempt (its `attempts`-th, as claimed) to run again
/// after [`retry_delay`], keeping the error for operators; after [`MAX_ATTEMPTS`] the job
/// fails for good instead ([`fail`]). For errors that may go away (a database or blob store
/// away, a row another transaction changes); errors that cannot go away call [`fail`].
pub async fn retry_later(
    db: &Db,
    id: &JobId,
    worker: &str,
    attempts: i32,
    error: &str,
) -> Result<Retry, StoreError> {
    if attempts >= MAX_ATTEMPTS {
        let error = format!("gave up after {attempts} attempts: {error}");
        return Ok(if fail(db, id, worker, &error).await? {
            Retry::GaveUp
        } else {
            Retry::LeaseLost
        });
    }
    let run_at = from_now(retry_delay(attempts));
    Ok(if reschedule(db, id, worker, run_at, error).await? {
        Retry::Later
    } else {
        Retry::LeaseLost
    })
}

/// Releases a claimed job to run again at `run_at`, keeping the error for operators, for
/// jobs with a retry schedule of their own (deliveries: until the message is too old).
/// Returns false when `worker` no longer holds the job.
pub async fn reschedule(
    db: &Db,
    id: &JobId,
    worker: &str,
    run_at: NaiveDateTime,
    error: &str,
) -> Result<bool, StoreError> {
    with_conn!(db, conn => {
        let updated = diesel::update(
            jobs::table.filter(jobs::id.eq(id.clone())).filter(jobs::locked_by.eq(worker)),
        )
        .set((
            jobs::run_at.eq(run_at),
            jobs::locked_by.eq(None::<String>),
            jobs::locked_until.eq(None::<NaiveDateTime>),
            jobs::last_error.eq(Some(error)),
        ))
        .execute(conn)
        .await?;
        Ok(updated == 1)
    })
}

/// Fails a job `worker` holds for good: it stays in the table with `failed_at` and
/// `last_error` for operators (and keeps its blob from purges) but is never claimed again.
/// Returns false when `worker` no longer holds the job.
pub async fn fail(db: &Db, id: &JobId, worker: &str, error: &str) -> Result<bool, StoreError> {
    let now = crate::now();
    with_conn!(db, conn => {
        let updated = diesel::update(
            jobs::table.filter(jobs::id.eq(id.clone())).filter(jobs::locked_by.eq(worker)),
        )
        .set((
            jobs::failed_at.eq(Some(now)),
            jobs::locked_by.eq(None::<String>),
            jobs::locked_until.eq(None::<NaiveDateTime>),
            jobs::last_error.eq(Some(error)),
        ))
        .execute(conn)
        .await?;
        Ok(updated == 1)
    })
}

/// Jobs that failed for good, most recent first (for operators and tests).
pub async fn failed(db: &Db, limit: i64) -> Result<Vec<Job>, StoreError> {
    with_conn!(db, conn => {
        Ok(jobs::table
            .filter(jobs::failed_at.is_not_null())
            .order(jobs::failed_at.desc())
            .limit(limit)
            .select(Job::as_select())
            .load(conn)
            .await?)
    })
}

/// Queues a job that failed for good again, due now with its attempts reset (its last
/// error stays until it runs). False when no failed job has that id.
pub async fn retry_failed(db: &Db, id: &JobId) -> Result<bool, StoreError> {
    let now = crate::now();
    with_conn!(db, conn => {
        let updated = diesel::update(
            jobs::table.filter(jobs::id.eq(id.clone())).filter(jobs::failed_at.is_not_null()),
        )
        .set((
            jobs::failed_at.eq(None::<NaiveDateTime>),
            jobs::attempts.eq(0),
            jobs::run_at.eq(now),
        ))
        .execute(conn)
        .await?;
        Ok(updated == 1)
    })
}

/// The job under `id`, queued or failed (for tests and operators).
pub async fn get(db: &Db, id: &JobId) -> Result<Option<Job>, StoreError> {
    with_conn!(db, conn => {
        Ok(jobs::table
            .find(id.clone())
            .select(Job::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Deletes a job `worker` holds, inside the caller's transaction; false when the lease was
/// lost (the caller must then roll back or skip the job's effects).
macro_rules! delete_claimed {
    ($conn:ident, $id:expr, $worker:expr) => {{
        let deleted = diesel::delete(
            $crate::tables::jobs::table
                .filter($crate::tables::jobs::id.eq($id.clone()))
                .filter($crate::tables::jobs::locked_by.eq($worker)),
        )
        .execute($conn)
        .await?;
        deleted == 1
    }};
}
pub(crate) use delete_claimed;

/// Number of queued jobs of a kind (for tests and health checks).
pub async fn count(db: &Db, kind: &str) -> Result<i64, StoreError> {
    with_conn!(db, conn => {
        Ok(jobs::table.filter(jobs::kind.eq(kind)).count().get_result(conn).await?)
    })
}

/// Removes a job `worker` holds that has no effects to record with it.
pub async fn finish(db: &Db, id: &JobId, worker: &str) -> Result<bool, StoreError> {
    with_conn!(db, conn => {
        Ok(delete_claimed!(conn, id, worker))
    })
}
