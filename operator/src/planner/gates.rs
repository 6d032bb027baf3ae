//! Why a version change waits, and the gates before each restart.
//!
//! Before the planner restarts a member (deletes a StatefulSet pod, or changes the Controller
//! Deployment's template) it asks, in this order, each a small pure function:
//! 1. [`paused`]: `spec.upgrade.paused` holds every change;
//! 2. [`canary_hold`]: `spec.upgrade.pauseAfterPods` replaced pods hold an upgrade;
//! 3. [`replaceable`]: the StatefulSet's controller has seen the template, no pod is missing or
//!    terminating, every pod is Ready (or the faulty-pod rule applies), and one is outdated;
//! 4. [`soaked`]: every replacement of this change has been Ready, without a restart, for
//!    `spec.upgrade.podStabilization`;
//! 5. [`safety_checks`]: the checks of `spec.upgrade.safetyChecks` pass. `MembersStable` is
//!    decided from the pods; the others from [`CheckFacts`] that the operator's prober gathered
//!    for this very step. Without such facts the step is [`Blocked::ChecksPending`] and the plan
//!    carries the [`ProbeRequest`] the prober answers.
//!
//! The first gate that refuses names the [`Blocked`] reason that `status.upgrade.blockedBy`,
//! the condition, the log and the metric report. No pod is deleted while a check fails, is
//! unreachable or has not been run.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use pravega_crds::duration::format_duration;
use pravega_crds::names::WorkloadKind;
use pravega_crds::{Component, SafetyCheck};

use super::Ctx;
use super::change::{Op, OpKind};
use super::views::{ComponentView, PodView};

/// How often a step blocked by a safety check is looked at again: what checks see (ledger
/// replication, Pravega's health) changes without any Kubernetes object changing.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// [`Blocked::CanaryHold`]'s reason.
pub const CANARY_HOLD: &str = "CanaryHold";

/// Why a version change does not restart its next member now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// `spec.upgrade.paused` is true.
    Paused,
    /// `spec.upgrade.pauseAfterPods` pods of this upgrade were replaced.
    CanaryHold {
        /// Pods replaced so far.
        replaced: u32,
        /// `spec.upgrade.pauseAfterPods`.
        limit: u32,
    },
    /// The workload's controller has not yet seen its latest template (or revision).
    NotObserved {
        /// The StatefulSet or Deployment.
        workload: String,
    },
    /// A pod of the component is being deleted.
    PodTerminating {
        /// The pod.
        pod: String,
    },
    /// A pod of the component does not exist (yet).
    PodMissing {
        /// The missing pod's name.
        pod: String,
    },
    /// A pod of the component is not Ready (a replacement starting, or a member down).
    PodNotReady {
        /// The pod.
        pod: String,
    },
    /// The Controller Deployment is rolling out its new template on its own.
    RollingOut {
        /// The Deployment.
        workload: String,
    },
    /// A replacement has not yet been Ready for `spec.upgrade.podStabilization`.
    Soaking {
        /// The replacement.
        pod: String,
        /// When its soak time ends.
        until: Timestamp,
        /// `spec.upgrade.podStabilization`.
        soak: Duration,
    },
    /// A safety check fails.
    SafetyCheckFailed {
        /// The check.
        check: SafetyCheck,
        /// What it found.
        message: String,
    },
    /// A safety check could not be run: the endpoint did not answer, or answered something
    /// that cannot be read. It blocks like a failure, until `spec.upgrade.timeout`.
    SafetyCheckUnreachable {
        /// The check.
        check: SafetyCheck,
        /// What went wrong.
        message: String,
    },
    /// The safety checks of this step have not been run yet: the request for the prober.
    ChecksPending(ProbeRequest),
}

