//! A simulated database whose copies can be torn, for testing hooks.
//!
//! A Running pod annotated `kubesim.io/database: FILE` runs a "database"
//! that appends records to `FILE` in each volume it mounts, without end.
//! Each record is one line, `BEGIN n <payload> END n`, written in two
//! halves some milliseconds apart. A copy of the file taken at a random
//! moment therefore often ends inside a record: [`check`] reads that as
//! torn, as a database reads a torn page and refuses to start.
//!
//! The pod's containers answer three commands through `pods/exec`:
//! - `checkpoint [SECONDS]` finishes the record being written and pauses
//!   writes until `resume`, or for SECONDS (60 by default);
//! - `resume` lets the writes go on;
//! - `check` reads each file and says how many records it holds, or exits
//!   1 naming the half-written record.
//!
//! A database killed with the simulator mid-record recovers when the
//! simulator starts again, as one replaying its log does: the half-written
//! last record is cut off. A file that is torn when a pod started later
//! sees it (a torn copy restored) is left as it is: that database does not
//! start, `checkpoint` fails, and `check` says why.
//!
//! Files are bounded: past [`ROTATE_AT`] bytes the file is replaced, in one
//! rename, by an empty one, and the records go on from the next number.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::store::Store;

/// The annotation that makes a Running pod a database: the file name it
/// writes in each of its volumes.
pub const ANNOTATION: &str = "kubesim.io/database";

/// How long a record stays half-written.
const HALF_WRITTEN: Duration = Duration::from_millis(15);
/// The pause between one record's end and the next one's start.
const BETWEEN_RECORDS: Duration = Duration::from_millis(5);
/// How long a `checkpoint` holds the writes when it names no time.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(60);
/// Past this size the file starts over (empty, the numbers going on).
pub const ROTATE_AT: u64 = 1 << 20;
/// How often Running pods are looked for.
const RESCAN: Duration = Duration::from_millis(200);

/// What [`check`] finds in a database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Every record whole; `last` is the last one's number (0: none).
    Consistent { records: u64, last: u64 },
    /// A record is not whole; `at` is its position (1-based line).
    Torn { at: u64, why: String },
}

/// Reads a database file's contents.
pub fn check(bytes: &[u8]) -> Health {
    let mut records = 0u64;
    let mut last: Option<u64> = None;
    let mut rest = bytes;
    let mut at = 0u64;
    while !rest.is_empty() {
        at += 1;
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            return Health::Torn {
                at,
                why: format!(
                    "record {} is half-written ({} bytes, no end)",
                    last.map_or(at, |n| n + 1),
                    rest.len()
                ),
            };
        };
        let line = String::from_utf8_lossy(&rest[..end]);
        rest = &rest[end + 1..];
        let words: Vec<&str> = line.split(' ').collect();
        let n = match words.as_slice() {
            ["BEGIN", n, _payload, "END", m] if n == m => n.parse::<u64>().ok(),
            _ => None,
        };
        let Some(n) = n else {
            return Health::Torn {
                at,
                why: format!("line {at} is not a whole record"),
            };
        };
        if let Some(prev) = last
            && n != prev + 1
        {
            return Health::Torn {
                at,
                why: format!("record {n} follows record {prev}"),
            };
        }
        last = Some(n);
        records += 1;
    }
    Health::Consistent {
        records,
        last: last.unwrap_or(0),
    }
}

fn payload(n: u64) -> String {
    let h = crate::fnv1a(n.to_le_bytes());
    format!("{h:016x}{:016x}{h:016x}", h.rotate_left(17))
}

/// One database file being written.
#[derive(Debug)]
struct File {
    path: PathBuf,
    /// The number of the next record.
    next: u64,
    /// A record whose first half is written.
    open: bool,
    /// When the next half may be written.
    due: Instant,
    /// Found torn when the pod started: never written to.
    torn: bool,
}

