//! Names and labels of the objects the operator creates for a cluster, in one place so that the
//! operator, the sandbox demo, the tests and the docs agree.

use std::collections::BTreeMap;
use std::fmt;

use crate::types::PravegaClusterSpec;

/// Label: the application (`pravega-cluster`).
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// Label: the PravegaCluster's name.
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// Label: the component (`bookie`, `pravega-controller`, `pravega-segmentstore`).
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Label: the version a pod template runs.
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";
/// Label: who manages the object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label and annotation on pod templates: the Pravega version they run.
pub const VERSION_KEY: &str = "pravega.pravega.io/version";

/// Annotation on the PersistentVolumeClaims of bookies and Segment Stores: the highest version
/// that has run on them. Volumes outlive their cluster; a cluster created later at an older
/// version refuses to start on them.
pub const VOLUME_VERSION_KEY: &str = "pravega.pravega.io/highest-version";
/// Annotation on a PravegaCluster (`"true"`): start it at `spec.version` although its volumes
/// hold data written by a newer version.
pub const ALLOW_OLDER_VERSION_KEY: &str = "pravega.pravega.io/allow-older-version-on-newer-data";

/// Value of `app.kubernetes.io/name`.
pub const APP_NAME: &str = "pravega-cluster";
/// Value of `app.kubernetes.io/managed-by`, and the operator's field manager.
pub const MANAGER: &str = "pravega-operator";

/// The components of a Pravega cluster, in upgrade order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    /// BookKeeper bookies (StatefulSet `<name>-bookie`).
    Bookkeeper,
    /// Pravega Controller (Deployment `<name>-pravega-controller`).
    Controller,
    /// Pravega Segment Store (StatefulSet `<name>-pravega-segmentstore`).
    SegmentStore,
}

/// The kind of workload a component runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// A StatefulSet with the `OnDelete` update strategy.
    StatefulSet,
    /// A Deployment with a rolling update.
    Deployment,
}

impl Component {
    /// Every component, in upgrade order (rollback goes in reverse).
    pub const UPGRADE_ORDER: [Component; 3] = [
        Component::Bookkeeper,
        Component::Controller,
        Component::SegmentStore,
    ];

    /// Short name used in status, metrics and messages: `bookkeeper`, `controller`,
    /// `segmentstore`.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Bookkeeper => "bookkeeper",
            Component::Controller => "controller",
            Component::SegmentStore => "segmentstore",
        }
    }

    /// Parses [`Component::as_str`].
    pub fn from_name(name: &str) -> Option<Component> {
        Component::UPGRADE_ORDER
            .into_iter()
            .find(|c| c.as_str() == name)
    }

    /// Value of the `app.kubernetes.io/component` label.
    pub fn label(self) -> &'static str {
        match self {
            Component::Bookkeeper => "bookie",
            Component::Controller => "pravega-controller",
            Component::SegmentStore => "pravega-segmentstore",
        }
    }

    /// The workload kind.
    pub fn workload_kind(self) -> WorkloadKind {
        match self {
            Component::Controller => WorkloadKind::Deployment,
            Component::Bookkeeper | Component::SegmentStore => WorkloadKind::StatefulSet,
        }
    }

    /// Name of the component's workload (and of its ConfigMap and PDB):
    /// `<cluster>-bookie`, `<cluster>-pravega-controller`, `<cluster>-pravega-segmentstore`.
    pub fn workload_name(self, cluster: &str) -> String {
        format!("{cluster}-{}", self.label())
    }

    /// Name of the component's Service: headless for the StatefulSets.
    pub fn service_name(self, cluster: &str) -> String {
        match self {
            Component::Controller => self.workload_name(cluster),
            Component::Bookkeeper | Component::SegmentStore => {
                format!("{}-headless", self.workload_name(cluster))
            }
        }
    }

    /// Name of the component's ConfigMap.
    pub fn config_map_name(self, cluster: &str) -> String {
        format!("{}-configmap", self.workload_name(cluster))
    }

    /// Desired replicas of the component.
    pub fn replicas(self, spec: &PravegaClusterSpec) -> i32 {
        match self {
            Component::Bookkeeper => spec.bookkeeper.replicas,
            Component::Controller => spec.pravega.controller_replicas,
            Component::SegmentStore => spec.pravega.segment_store_replicas,
        }
    }

    /// The component's image at `version`.
    pub fn image(self, spec: &PravegaClusterSpec, version: &str) -> String {
        match self {
            Component::Bookkeeper => spec.bookkeeper.image.image(version),
            Component::Controller | Component::SegmentStore => spec.pravega.image.image(version),
        }
    }

    /// The component's image pull policy, if set.
    pub fn pull_policy(self, spec: &PravegaClusterSpec) -> Option<&str> {
        match self {
            Component::Bookkeeper => spec.bookkeeper.image.pull_policy.as_deref(),
            Component::Controller | Component::SegmentStore => {
                spec.pravega.image.pull_policy.as_deref()
            }
        }
    }

    /// Labels selecting the component's pods (stable across versions: used as the workload
    /// selector, which is immutable).
    pub fn selector_labels(self, cluster: &str) -> BTreeMap<String, String> {
        let mut labels = cluster_selector_labels(cluster);
        labels.insert(LABEL_COMPONENT.to_owned(), self.label().to_owned());
        labels
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Labels every object and pod of a cluster carries; selects all of the cluster's pods.
pub fn cluster_selector_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), APP_NAME.to_owned()),
        (LABEL_INSTANCE.to_owned(), cluster.to_owned()),
    ])
}

/// The label selector string for all of a cluster's pods (for list/watch calls).
pub fn cluster_selector(cluster: &str) -> String {
    format!("{LABEL_NAME}={APP_NAME},{LABEL_INSTANCE}={cluster}")
}

/// The label selector string for one component's pods.
pub fn component_selector(cluster: &str, component: Component) -> String {
    format!(
        "{},{LABEL_COMPONENT}={}",
        cluster_selector(cluster),
        component.label()
    )
}

/// Works out which component a pod belongs to from its labels.
pub fn component_of(labels: &BTreeMap<String, String>) -> Option<Component> {
    let value = labels.get(LABEL_COMPONENT)?;
    Component::UPGRADE_ORDER
        .into_iter()
        .find(|c| c.label() == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_guide() {
        assert_eq!(
            Component::Bookkeeper.workload_name("example"),
            "example-bookie"
        );
        assert_eq!(
            Component::Controller.workload_name("example"),
            "example-pravega-controller"
        );
        assert_eq!(
            Component::SegmentStore.workload_name("example"),
            "example-pravega-segmentstore"
        );
        assert_eq!(
            Component::Bookkeeper.service_name("example"),
            "example-bookie-headless"
        );
        assert_eq!(
            Component::Controller.service_name("example"),
            "example-pravega-controller"
        );
    }

    #[test]
    fn component_round_trips() {
        for c in Component::UPGRADE_ORDER {
            assert_eq!(Component::from_name(c.as_str()), Some(c));
            assert_eq!(component_of(&c.selector_labels("x")), Some(c));
        }
        assert_eq!(Component::from_name("zookeeper"), None);
    }

    #[test]
    fn selectors() {
        assert_eq!(
            component_selector("example", Component::Bookkeeper),
            "app.kubernetes.io/name=pravega-cluster,app.kubernetes.io/instance=example,app.kubernetes.io/component=bookie"
        );
    }
}
