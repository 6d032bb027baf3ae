//! The planner's behaviour, scenario by scenario, as a user watching `kubectl describe`, Events
//! and the operator's log would see it.

mod planner_common;

use std::time::Duration;

use planner_common::*;
use pravega_crds::{Component, ConditionType, PravegaClusterStatus};
use pravega_operator::planner::{Action, Plan};

const BK0: &str = "example-bookie-0";
const BK1: &str = "example-bookie-1";
const BK2: &str = "example-bookie-2";
const TIMEOUT: Duration = Duration::from_secs(600);

/// Plans, applies the versions and stores the status, as one reconcile (without executing
/// actions).
fn reconcile(w: &mut World) -> Plan {
    let p = w.plan();
    w.apply(&p.versions);
    w.store(&p);
    p
}

fn deleted(p: &Plan) -> Vec<&str> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::DeletePod { name, .. } => name.as_str(),
        })
        .collect()
}

fn cond(s: &PravegaClusterStatus, t: ConditionType) -> (bool, String, String) {
    s.condition(t)
        .map(|c| (c.is_true(), c.reason().to_owned(), c.message().to_owned()))
        .unwrap_or_else(|| panic!("no {t} condition"))
}

fn versions(p: &Plan) -> [&str; 3] {
    [
        p.versions.bookkeeper.as_str(),
        p.versions.controller.as_str(),
        p.versions.segmentstore.as_str(),
    ]
}

fn has_event(p: &Plan, warning: bool, reason: &str, note: &str) -> bool {
    p.events
        .iter()
        .any(|e| e.warning == warning && e.reason == reason && e.note == note)
}

fn event_reasons(p: &Plan) -> Vec<&str> {
    p.events.iter().map(|e| e.reason.as_str()).collect()
}

/// The StatefulSet controller catches up with the template.
fn observe_sts(w: &mut World, c: Component) {
    let slot = match c {
        Component::Bookkeeper => &mut w.bookkeeper,
        _ => &mut w.segmentstore,
    };
    if let Some(s) = slot.as_mut() {
        let version = template_version_of_sts(s).unwrap_or_default();
        if let Some(st) = s.status.as_mut() {
            st.observed_generation = s.metadata.generation;
            st.update_revision = Some(rev(&version));
        }
    }
}

/// Replaces pod `ordinal` of `c` with a new pod at `version`.
fn replace(w: &mut World, c: Component, ordinal: u32, version: &str, ready: bool) {
    let name = format!("{}-{ordinal}", c.workload_name(NAME));
    w.pods.retain(|p| pod_name(p) != name);
    let mut p = sts_pod(c, ordinal, version, ready);
    p.metadata.uid = Some(format!("uid-{name}-{version}-new"));
    w.pods.push(p);
}

/// The controller Deployment has finished rolling out `version`.
fn controller_rolled_out(w: &mut World, version: &str) {
    let c = Component::Controller;
    w.pods.retain(|p| {
        p.metadata
            .labels
            .as_ref()
            .and_then(pravega_crds::names::component_of)
            != Some(c)
    });
    w.pods.push(pod(
        c,
        &format!("{}-{}-0", c.workload_name(NAME), rev(version)),
        version,
        true,
    ));
    w.controller = Some(deployment(1, version, 2, 2, true));
}

/// A 3+1+3 cluster at 0.4.0 whose upgrade to 0.5.0 has just started (the bookie template is at
/// 0.5.0 and the StatefulSet controller has seen it).
fn upgrade_started() -> World {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.spec.version = "0.5.0".to_owned();
    reconcile(&mut w);
    observe_sts(&mut w, Component::Bookkeeper);
    w
}

/// The upgrade with every bookie at 0.5.0 and Ready.
fn bookies_upgraded() -> World {
    let mut w = upgrade_started();
    for i in 0..3 {
        replace(&mut w, Component::Bookkeeper, i, "0.5.0", true);
    }
    reconcile(&mut w);
    w
}

/// The upgrade with bookies and controller at 0.5.0, the segment store template at 0.5.0.
fn segmentstore_turn() -> World {
    let mut w = bookies_upgraded();
    controller_rolled_out(&mut w, "0.5.0");
    reconcile(&mut w);
    observe_sts(&mut w, Component::SegmentStore);
    reconcile(&mut w);
    w
}

/// The upgrade failed on a crash-looping example-bookie-0 at 0.5.0.
fn failed_on_bookie() -> (World, Plan) {
    let mut w = upgrade_started();
    replace(&mut w, Component::Bookkeeper, 0, "0.5.0", false);
    set_waiting(w.pod_mut(BK0), "CrashLoopBackOff", 3);
    let p = reconcile(&mut w);
    (w, p)
}

fn assert_idempotent(w: &World, p: &Plan) {
    let again = w.plan_from(p.status.clone());
    assert_eq!(again.versions, p.versions);
    assert_eq!(again.actions, p.actions);
    assert_eq!(again.status, p.status);
}

#[test]
fn first_deployment_waits_for_every_member_then_records_the_version() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.status = None;
    set_ready(w.pod_mut(BK2), false);
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.4.0"; 3]);
    assert_eq!(p.status.current_version, None);
    assert!(p.status.version_history.is_empty());
    assert!(p.actions.is_empty());

    set_ready(w.pod_mut(BK2), true);
    let p = reconcile(&mut w);
    assert_eq!(p.status.current_version.as_deref(), Some("0.4.0"));
    assert_eq!(p.status.version_history, vec!["0.4.0"]);
    assert_eq!(p.status.target_version, None);
    assert!(!cond(&p.status, ConditionType::Upgrading).0);
    assert!(!cond(&p.status, ConditionType::Error).0);
    assert!(has_event(
        &p,
        false,
        "Deployed",
        "all members run version 0.4.0"
    ));
    assert_idempotent(&w, &p);
}

#[test]
fn a_new_cluster_without_workloads_gets_spec_version_everywhere() {
    let mut w = World::running("0.5.0-1", 3, 1, 3);
    w.cluster.status = None;
    w.bookkeeper = None;
    w.controller = None;
    w.segmentstore = None;
    w.pods.clear();
    let p = w.plan();
    assert_eq!(versions(&p), ["0.5.0-1"; 3]);
    assert_eq!(p.status.current_version, None);
    assert!(p.actions.is_empty());
}

#[test]
fn changing_the_version_starts_the_upgrade_with_the_bookies() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.spec.version = "0.5.0".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.5.0", "0.4.0", "0.4.0"]);
    assert!(
        p.actions.is_empty(),
        "the template change is not observed yet"
    );
    assert_eq!(p.status.target_version.as_deref(), Some("0.5.0"));
    assert_eq!(p.status.current_version.as_deref(), Some("0.4.0"));
    assert_eq!(
        cond(&p.status, ConditionType::Upgrading),
        (
            true,
            "InProgress".to_owned(),
            "upgrading from 0.4.0 to 0.5.0: bookkeeper".to_owned()
        )
    );
    let u = p.status.upgrade.clone().unwrap_or_default();
    assert_eq!(u.from_version.as_deref(), Some("0.4.0"));
    assert_eq!(u.to_version.as_deref(), Some("0.5.0"));
    assert_eq!(u.started_at, Some(time(w.now.as_second())));
    assert_eq!(u.last_progress_at, u.started_at);
    let comps: Vec<_> = u
        .components
        .iter()
        .map(|c| (c.component.as_str(), c.updated, c.ready, c.target, c.done))
        .collect();
    assert_eq!(
        comps,
        vec![
            ("bookkeeper", 0, 3, 3, false),
            ("controller", 0, 1, 1, false),
            ("segmentstore", 0, 3, 3, false)
        ]
    );
    assert_eq!(
        p.logs,
        vec![
            "syncing cluster version from 0.4.0 to 0.5.0",
            "updating statefulset (example-bookie) template image to 'pravega/bookkeeper:0.5.0'",
        ]
    );
    assert!(has_event(
        &p,
        false,
        "UpgradeStarted",
        "upgrading from 0.4.0 to 0.5.0"
    ));
    assert_eq!(p.requeue_after, Some(TIMEOUT));
    assert_idempotent(&w, &p);
}

