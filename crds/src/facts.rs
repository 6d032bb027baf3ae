//! What the version rules read of a `PravegaCluster`'s status: [`StatusFacts`]. The rules decide
//! on these alone, so that a caller that reads only these fields of a JSON document (the
//! webhook, which skips the rest of the old object's status) decides exactly like one that
//! decoded the whole object (the operator).

use crate::conditions::{ConditionStatus, ConditionType, reasons};
use crate::types::PravegaClusterStatus;

/// What the version rules read of a status: the versions and three conditions. Built from a
/// [`PravegaClusterStatus`] with [`PravegaClusterStatus::facts`], or field by field from a
/// partial view of one (the webhook reads only these fields of a request) with
/// [`StatusFacts::new`] and [`StatusFacts::observe`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusFacts<'a> {
    /// `status.currentVersion`.
    pub current_version: Option<&'a str>,
    /// `status.targetVersion`.
    pub target_version: Option<&'a str>,
    /// `Upgrading` is `True`.
    pub upgrading: bool,
    /// `RollbackInProgress` is `True`.
    pub rolling_back: bool,
    /// `Error` is `True` with reason `UpgradeFailed`.
    pub upgrade_failed: bool,
    /// Condition types already observed: like [`PravegaClusterStatus::condition`], only the
    /// first condition of a type counts.
    seen: [bool; ConditionType::ALL.len()],
}

impl<'a> StatusFacts<'a> {
    /// Facts of a status with these versions and no conditions (yet).
    pub fn new(current_version: Option<&'a str>, target_version: Option<&'a str>) -> Self {
        Self {
            current_version,
            target_version,
            ..Self::default()
        }
    }

    /// Takes one condition into account, in the order of `status.conditions`.
    pub fn observe(&mut self, type_: ConditionType, status: ConditionStatus, reason: &str) {
        let index = type_ as usize;
        if self.seen[index] {
            return;
        }
        self.seen[index] = true;
        let is_true = status == ConditionStatus::True;
        match type_ {
            ConditionType::Upgrading => self.upgrading = is_true,
            ConditionType::RollbackInProgress => self.rolling_back = is_true,
            ConditionType::Error => {
                self.upgrade_failed = is_true && reason == reasons::UPGRADE_FAILED;
            }
            ConditionType::PodsReady | ConditionType::Ready => {}
        }
    }
}

impl PravegaClusterStatus {
    /// What the version rules read of this status.
    pub fn facts(&self) -> StatusFacts<'_> {
        let mut facts = StatusFacts::new(
            self.current_version.as_deref(),
            self.target_version.as_deref(),
        );
        for c in &self.conditions {
            facts.observe(c.type_, c.status, c.reason());
        }
        facts
    }
}
