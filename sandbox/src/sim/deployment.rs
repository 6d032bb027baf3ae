//! The simulated Deployment controller: one ReplicaSet per pod template,
//! rolling updates bounded by `maxSurge` / `maxUnavailable`, `Recreate`, and
//! the `Progressing` / `Available` conditions `kubectl rollout status` reads.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::SimError;
use super::events;
use super::hash::{canonical_json, template_hash};
use super::util::{
    controller_ref, is_controlled_by, is_status, list_selected, live_object, now_time,
};

pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";
pub(crate) const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
const DESIRED_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";

/// Resolves an int-or-percent against `total`. Percentages round up for
/// `maxSurge` and down for `maxUnavailable`, as Kubernetes does.
pub(crate) fn resolve(
    value: Option<&IntOrString>,
    default: &str,
    total: i32,
    round_up: bool,
) -> Result<i32, String> {
    let owned;
    let v = match value {
        Some(v) => v,
        None => {
            owned = IntOrString::String(default.into());
            &owned
        }
    };
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse().ok())
                .ok_or_else(|| {
                    format!("invalid value for IntOrString: invalid type: string {s:?}")
                })?;
            let scaled = pct * i64::from(total);
            let r = if round_up {
                (scaled + 99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            };
            Ok(r.clamp(0, i64::from(i32::MAX)) as i32)
        }
    }
}

/// `(maxSurge, maxUnavailable)` for `desired` replicas; never both zero.
pub(crate) fn fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let surge = resolve(max_surge, "25%", desired, true)?.max(0);
    let mut unavailable = resolve(max_unavailable, "25%", desired, false)?
        .max(0)
        .min(desired.max(0));
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// Replica counts of one ReplicaSet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RsCounts {
    /// `spec.replicas`
    pub spec: i32,
    /// `status.replicas`
    pub actual: i32,
    pub ready: i32,
    pub available: i32,
}

/// One step of a rolling update: the new ReplicaSet's target size, and the
/// target size of every old ReplicaSet (same order as given, oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RollingStep {
    pub new_spec: i32,
    pub old_specs: Vec<i32>,
}

/// The real controller's rolling-update arithmetic: first scale the new
/// ReplicaSet up as far as `maxSurge` allows; if it cannot grow, scale old
/// ReplicaSets down (unhealthy replicas first) as far as `maxUnavailable`
/// allows.
pub(crate) fn rolling_step(
    desired: i32,
    max_surge: i32,
    max_unavailable: i32,
    new: RsCounts,
    olds: &[RsCounts],
) -> RollingStep {
    let old_specs: Vec<i32> = olds.iter().map(|o| o.spec).collect();
    let all_spec: i32 = new.spec + old_specs.iter().sum::<i32>();

    // Scale the new ReplicaSet.
    let new_spec = if new.spec > desired {
        desired
    } else if new.spec < desired {
        let max_total = desired + max_surge;
        if all_spec >= max_total {
            new.spec
        } else {
            new.spec + (max_total - all_spec).min(desired - new.spec)
        }
    } else {
        new.spec
    };
    if new_spec != new.spec {
        return RollingStep {
            new_spec,
            old_specs,
        };
    }

    // Scale the old ReplicaSets down.
    let mut old_specs = old_specs;
    let old_total: i32 = old_specs.iter().sum();
    if old_total == 0 {
        return RollingStep {
            new_spec,
            old_specs,
        };
    }
    let min_available = desired - max_unavailable;
    let new_unavailable = new.spec - new.available;
    let max_scaled_down = all_spec - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return RollingStep {
            new_spec,
            old_specs,
        };
    }
    // Unhealthy replicas of old sets go first.
    let mut cleaned = 0;
    for (spec, o) in old_specs.iter_mut().zip(olds) {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = (*spec - o.available).max(0);
        let down = unhealthy.min(max_scaled_down - cleaned).min(*spec);
        *spec -= down;
        cleaned += down;
    }
    // Then healthy ones, keeping at least `min_available` available.
    let available: i32 = new.available + olds.iter().map(|o| o.available).sum::<i32>();
    let mut budget = (available - min_available).min(max_scaled_down - cleaned);
    for spec in old_specs.iter_mut() {
        if budget <= 0 {
            break;
        }
        let down = (*spec).min(budget);
        *spec -= down;
        budget -= down;
    }
    RollingStep {
        new_spec,
        old_specs,
    }
}

