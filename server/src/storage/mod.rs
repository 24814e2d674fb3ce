//! Backup storage: one object-store interface, two implementations.
//!
//! The bucket (or directory) is the source of truth for backups, so this layer
//! is deliberately small and strict: keys are validated the same way for every
//! implementation, writes become visible only when complete, and every failure
//! is a typed [`StorageError`] that says what to do next.

mod local;
pub mod locations;
mod s3;

pub use local::LocalStore;
pub use locations::{LocationError, LocationSettings, LocationSpec, Locations};
pub use s3::{ChecksumMode, S3Settings, S3Store};

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A streaming body: what `put` reads from and what `get` returns.
pub type ByteReader = Pin<Box<dyn AsyncRead + Send>>;

/// Objects at least this large are uploaded in parts (S3 multipart upload).
pub const MULTIPART_PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object `{key}` does not exist")]
    NotFound { key: String },
    #[error("`{key}` is not a valid object key: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error(
        "the storage server refused the credentials ({message}). Check the access key id and \
         secret access key of this storage location (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)."
    )]
    AccessDenied { message: String },
    #[error(
        "bucket `{bucket}` does not exist on {endpoint}. Create it, or fix the `bucket` setting \
         of this storage location."
    )]
    NoSuchBucket { bucket: String, endpoint: String },
    #[error(
        "cannot reach the storage server at {endpoint}: {message}. Check the `endpoint` setting \
         and that the server is running and reachable from here."
    )]
    Unreachable { endpoint: String, message: String },
    #[error("{operation} on {path} failed: {source}")]
    Io {
        operation: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "storage location `{name}` is not open on this server (it could not be opened at start, or \
         was removed); see GET /api/v1/storage-locations"
    )]
    LocationNotOpen { name: String },
    #[error(
        "object `{key}` is locked by the bucket's S3 Object Lock retention and cannot be deleted \
         yet ({message}); it can be deleted once its retention date has passed"
    )]
    Locked { key: String, message: String },
    #[error("{what} is not supported by {store}")]
    Unsupported { what: &'static str, store: String },
    #[error("reading the data to upload failed: {0}; nothing was stored")]
    Source(#[source] std::io::Error),
    #[error("the storage server answered {operation} with an error: {message}")]
    Server {
        operation: &'static str,
        message: String,
    },
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What `head` and `list` know about one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of a listing; `next` is the token for the following page.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    pub next: Option<String>,
}

/// A byte range of an object: `start..end` (end exclusive), or `start..` when `end` is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// Whether a storage location can be used right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Availability {
    Available,
    Unavailable { reason: String },
}

impl std::fmt::Display for Availability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Availability::Available => f.write_str("available"),
            Availability::Unavailable { reason } => write!(f, "unavailable: {reason}"),
        }
    }
}

pub use frontend::model::LockMode;

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Where the objects live, for messages: `local directory /x`, `s3://bucket/prefix at http://…`.
    fn describe(&self) -> String;
    /// Stores the whole of `body` under `key`; the object becomes visible only when complete.
    async fn put(&self, key: &str, body: ByteReader) -> Result<ObjectMeta>;
    /// Streams an object, or part of it.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteReader>;
    /// Up to `max_keys` objects whose keys start with `prefix`, in key order.
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<String>,
        max_keys: usize,
    ) -> Result<ListPage>;
    async fn head(&self, key: &str) -> Result<ObjectMeta>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Checks that objects can be listed, written and deleted.
    async fn check(&self) -> Availability;
    /// The retention mode backups here are locked with: `Some` only for a
    /// location opened as immutable.
    fn lock_mode(&self) -> Option<LockMode> {
        None
    }
    /// Whether the bucket enforces S3 Object Lock (only a bucket created
    /// with it can).
    async fn object_lock_enabled(&self) -> Result<bool> {
        Ok(false)
    }
    /// Locks the object at `key` until `until`: the store refuses to delete
    /// or overwrite that version before then.
    async fn retain(&self, key: &str, mode: LockMode, until: DateTime<Utc>) -> Result<()> {
        let _ = (key, mode, until);
        Err(StorageError::Unsupported {
            what: "S3 Object Lock",
            store: self.describe(),
        })
    }
}

pub type DynStore = Arc<dyn ObjectStore>;

