//! The simulated StatefulSet controller.
//!
//! Pure planning (`plan`, `count_status`) decides what to do from the
//! StatefulSet and its pods; `reconcile` reads the API, runs the plan and
//! writes the results back through the API.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::SimError;
use super::events;
use super::hash::template_hash;
use super::util::{
    Availability, availability, controller_ref, create_pod, delete_pod, is_controlled_by,
    is_running_and_ready, is_status, is_terminating, list_selected, live_object, now_time,
    pod_phase, write_status,
};

mod plan;

pub(crate) use plan::{
    PodView, SetAction, SetView, UpdateStrategy, count_status, ordinal_of, plan, prune_revisions,
};

pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";
pub(crate) const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub(crate) const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
const HASH_LABEL: &str = "controller.kubernetes.io/hash";
pub(crate) struct Ctx {
    pub client: Client,
}

fn strategy_of(sts: &StatefulSet) -> UpdateStrategy {
    let s = sts.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    match s.and_then(|s| s.type_.as_deref()) {
        Some("OnDelete") => UpdateStrategy::OnDelete,
        _ => UpdateStrategy::RollingUpdate {
            partition: s
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0),
        },
    }
}

fn revision_data(template: &PodTemplateSpec) -> serde_json::Value {
    let mut t = serde_json::to_value(template).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = t.as_object_mut() {
        obj.insert("$patch".into(), json!("replace"));
    }
    json!({ "spec": { "template": t } })
}

