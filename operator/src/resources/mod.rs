//! Pure builders of the objects a `PravegaCluster` owns: the BookKeeper StatefulSet, the Pravega
//! Controller Deployment and the Segment Store StatefulSet, with their Services, ConfigMaps and
//! PodDisruptionBudgets.
//!
//! Nothing here talks to the API server: the reconcile loop builds the desired objects with
//! [`desired_objects`] and applies them.
//!
//! What a pod is given follows the image contract of the version it runs
//! ([`pravega_crds::contract`]): a component's pod template at version V is built from V's row,
//! so an upgrade that crosses a row boundary changes what the new pods read. Settings that every
//! version reads alike live in the component's ConfigMap (whose hash is in the pod template, so
//! that a change to it is a change to the template); settings that depend on the version are
//! environment variables of the template itself, so that a pod restarted at its old version
//! keeps its old contract.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use pravega_crds::names::{self, Component, LABEL_MANAGED_BY, LABEL_VERSION, MANAGER, VERSION_KEY};
use pravega_crds::{PravegaCluster, PravegaClusterSpec};

mod config;
mod env;
mod pod;
mod workloads;

use config::config_map;
use workloads::{bookkeeper_statefulset, controller_deployment, segmentstore_statefulset};

pub use env::pravega_java_opts;
pub use workloads::progress_deadline_seconds;

/// Port of a bookie.
pub const BOOKIE_PORT: i32 = 3181;
/// Port of a bookie's HTTP admin server (`httpServerPort`), on images that can run it.
pub const BOOKIE_ADMIN_PORT: i32 = 8000;
/// gRPC port of the Pravega Controller.
pub const CONTROLLER_GRPC_PORT: i32 = 9090;
/// REST port of the Pravega Controller (`REST_SERVER_PORT`; the code default is 9091, upstream's
/// deployments use 10080).
pub const CONTROLLER_REST_PORT: i32 = 10080;
/// Port of a Segment Store.
pub const SEGMENTSTORE_PORT: i32 = 12345;

/// Size of a bookie ledger, journal or index claim when the spec has no template.
pub const DEFAULT_BOOKIE_VOLUME_SIZE: &str = "10Gi";
/// Size of a Segment Store cache claim when the spec has no template.
pub const DEFAULT_CACHE_VOLUME_SIZE: &str = "20Gi";
/// `progressDeadlineSeconds` of the Controller Deployment when the upgrade timeout cannot be read.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// Annotation on pod templates: a hash of the component's ConfigMap data.
pub const CONFIG_HASH_KEY: &str = "pravega.pravega.io/config-hash";
/// Bookies the Segment Store waits for before it starts (upstream waits for the first three).
const WAIT_FOR_BOOKIES: i32 = 3;

/// Where the Segment Store mounts a filesystem tier 2 (`NFS_MOUNT`).
pub const TIER2_MOUNT: &str = "/mnt/tier2";
/// Where the Segment Store keeps its cache (RocksDB up to 0.6; unused from 0.7, whose cache is in
/// direct memory, but kept because a StatefulSet cannot drop a claim template).
pub const CACHE_MOUNT: &str = "/tmp/pravega/cache";
/// Bookie directories, as the bookkeeper images' entrypoints expect them under `/bk`.
const BOOKIE_DIRS: [(&str, &str); 3] = [
    ("ledger", "/bk/ledgers"),
    ("journal", "/bk/journal"),
    ("index", "/bk/index"),
];

/// Why the desired objects could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// The cluster object lacks metadata the API server always sets.
    #[error("PravegaCluster has no {0}; only objects read from the API server can be reconciled")]
    MissingMetadata(&'static str),
}

/// Every object a cluster owns, in the order they are applied (configuration and networking
/// before the workloads that use them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredObjects {
    /// One ConfigMap per component.
    pub config_maps: Vec<ConfigMap>,
    /// One Service per component (headless for the StatefulSets).
    pub services: Vec<Service>,
    /// BookKeeper and Segment Store.
    pub stateful_sets: Vec<StatefulSet>,
    /// Pravega Controller.
    pub deployments: Vec<Deployment>,
    /// One PodDisruptionBudget per component.
    pub pod_disruption_budgets: Vec<PodDisruptionBudget>,
}

impl DesiredObjects {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.config_maps.len()
            + self.services.len()
            + self.stateful_sets.len()
            + self.deployments.len()
            + self.pod_disruption_budgets.len()
    }

    /// True when there is no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What every builder needs to know about the cluster.
struct Owner<'a> {
    name: &'a str,
    namespace: &'a str,
    spec: &'a PravegaClusterSpec,
    reference: OwnerReference,
}

impl<'a> Owner<'a> {
    fn new(cluster: &'a PravegaCluster) -> Result<Self, BuildError> {
        let name = cluster
            .metadata
            .name
            .as_deref()
            .ok_or(BuildError::MissingMetadata("metadata.name"))?;
        let namespace = cluster
            .metadata
            .namespace
            .as_deref()
            .ok_or(BuildError::MissingMetadata("metadata.namespace"))?;
        let uid = cluster
            .metadata
            .uid
            .clone()
            .ok_or(BuildError::MissingMetadata("metadata.uid"))?;
        let reference = OwnerReference {
            api_version: PravegaCluster::api_version(&()).into_owned(),
            kind: PravegaCluster::kind(&()).into_owned(),
            name: name.to_owned(),
            uid,
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        Ok(Self {
            name,
            namespace,
            spec: &cluster.spec,
            reference,
        })
    }

    /// Metadata of an object of `component` named `name`.
    fn meta(&self, component: Component, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_owned()),
            labels: Some(object_labels(self.name, component)),
            owner_references: Some(vec![self.reference.clone()]),
            ..ObjectMeta::default()
        }
    }

    fn selector(&self, component: Component) -> LabelSelector {
        LabelSelector {
            match_labels: Some(component.selector_labels(self.name)),
            ..LabelSelector::default()
        }
    }
}

