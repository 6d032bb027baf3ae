//! The simulated StatefulSet controller.
//!
//! Pure planning (`plan`, `count_status`) decides what to do from the
//! StatefulSet and its pods; `reconcile` reads the API, runs the plan and
//! writes the results back through the API.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::SimError;
use super::events;
use super::hash::template_hash;
use super::util::{
    Availability, availability, controller_ref, is_controlled_by, is_running_and_ready, is_status,
    is_terminating, list_selected, live_object, now_time, pod_phase,
};

pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";
pub(crate) const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub(crate) const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// How pods are replaced when the template changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpdateStrategy {
    OnDelete,
    RollingUpdate { partition: i32 },
}

/// What the planner needs to know about the StatefulSet.
#[derive(Debug, Clone)]
pub(crate) struct SetView {
    pub replicas: i32,
    /// `Parallel` pod management (otherwise `OrderedReady`).
    pub parallel: bool,
    pub strategy: UpdateStrategy,
    pub current_revision: String,
    pub update_revision: String,
}

/// What the planner needs to know about one pod of the set.
#[derive(Debug, Clone)]
pub(crate) struct PodView {
    pub ordinal: i32,
    pub name: String,
    pub revision: String,
    pub terminating: bool,
    /// Running and Ready.
    pub healthy: bool,
    /// Phase Failed or Succeeded: the pod must be replaced.
    pub finished: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetAction {
    Create { ordinal: i32, revision: String },
    Delete { name: String },
}

/// The revision a newly created pod with this ordinal gets.
pub(crate) fn revision_for_new_pod(set: &SetView, ordinal: i32) -> &str {
    match set.strategy {
        UpdateStrategy::RollingUpdate { partition } if ordinal < partition => &set.current_revision,
        _ => &set.update_revision,
    }
}

/// Decides the next pod creations and deletions, like the real StatefulSet
/// controller: with `OrderedReady`, one step at a time in ordinal order
/// (creation ascending, removal descending), each waiting for the previous pod
/// to be Running and Ready; with `Parallel`, all at once. `RollingUpdate`
/// replaces outdated pods from the highest ordinal down to the partition, one
/// at a time, each waiting for the previous to be Ready; `OnDelete` never
/// replaces a pod because of a template change.
pub(crate) fn plan(set: &SetView, pods: &[PodView]) -> Vec<SetAction> {
    let ordered = !set.parallel;
    let mut actions = Vec::new();
    let mut slots: BTreeMap<i32, &PodView> = BTreeMap::new();
    let mut condemned: Vec<&PodView> = Vec::new();
    for p in pods {
        if p.ordinal < 0 {
            continue;
        }
        if p.ordinal < set.replicas {
            slots.entry(p.ordinal).or_insert(p);
        } else {
            condemned.push(p);
        }
    }
    condemned.sort_by_key(|p| std::cmp::Reverse(p.ordinal));

    let mut all_healthy = true;
    for ordinal in 0..set.replicas.max(0) {
        match slots.get(&ordinal) {
            None => {
                all_healthy = false;
                actions.push(SetAction::Create {
                    ordinal,
                    revision: revision_for_new_pod(set, ordinal).to_string(),
                });
                if ordered {
                    return actions;
                }
            }
            Some(p) if p.finished && !p.terminating => {
                all_healthy = false;
                actions.push(SetAction::Delete {
                    name: p.name.clone(),
                });
                if ordered {
                    return actions;
                }
            }
            Some(p) if p.terminating || !p.healthy => {
                all_healthy = false;
                if ordered {
                    return actions;
                }
            }
            Some(_) => {}
        }
    }

    for p in &condemned {
        if p.terminating {
            if ordered {
                return actions;
            }
            continue;
        }
        if ordered && !all_healthy {
            return actions;
        }
        actions.push(SetAction::Delete {
            name: p.name.clone(),
        });
        if ordered {
            return actions;
        }
    }

    if let UpdateStrategy::RollingUpdate { partition } = set.strategy {
        if !actions.is_empty() {
            return actions;
        }
        for ordinal in (partition.max(0)..set.replicas).rev() {
            let Some(p) = slots.get(&ordinal) else {
                return actions;
            };
            if p.revision != set.update_revision && !p.terminating {
                actions.push(SetAction::Delete {
                    name: p.name.clone(),
                });
                return actions;
            }
            if !p.healthy {
                return actions;
            }
        }
    }
    actions
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SetCounts {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
}

/// Status counters over the pods of the set (as the real controller counts
/// them: terminating pods are neither current nor updated).
pub(crate) fn count_status(
    pods: &[(PodView, bool)],
    current_revision: &str,
    update_revision: &str,
) -> SetCounts {
    let mut c = SetCounts::default();
    for (p, available) in pods {
        c.replicas += 1;
        if p.healthy {
            c.ready += 1;
            if *available {
                c.available += 1;
            }
        }
        if !p.terminating {
            if p.revision == current_revision {
                c.current += 1;
            }
            if p.revision == update_revision {
                c.updated += 1;
            }
        }
    }
    c
}

/// Revisions to delete: those no pod uses and that are neither current nor
/// the update revision, beyond `limit`, oldest first.
pub(crate) fn prune_revisions(
    revs: &[ControllerRevision],
    in_use: &[&str],
    limit: usize,
) -> Vec<String> {
    let mut unused: Vec<&ControllerRevision> = revs
        .iter()
        .filter(|r| !in_use.contains(&r.name_any().as_str()))
        .collect();
    if unused.len() <= limit {
        return Vec::new();
    }
    unused.sort_by_key(|r| r.revision);
    let excess = unused.len() - limit;
    unused
        .into_iter()
        .take(excess)
        .map(|r| r.name_any())
        .collect()
}

/// Parses the ordinal of `pod_name` for a set named `set_name`.
pub(crate) fn ordinal_of(set_name: &str, pod_name: &str) -> Option<i32> {
    let rest = pod_name.strip_prefix(set_name)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if rest.len() > 1 && rest.starts_with('0') {
        return None;
    }
    rest.parse().ok()
}

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
                match pods_api.create(&PostParams::default(), &pod).await {
                    Ok(_) => events::emit(
                        &ctx.client,
                        events::reference(&sts),
                        false,
                        "SuccessfulCreate",
                        format!("create Pod {name}-{ordinal} in StatefulSet {name} successful"),
                        "statefulset-controller",
                    ),
                    Err(e) if is_status(&e, 409) => {}
                    Err(e) => {
                        return Err(SimError::api(
                            format!("create pod {ns}/{name}-{ordinal}"),
                            e,
                        ));
                    }
                }
            }
            SetAction::Delete { name: pod_name } => {
                tracing::debug!(statefulset = %name, namespace = %ns, pod = %pod_name, "deleting pod");
                let uid = pods
                    .iter()
                    .find(|p| p.name_any() == pod_name)
                    .and_then(|p| p.uid());
                let dp = DeleteParams {
                    preconditions: uid.map(|uid| Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match pods_api.delete(&pod_name, &dp).await {
                    Ok(_) => events::emit(
                        &ctx.client,
                        events::reference(&sts),
                        false,
                        "SuccessfulDelete",
                        format!("delete Pod {pod_name} in StatefulSet {name} successful"),
                        "statefulset-controller",
                    ),
                    Err(e) if is_status(&e, 404) || is_status(&e, 409) => {}
                    Err(e) => {
                        return Err(SimError::api(format!("delete pod {ns}/{pod_name}"), e));
                    }
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
    if sts.status.as_ref() != Some(&new_status) {
        sets.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": new_status })),
        )
        .await
        .map_err(|e| SimError::api(format!("update statefulset {ns}/{name} status"), e))?;
    }
    Ok(match requeue {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set(replicas: i32, parallel: bool, strategy: UpdateStrategy) -> SetView {
        SetView {
            replicas,
            parallel,
            strategy,
            current_revision: "s-old".into(),
            update_revision: "s-new".into(),
        }
    }

    fn pod(ordinal: i32, revision: &str, healthy: bool) -> PodView {
        PodView {
            ordinal,
            name: format!("s-{ordinal}"),
            revision: revision.into(),
            terminating: false,
            healthy,
            finished: false,
        }
    }

    fn create(ordinal: i32, revision: &str) -> SetAction {
        SetAction::Create {
            ordinal,
            revision: revision.into(),
        }
    }

    fn delete(ordinal: i32) -> SetAction {
        SetAction::Delete {
            name: format!("s-{ordinal}"),
        }
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time_waiting_for_ready() {
        let s = set(3, false, UpdateStrategy::OnDelete);
        assert_eq!(plan(&s, &[]), vec![create(0, "s-new")]);
        assert_eq!(plan(&s, &[pod(0, "s-new", false)]), vec![]);
        assert_eq!(plan(&s, &[pod(0, "s-new", true)]), vec![create(1, "s-new")]);
        assert_eq!(
            plan(&s, &[pod(0, "s-new", true), pod(1, "s-new", true)]),
            vec![create(2, "s-new")]
        );
        let all = [
            pod(0, "s-new", true),
            pod(1, "s-new", true),
            pod(2, "s-new", true),
        ];
        assert_eq!(plan(&s, &all), vec![]);
    }

    #[test]
    fn parallel_creates_everything_at_once() {
        let s = set(3, true, UpdateStrategy::OnDelete);
        assert_eq!(
            plan(&s, &[pod(1, "s-new", false)]),
            vec![create(0, "s-new"), create(2, "s-new")]
        );
    }

    #[test]
    fn scale_down_removes_highest_ordinal_first_one_at_a_time() {
        let s = set(1, false, UpdateStrategy::OnDelete);
        let pods = [
            pod(0, "s-new", true),
            pod(1, "s-new", true),
            pod(2, "s-new", true),
        ];
        assert_eq!(plan(&s, &pods), vec![delete(2)]);
        let mut terminating = pods.clone();
        terminating[2].terminating = true;
        assert_eq!(plan(&s, &terminating), vec![]);
        // Parallel removes all condemned pods at once.
        let p = set(1, true, UpdateStrategy::OnDelete);
        assert_eq!(plan(&p, &pods), vec![delete(2), delete(1)]);
    }

    #[test]
    fn on_delete_never_replaces_outdated_pods_but_recreates_deleted_ones_at_update_revision() {
        let s = set(3, false, UpdateStrategy::OnDelete);
        let pods = [
            pod(0, "s-old", true),
            pod(1, "s-old", true),
            pod(2, "s-old", true),
        ];
        assert_eq!(plan(&s, &pods), vec![]);
        assert_eq!(
            plan(&s, &[pods[0].clone(), pods[2].clone()]),
            vec![create(1, "s-new")]
        );
    }

    #[test]
    fn rolling_update_goes_from_highest_ordinal_one_at_a_time() {
        let s = set(3, false, UpdateStrategy::RollingUpdate { partition: 0 });
        let mut pods = vec![
            pod(0, "s-old", true),
            pod(1, "s-old", true),
            pod(2, "s-old", true),
        ];
        assert_eq!(plan(&s, &pods), vec![delete(2)]);
        pods[2] = pod(2, "s-new", false);
        assert_eq!(plan(&s, &pods), vec![]);
        pods[2].healthy = true;
        assert_eq!(plan(&s, &pods), vec![delete(1)]);
        pods[1] = pod(1, "s-new", true);
        assert_eq!(plan(&s, &pods), vec![delete(0)]);
        pods[0] = pod(0, "s-new", true);
        assert_eq!(plan(&s, &pods), vec![]);
    }

    #[test]
    fn rolling_update_respects_partition() {
        let s = set(3, false, UpdateStrategy::RollingUpdate { partition: 2 });
        let pods = vec![
            pod(0, "s-old", true),
            pod(1, "s-old", true),
            pod(2, "s-new", true),
        ];
        assert_eq!(plan(&s, &pods), vec![]);
        // Below the partition a missing pod is recreated at the current revision.
        assert_eq!(plan(&s, &pods[1..]), vec![create(0, "s-old")]);
    }

    #[test]
    fn finished_pods_are_replaced() {
        let s = set(2, false, UpdateStrategy::OnDelete);
        let mut failed = pod(0, "s-new", false);
        failed.finished = true;
        assert_eq!(plan(&s, &[failed, pod(1, "s-new", true)]), vec![delete(0)]);
    }

    #[test]
    fn unused_revisions_beyond_the_limit_are_pruned_oldest_first() {
        let rev = |name: &str, n: i64| ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: None,
            revision: n,
        };
        let revs = vec![rev("s-a", 1), rev("s-b", 2), rev("s-c", 3), rev("s-d", 4)];
        assert_eq!(prune_revisions(&revs, &["s-d"], 1), vec!["s-a", "s-b"]);
        assert_eq!(prune_revisions(&revs, &["s-a", "s-d"], 1), vec!["s-b"]);
        assert!(prune_revisions(&revs, &["s-d"], 10).is_empty());
    }

    #[test]
    fn ordinals_parse_strictly() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webx-1"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(ordinal_of("my-set", "my-set-3"), Some(3));
    }

    #[test]
    fn counts_exclude_terminating_from_current_and_updated() {
        let mut t = pod(2, "s-new", false);
        t.terminating = true;
        let pods = vec![
            (pod(0, "s-old", true), true),
            (pod(1, "s-new", true), false),
            (t, false),
        ];
        let c = count_status(&pods, "s-old", "s-new");
        assert_eq!(
            c,
            SetCounts {
                replicas: 3,
                ready: 2,
                available: 1,
                current: 1,
                updated: 1
            }
        );
    }

    proptest::proptest! {
        /// Runs the planner against an instant "cluster" (created pods become
        /// ready, deleted pods vanish) from any starting shape: it converges
        /// to exactly `replicas` pods, those at or above the partition at the
        /// update revision, taking one step at a time when ordered.
        #[test]
        fn planner_converges_from_any_shape(
            replicas in 0i32..6,
            parallel: bool,
            on_delete: bool,
            partition in 0i32..4,
            start in proptest::collection::vec((proptest::option::of(proptest::bool::ANY), proptest::bool::ANY), 0..8),
        ) {
            let strategy = if on_delete {
                UpdateStrategy::OnDelete
            } else {
                UpdateStrategy::RollingUpdate { partition }
            };
            let s = set(replicas, parallel, strategy.clone());
            let mut pods: Vec<PodView> = start
                .iter()
                .enumerate()
                .filter_map(|(o, (present, healthy))| {
                    present.map(|new| pod(o as i32, if new { "s-new" } else { "s-old" }, *healthy))
                })
                .collect();
            let initial = pods.clone();
            for _ in 0..100 {
                let actions = plan(&s, &pods);
                if actions.is_empty() {
                    // Unhealthy pods become healthy as time passes.
                    if pods.iter().all(|p| p.healthy) {
                        break;
                    }
                    for p in pods.iter_mut() {
                        p.healthy = true;
                    }
                    continue;
                }
                if !parallel {
                    proptest::prop_assert_eq!(actions.len(), 1);
                }
                for a in actions {
                    match a {
                        SetAction::Create { ordinal, revision } => {
                            proptest::prop_assert!(pods.iter().all(|p| p.ordinal != ordinal));
                            pods.push(pod(ordinal, &revision, true))
                        }
                        SetAction::Delete { name } => pods.retain(|p| p.name != name),
                    }
                }
            }
            proptest::prop_assert!(plan(&s, &pods).is_empty());
            let mut ordinals: Vec<i32> = pods.iter().map(|p| p.ordinal).collect();
            ordinals.sort();
            proptest::prop_assert_eq!(ordinals, (0..replicas).collect::<Vec<_>>());
            for p in &pods {
                match strategy {
                    UpdateStrategy::RollingUpdate { partition } if p.ordinal >= partition => {
                        proptest::prop_assert_eq!(&p.revision, "s-new");
                    }
                    UpdateStrategy::OnDelete => {
                        // OnDelete never replaces a pod that was there.
                        if let Some(before) = initial.iter().find(|b| b.ordinal == p.ordinal) {
                            proptest::prop_assert_eq!(&p.revision, &before.revision);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
