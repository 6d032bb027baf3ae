//! The `PravegaCluster` custom resource (`pravega.pravega.io/v1beta1`).
//!
//! Doc comments on the fields become the descriptions in the generated CRD, so
//! `kubectl explain pravegacluster.spec` shows them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, PersistentVolumeClaimSpec, ResourceRequirements, Toleration,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod status;
mod tier2;

pub use status::{
    ComponentProgress, MembersStatus, PravegaClusterStatus, RestartStatus, UpgradeBlocker,
    UpgradeStatus,
};
pub use tier2::{EcsTier2, FileSystemTier2, HdfsTier2, Tier2, Tier2Kind, Tier2Spec};

/// Default external ZooKeeper connection string.
pub const DEFAULT_ZOOKEEPER_URI: &str = "zookeeper-client:2181";
/// Default BookKeeper image repository.
pub const DEFAULT_BOOKKEEPER_REPOSITORY: &str = "pravega/bookkeeper";
/// Default Pravega image repository.
pub const DEFAULT_PRAVEGA_REPOSITORY: &str = "pravega/pravega";
/// Default `spec.upgrade.timeout`.
pub const DEFAULT_UPGRADE_TIMEOUT: &str = "10m";
/// Claim of the default filesystem tier 2 (upstream pravega-operator 0.4.x defaults to it too:
/// `pkg/apis/pravega/v1alpha1/pravega.go@v0.4.5`).
pub const DEFAULT_TIER2_CLAIM: &str = "pravega-tier2";

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
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"The Ready condition: every member runs spec.version and is Ready, nothing in progress or failed (kubectl get -o wide)"}"#,
    printcolumn = r#"{"name":"Spec Version","type":"string","priority":1,"jsonPath":".spec.version","description":"spec.version: differs from Version while a change is pending, refused, or after an automatic rollback (kubectl get -o wide)"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PravegaClusterSpec {
    /// Version of Pravega and BookKeeper to run: a semantic version 2.0.0 such as `0.4.0` or
    /// `0.5.0-1`, used as the image tag. Changing it starts a rolling upgrade (or, after a failed
    /// upgrade, a rollback when set back to `status.currentVersion`).
    #[schemars(length(min = 1, max = 63))]
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

    /// External access to the Controller and Segment Stores (upstream 0.4.x field). Accepted so
    /// that upstream manifests apply unchanged; not honoured yet (admission warns when enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_access: Option<ExternalAccessSpec>,

    /// TLS of the Controller and Segment Stores (upstream 0.4.x field). Accepted so that
    /// upstream manifests apply unchanged; not honoured yet (admission warns when set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// Authentication of the Controller (upstream 0.4.2+ field). Accepted so that upstream
    /// manifests apply unchanged; not honoured yet (admission warns when enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthenticationSpec>,
}

/// `spec.externalAccess` (upstream 0.4.x).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalAccessSpec {
    /// Expose the Controller and every Segment Store outside the cluster.
    #[serde(default)]
    pub enabled: bool,
    /// Service type of the external Services (`LoadBalancer` or `NodePort`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// DNS domain for the external Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
}

/// `spec.tls` (upstream 0.4.x).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// Certificates from Secrets.
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_: Option<StaticTlsSpec>,
}

/// `spec.tls.static` (upstream 0.4.x).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticTlsSpec {
    /// Secret with the Controller's certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_secret: Option<String>,
    /// Secret with the Segment Store's certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_store_secret: Option<String>,
    /// Secret with the CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
}

impl TlsSpec {
    /// True when any certificate Secret is named.
    pub fn is_set(&self) -> bool {
        self.static_.as_ref().is_some_and(|s| {
            s.controller_secret.is_some()
                || s.segment_store_secret.is_some()
                || s.ca_bundle.is_some()
        })
    }
}

