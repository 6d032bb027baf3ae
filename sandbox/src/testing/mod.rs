//! The shared kit of the workspace's tests (behind the `testing` feature, which only
//! `[dev-dependencies]` enable): a sandbox with or without the simulation, the real `kubectl`
//! against it, polling with a deadline, the workspace's real binaries as processes, and parsers
//! of what they print.
//!
//! - Start: [`sandbox`] (the API server alone), [`Env`] (API server, simulation and a client;
//!   [`Env::start`] also installs the PravegaCluster CRD).
//! - kubectl: [`kubectl`] ([`Run`]: success, stdout, stderr; [`Run::expect_err`] for a
//!   refusal), [`kubectl_ok`] (panics with stderr), [`kubectl_stdin`], [`apply_yaml`], [`kubectl_retry`]; [`blocking`] has the same
//!   for tests that run kubectl from plain threads. Every function takes anything with a
//!   kubeconfig ([`Kubeconfig`]: a path, a [`Sandbox`], an [`Env`]).
//! - Waiting: [`eventually`] (async) and [`blocking::eventually`], which panic with the last
//!   observation; [`Env::wait_jsonpath`] polls one `kubectl get -o jsonpath`.
//! - Files by concern: `kubectl.rs`, `blocking.rs`, `env.rs`, `parse.rs`, `process.rs`.
//! - Processes: [`Process`] (stderr captured as its log), [`Operator`], [`Webhook`] (registered
//!   with the sandbox); each crate passes the binary path (`env!("CARGO_BIN_EXE_…")` or
//!   [`workspace_binary`]).
//! - Parsing and HTTP: [`parse_table`], [`col`], [`table`], [`squash`], [`metric_value`],
//!   [`metric_sum`], [`http_get`], [`workspace_file`].

pub mod blocking;
mod env;
mod kubectl;
mod parse;
mod process;

use std::path::{Path, PathBuf};

use crate::{Sandbox, SandboxOptions};

pub use env::{Env, EnvOptions};
pub use kubectl::{
    Kubeconfig, Run, apply_yaml, eventually, kubectl, kubectl_command, kubectl_ok, kubectl_retry,
    kubectl_stdin, merge_patch_args, patch_version, version_patch,
};
pub use parse::{col, metric_sum, metric_value, parse_table, squash, table};
pub use process::{Operator, Process, Webhook, http_get};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the sandbox crate is in the workspace")
        .to_path_buf()
}

/// Path of a file of the workspace, `rel` from its root (e.g. `crds/pravegacluster.yaml`).
pub fn workspace_file(rel: &str) -> PathBuf {
    workspace_root().join(rel)
}

/// The workspace's `target/<profile>` directory of the running test or example binary.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> or target/<profile>/examples/<example>.
    exe.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not under target/<profile>/", exe.display()))
        .to_path_buf()
}

/// A binary of the workspace built in the same profile as the running test or example: built
/// with cargo first (a no-op when it is fresh), so it never lags behind its sources. For a
/// binary of another crate than the test's (a test's own is `env!("CARGO_BIN_EXE_<name>")`).
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    let dir = profile_dir();
    let release = dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(workspace_file("Cargo.toml"))
        .args(["-p", package, "--bin", bin]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cargo build runs");
    assert!(status.success(), "cargo build -p {package} failed");
    let path = dir.join(bin);
    assert!(path.is_file(), "{} not built", path.display());
    path
}

/// A free loopback port (free when asked; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("binding a loopback port: {e}"))
        .port()
}

/// Starts a sandbox API server (no simulation) on a free loopback port.
pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts")
}
