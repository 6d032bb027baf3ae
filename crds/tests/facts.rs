//! The facts the version rules decide on, read from a spec's JSON, must be exactly what the
//! typed spec says: the webhook reads only them, the operator the whole object.

use std::convert::Infallible;

use pravega_crds::{
    ConditionStatus, ConditionType, Decision, DenyReason, PravegaClusterSpec, PravegaClusterStatus,
    SpecFacts, reasons, validate_update_facts,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// A string as users write them, sometimes with characters JSON escapes.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("pravega/pravega".to_owned()),
        Just("0.5.0".to_owned()),
        Just("10m".to_owned()),
        Just(String::new()),
        "[a-z0-9./:@-]{1,20}",
        "[a-z\"\\\\é\n]{1,8}",
    ]
}

fn maybe<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(s)
}

fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    let mut map = Map::new();
    for (k, v) in fields {
        if let Some(v) = v {
            map.insert(k.to_owned(), v);
        }
    }
    Value::Object(map)
}

/// An image: absent, without a repository (invalid), or with one and maybe a pull policy.
fn image() -> impl Strategy<Value = Option<Value>> {
    maybe(prop_oneof![
        Just(json!({})),
        (text(), maybe(Just("Always"))).prop_map(|(repository, pull)| object(vec![
            ("repository", Some(json!(repository))),
            ("pullPolicy", pull.map(|p| json!(p))),
        ])),
    ])
}

fn spec_json() -> impl Strategy<Value = Value> {
    (
        maybe(text()),
        maybe(text()),
        maybe((
            maybe(-1i32..6),
            image(),
            maybe(Just(json!({"journalDirectories": "/bk"}))),
        )),
        maybe((
            maybe(-1i32..4),
            maybe(0i32..6),
            image(),
            maybe(Just(json!({"a": "b"}))),
        )),
        maybe((maybe(text()), maybe(any::<bool>()))),
    )
        .prop_map(|(version, zk, bk, pravega, upgrade)| {
            object(vec![
                ("version", version.map(|v| json!(v))),
                ("zookeeperUri", zk.map(|v| json!(v))),
                (
                    "bookkeeper",
                    bk.map(|(replicas, image, options)| {
                        object(vec![
                            ("replicas", replicas.map(|r| json!(r))),
                            ("image", image),
                            ("options", options),
                        ])
                    }),
                ),
                (
                    "pravega",
                    pravega.map(|(controllers, stores, image, options)| {
                        object(vec![
                            ("controllerReplicas", controllers.map(|r| json!(r))),
                            ("segmentStoreReplicas", stores.map(|r| json!(r))),
                            ("image", image),
                            ("options", options),
                        ])
                    }),
                ),
                (
                    "upgrade",
                    upgrade.map(|(timeout, paused)| {
                        object(vec![
                            ("timeout", timeout.map(|t| json!(t))),
                            ("paused", paused.map(|p| json!(p))),
                        ])
                    }),
                ),
            ])
        })
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
    fn spec_facts_read_from_json_are_the_typed_specs_facts(spec in spec_json()) {
        let text = spec.to_string();
        let typed = serde_json::from_str::<PravegaClusterSpec>(&text);
        let read = serde_json::from_str::<SpecFacts<'_>>(&text);
        match (&typed, &read) {
            (Ok(typed), Ok(read)) => prop_assert_eq!(&typed.facts(), read),
            // Both refuse the same documents: no version, or an image without a repository.
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "{text}: typed {typed:?}, read {read:?}"),
        }
    }

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

/// `validate_update_facts` with a spec comparison that must not be asked for.
fn decide_without_comparing(old: &str, new: &PravegaClusterSpec) -> Decision {
    let Ok(decision) = validate_update_facts::<Infallible>(
        old,
        || panic!("the whole spec was compared although the rules did not need it"),
        None,
        &new.facts(),
    );
    decision
}

#[test]
fn the_whole_spec_is_compared_only_when_the_version_is_unchanged_and_the_rest_breaks_a_rule() {
    // A version change, valid or not, and an unchanged version with a valid spec: no comparison.
    assert!(decide_without_comparing("0.4.0", &spec(json!({"version": "0.5.0"}))).is_allowed());
    assert!(!decide_without_comparing("0.4.0", &spec(json!({"version": "0.5"}))).is_allowed());
    assert!(decide_without_comparing("0.5.0", &spec(json!({"version": "0.5.0"}))).is_allowed());

    // An unchanged version with a broken timeout: the comparison decides, and its error is
    // passed through.
    let broken = spec(json!({"version": "0.5.0", "upgrade": {"timeout": "ten minutes"}}));
    let decide = |unchanged: Result<bool, &'static str>| {
        validate_update_facts("0.5.0", || unchanged, None, &broken.facts())
    };
    assert!(matches!(decide(Ok(true)), Ok(Decision::Allow { .. })));
    assert!(matches!(
        decide(Ok(false)),
        Ok(Decision::Deny {
            reason: DenyReason::InvalidSpec,
            ..
        })
    ));
    assert!(matches!(decide(Err("cannot tell")), Err("cannot tell")));
}
