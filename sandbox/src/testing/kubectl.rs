//! kubectl against a sandbox, and polling with a deadline.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::Env;
use crate::Sandbox;

/// What kubectl talks to: anything with a kubeconfig file.
pub trait Kubeconfig {
    fn kubeconfig(&self) -> &Path;
}

impl Kubeconfig for Path {
    fn kubeconfig(&self) -> &Path {
        self
    }
}

impl Kubeconfig for PathBuf {
    fn kubeconfig(&self) -> &Path {
        self
    }
}

impl Kubeconfig for Sandbox {
    fn kubeconfig(&self) -> &Path {
        self.kubeconfig_path()
    }
}

impl<T: Kubeconfig + ?Sized> Kubeconfig for Arc<T> {
    fn kubeconfig(&self) -> &Path {
        (**self).kubeconfig()
    }
}

impl Kubeconfig for Env {
    fn kubeconfig(&self) -> &Path {
        self.sandbox.kubeconfig_path()
    }
}

/// The result of one kubectl run.
#[derive(Debug, Clone)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The result of a finished process.
    pub fn of(out: std::process::Output) -> Run {
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Stdout; panics with both streams unless it succeeded.
    pub fn expect_ok(self, args: &[&str]) -> String {
        assert!(
            self.ok,
            "kubectl {args:?} failed:\n{}{}",
            self.stderr, self.stdout
        );
        self.stdout
    }

    /// Stderr; panics unless it failed with `want` in stderr (`""`: any failure).
    pub fn expect_err(self, want: &str) -> String {
        assert!(
            !self.ok,
            "expected a failure with {want:?}, but it succeeded:\n{}",
            self.stdout
        );
        assert!(
            self.stderr.contains(want),
            "expected {want:?} in:\n{}",
            self.stderr
        );
        self.stderr
    }
}

/// `kubectl ARGS` against `kc`, stdin closed, with a discovery cache beside the kubeconfig (not
/// in the user's home) and no external diff.
pub fn kubectl_command(kc: &(impl Kubeconfig + ?Sized), args: &[&str]) -> std::process::Command {
    let kubeconfig = kc.kubeconfig();
    let mut c = std::process::Command::new("kubectl");
    c.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env(
            "KUBECACHEDIR",
            kubeconfig
                .parent()
                .unwrap_or(Path::new("."))
                .join("kubectl-cache"),
        )
        .env_remove("KUBECTL_EXTERNAL_DIFF")
        .stdin(Stdio::null());
    c
}

/// Runs kubectl; returns success, stdout and stderr.
pub async fn kubectl(kc: &(impl Kubeconfig + ?Sized), args: &[&str]) -> Run {
    let out = Command::from(kubectl_command(kc, args))
        .output()
        .await
        .unwrap_or_else(|e| panic!("kubectl is required on the PATH: {e}"));
    Run::of(out)
}

/// Runs kubectl and expects success; returns stdout.
pub async fn kubectl_ok(kc: &(impl Kubeconfig + ?Sized), args: &[&str]) -> String {
    kubectl(kc, args).await.expect_ok(args)
}

/// Runs kubectl with `stdin` as its standard input.
pub async fn kubectl_stdin(kc: &(impl Kubeconfig + ?Sized), args: &[&str], stdin: &str) -> Run {
    let mut cmd = Command::from(kubectl_command(kc, args));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("kubectl starts");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.as_bytes()).await.expect("write stdin");
    drop(pipe);
    Run::of(child.wait_with_output().await.expect("kubectl finishes"))
}

/// Applies YAML text with `kubectl apply -f -`; panics with stderr if it fails.
pub async fn apply_yaml(kc: &(impl Kubeconfig + ?Sized), yaml: &str) {
    let r = kubectl_stdin(kc, &["apply", "-f", "-"], yaml).await;
    assert!(r.ok, "kubectl apply failed: {}", r.stderr);
}

/// Runs kubectl until it succeeds, retrying while it fails with an error of a faulty API server
/// (`InternalError`, `ServiceUnavailable`, `TooManyRequests`, `Conflict`: see
/// `SandboxOptions::faults`); returns stdout.
pub async fn kubectl_retry(kc: &(impl Kubeconfig + ?Sized), args: &[&str]) -> String {
    let mut attempts = 0;
    loop {
        let r = kubectl(kc, args).await;
        if r.ok {
            return r.stdout;
        }
        attempts += 1;
        let transient = [
            "(InternalError)",
            "(ServiceUnavailable)",
            "(TooManyRequests)",
            "(Conflict)",
            "the object has been modified",
        ]
        .iter()
        .any(|e| r.stderr.contains(e));
        assert!(
            transient && attempts < 20,
            "kubectl {args:?} failed ({attempts} attempts): {}{}",
            r.stderr,
            r.stdout
        );
    }
}

/// The merge patch that sets `spec.version` of a PravegaCluster.
pub fn version_patch(version: &str) -> String {
    format!(r#"{{"spec":{{"version":"{version}"}}}}"#)
}

/// `kubectl patch PravegaCluster NAME --type=merge -p PATCH`.
pub fn merge_patch_args<'a>(name: &'a str, patch: &'a str) -> [&'a str; 6] {
    ["patch", "PravegaCluster", name, "--type=merge", "-p", patch]
}

/// Sets `spec.version` of PravegaCluster `name` (in the kubeconfig's namespace) with a merge
/// patch; the run is the caller's to judge (admission may refuse it).
pub async fn patch_version(kc: &(impl Kubeconfig + ?Sized), name: &str, version: &str) -> Run {
    let patch = version_patch(version);
    kubectl(kc, &merge_patch_args(name, &patch)).await
}

/// Polls `check` every 100 ms until it returns `Ok`, or panics with `what` and the last `Err`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => {
                if Instant::now() > deadline {
                    panic!("timed out waiting for {what}; last seen: {last}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
