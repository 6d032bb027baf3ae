//! The version rules, as users meet them through the webhook and the operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use pravega_crds::version::precedence;
use pravega_crds::{
    ConditionStatus, ConditionType, Decision, DenyReason, PravegaCluster, PravegaClusterSpec,
    PravegaClusterStatus, parse_version, reasons, validate_create, validate_update,
    validate_version_change,
};
use proptest::prelude::*;
use semver::Version;

fn spec(version: &str) -> PravegaClusterSpec {
    serde_json::from_value(serde_json::json!({ "version": version }))
        .unwrap_or_else(|e| panic!("spec: {e}"))
}

fn cluster(version: &str, status: Option<PravegaClusterStatus>) -> PravegaCluster {
    PravegaCluster {
        metadata: ObjectMeta {
            name: Some("example".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: spec(version),
        status,
    }
}

fn now() -> Time {
    Time(Timestamp::UNIX_EPOCH)
}

/// A status as the operator writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Converged at `current`.
    Idle,
    /// `Upgrading` True from current to target.
    Upgrading,
    /// `RollbackInProgress` True from target back to current.
    RollingBack,
    /// `Error` True, reason UpgradeFailed, target still set.
    UpgradeFailed,
    /// `Error` True, reason RollbackFailed.
    RollbackFailed,
}

fn status(state: State, current: &str, target: Option<&str>) -> PravegaClusterStatus {
    let mut s = PravegaClusterStatus {
        current_version: Some(current.to_owned()),
        target_version: target.map(str::to_owned),
        version_history: vec![current.to_owned()],
        ..PravegaClusterStatus::default()
    };
    let t = now();
    s.set_condition(ConditionType::PodsReady, ConditionStatus::True, "", "", &t);
    let upgrading = state == State::Upgrading;
    s.set_condition(
        ConditionType::Upgrading,
        ConditionStatus::from_bool(upgrading),
        "",
        "",
        &t,
    );
    match state {
        State::UpgradeFailed => {
            s.set_condition(
                ConditionType::Error,
                ConditionStatus::True,
                reasons::UPGRADE_FAILED,
                "failed to sync bookkeeper version. pod example-bookie-0 is restarting",
                &t,
            );
        }
        State::RollbackFailed => {
            s.set_condition(
                ConditionType::Error,
                ConditionStatus::True,
                reasons::ROLLBACK_FAILED,
                "rollback failed",
                &t,
            );
        }
        State::RollingBack => {
            s.set_condition(
                ConditionType::RollbackInProgress,
                ConditionStatus::True,
                reasons::IN_PROGRESS,
                "",
                &t,
            );
            s.set_condition(
                ConditionType::Error,
                ConditionStatus::True,
                reasons::UPGRADE_FAILED,
                "failed",
                &t,
            );
        }
        State::Idle | State::Upgrading => {
            s.set_condition(ConditionType::Error, ConditionStatus::False, "", "", &t);
        }
    }
    s
}

fn update(from: &str, to: &str, st: Option<PravegaClusterStatus>) -> Decision {
    let old = cluster(from, st);
    let mut new = old.clone();
    new.spec.version = to.to_owned();
    validate_update(
        &old.spec,
        old.status.as_ref().map(PravegaClusterStatus::facts),
        &new.spec,
    )
}

fn denied(d: &Decision) -> (DenyReason, String) {
    match d {
        Decision::Deny { reason, message } => (*reason, message.clone()),
        Decision::Allow { .. } => panic!("expected a denial, got {d:?}"),
    }
}

// ---- invalid versions -------------------------------------------------------------------------

#[test]
fn invalid_versions_are_denied_with_the_parse_error_and_an_example() {
    for bad in [
        "0.5",
        "v0.5.0",
        "latest",
        "0.5.0.1",
        "01.5.0",
        "0.5.0-",
        " 0.5.0",
        "0.5.x",
        "¯\\_(ツ)_/¯",
    ] {
        let (reason, message) = denied(&update(
            "0.4.0",
            bad,
            Some(status(State::Idle, "0.4.0", None)),
        ));
        assert_eq!(reason, DenyReason::InvalidVersion, "{bad}");
        assert!(
            message.contains("is not a valid semantic version"),
            "{bad}: {message}"
        );
        assert!(message.contains("e.g. \"0.5.0\""), "{bad}: {message}");
        assert!(
            message.contains(bad.trim()),
            "message should quote the input: {message}"
        );
    }
}

#[test]
fn invalid_versions_say_what_to_change() {
    for (bad, says) in [
        // A leading v gets a hint.
        ("v0.5.0", "drop the leading \"v\""),
        ("", "spec.version is empty"),
        // Build metadata cannot be an image tag: the version without it is suggested.
        ("0.5.0+build.7", "\"0.5.0\""),
    ] {
        let (reason, message) = denied(&update("0.4.0", bad, None));
        assert_eq!(reason, DenyReason::InvalidVersion, "{bad:?}");
        assert!(message.contains(says), "{bad:?}: {message}");
    }
}

#[test]
fn very_long_version_is_denied_without_echoing_it_all() {
    let long = format!("0.5.0-{}", "a".repeat(10_000));
    let (reason, message) = denied(&update("0.4.0", &long, None));
    assert_eq!(reason, DenyReason::InvalidVersion);
    assert!(
        message.len() < 400,
        "message too long: {} chars",
        message.len()
    );
    let long_garbage = "x".repeat(100);
    let (_, message) = denied(&update("0.4.0", &long_garbage, None));
    assert!(message.len() < 400 && message.contains('…'), "{message}");
}

// ---- ordering -----------------------------------------------------------------------------------

#[test]
fn downgrades_by_major_minor_patch_and_pre_release_are_denied_naming_both_versions() {
    for (current, lower) in [
        ("1.0.0", "0.9.9"),
        ("0.5.0", "0.4.0"),
        ("0.5.1", "0.5.0"),
        ("0.5.0", "0.5.0-1"),
        ("0.5.0-2", "0.5.0-1"),
        ("0.5.0-beta", "0.5.0-alpha"),
    ] {
        let (reason, message) = denied(&update(
            current,
            lower,
            Some(status(State::Idle, current, None)),
        ));
        assert_eq!(reason, DenyReason::Downgrade);
        assert_eq!(
            message,
            format!(
                "downgrading the cluster from {current} to {lower} is not supported; spec.version must be {current} or higher"
            )
        );
    }
}

#[test]
fn the_guides_downgrade_message() {
    let (_, message) = denied(&update(
        "0.5.0",
        "0.4.0",
        Some(status(State::Idle, "0.5.0", None)),
    ));
    assert!(message.starts_with("downgrading the cluster from 0.5.0 to 0.4.0 is not supported"));
}

#[test]
fn upgrades_are_allowed() {
    for (current, higher) in [("0.4.0", "0.5.0"), ("0.5.0-1", "0.5.0"), ("0.5.0", "0.6.3")] {
        let d = update(current, higher, Some(status(State::Idle, current, None)));
        assert_eq!(
            d,
            Decision::Allow { warnings: vec![] },
            "{current} -> {higher}"
        );
    }
    // A pre-release, or more than one minor version at once: allowed, with a warning.
    for (current, higher, warning) in [
        (
            "0.4.0",
            "0.5.0-1",
            "spec.version 0.5.0-1 is a pre-release of 0.5.0",
        ),
        (
            "0.5.0-1",
            "0.5.0-2",
            "spec.version 0.5.0-2 is a pre-release of 0.5.0",
        ),
        (
            "0.5.0",
            "0.13.0",
            "spec.version goes from 0.5.0 to 0.13.0, skipping 0.6, 0.7, 0.8, 0.9, 0.10, 0.11, 0.12",
        ),
    ] {
        let d = update(current, higher, Some(status(State::Idle, current, None)));
        let Decision::Allow { warnings } = d else {
            panic!("{current} -> {higher} refused: {d:?}");
        };
        assert_eq!(warnings.len(), 1, "{current} -> {higher}: {warnings:?}");
        assert!(warnings[0].starts_with(warning), "{warnings:?}");
    }
    // A version newer than the image contracts the operator knows is allowed, with a warning.
    let d = update("0.5.0", "1.0.0", Some(status(State::Idle, "0.5.0", None)));
    let Decision::Allow { warnings } = d else {
        panic!("1.0.0 refused: {d:?}");
    };
    assert_eq!(
        warnings,
        [
            "spec.version goes from 0.5.0 to 1.0.0, a new major version: read the release notes of every version in between; upgrades are tested one minor version at a time",
            "spec.version 1.0.0 is outside the versions this operator knows (0.4 to 0.13); its pods are built as for 0.11 – 0.13"
        ]
    );
}

#[test]
fn decisions_use_the_old_status_not_the_old_spec() {
    // spec was already moved to 0.6.0 but the cluster still runs 0.5.0: 0.5.1 is an upgrade.
    assert!(update("0.6.0", "0.5.1", Some(status(State::Idle, "0.5.0", None))).is_allowed());
}

#[test]
fn unchanged_version_with_other_spec_changes_is_allowed_even_mid_upgrade() {
    let old = cluster(
        "0.5.0",
        Some(status(State::Upgrading, "0.4.0", Some("0.5.0"))),
    );
    let mut new = old.clone();
    new.spec.pravega.segment_store_replicas = 4;
    assert!(
        validate_update(
            &old.spec,
            old.status.as_ref().map(PravegaClusterStatus::facts),
            &new.spec
        )
        .is_allowed()
    );
}

#[test]
fn unchanged_but_invalid_spec_part_is_denied() {
    let old = cluster("0.5.0", None);
    let mut new = old.clone();
    new.spec.upgrade.timeout = "ten minutes".into();
    let (reason, message) = denied(&validate_update(
        &old.spec,
        old.status.as_ref().map(PravegaClusterStatus::facts),
        &new.spec,
    ));
    assert_eq!(reason, DenyReason::InvalidSpec);
    assert!(message.contains("spec.upgrade.timeout"), "{message}");
}

// ---- status states ------------------------------------------------------------------------------

#[test]
fn no_status_yet_allows_any_valid_version() {
    assert!(update("0.5.0", "0.4.0", None).is_allowed());
    assert!(update("0.4.0", "0.6.0", None).is_allowed());
    assert!(!update("0.4.0", "0.6", None).is_allowed());
}

#[test]
fn version_change_while_upgrading_is_denied_naming_the_versions_in_flight() {
    let (reason, message) = denied(&update(
        "0.5.0",
        "0.6.0",
        Some(status(State::Upgrading, "0.4.0", Some("0.5.0"))),
    ));
    assert_eq!(reason, DenyReason::UpgradeInProgress);
    assert!(message.contains("0.6.0"), "{message}");
    assert!(
        message.contains("upgrading from 0.4.0 to 0.5.0"),
        "{message}"
    );
    assert!(
        message.contains("spec.version must stay 0.5.0"),
        "{message}"
    );
    // Even back to the current version: aborting mid-upgrade is not a supported transition.
    let (reason, _) = denied(&update(
        "0.5.0",
        "0.4.0",
        Some(status(State::Upgrading, "0.4.0", Some("0.5.0"))),
    ));
    assert_eq!(reason, DenyReason::UpgradeInProgress);
}

#[test]
fn version_change_while_rolling_back_is_denied() {
    let (reason, message) = denied(&update(
        "0.4.0",
        "0.6.0",
        Some(status(State::RollingBack, "0.4.0", Some("0.5.0"))),
    ));
    assert_eq!(reason, DenyReason::RollbackInProgress);
    assert!(
        message.contains("rolling back from 0.4.0 to 0.5.0"),
        "{message}"
    );
}

#[test]
fn after_a_failed_upgrade_rollback_to_current_is_allowed_with_a_warning() {
    let d = update(
        "0.5.0",
        "0.4.0",
        Some(status(State::UpgradeFailed, "0.4.0", Some("0.5.0"))),
    );
    match d {
        Decision::Allow { warnings } => {
            assert_eq!(warnings.len(), 1);
            assert!(warnings[0].contains("rolling back"), "{warnings:?}");
            assert!(warnings[0].contains("0.4.0"), "{warnings:?}");
        }
        other => panic!("expected allow, got {other:?}"),
    }
}

#[test]
fn after_a_failed_upgrade_retry_and_roll_forward_are_allowed_but_not_below_current() {
    // Retry: spec was moved away and back to the failed target.
    let st = status(State::UpgradeFailed, "0.4.0", Some("0.5.0"));
    let retry = validate_version_change(Some(st.facts()), "0.5.0");
    assert!(
        matches!(&retry, Decision::Allow { warnings } if warnings.iter().any(|w| w.contains("retrying"))),
        "{retry:?}"
    );
    assert!(update("0.5.0", "0.5.1", Some(st.clone())).is_allowed());
    let (reason, message) = denied(&update("0.5.0", "0.3.0", Some(st)));
    assert_eq!(reason, DenyReason::Downgrade);
    assert!(
        message.contains("set it to 0.4.0 to roll back"),
        "{message}"
    );
}

#[test]
fn after_a_failed_rollback_versions_not_below_current_are_allowed() {
    let st = status(State::RollbackFailed, "0.4.0", Some("0.5.0"));
    assert!(update("0.5.0", "0.4.0", Some(st.clone())).is_allowed());
    assert!(!update("0.5.0", "0.3.9", Some(st)).is_allowed());
}

// ---- create -------------------------------------------------------------------------------------

#[test]
fn create_checks_version_and_basic_sanity() {
    assert!(validate_create(&cluster("0.4.0", None).spec).is_allowed());
    assert_eq!(
        validate_create(&cluster("0.4", None).spec).reason(),
        Some(DenyReason::InvalidVersion)
    );
    let mut c = cluster("0.4.0", None);
    c.spec.bookkeeper.replicas = 0;
    let d = validate_create(&c.spec);
    assert_eq!(d.reason(), Some(DenyReason::InvalidSpec));
    assert!(
        d.message()
            .unwrap_or_default()
            .contains("spec.bookkeeper.replicas is 0")
    );
    let mut c = cluster("0.4.0", None);
    c.spec.pravega.image.repository = "pravega/pravega:0.4.0".into();
    assert!(
        validate_create(&c.spec)
            .message()
            .unwrap_or_default()
            .contains("without a tag")
    );
    let mut c = cluster("0.4.0", None);
    c.spec.bookkeeper.image.repository = "registry.local:5000/pravega/bookkeeper".into();
    assert!(
        validate_create(&c.spec).is_allowed(),
        "a registry port is not a tag"
    );
}

// ---- properties ---------------------------------------------------------------------------------

fn version_strategy() -> impl Strategy<Value = Version> {
    (
        0u64..4,
        0u64..4,
        0u64..4,
        prop::option::of(prop_oneof![
            Just("1"),
            Just("2"),
            Just("alpha"),
            Just("alpha.1"),
            Just("rc.10")
        ]),
    )
        .prop_map(|(a, b, c, pre)| {
            let s = match pre {
                Some(p) => format!("{a}.{b}.{c}-{p}"),
                None => format!("{a}.{b}.{c}"),
            };
            Version::parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"))
        })
}

fn state_strategy() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::Idle),
        Just(State::Upgrading),
        Just(State::RollingBack),
        Just(State::UpgradeFailed),
        Just(State::RollbackFailed)
    ]
}