impl Blocked {
    /// The CamelCase name shown in `status.upgrade.blockedBy.reason`, in the metric and, for
    /// the [notable](Self::notable) ones, as the condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Blocked::Paused => "Paused",
            Blocked::CanaryHold { .. } => CANARY_HOLD,
            Blocked::NotObserved { .. } => "NotObserved",
            Blocked::PodTerminating { .. } => "PodTerminating",
            Blocked::PodMissing { .. } => "PodMissing",
            Blocked::PodNotReady { .. } => "PodNotReady",
            Blocked::RollingOut { .. } => "RollingOut",
            Blocked::Soaking { .. } => "Soaking",
            Blocked::SafetyCheckFailed { .. } => "SafetyCheckFailed",
            Blocked::SafetyCheckUnreachable { .. } => "SafetyCheckUnreachable",
            Blocked::ChecksPending(_) => "SafetyChecksPending",
        }
    }

    /// Every reason, for metrics that must reset the others.
    pub const REASONS: [&'static str; 11] = [
        "Paused",
        "CanaryHold",
        "NotObserved",
        "PodTerminating",
        "PodMissing",
        "PodNotReady",
        "RollingOut",
        "Soaking",
        "SafetyCheckFailed",
        "SafetyCheckUnreachable",
        "SafetyChecksPending",
    ];

    /// What the change waits for, in words a person can act on. Stable while the blocker
    /// lasts (no countdowns), so that it is reported once.
    pub fn message(&self) -> String {
        match self {
            Blocked::Paused => "spec.upgrade.paused is true".to_owned(),
            Blocked::CanaryHold { replaced, limit } => format!(
                "canary hold: {replaced} pod(s) replaced, spec.upgrade.pauseAfterPods is {limit}; raise or remove it to continue"
            ),
            Blocked::NotObserved { workload } => {
                format!("waiting for the controller of {workload} to see its new template")
            }
            Blocked::PodTerminating { pod } => format!("waiting for pod {pod} to terminate"),
            Blocked::PodMissing { pod } => format!("waiting for pod {pod} to be created"),
            Blocked::PodNotReady { pod } => format!("waiting for pod {pod} to become Ready"),
            Blocked::RollingOut { workload } => {
                format!("waiting for deployment {workload} to roll out")
            }
            Blocked::Soaking { pod, until, soak } => format!(
                "pod {pod} must stay Ready until {until} (spec.upgrade.podStabilization {})",
                format_duration(*soak)
            ),
            Blocked::SafetyCheckFailed { check, message } => {
                format!("safety check {check} fails: {message}")
            }
            Blocked::SafetyCheckUnreachable { check, message } => {
                format!("safety check {check} cannot be run: {message}")
            }
            Blocked::ChecksPending(request) => {
                let names: Vec<&str> = request.checks.iter().map(|c| c.as_str()).collect();
                format!("running safety checks {}", names.join(", "))
            }
        }
    }

    /// Not a step every restart goes through, but something a person may need to know about:
    /// it gets an Event when it starts and is the condition's reason.
    pub fn notable(&self) -> bool {
        matches!(
            self,
            Blocked::CanaryHold { .. }
                | Blocked::SafetyCheckFailed { .. }
                | Blocked::SafetyCheckUnreachable { .. }
        )
    }

    /// The hold is a person's decision: `spec.upgrade.timeout` does not run meanwhile.
    pub fn stops_clock(&self) -> bool {
        matches!(self, Blocked::Paused | Blocked::CanaryHold { .. })
    }
}

/// What one safety check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The check passes.
    Passed,
    /// The check fails, with what it found.
    Failed(String),
    /// The check could not be run (no answer, or an answer that cannot be read).
    Unreachable(String),
    /// The check does not apply here (e.g. images that serve no health API), with why.
    NotApplicable(String),
}

/// The outcomes of the probed checks for one step: a restart of a member of `component`,
/// `candidate` being the pod to delete (none for the Controller's template change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFacts {
    /// The component the step restarts.
    pub component: Component,
    /// The pod the step deletes.
    pub candidate: Option<String>,
    /// Each check run, with its outcome.
    pub outcomes: Vec<(SafetyCheck, CheckOutcome)>,
}

impl CheckFacts {
    fn outcome(&self, check: SafetyCheck) -> Option<&CheckOutcome> {
        self.outcomes
            .iter()
            .find(|(c, _)| *c == check)
            .map(|(_, o)| o)
    }
}

/// The checks the prober must run before the next step, and for which step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    /// The component the step restarts.
    pub component: Component,
    /// The pod the step deletes.
    pub candidate: Option<String>,
    /// The checks to run.
    pub checks: Vec<SafetyCheck>,
}

/// The checks whose facts come from the members' HTTP APIs before restarting a member of
/// `component`. `MembersStable` is decided from the pods alone.
pub fn probed_checks(component: Component) -> &'static [SafetyCheck] {
    match component {
        Component::Bookkeeper => &[
            SafetyCheck::NoUnderReplicatedLedgers,
            SafetyCheck::BookiesWritable,
        ],
        Component::Controller | Component::SegmentStore => &[SafetyCheck::PravegaHealthy],
    }
}

/// Gate 1: `spec.upgrade.paused`.
pub(super) fn paused(ctx: &Ctx<'_, '_>) -> Result<(), Blocked> {
    if ctx.paused {
        Err(Blocked::Paused)
    } else {
        Ok(())
    }
}

