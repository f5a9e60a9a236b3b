//! `PurgeExpiredMessages`: removes quarantine and retention copies past their expiry, then
//! the blobs nothing refers to any more. Enqueued once per hour under a per-hour id, so
//! several workers schedule it once.

use cleanmail_schema::JobId;
use cleanmail_schema::models::Job;
use cleanmail_schema::store::jobs as job_store;
use cleanmail_schema::store::mail::purge_expired_messages;
use tracing::{info, warn};

use super::Worker;

/// Job kind of the purge.
pub const PURGE_EXPIRED_MESSAGES: &str = "purge_expired_messages";

/// Enqueues this hour's purge (a no-op when this hour's is already queued).
pub async fn enqueue(db: &cleanmail_schema::Db) -> anyhow::Result<()> {
    let now = cleanmail_schema::now();
    let id = JobId(format!(
        "{PURGE_EXPIRED_MESSAGES}:{}",
        now.format("%Y%m%d%H")
    ));
    job_store::enqueue(
        db,
        &[Job::new(
            id,
            PURGE_EXPIRED_MESSAGES,
            None,
            "{}".to_owned(),
            None,
            now,
        )],
    )
    .await?;
    Ok(())
}

/// Runs a claimed purge job.
pub async fn run(worker: &Worker, job: Job) {
    match purge(worker, &job).await {
        Ok(blobs) => {
            if blobs > 0 {
                info!(blobs, "expired messages purged");
            }
        }
        Err(err) => {
            warn!(error = %err, "purging expired messages failed");
            let _ = job_store::retry_later(
                &worker.db,
                &job.id,
                &worker.id,
                job.attempts,
                &err.to_string(),
            )
            .await;
        }
    }
}

async fn purge(worker: &Worker, job: &Job) -> anyhow::Result<usize> {
    let keys = purge_expired_messages(&worker.db, cleanmail_schema::now()).await?;
    // Blobs go after the rows: a crash in between leaves an unused file, never a row
    // pointing at nothing.
    for key in &keys {
        worker.blobs.delete(key).await?;
    }
    job_store::finish(&worker.db, &job.id, &worker.id).await?;
    Ok(keys.len())
}
