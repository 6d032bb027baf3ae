//! The upgrade planner: a pure function from what the operator observed (an [`Observation`]: the
//! PravegaCluster, its workloads, its pods, the time) to what it must do (template versions, at
//! most one pod deletion, the status to write, Events and log lines). No I/O, no clock, no
//! logging: everything derives from the status and the observed objects, so a restarted operator
//! resumes where it was.
//!
//! # Modes (derived from the status, first match wins)
//! 1. **First deployment** (no `currentVersion`): every template at `spec.version`; once every
//!    component runs it and `PodsReady` is True, `currentVersion` and `versionHistory` are set.
//! 2. **Rollback** (`RollbackInProgress` True): components not at `currentVersion` are moved back,
//!    Segment Store, then Controller, then BookKeeper.
//! 3. **Failed** (`Error` True with `UpgradeFailed` or `RollbackFailed`): no pod is deleted; each
//!    StatefulSet template goes back to the last version that worked for it (so that a pod
//!    recreated for any reason comes back working) and the Controller's stays where it is, until `spec.version` goes back to `currentVersion` (rollback,
//!    or at once with `spec.upgrade.autoRollback`) or to another version the rules allow (a roll
//!    forward, started from `currentVersion` without waiting for `PodsReady`, since the failed
//!    pod is down). `spec.version` equal to the failed `targetVersion` is never retried on its own.
//!    A failed rollback is retried by any later edit of the spec while `spec.version` is
//!    `currentVersion` (`status.upgrade.failedGeneration` records the spec that failed). Whatever
//!    failed, once every member is Ready at one version (`currentVersion` or the target) the
//!    failure is over: the cluster is recorded as rolled back, or as upgraded.
//! 4. **Upgrading** (`Upgrading` True and `targetVersion` set): BookKeeper, then Controller, then
//!    Segment Store are moved to `targetVersion`.
//! 5. **Idle**: an upgrade starts when `spec.version` differs from `currentVersion`, the rules
//!    allow it, the upgrade is not paused and every member is Ready. After an automatic rollback
//!    away from version X, `spec.version` X does not start again on its own (set `spec.version` to
//!    `currentVersion` first, then to X).
//!
//! # Pod deletion rules (StatefulSets, `OnDelete`)
//! A pod is deleted only when: the component is the first one (in the operation's order) not yet
//! done; the upgrade is neither paused nor failed; the StatefulSet's template is at the version
//! being rolled out and its controller has observed it (`observedGeneration >= generation`, and
//! the pod's `controller-revision-hash` is not the `updateRevision`); no pod of the component is
//! terminating or missing; the pod is not at the version being rolled out and carries a uid and
//! resourceVersion (sent as delete preconditions). Normally every pod of the component must be
//! Ready, and the lowest-ordinal outdated pod is chosen.
//!
//! **Faulty-pod rule** (upgrade and rollback alike): a pod that is down because it is faulty
//! (a container waiting in `CrashLoopBackOff`, `ImagePullBackOff`, `ErrImagePull` or
//! `InvalidImageName`, or restarted and not ready) and is not at the version being rolled out may
//! be deleted although it is not Ready, provided every not-Ready pod of the component is such a
//! pod; the lowest-ordinal of them is chosen. It is down already, so replacing it takes no further
//! pod down; this is what lets a rollback (or a roll forward) replace a crash-looping pod.
//!
//! # Progress, deadlines and pausing
//! `status.upgrade.lastProgressAt` moves when a component's count of updated pods or of Ready pods
//! goes up, or a component completes; the version change fails when it has not moved for
//! `spec.upgrade.timeout`, and `requeue_after` is the time left until then. While
//! `spec.upgrade.paused` is true no template changes and no pod deletions are made and the timeout
//! does not run (it restarts on resume); a Controller rollout the Deployment controller already
//! started runs to its end.
//!
//! # Failures
//! A faulty pod at the version being rolled out, a Deployment whose `Progressing` condition says
//! `ProgressDeadlineExceeded` (once its template is at that version and observed), or the timeout
//! stop the change: `Error` True with reason `UpgradeFailed` (`RollbackFailed` for a rollback) and
//! a message like `failed to sync bookkeeper version. pod example-bookie-0 is restarting`.
//!
//! # Error condition during a rollback
//! `Error` stays True (reason `UpgradeFailed`, the failure's message) while the rollback runs; it
//! becomes False with reason `RolledBack` when the rollback completes, or True with reason
//! `RollbackFailed` when it fails.

pub mod gates;
mod restart;
mod views;

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, apps::v1::StatefulSet, core::v1::Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use pravega_crds::duration::{format_duration, parse_duration};
use pravega_crds::names::WorkloadKind;
use pravega_crds::types::{
    ComponentProgress, DEFAULT_UPGRADE_TIMEOUT, UpgradeBlocker, UpgradeStatus,
};
use pravega_crds::{
    Component, ConditionStatus, ConditionType, Decision, PravegaCluster, PravegaClusterStatus,
    event_actions, event_reasons, parse_version, reasons,
};

pub use gates::{Blocked, CheckFacts, CheckOutcome, ProbeRequest};
use views::{ComponentView, PodView, component_view};

/// What the planner sees: the cluster, its workloads and its pods as the controller read them,
/// and the time of the reconcile.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The cluster being reconciled.
    pub cluster: &'a PravegaCluster,
    /// StatefulSet `<name>-bookie`, if it exists.
    pub bookkeeper: Option<&'a StatefulSet>,
    /// Deployment `<name>-pravega-controller`, if it exists.
    pub controller: Option<&'a Deployment>,
    /// StatefulSet `<name>-pravega-segmentstore`, if it exists.
    pub segmentstore: Option<&'a StatefulSet>,
    /// Every pod of the cluster (cluster label selector).
    pub pods: &'a [Pod],
    /// The time of this reconcile.
    pub now: Timestamp,
    /// What the safety checks of the next step found, when the prober ran them
    /// ([`Plan::probe`]).
    pub checks: Option<&'a CheckFacts>,
}

/// The version each component's pod template must carry after this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentVersions {
    /// Version of the bookie StatefulSet template.
    pub bookkeeper: String,
    /// Version of the controller Deployment template.
    pub controller: String,
    /// Version of the segment store StatefulSet template.
    pub segmentstore: String,
}

impl ComponentVersions {
    /// The same version for every component.
    pub fn all(version: &str) -> Self {
        Self {
            bookkeeper: version.to_owned(),
            controller: version.to_owned(),
            segmentstore: version.to_owned(),
        }
    }

    /// The version of component `c`.
    pub fn get(&self, c: Component) -> &str {
        match c {
            Component::Bookkeeper => &self.bookkeeper,
            Component::Controller => &self.controller,
            Component::SegmentStore => &self.segmentstore,
        }
    }