proptest! {
    #[test]
    fn parse_never_panics_and_accepts_only_tag_safe_semver(input in ".{0,200}") {
        if let Ok(v) = parse_version(&input) {
            prop_assert!(v.build.is_empty());
            prop_assert_eq!(v.to_string(), input);
        }
    }

    #[test]
    fn decision_matches_the_table(current in version_strategy(), desired in version_strategy(), old_spec in version_strategy(), state in state_strategy()) {
        prop_assume!(old_spec != desired);
        let (cur, des) = (current.to_string(), desired.to_string());
        let st = status(state, &cur, Some(&old_spec.to_string()));
        let d = update(&old_spec.to_string(), &des, Some(st));
        let ord = precedence(&desired, &current);
        match state {
            State::Upgrading => prop_assert_eq!(d.reason(), Some(DenyReason::UpgradeInProgress)),
            State::RollingBack => prop_assert_eq!(d.reason(), Some(DenyReason::RollbackInProgress)),
            _ if ord == std::cmp::Ordering::Less => {
                prop_assert_eq!(d.reason(), Some(DenyReason::Downgrade));
                let msg = d.message().unwrap_or_default();
                prop_assert!(msg.contains(&cur) && msg.contains(&des), "{}", msg);
            }
            _ => prop_assert!(d.is_allowed(), "{:?}", d),
        }
        // Deterministic: the same question gets the same answer.
        let again = update(&old_spec.to_string(), &des, Some(status(state, &cur, Some(&old_spec.to_string()))));
        prop_assert_eq!(d, again);
    }

    #[test]
    fn precedence_is_a_total_order_consistent_with_semver_without_build(a in version_strategy(), b in version_strategy()) {
        prop_assert_eq!(precedence(&a, &b), a.cmp(&b));
        prop_assert_eq!(precedence(&a, &b), precedence(&b, &a).reverse());
    }
}

