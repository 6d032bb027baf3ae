//! Tier 2 (long-term) storage of the Segment Store: the kinds the spec offers and the one in
//! effect.

use k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DEFAULT_TIER2_CLAIM, PravegaSpec};

/// Tier 2 (long-term) storage of the Segment Store: exactly one kind. When `tier2` is omitted
/// (or names no kind) the Segment Store uses a filesystem tier 2 on the PersistentVolumeClaim
/// `pravega-tier2`, which must exist (ReadWriteMany), as upstream's operator does. The kind
/// cannot change once the cluster exists.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tier2Spec {
    /// A shared filesystem (e.g. NFS) mounted from an existing PersistentVolumeClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FileSystemTier2>,
    /// Dell EMC ECS (S3-compatible object storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs: Option<EcsTier2>,
    /// An HDFS cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdfs: Option<HdfsTier2>,
}

/// The kind of tier 2 a spec selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier2Kind {
    /// `tier2.filesystem` (the default).
    Filesystem,
    /// `tier2.ecs`.
    Ecs,
    /// `tier2.hdfs`.
    Hdfs,
}

impl Tier2Kind {
    /// The field that selects it.
    pub fn field(self) -> &'static str {
        match self {
            Tier2Kind::Filesystem => "filesystem",
            Tier2Kind::Ecs => "ecs",
            Tier2Kind::Hdfs => "hdfs",
        }
    }
}

/// The tier 2 a spec selects, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tier2<'a> {
    /// A filesystem on this claim.
    Filesystem(&'a PersistentVolumeClaimVolumeSource),
    /// ECS.
    Ecs(&'a EcsTier2),
    /// HDFS.
    Hdfs(&'a HdfsTier2),
}

static DEFAULT_TIER2_SOURCE: std::sync::LazyLock<PersistentVolumeClaimVolumeSource> =
    std::sync::LazyLock::new(|| PersistentVolumeClaimVolumeSource {
        claim_name: DEFAULT_TIER2_CLAIM.to_owned(),
        read_only: None,
    });

impl Tier2<'_> {
    /// Its kind.
    pub fn kind(&self) -> Tier2Kind {
        match self {
            Tier2::Filesystem(_) => Tier2Kind::Filesystem,
            Tier2::Ecs(_) => Tier2Kind::Ecs,
            Tier2::Hdfs(_) => Tier2Kind::Hdfs,
        }
    }
}

impl Tier2Spec {
    /// The kinds that are set, in the order `filesystem`, `ecs`, `hdfs`.
    pub fn kinds(&self) -> Vec<Tier2Kind> {
        let mut out = Vec::new();
        if self.filesystem.is_some() {
            out.push(Tier2Kind::Filesystem);
        }
        if self.ecs.is_some() {
            out.push(Tier2Kind::Ecs);
        }
        if self.hdfs.is_some() {
            out.push(Tier2Kind::Hdfs);
        }
        out
    }
}

impl PravegaSpec {
    /// The tier 2 in effect: the first kind set (`filesystem`, then `ecs`, then `hdfs`, as
    /// upstream's operator does), or the default filesystem claim `pravega-tier2`.
    pub fn tier2(&self) -> Tier2<'_> {
        let t = self.tier2.as_ref();
        if let Some(fs) = t.and_then(|t| t.filesystem.as_ref()) {
            return Tier2::Filesystem(fs.claim());
        }
        if let Some(ecs) = t.and_then(|t| t.ecs.as_ref()) {
            return Tier2::Ecs(ecs);
        }
        if let Some(hdfs) = t.and_then(|t| t.hdfs.as_ref()) {
            return Tier2::Hdfs(hdfs);
        }
        Tier2::Filesystem(&DEFAULT_TIER2_SOURCE)
    }
}

/// Filesystem tier 2.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileSystemTier2 {
    /// The existing PersistentVolumeClaim (ReadWriteMany) to mount: `claimName` [`pravega-tier2`]
    /// and `readOnly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
}

impl FileSystemTier2 {
    /// The claim, `pravega-tier2` when none is named.
    pub fn claim(&self) -> &PersistentVolumeClaimVolumeSource {
        self.persistent_volume_claim
            .as_ref()
            .unwrap_or(&DEFAULT_TIER2_SOURCE)
    }
}

/// ECS tier 2 (upstream 0.4.0 to 0.4.3 field names; `configUri` and `prefix`, the names of
/// upstream 0.4.4 and later, are accepted too).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EcsTier2 {
    /// ECS endpoint URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// ECS configuration URI (upstream 0.4.4+ name of `uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_uri: Option<String>,
    /// Bucket.
    #[serde(default)]
    pub bucket: String,
    /// Root path in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Root path in the bucket (upstream 0.4.4+ name of `root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// ECS namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of a Secret in the cluster's namespace with the keys `ACCESS_KEY_ID` and
    /// `SECRET_KEY`; required.
    #[serde(default)]
    pub credentials: String,
}

impl EcsTier2 {
    /// The endpoint: `configUri`, else `uri`.
    pub fn endpoint(&self) -> Option<&str> {
        self.config_uri.as_deref().or(self.uri.as_deref())
    }

    /// The root path: `prefix`, else `root`.
    pub fn root_path(&self) -> Option<&str> {
        self.prefix.as_deref().or(self.root.as_deref())
    }
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
    /// Replication factor of the files Pravega writes [3].
    #[serde(default = "default_hdfs_replication")]
    #[schemars(range(min = 1))]
    pub replication_factor: i32,
}

fn default_hdfs_root() -> String {
    "/pravega".to_owned()
}

fn default_hdfs_replication() -> i32 {
    3
}
