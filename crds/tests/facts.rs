//! The status facts the version rules decide on must say exactly what the typed status says:
//! the webhook reads only them from the old object, the operator the whole object.

use pravega_crds::{
    ConditionStatus, ConditionType, DenyReason, PravegaClusterSpec, PravegaClusterStatus, reasons,
    validate_update,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn maybe<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(s)
}

fn condition() -> impl Strategy<Value = (ConditionType, ConditionStatus, Option<&'static str>)> {
    (
        prop::sample::select(ConditionType::ALL.to_vec()),
        prop_oneof![
            Just(ConditionStatus::True),
            Just(ConditionStatus::False),
            Just(ConditionStatus::Unknown)
        ],
        maybe(prop_oneof![
            Just(reasons::UPGRADE_FAILED),
            Just(reasons::ROLLBACK_FAILED),
            Just(reasons::IN_PROGRESS),
        ]),
    )
}

proptest! {
    #[test]
    fn status_facts_say_what_the_conditions_say(
        conditions in proptest::collection::vec(condition(), 0..8),
        current in maybe(Just("0.4.0".to_owned())),
        target in maybe(Just("0.5.0".to_owned())),
    ) {
        let status: PravegaClusterStatus = serde_json::from_value(json!({
            "currentVersion": current,
            "targetVersion": target,
            "conditions": conditions.iter().map(|(t, s, r)| json!({"type": t, "status": s, "reason": r})).collect::<Vec<_>>(),
        })).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let facts = status.facts();
        prop_assert_eq!(facts.current_version, current.as_deref());
        prop_assert_eq!(facts.target_version, target.as_deref());
        prop_assert_eq!(facts.upgrading, status.is_condition_true(ConditionType::Upgrading));
        prop_assert_eq!(facts.rolling_back, status.is_condition_true(ConditionType::RollbackInProgress));
        prop_assert_eq!(facts.upgrade_failed, status.has_error_reason(reasons::UPGRADE_FAILED));
    }
}

fn spec(value: Value) -> PravegaClusterSpec {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("spec: {e}"))
}

#[test]
fn an_object_stored_before_a_rule_existed_can_be_kept_but_not_changed_further() {
    let broken = spec(json!({"version": "0.5.0", "upgrade": {"timeout": "ten minutes"}}));
    assert!(validate_update(&broken, None, &broken).is_allowed());
    let mut edited = broken.clone();
    edited.bookkeeper.replicas = 4;
    assert_eq!(
        validate_update(&broken, None, &edited).reason(),
        Some(DenyReason::InvalidSpec)
    );
    // An unchanged, already invalid version is not this change's fault.
    let old_version = spec(json!({"version": "latest"}));
    let mut scaled = old_version.clone();
    scaled.bookkeeper.replicas = 4;
    assert!(validate_update(&old_version, None, &scaled).is_allowed());
}
