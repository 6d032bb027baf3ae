//! Drives the planner through whole upgrades against a small model of the StatefulSet and
//! Deployment controllers and the kubelet, checking what a user would see: the order pods are
//! replaced in, that at most one pod of a component is down, and the final status.

mod planner_common;

use planner_common::*;
use pravega_crds::{Component, ConditionType, PravegaClusterStatus};
use pravega_operator::planner::Plan;

#[derive(Default)]
struct Trace {
    /// (round, pod) for every pod deleted.
    deletions: Vec<(usize, String)>,
    /// (round, component, version) for every template change applied.
    template_changes: Vec<(usize, Component, String)>,
    logs: Vec<String>,
    events: Vec<(bool, String, String)>,
    rounds: usize,
    last: Option<Plan>,
}

impl Trace {
    fn deleted(&self) -> Vec<&str> {
        self.deletions.iter().map(|(_, n)| n.as_str()).collect()
    }

    fn first_change(&self, c: Component, version: &str) -> usize {
        self.template_changes
            .iter()
            .find(|(_, cc, v)| *cc == c && v == version)
            .map(|(r, _, _)| *r)
            .unwrap_or_else(|| panic!("{c} never changed to {version}"))
    }

    fn round_of(&self, pod: &str) -> usize {
        self.deletions
            .iter()
            .find(|(_, n)| n == pod)
            .map(|(r, _)| *r)
            .unwrap_or_else(|| panic!("{pod} never deleted"))
    }

    fn has_log(&self, line: &str) -> bool {
        self.logs.iter().any(|l| l == line)
    }

    fn event_reasons(&self) -> Vec<&str> {
        self.events.iter().map(|(_, r, _)| r.as_str()).collect()
    }
}

fn templates(w: &World) -> [Option<String>; 3] {
    [
        w.bookkeeper.as_ref().and_then(template_version_of_sts),
        w.controller
            .as_ref()
            .and_then(template_version_of_deployment),
        w.segmentstore.as_ref().and_then(template_version_of_sts),
    ]
}

/// Reconciles, applies, executes and lets the controllers run, until `done` holds after a
/// reconcile. Checks on every round that planning is idempotent and that no component has more
/// than one pod down.
fn run(w: &mut World, max_rounds: usize, done: impl Fn(&PravegaClusterStatus) -> bool) -> Trace {
    let mut trace = Trace::default();
    for round in 0..max_rounds {
        let plan = w.plan();
        let again = w.plan_from(plan.status.clone());
        assert_eq!(
            again.versions, plan.versions,
            "round {round}: versions not idempotent"
        );
        assert_eq!(
            again.actions, plan.actions,
            "round {round}: actions not idempotent"
        );
        assert_eq!(
            again.status, plan.status,
            "round {round}: status is not a fixpoint"
        );

        let before = templates(w);
        w.apply(&plan.versions);
        let after = templates(w);
        for (i, c) in Component::UPGRADE_ORDER.into_iter().enumerate() {
            if before[i] != after[i] {
                let v = after[i].clone().unwrap_or_default();
                trace.template_changes.push((round, c, v));
            }
        }
        for name in w.execute(&plan.actions) {
            trace.deletions.push((round, name));
        }
        for c in Component::UPGRADE_ORDER {
            assert!(w.down(c) <= 1, "round {round}: more than one {c} pod down");
        }
        trace.logs.extend(plan.logs.iter().cloned());
        // WARN lines, in the same trace (they are logged too).
        trace.logs.extend(plan.warnings.iter().cloned());
        trace.events.extend(
            plan.events
                .iter()
                .map(|e| (e.warning, e.reason.clone(), e.note.clone())),
        );
        w.store(&plan);
        trace.rounds = round;
        let finished = done(&plan.status);
        trace.last = Some(plan);
        if finished {
            return trace;
        }
        w.tick(5);
    }
    panic!(
        "not finished after {max_rounds} rounds; status: {:#?}\nlogs: {:#?}",
        w.status(),
        trace.logs
    );
}

fn settled(version: &'static str) -> impl Fn(&PravegaClusterStatus) -> bool {
    move |s| s.current_version.as_deref() == Some(version) && s.target_version.is_none()
}

fn failed_with(reason: &'static str) -> impl Fn(&PravegaClusterStatus) -> bool {
    move |s| s.has_error_reason(reason)
}

/// A few more rounds change nothing and do nothing.
fn assert_quiet(w: &mut World, rounds: usize) {
    let status = w.status();
    for _ in 0..rounds {
        w.tick(5);
        let plan = w.plan();
        assert!(
            plan.actions.is_empty(),
            "unexpected actions {:?}",
            plan.actions
        );
        w.apply(&plan.versions);
        w.store(&plan);
    }
    let after = w.status();
    assert_eq!(after.current_version, status.current_version);
    assert_eq!(after.target_version, status.target_version);
    assert_eq!(
        after.condition(ConditionType::Error),
        status.condition(ConditionType::Error)
    );
}