#[test]
fn the_upgrade_waits_until_every_member_is_ready() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    set_ready(w.pod_mut("example-pravega-segmentstore-1"), false);
    w.cluster.spec.version = "0.5.0".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.4.0"; 3]);
    assert_eq!(p.status.target_version, None);
    assert_eq!(
        cond(&p.status, ConditionType::Upgrading),
        (
            false,
            "WaitingForPodsReady".to_owned(),
            "waiting for all members to be ready before upgrading from 0.4.0 to 0.5.0 (6 of 7 ready)"
                .to_owned()
        )
    );
    assert!(p.events.is_empty() && p.logs.is_empty());
    assert_idempotent(&w, &p);

    set_ready(w.pod_mut("example-pravega-segmentstore-1"), true);
    let p = reconcile(&mut w);
    assert_eq!(p.status.target_version.as_deref(), Some("0.5.0"));
}

#[test]
fn no_pod_is_deleted_before_the_statefulset_has_observed_the_new_template() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.spec.version = "0.5.0".to_owned();
    reconcile(&mut w);
    // Generation 2 is not observed yet.
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    // Observed generation, but the update revision still is the old template's.
    if let Some(st) = w.bookkeeper.as_mut().and_then(|s| s.status.as_mut()) {
        st.observed_generation = Some(2);
    }
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    observe_sts(&mut w, Component::Bookkeeper);
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), vec![BK0]);
}

#[test]
fn the_lowest_outdated_pod_is_deleted_with_its_uid_and_resource_version() {
    let mut w = upgrade_started();
    let p = reconcile(&mut w);
    assert_eq!(
        p.actions,
        vec![Action::DeletePod {
            component: Component::Bookkeeper,
            namespace: NS.to_owned(),
            name: BK0.to_owned(),
            uid: "uid-example-bookie-0-0.4.0".to_owned(),
            resource_version: "rv-example-bookie-0-0.4.0".to_owned(),
            reason: "deleting pod example-bookie-0 at 0.4.0 so that it is recreated at 0.5.0"
                .to_owned(),
        }]
    );
    assert_eq!(
        p.logs,
        vec![
            "statefulset (example-bookie) status: 0 updated, 3 ready, 3 target",
            "upgrading pod: example-bookie-0"
        ]
    );
    assert!(has_event(
        &p,
        false,
        "UpgradingPod",
        "deleting pod example-bookie-0 at 0.4.0 so that it is recreated at 0.5.0"
    ));
    assert_idempotent(&w, &p);
}

#[test]
fn nothing_is_deleted_while_a_pod_of_the_component_is_down() {
    let mut w = upgrade_started();
    // Terminating.
    w.terminate(BK0);
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    // Gone, not yet recreated.
    w.pods.retain(|p| pod_name(p) != BK0);
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    // Recreated at the new version, not Ready yet.
    replace(&mut w, Component::Bookkeeper, 0, "0.5.0", false);
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    assert!(
        p.logs.contains(
            &"statefulset (example-bookie) status: 1 updated, 2 ready, 3 target".to_owned()
        )
    );
    // Ready: the next outdated pod, never the updated one.
    set_ready(w.pod_mut(BK0), true);
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), vec![BK1]);
    // Another outdated pod down (not faulty): wait.
    set_ready(w.pod_mut(BK2), false);
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
}

#[test]
fn updated_pods_are_skipped_and_pods_go_in_ordinal_order() {
    let mut w = upgrade_started();
    replace(&mut w, Component::Bookkeeper, 0, "0.5.0", true);
    replace(&mut w, Component::Bookkeeper, 1, "0.5.0", true);
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), vec![BK2]);
}

#[test]
fn a_finished_component_hands_over_to_the_next_one() {
    let mut w = upgrade_started();
    reconcile(&mut w);
    w.now = ts(w.now.as_second() + 30);
    for i in 0..3 {
        replace(&mut w, Component::Bookkeeper, i, "0.5.0", true);
    }
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.5.0", "0.5.0", "0.4.0"]);
    assert!(p.actions.is_empty());
    assert!(has_event(
        &p,
        false,
        "ComponentUpgraded",
        "bookkeeper upgraded to 0.5.0"
    ));
    assert!(p.logs.contains(
        &"updating deployment (example-pravega-controller) template image to 'pravega/pravega:0.5.0'"
            .to_owned()
    ));
    let u = p.status.upgrade.clone().unwrap_or_default();
    assert_eq!(u.last_progress_at, Some(time(w.now.as_second())));
    assert!(u.components[0].done && !u.components[1].done);
    assert_eq!(
        cond(&p.status, ConditionType::Upgrading).2,
        "upgrading from 0.4.0 to 0.5.0: controller"
    );
    assert_idempotent(&w, &p);
}

#[test]
fn the_segment_store_waits_for_the_controller_rollout() {
    let mut w = bookies_upgraded();
    // The Deployment has the new template but has not rolled it out.
    w.controller = Some(deployment(1, "0.5.0", 2, 2, false));
    w.pods.push(pod(
        Component::Controller,
        "example-pravega-controller-new-0",
        "0.5.0",
        false,
    ));
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.5.0", "0.5.0", "0.4.0"]);
    assert!(p.actions.is_empty());
    assert!(p.logs.contains(
        &"deployment (example-pravega-controller) status: 1 updated, 1 ready, 1 target".to_owned()
    ));
    // Not observed yet: also waits.
    w.controller = Some(deployment(1, "0.5.0", 3, 2, true));
    controller_rolled_out(&mut w, "0.5.0");
    w.controller = Some(deployment(1, "0.5.0", 3, 2, true));
    let p = reconcile(&mut w);
    assert_eq!(versions(&p)[2], "0.4.0");
    // Rolled out and observed.
    controller_rolled_out(&mut w, "0.5.0");
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.5.0"; 3]);
    assert!(p.logs.contains(
        &"updating statefulset (example-pravega-segmentstore) template image to 'pravega/pravega:0.5.0'"
            .to_owned()
    ));
}

