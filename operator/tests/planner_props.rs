//! Properties of the planner over random observed states: random versions, readiness, faults,
//! terminating and missing pods, random templates and workload status, random stored status.

mod planner_common;

use k8s_openapi::api::core::v1::Pod;
use planner_common::*;
use pravega_crds::SafetyCheck;
use pravega_crds::names::component_of;
use pravega_crds::{Component, ConditionStatus, ConditionType, PravegaClusterStatus};
use pravega_crds::{ComponentProgress, UpgradeStatus};
use pravega_operator::planner::gates::probed_checks;
use pravega_operator::planner::{self, Action, CheckOutcome, Plan};
use pravega_operator::pods;
use proptest::prelude::*;

const VERSIONS: [&str; 4] = ["0.4.0", "0.5.0", "0.5.1", "v0.6"];

#[derive(Debug, Clone)]
struct PodGen {
    present: bool,
    version: usize,
    ready: bool,
    terminating: bool,
    /// 0 none, 1 CrashLoopBackOff, 2 ImagePullBackOff, 3 restarted and not ready.
    fault: u8,
    preconditions: bool,
}

fn pod_gen() -> impl Strategy<Value = PodGen> {
    (
        prop::bool::weighted(0.9),
        0..3usize,
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.1),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        prop::bool::weighted(0.95),
    )
        .prop_map(
            |(present, version, ready, terminating, fault, preconditions)| PodGen {
                present,
                version,
                ready,
                terminating,
                fault,
                preconditions,
            },
        )
}

#[derive(Debug, Clone)]
struct WorkloadGen {
    present: bool,
    template: usize,
    generation: i64,
    observed: i64,
    /// StatefulSet: 0 the template's revision, 1 another one, 2 none.
    revision: u8,
    /// Deployment: rollout counts complete.
    complete: bool,
    /// Deployment: progress deadline exceeded.
    deadline: bool,
    pods: Vec<PodGen>,
}

