//! The simulated disruption controller: keeps PodDisruptionBudget status
//! (`currentHealthy`, `desiredHealthy`, `disruptionsAllowed`, `expectedPods`)
//! in line with the pods the budget selects.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::SimError;
use super::deployment::resolve;
use super::util::{is_pod_ready, is_terminating, list_selected, now_time};

/// `(desiredHealthy, disruptionsAllowed)` for a budget over `expected` pods of
/// which `healthy` are ready.
pub(crate) fn budget(
    min_available: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    expected: i32,
    healthy: i32,
) -> Result<(i32, i32), String> {
    let desired = if let Some(max) = max_unavailable {
        (expected - resolve(Some(max), "0", expected, true)?).max(0)
    } else if let Some(min) = min_available {
        resolve(Some(min), "0", expected, true)?
    } else {
        0
    };
    Ok((desired, (healthy - desired).max(0)))
}

/// Whether `labels` match the selector's `matchLabels` (a budget without a
/// selector, or with an empty one, selects nothing here).
pub(crate) fn selects(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = selector else { return false };
    let Some(want) = sel.match_labels.as_ref().filter(|m| !m.is_empty()) else {
        return false;
    };
    want.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub(crate) struct Ctx {
    pub client: Client,
}

pub(crate) async fn reconcile(
    obj: Arc<PodDisruptionBudget>,
    ctx: Arc<Ctx>,
) -> Result<Action, SimError> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let name = obj.name_any();
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(pdb) = api
        .get_opt(&name)
        .await
        .map_err(|e| SimError::api(format!("get poddisruptionbudget {ns}/{name}"), e))?
    else {
        return Ok(Action::await_change());
    };
    let spec = pdb.spec.clone().unwrap_or_default();
    let pods: Vec<Pod> = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
        .list(&list_selected(spec.selector.as_ref()))
        .await
        .map_err(|e| SimError::api(format!("list pods in {ns}"), e))?
        .items
        .into_iter()
        .filter(|p| selects(spec.selector.as_ref(), p.labels()))
        .collect();
    let expected = pods.len() as i32;
    let healthy = pods
        .iter()
        .filter(|p| !is_terminating(&p.metadata) && is_pod_ready(p))
        .count() as i32;
    let (desired, allowed) = budget(
        spec.min_available.as_ref(),
        spec.max_unavailable.as_ref(),
        expected,
        healthy,
    )
    .map_err(|m| SimError::Invalid(format!("poddisruptionbudget {ns}/{name}: {m}")))?;
    let old = pdb.status.clone().unwrap_or_default();
    let (cond_status, reason, message) = if allowed > 0 {
        ("True", "SufficientPods", "")
    } else {
        ("False", "InsufficientPods", "")
    };
    let previous = old
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionAllowed"));
    let condition = Condition {
        type_: "DisruptionAllowed".into(),
        status: cond_status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: pdb.metadata.generation,
        last_transition_time: previous
            .filter(|c| c.status == cond_status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(now_time),
    };
    let status = PodDisruptionBudgetStatus {
        observed_generation: pdb.metadata.generation,
        current_healthy: healthy,
        desired_healthy: desired,
        disruptions_allowed: allowed,
        expected_pods: expected,
        disrupted_pods: old.disrupted_pods.clone(),
        conditions: Some(vec![condition]),
    };
    if pdb.status.as_ref() != Some(&status) {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(|e| SimError::api(format!("update poddisruptionbudget {ns}/{name} status"), e))?;
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_follow_min_available_and_max_unavailable() {
        let int = IntOrString::Int;
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(budget(Some(&int(2)), None, 3, 3), Ok((2, 1)));
        assert_eq!(budget(Some(&int(2)), None, 3, 2), Ok((2, 0)));
        assert_eq!(budget(None, Some(&int(1)), 3, 3), Ok((2, 1)));
        assert_eq!(budget(None, Some(&int(1)), 3, 1), Ok((2, 0)));
        // Percentages round up.
        assert_eq!(budget(Some(&pct("50%")), None, 3, 3), Ok((2, 1)));
        assert_eq!(budget(None, Some(&pct("34%")), 3, 3), Ok((1, 2)));
        assert_eq!(budget(None, None, 3, 3), Ok((0, 3)));
        assert!(budget(Some(&pct("x")), None, 3, 3).is_err());
    }

    #[test]
    fn selection_uses_match_labels() {
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("x".to_string(), "1".to_string()),
        ]
        .into();
        let sel = |pairs: &[(&str, &str)]| LabelSelector {
            match_labels: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            match_expressions: None,
        };
        assert!(selects(Some(&sel(&[("app", "web")])), &labels));
        assert!(!selects(Some(&sel(&[("app", "db")])), &labels));
        assert!(!selects(Some(&sel(&[])), &labels));
        assert!(!selects(None, &labels));
    }
}
