//! One object as the archive holds it, read back for a restore, a
//! point-in-time replay or the contents browser.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One object read from the archive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// `deployments.apps`, `pods`.
    pub group_resource: String,
    /// Namespace in the backup (`None`: cluster-scoped).
    pub namespace: Option<String>,
    pub name: String,
    pub object: Value,
}

impl Item {
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }
}
