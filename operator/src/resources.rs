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

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodAffinityTerm, PodAntiAffinity,
    PodSpec, PodTemplateSpec, Probe, SecretEnvSource, Service, ServicePort, ServiceSpec,
    TCPSocketAction, Toleration, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use pravega_crds::contract::{BookieJvmVariables, EcsVariables, ImageContract, contract};
use pravega_crds::jvm::{bookie_jvm, default_cache_size, effective_resources, pravega_jvm};
use pravega_crds::names::{self, Component, LABEL_MANAGED_BY, LABEL_VERSION, MANAGER, VERSION_KEY};
use pravega_crds::spec_rules::{FIXED_SETTINGS_KEY, fixed_settings};
use pravega_crds::{PravegaCluster, PravegaClusterSpec, Tier2};

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

/// The data of a component's ConfigMap, turned into environment variables by `envFrom`: what
/// every image version of the component reads alike.
fn config_data(owner: &Owner<'_>, component: Component) -> BTreeMap<String, String> {
    let spec = owner.spec;
    let zk = spec.zookeeper_uri.clone();
    let mut data = BTreeMap::from([("ZK_URL".to_owned(), zk.clone())]);
    let mut put = |k: &str, v: String| {
        data.insert(k.to_owned(), v);
    };
    match component {
        Component::Bookkeeper => {
            // docker/bookkeeper/entrypoint.sh@v0.4.0..v0.13.0: ledgers under
            // /pravega/$PRAVEGA_CLUSTER_NAME/bookkeeper/ledgers.
            put("PRAVEGA_CLUSTER_NAME", owner.name.to_owned());
            // docker/bookkeeper/wait_for in every image: waits for each host:port listed.
            put("WAIT_FOR", zk);
            // apply-config-from-env.py (0.5+) writes BK_<key> into bk_server.conf; the 0.4
            // entrypoint uses these directories itself.
            for (name, path) in BOOKIE_DIRS {
                let key = match name {
                    "ledger" => "BK_ledgerDirectories",
                    "journal" => "BK_journalDirectories",
                    _ => "BK_indexDirectories",
                };
                put(key, path.to_owned());
            }
            if spec.bookkeeper.auto_recovery {
                // lostBookieRecoveryDelay defaults to 0 (ServerConfiguration@release-4.9.2):
                // every restart of our own would start re-replication. Upstream operator 0.4.5
                // sets 60 s (pkg/controller/pravega/bookie.go@v0.4.5).
                put("BK_lostBookieRecoveryDelay", "60".to_owned());
            }
            // Options from the spec win over the defaults above.
            for (k, v) in &spec.bookkeeper.options {
                put(&format!("BK_{k}"), v.clone());
            }
        }
        Component::Controller => {
            // controller.config.properties@v0.5.0..v0.13.0 (application.conf@v0.4.0) reads
            // CLUSTER_NAME, CONTROLLER_SERVER_PORT and REST_SERVER_PORT from the environment.
            put("CLUSTER_NAME", owner.name.to_owned());
            put("WAIT_FOR", zk);
            put("CONTROLLER_SERVER_PORT", CONTROLLER_GRPC_PORT.to_string());
            put("REST_SERVER_PORT", CONTROLLER_REST_PORT.to_string());
        }
        Component::SegmentStore => {
            // init_segmentstore.sh: CONTROLLER_URL becomes autoScale.controller(.connect)Uri.
            put(
                "CONTROLLER_URL",
                controller_url(owner.name, owner.namespace),
            );
            // Upstream operator 0.4.5 makes the Segment Store wait for the first bookies.
            put(
                "WAIT_FOR",
                bookie_addresses(owner.name, owner.namespace, spec.bookkeeper.replicas).join(","),
            );
            // init_tier2.sh (entrypoint.sh in 0.4): with TIER2_STORAGE empty the Segment Store
            // falls back to HDFS at localhost:9000 (ServiceConfig storageImplementation default).
            match spec.pravega.tier2() {
                Tier2::Filesystem(_) => {
                    put("TIER2_STORAGE", "FILESYSTEM".to_owned());
                    put("NFS_MOUNT", TIER2_MOUNT.to_owned());
                }
                Tier2::Hdfs(hdfs) => {
                    put("TIER2_STORAGE", "HDFS".to_owned());
                    put("HDFS_URL", hdfs.uri.clone());
                    put("HDFS_ROOT", hdfs.root.clone());
                    put("HDFS_REPLICATION", hdfs.replication_factor.to_string());
                }
                Tier2::Ecs(ecs) => {
                    put("TIER2_STORAGE", "EXTENDEDS3".to_owned());
                    put("EXTENDEDS3_BUCKET", ecs.bucket.clone());
                }
            }
        }
    }
    data
}