/// One step of a `Recreate` rollout: scale every old ReplicaSet to zero,
/// wait until their pods are gone, then scale the new one up.
pub(crate) fn recreate_step(desired: i32, new: RsCounts, olds: &[RsCounts]) -> RollingStep {
    if olds.iter().any(|o| o.spec > 0) {
        RollingStep {
            new_spec: new.spec.min(0),
            old_specs: vec![0; olds.len()],
        }
    } else if olds.iter().any(|o| o.actual > 0) {
        RollingStep {
            new_spec: new.spec,
            old_specs: olds.iter().map(|o| o.spec).collect(),
        }
    } else {
        RollingStep {
            new_spec: desired,
            old_specs: olds.iter().map(|o| o.spec).collect(),
        }
    }
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: &Time,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// Kubernetes' `SetDeploymentCondition`: a condition with the same status and
/// reason is kept as is; the transition time survives a reason change.
pub(crate) fn set_condition(conditions: &mut Vec<DeploymentCondition>, mut c: DeploymentCondition) {
    if let Some(cur) = conditions.iter().find(|x| x.type_ == c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    conditions.retain(|x| x.type_ != c.type_);
    conditions.push(c);
}

/// Everything the status computation needs.
#[derive(Debug, Clone)]
pub(crate) struct StatusInput<'a> {
    pub generation: Option<i64>,
    pub desired: i32,
    pub max_unavailable: i32,
    pub new_rs: Option<(&'a str, RsCounts)>,
    pub all: Vec<RsCounts>,
    pub old: &'a DeploymentStatus,
    pub progress_deadline_seconds: Option<i32>,
    pub paused: bool,
    pub now: Time,
}

/// Computes the Deployment status as the real controller reports it, and
/// when to look again for the progress deadline.
pub(crate) fn compute_status(input: &StatusInput<'_>) -> (DeploymentStatus, Option<Duration>) {
    let total_spec: i32 = input.all.iter().map(|r| r.spec).sum();
    let actual: i32 = input.all.iter().map(|r| r.actual).sum();
    let ready: i32 = input.all.iter().map(|r| r.ready).sum();
    let available: i32 = input.all.iter().map(|r| r.available).sum();
    let updated = input.new_rs.map(|(_, c)| c.actual).unwrap_or(0);
    let mut conditions = input.old.conditions.clone().unwrap_or_default();
    let now = &input.now;

    if available >= input.desired - input.max_unavailable {
        set_condition(
            &mut conditions,
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set_condition(
            &mut conditions,
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }

    let mut status = DeploymentStatus {
        observed_generation: input.generation,
        replicas: Some(actual),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((total_spec - available).max(0)),
        collision_count: input.old.collision_count,
        conditions: None,
        terminating_replicas: None,
    };

    let mut requeue = None;
    if let (Some(deadline), false) = (input.progress_deadline_seconds, input.paused) {
        let rs_name = input.new_rs.map(|(n, _)| n).unwrap_or("");
        let current = conditions
            .iter()
            .find(|c| c.type_ == "Progressing")
            .cloned();
        let already_complete = actual == updated
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some("NewReplicaSetAvailable");
        if !already_complete {
            let complete = updated == input.desired
                && actual == input.desired
                && available == input.desired
                && input.new_rs.is_some();
            let old = input.old;
            let progressing = updated > old.updated_replicas.unwrap_or(0)
                || (actual - updated)
                    < (old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0))
                || ready > old.ready_replicas.unwrap_or(0)
                || available > old.available_replicas.unwrap_or(0);
            if complete {
                set_condition(
                    &mut conditions,
                    condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        format!("ReplicaSet {rs_name:?} has successfully progressed."),
                        now,
                    ),
                );
            } else if progressing {
                let mut c = condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet {rs_name:?} is progressing."),
                    now,
                );
                if let Some(cur) = current.as_ref().filter(|c| c.status == "True") {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                conditions.retain(|x| x.type_ != "Progressing");
                conditions.push(c);
            } else if let Some(cur) = current.as_ref() {
                let reason = cur.reason.as_deref().unwrap_or("");
                if reason != "ProgressDeadlineExceeded" && reason != "NewReplicaSetAvailable" {
                    let from = cur
                        .last_update_time
                        .as_ref()
                        .map(|t| t.0.as_second())
                        .unwrap_or_else(|| now.0.as_second());
                    let due = from + i64::from(deadline);
                    if due < now.0.as_second() {
                        set_condition(
                            &mut conditions,
                            condition(
                                "Progressing",
                                "False",
                                "ProgressDeadlineExceeded",
                                format!("ReplicaSet {rs_name:?} has timed out progressing."),
                                now,
                            ),
                        );
                    } else {
                        let secs = (due - now.0.as_second()).max(0) as u64;
                        requeue = Some(Duration::from_secs(secs) + Duration::from_millis(1100));
                    }
                }
            }
        }
        // A running (not complete, not failed) rollout needs a look when its
        // deadline passes even if nothing else happens.
        if requeue.is_none()
            && let Some(c) = conditions.iter().find(|c| c.type_ == "Progressing")
        {
            {
                let reason = c.reason.as_deref().unwrap_or("");
                if c.status == "True" && reason != "NewReplicaSetAvailable" {
                    let from = c
                        .last_update_time
                        .as_ref()
                        .map(|t| t.0.as_second())
                        .unwrap_or(0);
                    let secs = (from + i64::from(deadline) - now.0.as_second()).max(0) as u64;
                    requeue = Some(Duration::from_secs(secs) + Duration::from_millis(1100));
                }
            }
        }
    }
    status.conditions = Some(conditions);
    (status, requeue)
}

pub(crate) struct Ctx {
    pub client: Client,
}

fn counts(rs: &ReplicaSet) -> RsCounts {
    let s = rs.status.clone().unwrap_or_default();
    RsCounts {
        spec: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        actual: s.replicas,
        ready: s.ready_replicas.unwrap_or(0),
        available: s.available_replicas.unwrap_or(0),
    }
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION_ANNOTATION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The template of a ReplicaSet without its `pod-template-hash` label, as
/// canonical JSON, to compare with the Deployment's template.
fn template_key(template: Option<&PodTemplateSpec>) -> String {
    let mut t = template.cloned().unwrap_or_default();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    canonical_json(&serde_json::to_value(&t).unwrap_or_default())
}

pub(crate) async fn reconcile(obj: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let name = obj.name_any();
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let Some((d, uid)) = live_object(&deployments, "deployment", &ns, &name).await? else {
        return Ok(Action::await_change());
    };
    let Some(spec) = d.spec.clone() else {
        return Ok(Action::await_change());
    };
    let old_status = d.status.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let paused = spec.paused.unwrap_or(false);
    let strategy = spec.strategy.clone().unwrap_or_default();
    let recreate = strategy.type_.as_deref() == Some("Recreate");
    let ru = strategy.rolling_update.clone().unwrap_or_default();
    let (max_surge, max_unavailable) = if recreate {
        (0, desired)
    } else {
        fenceposts(ru.max_surge.as_ref(), ru.max_unavailable.as_ref(), desired)
            .map_err(|m| SimError::Invalid(format!("deployment {ns}/{name}: {m}")))?
    };

    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let mut owned: Vec<ReplicaSet> = rs_api
        .list(&list_selected(Some(&spec.selector)))
        .await
        .map_err(|e| SimError::api(format!("list replicasets in {ns}"), e))?
        .items
        .into_iter()
        .filter(|r| is_controlled_by(&r.metadata, &uid))
        .collect();
    owned.sort_by_key(|r| {
        (
            r.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
            r.name_any(),
        )
    });
    let key = template_key(Some(&spec.template));
    let new_idx = owned
        .iter()
        .position(|r| template_key(r.spec.as_ref().and_then(|s| s.template.as_ref())) == key);
    let max_old_revision = owned
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_idx)
        .map(|(_, r)| revision_of(r))
        .max()
        .unwrap_or(0);
    let now = now_time();
    let mut conditions_seed = old_status.conditions.clone().unwrap_or_default();

    let pp = PatchParams::default();
    let mut new_rs = match new_idx {
        Some(i) => {
            let rs = owned.remove(i);
            if revision_of(&rs) <= max_old_revision {
                let rev = (max_old_revision + 1).to_string();
                rs_api
                    .patch(
                        &rs.name_any(),
                        &pp,
                        &Patch::Merge(
                            json!({"metadata": {"annotations": {REVISION_ANNOTATION: rev}}}),
                        ),
                    )
                    .await
                    .map_err(|e| {
                        SimError::api(format!("annotate replicaset {ns}/{}", rs.name_any()), e)
                    })?
            } else {
                rs
            }
        }
        None if paused => {
            return Ok(Action::await_change());
        }
        None => {
            let hash = template_hash(&spec.template, old_status.collision_count);
            let rs_name = format!("{name}-{hash}");
            let olds: Vec<RsCounts> = owned.iter().map(counts).collect();
            let old_total: i32 = olds.iter().map(|o| o.spec).sum();
            let initial = if recreate {
                recreate_step(desired, RsCounts::default(), &olds).new_spec
            } else if old_total == 0 {
                desired
            } else {
                rolling_step(
                    desired,
                    max_surge,
                    max_unavailable,
                    RsCounts::default(),
                    &olds,
                )
                .new_spec
            };
            let mut template = spec.template.clone();
            let tmeta = template.metadata.get_or_insert_with(Default::default);
            tmeta
                .labels
                .get_or_insert_with(Default::default)
                .insert(POD_TEMPLATE_HASH.into(), hash.clone());
            let mut selector = spec.selector.clone();
            selector
                .match_labels
                .get_or_insert_with(Default::default)
                .insert(POD_TEMPLATE_HASH.into(), hash.clone());
            let mut labels = tmeta.labels.clone().unwrap_or_default();
            labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
            let rs = ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(rs_name.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: Some(
                        [
                            (
                                REVISION_ANNOTATION.to_string(),
                                (max_old_revision + 1).to_string(),
                            ),
                            (DESIRED_ANNOTATION.to_string(), desired.to_string()),
                            (
                                MAX_ANNOTATION.to_string(),
                                (desired + max_surge).to_string(),
                            ),
                        ]
                        .into_iter()
                        .collect(),
                    ),
                    owner_references: controller_ref(&d).map(|r| vec![r]),
                    ..Default::default()
                },
                spec: Some(ReplicaSetSpec {
                    replicas: Some(initial),
                    min_ready_seconds: spec.min_ready_seconds,
                    selector,
                    template: Some(template),
                }),
                status: None,
            };
            tracing::debug!(deployment = %name, namespace = %ns, replicaset = %rs_name, replicas = initial, "creating replicaset");
            let created = match rs_api.create(&PostParams::default(), &rs).await {
                Ok(r) => {
                    if initial > 0 {
                        events::emit(
                            &ctx.client,
                            events::reference(&d),
                            false,
                            "ScalingReplicaSet",
                            format!("Scaled up replica set {rs_name} from 0 to {initial}"),
                            "deployment-controller",
                        );
                    }
                    r
                }
                Err(e) if is_status(&e, 409) => {
                    // Someone else's ReplicaSet holds the name: count a
                    // collision so the next hash differs.
                    let existing = rs_api
                        .get_opt(&rs_name)
                        .await
                        .map_err(|e| SimError::api(format!("get replicaset {ns}/{rs_name}"), e))?;
                    if existing
                        .as_ref()
                        .is_some_and(|r| !is_controlled_by(&r.metadata, &uid))
                    {
                        let cc = old_status.collision_count.unwrap_or(0) + 1;
                        deployments
                            .patch_status(
                                &name,
                                &pp,
                                &Patch::Merge(json!({"status": {"collisionCount": cc}})),
                            )
                            .await
                            .map_err(|e| {
                                SimError::api(format!("update deployment {ns}/{name} status"), e)
                            })?;
                    }
                    return Ok(Action::requeue(Duration::from_millis(100)));
                }
                Err(e) => {
                    return Err(SimError::api(
                        format!("create replicaset {ns}/{rs_name}"),
                        e,
                    ));
                }
            };
            set_condition(
                &mut conditions_seed,
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    format!("Created new replica set {rs_name:?}"),
                    &now,
                ),
            );
            created
        }
    };
    let new_name = new_rs.name_any();
    let new_revision = revision_of(&new_rs).max(max_old_revision + 1).to_string();
    if d.annotations().get(REVISION_ANNOTATION) != Some(&new_revision) {
        deployments
            .patch(
                &name,
                &pp,
                &Patch::Merge(
                    json!({"metadata": {"annotations": {REVISION_ANNOTATION: new_revision}}}),
                ),
            )
            .await
            .map_err(|e| SimError::api(format!("annotate deployment {ns}/{name}"), e))?;
    }

    // Scale.
    if !paused {
        let olds: Vec<RsCounts> = owned.iter().map(counts).collect();
        let new_counts = counts(&new_rs);
        let (new_target, old_targets) = if recreate {
            let step = recreate_step(desired, new_counts, &olds);
            (step.new_spec, step.old_specs)
        } else if olds.iter().all(|o| o.spec == 0) {
            (desired, olds.iter().map(|o| o.spec).collect())
        } else {
            let step = rolling_step(desired, max_surge, max_unavailable, new_counts, &olds);
            (step.new_spec, step.old_specs)
        };
        if new_target != new_counts.spec {
            new_rs = scale(&rs_api, &d, &new_rs, new_target, desired, max_surge).await?;
        }
        for (rs, target) in owned.iter_mut().zip(old_targets) {
            if counts(rs).spec != target {
                *rs = scale(&rs_api, &d, rs, target, desired, max_surge).await?;
            }
        }
        // Old, empty ReplicaSets beyond the history limit are removed.
        let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
        let empty: Vec<&ReplicaSet> = owned
            .iter()
            .filter(|r| counts(r).spec == 0 && counts(r).actual == 0)
            .collect();
        if empty.len() > limit {
            let mut by_rev = empty;
            by_rev.sort_by_key(|r| revision_of(r));
            for r in by_rev.iter().take(by_rev.len() - limit) {
                match rs_api.delete(&r.name_any(), &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_status(&e, 404) => {}
                    Err(e) => {
                        return Err(SimError::api(
                            format!("delete replicaset {ns}/{}", r.name_any()),
                            e,
                        ));
                    }
                }
            }
        }
    }

    // Status.
    let mut all: Vec<RsCounts> = owned.iter().map(counts).collect();
    all.push(counts(&new_rs));
    let seeded = DeploymentStatus {
        conditions: Some(conditions_seed),
        ..old_status.clone()
    };
    let (new_status, requeue) = compute_status(&StatusInput {
        generation: d.metadata.generation,
        desired,
        // Recreate tolerates no unavailability when judging availability.
        max_unavailable: if recreate { 0 } else { max_unavailable },
        new_rs: Some((&new_name, counts(&new_rs))),
        all,
        old: &seeded,
        progress_deadline_seconds: Some(spec.progress_deadline_seconds.unwrap_or(600)),
        paused,
        now,
    });
    if d.status.as_ref() != Some(&new_status) {
        deployments
            .patch_status(&name, &pp, &Patch::Merge(json!({ "status": new_status })))
            .await
            .map_err(|e| SimError::api(format!("update deployment {ns}/{name} status"), e))?;
    }
    Ok(match requeue {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

async fn scale(
    api: &Api<ReplicaSet>,
    d: &Deployment,
    rs: &ReplicaSet,
    replicas: i32,
    desired: i32,
    max_surge: i32,
) -> Result<ReplicaSet, SimError> {
    let name = rs.name_any();
    let from = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    tracing::debug!(replicaset = %name, replicas, "scaling replicaset");
    let scaled = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {
                    DESIRED_ANNOTATION: desired.to_string(),
                    MAX_ANNOTATION: (desired + max_surge).to_string(),
                }},
                "spec": {"replicas": replicas},
            })),
        )
        .await
        .map_err(|e| SimError::api(format!("scale replicaset {name}"), e))?;
    let direction = if replicas > from { "up" } else { "down" };
    events::emit(
        &api.clone().into_client(),
        events::reference(d),
        false,
        "ScalingReplicaSet",
        format!("Scaled {direction} replica set {name} from {from} to {replicas}"),
        "deployment-controller",
    );
    Ok(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.into())
    }

    #[test]
    fn percentages_round_like_kubernetes() {
        // Defaults are 25% / 25%: surge rounds up, unavailable rounds down.
        assert_eq!(fenceposts(None, None, 3), Ok((1, 0)));
        assert_eq!(fenceposts(None, None, 4), Ok((1, 1)));
        assert_eq!(fenceposts(None, None, 10), Ok((3, 2)));
        assert_eq!(fenceposts(Some(&s("50%")), Some(&s("50%")), 3), Ok((2, 1)));
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(2)), Some(&IntOrString::Int(0)), 3),
            Ok((2, 0))
        );
        // Both zero is not allowed: one pod may be unavailable.
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 3),
            Ok((0, 1))
        );
        assert_eq!(fenceposts(Some(&s("0%")), Some(&s("0%")), 1), Ok((0, 1)));
        assert!(fenceposts(Some(&s("abc")), None, 3).is_err());
        assert_eq!(resolve(Some(&s("25%")), "0%", 1, true), Ok(1));
        assert_eq!(resolve(Some(&s("25%")), "0%", 1, false), Ok(0));
    }

    fn rs(spec: i32, available: i32) -> RsCounts {
        RsCounts {
            spec,
            actual: spec,
            ready: available,
            available,
        }
    }

    #[test]
    fn rolling_step_surges_first_then_scales_old_down() {
        // 3 replicas, surge 1, unavailable 0: new grows to 1 while old stays at 3.
        let step = rolling_step(3, 1, 0, rs(0, 0), &[rs(3, 3)]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 1,
                old_specs: vec![3]
            }
        );
        // New pod not yet available: nothing may go.
        let step = rolling_step(3, 1, 0, rs(1, 0), &[rs(3, 3)]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 1,
                old_specs: vec![3]
            }
        );
        // New pod available: one old pod goes.
        let step = rolling_step(3, 1, 0, rs(1, 1), &[rs(3, 3)]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 1,
                old_specs: vec![2]
            }
        );
        // Then the new one grows again.
        let step = rolling_step(3, 1, 0, rs(1, 1), &[rs(2, 2)]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 2,
                old_specs: vec![2]
            }
        );
    }

    #[test]
    fn rolling_step_cleans_unhealthy_old_replicas_first() {
        // An old set with crash-looping pods can be scaled down without
        // waiting for the new set.
        let step = rolling_step(3, 1, 1, rs(1, 0), &[rs(1, 0), rs(2, 2)]);
        assert_eq!(step.new_spec, 1);
        assert_eq!(step.old_specs, vec![0, 2]);
    }

    proptest::proptest! {
        /// Drives the arithmetic against a cluster where new pods become
        /// available one step after they are asked for, from any previous
        /// size: the rollout always converges to `desired` pods on the new
        /// set, never asks for more than `desired + maxSurge` pods in total
        /// (once within that bound), and never scales away availability
        /// below `desired - maxUnavailable`.
        #[test]
        fn rolling_updates_converge_within_bounds(
            desired in 0i32..10,
            previous in 0i32..10,
            surge_pct in 0i32..=100,
            unavailable_pct in 0i32..=100,
        ) {
            let (surge, unav) = fenceposts(
                Some(&s(&format!("{surge_pct}%"))),
                Some(&s(&format!("{unavailable_pct}%"))),
                desired,
            )
            .map_err(proptest::test_runner::TestCaseError::fail)?;
            let mut new = rs(0, 0);
            let mut olds = vec![rs(previous, previous)];
            let min_available = desired - unav;
            for _ in 0..200 {
                let step = rolling_step(desired, surge, unav, new, &olds);
                let total_before = new.spec + olds.iter().map(|o| o.spec).sum::<i32>();
                let total = step.new_spec + step.old_specs.iter().sum::<i32>();
                proptest::prop_assert!(total <= (desired + surge).max(total_before));
                let available_before = new.available + olds.iter().map(|o| o.available).sum::<i32>();
                let kept: i32 = step.new_spec.min(new.available)
                    + step.old_specs.iter().zip(&olds).map(|(s, o)| (*s).min(o.available)).sum::<i32>();
                proptest::prop_assert!(kept >= min_available.min(available_before));
                let unchanged = step.new_spec == new.spec
                    && step.old_specs == olds.iter().map(|o| o.spec).collect::<Vec<_>>();
                if unchanged && new.available == new.spec {
                    break;
                }
                // What was asked for last time is available now.
                new = RsCounts { spec: step.new_spec, actual: step.new_spec, ready: new.spec.min(step.new_spec), available: new.spec.min(step.new_spec) };
                olds = step.old_specs.iter().map(|s| rs(*s, *s)).collect();
            }
            proptest::prop_assert_eq!(new.spec, desired);
            proptest::prop_assert!(olds.iter().all(|o| o.spec == 0));
        }
    }

    #[test]
    fn recreate_stops_everything_before_starting_the_new_pods() {
        let old = RsCounts {
            spec: 3,
            actual: 3,
            ready: 3,
            available: 3,
        };
        let step = recreate_step(3, RsCounts::default(), &[old]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 0,
                old_specs: vec![0]
            }
        );
        // Old pods still terminating: wait.
        let draining = RsCounts {
            spec: 0,
            actual: 2,
            ready: 0,
            available: 0,
        };
        let step = recreate_step(3, RsCounts::default(), &[draining]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 0,
                old_specs: vec![0]
            }
        );
        // All gone: the new set gets every replica.
        let step = recreate_step(3, RsCounts::default(), &[RsCounts::default()]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 3,
                old_specs: vec![0]
            }
        );
    }

    fn t(sec: i64) -> Time {
        Time(Timestamp::from_second(1_700_000_000 + sec).unwrap())
    }

    fn input<'a>(
        old: &'a DeploymentStatus,
        new: RsCounts,
        all: Vec<RsCounts>,
        now: i64,
    ) -> StatusInput<'a> {
        StatusInput {
            generation: Some(2),
            desired: 1,
            max_unavailable: 0,
            new_rs: Some(("web-abc", new)),
            all,
            old,
            progress_deadline_seconds: Some(5),
            paused: false,
            now: t(now),
        }
    }

    fn cond<'a>(s: &'a DeploymentStatus, type_: &str) -> &'a DeploymentCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    #[test]
    fn progress_conditions_follow_the_rollout() {
        let mut old = DeploymentStatus::default();
        set_condition(
            old.conditions.get_or_insert_with(Vec::new),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                "Created".into(),
                &t(0),
            ),
        );
        // A pod was created: progressing.
        let (st, requeue) = compute_status(&input(
            &old,
            RsCounts {
                spec: 1,
                actual: 1,
                ready: 0,
                available: 0,
            },
            vec![RsCounts {
                spec: 1,
                actual: 1,
                ready: 0,
                available: 0,
            }],
            1,
        ));
        assert_eq!(
            cond(&st, "Progressing").reason.as_deref(),
            Some("ReplicaSetUpdated")
        );
        assert_eq!(cond(&st, "Available").status, "False");
        assert_eq!(st.observed_generation, Some(2));
        assert_eq!(st.unavailable_replicas, Some(1));
        assert!(requeue.is_some());
        // No progress, within the deadline: unchanged, look again later.
        let (st2, requeue) = compute_status(&input(
            &st,
            RsCounts {
                spec: 1,
                actual: 1,
                ready: 0,
                available: 0,
            },
            vec![RsCounts {
                spec: 1,
                actual: 1,
                ready: 0,
                available: 0,
            }],
            4,
        ));
        assert_eq!(
            cond(&st2, "Progressing").reason.as_deref(),
            Some("ReplicaSetUpdated")
        );
        assert_eq!(
            requeue,
            Some(Duration::from_secs(2) + Duration::from_millis(1100))
        );
        // Past the deadline: failed.
        let (st3, _) = compute_status(&input(
            &st2,
            RsCounts {
                spec: 1,
                actual: 1,
                ready: 0,
                available: 0,
            },
            vec![RsCounts {
                spec: 1,
                actual: 1,
                ready: 0,
                available: 0,
            }],
            7,
        ));
        let p = cond(&st3, "Progressing");
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref()),
            ("False", Some("ProgressDeadlineExceeded"))
        );
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-abc\" has timed out progressing.")
        );
        // Available pods complete the rollout.
        let done = RsCounts {
            spec: 1,
            actual: 1,
            ready: 1,
            available: 1,
        };
        let (st4, requeue) = compute_status(&input(&st, done, vec![done], 2));
        let p = cond(&st4, "Progressing");
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref()),
            ("True", Some("NewReplicaSetAvailable"))
        );
        assert_eq!(cond(&st4, "Available").status, "True");
        assert_eq!(requeue, None);
        assert_eq!(st4.unavailable_replicas, Some(0));
    }
}
