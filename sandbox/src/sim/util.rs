//! Small helpers shared by the simulated controllers.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::SimError;

/// Current wall-clock time at the precision the API serialises (seconds), so
/// that values we compute compare equal to what we read back.
pub(crate) fn now_time() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A controller owner reference (`controller: true`) pointing at `owner`.
pub(crate) fn controller_ref<K>(owner: &K) -> Option<OwnerReference>
where
    K: Resource<DynamicType = ()>,
{
    let meta = owner.meta();
    Some(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// The uid of the object's controlling owner, if any.
pub(crate) fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

pub(crate) fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_uid(meta) == Some(uid)
}

pub(crate) fn is_terminating(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

pub(crate) fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The pod's `Ready` condition, if it is `True`.
pub(crate) fn ready_condition_since(pod: &Pod) -> Option<Option<&Time>> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref())
}

pub(crate) fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition_since(pod).is_some()
}

pub(crate) fn is_running_and_ready(pod: &Pod) -> bool {
    pod_phase(pod) == "Running" && is_pod_ready(pod)
}

/// Whether a ready pod has been ready for at least `min_ready_seconds`
/// at wall-clock `now`; otherwise the time left until it will be.
pub(crate) fn availability(pod: &Pod, min_ready_seconds: i32, now: &Time) -> Availability {
    match ready_condition_since(pod) {
        None => Availability::Unavailable,
        Some(_) if min_ready_seconds <= 0 => Availability::Available,
        Some(None) => Availability::Available,
        Some(Some(since)) => {
            let ready_for = now.0.as_second() - since.0.as_second();
            let needed = i64::from(min_ready_seconds);
            if ready_for >= needed {
                Availability::Available
            } else {
                Availability::AvailableIn(Duration::from_secs((needed - ready_for) as u64))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Availability {
    Unavailable,
    AvailableIn(Duration),
    Available,
}

/// Whether a pod still counts towards its controller's replicas.
pub(crate) fn is_active(pod: &Pod) -> bool {
    !is_terminating(&pod.metadata) && !matches!(pod_phase(pod), "Succeeded" | "Failed")
}

pub(crate) fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}

/// Keeps the earlier of two optional durations.
pub(crate) fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Re-reads the object a reconcile was triggered for, as a controller acting on fresh state
/// does. `None` (nothing to do) when it is gone, being deleted, or has no uid yet; otherwise the
/// object and its uid.
pub(crate) async fn live_object<K>(
    api: &Api<K>,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<Option<(K, String)>, SimError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let obj = api
        .get_opt(name)
        .await
        .map_err(|e| SimError::api(format!("get {kind} {ns}/{name}"), e))?;
    Ok(obj.and_then(|o| {
        if is_terminating(o.meta()) {
            return None;
        }
        let uid = o.meta().uid.clone()?;
        Some((o, uid))
    }))
}

/// The end of a controller's reconcile: writes `status` as the status of `name` when it differs
/// from `current`, then asks to run again after `requeue` (without one, when something changes).
pub(crate) async fn write_status<K, S>(
    api: &Api<K>,
    kind: &str,
    ns: &str,
    name: &str,
    current: Option<&S>,
    status: S,
    requeue: Option<Duration>,
) -> Result<Action, SimError>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current != Some(&status) {
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(|e| SimError::api(format!("update {kind} {ns}/{name} status"), e))?;
    }
    Ok(match requeue {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

/// Creates `pod` (named); `false` when a pod of that name already exists (the next reconcile
/// decides again).
pub(crate) async fn create_pod(api: &Api<Pod>, ns: &str, pod: &Pod) -> Result<bool, SimError> {
    match api.create(&PostParams::default(), pod).await {
        Ok(_) => Ok(true),
        Err(e) if is_status(&e, 409) => Ok(false),
        Err(e) => Err(SimError::api(
            format!("create pod {ns}/{}", pod.name_any()),
            e,
        )),
    }
}

/// Deletes the pod `name`, one of `pods`, with its uid as a precondition (a pod recreated under
/// the same name since is not deleted). `false` when it was already gone or replaced.
pub(crate) async fn delete_pod(
    api: &Api<Pod>,
    ns: &str,
    pods: &[Pod],
    name: &str,
) -> Result<bool, SimError> {
    let dp = DeleteParams {
        preconditions: pods
            .iter()
            .find(|p| p.name_any() == name)
            .and_then(|p| p.uid())
            .map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(true),
        Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(false),
        Err(e) => Err(SimError::api(format!("delete pod {ns}/{name}"), e)),
    }
}

/// List parameters that let the API server select the objects `selector` matches (its
/// `matchLabels` and `matchExpressions`, in label-selector syntax), so that a controller reads
/// its own objects, not every object of the namespace. No selector: every object.
pub(crate) fn list_selected(
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> kube::api::ListParams {
    let mut terms: Vec<String> = Vec::new();
    if let Some(sel) = selector {
        for (k, v) in sel.match_labels.iter().flatten() {
            terms.push(format!("{k}={v}"));
        }
        for e in sel.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default().join(",");
            match e.operator.as_str() {
                "In" => terms.push(format!("{} in ({values})", e.key)),
                "NotIn" => terms.push(format!("{} notin ({values})", e.key)),
                "Exists" => terms.push(e.key.clone()),
                "DoesNotExist" => terms.push(format!("!{}", e.key)),
                // Anything else is judged by the caller.
                _ => {}
            }
        }
    }
    if terms.is_empty() {
        kube::api::ListParams::default()
    } else {
        kube::api::ListParams::default().labels(&terms.join(","))
    }
}