fn config_map(owner: &Owner<'_>, component: Component) -> ConfigMap {
    ConfigMap {
        metadata: owner.meta(component, component.config_map_name(owner.name)),
        data: Some(config_data(owner, component)),
        ..ConfigMap::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// `POD_NAME` and `POD_NAMESPACE` from the downward API (init_kubernetes.sh needs both).
fn downward_env() -> Vec<EnvVar> {
    [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ]
    .into_iter()
    .map(|(name, path)| EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    })
    .collect()
}

/// The environment of a bookie at the contract `row`.
fn bookie_env(spec: &PravegaClusterSpec, row: &ImageContract) -> Vec<EnvVar> {
    let b = &row.bookie;
    let mut out = Vec::new();
    if spec.bookkeeper.auto_recovery {
        out.push(env(b.autorecovery_switch, "true"));
    }
    out.push(env(
        "BK_useHostNameAsBookieID",
        b.use_host_name_as_bookie_id.to_string(),
    ));
    if b.http_admin.is_some() {
        // ServerConfiguration httpServerEnabled/httpServerPort (BookKeeper 4.6+).
        out.push(env("BK_httpServerEnabled", "true"));
        out.push(env("BK_httpServerPort", BOOKIE_ADMIN_PORT.to_string()));
    }
    // Plain variables, not BK_BOOKIE_*: apply-config-from-env.py would write those unquoted into
    // conf/bkenv.sh, which bash then fails to run (bin/bookkeeper aborts under `set -e`, 4.9+).
    let jvm = bookie_jvm(spec);
    match b.jvm_variables {
        BookieJvmVariables::ExtraOnly => {
            out.push(env("BOOKIE_EXTRA_OPTS", jvm.all().join(" ")));
        }
        BookieJvmVariables::Split => {
            for (name, flags) in [
                ("BOOKIE_MEM_OPTS", &jvm.memory),
                ("BOOKIE_GC_OPTS", &jvm.gc),
                ("BOOKIE_GC_LOGGING_OPTS", &jvm.gc_logging),
                ("BOOKIE_EXTRA_OPTS", &jvm.extra),
            ] {
                // Empty means BookKeeper's own default (`${BOOKIE_GC_OPTS:-...}`).
                if !flags.is_empty() {
                    out.push(env(name, flags.join(" ")));
                }
            }
        }
    }
    out
}

/// `JAVA_OPTS` of the Controller or Segment Store at `version`: the JVM flags, the operator's
/// properties, then the spec's options (the cluster name last, so that it always matches the
/// bookies' `PRAVEGA_CLUSTER_NAME`).
pub fn pravega_java_opts(
    name: &str,
    spec: &PravegaClusterSpec,
    component: Component,
    version: &str,
) -> String {
    let row = contract(version);
    let mut parts = pravega_jvm(spec, component);
    if component == Component::SegmentStore {
        if let Some(health) = row.pravega.health {
            // ServiceConfig@v0.10.0: the REST (health) server binds localhost by default.
            parts.push(format!("-D{}=0.0.0.0", health.segment_store_host_property));
        }
        if spec.pravega.debug_logging {
            // config/logback.xml: the Segment Store logs at ${log.level:-INFO}.
            parts.push("-Dlog.level=DEBUG".to_owned());
        }
        if let Some((property, bytes)) = default_cache_size(spec, version) {
            parts.push(format!("-D{property}={bytes}"));
        }
    }
    let options = java_opts(&spec.pravega.options);
    if !options.is_empty() {
        parts.push(options);
    }
    // ServiceConfig.CLUSTER_NAME (pravegaservice.clusterName, 0.4 to 0.13): the Segment Store
    // reads its cluster name only from this property, not from CLUSTER_NAME.
    parts.push(format!("-Dpravegaservice.clusterName={name}"));
    parts.join(" ")
}

/// The environment of a Segment Store at `version`.
fn segmentstore_env(owner: &Owner<'_>, version: &str) -> Vec<EnvVar> {
    let spec = owner.spec;
    let mut out = downward_env();
    out.push(env(
        "JAVA_OPTS",
        pravega_java_opts(owner.name, spec, Component::SegmentStore, version),
    ));
    if let Tier2::Ecs(ecs) = spec.pravega.tier2() {
        let endpoint = ecs.endpoint().unwrap_or_default().to_owned();
        match contract(version).pravega.ecs {
            // init_tier2.sh@v0.6.0 (entrypoint.sh@v0.4.0).
            EcsVariables::Url => {
                out.push(env("EXTENDEDS3_URI", endpoint));
                out.push(env("EXTENDEDS3_ROOT", ecs.root_path().unwrap_or("/")));
                if let Some(ns) = &ecs.namespace {
                    out.push(env("EXTENDEDS3_NAMESPACE", ns.clone()));
                }
            }
            // init_tier2.sh@v0.7.0..v0.13.0: the namespace goes into the configuration URI.
            EcsVariables::ConfigUri => {
                let uri = match (&ecs.config_uri, &ecs.namespace) {
                    (Some(uri), _) => uri.clone(),
                    (None, Some(ns)) => {
                        let sep = if endpoint.contains('?') { '&' } else { '?' };
                        format!("{endpoint}{sep}namespace={ns}")
                    }
                    (None, None) => endpoint,
                };
                out.push(env("EXTENDEDS3_CONFIGURI", uri));
                out.push(env("EXTENDEDS3_PREFIX", ecs.root_path().unwrap_or("/")));
            }
        }
    }
    out
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

fn claim_template(
    name: &str,
    spec: Option<&PersistentVolumeClaimSpec>,
    size: &str,
) -> PersistentVolumeClaim {
    let spec = spec.cloned().unwrap_or_else(|| PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([(
                "storage".to_owned(),
                Quantity(size.to_owned()),
            )])),
            ..VolumeResourceRequirements::default()
        }),
        ..PersistentVolumeClaimSpec::default()
    });
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        ..PersistentVolumeClaim::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