fn workload_gen(max_pods: usize) -> impl Strategy<Value = WorkloadGen> {
    (
        prop::bool::weighted(0.95),
        0..3usize,
        1..3i64,
        0..3i64,
        0..3u8,
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::collection::vec(pod_gen(), 0..=max_pods),
    )
        .prop_map(
            |(present, template, generation, observed, revision, complete, deadline, pods)| {
                WorkloadGen {
                    present,
                    template,
                    generation,
                    observed,
                    revision,
                    complete,
                    deadline,
                    pods,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct StatusGen {
    current: Option<usize>,
    target: Option<usize>,
    /// 0 absent, 1 True InProgress, 2 True Paused, 3 False, 4 False WaitingForPodsReady.
    upgrading: u8,
    /// 0 absent, 1 UpgradeFailed, 2 RollbackFailed, 3 InvalidSpec, 4 False.
    error: u8,
    /// 0 absent, 1 True, 2 False.
    rollback: u8,
    /// (from, to, seconds since the last progress, component progress).
    upgrade: Option<ProgressGen>,
}

/// (from, to, seconds since the last progress, (updated, ready, done) per component).
type ProgressGen = (usize, usize, i64, Vec<(i32, i32, bool)>);

fn status_gen() -> impl Strategy<Value = StatusGen> {
    (
        prop::option::weighted(0.9, 0..3usize),
        prop::option::of(0..3usize),
        0..5u8,
        0..5u8,
        0..3u8,
        prop::option::of((
            0..3usize,
            0..3usize,
            0..1300i64,
            prop::collection::vec((0..4i32, 0..4i32, any::<bool>()), 0..=3),
        )),
    )
        .prop_map(
            |(current, target, upgrading, error, rollback, upgrade)| StatusGen {
                current,
                target,
                upgrading,
                error,
                rollback,
                upgrade,
            },
        )
}

#[derive(Debug, Clone)]
struct SpecGen {
    version: usize,
    replicas: [i32; 3],
    paused: bool,
    auto_rollback: bool,
}

fn spec_gen() -> impl Strategy<Value = SpecGen> {
    (
        prop_oneof![9 => 0..3usize, 1 => Just(3usize)],
        (1..4i32, 1..3i32, 1..4i32),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(version, (b, c, s), paused, auto_rollback)| SpecGen {
            version,
            replicas: [b, c, s],
            paused,
            auto_rollback,
        })
}

fn make_pod(c: Component, name: &str, g: &PodGen) -> Pod {
    let mut p = pod(c, name, VERSIONS[g.version], g.ready);
    match g.fault {
        1 => set_waiting(&mut p, "CrashLoopBackOff", 2),
        2 => set_waiting(&mut p, "ImagePullBackOff", 0),
        3 => {
            set_ready(&mut p, false);
            if let Some(cs) = p
                .status
                .as_mut()
                .and_then(|s| s.container_statuses.as_mut())
                .and_then(|c| c.first_mut())
            {
                cs.restart_count = 1;
            }
        }
        _ => {}
    }
    if g.terminating {
        set_terminating(&mut p, ts(0));
    }
    if !g.preconditions {
        p.metadata.resource_version = None;
    }
    p
}

fn build(
    spec: &SpecGen,
    bk: &WorkloadGen,
    ctrl: &WorkloadGen,
    ss: &WorkloadGen,
    st: &StatusGen,
) -> World {
    let now = ts(1_000_000);
    let mut cluster = cluster(
        VERSIONS[spec.version],
        spec.replicas[0],
        spec.replicas[1],
        spec.replicas[2],
    );
    cluster.spec.upgrade.paused = spec.paused;
    cluster.spec.upgrade.auto_rollback = spec.auto_rollback;

    let mut pods = Vec::new();
    let mut make_sts = |c: Component, g: &WorkloadGen, replicas: i32| {
        for (i, pg) in g.pods.iter().enumerate() {
            if pg.present {
                pods.push(make_pod(c, &format!("{}-{i}", c.workload_name(NAME)), pg));
            }
        }
        g.present.then(|| {
            let mut s = sts(c, replicas, VERSIONS[g.template], g.generation, g.observed);
            if let Some(status) = s.status.as_mut() {
                status.update_revision = match g.revision {
                    0 => Some(rev(VERSIONS[g.template])),
                    1 => Some("rev-other".to_owned()),
                    _ => None,
                };
            }
            s
        })
    };
    let bookkeeper = make_sts(Component::Bookkeeper, bk, spec.replicas[0]);
    let segmentstore = make_sts(Component::SegmentStore, ss, spec.replicas[2]);
    for (i, pg) in ctrl.pods.iter().enumerate() {
        if pg.present {
            let name = format!("{}-x-{i}", Component::Controller.workload_name(NAME));
            pods.push(make_pod(Component::Controller, &name, pg));
        }
    }
    let controller = ctrl.present.then(|| {
        let mut d = deployment(
            spec.replicas[1],
            VERSIONS[ctrl.template],
            ctrl.generation,
            ctrl.observed,
            ctrl.complete,
        );
        if ctrl.deadline {
            set_deadline_exceeded(&mut d);
        }
        d
    });

    let mut status = PravegaClusterStatus {
        current_version: st.current.map(|i| VERSIONS[i].to_owned()),
        target_version: st.target.map(|i| VERSIONS[i].to_owned()),
        version_history: st
            .current
            .map(|i| VERSIONS[i].to_owned())
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let t = time(now.as_second() - 5000);
    let set = |s: &mut PravegaClusterStatus, ty, on: bool, reason: &str| {
        s.set_condition(ty, ConditionStatus::from_bool(on), reason, "m", &t);
    };
    match st.upgrading {
        1 => set(&mut status, ConditionType::Upgrading, true, "InProgress"),
        2 => set(&mut status, ConditionType::Upgrading, true, "Paused"),
        3 => set(&mut status, ConditionType::Upgrading, false, ""),
        4 => set(
            &mut status,
            ConditionType::Upgrading,
            false,
            "WaitingForPodsReady",
        ),
        _ => {}
    }
    match st.error {
        1 => set(&mut status, ConditionType::Error, true, "UpgradeFailed"),
        2 => set(&mut status, ConditionType::Error, true, "RollbackFailed"),
        3 => set(&mut status, ConditionType::Error, true, "InvalidSpec"),
        4 => set(&mut status, ConditionType::Error, false, ""),
        _ => {}
    }
    match st.rollback {
        1 => set(
            &mut status,
            ConditionType::RollbackInProgress,
            true,
            "InProgress",
        ),
        2 => set(&mut status, ConditionType::RollbackInProgress, false, ""),
        _ => {}
    }
    if let Some((from, to, ago, comps)) = &st.upgrade {
        let order = ["bookkeeper", "controller", "segmentstore"];
        status.upgrade = Some(UpgradeStatus {
            from_version: Some(VERSIONS[*from].to_owned()),
            to_version: Some(VERSIONS[*to].to_owned()),
            started_at: Some(time(now.as_second() - 2000)),
            last_progress_at: Some(time(now.as_second() - ago)),
            components: comps
                .iter()
                .enumerate()
                .map(|(i, (updated, ready, done))| ComponentProgress {
                    component: order[i].to_owned(),
                    updated: *updated,
                    ready: *ready,
                    target: 3,
                    done: *done,
                })
                .collect(),
            failed_generation: None,
            blocked_by: None,
        });
    }
    cluster.status = Some(status);
    World::from_parts(cluster, bookkeeper, controller, segmentstore, pods, now)
}

// ---- An independent reading of the observed state (the oracle). ----

fn pods_of(w: &World, c: Component) -> Vec<&Pod> {
    w.pods
        .iter()
        .filter(|p| p.metadata.labels.as_ref().and_then(component_of) == Some(c))
        .collect()
}

fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

fn faulty(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                let waiting = c
                    .state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref());
                matches!(
                    waiting,
                    Some(
                        "CrashLoopBackOff"
                            | "ImagePullBackOff"
                            | "ErrImagePull"
                            | "InvalidImageName"
                    )
                ) || (c.restart_count > 0 && !c.ready)
            })
        })
}