/// Convenience: stores a byte buffer.
pub async fn put_bytes(store: &dyn ObjectStore, key: &str, data: Vec<u8>) -> Result<ObjectMeta> {
    store
        .put(key, Box::pin(std::io::Cursor::new(data)) as ByteReader)
        .await
}

/// Convenience: reads a whole object into memory (for small objects such as manifests).
pub async fn get_bytes(store: &dyn ObjectStore, key: &str) -> Result<Vec<u8>> {
    read_capped(store, key, None, u64::MAX).await
}

/// The most [`read_capped`] allocates before the bytes arrive.
const READ_AHEAD_ALLOCATION: u64 = 64 << 20;

/// Reads an object (or a range of it) into memory, refusing one larger than
/// `cap` bytes after reading at most `cap + 1`.
pub async fn read_capped(
    store: &dyn ObjectStore,
    key: &str,
    range: Option<ByteRange>,
    cap: u64,
) -> Result<Vec<u8>> {
    let reader = store.get(key, range).await?;
    // A range says how much is coming: room for it at once, not by doubling
    // (each doubling copies everything read so far), up to a bound.
    let expected = range
        .and_then(|r| r.end.map(|end| end.saturating_sub(r.start)))
        .unwrap_or(0)
        .min(cap)
        .min(READ_AHEAD_ALLOCATION);
    let mut out = Vec::with_capacity(expected as usize);
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .await
        .map_err(|source| StorageError::Io {
            operation: "reading",
            path: key.to_string(),
            source,
        })?;
    if out.len() as u64 > cap {
        return Err(StorageError::Server {
            operation: "GetObject",
            message: format!("`{key}` is larger than {cap} bytes"),
        });
    }
    Ok(out)
}

/// Lists every object under `prefix`, following continuation tokens.
pub async fn list_all(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<ObjectMeta>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = store.list(prefix, token, 1000).await?;
        out.extend(page.objects);
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(out),
        }
    }
}

/// Checks an object key. The same rules hold for every implementation, so a key
/// that works on a local directory also works on S3 and can never leave the root.
pub fn validate_key(key: &str) -> Result<()> {
    let invalid = |reason| {
        Err(StorageError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("it is empty");
    }
    if key.len() > 1024 {
        return invalid("it is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return invalid("it starts with `/`");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return invalid("it contains a control character or a backslash");
    }
    for segment in key.split('/') {
        match segment {
            "" => return invalid("it contains an empty path segment"),
            "." | ".." => return invalid("it contains a `.` or `..` segment"),
            s if s == local::TEMP_DIR => return invalid("that segment name is reserved"),
            _ => {}
        }
    }
    Ok(())
}

/// Validates a listing prefix: empty, or a key prefix (it may end with `/`).
pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    validate_key(prefix.strip_suffix('/').unwrap_or(prefix))
}

/// Fills `buf` from `reader` until it holds `limit` bytes or the reader ends.
/// Returns `true` when the reader ended.
pub(crate) async fn fill_chunk(
    reader: &mut ByteReader,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<bool> {
    buf.clear();
    while buf.len() < limit {
        let before = buf.len();
        let n = (&mut *reader)
            .take((limit - before) as u64)
            .read_to_end(buf)
            .await?;
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_or_confuse_are_rejected() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../../b",
            "..",
            "a//b",
            "./a",
            "a\\b",
            "a\0b",
            ".lifeboat-tmp/x",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["a", "backups/b-1/manifest.json", "a.b/c..d/e"] {
            assert!(validate_key(good).is_ok(), "{good:?} was rejected");
        }
        assert!(validate_key(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn prefixes_may_end_with_a_slash() {
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("backups/").is_ok());
        assert!(validate_prefix("../").is_err());
    }

    #[tokio::test]
    async fn fill_chunk_reads_across_short_reads() {
        let data: Vec<u8> = (0..100u8).collect();
        let (a, b) = data.split_at(37);
        let chained = std::io::Cursor::new(a.to_vec()).chain(std::io::Cursor::new(b.to_vec()));
        let mut reader: ByteReader = Box::pin(chained);
        let mut buf = Vec::new();
        assert!(!fill_chunk(&mut reader, &mut buf, 60).await.unwrap());
        assert_eq!(buf, data[..60]);
        assert!(fill_chunk(&mut reader, &mut buf, 60).await.unwrap());
        assert_eq!(buf, data[60..]);
    }
}
