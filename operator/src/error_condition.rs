//! The one place the reconcile loop decides its own `Error` reasons: a refused spec
//! (`InvalidSpec`), volumes holding newer data (`DataFromNewerVersion`) and a failed reconcile
//! (`ReconcileFailed`). The planner owns the reasons of version changes and rolling restarts
//! (`UpgradeFailed`, `RollbackFailed`, `RestartFailed`, and `InvalidSpec` for a version change
//! refused while another is in flight), which always win: a failure a person must act on is
//! never hidden behind a transient one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pravega_crds::{ConditionStatus, ConditionType, PravegaClusterStatus, reasons};

/// The reasons this module sets and clears.
const OWN: [&str; 3] = [
    reasons::INVALID_SPEC,
    reasons::DATA_FROM_NEWER_VERSION,
    reasons::RECONCILE_FAILED,
];

/// What the reconcile found, as far as its own `Error` reasons go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding<'a> {
    /// The spec is refused, or the volumes hold newer data: `reason` is `InvalidSpec` or
    /// `DataFromNewerVersion`.
    Refused {
        /// The condition's reason.
        reason: &'static str,
        /// What is wrong.
        message: &'a str,
    },
    /// The spec passed: nothing of the reconcile's own stands (decided before planning, so
    /// that the planner starts from a clean `Error`).
    Clear,
    /// The reconcile failed.
    ReconcileFailed(&'a str),
}

/// How a finding shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// In the `Error` condition; `changed` when the condition changed.
    Condition {
        /// The condition changed.
        changed: bool,
    },
    /// Not in the condition, which shows a failure of a version change: by an Event only.
    EventOnly,
}

/// True when `Error` shows a failure the planner owns.
fn planner_failure(status: &PravegaClusterStatus) -> bool {
    status
        .condition(ConditionType::Error)
        .is_some_and(|c| c.is_true() && !OWN.contains(&c.reason()))
}

/// Records `finding` in `status`'s `Error` condition.
pub fn record(status: &mut PravegaClusterStatus, finding: Finding<'_>, now: &Time) -> Shown {
    match finding {
        Finding::Clear => {
            let ours = OWN.iter().any(|r| status.has_error_reason(r));
            let changed = ours
                && status.set_condition(ConditionType::Error, ConditionStatus::False, "", "", now);
            Shown::Condition { changed }
        }
        Finding::Refused { .. } | Finding::ReconcileFailed(_) if planner_failure(status) => {
            Shown::EventOnly
        }
        Finding::Refused { reason, message } => Shown::Condition {
            changed: status.set_condition(
                ConditionType::Error,
                ConditionStatus::True,
                reason,
                message,
                now,
            ),
        },
        Finding::ReconcileFailed(message) => Shown::Condition {
            changed: status.set_condition(
                ConditionType::Error,
                ConditionStatus::True,
                reasons::RECONCILE_FAILED,
                message,
                now,
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    fn with_error(reason: &str) -> PravegaClusterStatus {
        let mut s = PravegaClusterStatus::default();
        s.set_condition(
            ConditionType::Error,
            ConditionStatus::True,
            reason,
            "m",
            &now(),
        );
        s
    }

    #[test]
    fn a_refusal_shows_unless_an_upgrade_failure_does() {
        let mut s = PravegaClusterStatus::default();
        let refused = Finding::Refused {
            reason: reasons::INVALID_SPEC,
            message: "bad",
        };
        assert_eq!(
            record(&mut s, refused, &now()),
            Shown::Condition { changed: true }
        );
        assert!(s.has_error_reason(reasons::INVALID_SPEC));
        assert_eq!(
            record(&mut s, refused, &now()),
            Shown::Condition { changed: false }
        );
        let mut s = with_error(reasons::UPGRADE_FAILED);
        assert_eq!(record(&mut s, refused, &now()), Shown::EventOnly);
        assert!(s.has_error_reason(reasons::UPGRADE_FAILED));
    }

    #[test]
    fn clear_removes_only_the_reconciles_own_reasons() {
        for own in OWN {
            let mut s = with_error(own);
            assert_eq!(
                record(&mut s, Finding::Clear, &now()),
                Shown::Condition { changed: true }
            );
            assert!(!s.is_condition_true(ConditionType::Error), "{own}");
        }
        let mut s = with_error(reasons::ROLLBACK_FAILED);
        assert_eq!(
            record(&mut s, Finding::Clear, &now()),
            Shown::Condition { changed: false }
        );
        assert!(s.has_error_reason(reasons::ROLLBACK_FAILED));
    }

    #[test]
    fn a_failed_reconcile_never_hides_an_upgrade_failure() {
        let mut s = with_error(reasons::UPGRADE_FAILED);
        assert_eq!(
            record(&mut s, Finding::ReconcileFailed("409"), &now()),
            Shown::EventOnly
        );
        assert!(s.has_error_reason(reasons::UPGRADE_FAILED));
        let mut s = with_error(reasons::INVALID_SPEC);
        record(&mut s, Finding::ReconcileFailed("409"), &now());
        assert!(s.has_error_reason(reasons::RECONCILE_FAILED));
    }
}
