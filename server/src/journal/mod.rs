//! Continuous protection: a change journal per schedule, so resource state
//! can be restored as it was at any instant (`docs/JOURNAL.md`).
//!
//! - `writer.rs`: one writer per schedule with `continuous` (on the
//!   leader): a watch per protected resource type, entries buffered and
//!   written as segments (zstd, age when the location has a key), each
//!   followed by its manifest. Resumes from the cursors of the newest
//!   manifest; a 410 Gone, a cursor too old or entries dropped past the
//!   buffer bound become an explicit [`Entry::Gap`], bridged by a re-list.
//! - `replay.rs`: reading segments back (bounded, checked against their
//!   manifests) and replaying them over a base backup's objects up to an
//!   instant; the timeline reads through it too.
//! - `Journals` (here): the running writers, started and stopped with the
//!   schedules and leadership, and asked to flush before a restore reads.
//!
//! Layout under a location: `journal/<schedule>/<seq>.jsonl.zst` (a
//! segment: one [`Entry`] per line) and `journal/<schedule>/<seq>.json`
//! (its [`SegmentManifest`], written last: a segment without one is not
//! read).

pub mod replay;
pub mod timeline;
pub mod writer;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use writer::{Journals, Settings};

/// The journal's format version, in every manifest.
pub const FORMAT: u32 = 1;

/// The most a segment's stored object may be (compressed and sealed).
pub const MAX_SEGMENT_BYTES: u64 = 64 << 20;
/// The most a segment may expand to when read.
pub const MAX_SEGMENT_RAW_BYTES: u64 = 512 << 20;
/// The most a segment manifest may be.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The most one journal line may be (a Kubernetes object is at most
/// 1.5 MiB in etcd; a re-list's key list can be longer).
pub const MAX_LINE_BYTES: usize = 32 << 20;

/// The prefix of one schedule's journal.
pub fn prefix(schedule: &str) -> String {
    format!("journal/{schedule}/")
}

/// The key of segment `seq`'s data.
pub fn segment_key(schedule: &str, seq: u64) -> String {
    format!("journal/{schedule}/{seq:012}.jsonl.zst")
}

/// The key of a segment's manifest: its sequence number and the window
/// it covers (Unix milliseconds), so a listing tells which segments an
/// instant needs without reading them.
pub fn manifest_key(schedule: &str, manifest: &SegmentManifest) -> String {
    format!(
        "journal/{schedule}/{:012}-{}-{}.json",
        manifest.seq,
        manifest.from.timestamp_millis(),
        manifest.to.timestamp_millis()
    )
}

/// A manifest's key read back: (seq, from, to); `None` for any other key.
pub fn parse_manifest_key(key: &str) -> Option<(u64, DateTime<Utc>, DateTime<Utc>)> {
    let name = key.rsplit('/').next()?.strip_suffix(".json")?;
    let mut parts = name.split('-');
    let seq = parts.next()?.parse().ok()?;
    let from = DateTime::from_timestamp_millis(parts.next()?.parse().ok()?)?;
    let to = DateTime::from_timestamp_millis(parts.next()?.parse().ok()?)?;
    parts.next().is_none().then_some((seq, from, to))
}

/// What happened to an object.
pub use frontend::model::Op;

/// One line of a segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Entry {
    /// An object's new state (its last state for a delete), as the API
    /// served it, minus `managedFields`.
    #[serde(rename_all = "camelCase")]
    Change {
        at: DateTime<Utc>,
        op: Op,
        group_resource: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
        resource_version: String,
        /// The `managedFields` manager of the newest change, and its
        /// operation (`Update`, `Apply`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manager: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
        object: Value,
    },
    /// A (re-)list of a resource type ended: its objects are exactly these
    /// (each recorded just before as [`Op::Listed`]); any other is gone.
    #[serde(rename_all = "camelCase")]
    Listed {
        at: DateTime<Utc>,
        group_resource: String,
        /// `namespace/name` (or `name`) of every object listed.
        keys: Vec<String>,
    },
    /// Changes between `from` and `to` are unknown for this resource type
    /// (`*`: every type): the state at an instant inside is the state
    /// before it, and exact again from `to` (a re-list follows).
    #[serde(rename_all = "camelCase")]
    Gap {
        group_resource: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        reason: String,
    },
}

impl Entry {
    /// When it was recorded (a gap: its end).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Change { at, .. } | Self::Listed { at, .. } => *at,
            Self::Gap { to, .. } => *to,
        }
    }
}

/// Which kind of [`Entry`] a [`Line`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LineKind {
    Change,
    Listed,
    Gap,
}

