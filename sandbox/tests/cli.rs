//! `pravega-sandbox serve`: starts, prints how to use it, serves kubectl, idles quietly and
//! stops on Ctrl-C. Prints the measured start-up time and idle CPU (figures, not assertions).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[test]
fn serve_prints_usage_serves_kubectl_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pravega-sandbox"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--ready-delay",
            "200ms",
            "--fail-image",
            "broken",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("export KUBECONFIG=");
        printed.push(line);
        if done {
            break;
        }
    }
    let startup = started.elapsed();
    println!("serve: ready (kubeconfig written, usage printed) after {startup:?}");
    assert!(
        printed
            .iter()
            .any(|l| l.trim() == format!("export KUBECONFIG={}", kc.display())),
        "{printed:?}"
    );
    assert!(
        printed
            .iter()
            .any(|l| l.contains("listening on https://127.0.0.1:")),
        "{printed:?}"
    );

    let out = Command::new("kubectl")
        .args(["get", "namespaces", "-o", "name"])
        .env("KUBECONFIG", &kc)
        .env("KUBECACHEDIR", dir.path().join("kubectl-cache"))
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(
        names.contains("namespace/default") && names.contains("namespace/kube-system"),
        "{names}"
    );

    // Idle CPU over one second, in clock ticks (usually 100 per second).
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid).unwrap_or(0);
    std::thread::sleep(Duration::from_secs(1));
    let after = cpu_ticks(pid).unwrap_or(0);
    println!(
        "serve: idle CPU over 1s: {} clock ticks",
        after.saturating_sub(before)
    );

    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status after Ctrl-C: {status:?}");
}

#[test]
fn serve_rejects_a_bad_duration() {
    let out = Command::new(env!("CARGO_BIN_EXE_pravega-sandbox"))
        .args(["serve", "--ready-delay", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ready-delay"));
}

#[test]
fn serve_rejects_an_error_rate_out_of_range() {
    let out = Command::new(env!("CARGO_BIN_EXE_pravega-sandbox"))
        .args(["serve", "--fault-error-rate", "1.5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--fault-error-rate") && err.contains("from 0.0 to 1.0"),
        "{err}"
    );
}

#[test]
fn serve_faults_kubectl_but_not_the_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pravega-sandbox"))
        .args([
            "serve",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--fault-error-rate",
            "1",
            "--fault-latency",
            "20ms",
            "--fault-seed",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("export KUBECONFIG=") {
            break;
        }
    }
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &kc)
            .env("KUBECACHEDIR", dir.path().join("kubectl-cache"))
            .output()
            .unwrap()
    };
    // Every request on a resource is faulted (a 429 kubectl retries, then gets another fault).
    let out = kubectl(&["get", "configmaps", "-A"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error from server ("), "{err}");
    // Metrics are not a resource: never faulted. The simulation registered its nodes
    // (create, then status patches) through the faults.
    let out = kubectl(&["get", "--raw", "/metrics"]);
    let metrics = String::from_utf8_lossy(&out.stdout);
    assert!(
        metrics
            .contains("apiserver_request_total{verb=\"create\",resource=\"nodes\",code=\"201\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sandbox_injected_faults_total{code="),
        "{metrics}"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("injected fault: ") && log.contains(" list /api/v1/configmaps"),
        "{log}"
    );
}
