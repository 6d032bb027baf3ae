//! The pod template of each component: its container (image, ports, mounts, probes) and its
//! scheduling.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, ExecAction,
    HTTPGetAction, PodAffinityTerm, PodAntiAffinity, PodSpec, PodTemplateSpec, Probe,
    SecretEnvSource, TCPSocketAction, Toleration, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pravega_crds::Tier2;
use pravega_crds::contract::{ImageContract, contract};
use pravega_crds::jvm::effective_resources;
use pravega_crds::names::{Component, VERSION_KEY};

use super::env::{bookie_env, downward_env, env_java_opts, segmentstore_env};
use super::{
    BOOKIE_ADMIN_PORT, BOOKIE_DIRS, BOOKIE_PORT, CACHE_MOUNT, CONFIG_HASH_KEY,
    CONTROLLER_REST_PORT, Owner, SEGMENTSTORE_PORT, TIER2_MOUNT, pod_labels, ports,
};

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

pub(super) fn pod_template(
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
