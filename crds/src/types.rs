//! The `PravegaCluster` custom resource (`pravega.pravega.io/v1beta1`).
//!
//! Doc comments on the fields become the descriptions in the generated CRD, so
//! `kubectl explain pravegacluster.spec` shows them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::ClusterCondition;

/// Default external ZooKeeper connection string.
pub const DEFAULT_ZOOKEEPER_URI: &str = "zookeeper-client:2181";
/// Default BookKeeper image repository.
pub const DEFAULT_BOOKKEEPER_REPOSITORY: &str = "pravega/bookkeeper";
/// Default Pravega image repository.
pub const DEFAULT_PRAVEGA_REPOSITORY: &str = "pravega/pravega";
/// Default `spec.upgrade.timeout`.
pub const DEFAULT_UPGRADE_TIMEOUT: &str = "10m";

/// Desired state of a Pravega cluster: its version, ZooKeeper connection, BookKeeper and Pravega
/// components and upgrade policy.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "pravega.pravega.io",
    version = "v1beta1",
    kind = "PravegaCluster",
    plural = "pravegaclusters",
    singular = "pravegacluster",
    shortname = "pk",
    namespaced,
    status = "PravegaClusterStatus",
    doc = "A Pravega cluster (BookKeeper, Pravega Controller and Segment Store) managed by pravega-operator. Change spec.version to upgrade it.",
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.currentVersion","description":"The version the whole cluster runs"}"#,
    printcolumn = r#"{"name":"Desired Version","type":"string","jsonPath":".status.targetVersion","description":"The version the operator is moving the cluster to (set only during a version change)"}"#,
    printcolumn = r#"{"name":"Desired Members","type":"integer","jsonPath":".status.replicas","description":"The number of desired members (bookies, controllers and segment stores)"}"#,
    printcolumn = r#"{"name":"Ready Members","type":"integer","jsonPath":".status.readyReplicas","description":"The number of ready members"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PravegaClusterSpec {
    /// Version of Pravega and BookKeeper to run: a semantic version 2.0.0 such as `0.4.0` or
    /// `0.5.0-1`, used as the image tag. Changing it starts a rolling upgrade (or, after a failed
    /// upgrade, a rollback when set back to `status.currentVersion`).
    #[schemars(length(min = 1, max = 128))]
    pub version: String,

    /// Connection string of the external ZooKeeper ensemble (`host:port[,host:port...]`).
    #[serde(default = "default_zookeeper_uri")]
    #[schemars(length(min = 1))]
    pub zookeeper_uri: String,

    /// The BookKeeper component (bookies).
    #[serde(default)]
    pub bookkeeper: BookkeeperSpec,

    /// The Pravega components (Controller and Segment Store).
    #[serde(default)]
    pub pravega: PravegaSpec,

    /// How version changes are carried out.
    #[serde(default)]
    pub upgrade: UpgradeSpec,
}

fn default_zookeeper_uri() -> String {
    DEFAULT_ZOOKEEPER_URI.to_owned()
}

/// Container image settings. The tag is always `spec.version`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository, without a tag: the image is `<repository>:<spec.version>`.
    #[schemars(length(min = 1))]
    pub repository: String,
    /// Image pull policy: `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(Always|IfNotPresent|Never)$"))]
    pub pull_policy: Option<String>,
}

impl ImageSpec {
    fn with_repository(repository: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            pull_policy: None,
        }
    }

    /// The full image reference for `version`.
    pub fn image(&self, version: &str) -> String {
        format!("{}:{}", self.repository, version)
    }
}

/// BookKeeper (bookie) settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookkeeperSpec {
    /// Number of bookies.
    #[serde(default = "default_bookies")]
    #[schemars(range(min = 1))]
    pub replicas: i32,

    /// Bookie image; defaults to `pravega/bookkeeper`.
    #[serde(default = "default_bookkeeper_image")]
    pub image: ImageSpec,

    /// Persistent storage of each bookie. PVCs are never deleted by the operator.
    #[serde(default)]
    pub storage: BookkeeperStorage,

    /// Compute resources of each bookie container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<ResourceRequirements>>,

    /// BookKeeper configuration options, passed to the bookie as environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

pub(crate) fn default_bookies() -> i32 {
    3
}