fn template_from_revision(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Some(obj) = t.as_object_mut() {
        obj.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

pub(crate) fn claim_name(claim: &str, set: &str, ordinal: i32) -> String {
    format!("{claim}-{set}-{ordinal}")
}

/// Builds pod `<set>-<ordinal>` from `template` at revision `revision`.
pub(crate) fn build_pod(
    sts: &StatefulSet,
    template: &PodTemplateSpec,
    ordinal: i32,
    revision: &str,
) -> Pod {
    let set_name = sts.name_any();
    let name = format!("{set_name}-{ordinal}");
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.clone().unwrap_or_default();
    labels.insert(REVISION_LABEL.into(), revision.into());
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    if let Some(svc) = sts
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty())
    {
        spec.subdomain = Some(svc);
    }
    let claims = sts
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default();
    if !claims.is_empty() {
        let mut volumes = spec.volumes.take().unwrap_or_default();
        for claim in &claims {
            let cname = claim.metadata.name.clone().unwrap_or_default();
            volumes.retain(|v| v.name != cname);
            volumes.push(Volume {
                name: cname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(&cname, &set_name, ordinal),
                    read_only: None,
                }),
                ..Default::default()
            });
        }
        spec.volumes = Some(volumes);
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: sts.namespace(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            owner_references: controller_ref(sts).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn pod_view(set_name: &str, pod: &Pod) -> Option<PodView> {
    let name = pod.name_any();
    Some(PodView {
        ordinal: ordinal_of(set_name, &name)?,
        revision: pod
            .labels()
            .get(REVISION_LABEL)
            .cloned()
            .unwrap_or_default(),
        terminating: is_terminating(&pod.metadata),
        healthy: is_running_and_ready(pod),
        finished: matches!(pod_phase(pod), "Failed" | "Succeeded"),
        name,
    })
}

pub(crate) async fn reconcile(obj: Arc<StatefulSet>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let name = obj.name_any();
    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let Some((sts, uid)) = live_object(&sets, "statefulset", &ns, &name).await? else {
        return Ok(Action::await_change());
    };
    let Some(spec) = sts.spec.clone() else {
        return Ok(Action::await_change());
    };
    let status = sts.status.clone().unwrap_or_default();
    let collision = status.collision_count;

    // Revisions.
    let revisions: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let owned_revs: Vec<ControllerRevision> = revisions
        .list(&list_selected(Some(&spec.selector)))
        .await
        .map_err(|e| SimError::api(format!("list controllerrevisions in {ns}"), e))?
        .items
        .into_iter()
        .filter(|r| is_controlled_by(&r.metadata, &uid))
        .collect();
    let hash = template_hash(&spec.template, collision);
    let update_revision = format!("{name}-{hash}");
    let max_other = owned_revs
        .iter()
        .filter(|r| r.name_any() != update_revision)
        .map(|r| r.revision)
        .max()
        .unwrap_or(0);
    if let Some(existing) = owned_revs.iter().find(|r| r.name_any() == update_revision) {
        // Going back to an earlier template makes its revision the newest.
        if existing.revision <= max_other {
            revisions
                .patch(
                    &update_revision,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "revision": max_other + 1 })),
                )
                .await
                .map_err(|e| {
                    SimError::api(
                        format!("update controllerrevision {ns}/{update_revision}"),
                        e,
                    )
                })?;
        }
    } else {
        let next = max_other + 1;
        let mut labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(HASH_LABEL.into(), hash.clone());
        let rev = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(update_revision.clone()),
                namespace: Some(ns.clone()),
                labels: Some(labels),
                owner_references: controller_ref(&sts).map(|r| vec![r]),
                ..Default::default()
            },
            data: Some(RawExtension(revision_data(&spec.template))),
            revision: next,
        };
        match revisions.create(&PostParams::default(), &rev).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 409) => {}
            Err(e) => {
                return Err(SimError::api(
                    format!("create controllerrevision {ns}/{update_revision}"),
                    e,
                ));
            }
        }
    }
    let current_revision = status
        .current_revision
        .clone()
        .filter(|c| !c.is_empty())
        .filter(|c| c == &update_revision || owned_revs.iter().any(|r| &r.name_any() == c))
        .unwrap_or_else(|| update_revision.clone());

    // Pods.
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods: Vec<Pod> = pods_api
        .list(&list_selected(Some(&spec.selector)))
        .await
        .map_err(|e| SimError::api(format!("list pods in {ns}"), e))?
        .items
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .collect();
    let views: Vec<PodView> = pods.iter().filter_map(|p| pod_view(&name, p)).collect();
    let view = SetView {
        replicas: spec.replicas.unwrap_or(1),
        parallel: spec.pod_management_policy.as_deref() == Some("Parallel"),
        strategy: strategy_of(&sts),
        current_revision: current_revision.clone(),
        update_revision: update_revision.clone(),
    };

    for action in plan(&view, &views) {
        match action {
            SetAction::Create { ordinal, revision } => {
                let template = if revision == update_revision {
                    spec.template.clone()
                } else {
                    owned_revs
                        .iter()
                        .find(|r| r.name_any() == revision)
                        .and_then(template_from_revision)
                        .unwrap_or_else(|| spec.template.clone())
                };
                ensure_claims(&ctx.client, &sts, ordinal).await?;
                let pod = build_pod(&sts, &template, ordinal, &revision);
                tracing::debug!(statefulset = %name, namespace = %ns, ordinal, %revision, "creating pod");
                if create_pod(&pods_api, &ns, &pod).await? {
                    events::emit(
                        &ctx.client,
                        events::reference(&sts),
                        false,
                        "SuccessfulCreate",
                        format!("create Pod {name}-{ordinal} in StatefulSet {name} successful"),
                        "statefulset-controller",
                    );
                }
            }
            SetAction::Delete { name: pod_name } => {
                tracing::debug!(statefulset = %name, namespace = %ns, pod = %pod_name, "deleting pod");
                if delete_pod(&pods_api, &ns, &pods, &pod_name).await? {
                    events::emit(
                        &ctx.client,
                        events::reference(&sts),
                        false,
                        "SuccessfulDelete",
                        format!("delete Pod {pod_name} in StatefulSet {name} successful"),
                        "statefulset-controller",
                    );
                }
            }
        }
    }

    // Revision history: unused revisions beyond the limit go, oldest first.
    let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
    let in_use: Vec<&str> = views
        .iter()
        .map(|v| v.revision.as_str())
        .chain([current_revision.as_str(), update_revision.as_str()])
        .collect();
    for name in prune_revisions(&owned_revs, &in_use, limit) {
        match revisions.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => {
                return Err(SimError::api(
                    format!("delete controllerrevision {ns}/{name}"),
                    e,
                ));
            }
        }
    }

    // Status.
    let now = now_time();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut requeue = None;
    let with_availability: Vec<(PodView, bool)> = pods
        .iter()
        .filter_map(|p| {
            let v = pod_view(&name, p)?;
            let a = match availability(p, min_ready, &now) {
                Availability::Available => true,
                Availability::AvailableIn(d) => {
                    requeue = super::util::earliest(requeue, Some(d));
                    false
                }
                Availability::Unavailable => false,
            };
            Some((v, a))
        })
        .collect();
    let counts = count_status(&with_availability, &current_revision, &update_revision);
    let mut new_status = StatefulSetStatus {
        observed_generation: sts.metadata.generation,
        replicas: counts.replicas,
        ready_replicas: Some(counts.ready),
        available_replicas: Some(counts.available),
        current_replicas: Some(counts.current),
        updated_replicas: Some(counts.updated),
        current_revision: Some(current_revision),
        update_revision: Some(update_revision.clone()),
        collision_count: Some(collision.unwrap_or(0)),
        conditions: status.conditions.clone(),
    };
    // A completed rolling update makes the update revision current.
    if matches!(view.strategy, UpdateStrategy::RollingUpdate { .. })
        && counts.updated == counts.replicas
        && counts.ready == counts.replicas
        && counts.replicas == view.replicas
    {
        new_status.current_replicas = Some(counts.updated);
        new_status.current_revision = Some(update_revision);
    }
    write_status(
        &sets,
        "statefulset",
        &ns,
        &name,
        sts.status.as_ref(),
        new_status,
        requeue,
    )
    .await
}

