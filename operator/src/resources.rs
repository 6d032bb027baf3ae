//! Pure builders of the objects a `PravegaCluster` owns: the BookKeeper StatefulSet, the Pravega
//! Controller Deployment and the Segment Store StatefulSet, with their Services, ConfigMaps and
//! PodDisruptionBudgets.
//!
//! Nothing here talks to the API server: the reconcile loop builds the desired objects with
//! [`desired_objects`] and applies them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource,
    ExecAction, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    Service, ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use pravega_crds::names::{self, Component, LABEL_MANAGED_BY, LABEL_VERSION, MANAGER, VERSION_KEY};
use pravega_crds::{PravegaCluster, PravegaClusterSpec};

/// Port of a bookie.
pub const BOOKIE_PORT: i32 = 3181;
/// gRPC port of the Pravega Controller.
pub const CONTROLLER_GRPC_PORT: i32 = 9090;
/// REST port of the Pravega Controller.
pub const CONTROLLER_REST_PORT: i32 = 10080;
/// Port of a Segment Store.
pub const SEGMENTSTORE_PORT: i32 = 12345;

/// Size of a bookie ledger, journal or index claim when the spec has no template.
pub const DEFAULT_BOOKIE_VOLUME_SIZE: &str = "10Gi";
/// Size of a Segment Store cache claim when the spec has no template.
pub const DEFAULT_CACHE_VOLUME_SIZE: &str = "20Gi";
/// `progressDeadlineSeconds` of the Controller Deployment when the upgrade timeout cannot be read.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

/// Where the Segment Store mounts a filesystem tier 2.
const TIER2_MOUNT: &str = "/mnt/tier2";
/// Where the Segment Store keeps its cache.
const CACHE_MOUNT: &str = "/tmp/pravega/cache";

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
        out.config_maps.push(config_map(&owner, component));
        out.services.push(service(&owner, component));
        match component {
            Component::Bookkeeper => out
                .stateful_sets
                .push(bookkeeper_statefulset(&owner, &version)),
            Component::Controller => out
                .deployments
                .push(controller_deployment(&owner, &version)),
            Component::SegmentStore => out
                .stateful_sets
                .push(segmentstore_statefulset(&owner, &version)),
        }
        out.pod_disruption_budgets
            .push(pod_disruption_budget(&owner, component));
    }
    Ok(out)
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

