//! Faults injected into the API server's answers, to show that clients survive an API
//! server's bad days (`SandboxOptions::faults`, `pravega-sandbox serve --fault-*`).
//!
//! Only requests authenticated with the sandbox's user token (the kubeconfig's: kubectl, the
//! operator, tests) are faulted. The simulated controllers and kubelets authenticate with the
//! control-plane token ([`crate::Sandbox::control_plane_client`]) and are never faulted, as a
//! real API server's priority and fairness exempts `system:masters`.

use crate::error::ApiError;
use crate::sim::rng::SplitMix64;
use std::sync::Mutex;
use std::time::Duration;

/// The fraction of resumes behind the latest version answered `410 Gone`.
const EXPIRED_RESUMES: f64 = 0.125;

/// Which faults the API server injects. The default injects none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultOptions {
    /// The fraction (0.0 to 1.0) of resource requests other than watches answered with an error
    /// instead of being served: `500 InternalError`, `503 ServiceUnavailable` or
    /// `429 TooManyRequests` (with `Retry-After: 1`), and for updates, patches and deletes also
    /// `409 Conflict`. A faulted write changes nothing.
    pub error_rate: f64,
    /// Added before each faultable request (watches included) is served.
    pub latency: Duration,
    /// Every watch stream is closed after this long; one in eight of the resumes from a
    /// `resourceVersion` that is no longer the latest then gets `410 Gone` (an `ERROR` event),
    /// as when the API server's watch cache has moved on.
    pub watch_drop: Option<Duration>,
    /// Seed of the random choices, for reproducible runs (`None`: a random seed).
    pub seed: Option<u64>,
}

impl FaultOptions {
    /// Whether any fault is injected.
    pub fn is_enabled(&self) -> bool {
        self.error_rate > 0.0 || !self.latency.is_zero() || self.watch_drop.is_some()
    }

    /// Checks the values: the error rate must be a number from 0.0 to 1.0, the watch drop
    /// period longer than zero.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!(
                "the fault error rate must be from 0.0 to 1.0, got {}",
                self.error_rate
            ));
        }
        if self.watch_drop.is_some_and(|d| d.is_zero()) {
            return Err("the watch drop period must be longer than zero".into());
        }
        Ok(())
    }
}

/// An error answer injected in place of serving a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// `500 InternalError`.
    Internal,
    /// `503 ServiceUnavailable`.
    Unavailable,
    /// `429 TooManyRequests`, `Retry-After: 1`.
    TooManyRequests,
    /// `409 Conflict`: the object has been modified (writes to a named object only).
    Conflict,
}

/// Marks a response that is an injected fault (for the audit log, metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InjectedFault {
    /// The status code of the fault (for a watch resume, that of its `ERROR` event).
    pub code: u16,
}

/// What a watch of a faultable client suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WatchFaults {
    /// The stream is closed after this long.
    pub drop_after: Duration,
}

/// The fault injector of one API server.
pub(crate) struct Faults {
    opts: FaultOptions,
    rng: Mutex<SplitMix64>,
}

