//! Group commit: acceptances of all sessions pending at one instant share one blob flush
//! and one transaction.
//!
//! For each group the committer writes the messages' blobs, flushes them and their folders
//! together ([`BlobStore::put_group`]), then commits the group's jobs, refusal logs and
//! counters in one transaction, and only then lets the sessions answer `250`. The two steps
//! run as a pipeline: while one group commits, the next group's blobs are flushed. A crash at
//! any point before the commit leaves at most unused blob files, never a job without its
//! blob.

use std::sync::Arc;

use cleanmail_schema::Db;
use cleanmail_schema::store::mail::{AcceptedBatch, commit_accepted};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::blobs::BlobStore;
use crate::ingest::INGEST_MESSAGE;
use crate::notices::JobNotices;

/// Most pending items folded into one transaction.
const MAX_GROUP: usize = 2048;

struct Pending {
    batch: AcceptedBatch,
    /// The raw message to store under its key before the commit.
    blob: Option<(String, Vec<u8>)>,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Hands work to the committer task; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Pending>,
}

impl Committer {
    /// Starts the committer task. `notices` hear of each commit that made ingest jobs
    /// durable (the worker, in this process or, over Redis, another, wakes up on it). With `fsync_blobs`, blob files of a
    /// group are flushed to disk (local store) before its transaction commits.
    pub fn spawn(db: Db, blobs: BlobStore, fsync_blobs: bool, notices: Arc<JobNotices>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(8192);
        // Two stages, so one group's blobs are flushed while the previous group commits.
        let (flushed_tx, mut flushed_rx) = mpsc::channel::<Vec<Pending>>(4);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let items: Vec<(String, Vec<u8>)> =
                    group.iter_mut().filter_map(|p| p.blob.take()).collect();
                let stored = if items.is_empty() {
                    Ok(())
                } else {
                    blobs
                        .put_group(items, fsync_blobs)
                        .await
                        .map_err(|e| format!("storing message blobs: {e}"))
                };
                match stored {
                    Ok(()) => {
                        if flushed_tx.send(group).await.is_err() {
                            return;
                        }
                    }
                    Err(err) => {
                        warn!(error = %err, messages = group.len(), "group commit failed");
                        answer(group, &Err(err));
                    }
                }
            }
        });
        tokio::spawn(async move {
            while let Some(mut group) = flushed_rx.recv().await {
                while group.len() < MAX_GROUP {
                    match flushed_rx.try_recv() {
                        Ok(more) => group.extend(more),
                        Err(_) => break,
                    }
                }
                let mut batch = AcceptedBatch::default();
                for pending in &mut group {
                    batch.jobs.append(&mut pending.batch.jobs);
                    batch.log_entries.append(&mut pending.batch.log_entries);
                    batch.counters.append(&mut pending.batch.counters);
                }
                let result = commit_accepted(&db, &batch)
                    .await
                    .map_err(|e| e.to_string());
                if let Err(err) = &result {
                    warn!(error = %err, messages = group.len(), "group commit failed");
                }
                answer(group, &result);
                if result.is_ok() {
                    notices.committed(INGEST_MESSAGE, batch.jobs.len());
                }
            }
        });
        Self { tx }
    }

    /// Stores `blob` (key, raw message) and commits `batch` with the next group; returns
    /// once both are durable.
    pub async fn commit(
        &self,
        batch: AcceptedBatch,
        blob: (String, Vec<u8>),
    ) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending {
                batch,
                blob: Some(blob),
                done: Some(done),
            })
            .await
            .map_err(|_| "committer stopped".to_owned())?;
        wait.await.map_err(|_| "committer stopped".to_owned())?
    }

    /// Queues `batch` for the next group without waiting (refusal logs and counters).
    pub fn commit_later(&self, batch: AcceptedBatch) {
        let _ = self.tx.try_send(Pending {
            batch,
            blob: None,
            done: None,
        });
    }
}

/// Tells each waiting session how its group ended.
fn answer(group: Vec<Pending>, result: &Result<(), String>) {
    for pending in group {
        if let Some(done) = pending.done {
            let _ = done.send(result.clone());
        }
    }
}