fn default_bookkeeper_image() -> ImageSpec {
    ImageSpec::with_repository(DEFAULT_BOOKKEEPER_REPOSITORY)
}

impl Default for BookkeeperSpec {
    fn default() -> Self {
        Self {
            replicas: default_bookies(),
            image: default_bookkeeper_image(),
            storage: BookkeeperStorage::default(),
            resources: None,
            options: BTreeMap::new(),
        }
    }
}

/// Volume claim templates of a bookie. When a template is omitted the operator uses a 10Gi
/// `ReadWriteOnce` claim of the default storage class.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookkeeperStorage {
    /// Claim for the ledger directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_volume_claim_template: Option<Box<PersistentVolumeClaimSpec>>,
    /// Claim for the journal directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_volume_claim_template: Option<Box<PersistentVolumeClaimSpec>>,
    /// Claim for the index directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_volume_claim_template: Option<Box<PersistentVolumeClaimSpec>>,
}

/// Pravega Controller and Segment Store settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PravegaSpec {
    /// Number of Controller replicas.
    #[serde(default = "default_one")]
    #[schemars(range(min = 1))]
    pub controller_replicas: i32,

    /// Number of Segment Store replicas.
    #[serde(default = "default_one")]
    #[schemars(range(min = 1))]
    pub segment_store_replicas: i32,

    /// Pravega image (Controller and Segment Store); defaults to `pravega/pravega`.
    #[serde(default = "default_pravega_image")]
    pub image: ImageSpec,

    /// Pravega configuration options, passed as `-D<key>=<value>` JVM options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,

    /// Claim for the Segment Store cache volume. When omitted the operator uses a 20Gi
    /// `ReadWriteOnce` claim of the default storage class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_volume_claim_template: Option<Box<PersistentVolumeClaimSpec>>,

    /// Long-term (tier 2) storage of the Segment Store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier2: Option<Tier2Spec>,

    /// Compute resources of each Controller container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_resources: Option<Box<ResourceRequirements>>,

    /// Compute resources of each Segment Store container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_store_resources: Option<Box<ResourceRequirements>>,
}

pub(crate) fn default_one() -> i32 {
    1
}

fn default_pravega_image() -> ImageSpec {
    ImageSpec::with_repository(DEFAULT_PRAVEGA_REPOSITORY)
}

impl Default for PravegaSpec {
    fn default() -> Self {
        Self {
            controller_replicas: 1,
            segment_store_replicas: 1,
            image: default_pravega_image(),
            options: BTreeMap::new(),
            cache_volume_claim_template: None,
            tier2: None,
            controller_resources: None,
            segment_store_resources: None,
        }
    }
}

/// Tier 2 storage. Exactly one kind should be set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tier2Spec {
    /// A shared filesystem (e.g. NFS) mounted from an existing PersistentVolumeClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FileSystemTier2>,
    /// An HDFS cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdfs: Option<HdfsTier2>,
}

/// Filesystem tier 2.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileSystemTier2 {
    /// Name of an existing PersistentVolumeClaim (ReadWriteMany) to mount.
    #[schemars(length(min = 1))]
    pub persistent_volume_claim: String,
}

/// HDFS tier 2.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HdfsTier2 {
    /// HDFS URI, e.g. `hdfs://namenode:8020`.
    #[schemars(length(min = 1))]
    pub uri: String,
    /// Root directory for Pravega data.
    #[serde(default = "default_hdfs_root")]
    pub root: String,
}

fn default_hdfs_root() -> String {
    "/pravega".to_owned()
}

/// Upgrade policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeSpec {
    /// Longest time the upgrade may go without progress (a pod replaced and Ready) before it
    /// fails, written like `30s`, `10m` or `1h`.
    #[serde(default = "default_upgrade_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub timeout: String,
    /// While true, the operator makes no new template changes and deletes no pods for an upgrade.
    #[serde(default)]
    pub paused: bool,
    /// Roll back to `status.currentVersion` on its own when an upgrade fails.
    #[serde(default)]
    pub auto_rollback: bool,
}

fn default_upgrade_timeout() -> String {
    DEFAULT_UPGRADE_TIMEOUT.to_owned()
}

impl Default for UpgradeSpec {
    fn default() -> Self {
        Self {
            timeout: default_upgrade_timeout(),
            paused: false,
            auto_rollback: false,
        }
    }
}

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