    /// Sets the version of component `c`.
    pub fn set(&mut self, c: Component, version: &str) {
        let slot = match c {
            Component::Bookkeeper => &mut self.bookkeeper,
            Component::Controller => &mut self.controller,
            Component::SegmentStore => &mut self.segmentstore,
        };
        version.clone_into(slot);
    }
}

/// Something the caller must do besides applying the workloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delete this pod, with `Preconditions { uid, resource_version }` (stale-cache protection).
    DeletePod {
        /// The component the pod belongs to.
        component: Component,
        /// Namespace of the pod.
        namespace: String,
        /// Name of the pod.
        name: String,
        /// The observed UID (delete precondition).
        uid: String,
        /// The observed resourceVersion (delete precondition).
        resource_version: String,
        /// Why the pod is deleted, for logs.
        reason: String,
    },
}

/// An Event to publish about the PravegaCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// `Warning` when true, `Normal` otherwise.
    pub warning: bool,
    /// CamelCase reason, one of [`pravega_crds::event_reasons`].
    pub reason: String,
    /// What was done (`Upgrade`, `Rollback`, `DeletePod`, ...), one of
    /// [`pravega_crds::event_actions`].
    pub action: String,
    /// Human-readable note.
    pub note: String,
}

/// The outcome of one planning round.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The version each component's pod template must carry.
    pub versions: ComponentVersions,
    /// At most one `DeletePod`, only for the component being upgraded or rolled back.
    pub actions: Vec<Action>,
    /// The status to write (the caller writes it only if it differs from the observed one).
    pub status: PravegaClusterStatus,
    /// Events to publish about the PravegaCluster.
    pub events: Vec<PlannedEvent>,
    /// Lines to log at INFO.
    pub logs: Vec<String>,
    /// Lines to log at WARN: something needs a person.
    pub warnings: Vec<String>,
    /// When to reconcile again at the latest (deadlines only; progress is watch-driven).
    pub requeue_after: Option<std::time::Duration>,
    /// The safety checks to run before the next step: plan again with their facts in
    /// [`Observation::checks`].
    pub probe: Option<ProbeRequest>,
}

/// One pod that a change to another version replaces, as [`replacement_order`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// The component the pod belongs to.
    pub component: Component,
    /// Name of the pod.
    pub pod: String,
    /// The version the pod runs now (its `pravega.pravega.io/version` label), if labelled.
    pub from_version: Option<String>,
    /// Who replaces it: the operator deletes StatefulSet pods one at a time; the Deployment
    /// controller rolls the Controller's pods (`maxUnavailable: 0`).
    pub by: WorkloadKind,
}

/// The pods a version change to `version` would replace, in the order the planner replaces
/// them: components in upgrade order ([`Component::UPGRADE_ORDER`]); within a StatefulSet the
/// members below the desired count by ordinal, the faulty ones that are down first (the
/// faulty-pod rule of [`replaceable_pod`]), then the others, lowest ordinal first; then the
/// Controller's pods. Pods already at `version` are not listed; missing ordinals are created at
/// `version` rather than replaced. A pure function of the observation, like [`plan`].
pub fn replacement_order(observation: &Observation<'_>, version: &str) -> Vec<Replacement> {
    let mut out = Vec::new();
    for component in Component::UPGRADE_ORDER {
        let view = component_view(observation, component);
        let outdated = |p: &&PodView<'_>| !p.terminating && !p.at(version);
        let entry = |p: &PodView<'_>| Replacement {
            component,
            pod: p.name.to_owned(),
            from_version: p.version.map(str::to_owned),
            by: component.workload_kind(),
        };
        match component.workload_kind() {
            WorkloadKind::Deployment => out.extend(view.pods.iter().filter(outdated).map(entry)),
            WorkloadKind::StatefulSet => {
                let desired = u32::try_from(view.desired).unwrap_or(0);
                let members: Vec<&PodView<'_>> = view
                    .pods
                    .iter()
                    .filter(|p| p.ordinal.is_some_and(|o| o < desired))
                    .filter(outdated)
                    .collect();
                let down = |p: &PodView<'_>| !p.ready && p.fault.is_some();
                out.extend(members.iter().filter(|p| down(p)).map(|p| entry(p)));
                out.extend(members.iter().filter(|p| !down(p)).map(|p| entry(p)));
            }
        }
    }
    out
}

/// Progress of every component towards `version`, in upgrade order, counted as the planner
/// counts it for `status.upgrade.components` (updated and Ready pods among those not
/// terminating, against the desired count).
pub fn progress(observation: &Observation<'_>, version: &str) -> Vec<ComponentProgress> {
    Component::UPGRADE_ORDER
        .into_iter()
        .map(|c| component_view(observation, c).progress(version))
        .collect()
}

/// Transitions within one call are bounded: each mode leads to a stable one in a few steps.
const MAX_TRANSITIONS: usize = 16;

/// Plans one reconcile. `status` is the cluster's status with the member fields already
/// recomputed from the pods of `observation` ([`crate::status::member_status`]); the planner
/// owns the version fields, `upgrade`, and the `Upgrading`, `RollbackInProgress` and (for its
/// reasons) `Error` conditions.
///
/// Planning again with the returned status and the same observation returns the same versions,
/// actions and status.
pub fn plan(observation: &Observation<'_>, status: PravegaClusterStatus) -> Plan {
    let ctx = Ctx::new(observation);
    let mut status = status;
    let mut out = Out::default();
    let mut outcome = None;
    for _ in 0..MAX_TRANSITIONS {
        match step(&ctx, &mut status, &mut out) {
            Step::Again => {}
            Step::Done(o) => {
                outcome = Some(o);
                break;
            }
        }
    }
    // Every chain of transitions ends in a stable mode well within the bound; should it not,
    // touch nothing.
    let outcome = outcome.unwrap_or_else(|| Outcome::wait(ctx.frozen_versions(&status)));
    Plan {
        versions: outcome.versions,
        actions: outcome.actions,
        status,
        events: out.events,
        logs: out.logs,
        warnings: out.warnings,
        requeue_after: outcome.requeue_after,
        probe: outcome.probe,
    }
}

struct Ctx<'o, 'a> {
    obs: &'o Observation<'a>,
    spec_version: &'a str,
    now: Time,
    views: [ComponentView<'a>; 3],
    timeout: Duration,
    paused: bool,
    auto_rollback: bool,
}

impl<'o, 'a> Ctx<'o, 'a> {
    fn new(obs: &'o Observation<'a>) -> Self {
        let spec = &obs.cluster.spec;
        let timeout = parse_duration(&spec.upgrade.timeout)
            .or_else(|_| parse_duration(DEFAULT_UPGRADE_TIMEOUT))
            .unwrap_or(Duration::from_secs(600));
        Self {
            obs,
            spec_version: &spec.version,
            now: Time(obs.now),
            views: Component::UPGRADE_ORDER.map(|c| component_view(obs, c)),
            timeout,
            paused: spec.upgrade.paused,
            auto_rollback: spec.upgrade.auto_rollback,
        }
    }

