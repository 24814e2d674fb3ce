//! Archive format v1 (specified in docs/ARCHIVE.md), the one home of a
//! backup's files: where they live, what the manifest says, the streaming
//! writer (`writer`), and the one verifying reader (`reader`) that every
//! read of a backup goes through — restore, the API's contents and log,
//! `lifeboat backup inspect`.
//!
//! Invariant: everything read from storage is untrusted. It is streamed,
//! never loaded whole; sizes come from what was read, never from what a
//! manifest claims; every read has a cap (`MAX_*`), and entry paths must be
//! under `resources/` with no `..`.

pub mod crypto;
mod item;
pub mod reader;
pub mod writer;

use crate::storage::StorageError;

pub use crypto::ArchiveKey;
pub use item::Item;
pub use reader::{
    Entry, EntryName, read_log, read_manifest, read_resources, verify_manifest, verify_resources,
};
pub use writer::{ArchiveWriter, WriteError, compress};

/// The format this Lifeboat writes: 2 adds `volumes` to the manifest; 3
/// encrypts `resources.tar.zst` (age) and signs the manifest (`manifest.sig`).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format it still reads (and restores).
pub const OLDEST_FORMAT_VERSION: u32 = 1;
pub const RESOURCES_FILE: &str = "resources.tar.zst";
pub const LOG_FILE: &str = "log.jsonl.zst";
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's signature (format 3), written just before the manifest.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// A signature file larger than this is not one.
pub const MAX_SIGNATURE_BYTES: u64 = 4 << 10;
/// zstd level: 1 is the fastest standard level; Kubernetes JSON compresses well even so.
const ZSTD_LEVEL: i32 = 1;

/// A manifest larger than this is not a manifest.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// One object in the archive (the API server's own limit is 1.5 MiB).
pub const MAX_ENTRY_BYTES: u64 = 16 << 20;
/// The whole archive, decompressed.
pub const MAX_UNCOMPRESSED_BYTES: u64 = 8 << 30;
/// A backup's log, decompressed.
pub const MAX_LOG_BYTES: u64 = 64 << 20;
/// The largest zstd window a reader accepts (what `zstd --long` writes; 128 MiB).
const MAX_WINDOW_LOG: u32 = 27;

/// Why a backup's files could not be read. Everything but `Storage` means
/// the bytes in storage are not a backup this Lifeboat can trust.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("backup {backup} has no readable {file} ({source}); it is incomplete or gone")]
    Missing {
        backup: String,
        file: &'static str,
        source: StorageError,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{file}: {message}")]
    Damaged { file: String, message: String },
    #[error("{file}: larger than the {limit}-byte limit; refusing it")]
    TooLarge { file: String, limit: u64 },
    #[error(
        "{file}: format version {found} is not supported by this Lifeboat (it reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
    )]
    Unsupported { file: &'static str, found: u32 },
    #[error(
        "backup {backup} is encrypted (key {key_id}) and this install has no recovery key for its \
         location: supply it with `lifeboat location set-key`"
    )]
    KeyMissing { backup: String, key_id: String },
    #[error("backup {backup}: {source}")]
    Crypto {
        backup: String,
        source: crypto::CryptoError,
    },
    #[error(
        "backup {backup}: {file} was changed in the bucket after Lifeboat wrote it ({why}); \
         refusing to use it. Restore from another backup, and check who can write to the bucket"
    )]
    Tampered {
        backup: String,
        file: &'static str,
        why: String,
    },
}

impl ArchiveError {
    pub(crate) fn damaged(file: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Damaged {
            file: file.into(),
            message: message.to_string(),
        }
    }
}

/// `backups/<name>/`
pub fn backup_prefix(name: &str) -> String {
    format!("backups/{name}/")
}

pub fn key(name: &str, file: &str) -> String {
    format!("{}{file}", backup_prefix(name))
}

/// `resources/deployments.apps/namespaces/shop/web.json`, `resources/pods/…`,
/// `resources/persistentvolumes/cluster/pv-1.json`.
pub fn entry_path(group: &str, resource: &str, namespace: Option<&str>, name: &str) -> String {
    let dir = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    match namespace {
        Some(ns) => format!("resources/{dir}/namespaces/{ns}/{name}.json"),
        None => format!("resources/{dir}/cluster/{name}.json"),
    }
}

/// Splits an entry path back into (group-resource, namespace, name); `None`
/// for anything but `resources/…` paths of format v1 (no `..`, no empty
/// segment, nothing absolute).
pub fn parse_entry_path(path: &str) -> Option<(String, Option<String>, String)> {
    let rest = path.strip_prefix("resources/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\\'))
    {
        return None;
    }
    match parts.as_slice() {
        [gr, "namespaces", ns, file] => Some((
            gr.to_string(),
            Some(ns.to_string()),
            file.strip_suffix(".json")?.to_string(),
        )),
        [gr, "cluster", file] => Some((
            gr.to_string(),
            None,
            file.strip_suffix(".json")?.to_string(),
        )),
        _ => None,
    }
}

pub use frontend::model::{ClusterInfo, FileInfo, Manifest, Method, ObjectLock, VolumeEntry};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_follow_velero_layout() {
        assert_eq!(
            entry_path("apps", "deployments", Some("shop"), "web"),
            "resources/deployments.apps/namespaces/shop/web.json"
        );
        assert_eq!(
            entry_path("", "persistentvolumes", None, "pv-1"),
            "resources/persistentvolumes/cluster/pv-1.json"
        );
        assert_eq!(
            parse_entry_path("resources/pods/namespaces/a/p.json"),
            Some(("pods".into(), Some("a".into()), "p".into()))
        );
        assert_eq!(parse_entry_path("other/x"), None);
        for hostile in [
            "resources/../etc/passwd.json",
            "resources/pods/namespaces/../../x.json",
            "/resources/pods/cluster/x.json",
            "resources//cluster/x.json",
        ] {
            assert_eq!(parse_entry_path(hostile), None, "{hostile}");
        }
    }
}
