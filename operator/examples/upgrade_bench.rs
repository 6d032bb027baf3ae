//! Upgrade benchmark: full 0.4.0 → 0.5.0 upgrades of a 3+1+3 cluster carried out by the real
//! (release) operator binary on the sandbox, timed from a pod watch.
//!
//! ```text
//! cargo run --release -p pravega-operator --example upgrade_bench [-- RUNS]
//! ```
//!
//! Prints, over every run:
//! - the operator's overhead per upgrade step: from the moment the cluster became ready for the
//!   next step (the previous replacement pod Ready, or the previous old pod gone, or the spec
//!   change for the first step) to the deletion of the next pod (p50 / p99 / max);
//! - the Controller hand-over (last new bookie Ready → new controller pod created), which also
//!   includes the Deployment and ReplicaSet controllers' reaction;
//! - the upgrade's wall time against the sum of the time pods took to start (Ready delays) and
//!   to terminate (grace periods), which the operator cannot shorten.

#[path = "../tests/support_upgrade/mod.rs"]
mod support_upgrade;

use std::error::Error;
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{Patch, PatchParams};
use pravega_crds::PravegaCluster;
use pravega_crds::names::Component;
use pravega_sandbox::testing::{Operator, Run, kubectl, workspace_binary, workspace_file};
use support_upgrade::{PodHistory, PodMonitor, bench_env, histories, percentile};

const READY_DELAY: Duration = Duration::from_millis(300);
const TERMINATION_GRACE: Duration = Duration::from_millis(200);

/// The figures of one upgrade.
struct RunFigures {
    /// Operator overhead before each pod deletion.
    steps: Vec<Duration>,
    /// Last new bookie Ready → new controller pod created.
    controller_handover: Duration,
    wall: Duration,
    pod_start_sum: Duration,
    termination_sum: Duration,
    /// Time the safety checks took, summed, and how many steps ran them.
    checks: (Duration, u64),
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), Box<dyn Error>> {
    let runs: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| format!("RUNS {a:?}: {e}"))?,
        None => 8,
    };
    let operator = workspace_binary("pravega-operator", "pravega-operator");
    println!(
        "upgrade benchmark: {runs} upgrades 0.4.0 -> 0.5.0 of a 3+1+3 cluster, operator {}",
        operator.display()
    );
    println!(
        "simulated pods: ready {READY_DELAY:?} after start, termination grace {TERMINATION_GRACE:?}"
    );
    let mut all = Vec::new();
    for run in 1..=runs {
        let f = one_run(&operator).await?;
        println!(
            "run {run}: wall {:>6.0} ms | pod start sum {:>5.0} ms | termination sum {:>5.0} ms | step overheads (ms) {:?} | controller hand-over {:.0} ms",
            ms(f.wall),
            ms(f.pod_start_sum),
            ms(f.termination_sum),
            f.steps
                .iter()
                .map(|d| ms(*d).round() as u64)
                .collect::<Vec<_>>(),
            ms(f.controller_handover),
        );
        all.push(f);
    }
    let steps: Vec<Duration> = all.iter().flat_map(|f| f.steps.iter().copied()).collect();
    let handovers: Vec<Duration> = all.iter().map(|f| f.controller_handover).collect();
    let walls: Vec<Duration> = all.iter().map(|f| f.wall).collect();
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len().max(1) as u32;
    let starts: Vec<Duration> = all.iter().map(|f| f.pod_start_sum).collect();
    let terms: Vec<Duration> = all.iter().map(|f| f.termination_sum).collect();
    println!();
    println!(
        "operator overhead per step ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target: p99 < 100 ms; upstream polls every 30 s)",
        steps.len(),
        ms(percentile(&steps, 50.0)),
        ms(percentile(&steps, 99.0)),
        ms(percentile(&steps, 100.0)),
    );
    let (check_time, check_steps) = all.iter().fold((Duration::ZERO, 0u64), |(t, n), f| {
        (t + f.checks.0, n + f.checks.1)
    });
    println!(
        "safety checks included in those steps: {check_steps} steps ran them, {:.2} ms each on average (all of a step's checks, concurrently)",
        ms(check_time) / (check_steps.max(1) as f64),
    );
    println!(
        "controller hand-over: p50 {:.1} ms, max {:.1} ms",
        ms(percentile(&handovers, 50.0)),
        ms(percentile(&handovers, 100.0)),
    );
    let (w, s, t) = (mean(&walls), mean(&starts), mean(&terms));
    println!(
        "whole upgrade: mean wall {:.0} ms = pod starts {:.0} ms + terminations {:.0} ms + the rest {:.0} ms ({:.1}% of the wall time)",
        ms(w),
        ms(s),
        ms(t),
        ms(w.saturating_sub(s + t)),
        100.0 * w.saturating_sub(s + t).as_secs_f64() / w.as_secs_f64().max(f64::EPSILON),
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn one_run(operator: &std::path::Path) -> Result<RunFigures, Box<dyn Error>> {
    let env = bench_env(READY_DELAY, TERMINATION_GRACE).await;
    let kubeconfig = env.kubeconfig();
    let client = &env.client;
    let sample = workspace_file("deploy/sample/pravegacluster.yaml");
    let Run {
        ok, stderr: err, ..
    } = kubectl(kubeconfig, &["apply", "-f", &sample.to_string_lossy()]).await;
    if !ok {
        return Err(format!("kubectl apply the sample: {err}").into());
    }
    let pods = PodMonitor::start(client.clone(), "default", "example");
    let mut op = Operator::start(operator, kubeconfig, &[]).await;
    let api: Api<PravegaCluster> = Api::namespaced(client.clone(), "default");
    wait_settled(&api, "0.4.0").await?;

    let started = Instant::now();
    api.patch(
        "example",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"version": "0.5.0"}})),
    )
    .await?;
    wait_settled(&api, "0.5.0").await?;
    // The last pod event has been delivered by the time the status says so; let the watch
    // catch up with anything in flight.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hist = histories(&pods.log());
    let checks = (
        Duration::from_secs_f64(
            op.metric("pravega_operator_safety_check_duration_seconds_sum")
                .await,
        ),
        op.metric("pravega_operator_safety_check_duration_seconds_count")
            .await as u64,
    );
    op.child.kill().await?;
    drop(pods);
    env.shutdown().await;
    let mut f = figures(&hist, started)?;
    f.checks = checks;
    Ok(f)
}

