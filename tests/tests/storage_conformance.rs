//! The same conformance cases against every object-store implementation:
//! the local directory, and a real S3 server over HTTP (Garage, started by
//! the harness, unless LIFEBOAT_TEST_S3_ENDPOINT names another).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::StreamExt;
use lifeboat::storage::{
    Availability, ByteRange, ByteReader, ObjectStore, S3Settings, S3Store, StorageError, get_bytes,
    list_all, put_bytes,
};
use lifeboat_e2e::S3Server;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

const MIB: u64 = 1024 * 1024;

/// Deterministic pseudo-random bytes (xorshift), `len` of them, optionally
/// failing with an I/O error after `fail_after` bytes — an interrupted upload.
struct Generated {
    state: u64,
    remaining: u64,
    produced: u64,
    fail_after: Option<u64>,
}

impl Generated {
    fn new(seed: u64, len: u64) -> Self {
        Self {
            state: seed | 1,
            remaining: len,
            produced: 0,
            fail_after: None,
        }
    }
    fn failing_after(mut self, bytes: u64) -> Self {
        self.fail_after = Some(bytes);
        self
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(limit) = self.fail_after
            && self.produced >= limit
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "source went away",
            )));
        }
        let n = (buf.remaining() as u64).min(self.remaining).min(64 * 1024) as usize;
        let mut chunk = Vec::with_capacity(n);
        for _ in 0..n {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.push((self.state >> 24) as u8);
        }
        buf.put_slice(&chunk);
        self.remaining -= n as u64;
        self.produced += n as u64;
        Poll::Ready(Ok(()))
    }
}

async fn sha_of(mut reader: ByteReader) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await.expect("reading the object");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    (total, hex::encode(hasher.finalize()))
}

async fn empty_objects(store: &dyn ObjectStore) {
    let meta = put_bytes(store, "empty/object", Vec::new()).await.unwrap();
    assert_eq!(meta.size, 0);
    assert_eq!(store.head("empty/object").await.unwrap().size, 0);
    assert!(get_bytes(store, "empty/object").await.unwrap().is_empty());
    let listed = list_all(store, "empty/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "empty/object");
    assert_eq!(listed[0].size, 0);
}

async fn large_object_streams_both_ways(store: &dyn ObjectStore) {
    let len = 100 * MIB;
    let (_, expected) = sha_of(Box::pin(Generated::new(7, len))).await;
    let meta = store
        .put("large/100MiB", Box::pin(Generated::new(7, len)))
        .await
        .unwrap();
    assert_eq!(meta.size, len);
    assert_eq!(store.head("large/100MiB").await.unwrap().size, len);
    let (size, sha) = sha_of(store.get("large/100MiB", None).await.unwrap()).await;
    assert_eq!(size, len);
    assert_eq!(sha, expected, "the 100 MiB object came back different");
    store.delete("large/100MiB").await.unwrap();
}

async fn listing_paginates_over_2500_keys(store: &dyn ObjectStore) {
    let keys: Vec<String> = (0..2500).map(|i| format!("many/key-{i:05}")).collect();
    futures::stream::iter(keys.iter().cloned())
        .map(|key| async move { put_bytes(store, &key, key.as_bytes().to_vec()).await })
        .buffer_unordered(32)
        .for_each(|r| async {
            r.unwrap();
        })
        .await;
    // Page by page, as a caller that keeps the token would.
    let mut pages = 0;
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = store.list("many/", token, 1000).await.unwrap();
        assert!(page.objects.len() <= 1000);
        pages += 1;
        seen.extend(page.objects.into_iter().map(|o| o.key));
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3, "2,500 keys in pages of 1,000 take three pages");
    assert_eq!(seen, keys, "every key exactly once, in key order");
    // A prefix that is not a directory boundary still filters.
    assert_eq!(list_all(store, "many/key-024").await.unwrap().len(), 100);
    assert!(list_all(store, "many/none").await.unwrap().is_empty());
}

async fn ranged_reads(store: &dyn ObjectStore) {
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    put_bytes(store, "range/object", data.clone())
        .await
        .unwrap();
    let read = |start, end| async move {
        let mut out = Vec::new();
        store
            .get("range/object", Some(ByteRange { start, end }))
            .await
            .unwrap()
            .read_to_end(&mut out)
            .await
            .unwrap();
        out
    };
    assert_eq!(read(10, Some(20)).await, data[10..20]);
    assert_eq!(read(0, Some(1)).await, data[..1]);
    assert_eq!(read(990, None).await, data[990..]);
    assert_eq!(read(0, None).await, data);
}

async fn missing_keys_are_typed_not_found(store: &dyn ObjectStore) {
    assert!(matches!(
        store.head("missing/key").await,
        Err(StorageError::NotFound { key }) if key == "missing/key"
    ));
    assert!(matches!(
        store.get("missing/key", None).await,
        Err(StorageError::NotFound { .. })
    ));
    store
        .delete("missing/key")
        .await
        .expect("deleting a missing key is not an error");
}

