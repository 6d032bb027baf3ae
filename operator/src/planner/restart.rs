//! Rolling restarts: a change of the spec other than the version (resources, options, JVM
//! options, tier 2 settings, ...) changes the pod templates but, with `OnDelete`, no running
//! pod. Left alone, a bad value would lie dormant until some pod restarts. So the planner rolls
//! it out like an upgrade: BookKeeper, then Segment Store, one pod at a time, each replacement
//! Ready before the next deletion, the same failure handling (`Error` `RestartFailed`), and
//! progress in `status.restart`. The Controller's Deployment rolls natively (`maxUnavailable`
//! 0); a rollout that exceeds its deadline fails the restart too.
//!
//! Which pods wait is read from the StatefulSets: a pod whose `controller-revision-hash` is not
//! the set's `updateRevision` was created from older settings.

use pravega_crds::names::WorkloadKind;
use pravega_crds::types::RestartStatus;
use pravega_crds::{
    Component, ConditionType, PravegaClusterStatus, event_actions, event_reasons, reasons,
};

use super::views::{ComponentView, PodView};
use super::{ComponentVersions, Ctx, Out, Outcome, Step, format_duration, gates};

/// The pods of StatefulSet components created from older settings, in replacement order, or
/// `None` while a StatefulSet's template is not (or not yet seen by its controller) at
/// `current`: the template is about to change, and what waits is not known yet.
fn waiting<'v>(ctx: &'v Ctx<'_, '_>, current: &str) -> Option<Vec<(Component, &'v PodView<'v>)>> {
    let mut out = Vec::new();
    for c in Component::UPGRADE_ORDER {
        if c.workload_kind() != WorkloadKind::StatefulSet {
            continue;
        }
        let view = ctx.view(c);
        if !view.present {
            continue;
        }
        let update = view.update_revision?;
        if !view.generation_observed || view.template_version != Some(current) {
            return None;
        }
        out.extend(
            view.pods
                .iter()
                .filter(|p| !p.terminating && p.revision.is_some_and(|r| r != update))
                .map(|p| (c, p)),
        );
    }
    Some(out)
}

/// The Controller's Deployment is rolling out a new template.
fn controller_rolling(ctx: &Ctx<'_, '_>) -> bool {
    let view = ctx.view(Component::Controller);
    view.present && (!view.generation_observed || !view.rollout_counts_complete)
}

/// Every pod of every component is Ready and none is being replaced.
fn all_ready(ctx: &Ctx<'_, '_>) -> bool {
    Component::UPGRADE_ORDER.iter().all(|c| {
        let v = ctx.view(*c);
        v.pods.iter().all(PodView::serving)
            && v.pods.len() == usize::try_from(v.desired).unwrap_or(0)
    })
}

/// The one pod of `view` created from older settings that may be replaced now.
fn pod_to_restart<'v>(view: &'v ComponentView<'_>) -> Option<&'v PodView<'v>> {
    let update = view.update_revision?;
    gates::replaceable(view, |p| p.revision.is_some_and(|r| r != update)).ok()
}

