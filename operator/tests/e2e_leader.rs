//! End to end: leader election between real operator processes on the sandbox.

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(30);
const LEADER: &str = "pravega_operator_leader";
const RECONCILES: &str = "pravega_operator_reconciliations_total";
const WRITES: &str = "pravega_operator_api_writes_total";

async fn start_elected(env: &Env) -> Operator {
    Operator::start(
        OPERATOR,
        env.kubeconfig(),
        &["--leader-elect", "--leader-election-namespace", "default"],
    )
    .await
}

/// Waits until `op` reports that it leads.
async fn wait_leading(op: &Operator, what: &str, timeout: Duration) {
    eventually(what, timeout, || async {
        if op.metric(LEADER).await == 1.0 {
            Ok(())
        } else {
            Err(op.get("/metrics").await.1)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_leader_reconciles_and_a_standby_takes_over_without_writes() {
    let env = Env::start().await;
    let a = start_elected(&env).await;
    let b = start_elected(&env).await;

    // Exactly one leads; both are ready (the standby is ready while standing by).
    let leader_is_a = eventually("one leader", WAIT, || async {
        let (la, lb) = (a.metric(LEADER).await, b.metric(LEADER).await);
        match (la as i64, lb as i64) {
            (1, 0) => Ok(true),
            (0, 1) => Ok(false),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (leader, standby) = if leader_is_a { (a, b) } else { (b, a) };
    for op in [&leader, &standby] {
        eventually("ready", WAIT, || async {
            let (code, body) = op.get("/readyz").await;
            if code == 200 {
                Ok(())
            } else {
                Err(format!("{code} {body}"))
            }
        })
        .await;
    }
    assert_eq!(standby.get("/readyz").await.1.trim(), "standby");
    let holder = env
        .jsonpath(
            &["lease", "pravega-operator-leader"],
            "{.spec.holderIdentity}",
        )
        .await;
    assert!(!holder.is_empty());

    env.apply_file("deploy/sample/pravegacluster.yaml").await;
    env.wait_row("example", "7 ready members", WAIT, |row| {
        col(row, "VERSION") == "0.4.0" && col(row, "READY MEMBERS") == "7"
    })
    .await;
    assert!(leader.metric(RECONCILES).await > 0.0);
    assert_eq!(
        standby.metric(RECONCILES).await,
        0.0,
        "a standby never reconciles"
    );

    // The leader leaves gracefully and gives the lease up: the standby takes over at once and,
    // the cluster being converged, reconciles it without a single write.
    assert_eq!(leader.terminate().await, Some(0));
    eventually("the standby to lead", Duration::from_secs(10), || async {
        if standby.metric(LEADER).await == 1.0 && standby.metric(RECONCILES).await > 0.0 {
            Ok(())
        } else {
            Err(standby.get("/metrics").await.1)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        standby.metric_sum(WRITES).await,
        0.0,
        "a new leader finds the cluster converged"
    );
    assert_eq!(standby.terminate().await, Some(0));
    // Leader election included, the RBAC rules cover all that both replicas did.
    assert_operator_accesses_are_granted(&env.sandbox);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_that_loses_its_lease_stops_and_exits_non_zero() {
    let env = Env::start().await;
    let mut op = start_elected(&env).await;
    wait_leading(&op, "leadership", WAIT).await;
    // Someone else takes the lease (e.g. after a network partition).
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    env.kubectl_ok(&[
        "patch",
        "lease",
        "pravega-operator-leader",
        "--type=merge",
        "-p",
        &format!(r#"{{"spec":{{"holderIdentity":"intruder","renewTime":"{now}"}}}}"#),
    ])
    .await;
    let status = tokio::time::timeout(Duration::from_secs(15), op.child.wait())
        .await
        .expect("the operator exits after losing the lease")
        .expect("wait");
    assert_eq!(status.code(), Some(1), "{}", op.log());
    assert!(op.log().contains("no longer the leader"), "{}", op.log());
    env.shutdown().await;
}

/// A leader frozen (SIGSTOP) for longer than its lease while an upgrade runs: the standby takes
/// over and finishes the upgrade; when the frozen one resumes it writes nothing on its stale
/// belief that it leads (it last renewed too long ago), finds the Lease taken and exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_leader_writes_nothing_on_its_stale_belief_after_a_takeover() {
    let env = Env::start().await;
    env.apply_yaml(support::TIER2_CLAIM).await;
    let mut a = start_elected(&env).await;
    wait_leading(&a, "a leads", WAIT).await;
    let b = start_elected(&env).await;
    env.apply_file("deploy/sample/pravegacluster.yaml").await;
    let settled = |version: &'static str| {
        let env = &env;
        async move {
            eventually(
                &format!("example at {version}, 7/7"),
                Duration::from_secs(90),
                || async {
                    let row = env.cluster_row("example").await.ok_or("no row")?;
                    if col(&row, "VERSION") == version
                        && col(&row, "DESIRED VERSION").is_empty()
                        && col(&row, "READY MEMBERS") == "7"
                    {
                        Ok(())
                    } else {
                        Err(format!("{row:?}"))
                    }
                },
            )
            .await
        }
    };
    settled("0.4.0").await;

    // Freeze the leader, then start an upgrade: only the standby can carry it out, once the
    // frozen leader's lease has expired.
    let pid = a.child.id().expect("pid").to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    env.set_version("example", "0.5.0").await;
    wait_leading(&b, "b takes over", Duration::from_secs(40)).await;
    let holder = env
        .jsonpath(
            &["lease", "pravega-operator-leader"],
            "{.spec.holderIdentity}",
        )
        .await;
    let lines_before_resume = a.log().lines().count();
    signal("-CONT");
    let status = tokio::time::timeout(Duration::from_secs(20), a.child.wait())
        .await
        .expect("the resumed replica exits after finding the lease taken")
        .expect("wait");
    assert_eq!(status.code(), Some(1), "{}", a.log());
    let after: Vec<String> = a
        .log()
        .lines()
        .skip(lines_before_resume)
        .map(str::to_owned)
        .collect();
    for line in &after {
        for wrote in [
            "deleted pod",
            "created ",
            "updated ",
            "scaled ",
            "recording version",
        ] {
            assert!(
                !line.contains(wrote),
                "the resumed replica wrote ({wrote:?}): {line}\n{}",
                after.join("\n")
            );
        }
    }
    assert!(
        after.iter().any(|l| l.contains("no longer the leader")),
        "{}",
        after.join("\n")
    );
    // The new leader finishes the upgrade.
    settled("0.5.0").await;
    let still = env
        .jsonpath(
            &["lease", "pravega-operator-leader"],
            "{.spec.holderIdentity}",
        )
        .await;
    assert_eq!(still, holder);
    drop(b);
    env.shutdown().await;
}
