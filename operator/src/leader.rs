//! Leader election with a `coordination.k8s.io/v1` Lease, so that two replicas of the operator
//! never act at once.
//!
//! The holder renews the Lease every [`RENEW_INTERVAL`]; a standby takes it over once it is
//! released, or once it has not been renewed for [`LEASE_DURATION`] (measured both on the lease's
//! `renewTime` and on the standby's own clock since it last saw the record change, so a skewed
//! clock cannot make two holders). Every write carries the `resourceVersion` that was read, so
//! two standbys racing for the same expired Lease cannot both win.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tracing::{info, warn};

/// Name of the Lease.
pub const LEASE_NAME: &str = "pravega-operator-leader";
/// How long a Lease is valid without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews (and a standby retries).
pub const RENEW_INTERVAL: Duration = Duration::from_secs(2);
/// How long the holder keeps acting while renewals fail: well under [`LEASE_DURATION`], so it
/// stops before a standby may take over.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);

/// This replica's belief that it may write, checked before every write. It may while it holds
/// the Lease and renewed it within [`RENEW_DEADLINE`], measured on the monotonic clock, which
/// keeps running while the process is frozen (SIGSTOP, a stalled VM). A replica frozen for
/// longer than that never acts on its stale belief: its writes are refused until a renewal
/// succeeds, and that renewal finds the Lease taken over and stops the replica.
#[derive(Debug)]
pub struct Leadership {
    elected: bool,
    renewed: std::sync::Mutex<Option<Instant>>,
}

impl Leadership {
    /// Without leader election: every write goes.
    pub fn unelected() -> Self {
        Self {
            elected: false,
            renewed: std::sync::Mutex::new(None),
        }
    }

    /// Holding the Lease, renewed just now.
    pub fn elected() -> Self {
        Self {
            elected: true,
            renewed: std::sync::Mutex::new(Some(Instant::now())),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.renewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The Lease was renewed now.
    pub fn renewed(&self) {
        self.renewed_at(Instant::now());
    }

    /// The Lease was renewed at `at`.
    pub fn renewed_at(&self, at: Instant) {
        *self.slot() = Some(at);
    }

    /// The Lease is lost.
    pub fn lost(&self) {
        *self.slot() = None;
    }

    /// `Err` with why, when this replica must not write now.
    pub fn check(&self) -> Result<(), String> {
        if !self.elected {
            return Ok(());
        }
        match *self.slot() {
            Some(at) if at.elapsed() < RENEW_DEADLINE => Ok(()),
            Some(at) => Err(format!(
                "this replica last renewed the leader lease {LEASE_NAME} {:.1}s ago (more than {}s): it may no longer lead",
                at.elapsed().as_secs_f64(),
                RENEW_DEADLINE.as_secs()
            )),
            None => Err(format!(
                "this replica no longer holds the leader lease {LEASE_NAME}"
            )),
        }
    }
}

/// What to do with the Lease as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// There is no Lease: create it, held by us.
    Create,
    /// We hold it: renew it.
    Renew,
    /// It is free or expired: take it over (the new `leaseTransitions`).
    Acquire { transitions: i32 },
    /// Someone else holds a live Lease.
    Standby { holder: String },
}

/// Decides what to do with `lease`. `unchanged_for` is how long the lease record has been seen
/// unchanged by this replica (zero when it just changed).
pub fn decide(
    lease: Option<&Lease>,
    identity: &str,
    now: Timestamp,
    unchanged_for: Duration,
) -> LeaseDecision {
    let Some(lease) = lease else {
        return LeaseDecision::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let transitions = spec.lease_transitions.unwrap_or(0);
    let holder = spec.holder_identity.unwrap_or_default();
    if holder == identity {
        return LeaseDecision::Renew;
    }
    if holder.is_empty() {
        return LeaseDecision::Acquire {
            transitions: transitions.saturating_add(1),
        };
    }
    let duration = spec
        .lease_duration_seconds
        .map(|s| Duration::from_secs(u64::try_from(s.max(1)).unwrap_or(1)))
        .unwrap_or(LEASE_DURATION);
    let expired_by_record = spec
        .renew_time
        .and_then(|t| {
            SignedDuration::try_from(duration)
                .ok()
                .and_then(|d| t.0.checked_add(d).ok())
        })
        .is_none_or(|deadline| deadline < now);
    if expired_by_record || unchanged_for >= duration {
        LeaseDecision::Acquire {
            transitions: transitions.saturating_add(1),
        }
    } else {
        LeaseDecision::Standby { holder }
    }
}

/// The Lease content for a holder `identity` at `now`.
fn held_spec(
    identity: &str,
    now: Timestamp,
    acquire_time: MicroTime,
    transitions: i32,
) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(i32::try_from(LEASE_DURATION.as_secs()).unwrap_or(15)),
        acquire_time: Some(acquire_time),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the Lease now.
    Leader,
    /// Someone else does.
    Standby(String),
}

/// Why leadership ended.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease is held by someone else now.
    #[error("lost the leader lease {LEASE_NAME} to {0}")]
    Lost(String),
    /// The Lease could not be renewed within the renew deadline.
    #[error("could not renew the leader lease {LEASE_NAME} for {0:?}: {1}")]
    RenewFailed(Duration, String),
}

