//! Listing a resource a page at a time, shared by the engines (backup
//! reads every object; a restore plan reads what exists).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::api::{DynamicObject, ListParams};
use kube::discovery::ApiResource;
use serde_json::Value;

/// Objects per list call.
pub const PAGE_SIZE: u32 = 500;

type PageResult = Result<(Value, ListParams), kube::Error>;

/// One resource's objects, a page at a time: the page being written and the
/// next one being fetched are all that is in memory. Pages are read as plain
/// JSON, so objects reach the archive as the API returned them, parsed once.
pub struct Pager {
    client: kube::Client,
    path: String,
    first: Option<ListParams>,
    pending: Option<tokio::task::JoinHandle<PageResult>>,
    api_version: String,
    kind: String,
    calls: Arc<AtomicU64>,
    /// The list's resourceVersion (from its first page): where a watch of
    /// what was listed starts.
    resource_version: Option<String>,
}

impl Pager {
    pub fn new(
        client: &kube::Client,
        calls: Arc<AtomicU64>,
        ar: &ApiResource,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Self {
        use kube::Resource;
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if let Some(sel) = selector {
            params = params.labels(sel);
        }
        Self {
            client: client.clone(),
            path: DynamicObject::url_path(ar, namespace),
            first: Some(params),
            pending: None,
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            calls,
            resource_version: None,
        }
    }

    fn fetch(&mut self, params: ListParams) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let client = self.client.clone();
        let path = self.path.clone();
        self.pending = Some(tokio::spawn(async move {
            let request = kube::core::Request::new(path)
                .list(&params)
                .map_err(kube::Error::BuildRequest)?;
            let page: Value = client.request(request).await?;
            Ok((page, params))
        }));
    }

    /// The next page (objects as the API returned them, minus managedFields),
    /// or `None` at the end. The page after it is already being fetched.
    pub async fn next(&mut self) -> Result<Option<Vec<Value>>, kube::Error> {
        if let Some(params) = self.first.take() {
            self.fetch(params);
        }
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        let (mut page, params) = pending
            .await
            .map_err(|e| kube::Error::Service(Box::new(e)))??;
        if self.resource_version.is_none() {
            self.resource_version = page["metadata"]["resourceVersion"]
                .as_str()
                .map(String::from);
        }
        if let Some(token) = page["metadata"]["continue"]
            .as_str()
            .filter(|c| !c.is_empty())
        {
            self.fetch(params.continue_token(token));
        }
        let items = match page.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        Ok(Some(
            items
                .into_iter()
                .map(|mut obj| {
                    if let Some(meta) = obj["metadata"].as_object_mut() {
                        meta.remove("managedFields");
                    }
                    // List items come without their type; the archive keeps it.
                    obj["apiVersion"] = Value::String(self.api_version.clone());
                    obj["kind"] = Value::String(self.kind.clone());
                    obj
                })
                .collect(),
        ))
    }
}

impl Pager {
    /// The list's resourceVersion, once its first page was read.
    pub fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            p.abort();
        }
    }
}