#[test]
fn a_crash_looping_updated_pod_fails_the_upgrade_with_the_guides_message() {
    let (w, p) = failed_on_bookie();
    let msg = "failed to sync bookkeeper version. pod example-bookie-0 is restarting";
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (true, "UpgradeFailed".to_owned(), msg.to_owned())
    );
    assert_eq!(
        cond(&p.status, ConditionType::Upgrading),
        (false, "UpgradeFailed".to_owned(), msg.to_owned())
    );
    assert_eq!(p.status.target_version.as_deref(), Some("0.5.0"));
    assert_eq!(p.status.current_version.as_deref(), Some("0.4.0"));
    assert!(p.actions.is_empty());
    // The bookie template goes back to 0.4.0, so that a bookie recreated for any reason comes
    // back working; the failed bookie-0 stays as it is.
    assert_eq!(versions(&p), ["0.4.0", "0.4.0", "0.4.0"]);
    assert!(has_event(&p, true, "UpgradeFailed", msg));
    assert_eq!(
        p.logs,
        vec!["statefulset (example-bookie) status: 1 updated, 2 ready, 3 target".to_owned()]
    );
    // A person is needed: logged at WARN.
    assert_eq!(
        p.warnings,
        vec![format!(
            "error syncing cluster version, need manual intervention. {msg}"
        )]
    );
    assert_eq!(p.requeue_after, None);
    // Planning again: stays failed, touches nothing, says nothing new.
    let again = w.plan_from(p.status.clone());
    assert_eq!(again.status, p.status);
    assert!(again.actions.is_empty() && again.events.is_empty() && again.logs.is_empty());
    assert_eq!(again.versions, p.versions);
}

#[test]
fn image_pull_errors_and_restarts_fail_the_upgrade() {
    for (reason, restarts, detail) in [
        (
            "ImagePullBackOff",
            0,
            "cannot pull its image (ImagePullBackOff)",
        ),
        ("ErrImagePull", 0, "cannot pull its image (ErrImagePull)"),
        ("InvalidImageName", 0, "has an invalid image name"),
    ] {
        let mut w = upgrade_started();
        replace(&mut w, Component::Bookkeeper, 0, "0.5.0", false);
        set_waiting(w.pod_mut(BK0), reason, restarts);
        let p = reconcile(&mut w);
        assert_eq!(
            cond(&p.status, ConditionType::Error).2,
            format!("failed to sync bookkeeper version. pod example-bookie-0 {detail}")
        );
    }
    // A running container that restarted and is not ready.
    let mut w = upgrade_started();
    replace(&mut w, Component::Bookkeeper, 0, "0.5.0", false);
    if let Some(cs) = w
        .pod_mut(BK0)
        .status
        .as_mut()
        .and_then(|s| s.container_statuses.as_mut())
        .and_then(|c| c.first_mut())
    {
        cs.restart_count = 2;
    }
    let p = reconcile(&mut w);
    assert_eq!(
        cond(&p.status, ConditionType::Error).2,
        "failed to sync bookkeeper version. pod example-bookie-0 is restarting"
    );
}

#[test]
fn an_exceeded_progress_deadline_fails_the_controller_upgrade() {
    let mut w = bookies_upgraded();
    let mut d = deployment(1, "0.5.0", 2, 2, false);
    set_deadline_exceeded(&mut d);
    w.controller = Some(d);
    let p = reconcile(&mut w);
    let msg = "failed to sync controller version. deployment example-pravega-controller exceeded its progress deadline";
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (true, "UpgradeFailed".to_owned(), msg.to_owned())
    );
    assert!(p.warnings.contains(&format!(
        "error syncing cluster version, need manual intervention. {msg}"
    )));
    // The bookies completed the upgrade and stay at 0.5.0; the Deployment keeps its template.
    assert_eq!(versions(&p), ["0.5.0", "0.5.0", "0.4.0"]);
}

#[test]
fn no_progress_within_the_timeout_fails_the_upgrade() {
    let mut w = segmentstore_turn();
    // One pod is down and does not come back.
    w.terminate("example-pravega-segmentstore-0");
    let start = w.now.as_second();
    w.now = ts(start + 599);
    let p = reconcile(&mut w);
    assert!(!p.status.has_error_reason("UpgradeFailed"));
    assert_eq!(p.requeue_after, Some(Duration::from_secs(1)));
    w.now = ts(start + 600);
    let p = reconcile(&mut w);
    let msg = "failed to sync segmentstore version. no progress for 10m";
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (true, "UpgradeFailed".to_owned(), msg.to_owned())
    );
    assert!(has_event(&p, true, "UpgradeFailed", msg));
    // The Segment Store had not completed: its template goes back to 0.4.0.
    assert_eq!(versions(&p), ["0.5.0", "0.5.0", "0.4.0"]);
}

#[test]
fn the_timeout_comes_from_spec_upgrade_timeout() {
    let mut w = segmentstore_turn();
    w.cluster.spec.upgrade.timeout = "1m30s".to_owned();
    w.terminate("example-pravega-segmentstore-0");
    w.now = ts(w.now.as_second() + 90);
    let p = reconcile(&mut w);
    assert_eq!(
        cond(&p.status, ConditionType::Error).2,
        "failed to sync segmentstore version. no progress for 1m30s"
    );
}

#[test]
fn pausing_stops_template_changes_and_deletions() {
    // Paused while the bookies are being replaced: no deletion.
    let mut w = upgrade_started();
    w.cluster.spec.upgrade.paused = true;
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    let (on, reason, msg) = cond(&p.status, ConditionType::Upgrading);
    assert!(on);
    assert_eq!(reason, "Paused");
    assert_eq!(
        msg,
        "upgrading from 0.4.0 to 0.5.0 is paused at bookkeeper (spec.upgrade.paused is true)"
    );
    assert!(event_reasons(&p).contains(&"UpgradePaused"));
    assert_eq!(p.requeue_after, None);

    // Paused when the bookies are done: the controller template is not changed.
    for i in 0..3 {
        replace(&mut w, Component::Bookkeeper, i, "0.5.0", true);
    }
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.5.0", "0.4.0", "0.4.0"]);
    assert!(p.logs.iter().all(|l| !l.starts_with("updating")));
    // Paused for longer than the timeout: no failure.
    w.now = ts(w.now.as_second() + 3600);
    let p = reconcile(&mut w);
    assert!(!p.status.has_error_reason("UpgradeFailed"));
    assert_idempotent(&w, &p);

    // Resumed: the clock restarts and the controller gets its new template.
    w.cluster.spec.upgrade.paused = false;
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.5.0", "0.5.0", "0.4.0"]);
    assert!(event_reasons(&p).contains(&"UpgradeResumed"));
    assert_eq!(
        p.status.upgrade.and_then(|u| u.last_progress_at),
        Some(time(w.now.as_second()))
    );
    assert_eq!(cond(&w.status(), ConditionType::Upgrading).1, "InProgress");
}

#[test]
fn pausing_before_the_start_keeps_the_cluster_as_it_is() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.spec.upgrade.paused = true;
    w.cluster.spec.version = "0.5.0".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.4.0"; 3]);
    assert_eq!(p.status.target_version, None);
    assert_eq!(
        cond(&p.status, ConditionType::Upgrading),
        (
            false,
            "Paused".to_owned(),
            "upgrade from 0.4.0 to 0.5.0 is paused (spec.upgrade.paused is true)".to_owned()
        )
    );
}

