//! Shared helpers for the sandbox's integration tests.
#![allow(dead_code)]

use pravega_sandbox::{Sandbox, SandboxOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Starts a sandbox on a free loopback port.
pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts")
}

/// The workspace root (for `crds/` and `deploy/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The result of one kubectl run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

fn to_run(o: Output) -> Run {
    Run {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn base(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("kubectl");
    c.args(args)
        .env("KUBECONFIG", kubeconfig)
        // A discovery cache per sandbox (removed with it), not in the user's home.
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

/// Runs kubectl against the sandbox (blocking; call from a multi-threaded runtime).
pub fn kubectl(sb: &Sandbox, args: &[&str]) -> Run {
    to_run(
        base(sb.kubeconfig_path(), args)
            .output()
            .expect("kubectl runs"),
    )
}

/// Runs kubectl with `stdin` as standard input.
pub fn kubectl_stdin(sb: &Sandbox, args: &[&str], stdin: &str) -> Run {
    let mut c = base(sb.kubeconfig_path(), args);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("kubectl starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    to_run(child.wait_with_output().expect("kubectl finishes"))
}

/// Runs kubectl and asserts success, returning stdout.
pub fn ok(sb: &Sandbox, args: &[&str]) -> String {
    let r = kubectl(sb, args);
    assert!(r.ok, "kubectl {args:?} failed:\n{}{}", r.stdout, r.stderr);
    r.stdout
}

/// `kubectl -n <ns> patch <resource> <name> --subresource=status --type=merge -p <patch>`, asserting
/// success: how the tests play a controller writing status.
pub fn patch_status(sb: &Sandbox, ns: &str, resource: &str, name: &str, patch: &str) -> String {
    ok(
        sb,
        &[
            "-n",
            ns,
            "patch",
            resource,
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            patch,
        ],
    )
}

/// Runs kubectl with stdin and asserts success.
pub fn ok_stdin(sb: &Sandbox, args: &[&str], stdin: &str) -> String {
    let r = kubectl_stdin(sb, args, stdin);
    assert!(r.ok, "kubectl {args:?} failed:\n{}{}", r.stdout, r.stderr);
    r.stdout
}

/// Starts kubectl in the background (e.g. `get -w`), output to a pipe.
pub fn spawn_kubectl(sb: &Sandbox, args: &[&str]) -> std::process::Child {
    base(sb.kubeconfig_path(), args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts")
}

/// Splits table output into rows of whitespace-separated cells (header first).
pub fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Creates a namespace and installs the PravegaCluster CRD, waiting until it is established.
pub fn install_crd(sb: &Sandbox, ns: &str) {
    ok(sb, &["create", "namespace", ns]);
    let crd = repo_root().join("crds/pravegacluster.yaml");
    ok(sb, &["apply", "-f", crd.to_str().expect("utf-8 path")]);
    ok(
        sb,
        &[
            "wait",
            "--for",
            "condition=established",
            "--timeout=10s",
            "crd/pravegaclusters.pravega.pravega.io",
        ],
    );
}

/// Collapses runs of spaces (kubectl aligns columns differently depending on content).
pub fn squash(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A sandbox with the simulation running and namespace `ns` created.
pub async fn sandbox_with_simulation(ns: &str) -> (Sandbox, pravega_sandbox::sim::Simulation) {
    let sb = sandbox().await;
    let client = sb.client().await.expect("client");
    let sim = pravega_sandbox::sim::Simulation::start(
        client,
        pravega_sandbox::sim::SimOptions::default(),
    )
    .await
    .expect("simulation starts");
    ok(&sb, &["create", "namespace", ns]);
    (sb, sim)
}

/// Polls `f` until it gives a value (30 s at most), blocking the calling thread between tries.
pub fn eventually_blocking<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
