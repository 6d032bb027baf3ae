//! The workloads: the BookKeeper and Segment Store StatefulSets (with their claim templates)
//! and the Controller Deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodTemplateSpec, Volume, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pravega_crds::names::Component;
use pravega_crds::spec_rules::{FIXED_SETTINGS_KEY, fixed_settings};
use pravega_crds::{PravegaClusterSpec, Tier2};

use super::pod::pod_template;
use super::{
    BOOKIE_DIRS, DEFAULT_BOOKIE_VOLUME_SIZE, DEFAULT_CACHE_VOLUME_SIZE,
    DEFAULT_PROGRESS_DEADLINE_SECONDS, Owner,
};

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

/// The spec of a component's StatefulSet: pods started in parallel and replaced only when the
/// operator deletes them (`OnDelete`), from `template`, with the volume claims `claims`.
fn statefulset_spec(
    owner: &Owner<'_>,
    c: Component,
    template: PodTemplateSpec,
    claims: Vec<PersistentVolumeClaim>,
) -> StatefulSetSpec {
    StatefulSetSpec {
        replicas: Some(c.replicas(owner.spec)),
        selector: owner.selector(c),
        service_name: Some(c.service_name(owner.name)),
        pod_management_policy: Some("Parallel".to_owned()),
        update_strategy: Some(StatefulSetUpdateStrategy {
            type_: Some("OnDelete".to_owned()),
            ..StatefulSetUpdateStrategy::default()
        }),
        // PVCs are kept by default (`Retain` for both cases); the field is not sent, so that
        // API servers that do not serve it (before 1.23) accept the object.
        template,
        volume_claim_templates: Some(claims),
        ..StatefulSetSpec::default()
    }
}

pub(super) fn bookkeeper_statefulset(
    owner: &Owner<'_>,
    version: &str,
    config_hash: &str,
) -> StatefulSet {
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
        spec: Some(statefulset_spec(
            owner,
            c,
            pod_template(owner, c, version, config_hash, Vec::new()),
            BOOKIE_DIRS
                .iter()
                .zip(templates)
                .map(|((name, _), t)| claim_template(name, t, DEFAULT_BOOKIE_VOLUME_SIZE))
                .collect(),
        )),
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

pub(super) fn controller_deployment(
    owner: &Owner<'_>,
    version: &str,
    config_hash: &str,
) -> Deployment {
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

pub(super) fn segmentstore_statefulset(
    owner: &Owner<'_>,
    version: &str,
    config_hash: &str,
) -> StatefulSet {
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
        spec: Some(statefulset_spec(
            owner,
            c,
            pod_template(owner, c, version, config_hash, volumes),
            vec![claim_template(
                "cache",
                spec.pravega.cache_volume_claim_template.as_deref(),
                DEFAULT_CACHE_VOLUME_SIZE,
            )],
        )),
        ..StatefulSet::default()
    }
}
