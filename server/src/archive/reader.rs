//! The one verifying reader of a backup's files. Every entry point (restore,
//! the API's contents and log, `lifeboat backup inspect`) reads through it
//! and gets the same refusals: a manifest over `MAX_MANIFEST_BYTES`, an entry
//! outside `resources/` or over `MAX_ENTRY_BYTES`, more than
//! `MAX_UNCOMPRESSED_BYTES` decompressed, a zstd window over 128 MiB, and a
//! size or SHA-256 that differs from the manifest's.
//!
//! The archive is streamed: storage → SHA-256 → zstd → tar → the visitor,
//! on a blocking thread, so memory holds one entry at a time. The checksum
//! is known only at the end, so a visitor's results count only once
//! [`read_resources`] has returned `Ok`.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::crypto::{ArchiveKey, CryptoError, Encryption, Signature};
use super::{
    ArchiveError, FORMAT_VERSION, FileInfo, LOG_FILE, MANIFEST_FILE, MAX_ENTRY_BYTES,
    MAX_LOG_BYTES, MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES, MAX_UNCOMPRESSED_BYTES, MAX_WINDOW_LOG,
    Manifest, OLDEST_FORMAT_VERSION, RESOURCES_FILE, SIGNATURE_FILE, key as key_of,
    parse_entry_path,
};
use crate::storage::{ObjectStore, StorageError};

/// Where an entry sits in the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryName {
    pub path: String,
    /// `deployments.apps`, `pods`.
    pub group_resource: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// An entry and its bytes (at most `MAX_ENTRY_BYTES`).
#[derive(Debug)]
pub struct Entry {
    pub name: EntryName,
    pub data: Vec<u8>,
}

/// What a reader does with the entries: which to read, and each one read.
pub trait Visitor {
    /// Whether this entry's bytes are wanted; the others are skipped unread.
    fn wants(&mut self, name: &EntryName) -> bool;
    fn visit(&mut self, entry: Entry) -> Result<(), ArchiveError>;
}

/// A [`Visitor`] that reads every entry, checks it is JSON, and counts the
/// objects per group-resource: what `inspect` and `verify` compare with the
/// manifest's `resources`.
#[derive(Debug, Default)]
pub struct Counts {
    pub per_kind: std::collections::BTreeMap<String, u64>,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.per_kind.values().sum()
    }
}

impl Visitor for Counts {
    fn wants(&mut self, _: &EntryName) -> bool {
        true
    }
    fn visit(&mut self, entry: Entry) -> Result<(), ArchiveError> {
        serde_json::from_slice::<serde_json::Value>(&entry.data).map_err(|e| {
            ArchiveError::damaged(
                RESOURCES_FILE,
                format!("entry `{}` is not JSON: {e}", entry.name.path),
            )
        })?;
        *self.per_kind.entry(entry.name.group_resource).or_default() += 1;
        Ok(())
    }
}

