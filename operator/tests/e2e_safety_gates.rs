//! End to end: the gates before each restart (safety checks against the pods' own HTTP APIs,
//! canary hold, soak time), with the real operator binary and real kubectl on the sandbox,
//! whose simulated pods answer the BookKeeper admin API and Pravega's health API and take
//! faults from annotations.

mod support;

use std::time::{Duration, Instant};

use support::*;

const WAIT: Duration = Duration::from_secs(60);

/// The sample cluster at `version` with `upgrade` as its `spec.upgrade` (YAML flow mapping).
fn sample(version: &str, upgrade: &str) -> String {
    sample_at(version).replace(
        "  upgrade:\n    timeout: 10m",
        &format!("  upgrade: {upgrade}"),
    )
}

async fn start(version: &str, upgrade: &str) -> (Env, Operator) {
    let env = Env::start().await;
    env.apply_yaml(TIER2_CLAIM).await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_yaml(&sample(version, upgrade)).await;
    wait_row(&env, version, "7").await;
    (env, op)
}

async fn wait_row(env: &Env, version: &str, ready: &str) {
    env.wait_cluster("example", &[("VERSION", version), ("READY MEMBERS", ready)])
        .await;
}

/// `reason: message` of `status.upgrade.blockedBy`.
async fn blocker(env: &Env) -> String {
    env.jsonpath(
        &["pravegacluster", "example"],
        "{.status.upgrade.blockedBy.reason}: {.status.upgrade.blockedBy.message}",
    )
    .await
}

async fn wait_blocker(env: &Env, reason: &str) -> String {
    eventually(&format!("blocked by {reason}"), WAIT, || async {
        let b = blocker(env).await;
        if b.starts_with(&format!("{reason}:")) {
            Ok(b)
        } else {
            Err(b)
        }
    })
    .await
}

/// `version uid` of a pod.
async fn pod(env: &Env, name: &str) -> String {
    env.kubectl(&[
        "get",
        "pod",
        name,
        "-o",
        r#"jsonpath={.metadata.labels.pravega\.pravega\.io/version} {.metadata.uid}"#,
    ])
    .await
    .stdout
}

