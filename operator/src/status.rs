//! Pure computation of a cluster's member status from its pods, and the helpers that keep status
//! writes minimal.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pravega_crds::names::Component;
use pravega_crds::{
    ConditionStatus, ConditionType, MembersStatus, PravegaCluster, PravegaClusterStatus, reasons,
};
use serde_json::{Map, Value};

use crate::pods::{is_serving, is_terminating, members};

/// Sets the `Ready` condition from the rest of the status: True (reason `UpToDate`) when every
/// member runs `spec_version` and is Ready with nothing in progress or failed; otherwise False
/// with the reason of what stands in the way. The one place it is decided.
pub fn set_ready(status: &mut PravegaClusterStatus, spec_version: &str, now: &Time) {
    let (ready, reason, message) = ready(status, spec_version);
    status.set_condition(
        ConditionType::Ready,
        ConditionStatus::from_bool(ready),
        reason,
        &message,
        now,
    );
}

fn ready(status: &PravegaClusterStatus, spec_version: &str) -> (bool, &'static str, String) {
    let current = status.current_version.as_deref();
    if let Some(error) = status
        .condition(ConditionType::Error)
        .filter(|c| c.is_true())
    {
        let reason = match error.reason() {
            reasons::UPGRADE_FAILED => reasons::UPGRADE_FAILED,
            reasons::ROLLBACK_FAILED => reasons::ROLLBACK_FAILED,
            reasons::INVALID_SPEC => reasons::INVALID_SPEC,
            reasons::RESTART_FAILED => reasons::RESTART_FAILED,
            reasons::DATA_FROM_NEWER_VERSION => reasons::DATA_FROM_NEWER_VERSION,
            _ => reasons::RECONCILE_FAILED,
        };
        return (false, reason, error.message().to_owned());
    }
    for (type_, reason) in [
        (ConditionType::RollbackInProgress, reasons::ROLLING_BACK),
        (ConditionType::Upgrading, reasons::UPGRADING),
    ] {
        if let Some(c) = status.condition(type_).filter(|c| c.is_true()) {
            return (false, reason, c.message().to_owned());
        }
    }
    let Some(current) = current else {
        return (
            false,
            reasons::DEPLOYING,
            format!("deploying version {spec_version}"),
        );
    };
    if current != spec_version {
        let why = status
            .condition(ConditionType::Upgrading)
            .filter(|c| !c.message().is_empty() && c.reason() != reasons::COMPLETED)
            .map(|c| format!(": {}", c.message()))
            .unwrap_or_default();
        return (
            false,
            reasons::VERSION_MISMATCH,
            format!("spec.version is {spec_version} but the cluster runs {current}{why}"),
        );
    }
    if !status.is_condition_true(ConditionType::PodsReady) {
        let message = status
            .condition(ConditionType::PodsReady)
            .map(|c| c.message().to_owned())
            .unwrap_or_default();
        return (false, reasons::PODS_NOT_READY, message);
    }
    (
        true,
        reasons::UP_TO_DATE,
        format!(
            "all {} members run {current} and are Ready",
            status.ready_replicas
        ),
    )
}

/// Recomputes the member fields of the cluster's status from its pods ([`members`]):
/// `replicas` (desired members), `currentReplicas` (member pods that exist and are not
/// [terminating](is_terminating)), `readyReplicas`, `members.ready` / `members.unready`
/// (sorted; a member is ready when it is [serving](is_serving), so terminating pods are
/// unready), the `PodsReady` condition and `observedGeneration`. Every other field (versions,
/// upgrade progress, other conditions) is kept from the cluster's current status.
pub fn member_status(cluster: &PravegaCluster, pods: &[Pod], now: &Time) -> PravegaClusterStatus {
    let mut status = cluster.status.clone().unwrap_or_default();
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let spec = &cluster.spec;

    let mut listed = Vec::new();
    let mut current = 0i32;
    let mut desired_total = 0i32;
    // Ready members, counting at most the desired number per component: a Deployment's surge pod
    // during a rollout is not an extra member.
    let mut ready_total = 0i32;
    let mut short: Vec<String> = Vec::new();
    for component in Component::UPGRADE_ORDER {
        let desired = component.replicas(spec).max(0);
        desired_total = desired_total.saturating_add(desired);
        let mut ready = 0i32;
        for (_, pod) in members(name, pods).filter(|(c, _)| *c == component) {
            let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
            let serving = is_serving(pod);
            if !is_terminating(pod) {
                current = current.saturating_add(1);
            }
            if serving {
                ready = ready.saturating_add(1);
            }
            listed.push((pod_name, serving));
        }
        if ready < desired {
            short.push(format!("{} {ready}/{desired}", component.as_str()));
        }
        ready_total = ready_total.saturating_add(ready.min(desired));
    }
    let members = MembersStatus::from_pods(listed);

    status.replicas = desired_total;
    status.current_replicas = current;
    status.ready_replicas = ready_total;
    status.observed_generation = cluster.metadata.generation;

    if short.is_empty() && members.unready.is_empty() {
        status.set_condition(
            ConditionType::PodsReady,
            ConditionStatus::True,
            reasons::ALL_PODS_READY,
            &format!("all {desired_total} members are ready"),
            now,
        );
    } else {
        let mut message = format!("{ready_total} of {desired_total} members ready");
        if !short.is_empty() {
            message.push_str(&format!(" (ready/desired: {})", short.join(", ")));
        }
        if !members.unready.is_empty() {
            // With every desired member Ready, the unready pods are extra ones (a rollout's
            // new pod, a pod being replaced): say so rather than "7 of 7 ready" alone.
            let what = if short.is_empty() {
                "; not ready besides them"
            } else {
                "; unready"
            };
            message.push_str(&format!("{what}: {}", members.unready.join(", ")));
        }
        status.set_condition(
            ConditionType::PodsReady,
            ConditionStatus::False,
            reasons::PODS_NOT_READY,
            &message,
            now,
        );
    }
    status.members = members;
    status
}

