//! End to end: the operator creates and upgrades a cluster on an API server having a bad day
//! (errors, latency, dropped watches), and gets there.

mod support;

use std::time::Instant;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_creates_and_upgrades_a_cluster_through_api_faults() {
    let started = Instant::now();
    let env = env_with_faults(20_240_501).await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    let sample = workspace_file("deploy/sample/pravegacluster.yaml");
    env.kubectl_retry(&["apply", "-f", sample.to_str().expect("utf-8 path")])
        .await;
    let at_version = |version| {
        [
            ("VERSION", version),
            ("DESIRED MEMBERS", "7"),
            ("READY MEMBERS", "7"),
        ]
    };
    env.wait_cluster("example", &at_version("0.4.0")).await;

    env.set_version("example", "0.5.0").await;
    env.wait_cluster("example", &at_version("0.5.0")).await;
    assert_members_run(&env, "0.5.0").await;

    // Stopped first, so that no request is in flight while the counters are read.
    assert_eq!(op.terminate().await, Some(0));

    // Faults really were injected into the operator's requests, and only into the clients
    // of the kubeconfig (the operator, kubectl), never into the simulation's.
    let faults: Vec<_> = env
        .sandbox
        .audit()
        .into_iter()
        .filter(|e| e.injected_fault)
        .collect();
    assert!(
        faults
            .iter()
            .all(|e| e.user_agent.starts_with("pravega-operator/")
                || e.user_agent.starts_with("kubectl/")),
        "{faults:?}"
    );
    let operator: Vec<_> = faults
        .iter()
        .filter(|e| e.user_agent.starts_with("pravega-operator/"))
        .collect();
    assert!(
        operator.len() >= 3,
        "faults injected into the operator's requests: {operator:?}"
    );
    assert!(
        operator
            .iter()
            .all(|e| [409, 410, 429, 500, 503].contains(&e.code)),
        "{operator:?}"
    );
    // Not a resource: never faulted.
    let metrics = env.kubectl_ok(&["get", "--raw", "/metrics"]).await;
    let drops = support::metric_value(&metrics, "sandbox_injected_watch_drops_total");
    assert!(drops >= 1.0, "watches were dropped:\n{metrics}");
    let errors: f64 = ["409", "429", "500", "503", "410"]
        .iter()
        .map(|c| {
            support::metric_value(
                &metrics,
                &format!("sandbox_injected_faults_total{{code=\"{c}\"}}"),
            )
        })
        .sum();
    assert_eq!(errors as usize, faults.len(), "metrics and audit agree");
    eprintln!(
        "converged in {:?} through {} injected faults ({} into the operator's requests, {} writes), {drops} dropped watches",
        started.elapsed(),
        faults.len(),
        operator.len(),
        operator.iter().filter(|e| e.verb != "GET").count()
    );
    env.shutdown().await;
}