/// `spec.authentication` (upstream 0.4.2+).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationSpec {
    /// Require clients to authenticate.
    #[serde(default)]
    pub enabled: bool,
    /// Secret with the password file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_auth_secret: Option<String>,
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
    /// Deprecated (upstream 0.4.x): ignored, the tag is always `spec.version`. Admission warns
    /// when it differs from `spec.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl ImageSpec {
    fn with_repository(repository: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            pull_policy: None,
            tag: None,
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
    /// Number of bookies (at most 100).
    #[serde(default = "default_bookies")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: i32,

    /// Bookie image; defaults to `pravega/bookkeeper`.
    #[serde(default = "default_bookkeeper_image")]
    pub image: ImageSpec,

    /// Persistent storage of each bookie. PVCs are never deleted by the operator.
    #[serde(default)]
    pub storage: BookkeeperStorage,

    /// Compute resources of each bookie container. When omitted: requests 500m CPU and 1Gi
    /// memory, limits 1 CPU and 2Gi memory (upstream's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<ResourceRequirements>>,

    /// BookKeeper configuration options (`bk_server.conf` keys), passed to the bookie as `BK_<key>`
    /// environment variables. They win over the operator's defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,

    /// Run the auto-recovery daemon in every bookie. Re-replication of a lost bookie's ledgers
    /// waits `lostBookieRecoveryDelay` (default 60 s, set it in `options`), so that a bookie
    /// restarted by an upgrade does not start it.
    #[serde(default = "default_true")]
    pub auto_recovery: bool,

    /// Service account of the bookie pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// JVM options of the bookies, by the `bin/bookkeeper` variable they go to. A flag given here
    /// replaces the operator's default for the same flag (`-Xmx`, `-XX:MaxDirectMemorySize`...).
    #[serde(
        default,
        rename = "bookkeeperJVMOptions",
        skip_serializing_if = "BookkeeperJvmOptions::is_empty"
    )]
    pub jvm_options: BookkeeperJvmOptions,

    /// Scheduling constraints of the bookie pods. When omitted, bookies prefer distinct nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "affinity_schema")]
    pub affinity: Option<Box<Affinity>>,

    /// Tolerations of the bookie pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Node selector of the bookie pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
}

/// JVM options of the bookies (upstream 0.4.2+ `bookkeeperJVMOptions`): each list goes to the
/// `bin/bookkeeper` variable of the same name (`BOOKIE_MEM_OPTS`, `BOOKIE_GC_OPTS`,
/// `BOOKIE_GC_LOGGING_OPTS`, `BOOKIE_EXTRA_OPTS`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookkeeperJvmOptions {
    /// Heap and direct memory (`-Xms`, `-Xmx`, `-XX:MaxDirectMemorySize`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory_opts: Vec<String>,
    /// Garbage collector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gc_opts: Vec<String>,
    /// Garbage collection logging.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gc_logging_opts: Vec<String>,
    /// Anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_opts: Vec<String>,
}

impl BookkeeperJvmOptions {
    /// True when no option is given.
    pub fn is_empty(&self) -> bool {
        self.memory_opts.is_empty()
            && self.gc_opts.is_empty()
            && self.gc_logging_opts.is_empty()
            && self.extra_opts.is_empty()
    }
}

/// The schema of an `affinity` field: a Kubernetes `Affinity`, checked when the operator and the
/// webhook decode it rather than spelled out in the CRD (its full schema is 32 KB, and three of
/// them would push the CRD past what `kubectl apply` can store in its annotation).
fn affinity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "A Kubernetes Affinity (nodeAffinity, podAffinity, podAntiAffinity), as in a pod spec.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