/// The names of the 3 pods of StatefulSet `sts`, in order.
fn members(sts: &str) -> Vec<String> {
    (0..3).map(|i| format!("{sts}-{i}")).collect()
}

fn all_pods_at(w: &World, version: &str) -> bool {
    w.pods.iter().all(|p| pod_version(p) == Some(version))
}

#[test]
fn a_whole_upgrade_replaces_bookies_then_controller_then_segment_stores() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    let idle = run(&mut w, 1, settled("0.4.0"));
    assert!(idle.deletions.is_empty());

    w.cluster.spec.version = "0.5.0".to_owned();
    let t = run(&mut w, 200, settled("0.5.0"));

    assert_eq!(
        t.deleted(),
        [
            members("example-bookie"),
            members("example-pravega-segmentstore")
        ]
        .concat()
    );
    // Templates change in order, each after the previous component is done.
    let bk = t.first_change(Component::Bookkeeper, "0.5.0");
    let ctrl = t.first_change(Component::Controller, "0.5.0");
    let ss = t.first_change(Component::SegmentStore, "0.5.0");
    assert!(bk < t.round_of("example-bookie-0"));
    assert!(t.round_of("example-bookie-2") < ctrl);
    assert!(ctrl < ss && ss < t.round_of("example-pravega-segmentstore-0"));
    assert_eq!(t.template_changes.len(), 3, "{:?}", t.template_changes);

    let s = w.status();
    assert_eq!(s.current_version.as_deref(), Some("0.5.0"));
    assert_eq!(s.version_history, vec!["0.4.0", "0.5.0"]);
    assert_eq!(s.target_version, None);
    assert_eq!(s.upgrade, None);
    let up = s
        .condition(ConditionType::Upgrading)
        .unwrap_or_else(|| panic!("no Upgrading"));
    assert!(!up.is_true());
    assert_eq!(up.reason(), "Completed");
    assert_eq!(up.message(), "upgraded from 0.4.0 to 0.5.0");
    assert!(all_pods_at(&w, "0.5.0"));

    for line in [
        "syncing cluster version from 0.4.0 to 0.5.0",
        "updating statefulset (example-bookie) template image to 'pravega/bookkeeper:0.5.0'",
        "statefulset (example-bookie) status: 0 updated, 3 ready, 3 target",
        "upgrading pod: example-bookie-0",
        "statefulset (example-bookie) status: 1 updated, 3 ready, 3 target",
        "upgrading pod: example-bookie-1",
        "updating deployment (example-pravega-controller) template image to 'pravega/pravega:0.5.0'",
        "updating statefulset (example-pravega-segmentstore) template image to 'pravega/pravega:0.5.0'",
        "upgrading pod: example-pravega-segmentstore-2",
        "cluster version synced from 0.4.0 to 0.5.0",
    ] {
        assert!(t.has_log(line), "missing log {line:?} in {:#?}", t.logs);
    }
    let reasons = t.event_reasons();
    assert_eq!(reasons.first(), Some(&"UpgradeStarted"));
    assert_eq!(reasons.last(), Some(&"UpgradeCompleted"));
    assert_eq!(reasons.iter().filter(|r| **r == "UpgradingPod").count(), 6);
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == "ComponentUpgraded")
            .count(),
        3
    );
    assert!(t.events.iter().all(|(warning, _, _)| !warning));
    assert_quiet(&mut w, 3);
}

