//! The README's first command, `pravega-sandbox demo`, runs the whole story and exits 0 only if
//! every step behaved as documented.

use std::process::Command;

#[test]
fn demo_runs_the_whole_story() {
    let exe = env!("CARGO_BIN_EXE_pravega-sandbox");
    let output = Command::new(exe)
        .args(["demo", "--ready-delay", "200ms", "--step-timeout", "60s"])
        .output()
        .unwrap_or_else(|e| panic!("running {exe} demo: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}",
        output.status
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