/// Creates (once) and binds the PVCs of one ordinal. PVCs are never deleted.
async fn ensure_claims(client: &Client, sts: &StatefulSet, ordinal: i32) -> Result<(), SimError> {
    let Some(templates) = sts
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref())
    else {
        return Ok(());
    };
    let ns = sts.namespace().unwrap_or_else(|| "default".into());
    let set_name = sts.name_any();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone());
    for t in templates {
        let cname = claim_name(&t.name_any(), &set_name, ordinal);
        let existing = api
            .get_opt(&cname)
            .await
            .map_err(|e| SimError::api(format!("get pvc {ns}/{cname}"), e))?;
        let bound = existing
            .as_ref()
            .and_then(|c| c.status.as_ref())
            .and_then(|s| s.phase.as_deref())
            == Some("Bound");
        if existing.is_none() {
            let mut tmeta = t.metadata.clone();
            let mut all_labels = tmeta.labels.take().unwrap_or_default();
            all_labels.extend(labels.clone().unwrap_or_default());
            let pvc = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(cname.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(all_labels),
                    annotations: tmeta.annotations,
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            };
            match api.create(&PostParams::default(), &pvc).await {
                Ok(_) => events::emit(
                    client,
                    events::reference(sts),
                    false,
                    "SuccessfulCreate",
                    format!(
                        "create Claim {cname} Pod {set_name}-{ordinal} in StatefulSet {set_name} success"
                    ),
                    "statefulset-controller",
                ),
                Err(e) if is_status(&e, 409) => {}
                Err(e) => return Err(SimError::api(format!("create pvc {ns}/{cname}"), e)),
            }
        }
        if !bound {
            let capacity = t
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.clone());
            api.patch_status(
                &cname,
                &PatchParams::default(),
                &Patch::Merge(json!({
                    "status": { "phase": "Bound", "accessModes": t.spec.as_ref().and_then(|s| s.access_modes.clone()), "capacity": capacity }
                })),
            )
            .await
            .map_err(|e| SimError::api(format!("bind pvc {ns}/{cname}"), e))?;
        }
    }
    Ok(())
}
