//! Scale benchmark: many small PravegaClusters (1 bookie, 1 controller, 1 segment store)
//! reconciled by the real (release) operator binary on the sandbox, then a simultaneous
//! upgrade of some of them.
//!
//! ```text
//! cargo run --release -p pravega-operator --example scale_bench [-- CLUSTERS [UPGRADES [IDLE_SECS]]]
//! ```
//!
//! Defaults: 1000 clusters, 100 upgrades, a 60 s idle window. Prints:
//! - the time for every cluster to be deployed (`status.currentVersion` set, all members Ready);
//! - the operator's peak RSS;
//! - the operator's API requests per cluster while converging, reads (get, list) and writes
//!   separately, and over the idle window;
//! - reconciles per cluster;
//! - the same for the simultaneous upgrade 0.4.0 → 0.5.0 of UPGRADES clusters.
//!
//! The figures come from the operator's own `/metrics`
//! (`pravega_operator_api_requests_total{verb,kind}`, `pravega_operator_reconciliations_total`)
//! and `/proc/<pid>/status` (`VmHWM`).

#[path = "../tests/support_upgrade/mod.rs"]
mod support_upgrade;

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use pravega_crds::PravegaCluster;
use pravega_sandbox::testing::{Operator, Run, kubectl, workspace_binary};
use support_upgrade::bench_env;

const READY_DELAY: Duration = Duration::from_millis(200);
const TERMINATION_GRACE: Duration = Duration::from_millis(100);
const CONCURRENCY: &str = "32";

type Res<T> = Result<T, Box<dyn Error>>;

/// Counters read from the operator's `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    reads: f64,
    watches: f64,
    writes: f64,
    reconciles: f64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            reads: self.reads - o.reads,
            watches: self.watches - o.watches,
            writes: self.writes - o.writes,
            reconciles: self.reconciles - o.reconciles,
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Res<()> {
    let arg = |i: usize, default: usize| -> Res<usize> {
        match std::env::args().nth(i) {
            Some(a) => Ok(a.parse().map_err(|e| format!("argument {i} {a:?}: {e}"))?),
            None => Ok(default),
        }
    };
    let clusters = arg(1, 1000)?;
    let upgrades = arg(2, 100)?.min(clusters);
    let idle = Duration::from_secs(u64::try_from(arg(3, 60)?)?);
    let operator = workspace_binary("pravega-operator", "pravega-operator");
    println!(
        "scale benchmark: {clusters} clusters of 1+1+1 members, then {upgrades} upgraded at once; operator {} --concurrency {CONCURRENCY}",
        operator.display()
    );

    let env = bench_env(READY_DELAY, TERMINATION_GRACE).await;
    let kubeconfig = env.kubeconfig();
    let client = &env.client;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The clusters, applied with one kubectl apply: the sandbox's own speed.
    let manifest = std::env::temp_dir().join(format!("scale-bench-{}.yaml", std::process::id()));
    let mut yaml = String::from(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: pravega-tier2\nspec:\n  accessModes: [ReadWriteMany]\n  resources:\n    requests:\n      storage: 50Gi\n",
    );
    for i in 0..clusters {
        yaml.push_str(&format!(
            "---\napiVersion: pravega.pravega.io/v1beta1\nkind: PravegaCluster\nmetadata:\n  name: c{i:04}\nspec:\n  version: 0.4.0\n  zookeeperUri: zk:2181\n  bookkeeper:\n    replicas: 1\n  pravega:\n    controllerReplicas: 1\n    segmentStoreReplicas: 1\n"
        ));
    }
    std::fs::write(&manifest, yaml)?;
    let applied = Instant::now();
    let Run {
        ok, stderr: err, ..
    } = kubectl(kubeconfig, &["apply", "-f", &manifest.to_string_lossy()]).await;
    let _ = std::fs::remove_file(&manifest);
    if !ok {
        return Err(format!("kubectl apply the clusters: {err}").into());
    }
    println!(
        "sandbox: one kubectl apply of {clusters} PravegaClusters took {:.1} s",
        applied.elapsed().as_secs_f64()
    );

    // The operator.
    let mut op = Operator::start_logging(
        &operator,
        kubeconfig,
        &["--concurrency", CONCURRENCY],
        "warn,pravega_operator::run=info",
    )
    .await;
    let pid = op.child.id().ok_or("the operator has no pid")?;
    let metrics_addr = op.addr;

    let api: Api<PravegaCluster> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    let before = counts(metrics_addr).await?;
    wait_all(&api, clusters, "0.4.0", |_| true).await?;
    let converged = started.elapsed();
    let after = counts(metrics_addr).await?;
    let n = clusters as f64;
    println!();
    println!(
        "converge {clusters} clusters: {:.1} s",
        converged.as_secs_f64()
    );
    report("converging", after - before, n);
    println!("operator peak RSS: {:.1} MiB", peak_rss_mib(pid)?);

    tokio::time::sleep(idle).await;
    let idle_after = counts(metrics_addr).await?;
    let per_minute = 60.0 / idle.as_secs_f64();
    let d = idle_after - after;
    println!(
        "idle {} s: per cluster per minute {:.3} reads, {:.3} writes; reconciles per cluster per minute {:.3}",
        idle.as_secs(),
        d.reads / n * per_minute,
        d.writes / n * per_minute,
        d.reconciles / n * per_minute,
    );

    // A simultaneous upgrade.
    let names: Vec<String> = (0..upgrades).map(|i| format!("c{i:04}")).collect();
    let before = counts(metrics_addr).await?;
    let started = Instant::now();
    futures::stream::iter(names.iter())
        .for_each_concurrent(32, |name| {
            let api = api.clone();
            async move {
                let patch = serde_json::json!({"spec": {"version": "0.5.0"}});
                if let Err(e) = api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    eprintln!("upgrading {name}: {e}");
                }
            }
        })
        .await;
    wait_all(&api, upgrades, "0.5.0", |name| {
        names.iter().any(|n| n == name)
    })
    .await?;
    let took = started.elapsed();
    let after = counts(metrics_addr).await?;
    println!();
    println!(
        "upgrade {upgrades} clusters 0.4.0 -> 0.5.0 at once: {:.1} s",
        took.as_secs_f64()
    );
    report("upgrading", after - before, upgrades as f64);
    println!("operator peak RSS: {:.1} MiB", peak_rss_mib(pid)?);

    op.child.kill().await?;
    env.shutdown().await;
    Ok(())
}

