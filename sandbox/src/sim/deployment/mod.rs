//! The simulated Deployment controller: one ReplicaSet per pod template,
//! rolling updates bounded by `maxSurge` / `maxUnavailable`, `Recreate`, and
//! the `Progressing` / `Available` conditions `kubectl rollout status` reads.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::SimError;
use super::events;
use super::hash::{canonical_json, template_hash};
use super::util::{
    controller_ref, is_controlled_by, is_status, list_selected, live_object, now_time, write_status,
};

mod rollout;
mod status;

pub(crate) use rollout::{RsCounts, fenceposts, recreate_step, resolve, rolling_step};
use status::condition;
pub(crate) use status::{StatusInput, compute_status, set_condition};

pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";
pub(crate) const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
const DESIRED_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";

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
    write_status(
        &deployments,
        "deployment",
        &ns,
        &name,
        d.status.as_ref(),
        new_status,
        requeue,
    )
    .await
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
