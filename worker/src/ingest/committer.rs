//! Group commit: acceptances of all sessions pending at one instant share one transaction.

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
    /// Blob files to `fsync` before the commit (local store with `fsync` on).
    blob_keys: Vec<String>,
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
    /// group are flushed to disk before its transaction commits.
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
                let mut paths = Vec::new();
                for pending in &mut group {
                    batch.jobs.append(&mut pending.batch.jobs);
                    batch.log_entries.append(&mut pending.batch.log_entries);
                    batch.counters.append(&mut pending.batch.counters);
                    if fsync_blobs {
                        paths.extend(pending.blob_keys.iter().filter_map(|k| blobs.local_path(k)));
                    }
                }
                let synced = if paths.is_empty() {
                    Ok(())
                } else {
                    sync_files(paths).await
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

    /// Commits `batch` with the next group and waits until it is durable.
    pub async fn commit(&self, batch: AcceptedBatch, blob_keys: Vec<String>) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending {
                batch,
                blob_keys,
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
            blob_keys: Vec::new(),
            done: None,
        });
    }
}

/// `fsync`s files in parallel on the blocking pool (the file system groups the flushes).
async fn sync_files(paths: Vec<std::path::PathBuf>) -> Result<(), String> {
    let tasks: Vec<_> = paths
        .into_iter()
        .map(|path| {
            tokio::task::spawn_blocking(move || {
                std::fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| format!("fsync {}: {e}", path.display()))
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}
