//! Pure readings of the observed workloads and pods: versions, readiness, faults and rollout
//! state, as the planner needs them.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use pravega_crds::Component;
use pravega_crds::names::{LABEL_INSTANCE, VERSION_KEY, component_of};
use pravega_crds::types::ComponentProgress;

use super::Observed;

/// Label the StatefulSet controller puts on each pod: the revision it was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// Container waiting reasons that make a pod faulty: it will not become Ready on its own.
pub const FAULTY_WAITING_REASONS: [&str; 5] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// Why a pod is faulty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A container is in `CrashLoopBackOff`, or has restarted and is not ready.
    Restarting,
    /// A container cannot pull its image (`ImagePullBackOff`, `ErrImagePull`).
    ImagePull(String),
    /// A container's image reference is invalid (`InvalidImageName`).
    InvalidImage,
    /// A container cannot be created from its configuration (`CreateContainerConfigError`,
    /// e.g. a ConfigMap or Secret it reads is missing), with the kubelet's message.
    Config(String),
}

impl Fault {
    /// The guide-style description, e.g. `pod example-bookie-0 is restarting`.
    pub fn describe(&self, pod: &str) -> String {
        match self {
            Fault::Restarting => format!("pod {pod} is restarting"),
            Fault::ImagePull(reason) => format!("pod {pod} cannot pull its image ({reason})"),
            Fault::InvalidImage => format!("pod {pod} has an invalid image name"),
            Fault::Config(why) if why.is_empty() => {
                format!("pod {pod} cannot start its container (CreateContainerConfigError)")
            }
            Fault::Config(why) => format!("pod {pod} cannot start its container: {why}"),
        }
    }
}

/// What the planner needs to know about one pod.
#[derive(Debug, Clone)]
pub struct PodView<'a> {
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    /// StatefulSet ordinal (`<workload>-<n>`); `None` for Deployment pods.
    pub ordinal: Option<u32>,
    /// The `pravega.pravega.io/version` label.
    pub version: Option<&'a str>,
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    pub fault: Option<Fault>,
    pub uid: Option<&'a str>,
    pub resource_version: Option<&'a str>,
    /// The `controller-revision-hash` label.
    pub revision: Option<&'a str>,
}

impl PodView<'_> {
    /// True when the pod runs `version`.
    pub fn at(&self, version: &str) -> bool {
        self.version == Some(version)
    }
}

/// Reads the `Ready` condition of a pod.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn container_fault(cs: &ContainerStatus, init: bool) -> Option<Fault> {
    let waiting_state = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
    let waiting = waiting_state.and_then(|w| w.reason.as_deref());
    match waiting {
        Some("CrashLoopBackOff") => return Some(Fault::Restarting),
        Some("CreateContainerConfigError") => {
            return Some(Fault::Config(
                waiting_state
                    .and_then(|w| w.message.clone())
                    .unwrap_or_default(),
            ));
        }
        Some(r @ ("ImagePullBackOff" | "ErrImagePull")) => return Some(Fault::ImagePull(r.into())),
        Some("InvalidImageName") => return Some(Fault::InvalidImage),
        _ => {}
    }
    // A container that has restarted and is not ready is restarting. Init containers are not
    // ready once they have completed, so only their waiting reasons count.
    (!init && cs.restart_count > 0 && !cs.ready).then_some(Fault::Restarting)
}

/// Judges a pod from its status: a container waiting in one of [`FAULTY_WAITING_REASONS`], or a
/// container that has restarted and is not ready. Image problems are reported before restarts.
pub fn pod_fault(pod: &Pod) -> Option<Fault> {
    let status = pod.status.as_ref()?;
    let containers = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| (c, false));
    let inits = status
        .init_container_statuses
        .iter()
        .flatten()
        .map(|c| (c, true));
    let faults: Vec<Fault> = inits
        .chain(containers)
        .filter_map(|(c, init)| container_fault(c, init))
        .collect();
    faults
        .iter()
        .find(|f| !matches!(f, Fault::Restarting))
        .or_else(|| faults.first())
        .cloned()
}

