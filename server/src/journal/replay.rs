//! Reading a journal back: segments listed by their manifests' keys, each
//! read bounded and checked against its manifest (size, SHA-256, then
//! decrypted and decompressed with a cap), and replayed over a base
//! backup's objects up to an instant (`replay`, pure).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read};

use futures::StreamExt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Gap, JournalError, Line, LineKind, Op, SegmentManifest};
use crate::archive::ArchiveKey;
use crate::archive::Item;
use crate::storage::{DynStore, read_capped};

/// One schedule's journal in a location, and the key to read it.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub store: &'a DynStore,
    pub schedule: &'a str,
    pub key: Option<&'a ArchiveKey>,
}

/// A segment as its manifest's key names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The manifest's key.
    pub key: String,
    pub seq: u64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Every segment with a manifest, oldest first.
pub async fn list_segments(store: &DynStore, schedule: &str) -> Result<Vec<Listed>, JournalError> {
    let mut listed: Vec<Listed> =
        crate::storage::list_all(store.as_ref(), &super::prefix(schedule))
            .await?
            .into_iter()
            .filter_map(|o| {
                let (seq, from, to) = super::parse_manifest_key(&o.key)?;
                Some(Listed {
                    key: o.key,
                    seq,
                    from,
                    to,
                })
            })
            .collect();
    listed.sort_by_key(|l| l.seq);
    Ok(listed)
}

/// A manifest, read bounded.
pub async fn read_manifest(store: &DynStore, key: &str) -> Result<SegmentManifest, JournalError> {
    let bytes = read_capped(store.as_ref(), key, None, super::MAX_MANIFEST_BYTES).await?;
    let manifest: SegmentManifest =
        serde_json::from_slice(&bytes).map_err(|e| JournalError::Damaged {
            key: key.to_string(),
            message: format!("the manifest is not JSON of this version: {e}"),
        })?;
    if manifest.format != super::FORMAT {
        return Err(JournalError::Damaged {
            key: key.to_string(),
            message: format!(
                "journal format {} is not one this Lifeboat reads ({})",
                manifest.format,
                super::FORMAT
            ),
        });
    }
    Ok(manifest)
}

/// A segment's lines, checked against its manifest first.
pub async fn read_segment(
    store: &DynStore,
    manifest: &SegmentManifest,
    key: Option<&ArchiveKey>,
) -> Result<Vec<Line>, JournalError> {
    let data_key = super::segment_key(&manifest.schedule, manifest.seq);
    let damaged = |message: String| JournalError::Damaged {
        key: data_key.clone(),
        message,
    };
    let bytes = read_capped(store.as_ref(), &data_key, None, super::MAX_SEGMENT_BYTES).await?;
    if bytes.len() as u64 != manifest.size {
        return Err(damaged(format!(
            "{} bytes where its manifest says {}",
            bytes.len(),
            manifest.size
        )));
    }
    if hex::encode(Sha256::digest(&bytes)) != manifest.sha256 {
        return Err(damaged("its SHA-256 is not its manifest's".into()));
    }
    let key = key.cloned();
    let encryption = manifest.encryption.clone();
    let decoded =
        tokio::task::spawn_blocking(move || decode(&bytes, encryption.as_ref(), key.as_ref()))
            .await
            .map_err(|e| damaged(e.to_string()))?;
    decoded.map_err(|e| match e {
        Decode::NoKey => JournalError::NoKey {
            key: data_key.clone(),
        },
        Decode::Crypto(c) => JournalError::Crypto(c),
        Decode::Bad(m) => damaged(m),
    })
}

enum Decode {
    NoKey,
    Crypto(crate::archive::crypto::CryptoError),
    Bad(String),
}