/// Takes part in leader election as `identity`.
pub struct LeaderElector {
    api: Api<Lease>,
    identity: String,
    last_seen: Option<(Option<LeaseSpec>, Instant)>,
}

impl LeaderElector {
    /// An elector for the Lease [`LEASE_NAME`] in the namespace of `api`.
    pub fn new(api: Api<Lease>, identity: String) -> Self {
        Self {
            api,
            identity,
            last_seen: None,
        }
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One read-decide-write round.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let lease = self.api.get_opt(LEASE_NAME).await?;
        let record = lease.as_ref().and_then(|l| l.spec.clone());
        let unchanged_for = match &self.last_seen {
            Some((seen, at)) if *seen == record => at.elapsed(),
            _ => {
                self.last_seen = Some((record, Instant::now()));
                Duration::ZERO
            }
        };
        let now = Timestamp::now();
        match decide(lease.as_ref(), &self.identity, now, unchanged_for) {
            LeaseDecision::Standby { holder } => Ok(Attempt::Standby(holder)),
            LeaseDecision::Create => {
                let new = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.to_owned()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(held_spec(&self.identity, now, MicroTime(now), 0)),
                };
                self.api.create(&PostParams::default(), &new).await?;
                Ok(Attempt::Leader)
            }
            LeaseDecision::Renew => {
                let Some(mut lease) = lease else {
                    return Ok(Attempt::Standby(String::new()));
                };
                let spec = lease.spec.take().unwrap_or_default();
                let acquired = spec.acquire_time.unwrap_or(MicroTime(now));
                lease.spec = Some(held_spec(
                    &self.identity,
                    now,
                    acquired,
                    spec.lease_transitions.unwrap_or(0),
                ));
                // `replace` sends the resourceVersion we read: a concurrent change makes it fail.
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await?;
                Ok(Attempt::Leader)
            }
            LeaseDecision::Acquire { transitions } => {
                let Some(mut lease) = lease else {
                    return Ok(Attempt::Standby(String::new()));
                };
                lease.spec = Some(held_spec(&self.identity, now, MicroTime(now), transitions));
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await?;
                Ok(Attempt::Leader)
            }
        }
    }

    /// Waits until this replica holds the Lease. Returns false when `shutdown` fires first.
    pub async fn acquire(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let mut last_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leader) => {
                    info!(lease = LEASE_NAME, identity = %self.identity, "became the leader");
                    return true;
                }
                Ok(Attempt::Standby(holder)) => {
                    if last_holder.as_ref() != Some(&holder) {
                        info!(lease = LEASE_NAME, %holder, "standing by: another replica is the leader");
                        last_holder = Some(holder);
                    }
                }
                Err(e) => warn!(lease = LEASE_NAME, error = %e, "leader election attempt failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(RENEW_INTERVAL) => {}
                _ = shutdown.wait_for(|stop| *stop) => return false,
            }
        }
    }

    /// Renews the Lease every [`RENEW_INTERVAL`] until it is lost (returned as an error) or
    /// `stop` fires (returns `Ok`).
    pub async fn hold(
        &mut self,
        stop: &mut watch::Receiver<bool>,
        leadership: &Leadership,
    ) -> Result<(), LeaderError> {
        let mut last_renewed = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RENEW_INTERVAL) => {}
                _ = stop.wait_for(|stop| *stop) => return Ok(()),
            }
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leader) => {
                    last_renewed = Instant::now();
                    leadership.renewed();
                }
                Ok(Attempt::Standby(holder)) => {
                    leadership.lost();
                    return Err(LeaderError::Lost(holder));
                }
                Err(e) => {
                    let since = last_renewed.elapsed();
                    warn!(lease = LEASE_NAME, error = %e, "renewing the leader lease failed");
                    if since >= RENEW_DEADLINE {
                        leadership.lost();
                        return Err(LeaderError::RenewFailed(since, e.to_string()));
                    }
                }
            }
        }
    }

    /// Gives the Lease up (on shutdown) so that a standby takes over at once.
    pub async fn release(&mut self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else {
                return Ok(());
            };
            let mut spec = lease.spec.take().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            lease.spec = Some(spec);
            self.api
                .replace(LEASE_NAME, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        .await;
        match result {
            Ok(()) => info!(lease = LEASE_NAME, "released the leader lease"),
            Err(e) => warn!(lease = LEASE_NAME, error = %e, "releasing the leader lease failed"),
        }
    }
}

