//! The simulated ReplicaSet controller.

use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};

use super::SimError;
use super::events;
use super::rng::SplitMix64;
use super::util::{
    Availability, availability, controller_ref, create_pod, delete_pod, earliest, is_active,
    is_controlled_by, is_pod_ready, list_selected, live_object, now_time, pod_phase, write_status,
};

/// What deciding which pods to delete needs to know about a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodRank {
    pub name: String,
    pub assigned: bool,
    /// 0 Pending, 1 Unknown, 2 Running.
    pub phase_rank: u8,
    pub ready: bool,
    pub restarts: i32,
    /// Creation time in seconds.
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RsPlan {
    pub create: usize,
    pub delete: Vec<String>,
}

/// Decides how many pods to create, or which active pods to delete, to reach
/// `desired`. Pods are deleted in the order the real controller uses:
/// unscheduled before scheduled, pending before running, not ready before
/// ready, more restarts first, newest first.
pub(crate) fn plan(desired: i32, active: &[PodRank]) -> RsPlan {
    let desired = desired.max(0) as usize;
    if active.len() < desired {
        return RsPlan {
            create: desired - active.len(),
            delete: Vec::new(),
        };
    }
    let mut ranked: Vec<&PodRank> = active.iter().collect();
    ranked.sort_by(|a, b| {
        a.assigned
            .cmp(&b.assigned)
            .then(a.phase_rank.cmp(&b.phase_rank))
            .then(a.ready.cmp(&b.ready))
            .then(b.restarts.cmp(&a.restarts))
            .then(b.created.cmp(&a.created))
            .then(a.name.cmp(&b.name))
    });
    RsPlan {
        create: 0,
        delete: ranked
            .into_iter()
            .take(active.len() - desired)
            .map(|p| p.name.clone())
            .collect(),
    }
}

fn rank(pod: &Pod) -> PodRank {
    let status = pod.status.as_ref();
    PodRank {
        name: pod.name_any(),
        assigned: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some_and(|n| !n.is_empty()),
        phase_rank: match pod_phase(pod) {
            "Running" => 2,
            "Pending" | "" => 0,
            _ => 1,
        },
        ready: is_pod_ready(pod),
        restarts: status
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
            .unwrap_or(0),
        created: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or(0),
    }
}

pub(crate) struct Ctx {
    pub client: Client,
    pub rng: Mutex<SplitMix64>,
}