    fn view(&self, c: Component) -> &ComponentView<'a> {
        let [bookkeeper, controller, segmentstore] = &self.views;
        match c {
            Component::Bookkeeper => bookkeeper,
            Component::Controller => controller,
            Component::SegmentStore => segmentstore,
        }
    }

    /// Template versions as observed, `fallback` for a missing workload.
    fn observed_versions(&self, fallback: &str) -> ComponentVersions {
        let mut v = ComponentVersions::all(fallback);
        for c in Component::UPGRADE_ORDER {
            if let Some(t) = self.view(c).template_version {
                v.set(c, t);
            }
        }
        v
    }

    /// No further template change: what is observed, `currentVersion` for a missing workload.
    fn frozen_versions(&self, status: &PravegaClusterStatus) -> ComponentVersions {
        let fallback = status
            .current_version
            .as_deref()
            .unwrap_or(self.spec_version);
        self.observed_versions(fallback)
    }

    fn namespace(&self) -> &str {
        self.obs
            .cluster
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default")
    }

    fn set(
        &self,
        status: &mut PravegaClusterStatus,
        type_: ConditionType,
        value: bool,
        reason: &str,
        message: &str,
    ) -> bool {
        status.set_condition(
            type_,
            ConditionStatus::from_bool(value),
            reason,
            message,
            &self.now,
        )
    }

    fn elapsed_since_ts(&self, t: Timestamp) -> Duration {
        self.elapsed_since(&Time(t))
    }