/// Hashes and counts the bytes that pass through.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Fails once more than `left` bytes come through (a decompression bomb),
/// and says so in `exceeded`.
struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: Arc<AtomicBool>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = usize::try_from(self.left.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..room])?;
        if n as u64 > self.left {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("over the decompressed size limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads `resources.tar.zst` from `source`, visiting each entry, then reads
/// the source to its end; returns the size and SHA-256 of what was read.
/// With `expected` (the manifest's), a file that differs from it is refused
/// as such — the cause — even when the damage also broke decoding.
pub fn read_entries<R: Read>(
    source: R,
    visitor: &mut dyn Visitor,
    expected: Option<&FileInfo>,
) -> Result<FileInfo, ArchiveError> {
    read_entries_sealed(source, visitor, expected, None).map_err(|e| match e {
        SealedError::Archive(e) => e,
        SealedError::Crypto(e) => ArchiveError::damaged(RESOURCES_FILE, e),
    })
}

/// Why an encrypted archive could not be read.
#[derive(Debug)]
pub enum SealedError {
    Archive(ArchiveError),
    Crypto(CryptoError),
}

impl From<ArchiveError> for SealedError {
    fn from(e: ArchiveError) -> Self {
        SealedError::Archive(e)
    }
}

/// [`read_entries`] of an archive encrypted to `key` as `encryption` says
/// (plain when `None`): the checksum is of the bytes stored, before
/// decryption, so a changed byte is named as such even when it also broke
/// decryption.
pub fn read_entries_sealed<R: Read>(
    source: R,
    visitor: &mut dyn Visitor,
    expected: Option<&FileInfo>,
    sealed: Option<(&ArchiveKey, &Encryption)>,
) -> Result<FileInfo, SealedError> {
    let mut hashing = Hashing {
        inner: source,
        hasher: Sha256::new(),
        size: 0,
    };
    let visited = match sealed {
        None => visit_entries(&mut hashing, visitor).map_err(SealedError::Archive),
        Some((key, encryption)) => match key.decrypting(&mut hashing, encryption) {
            Ok(plain) => visit_entries(plain, visitor).map_err(SealedError::Archive),
            Err(e) => Err(SealedError::Crypto(e)),
        },
    };
    // The rest of the file (zstd's end, padding) counts for the checksum too.
    let drained = std::io::copy(&mut hashing, &mut std::io::sink());
    let read = FileInfo {
        size: hashing.size,
        sha256: hex::encode(hashing.hasher.finalize()),
    };
    if let Some(expected) = expected {
        verify_resources(&read, expected)?;
    }
    visited?;
    drained.map_err(|e| ArchiveError::damaged(RESOURCES_FILE, format!("reading failed: {e}")))?;
    Ok(read)
}

fn visit_entries<R: Read>(hashing: R, visitor: &mut dyn Visitor) -> Result<(), ArchiveError> {
    let file = RESOURCES_FILE;
    let exceeded = Arc::new(AtomicBool::new(false));
    let too_large = |exceeded: &AtomicBool, e: std::io::Error, what: String| {
        if exceeded.load(Ordering::Relaxed) {
            ArchiveError::TooLarge {
                file: file.into(),
                limit: MAX_UNCOMPRESSED_BYTES,
            }
        } else {
            ArchiveError::damaged(file, format!("{what}: {e}"))
        }
    };
    {
        let mut decoder = zstd::stream::read::Decoder::new(hashing)
            .map_err(|e| ArchiveError::damaged(file, e))?;
        decoder
            .window_log_max(MAX_WINDOW_LOG)
            .map_err(|e| ArchiveError::damaged(file, e))?;
        let mut tar = tar::Archive::new(Capped {
            inner: decoder,
            left: MAX_UNCOMPRESSED_BYTES,
            exceeded: exceeded.clone(),
        });
        let entries = tar
            .entries()
            .map_err(|e| too_large(&exceeded, e, "not a tar archive".into()))?;
        for (seen, entry) in entries.enumerate() {
            let mut entry = entry
                .map_err(|e| too_large(&exceeded, e, format!("damaged after {seen} objects")))?;
            let path = entry
                .path()
                .map_err(|e| ArchiveError::damaged(file, format!("bad entry name: {e}")))?
                .to_string_lossy()
                .to_string();
            let Some((group_resource, namespace, name)) = parse_entry_path(&path) else {
                return Err(ArchiveError::damaged(
                    file,
                    format!("entry `{path}` is outside resources/; refusing the archive"),
                ));
            };
            if !entry.header().entry_type().is_file() {
                return Err(ArchiveError::damaged(
                    file,
                    format!("entry `{path}` is not a regular file; refusing the archive"),
                ));
            }
            if entry.size() > MAX_ENTRY_BYTES {
                return Err(ArchiveError::TooLarge {
                    file: format!("{file}: entry `{path}`"),
                    limit: MAX_ENTRY_BYTES,
                });
            }
            let name = EntryName {
                path,
                group_resource,
                namespace,
                name,
            };
            if !visitor.wants(&name) {
                continue;
            }
            // The header's size is not trusted for an allocation.
            let mut data = Vec::new();
            (&mut entry)
                .take(MAX_ENTRY_BYTES)
                .read_to_end(&mut data)
                .map_err(|e| {
                    too_large(&exceeded, e, format!("entry `{}` is damaged", name.path))
                })?;
            visitor.visit(Entry { name, data })?;
        }
    }
    Ok(())
}

/// Compares what was read with what the manifest says.
pub fn verify_resources(read: &FileInfo, expected: &FileInfo) -> Result<(), ArchiveError> {
    let file = RESOURCES_FILE;
    if read.size != expected.size {
        return Err(ArchiveError::damaged(
            file,
            format!(
                "{} bytes, the manifest says {} (truncated or replaced)",
                read.size, expected.size
            ),
        ));
    }
    if read.sha256 != expected.sha256 {
        return Err(ArchiveError::damaged(
            file,
            format!(
                "checksum {} does not match the manifest's {} (the file is damaged)",
                read.sha256, expected.sha256
            ),
        ));
    }
    Ok(())
}

/// A whole small object, refusing more than `limit` bytes.
async fn read_capped(
    store: &dyn ObjectStore,
    object_key: &str,
    limit: u64,
    file: &str,
) -> Result<Vec<u8>, StorageOrLimit> {
    let mut reader = store
        .get(object_key, None)
        .await
        .map_err(StorageOrLimit::Storage)?;
    let mut out = Vec::new();
    (&mut reader)
        .take(limit + 1)
        .read_to_end(&mut out)
        .await
        .map_err(|source| {
            StorageOrLimit::Storage(StorageError::Io {
                operation: "reading",
                path: object_key.to_string(),
                source,
            })
        })?;
    if out.len() as u64 > limit {
        return Err(StorageOrLimit::Limit(ArchiveError::TooLarge {
            file: file.into(),
            limit,
        }));
    }
    Ok(out)
}

enum StorageOrLimit {
    Storage(StorageError),
    Limit(ArchiveError),
}

/// `manifest.json` of a backup, checked for its format version (not for
/// its signature: see [`verify_manifest`]).
pub async fn read_manifest(
    store: &dyn ObjectStore,
    backup: &str,
) -> Result<Manifest, ArchiveError> {
    let bytes = manifest_bytes(store, backup).await?;
    parse_manifest(&bytes)
}

/// `manifest.json` of a backup, checked before anything is restored from
/// it: its name is the backup's (not another backup's manifest swapped in),
/// and from format 3 on, its signature (`manifest.sig`) is the location
/// key's. Formats 1 and 2 were never signed and are taken as they are,
/// unless they replaced a signed manifest: when the catalog saw the backup
/// in a later format (`known_format`), or a signature sits beside them.
pub async fn verify_manifest(
    store: &dyn ObjectStore,
    backup: &str,
    key: Option<&ArchiveKey>,
    known_format: Option<i64>,
) -> Result<Manifest, ArchiveError> {
    let bytes = manifest_bytes(store, backup).await?;
    let manifest = parse_manifest(&bytes)?;
    let tampered = |file: &'static str, why: String| ArchiveError::Tampered {
        backup: backup.to_string(),
        file,
        why,
    };
    if manifest.name != backup {
        return Err(tampered(
            MANIFEST_FILE,
            format!("it is the manifest of backup `{}`", manifest.name),
        ));
    }
    if let Some(known) = known_format
        && i64::from(manifest.format_version) < known
    {
        return Err(tampered(
            MANIFEST_FILE,
            format!(
                "it claims archive format {} but the backup was written in format {known}: an older, unsigned manifest replaced the signed one",
                manifest.format_version
            ),
        ));
    }
    if manifest.format_version < 3 {
        return match store.head(&key_of(backup, SIGNATURE_FILE)).await {
            Ok(_) => Err(tampered(
                MANIFEST_FILE,
                format!(
                    "it claims archive format {} (unsigned) but a signature sits beside it: it replaced a signed manifest",
                    manifest.format_version
                ),
            )),
            Err(StorageError::NotFound { .. }) => Ok(manifest),
            Err(source) => Err(ArchiveError::Missing {
                backup: backup.to_string(),
                file: SIGNATURE_FILE,
                source,
            }),
        };
    }
    let signature = read_capped(
        store,
        &key_of(backup, SIGNATURE_FILE),
        MAX_SIGNATURE_BYTES,
        SIGNATURE_FILE,
    )
    .await
    .map_err(|e| match e {
        StorageOrLimit::Storage(StorageError::NotFound { .. }) => {
            tampered(SIGNATURE_FILE, "the signature is missing".into())
        }
        StorageOrLimit::Storage(source) => ArchiveError::Missing {
            backup: backup.to_string(),
            file: SIGNATURE_FILE,
            source,
        },
        StorageOrLimit::Limit(e) => e,
    })?;
    let signature: Signature = serde_json::from_slice(&signature)
        .map_err(|e| tampered(SIGNATURE_FILE, format!("it is not a signature: {e}")))?;
    let Some(key) = key else {
        return Err(ArchiveError::KeyMissing {
            backup: backup.to_string(),
            key_id: signature.key_id,
        });
    };
    if signature.key_id != key.key_id() {
        return Err(ArchiveError::Crypto {
            backup: backup.to_string(),
            source: CryptoError::WrongKey {
                expected: signature.key_id,
                given: key.key_id().to_string(),
            },
        });
    }
    if !key.verify(&bytes, &signature) {
        return Err(tampered(
            MANIFEST_FILE,
            "it does not match its signature".into(),
        ));
    }
    Ok(manifest)
}

async fn manifest_bytes(store: &dyn ObjectStore, backup: &str) -> Result<Vec<u8>, ArchiveError> {
    read_capped(
        store,
        &key_of(backup, MANIFEST_FILE),
        MAX_MANIFEST_BYTES,
        MANIFEST_FILE,
    )
    .await
    .map_err(|e| match e {
        StorageOrLimit::Storage(source) => ArchiveError::Missing {
            backup: backup.to_string(),
            file: MANIFEST_FILE,
            source,
        },
        StorageOrLimit::Limit(e) => e,
    })
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ArchiveError> {
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| ArchiveError::damaged(MANIFEST_FILE, format!("not a valid manifest: {e}")))?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&manifest.format_version) {
        return Err(ArchiveError::Unsupported {
            file: MANIFEST_FILE,
            found: manifest.format_version,
        });
    }
    Ok(manifest)
}

