//! S3-compatible object storage through `aws-sdk-s3`.
//!
//! Tested against Garage (and usable with Ceph RGW and AWS): path-style
//! addressing by default, and checksums computed only when an operation
//! requires one, because several S3 servers reject the SDK's default
//! aws-chunked uploads with a trailing checksum.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ObjectLockEnabled, ObjectLockRetention,
    ObjectLockRetentionMode,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Availability, ByteRange, ByteReader, ListPage, LockMode, MULTIPART_PART_SIZE, ObjectMeta,
    ObjectStore, Result, StorageError, fill_chunk, validate_key, validate_prefix,
};

/// When the client computes request checksums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    /// Only when an operation requires one: works with Garage, Ceph RGW and AWS.
    #[default]
    WhenRequired,
    /// The SDK's default (aws-chunked uploads with trailing checksums): AWS only.
    WhenSupported,
}

/// Everything needed to reach a bucket.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// `http(s)://host:port`; `None` means AWS's own endpoint for the region.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Prepended to every key; empty or ending without `/` (one is added).
    pub prefix: String,
    pub path_style: bool,
    /// Static credentials; when absent, the AWS default chain (environment, profile) is used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub checksum: ChecksumMode,
    /// An immutable location: backups are locked with this mode, and a
    /// delete removes every version of a key (the bucket is versioned).
    pub object_lock: Option<LockMode>,
}

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: String,
    object_lock: Option<LockMode>,
}