// ---- replica changes ----------------------------------------------------------------------------

#[test]
fn unusual_replica_changes_are_allowed_with_a_warning() {
    let old = cluster("0.5.0", Some(status(State::Idle, "0.5.0", None)));
    let facts = old.status.as_ref().map(PravegaClusterStatus::facts);
    let warnings = |edit: &dyn Fn(&mut PravegaClusterSpec)| {
        let mut new = old.spec.clone();
        edit(&mut new);
        match validate_update(&old.spec, facts, &new) {
            Decision::Allow { warnings } => warnings,
            d => panic!("refused: {d:?}"),
        }
    };
    assert_eq!(
        warnings(&|s| s.bookkeeper.replicas = 4),
        Vec::<String>::new()
    );
    let w = warnings(&|s| s.pravega.segment_store_replicas = 40);
    assert!(w[0].contains("goes from 1 to 40 at once"), "{w:?}");
    let w = warnings(&|s| s.bookkeeper.replicas = 2);
    assert!(
        w[0].contains("below the BookKeeper ensemble size 3"),
        "{w:?}"
    );
    let refused = {
        let mut new = old.spec.clone();
        new.bookkeeper.replicas = 1_000_000;
        validate_update(&old.spec, facts, &new)
    };
    assert_eq!(refused.reason(), Some(DenyReason::InvalidSpec));

    // A scale-up after a failed upgrade: allowed, with a warning saying what the new pods run.
    let failed = status(State::UpgradeFailed, "0.5.0", Some("0.6.0"));
    let mut new = old.spec.clone();
    new.bookkeeper.replicas = 4;
    let Decision::Allow { warnings } = validate_update(&old.spec, Some(failed.facts()), &new)
    else {
        panic!("scale-up refused");
    };
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "the last upgrade failed: new bookies and Segment Stores start at status.currentVersion"
        )),
        "{warnings:?}"
    );
}

