//! `planner::replacement_order` (what `kubectl pravega plan` lists) agrees with the pods the
//! planner really replaces, in the same order.

mod planner_common;

use planner_common::*;
use pravega_crds::Component;
use pravega_crds::names::WorkloadKind;
use pravega_operator::planner::{self, Action};

fn names(order: &[planner::Replacement]) -> Vec<&str> {
    order.iter().map(|r| r.pod.as_str()).collect()
}

#[test]
fn bookies_then_the_controller_then_segment_stores_each_by_ordinal() {
    let w = World::running("0.4.0", 3, 1, 3);
    let order = planner::replacement_order(&w.observation(), "0.5.0");
    let got = names(&order);
    assert_eq!(got.len(), 7, "{got:?}");
    assert_eq!(
        &got[..3],
        ["example-bookie-0", "example-bookie-1", "example-bookie-2"]
    );
    assert!(got[3].starts_with("example-pravega-controller-"), "{got:?}");
    assert_eq!(order[3].by, WorkloadKind::Deployment);
    assert_eq!(
        &got[4..],
        [
            "example-pravega-segmentstore-0",
            "example-pravega-segmentstore-1",
            "example-pravega-segmentstore-2"
        ]
    );
    assert!(
        order
            .iter()
            .all(|r| r.from_version.as_deref() == Some("0.4.0"))
    );
    // Nothing to replace at the version that runs.
    assert!(planner::replacement_order(&w.observation(), "0.4.0").is_empty());
}

#[test]
fn a_crash_looping_member_comes_first_and_moved_pods_are_left_out() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    set_waiting(w.pod_mut("example-bookie-2"), "CrashLoopBackOff", 3);
    set_ready(w.pod_mut("example-bookie-2"), false);
    let moved = w.pod_mut("example-pravega-segmentstore-0");
    *moved = sts_pod(Component::SegmentStore, 0, "0.5.0", true);
    let order = planner::replacement_order(&w.observation(), "0.5.0");
    let got = names(&order);
    assert_eq!(
        &got[..3],
        ["example-bookie-2", "example-bookie-0", "example-bookie-1"]
    );
    assert!(!got.contains(&"example-pravega-segmentstore-0"), "{got:?}");
}

#[test]
fn the_listed_statefulset_order_is_the_order_the_planner_deletes_in() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.spec.version = "0.5.0".to_owned();
    let listed: Vec<String> = planner::replacement_order(&w.observation(), "0.5.0")
        .into_iter()
        .filter(|r| r.by == WorkloadKind::StatefulSet)
        .map(|r| r.pod)
        .collect();
    let mut deleted = Vec::new();
    for _ in 0..400 {
        let p = w.plan();
        w.apply(&p.versions);
        w.store(&p);
        let actions: Vec<Action> = p.actions.clone();
        deleted.extend(w.execute(&actions));
        if w.status().current_version.as_deref() == Some("0.5.0") {
            break;
        }
        w.tick(1);
    }
    assert_eq!(w.status().current_version.as_deref(), Some("0.5.0"));
    assert_eq!(deleted, listed);
}