fn ordinal(p: &Pod) -> Option<u32> {
    pod_name(p).rsplit('-').next().and_then(|s| s.parse().ok())
}

fn template(w: &World, c: Component) -> Option<String> {
    match c {
        Component::Bookkeeper => w.bookkeeper.as_ref().and_then(template_version_of_sts),
        Component::Controller => w
            .controller
            .as_ref()
            .and_then(template_version_of_deployment),
        Component::SegmentStore => w.segmentstore.as_ref().and_then(template_version_of_sts),
    }
}

fn generation_observed(w: &World, c: Component) -> bool {
    let (generation, observed) = match c {
        Component::Controller => {
            let d = w.controller.as_ref();
            (
                d.and_then(|d| d.metadata.generation),
                d.and_then(|d| d.status.as_ref())
                    .and_then(|s| s.observed_generation),
            )
        }
        _ => {
            let s = if c == Component::Bookkeeper {
                w.bookkeeper.as_ref()
            } else {
                w.segmentstore.as_ref()
            };
            (
                s.and_then(|s| s.metadata.generation),
                s.and_then(|s| s.status.as_ref())
                    .and_then(|s| s.observed_generation),
            )
        }
    };
    matches!((generation, observed), (Some(g), Some(o)) if o >= g)
}

fn desired(w: &World, c: Component) -> usize {
    usize::try_from(c.replicas(&w.cluster.spec)).unwrap_or(0)
}

/// The component fully runs `v`.
fn done(w: &World, c: Component, v: &str) -> bool {
    if template(w, c).as_deref() != Some(v) || !generation_observed(w, c) {
        return false;
    }
    let pods = pods_of(w, c);
    let n = desired(w, c);
    if pods.len() != n
        || !pods
            .iter()
            .all(|p| !terminating(p) && pods::is_ready(p) && pod_version(p) == Some(v))
    {
        return false;
    }
    match c {
        Component::Controller => w
            .controller
            .as_ref()
            .and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.updated_replicas == Some(c.replicas(&w.cluster.spec))),
        _ => (0..n).all(|o| pods.iter().any(|p| ordinal(p) == u32::try_from(o).ok())),
    }
}

fn in_flight(s: &PravegaClusterStatus) -> Option<(bool, String)> {
    // Without a current version the cluster is being deployed for the first time.
    s.current_version.as_ref()?;
    if s.is_condition_true(ConditionType::RollbackInProgress) {
        return s.current_version.clone().map(|v| (true, v));
    }
    if s.is_condition_true(ConditionType::Upgrading) {
        return s.target_version.clone().map(|v| (false, v));
    }
    None
}

fn failed(s: &PravegaClusterStatus) -> bool {
    s.current_version.is_some()
        && (s.has_error_reason("UpgradeFailed") || s.has_error_reason("RollbackFailed"))
        && !s.is_condition_true(ConditionType::RollbackInProgress)
}

