//! The planner's stable modes: the first deployment (no `currentVersion` yet) and an idle
//! cluster, which starts an upgrade when `spec.version` asks for one and the rules allow it.

use pravega_crds::{
    Component, ConditionType, Decision, PravegaClusterStatus, event_actions, event_reasons,
    parse_version, reasons,
};

use super::{
    ComponentVersions, Ctx, Out, Outcome, Step, clear_invalid_spec, ensure_conditions,
    invalid_spec, new_progress, restart,
};

pub(super) fn first_deployment(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
) -> Step {
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

pub(super) fn idle(
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

pub(super) fn start_upgrade(
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