#[test]
fn setting_the_version_back_rolls_the_failed_upgrade_back() {
    let (mut w, _) = failed_on_bookie();
    w.cluster.spec.version = "0.4.0".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.4.0"; 3]);
    assert!(
        p.actions.is_empty(),
        "the template change is not observed yet"
    );
    assert_eq!(
        cond(&p.status, ConditionType::RollbackInProgress),
        (
            true,
            "InProgress".to_owned(),
            "rolling back from 0.5.0 to 0.4.0: bookkeeper".to_owned()
        )
    );
    // Error stays until the rollback succeeds.
    assert!(p.status.has_error_reason("UpgradeFailed"));
    assert!(has_event(
        &p,
        false,
        "RollbackStarted",
        "rolling back from 0.5.0 to 0.4.0"
    ));
    assert!(
        p.logs
            .contains(&"rolling back cluster version from 0.5.0 to 0.4.0".to_owned())
    );
    let u = p.status.upgrade.clone().unwrap_or_default();
    let order: Vec<_> = u.components.iter().map(|c| c.component.as_str()).collect();
    assert_eq!(order, vec!["segmentstore", "controller", "bookkeeper"]);

    // The crash-looping pod is replaced although it is not Ready.
    observe_sts(&mut w, Component::Bookkeeper);
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), vec![BK0]);
    assert!(
        p.logs
            .contains(&"rolling back pod: example-bookie-0".to_owned())
    );
    assert_idempotent(&w, &p);

    // Back at 0.4.0 and Ready: done.
    replace(&mut w, Component::Bookkeeper, 0, "0.4.0", true);
    let p = reconcile(&mut w);
    let msg = "the upgrade to 0.5.0 was rolled back to 0.4.0";
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (false, "RolledBack".to_owned(), msg.to_owned())
    );
    assert_eq!(
        cond(&p.status, ConditionType::RollbackInProgress),
        (
            false,
            "Completed".to_owned(),
            "rolled back from 0.5.0 to 0.4.0".to_owned()
        )
    );
    assert!(!cond(&p.status, ConditionType::Upgrading).0);
    assert_eq!(p.status.target_version, None);
    assert_eq!(p.status.current_version.as_deref(), Some("0.4.0"));
    assert_eq!(p.status.version_history, vec!["0.4.0"]);
    assert!(has_event(&p, false, "RollbackCompleted", msg));
    assert_idempotent(&w, &p);
}

#[test]
fn a_rollback_never_deletes_a_pod_that_is_down_without_being_faulty() {
    let (mut w, _) = failed_on_bookie();
    w.cluster.spec.version = "0.4.0".to_owned();
    reconcile(&mut w);
    observe_sts(&mut w, Component::Bookkeeper);
    set_ready(w.pod_mut(BK1), false);
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
}

#[test]
fn a_crash_looping_pod_during_a_rollback_fails_it() {
    let (mut w, _) = failed_on_bookie();
    w.cluster.spec.version = "0.4.0".to_owned();
    reconcile(&mut w);
    observe_sts(&mut w, Component::Bookkeeper);
    replace(&mut w, Component::Bookkeeper, 0, "0.4.0", false);
    set_waiting(w.pod_mut(BK0), "CrashLoopBackOff", 1);
    let p = reconcile(&mut w);
    let msg = "failed to roll back bookkeeper version. pod example-bookie-0 is restarting";
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (true, "RollbackFailed".to_owned(), msg.to_owned())
    );
    assert!(!cond(&p.status, ConditionType::RollbackInProgress).0);
    assert!(has_event(&p, true, "RollbackFailed", msg));
    assert!(p.warnings.contains(&format!(
        "error rolling back cluster version, need manual intervention. {msg}"
    )));
    assert_eq!(p.status.target_version.as_deref(), Some("0.5.0"));
    assert_idempotent(&w, &p);
}

/// A rollback that failed because example-bookie-0, replaced at 0.4.0, was not Ready within
/// the upgrade timeout (it is slow, not crashing).
fn rollback_failed_on_bookie() -> World {
    let (mut w, _) = failed_on_bookie();
    w.cluster.spec.version = "0.4.0".to_owned();
    w.cluster.metadata.generation = Some(5);
    reconcile(&mut w);
    observe_sts(&mut w, Component::Bookkeeper);
    replace(&mut w, Component::Bookkeeper, 0, "0.4.0", false);
    reconcile(&mut w);
    w.now = ts(w.now.as_second() + 601);
    let p = reconcile(&mut w);
    assert!(
        p.status.has_error_reason("RollbackFailed"),
        "{:?}",
        p.status
    );
    w
}

#[test]
fn a_failed_rollback_is_retried_by_a_later_edit_of_the_spec() {
    let mut w = rollback_failed_on_bookie();
    assert_eq!(
        w.status().upgrade.and_then(|u| u.failed_generation),
        Some(5)
    );
    // Nothing changes on its own.
    let p = reconcile(&mut w);
    assert!(!cond(&p.status, ConditionType::RollbackInProgress).0);
    assert!(p.actions.is_empty());
    // An edit of the spec (here a longer timeout) retries the rollback.
    w.cluster.spec.upgrade.timeout = "30m".to_owned();
    w.cluster.metadata.generation = Some(6);
    let p = reconcile(&mut w);
    assert!(
        p.status
            .is_condition_true(ConditionType::RollbackInProgress),
        "{:?}",
        p.status.conditions
    );
    assert!(has_event(
        &p,
        false,
        "RollbackStarted",
        "rolling back from 0.5.0 to 0.4.0"
    ));
    assert_idempotent(&w, &p);
}

#[test]
fn once_every_member_is_ready_at_one_version_a_failure_is_over() {
    // A failed rollback: the crash-looping pod is fixed (here: Ready at 0.4.0 after all).
    let mut w = rollback_failed_on_bookie();
    replace(&mut w, Component::Bookkeeper, 0, "0.4.0", true);
    let p = reconcile(&mut w);
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (
            false,
            "RolledBack".to_owned(),
            "the upgrade to 0.5.0 was rolled back to 0.4.0".to_owned()
        )
    );
    assert_eq!(p.status.target_version, None);
    assert_eq!(p.status.current_version.as_deref(), Some("0.4.0"));
    assert_eq!(versions(&p), ["0.4.0"; 3]);
    assert_idempotent(&w, &p);

    // A failed upgrade whose failed pod a person deleted: it came back at 0.4.0.
    let (mut w, _) = failed_on_bookie();
    replace(&mut w, Component::Bookkeeper, 0, "0.4.0", true);
    let p = reconcile(&mut w);
    assert!(!cond(&p.status, ConditionType::Error).0);
    assert_eq!(p.status.target_version, None);
    // spec.version still names 0.5.0; it is not tried again on its own.
    assert!(!p.status.is_condition_true(ConditionType::Upgrading));
    assert!(p.actions.is_empty());

    // A failed upgrade whose failed pod came up at the target after all, and a person moved the
    // rest: every member at 0.5.0 and Ready is an upgraded cluster.
    let (mut w, _) = failed_on_bookie();
    for i in 0..3 {
        replace(&mut w, Component::Bookkeeper, i, "0.5.0", true);
    }
    controller_rolled_out(&mut w, "0.5.0");
    for i in 0..3 {
        replace(&mut w, Component::SegmentStore, i, "0.5.0", true);
    }
    let p = reconcile(&mut w);
    assert_eq!(p.status.current_version.as_deref(), Some("0.5.0"));
    assert_eq!(p.status.target_version, None);
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (
            false,
            "Recovered".to_owned(),
            "every member runs 0.5.0 and is Ready".to_owned()
        )
    );
    assert_eq!(p.status.version_history, ["0.4.0", "0.5.0"]);
}

