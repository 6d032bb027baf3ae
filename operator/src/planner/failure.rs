//! After a failed version change: the way out of a failure (a recovery, a rollback, a roll
//! forward) and the rollback itself.

use pravega_crds::names::WorkloadKind;
use pravega_crds::{
    Component, ConditionType, Decision, PravegaClusterStatus, event_actions, event_reasons, reasons,
};

use super::change::{Op, OpKind, advance, complete};
use super::idle::start_upgrade;
use super::{
    ComponentVersions, Ctx, Out, Outcome, Step, clear_invalid_spec, new_progress, refusal,
    set_with_note,
};

pub(super) fn failed(
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
    let edited_since = ctx.edited_since(status.upgrade.as_ref().and_then(|u| u.failed_generation));
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

pub(super) fn start_rollback(
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
pub(super) fn failed_version(status: &PravegaClusterStatus, fallback: &str) -> String {
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

pub(super) fn rolling_back(
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
