//! The observed state of a cluster, written by the operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::ClusterCondition;

/// Observed state of a Pravega cluster, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PravegaClusterStatus {
    /// Conditions: `Upgrading`, `PodsReady`, `Error` and `RollbackInProgress`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterCondition>,

    /// The version the whole cluster runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,

    /// The version the operator is moving the cluster to; set only during an upgrade or rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,

    /// Versions the cluster has run, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub version_history: Vec<String>,

    /// Number of desired members (bookies + controllers + segment stores).
    #[serde(default)]
    pub replicas: i32,

    /// Number of members that exist.
    #[serde(default)]
    pub current_replicas: i32,

    /// Number of members that are Ready.
    #[serde(default)]
    pub ready_replicas: i32,

    /// Member pods by readiness.
    #[serde(default)]
    pub members: MembersStatus,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Progress of the version change in flight (or of the last one that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeStatus>,

    /// A rolling restart in progress (or the last one that failed): pods are replaced one at a
    /// time, in upgrade order, to apply a change of the spec other than the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartStatus>,

    /// The version last recorded on the cluster's volumes (the annotation
    /// `pravega.pravega.io/highest-version` of each bookie and Segment Store claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes_version: Option<String>,

    /// A `spec.version` the operator refused while another version change was in flight (when
    /// no webhook refused it first). It is not acted on, even after that change ends, until
    /// `spec.version` is set to something else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_version: Option<String>,
}

/// Member pods of the cluster, by readiness. Names are sorted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembersStatus {
    /// Pods that are Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ready: Vec<String>,
    /// Pods that are not Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unready: Vec<String>,
}

impl MembersStatus {
    /// Builds the member lists from `(pod name, ready)` pairs, sorted and without duplicates.
    pub fn from_pods<'a, I>(pods: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, bool)>,
    {
        let mut ready = Vec::new();
        let mut unready = Vec::new();
        for (name, is_ready) in pods {
            if is_ready {
                ready.push(name.to_owned());
            } else {
                unready.push(name.to_owned());
            }
        }
        ready.sort();
        ready.dedup();
        unready.sort();
        unready.dedup();
        Self { ready, unready }
    }

    /// Total number of members listed.
    pub fn len(&self) -> usize {
        self.ready.len() + self.unready.len()
    }

    /// True when no member is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Progress of a version change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStatus {
    /// Version the change started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    /// Version the change goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_version: Option<String>,
    /// When the change started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the change last made progress (a pod replaced and Ready, a component finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_progress_at: Option<Time>,
    /// Per-component progress, in upgrade order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentProgress>,
    /// The `metadata.generation` of the spec when the change failed. After a failed rollback,
    /// any later edit of the spec (a longer `spec.upgrade.timeout`, say) retries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_generation: Option<i64>,
    /// Why the change is waiting now, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<UpgradeBlocker>,
}

/// Why a version change waits: the reason (a `Blocked` name such as `SafetyCheckFailed`,
/// `CanaryHold` or `PodNotReady`), a message a person can act on, and since when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeBlocker {
    /// CamelCase name of the blocker.
    pub reason: String,
    /// What the change waits for.
    pub message: String,
    /// When this blocker started.
    pub since: Time,
}

/// Progress of a rolling restart: a change of the spec other than the version (resources, options,
/// JVM options, tier 2 settings...) applied to running pods with the upgrade's mechanics.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartStatus {
    /// When the restart started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it last made progress (a pod replaced and Ready, a component finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_progress_at: Option<Time>,
    /// Pods still running with the previous settings, in the order they will be replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    /// The `metadata.generation` of the spec when the restart failed; a later edit retries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_generation: Option<i64>,
}

/// Progress of one component during a version change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentProgress {
    /// `bookkeeper`, `controller` or `segmentstore`.
    pub component: String,
    /// Pods running the target version.
    pub updated: i32,
    /// Pods that are Ready.
    pub ready: i32,
    /// Desired pods.
    pub target: i32,
    /// True when every pod runs the target version and is Ready.
    #[serde(default)]
    pub done: bool,
}