/// Streams a backup's `resources.tar.zst` through `visitor` and verifies it
/// against `manifest`; returns the visitor, whose results count only now.
pub async fn read_resources<V: Visitor + Send + 'static>(
    store: &dyn ObjectStore,
    backup: &str,
    manifest: &Manifest,
    key: Option<&ArchiveKey>,
    mut visitor: V,
) -> Result<V, ArchiveError> {
    let expected = manifest.files.get(RESOURCES_FILE).cloned().ok_or_else(|| {
        ArchiveError::damaged(MANIFEST_FILE, format!("lists no {RESOURCES_FILE}"))
    })?;
    let sealed = match (&manifest.encryption, key) {
        (None, _) => None,
        (Some(encryption), Some(key)) => Some((key.clone(), encryption.clone())),
        (Some(encryption), None) => {
            return Err(ArchiveError::KeyMissing {
                backup: backup.to_string(),
                key_id: encryption.key_id.clone(),
            });
        }
    };
    let reader = store.get(&key_of(backup, RESOURCES_FILE), None).await?;
    let source = tokio_util::io::SyncIoBridge::new(reader);
    let backup = backup.to_string();
    tokio::task::spawn_blocking(move || {
        // Never more than the manifest's size (plus one byte, to notice more).
        let source = source.take(expected.size.saturating_add(1));
        let opened = sealed.as_ref().map(|(k, e)| (k, e));
        read_entries_sealed(source, &mut visitor, Some(&expected), opened).map_err(
            |e| match e {
                SealedError::Archive(e) => e,
                SealedError::Crypto(source) => ArchiveError::Crypto { backup, source },
            },
        )?;
        Ok::<_, ArchiveError>(visitor)
    })
    .await
    .map_err(|e| ArchiveError::damaged(RESOURCES_FILE, format!("the reader stopped: {e}")))?
}