fn timing(mut probe: Probe, initial_delay: i32, period: i32, failure_threshold: i32) -> Probe {
    probe.initial_delay_seconds = Some(initial_delay);
    probe.period_seconds = Some(period);
    probe.timeout_seconds = Some(5);
    probe.failure_threshold = Some(failure_threshold);
    probe
}

fn tcp_probe(port: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(port),
            ..TCPSocketAction::default()
        }),
        ..Probe::default()
    }
}

fn http_probe(port: i32, path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            port: IntOrString::Int(port),
            path: Some(path.to_owned()),
            ..HTTPGetAction::default()
        }),
        ..Probe::default()
    }
}

fn exec_probe(command: &[&str]) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| (*s).to_owned()).collect()),
        }),
        ..Probe::default()
    }
}

/// Readiness and liveness of a component at the contract `row`.
fn probes(component: Component, row: &ImageContract) -> (Probe, Probe) {
    match component {
        Component::Bookkeeper => {
            // bookie/is_ready (BookKeeper 4.10+, HttpRouter.java@release-4.10.0) answers 503
            // until the bookie is up, without starting a JVM; older images run bookiesanity
            // (a JVM that writes and reads a ledger), as upstream's operator does.
            let ready = match row.bookie.http_admin {
                Some(admin) if admin.state_api => {
                    http_probe(BOOKIE_ADMIN_PORT, "/api/v1/bookie/is_ready")
                }
                _ => exec_probe(&[
                    "/bin/sh",
                    "-c",
                    "/opt/bookkeeper/bin/bookkeeper shell bookiesanity",
                ]),
            };
            // Liveness needs no JVM: the bookie port accepts connections.
            (
                timing(ready, 20, 10, 9),
                timing(tcp_probe(BOOKIE_PORT), 60, 15, 4),
            )
        }
        Component::Controller => (
            timing(tcp_probe(CONTROLLER_REST_PORT), 10, 10, 3),
            timing(tcp_probe(CONTROLLER_REST_PORT), 60, 15, 4),
        ),
        Component::SegmentStore => (
            timing(tcp_probe(SEGMENTSTORE_PORT), 10, 10, 30),
            timing(tcp_probe(SEGMENTSTORE_PORT), 300, 15, 4),
        ),
    }
}