/// Pods of this change already replaced: members at the target, across the change's
/// components.
pub(super) fn replaced(ctx: &Ctx<'_, '_>, op: &Op) -> u32 {
    let n: usize = op
        .order
        .iter()
        .map(|c| ctx.view(*c).live_pods().filter(|p| p.at(&op.to)).count())
        .sum();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Gate 2: an upgrade (not a rollback) holds once `spec.upgrade.pauseAfterPods` pods were
/// replaced.
pub(super) fn canary_hold(ctx: &Ctx<'_, '_>, op: &Op) -> Result<(), Blocked> {
    let Some(limit) = ctx.obs.cluster.spec.upgrade.pause_after_pods else {
        return Ok(());
    };
    if op.kind != OpKind::Upgrade {
        return Ok(());
    }
    let replaced = replaced(ctx, op);
    if replaced >= limit {
        Err(Blocked::CanaryHold { replaced, limit })
    } else {
        Ok(())
    }
}

/// Gate 3: the one pod of a StatefulSet that may be replaced now, among those `outdated` says
/// are (upgrade, rollback and rolling restart alike): the controller has seen the latest
/// template, no pod is terminating or missing, and every pod is Ready, or every unready one is
/// faulty and outdated (down anyway: the faulty-pod rule); the lowest-ordinal such pod, within
/// the desired count and carrying the uid and resourceVersion sent as delete preconditions.
pub(super) fn replaceable<'v>(
    view: &'v ComponentView<'_>,
    outdated: impl Fn(&PodView<'_>) -> bool,
) -> Result<&'v PodView<'v>, Blocked> {
    if !view.generation_observed {
        return Err(Blocked::NotObserved {
            workload: view.workload.clone(),
        });
    }
    if let Some(p) = view.pods.iter().find(|p| p.terminating) {
        return Err(Blocked::PodTerminating {
            pod: p.name.to_owned(),
        });
    }
    if let Some(o) = view.missing_ordinals().first() {
        return Err(Blocked::PodMissing {
            pod: format!("{}-{o}", view.workload),
        });
    }
    let unready: Vec<&PodView<'_>> = view.pods.iter().filter(|p| !p.ready).collect();
    let candidate = match unready.first() {
        None => view.pods.iter().find(|p| outdated(p)),
        Some(first) if unready.iter().all(|p| p.fault.is_some() && outdated(p)) => Some(*first),
        Some(_) => {
            let waiting = unready
                .iter()
                .find(|p| p.fault.is_none() || !outdated(p))
                .unwrap_or(&unready[0]);
            return Err(Blocked::PodNotReady {
                pod: waiting.name.to_owned(),
            });
        }
    };
    // Every pod is Ready and none is outdated: the component is done, or about to be.
    let not_observed = || Blocked::NotObserved {
        workload: view.workload.clone(),
    };
    let candidate = candidate.ok_or_else(not_observed)?;
    let desired = u32::try_from(view.desired).unwrap_or(0);
    let ok = candidate.ordinal.is_some_and(|o| o < desired)
        && candidate.uid.is_some()
        && candidate.resource_version.is_some();
    if ok {
        Ok(candidate)
    } else {
        Err(not_observed())
    }
}

/// `spec.upgrade.podStabilization`, when set and readable.
pub(super) fn soak_time(ctx: &Ctx<'_, '_>) -> Option<Duration> {
    let soak = ctx.obs.cluster.spec.upgrade.pod_stabilization.as_deref()?;
    pravega_crds::duration::parse_duration(soak)
        .ok()
        .filter(|d| !d.is_zero())
}

/// The replacements of this change: members at the target in the components it has reached
/// (`order[..=index]`), created after it started.
fn replacements<'v>(
    ctx: &'v Ctx<'_, '_>,
    op: &Op,
    index: usize,
    started: Option<Timestamp>,
) -> impl Iterator<Item = &'v PodView<'v>> {
    let to = op.to.clone();
    op.order[..=index.min(op.order.len() - 1)]
        .iter()
        .flat_map(move |c| ctx.view(*c).live_pods())
        .filter(move |p| p.at(&to))
        .filter(move |p| match (started, p.created) {
            (Some(s), Some(c)) => c >= s,
            _ => true,
        })
}

/// With a soak time, a replacement of this change that restarted fails it: it crashed within
/// the time it had to prove itself.
pub(super) fn crashed_in_soak(
    ctx: &Ctx<'_, '_>,
    op: &Op,
    index: usize,
    started: Option<Timestamp>,
) -> Option<String> {
    let soak = soak_time(ctx)?;
    replacements(ctx, op, index, started)
        .find(|p| p.restarts > 0)
        .map(|p| {
            format!(
                "pod {} restarted {} time(s) within its stabilization time (spec.upgrade.podStabilization {})",
                p.name,
                p.restarts,
                format_duration(soak)
            )
        })
}