    /// Time from now until `t` (zero when past).
    fn until(&self, t: Timestamp) -> Duration {
        let ms = t
            .as_millisecond()
            .saturating_sub(self.now.0.as_millisecond());
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    fn elapsed_since(&self, t: &Time) -> Duration {
        let ms = self
            .now
            .0
            .as_millisecond()
            .saturating_sub(t.0.as_millisecond());
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
}

#[derive(Default)]
struct Out {
    events: Vec<PlannedEvent>,
    logs: Vec<String>,
    warnings: Vec<String>,
}

impl Out {
    fn event(&mut self, warning: bool, reason: &str, action: &str, note: impl Into<String>) {
        self.events.push(PlannedEvent {
            warning,
            reason: reason.to_owned(),
            action: action.to_owned(),
            note: note.into(),
        });
    }

    fn log(&mut self, line: impl Into<String>) {
        self.logs.push(line.into());
    }

    fn warn(&mut self, line: impl Into<String>) {
        self.warnings.push(line.into());
    }
}

struct Outcome {
    versions: ComponentVersions,
    actions: Vec<Action>,
    requeue_after: Option<Duration>,
    probe: Option<ProbeRequest>,
}

impl Outcome {
    fn wait(versions: ComponentVersions) -> Self {
        Self {
            versions,
            actions: Vec::new(),
            requeue_after: None,
            probe: None,
        }
    }
}

enum Step {
    /// The status moved to another mode: plan again.
    Again,
    /// Stable: this is the plan.
    Done(Outcome),
}

fn error_reason(status: &PravegaClusterStatus) -> Option<&'static str> {
    [reasons::UPGRADE_FAILED, reasons::ROLLBACK_FAILED]
        .into_iter()
        .find(|r| status.has_error_reason(r))
}

fn step(ctx: &Ctx<'_, '_>, status: &mut PravegaClusterStatus, out: &mut Out) -> Step {
    if status
        .refused_version
        .as_deref()
        .is_some_and(|r| r != ctx.spec_version)
    {
        status.refused_version = None;
    }
    let Some(current) = status.current_version.clone() else {
        return first_deployment(ctx, status, out);
    };
    if status.is_condition_true(ConditionType::RollbackInProgress) {
        return rolling_back(ctx, status, out, current);
    }
    if let Some(reason) = error_reason(status) {
        return failed(ctx, status, out, current, reason);
    }
    if status.is_condition_true(ConditionType::Upgrading)
        && let Some(target) = status.target_version.clone()
    {
        return upgrading(ctx, status, out, current, target);
    }
    idle(ctx, status, out, current)
}

/// Sets `Error` True/InvalidSpec, with an Event when it is new.
fn invalid_spec(ctx: &Ctx<'_, '_>, status: &mut PravegaClusterStatus, out: &mut Out, msg: &str) {
    if ctx.set(
        status,
        ConditionType::Error,
        true,
        reasons::INVALID_SPEC,
        msg,
    ) {
        out.event(
            true,
            event_reasons::INVALID_SPEC,
            event_actions::VALIDATE,
            msg,
        );
    }
}

/// Clears an `Error` the planner set for an invalid spec.
fn clear_invalid_spec(ctx: &Ctx<'_, '_>, status: &mut PravegaClusterStatus) {
    if status.has_error_reason(reasons::INVALID_SPEC) {
        ctx.set(status, ConditionType::Error, false, "", "");
    }
}

/// Adds `Upgrading` and `Error` as False when they are absent, so that `kubectl describe` shows
/// them as in the guide.
fn ensure_conditions(ctx: &Ctx<'_, '_>, status: &mut PravegaClusterStatus) {
    for type_ in [ConditionType::Upgrading, ConditionType::Error] {
        if status.condition(type_).is_none() {
            ctx.set(status, type_, false, "", "");
        }
    }
}

fn first_deployment(ctx: &Ctx<'_, '_>, status: &mut PravegaClusterStatus, out: &mut Out) -> Step {
    let version = ctx.spec_version;
    if let Err(e) = parse_version(version) {
        invalid_spec(ctx, status, out, &e.to_string());
        return Step::Done(Outcome::wait(ctx.observed_versions(version)));
    }
    clear_invalid_spec(ctx, status);
    let all_done = Component::UPGRADE_ORDER
        .iter()
        .all(|c| ctx.view(*c).done_at(version));
    if all_done && status.is_condition_true(ConditionType::PodsReady) {
        status.current_version = Some(version.to_owned());
        if status.version_history.last().map(String::as_str) != Some(version) {
            status.version_history.push(version.to_owned());
        }
        if status.is_condition_true(ConditionType::Upgrading) {
            ctx.set(status, ConditionType::Upgrading, false, "", "");
        }
        ensure_conditions(ctx, status);
        out.event(
            false,
            event_reasons::DEPLOYED,
            event_actions::DEPLOY,
            format!("all members run version {version}"),
        );
        out.log(format!("cluster deployed at version {version}"));
        return Step::Again;
    }
    Step::Done(Outcome::wait(ComponentVersions::all(version)))
}

fn idle(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    current: String,
) -> Step {
    let versions = ComponentVersions::all(&current);
    if status.is_condition_true(ConditionType::Upgrading) && status.restart.is_none() {
        // Upgrading without a target version (nor a rolling restart): nothing is in flight.
        ctx.set(status, ConditionType::Upgrading, false, "", "");
    }
    if status.is_condition_true(ConditionType::RollbackInProgress) {
        ctx.set(status, ConditionType::RollbackInProgress, false, "", "");
    }
    if status.target_version.is_some() {
        status.target_version = None;
    }
    ensure_conditions(ctx, status);
    // The running pods are the truth: when they all agree on one version, that is the current
    // version, whatever the status says (it may have been edited by hand).
    if let Some(running) = agreed_version(ctx)
        && running != current
    {
        status.current_version = Some(running.to_owned());
        if status.version_history.last().map(String::as_str) != Some(running) {
            status.version_history.push(running.to_owned());
        }
        let msg = format!(
            "status.currentVersion said {current} but every member runs {running}; corrected"
        );
        out.event(
            true,
            event_reasons::CURRENT_VERSION_CORRECTED,
            event_actions::VALIDATE,
            msg.clone(),
        );
        out.warn(msg);
        return Step::Again;
    }
    let desired = ctx.spec_version;
    if status.refused_version.as_deref() == Some(desired) && desired != current {
        let msg = format!(
            "spec.version {desired} was refused while another version change was in flight and is not acted on; set spec.version to {current}, then to {desired} again to upgrade"
        );
        invalid_spec(ctx, status, out, &msg);
        return Step::Done(Outcome::wait(versions));
    }
    let pre_start = |s: &PravegaClusterStatus| {
        s.condition(ConditionType::Upgrading)
            .is_some_and(|c| matches!(c.reason(), reasons::WAITING_FOR_PODS | reasons::PAUSED))
    };
    if desired == current {
        clear_invalid_spec(ctx, status);
        status.upgrade = None;
        if pre_start(status) {
            ctx.set(status, ConditionType::Upgrading, false, "", "");
        }
        if let Some(step) = restart::plan(ctx, status, out, &current) {
            return step;
        }
        return Step::Done(Outcome::wait(versions));
    }
    // After a rollback away from `desired`, it is not tried again on its own.
    let rolled_back_from_desired = status.upgrade.as_ref().is_some_and(|u| {
        u.from_version.as_deref() == Some(desired) && u.to_version.as_deref() == Some(&*current)
    });
    if rolled_back_from_desired {
        return Step::Done(Outcome::wait(versions));
    }
    if let Decision::Deny { message, .. } =
        pravega_crds::validate_version_change(Some(status.facts()), desired)
    {
        if pre_start(status) {
            ctx.set(status, ConditionType::Upgrading, false, "", "");
        }
        invalid_spec(ctx, status, out, &message);
        return Step::Done(Outcome::wait(versions));
    }
    clear_invalid_spec(ctx, status);
    if ctx.paused {
        let msg =
            format!("upgrade from {current} to {desired} is paused (spec.upgrade.paused is true)");
        let was_paused = status
            .condition(ConditionType::Upgrading)
            .is_some_and(|c| c.reason() == reasons::PAUSED);
        ctx.set(
            status,
            ConditionType::Upgrading,
            false,
            reasons::PAUSED,
            &msg,
        );
        if !was_paused {
            out.event(
                false,
                event_reasons::UPGRADE_PAUSED,
                event_actions::UPGRADE,
                msg,
            );
        }
        return Step::Done(Outcome::wait(versions));
    }
    if !status.is_condition_true(ConditionType::PodsReady) {
        let msg = format!(
            "waiting for all members to be ready before upgrading from {current} to {desired} ({} of {} ready)",
            status.ready_replicas, status.replicas
        );
        ctx.set(
            status,
            ConditionType::Upgrading,
            false,
            reasons::WAITING_FOR_PODS,
            &msg,
        );
        return Step::Done(Outcome::wait(versions));
    }
    start_upgrade(ctx, status, out, &current, desired);
    Step::Again
}

fn start_upgrade(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    from: &str,
    to: &str,
) {
    status.target_version = Some(to.to_owned());
    let msg = format!("upgrading from {from} to {to}");
    ctx.set(
        status,
        ConditionType::Upgrading,
        true,
        reasons::IN_PROGRESS,
        &msg,
    );
    // A new version change starts with a clean Error: a failure it retries, a refusal it
    // replaces, or the message of an earlier rollback (stale once a later upgrade runs).
    if status
        .condition(ConditionType::Error)
        .is_some_and(|c| c.is_true() || !c.reason().is_empty())
    {
        ctx.set(status, ConditionType::Error, false, "", "");
    }
    if status
        .condition(ConditionType::RollbackInProgress)
        .is_some()
    {
        ctx.set(status, ConditionType::RollbackInProgress, false, "", "");
    }
    status.upgrade = Some(new_progress(ctx, from, to));
    out.log(format!("syncing cluster version from {from} to {to}"));
    out.event(
        false,
        event_reasons::UPGRADE_STARTED,
        event_actions::UPGRADE,
        msg,
    );
}

fn new_progress(ctx: &Ctx<'_, '_>, from: &str, to: &str) -> UpgradeStatus {
    UpgradeStatus {
        from_version: Some(from.to_owned()),
        to_version: Some(to.to_owned()),
        started_at: Some(ctx.now.clone()),
        last_progress_at: Some(ctx.now.clone()),
        components: Vec::new(),
        failed_generation: None,
        blocked_by: None,
    }
}

/// [`refusal_note`], recording a refused `spec.version` in `status.refusedVersion` so that it
/// is not acted on after the change in flight ends (as if a webhook had refused it).
fn refusal(status: &mut PravegaClusterStatus, desired: &str) -> String {
    if let Decision::Deny { .. } =
        pravega_crds::validate_version_change(Some(status.facts()), desired)
    {
        status.refused_version = Some(desired.to_owned());
    }
    refusal_note(status, desired)
}

/// The note added to a condition's message when `spec.version` was changed to something the
/// rules refuse while a version change is in flight or failed.
fn refusal_note(status: &PravegaClusterStatus, desired: &str) -> String {
    match pravega_crds::validate_version_change(Some(status.facts()), desired) {
        Decision::Deny { message, .. } => {
            format!("; spec.version {desired} was refused: {message}")
        }
        Decision::Allow { .. } => {
            format!("; spec.version {desired} is ignored until this version change ends")
        }
    }
}

/// Sets a condition whose message may carry a refusal note, with a warning Event when the note
/// is new.
#[allow(clippy::too_many_arguments)]
fn set_with_note(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    type_: ConditionType,
    value: bool,
    reason: &str,
    message: &str,
    note: &str,
) {
    let had_note = !note.is_empty()
        && status
            .condition(type_)
            .is_some_and(|c| c.message().contains(note));
    ctx.set(status, type_, value, reason, &format!("{message}{note}"));
    if !note.is_empty() && !had_note {
        let action = if type_ == ConditionType::RollbackInProgress {
            event_actions::ROLLBACK
        } else {
            event_actions::UPGRADE
        };
        out.event(
            true,
            event_reasons::VERSION_CHANGE_REFUSED,
            action,
            note.trim_start_matches("; ").to_owned(),
        );
    }
}

fn failed(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    current: String,
    reason: &'static str,
) -> Step {
    let desired = ctx.spec_version;
    let target = status.target_version.clone();
    let upgrade_failed = reason == reasons::UPGRADE_FAILED;
    let error_msg = status
        .condition(ConditionType::Error)
        .map(|c| c.message().to_owned())
        .unwrap_or_default();
    // Nothing is upgrading once failed (decided before the rules are consulted, which look at it).
    if status.is_condition_true(ConditionType::Upgrading) {
        ctx.set(status, ConditionType::Upgrading, false, reason, &error_msg);
    }
    // Every failure has a way out: once every member is Ready at one version, whatever failed
    // before (a person fixed a pod, deleted the failed one, or the slow one came up after all),
    // the cluster runs that version.
    if let Some(target) = target.as_deref()
        && target != current
        && healthy_at(ctx, target)
    {
        return recovered(ctx, status, out, &current, target);
    }
    if healthy_at(ctx, &current) {
        let from = failed_version(status, desired);
        // Recorded as a completed rollback away from the failed version, which is therefore not
        // tried again on its own.
        status.upgrade = Some(new_progress(ctx, &from, &current));
        let op = Op {
            kind: OpKind::Rollback,
            from,
            to: current.clone(),
            fallback: current.clone(),
            order: Component::UPGRADE_ORDER,
        };
        return complete(ctx, status, out, &op);
    }
    // A failed rollback is retried by any later edit of the spec (e.g. a longer timeout) while
    // spec.version is currentVersion.
    let edited_since = status
        .upgrade
        .as_ref()
        .and_then(|u| u.failed_generation)
        .zip(ctx.obs.cluster.metadata.generation)
        .is_some_and(|(failed_at, now)| now > failed_at);
    let retry_rollback = !upgrade_failed && desired == current && edited_since;
    if (upgrade_failed && (desired == current || ctx.auto_rollback)) || retry_rollback {
        start_rollback(ctx, status, out, &current);
        return Step::Again;
    }
    let mut note = String::new();
    if desired != current && Some(desired) != target.as_deref() {
        match pravega_crds::validate_version_change(Some(status.facts()), desired) {
            Decision::Allow { .. } => {
                start_upgrade(ctx, status, out, &current, desired);
                return Step::Again;
            }
            Decision::Deny { .. } => note = refusal(status, desired),
        }
    }
    let cond = if upgrade_failed {
        ConditionType::Upgrading
    } else {
        ConditionType::RollbackInProgress
    };
    set_with_note(ctx, status, out, cond, false, reason, &error_msg, &note);
    Step::Done(Outcome::wait(after_failure_versions(
        ctx, status, &current, reason,
    )))
}

/// Templates after a failure: each StatefulSet goes back to the last version that worked for
/// it (the target for a component that completed the failed upgrade, `currentVersion` for the
/// others), so that a pod recreated for any reason (a node failure, a scale-up) comes back
/// working; with `OnDelete` no pod is touched, so the failed pod stays as it is until a person
/// decides. The Controller Deployment keeps its template: its previous ReplicaSet still
/// recreates pods at the old version, and changing the template back would replace the failed
/// pod at once. Which components completed is read from `status.upgrade`, recorded before the
/// failure, so that a later restart of a pod cannot flip a template.
fn after_failure_versions(
    ctx: &Ctx<'_, '_>,
    status: &PravegaClusterStatus,
    current: &str,
    reason: &str,
) -> ComponentVersions {
    let mut versions = ctx.frozen_versions(status);
    let completed = |c: Component| {
        reason == reasons::UPGRADE_FAILED
            && status.upgrade.as_ref().is_some_and(|u| {
                u.to_version.is_some()
                    && u.to_version == status.target_version
                    && u.components
                        .iter()
                        .any(|p| p.component == c.as_str() && p.done)
            })
    };
    for c in Component::UPGRADE_ORDER {
        if c.workload_kind() == WorkloadKind::StatefulSet {
            match (completed(c), status.target_version.as_deref()) {
                (true, Some(target)) => versions.set(c, target),
                _ => versions.set(c, current),
            }
        }
    }
    versions
}

/// The one version every running member pod runs, when every component has pods and they all
/// agree.
fn agreed_version<'a>(ctx: &Ctx<'_, 'a>) -> Option<&'a str> {
    let mut agreed: Option<&'a str> = None;
    for c in Component::UPGRADE_ORDER {
        let view = ctx.view(c);
        let live: Vec<_> = view.pods.iter().filter(|p| !p.terminating).collect();
        if live.is_empty() {
            return None;
        }
        for p in live {
            let v = p.version?;
            match agreed {
                None => agreed = Some(v),
                Some(a) if a == v => {}
                Some(_) => return None,
            }
        }
    }
    agreed
}

/// Whether every member runs `version` and is Ready (pods only: a template may lag behind).
fn healthy_at(ctx: &Ctx<'_, '_>, version: &str) -> bool {
    Component::UPGRADE_ORDER.iter().all(|c| {
        let view = ctx.view(*c);
        let desired = usize::try_from(view.desired).unwrap_or(0);
        view.present
            && desired > 0
            && view.pods.len() == desired
            && view.pods.iter().all(|p| p.serving() && p.at(version))
    })
}

/// After a failed upgrade every member runs the target and is Ready: the upgrade is done.
fn recovered(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    current: &str,
    target: &str,
) -> Step {
    let op = Op {
        kind: OpKind::Upgrade,
        from: current.to_owned(),
        to: target.to_owned(),
        fallback: current.to_owned(),
        order: Component::UPGRADE_ORDER,
    };
    complete(ctx, status, out, &op);
    ctx.set(
        status,
        ConditionType::Error,
        false,
        reasons::RECOVERED,
        &format!("every member runs {target} and is Ready"),
    );
    if status.is_condition_true(ConditionType::RollbackInProgress) {
        ctx.set(status, ConditionType::RollbackInProgress, false, "", "");
    }
    Step::Again
}

fn start_rollback(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    current: &str,
) {
    let failed_version = failed_version(status, ctx.spec_version);
    let msg = format!("rolling back from {failed_version} to {current}");
    ctx.set(
        status,
        ConditionType::RollbackInProgress,
        true,
        reasons::IN_PROGRESS,
        &msg,
    );
    status.upgrade = Some(new_progress(ctx, &failed_version, current));
    out.log(format!(
        "rolling back cluster version from {failed_version} to {current}"
    ));
    out.event(
        false,
        event_reasons::ROLLBACK_STARTED,
        event_actions::ROLLBACK,
        msg,
    );
}

/// The version a failed upgrade went to: `targetVersion`, else what the progress records.
fn failed_version(status: &PravegaClusterStatus, fallback: &str) -> String {
    status
        .target_version
        .clone()
        .or_else(|| {
            status.upgrade.as_ref().and_then(|u| {
                if status.is_condition_true(ConditionType::RollbackInProgress) {
                    u.from_version.clone()
                } else {
                    u.to_version.clone()
                }
            })
        })
        .unwrap_or_else(|| fallback.to_owned())
}

fn upgrading(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    current: String,
    target: String,
) -> Step {
    // The planner refuses versions only before a change starts; whatever was refused then no
    // longer applies.
    clear_invalid_spec(ctx, status);
    if ctx.paused && ctx.spec_version == current {
        return cancel(ctx, status, out, &current, &target);
    }
    let note = if ctx.spec_version != target {
        refusal(status, ctx.spec_version)
    } else {
        String::new()
    };
    let op = Op {
        kind: OpKind::Upgrade,
        from: current.clone(),
        to: target,
        fallback: current,
        order: Component::UPGRADE_ORDER,
    };
    advance(ctx, status, out, &op, &note)
}

/// A paused upgrade whose `spec.version` went back to `currentVersion`: cancelled. When no pod
/// was replaced yet, the templates simply go back; otherwise the components already moved are
/// rolled back (once the upgrade is no longer paused).
fn cancel(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    current: &str,
    target: &str,
) -> Step {
    let moved = Component::UPGRADE_ORDER
        .iter()
        .any(|c| ctx.view(*c).pods.iter().any(|p| p.at(target)));
    let msg = format!(
        "the upgrade from {current} to {target} was cancelled (spec.version is {current} again)"
    );
    ctx.set(
        status,
        ConditionType::Upgrading,
        false,
        reasons::CANCELLED,
        &msg,
    );
    out.event(
        false,
        event_reasons::UPGRADE_CANCELLED,
        event_actions::UPGRADE,
        msg.clone(),
    );
    out.log(msg);
    if moved {
        start_rollback(ctx, status, out, current);
    } else {
        // Recorded like a rollback away from the target, which is not tried again on its own.
        status.upgrade = Some(new_progress(ctx, target, current));
        status.target_version = None;
    }
    Step::Again
}

fn rolling_back(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    current: String,
) -> Step {
    clear_invalid_spec(ctx, status);
    let failed = failed_version(status, &current);
    let automatic = ctx.auto_rollback && status.target_version.as_deref() == Some(ctx.spec_version);
    let note = if ctx.spec_version != current && !automatic {
        refusal(status, ctx.spec_version)
    } else {
        String::new()
    };
    let mut order = Component::UPGRADE_ORDER;
    order.reverse();
    let op = Op {
        kind: OpKind::Rollback,
        from: failed,
        to: current.clone(),
        fallback: current,
        order,
    };
    advance(ctx, status, out, &op, &note)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Upgrade,
    Rollback,
}

/// A version change in flight: an upgrade, or the rollback of a failed one.
struct Op {
    kind: OpKind,
    from: String,
    /// The version every component must reach.
    to: String,
    /// The version of a component not yet reached whose workload is missing.
    fallback: String,
    order: [Component; 3],
}

impl Op {
    fn condition(&self) -> ConditionType {
        match self.kind {
            OpKind::Upgrade => ConditionType::Upgrading,
            OpKind::Rollback => ConditionType::RollbackInProgress,
        }
    }