/// The data of a component's ConfigMap, turned into environment variables by `envFrom`.
fn config_data(owner: &Owner<'_>, component: Component) -> BTreeMap<String, String> {
    let spec = owner.spec;
    let zk = spec.zookeeper_uri.clone();
    let mut data = BTreeMap::from([
        ("ZK_URL".to_owned(), zk.clone()),
        ("WAIT_FOR".to_owned(), zk),
        ("PRAVEGA_CLUSTER_NAME".to_owned(), owner.name.to_owned()),
    ]);
    match component {
        Component::Bookkeeper => {
            for (k, v) in [
                ("BK_useHostNameAsBookieID", "true"),
                ("BK_journalDirectories", "/bk/journal"),
                ("BK_ledgerDirectories", "/bk/ledgers"),
                ("BK_indexDirectories", "/bk/index"),
                ("BK_autoRecoveryDaemonEnabled", "true"),
                (
                    "BK_BOOKIE_EXTRA_OPTS",
                    "-Xms1g -Xmx1g -XX:MaxDirectMemorySize=1g -XX:+UseG1GC -XX:MaxGCPauseMillis=10",
                ),
            ] {
                data.insert(k.to_owned(), v.to_owned());
            }
            // The bookkeeper image turns every `BK_<option>` variable into `<option>` in
            // bk_server.conf; options from the spec win over the defaults above.
            for (k, v) in &spec.bookkeeper.options {
                data.insert(format!("BK_{k}"), v.clone());
            }
        }
        Component::Controller => {
            data.insert("CLUSTER_NAME".to_owned(), owner.name.to_owned());
            data.insert("JAVA_OPTS".to_owned(), java_opts(&spec.pravega.options));
            data.insert(
                "CONTROLLER_SERVER_PORT".to_owned(),
                CONTROLLER_GRPC_PORT.to_string(),
            );
            data.insert(
                "REST_SERVER_PORT".to_owned(),
                CONTROLLER_REST_PORT.to_string(),
            );
        }
        Component::SegmentStore => {
            data.insert("CLUSTER_NAME".to_owned(), owner.name.to_owned());
            data.insert("JAVA_OPTS".to_owned(), java_opts(&spec.pravega.options));
            data.insert(
                "CONTROLLER_URL".to_owned(),
                controller_url(owner.name, owner.namespace),
            );
            if let Some(tier2) = &spec.pravega.tier2 {
                if tier2.filesystem.is_some() {
                    data.insert("TIER2_STORAGE".to_owned(), "FILESYSTEM".to_owned());
                    data.insert("NFS_MOUNT".to_owned(), TIER2_MOUNT.to_owned());
                } else if let Some(hdfs) = &tier2.hdfs {
                    data.insert("TIER2_STORAGE".to_owned(), "HDFS".to_owned());
                    data.insert("HDFS_URL".to_owned(), hdfs.uri.clone());
                    data.insert("HDFS_ROOT".to_owned(), hdfs.root.clone());
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

fn tcp_probe(port: i32, initial_delay: i32, period: i32, failure_threshold: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(port),
            ..TCPSocketAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

fn exec_probe(command: &[&str], initial_delay: i32, period: i32, failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| (*s).to_owned()).collect()),
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// `POD_NAME` and `POD_NAMESPACE` from the downward API.
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

/// The component's container at `version`.
fn container(
    owner: &Owner<'_>,
    component: Component,
    version: &str,
    resources: Option<&ResourceRequirements>,
) -> Container {
    let spec = owner.spec;
    let (args, env, mounts, readiness, liveness) = match component {
        Component::Bookkeeper => {
            let sanity = [
                "/bin/sh",
                "-c",
                "/opt/bookkeeper/bin/bookkeeper shell bookiesanity",
            ];
            (
                None,
                None,
                vec![
                    mount("ledger", "/bk/ledgers"),
                    mount("journal", "/bk/journal"),
                    mount("index", "/bk/index"),
                ],
                exec_probe(&sanity, 20, 10, 9),
                exec_probe(&sanity, 60, 15, 4),
            )
        }
        Component::Controller => (
            Some(vec!["controller".to_owned()]),
            Some(downward_env()),
            Vec::new(),
            tcp_probe(CONTROLLER_REST_PORT, 10, 10, 3),
            tcp_probe(CONTROLLER_REST_PORT, 60, 15, 4),
        ),
        Component::SegmentStore => {
            let mut mounts = vec![mount("cache", CACHE_MOUNT)];
            if spec
                .pravega
                .tier2
                .as_ref()
                .is_some_and(|t| t.filesystem.is_some())
            {
                mounts.push(mount("tier2", TIER2_MOUNT));
            }
            (
                Some(vec!["segmentstore".to_owned()]),
                Some(downward_env()),
                mounts,
                tcp_probe(SEGMENTSTORE_PORT, 10, 10, 3),
                tcp_probe(SEGMENTSTORE_PORT, 60, 15, 4),
            )
        }
    };
    Container {
        name: component.label().to_owned(),
        image: Some(component.image(spec, version)),
        image_pull_policy: component.pull_policy(spec).map(str::to_owned),
        args,
        env,
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: component.config_map_name(owner.name),
                ..ConfigMapEnvSource::default()
            }),
            ..EnvFromSource::default()
        }]),
        ports: Some(
            ports(component)
                .into_iter()
                .map(|(name, port)| ContainerPort {
                    name: Some(name.to_owned()),
                    container_port: port,
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        resources: resources.cloned(),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        readiness_probe: Some(readiness),
        liveness_probe: Some(liveness),
        ..Container::default()
    }
}

fn pod_template(
    owner: &Owner<'_>,
    component: Component,
    version: &str,
    container: Container,
    volumes: Vec<Volume>,
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels(owner.name, component, version)),
            annotations: Some(BTreeMap::from([(
                VERSION_KEY.to_owned(),
                version.to_owned(),
            )])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: (!volumes.is_empty()).then_some(volumes),
            ..PodSpec::default()
        }),
    }
}