impl File {
    /// Opens a database file; with `recover` (its pod ran before this
    /// simulator started: it was killed mid-write) a half-written last
    /// record is cut off first.
    fn start(path: PathBuf, recover: bool) -> Self {
        if recover && let Ok(bytes) = std::fs::read(&path) {
            let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            if whole < bytes.len()
                && matches!(check(&bytes[..whole]), Health::Consistent { .. })
                && let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path)
            {
                let _ = f.set_len(whole as u64);
            }
        }
        let (next, torn) = match std::fs::read(&path) {
            Ok(bytes) => match check(&bytes) {
                Health::Consistent { last, .. } => (last + 1, false),
                Health::Torn { .. } => (0, true),
            },
            Err(_) => (1, false),
        };
        Self {
            path,
            next,
            open: false,
            due: Instant::now(),
            torn,
        }
    }

    /// Writes the next half when it is due (or `now` with `force`, which
    /// only ends an open record).
    fn step(&mut self, now: Instant, force: bool) {
        if self.torn || (!force && now < self.due) || (force && !self.open) {
            return;
        }
        if !self.open && self.len() >= ROTATE_AT {
            self.rotate();
        }
        let n = self.next;
        let text = if self.open {
            format!(" END {n}\n")
        } else {
            format!("BEGIN {n} {}", payload(n))
        };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if written.is_err() {
            // The volume went away (the pod is stopping); try again later.
            self.due = now + HALF_WRITTEN;
            return;
        }
        if self.open {
            self.open = false;
            self.next += 1;
            self.due = now + BETWEEN_RECORDS;
        } else {
            self.open = true;
            self.due = now + HALF_WRITTEN;
        }
    }

    fn len(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    fn rotate(&self) {
        let fresh = self.path.with_extension("rotating");
        if std::fs::write(&fresh, b"").is_ok() {
            let _ = std::fs::rename(&fresh, &self.path);
        }
    }
}

#[derive(Debug, Default)]
struct Pod {
    files: Vec<File>,
    paused_until: Option<Instant>,
}

/// The databases of a cluster's Running pods, by pod uid.
#[derive(Debug, Clone)]
pub struct Databases {
    pods: Arc<Mutex<HashMap<String, Pod>>>,
    /// Where the volumes' data is (`None`: the simulator holds none).
    root: Option<Arc<PathBuf>>,
    /// When this simulator started: pods running since before then were
    /// killed with the last one.
    since: chrono::DateTime<chrono::Utc>,
}

impl Default for Databases {
    fn default() -> Self {
        Self {
            pods: Arc::default(),
            root: None,
            since: chrono::Utc::now(),
        }
    }
}

/// Why a database command could not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no database runs in this pod (it has no {ANNOTATION} annotation)")]
    NoDatabase,
    #[error("the database did not start: {0} is torn (run `check`)")]
    NotStarted(String),
}

impl Databases {
    /// Databases writing into the volumes under `root`.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root: Some(Arc::new(root)),
            ..Self::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pod>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes until the task is dropped (nothing without a root).
    pub async fn run(self, store: Store) {
        let Some(root) = self.root.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut scanned: Option<Instant> = None;
        loop {
            tick.tick().await;
            let now = Instant::now();
            if scanned.is_none_or(|s| now.duration_since(s) >= RESCAN) {
                self.rescan(&store, &root, None);
                scanned = Some(now);
            }
            for pod in self.lock().values_mut() {
                if pod.paused_until.is_some_and(|until| now < until) {
                    continue;
                }
                pod.paused_until = None;
                for file in &mut pod.files {
                    file.step(now, false);
                }
            }
        }
    }