/// Gate 4: every replacement of this change has been Ready for the soak time.
pub(super) fn soaked(
    ctx: &Ctx<'_, '_>,
    op: &Op,
    index: usize,
    started: Option<Timestamp>,
) -> Result<(), Blocked> {
    let Some(soak) = soak_time(ctx) else {
        return Ok(());
    };
    let now = ctx.now.0;
    let mut latest: Option<(&PodView<'_>, Timestamp)> = None;
    for p in replacements(ctx, op, index, started) {
        let Some(since) = p.ready_since else {
            // Not Ready: gate 3 waits for it, or the failure rules judge it.
            continue;
        };
        let until = since.checked_add(soak).unwrap_or(Timestamp::MAX);
        if until > now && latest.is_none_or(|(_, u)| until > u) {
            latest = Some((p, until));
        }
    }
    match latest {
        Some((p, until)) => Err(Blocked::Soaking {
            pod: p.name.to_owned(),
            until,
            soak,
        }),
        None => Ok(()),
    }
}

/// `MembersStable`: every member of the cluster other than those the step restarts (`skip`)
/// is Ready and, with a soak time, has been for that long.
fn members_stable(
    ctx: &Ctx<'_, '_>,
    component: Component,
    skip: impl Fn(&PodView<'_>) -> bool,
) -> CheckOutcome {
    let soak = soak_time(ctx);
    for c in Component::UPGRADE_ORDER {
        let view = ctx.view(c);
        if c.workload_kind() == WorkloadKind::StatefulSet {
            if let Some(o) = view.missing_ordinals().first() {
                return CheckOutcome::Failed(format!("pod {}-{o} does not exist", view.workload));
            }
        } else if c != component {
            let serving = view.pods.iter().filter(|p| p.serving()).count();
            let desired = usize::try_from(view.desired).unwrap_or(0);
            if serving < desired {
                return CheckOutcome::Failed(format!(
                    "deployment {} has {serving} of {desired} pods Ready",
                    view.workload
                ));
            }
        }
        for p in view.pods.iter().filter(|p| !skip(p)) {
            if !p.serving() {
                return CheckOutcome::Failed(format!("pod {} is not Ready", p.name));
            }
            if let (Some(soak), Some(since)) = (soak, p.ready_since) {
                let ready_for = ctx.elapsed_since_ts(since);
                if ready_for < soak {
                    return CheckOutcome::Failed(format!(
                        "pod {} has been Ready for {} only (spec.upgrade.podStabilization {})",
                        p.name,
                        format_duration(ready_for),
                        format_duration(soak)
                    ));
                }
            }
        }
    }
    CheckOutcome::Passed
}

/// Gate 5: the checks in force before restarting a member of `component`: `candidate` (a
/// StatefulSet pod), or the Controller's pods when `candidate` is `None`. A step that replaces
/// a member that is down already (faulty) takes nothing further down and is not gated.
pub(super) fn safety_checks(
    ctx: &Ctx<'_, '_>,
    component: Component,
    candidate: Option<&PodView<'_>>,
) -> Result<(), Blocked> {
    let checks = ctx.obs.cluster.spec.upgrade.checks();
    let restarted_is_down = match candidate {
        Some(p) => !p.ready,
        None => ctx.view(component).pods.iter().any(|p| !p.ready),
    };
    if checks.is_empty() || restarted_is_down {
        return Ok(());
    }
    let skip = |p: &PodView<'_>| match candidate {
        Some(c) => p.name == c.name,
        None => ctx.view(component).pods.iter().any(|m| m.name == p.name),
    };
    let candidate_name = candidate.map(|p| p.name.to_owned());
    let facts = ctx.obs.checks.filter(|f| {
        f.component == component && f.candidate.as_deref() == candidate_name.as_deref()
    });
    let mut pending = Vec::new();
    for check in checks {
        let outcome = if check == SafetyCheck::MembersStable {
            members_stable(ctx, component, skip)
        } else if !probed_checks(component).contains(&check) {
            continue;
        } else {
            match facts.and_then(|f| f.outcome(check)) {
                Some(o) => o.clone(),
                None => {
                    pending.push(check);
                    continue;
                }
            }
        };
        match outcome {
            CheckOutcome::Passed | CheckOutcome::NotApplicable(_) => {}
            CheckOutcome::Failed(message) => {
                return Err(Blocked::SafetyCheckFailed { check, message });
            }
            CheckOutcome::Unreachable(message) => {
                return Err(Blocked::SafetyCheckUnreachable { check, message });
            }
        }
    }
    if pending.is_empty() {
        Ok(())
    } else {
        Err(Blocked::ChecksPending(ProbeRequest {
            component,
            candidate: candidate_name,
            checks: pending,
        }))
    }
}
