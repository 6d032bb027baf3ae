//! Status conditions of a `PravegaCluster` and the helpers that keep their times honest:
//! `lastTransitionTime` changes only when the status changes, `lastUpdateTime` on every update.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::PravegaClusterStatus;

/// The condition types a `PravegaCluster` reports.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum ConditionType {
    /// True while the operator moves the cluster to `status.targetVersion`.
    Upgrading,
    /// True when every desired member exists and is Ready.
    PodsReady,
    /// True when the operator needs a person: see `reason` and `message`.
    Error,
    /// True while the operator rolls a failed upgrade back to `status.currentVersion`.
    RollbackInProgress,
    /// True when every member runs `spec.version` and is Ready, and nothing is in progress or
    /// failed: what `kubectl wait --for=condition=Ready`, kstatus, Argo CD and Flux look at.
    Ready,
}

impl ConditionType {
    /// Every condition type, in the order they are listed in status.
    pub const ALL: [ConditionType; 5] = [
        ConditionType::Upgrading,
        ConditionType::PodsReady,
        ConditionType::Error,
        ConditionType::RollbackInProgress,
        ConditionType::Ready,
    ];

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Upgrading => "Upgrading",
            ConditionType::PodsReady => "PodsReady",
            ConditionType::Error => "Error",
            ConditionType::RollbackInProgress => "RollbackInProgress",
            ConditionType::Ready => "Ready",
        }
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `True`, `False` or `Unknown`, as in every Kubernetes condition.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    /// `True` for true, `False` for false.
    pub fn from_bool(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// Reasons the operator writes into conditions. Kept in one place so the webhook, the operator,
/// the docs and the tests agree.
pub mod reasons {
    /// `Error`: an upgrade stopped and needs a person (or a rollback).
    pub const UPGRADE_FAILED: &str = "UpgradeFailed";
    /// `Error`: a rollback stopped and needs a person.
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    /// `Error`: the spec was refused (e.g. an invalid version when the webhook is absent).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// `Error`: the operator could not apply the cluster's objects.
    pub const RECONCILE_FAILED: &str = "ReconcileFailed";
    /// `Upgrading`/`RollbackInProgress`: work under way.
    pub const IN_PROGRESS: &str = "InProgress";
    /// `Upgrading`: waiting for all members to be Ready before starting.
    pub const WAITING_FOR_PODS: &str = "WaitingForPodsReady";
    /// `Upgrading`: `spec.upgrade.paused` is true.
    pub const PAUSED: &str = "Paused";
    /// `Upgrading`/`RollbackInProgress`: finished.
    pub const COMPLETED: &str = "Completed";
    /// `PodsReady`: all members are Ready.
    pub const ALL_PODS_READY: &str = "AllPodsReady";
    /// `PodsReady`: some member is missing or not Ready.
    pub const PODS_NOT_READY: &str = "PodsNotReady";
    /// `Ready`: every member runs `spec.version` and is Ready.
    pub const UP_TO_DATE: &str = "UpToDate";
    /// `Ready` (False): `spec.version` differs from the version the cluster runs and no change
    /// is in progress (waiting, paused, refused, or rolled back away from it).
    pub const VERSION_MISMATCH: &str = "VersionMismatch";
    /// `Ready` (False): the first deployment is not complete yet.
    pub const DEPLOYING: &str = "Deploying";
    /// `Ready` (False): an upgrade or a rolling restart is in progress (`Upgrading` is True).
    pub const UPGRADING: &str = "Upgrading";
    /// `Ready` (False): a rollback is in progress (`RollbackInProgress` is True).
    pub const ROLLING_BACK: &str = "RollingBack";
    /// `Error`: every member became Ready at one version after a failure; the failure is over.
    pub const RECOVERED: &str = "Recovered";
    /// `Upgrading`: a paused upgrade was cancelled by setting `spec.version` back.
    pub const CANCELLED: &str = "Cancelled";
    /// `Upgrading`: pods are replaced one at a time to apply a change of the spec other than
    /// the version.
    pub const ROLLING_RESTART: &str = "RollingRestart";
    /// `Error`: the cluster's volumes hold data written by a newer version than `spec.version`.
    pub const DATA_FROM_NEWER_VERSION: &str = "DataFromNewerVersion";
    /// `Error`: a rolling restart stopped (a replaced pod does not come up with the new
    /// settings, or no progress within the timeout).
    pub const RESTART_FAILED: &str = "RestartFailed";
    /// `Error` (False) and `Upgrading` (False): a rollback completed; the cluster runs
    /// `currentVersion` again.
    pub const ROLLED_BACK: &str = "RolledBack";
}

/// Reasons of the Events the operator publishes about a PravegaCluster (besides the `Error`
/// reasons of [`reasons`] it also uses for Events). Kept in one place so the operator, the docs
/// and the tests agree.
pub mod event_reasons {
    /// Normal: every member of a new cluster runs `spec.version`.
    pub const DEPLOYED: &str = "Deployed";
    /// Normal: a version change started.
    pub const UPGRADE_STARTED: &str = "UpgradeStarted";
    /// Normal: a pod is deleted so that it comes back at the target version.
    pub const UPGRADING_POD: &str = "UpgradingPod";
    /// Normal: one component runs the target version.
    pub const COMPONENT_UPGRADED: &str = "ComponentUpgraded";
    /// Normal: the whole cluster runs the target version.
    pub const UPGRADE_COMPLETED: &str = "UpgradeCompleted";
    /// Warning: the upgrade stopped and needs a person.
    pub const UPGRADE_FAILED: &str = "UpgradeFailed";
    /// Normal: `spec.upgrade.paused` stopped the version change.
    pub const UPGRADE_PAUSED: &str = "UpgradePaused";
    /// Normal: the version change goes on after a pause.
    pub const UPGRADE_RESUMED: &str = "UpgradeResumed";
    /// Warning: a `spec.version` change was refused (the webhook was absent).
    pub const VERSION_CHANGE_REFUSED: &str = "VersionChangeRefused";
    /// Warning: `spec.version` was refused before any change was made.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Normal: a rollback of a failed upgrade started.
    pub const ROLLBACK_STARTED: &str = "RollbackStarted";
    /// Normal: a pod is deleted so that it comes back at the previous version.
    pub const ROLLING_BACK_POD: &str = "RollingBackPod";
    /// Normal: one component runs the previous version again.
    pub const COMPONENT_ROLLED_BACK: &str = "ComponentRolledBack";
    /// Normal: the rollback completed.
    pub const ROLLBACK_COMPLETED: &str = "RollbackCompleted";
    /// Warning: the rollback stopped and needs a person.
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    /// Normal: a paused upgrade was cancelled by setting `spec.version` back.
    pub const UPGRADE_CANCELLED: &str = "UpgradeCancelled";
    /// Warning: the upgrade or rollback waits before its next restart, for a reason a person
    /// may need to act on (a safety check, a canary hold).
    pub const UPGRADE_BLOCKED: &str = "UpgradeBlocked";
    /// Warning: `status.currentVersion` disagreed with the running pods and was corrected.
    pub const CURRENT_VERSION_CORRECTED: &str = "CurrentVersionCorrected";
    /// Normal: a rolling restart started, to apply a change of the spec other than the version.
    pub const RESTART_STARTED: &str = "RestartStarted";
    /// Normal: a pod is deleted so that it is recreated with the current settings.
    pub const RESTARTING_POD: &str = "RestartingPod";
    /// Normal: every pod runs the current settings.
    pub const RESTART_COMPLETED: &str = "RestartCompleted";
    /// Warning: the rolling restart stopped and needs a person.
    pub const RESTART_FAILED: &str = "RestartFailed";
    /// Normal: a workload of the cluster was created.
    pub const CREATED: &str = "Created";
    /// Normal: a workload of the cluster changed its number of replicas.
    pub const SCALED: &str = "Scaled";
}

/// Actions of the Events the operator publishes about a PravegaCluster: what it was doing.
pub mod event_actions {
    /// Deploying a new cluster.
    pub const DEPLOY: &str = "Deploy";
    /// Upgrading.
    pub const UPGRADE: &str = "Upgrade";
    /// Rolling back.
    pub const ROLLBACK: &str = "Rollback";
    /// Deleting a pod.
    pub const DELETE_POD: &str = "DeletePod";
    /// Checking the spec.
    pub const VALIDATE: &str = "Validate";
    /// Rolling restart.
    pub const RESTART: &str = "Restart";
    /// Creating a workload.
    pub const CREATE: &str = "Create";
    /// Scaling a workload.
    pub const SCALE: &str = "Scale";
    /// Reconciling (a failure of the reconcile itself).
    pub const RECONCILE: &str = "Reconcile";
}

/// One status condition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCondition {
    /// `Upgrading`, `PodsReady`, `Error`, `RollbackInProgress` or `Ready`.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// A CamelCase reason for the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the condition was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

impl ClusterCondition {
    /// True when the status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }

    /// The reason, or "" when there is none.
    pub fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or_default()
    }

    /// The message, or "" when there is none.
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or_default()
    }
}