#[test]
fn auto_rollback_starts_as_soon_as_the_upgrade_fails() {
    let mut w = upgrade_started();
    w.cluster.spec.upgrade.auto_rollback = true;
    replace(&mut w, Component::Bookkeeper, 0, "0.5.0", false);
    set_waiting(w.pod_mut(BK0), "CrashLoopBackOff", 3);
    let p = reconcile(&mut w);
    assert_eq!(event_reasons(&p), vec!["UpgradeFailed", "RollbackStarted"]);
    assert!(
        p.status
            .is_condition_true(ConditionType::RollbackInProgress)
    );
    assert_eq!(versions(&p), ["0.4.0"; 3]);
    assert_idempotent(&w, &p);
}

#[test]
fn a_newer_version_after_a_failure_rolls_forward() {
    let (mut w, _) = failed_on_bookie();
    w.cluster.spec.version = "0.5.1".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(p.status.target_version.as_deref(), Some("0.5.1"));
    assert_eq!(versions(&p), ["0.5.1", "0.4.0", "0.4.0"]);
    assert!(!cond(&p.status, ConditionType::Error).0);
    assert_eq!(cond(&p.status, ConditionType::Upgrading).1, "InProgress");
    assert!(
        p.logs
            .contains(&"syncing cluster version from 0.4.0 to 0.5.1".to_owned())
    );
    let u = p.status.upgrade.clone().unwrap_or_default();
    assert_eq!(u.from_version.as_deref(), Some("0.4.0"));
    // The pod crash-looping at 0.5.0 goes first.
    observe_sts(&mut w, Component::Bookkeeper);
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), vec![BK0]);
}

#[test]
fn the_last_pod_completes_the_upgrade() {
    let mut w = segmentstore_turn();
    for i in 0..3 {
        replace(&mut w, Component::SegmentStore, i, "0.5.0", true);
    }
    let p = reconcile(&mut w);
    assert_eq!(p.status.current_version.as_deref(), Some("0.5.0"));
    assert_eq!(p.status.version_history, vec!["0.4.0", "0.5.0"]);
    assert_eq!(p.status.target_version, None);
    assert_eq!(p.status.upgrade, None);
    assert_eq!(
        cond(&p.status, ConditionType::Upgrading),
        (
            false,
            "Completed".to_owned(),
            "upgraded from 0.4.0 to 0.5.0".to_owned()
        )
    );
    assert!(has_event(
        &p,
        false,
        "UpgradeCompleted",
        "upgraded from 0.4.0 to 0.5.0"
    ));
    assert!(
        p.logs
            .contains(&"cluster version synced from 0.4.0 to 0.5.0".to_owned())
    );
    assert_eq!(versions(&p), ["0.5.0"; 3]);
    assert_eq!(p.requeue_after, None);
    assert_idempotent(&w, &p);
}

#[test]
fn an_invalid_version_is_refused_and_nothing_is_touched() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.spec.version = "0.3.0".to_owned();
    let p = reconcile(&mut w);
    let msg = "downgrading the cluster from 0.4.0 to 0.3.0 is not supported; spec.version must be 0.4.0 or higher";
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (true, "InvalidSpec".to_owned(), msg.to_owned())
    );
    assert!(has_event(&p, true, "InvalidSpec", msg));
    assert_eq!(versions(&p), ["0.4.0"; 3]);
    assert_eq!(p.status.target_version, None);
    assert!(p.actions.is_empty());
    // Said once.
    let p = reconcile(&mut w);
    assert!(p.events.is_empty());

    w.cluster.spec.version = "v0.5.0".to_owned();
    let p = reconcile(&mut w);
    let (on, reason, msg) = cond(&p.status, ConditionType::Error);
    assert!(
        on && reason == "InvalidSpec" && msg.contains("drop the leading \"v\""),
        "{msg}"
    );
    assert_eq!(versions(&p), ["0.4.0"; 3]);

    w.cluster.spec.version = "0.4.0".to_owned();
    let p = reconcile(&mut w);
    assert!(!cond(&p.status, ConditionType::Error).0);
}

#[test]
fn a_version_change_during_an_upgrade_is_refused_and_the_upgrade_goes_on() {
    let mut w = upgrade_started();
    w.cluster.spec.version = "0.6.0".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(p.status.target_version.as_deref(), Some("0.5.0"));
    assert_eq!(deleted(&p), vec![BK0]);
    let (on, _, msg) = cond(&p.status, ConditionType::Upgrading);
    assert!(on);
    assert!(
        msg.starts_with(
            "upgrading from 0.4.0 to 0.5.0: bookkeeper; spec.version 0.6.0 was refused: cannot change spec.version to 0.6.0 while the cluster is upgrading from 0.4.0 to 0.5.0"
        ),
        "{msg}"
    );
    assert!(
        p.events
            .iter()
            .any(|e| e.warning && e.reason == "VersionChangeRefused")
    );
    // Warned once.
    let again = w.plan_from(p.status.clone());
    assert!(
        again
            .events
            .iter()
            .all(|e| e.reason != "VersionChangeRefused")
    );
}

#[test]
fn a_restarted_operator_resumes_from_the_status_alone() {
    // Half-way through the bookies; the operator restarts with nothing but the stored status.
    let mut w = upgrade_started();
    replace(&mut w, Component::Bookkeeper, 0, "0.5.0", true);
    let first = reconcile(&mut w);
    assert_eq!(deleted(&first), vec![BK1]);
    let restarted = w.plan();
    assert_eq!(restarted.actions, first.actions);
    assert_eq!(restarted.versions, first.versions);
    // Once the delete went through, the same pod is never targeted again.
    w.execute(&first.actions);
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
}

#[test]
fn a_refused_version_after_a_failure_leaves_the_cluster_failed() {
    let (mut w, failed) = failed_on_bookie();
    w.cluster.spec.version = "0.3.0".to_owned();
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    assert_eq!(versions(&p), versions(&failed));
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        cond(&failed.status, ConditionType::Error)
    );
    let (on, reason, msg) = cond(&p.status, ConditionType::Upgrading);
    assert!(!on);
    assert_eq!(reason, "UpgradeFailed");
    assert!(
        msg.contains("spec.version 0.3.0 was refused: downgrading the cluster from 0.4.0 to 0.3.0 is not supported"),
        "{msg}"
    );
    assert_eq!(event_reasons(&p), vec!["VersionChangeRefused"]);
    let p = reconcile(&mut w);
    assert!(p.events.is_empty(), "warned once");
}

#[test]
fn a_failed_rollback_waits_for_a_person() {
    let (mut w, _) = failed_on_bookie();
    w.cluster.spec.version = "0.4.0".to_owned();
    reconcile(&mut w);
    observe_sts(&mut w, Component::Bookkeeper);
    replace(&mut w, Component::Bookkeeper, 0, "0.4.0", false);
    set_waiting(w.pod_mut(BK0), "CrashLoopBackOff", 1);
    reconcile(&mut w);
    // Nothing more happens on its own.
    for _ in 0..3 {
        w.now = ts(w.now.as_second() + 3600);
        let p = reconcile(&mut w);
        assert!(p.actions.is_empty() && p.events.is_empty());
        assert!(p.status.has_error_reason("RollbackFailed"));
        assert_eq!(versions(&p), ["0.4.0"; 3]);
    }
    // A newer version is a way forward.
    w.cluster.spec.version = "0.5.1".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(p.status.target_version.as_deref(), Some("0.5.1"));
    assert!(p.status.is_condition_true(ConditionType::Upgrading));
    assert!(!p.status.is_condition_true(ConditionType::Error));
}