/// True when the pod is being deleted or has finished for good (`Succeeded` / `Failed`): either
/// way its controller is about to replace it.
pub fn pod_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        || pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| p == "Succeeded" || p == "Failed")
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
    pub observed: bool,
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

fn generation_observed(meta: &ObjectMeta, observed_generation: Option<i64>) -> bool {
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
        ready: pod_ready(pod),
        terminating: pod_terminating(pod),
        fault: pod_fault(pod),
        uid: pod.metadata.uid.as_deref(),
        resource_version: pod.metadata.resource_version.as_deref(),
        revision: label(&pod.metadata, REVISION_LABEL),
    })
}

fn pods_of<'a>(observed: &Observed<'a>, component: Component, workload: &str) -> Vec<PodView<'a>> {
    let stateful = component != Component::Controller;
    let cluster = observed
        .cluster
        .metadata
        .name
        .as_deref()
        .unwrap_or_default();
    let mut pods: Vec<PodView<'a>> = observed
        .pods
        .iter()
        .filter(|p| {
            p.metadata.labels.as_ref().is_some_and(|labels| {
                labels.get(LABEL_INSTANCE).map(String::as_str) == Some(cluster)
                    && component_of(labels) == Some(component)
            })
        })
        .filter_map(|p| view_pod(p, workload, stateful))
        .collect();
    pods.sort_by(|a, b| (a.ordinal, a.name).cmp(&(b.ordinal, b.name)));
    pods
}

fn statefulset_view<'a>(
    observed: &Observed<'a>,
    component: Component,
    sts: Option<&'a StatefulSet>,
) -> ComponentView<'a> {
    let cluster = observed
        .cluster
        .metadata
        .name
        .as_deref()
        .unwrap_or_default();
    let workload = component.workload_name(cluster);
    let pods = pods_of(observed, component, &workload);
    let status = sts.and_then(|s| s.status.as_ref());
    ComponentView {
        component,
        present: sts.is_some(),
        template_version: sts
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| template_version(&s.template)),
        observed: sts.is_some_and(|s| {
            generation_observed(&s.metadata, status.and_then(|st| st.observed_generation))
        }),
        update_revision: status.and_then(|s| s.update_revision.as_deref()),
        desired: component.replicas(&observed.cluster.spec),
        pods,
        deadline_exceeded: false,
        rollout_counts_complete: false,
        workload,
    }
}

fn deployment_view<'a>(observed: &Observed<'a>, dep: Option<&'a Deployment>) -> ComponentView<'a> {
    let component = Component::Controller;
    let cluster = observed
        .cluster
        .metadata
        .name
        .as_deref()
        .unwrap_or_default();
    let workload = component.workload_name(cluster);
    let pods = pods_of(observed, component, &workload);
    let desired = component.replicas(&observed.cluster.spec);
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
        observed: dep.is_some_and(|d| {
            generation_observed(&d.metadata, status.and_then(|st| st.observed_generation))
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
pub fn component_view<'a>(observed: &Observed<'a>, c: Component) -> ComponentView<'a> {
    match c {
        Component::Bookkeeper => statefulset_view(observed, c, observed.bookkeeper),
        Component::Controller => deployment_view(observed, observed.controller),
        Component::SegmentStore => statefulset_view(observed, c, observed.segmentstore),
    }
}

impl ComponentView<'_> {
    /// Pods that are not being deleted.
    pub fn live_pods(&self) -> impl Iterator<Item = &PodView<'_>> {
        self.pods.iter().filter(|p| !p.terminating)
    }

    /// True when the component fully runs `version`: the workload's template is at `version` and
    /// observed, exactly the desired pods exist, all at `version`, Ready and none terminating
    /// (and, for the Deployment, the rollout counts are complete and no old pod is left).
    pub fn done_at(&self, version: &str) -> bool {
        if !self.present || self.template_version != Some(version) || !self.observed {
            return false;
        }
        let desired = usize::try_from(self.desired).unwrap_or(0);
        let pods_ok = self.pods.len() == desired
            && self
                .pods
                .iter()
                .all(|p| !p.terminating && p.ready && p.at(version));
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
