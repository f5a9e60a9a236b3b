//! Group commit: acceptances of all sessions pending at one instant share one blob flush
//! and one transaction.
//!
//! For each group the committer writes the messages' blobs, flushes them and their folders
//! together ([`BlobStore::put_group`]), then commits the group's jobs, refusal logs and
//! counters in one transaction, and only then lets the sessions answer `250`. A crash at
//! any point before the commit leaves at most unused blob files, never a job without its
//! blob.

use std::sync::Arc;

use cleanmail_schema::Db;
use cleanmail_schema::store::mail::{AcceptedBatch, commit_accepted};
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::warn;

use crate::blobs::BlobStore;

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
    /// Starts the committer task. `committed` is notified after each commit that made jobs
    /// durable (the in-process worker wakes up on it). With `fsync_blobs`, blob files of a
    /// group are flushed to disk (local store) before its transaction commits.
    pub fn spawn(db: Db, blobs: BlobStore, fsync_blobs: bool, committed: Arc<Notify>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(8192);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let mut batch = AcceptedBatch::default();
                let mut items = Vec::new();
                for pending in &mut group {
                    batch.jobs.append(&mut pending.batch.jobs);
                    batch.log_entries.append(&mut pending.batch.log_entries);
                    batch.counters.append(&mut pending.batch.counters);
                    items.extend(pending.blob.take());
                }
                let synced = if items.is_empty() {
                    Ok(())
                } else {
                    blobs
                        .put_group(items, fsync_blobs)
                        .await
                        .map_err(|e| format!("storing message blobs: {e}"))
                };
                let result = match synced {
                    Ok(()) => commit_accepted(&db, &batch)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(err) => Err(err),
                };
                if let Err(err) = &result {
                    warn!(error = %err, messages = group.len(), "group commit failed");
                }
                if result.is_ok() && !batch.jobs.is_empty() {
                    committed.notify_one();
                }
                for pending in group {
                    if let Some(done) = pending.done {
                        let _ = done.send(result.clone());
                    }
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
