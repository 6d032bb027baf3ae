//! The README's first command, `pravega-sandbox demo`, runs the whole story and exits 0 only if
//! every step behaved as documented; with `--keep` it then keeps the sandbox running, saying
//! where its kubeconfig and the operator's and the webhook's logs are, until Ctrl-C.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The path printed after `prefix` on a line of `stdout`.
fn printed_path(stdout: &str, prefix: &str) -> Option<std::path::PathBuf> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(|p| std::path::PathBuf::from(p.trim()))
}

#[test]
fn demo_runs_the_whole_story() {
    let exe = env!("CARGO_BIN_EXE_pravega-sandbox");
    let mut child = Command::new(exe)
        .args([
            "demo",
            "--ready-delay",
            "200ms",
            "--step-timeout",
            "60s",
            "--keep",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {exe} demo: {e}"));
    // Read the story (in a thread) until it keeps the sandbox running, ends, or takes too long.
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut stdout = String::new();
    let mut kept = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        stdout.push_str(&line);
        stdout.push('\n');
        if line.contains("Keeping the sandbox running") {
            // What it says then comes at once.
            while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
                stdout.push_str(&line);
                stdout.push('\n');
            }
            kept = true;
            break;
        }
    }
    if kept {
        // Where to look, next to the KUBECONFIG to export; the files are there.
        let kubeconfig = printed_path(&stdout, "export KUBECONFIG=").expect("KUBECONFIG line");
        let operator_log = printed_path(&stdout, "operator log:").expect("operator log line");
        let webhook_log = printed_path(&stdout, "webhook log:").expect("webhook log line");
        for p in [&kubeconfig, &operator_log, &webhook_log] {
            assert!(p.is_file(), "{} is not a file:\n{stdout}", p.display());
        }
        assert!(
            std::fs::read_to_string(&operator_log)
                .unwrap_or_default()
                .contains("syncing cluster version from 0.4.0 to 0.5.0"),
            "{}",
            operator_log.display()
        );
        // Ctrl-C ends it.
        let interrupted = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(interrupted.success());
    } else {
        // Whatever it does, it is stopped the way a user stops it (its processes with it).
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
    }
    let reaped = Instant::now() + Duration::from_secs(60);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < reaped {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = reader.join();
    stdout.extend(rx.try_iter().map(|l| l + "\n"));
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child.wait().expect("demo exits");
    assert!(
        kept,
        "the demo did not keep the sandbox running:\n{stdout}\n{stderr}"
    );
    assert!(
        status.success(),
        "demo failed ({status}):\n{stdout}\n{stderr}"
    );
    for expected in [
        // The guide's kubectl get columns while it works.
        "NAME      VERSION   DESIRED VERSION   DESIRED MEMBERS   READY MEMBERS   AGE",
        "example   0.4.0     0.5.0             7",
        "example   0.5.0                       7                 7",
        // The webhook's answers, as kubectl prints them.
        "Error from server (Forbidden): admission webhook \"pravegacluster.pravega.pravega.io\" denied the request: cannot change spec.version to 0.6.0 while the cluster is upgrading from 0.4.0 to 0.5.0",
        "Error from server (Forbidden): admission webhook \"pravegacluster.pravega.pravega.io\" denied the request: downgrading the cluster from 0.5.0 to 0.4.0 is not supported",
        // The failed upgrade, as kubectl describe shows it.
        "failed to sync bookkeeper version. pod example-bookie-0 is restarting",
        "Reason:                UpgradeFailed",
        "Unready:",
        // The operator's log lines from the guide.
        "syncing cluster version from 0.4.0 to 0.5.0",
        "updating statefulset (example-bookie) template image to 'pravega/bookkeeper:0.5.0'",
        "upgrading pod: example-bookie-0",
        "error syncing cluster version, need manual intervention. failed to sync bookkeeper version. pod example-bookie-0 is restarting",
        "rolled back: 7 of 7 members ready at 0.5.0, Error cleared",
        "Every step behaved as documented",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}