pub(crate) fn default_true() -> bool {
    true
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
            auto_recovery: true,
            service_account_name: None,
            jvm_options: BookkeeperJvmOptions::default(),
            affinity: None,
            tolerations: Vec::new(),
            node_selector: BTreeMap::new(),
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
    /// Number of Controller replicas (at most 20).
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 20))]
    pub controller_replicas: i32,

    /// Number of Segment Store replicas (at most 100).
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 100))]
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

    /// Compute resources of each Segment Store container. When omitted: requests 500m CPU and
    /// 1Gi memory, limits 1 CPU and 2Gi memory (upstream's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_store_resources: Option<Box<ResourceRequirements>>,

    /// Log at DEBUG level in the Controller and Segment Store.
    #[serde(default)]
    pub debug_logging: bool,

    /// JVM options of the Controller (upstream's name). A flag given here replaces the operator's
    /// default for the same flag (`-Xmx`, `-XX:MaxDirectMemorySize`...).
    #[serde(
        default,
        rename = "controllerjvmOptions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub controller_jvm_options: Vec<String>,

    /// JVM options of the Segment Store. A flag given here replaces the operator's default for the
    /// same flag. From Pravega 0.11 `-XX:MaxDirectMemorySize` must exceed the cache size
    /// (`pravegaservice.cache.size.max` in `options`).
    #[serde(
        default,
        rename = "segmentStoreJVMOptions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub segment_store_jvm_options: Vec<String>,

    /// Service account of the Controller pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_service_account_name: Option<String>,

    /// Service account of the Segment Store pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_store_service_account_name: Option<String>,

    /// Scheduling constraints of the Controller pods. When omitted, they prefer distinct nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "affinity_schema")]
    pub controller_affinity: Option<Box<Affinity>>,

    /// Tolerations of the Controller pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controller_tolerations: Vec<Toleration>,

    /// Node selector of the Controller pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub controller_node_selector: BTreeMap<String, String>,

    /// Scheduling constraints of the Segment Store pods. When omitted, they prefer distinct
    /// nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "affinity_schema")]
    pub segment_store_affinity: Option<Box<Affinity>>,

    /// Tolerations of the Segment Store pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_store_tolerations: Vec<Toleration>,

    /// Node selector of the Segment Store pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub segment_store_node_selector: BTreeMap<String, String>,

    /// Service type of the external Controller Service (upstream 0.4.2+). Accepted, not honoured
    /// yet: see `spec.externalAccess`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_ext_service_type: Option<String>,

    /// Annotations of the external Controller Service (upstream 0.4.2+). Accepted, not honoured
    /// yet: see `spec.externalAccess`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub controller_svc_annotations: BTreeMap<String, String>,

    /// Service type of the external Segment Store Services (upstream 0.4.2+). Accepted, not
    /// honoured yet: see `spec.externalAccess`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_store_ext_service_type: Option<String>,

    /// Annotations of the external Segment Store Services (upstream 0.4.2+). Accepted, not
    /// honoured yet: see `spec.externalAccess`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub segment_store_svc_annotations: BTreeMap<String, String>,
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
            debug_logging: false,
            controller_jvm_options: Vec::new(),
            segment_store_jvm_options: Vec::new(),
            controller_service_account_name: None,
            segment_store_service_account_name: None,
            controller_affinity: None,
            controller_tolerations: Vec::new(),
            controller_node_selector: BTreeMap::new(),
            segment_store_affinity: None,
            segment_store_tolerations: Vec::new(),
            segment_store_node_selector: BTreeMap::new(),
            controller_ext_service_type: None,
            controller_svc_annotations: BTreeMap::new(),
            segment_store_ext_service_type: None,
            segment_store_svc_annotations: BTreeMap::new(),
        }
    }
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
    /// The checks that must pass before each pod restart of an upgrade or rollback. Unset: all
    /// of them. `[]`: none (only the replacement's readiness gates the next step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_checks: Option<Vec<SafetyCheck>>,
    /// How long a replaced pod must stay Ready, without a container restart, before the next
    /// pod is restarted (soak time), written like `30s` or `2m`. Unset: no soak time. A
    /// replacement that restarts before the upgrade ends fails it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub pod_stabilization: Option<String>,
    /// Canary: after this many pods of an upgrade were replaced (counted across components, in
    /// upgrade order), the upgrade holds (`CanaryHold`) until the field is raised or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub pause_after_pods: Option<u32>,
}

/// A named check run before each pod restart of an upgrade or rollback.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum SafetyCheck {
    /// Before a bookie restarts: BookKeeper lists no under-replicated ledgers (bookie HTTP admin
    /// API, `/api/v1/autorecovery/list_under_replicated_ledger`; images 0.5 and later).
    NoUnderReplicatedLedgers,
    /// Before a bookie restarts: every bookie of the cluster is registered read-write
    /// (`/api/v1/bookie/list_bookies?type=rw`; images 0.5 and later).
    BookiesWritable,
    /// Before a Controller or Segment Store restart: every other Controller and Segment Store
    /// that serves Pravega's health API (0.10 and later) reports itself ready
    /// (`/v1/health/readiness`).
    PravegaHealthy,
    /// Before any restart: every other member of the cluster is Ready and, with
    /// `podStabilization`, has been for that long.
    MembersStable,
}

impl SafetyCheck {
    /// Every check, in the order they are evaluated.
    pub const ALL: [SafetyCheck; 4] = [
        SafetyCheck::MembersStable,
        SafetyCheck::NoUnderReplicatedLedgers,
        SafetyCheck::BookiesWritable,
        SafetyCheck::PravegaHealthy,
    ];

    /// The check's name, as `spec.upgrade.safetyChecks` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SafetyCheck::NoUnderReplicatedLedgers => "NoUnderReplicatedLedgers",
            SafetyCheck::BookiesWritable => "BookiesWritable",
            SafetyCheck::PravegaHealthy => "PravegaHealthy",
            SafetyCheck::MembersStable => "MembersStable",
        }
    }
}

impl std::fmt::Display for SafetyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl UpgradeSpec {
    /// The checks in force (`safetyChecks`, all of them when unset), without repeats.
    pub fn checks(&self) -> Vec<SafetyCheck> {
        match &self.safety_checks {
            None => SafetyCheck::ALL.to_vec(),
            Some(list) => SafetyCheck::ALL
                .into_iter()
                .filter(|c| list.contains(c))
                .collect(),
        }
    }
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
            safety_checks: None,
            pod_stabilization: None,
            pause_after_pods: None,
        }
    }
}
