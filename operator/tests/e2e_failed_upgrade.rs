//! End to end: a failed upgrade is reported (condition, Event, log) and rolled back by setting
//! `spec.version` back, with the real operator binary on the sandbox.

mod support;

use std::time::Duration;

use pravega_sandbox::sim::FailureMode;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_looping_bookie_fails_the_upgrade_and_setting_the_version_back_rolls_back() {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &["--log-json"]).await;
    env.apply_file("deploy/sample/pravegacluster.yaml").await;
    env.wait_row("example", "0.4.0 with 7 ready members", WAIT, |row| {
        col(row, "VERSION") == "0.4.0" && col(row, "READY MEMBERS") == "7"
    })
    .await;

    env.sim.as_ref().unwrap().fail_image(
        regex::Regex::new(r":0\.5\.0$").unwrap(),
        FailureMode::CrashLoop,
    );
    env.patch_cluster(
        "example",
        "json",
        r#"[{"op": "replace", "path": "/spec/version", "value": "0.5.0"}]"#,
    )
    .await;
    let failed = wait_error(&env, "example", "True UpgradeFailed", WAIT).await;
    assert!(
        failed.contains("failed to sync bookkeeper version") && failed.contains("example-bookie-0"),
        "{failed}"
    );
    // Nothing beyond the first bookie was touched.
    let images = env.member_images().await;
    assert_eq!(
        images.matches(":0.5.0").count(),
        1,
        "only one pod was moved: {images}"
    );
    let row = env.cluster_row("example").await.unwrap();
    assert_eq!(col(&row, "VERSION"), "0.4.0");
    assert_eq!(col(&row, "READY MEMBERS"), "6");
    let describe = env
        .kubectl_ok(&["describe", "PravegaCluster", "example"])
        .await;
    assert!(describe.contains("UpgradeFailed"), "{describe}");

    let warnings = warning_reasons(&env).await;
    assert!(
        warnings.iter().any(|r| r == "UpgradeFailed"),
        "{warnings:?}"
    );

    // A healthy bookie lost (a node failure) comes back at the last version that worked, not at
    // the failed one; so does a bookie added by a scale-up. The failed bookie-0 stays as it is.
    env.wait_jsonpath(
        "the bookie template back at 0.4.0",
        WAIT,
        &["statefulset", "example-bookie"],
        "{.spec.template.spec.containers[0].image}",
        |t| t == "pravega/bookkeeper:0.4.0",
    )
    .await;
    env.kubectl_ok(&["delete", "pod", "example-bookie-1", "--wait=false"])
        .await;
    env.patch_cluster(
        "example",
        "merge",
        r#"{"spec":{"bookkeeper":{"replicas":4}}}"#,
    )
    .await;
    env.wait_jsonpath(
        "bookie-1 and bookie-3 Ready at 0.4.0",
        WAIT,
        &["pods", "example-bookie-1", "example-bookie-3"],
        "{range .items[*]}{.spec.containers[0].image} {.status.containerStatuses[0].ready};{end}",
        |got| got == "pravega/bookkeeper:0.4.0 true;pravega/bookkeeper:0.4.0 true;",
    )
    .await;
    let bookie0 = env
        .jsonpath(&["pod", "example-bookie-0"], "{.spec.containers[0].image}")
        .await;
    assert_eq!(bookie0, "pravega/bookkeeper:0.5.0", "the failed pod stays");

    // Roll back: spec.version back to the version the cluster runs.
    env.patch_cluster(
        "example",
        "json",
        r#"[{"op": "replace", "path": "/spec/version", "value": "0.4.0"}]"#,
    )
    .await;
    eventually("the rollback to complete", WAIT, || async {
        let row = env.cluster_row("example").await.ok_or("no row")?;
        let c = error_condition(&env, "example").await;
        if col(&row, "VERSION") == "0.4.0"
            && col(&row, "READY MEMBERS") == "8"
            && c.starts_with("False")
        {
            Ok(())
        } else {
            Err(format!("{row:?} {c}"))
        }
    })
    .await;
    let images = env.member_images().await;
    assert!(!images.contains(":0.5.0"), "{images}");

    // `--log-json`: every log line is a JSON object.
    let log = op.log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(
        log.contains("error syncing cluster version, need manual intervention"),
        "{log}"
    );
    assert_eq!(op.terminate().await, Some(0));
    env.shutdown().await;
}

/// The trap of a failed rollback: it used to keep `RollbackFailed` and DESIRED VERSION forever,
/// even once every pod was healthy again. Two ways out: edit the spec (it retries the rollback),
/// or fix the pods (once every member is Ready at one version, the failure is over).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_rollback_has_a_way_out() {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_yaml(&sample_at("0.5.0")).await;
    wait_settled(&env, "0.5.0", "", WAIT).await;
    let sim = env.sim.as_ref().unwrap();
    let broken = || regex::Regex::new(r":6\.6\.6$").unwrap();
    sim.fail_image(broken(), FailureMode::CrashLoop);
    let error_becomes = |want: &'static str| wait_error(&env, "example", want, WAIT);
    // Upgrade to a broken 6.6.6, then a rollback that fails too (0.5.0 crash-loops for a while),
    // then the cause of the rollback's failure goes away: 6.6.6 still crash-loops on bookie-0.
    let fail_both_ways = || async {
        env.set_version("example", "6.6.6").await;
        error_becomes("True UpgradeFailed").await;
        sim.fail_image(
            regex::Regex::new(r":0\.5\.0$").unwrap(),
            FailureMode::CrashLoop,
        );
        env.set_version("example", "0.5.0").await;
        error_becomes("True RollbackFailed").await;
        sim.clear_failures();
        sim.fail_image(broken(), FailureMode::CrashLoop);
        env.wait_row(
            "example",
            "every member but bookie-0 Ready again",
            WAIT,
            |row| col(row, "READY MEMBERS") == "6",
        )
        .await;
    };

    // 1. Editing the spec (a longer timeout) retries the rollback, which replaces bookie-0.
    fail_both_ways().await;
    env.patch_cluster(
        "example",
        "merge",
        r#"{"spec":{"upgrade":{"timeout":"15m"}}}"#,
    )
    .await;
    error_becomes("False RolledBack").await;
    wait_settled(&env, "0.5.0", "", WAIT).await;

    // 2. Deleting the broken pod brings it back at 0.5.0 (its template went back after the
    //    failure); every member is Ready at 0.5.0 and the operator clears the failure.
    fail_both_ways().await;
    env.kubectl_ok(&["delete", "pod", "example-bookie-0", "--wait=false"])
        .await;
    error_becomes("False RolledBack").await;
    wait_settled(&env, "0.5.0", "", WAIT).await;
    assert_eq!(op.terminate().await, Some(0));
    env.shutdown().await;
}