async fn wait_settled(api: &Api<PravegaCluster>, version: &str) -> Result<(), Box<dyn Error>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pk) = api.get_opt("example").await?
            && let Some(s) = &pk.status
            && s.current_version.as_deref() == Some(version)
            && s.target_version.is_none()
            && s.ready_replicas == 7
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the cluster did not settle at {version} within 60s").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// StatefulSet members: the operator deletes them itself.
fn stateful(h: &PodHistory) -> bool {
    matches!(
        h.component,
        Some(Component::Bookkeeper | Component::SegmentStore)
    )
}

fn figures(hist: &[PodHistory], started: Instant) -> Result<RunFigures, Box<dyn Error>> {
    let new: Vec<&PodHistory> = hist.iter().filter(|h| h.version == "0.5.0").collect();
    let old: Vec<&PodHistory> = hist.iter().filter(|h| h.version == "0.4.0").collect();
    // Moments after which the operator may take the next step.
    let mut triggers: Vec<Instant> = vec![started];
    triggers.extend(new.iter().filter_map(|h| h.ready));
    triggers.extend(old.iter().filter_map(|h| h.gone));
    let mut steps = Vec::new();
    for h in old.iter().filter(|h| stateful(h)) {
        let deleted = h
            .terminating
            .ok_or_else(|| format!("{} was never replaced", h.name))?;
        let trigger = triggers
            .iter()
            .filter(|t| **t <= deleted)
            .max()
            .copied()
            .unwrap_or(started);
        steps.push(deleted - trigger);
    }
    let last_bookie_ready = new
        .iter()
        .filter(|h| h.component == Some(Component::Bookkeeper))
        .filter_map(|h| h.ready)
        .max()
        .ok_or("no new bookie became ready")?;
    let new_controller = new
        .iter()
        .find(|h| h.component == Some(Component::Controller))
        .ok_or("no new controller pod")?;
    let finished = new
        .iter()
        .filter_map(|h| h.ready)
        .max()
        .ok_or("no new pod became ready")?;
    Ok(RunFigures {
        steps,
        controller_handover: new_controller
            .appeared
            .saturating_duration_since(last_bookie_ready),
        wall: finished - started,
        pod_start_sum: new.iter().filter_map(|h| Some(h.ready? - h.appeared)).sum(),
        termination_sum: old
            .iter()
            .filter_map(|h| Some(h.gone? - h.terminating?))
            .sum(),
        checks: (Duration::ZERO, 0),
    })
}