#[test]
fn pausing_a_rollback_stops_it() {
    let (mut w, _) = failed_on_bookie();
    w.cluster.spec.version = "0.4.0".to_owned();
    reconcile(&mut w);
    observe_sts(&mut w, Component::Bookkeeper);
    w.cluster.spec.upgrade.paused = true;
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    assert_eq!(
        cond(&p.status, ConditionType::RollbackInProgress),
        (
            true,
            "Paused".to_owned(),
            "rolling back from 0.5.0 to 0.4.0 is paused at bookkeeper (spec.upgrade.paused is true)"
                .to_owned()
        )
    );
    w.cluster.spec.upgrade.paused = false;
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), vec![BK0]);
}

#[test]
fn a_failed_pod_counts_as_down() {
    let mut w = upgrade_started();
    if let Some(s) = w.pod_mut(BK2).status.as_mut() {
        s.phase = Some("Failed".to_owned());
    }
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
}

#[test]
fn an_invalid_version_on_a_new_cluster_is_reported() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.status = None;
    w.cluster.spec.version = "0.5".to_owned();
    let p = reconcile(&mut w);
    let (on, reason, msg) = cond(&p.status, ConditionType::Error);
    assert!(on && reason == "InvalidSpec");
    assert!(
        msg.starts_with("spec.version \"0.5\" is not a valid semantic version"),
        "{msg}"
    );
    assert!(event_reasons(&p).contains(&"InvalidSpec"));
    assert_eq!(
        versions(&p),
        ["0.4.0"; 3],
        "running workloads are left alone"
    );
    assert_eq!(p.status.current_version, None);
}

#[test]
fn a_paused_upgrade_is_cancelled_by_setting_the_version_back() {
    // Nothing replaced yet: the templates simply go back, and 0.5.0 is not tried again.
    let mut w = upgrade_started();
    w.cluster.spec.upgrade.paused = true;
    reconcile(&mut w);
    w.cluster.spec.version = "0.4.0".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.4.0"; 3]);
    assert!(p.actions.is_empty());
    assert_eq!(p.status.target_version, None);
    let (upgrading, reason, message) = cond(&p.status, ConditionType::Upgrading);
    assert!(!upgrading);
    assert_eq!(reason, "Cancelled");
    assert_eq!(
        message,
        "the upgrade from 0.4.0 to 0.5.0 was cancelled (spec.version is 0.4.0 again)"
    );
    assert!(
        !p.status
            .is_condition_true(ConditionType::RollbackInProgress)
    );
    assert_eq!(event_reasons(&p), vec!["UpgradeCancelled"]);
    assert_idempotent(&w, &p);

    // bookie-0 already replaced: a rollback starts, paused until the upgrade is resumed.
    let mut w = upgrade_started();
    replace(&mut w, Component::Bookkeeper, 0, "0.5.0", true);
    w.cluster.spec.upgrade.paused = true;
    reconcile(&mut w);
    w.cluster.spec.version = "0.4.0".to_owned();
    let p = reconcile(&mut w);
    assert!(
        p.status
            .is_condition_true(ConditionType::RollbackInProgress)
    );
    assert_eq!(
        cond(&p.status, ConditionType::RollbackInProgress).1,
        "Paused"
    );
    assert!(p.actions.is_empty(), "nothing is deleted while paused");
    w.cluster.spec.upgrade.paused = false;
    let p = reconcile(&mut w);
    observe_sts(&mut w, Component::Bookkeeper);
    let p = if p.actions.is_empty() {
        reconcile(&mut w)
    } else {
        p
    };
    assert_eq!(deleted(&p), vec![BK0], "{:?}", p.actions);
}

#[test]
fn a_version_refused_in_flight_stays_refused_after_the_change_ends() {
    // No webhook: spec.version goes to 0.6.0 while upgrading to 0.5.0.
    let mut w = segmentstore_turn();
    w.cluster.spec.version = "0.6.0".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(p.status.refused_version.as_deref(), Some("0.6.0"));
    // The upgrade to 0.5.0 completes...
    for i in 0..3 {
        replace(&mut w, Component::SegmentStore, i, "0.5.0", true);
    }
    let p = reconcile(&mut w);
    assert_eq!(p.status.current_version.as_deref(), Some("0.5.0"));
    // ...and 0.6.0 is not started: it was refused, as the webhook would have refused it.
    assert!(!p.status.is_condition_true(ConditionType::Upgrading));
    let (error, reason, message) = cond(&p.status, ConditionType::Error);
    assert!(error);
    assert_eq!(reason, "InvalidSpec");
    assert!(
        message.contains("set spec.version to 0.5.0, then to 0.6.0 again"),
        "{message}"
    );
    // Setting it to something else and back makes it a new request.
    w.cluster.spec.version = "0.5.0".to_owned();
    let p = reconcile(&mut w);
    assert_eq!(p.status.refused_version, None);
    w.cluster.spec.version = "0.6.0".to_owned();
    let p = reconcile(&mut w);
    assert!(p.status.is_condition_true(ConditionType::Upgrading));
    assert_eq!(p.status.target_version.as_deref(), Some("0.6.0"));
}

#[test]
fn the_running_pods_decide_the_current_version() {
    let mut w = World::running("0.4.0", 3, 1, 3);
    let mut status = w.status();
    // Edited by hand, e.g. to get around the downgrade rule.
    status.current_version = Some("9.9.9".to_owned());
    w.cluster.status = Some(status);
    let p = reconcile(&mut w);
    assert_eq!(p.status.current_version.as_deref(), Some("0.4.0"));
    assert!(has_event(
        &p,
        true,
        "CurrentVersionCorrected",
        "status.currentVersion said 9.9.9 but every member runs 0.4.0; corrected"
    ));
    assert_eq!(
        p.warnings,
        vec!["status.currentVersion said 9.9.9 but every member runs 0.4.0; corrected"]
    );
    assert!(p.actions.is_empty());
    assert_eq!(versions(&p), ["0.4.0"; 3]);
}

#[test]
fn a_rolled_back_message_is_cleared_by_the_next_upgrade() {
    let (mut w, _) = failed_on_bookie();
    w.cluster.spec.version = "0.4.0".to_owned();
    reconcile(&mut w);
    observe_sts(&mut w, Component::Bookkeeper);
    replace(&mut w, Component::Bookkeeper, 0, "0.4.0", true);
    let p = reconcile(&mut w);
    assert_eq!(cond(&p.status, ConditionType::Error).1, "RolledBack");
    // A later upgrade (to another version) starts with a clean Error.
    w.cluster.spec.version = "0.5.1".to_owned();
    let p = reconcile(&mut w);
    assert!(p.status.is_condition_true(ConditionType::Upgrading));
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (false, String::new(), String::new())
    );
}

/// A converged 3+1+3 cluster at 0.4.0 whose bookie settings changed: the StatefulSet's template
/// has a new revision (same version), every bookie still runs the old one.
fn bookie_settings_changed() -> World {
    let mut w = World::running("0.4.0", 3, 1, 3);
    reconcile(&mut w);
    if let Some(st) = w.bookkeeper.as_mut().and_then(|s| s.status.as_mut()) {
        st.update_revision = Some("rev-new-settings".to_owned());
    }
    w
}