fn names(waiting: &[(Component, &PodView<'_>)]) -> Vec<String> {
    waiting.iter().map(|(_, p)| p.name.to_owned()).collect()
}

/// Plans a rolling restart, when one is needed or in progress (the cluster runs
/// `spec.version` and no version change is in flight). `None` when there is nothing to restart.
pub(super) fn plan(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    current: &str,
) -> Option<Step> {
    let versions = ComponentVersions::all(current);
    let Some(waiting) = waiting(ctx, current) else {
        // A StatefulSet controller has not seen its latest template: nothing is decided yet.
        return status
            .restart
            .is_some()
            .then(|| Step::Done(Outcome::wait(versions.clone())));
    };
    let rolling = controller_rolling(ctx);
    let failed = status.has_error_reason(reasons::RESTART_FAILED);

    if waiting.is_empty() && !rolling {
        if status.restart.is_none() && !failed {
            return None;
        }
        if failed && !all_ready(ctx) {
            // Failed, and the failed pod is still down: wait for a person.
            return Some(Step::Done(Outcome::wait(versions)));
        }
        status.restart = None;
        let msg = "rolling restart completed: every pod runs the current settings".to_owned();
        ctx.set(
            status,
            ConditionType::Upgrading,
            false,
            reasons::COMPLETED,
            &msg,
        );
        if failed {
            ctx.set(
                status,
                ConditionType::Error,
                false,
                reasons::RECOVERED,
                "every member runs the current settings and is Ready",
            );
        }
        out.event(
            false,
            event_reasons::RESTART_COMPLETED,
            event_actions::RESTART,
            msg.clone(),
        );
        out.log(msg);
        return Some(Step::Done(Outcome::wait(versions)));
    }

    if failed {
        if !ctx.edited_since(status.restart.as_ref().and_then(|r| r.failed_generation)) {
            return Some(Step::Done(Outcome::wait(versions)));
        }
        // The spec changed since: try again with the new settings.
        ctx.set(status, ConditionType::Error, false, "", "");
    }

    let names_now = names(&waiting);
    let started = status.restart.is_none();
    let restart = status.restart.get_or_insert_with(|| RestartStatus {
        started_at: Some(ctx.now.clone()),
        last_progress_at: Some(ctx.now.clone()),
        waiting: names_now.clone(),
        failed_generation: None,
    });
    if restart.waiting != names_now {
        restart.waiting = names_now.clone();
        restart.last_progress_at = Some(ctx.now.clone());
    }
    restart.failed_generation = None;
    let last_progress = restart
        .last_progress_at
        .clone()
        .unwrap_or_else(|| ctx.now.clone());
    if started {
        let msg = format!(
            "rolling restart to apply a change of the spec: {} pod(s) to replace",
            names_now.len()
        );
        out.event(
            false,
            event_reasons::RESTART_STARTED,
            event_actions::RESTART,
            msg.clone(),
        );
        out.log(msg);
    }

    // The component at work: the first (in upgrade order) with waiting pods; the Controller
    // rolls on its own.
    let active = waiting.first().map(|(c, _)| *c);

    // Failures: a pod with the new settings that does not come up, the Controller rollout
    // past its deadline, or no progress for the timeout.
    for c in Component::UPGRADE_ORDER {
        let view = ctx.view(c);
        let update = view.update_revision;
        if let Some(pod) = view.pods.iter().find(|p| {
            p.fault.is_some() && (update.is_none() || p.revision == update) && !p.terminating
        }) && (c.workload_kind() == WorkloadKind::StatefulSet || rolling)
        {
            let detail = pod
                .fault
                .as_ref()
                .map(|f| f.describe(pod.name))
                .unwrap_or_default();
            return Some(fail(ctx, status, out, c, &detail, versions));
        }
    }
    if rolling && ctx.view(Component::Controller).deadline_exceeded {
        let detail = format!(
            "deployment {} exceeded its progress deadline",
            ctx.view(Component::Controller).workload
        );
        return Some(fail(
            ctx,
            status,
            out,
            Component::Controller,
            &detail,
            versions,
        ));
    }
    let mut requeue_after = None;
    if !ctx.paused {
        let elapsed = ctx.elapsed_since(&last_progress);
        if elapsed >= ctx.timeout {
            let detail = format!("no progress for {}", format_duration(ctx.timeout));
            let c = active.unwrap_or(Component::Controller);
            return Some(fail(ctx, status, out, c, &detail, versions));
        }
        requeue_after = Some(ctx.timeout - elapsed);
    }

    let at = active.map_or("controller", Component::as_str);
    let (reason, message) = if ctx.paused {
        (
            reasons::PAUSED,
            format!(
                "rolling restart to apply a change of the spec is paused at {at} (spec.upgrade.paused is true); waiting: {}",
                names_now.join(", ")
            ),
        )
    } else {
        (
            reasons::ROLLING_RESTART,
            format!(
                "rolling restart to apply a change of the spec: {at}; waiting: {}",
                if names_now.is_empty() {
                    "the controller rollout".to_owned()
                } else {
                    names_now.join(", ")
                }
            ),
        )
    };
    ctx.set(status, ConditionType::Upgrading, true, reason, &message);

    let mut actions = Vec::new();
    let others_ready = |c: Component| {
        Component::UPGRADE_ORDER
            .iter()
            .filter(|o| **o != c && o.workload_kind() == WorkloadKind::StatefulSet)
            .all(|o| ctx.view(*o).pods.iter().all(PodView::serving))
    };
    if !ctx.paused
        && let Some(c) = active
        && others_ready(c)
        && let Some(pod) = pod_to_restart(ctx.view(c))
    {
        let why = format!(
            "deleting pod {} so that it is recreated with the current settings",
            pod.name
        );
        out.log(format!("restarting pod: {}", pod.name));
        out.event(
            false,
            event_reasons::RESTARTING_POD,
            event_actions::DELETE_POD,
            why.clone(),
        );
        actions.push(ctx.delete_pod(c, pod, why));
    }
    Some(Step::Done(Outcome {
        versions,
        actions,
        requeue_after,
        probe: None,
    }))
}

fn fail(
    ctx: &Ctx<'_, '_>,
    status: &mut PravegaClusterStatus,
    out: &mut Out,
    component: Component,
    detail: &str,
    versions: ComponentVersions,
) -> Step {
    let msg = format!("failed to restart {component} with the current settings. {detail}");
    ctx.set(
        status,
        ConditionType::Upgrading,
        false,
        reasons::RESTART_FAILED,
        &msg,
    );
    let changed = ctx.set(
        status,
        ConditionType::Error,
        true,
        reasons::RESTART_FAILED,
        &msg,
    );
    if let Some(r) = status.restart.as_mut() {
        r.failed_generation = ctx.obs.cluster.metadata.generation;
    }
    if changed {
        out.event(
            true,
            event_reasons::RESTART_FAILED,
            event_actions::RESTART,
            msg.clone(),
        );
        out.warn(format!(
            "error restarting the cluster with the current settings, need manual intervention. {msg}"
        ));
    }
    Step::Done(Outcome::wait(versions))
}