/// A backup's log, decompressed (at most `MAX_LOG_BYTES`), checked against
/// the manifest when there is one (a failed backup has none).
pub async fn read_log(
    store: &dyn ObjectStore,
    backup: &str,
    manifest: Option<&Manifest>,
) -> Result<Vec<u8>, ArchiveError> {
    let expected = manifest.and_then(|m| m.files.get(LOG_FILE)).cloned();
    let reader = store.get(&key_of(backup, LOG_FILE), None).await?;
    let source = tokio_util::io::SyncIoBridge::new(reader);
    tokio::task::spawn_blocking(move || {
        let limit = expected
            .as_ref()
            .map_or(u64::MAX, |e| e.size.saturating_add(1));
        let mut hashing = Hashing {
            inner: source.take(limit),
            hasher: Sha256::new(),
            size: 0,
        };
        let exceeded = Arc::new(AtomicBool::new(false));
        let mut text = Vec::new();
        {
            let mut decoder = zstd::stream::read::Decoder::new(&mut hashing)
                .map_err(|e| ArchiveError::damaged(LOG_FILE, e))?;
            decoder
                .window_log_max(MAX_WINDOW_LOG)
                .map_err(|e| ArchiveError::damaged(LOG_FILE, e))?;
            let mut capped = Capped {
                inner: decoder,
                left: MAX_LOG_BYTES,
                exceeded: exceeded.clone(),
            };
            if let Err(e) = capped.read_to_end(&mut text) {
                return Err(if exceeded.load(Ordering::Relaxed) {
                    ArchiveError::TooLarge {
                        file: LOG_FILE.into(),
                        limit: MAX_LOG_BYTES,
                    }
                } else {
                    ArchiveError::damaged(LOG_FILE, e)
                });
            }
        }
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(|e| ArchiveError::damaged(LOG_FILE, e))?;
        if let Some(expected) = expected {
            let read = FileInfo {
                size: hashing.size,
                sha256: hex::encode(hashing.hasher.finalize()),
            };
            if read != expected {
                return Err(ArchiveError::damaged(
                    LOG_FILE,
                    "size or checksum differs from the manifest's (the file is damaged)",
                ));
            }
        }
        Ok(text)
    })
    .await
    .map_err(|e| ArchiveError::damaged(LOG_FILE, format!("the reader stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names(Vec<String>);

    impl Visitor for Names {
        fn wants(&mut self, _: &EntryName) -> bool {
            true
        }
        fn visit(&mut self, entry: Entry) -> Result<(), ArchiveError> {
            self.0.push(entry.name.path);
            Ok(())
        }
    }

    fn tar_zst(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            // `append_data` refuses `..`; a hostile archive is written raw.
            header.as_gnu_mut().expect("gnu").name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            tar.append(&header, *data).expect("append");
        }
        zstd::stream::encode_all(tar.into_inner().expect("tar").as_slice(), 1).expect("zstd")
    }

    #[test]
    fn entries_are_read_and_the_whole_file_is_hashed() {
        let bytes = tar_zst(&[("resources/pods/namespaces/a/p.json", b"{}")]);
        let mut names = Names(Vec::new());
        let read = read_entries(bytes.as_slice(), &mut names, None).expect("reads");
        assert_eq!(names.0, ["resources/pods/namespaces/a/p.json"]);
        assert_eq!(read.size, bytes.len() as u64);
        assert_eq!(read.sha256, hex::encode(Sha256::digest(&bytes)));
        let wrong = FileInfo {
            size: read.size,
            sha256: "0".repeat(64),
        };
        assert!(verify_resources(&read, &wrong).is_err());
        // A flipped byte breaks decoding too, but the refusal names the cause.
        let mut damaged = bytes.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x5a;
        let err =
            read_entries(damaged.as_slice(), &mut Names(Vec::new()), Some(&read)).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn hostile_archives_are_refused() {
        let escape = tar_zst(&[("resources/../../etc/x.json", b"{}")]);
        let err = read_entries(escape.as_slice(), &mut Names(Vec::new()), None).unwrap_err();
        assert!(err.to_string().contains("outside resources/"), "{err}");

        // 64 MiB of zeros as one entry: refused by its size, not read.
        let big = vec![0u8; (MAX_ENTRY_BYTES + 1) as usize];
        let bomb = tar_zst(&[("resources/pods/cluster/big.json", &big)]);
        assert!(bomb.len() < 1 << 20, "compresses to almost nothing");
        let err = read_entries(bomb.as_slice(), &mut Names(Vec::new()), None).unwrap_err();
        assert!(matches!(err, ArchiveError::TooLarge { .. }), "{err}");

        let garbage = b"not zstd at all".to_vec();
        assert!(read_entries(garbage.as_slice(), &mut Names(Vec::new()), None).is_err());
    }
}