/// Replaces bookie `ordinal` with a pod from the new settings.
fn restarted_bookie(w: &mut World, ordinal: u32, ready: bool) {
    replace(w, Component::Bookkeeper, ordinal, "0.4.0", ready);
    let name = format!("{}-{ordinal}", Component::Bookkeeper.workload_name(NAME));
    if let Some(labels) = w.pod_mut(&name).metadata.labels.as_mut() {
        labels.insert(
            "controller-revision-hash".to_owned(),
            "rev-new-settings".to_owned(),
        );
    }
}

#[test]
fn a_change_of_settings_is_rolled_out_one_pod_at_a_time() {
    let mut w = bookie_settings_changed();
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), vec![BK0]);
    assert_eq!(versions(&p), ["0.4.0"; 3]);
    let (upgrading, reason, message) = cond(&p.status, ConditionType::Upgrading);
    assert!(upgrading);
    assert_eq!(reason, "RollingRestart");
    assert_eq!(
        message,
        "rolling restart to apply a change of the spec: bookkeeper; waiting: example-bookie-0, example-bookie-1, example-bookie-2"
    );
    assert_eq!(event_reasons(&p), vec!["RestartStarted", "RestartingPod"]);
    assert_eq!(p.status.restart.as_ref().map(|r| r.waiting.len()), Some(3));
    assert_idempotent(&w, &p);

    // The replacement is not Ready yet: nothing else is deleted.
    restarted_bookie(&mut w, 0, false);
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    assert_eq!(
        p.status.restart.as_ref().map(|r| r.waiting.clone()),
        Some(vec![
            "example-bookie-1".to_owned(),
            "example-bookie-2".to_owned()
        ])
    );
    restarted_bookie(&mut w, 0, true);
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), vec!["example-bookie-1"]);
    restarted_bookie(&mut w, 1, true);
    reconcile(&mut w);
    restarted_bookie(&mut w, 2, true);
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    assert_eq!(p.status.restart, None);
    assert_eq!(
        cond(&p.status, ConditionType::Upgrading),
        (
            false,
            "Completed".to_owned(),
            "rolling restart completed: every pod runs the current settings".to_owned()
        )
    );
    assert!(event_reasons(&p).contains(&"RestartCompleted"));
}

#[test]
fn a_restart_whose_new_pod_fails_stops_and_has_a_way_out() {
    let mut w = bookie_settings_changed();
    w.cluster.metadata.generation = Some(7);
    reconcile(&mut w);
    restarted_bookie(&mut w, 0, false);
    set_waiting(w.pod_mut(BK0), "CrashLoopBackOff", 2);
    let p = reconcile(&mut w);
    let msg = "failed to restart bookkeeper with the current settings. pod example-bookie-0 is restarting";
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (true, "RestartFailed".to_owned(), msg.to_owned())
    );
    assert!(has_event(&p, true, "RestartFailed", msg));
    assert!(p.actions.is_empty());
    // Nothing happens on its own...
    let p = reconcile(&mut w);
    assert!(p.actions.is_empty());
    assert!(p.status.has_error_reason("RestartFailed"));
    // ...until the spec is edited (new settings, a new revision): the failed pod, down anyway
    // and now outdated, is replaced first.
    w.cluster.metadata.generation = Some(8);
    if let Some(st) = w.bookkeeper.as_mut().and_then(|s| s.status.as_mut()) {
        st.update_revision = Some("rev-fixed-settings".to_owned());
    }
    let p = reconcile(&mut w);
    assert!(!cond(&p.status, ConditionType::Error).0);
    assert_eq!(deleted(&p), vec![BK0]);
}

// ---- Gates before each restart: named blockers, safety checks, soak time, canary ----

use pravega_crds::SafetyCheck;
use pravega_operator::planner::CheckOutcome;

fn blocker(p: &Plan) -> Option<(String, String)> {
    p.status
        .upgrade
        .as_ref()
        .and_then(|u| u.blocked_by.as_ref())
        .map(|b| (b.reason.clone(), b.message.clone()))
}

fn blocker_reason(p: &Plan) -> String {
    blocker(p).map(|b| b.0).unwrap_or_default()
}

/// Pod `name` became Ready at `at` (seconds).
fn ready_since(w: &mut World, name: &str, at: i64) {
    if let Some(c) = w
        .pod_mut(name)
        .status
        .as_mut()
        .and_then(|s| s.conditions.as_mut())
        .and_then(|c| c.first_mut())
    {
        c.last_transition_time = Some(time(at));
    }
}

/// The upgrade at 0.9.0 → 0.10.0 (images whose bookies serve the admin API), just started.
fn upgrade_with_checks() -> World {
    let mut w = World::running("0.9.0", 3, 1, 3);
    w.cluster.spec.version = "0.10.0".to_owned();
    reconcile(&mut w);
    observe_sts(&mut w, Component::Bookkeeper);
    w
}

#[test]
fn a_failing_safety_check_blocks_the_restart_names_itself_and_clears() {
    let mut w = upgrade_with_checks();
    w.check_outcomes.insert(
        SafetyCheck::NoUnderReplicatedLedgers,
        CheckOutcome::Failed("BookKeeper lists 3 under-replicated ledger(s)".into()),
    );
    let p = w.plan_probed();
    w.store(&p);
    // The plan asked for the bookie checks of bookie-0's restart, then refused it.
    let asked = w.probes.last().expect("a probe");
    assert_eq!(asked.component, Component::Bookkeeper);
    assert_eq!(asked.candidate.as_deref(), Some(BK0));
    assert_eq!(
        asked.checks,
        [
            SafetyCheck::NoUnderReplicatedLedgers,
            SafetyCheck::BookiesWritable
        ]
    );
    assert!(deleted(&p).is_empty());
    let msg = "safety check NoUnderReplicatedLedgers fails: BookKeeper lists 3 under-replicated ledger(s)";
    assert_eq!(blocker(&p), Some(("SafetyCheckFailed".into(), msg.into())));
    assert_eq!(
        cond(&p.status, ConditionType::Upgrading),
        (
            true,
            "SafetyCheckFailed".into(),
            format!("upgrading from 0.9.0 to 0.10.0: bookkeeper, {msg}")
        )
    );
    assert!(
        p.events
            .iter()
            .any(|e| e.warning && e.reason == "UpgradeBlocked" && e.note.contains(msg))
    );
    // Checks are polled: nothing in Kubernetes changes when the ledgers heal.
    assert_eq!(p.requeue_after, Some(Duration::from_secs(5)));
    // Reported once: the same blocker again publishes no Event and keeps its start.
    let since = p.status.upgrade.as_ref().and_then(|u| u.blocked_by.clone());
    w.now = ts(w.now.as_second() + 5);
    let again = reconcile(&mut w);
    assert!(!event_reasons(&again).contains(&"UpgradeBlocked"));
    assert_eq!(
        again
            .status
            .upgrade
            .as_ref()
            .and_then(|u| u.blocked_by.clone()),
        since
    );
    // Healed: the next reconcile deletes bookie-0 and the blocker is gone.
    w.check_outcomes.clear();
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), [BK0]);
    assert_eq!(blocker(&p), None);
    assert_eq!(cond(&p.status, ConditionType::Upgrading).1, "InProgress");
}