async fn events(env: &Env) -> String {
    env.jsonpath(
        &[
            "events",
            "--field-selector",
            "involvedObject.kind=PravegaCluster",
        ],
        r#"{range .items[*]}{.type} {.reason} {.message}{"\n"}{end}"#,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_replicated_ledgers_hold_the_bookie_restart_until_they_clear() {
    let (env, op) = start("0.9.0", "{timeout: 10m}").await;
    // BookKeeper reports 3 under-replicated ledgers (cluster-wide, whichever bookie is asked).
    env.kubectl_ok(&[
        "annotate",
        "pod",
        "example-bookie-2",
        "sandbox.pravega.io/under-replicated-ledgers=3",
    ])
    .await;
    let bookie0 = pod(&env, "example-bookie-0").await;
    env.set_version("example", "0.10.0").await;
    let b = wait_blocker(&env, "SafetyCheckFailed").await;
    assert!(
        b.contains("safety check NoUnderReplicatedLedgers fails: BookKeeper lists 3 under-replicated ledger(s)"),
        "{b}"
    );
    // kubectl describe shows the blocker and the condition names it.
    let describe = env
        .kubectl_ok(&["describe", "pravegacluster", "example"])
        .await;
    assert!(describe.contains("Blocked By"), "{describe}");
    assert!(describe.contains("SafetyCheckFailed"), "{describe}");
    let ev = events(&env).await;
    assert!(
        ev.lines()
            .any(|l| l.starts_with("Warning UpgradeBlocked")
                && l.contains("NoUnderReplicatedLedgers")),
        "{ev}"
    );
    assert!(
        op.log()
            .contains("upgrading waits: safety check NoUnderReplicatedLedgers fails")
    );
    assert!(
        op.metric(r#"pravega_operator_upgrade_blocked{namespace="default",cluster="example",reason="SafetyCheckFailed"}"#)
            .await
            == 1.0
    );
    // Nothing was restarted meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pod(&env, "example-bookie-0").await, bookie0);

    // The ledgers heal: the pod's change wakes the operator, which restarts bookie-0 at once,
    // sooner than its 5 s re-check of a blocked step.
    env.kubectl_ok(&[
        "annotate",
        "pod",
        "example-bookie-2",
        "sandbox.pravega.io/under-replicated-ledgers-",
    ])
    .await;
    let cleared = Instant::now();
    eventually("bookie-0 replaced", WAIT, || async {
        let now = pod(&env, "example-bookie-0").await;
        if now != bookie0 { Ok(()) } else { Err(now) }
    })
    .await;
    let took = cleared.elapsed();
    assert!(
        took < Duration::from_millis(4500),
        "resumed after {took:?}: polled, not woken by the pod's change"
    );
    wait_row(&env, "0.10.0", "7").await;
    assert_eq!(blocker(&env).await, ": ");
    op.terminate().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_holds_after_one_pod_then_an_unreachable_check_fails_the_upgrade() {
    let (env, op) = start("0.9.0", "{timeout: 10s, pauseAfterPods: 1}").await;
    env.set_version("example", "0.10.0").await;
    // Stops after bookie-0.
    let b = wait_blocker(&env, "CanaryHold").await;
    assert!(b.contains("raise or remove it to continue"), "{b}");
    assert!(pod(&env, "example-bookie-0").await.starts_with("0.10.0 "));
    // Held past the timeout: a canary hold is a decision, not a failure.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(pod(&env, "example-bookie-1").await.starts_with("0.9.0 "));
    let upgrading = env
        .jsonpath(
            &["pravegacluster", "example"],
            r#"{.status.conditions[?(@.type=="Upgrading")].reason}"#,
        )
        .await;
    assert_eq!(upgrading, "CanaryHold");
    // kubectl get still shows the desired version.
    let row = env.cluster_row("example").await.expect("row");
    assert_eq!(col(&row, "DESIRED VERSION"), "0.10.0");

    // Every bookie's admin API stops answering, then the hold is released: the next restart
    // waits for its checks, and after spec.upgrade.timeout the upgrade fails naming them.
    for i in 0..3 {
        env.kubectl_ok(&[
            "annotate",
            "pod",
            &format!("example-bookie-{i}"),
            "sandbox.pravega.io/unreachable=true",
        ])
        .await;
    }
    env.patch_cluster(
        "example",
        "json",
        r#"[{"op":"remove","path":"/spec/upgrade/pauseAfterPods"}]"#,
    )
    .await;
    wait_blocker(&env, "SafetyCheckUnreachable").await;
    let error = wait_error(&env, "example", "True UpgradeFailed", WAIT).await;
    assert!(
        error.contains("failed to sync bookkeeper version. no progress for 10s; safety check NoUnderReplicatedLedgers cannot be run: the bookie admin API of pod example-bookie-"),
        "{error}"
    );
    assert!(
        error.to_lowercase().contains("connection refused"),
        "{error}"
    );
    assert!(pod(&env, "example-bookie-1").await.starts_with("0.9.0 "));
    op.terminate().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replacement_that_crashes_within_its_soak_time_fails_the_upgrade() {
    let (env, op) = start("0.4.0", "{timeout: 1m, podStabilization: 2s}").await;
    env.set_version("example", "0.5.0").await;
    // The pod may be between its deletion and its replacement: not found is not yet.
    env.wait_jsonpath(
        "bookie-0 at 0.5.0 and Ready",
        WAIT,
        &["pod", "example-bookie-0"],
        r#"{.metadata.labels.pravega\.pravega\.io/version} {.status.conditions[?(@.type=="Ready")].status}"#,
        |ready| ready == "0.5.0 True",
    )
    .await;
    // It soaks: bookie-1 waits.
    let b = wait_blocker(&env, "Soaking").await;
    assert!(
        b.starts_with("Soaking: pod example-bookie-0 must stay Ready"),
        "{b}"
    );
    // Within its soak time the new bookie crashes once and comes back.
    let sim = env.sim.as_ref().expect("simulation");
    sim.fail_image(
        regex::Regex::new(r"bookkeeper:0\.5\.0$").expect("regex"),
        pravega_sandbox::sim::FailureMode::CrashLoop,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.clear_failures();
    let error = wait_error(&env, "example", "True UpgradeFailed", WAIT).await;
    assert!(
        error.contains("failed to sync bookkeeper version. pod example-bookie-0"),
        "{error}"
    );
    // bookie-1 was never restarted.
    assert!(pod(&env, "example-bookie-1").await.starts_with("0.4.0 "));
    op.terminate().await;
    env.shutdown().await;
}
