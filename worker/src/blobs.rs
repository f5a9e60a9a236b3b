//! The blob store for raw messages; it lives in `cleanmail_schema` so the API (previews,
//! raw downloads, deletes) and the worker share one implementation.

pub use cleanmail_schema::blobs::BlobStore;
