//! The server's clock, in the form Kubernetes writes timestamps.

use chrono::{SecondsFormat, Utc};

/// Now, as `creationTimestamp` and the like hold it (RFC 3339, seconds).
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}
