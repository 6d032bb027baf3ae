//! What the version rules read of a `PravegaCluster`: [`SpecFacts`] of its spec and
//! [`StatusFacts`] of its status. The rules decide on these alone, so that a caller that reads
//! only these fields of a JSON document (the webhook, for every request) decides exactly like
//! one that decoded the whole object (the operator).

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use crate::conditions::{ConditionStatus, ConditionType, reasons};
use crate::types::{
    DEFAULT_BOOKKEEPER_REPOSITORY, DEFAULT_PRAVEGA_REPOSITORY, DEFAULT_UPGRADE_TIMEOUT,
    DEFAULT_ZOOKEEPER_URI, PravegaClusterSpec, PravegaClusterStatus, default_bookies, default_one,
};

/// What the version rules read of a spec. Built from a [`PravegaClusterSpec`] with
/// [`PravegaClusterSpec::facts`], or deserialized straight from the spec's JSON, reading only
/// these fields (with the spec's defaults for absent ones) and borrowing its strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecFacts<'a> {
    /// `spec.version`.
    pub version: Cow<'a, str>,
    /// `spec.zookeeperUri`.
    pub zookeeper_uri: Cow<'a, str>,
    /// `spec.bookkeeper.replicas`.
    pub bookkeeper_replicas: i32,
    /// `spec.bookkeeper.image.repository`.
    pub bookkeeper_repository: Cow<'a, str>,
    /// `spec.pravega.controllerReplicas`.
    pub controller_replicas: i32,
    /// `spec.pravega.segmentStoreReplicas`.
    pub segment_store_replicas: i32,
    /// `spec.pravega.image.repository`.
    pub pravega_repository: Cow<'a, str>,
    /// `spec.upgrade.timeout`.
    pub upgrade_timeout: Cow<'a, str>,
}

impl PravegaClusterSpec {
    /// What the version rules read of this spec.
    pub fn facts(&self) -> SpecFacts<'_> {
        SpecFacts {
            version: Cow::Borrowed(&self.version),
            zookeeper_uri: Cow::Borrowed(&self.zookeeper_uri),
            bookkeeper_replicas: self.bookkeeper.replicas,
            bookkeeper_repository: Cow::Borrowed(&self.bookkeeper.image.repository),
            controller_replicas: self.pravega.controller_replicas,
            segment_store_replicas: self.pravega.segment_store_replicas,
            pravega_repository: Cow::Borrowed(&self.pravega.image.repository),
            upgrade_timeout: Cow::Borrowed(&self.upgrade.timeout),
        }
    }
}

/// The spec's JSON shape, reduced to the fields of [`SpecFacts`], with the same defaults and
/// required fields as [`PravegaClusterSpec`]; every other field is skipped unread.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecShape<'a> {
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(default = "zookeeper_uri", borrow)]
    zookeeper_uri: Cow<'a, str>,
    #[serde(default, borrow)]
    bookkeeper: BookkeeperShape<'a>,
    #[serde(default, borrow)]
    pravega: PravegaShape<'a>,
    #[serde(default, borrow)]
    upgrade: UpgradeShape<'a>,
}

#[derive(Deserialize)]
struct ImageShape<'a> {
    #[serde(borrow)]
    repository: Cow<'a, str>,
}

#[derive(Deserialize)]
struct BookkeeperShape<'a> {
    #[serde(default = "default_bookies")]
    replicas: i32,
    #[serde(default = "bookkeeper_image", borrow)]
    image: ImageShape<'a>,
}

impl Default for BookkeeperShape<'_> {
    fn default() -> Self {
        Self {
            replicas: default_bookies(),
            image: bookkeeper_image(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PravegaShape<'a> {
    #[serde(default = "default_one")]
    controller_replicas: i32,
    #[serde(default = "default_one")]
    segment_store_replicas: i32,
    #[serde(default = "pravega_image", borrow)]
    image: ImageShape<'a>,
}

impl Default for PravegaShape<'_> {
    fn default() -> Self {
        Self {
            controller_replicas: default_one(),
            segment_store_replicas: default_one(),
            image: pravega_image(),
        }
    }
}

#[derive(Deserialize)]
struct UpgradeShape<'a> {
    #[serde(default = "upgrade_timeout", borrow)]
    timeout: Cow<'a, str>,
}

impl Default for UpgradeShape<'_> {
    fn default() -> Self {
        Self {
            timeout: upgrade_timeout(),
        }
    }
}

fn zookeeper_uri() -> Cow<'static, str> {
    Cow::Borrowed(DEFAULT_ZOOKEEPER_URI)
}

fn upgrade_timeout() -> Cow<'static, str> {
    Cow::Borrowed(DEFAULT_UPGRADE_TIMEOUT)
}

fn bookkeeper_image() -> ImageShape<'static> {
    ImageShape {
        repository: Cow::Borrowed(DEFAULT_BOOKKEEPER_REPOSITORY),
    }
}

fn pravega_image() -> ImageShape<'static> {
    ImageShape {
        repository: Cow::Borrowed(DEFAULT_PRAVEGA_REPOSITORY),
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for SpecFacts<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = SpecShape::deserialize(d)?;
        Ok(SpecFacts {
            version: s.version,
            zookeeper_uri: s.zookeeper_uri,
            bookkeeper_replicas: s.bookkeeper.replicas,
            bookkeeper_repository: s.bookkeeper.image.repository,
            controller_replicas: s.pravega.controller_replicas,
            segment_store_replicas: s.pravega.segment_store_replicas,
            pravega_repository: s.pravega.image.repository,
            upgrade_timeout: s.upgrade.timeout,
        })
    }
}

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
            ConditionType::PodsReady => {}
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