fn report(what: &str, d: Counts, n: f64) {
    println!(
        "{what}: per cluster {:.1} reads (get, list), {:.1} writes, {:.2} watches opened; {:.1} reconciles per cluster",
        d.reads / n,
        d.writes / n,
        d.watches / n,
        d.reconciles / n,
    );
}

/// Waits until `want` clusters matching `pick` run `version` with every member Ready.
async fn wait_all(
    api: &Api<PravegaCluster>,
    want: usize,
    version: &str,
    pick: impl Fn(&str) -> bool,
) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let list = api.list(&ListParams::default()).await?;
        let done = list
            .items
            .iter()
            .filter(|c| pick(c.metadata.name.as_deref().unwrap_or_default()))
            .filter(|c| {
                c.status.as_ref().is_some_and(|s| {
                    s.current_version.as_deref() == Some(version)
                        && s.target_version.is_none()
                        && s.replicas > 0
                        && s.ready_replicas == s.replicas
                })
            })
            .count();
        if done >= want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{done} of {want} clusters at {version} after an hour").into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn counts(addr: SocketAddr) -> Res<Counts> {
    let body = metrics_text(addr).await?;
    let mut c = Counts::default();
    for line in body.lines() {
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if line.starts_with("pravega_operator_api_requests_total{") {
            if line.contains("verb=\"get\"") || line.contains("verb=\"list\"") {
                c.reads += value;
            } else if line.contains("verb=\"watch\"") {
                c.watches += value;
            } else {
                c.writes += value;
            }
        } else if line.starts_with("pravega_operator_reconciliations_total ") {
            c.reconciles += value;
        }
    }
    Ok(c)
}

/// The operator's `/metrics` text (HTTP/1.0: the server closes the connection at the end).
async fn metrics_text(addr: SocketAddr) -> Res<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: operator\r\n\r\n")
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("/metrics: no HTTP header")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("/metrics answered {}", head.lines().next().unwrap_or("")).into());
    }
    Ok(body.to_owned())
}

fn peak_rss_mib(pid: u32) -> Res<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or("no VmHWM in /proc/PID/status")?;
    Ok(kib / 1024.0)
}