    fn verbing(&self) -> &'static str {
        match self.kind {
            OpKind::Upgrade => "upgrading",
            OpKind::Rollback => "rolling back",
        }
    }

    fn action(&self) -> &'static str {
        match self.kind {
            OpKind::Upgrade => event_actions::UPGRADE,
            OpKind::Rollback => event_actions::ROLLBACK,
        }
    }
}

/// Records per-component progress; bumps `lastProgressAt` when a pod became updated or Ready,
/// or a component completed. Returns the time of the last progress.
fn record_progress(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    op: &Op,
    resumed: bool,
) -> Time {
    let matches = status.upgrade.as_ref().is_some_and(|u| {
        u.from_version.as_deref() == Some(&*op.from) && u.to_version.as_deref() == Some(&*op.to)
    });
    if !matches {
        status.upgrade = Some(new_progress(ctx, &op.from, &op.to));
    }
    let progress: Vec<ComponentProgress> = op
        .order
        .iter()
        .map(|c| ctx.view(*c).progress(&op.to))
        .collect();
    let upgrade = status
        .upgrade
        .get_or_insert_with(|| new_progress(ctx, &op.from, &op.to));
    let mut progressed = resumed;
    for p in &progress {
        let Some(old) = upgrade
            .components
            .iter()
            .find(|o| o.component == p.component)
        else {
            continue;
        };
        if p.updated > old.updated || p.ready > old.ready || (p.done && !old.done) {
            progressed = true;
        }
        if p.done && !old.done {
            let (reason, note) = match op.kind {
                OpKind::Upgrade => (
                    event_reasons::COMPONENT_UPGRADED,
                    format!("{} upgraded to {}", p.component, op.to),
                ),
                OpKind::Rollback => (
                    event_reasons::COMPONENT_ROLLED_BACK,
                    format!("{} rolled back to {}", p.component, op.to),
                ),
            };
            out.event(false, reason, op.action(), note);
        }
    }
    upgrade.components = progress;
    if progressed || upgrade.last_progress_at.is_none() {
        upgrade.last_progress_at = Some(ctx.now.clone());
    }
    if upgrade.started_at.is_none() {
        upgrade.started_at = upgrade.last_progress_at.clone();
    }
    upgrade
        .last_progress_at
        .clone()
        .unwrap_or_else(|| ctx.now.clone())
}