/// The component's container at `version`.
fn container(owner: &Owner<'_>, component: Component, version: &str) -> Container {
    let spec = owner.spec;
    let row = contract(version);
    let mut env_from = vec![EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: component.config_map_name(owner.name),
            ..ConfigMapEnvSource::default()
        }),
        ..EnvFromSource::default()
    }];
    let mut ports = ports(component);
    let (args, env, mounts) = match component {
        Component::Bookkeeper => {
            if row.bookie.http_admin.is_some() {
                ports.push(("admin", BOOKIE_ADMIN_PORT));
            }
            (
                None,
                bookie_env(spec, row),
                BOOKIE_DIRS
                    .iter()
                    .map(|(name, path)| mount(name, path))
                    .collect(),
            )
        }
        Component::Controller => {
            let mut env = downward_env();
            env.push(env_java_opts(owner, component, version));
            (Some(vec!["controller".to_owned()]), env, Vec::new())
        }
        Component::SegmentStore => {
            let mut mounts = vec![mount("cache", CACHE_MOUNT)];
            match spec.pravega.tier2() {
                Tier2::Filesystem(claim) => mounts.push(VolumeMount {
                    read_only: claim.read_only.filter(|r| *r),
                    ..mount("tier2", TIER2_MOUNT)
                }),
                Tier2::Ecs(ecs) => {
                    // The credentials Secret's ACCESS_KEY_ID and SECRET_KEY become
                    // EXTENDEDS3_ACCESS_KEY_ID and EXTENDEDS3_SECRET_KEY (init_tier2.sh).
                    env_from.push(EnvFromSource {
                        prefix: Some("EXTENDEDS3_".to_owned()),
                        secret_ref: Some(SecretEnvSource {
                            name: ecs.credentials.clone(),
                            ..SecretEnvSource::default()
                        }),
                        ..EnvFromSource::default()
                    });
                }
                Tier2::Hdfs(_) => {}
            }
            (
                Some(vec!["segmentstore".to_owned()]),
                segmentstore_env(owner, version),
                mounts,
            )
        }
    };
    let (readiness, liveness) = probes(component, row);
    Container {
        name: component.label().to_owned(),
        image: Some(component.image(spec, version)),
        image_pull_policy: component.pull_policy(spec).map(str::to_owned),
        args,
        env: Some(env),
        env_from: Some(env_from),
        ports: Some(
            ports
                .into_iter()
                .map(|(name, port)| ContainerPort {
                    name: Some(name.to_owned()),
                    container_port: port,
                    // Required as a list-map key by server-side apply before Kubernetes 1.20.
                    protocol: Some("TCP".to_owned()),
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        resources: Some(effective_resources(spec, component).clone()),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        readiness_probe: Some(readiness),
        liveness_probe: Some(liveness),
        ..Container::default()
    }
}

fn env_java_opts(owner: &Owner<'_>, component: Component, version: &str) -> EnvVar {
    env(
        "JAVA_OPTS",
        pravega_java_opts(owner.name, owner.spec, component, version),
    )
}

/// Scheduling of a component's pods: the spec's, or a preferred anti-affinity that spreads the
/// component's pods over nodes (upstream: weight 100, `kubernetes.io/hostname`,
/// `pkg/util/k8sutil.go@v0.4.1`).
struct Scheduling {
    affinity: Affinity,
    tolerations: Vec<Toleration>,
    node_selector: BTreeMap<String, String>,
    service_account: Option<String>,
}

fn scheduling(owner: &Owner<'_>, component: Component) -> Scheduling {
    let spec = owner.spec;
    let (affinity, tolerations, node_selector, service_account) = match component {
        Component::Bookkeeper => (
            spec.bookkeeper.affinity.as_deref(),
            &spec.bookkeeper.tolerations,
            &spec.bookkeeper.node_selector,
            &spec.bookkeeper.service_account_name,
        ),
        Component::Controller => (
            spec.pravega.controller_affinity.as_deref(),
            &spec.pravega.controller_tolerations,
            &spec.pravega.controller_node_selector,
            &spec.pravega.controller_service_account_name,
        ),
        Component::SegmentStore => (
            spec.pravega.segment_store_affinity.as_deref(),
            &spec.pravega.segment_store_tolerations,
            &spec.pravega.segment_store_node_selector,
            &spec.pravega.segment_store_service_account_name,
        ),
    };
    let affinity = affinity.cloned().unwrap_or_else(|| Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(owner.selector(component)),
                        topology_key: "kubernetes.io/hostname".to_owned(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    });
    Scheduling {
        affinity,
        tolerations: tolerations.clone(),
        node_selector: node_selector.clone(),
        service_account: service_account.clone(),
    }
}

fn pod_template(
    owner: &Owner<'_>,
    component: Component,
    version: &str,
    config_hash: &str,
    volumes: Vec<Volume>,
) -> PodTemplateSpec {
    let s = scheduling(owner, component);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels(owner.name, component, version)),
            annotations: Some(BTreeMap::from([
                (VERSION_KEY.to_owned(), version.to_owned()),
                (CONFIG_HASH_KEY.to_owned(), config_hash.to_owned()),
            ])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container(owner, component, version)],
            volumes: (!volumes.is_empty()).then_some(volumes),
            affinity: Some(s.affinity),
            tolerations: (!s.tolerations.is_empty()).then_some(s.tolerations),
            node_selector: (!s.node_selector.is_empty()).then_some(s.node_selector),
            service_account_name: s.service_account,
            ..PodSpec::default()
        }),
    }
}

fn on_delete() -> StatefulSetUpdateStrategy {
    StatefulSetUpdateStrategy {
        type_: Some("OnDelete".to_owned()),
        ..StatefulSetUpdateStrategy::default()
    }
}