fn decode(
    bytes: &[u8],
    encryption: Option<&crate::archive::crypto::Encryption>,
    key: Option<&ArchiveKey>,
) -> Result<Vec<Line>, Decode> {
    let plain: Box<dyn Read + '_> = match encryption {
        Some(enc) => {
            let key = key.ok_or(Decode::NoKey)?;
            Box::new(key.decrypting(bytes, enc).map_err(Decode::Crypto)?)
        }
        None => Box::new(bytes),
    };
    let decoder =
        zstd::stream::read::Decoder::new(plain).map_err(|e| Decode::Bad(e.to_string()))?;
    let mut reader = std::io::BufReader::new(decoder.take(super::MAX_SEGMENT_RAW_BYTES + 1));
    let mut entries = Vec::new();
    let mut line = Vec::new();
    let mut total = 0u64;
    loop {
        line.clear();
        let n = reader
            .by_ref()
            .take(super::MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Decode::Bad(format!("it does not decompress: {e}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > super::MAX_SEGMENT_RAW_BYTES {
            return Err(Decode::Bad(format!(
                "it expands past {} MiB",
                super::MAX_SEGMENT_RAW_BYTES >> 20
            )));
        }
        if n > super::MAX_LINE_BYTES {
            return Err(Decode::Bad(format!(
                "a line is longer than {} MiB",
                super::MAX_LINE_BYTES >> 20
            )));
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.is_empty() {
            continue;
        }
        let entry: Line = serde_json::from_slice(text).map_err(|e| {
            Decode::Bad(format!(
                "entry {} is not a journal entry: {e}",
                entries.len() + 1
            ))
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// What a replay did, as the plan shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The instant restored to.
    pub at: Option<DateTime<Utc>>,
    /// The full backup it rests on, and when that began.
    pub base: String,
    pub base_started_at: Option<DateTime<Utc>>,
    pub segments_read: u64,
    /// Changes applied over the base (up to the instant).
    pub changes_applied: u64,
    /// The journal's window: from its first entry to its last written one.
    pub journal_from: Option<DateTime<Utc>>,
    pub journal_to: Option<DateTime<Utc>>,
    /// Windows between the base and the instant whose changes are unknown.
    pub gaps: Vec<Gap>,
    /// Where volume data comes from: the base backup's snapshots.
    pub volumes_from: Option<String>,
    /// Why the newest changes may be missing (the writer's segments still
    /// waiting for storage).
    pub unwritten: Option<String>,
}

impl Report {
    /// As the plan shows it.
    pub fn view(&self) -> frontend::model::PointInTime {
        let instant = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        frontend::model::PointInTime {
            at: self.at.as_ref().map(instant),
            base: self.base.clone(),
            base_started_at: self.base_started_at.as_ref().map(instant),
            segments_read: self.segments_read,
            changes_applied: self.changes_applied,
            journal_from: self.journal_from.as_ref().map(instant),
            journal_to: self.journal_to.as_ref().map(instant),
            gaps: self
                .gaps
                .iter()
                .map(|g| frontend::model::GapView {
                    group_resource: g.group_resource.clone(),
                    from: instant(&g.from),
                    to: instant(&g.to),
                    reason: g.reason.clone(),
                })
                .collect(),
            volumes_from: self.volumes_from.clone(),
            unwritten: self.unwritten.clone(),
        }
    }
}

/// An object during a replay: the base backup's, or a journaled state
/// still unparsed (only the last one of each object is ever parsed).
pub enum Slot {
    Base(Item),
    Journaled(Box<serde_json::value::RawValue>),
}

/// The objects a replay works on, by (group-resource, namespace, name).
pub type Objects = BTreeMap<(String, Option<String>, String), Slot>;

/// The base's items as replay works on them.
pub fn objects(items: Vec<Item>) -> Objects {
    items
        .into_iter()
        .map(|i| {
            (
                (
                    i.group_resource.clone(),
                    i.namespace.clone(),
                    i.name.clone(),
                ),
                Slot::Base(i),
            )
        })
        .collect()
}

/// The replayed objects as items; a journaled state that does not parse
/// (the segment's checksum matched, so it was written so) is an error.
pub fn items(objects: Objects) -> Result<Vec<Item>, serde_json::Error> {
    objects
        .into_iter()
        .map(|((group_resource, namespace, name), slot)| match slot {
            Slot::Base(item) => Ok(item),
            Slot::Journaled(raw) => serde_json::from_str(raw.get()).map(|object| Item {
                group_resource,
                namespace,
                name,
                object,
            }),
        })
        .collect()
}

/// Applies `lines` (in order) up to and including `at` over `objects`;
/// `selected(gr, namespace)` says which the restore wants. Returns the
/// changes applied and the gaps that reach into `(since, at]`.
pub fn replay(
    objects: &mut Objects,
    lines: impl IntoIterator<Item = Line>,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
    selected: &dyn Fn(&str, Option<&str>) -> bool,
) -> (u64, Vec<Gap>) {
    let mut applied = 0;
    let mut gaps = Vec::new();
    for line in lines {
        match line.kind {
            LineKind::Change => {
                let (Some(when), Some(name)) = (line.at, line.name) else {
                    continue;
                };
                if when > at || !selected(&line.group_resource, line.namespace.as_deref()) {
                    continue;
                }
                let key = (line.group_resource, line.namespace, name);
                match (line.op, line.object) {
                    (Some(Op::Deleted), _) => {
                        objects.remove(&key);
                    }
                    (_, Some(object)) => {
                        objects.insert(key, Slot::Journaled(object));
                    }
                    _ => continue,
                }
                applied += 1;
            }
            LineKind::Listed => {
                if line.at.is_none_or(|when| when > at) {
                    continue;
                }
                let present: BTreeSet<&str> =
                    line.keys.iter().flatten().map(String::as_str).collect();
                let group_resource = &line.group_resource;
                objects.retain(|(gr, ns, name), _| {
                    gr != group_resource
                        || !selected(gr, ns.as_deref())
                        || present.contains(super::object_key(ns.as_deref(), name).as_str())
                });
            }
            LineKind::Gap => {
                if let Some(gap) = line.gap()
                    && gap.from <= at
                    && gap.to > since
                {
                    gaps.push(gap);
                }
            }
        }
    }
    (applied, gaps)
}

/// Replays `schedule`'s journal over `items` (a base backup's, begun at
/// `since`) up to `at`: reads only the segments whose window reaches
/// `[since, at]`, and reports the gaps in it, including where the journal
/// does not reach.
pub async fn to_instant(
    journal: Source<'_>,
    base: Vec<Item>,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
    selected: &(dyn Fn(&str, Option<&str>) -> bool + Sync),
    report: &mut Report,
) -> Result<Vec<Item>, JournalError> {
    let Source {
        store,
        schedule,
        key,
    } = journal;
    let listed = list_segments(store, schedule).await?;
    report.journal_from = listed.first().map(|l| l.from);
    report.journal_to = listed.last().map(|l| l.to);
    let mut objects = objects(base);
    // Two segments read and decoded at once, applied in order.
    let needed: Vec<Listed> = listed
        .iter()
        .filter(|l| l.to >= since && l.from <= at)
        .cloned()
        .collect();
    let mut segments = futures::stream::iter(needed)
        .map(|l: Listed| async move {
            let manifest = read_manifest(store, &l.key).await?;
            read_segment(store, &manifest, key).await
        })
        .buffered(2);
    while let Some(lines) = segments.next().await {
        let (applied, gaps) = replay(&mut objects, lines?, since, at, selected);
        report.segments_read += 1;
        report.changes_applied += applied;
        report.gaps.extend(gaps);
    }
    // Where the journal does not reach, changes are unknown too.
    match (report.journal_from, report.journal_to) {
        (Some(from), Some(to)) => {
            if from > since {
                report.gaps.push(Gap {
                    group_resource: "*".into(),
                    from: since,
                    to: from.min(at),
                    reason: "the journal begins after the base backup".into(),
                });
            }
            if to < at {
                report.gaps.push(Gap {
                    group_resource: "*".into(),
                    from: to.max(since),
                    to: at,
                    reason: "the journal written so far ends before this instant".into(),
                });
            }
        }
        _ => report.gaps.push(Gap {
            group_resource: "*".into(),
            from: since,
            to: at,
            reason: "the schedule has no journal yet".into(),
        }),
    }
    items(objects).map_err(|e| JournalError::Damaged {
        key: super::prefix(schedule),
        message: format!("a journaled object does not read: {e}"),
    })
}

/// Calls `each` with the journal's changes in `[from, to]` that `selected`
/// accepts (their objects unparsed), oldest first; returns the gaps in
/// that window.
pub async fn changes(
    journal: Source<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    selected: &(dyn Fn(&str, Option<&str>) -> bool + Sync),
    mut each: impl FnMut(&Line),
) -> Result<Vec<Gap>, JournalError> {
    let Source {
        store,
        schedule,
        key,
    } = journal;
    let mut gaps = Vec::new();
    for l in list_segments(store, schedule)
        .await?
        .into_iter()
        .filter(|l| l.to >= from && l.from <= to)
    {
        let manifest = read_manifest(store, &l.key).await?;
        for line in read_segment(store, &manifest, key).await? {
            match line.kind {
                LineKind::Change
                    if line.at.is_some_and(|at| at >= from && at <= to)
                        && selected(&line.group_resource, line.namespace.as_deref()) =>
                {
                    each(&line)
                }
                LineKind::Gap => {
                    if let Some(gap) = line.gap().filter(|g| g.from <= to && g.to >= from) {
                        gaps.push(gap);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(gaps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Entry;
    use serde_json::json;

    /// Entries as a segment holds them, read back as lines.
    fn lines(entries: Vec<Entry>) -> Vec<Line> {
        entries
            .iter()
            .map(|e| serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap())
            .collect()
    }

    fn t(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_400_000 + i64::from(s), 0).unwrap()
    }

    fn change(at: u32, op: Op, name: &str, value: &str) -> Entry {
        Entry::Change {
            at: t(at),
            op,
            group_resource: "configmaps".into(),
            namespace: Some("shop".into()),
            name: name.into(),
            resource_version: at.to_string(),
            manager: None,
            operation: None,
            object: json!({"metadata": {"name": name, "namespace": "shop"}, "data": {"v": value}}),
        }
    }

    fn item(name: &str, value: &str) -> Item {
        Item {
            group_resource: "configmaps".into(),
            namespace: Some("shop".into()),
            name: name.into(),
            object: json!({"metadata": {"name": name, "namespace": "shop"}, "data": {"v": value}}),
        }
    }

    fn state(objects: &Objects) -> Vec<(String, String)> {
        let copy: Objects = objects
            .iter()
            .map(|(k, slot)| {
                let slot = match slot {
                    Slot::Base(i) => Slot::Base(i.clone()),
                    Slot::Journaled(raw) => Slot::Journaled(raw.clone()),
                };
                (k.clone(), slot)
            })
            .collect();
        items(copy)
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i.name.clone(),
                    i.object["data"]["v"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    }

    fn base() -> Objects {
        objects(vec![item("a", "1"), item("gone", "x")])
    }

    fn journal() -> Vec<Entry> {
        vec![
            change(10, Op::Modified, "a", "2"),
            change(20, Op::Added, "b", "1"),
            change(30, Op::Deleted, "gone", "x"),
            change(40, Op::Modified, "a", "3"),
            change(50, Op::Deleted, "b", "1"),
        ]
    }

    #[test]
    fn each_instant_gets_the_state_of_its_last_change() {
        let all = |_: &str, _: Option<&str>| true;
        let at = |s: u32| {
            let mut objects = base();
            replay(&mut objects, lines(journal()), t(0), t(s), &all);
            state(&objects)
        };
        let v = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(at(5), v(&[("a", "1"), ("gone", "x")]));
        assert_eq!(at(25), v(&[("a", "2"), ("b", "1"), ("gone", "x")]));
        // The change at the instant itself counts.
        assert_eq!(at(30), v(&[("a", "2"), ("b", "1")]));
        assert_eq!(at(45), v(&[("a", "3"), ("b", "1")]));
        assert_eq!(at(60), v(&[("a", "3")]));
    }

    #[test]
    fn a_list_after_a_gap_removes_what_it_did_not_see_and_the_gap_is_reported() {
        let all = |_: &str, _: Option<&str>| true;
        let mut entries = journal();
        entries.push(Entry::Gap {
            group_resource: "configmaps".into(),
            from: t(60),
            to: t(90),
            reason: "410".into(),
        });
        entries.push(change(90, Op::Listed, "c", "1"));
        entries.push(Entry::Listed {
            at: t(90),
            group_resource: "configmaps".into(),
            keys: vec!["shop/c".into()],
        });
        let mut objects = base();
        let (_, gaps) = replay(&mut objects, lines(entries.clone()), t(0), t(100), &all);
        assert_eq!(state(&objects), [("c".to_string(), "1".to_string())]);
        assert_eq!(gaps.len(), 1);
        // Before the gap, no gap to report; inside it, the state before it.
        let mut objects = base();
        let (_, gaps) = replay(&mut objects, lines(entries.clone()), t(0), t(55), &all);
        assert!(gaps.is_empty());
        let mut objects = base();
        let (_, gaps) = replay(&mut objects, lines(entries), t(0), t(70), &all);
        assert_eq!(gaps.len(), 1);
        assert_eq!(state(&objects), [("a".to_string(), "3".to_string())]);
    }

    #[test]
    fn entries_outside_the_selection_are_left_alone() {
        let only_other = |_: &str, ns: Option<&str>| ns == Some("other");
        let mut objects = base();
        let (applied, _) = replay(&mut objects, lines(journal()), t(0), t(60), &only_other);
        assert_eq!(applied, 0);
        assert_eq!(
            state(&objects),
            [
                ("a".to_string(), "1".to_string()),
                ("gone".to_string(), "x".to_string())
            ]
        );
    }

    #[test]
    fn damaged_segments_are_refused() {
        let raw = b"{\"type\":\"gap\",\"groupResource\":\"*\",\"from\":\"2026-11-29T00:00:00Z\",\"to\":\"2026-11-29T00:00:01Z\",\"reason\":\"r\"}\nnot json\n";
        let sealed = zstd::encode_all(&raw[..], 3).unwrap();
        match decode(&sealed, None, None) {
            Err(Decode::Bad(m)) => assert!(m.contains("entry 2"), "{m}"),
            _ => panic!("a line that is not an entry must be refused"),
        }
        assert!(matches!(
            decode(b"not zstd", None, None),
            Err(Decode::Bad(_))
        ));
        let enc = crate::archive::crypto::Encryption {
            cipher: "age".into(),
            key_id: "x".into(),
        };
        assert!(matches!(
            decode(&sealed, Some(&enc), None),
            Err(Decode::NoKey)
        ));
    }
}