/// Gives every condition whose `status`, `reason` and `message` are the same as in `before` the
/// times it had in `before`, so that a condition that went through intermediate states within one
/// reconcile but ended where it started costs no status write.
pub fn keep_unchanged_condition_times(
    before: &PravegaClusterStatus,
    after: &mut PravegaClusterStatus,
) {
    for cond in &mut after.conditions {
        if let Some(old) = before.condition(cond.type_)
            && old.status == cond.status
            && old.reason == cond.reason
            && old.message == cond.message
        {
            cond.last_transition_time = old.last_transition_time.clone();
            cond.last_update_time = old.last_update_time.clone();
        }
    }
}

/// An RFC 7386 JSON merge patch that turns `old` into `new`: changed and added fields carry their
/// new values, removed fields are `null`, arrays are replaced whole. Returns `None` when the two
/// are equal.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (key, old_value) in o {
                match n.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(new_value) => {
                        if let Some(p) = merge_patch(old_value, new_value) {
                            patch.insert(key.clone(), p);
                        }
                    }
                }
            }
            for (key, new_value) in n {
                if !o.contains_key(key) {
                    patch.insert(key.clone(), strip_nulls(new_value));
                }
            }
            Some(Value::Object(patch))
        }
        _ => Some(strip_nulls(new)),
    }
}

