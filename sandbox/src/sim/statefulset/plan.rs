//! Pure planning: what a StatefulSet's controller does next from the set and its pods (ordered or
//! parallel creation, rolling updates with a partition, `OnDelete`), its status counts and which
//! revisions it prunes.

use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::ResourceExt;
use std::collections::BTreeMap;

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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

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
