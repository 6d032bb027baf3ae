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

mod change;
mod failure;
pub mod gates;
mod idle;
mod restart;
mod views;

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, apps::v1::StatefulSet, core::v1::Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use pravega_crds::duration::{format_duration, parse_duration};
use pravega_crds::names::WorkloadKind;
use pravega_crds::types::{ComponentProgress, DEFAULT_UPGRADE_TIMEOUT, UpgradeStatus};
use pravega_crds::{
    Component, ConditionStatus, ConditionType, Decision, PravegaCluster, PravegaClusterStatus,
    event_actions, event_reasons, reasons,
};

use change::upgrading;
use failure::{failed, rolling_back};
use idle::{first_deployment, idle};
use views::{ComponentView, PodView, component_view};

pub use gates::{Blocked, CheckFacts, CheckOutcome, ProbeRequest};

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

    /// Whether the spec was edited since generation `failed_at`, the one a change failed at.
    fn edited_since(&self, failed_at: Option<i64>) -> bool {
        failed_at
            .zip(self.obs.cluster.metadata.generation)
            .is_some_and(|(failed_at, now)| now > failed_at)
    }

    /// The deletion of `pod` of `component`, with its uid and resourceVersion as preconditions.
    fn delete_pod(&self, component: Component, pod: &PodView<'_>, reason: String) -> Action {
        Action::DeletePod {
            component,
            namespace: pod.namespace.unwrap_or(self.namespace()).to_owned(),
            name: pod.name.to_owned(),
            uid: pod.uid.unwrap_or_default().to_owned(),
            resource_version: pod.resource_version.unwrap_or_default().to_owned(),
            reason,
        }
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