#[test]
fn a_crashing_bookie_fails_the_upgrade_and_setting_the_version_back_rolls_it_back() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.crashing.insert("bookkeeper@0.5.0".to_owned());
    w.cluster.spec.version = "0.5.0".to_owned();
    let t = run(&mut w, 50, failed_with("UpgradeFailed"));

    let msg = "failed to sync bookkeeper version. pod example-bookie-0 is restarting";
    assert_eq!(t.deleted(), vec!["example-bookie-0"]);
    assert!(t.has_log("statefulset (example-bookie) status: 1 updated, 2 ready, 3 target"));
    assert!(t.has_log(&format!(
        "error syncing cluster version, need manual intervention. {msg}"
    )));
    assert!(
        t.events
            .iter()
            .any(|(warning, r, note)| *warning && r == "UpgradeFailed" && note == msg)
    );
    let s = w.status();
    assert_eq!(s.current_version.as_deref(), Some("0.4.0"));
    assert_eq!(s.target_version.as_deref(), Some("0.5.0"));
    let err = s
        .condition(ConditionType::Error)
        .unwrap_or_else(|| panic!("no Error"));
    assert!(err.is_true());
    assert_eq!(err.message(), msg);
    assert!(!s.is_condition_true(ConditionType::Upgrading));
    // Every template is back at the last version that worked, so a bookie recreated for any
    // reason comes back working; the failed bookie-0 stays as it is (OnDelete).
    assert_eq!(templates(&w).to_vec(), vec![Some("0.4.0".to_owned()); 3]);
    // The failed version is not retried on its own.
    assert_quiet(&mut w, 5);
    assert_eq!(w.status().target_version.as_deref(), Some("0.5.0"));

    // Rollback: the crash-looping bookie is replaced at 0.4.0.
    w.cluster.spec.version = "0.4.0".to_owned();
    let t = run(&mut w, 50, |s| {
        s.target_version.is_none() && !s.is_condition_true(ConditionType::RollbackInProgress)
    });
    assert_eq!(t.deleted(), vec!["example-bookie-0"]);
    assert!(t.has_log("rolling back cluster version from 0.5.0 to 0.4.0"));
    assert!(t.has_log("rolling back pod: example-bookie-0"));
    assert!(t.has_log("rolled back cluster version from 0.5.0 to 0.4.0"));
    let reasons = t.event_reasons();
    assert!(reasons.contains(&"RollbackStarted") && reasons.contains(&"RollbackCompleted"));
    let s = w.status();
    assert_eq!(s.current_version.as_deref(), Some("0.4.0"));
    assert_eq!(s.version_history, vec!["0.4.0"]);
    let err = s
        .condition(ConditionType::Error)
        .unwrap_or_else(|| panic!("no Error"));
    assert!(!err.is_true());
    assert_eq!(err.reason(), "RolledBack");
    assert!(!s.is_condition_true(ConditionType::Upgrading));
    assert!(all_pods_at(&w, "0.4.0"));
    assert_quiet(&mut w, 3);
}

#[test]
fn after_a_failure_a_newer_version_rolls_forward_from_the_current_one() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.crashing.insert("bookkeeper@0.5.0".to_owned());
    w.cluster.spec.version = "0.5.0".to_owned();
    run(&mut w, 50, failed_with("UpgradeFailed"));

    w.cluster.spec.version = "0.5.1".to_owned();
    let t = run(&mut w, 200, settled("0.5.1"));
    assert!(t.has_log("syncing cluster version from 0.4.0 to 0.5.1"));
    // The crash-looping bookie goes first, although it is not Ready.
    assert_eq!(t.deleted()[..3], members("example-bookie"));
    assert_eq!(t.deletions.len(), 6);
    let s = w.status();
    assert_eq!(s.version_history, vec!["0.4.0", "0.5.1"]);
    assert!(!s.is_condition_true(ConditionType::Error));
    assert!(all_pods_at(&w, "0.5.1"));
}

#[test]
fn auto_rollback_undoes_a_failed_controller_rollout_in_reverse_order() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.spec.upgrade.auto_rollback = true;
    w.crashing.insert("controller@0.5.0".to_owned());
    w.cluster.spec.version = "0.5.0".to_owned();
    let t = run(&mut w, 200, |s| {
        s.current_version.as_deref() == Some("0.4.0")
            && s.target_version.is_none()
            && s.upgrade.is_some()
    });
    let failure = t
        .logs
        .iter()
        .position(|l| l.starts_with("error syncing cluster version"))
        .unwrap_or_else(|| panic!("no failure in {:#?}", t.logs));
    assert!(
        t.logs[failure].starts_with(
            "error syncing cluster version, need manual intervention. failed to sync controller version. pod example-pravega-controller-rev-0-5-0-"
        ) && t.logs[failure].ends_with(" is restarting"),
        "{}",
        t.logs[failure]
    );
    // Bookies up, then (after the controller failed and was rolled back) bookies down again.
    assert_eq!(
        t.deleted(),
        [members("example-bookie"), members("example-bookie")].concat()
    );
    let ctrl_back = t.first_change(Component::Controller, "0.4.0");
    let bk_back = t.first_change(Component::Bookkeeper, "0.4.0");
    assert!(
        ctrl_back < bk_back,
        "controller rolls back before the bookies"
    );
    assert!(
        t.template_changes
            .iter()
            .all(|(_, c, _)| *c != Component::SegmentStore),
        "the segment store was never touched"
    );
    let s = w.status();
    assert!(all_pods_at(&w, "0.4.0"));
    assert_eq!(s.version_history, vec!["0.4.0"]);
    // spec.version still says 0.5.0: it is not tried again on its own.
    assert_eq!(w.cluster.spec.version, "0.5.0");
    assert_quiet(&mut w, 5);
    assert!(!w.status().is_condition_true(ConditionType::Upgrading));
}