/// An [`Entry`] as read back, its object left unparsed until it is needed
/// (a replay parses only each object's last state; the timeline none).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    #[serde(rename = "type")]
    pub kind: LineKind,
    pub group_resource: String,
    pub at: Option<DateTime<Utc>>,
    pub op: Option<Op>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub resource_version: Option<String>,
    pub manager: Option<String>,
    pub operation: Option<String>,
    pub object: Option<Box<serde_json::value::RawValue>>,
    pub keys: Option<Vec<String>>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

impl Line {
    /// The gap it records, when it is one (and whole).
    pub fn gap(&self) -> Option<Gap> {
        (self.kind == LineKind::Gap).then_some(())?;
        Some(Gap {
            group_resource: self.group_resource.clone(),
            from: self.from?,
            to: self.to?,
            reason: self.reason.clone().unwrap_or_default(),
        })
    }

    /// The object's `kind`, read from the unparsed object.
    pub fn object_kind(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Kind {
            kind: Option<String>,
        }
        serde_json::from_str::<Kind>(self.object.as_ref()?.get())
            .ok()?
            .kind
    }
}

/// A gap as manifests and plans show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    pub group_resource: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub reason: String,
}

/// What is written after a segment: how to check it, what it covers, and
/// where the watches stood (the cursors a restarted writer resumes from).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentManifest {
    pub format: u32,
    pub schedule: String,
    pub seq: u64,
    /// The first and last instants it covers.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub entries: u64,
    /// Changes among them (the rest are list ends and gaps).
    pub changes: u64,
    /// The stored object's size and SHA-256 (hex).
    pub size: u64,
    pub sha256: String,
    /// Set when the segment is sealed with the location's key.
    #[serde(default)]
    pub encryption: Option<crate::archive::crypto::Encryption>,
    /// Resource type → the resourceVersion its watch had reached.
    pub cursors: BTreeMap<String, String>,
    /// The gaps recorded in this segment.
    #[serde(default)]
    pub gaps: Vec<Gap>,
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("journal segment {key} is damaged: {message}")]
    Damaged { key: String, message: String },
    #[error("journal segment {key} is encrypted and the location's key is not available")]
    NoKey { key: String },
    #[error(transparent)]
    Crypto(#[from] crate::archive::crypto::CryptoError),
    #[error("finding the resource types to watch: {0}")]
    Discovery(#[from] crate::backup::engine::EngineError),
    #[error("the location's key: {0}")]
    Key(#[from] crate::volumes::KeyError),
}

/// The `managedFields` entry changed last: its manager and operation.
pub fn last_manager(object: &Value) -> (Option<String>, Option<String>) {
    let newest = object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .max_by(|a, b| {
            a["time"]
                .as_str()
                .unwrap_or_default()
                .cmp(b["time"].as_str().unwrap_or_default())
        });
    match newest {
        Some(m) => (
            m["manager"].as_str().map(String::from),
            m["operation"].as_str().map(String::from),
        ),
        None => (None, None),
    }
}

/// Retention: deletes the segments of `schedule`'s journal that end before
/// `keep_from` (the start of its oldest backup kept: nothing older can be
/// replayed), all of them with `None`. The manifest goes first, so a
/// deletion cut short leaves no segment that would be read. Returns how
/// many segments went.
pub async fn forget_before(
    store: &crate::storage::DynStore,
    schedule: &str,
    keep_from: Option<DateTime<Utc>>,
) -> Result<u64, JournalError> {
    let mut deleted = 0;
    for segment in replay::list_segments(store, schedule).await? {
        if keep_from.is_some_and(|from| segment.to >= from) {
            continue;
        }
        store.delete(&segment.key).await?;
        store.delete(&segment_key(schedule, segment.seq)).await?;
        deleted += 1;
    }
    Ok(deleted)
}

/// The schedules that have a journal in `store`.
pub async fn journaled_schedules(
    store: &crate::storage::DynStore,
) -> Result<std::collections::BTreeSet<String>, JournalError> {
    Ok(crate::storage::list_all(store.as_ref(), "journal/")
        .await?
        .into_iter()
        .filter_map(|o| o.key.split('/').nth(1).map(String::from))
        .collect())
}

/// Now, to the millisecond: the journal's precision (instants are written
/// and asked for in RFC 3339 with milliseconds).
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// `namespace/name`, or `name` for a cluster-scoped object.
pub fn object_key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// Why what a journal writer holds is not all in storage.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unwritten {
    #[error("{0} journal segment(s) are waiting for storage to come back")]
    Waiting(usize),
    #[error("the journal writer did not answer within 30 s")]
    NoAnswer,
}

/// A writer's answer to a flush: `Err` says why not all it held is in storage.
pub(crate) type FlushReply = tokio::sync::oneshot::Sender<Result<(), Unwritten>>;
/// A flush request: whether to write a segment even when nothing changed
/// (so the journal's window reaches now), and where to answer.
pub(crate) type FlushRequest = (bool, FlushReply);

/// Flush requests for the writers running in this process, by location
/// (its store's description) and schedule.
static FLUSHERS: std::sync::LazyLock<
    Mutex<HashMap<String, tokio::sync::mpsc::Sender<FlushRequest>>>,
> = std::sync::LazyLock::new(Mutex::default);

fn flushers()
-> std::sync::MutexGuard<'static, HashMap<String, tokio::sync::mpsc::Sender<FlushRequest>>> {
    FLUSHERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The registry's key of a writer.
fn flusher_key(store: &dyn crate::storage::ObjectStore, schedule: &str) -> String {
    format!("{}\n{schedule}", store.describe())
}

/// Asks the schedule's writer into `store`, when it runs in this process,
/// to write what it holds now (a restore to an instant, `force`: even when
/// nothing changed, reads the journal right after; the timeline reads what
/// changed). `Err` says why what it holds is not all in storage.
pub async fn flush(
    store: &dyn crate::storage::ObjectStore,
    schedule: &str,
    force: bool,
) -> Result<(), Unwritten> {
    let Some(tx) = flushers().get(&flusher_key(store, schedule)).cloned() else {
        return Ok(());
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    if tx.send((force, done_tx)).await.is_err() {
        return Ok(());
    }
    match tokio::time::timeout(std::time::Duration::from_secs(30), done_rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Ok(()),
        Err(_) => Err(Unwritten::NoAnswer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_read_back_as_written() {
        let at = DateTime::parse_from_rfc3339("2026-11-29T14:32:07.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let entries = [
            Entry::Change {
                at,
                op: Op::Modified,
                group_resource: "configmaps".into(),
                namespace: Some("shop".into()),
                name: "settings".into(),
                resource_version: "42".into(),
                manager: Some("kubectl-client-side-apply".into()),
                operation: Some("Update".into()),
                object: json!({"data": {"a": "1"}}),
            },
            Entry::Listed {
                at,
                group_resource: "configmaps".into(),
                keys: vec!["shop/settings".into()],
            },
            Entry::Gap {
                group_resource: "*".into(),
                from: at,
                to: at,
                reason: "watch expired".into(),
            },
        ];
        for e in entries {
            let line = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), e, "{line}");
            // Read back lazily: the same fields, the object unparsed.
            let lazy: Line = serde_json::from_str(&line).unwrap();
            assert_eq!(lazy.at.or(lazy.to), Some(e.at()), "{line}");
            if let Entry::Change { object, .. } = &e {
                let raw = lazy.object.as_ref().unwrap().get();
                assert_eq!(serde_json::from_str::<Value>(raw).unwrap(), *object);
            }
        }
    }

    #[test]
    fn manifest_keys_name_their_window() {
        let at = |ms| DateTime::from_timestamp_millis(ms).unwrap();
        let m = SegmentManifest {
            format: FORMAT,
            schedule: "nightly".into(),
            seq: 7,
            from: at(1_764_426_727_250),
            to: at(1_764_426_787_000),
            entries: 0,
            changes: 0,
            size: 0,
            sha256: String::new(),
            encryption: None,
            cursors: BTreeMap::new(),
            gaps: Vec::new(),
        };
        let key = manifest_key("nightly", &m);
        assert_eq!(
            key,
            "journal/nightly/000000000007-1764426727250-1764426787000.json"
        );
        assert_eq!(parse_manifest_key(&key), Some((7, m.from, m.to)));
        for other in [
            segment_key("nightly", 7).as_str(),
            "journal/nightly/7-1-2-3.json",
            "journal/nightly/x-1-2.json",
        ] {
            assert_eq!(parse_manifest_key(other), None, "{other}");
        }
    }

    #[test]
    fn the_newest_managed_fields_entry_names_the_manager() {
        let object = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-11-29T10:00:00Z"},
            {"manager": "helm", "operation": "Apply", "time": "2026-11-29T14:32:07Z"},
            {"manager": "kube-controller-manager", "operation": "Update", "time": "2026-11-29T11:00:00Z"}]}});
        assert_eq!(
            last_manager(&object),
            (Some("helm".into()), Some("Apply".into()))
        );
        assert_eq!(last_manager(&json!({})), (None, None));
    }
}
