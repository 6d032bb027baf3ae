//! What the operator reads of a pod, one function per question: is it Ready, is it going away,
//! is it faulty, which cluster member is it. The member status ([`crate::status`]) and the
//! planner's readings ([`crate::planner`]) both ask here, so a pod means the same to both.
//!
//! Two kinds of readiness are told apart:
//! - [`is_ready`]: the pod's `Ready` condition is `True`, as the kubelet reports it. A pod being
//!   deleted keeps reporting `Ready` until its containers stop.
//! - [`is_serving`]: Ready and not [terminating](is_terminating): a member that counts as up and
//!   stays up. The member status counts these.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;
use pravega_crds::names::{Component, LABEL_INSTANCE, component_of};

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

/// True when the pod's `Ready` condition is `True`, whatever else is going on (a terminating
/// pod may still be Ready). See [`is_serving`] for Ready and staying.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// When the pod's `Ready` condition last became `True`, while it is `True`.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// How many times the pod's containers have restarted, in all.
pub fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| c.restart_count)
                .fold(0, i32::saturating_add)
        })
        .unwrap_or(0)
}

/// True when the pod is being deleted (`metadata.deletionTimestamp` is set) or has finished for
/// good (phase `Succeeded` or `Failed`): either way its controller is about to replace it.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        || pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| p == "Succeeded" || p == "Failed")
}

/// True when the pod [is Ready](is_ready) and [not terminating](is_terminating): a member that
/// counts as up in `readyReplicas` and `members.ready`.
pub fn is_serving(pod: &Pod) -> bool {
    is_ready(pod) && !is_terminating(pod)
}

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
pub fn fault(pod: &Pod) -> Option<Fault> {
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

/// The component of cluster `cluster` that `pod` is a member of: the pod carries the cluster's
/// instance label and a component label. `None` for any other pod.
pub fn member_of(pod: &Pod, cluster: &str) -> Option<Component> {
    let labels = pod.metadata.labels.as_ref()?;
    if labels.get(LABEL_INSTANCE).map(String::as_str) != Some(cluster) {
        return None;
    }
    component_of(labels)
}

/// The member pods of cluster `cluster` among `pods`, with their component (see [`member_of`]),
/// in the order of `pods`.
pub fn members<'a>(cluster: &str, pods: &'a [Pod]) -> impl Iterator<Item = (Component, &'a Pod)> {
    pods.iter()
        .filter_map(move |pod| member_of(pod, cluster).map(|c| (c, pod)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    /// A pod's status in `phase`, Ready or not.
    pub(crate) fn pod_status(ready: bool, phase: &str) -> PodStatus {
        PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }
    }

    fn pod(ready: bool, phase: &str) -> Pod {
        Pod {
            status: Some(pod_status(ready, phase)),
            ..Pod::default()
        }
    }

    #[test]
    fn a_terminating_pod_may_be_ready_but_is_not_serving() {
        let mut p = pod(true, "Running");
        assert!(is_ready(&p) && !is_terminating(&p) && is_serving(&p));
        p.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(is_ready(&p) && is_terminating(&p) && !is_serving(&p));
        let finished = pod(true, "Succeeded");
        assert!(is_ready(&finished) && is_terminating(&finished) && !is_serving(&finished));
        let failed = pod(false, "Failed");
        assert!(!is_ready(&failed) && is_terminating(&failed));
        assert!(!is_ready(&Pod::default()) && !is_terminating(&Pod::default()));
    }
}