fn advance(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    op: &Op,
    note: &str,
) -> Step {
    let cond = op.condition();
    let was_paused = status
        .condition(cond)
        .is_some_and(|c| c.reason() == reasons::PAUSED);
    // A canary hold released, like a pause ended, restarts the timeout.
    let was_held = status
        .upgrade
        .as_ref()
        .and_then(|u| u.blocked_by.as_ref())
        .is_some_and(|b| b.reason == gates::CANARY_HOLD);
    let released = was_held && !ctx.paused && gates::canary_hold(ctx, op).is_ok();
    let resumed = was_paused && !ctx.paused;
    let last_progress = record_progress(ctx, status, out, op, resumed || released);

    let Some(index) = op.order.iter().position(|c| !ctx.view(*c).done_at(&op.to)) else {
        return complete(ctx, status, out, op);
    };
    let component = op.order[index];
    let view = ctx.view(component);
    let started = status
        .upgrade
        .as_ref()
        .and_then(|u| u.started_at.as_ref())
        .map(|t| t.0);

    let kind = match component.workload_kind() {
        WorkloadKind::StatefulSet => "statefulset",
        WorkloadKind::Deployment => "deployment",
    };
    let template_at_target = view.present && view.template_version == Some(&*op.to);
    if template_at_target {
        let p = view.progress(&op.to);
        out.log(format!(
            "{kind} ({}) status: {} updated, {} ready, {} target",
            view.workload, p.updated, p.ready, p.target
        ));
    }

    if let Some(detail) = failure(ctx, op, index, started) {
        return fail(ctx, status, out, op, component, &detail);
    }

    let next = next_move(ctx, op, index, template_at_target, started);
    let blocked = next.as_ref().err();
    let mut requeue_after = None;
    if !blocked.is_some_and(Blocked::stops_clock) {
        let elapsed = ctx.elapsed_since(&last_progress);
        // Checks not run yet are run first: a timeout then names what they found.
        let pending = matches!(blocked, Some(Blocked::ChecksPending(_)));
        if elapsed >= ctx.timeout && !pending {
            let mut detail = format!("no progress for {}", format_duration(ctx.timeout));
            if let Some(b) = blocked.filter(|b| b.notable()) {
                detail.push_str(&format!("; {}", b.message()));
            }
            return fail(ctx, status, out, op, component, &detail);
        }
        let left = ctx.timeout.saturating_sub(elapsed);
        requeue_after = Some(match blocked {
            Some(Blocked::Soaking { until, .. }) => left.min(ctx.until(*until)),
            Some(
                Blocked::SafetyCheckFailed { .. }
                | Blocked::SafetyCheckUnreachable { .. }
                | Blocked::ChecksPending(_),
            ) => left.min(gates::CHECK_INTERVAL),
            _ => left,
        });
    }
    // A template change is made now; what the change then waits for is its controller.
    let waits_for = match &next {
        Ok(Move::ChangeTemplate) if view.present => Some(match component.workload_kind() {
            WorkloadKind::StatefulSet => Blocked::NotObserved {
                workload: view.workload.clone(),
            },
            WorkloadKind::Deployment => Blocked::RollingOut {
                workload: view.workload.clone(),
            },
        }),
        _ => None,
    };
    let reported = blocked.or(waits_for.as_ref());
    report_blocker(
        ctx, status, out, op, component, reported, note, was_paused, resumed,
    );

    // Earlier components run the target; later ones keep their template until their turn; the
    // current one moves when its next step may go ahead (a StatefulSet's template change
    // restarts nothing: only a pause or a canary hold keeps it).
    let mut versions = ctx.observed_versions(&op.fallback);
    for c in &op.order[..index] {
        versions.set(*c, &op.to);
    }
    let template_moves = match (&next, component.workload_kind()) {
        (Ok(Move::ChangeTemplate), _) => true,
        (Err(b), WorkloadKind::StatefulSet) => !b.stops_clock(),
        _ => false,
    };
    let active_version = if template_at_target || template_moves {
        &op.to
    } else {
        view.template_version.unwrap_or(&op.fallback)
    };
    versions.set(component, active_version);

    let mut actions = Vec::new();
    let mut probe = None;
    match next {
        Ok(Move::ChangeTemplate) if view.present => out.log(format!(
            "updating {kind} ({}) template image to '{}'",
            view.workload,
            component.image(&ctx.obs.cluster.spec, &op.to)
        )),
        Ok(Move::ChangeTemplate) => {}
        Ok(Move::DeletePod(pod)) => actions.push(delete_pod(ctx, out, op, component, pod)),
        Err(Blocked::ChecksPending(request)) => probe = Some(request),
        Err(_) => {}
    }
    Step::Done(Outcome {
        versions,
        actions,
        requeue_after,
        probe,
    })
}