fn retain_claims() -> StatefulSetPersistentVolumeClaimRetentionPolicy {
    StatefulSetPersistentVolumeClaimRetentionPolicy {
        when_deleted: Some("Retain".to_owned()),
        when_scaled: Some("Retain".to_owned()),
    }
}

fn on_delete() -> StatefulSetUpdateStrategy {
    StatefulSetUpdateStrategy {
        type_: Some("OnDelete".to_owned()),
        ..StatefulSetUpdateStrategy::default()
    }
}

fn bookkeeper_statefulset(owner: &Owner<'_>, version: &str) -> StatefulSet {
    let c = Component::Bookkeeper;
    let spec = owner.spec;
    let storage = &spec.bookkeeper.storage;
    let container = container(owner, c, version, spec.bookkeeper.resources.as_deref());
    StatefulSet {
        metadata: owner.meta(c, c.workload_name(owner.name)),
        spec: Some(StatefulSetSpec {
            replicas: Some(c.replicas(spec)),
            selector: owner.selector(c),
            service_name: Some(c.service_name(owner.name)),
            pod_management_policy: Some("Parallel".to_owned()),
            update_strategy: Some(on_delete()),
            persistent_volume_claim_retention_policy: Some(retain_claims()),
            template: pod_template(owner, c, version, container, Vec::new()),
            volume_claim_templates: Some(vec![
                claim_template(
                    "ledger",
                    storage.ledger_volume_claim_template.as_deref(),
                    DEFAULT_BOOKIE_VOLUME_SIZE,
                ),
                claim_template(
                    "journal",
                    storage.journal_volume_claim_template.as_deref(),
                    DEFAULT_BOOKIE_VOLUME_SIZE,
                ),
                claim_template(
                    "index",
                    storage.index_volume_claim_template.as_deref(),
                    DEFAULT_BOOKIE_VOLUME_SIZE,
                ),
            ]),
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

fn controller_deployment(owner: &Owner<'_>, version: &str) -> Deployment {
    let c = Component::Controller;
    let spec = owner.spec;
    let container = container(
        owner,
        c,
        version,
        spec.pravega.controller_resources.as_deref(),
    );
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
            template: pod_template(owner, c, version, container, Vec::new()),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn segmentstore_statefulset(owner: &Owner<'_>, version: &str) -> StatefulSet {
    let c = Component::SegmentStore;
    let spec = owner.spec;
    let container = container(
        owner,
        c,
        version,
        spec.pravega.segment_store_resources.as_deref(),
    );
    let volumes = spec
        .pravega
        .tier2
        .as_ref()
        .and_then(|t| t.filesystem.as_ref())
        .map(|fs| Volume {
            name: "tier2".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: fs.persistent_volume_claim.clone(),
                ..PersistentVolumeClaimVolumeSource::default()
            }),
            ..Volume::default()
        })
        .into_iter()
        .collect();
    StatefulSet {
        metadata: owner.meta(c, c.workload_name(owner.name)),
        spec: Some(StatefulSetSpec {
            replicas: Some(c.replicas(spec)),
            selector: owner.selector(c),
            service_name: Some(c.service_name(owner.name)),
            pod_management_policy: Some("Parallel".to_owned()),
            update_strategy: Some(on_delete()),
            persistent_volume_claim_retention_policy: Some(retain_claims()),
            template: pod_template(owner, c, version, container, volumes),
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
    fn statefulsets_use_on_delete_and_retain_their_claims() {
        let d = build(&sample());
        for s in &d.stateful_sets {
            let spec = s.spec.as_ref().unwrap();
            assert_eq!(
                spec.update_strategy.as_ref().unwrap().type_.as_deref(),
                Some("OnDelete")
            );
            let retention = spec
                .persistent_volume_claim_retention_policy
                .as_ref()
                .unwrap();
            assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
            assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));
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

        let mut with_tier2 = sample();
        with_tier2.spec.pravega.tier2 = Some(pravega_crds::Tier2Spec {
            filesystem: Some(pravega_crds::FileSystemTier2 {
                persistent_volume_claim: "pravega-tier2".into(),
            }),
            hdfs: None,
        });
        let d = build(&with_tier2);
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
    fn ports_and_probes_are_as_the_images_expect() {
        let d = build(&sample());
        let port_of = |c: &Container| {
            c.ports
                .as_ref()
                .unwrap()
                .iter()
                .map(|p| p.container_port)
                .collect::<Vec<_>>()
        };
        let bk = only_container(&sts(&d, "example-bookie").spec.as_ref().unwrap().template).clone();
        assert_eq!(port_of(&bk), [3181]);
        let cmd = bk
            .readiness_probe
            .as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap()
            .command
            .clone()
            .unwrap();
        assert!(cmd.join(" ").contains("bookiesanity"));
        assert!(bk.liveness_probe.as_ref().unwrap().exec.is_some());
        let ctl = only_container(&d.deployments[0].spec.as_ref().unwrap().template).clone();
        assert_eq!(port_of(&ctl), [10080, 9090]);
        assert_eq!(
            ctl.readiness_probe
                .as_ref()
                .unwrap()
                .tcp_socket
                .as_ref()
                .unwrap()
                .port,
            IntOrString::Int(10080)
        );
        let ss = only_container(
            &sts(&d, "example-pravega-segmentstore")
                .spec
                .as_ref()
                .unwrap()
                .template,
        )
        .clone();
        assert_eq!(port_of(&ss), [12345]);
        assert_eq!(
            ss.liveness_probe
                .as_ref()
                .unwrap()
                .tcp_socket
                .as_ref()
                .unwrap()
                .port,
            IntOrString::Int(12345)
        );
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
        assert_eq!(
            d.services[2].spec.as_ref().unwrap().cluster_ip.as_deref(),
            Some("None")
        );
    }

    #[test]
    fn configmaps_carry_zookeeper_java_opts_and_bookkeeper_options() {
        let d = build(&sample());
        let data = |i: usize| d.config_maps[i].data.clone().unwrap();
        let bk = data(0);
        assert_eq!(bk.get("ZK_URL").map(String::as_str), Some("zk-client:2181"));
        assert_eq!(
            bk.get("BK_journalMaxGroupWaitMSec").map(String::as_str),
            Some("1")
        );
        let ctl = data(1);
        assert_eq!(
            ctl.get("ZK_URL").map(String::as_str),
            Some("zk-client:2181")
        );
        assert_eq!(
            ctl.get("JAVA_OPTS").map(String::as_str),
            Some("-Da.b=c -Dpravegaservice.containerCount=4")
        );
        let ss = data(2);
        assert_eq!(ss.get("JAVA_OPTS"), ctl.get("JAVA_OPTS"));
        assert_eq!(
            ss.get("CONTROLLER_URL").map(String::as_str),
            Some("tcp://example-pravega-controller.prod:9090")
        );
        for (i, sts_or_deploy) in [
            only_container(&d.stateful_sets[0].spec.as_ref().unwrap().template),
            only_container(&d.deployments[0].spec.as_ref().unwrap().template),
            only_container(&d.stateful_sets[1].spec.as_ref().unwrap().template),
        ]
        .into_iter()
        .enumerate()
        {
            let from = sts_or_deploy.env_from.as_ref().unwrap()[0]
                .config_map_ref
                .as_ref()
                .unwrap();
            assert_eq!(Some(&from.name), d.config_maps[i].metadata.name.as_ref());
        }
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