impl Faults {
    pub(crate) fn new(opts: FaultOptions) -> Self {
        let seed = opts.seed.unwrap_or_else(crate::util::random_u64);
        Faults {
            opts,
            rng: Mutex::new(SplitMix64::new(seed)),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.opts.is_enabled()
    }

    /// The latency added to each request.
    pub(crate) fn latency(&self) -> Duration {
        self.opts.latency
    }

    /// What the watches suffer, if anything.
    pub(crate) fn watch(&self) -> Option<WatchFaults> {
        self.opts
            .watch_drop
            .map(|drop_after| WatchFaults { drop_after })
    }

    /// A uniform draw in `[0, 1)`.
    fn draw(&self) -> f64 {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether this request fails, and how. `named_write`: an update, patch or delete of a
    /// named object, which may also fail with a conflict.
    pub(crate) fn pick_error(&self, named_write: bool) -> Option<FaultKind> {
        if self.opts.error_rate <= 0.0 || self.draw() >= self.opts.error_rate {
            return None;
        }
        let kinds: &[FaultKind] = if named_write {
            &[
                FaultKind::Internal,
                FaultKind::Unavailable,
                FaultKind::TooManyRequests,
                FaultKind::Conflict,
            ]
        } else {
            &[
                FaultKind::Internal,
                FaultKind::Unavailable,
                FaultKind::TooManyRequests,
            ]
        };
        let i = (self.draw() * kinds.len() as f64) as usize;
        kinds.get(i).copied()
    }

    /// Whether a watch resumed from a `resourceVersion` that is no longer the latest gets
    /// `410 Gone`: one in eight does. Clients list again after it, and kube-runtime's watcher
    /// backs off after each error (from 0.8 s, doubling, for two minutes), so more frequent
    /// expiries would mostly measure that back-off.
    pub(crate) fn expire_resume(&self) -> bool {
        self.opts.watch_drop.is_some() && self.draw() < EXPIRED_RESUMES
    }
}

impl FaultKind {
    /// The `Status` the API server answers, for the object at `group`/`resource`/`name`.
    pub(crate) fn to_error(self, group: &str, resource: &str, name: &str) -> ApiError {
        match self {
            FaultKind::Internal => ApiError::internal("etcdserver: request timed out"),
            FaultKind::Unavailable => ApiError::custom(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            FaultKind::TooManyRequests => {
                let mut e = ApiError::custom(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                );
                e.details = Some(serde_json::json!({"retryAfterSeconds": 1}));
                e
            }
            FaultKind::Conflict => ApiError::stale(group, resource, name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(rate: f64, seed: u64) -> Faults {
        Faults::new(FaultOptions {
            error_rate: rate,
            seed: Some(seed),
            ..FaultOptions::default()
        })
    }

    #[test]
    fn the_error_rate_is_kept_and_the_seed_reproduces_the_choices() {
        let picks = |seed| {
            let f = faults(0.3, seed);
            (0..2000)
                .map(|i| f.pick_error(i % 2 == 0))
                .collect::<Vec<_>>()
        };
        let a = picks(7);
        assert_eq!(a, picks(7), "same seed, same faults");
        assert_ne!(a, picks(8));
        let faulted = a.iter().filter(|p| p.is_some()).count();
        assert!((500..=700).contains(&faulted), "{faulted} of 2000 at 0.3");
        for kind in [
            FaultKind::Internal,
            FaultKind::Unavailable,
            FaultKind::TooManyRequests,
            FaultKind::Conflict,
        ] {
            assert!(a.contains(&Some(kind)), "{kind:?} is injected");
        }
        // Conflicts only for writes to named objects.
        assert!(
            a.iter()
                .enumerate()
                .all(|(i, p)| i % 2 == 0 || *p != Some(FaultKind::Conflict))
        );
        assert!((0..100).all(|_| faults(0.0, 1).pick_error(true).is_none()));
        assert!((0..100).all(|_| faults(1.0, 1).pick_error(false).is_some()));
    }

    #[test]
    fn errors_are_worded_as_the_api_server_words_them() {
        let e = FaultKind::Conflict.to_error("", "pods", "x");
        assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on pods \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let e = FaultKind::TooManyRequests.to_error("", "pods", "x");
        assert_eq!((e.code, e.reason.as_str()), (429, "TooManyRequests"));
        assert_eq!(e.to_status()["details"]["retryAfterSeconds"], 1);
        let e = FaultKind::Unavailable.to_error("", "pods", "");
        assert_eq!((e.code, e.reason.as_str()), (503, "ServiceUnavailable"));
        let e = FaultKind::Internal.to_error("", "pods", "");
        assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    }

    #[test]
    fn options_are_checked() {
        let bad = FaultOptions {
            error_rate: 1.5,
            ..FaultOptions::default()
        };
        assert!(bad.validate().is_err());
        let nan = FaultOptions {
            error_rate: f64::NAN,
            ..FaultOptions::default()
        };
        assert!(nan.validate().is_err());
        assert!(FaultOptions::default().validate().is_ok());
        assert!(!FaultOptions::default().is_enabled());
    }
}
