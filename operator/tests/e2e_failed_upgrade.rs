//! End to end: a failed upgrade is reported (condition, Event, log) and rolled back by setting
//! `spec.version` back, with the real operator binary on the sandbox.

mod support;

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use pravega_sandbox::sim::FailureMode;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

async fn error_condition(env: &Env) -> String {
    env.jsonpath(
        &["PravegaCluster", "example"],
        r#"{range .status.conditions[?(@.type=="Error")]}{.status} {.reason} {.message}{end}"#,
    )
    .await
}

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
    let failed = eventually("the upgrade to fail", WAIT, || async {
        let c = error_condition(&env).await;
        if c.starts_with("True UpgradeFailed") {
            Ok(c)
        } else {
            Err(c)
        }
    })
    .await;
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

    let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
    let warnings: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        warnings.iter().any(|r| r == "UpgradeFailed"),
        "{warnings:?}"
    );

    // A healthy bookie lost (a node failure) comes back at the last version that worked, not at
    // the failed one; so does a bookie added by a scale-up. The failed bookie-0 stays as it is.
    eventually("the bookie template back at 0.4.0", WAIT, || async {
        let t = env
            .jsonpath(
                &["statefulset", "example-bookie"],
                "{.spec.template.spec.containers[0].image}",
            )
            .await;
        if t == "pravega/bookkeeper:0.4.0" {
            Ok(())
        } else {
            Err(t)
        }
    })
    .await;
    env.kubectl_ok(&["delete", "pod", "example-bookie-1", "--wait=false"])
        .await;
    env.patch_cluster(
        "example",
        "merge",
        r#"{"spec":{"bookkeeper":{"replicas":4}}}"#,
    )
    .await;
    eventually("bookie-1 and bookie-3 Ready at 0.4.0", WAIT, || async {
        let Run { stdout: got, .. } = env
            .kubectl(&[
                "get",
                "pods",
                "example-bookie-1",
                "example-bookie-3",
                "-o",
                r#"jsonpath={range .items[*]}{.spec.containers[0].image} {.status.containerStatuses[0].ready};{end}"#,
            ])
            .await;
        if got == "pravega/bookkeeper:0.4.0 true;pravega/bookkeeper:0.4.0 true;" {
            Ok(())
        } else {
            Err(got)
        }
    })
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
        let c = error_condition(&env).await;
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
    let row_is = |version: &'static str, desired: &'static str| {
        let env = &env;
        async move {
            let what = format!("VERSION {version}, DESIRED VERSION '{desired}', 7 ready");
            env.wait_row("example", &what, WAIT, |row| {
                col(row, "VERSION") == version
                    && col(row, "DESIRED VERSION") == desired
                    && col(row, "READY MEMBERS") == "7"
            })
            .await;
        }
    };
    row_is("0.5.0", "").await;
    let sim = env.sim.as_ref().unwrap();
    let broken = || regex::Regex::new(r":6\.6\.6$").unwrap();
    sim.fail_image(broken(), FailureMode::CrashLoop);
    let patch = |body: String| {
        let env = &env;
        async move {
            env.patch_cluster("example", "merge", &body).await;
        }
    };
    let set_version = |v: &str| patch(format!(r#"{{"spec":{{"version":"{v}"}}}}"#));
    let wait_error = |want: &'static str| {
        let env = &env;
        async move {
            eventually(&format!("Error {want}"), WAIT, || async {
                let c = error_condition(env).await;
                if c.starts_with(want) { Ok(c) } else { Err(c) }
            })
            .await
        }
    };
    // Upgrade to a broken 6.6.6, then a rollback that fails too (0.5.0 crash-loops for a while),
    // then the cause of the rollback's failure goes away: 6.6.6 still crash-loops on bookie-0.
    let fail_both_ways = || async {
        set_version("6.6.6").await;
        wait_error("True UpgradeFailed").await;
        sim.fail_image(
            regex::Regex::new(r":0\.5\.0$").unwrap(),
            FailureMode::CrashLoop,
        );
        set_version("0.5.0").await;
        wait_error("True RollbackFailed").await;
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
    patch(r#"{"spec":{"upgrade":{"timeout":"15m"}}}"#.to_owned()).await;
    wait_error("False RolledBack").await;
    row_is("0.5.0", "").await;

    // 2. Deleting the broken pod brings it back at 0.5.0 (its template went back after the
    //    failure); every member is Ready at 0.5.0 and the operator clears the failure.
    fail_both_ways().await;
    env.kubectl_ok(&["delete", "pod", "example-bookie-0", "--wait=false"])
        .await;
    wait_error("False RolledBack").await;
    row_is("0.5.0", "").await;
    assert_eq!(op.terminate().await, Some(0));
    env.shutdown().await;
}