fn order(rollback: bool) -> Vec<Component> {
    let mut o = Component::UPGRADE_ORDER.to_vec();
    if rollback {
        o.reverse();
    }
    o
}

fn check(w: &World, plan: &Plan) -> Result<(), TestCaseError> {
    let s = &plan.status;
    let spec = &w.cluster.spec;
    prop_assert!(
        plan.actions.len() <= 1,
        "more than one action: {:?}",
        plan.actions
    );
    if spec.upgrade.paused || failed(s) {
        prop_assert!(plan.actions.is_empty(), "deleted while paused or failed");
    }
    let flight = in_flight(s);
    // Template changes: only while in flight (or idle), and in order. After a failure the
    // StatefulSets go back to the last version that worked and the Deployment stays.
    if failed(s) {
        for c in Component::UPGRADE_ORDER {
            if c == Component::Controller {
                if let Some(t) = template(w, c) {
                    prop_assert_eq!(plan.versions.get(c), t.as_str(), "{} template changed", c);
                }
            } else {
                let completed = s.has_error_reason("UpgradeFailed")
                    && s.target_version.is_some()
                    && s.upgrade.as_ref().is_some_and(|u| {
                        u.to_version == s.target_version
                            && u.components
                                .iter()
                                .any(|p| p.component == c.as_str() && p.done)
                    });
                let last_good = if completed {
                    s.target_version.as_deref()
                } else {
                    s.current_version.as_deref()
                };
                prop_assert_eq!(
                    Some(plan.versions.get(c)),
                    last_good,
                    "{} template is not at the last good version after a failure",
                    c
                );
            }
        }
    } else if spec.upgrade.paused && flight.is_some() {
        for c in Component::UPGRADE_ORDER {
            if let Some(t) = template(w, c) {
                prop_assert_eq!(plan.versions.get(c), t.as_str(), "{} template changed", c);
            }
        }
    }
    if let Some((rollback, v)) = &flight {
        let order = order(*rollback);
        for (i, c) in order.iter().enumerate() {
            if let Some(t) = template(w, *c)
                && plan.versions.get(*c) != t
            {
                prop_assert_eq!(plan.versions.get(*c), v.as_str());
                for earlier in &order[..i] {
                    prop_assert!(
                        done(w, *earlier, v),
                        "{} changed before {} was done",
                        c,
                        earlier
                    );
                }
            }
        }
    }
    for action in &plan.actions {
        let Action::DeletePod {
            component,
            name,
            uid,
            resource_version,
            ..
        } = action;
        let Some((rollback, v)) = flight.clone() else {
            // Nothing in flight: only a rolling restart deletes pods.
            check_restart_deletion(w, s, *component, name, uid, resource_version)?;
            continue;
        };
        let c = *component;
        prop_assert!(c != Component::Controller, "deleted a controller pod");
        let pod = w.find_pod(name);
        prop_assert!(pod.is_some(), "deleted a pod that was not observed");
        let Some(pod) = pod else { continue };
        prop_assert_eq!(pod.metadata.uid.as_deref(), Some(uid.as_str()));
        prop_assert_eq!(
            pod.metadata.resource_version.as_deref(),
            Some(resource_version.as_str())
        );
        prop_assert!(pod.metadata.labels.as_ref().and_then(component_of) == Some(c));
        let order = order(rollback);
        for earlier in order.iter().take_while(|e| **e != c) {
            prop_assert!(
                done(w, *earlier, &v),
                "deleted {} before {} was done",
                name,
                earlier
            );
        }
        let t = template(w, c);
        prop_assert_eq!(t.as_deref(), Some(v.as_str()), "template not at target");
        prop_assert!(generation_observed(w, c), "template change not observed");
        let (revision, update_revision) = revisions(w, c, pod);
        prop_assert!(update_revision.is_none() || revision != update_revision);
        prop_assert!(!terminating(pod), "deleted a terminating pod");
        prop_assert!(
            pod_version(pod) != Some(v.as_str()),
            "deleted an updated pod"
        );
        let pods = pods_of(w, c);
        prop_assert!(
            pods.iter().all(|p| !terminating(p)),
            "deleted while a pod terminates"
        );
        let n = desired(w, c);
        for o in 0..n {
            prop_assert!(
                pods.iter().any(|p| ordinal(p) == u32::try_from(o).ok()),
                "deleted while pod {} is missing",
                o
            );
        }
        let unready: Vec<&&Pod> = pods.iter().filter(|p| !pods::is_ready(p)).collect();
        if !unready.is_empty() {
            // The faulty-pod rule: only a faulty, outdated pod that is down anyway, and only
            // when every pod that is down is such a pod.
            prop_assert!(
                !pods::is_ready(pod),
                "deleted a Ready pod while another was down"
            );
            prop_assert!(faulty(pod));
            for p in unready {
                prop_assert!(faulty(p) && pod_version(p) != Some(v.as_str()));
            }
        }
    }
    Ok(())
}