async fn overwrite_and_delete(store: &dyn ObjectStore) {
    put_bytes(store, "over/write", b"first".to_vec())
        .await
        .unwrap();
    put_bytes(store, "over/write", b"second!".to_vec())
        .await
        .unwrap();
    assert_eq!(get_bytes(store, "over/write").await.unwrap(), b"second!");
    store.delete("over/write").await.unwrap();
    assert!(matches!(
        store.head("over/write").await,
        Err(StorageError::NotFound { .. })
    ));
}

async fn interrupted_upload_leaves_nothing(store: &dyn ObjectStore) {
    // Small (single request) and large (multipart, fails after two parts).
    for (key, fail_after) in [("broken/small", 1000u64), ("broken/large", 20 * MIB)] {
        let body = Generated::new(3, 64 * MIB).failing_after(fail_after);
        let err = store.put(key, Box::pin(body)).await.unwrap_err();
        assert!(matches!(err, StorageError::Source(_)), "{key}: {err}");
        assert!(
            matches!(store.head(key).await, Err(StorageError::NotFound { .. })),
            "{key} is visible"
        );
    }
    assert!(list_all(store, "broken/").await.unwrap().is_empty());
}

async fn invalid_keys_are_refused(store: &dyn ObjectStore) {
    for key in ["../escape", "/absolute", "a//b", ""] {
        assert!(
            matches!(
                put_bytes(store, key, b"x".to_vec()).await,
                Err(StorageError::InvalidKey { .. })
            ),
            "{key:?} was accepted"
        );
    }
}

/// Runs every case; the store must be empty at the start.
async fn conformance(store: &dyn ObjectStore) {
    assert_eq!(store.check().await, Availability::Available);
    assert!(
        list_all(store, "").await.unwrap().is_empty(),
        "store is not empty"
    );
    empty_objects(store).await;
    ranged_reads(store).await;
    missing_keys_are_typed_not_found(store).await;
    overwrite_and_delete(store).await;
    invalid_keys_are_refused(store).await;
    interrupted_upload_leaves_nothing(store).await;
    listing_paginates_over_2500_keys(store).await;
    large_object_streams_both_ways(store).await;
}

#[tokio::test]
async fn local_directory_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = lifeboat::storage::LocalStore::new(dir.path().join("backups")).unwrap();
    conformance(&store).await;
    // Nothing of the interrupted uploads is left behind, not even temp files.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("backups/.lifeboat-tmp"))
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

async fn s3_conformance(server: S3Server) {
    let prefix = format!("conformance-{}", uuid::Uuid::new_v4());
    let store = server.store(&prefix).await.unwrap();
    conformance(&store).await;

    // The interrupted multipart upload was aborted, not left pending.
    let pending = lifeboat_e2e::raw_client(&server)
        .list_multipart_uploads()
        .bucket(&server.bucket)
        .prefix(&prefix)
        .send()
        .await
        .unwrap();
    assert!(
        pending.uploads().is_empty(),
        "{}: uploads left pending: {:?}",
        server.kind,
        pending.uploads()
    );

    // Two prefixes in one bucket do not see each other.
    let other = server.store(&format!("{prefix}-other")).await.unwrap();
    assert!(list_all(&other, "").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_garage_conforms() {
    s3_conformance(S3Server::start().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_ceph_rgw_conforms() {
    s3_conformance(S3Server::start_ceph().await.unwrap()).await;
}

#[tokio::test]
async fn s3_failures_are_explained() {
    let server = S3Server::start().await.unwrap();
    let with = |change: &dyn Fn(&mut S3Settings)| {
        let mut settings = server.settings("failures");
        change(&mut settings);
        settings
    };

    // Wrong secret: a clear "credentials" error, on check and on use.
    let store = S3Store::new(with(&|s| s.secret_access_key = Some("0".repeat(64))))
        .await
        .unwrap();
    let Availability::Unavailable { reason } = store.check().await else {
        panic!("a wrong secret was accepted")
    };
    assert!(reason.contains("credentials"), "{reason}");
    let err = put_bytes(&store, "x", b"x".to_vec()).await.unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied { .. }), "{err}");

    // Unknown key id.
    let store = S3Store::new(with(&|s| {
        s.access_key_id = Some("GK000000000000000000000000".into())
    }))
    .await
    .unwrap();
    let err = store.head("x").await.unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied { .. }), "{err}");

    // A bucket that does not exist.
    let store = S3Store::new(with(&|s| s.bucket = "no-such-bucket-here".into()))
        .await
        .unwrap();
    let Availability::Unavailable { reason } = store.check().await else {
        panic!("a missing bucket was accepted")
    };
    assert!(reason.contains("no-such-bucket-here"), "{reason}");

    // Nothing listening.
    let port = lifeboat_e2e::free_port().unwrap();
    let store = Arc::new(
        S3Store::new(with(&|s| {
            s.endpoint = Some(format!("http://127.0.0.1:{port}"))
        }))
        .await
        .unwrap(),
    );
    let err = store.list("", None, 10).await.unwrap_err();
    assert!(matches!(err, StorageError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
