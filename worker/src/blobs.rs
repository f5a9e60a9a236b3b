//! The blob store for raw messages: `object_store`, a local folder by default or an
//! S3-compatible bucket ([`S3Location`]).
//!
//! Durability: a local store writes, then (with `fsync`) flushes files and folders before
//! [`BlobStore::put_group`] returns; an S3 `PUT` returns only once the object is stored, so
//! there is nothing to flush.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

/// Where an S3-compatible blob store is (`blob_url = "s3://bucket/prefix"` and the
/// `blob_s3_*` settings). Unset fields come from the standard `AWS_*` environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, …).
#[derive(Clone, Default)]
pub struct S3Location {
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`); empty for none.
    pub prefix: String,
    /// Endpoint of an S3-compatible server (`http://127.0.0.1:5000`); AWS when unset.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint (a local server).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Location")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

impl S3Location {
    /// Parses `s3://bucket` or `s3://bucket/prefix`; the other fields stay unset.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .with_context(|| format!("{url}: not an s3://bucket[/prefix] URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!bucket.is_empty(), "{url}: no bucket name");
        anyhow::ensure!(
            bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
            "{url}: {bucket:?} is not an S3 bucket name"
        );
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            ..Self::default()
        })
    }
}

/// Where the blob store is.
#[derive(Debug, Clone)]
pub enum BlobLocation {
    /// A local folder (created if missing).
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Location),
}

impl std::fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(dir) => write!(f, "{}", dir.display()),
            Self::S3(s3) if s3.prefix.is_empty() => write!(f, "s3://{}", s3.bucket),
            Self::S3(s3) => write!(f, "s3://{}/{}", s3.bucket, s3.prefix),
        }
    }
}

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

    /// The store at `location`.
    pub fn open(location: &BlobLocation) -> anyhow::Result<Self> {
        match location {
            BlobLocation::Local(dir) => Self::local(dir),
            BlobLocation::S3(s3) => Self::s3(s3),
        }
    }

    /// A store in an S3-compatible bucket (no request is made here).
    pub fn s3(location: &S3Location) -> anyhow::Result<Self> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&location.bucket);
        if let Some(endpoint) = &location.endpoint {
            // S3-compatible servers (MinIO, Ceph, moto) address buckets by path.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &location.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &location.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &location.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if location.allow_http {
            builder = builder.with_allow_http(true);
        }
        let store = builder
            .build()
            .with_context(|| format!("configuring S3 bucket {}", location.bucket))?;
        Ok(if location.prefix.is_empty() {
            Self::from_store(Arc::new(store))
        } else {
            Self::from_store(Arc::new(PrefixStore::new(store, location.prefix.as_str())))
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