#[test]
fn a_paused_upgrade_may_be_cancelled_by_setting_the_version_back() {
    let st = status(State::Upgrading, "0.4.0", Some("0.5.0"));
    let old = cluster("0.5.0", Some(st.clone()));
    let mut new = old.spec.clone();
    new.version = "0.4.0".to_owned();
    // Not paused: still refused mid-upgrade.
    let d = validate_update(&old.spec, Some(st.facts()), &new);
    assert_eq!(d.reason(), Some(DenyReason::UpgradeInProgress));
    // Paused: a cancel, with a warning that says what happens.
    new.upgrade.paused = true;
    let Decision::Allow { warnings } = validate_update(&old.spec, Some(st.facts()), &new) else {
        panic!("a paused upgrade could not be cancelled");
    };
    assert!(
        warnings[0].starts_with("cancelling the paused upgrade to 0.5.0"),
        "{warnings:?}"
    );
    // Anything else while paused is still refused.
    new.version = "0.6.0".to_owned();
    let d = validate_update(&old.spec, Some(st.facts()), &new);
    assert_eq!(d.reason(), Some(DenyReason::UpgradeInProgress));
}

#[test]
fn an_update_that_skips_a_minor_version_or_targets_a_pre_release_is_allowed_with_a_warning() {
    let st = status(State::Idle, "0.4.0", None);
    let old = cluster("0.4.0", Some(st.clone()));
    let update = |version: &str| {
        let mut new = old.spec.clone();
        new.version = version.to_owned();
        match validate_update(&old.spec, Some(st.facts()), &new) {
            Decision::Allow { warnings } => warnings,
            d => panic!("{version} refused: {d:?}"),
        }
    };
    let w = update("0.6.0");
    assert_eq!(
        w,
        vec![
            "spec.version goes from 0.4.0 to 0.6.0, skipping 0.5: upgrades are tested one minor version at a time; consider upgrading to 0.5 first"
        ]
    );
    assert!(update("0.5.0").is_empty());
    let w = update("0.5.0-rc1");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("is a pre-release"), "{w:?}");

    // The jump is measured from what runs (status.currentVersion), not from the old spec.
    let failed = status(State::UpgradeFailed, "0.4.0", Some("0.5.0"));
    let old = cluster("0.5.0", Some(failed.clone()));
    let mut new = old.spec.clone();
    new.version = "0.6.0".to_owned();
    let Decision::Allow { warnings } = validate_update(&old.spec, Some(failed.facts()), &new)
    else {
        panic!("roll forward refused");
    };
    assert!(
        warnings.iter().any(|w| w.contains("from 0.4.0 to 0.6.0")),
        "{warnings:?}"
    );
    // A rollback is not a jump.
    new.version = "0.4.0".to_owned();
    let Decision::Allow { warnings } = validate_update(&old.spec, Some(failed.facts()), &new)
    else {
        panic!("rollback refused");
    };
    assert!(
        !warnings.iter().any(|w| w.contains("skipping")),
        "{warnings:?}"
    );
}