impl PravegaClusterStatus {
    /// The condition of type `type_`, if present.
    pub fn condition(&self, type_: ConditionType) -> Option<&ClusterCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// True when the condition of type `type_` is present and `True`.
    pub fn is_condition_true(&self, type_: ConditionType) -> bool {
        self.condition(type_).is_some_and(ClusterCondition::is_true)
    }

    /// True when `Error` is `True` with `reason`.
    pub fn has_error_reason(&self, reason: &str) -> bool {
        self.condition(ConditionType::Error)
            .is_some_and(|c| c.is_true() && c.reason() == reason)
    }

    /// Sets a condition. `lastTransitionTime` moves to `now` only when the status changes (or the
    /// condition is new); `lastUpdateTime` moves to `now` whenever status, reason or message
    /// change. Writing the same condition again changes nothing, so an unchanged status costs no
    /// write. Returns true when anything changed.
    pub fn set_condition(
        &mut self,
        type_: ConditionType,
        status: ConditionStatus,
        reason: &str,
        message: &str,
        now: &Time,
    ) -> bool {
        let reason = (!reason.is_empty()).then(|| reason.to_owned());
        let message = (!message.is_empty()).then(|| message.to_owned());
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => {
                if existing.status == status
                    && existing.reason == reason
                    && existing.message == message
                {
                    return false;
                }
                if existing.status != status {
                    existing.last_transition_time = Some(now.clone());
                }
                existing.status = status;
                existing.reason = reason;
                existing.message = message;
                existing.last_update_time = Some(now.clone());
                true
            }
            None => {
                self.conditions.push(ClusterCondition {
                    type_,
                    status,
                    reason,
                    message,
                    last_update_time: Some(now.clone()),
                    last_transition_time: Some(now.clone()),
                });
                // Keep a stable order so that status diffs stay small and output is predictable.
                self.conditions.sort_by_key(|c| c.type_);
                true
            }
        }
    }

    /// Removes the condition of type `type_`; returns true when one was removed.
    pub fn remove_condition(&mut self, type_: ConditionType) -> bool {
        let before = self.conditions.len();
        self.conditions.retain(|c| c.type_ != type_);
        before != self.conditions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    #[test]
    fn new_condition_sets_both_times() {
        let mut s = PravegaClusterStatus::default();
        assert!(s.set_condition(
            ConditionType::PodsReady,
            ConditionStatus::True,
            "AllPodsReady",
            "",
            &at(10)
        ));
        let c = s
            .condition(ConditionType::PodsReady)
            .cloned()
            .unwrap_or_else(|| panic!("missing"));
        assert_eq!(c.last_transition_time, Some(at(10)));
        assert_eq!(c.last_update_time, Some(at(10)));
        assert_eq!(c.reason.as_deref(), Some("AllPodsReady"));
        assert_eq!(c.message, None);
    }

    #[test]
    fn same_condition_again_changes_nothing() {
        let mut s = PravegaClusterStatus::default();
        s.set_condition(
            ConditionType::Error,
            ConditionStatus::False,
            "",
            "",
            &at(10),
        );
        let before = s.clone();
        assert!(!s.set_condition(
            ConditionType::Error,
            ConditionStatus::False,
            "",
            "",
            &at(20)
        ));
        assert_eq!(s, before);
    }

    #[test]
    fn message_change_moves_update_time_only() {
        let mut s = PravegaClusterStatus::default();
        s.set_condition(
            ConditionType::Upgrading,
            ConditionStatus::True,
            "InProgress",
            "a",
            &at(10),
        );
        assert!(s.set_condition(
            ConditionType::Upgrading,
            ConditionStatus::True,
            "InProgress",
            "b",
            &at(20)
        ));
        let c = s
            .condition(ConditionType::Upgrading)
            .cloned()
            .unwrap_or_else(|| panic!("missing"));
        assert_eq!(c.last_transition_time, Some(at(10)));
        assert_eq!(c.last_update_time, Some(at(20)));
        assert_eq!(c.message(), "b");
    }

    #[test]
    fn status_change_moves_both_times() {
        let mut s = PravegaClusterStatus::default();
        s.set_condition(
            ConditionType::Upgrading,
            ConditionStatus::True,
            "InProgress",
            "a",
            &at(10),
        );
        s.set_condition(
            ConditionType::Upgrading,
            ConditionStatus::False,
            "Completed",
            "",
            &at(30),
        );
        let c = s
            .condition(ConditionType::Upgrading)
            .cloned()
            .unwrap_or_else(|| panic!("missing"));
        assert_eq!(c.last_transition_time, Some(at(30)));
        assert_eq!(c.last_update_time, Some(at(30)));
        assert!(!s.is_condition_true(ConditionType::Upgrading));
    }

    #[test]
    fn conditions_keep_a_stable_order_and_serialize_like_the_guide() {
        let mut s = PravegaClusterStatus::default();
        s.set_condition(
            ConditionType::Error,
            ConditionStatus::True,
            "UpgradeFailed",
            "boom",
            &at(1),
        );
        s.set_condition(
            ConditionType::Upgrading,
            ConditionStatus::False,
            "",
            "",
            &at(1),
        );
        s.set_condition(
            ConditionType::PodsReady,
            ConditionStatus::False,
            "",
            "",
            &at(1),
        );
        let types: Vec<_> = s.conditions.iter().map(|c| c.type_).collect();
        assert_eq!(
            types,
            vec![
                ConditionType::Upgrading,
                ConditionType::PodsReady,
                ConditionType::Error
            ]
        );
        assert!(s.has_error_reason("UpgradeFailed"));
        let json = serde_json::to_value(&s.conditions[2]).unwrap_or_default();
        assert_eq!(json["type"], "Error");
        assert_eq!(json["status"], "True");
        assert_eq!(json["reason"], "UpgradeFailed");
        assert_eq!(json["lastTransitionTime"], "1970-01-01T00:00:01Z");
    }

    #[test]
    fn remove_condition() {
        let mut s = PravegaClusterStatus::default();
        s.set_condition(
            ConditionType::RollbackInProgress,
            ConditionStatus::True,
            "",
            "",
            &at(1),
        );
        assert!(s.remove_condition(ConditionType::RollbackInProgress));
        assert!(!s.remove_condition(ConditionType::RollbackInProgress));
        assert!(s.conditions.is_empty());
    }
}
