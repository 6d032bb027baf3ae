//! End to end: a change of the spec other than the version reaches the running pods as a rolling
//! restart (one pod at a time, BookKeeper then Segment Store, never two members down), instead
//! of lying dormant until some pod restarts.

mod support;
mod support_upgrade;

use std::time::Duration;

use support::*;
use support_upgrade::PodMonitor;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_of_settings_is_rolled_out_to_running_pods() {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_yaml(&sample_at("0.5.0")).await;
    let settled = || async {
        eventually("7/7 at 0.5.0 with nothing in progress", WAIT, || async {
            let row = env.cluster_row("example").await.ok_or("no row")?;
            let upgrading = env
                .jsonpath(
                    &["pravegacluster", "example"],
                    r#"{.status.conditions[?(@.type=="Upgrading")].status}"#,
                )
                .await;
            if col(&row, "VERSION") == "0.5.0"
                && col(&row, "READY MEMBERS") == "7"
                && upgrading == "False"
            {
                Ok(())
            } else {
                Err(format!("{row:?} Upgrading={upgrading}"))
            }
        })
        .await
    };
    settled().await;
    let uids = |selector: &'static str| {
        let env = &env;
        async move {
            env.jsonpath(&["pods", "-l", selector], "{.items[*].metadata.uid}")
                .await
        }
    };
    let bookies_before = uids("app.kubernetes.io/component=bookie").await;
    let stores_before = uids("app.kubernetes.io/component=pravega-segmentstore").await;

    let monitor = PodMonitor::start(env.client.clone(), "default", "example");
    eventually("the pod monitor to see the 7 members", WAIT, || async {
        let seen: std::collections::BTreeSet<String> =
            monitor.log().iter().map(|o| o.name.clone()).collect();
        if seen.len() >= 7 {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;
    monitor.arm(3, 1, 3);
    env.patch_cluster(
        "example",
        "merge",
        r#"{"spec":{"bookkeeper":{"options":{"journalMaxGroupWaitMSec":"2"}}}}"#,
    )
    .await;
    let reason = env
        .kubectl_ok(&[
            "wait",
            "--for=jsonpath={.status.conditions[?(@.type==\"Upgrading\")].reason}=RollingRestart",
            "--timeout=60s",
            "pravegacluster/example",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Upgrading")].message}"#,
        ])
        .await;
    assert!(
        reason.starts_with("rolling restart to apply a change of the spec: bookkeeper"),
        "{reason}"
    );
    eventually("the restart to complete", WAIT, || async {
        let reason = env
            .jsonpath(
                &["pravegacluster", "example"],
                r#"{.status.conditions[?(@.type=="Upgrading")].reason}"#,
            )
            .await;
        if reason == "Completed" {
            Ok(())
        } else {
            let Run { stdout: out, .. } = env
                .kubectl(&["get", "pravegacluster", "example", "-o", "yaml"])
                .await;
            Err(format!("{reason}: {out}"))
        }
    })
    .await;
    settled().await;

    // Every bookie was replaced, and reads the new setting; the Segment Stores were not touched.
    let bookies_after = uids("app.kubernetes.io/component=bookie").await;
    for uid in bookies_before.split_whitespace() {
        assert!(!bookies_after.contains(uid), "{uid} was not replaced");
    }
    assert_eq!(
        uids("app.kubernetes.io/component=pravega-segmentstore").await,
        stores_before
    );
    assert!(
        monitor.violations().is_empty(),
        "{:?}",
        monitor.violations()
    );
    let events = env
        .jsonpath(
            &["events", "--field-selector", "involvedObject.name=example"],
            "{.items[*].reason}",
        )
        .await;
    for reason in ["RestartStarted", "RestartingPod", "RestartCompleted"] {
        assert!(events.contains(reason), "{reason} missing in {events}");
    }
    op.terminate().await;
    env.shutdown().await;
}
