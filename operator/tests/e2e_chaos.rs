//! Chaos acceptance: the guide's 3+1+3 upgrade on an API server having a bad day (10% of the
//! requests answered 5xx, 429 or 409, 20 ms more per request, every watch dropped after 3 s)
//! while the operator is killed 5 times. It completes; the audit log shows exactly one
//! successful deletion per old pod; sampling shows never two members of one component down.
//! Then, on the same bad day, an upgrade fails on a crash-looping BookKeeper image and is
//! rolled back.

mod support;
mod support_upgrade;

use std::collections::HashSet;
use std::time::Duration;

use pravega_sandbox::sim::FailureMode;
use support::{
    Env, OPERATOR, Operator, assert_operator_accesses_are_granted, env_with_faults, wait_error,
    wait_settled, workspace_file,
};
use support_upgrade::PodMonitor;

const WAIT: Duration = Duration::from_secs(120);
const KILLS: usize = 5;

async fn wait_row(env: &Env, version: &str, desired: &str) {
    wait_settled(env, version, desired, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgrade_through_api_faults_and_operator_kills_completes_safely_and_rolls_back() {
    let env = env_with_faults(0x00c0_ffee).await;
    let pods = PodMonitor::start(env.client.clone(), "default", "example");
    let mut op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    let mut logs = Vec::new();
    let sample = workspace_file("deploy/sample/pravegacluster.yaml");
    env.kubectl_retry(&["apply", "-f", sample.to_str().expect("utf-8 path")])
        .await;
    wait_row(&env, "0.4.0", "").await;
    pods.arm(3, 1, 3);

    env.set_version("example", "0.5.0").await;
    for i in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(300 + 250 * i as u64)).await;
        op.child.start_kill().expect("SIGKILL");
        op.child.wait().await.expect("killed operator exits");
        logs.push(op.log());
        op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    }
    wait_row(&env, "0.5.0", "").await;
    pods.disarm();

    // Exactly one successful deletion per old bookie and segment store: the operator's DELETEs
    // carry a resourceVersion precondition; faulted ones were not applied.
    let mut deleted = HashSet::new();
    for e in env.sandbox.audit() {
        let Some(d) = e.delete.as_ref() else { continue };
        if e.verb != "DELETE" || e.resource != "pods" || d.resource_version.is_none() {
            continue;
        }
        if e.injected_fault || e.code == 409 {
            continue;
        }
        assert!(
            [200, 202].contains(&e.code),
            "unexpected answer to a pod deletion: {e:?}"
        );
        let uid = d.uid.clone().expect("the operator's deletions name a uid");
        assert!(deleted.insert(uid.clone()), "pod {uid} deleted twice");
    }
    assert_eq!(
        deleted.len(),
        6,
        "one deletion per old bookie and segment store"
    );
    let violations = pods.violations();
    assert!(
        violations.is_empty(),
        "two members of a component down at once: {violations:?}"
    );
    // The retries are named in the logs.
    logs.push(op.log());
    let all = logs.join("\n");
    assert!(
        all.contains("reconcile failed; retrying"),
        "no retry was logged:\n{all}"
    );

    // Same bad day: an upgrade to a crash-looping BookKeeper image fails and is rolled back.
    env.sim.as_ref().expect("simulation").fail_image(
        regex::Regex::new(r"bookkeeper:0\.6\.0$").expect("regex"),
        FailureMode::CrashLoop,
    );
    env.set_version("example", "0.6.0").await;
    wait_error(&env, "example", "True UpgradeFailed", WAIT).await;
    env.set_version("example", "0.5.0").await;
    wait_row(&env, "0.5.0", "").await;
    let history = env
        .kubectl_retry(&[
            "get",
            "pravegacluster",
            "example",
            "-o",
            "jsonpath={.status.versionHistory}",
        ])
        .await;
    assert_eq!(history, r#"["0.4.0","0.5.0"]"#);
    // Everything it did on this bad day, retries included, its RBAC rules allow.
    assert_operator_accesses_are_granted(&env.sandbox);
    op.terminate().await;
    env.shutdown().await;
}