/// Nulls inside a merge patch mean "delete": a new value must not carry any in its objects.
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::jiff::Timestamp;
    use pravega_crds::PravegaClusterSpec;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    #[test]
    fn ready_says_what_stands_in_the_way() {
        let t = at(10);
        let ready = |s: &PravegaClusterStatus, spec: &str| {
            let mut s = s.clone();
            set_ready(&mut s, spec, &t);
            let c = s.condition(ConditionType::Ready).cloned().unwrap();
            (c.is_true(), c.reason().to_owned(), c.message().to_owned())
        };
        let mut s = PravegaClusterStatus::default();
        assert_eq!(ready(&s, "0.4.0").1, "Deploying");
        s.current_version = Some("0.4.0".into());
        s.ready_replicas = 7;
        s.set_condition(ConditionType::PodsReady, ConditionStatus::True, "", "", &t);
        assert_eq!(
            ready(&s, "0.4.0"),
            (
                true,
                "UpToDate".into(),
                "all 7 members run 0.4.0 and are Ready".into()
            )
        );
        // After an automatic rollback spec.version still names the failed version.
        assert_eq!(
            ready(&s, "6.6.6"),
            (
                false,
                "VersionMismatch".into(),
                "spec.version is 6.6.6 but the cluster runs 0.4.0".into()
            )
        );
        s.set_condition(
            ConditionType::Upgrading,
            ConditionStatus::True,
            "InProgress",
            "upgrading from 0.4.0 to 0.5.0: bookkeeper",
            &t,
        );
        assert_eq!(ready(&s, "0.5.0").1, "Upgrading");
        s.set_condition(
            ConditionType::Error,
            ConditionStatus::True,
            reasons::UPGRADE_FAILED,
            "failed to sync",
            &t,
        );
        assert_eq!(
            ready(&s, "0.5.0"),
            (false, "UpgradeFailed".into(), "failed to sync".into())
        );
    }

    fn cluster(bookies: i32, controllers: i32, stores: i32) -> PravegaCluster {
        let mut spec: PravegaClusterSpec =
            serde_json::from_value(serde_json::json!({"version": "0.4.0"})).unwrap();
        spec.bookkeeper.replicas = bookies;
        spec.pravega.controller_replicas = controllers;
        spec.pravega.segment_store_replicas = stores;
        let mut c = PravegaCluster::new("example", spec);
        c.metadata.namespace = Some("default".into());
        c.metadata.generation = Some(3);
        c
    }

    fn pod(cluster: &str, component: Component, name: &str, ready: bool) -> Pod {
        let mut labels: BTreeMap<String, String> = component.selector_labels(cluster);
        labels.insert("pravega.pravega.io/version".into(), "0.4.0".into());
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            status: Some(crate::pods::tests::pod_status(ready, "Running")),
            ..Pod::default()
        }
    }

    fn full_cluster_pods() -> Vec<Pod> {
        vec![
            pod(
                "example",
                Component::SegmentStore,
                "example-pravega-segmentstore-2",
                true,
            ),
            pod("example", Component::Bookkeeper, "example-bookie-2", true),
            pod("example", Component::Bookkeeper, "example-bookie-0", true),
            pod(
                "example",
                Component::Controller,
                "example-pravega-controller-64ff87fc49-kqp9k",
                true,
            ),
            pod(
                "example",
                Component::SegmentStore,
                "example-pravega-segmentstore-0",
                true,
            ),
            pod("example", Component::Bookkeeper, "example-bookie-1", true),
            pod(
                "example",
                Component::SegmentStore,
                "example-pravega-segmentstore-1",
                true,
            ),
        ]
    }

    #[test]
    fn all_ready_members_are_listed_sorted_and_pods_ready_is_true() {
        let c = cluster(3, 1, 3);
        let s = member_status(&c, &full_cluster_pods(), &at(5));
        assert_eq!(s.replicas, 7);
        assert_eq!(s.ready_replicas, 7);
        assert_eq!(s.current_replicas, 7);
        assert_eq!(
            s.members.ready,
            vec![
                "example-bookie-0",
                "example-bookie-1",
                "example-bookie-2",
                "example-pravega-controller-64ff87fc49-kqp9k",
                "example-pravega-segmentstore-0",
                "example-pravega-segmentstore-1",
                "example-pravega-segmentstore-2",
            ]
        );
        assert!(s.members.unready.is_empty());
        assert!(s.is_condition_true(ConditionType::PodsReady));
        assert_eq!(
            s.condition(ConditionType::PodsReady).map(|c| c.reason()),
            Some(reasons::ALL_PODS_READY)
        );
        assert_eq!(s.observed_generation, Some(3));
    }

    #[test]
    fn an_unready_pod_makes_pods_ready_false_and_is_named() {
        let c = cluster(3, 1, 4);
        let mut pods = full_cluster_pods();
        pods.push(pod(
            "example",
            Component::SegmentStore,
            "example-pravega-segmentstore-3",
            true,
        ));
        pods[2] = pod("example", Component::Bookkeeper, "example-bookie-0", false);
        let s = member_status(&c, &pods, &at(5));
        assert_eq!(s.replicas, 8);
        assert_eq!(s.ready_replicas, 7);
        assert_eq!(s.current_replicas, 8);
        assert_eq!(s.members.unready, vec!["example-bookie-0"]);
        let cond = s.condition(ConditionType::PodsReady).cloned().unwrap();
        assert!(!cond.is_true());
        assert_eq!(cond.reason(), reasons::PODS_NOT_READY);
        assert!(
            cond.message().contains("example-bookie-0"),
            "{}",
            cond.message()
        );
        assert!(
            cond.message().contains("bookkeeper 2/3"),
            "{}",
            cond.message()
        );
    }

    #[test]
    fn a_rollouts_extra_pod_is_not_an_extra_member() {
        let c = cluster(3, 1, 3);
        let mut pods = full_cluster_pods();
        // The Controller rollout's new pod, Ready, beside the old one: still 7 of 7.
        pods.push(pod(
            "example",
            Component::Controller,
            "example-pravega-controller-7d9f8c6b5-x2x9z",
            true,
        ));
        let s = member_status(&c, &pods, &at(5));
        assert_eq!((s.ready_replicas, s.replicas), (7, 7));
        // Not Ready yet: the message says why PodsReady is False although 7 of 7 are ready.
        pods.pop();
        pods.push(pod(
            "example",
            Component::Controller,
            "example-pravega-controller-7d9f8c6b5-x2x9z",
            false,
        ));
        let s = member_status(&c, &pods, &at(5));
        let cond = s.condition(ConditionType::PodsReady).unwrap();
        assert!(!cond.is_true());
        assert_eq!(
            cond.message(),
            "7 of 7 members ready; not ready besides them: example-pravega-controller-7d9f8c6b5-x2x9z"
        );
    }

    #[test]
    fn terminating_pods_are_unready_and_not_current() {
        let c = cluster(3, 1, 3);
        let mut pods = full_cluster_pods();
        pods[1].metadata.deletion_timestamp = Some(at(4));
        let s = member_status(&c, &pods, &at(5));
        assert_eq!(s.current_replicas, 6);
        assert_eq!(s.ready_replicas, 6);
        assert_eq!(s.members.unready, vec!["example-bookie-2"]);
        assert!(!s.is_condition_true(ConditionType::PodsReady));
    }

    #[test]
    fn missing_members_make_pods_ready_false() {
        let c = cluster(3, 1, 3);
        let pods: Vec<Pod> = full_cluster_pods().into_iter().skip(1).collect();
        let s = member_status(&c, &pods, &at(5));
        assert_eq!(s.replicas, 7);
        assert_eq!(s.ready_replicas, 6);
        assert!(s.members.unready.is_empty());
        assert!(!s.is_condition_true(ConditionType::PodsReady));
        let msg = s
            .condition(ConditionType::PodsReady)
            .map(|c| c.message().to_owned());
        assert_eq!(
            msg.as_deref(),
            Some("6 of 7 members ready (ready/desired: segmentstore 2/3)")
        );
    }

    #[test]
    fn pods_of_other_clusters_and_non_members_are_ignored() {
        let c = cluster(3, 1, 3);
        let mut pods = full_cluster_pods();
        pods.push(pod("other", Component::Bookkeeper, "other-bookie-0", false));
        let mut stray = pod("example", Component::Bookkeeper, "stray", false);
        if let Some(l) = stray.metadata.labels.as_mut() {
            l.remove(pravega_crds::names::LABEL_COMPONENT);
        }
        pods.push(stray);
        let s = member_status(&c, &pods, &at(5));
        assert_eq!(s.current_replicas, 7);
        assert!(s.members.unready.is_empty());
    }

    #[test]
    fn versions_and_other_conditions_are_kept_and_same_observation_is_unchanged() {
        let mut c = cluster(3, 1, 3);
        let mut prior = PravegaClusterStatus {
            current_version: Some("0.4.0".into()),
            version_history: vec!["0.4.0".into()],
            ..PravegaClusterStatus::default()
        };
        prior.set_condition(
            ConditionType::Upgrading,
            ConditionStatus::False,
            "",
            "",
            &at(1),
        );
        c.status = Some(prior);
        let first = member_status(&c, &full_cluster_pods(), &at(5));
        assert_eq!(first.current_version.as_deref(), Some("0.4.0"));
        assert!(first.condition(ConditionType::Upgrading).is_some());
        c.status = Some(first.clone());
        let second = member_status(&c, &full_cluster_pods(), &at(9));
        assert_eq!(
            first, second,
            "an unchanged cluster must produce an unchanged status"
        );
    }

    #[test]
    fn condition_times_survive_a_round_trip() {
        let mut before = PravegaClusterStatus::default();
        before.set_condition(
            ConditionType::Error,
            ConditionStatus::True,
            "InvalidSpec",
            "x",
            &at(1),
        );
        let mut after = before.clone();
        after.set_condition(ConditionType::Error, ConditionStatus::False, "", "", &at(2));
        after.set_condition(
            ConditionType::Error,
            ConditionStatus::True,
            "InvalidSpec",
            "x",
            &at(3),
        );
        assert_ne!(before, after);
        keep_unchanged_condition_times(&before, &mut after);
        assert_eq!(before, after);
    }

    #[test]
    fn merge_patch_clears_removed_fields() {
        let old = serde_json::json!({"targetVersion": "0.5.0", "members": {"ready": ["a"], "unready": ["b"]}, "replicas": 2});
        let new = serde_json::json!({"members": {"unready": ["a", "b"]}, "replicas": 2});
        let patch = merge_patch(&old, &new).unwrap();
        assert_eq!(
            patch,
            serde_json::json!({"targetVersion": null, "members": {"ready": null, "unready": ["a", "b"]}})
        );
        assert_eq!(merge_patch(&new, &new), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn merge_patch_turns_old_into_new(old in json_value(), new in json_value()) {
            let mut patched = old.clone();
            if let Some(patch) = merge_patch(&old, &new) {
                json_patch::merge(&mut patched, &patch);
            }
            prop_assert_eq!(patched, new);
        }
    }
}
