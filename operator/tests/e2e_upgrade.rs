//! End to end: a rolling upgrade carried out by the real operator binary on the sandbox.

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changing_spec_version_upgrades_every_component_in_order() {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_file("deploy/sample/pravegacluster.yaml").await;
    let wait_version = |version: &'static str| {
        let env = &env;
        async move {
            env.wait_row(
                "example",
                &format!("example at {version}, 7/7"),
                WAIT,
                |row| {
                    col(row, "VERSION") == version
                        && col(row, "DESIRED MEMBERS") == "7"
                        && col(row, "READY MEMBERS") == "7"
                },
            )
            .await
        }
    };
    wait_version("0.4.0").await;
    // What GitOps tools and scripts wait on.
    env.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=60s",
        "pravegacluster/example",
    ])
    .await;

    env.patch_cluster(
        "example",
        "json",
        r#"[{"op": "replace", "path": "/spec/version", "value": "0.5.0"}]"#,
    )
    .await;
    let not_ready = env
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready=false",
            "--timeout=60s",
            "pravegacluster/example",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].reason}"#,
        ])
        .await;
    assert!(
        ["Upgrading", "VersionMismatch"].contains(&not_ready.as_str()),
        "{not_ready}"
    );
    wait_version("0.5.0").await;
    let ready = env
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "--timeout=60s",
            "pravegacluster/example",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].message}"#,
        ])
        .await;
    assert_eq!(ready, "all 7 members run 0.5.0 and are Ready");

    assert_members_run(&env, "0.5.0").await;
    let history = env
        .jsonpath(&["PravegaCluster", "example"], "{.status.versionHistory}")
        .await;
    assert!(
        history.contains("0.4.0") && history.contains("0.5.0"),
        "{history}"
    );

    let log = op.log();
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not logged:\n{log}"))
    };
    let start = at("syncing cluster version from 0.4.0 to 0.5.0");
    let bookie = at("upgrading pod: example-bookie-");
    let store = at("upgrading pod: example-pravega-segmentstore-");
    assert!(
        start < bookie && bookie < store,
        "BookKeeper first, Segment Store last"
    );
    assert_eq!(op.terminate().await, Some(0));
    env.shutdown().await;
}
