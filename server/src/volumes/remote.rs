//! How an agent reaches the server: its bearer token (the projected
//! ServiceAccount token, re-read as the kubelet rotates it) and the volume
//! repository through the server (`RemoteStore`), so agents hold no storage
//! credentials and every byte goes through the location's one S3 client.

use std::path::PathBuf;

use async_trait::async_trait;
use futures::TryStreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::storage::{
    Availability, ByteRange, ByteReader, ListPage, ObjectMeta, ObjectStore, Result, StorageError,
};

/// Where the agent's bearer token comes from.
#[derive(Clone, Debug)]
pub enum TokenSource {
    Fixed(String),
    /// A file re-read for every request (a projected token rotates).
    File(PathBuf),
}

impl TokenSource {
    pub fn token(&self) -> std::io::Result<String> {
        match self {
            TokenSource::Fixed(token) => Ok(token.clone()),
            TokenSource::File(path) => Ok(std::fs::read_to_string(path)?.trim().to_string()),
        }
    }
}

/// The server's API as an agent uses it.
#[derive(Clone, Debug)]
pub struct AgentClient {
    pub http: reqwest::Client,
    /// `https://lifeboat.lifeboat.svc:8443`, without a trailing slash.
    pub server: String,
    pub token: TokenSource,
}

impl AgentClient {
    pub fn request(&self, method: Method, path: &str) -> std::io::Result<RequestBuilder> {
        let token = self.token.token()?;
        Ok(self
            .http
            .request(method, format!("{}{path}", self.server))
            .bearer_auth(token))
    }
}

/// A page of the repository endpoint's listing.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteListPage {
    pub objects: Vec<RemoteObject>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RemoteObject {
    pub key: String,
    pub size: u64,
}

/// The volume repository of one location, through the server.
pub struct RemoteStore {
    client: AgentClient,
    location: String,
}

impl RemoteStore {
    pub fn new(client: AgentClient, location: &str) -> Self {
        RemoteStore {
            client,
            location: location.to_string(),
        }
    }

    fn path(&self, key: &str) -> String {
        format!("/api/v1/agent/repository/{}/{key}", self.location)
    }

    fn unreachable(&self, err: impl std::fmt::Display) -> StorageError {
        StorageError::Unreachable {
            endpoint: self.client.server.clone(),
            message: err.to_string(),
        }
    }

    async fn send(&self, builder: std::io::Result<RequestBuilder>, key: &str) -> Result<Response> {
        let builder = builder.map_err(|source| StorageError::Io {
            operation: "reading the agent's token",
            path: key.to_string(),
            source,
        })?;
        let response = builder.send().await.map_err(|e| self.unreachable(e))?;
        match response.status() {
            s if s.is_success() => Ok(response),
            StatusCode::NOT_FOUND => Err(StorageError::NotFound {
                key: key.to_string(),
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let message = response.text().await.unwrap_or_default();
                Err(StorageError::AccessDenied { message })
            }
            status => {
                let message = response.text().await.unwrap_or_default();
                Err(StorageError::Server {
                    operation: "the repository endpoint",
                    message: format!("{status}: {message}"),
                })
            }
        }
    }
}

#[async_trait]
impl ObjectStore for RemoteStore {
    fn describe(&self) -> String {
        format!(
            "the volume repository of location `{}` through {}",
            self.location, self.client.server
        )
    }

    async fn put(&self, key: &str, body: ByteReader) -> Result<ObjectMeta> {
        let stream = ReaderStream::new(body);
        let request = self
            .client
            .request(Method::PUT, &self.path(key))
            .map(|b| b.body(reqwest::Body::wrap_stream(stream)));
        let stored: RemoteObject = self
            .send(request, key)
            .await?
            .json()
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(ObjectMeta {
            key: stored.key,
            size: stored.size,
            last_modified: None,
        })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteReader> {
        let mut request = self.client.request(Method::GET, &self.path(key));
        if let Some(range) = range {
            let header = match range.end {
                Some(end) => format!("bytes={}-{}", range.start, end.saturating_sub(1)),
                None => format!("bytes={}-", range.start),
            };
            request = request.map(|b| b.header(reqwest::header::RANGE, header));
        }
        let response = self.send(request, key).await?;
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        Ok(Box::pin(StreamReader::new(stream)))
    }

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<String>,
        max_keys: usize,
    ) -> Result<ListPage> {
        let mut query = vec![
            ("prefix", prefix.to_string()),
            ("max", max_keys.to_string()),
        ];
        if let Some(token) = continuation {
            query.push(("continuation", token));
        }
        let request = self
            .client
            .request(
                Method::GET,
                &format!("/api/v1/agent/repository/{}", self.location),
            )
            .map(|b| b.query(&query));
        let page: RemoteListPage = self
            .send(request, prefix)
            .await?
            .json()
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(ListPage {
            objects: page
                .objects
                .into_iter()
                .map(|o| ObjectMeta {
                    key: o.key,
                    size: o.size,
                    last_modified: None,
                })
                .collect(),
            next: page.next,
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let response = self
            .send(self.client.request(Method::HEAD, &self.path(key)), key)
            .await?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: response.content_length().unwrap_or(0),
            last_modified: None,
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        // Agents never delete: pruning runs on the server's leader.
        Err(StorageError::AccessDenied {
            message: format!("agents may not delete `{key}` from the repository"),
        })
    }

    async fn check(&self) -> Availability {
        match self.list("volumes/keys/", None, 1).await {
            Ok(_) => Availability::Available,
            Err(e) => Availability::Unavailable {
                reason: e.to_string(),
            },
        }
    }
}