/// The next step of a version change on its current component, once no failure stops it.
enum Move<'v> {
    /// Set the component's template to the target (the Controller's restarts its pods).
    ChangeTemplate,
    /// Delete this StatefulSet pod so that it is recreated at the target.
    DeletePod(&'v PodView<'v>),
}

/// What stops the change: a faulty pod at the target, a Deployment past its progress
/// deadline, or (with a soak time) a replacement that restarted.
fn failure(ctx: &Ctx<'_, '_>, op: &Op, index: usize, started: Option<Timestamp>) -> Option<String> {
    let component = op.order[index];
    let view = ctx.view(component);
    if let Some((pod, fault)) = view.faulty_at(&op.to) {
        return Some(fault.describe(pod.name));
    }
    if component == Component::Controller
        && view.template_version == Some(&*op.to)
        && view.generation_observed
        && view.deadline_exceeded
    {
        return Some(format!(
            "deployment {} exceeded its progress deadline",
            view.workload
        ));
    }
    gates::crashed_in_soak(ctx, op, index, started)
}

/// The gates, in order (see [`gates`]), before the current component's next step.
fn next_move<'c, 'a>(
    ctx: &'c Ctx<'_, 'a>,
    op: &Op,
    index: usize,
    template_at_target: bool,
    started: Option<Timestamp>,
) -> Result<Move<'c>, Blocked> {
    let component = op.order[index];
    let view = ctx.view(component);
    gates::paused(ctx)?;
    gates::canary_hold(ctx, op)?;
    match component.workload_kind() {
        WorkloadKind::StatefulSet => {
            if !template_at_target {
                return Ok(Move::ChangeTemplate);
            }
            let pod = pod_to_delete(view, &op.to)?;
            gates::soaked(ctx, op, index, started)?;
            gates::safety_checks(ctx, component, Some(pod))?;
            Ok(Move::DeletePod(pod))
        }
        WorkloadKind::Deployment => {
            if template_at_target || !view.present {
                return if template_at_target {
                    Err(Blocked::RollingOut {
                        workload: view.workload.clone(),
                    })
                } else {
                    Ok(Move::ChangeTemplate)
                };
            }
            gates::soaked(ctx, op, index, started)?;
            gates::safety_checks(ctx, component, None)?;
            Ok(Move::ChangeTemplate)
        }
    }
}

