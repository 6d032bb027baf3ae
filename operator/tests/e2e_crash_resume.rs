//! End to end: the operator is killed (SIGKILL) and restarted 20 times at random moments of a
//! 0.4.0 → 0.5.0 upgrade. Every decision derives from the API server's state, so each new process
//! resumes where the last one stopped: the upgrade completes, no pod is deleted twice (proved
//! from the sandbox's audit log of DELETE requests and the pod watch), and no component ever has
//! two members down at once.

mod support;
mod support_upgrade;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pravega_sandbox::sim::SimOptions;
use support::*;
use support_upgrade::{PodMonitor, histories};

const WAIT: Duration = Duration::from_secs(60);
const KILLS: usize = 20;

/// A small seeded generator (SplitMix64), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from + 1))
    }
}

async fn start_env(ready_delay: Duration) -> Env {
    Env::launch(EnvOptions {
        sim: Some(SimOptions {
            ready_delay,
            ..SimOptions::default()
        }),
        crd: true,
        ..EnvOptions::default()
    })
    .await
}

async fn wait_settled(env: &Env, version: &str) {
    env.wait_cluster(
        "example",
        &[
            ("VERSION", version),
            ("DESIRED VERSION", ""),
            ("READY MEMBERS", "7"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgrade_survives_twenty_operator_kills_without_deleting_a_pod_twice() {
    let seed = std::env::var("PRAVEGA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c0_ffee_u64);
    let mut rng = Rng(seed);
    let env = start_env(Duration::from_millis(800)).await;
    let pods = PodMonitor::start(env.client.clone(), "default", "example");
    let mut op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_file("deploy/sample/pravegacluster.yaml").await;
    wait_settled(&env, "0.4.0").await;
    pods.arm(3, 1, 3);

    let started = Instant::now();
    env.patch_cluster(
        "example",
        "json",
        r#"[{"op": "replace", "path": "/spec/version", "value": "0.5.0"}]"#,
    )
    .await;
    let mut kills: Vec<Instant> = Vec::new();
    let mut logs: Vec<String> = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(rng.millis(50, 400)).await;
        op.child.start_kill().expect("SIGKILL");
        op.child.wait().await.expect("killed operator exits");
        kills.push(Instant::now());
        logs.push(op.log());
        op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    }
    let report = |what: &str| {
        let last = logs.last().cloned().unwrap_or_default();
        format!("{what} (seed {seed:#x}); log of the last killed operator:\n{last}")
    };

    eventually("example at 0.5.0, 7/7", WAIT, || async {
        let row = env.cluster_row("example").await.ok_or("no row")?;
        if col(&row, "VERSION") == "0.5.0"
            && col(&row, "DESIRED VERSION").is_empty()
            && col(&row, "READY MEMBERS") == "7"
        {
            Ok(())
        } else {
            Err(format!(
                "{row:?}; {}\nlog of the running operator:\n{}",
                report(""),
                op.log()
            ))
        }
    })
    .await;
    pods.disarm();
    let history = env
        .jsonpath(&["PravegaCluster", "example"], "{.status.versionHistory}")
        .await;
    assert_eq!(history, r#"["0.4.0","0.5.0"]"#, "{}", report("history"));

    // The kills hit the upgrade, not only its aftermath.
    let hist = histories(&pods.log());
    let finished = hist
        .iter()
        .filter(|h| h.version == "0.5.0")
        .filter_map(|h| h.ready)
        .max()
        .expect("new pods became ready");
    let during = kills
        .iter()
        .filter(|k| **k > started && **k < finished)
        .count();
    eprintln!(
        "{during} of {KILLS} kills landed during the upgrade ({:?} long, seed {seed:#x})",
        finished - started
    );
    assert!(
        during >= KILLS / 2,
        "{}",
        report(&format!("only {during} kills during the upgrade"))
    );

    // No pod deleted twice. The operator is the client that deletes pods with a resourceVersion
    // precondition (the simulated kubelets and ReplicaSet controller send a uid only): every
    // successful such DELETE must target a distinct pod that, at the resourceVersion it named,
    // was at the old version and not terminating.
    let deletes: Vec<_> = env
        .sandbox
        .audit()
        .into_iter()
        .filter(|e| e.verb == "DELETE" && e.resource == "pods")
        .filter(|e| {
            e.delete
                .as_ref()
                .is_some_and(|d| d.resource_version.is_some())
        })
        .collect();
    let mut uids = HashSet::new();
    let mut conflicts = 0;
    for e in &deletes {
        match e.code {
            200 | 202 => {
                let d = e.delete.as_ref().unwrap();
                let uid = d.uid.clone().expect("operator deletes name a uid");
                let rv = d.resource_version.clone().unwrap();
                let before = pods
                    .state_at(&uid, &rv)
                    .unwrap_or_else(|| panic!("pod {uid} at {rv} not seen by the watch: {e:?}"));
                assert_eq!(before.version, "0.4.0", "{e:?} {before:?}");
                assert!(!before.terminating, "deleted while terminating: {e:?}");
                assert!(
                    uids.insert(uid.clone()),
                    "pod {uid} deleted twice: {deletes:#?}"
                );
            }
            409 => conflicts += 1,
            other => panic!("unexpected answer {other} to {e:?}"),
        }
    }
    eprintln!(
        "{} pod deletions by the operator, {conflicts} refused by preconditions (409)",
        uids.len()
    );
    // 3 bookies and 3 segment stores; the controller is replaced by its Deployment.
    assert_eq!(uids.len(), 6, "{deletes:#?}");
    let old_terminated: Vec<&str> = hist
        .iter()
        .filter(|h| h.version == "0.4.0" && h.terminating.is_some())
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(old_terminated.len(), 7, "{old_terminated:?}");

    let violations = pods.violations();
    assert!(
        violations.is_empty(),
        "two members of a component down at once: {violations:#?}"
    );
    assert_eq!(op.terminate().await, Some(0));
    drop(pods);
    env.shutdown().await;
}
