//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it:
//! the holder renews every third of the lease duration with an update that
//! carries the resourceVersion it read (a concurrent writer gets 409 and
//! loses); a candidate takes the Lease over only after it has *observed* no
//! change to it for a whole duration on its own monotonic clock, so clock skew
//! between machines does not matter. Fencing: the holder counts itself leader
//! only until its last successful renewal plus two thirds of the duration, so
//! it stops acting before anyone else may start.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

pub use frontend::model::Runner;

/// Who may run schedules and GC in this process.
#[derive(Clone)]
pub enum Leadership {
    /// SQLite: one replica; it simply runs them.
    Single,
    /// PostgreSQL: the holder of the Lease runs them.
    Lease(Box<LeaseElector>),
    /// PostgreSQL without a cluster to hold a Lease in: nobody here runs them.
    Nobody(String),
}

impl Leadership {
    pub fn is_leader(&self) -> bool {
        match self {
            Self::Single => true,
            Self::Lease(l) => l.is_leader(),
            Self::Nobody(_) => false,
        }
    }

    /// This replica's identity in the Lease, if it competes for one.
    pub fn identity(&self) -> Option<&str> {
        match self {
            Self::Lease(l) => Some(&l.identity),
            _ => None,
        }
    }

    /// What the API shows about it.
    pub fn describe(&self) -> Runner {
        match self {
            Self::Single => Runner {
                mode: "single".into(),
                leader: true,
                detail: Some(
                    "SQLite catalog: this server is the only replica and runs schedules".into(),
                ),
                ..Default::default()
            },
            Self::Lease(l) => Runner {
                mode: "lease".into(),
                leader: l.is_leader(),
                identity: Some(l.identity.clone()),
                lease: Some(format!("{}/{}", l.namespace, l.name)),
                holder: l.observed_holder(),
                detail: None,
            },
            Self::Nobody(reason) => Runner {
                mode: "none".into(),
                leader: false,
                detail: Some(reason.clone()),
                ..Default::default()
            },
        }
    }
}

#[derive(Default)]
struct Observed {
    /// The holder and renew time last read, and when (our clock) it last changed.
    record: Option<(Option<String>, Option<String>)>,
    changed_at: Option<Instant>,
    /// Leader until then (our clock).
    leader_until: Option<Instant>,
}

/// One candidate for one Lease.
#[derive(Clone)]
pub struct LeaseElector {
    pub identity: String,
    pub namespace: String,
    pub name: String,
    pub duration: Duration,
    api: Api<Lease>,
    observed: Arc<Mutex<Observed>>,
}

impl LeaseElector {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            identity: identity.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            duration,
            api: Api::namespaced(client, namespace),
            observed: Arc::new(Mutex::new(Observed::default())),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.observed
            .lock()
            .ok()
            .and_then(|o| o.leader_until)
            .is_some_and(|until| Instant::now() < until)
    }

    fn observed_holder(&self) -> Option<String> {
        self.observed
            .lock()
            .ok()
            .and_then(|o| o.record.clone())
            .and_then(|(holder, _)| holder)
    }

    fn now_micro() -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::now())
    }

    /// One round: create, renew or take over the Lease when allowed.
    /// Returns whether this candidate holds it now.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let started = Instant::now();
        let current = match self.api.get_opt(&self.name).await? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(Self::now_micro(), 0)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => {
                        self.won(started);
                        Ok(true)
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
        );
        let expired = {
            let mut o = self
                .observed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if o.record.as_ref() != Some(&record) {
                o.record = Some(record);
                o.changed_at = Some(started);
            }
            let duration = spec
                .lease_duration_seconds
                .map_or(self.duration, |s| Duration::from_secs(s.max(1) as u64));
            o.changed_at.is_some_and(|at| started >= at + duration)
        };
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if !mine && holder.is_some() && !expired {
            self.lost();
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquired = if mine {
            spec.acquire_time.clone().unwrap_or_else(Self::now_micro)
        } else {
            Self::now_micro()
        };
        let mut updated = current;
        updated.spec = Some(self.spec(acquired, transitions));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {
                if !mine {
                    tracing::info!(identity = %self.identity, lease = %self.name, "acquired the scheduler lease");
                }
                self.won(started);
                Ok(true)
            }
            // Someone else wrote it since we read it: they win this round.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                self.lost();
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn spec(&self, acquired: MicroTime, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs() as i32),
            acquire_time: Some(acquired),
            renew_time: Some(Self::now_micro()),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    fn won(&self, request_started: Instant) {
        if let Ok(mut o) = self.observed.lock() {
            o.leader_until = Some(request_started + self.duration * 2 / 3);
            o.record = None;
        }
    }

    fn lost(&self) {
        if let Ok(mut o) = self.observed.lock()
            && o.leader_until.take().is_some()
        {
            tracing::warn!(identity = %self.identity, "lost the scheduler lease");
        }
    }

    /// Gives the Lease up (on shutdown), so another replica need not wait out the duration.
    pub async fn release(&self) {
        if !self.is_leader() {
            return;
        }
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.identity.as_str())
        {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            let _ = self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await;
        }
        if let Ok(mut o) = self.observed.lock() {
            o.leader_until = None;
        }
    }

    /// The holder renews every third of the duration; a candidate looks every
    /// second (at most), so it sees the last renewal of a leader that died
    /// soon after it happened, and takes over one duration later.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.try_acquire_or_renew().await {
                    tracing::warn!(error = %e, lease = %me.name, "could not read or renew the scheduler lease");
                }
                let pause = if me.is_leader() {
                    me.duration / 3
                } else {
                    (me.duration / 3).min(Duration::from_secs(1))
                };
                tokio::time::sleep(pause).await;
            }
        })
    }
}