fn new_pod(rs: &ReplicaSet, name: String) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: rs.namespace(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            owner_references: controller_ref(rs).map(|r| vec![r]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

pub(crate) async fn reconcile(obj: Arc<ReplicaSet>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let name = obj.name_any();
    let sets: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let Some((rs, uid)) = live_object(&sets, "replicaset", &ns, &name).await? else {
        return Ok(Action::await_change());
    };
    let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let min_ready = rs
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);

    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods: Vec<Pod> = pods_api
        .list(&list_selected(rs.spec.as_ref().map(|s| &s.selector)))
        .await
        .map_err(|e| SimError::api(format!("list pods in {ns}"), e))?
        .items
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .collect();
    let active: Vec<&Pod> = pods.iter().filter(|p| is_active(p)).collect();
    let ranks: Vec<PodRank> = active.iter().map(|p| rank(p)).collect();
    let decision = plan(desired, &ranks);

    for _ in 0..decision.create {
        let suffix = match ctx.rng.lock() {
            Ok(mut r) => r.name_suffix(5),
            Err(poisoned) => poisoned.into_inner().name_suffix(5),
        };
        let pod_name = format!("{name}-{suffix}");
        tracing::debug!(replicaset = %name, namespace = %ns, pod = %pod_name, "creating pod");
        // A name clash: the next reconcile picks another name.
        if create_pod(&pods_api, &ns, &new_pod(&rs, pod_name.clone())).await? {
            events::emit(
                &ctx.client,
                events::reference(&rs),
                false,
                "SuccessfulCreate",
                format!("Created pod: {pod_name}"),
                "replicaset-controller",
            );
        }
    }
    for pod_name in &decision.delete {
        tracing::debug!(replicaset = %name, namespace = %ns, pod = %pod_name, "deleting pod");
        if delete_pod(&pods_api, &ns, &pods, pod_name).await? {
            events::emit(
                &ctx.client,
                events::reference(&rs),
                false,
                "SuccessfulDelete",
                format!("Deleted pod: {pod_name}"),
                "replicaset-controller",
            );
        }
    }

    let now = now_time();
    let mut requeue = None;
    let mut ready = 0;
    let mut available = 0;
    for p in &active {
        if is_pod_ready(p) {
            ready += 1;
        }
        match availability(p, min_ready, &now) {
            Availability::Available => available += 1,
            Availability::AvailableIn(d) => requeue = earliest(requeue, Some(d)),
            Availability::Unavailable => {}
        }
    }
    let count = active.len() as i32;
    let old = rs.status.clone().unwrap_or_default();
    let new_status = ReplicaSetStatus {
        replicas: count,
        fully_labeled_replicas: Some(count),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: rs.metadata.generation,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    write_status(
        &sets,
        "replicaset",
        &ns,
        &name,
        rs.status.as_ref(),
        new_status,
        requeue,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(
        name: &str,
        assigned: bool,
        phase_rank: u8,
        ready: bool,
        restarts: i32,
        created: i64,
    ) -> PodRank {
        PodRank {
            name: name.into(),
            assigned,
            phase_rank,
            ready,
            restarts,
            created,
        }
    }

    #[test]
    fn creates_the_missing_pods() {
        assert_eq!(plan(3, &[]).create, 3);
        assert_eq!(plan(3, &[r("a", true, 2, true, 0, 1)]).create, 2);
        assert_eq!(plan(-1, &[]), RsPlan::default());
    }

    #[test]
    fn deletes_not_ready_before_ready_and_newest_first() {
        let pods = [
            r("ready-old", true, 2, true, 0, 1),
            r("ready-new", true, 2, true, 0, 5),
            r("unready", true, 2, false, 0, 1),
            r("pending", true, 0, false, 0, 1),
            r("unscheduled", false, 0, false, 0, 1),
        ];
        assert_eq!(plan(4, &pods).delete, vec!["unscheduled"]);
        assert_eq!(
            plan(2, &pods).delete,
            vec!["unscheduled", "pending", "unready"]
        );
        assert_eq!(
            plan(1, &pods).delete,
            vec!["unscheduled", "pending", "unready", "ready-new"]
        );
        assert_eq!(plan(0, &pods).delete.len(), 5);
    }

    #[test]
    fn prefers_deleting_pods_that_restarted_more() {
        let pods = [
            r("calm", true, 2, false, 0, 1),
            r("crashy", true, 2, false, 7, 1),
        ];
        assert_eq!(plan(1, &pods).delete, vec!["crashy"]);
    }

    fn key(
        p: &PodRank,
    ) -> (
        bool,
        u8,
        bool,
        std::cmp::Reverse<i32>,
        std::cmp::Reverse<i64>,
    ) {
        (
            p.assigned,
            p.phase_rank,
            p.ready,
            std::cmp::Reverse(p.restarts),
            std::cmp::Reverse(p.created),
        )
    }

    proptest::proptest! {
        /// The plan always reaches `desired`, deletes only existing pods,
        /// each at most once, and never keeps a pod that is a worse choice
        /// to keep than one it deletes.
        #[test]
        fn plan_reaches_desired_deleting_the_least_useful_pods(
            desired in 0i32..10,
            pods in proptest::collection::vec(
                (proptest::bool::ANY, 0u8..3, proptest::bool::ANY, 0i32..5, 0i64..10),
                0..12,
            ),
        ) {
            let active: Vec<PodRank> = pods
                .iter()
                .enumerate()
                .map(|(i, (assigned, phase_rank, ready, restarts, created))| PodRank {
                    name: format!("p{i}"),
                    assigned: *assigned,
                    phase_rank: *phase_rank,
                    ready: *ready,
                    restarts: *restarts,
                    created: *created,
                })
                .collect();
            let decision = plan(desired, &active);
            let remaining = active.len() as i32 + decision.create as i32 - decision.delete.len() as i32;
            proptest::prop_assert_eq!(remaining, desired);
            proptest::prop_assert!(decision.create == 0 || decision.delete.is_empty());
            let mut unique = decision.delete.clone();
            unique.sort();
            unique.dedup();
            proptest::prop_assert_eq!(unique.len(), decision.delete.len());
            for d in &decision.delete {
                let deleted = active.iter().find(|p| &p.name == d);
                proptest::prop_assert!(deleted.is_some());
                if let Some(deleted) = deleted {
                    for kept in active.iter().filter(|p| !decision.delete.contains(&p.name)) {
                        proptest::prop_assert!(key(deleted) <= key(kept));
                    }
                }
            }
        }
    }
}
