//! The blob store for raw messages: `object_store` (a local folder by default).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

/// Raw message bytes by key; cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// The folder behind a local store, for `fsync`.
    local_root: Option<PathBuf>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("local_root", &self.local_root)
            .finish()
    }
}

impl BlobStore {
    /// A store in a local folder (created if missing).
    pub fn local(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new_with_prefix(&root)?),
            local_root: Some(root),
        })
    }

    /// Any `object_store` backend (S3 and the like).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            local_root: None,
        }
    }

    /// Writes `bytes` under `key` (replacing any previous value).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Reads the bytes under `key`.
    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        let result = self.store.get(&ObjectPath::from(key)).await?;
        Ok(result.bytes().await?.to_vec())
    }

    /// Deletes `key`; a missing key is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Writes a group of new blobs and makes them durable together (group commit).
    ///
    /// On a local store every file is written first, then, with `fsync`, all of them are
    /// flushed at once from several threads (the file system folds concurrent flushes into
    /// few journal commits) and so is every folder that got a new entry, so the files
    /// survive a power loss once this returns. Other stores are written concurrently and
    /// are durable when they answer.
    pub async fn put_group(
        &self,
        items: Vec<(String, Vec<u8>)>,
        fsync: bool,
    ) -> anyhow::Result<()> {
        match &self.local_root {
            Some(root) => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || write_local_group(&root, items, fsync)).await?
            }
            None => {
                futures::future::try_join_all(
                    items
                        .into_iter()
                        .map(|(key, bytes)| async move { self.put(&key, bytes).await }),
                )
                .await?;
                Ok(())
            }
        }
    }
}

/// Most threads flushing one group.
const SYNC_THREADS: usize = 16;

fn write_local_group(
    root: &Path,
    items: Vec<(String, Vec<u8>)>,
    fsync: bool,
) -> anyhow::Result<()> {
    let mut files = Vec::with_capacity(items.len());
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for (key, bytes) in items {
        anyhow::ensure!(
            !key.split('/')
                .any(|part| part.is_empty() || part == ".." || part == "."),
            "invalid blob key {key}"
        );
        let path = root.join(&key);
        let dir = path.parent().unwrap_or(root).to_path_buf();
        if !dirs.contains(&dir) {
            if !dir.exists() {
                std::fs::create_dir_all(&dir)?;
                // New folders must reach the disk too: flush their parents up to the root.
                let mut parent = dir.parent();
                while let Some(p) = parent.filter(|p| p.starts_with(root)) {
                    dirs.insert(p.to_path_buf());
                    parent = p.parent();
                }
            }
            dirs.insert(dir);
        }
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&bytes)?;
        files.push(file);
    }
    if !fsync {
        return Ok(());
    }
    let dirs: Vec<std::fs::File> = dirs
        .iter()
        .map(std::fs::File::open)
        .collect::<Result<_, _>>()?;
    let chunk = files.len().div_ceil(SYNC_THREADS).max(1);
    std::thread::scope(|scope| {
        let tasks: Vec<_> = files
            .chunks(chunk)
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(|f| f.sync_data())))
            .collect();
        tasks.into_iter().try_for_each(|task| {
            task.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked")))
        })
    })?;
    for dir in &dirs {
        dir.sync_all()?;
    }
    Ok(())
}