/// A holder identity: the pod (host) name plus a random suffix, so that a restarted pod with the
/// same name is a new holder.
pub fn identity() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "pravega-operator".to_owned());
    // `RandomState` is seeded from the OS's random source for every process.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{host}_{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_belief_in_leading_refuses_writes() {
        assert!(Leadership::unelected().check().is_ok());
        let l = Leadership::elected();
        assert!(l.check().is_ok());
        *l.slot() = Instant::now().checked_sub(RENEW_DEADLINE);
        let e = l.check().unwrap_err();
        assert!(e.contains("it may no longer lead"), "{e}");
        l.renewed();
        assert!(l.check().is_ok());
        l.lost();
        assert!(l.check().unwrap_err().contains("no longer holds"));
    }

    fn lease(holder: Option<&str>, renewed: Timestamp, transitions: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(renewed)),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(
            decide(None, "me", t(0), Duration::ZERO),
            LeaseDecision::Create
        );
    }

    #[test]
    fn own_lease_is_renewed() {
        let l = lease(Some("me"), t(0), 2);
        assert_eq!(
            decide(Some(&l), "me", t(100), Duration::ZERO),
            LeaseDecision::Renew
        );
    }

    #[test]
    fn live_lease_of_another_means_standby() {
        let l = lease(Some("other"), t(0), 2);
        assert_eq!(
            decide(Some(&l), "me", t(10), Duration::from_secs(10)),
            LeaseDecision::Standby {
                holder: "other".into()
            }
        );
    }

    #[test]
    fn expired_or_released_lease_is_taken_over() {
        let l = lease(Some("other"), t(0), 2);
        assert_eq!(
            decide(Some(&l), "me", t(16), Duration::ZERO),
            LeaseDecision::Acquire { transitions: 3 }
        );
        // Renew time in the future (skewed clock), but unchanged for longer than the duration.
        let l = lease(Some("other"), t(1000), 2);
        assert_eq!(
            decide(Some(&l), "me", t(0), Duration::from_secs(15)),
            LeaseDecision::Acquire { transitions: 3 }
        );
        let l = lease(None, t(0), 4);
        assert_eq!(
            decide(Some(&l), "me", t(1), Duration::ZERO),
            LeaseDecision::Acquire { transitions: 5 }
        );
    }

    #[test]
    fn identities_differ_between_calls() {
        let a = identity();
        let b = identity();
        assert_ne!(a, b);
        assert!(a.contains('_'));
    }
}