fn bookkeeper_statefulset(owner: &Owner<'_>, version: &str, config_hash: &str) -> StatefulSet {
    let c = Component::Bookkeeper;
    let spec = owner.spec;
    let storage = &spec.bookkeeper.storage;
    let templates = [
        storage.ledger_volume_claim_template.as_deref(),
        storage.journal_volume_claim_template.as_deref(),
        storage.index_volume_claim_template.as_deref(),
    ];
    StatefulSet {
        metadata: owner.meta(c, c.workload_name(owner.name)),
        spec: Some(StatefulSetSpec {
            replicas: Some(c.replicas(spec)),
            selector: owner.selector(c),
            service_name: Some(c.service_name(owner.name)),
            pod_management_policy: Some("Parallel".to_owned()),
            update_strategy: Some(on_delete()),
            // PVCs are kept by default (`Retain` for both cases); the field is not sent, so that
            // API servers that do not serve it (before 1.23) accept the object.
            template: pod_template(owner, c, version, config_hash, Vec::new()),
            volume_claim_templates: Some(
                BOOKIE_DIRS
                    .iter()
                    .zip(templates)
                    .map(|((name, _), t)| claim_template(name, t, DEFAULT_BOOKIE_VOLUME_SIZE))
                    .collect(),
            ),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// `progressDeadlineSeconds` of the Controller Deployment: `spec.upgrade.timeout`, so that a
/// rollout that makes no progress for that long reports `ProgressDeadlineExceeded`.
pub fn progress_deadline_seconds(spec: &PravegaClusterSpec) -> i32 {
    pravega_crds::duration::parse_duration(&spec.upgrade.timeout)
        .ok()
        .and_then(|d| i32::try_from(d.as_secs().max(1)).ok())
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
}

fn controller_deployment(owner: &Owner<'_>, version: &str, config_hash: &str) -> Deployment {
    let c = Component::Controller;
    let spec = owner.spec;
    Deployment {
        metadata: owner.meta(c, c.workload_name(owner.name)),
        spec: Some(DeploymentSpec {
            replicas: Some(c.replicas(spec)),
            selector: owner.selector(c),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            progress_deadline_seconds: Some(progress_deadline_seconds(spec)),
            template: pod_template(owner, c, version, config_hash, Vec::new()),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn segmentstore_statefulset(owner: &Owner<'_>, version: &str, config_hash: &str) -> StatefulSet {
    let c = Component::SegmentStore;
    let spec = owner.spec;
    let volumes = match spec.pravega.tier2() {
        Tier2::Filesystem(claim) => vec![Volume {
            name: "tier2".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.claim_name.clone(),
                read_only: claim.read_only.filter(|r| *r),
            }),
            ..Volume::default()
        }],
        _ => Vec::new(),
    };
    let mut metadata = owner.meta(c, c.workload_name(owner.name));
    // What must never change once the cluster holds data, so that the operator can refuse a
    // change of it even without the webhook (spec_rules::check_fixed).
    if let Ok(fixed) = serde_json::to_string(&fixed_settings(spec)) {
        metadata.annotations = Some(BTreeMap::from([(FIXED_SETTINGS_KEY.to_owned(), fixed)]));
    }
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(c.replicas(spec)),
            selector: owner.selector(c),
            service_name: Some(c.service_name(owner.name)),
            pod_management_policy: Some("Parallel".to_owned()),
            update_strategy: Some(on_delete()),
            template: pod_template(owner, c, version, config_hash, volumes),
            volume_claim_templates: Some(vec![claim_template(
                "cache",
                spec.pravega.cache_volume_claim_template.as_deref(),
                DEFAULT_CACHE_VOLUME_SIZE,
            )]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
    use pravega_crds::names::{LABEL_INSTANCE, LABEL_NAME};
    use proptest::prelude::*;

    fn cluster(spec: serde_json::Value) -> PravegaCluster {
        let spec: PravegaClusterSpec = serde_json::from_value(spec).unwrap();
        let mut c = PravegaCluster::new("example", spec);
        c.metadata.namespace = Some("prod".into());
        c.metadata.uid = Some("0000-uid".into());
        c
    }

    fn sample() -> PravegaCluster {
        cluster(serde_json::json!({
            "version": "0.4.0",
            "zookeeperUri": "zk-client:2181",
            "bookkeeper": {"replicas": 3, "image": {"repository": "pravega/bookkeeper", "pullPolicy": "IfNotPresent"},
                           "options": {"journalMaxGroupWaitMSec": "1"}},
            "pravega": {"controllerReplicas": 1, "segmentStoreReplicas": 3,
                        "image": {"repository": "pravega/pravega", "pullPolicy": "IfNotPresent"},
                        "options": {"pravegaservice.containerCount": "4", "a.b": "c"},
                        "segmentStoreResources": {"limits": {"memory": "2Gi"}}}
        }))
    }

    fn versions(
        bk: &'static str,
        ctl: &'static str,
        ss: &'static str,
    ) -> impl Fn(Component) -> String {
        move |c| match c {
            Component::Bookkeeper => bk.to_owned(),
            Component::Controller => ctl.to_owned(),
            Component::SegmentStore => ss.to_owned(),
        }
    }

    fn build(c: &PravegaCluster) -> DesiredObjects {
        desired_objects(c, versions("0.4.0", "0.4.0", "0.4.0")).unwrap()
    }

    fn sts<'a>(d: &'a DesiredObjects, name: &str) -> &'a StatefulSet {
        d.stateful_sets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap()
    }

    fn only_container(t: &PodTemplateSpec) -> &Container {
        let spec = t.spec.as_ref().unwrap();
        assert_eq!(spec.containers.len(), 1);
        &spec.containers[0]
    }

    #[test]
    fn names_match_the_guide() {
        let d = build(&sample());
        let names =
            |it: Vec<Option<String>>| it.into_iter().map(|n| n.unwrap()).collect::<Vec<_>>();
        assert_eq!(
            names(
                d.stateful_sets
                    .iter()
                    .map(|s| s.metadata.name.clone())
                    .collect()
            ),
            ["example-bookie", "example-pravega-segmentstore"]
        );
        assert_eq!(
            names(
                d.deployments
                    .iter()
                    .map(|s| s.metadata.name.clone())
                    .collect()
            ),
            ["example-pravega-controller"]
        );
        assert_eq!(
            names(d.services.iter().map(|s| s.metadata.name.clone()).collect()),
            [
                "example-bookie-headless",
                "example-pravega-controller",
                "example-pravega-segmentstore-headless"
            ]
        );
        assert_eq!(
            names(
                d.config_maps
                    .iter()
                    .map(|s| s.metadata.name.clone())
                    .collect()
            ),
            [
                "example-bookie-configmap",
                "example-pravega-controller-configmap",
                "example-pravega-segmentstore-configmap"
            ]
        );
        assert_eq!(
            names(
                d.pod_disruption_budgets
                    .iter()
                    .map(|s| s.metadata.name.clone())
                    .collect()
            ),
            [
                "example-bookie",
                "example-pravega-controller",
                "example-pravega-segmentstore"
            ]
        );
        assert_eq!(d.len(), 12);
    }

    #[test]
    fn every_object_is_owned_labelled_and_namespaced() {
        let d = build(&sample());
        let mut metas: Vec<&ObjectMeta> = Vec::new();
        metas.extend(d.config_maps.iter().map(|o| &o.metadata));
        metas.extend(d.services.iter().map(|o| &o.metadata));
        metas.extend(d.stateful_sets.iter().map(|o| &o.metadata));
        metas.extend(d.deployments.iter().map(|o| &o.metadata));
        metas.extend(d.pod_disruption_budgets.iter().map(|o| &o.metadata));
        for m in metas {
            assert_eq!(m.namespace.as_deref(), Some("prod"));
            let owners = m.owner_references.as_ref().unwrap();
            assert_eq!(owners.len(), 1);
            let o = &owners[0];
            assert_eq!(o.kind, "PravegaCluster");
            assert_eq!(o.api_version, "pravega.pravega.io/v1beta1");
            assert_eq!(o.name, "example");
            assert_eq!(o.uid, "0000-uid");
            assert_eq!(o.controller, Some(true));
            assert_eq!(o.block_owner_deletion, Some(true));
            let labels = m.labels.as_ref().unwrap();
            assert_eq!(
                labels.get(LABEL_NAME).map(String::as_str),
                Some("pravega-cluster")
            );
            assert_eq!(
                labels.get(LABEL_INSTANCE).map(String::as_str),
                Some("example")
            );
            assert_eq!(
                labels.get(LABEL_MANAGED_BY).map(String::as_str),
                Some("pravega-operator")
            );
            assert!(names::component_of(labels).is_some());
        }
    }

    #[test]
    fn a_cluster_without_uid_cannot_be_built() {
        let mut c = sample();
        c.metadata.uid = None;
        assert_eq!(
            desired_objects(&c, |_| "0.4.0".into()),
            Err(BuildError::MissingMetadata("metadata.uid"))
        );
    }

    #[test]
    fn statefulsets_use_on_delete_and_leave_claim_retention_to_the_default() {
        let d = build(&sample());
        for s in &d.stateful_sets {
            let spec = s.spec.as_ref().unwrap();
            assert_eq!(
                spec.update_strategy.as_ref().unwrap().type_.as_deref(),
                Some("OnDelete")
            );
            // Retain is the API server's default; the field is not sent (not served before 1.23).
            assert_eq!(spec.persistent_volume_claim_retention_policy, None);
            assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        }
        let bk = sts(&d, "example-bookie").spec.as_ref().unwrap();
        assert_eq!(bk.replicas, Some(3));
        assert_eq!(bk.service_name.as_deref(), Some("example-bookie-headless"));
        let ss = sts(&d, "example-pravega-segmentstore")
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(ss.replicas, Some(3));
        assert_eq!(
            ss.service_name.as_deref(),
            Some("example-pravega-segmentstore-headless")
        );
    }

    #[test]
    fn selectors_match_pod_labels_and_stay_stable_across_versions() {
        let c = sample();
        let old = build(&c);
        let new = desired_objects(&c, versions("0.5.0", "0.5.0", "0.5.0")).unwrap();
        for (a, b) in old.stateful_sets.iter().zip(&new.stateful_sets) {
            let (a, b) = (a.spec.as_ref().unwrap(), b.spec.as_ref().unwrap());
            assert_eq!(a.selector, b.selector);
            let sel = a.selector.match_labels.as_ref().unwrap();
            let labels = a
                .template
                .metadata
                .as_ref()
                .unwrap()
                .labels
                .as_ref()
                .unwrap();
            for (k, v) in sel {
                assert_eq!(labels.get(k), Some(v));
            }
        }
        let d = old.deployments[0].spec.as_ref().unwrap();
        let sel = d.selector.match_labels.as_ref().unwrap();
        assert_eq!(sel, &Component::Controller.selector_labels("example"));
    }

    #[test]
    fn bookie_claim_templates_default_to_10gi_and_follow_the_spec() {
        let d = build(&sample());
        let bk = sts(&d, "example-bookie").spec.as_ref().unwrap();
        let claims = bk.volume_claim_templates.as_ref().unwrap();
        let names: Vec<_> = claims
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["ledger", "journal", "index"]);
        for c in claims {
            let spec = c.spec.as_ref().unwrap();
            assert_eq!(
                spec.access_modes.as_deref(),
                Some(&["ReadWriteOnce".to_owned()][..])
            );
            let req = spec.resources.as_ref().unwrap().requests.as_ref().unwrap();
            assert_eq!(req.get("storage"), Some(&Quantity("10Gi".into())));
        }
        let mounts = only_container(&bk.template).volume_mounts.as_ref().unwrap();
        let mounted: Vec<_> = mounts
            .iter()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert_eq!(
            mounted,
            [
                ("ledger", "/bk/ledgers"),
                ("journal", "/bk/journal"),
                ("index", "/bk/index")
            ]
        );

        let mut custom = sample();
        custom.spec.bookkeeper.storage.journal_volume_claim_template =
            Some(Box::new(PersistentVolumeClaimSpec {
                storage_class_name: Some("fast".into()),
                ..PersistentVolumeClaimSpec::default()
            }));
        let d = build(&custom);
        let claims = sts(&d, "example-bookie")
            .spec
            .as_ref()
            .unwrap()
            .volume_claim_templates
            .clone()
            .unwrap();
        assert_eq!(
            claims[1]
                .spec
                .as_ref()
                .unwrap()
                .storage_class_name
                .as_deref(),
            Some("fast")
        );
        assert_eq!(claims[0].spec.as_ref().unwrap().storage_class_name, None);
    }

    #[test]
    fn segmentstore_has_a_cache_claim_and_mounts_a_filesystem_tier2() {
        let d = build(&sample());
        let ss = sts(&d, "example-pravega-segmentstore")
            .spec
            .as_ref()
            .unwrap();
        let claims = ss.volume_claim_templates.as_ref().unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("cache"));
        let req = claims[0]
            .spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        assert_eq!(req.get("storage"), Some(&Quantity("20Gi".into())));
        let c = only_container(&ss.template);
        assert_eq!(
            c.resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()
                .get("memory"),
            Some(&Quantity("2Gi".into()))
        );

        // No tier2 in the spec: the filesystem claim pravega-tier2, as upstream defaults.
        let d = build(&sample());
        let ss = sts(&d, "example-pravega-segmentstore")
            .spec
            .as_ref()
            .unwrap();
        let vols = ss.template.spec.as_ref().unwrap().volumes.as_ref().unwrap();
        assert_eq!(
            vols[0]
                .persistent_volume_claim
                .as_ref()
                .map(|p| p.claim_name.as_str()),
            Some("pravega-tier2")
        );
        assert!(
            only_container(&ss.template)
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.name == "tier2")
        );
        let cm = &d.config_maps[2];
        assert_eq!(
            cm.data
                .as_ref()
                .unwrap()
                .get("TIER2_STORAGE")
                .map(String::as_str),
            Some("FILESYSTEM")
        );
    }

    #[test]
    fn images_follow_each_components_version_and_the_pull_policy() {
        let c = sample();
        let d = desired_objects(&c, versions("0.5.0-1", "0.4.0", "0.4.0")).unwrap();
        let bk = only_container(&sts(&d, "example-bookie").spec.as_ref().unwrap().template).clone();
        assert_eq!(bk.image.as_deref(), Some("pravega/bookkeeper:0.5.0-1"));
        assert_eq!(bk.image_pull_policy.as_deref(), Some("IfNotPresent"));
        let ctl = only_container(&d.deployments[0].spec.as_ref().unwrap().template).clone();
        assert_eq!(ctl.image.as_deref(), Some("pravega/pravega:0.4.0"));
        assert_eq!(ctl.args.as_deref(), Some(&["controller".to_owned()][..]));
        let ss = only_container(
            &sts(&d, "example-pravega-segmentstore")
                .spec
                .as_ref()
                .unwrap()
                .template,
        )
        .clone();
        assert_eq!(ss.image.as_deref(), Some("pravega/pravega:0.4.0"));
        assert_eq!(ss.args.as_deref(), Some(&["segmentstore".to_owned()][..]));

        let t = sts(&d, "example-bookie")
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .clone()
            .unwrap();
        assert_eq!(
            t.labels.unwrap().get(VERSION_KEY).map(String::as_str),
            Some("0.5.0-1")
        );
        assert_eq!(
            t.annotations.unwrap().get(VERSION_KEY).map(String::as_str),
            Some("0.5.0-1")
        );
    }

    #[test]
    fn ports_carry_their_protocol_and_services_match_them() {
        let d = build(&sample());
        let ports_of = |c: &Container| {
            c.ports
                .as_ref()
                .unwrap()
                .iter()
                .map(|p| (p.container_port, p.protocol.clone().unwrap()))
                .collect::<Vec<_>>()
        };
        let tcp = |p: i32| (p, "TCP".to_owned());
        let bk = only_container(&sts(&d, "example-bookie").spec.as_ref().unwrap().template).clone();
        assert_eq!(ports_of(&bk), [tcp(3181)]);
        let ctl = only_container(&d.deployments[0].spec.as_ref().unwrap().template).clone();
        assert_eq!(ports_of(&ctl), [tcp(10080), tcp(9090)]);
        let ss = only_container(
            &sts(&d, "example-pravega-segmentstore")
                .spec
                .as_ref()
                .unwrap()
                .template,
        )
        .clone();
        assert_eq!(ports_of(&ss), [tcp(12345)]);
        let svc_ports = |i: usize| {
            d.services[i]
                .spec
                .as_ref()
                .unwrap()
                .ports
                .as_ref()
                .unwrap()
                .iter()
                .map(|p| p.port)
                .collect::<Vec<_>>()
        };
        assert_eq!(svc_ports(0), [3181]);
        assert_eq!(svc_ports(1), [10080, 9090]);
        assert_eq!(svc_ports(2), [12345]);
        assert_eq!(
            d.services[0].spec.as_ref().unwrap().cluster_ip.as_deref(),
            Some("None")
        );
        assert_eq!(d.services[1].spec.as_ref().unwrap().cluster_ip, None);
    }

    #[test]
    fn a_config_change_changes_the_pod_template() {
        let c = sample();
        let before = build(&c);
        let mut edited = c.clone();
        edited
            .spec
            .bookkeeper
            .options
            .insert("journalMaxGroupWaitMSec".into(), "2".into());
        let after = build(&edited);
        let hash = |d: &DesiredObjects, i: usize| {
            d.stateful_sets[i]
                .spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .as_ref()
                .unwrap()
                .get(CONFIG_HASH_KEY)
                .cloned()
                .unwrap()
        };
        assert_ne!(hash(&before, 0), hash(&after, 0));
        assert_eq!(hash(&before, 1), hash(&after, 1));
    }

    #[test]
    fn controller_rolls_without_losing_capacity() {
        let mut c = sample();
        c.spec.upgrade.timeout = "2m".into();
        let d = build(&c);
        let spec = d.deployments[0].spec.as_ref().unwrap();
        let strategy = spec.strategy.as_ref().unwrap();
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        let ru = strategy.rolling_update.as_ref().unwrap();
        assert_eq!(ru.max_unavailable, Some(IntOrString::Int(0)));
        assert_eq!(ru.max_surge, Some(IntOrString::Int(1)));
        assert_eq!(spec.progress_deadline_seconds, Some(120));
        assert_eq!(spec.replicas, Some(1));
    }

    #[test]
    fn pdbs_allow_one_member_down() {
        let d = build(&sample());
        for (pdb, c) in d
            .pod_disruption_budgets
            .iter()
            .zip(Component::UPGRADE_ORDER)
        {
            let spec = pdb.spec.as_ref().unwrap();
            assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
            assert_eq!(
                spec.selector.as_ref().unwrap().match_labels.as_ref(),
                Some(&c.selector_labels("example"))
            );
        }
    }

    proptest! {
        #[test]
        fn replicas_and_versions_flow_into_the_workloads(
            bookies in 1i32..10, controllers in 1i32..5, stores in 1i32..10,
            v in "[0-9]\\.[0-9]\\.[0-9](-[0-9])?",
        ) {
            let mut c = sample();
            c.spec.bookkeeper.replicas = bookies;
            c.spec.pravega.controller_replicas = controllers;
            c.spec.pravega.segment_store_replicas = stores;
            let d = desired_objects(&c, |_| v.clone()).unwrap();
            prop_assert_eq!(d.stateful_sets[0].spec.as_ref().unwrap().replicas, Some(bookies));
            prop_assert_eq!(d.deployments[0].spec.as_ref().unwrap().replicas, Some(controllers));
            prop_assert_eq!(d.stateful_sets[1].spec.as_ref().unwrap().replicas, Some(stores));
            let image = only_container(&d.stateful_sets[1].spec.as_ref().unwrap().template).image.clone();
            prop_assert_eq!(image, Some(format!("pravega/pravega:{v}")));
        }
    }
}