/// Labels of every object of a component: the selector labels plus `managed-by`.
pub fn object_labels(cluster: &str, component: Component) -> BTreeMap<String, String> {
    let mut labels = component.selector_labels(cluster);
    labels.insert(LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned());
    labels
}

/// Labels of a component's pod template at `version`.
pub fn pod_labels(cluster: &str, component: Component, version: &str) -> BTreeMap<String, String> {
    let mut labels = object_labels(cluster, component);
    labels.insert(VERSION_KEY.to_owned(), version.to_owned());
    labels.insert(LABEL_VERSION.to_owned(), version.to_owned());
    labels
}

/// Builds every object of `cluster`, running each component at `version_of(component)` (the
/// versions the upgrade planner decided for this reconcile).
pub fn desired_objects(
    cluster: &PravegaCluster,
    version_of: impl Fn(Component) -> String,
) -> Result<DesiredObjects, BuildError> {
    let owner = Owner::new(cluster)?;
    let mut out = DesiredObjects::default();
    for component in Component::UPGRADE_ORDER {
        let version = version_of(component);
        let config = config_map(&owner, component);
        let hash = config_hash(config.data.as_ref());
        out.config_maps.push(config);
        out.services.push(service(&owner, component));
        match component {
            Component::Bookkeeper => out
                .stateful_sets
                .push(bookkeeper_statefulset(&owner, &version, &hash)),
            Component::Controller => out
                .deployments
                .push(controller_deployment(&owner, &version, &hash)),
            Component::SegmentStore => out
                .stateful_sets
                .push(segmentstore_statefulset(&owner, &version, &hash)),
        }
        out.pod_disruption_budgets
            .push(pod_disruption_budget(&owner, component));
    }
    Ok(out)
}

/// A stable hash (FNV-1a, 64 bits) of a ConfigMap's data, as 16 hex digits.
pub fn config_hash(data: Option<&BTreeMap<String, String>>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in data.into_iter().flatten() {
        for b in k.bytes().chain([0]).chain(v.bytes()).chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// `-Dkey=value` JVM options from `spec.pravega.options`, sorted by key.
pub fn java_opts(options: &BTreeMap<String, String>) -> String {
    options
        .iter()
        .map(|(k, v)| format!("-D{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The gRPC address of the cluster's Controller, as the Segment Store reaches it.
pub fn controller_url(cluster: &str, namespace: &str) -> String {
    format!(
        "tcp://{}.{namespace}:{CONTROLLER_GRPC_PORT}",
        Component::Controller.service_name(cluster)
    )
}

/// The PersistentVolumeClaims of the cluster's desired bookies and Segment Stores, as their
/// StatefulSets name them (`<claim template>-<statefulset>-<ordinal>`).
pub fn claim_names(cluster: &str, spec: &PravegaClusterSpec) -> Vec<String> {
    let mut out = Vec::new();
    let bookies = Component::Bookkeeper.workload_name(cluster);
    for ordinal in 0..spec.bookkeeper.replicas.max(0) {
        for (claim, _) in BOOKIE_DIRS {
            out.push(format!("{claim}-{bookies}-{ordinal}"));
        }
    }
    let stores = Component::SegmentStore.workload_name(cluster);
    for ordinal in 0..spec.pravega.segment_store_replicas.max(0) {
        out.push(format!("cache-{stores}-{ordinal}"));
    }
    out
}

/// The addresses of the first bookies (`<pod>.<headless service>.<namespace>:3181`), which the
/// Segment Store waits for (`WAIT_FOR`) before it starts.
pub fn bookie_addresses(cluster: &str, namespace: &str, replicas: i32) -> Vec<String> {
    let set = Component::Bookkeeper.workload_name(cluster);
    let service = Component::Bookkeeper.service_name(cluster);
    (0..replicas.clamp(1, WAIT_FOR_BOOKIES))
        .map(|i| format!("{set}-{i}.{service}.{namespace}:{BOOKIE_PORT}"))
        .collect()
}

fn ports(component: Component) -> Vec<(&'static str, i32)> {
    match component {
        Component::Bookkeeper => vec![("bookie", BOOKIE_PORT)],
        Component::Controller => vec![
            ("rest", CONTROLLER_REST_PORT),
            ("grpc", CONTROLLER_GRPC_PORT),
        ],
        Component::SegmentStore => vec![("server", SEGMENTSTORE_PORT)],
    }
}

fn service(owner: &Owner<'_>, component: Component) -> Service {
    let headless = component.workload_kind() == names::WorkloadKind::StatefulSet;
    Service {
        metadata: owner.meta(component, component.service_name(owner.name)),
        spec: Some(ServiceSpec {
            cluster_ip: headless.then(|| "None".to_owned()),
            selector: Some(component.selector_labels(owner.name)),
            ports: Some(
                ports(component)
                    .into_iter()
                    .map(|(name, port)| ServicePort {
                        name: Some(name.to_owned()),
                        port,
                        target_port: Some(IntOrString::Int(port)),
                        protocol: Some("TCP".to_owned()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn pod_disruption_budget(owner: &Owner<'_>, component: Component) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: owner.meta(component, component.workload_name(owner.name)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(owner.selector(component)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests;
