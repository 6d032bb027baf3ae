//! The planner's views of an [`Observation`]: for each component, its workload's template
//! version and rollout state and its pods' versions, readiness and faults, read once per plan.
//! What a single pod means (Ready, terminating, faulty, a member) is read by [`crate::pods`].

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use pravega_crds::Component;
use pravega_crds::names::VERSION_KEY;
use pravega_crds::types::ComponentProgress;

use super::Observation;
use crate::pods::{self, Fault, REVISION_LABEL};

/// What the planner needs to know about one pod.
#[derive(Debug, Clone)]
pub struct PodView<'a> {
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    /// StatefulSet ordinal (`<workload>-<n>`); `None` for Deployment pods.
    pub ordinal: Option<u32>,
    /// The `pravega.pravega.io/version` label.
    pub version: Option<&'a str>,
    /// The `Ready` condition is `True` ([`pods::is_ready`]; a terminating pod may be Ready too).
    pub ready: bool,
    /// Being deleted or finished for good ([`pods::is_terminating`]).
    pub terminating: bool,
    /// Why the pod will not become Ready on its own ([`pods::fault`]).
    pub fault: Option<Fault>,
    pub uid: Option<&'a str>,
    pub resource_version: Option<&'a str>,
    /// The `controller-revision-hash` label.
    pub revision: Option<&'a str>,
    /// When the pod last became Ready, while it is ([`pods::ready_since`]).
    pub ready_since: Option<Timestamp>,
    /// Container restarts, in all ([`pods::restarts`]).
    pub restarts: i32,
    /// `metadata.creationTimestamp`.
    pub created: Option<Timestamp>,
}

impl PodView<'_> {
    /// Ready and not terminating ([`pods::is_serving`]).
    pub fn serving(&self) -> bool {
        self.ready && !self.terminating
    }

    /// True when the pod runs `version`.
    pub fn at(&self, version: &str) -> bool {
        self.version == Some(version)
    }
}

fn template_version(template: &PodTemplateSpec) -> Option<&str> {
    let meta = template.metadata.as_ref()?;
    meta.labels
        .as_ref()
        .and_then(|l| l.get(VERSION_KEY))
        .or_else(|| meta.annotations.as_ref().and_then(|a| a.get(VERSION_KEY)))
        .map(String::as_str)
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// What the planner needs to know about one component: its workload and its pods.
#[derive(Debug, Clone)]
pub struct ComponentView<'a> {
    pub component: Component,
    /// Name of the StatefulSet or Deployment.
    pub workload: String,
    /// The workload exists.
    pub present: bool,
    /// Version of the workload's pod template.
    pub template_version: Option<&'a str>,
    /// The workload controller has seen the latest spec (`observedGeneration >= generation`).
    pub generation_observed: bool,
    /// `status.updateRevision` of a StatefulSet.
    pub update_revision: Option<&'a str>,
    /// Desired pods, from the PravegaCluster spec.
    pub desired: i32,
    /// The component's pods, sorted by ordinal (StatefulSets) or name (Deployment).
    pub pods: Vec<PodView<'a>>,
    /// Deployment: `Progressing` is False with reason `ProgressDeadlineExceeded`.
    pub deadline_exceeded: bool,
    /// Deployment: replicas, updated, ready and available replicas all equal the desired count.
    pub rollout_counts_complete: bool,
}

/// The workload controller has seen the generation of the object `meta` belongs to.
fn saw_generation(meta: &ObjectMeta, observed_generation: Option<i64>) -> bool {
    match (meta.generation, observed_generation) {
        (Some(generation), Some(observed)) => observed >= generation,
        // Without a generation there is nothing to wait for; without an observed generation the
        // workload controller has not looked at the object yet.
        (None, _) => true,
        (Some(_), None) => false,
    }
}

fn view_pod<'a>(pod: &'a Pod, workload: &str, stateful: bool) -> Option<PodView<'a>> {
    let name = pod.metadata.name.as_deref()?;
    let ordinal = if stateful {
        let rest = name.strip_prefix(workload)?.strip_prefix('-')?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(rest.parse::<u32>().ok()?)
    } else {
        None
    };
    Some(PodView {
        name,
        namespace: pod.metadata.namespace.as_deref(),
        ordinal,
        version: label(&pod.metadata, VERSION_KEY),
        ready: pods::is_ready(pod),
        terminating: pods::is_terminating(pod),
        fault: pods::fault(pod),
        uid: pod.metadata.uid.as_deref(),
        resource_version: pod.metadata.resource_version.as_deref(),
        revision: label(&pod.metadata, REVISION_LABEL),
        ready_since: pods::ready_since(pod),
        restarts: pods::restarts(pod),
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
    })
}

/// The views of the member pods of `component` ([`pods::members`]), sorted by ordinal
/// (StatefulSets) or name (Deployment). A StatefulSet's pod not named `<workload>-<ordinal>` is
/// left out.
fn pods_of<'a>(
    observation: &Observation<'a>,
    component: Component,
    workload: &str,
) -> Vec<PodView<'a>> {
    let stateful = component != Component::Controller;
    let cluster = observation
        .cluster
        .metadata
        .name
        .as_deref()
        .unwrap_or_default();
    let mut views: Vec<PodView<'a>> = pods::members(cluster, observation.pods)
        .filter(|(c, _)| *c == component)
        .filter_map(|(_, p)| view_pod(p, workload, stateful))
        .collect();
    views.sort_by(|a, b| (a.ordinal, a.name).cmp(&(b.ordinal, b.name)));
    views
}

