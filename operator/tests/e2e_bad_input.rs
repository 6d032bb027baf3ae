//! End to end, with the real `kubectl`, webhook and operator on the sandbox: values that used to
//! pass admission and break later are refused at once with a clear message; unbounded replicas
//! are refused by the schema; a paused upgrade can be cancelled; without the webhook the operator
//! keeps its own refusals and trusts the running pods over a hand-edited status.

mod support;
mod support_upgrade;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(60);

async fn wait_row(env: &Env, version: &str, desired: &str) {
    wait_settled(env, version, desired, WAIT).await;
}

/// A merge patch of cluster `example` that must be admitted; returns kubectl's stderr (its
/// warnings).
async fn admitted(env: &Env, patch: &str) -> String {
    let Run { ok, stderr, .. } = env.try_patch_cluster("example", "merge", patch).await;
    assert!(ok, "{patch} was refused: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_that_would_break_later_are_refused_at_admission() {
    let env = Env::start().await;
    let webhook = Webhook::start(&env.sandbox, &env.client, &webhook_bin()).await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_yaml(&sample_at("0.5.0")).await;
    wait_row(&env, "0.5.0", "").await;

    let denied = "admission webhook \"pravegacluster.pravega.pravega.io\" denied the request: ";
    for (patch, says) in [
        (
            format!(r#"{{"spec":{{"version":"0.6.0-{}"}}}}"#, "a".repeat(60)),
            "spec.version: Too long: may not be more than 63 bytes",
        ),
        (
            r#"{"spec":{"bookkeeper":{"image":{"repository":"Pravega/BookKeeper"}}}}"#.to_owned(),
            "spec.bookkeeper.image.repository \"Pravega/BookKeeper\" is not a valid image repository",
        ),
        (
            r#"{"spec":{"zookeeperUri":"a\nb"}}"#.to_owned(),
            "is not a ZooKeeper connection string",
        ),
        (
            r#"{"spec":{"pravega":{"controllerResources":{"limits":{"cpu":"banana"}}}}}"#
                .to_owned(),
            "spec.pravega.controllerResources.limits.cpu: \"banana\" is not a Kubernetes quantity",
        ),
        (
            r#"{"spec":{"upgrade":{"timeout":"0s"}}}"#.to_owned(),
            "spec.upgrade.timeout 0s is too short",
        ),
        (
            r#"{"spec":{"pravega":{"segmentStoreJVMOptions":["-Xmx8g"]}}}"#.to_owned(),
            "must be smaller than the container's memory limit",
        ),
        (
            r#"{"spec":{"pravega":{"options":{"pravegaservice.containerCount":"8"}}}}"#.to_owned(),
            "the segment container count",
        ),
        (
            r#"{"spec":{"pravega":{"tier2":{"filesystem":null,"hdfs":{"uri":"hdfs://nn:8020"}}}}}"#
                .to_owned(),
            "the kind of tier 2 storage cannot change once the cluster exists",
        ),
    ] {
        let Run {
            ok,
            stdout: out,
            stderr: err,
        } = env.try_patch_cluster("example", "merge", &patch).await;
        assert!(!ok, "{patch} was admitted: {out}");
        // Refused by the webhook, or (the version's length) by the schema itself.
        assert!(
            err.contains(says) && (err.contains(denied) || err.contains("is invalid")),
            "{patch}: expected {says:?} in {err}"
        );
    }

    // Unbounded replicas are refused by the schema itself, with the API server's wording.
    env.try_patch_cluster(
        "example",
        "merge",
        r#"{"spec":{"bookkeeper":{"replicas":1000000}}}"#,
    )
    .await
    .expect_err("spec.bookkeeper.replicas: Invalid value: 1000000: spec.bookkeeper.replicas in body should be less than or equal to 100");
    // A name too long for the objects derived from it is refused before anything is created.
    let long = "a".repeat(32);
    let manifest = sample_at("0.5.0").replace("name: example", &format!("name: {long}"));
    let path = std::env::temp_dir().join(format!("long-name-{}.yaml", std::process::id()));
    std::fs::write(&path, manifest).expect("write manifest");
    let refused = env
        .kubectl(&["apply", "-f", path.to_str().expect("utf-8 path")])
        .await;
    let _ = std::fs::remove_file(&path);
    refused.expect_err("a PravegaCluster name can have at most 31");
    let Run { stdout: names, .. } = env.kubectl(&["get", "statefulsets", "-o", "name"]).await;
    assert!(!names.contains(&long), "{names}");

    // The cluster never noticed: still 0.5.0, 7 of 7.
    wait_row(&env, "0.5.0", "").await;
    op.terminate().await;
    webhook.stop().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_upgrade_can_be_cancelled_with_the_webhook_in_place() {
    let env = Env::start().await;
    let webhook = Webhook::start(&env.sandbox, &env.client, &webhook_bin()).await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_yaml(&sample_at("0.5.0")).await;
    wait_row(&env, "0.5.0", "").await;

    // Start an upgrade and pause it at once.
    admitted(&env, r#"{"spec":{"version":"0.6.0"}}"#).await;
    env.wait_row("example", "the upgrade to 0.6.0 started", WAIT, |row| {
        col(row, "DESIRED VERSION") == "0.6.0"
    })
    .await;
    admitted(&env, r#"{"spec":{"upgrade":{"paused":true}}}"#).await;
    let Run { ok, .. } = env
        .try_patch_cluster(
            "example",
            "merge",
            r#"{"spec":{"version":"0.5.0","upgrade":{"paused":false}}}"#,
        )
        .await;
    assert!(
        !ok,
        "a change mid-upgrade is refused unless the upgrade is paused"
    );
    // Paused, going back cancels it.
    let err = admitted(
        &env,
        r#"{"spec":{"version":"0.5.0","upgrade":{"paused":true}}}"#,
    )
    .await;
    assert!(
        err.contains("Warning: cancelling the paused upgrade to 0.6.0"),
        "{err}"
    );
    // Cancelled: Upgrading says so; what had moved waits for the resume to be rolled back.
    let upgrading = env
        .kubectl_ok(&[
            "wait",
            "--for=jsonpath={.status.conditions[?(@.type==\"Upgrading\")].reason}=Cancelled",
            "--timeout=60s",
            "pravegacluster/example",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Upgrading")].message}"#,
        ])
        .await;
    assert_eq!(
        upgrading,
        "the upgrade from 0.5.0 to 0.6.0 was cancelled (spec.version is 0.5.0 again)"
    );
    // Resumed: whatever had moved is rolled back, and the cluster is 0.5.0 again.
    admitted(&env, r#"{"spec":{"upgrade":{"paused":false}}}"#).await;
    wait_row(&env, "0.5.0", "").await;
    let images = env.member_images().await;
    assert!(!images.contains(":0.6.0"), "{images}");
    op.terminate().await;
    webhook.stop().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_webhook_the_operator_keeps_its_refusals_and_trusts_the_pods() {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_yaml(&sample_at("0.5.0")).await;
    wait_row(&env, "0.5.0", "").await;

    // A hand-edited status.currentVersion is corrected from the running pods.
    env.kubectl_ok(&[
        "patch",
        "pravegacluster",
        "example",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"currentVersion":"9.9.9"}}"#,
    ])
    .await;
    wait_row(&env, "0.5.0", "").await;

    // A version change during an upgrade is refused, and stays refused after it ends.
    admitted(&env, r#"{"spec":{"version":"0.6.0"}}"#).await;
    env.wait_row("example", "upgrading to 0.6.0", WAIT, |row| {
        col(row, "DESIRED VERSION") == "0.6.0"
    })
    .await;
    admitted(&env, r#"{"spec":{"version":"0.7.0"}}"#).await;
    wait_row(&env, "0.6.0", "").await;
    let error = env
        .jsonpath(&["pravegacluster", "example"], r#"{.status.refusedVersion} {range .status.conditions[?(@.type=="Error")]}{.reason}: {.message}{end}"#)
        .await;
    assert!(
        error.starts_with("0.7.0 InvalidSpec: spec.version 0.7.0 was refused while another version change was in flight"),
        "{error}"
    );
    // Still 0.6.0 a moment later: the refused version is not started.
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_row(&env, "0.6.0", "").await;
    // The mismatch shows: `-o wide` has the Ready condition and the spec's version.
    let Run {
        ok,
        stdout: out,
        stderr: err,
    } = env
        .kubectl(&["get", "pravegacluster", "example", "-o", "wide"])
        .await;
    assert!(ok, "{err}");
    let rows = support::parse_table(&out);
    let row = rows.first().expect("a row");
    assert_eq!(col(row, "VERSION"), "0.6.0");
    assert_eq!(col(row, "READY"), "False");
    assert_eq!(col(row, "SPEC VERSION"), "0.7.0");
    op.terminate().await;
    env.shutdown().await;
}