/// The revision label of `pod` and the update revision of the StatefulSet of `c`.
fn revisions<'a>(
    w: &'a World,
    c: Component,
    pod: &'a Pod,
) -> (Option<&'a String>, Option<&'a String>) {
    let revision = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(pods::REVISION_LABEL));
    let update_revision = match c {
        Component::Bookkeeper => w.bookkeeper.as_ref(),
        _ => w.segmentstore.as_ref(),
    }
    .and_then(|s| s.status.as_ref())
    .and_then(|s| s.update_revision.as_ref());
    (revision, update_revision)
}

/// A deletion of a rolling restart: a pod created from older settings (its revision is not the
/// StatefulSet's update revision), with the upgrade's safety rules, while every pod of the other
/// StatefulSets is Ready.
fn check_restart_deletion(
    w: &World,
    s: &PravegaClusterStatus,
    c: Component,
    name: &str,
    uid: &str,
    resource_version: &str,
) -> Result<(), TestCaseError> {
    prop_assert!(s.restart.is_some(), "deleted a pod with nothing in flight");
    prop_assert_eq!(
        s.condition(ConditionType::Upgrading).map(|c| c.reason()),
        Some("RollingRestart")
    );
    prop_assert!(c != Component::Controller, "deleted a controller pod");
    let Some(pod) = w.find_pod(name) else {
        return Err(TestCaseError::fail("deleted a pod that was not observed"));
    };
    prop_assert_eq!(pod.metadata.uid.as_deref(), Some(uid));
    prop_assert_eq!(
        pod.metadata.resource_version.as_deref(),
        Some(resource_version)
    );
    prop_assert!(generation_observed(w, c), "template change not observed");
    let (revision, update_revision) = revisions(w, c, pod);
    prop_assert!(update_revision.is_some() && revision != update_revision);
    prop_assert!(!terminating(pod), "deleted a terminating pod");
    let pods = pods_of(w, c);
    prop_assert!(pods.iter().all(|p| !terminating(p)));
    for o in 0..desired(w, c) {
        prop_assert!(pods.iter().any(|p| ordinal(p) == u32::try_from(o).ok()));
    }
    let unready: Vec<&&Pod> = pods.iter().filter(|p| !pods::is_ready(p)).collect();
    if !unready.is_empty() {
        prop_assert!(!pods::is_ready(pod) && faulty(pod));
        for p in unready {
            let r = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(pods::REVISION_LABEL));
            prop_assert!(faulty(p) && r != update_revision);
        }
    }
    for other in [Component::Bookkeeper, Component::SegmentStore] {
        if other != c {
            prop_assert!(
                pods_of(w, other)
                    .iter()
                    .all(|p| pods::is_ready(p) && !terminating(p)),
                "restarted a pod while another component was down"
            );
        }
    }
    Ok(())
}