    /// Starts the databases of pods that became Running, and forgets those
    /// of pods that are gone; with `only`, starts that pod's alone (a
    /// command may reach a pod before the next scan does).
    fn rescan(&self, store: &Store, root: &Path, only: Option<&str>) {
        let (Some(pods), Some(claims)) = (
            store.find("", "v1", "pods"),
            store.find("", "v1", "persistentvolumeclaims"),
        ) else {
            return;
        };
        let all = |rt| {
            store
                .list(
                    &rt,
                    None,
                    &crate::selector::LabelSelector::default(),
                    &crate::selector::FieldSelector::default(),
                )
                .0
        };
        let claims = all(claims);
        let mut wanted: HashMap<String, (Vec<PathBuf>, bool)> = HashMap::new();
        for pod in all(pods) {
            if only.is_some_and(|uid| uid != pod["metadata"]["uid"]) {
                continue;
            }
            let Some(file) = pod["metadata"]["annotations"][ANNOTATION].as_str() else {
                continue;
            };
            // A file name in the volume, nothing that climbs out of it.
            if file.is_empty() || file.contains('/') || file.contains("..") {
                continue;
            }
            if pod["status"]["phase"] != "Running"
                || pod["metadata"]["deletionTimestamp"].is_string()
            {
                continue;
            }
            let paths = crate::controllers::claimed_volumes(&pod, &claims)
                .into_iter()
                .map(|pv| crate::controllers::volume_dir(root, pv))
                .filter(|dir| dir.is_dir())
                .map(|dir| dir.join(file))
                .collect();
            // Running since before this simulator: killed with the last one.
            let killed = pod["status"]["startTime"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t < self.since);
            wanted.insert(uid(&pod), (paths, killed));
        }
        let mut running = self.lock();
        if only.is_none() {
            running.retain(|uid, _| wanted.contains_key(uid));
        }
        for (uid, (paths, killed)) in wanted {
            running.entry(uid.clone()).or_default();
            for path in paths {
                if running[&uid].files.iter().any(|f| f.path == path) {
                    continue;
                }
                // One writer per file: a pod that replaced another on the
                // same volume (a StatefulSet's) takes its file over as it
                // is, an open record included.
                let moved = running
                    .iter_mut()
                    .filter(|(other, _)| **other != uid)
                    .find_map(|(_, pod)| {
                        let i = pod.files.iter().position(|f| f.path == path)?;
                        Some(pod.files.remove(i))
                    });
                let file = moved.unwrap_or_else(|| File::start(path, killed));
                if let Some(pod) = running.get_mut(&uid) {
                    pod.files.push(file);
                }
            }
        }
    }

    /// Checks the pod is a database, and starts it if no scan has yet.
    fn known(&self, store: &Store, pod: &Value) -> Result<(), CommandError> {
        is_database(pod)?;
        let uid = uid(pod);
        if let Some(root) = &self.root
            && !self.lock().contains_key(&uid)
        {
            self.rescan(store, root, Some(&uid));
        }
        Ok(())
    }

    /// `checkpoint`: ends the records being written and holds the writes.
    /// A database pod whose volumes hold no files (a simulator without
    /// volume data) has nothing to end: that is a success.
    pub fn checkpoint(
        &self,
        store: &Store,
        pod: &Value,
        hold: Duration,
    ) -> Result<(), CommandError> {
        self.known(store, pod)?;
        let now = Instant::now();
        if let Some(pod) = self.lock().get_mut(&uid(pod)) {
            if let Some(torn) = pod.files.iter().find(|f| f.torn) {
                return Err(CommandError::NotStarted(torn.path.display().to_string()));
            }
            for file in &mut pod.files {
                file.step(now, true);
            }
            pod.paused_until = Some(now + hold);
        }
        Ok(())
    }

    /// `resume`: the writes go on.
    pub fn resume(&self, store: &Store, pod: &Value) -> Result<(), CommandError> {
        self.known(store, pod)?;
        if let Some(pod) = self.lock().get_mut(&uid(pod)) {
            pod.paused_until = None;
        }
        Ok(())
    }