impl S3Store {
    pub async fn new(settings: S3Settings) -> Result<Self> {
        crate::install_crypto_provider();
        let mut builder = match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => aws_sdk_s3::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(Credentials::new(
                    id.clone(),
                    secret.clone(),
                    None,
                    None,
                    "lifeboat-storage-location",
                )),
            _ => {
                let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
                aws_sdk_s3::config::Builder::from(&shared)
            }
        };
        let (request_checksum, response_checksum) = match settings.checksum {
            ChecksumMode::WhenRequired => (
                RequestChecksumCalculation::WhenRequired,
                ResponseChecksumValidation::WhenRequired,
            ),
            ChecksumMode::WhenSupported => (
                RequestChecksumCalculation::WhenSupported,
                ResponseChecksumValidation::WhenSupported,
            ),
        };
        builder = builder
            .region(Region::new(settings.region.clone()))
            .force_path_style(settings.path_style)
            .request_checksum_calculation(request_checksum)
            .response_checksum_validation(response_checksum)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let prefix = match settings.prefix.trim_matches('/') {
            "" => String::new(),
            p => {
                validate_key(p)?;
                format!("{p}/")
            }
        };
        Ok(Self {
            client: Client::from_conf(builder.build()),
            bucket: settings.bucket,
            prefix,
            endpoint: settings
                .endpoint
                .unwrap_or_else(|| format!("AWS S3 ({})", settings.region)),
            object_lock: settings.object_lock,
        })
    }

    /// Deletes every version of `full_key` and its delete markers: on a
    /// versioned (object-lock) bucket a plain DELETE only hides an object.
    /// A version still under retention is refused by the store.
    async fn delete_versions(&self, key: &str, full_key: &str) -> Result<()> {
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(full_key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| self.map_err("ListObjectVersions", None, e))?;
            let versions = out
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(
                    out.delete_markers()
                        .iter()
                        .map(|m| (m.key(), m.version_id())),
                );
            for (k, version) in versions {
                if k != Some(full_key) {
                    continue;
                }
                let deleted = self
                    .client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(full_key)
                    .set_version_id(version.map(str::to_string))
                    .send()
                    .await;
                if let Err(e) = deleted {
                    return Err(match self.map_err("DeleteObject", None, e) {
                        StorageError::AccessDenied { message } => StorageError::Locked {
                            key: key.to_string(),
                            message,
                        },
                        other => other,
                    });
                }
            }
            if !out.is_truncated().unwrap_or(false) {
                return Ok(());
            }
            key_marker = out.next_key_marker().map(str::to_string);
            version_marker = out.next_version_id_marker().map(str::to_string);
        }
    }

    fn full_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    /// Turns an SDK error into a [`StorageError`] that says what to do.
    fn map_err<E>(
        &self,
        operation: &'static str,
        key: Option<&str>,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string);
        let message = err
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| describe_chain(&err));
        match (&err, status, code.as_deref()) {
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _, _) => {
                StorageError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    message: describe_chain(&err),
                }
            }
            (_, _, Some("NoSuchBucket")) => StorageError::NoSuchBucket {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
            },
            (_, _, Some("NoSuchKey" | "NotFound")) | (_, Some(404), _) if key.is_some() => {
                StorageError::NotFound {
                    key: key.unwrap_or_default().to_string(),
                }
            }
            (_, Some(404), _) => StorageError::NoSuchBucket {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
            },
            (
                _,
                _,
                Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied" | "Forbidden"),
            )
            | (_, Some(401 | 403), _) => StorageError::AccessDenied {
                message: code.map_or(message.clone(), |c| format!("{c}: {message}")),
            },
            _ => StorageError::Server {
                operation,
                message: match (status, code) {
                    (Some(s), Some(c)) => format!("HTTP {s} {c}: {message}"),
                    (Some(s), None) => format!("HTTP {s}: {message}"),
                    _ => message,
                },
            },
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        full_key: &str,
        first: Vec<u8>,
        body: &mut ByteReader,
    ) -> Result<()> {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full_key)
            .send()
            .await
            .map_err(|e| self.map_err("CreateMultipartUpload", None, e))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_string();
        let result = self.upload_parts(full_key, &upload_id, first, body).await;
        match result {
            Ok(parts) => {
                let done = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full_key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await;
                if let Err(e) = done {
                    self.abort(full_key, &upload_id).await;
                    return Err(self.map_err("CompleteMultipartUpload", Some(key), e));
                }
                Ok(())
            }
            Err(e) => {
                self.abort(full_key, &upload_id).await;
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        full_key: &str,
        upload_id: &str,
        first: Vec<u8>,
        body: &mut ByteReader,
    ) -> Result<Vec<CompletedPart>> {
        let mut parts = Vec::new();
        let mut chunk = first;
        let mut part_number = 1;
        loop {
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(full_key)
                .upload_id(upload_id)
                .part_number(part_number)
                .body(ByteStream::from(Bytes::from(chunk)))
                .send()
                .await
                .map_err(|e| self.map_err("UploadPart", None, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(part_number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
            // Once the reader has ended, the next fill comes back empty and we stop.
            let mut next = Vec::with_capacity(MULTIPART_PART_SIZE);
            fill_chunk(body, &mut next, MULTIPART_PART_SIZE)
                .await
                .map_err(StorageError::Source)?;
            if next.is_empty() {
                return Ok(parts);
            }
            chunk = next;
            part_number += 1;
        }
    }

    /// Best effort: an aborted upload leaves no object; a failed abort is cleaned
    /// up by the bucket's lifecycle rules, and no object is visible either way.
    async fn abort(&self, full_key: &str, upload_id: &str) {
        if let Err(e) = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(full_key)
            .upload_id(upload_id)
            .send()
            .await
        {
            tracing::warn!(key = full_key, error = %describe_chain(&e), "aborting a multipart upload failed");
        }
    }
}

fn describe_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn to_chrono(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{} at {}", self.bucket, self.prefix, self.endpoint)
    }

    async fn put(&self, key: &str, mut body: ByteReader) -> Result<ObjectMeta> {
        let full_key = self.full_key(key)?;
        let mut first = Vec::with_capacity(MULTIPART_PART_SIZE);
        let ended = fill_chunk(&mut body, &mut first, MULTIPART_PART_SIZE)
            .await
            .map_err(StorageError::Source)?;
        if ended {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&full_key)
                .body(ByteStream::from(first))
                .send()
                .await
                .map_err(|e| self.map_err("PutObject", None, e))?;
        } else {
            self.put_multipart(key, &full_key, first, &mut body).await?;
        }
        self.head(key).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteReader> {
        let full_key = self.full_key(key)?;
        let range = range.map(|r| match r.end {
            Some(end) => format!("bytes={}-{}", r.start, end.saturating_sub(1)),
            None => format!("bytes={}-", r.start),
        });
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .set_range(range)
            .send()
            .await
            .map_err(|e| self.map_err("GetObject", Some(key), e))?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<String>,
        max_keys: usize,
    ) -> Result<ListPage> {
        validate_prefix(prefix)?;
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.prefix))
            .set_continuation_token(continuation)
            .max_keys(i32::try_from(max_keys.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| self.map_err("ListObjectsV2", None, e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                let key = o.key()?.strip_prefix(&self.prefix)?.to_string();
                Some(ObjectMeta {
                    key,
                    size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    last_modified: to_chrono(o.last_modified()),
                })
            })
            .collect();
        let next = if out.is_truncated().unwrap_or(false) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let full_key = self.full_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await
            .map_err(|e| self.map_err("HeadObject", Some(key), e))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0),
            last_modified: to_chrono(out.last_modified()),
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full_key = self.full_key(key)?;
        if self.object_lock.is_some() {
            return self.delete_versions(key, &full_key).await;
        }
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await
            .map_err(|e| self.map_err("DeleteObject", None, e))?;
        Ok(())
    }

    async fn check(&self) -> Availability {
        let result = async {
            self.client
                .head_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map_err(|e| self.map_err("HeadBucket", None, e))?;
            let probe = format!(".lifeboat-probe-{}", uuid::Uuid::new_v4());
            super::put_bytes(self, &probe, b"lifeboat".to_vec()).await?;
            self.delete(&probe).await
        }
        .await;
        match result {
            Ok(()) => Availability::Available,
            Err(e) => Availability::Unavailable {
                reason: e.to_string(),
            },
        }
    }

    fn lock_mode(&self) -> Option<LockMode> {
        self.object_lock
    }

    async fn object_lock_enabled(&self) -> Result<bool> {
        match self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                == Some(&ObjectLockEnabled::Enabled)),
            // AWS and Ceph RGW: a bucket created without object lock.
            Err(e) if e.code() == Some("ObjectLockConfigurationNotFoundError") => Ok(false),
            Err(e) => Err(self.map_err("GetObjectLockConfiguration", None, e)),
        }
    }

    async fn retain(&self, key: &str, mode: LockMode, until: DateTime<Utc>) -> Result<()> {
        let full_key = self.full_key(key)?;
        let mode = match mode {
            LockMode::Governance => ObjectLockRetentionMode::Governance,
            LockMode::Compliance => ObjectLockRetentionMode::Compliance,
        };
        // Whole seconds, rounded up: never a moment before the date asked for.
        let until = aws_smithy_types::DateTime::from_secs(
            until.timestamp() + i64::from(until.timestamp_subsec_nanos() > 0),
        );
        self.client
            .put_object_retention()
            .bucket(&self.bucket)
            .key(&full_key)
            .retention(
                ObjectLockRetention::builder()
                    .mode(mode)
                    .retain_until_date(until)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.map_err("PutObjectRetention", Some(key), e))?;
        Ok(())
    }
}
