//! A Deployment's status: the replica counts and the `Progressing` / `Available` conditions
//! `kubectl rollout status` reads.

use super::rollout::RsCounts;
use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;

pub(super) fn condition(
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

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

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
        let starting = RsCounts {
            spec: 1,
            actual: 1,
            ready: 0,
            available: 0,
        };
        let (st, requeue) = compute_status(&input(&old, starting, vec![starting], 1));
        assert_eq!(
            cond(&st, "Progressing").reason.as_deref(),
            Some("ReplicaSetUpdated")
        );
        assert_eq!(cond(&st, "Available").status, "False");
        assert_eq!(st.observed_generation, Some(2));
        assert_eq!(st.unavailable_replicas, Some(1));
        assert!(requeue.is_some());
        // No progress, within the deadline: unchanged, look again later.
        let (st2, requeue) = compute_status(&input(&st, starting, vec![starting], 4));
        assert_eq!(
            cond(&st2, "Progressing").reason.as_deref(),
            Some("ReplicaSetUpdated")
        );
        assert_eq!(
            requeue,
            Some(Duration::from_secs(2) + Duration::from_millis(1100))
        );
        // Past the deadline: failed.
        let (st3, _) = compute_status(&input(&st2, starting, vec![starting], 7));
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