/// Reports the blocker (or its absence): `status.upgrade.blockedBy`, the condition, an Event
/// when a [notable](Blocked::notable) one starts, and a log line when it changes.
#[allow(clippy::too_many_arguments)]
fn report_blocker(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    op: &Op,
    component: Component,
    blocked: Option<&Blocked>,
    note: &str,
    was_paused: bool,
    resumed: bool,
) {
    let cond = op.condition();
    let (reason, message) = match blocked {
        Some(Blocked::Paused) => (
            reasons::PAUSED,
            format!(
                "{} from {} to {} is paused at {component} (spec.upgrade.paused is true)",
                op.verbing(),
                op.from,
                op.to
            ),
        ),
        Some(b) if b.notable() => (
            b.reason(),
            format!(
                "{} from {} to {}: {component}, {}",
                op.verbing(),
                op.from,
                op.to,
                b.message()
            ),
        ),
        // The steps every restart goes through show in `status.upgrade.blockedBy` only.
        _ => (
            reasons::IN_PROGRESS,
            format!(
                "{} from {} to {}: {component}",
                op.verbing(),
                op.from,
                op.to
            ),
        ),
    };
    set_with_note(ctx, status, out, cond, true, reason, &message, note);
    if ctx.paused && !was_paused {
        out.event(false, event_reasons::UPGRADE_PAUSED, op.action(), message);
    } else if resumed {
        out.event(
            false,
            event_reasons::UPGRADE_RESUMED,
            op.action(),
            format!("{} from {} to {} resumed", op.verbing(), op.from, op.to),
        );
    }

    let Some(upgrade) = status.upgrade.as_mut() else {
        return;
    };
    let previous = upgrade.blocked_by.take();
    upgrade.blocked_by = blocked.map(|b| {
        let message = b.message();
        match previous {
            Some(p) if p.reason == b.reason() && p.message == message => p,
            _ => {
                if b.notable() || matches!(b, Blocked::Soaking { .. }) {
                    out.log(format!("{} waits: {}", op.verbing(), message));
                }
                if b.notable() {
                    out.event(
                        true,
                        event_reasons::UPGRADE_BLOCKED,
                        op.action(),
                        format!(
                            "{} from {} to {} waits before restarting a {component} member: {message}",
                            op.verbing(),
                            op.from,
                            op.to
                        ),
                    );
                }
                UpgradeBlocker {
                    reason: b.reason().to_owned(),
                    message,
                    since: ctx.now.clone(),
                }
            }
        }
    });
}

/// The one pod of a StatefulSet that may be deleted now, or why none may (see the module docs).
fn pod_to_delete<'v>(
    view: &'v ComponentView<'_>,
    version: &str,
) -> Result<&'v PodView<'v>, Blocked> {
    let candidate = gates::replaceable(view, |p| !p.at(version))?;
    let same_revision =
        view.update_revision.is_some() && candidate.revision == view.update_revision;
    if same_revision {
        return Err(Blocked::NotObserved {
            workload: view.workload.clone(),
        });
    }
    Ok(candidate)
}

fn delete_pod(
    ctx: &Ctx<'_, '_>,
    out: &mut Out,
    op: &Op,
    component: Component,
    pod: &PodView<'_>,
) -> Action {
    let name = pod.name.to_owned();
    let from = pod.version.unwrap_or("unknown");
    let faulty = pod
        .fault
        .as_ref()
        .map(|f| format!(" ({})", f.describe(&name)))
        .unwrap_or_default();
    let (line, reason) = match op.kind {
        OpKind::Upgrade => ("upgrading pod", event_reasons::UPGRADING_POD),
        OpKind::Rollback => ("rolling back pod", event_reasons::ROLLING_BACK_POD),
    };
    out.log(format!("{line}: {name}"));
    let why = format!(
        "deleting pod {name} at {from}{faulty} so that it is recreated at {}",
        op.to
    );
    out.event(false, reason, event_actions::DELETE_POD, why.clone());
    Action::DeletePod {
        component,
        namespace: pod.namespace.unwrap_or(ctx.namespace()).to_owned(),
        name,
        uid: pod.uid.unwrap_or_default().to_owned(),
        resource_version: pod.resource_version.unwrap_or_default().to_owned(),
        reason: why,
    }
}

fn fail(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    op: &Op,
    component: Component,
    detail: &str,
) -> Step {
    if let Some(u) = status.upgrade.as_mut() {
        u.failed_generation = ctx.obs.cluster.metadata.generation;
    }
    match op.kind {
        OpKind::Upgrade => {
            let msg = format!("failed to sync {component} version. {detail}");
            ctx.set(
                status,
                ConditionType::Upgrading,
                false,
                reasons::UPGRADE_FAILED,
                &msg,
            );
            ctx.set(
                status,
                ConditionType::Error,
                true,
                reasons::UPGRADE_FAILED,
                &msg,
            );
            out.event(
                true,
                event_reasons::UPGRADE_FAILED,
                op.action(),
                msg.clone(),
            );
            out.warn(format!(
                "error syncing cluster version, need manual intervention. {msg}"
            ));
        }
        OpKind::Rollback => {
            let msg = format!("failed to roll back {component} version. {detail}");
            ctx.set(
                status,
                ConditionType::RollbackInProgress,
                false,
                reasons::ROLLBACK_FAILED,
                &msg,
            );
            ctx.set(
                status,
                ConditionType::Error,
                true,
                reasons::ROLLBACK_FAILED,
                &msg,
            );
            out.event(
                true,
                event_reasons::ROLLBACK_FAILED,
                op.action(),
                msg.clone(),
            );
            out.warn(format!(
                "error rolling back cluster version, need manual intervention. {msg}"
            ));
        }
    }
    Step::Again
}

fn complete(ctx: &Ctx<'_, '_>, status: &mut PravegaClusterStatus, out: &mut Out, op: &Op) -> Step {
    match op.kind {
        OpKind::Upgrade => {
            status.current_version = Some(op.to.clone());
            if status.version_history.last() != Some(&op.to) {
                status.version_history.push(op.to.clone());
            }
            status.target_version = None;
            status.upgrade = None;
            let msg = format!("upgraded from {} to {}", op.from, op.to);
            ctx.set(
                status,
                ConditionType::Upgrading,
                false,
                reasons::COMPLETED,
                &msg,
            );
            out.event(false, event_reasons::UPGRADE_COMPLETED, op.action(), msg);
            out.log(format!(
                "cluster version synced from {} to {}",
                op.from, op.to
            ));
        }
        OpKind::Rollback => {
            let msg = format!("the upgrade to {} was rolled back to {}", op.from, op.to);
            status.target_version = None;
            ctx.set(
                status,
                ConditionType::RollbackInProgress,
                false,
                reasons::COMPLETED,
                &format!("rolled back from {} to {}", op.from, op.to),
            );
            ctx.set(
                status,
                ConditionType::Error,
                false,
                reasons::ROLLED_BACK,
                &msg,
            );
            ctx.set(
                status,
                ConditionType::Upgrading,
                false,
                reasons::ROLLED_BACK,
                &msg,
            );
            out.event(false, event_reasons::ROLLBACK_COMPLETED, op.action(), msg);
            out.log(format!(
                "rolled back cluster version from {} to {}",
                op.from, op.to
            ));
        }
    }
    Step::Again
}
