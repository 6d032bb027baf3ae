//! A version change in flight ([`Op`]): an upgrade, or the rollback of a failed one, moved on
//! component by component and pod by pod, with its progress, blockers, failure and completion.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use pravega_crds::duration::format_duration;
use pravega_crds::names::WorkloadKind;
use pravega_crds::types::{ComponentProgress, UpgradeBlocker};
use pravega_crds::{
    Component, ConditionType, PravegaClusterStatus, event_actions, event_reasons, reasons,
};

use super::failure::start_rollback;
use super::gates::{self, Blocked};
use super::views::{ComponentView, PodView};
use super::{
    Action, Ctx, Out, Outcome, Step, clear_invalid_spec, new_progress, refusal, set_with_note,
};

pub(super) fn upgrading(
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpKind {
    Upgrade,
    Rollback,
}

/// A version change in flight: an upgrade, or the rollback of a failed one.
pub(super) struct Op {
    pub(super) kind: OpKind,
    pub(super) from: String,
    /// The version every component must reach.
    pub(super) to: String,
    /// The version of a component not yet reached whose workload is missing.
    pub(super) fallback: String,
    pub(super) order: [Component; 3],
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

pub(super) fn advance(
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
    ctx.delete_pod(component, pod, why)
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

pub(super) fn complete(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    op: &Op,
) -> Step {
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
