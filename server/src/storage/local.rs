//! A local directory as an object store: the embedded default.
//!
//! Writes go to a temp file under `<root>/.lifeboat-tmp/` and are renamed into
//! place once complete and synced, so a crash never leaves a half-written
//! object visible. Keys are validated and resolved paths are checked to stay
//! inside the root, symlinks included.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::{
    Availability, ByteRange, ByteReader, ListPage, ObjectMeta, ObjectStore, Result, StorageError,
    validate_key, validate_prefix,
};

pub(crate) const TEMP_DIR: &str = ".lifeboat-tmp";

#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

fn io_err(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.display().to_string();
    move |source| StorageError::Io {
        operation,
        path,
        source,
    }
}

impl LocalStore {
    /// Opens (creating if needed) a directory store.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io_err("creating the directory", &root))?;
        let root = root
            .canonicalize()
            .map_err(io_err("resolving the directory", &root))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a key, after checking that it cannot leave the root.
    fn path_of(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// Refuses a path whose existing ancestors resolve outside the root (a symlink out).
    fn ensure_inside(&self, path: &Path, key: &str) -> Result<()> {
        let mut ancestor = path.parent();
        while let Some(dir) = ancestor {
            if let Ok(real) = dir.canonicalize() {
                if real.starts_with(&self.root) {
                    return Ok(());
                }
                return Err(StorageError::InvalidKey {
                    key: key.to_string(),
                    reason: "it resolves outside the storage directory",
                });
            }
            ancestor = dir.parent();
        }
        Ok(())
    }

    fn meta(key: &str, md: &std::fs::Metadata) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: md.len(),
            last_modified: md.modified().ok().map(DateTime::<Utc>::from),
        }
    }

    /// Every key under `prefix`, sorted. Symlinks are not followed.
    fn walk(&self, prefix: &str) -> std::io::Result<Vec<(String, std::fs::Metadata)>> {
        // Start from the deepest directory the prefix names fully.
        let start_rel = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let mut out = Vec::new();
        let mut stack = vec![(self.root.join(start_rel), start_rel.to_string())];
        while let Some((dir, rel)) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue; // not a key this store could have written
                };
                if rel.is_empty() && name == TEMP_DIR {
                    continue;
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let file_type = entry.file_type()?;
                if file_type.is_dir() {
                    // Descend only where keys could still match the prefix.
                    let dir_prefix = format!("{key}/");
                    if dir_prefix.starts_with(prefix) || prefix.starts_with(&dir_prefix) {
                        stack.push((entry.path(), key));
                    }
                } else if file_type.is_file() && key.starts_with(prefix) {
                    out.push((key, entry.metadata()?));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    async fn put(&self, key: &str, mut body: ByteReader) -> Result<ObjectMeta> {
        let path = self.path_of(key)?;
        self.ensure_inside(&path, key)?;
        let tmp_dir = self.root.join(TEMP_DIR);
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(io_err("creating the temp directory", &tmp_dir))?;
        let tmp = tmp_dir.join(uuid::Uuid::new_v4().to_string());
        let result = async {
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .map_err(io_err("creating", &tmp))?;
            let mut buf = vec![0u8; 256 * 1024];
            let mut size = 0u64;
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut body, &mut buf)
                    .await
                    .map_err(StorageError::Source)?;
                if n == 0 {
                    break;
                }
                file.write_all(&buf[..n])
                    .await
                    .map_err(io_err("writing", &tmp))?;
                size += n as u64;
            }
            file.sync_all().await.map_err(io_err("syncing", &tmp))?;
            drop(file);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(io_err("creating the directory", parent))?;
            }
            self.ensure_inside(&path, key)?;
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(io_err("moving into place", &path))?;
            Ok(size)
        }
        .await;
        match result {
            Ok(size) => {
                let md = tokio::fs::metadata(&path)
                    .await
                    .map_err(io_err("reading metadata of", &path))?;
                debug_assert_eq!(md.len(), size);
                Ok(Self::meta(key, &md))
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteReader> {
        let path = self.path_of(key)?;
        self.ensure_inside(&path, key)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound {
                    key: key.to_string(),
                });
            }
            Err(e) => return Err(io_err("opening", &path)(e)),
        };
        if !file
            .metadata()
            .await
            .map_err(io_err("reading metadata of", &path))?
            .is_file()
        {
            return Err(StorageError::NotFound {
                key: key.to_string(),
            });
        }
        match range {
            None => Ok(Box::pin(file)),
            Some(ByteRange { start, end }) => {
                file.seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(io_err("seeking in", &path))?;
                match end {
                    None => Ok(Box::pin(file)),
                    Some(end) => Ok(Box::pin(tokio::io::AsyncReadExt::take(
                        file,
                        end.saturating_sub(start),
                    ))),
                }
            }
        }
    }

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<String>,
        max_keys: usize,
    ) -> Result<ListPage> {
        validate_prefix(prefix)?;
        let store = self.clone();
        let owned_prefix = prefix.to_string();
        let all = tokio::task::spawn_blocking(move || store.walk(&owned_prefix))
            .await
            .map_err(|e| StorageError::Server {
                operation: "list",
                message: e.to_string(),
            })?
            .map_err(io_err("listing", &self.root))?;
        let max_keys = max_keys.max(1);
        let mut objects = Vec::new();
        let mut next = None;
        for (key, md) in all
            .iter()
            .filter(|(k, _)| continuation.as_deref().is_none_or(|c| k.as_str() > c))
        {
            if objects.len() == max_keys {
                next = objects.last().map(|o: &ObjectMeta| o.key.clone());
                break;
            }
            objects.push(Self::meta(key, md));
        }
        Ok(ListPage { objects, next })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let path = self.path_of(key)?;
        self.ensure_inside(&path, key)?;
        match tokio::fs::metadata(&path).await {
            Ok(md) if md.is_file() => Ok(Self::meta(key, &md)),
            Ok(_) => Err(StorageError::NotFound {
                key: key.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::NotFound {
                key: key.to_string(),
            }),
            Err(e) => Err(io_err("reading metadata of", &path)(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        self.ensure_inside(&path, key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("deleting", &path)(e)),
        }
        // Remove directories left empty, up to the root.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    async fn check(&self) -> Availability {
        let probe = format!("{TEMP_DIR}-probe-{}", uuid::Uuid::new_v4());
        let path = self.root.join(&probe);
        let result = async {
            tokio::fs::create_dir_all(&self.root).await?;
            tokio::fs::write(&path, b"lifeboat").await?;
            tokio::fs::remove_file(&path).await
        }
        .await;
        match result {
            Ok(()) => Availability::Available,
            Err(e) => Availability::Unavailable {
                reason: format!(
                    "cannot write to {}: {e}. Make the directory writable by the user running \
                     Lifeboat, or point the storage path elsewhere.",
                    self.root.display()
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_symlink_out_of_the_root_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
        let store = LocalStore::new(root.path()).unwrap();
        let err = super::super::put_bytes(&store, "escape/x", b"nope".to_vec())
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::InvalidKey { .. }), "{err}");
        assert!(!outside.path().join("x").exists());
    }

    #[tokio::test]
    async fn temp_files_are_not_listed_and_empty_dirs_are_pruned() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path()).unwrap();
        super::super::put_bytes(&store, "a/b/c", b"1".to_vec())
            .await
            .unwrap();
        std::fs::write(root.path().join(TEMP_DIR).join("partial"), b"x").unwrap();
        let page = store.list("", None, 10).await.unwrap();
        let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a/b/c"]);
        store.delete("a/b/c").await.unwrap();
        assert!(!root.path().join("a").exists());
    }
}
