//! End to end: `kubectl pravega ...` as users run it (kubectl finds the built `kubectl-pravega`
//! on the `PATH`), against the real operator and webhook binaries on the sandbox.

mod support;
mod support_upgrade;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pravega_sandbox::sim::{FailureMode, SimOptions};
use serde_json::Value;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(90);

/// The sandbox with pods of 0.5.0 images slow to become Ready, so that an upgrade lasts long
/// enough to be looked at, paused and resumed.
async fn start_env() -> Env {
    Env::launch(EnvOptions {
        sim: Some(SimOptions {
            image_ready_delays: vec![(
                regex::Regex::new(r":0\.5\.0$").expect("regex"),
                Duration::from_millis(1500),
            )],
            ..SimOptions::default()
        }),
        crd: true,
        ..EnvOptions::default()
    })
    .await
}

/// `PATH` with the directory of the built plugin first.
fn path_with(plugin_dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![plugin_dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH")
}

struct Plugin {
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Plugin {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("pravega")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PATH", path_with(&self.dir))
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        cmd
    }

    /// `kubectl pravega ARGS`.
    async fn run(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(Duration::from_secs(30), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl pravega {args:?} hangs"))
            .expect("kubectl runs");
        Run::of(out)
    }

    async fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert!(
            r.ok,
            "kubectl pravega {args:?} failed:\n{}{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// `kubectl pravega status example -o json`.
    async fn status(&self) -> Value {
        let out = self.ok(&["status", "example", "-o", "json"]).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status JSON: {e}\n{out}"))
    }
}

fn updated(status: &Value) -> i64 {
    status["components"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["updated"].as_i64()).sum())
        .unwrap_or(0)
}

async fn wait_status(plugin: &Plugin, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(what, WAIT, || async {
        let s = plugin.status().await;
        if check(&s) { Ok(s) } else { Err(s.to_string()) }
    })
    .await
}

/// `kubectl patch` of `spec.version` of cluster `example` as a server dry run (admission runs,
/// nothing is stored).
async fn dry_run_version(env: &Env, version: &str) -> Run {
    let patch = format!(r#"{{"spec":{{"version":"{version}"}}}}"#);
    env.kubectl(&[
        "patch",
        "PravegaCluster",
        "example",
        "--type=merge",
        "--dry-run=server",
        "-p",
        &patch,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_plugin_plans_upgrades_pauses_resumes_and_rolls_back_as_users_run_it() {
    let env = start_env().await;
    let webhook = Webhook::start(&env.sandbox, &env.client, &webhook_bin()).await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    let bin = workspace_binary("kubectl-pravega", "kubectl-pravega");
    let plugin = Plugin {
        dir: bin.parent().expect("bin dir").to_path_buf(),
        kubeconfig: env.kubeconfig().to_path_buf(),
    };
    env.apply_yaml(support::TIER2_CLAIM).await;
    let sample = workspace_file("deploy/sample/pravegacluster.yaml");
    env.kubectl_ok(&["apply", "-f", sample.to_str().expect("utf-8")])
        .await;
    wait_status(&plugin, "example Ready at 0.4.0", |s| {
        s["state"] == "Ready" && s["version"] == "0.4.0"
    })
    .await;

    // plan --to 0.5.0: the verdict, then bookie-0,1,2, the controller, segmentstore-0,1,2.
    let plan = plugin.ok(&["plan", "example", "--to", "0.5.0"]).await;
    assert!(plan.contains("Version rules:  allowed"), "{plan}");
    let pos = |needle: &str| {
        plan.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in the plan:\n{plan}"))
    };
    let order = [
        pos("example-bookie-0"),
        pos("example-bookie-1"),
        pos("example-bookie-2"),
        pos("example-pravega-controller-"),
        pos("example-pravega-segmentstore-0"),
        pos("example-pravega-segmentstore-1"),
        pos("example-pravega-segmentstore-2"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "order:\n{plan}");
    assert!(
        plan.contains("image pravega/bookkeeper:0.4.0 -> pravega/bookkeeper:0.5.0"),
        "{plan}"
    );
    assert!(plan.contains("Apache BookKeeper 4.5.0 -> 4.7.3"), "{plan}");
    assert!(plan.contains("replacement Ready"), "{plan}");
    assert!(plan.contains("Estimated duration: about"), "{plan}");

    // plan --to 0.3.0: the webhook's own words, exit 1. The same change sent to the API server
    // (server dry run) is denied with the same message.
    let denied = plugin.run(&["plan", "example", "--to", "0.3.0"]).await;
    assert!(!denied.ok, "a denied plan exits 1");
    let message = "downgrading the cluster from 0.4.0 to 0.3.0 is not supported; spec.version must be 0.4.0 or higher";
    assert!(
        denied.stdout.contains("Version rules:  denied (Downgrade)"),
        "{}",
        denied.stdout
    );
    assert!(denied.stdout.contains(message), "{}", denied.stdout);
    dry_run_version(&env, "0.3.0")
        .await
        .expect_err(&format!("denied the request: {message}"));

    // plan --to 0.6.0 from 0.4.0: allowed, with the version-jump warning, which the webhook
    // also sends (kubectl prints `Warning: ...`).
    let jump = plugin.ok(&["plan", "example", "--to", "0.6.0"]).await;
    let warning = "spec.version goes from 0.4.0 to 0.6.0, skipping 0.5";
    assert!(jump.contains(&format!("Warning: {warning}")), "{jump}");
    let Run {
        ok, stderr: err, ..
    } = dry_run_version(&env, "0.6.0").await;
    assert!(ok, "{err}");
    assert!(err.contains(&format!("Warning: {warning}")), "{err}");

    // A server dry run of the upgrade changes nothing.
    let dry = plugin
        .ok(&["upgrade", "example", "0.5.0", "--dry-run"])
        .await;
    assert!(dry.contains("patched (server dry run)"), "{dry}");
    assert_eq!(plugin.status().await["desiredVersion"], "0.4.0");

    // `status -w -o json` follows the upgrade from watches: one JSON document per change.
    let frames = Arc::new(Mutex::new(Vec::<Value>::new()));
    let mut watch = plugin
        .command(&["status", "example", "-w", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("status -w starts");
    let stdout = watch.stdout.take().expect("stdout");
    let sink = frames.clone();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                sink.lock().expect("frames").push(v);
            }
        }
    });

    // upgrade: prints what changed and how to watch it.
    let up = plugin.ok(&["upgrade", "example", "0.5.0"]).await;
    assert!(up.contains("spec.version: 0.4.0 -> 0.5.0"), "{up}");
    assert!(
        up.contains("Watch it: kubectl pravega status example -w"),
        "{up}"
    );

    // status while it runs: progress, the version wanted, the elapsed time.
    let running = wait_status(&plugin, "a first bookie replaced", |s| {
        s["state"] == "Upgrading" && s["components"][0]["updated"].as_i64().unwrap_or(0) >= 1
    })
    .await;
    assert_eq!(running["desiredVersion"], "0.5.0");
    assert_eq!(running["version"], "0.4.0");
    assert!(running["elapsedSeconds"].is_u64(), "{running}");
    let text = plugin.ok(&["status", "example"]).await;
    for want in [
        "Desired version:  0.5.0",
        "BookKeeper",
        "Segment Store",
        "Elapsed:",
        "Events:",
    ] {
        assert!(text.contains(want), "{want} not in:\n{text}");
    }
    assert!(
        text.contains("UpgradeStarted"),
        "the upgrade's Events:\n{text}"
    );

    // pause holds it; resume lets it finish.
    let paused = plugin.ok(&["pause", "example"]).await;
    assert!(
        paused.contains("spec.upgrade.paused: false -> true"),
        "{paused}"
    );
    let held = wait_status(&plugin, "the upgrade paused", |s| s["state"] == "Paused").await;
    assert_eq!(held["blocker"]["reason"], "Paused", "{held}");
    // Let a replacement already under way finish, then nothing more moves.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = updated(&plugin.status().await);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = plugin.status().await;
    assert_eq!(
        updated(&after),
        before,
        "nothing moves while paused: {after}"
    );
    assert!(updated(&after) < 7, "{after}");
    let resumed = plugin.ok(&["resume", "example"]).await;
    assert!(
        resumed.contains("spec.upgrade.paused: true -> false"),
        "{resumed}"
    );
    wait_status(&plugin, "example Ready at 0.5.0", |s| {
        s["state"] == "Ready" && s["version"] == "0.5.0"
    })
    .await;

    // The watch saw the upgrade progress and finish, without being asked again.
    eventually("the watch to show 0.5.0", WAIT, || async {
        let seen = frames.lock().expect("frames").clone();
        if seen.last().is_some_and(|f| f["version"] == "0.5.0") {
            Ok(())
        } else {
            Err(format!("{} frames", seen.len()))
        }
    })
    .await;
    let seen = frames.lock().expect("frames").clone();
    let progress: Vec<i64> = seen
        .iter()
        .filter(|f| f["state"] == "Upgrading")
        .map(updated)
        .collect();
    assert!(
        progress.windows(2).any(|w| w[1] > w[0]),
        "the watch redrew as pods moved: {progress:?}"
    );
    assert!(
        seen.iter().any(|f| f["state"] == "Paused"),
        "the pause was seen"
    );
    let _ = watch.kill().await;
    reader.abort();

    // A denial by the webhook is printed as kubectl prints it, exit 1.
    let down = plugin.run(&["upgrade", "example", "0.4.0"]).await;
    assert!(!down.ok);
    assert!(
        down.stderr.contains(
            r#"Error from server (Forbidden): admission webhook "pravegacluster.pravega.pravega.io" denied the request: downgrading the cluster from 0.5.0 to 0.4.0 is not supported"#
        ),
        "{}",
        down.stderr
    );

    // A failed upgrade (0.6.0 bookies crash-loop), then rollback.
    env.sim.as_ref().expect("simulation").fail_image(
        regex::Regex::new(r":0\.6\.0$").expect("regex"),
        FailureMode::CrashLoop,
    );
    plugin.ok(&["upgrade", "example", "0.6.0"]).await;
    let failed = wait_status(&plugin, "the upgrade to fail", |s| s["state"] == "Failed").await;
    assert_eq!(failed["error"]["reason"], "UpgradeFailed", "{failed}");
    let text = plugin.ok(&["status", "example"]).await;
    assert!(
        text.contains("Error:            UpgradeFailed: failed to sync bookkeeper version. pod example-bookie-0 is restarting"),
        "{text}"
    );
    let back = plugin.run(&["rollback", "example"]).await;
    assert!(back.ok, "{}{}", back.stdout, back.stderr);
    assert!(
        back.stdout.contains("spec.version: 0.6.0 -> 0.5.0"),
        "{}",
        back.stdout
    );
    assert!(
        back.stderr
            .contains("Warning: rolling back the failed upgrade to 0.6.0"),
        "{}",
        back.stderr
    );
    wait_status(&plugin, "rolled back to 0.5.0 and Ready", |s| {
        s["state"] == "Ready" && s["version"] == "0.5.0" && s["desiredVersion"] == "0.5.0"
    })
    .await;
    let images = env.member_images().await;
    assert!(
        images.split_whitespace().all(|i| i.ends_with(":0.5.0")),
        "{images}"
    );
    // Nothing left to roll back.
    let again = plugin.ok(&["rollback", "example"]).await;
    assert!(again.contains("unchanged"), "{again}");

    assert_eq!(op.terminate().await, Some(0));
    webhook.stop().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_plugin_follows_kubectl_conventions_for_errors_and_namespaces() {
    let env = start_env().await;
    let bin = workspace_binary("kubectl-pravega", "kubectl-pravega");
    let plugin = Plugin {
        dir: bin.parent().expect("bin dir").to_path_buf(),
        kubeconfig: env.kubeconfig().to_path_buf(),
    };
    // A missing cluster: kubectl's wording on stderr, exit 1, nothing on stdout.
    let missing = plugin.run(&["status", "nope"]).await;
    assert!(!missing.ok);
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    assert!(
        missing.stderr.contains(
            r#"Error from server (NotFound): pravegaclusters.pravega.pravega.io "nope" not found"#
        ),
        "{}",
        missing.stderr
    );
    // -n looks in another namespace; --kubeconfig and --context are honoured.
    let other = plugin
        .run(&["-n", "elsewhere", "plan", "example", "--to", "0.5.0"])
        .await;
    assert!(!other.ok);
    assert!(
        other.stderr.contains(r#""example" not found"#),
        "{}",
        other.stderr
    );
    let bad_context = plugin
        .run(&["--context", "no-such-context", "status", "example"])
        .await;
    assert!(!bad_context.ok);
    assert!(
        bad_context.stderr.contains("no-such-context"),
        "{}",
        bad_context.stderr
    );
    let via_flag = Command::new(&bin)
        .args(["--kubeconfig"])
        .arg(env.kubeconfig())
        .args(["status", "nope"])
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("plugin runs");
    assert!(
        String::from_utf8_lossy(&via_flag.stderr).contains("(NotFound)"),
        "--kubeconfig reaches the sandbox: {}",
        String::from_utf8_lossy(&via_flag.stderr)
    );
    env.shutdown().await;
}