    /// `check`: each file of the pod's database and what it holds. The
    /// record the database is writing at that moment is its own, not a
    /// tear: it is left out (the writes wait while the files are read).
    pub fn check(&self, store: &Store, pod: &Value) -> Result<Vec<(String, Health)>, CommandError> {
        self.known(store, pod)?;
        let running = self.lock();
        let files = running.get(&uid(pod)).map_or(&[][..], |p| &p.files[..]);
        Ok(files
            .iter()
            .map(|file| {
                let name = file
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let health = match std::fs::read(&file.path) {
                    Ok(bytes) => {
                        let whole = if file.open {
                            bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
                        } else {
                            bytes.len()
                        };
                        check(&bytes[..whole])
                    }
                    Err(e) => Health::Torn {
                        at: 0,
                        why: format!("cannot be read: {e}"),
                    },
                };
                (name, health)
            })
            .collect())
    }
}

fn is_database(pod: &Value) -> Result<(), CommandError> {
    if pod["metadata"]["annotations"][ANNOTATION].is_string() {
        Ok(())
    } else {
        Err(CommandError::NoDatabase)
    }
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> String {
        format!("BEGIN {n} {} END {n}\n", payload(n))
    }

    #[test]
    fn whole_records_are_consistent_and_a_half_written_one_is_torn() {
        assert_eq!(
            check(b""),
            Health::Consistent {
                records: 0,
                last: 0
            }
        );
        let whole = format!("{}{}{}", record(7), record(8), record(9));
        assert_eq!(
            check(whole.as_bytes()),
            Health::Consistent {
                records: 3,
                last: 9
            }
        );
        let half = format!("{}BEGIN 10 {}", whole, payload(10));
        assert!(
            matches!(check(half.as_bytes()), Health::Torn { at: 4, ref why } if why.contains("record 10 is half-written")),
            "{:?}",
            check(half.as_bytes())
        );
        let gap = format!("{}{}", record(1), record(3));
        assert!(matches!(check(gap.as_bytes()), Health::Torn { at: 2, .. }));
        let mixed = format!("{}BEGIN 2 {} END 3\n", record(1), payload(2));
        assert!(matches!(
            check(mixed.as_bytes()),
            Health::Torn { at: 2, .. }
        ));
    }

    #[test]
    fn a_file_is_written_in_halves_and_a_checkpoint_ends_the_open_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = File::start(dir.path().join("db"), false);
        let start = Instant::now();
        file.step(start, false);
        let bytes = std::fs::read(&file.path).expect("written");
        assert!(matches!(check(&bytes), Health::Torn { .. }));
        // Not yet due: nothing more.
        file.step(start, false);
        assert_eq!(std::fs::read(&file.path).expect("read"), bytes);
        // Forced (a checkpoint): the record ends at once.
        file.step(start, true);
        let bytes = std::fs::read(&file.path).expect("written");
        assert_eq!(
            check(&bytes),
            Health::Consistent {
                records: 1,
                last: 1
            }
        );
        // Forced with nothing open: nothing is written.
        file.step(start + HALF_WRITTEN * 4, true);
        assert_eq!(std::fs::read(&file.path).expect("read"), bytes);
        // A restart continues the numbers; a torn file is never written to.
        let again = File::start(file.path.clone(), false);
        assert_eq!((again.next, again.torn), (2, false));
        std::fs::write(&file.path, format!("{}BEGIN 2 x", record(1))).expect("write");
        let mut torn = File::start(file.path.clone(), false);
        assert!(torn.torn);
        torn.step(start + HALF_WRITTEN * 8, false);
        assert_eq!(
            std::fs::read(&file.path).expect("read"),
            format!("{}BEGIN 2 x", record(1)).as_bytes()
        );
        // Killed mid-record, it recovers: the half record is cut off.
        let recovered = File::start(file.path.clone(), true);
        assert_eq!((recovered.next, recovered.torn), (2, false));
        assert_eq!(
            std::fs::read(&file.path).expect("read"),
            record(1).as_bytes()
        );
        // A gap in the middle is no torn tail: no recovery.
        std::fs::write(&file.path, format!("{}{}", record(1), record(3))).expect("write");
        assert!(File::start(file.path.clone(), true).torn);
    }
}