/// A 3+1+3 cluster upgrading from 0.4.0 to `v` (or rolling back from it), with each bookie and
/// segment store at `v` where its flag is true, and optionally one pod down: not Ready (0),
/// terminating (1), crash-looping (2) or missing (3).
fn mid_upgrade_world(
    v: &str,
    bk_versions: &[bool],
    ss_versions: &[bool],
    down: Option<(usize, usize, u8)>,
    ctrl_done: bool,
    rollback: bool,
) -> World {
    let (from, to) = if rollback { (v, "0.4.0") } else { ("0.4.0", v) };
    let mut w = World::running("0.4.0", 3, 1, 3);
    w.cluster.spec.version = if rollback { "0.4.0" } else { v }.to_owned();
    let mut pods = Vec::new();
    for (c, picks) in [
        (Component::Bookkeeper, bk_versions),
        (Component::SegmentStore, ss_versions),
    ] {
        for (i, at_new) in picks.iter().enumerate() {
            let version = if *at_new { v } else { "0.4.0" };
            pods.push(sts_pod(c, u32::try_from(i).unwrap_or(0), version, true));
        }
    }
    let ctrl_version = if ctrl_done { v } else { "0.4.0" };
    pods.push(pod(
        Component::Controller,
        "example-pravega-controller-x-0",
        ctrl_version,
        true,
    ));
    if let Some((which, i, how)) = down {
        let c = if which == 0 {
            Component::Bookkeeper
        } else {
            Component::SegmentStore
        };
        let name = format!("{}-{i}", c.workload_name(NAME));
        if let Some(p) = pods.iter_mut().find(|p| pod_name(p) == name) {
            match how {
                0 => set_ready(p, false),
                1 => set_terminating(p, ts(0)),
                2 => set_waiting(p, "CrashLoopBackOff", 4),
                _ => {}
            }
        }
        if how == 3 {
            pods.retain(|p| pod_name(p) != name);
        }
    }
    w.pods = pods;
    w.bookkeeper = Some(sts(
        Component::Bookkeeper,
        3,
        if rollback { "0.4.0" } else { v },
        2,
        2,
    ));
    w.controller = Some(deployment(1, ctrl_version, 2, 2, true));
    w.segmentstore = Some(sts(
        Component::SegmentStore,
        3,
        if rollback { "0.4.0" } else { v },
        2,
        2,
    ));
    let mut status = running_status("0.4.0");
    status.target_version = Some(v.to_owned());
    let t = time(w.now.as_second());
    if rollback {
        status.set_condition(
            ConditionType::Error,
            ConditionStatus::True,
            "UpgradeFailed",
            "x",
            &t,
        );
        status.set_condition(
            ConditionType::RollbackInProgress,
            ConditionStatus::True,
            "InProgress",
            "x",
            &t,
        );
    } else {
        status.set_condition(
            ConditionType::Upgrading,
            ConditionStatus::True,
            "InProgress",
            "x",
            &t,
        );
    }
    status.upgrade = Some(UpgradeStatus {
        from_version: Some(from.to_owned()),
        to_version: Some(to.to_owned()),
        started_at: Some(t.clone()),
        last_progress_at: Some(t),
        components: Vec::new(),
        failed_generation: None,
        blocked_by: None,
    });
    w.cluster.status = Some(status);
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(768))]

    #[test]
    fn the_plan_is_safe_and_idempotent(
        spec in spec_gen(),
        bk in workload_gen(4),
        ctrl in workload_gen(3),
        ss in workload_gen(4),
        st in status_gen(),
    ) {
        let w = build(&spec, &bk, &ctrl, &ss, &st);
        let plan = w.plan();
        check(&w, &plan)?;
        let again = w.plan_from(plan.status.clone());
        prop_assert_eq!(&again.versions, &plan.versions);
        prop_assert_eq!(&again.actions, &plan.actions);
        prop_assert_eq!(&again.status, &plan.status);
    }

    /// Near-healthy clusters mid-upgrade, where deletions actually happen.
    #[test]
    fn mid_upgrade_deletions_follow_the_rules(
        target in 1..3usize,
        bk_versions in prop::collection::vec(prop::bool::weighted(0.5), 3),
        ss_versions in prop::collection::vec(prop::bool::weighted(0.3), 3),
        down in prop::option::of((0..2usize, 0..3usize, 0..4u8)),
        ctrl_done in any::<bool>(),
        rollback in any::<bool>(),
    ) {
        let v = VERSIONS[target];
        let w = mid_upgrade_world(v, &bk_versions, &ss_versions, down, ctrl_done, rollback);
        let plan = w.plan();
        check(&w, &plan)?;
        let again = w.plan_from(plan.status.clone());
        prop_assert_eq!(&again.actions, &plan.actions);
        prop_assert_eq!(&again.status, &plan.status);

        // And it makes progress: with nothing down, the first component in the operation's
        // order that has a pod to replace gets its lowest one replaced.
        if down.is_none() {
            let (c, picks, outdated) = if rollback {
                (Component::SegmentStore, &ss_versions, true)
            } else {
                (Component::Bookkeeper, &bk_versions, false)
            };
            let expected = picks
                .iter()
                .position(|at_new| *at_new == outdated)
                .map(|i| format!("{}-{i}", c.workload_name(NAME)));
            if let Some(name) = expected {
                let names: Vec<&str> = plan
                    .actions
                    .iter()
                    .map(|a| match a {
                        Action::DeletePod { name, .. } => name.as_str(),
                    })
                    .collect();
                prop_assert_eq!(names, vec![name.as_str()], "{:?}", plan.status.upgrade);
            }
        }
    }

    /// The gates: no pod is deleted while a check in force fails, cannot be run or has not
    /// been run, nor past a canary hold; and a change that does not act says why.
    #[test]
    fn no_restart_while_a_gate_refuses(
        target in 1..3usize,
        bk_versions in prop::collection::vec(prop::bool::weighted(0.5), 3),
        ss_versions in prop::collection::vec(prop::bool::weighted(0.3), 3),
        ctrl_done in any::<bool>(),
        rollback in any::<bool>(),
        enabled in 0..16u8,
        outcomes in prop::collection::vec(0..4u8, 3),
        canary in prop::option::of(0..4u32),
        member_down in any::<bool>(),
    ) {
        let v = VERSIONS[target];
        let mut w = mid_upgrade_world(v, &bk_versions, &ss_versions, None, ctrl_done, rollback);
        let list: Vec<SafetyCheck> = SafetyCheck::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| enabled & (1 << i) != 0)
            .map(|(_, c)| c)
            .collect();
        w.cluster.spec.upgrade.safety_checks = Some(list.clone());
        w.cluster.spec.upgrade.pause_after_pods = canary;
        let probed = [
            SafetyCheck::NoUnderReplicatedLedgers,
            SafetyCheck::BookiesWritable,
            SafetyCheck::PravegaHealthy,
        ];
        for (check, o) in probed.into_iter().zip(&outcomes) {
            let outcome = match o {
                0 => CheckOutcome::Passed,
                1 => CheckOutcome::Failed("found something".into()),
                2 => CheckOutcome::Unreachable("no answer".into()),
                _ => CheckOutcome::NotApplicable("old images".into()),
            };
            w.check_outcomes.insert(check, outcome);
        }
        if member_down {
            set_ready(w.pod_mut("example-pravega-controller-x-0"), false);
        }
        let unprobed = planner::plan(&w.observation(), w.member_status());
        let plan = w.plan();
        check(&w, &plan)?;
        let replaced = w.pods.iter().filter(|p| pod_version(p) == Some(v)).count();
        for action in &plan.actions {
            let Action::DeletePod { component, name, .. } = action;
            if let (false, Some(limit)) = (rollback, canary) {
                prop_assert!(
                    replaced < usize::try_from(limit).unwrap_or(0),
                    "deleted {} past the canary hold", name
                );
            }
            for c in &list {
                if probed_checks(*component).contains(c) {
                    let o = w.check_outcomes.get(c);
                    prop_assert!(
                        matches!(o, Some(CheckOutcome::Passed | CheckOutcome::NotApplicable(_))),
                        "deleted {} while {} said {:?}", name, c, o
                    );
                }
            }
            if list.contains(&SafetyCheck::MembersStable) {
                prop_assert!(!member_down, "deleted {} while a member was down", name);
            }
            if list.iter().any(|c| probed_checks(*component).contains(c)) {
                prop_assert!(unprobed.actions.is_empty(), "deleted {} without running its checks", name);
            }
        }
        let in_flight = plan.status.is_condition_true(ConditionType::Upgrading)
            || plan.status.is_condition_true(ConditionType::RollbackInProgress);
        let observed = planner::ComponentVersions {
            bookkeeper: w.bookkeeper.as_ref().and_then(template_version_of_sts).unwrap_or_default(),
            controller: w.controller.as_ref().and_then(template_version_of_deployment).unwrap_or_default(),
            segmentstore: w.segmentstore.as_ref().and_then(template_version_of_sts).unwrap_or_default(),
        };
        if in_flight && plan.actions.is_empty() && plan.versions == observed {
            let blocked = plan.status.upgrade.as_ref().and_then(|u| u.blocked_by.as_ref());
            prop_assert!(blocked.is_some(), "waits without saying why: {:?}", plan.status.upgrade);
        }
    }
}