/// The name of `component`'s workload and its pods.
fn workload_pods<'a>(
    observation: &Observation<'a>,
    component: Component,
) -> (String, Vec<PodView<'a>>) {
    let cluster = observation
        .cluster
        .metadata
        .name
        .as_deref()
        .unwrap_or_default();
    let workload = component.workload_name(cluster);
    let pods = pods_of(observation, component, &workload);
    (workload, pods)
}

fn statefulset_view<'a>(
    observation: &Observation<'a>,
    component: Component,
    sts: Option<&'a StatefulSet>,
) -> ComponentView<'a> {
    let (workload, pods) = workload_pods(observation, component);
    let status = sts.and_then(|s| s.status.as_ref());
    ComponentView {
        component,
        present: sts.is_some(),
        template_version: sts
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| template_version(&s.template)),
        generation_observed: sts.is_some_and(|s| {
            saw_generation(&s.metadata, status.and_then(|st| st.observed_generation))
        }),
        update_revision: status.and_then(|s| s.update_revision.as_deref()),
        desired: component.replicas(&observation.cluster.spec),
        pods,
        deadline_exceeded: false,
        rollout_counts_complete: false,
        workload,
    }
}

fn deployment_view<'a>(
    observation: &Observation<'a>,
    dep: Option<&'a Deployment>,
) -> ComponentView<'a> {
    let component = Component::Controller;
    let (workload, pods) = workload_pods(observation, component);
    let desired = component.replicas(&observation.cluster.spec);
    let status = dep.and_then(|d| d.status.as_ref());
    let deadline_exceeded = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
        });
    let spec_replicas = dep
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let rollout_counts_complete = status.is_some_and(|s| {
        spec_replicas == desired
            && [
                s.replicas,
                s.updated_replicas,
                s.ready_replicas,
                s.available_replicas,
            ]
            .iter()
            .all(|n| n.unwrap_or(0) == desired)
    });
    ComponentView {
        component,
        present: dep.is_some(),
        template_version: dep
            .and_then(|d| d.spec.as_ref())
            .and_then(|s| template_version(&s.template)),
        generation_observed: dep.is_some_and(|d| {
            saw_generation(&d.metadata, status.and_then(|st| st.observed_generation))
        }),
        update_revision: None,
        desired,
        pods,
        deadline_exceeded,
        rollout_counts_complete,
        workload,
    }
}

/// The view of component `c`.
pub fn component_view<'a>(observation: &Observation<'a>, c: Component) -> ComponentView<'a> {
    match c {
        Component::Bookkeeper => statefulset_view(observation, c, observation.bookkeeper),
        Component::Controller => deployment_view(observation, observation.controller),
        Component::SegmentStore => statefulset_view(observation, c, observation.segmentstore),
    }
}

impl ComponentView<'_> {
    /// Pods that are not [terminating](pods::is_terminating).
    pub fn live_pods(&self) -> impl Iterator<Item = &PodView<'_>> {
        self.pods.iter().filter(|p| !p.terminating)
    }

    /// True when the component fully runs `version`: the workload's template is at `version` and
    /// its controller has seen it, exactly the desired pods exist, all at `version` and
    /// [serving](PodView::serving) (and, for the Deployment, the rollout counts are complete and no
    /// old pod is left).
    pub fn done_at(&self, version: &str) -> bool {
        if !self.present || self.template_version != Some(version) || !self.generation_observed {
            return false;
        }
        let desired = usize::try_from(self.desired).unwrap_or(0);
        let pods_ok =
            self.pods.len() == desired && self.pods.iter().all(|p| p.serving() && p.at(version));
        if !pods_ok {
            return false;
        }
        match self.component {
            Component::Controller => self.rollout_counts_complete,
            Component::Bookkeeper | Component::SegmentStore => self.missing_ordinals().is_empty(),
        }
    }

    /// StatefulSet ordinals below the desired count with no pod.
    pub fn missing_ordinals(&self) -> Vec<u32> {
        let present: BTreeSet<u32> = self.pods.iter().filter_map(|p| p.ordinal).collect();
        let desired = u32::try_from(self.desired).unwrap_or(0);
        (0..desired).filter(|o| !present.contains(o)).collect()
    }

    /// Progress towards `version`.
    pub fn progress(&self, version: &str) -> ComponentProgress {
        let count = |f: &dyn Fn(&PodView<'_>) -> bool| {
            i32::try_from(self.live_pods().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
        };
        ComponentProgress {
            component: self.component.as_str().to_owned(),
            updated: count(&|p| p.at(version)),
            ready: count(&|p| p.ready),
            target: self.desired,
            done: self.done_at(version),
        }
    }

    /// The first live pod at `version` that is faulty, with its fault.
    pub fn faulty_at(&self, version: &str) -> Option<(&PodView<'_>, &Fault)> {
        self.live_pods()
            .filter(|p| p.at(version))
            .find_map(|p| p.fault.as_ref().map(|f| (p, f)))
    }
}