#[test]
fn an_unreachable_check_blocks_until_the_timeout_then_fails_naming_it() {
    let mut w = upgrade_with_checks();
    w.cluster.spec.upgrade.timeout = "30s".into();
    let why = "the bookie admin API of pod example-bookie-1 at 127.0.0.2:8000: connection refused";
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), [BK0]);
    replace(&mut w, Component::Bookkeeper, 0, "0.10.0", true);
    w.check_outcomes.insert(
        SafetyCheck::BookiesWritable,
        CheckOutcome::Unreachable(why.into()),
    );
    let start = w.now.as_second();
    let p = reconcile(&mut w);
    assert!(deleted(&p).is_empty());
    assert_eq!(blocker_reason(&p), "SafetyCheckUnreachable");
    w.now = ts(start + 30);
    let p = reconcile(&mut w);
    assert_eq!(
        cond(&p.status, ConditionType::Error),
        (
            true,
            "UpgradeFailed".into(),
            format!(
                "failed to sync bookkeeper version. no progress for 30s; safety check BookiesWritable cannot be run: {why}"
            )
        )
    );
}

#[test]
fn no_pod_is_deleted_while_a_check_is_unknown() {
    let w = upgrade_with_checks();
    // Planned without the prober's facts: the step waits for them.
    let p = pravega_operator::planner::plan(&w.observation(), w.member_status());
    assert!(p.actions.is_empty());
    assert_eq!(blocker_reason(&p), "SafetyChecksPending");
    assert!(p.probe.is_some());
}

#[test]
fn an_empty_safety_check_list_switches_the_checks_off() {
    let mut w = upgrade_with_checks();
    w.cluster.spec.upgrade.safety_checks = Some(Vec::new());
    w.check_outcomes.insert(
        SafetyCheck::BookiesWritable,
        CheckOutcome::Failed("0 of 3".into()),
    );
    let p = w.plan_probed();
    assert!(w.probes.is_empty());
    assert_eq!(deleted(&p), [BK0]);
}

#[test]
fn members_stable_waits_for_every_other_member() {
    let mut w = upgrade_with_checks();
    set_ready(w.pod_mut("example-pravega-segmentstore-1"), false);
    let p = reconcile(&mut w);
    assert!(deleted(&p).is_empty());
    assert_eq!(
        blocker(&p).map(|b| b.1),
        Some(
            "safety check MembersStable fails: pod example-pravega-segmentstore-1 is not Ready"
                .into()
        )
    );
    // Only MembersStable listed: the HTTP checks are not run.
    w.cluster.spec.upgrade.safety_checks = Some(vec![SafetyCheck::MembersStable]);
    set_ready(w.pod_mut("example-pravega-segmentstore-1"), true);
    let p = w.plan_probed();
    assert!(w.probes.is_empty());
    assert_eq!(deleted(&p), [BK0]);
}

#[test]
fn a_replacement_soaks_before_the_next_restart() {
    let mut w = upgrade_with_checks();
    w.cluster.spec.upgrade.pod_stabilization = Some("30s".into());
    let start = w.now.as_second();
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), [BK0]);
    replace(&mut w, Component::Bookkeeper, 0, "0.10.0", true);
    ready_since(&mut w, BK0, start + 10);
    w.now = ts(start + 20);
    let p = reconcile(&mut w);
    assert!(deleted(&p).is_empty());
    assert_eq!(blocker_reason(&p), "Soaking");
    // Looked at again when the soak time ends.
    assert_eq!(p.requeue_after, Some(Duration::from_secs(20)));
    w.now = ts(start + 40);
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), [BK1]);
}

#[test]
fn a_replacement_that_restarts_within_its_soak_time_fails_the_upgrade() {
    let mut w = upgrade_with_checks();
    w.cluster.spec.upgrade.pod_stabilization = Some("2s".into());
    let start = w.now.as_second();
    reconcile(&mut w);
    replace(&mut w, Component::Bookkeeper, 0, "0.10.0", true);
    w.pod_mut(BK0).metadata.creation_timestamp = Some(time(start + 1));
    // It crashed at 1 s and is Ready again: the restart is what counts.
    if let Some(cs) = w
        .pod_mut(BK0)
        .status
        .as_mut()
        .and_then(|s| s.container_statuses.as_mut())
        .and_then(|c| c.first_mut())
    {
        cs.restart_count = 1;
    }
    w.now = ts(start + 3);
    let p = reconcile(&mut w);
    assert_eq!(
        cond(&p.status, ConditionType::Error).2,
        "failed to sync bookkeeper version. pod example-bookie-0 restarted 1 time(s) within its stabilization time (spec.upgrade.podStabilization 2s)"
    );
}

#[test]
fn a_canary_holds_after_its_pods_without_running_the_timeout() {
    let mut w = upgrade_with_checks();
    w.cluster.spec.upgrade.pause_after_pods = Some(1);
    let start = w.now.as_second();
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), [BK0]);
    replace(&mut w, Component::Bookkeeper, 0, "0.10.0", true);
    let p = reconcile(&mut w);
    assert!(deleted(&p).is_empty());
    let msg = "canary hold: 1 pod(s) replaced, spec.upgrade.pauseAfterPods is 1; raise or remove it to continue";
    assert_eq!(blocker(&p), Some(("CanaryHold".into(), msg.into())));
    assert_eq!(cond(&p.status, ConditionType::Upgrading).1, "CanaryHold");
    assert!(event_reasons(&p).contains(&"UpgradeBlocked"));
    assert_eq!(p.requeue_after, None);
    // Held for longer than the timeout: no failure.
    w.now = ts(start + 3600);
    let p = reconcile(&mut w);
    assert!(!p.status.has_error_reason("UpgradeFailed"));
    // Removing the field continues with the next bookie.
    w.cluster.spec.upgrade.pause_after_pods = None;
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), [BK1], "{:?}", blocker(&p));
}

#[test]
fn a_canary_hold_keeps_the_controller_template() {
    let mut w = upgrade_started();
    w.cluster.spec.upgrade.pause_after_pods = Some(3);
    for i in 0..3 {
        replace(&mut w, Component::Bookkeeper, i, "0.5.0", true);
    }
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.5.0", "0.4.0", "0.4.0"]);
    assert_eq!(blocker_reason(&p), "CanaryHold");
    w.cluster.spec.upgrade.pause_after_pods = Some(4);
    let p = reconcile(&mut w);
    assert_eq!(versions(&p), ["0.5.0", "0.5.0", "0.4.0"]);
}

#[test]
fn the_routine_steps_are_named_too() {
    let mut w = upgrade_started();
    let p = reconcile(&mut w);
    assert_eq!(deleted(&p), [BK0]);
    w.terminate(BK0);
    assert_eq!(blocker_reason(&reconcile(&mut w)), "PodTerminating");
    w.pods.retain(|p| pod_name(p) != BK0);
    assert_eq!(blocker_reason(&reconcile(&mut w)), "PodMissing");
    replace(&mut w, Component::Bookkeeper, 0, "0.5.0", false);
    assert_eq!(blocker_reason(&reconcile(&mut w)), "PodNotReady");
    w.cluster.spec.upgrade.paused = true;
    assert_eq!(blocker_reason(&reconcile(&mut w)), "Paused");
    // The Controller's template changed: its Deployment rolls out on its own.
    let mut w = bookies_upgraded();
    assert_eq!(blocker_reason(&reconcile(&mut w)), "RollingOut");
}
