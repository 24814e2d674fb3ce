//! The streaming writer: entries go over a bounded channel to a blocking
//! thread running tar → zstd → age (when the location has a key), whose
//! output goes over another bounded channel into `ObjectStore::put`
//! (multipart), hashed on the way (the manifest's SHA-256 is of the bytes
//! stored). Memory stays at a few MiB of buffers.

use std::io::Write;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{ArchiveKey, FileInfo, ZSTD_LEVEL};
use crate::storage::{ByteReader, DynStore, ObjectMeta, StorageError};

/// Hashes and counts the compressed bytes and sends them on in chunks.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    hasher: Sha256,
    size: u64,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped")
            })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why writing an archive failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the archive writer stopped (see the upload error)")]
    Stopped,
    #[error("packing the archive failed: {0}")]
    Packing(std::io::Error),
    #[error(transparent)]
    Upload(#[from] StorageError),
    #[error("the archive writer's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

type Upload = std::io::BufWriter<ChannelWriter>;

/// What zstd writes into: the upload, or age over it.
enum Sink {
    Plain(Upload),
    Sealed(age::stream::StreamWriter<Upload>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Sealed(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Sealed(w) => w.flush(),
        }
    }
}

impl Sink {
    /// Ends the stream (age's last chunk) and hands back the upload.
    fn finish(self) -> std::io::Result<Upload> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Sealed(w) => w.finish(),
        }
    }
}

enum Message {
    Entry(String, Vec<u8>),
    Finish,
}

/// Streams `resources.tar.zst` into storage while entries are added.
pub struct ArchiveWriter {
    entries: std::sync::mpsc::SyncSender<Message>,
    packer: tokio::task::JoinHandle<std::io::Result<FileInfo>>,
    upload: tokio::task::JoinHandle<Result<ObjectMeta, StorageError>>,
    error_tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    /// Uncompressed bytes added so far.
    pub raw_bytes: u64,
}

impl ArchiveWriter {
    /// Starts writing `key`; encrypted to `sealed` when given.
    pub fn start(store: DynStore, key: String, sealed: Option<ArchiveKey>) -> Self {
        let (chunk_tx, chunk_rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
        let reader: ByteReader = Box::pin(tokio_util::io::StreamReader::new(
            tokio_stream::wrappers::ReceiverStream::new(chunk_rx),
        ));
        let upload = tokio::spawn(async move { store.put(&key, reader).await });
        let (entries, rx) = std::sync::mpsc::sync_channel::<Message>(256);
        let writer_tx = chunk_tx.clone();
        let packer = tokio::task::spawn_blocking(move || {
            let sink = ChannelWriter {
                tx: writer_tx,
                hasher: Sha256::new(),
                size: 0,
            };
            let buffered = std::io::BufWriter::with_capacity(1 << 20, sink);
            let sink = match &sealed {
                Some(archive_key) => Sink::Sealed(archive_key.encrypting(buffered)?),
                None => Sink::Plain(buffered),
            };
            let encoder = zstd::stream::write::Encoder::new(sink, ZSTD_LEVEL)?;
            let mut tar = tar::Builder::new(encoder);
            let mtime = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            loop {
                match rx.recv() {
                    Ok(Message::Entry(path, data)) => {
                        let mut header = tar::Header::new_gnu();
                        header.set_size(data.len() as u64);
                        header.set_mode(0o644);
                        header.set_mtime(mtime);
                        header.set_cksum();
                        tar.append_data(&mut header, &path, data.as_slice())?;
                    }
                    Ok(Message::Finish) => break,
                    // The engine gave up: stop without finishing the archive.
                    Err(_) => {
                        return Err(std::io::Error::other("the backup was abandoned"));
                    }
                }
            }
            let encoder = tar.into_inner()?;
            let buffered = encoder.finish()?.finish()?;
            let sink = buffered.into_inner().map_err(|e| e.into_error())?;
            Ok(FileInfo {
                size: sink.size,
                sha256: hex::encode(sink.hasher.finalize()),
            })
        });
        Self {
            entries,
            packer,
            upload,
            error_tx: chunk_tx,
            raw_bytes: 0,
        }
    }

    /// Adds files; waits while the packer is behind (back-pressure).
    pub async fn add_batch(&mut self, files: Vec<(String, Vec<u8>)>) -> Result<(), WriteError> {
        if files.is_empty() {
            return Ok(());
        }
        self.raw_bytes += files.iter().map(|(_, d)| d.len() as u64).sum::<u64>();
        let entries = self.entries.clone();
        tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .try_for_each(|(path, data)| entries.send(Message::Entry(path, data)))
        })
        .await?
        .map_err(|_| WriteError::Stopped)
    }

    /// Completes the archive and the upload.
    pub async fn finish(self) -> Result<FileInfo, WriteError> {
        let _ = self.entries.send(Message::Finish);
        drop(self.entries);
        let packed = self.packer.await?;
        let info = match packed {
            Ok(info) => info,
            Err(e) => {
                let _ = self
                    .error_tx
                    .send(Err(std::io::Error::other(e.to_string())))
                    .await;
                drop(self.error_tx);
                let uploaded = self.upload.await;
                return Err(match uploaded {
                    Ok(Err(upload_error)) => WriteError::Upload(upload_error),
                    _ => WriteError::Packing(e),
                });
            }
        };
        drop(self.error_tx);
        self.upload.await??;
        Ok(info)
    }

    /// Gives up: the upload fails, so no object becomes visible.
    pub async fn abort(self) {
        let _ = self
            .error_tx
            .send(Err(std::io::Error::other("the backup failed")))
            .await;
        drop(self.entries);
        drop(self.error_tx);
        let _ = self.packer.await;
        let _ = self.upload.await;
    }
}

/// Compresses a small file (the log) and returns it with its info.
pub fn compress(data: &[u8]) -> std::io::Result<(Vec<u8>, FileInfo)> {
    let compressed = zstd::stream::encode_all(data, ZSTD_LEVEL)?;
    let info = FileInfo {
        size: compressed.len() as u64,
        sha256: hex::encode(Sha256::digest(&compressed)),
    };
    Ok((compressed, info))
}
