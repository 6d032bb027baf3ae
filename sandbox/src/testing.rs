//! The shared kit of the workspace's tests (behind the `testing` feature, which only
//! `[dev-dependencies]` enable): a sandbox with or without the simulation, the real `kubectl`
//! against it, polling with a deadline, the workspace's real binaries as processes, and parsers
//! of what they print.
//!
//! - Start: [`sandbox`] (the API server alone), [`Env`] (API server, simulation and a client;
//!   [`Env::start`] also installs the PravegaCluster CRD).
//! - kubectl: [`kubectl`] ([`Run`]: success, stdout, stderr), [`kubectl_ok`] (panics with
//!   stderr), [`kubectl_stdin`], [`apply_yaml`], [`kubectl_retry`]; [`blocking`] has the same
//!   for tests that run kubectl from plain threads. Every function takes anything with a
//!   kubeconfig ([`Kubeconfig`]: a path, a [`Sandbox`], an [`Env`]).
//! - Waiting: [`eventually`] (async) and [`blocking::eventually`], which panic with the last
//!   observation.
//! - Processes: [`Process`] (stderr captured as its log), [`Operator`], [`Webhook`] (registered
//!   with the sandbox); each crate passes the binary path (`env!("CARGO_BIN_EXE_…")` or
//!   [`workspace_binary`]).
//! - Parsing and HTTP: [`parse_table`], [`col`], [`table`], [`squash`], [`metric_value`],
//!   [`metric_sum`], [`http_get`], [`workspace_file`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::sim::{SimOptions, Simulation};
use crate::{Sandbox, SandboxOptions};

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

/// The same for tests that block their thread (kubectl run with `std::process`).
pub mod blocking {
    use super::*;
    pub use super::{
        Env, EnvOptions, Kubeconfig, Run, col, free_port, parse_table, sandbox, squash, table,
        workspace_file, workspace_root,
    };

    /// Runs kubectl (blocking the thread; call from a multi-threaded runtime).
    pub fn kubectl(kc: &(impl Kubeconfig + ?Sized), args: &[&str]) -> Run {
        Run::of(
            kubectl_command(kc, args)
                .output()
                .unwrap_or_else(|e| panic!("kubectl is required on the PATH: {e}")),
        )
    }

    /// Runs kubectl and expects success; returns stdout.
    pub fn kubectl_ok(kc: &(impl Kubeconfig + ?Sized), args: &[&str]) -> String {
        kubectl(kc, args).expect_ok(args)
    }

    /// Runs kubectl with `stdin` as its standard input.
    pub fn kubectl_stdin(kc: &(impl Kubeconfig + ?Sized), args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut c = kubectl_command(kc, args);
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
        Run::of(child.wait_with_output().expect("kubectl finishes"))
    }

    /// Runs kubectl with stdin and expects success; returns stdout.
    pub fn kubectl_stdin_ok(kc: &(impl Kubeconfig + ?Sized), args: &[&str], stdin: &str) -> String {
        kubectl_stdin(kc, args, stdin).expect_ok(args)
    }

    /// Starts kubectl in the background (e.g. `get -w`), its output to pipes.
    pub fn spawn_kubectl(kc: &(impl Kubeconfig + ?Sized), args: &[&str]) -> std::process::Child {
        kubectl_command(kc, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl starts")
    }

    /// `kubectl -n NS patch RESOURCE NAME --subresource=status --type=merge -p PATCH`, expecting
    /// success: how tests play a controller writing status.
    pub fn patch_status(
        kc: &(impl Kubeconfig + ?Sized),
        ns: &str,
        resource: &str,
        name: &str,
        patch: &str,
    ) -> String {
        kubectl_ok(
            kc,
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

    /// `kubectl -n NS patch RESOURCE NAME --type=TYPE -p PATCH` (`json`, `merge` or
    /// `strategic`).
    pub fn patch(
        kc: &(impl Kubeconfig + ?Sized),
        ns: &str,
        object: [&str; 2],
        patch_type: &str,
        body: &str,
    ) -> Run {
        let patch_type = format!("--type={patch_type}");
        let [resource, name] = object;
        kubectl(
            kc,
            &["-n", ns, "patch", resource, name, &patch_type, "-p", body],
        )
    }

    /// The same, expecting success; returns stdout.
    pub fn patch_ok(
        kc: &(impl Kubeconfig + ?Sized),
        ns: &str,
        object: [&str; 2],
        patch_type: &str,
        body: &str,
    ) -> String {
        let r = patch(kc, ns, object, patch_type, body);
        assert!(
            r.ok,
            "kubectl patch {object:?} {body} failed:\n{}{}",
            r.stderr, r.stdout
        );
        r.stdout
    }

    /// `kubectl -n NS get ARGS`, expecting success; returns stdout.
    pub fn kubectl_get(kc: &(impl Kubeconfig + ?Sized), ns: &str, args: &[&str]) -> String {
        let mut all = vec!["-n", ns, "get"];
        all.extend_from_slice(args);
        kubectl_ok(kc, &all)
    }

    /// `kubectl -n NS wait --for=condition=CONDITION TARGETS --timeout=30s`, expecting success.
    pub fn wait_condition(
        kc: &(impl Kubeconfig + ?Sized),
        ns: &str,
        condition: &str,
        targets: &[&str],
    ) -> String {
        let condition = format!("--for=condition={condition}");
        let mut all = vec!["-n", ns, "wait", condition.as_str()];
        all.extend_from_slice(targets);
        all.push("--timeout=30s");
        kubectl_ok(kc, &all)
    }

    /// `kubectl -n NS get ARGS -o jsonpath=PATH`, expecting success.
    pub fn jsonpath(
        kc: &(impl Kubeconfig + ?Sized),
        ns: &str,
        args: &[&str],
        path: &str,
    ) -> String {
        let out = format!("jsonpath={path}");
        let mut all = vec!["-n", ns, "get"];
        all.extend_from_slice(args);
        all.extend(["-o", out.as_str()]);
        kubectl_ok(kc, &all)
    }

    /// Creates namespace `ns` and installs the PravegaCluster CRD, waiting until it is
    /// established.
    pub fn install_crd(kc: &(impl Kubeconfig + ?Sized), ns: &str) {
        kubectl_ok(kc, &["create", "namespace", ns]);
        let crd = workspace_file("crds/pravegacluster.yaml");
        kubectl_ok(kc, &["apply", "-f", crd.to_str().expect("utf-8 path")]);
        kubectl_ok(
            kc,
            &[
                "wait",
                "--for",
                "condition=established",
                "--timeout=10s",
                "crd/pravegaclusters.pravega.pravega.io",
            ],
        );
    }

    /// Polls `check` every 100 ms until it returns `Ok` or `Some`, blocking the thread between
    /// tries, or panics with `what` and the last `Err`.
    pub fn eventually<T, R: Outcome<T>>(
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> R,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            match check().outcome() {
                Ok(v) => return v,
                Err(last) => {
                    if Instant::now() > deadline {
                        panic!("timed out waiting for {what}; last seen: {last}");
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What a blocking check returns: `Ok`/`Some` (done) or `Err`/`None` (not yet).
    pub trait Outcome<T> {
        fn outcome(self) -> Result<T, String>;
    }

    impl<T> Outcome<T> for Option<T> {
        fn outcome(self) -> Result<T, String> {
            self.ok_or_else(|| "not yet".to_owned())
        }
    }

    impl<T> Outcome<T> for Result<T, String> {
        fn outcome(self) -> Result<T, String> {
            self
        }
    }
}

/// How to start an [`Env`].
#[derive(Clone)]
pub struct EnvOptions {
    /// The API server's options (e.g. faults).
    pub sandbox: SandboxOptions,
    /// The simulation's options; `None`: no simulation.
    pub sim: Option<SimOptions>,
    /// Install the PravegaCluster CRD (with kubectl, retried through faults).
    pub crd: bool,
    /// Create this namespace.
    pub namespace: Option<String>,
}

impl Default for EnvOptions {
    /// A simulation with its default options, no CRD, no namespace.
    fn default() -> Self {
        EnvOptions {
            sandbox: SandboxOptions::default(),
            sim: Some(SimOptions::default()),
            crd: false,
            namespace: None,
        }
    }
}

/// A sandbox with simulated controllers and kubelets, and a client. The simulation and `client`
/// authenticate as the control plane ([`Sandbox::control_plane_client`]): never faulted.
pub struct Env {
    pub sandbox: Sandbox,
    pub sim: Option<Simulation>,
    pub client: kube::Client,
}

impl Env {
    /// The simulation and the CRD.
    pub async fn start() -> Env {
        Env::start_with(SandboxOptions::default()).await
    }

    /// The simulation and the CRD, on a sandbox started with `options` (e.g. faults).
    pub async fn start_with(options: SandboxOptions) -> Env {
        Env::launch(EnvOptions {
            sandbox: options,
            crd: true,
            ..EnvOptions::default()
        })
        .await
    }

    /// The simulation and namespace `ns` (no CRD).
    pub async fn in_namespace(ns: &str) -> Env {
        Env::launch(EnvOptions {
            namespace: Some(ns.into()),
            ..EnvOptions::default()
        })
        .await
    }

    pub async fn launch(options: EnvOptions) -> Env {
        let sandbox = Sandbox::start(options.sandbox)
            .await
            .expect("sandbox starts");
        let client = sandbox
            .control_plane_client()
            .await
            .expect("sandbox client");
        let sim = match options.sim {
            Some(sim) => Some(
                Simulation::start(client.clone(), sim)
                    .await
                    .expect("simulation starts"),
            ),
            None => None,
        };
        let env = Env {
            sandbox,
            sim,
            client,
        };
        if let Some(ns) = &options.namespace {
            env.kubectl_ok(&["create", "namespace", ns]).await;
        }
        if options.crd {
            let crd = workspace_file("crds/pravegacluster.yaml");
            env.kubectl_retry(&["apply", "-f", crd.to_str().expect("utf-8 path")])
                .await;
        }
        env
    }

    pub fn kubeconfig(&self) -> &Path {
        self.sandbox.kubeconfig_path()
    }

    /// The sandbox and the simulation, for tests that hold them apart.
    pub fn into_parts(self) -> (Sandbox, Simulation) {
        (self.sandbox, self.sim.expect("simulation running"))
    }

    /// The simulation; panics if there is none.
    pub fn sim(&self) -> &Simulation {
        self.sim.as_ref().expect("simulation running")
    }

    /// [`kubectl`] against this sandbox.
    pub async fn kubectl(&self, args: &[&str]) -> Run {
        kubectl(self, args).await
    }

    /// [`kubectl_ok`] against this sandbox.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        kubectl_ok(self, args).await
    }

    /// [`kubectl_retry`] against this sandbox.
    pub async fn kubectl_retry(&self, args: &[&str]) -> String {
        kubectl_retry(self, args).await
    }

    /// [`apply_yaml`] against this sandbox.
    pub async fn apply_yaml(&self, yaml: &str) {
        apply_yaml(self, yaml).await
    }

    /// `kubectl apply -f FILE` of a workspace file (`rel` from the root); returns stdout.
    pub async fn apply_file(&self, rel: &str) -> String {
        let path = workspace_file(rel);
        self.kubectl_ok(&["apply", "-f", path.to_str().expect("utf-8 path")])
            .await
    }

    /// `kubectl patch PravegaCluster NAME --type=TYPE -p PATCH` (`json` or `merge`).
    pub async fn try_patch_cluster(&self, name: &str, patch_type: &str, patch: &str) -> Run {
        let patch_type = format!("--type={patch_type}");
        self.kubectl(&["patch", "PravegaCluster", name, &patch_type, "-p", patch])
            .await
    }

    /// The same, expecting success; returns stdout.
    pub async fn patch_cluster(&self, name: &str, patch_type: &str, patch: &str) -> String {
        let patch_type = format!("--type={patch_type}");
        self.kubectl_ok(&["patch", "PravegaCluster", name, &patch_type, "-p", patch])
            .await
    }

    /// `kubectl get ARGS -o jsonpath=PATH`, expecting success.
    pub async fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let out = format!("jsonpath={path}");
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", out.as_str()]);
        self.kubectl_ok(&all).await
    }

    /// Waits until the row of `kubectl get PravegaCluster NAME` passes `check`; returns it.
    pub async fn wait_row(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&[(String, String)]) -> bool,
    ) -> Vec<(String, String)> {
        eventually(what, timeout, || async {
            let row = self.cluster_row(name).await.ok_or("no row")?;
            if check(&row) {
                Ok(row)
            } else {
                Err(format!("{row:?}"))
            }
        })
        .await
    }

    /// The images of the pods of cluster `example`, space-separated, as kubectl prints them.
    pub async fn member_images(&self) -> String {
        self.kubectl_retry(&[
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/instance=example",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ])
        .await
    }

    /// The row of `kubectl get PravegaCluster` for `name`, as (column header, cell) pairs.
    pub async fn cluster_row(&self, name: &str) -> Option<Vec<(String, String)>> {
        let r = self.kubectl(&["get", "PravegaCluster", name]).await;
        if !r.ok {
            return None;
        }
        parse_table(&r.stdout)
            .into_iter()
            .find(|row| row.first().map(|(_, v)| v.as_str()) == Some(name))
    }

    /// Waits (60 s at most) until the row of `kubectl get PravegaCluster NAME` shows every
    /// `(column, value)` of `want` (an empty value: an empty cell), and returns the row.
    pub async fn wait_cluster(&self, name: &str, want: &[(&str, &str)]) -> Vec<(String, String)> {
        let what = format!(
            "{name} with {}",
            want.iter()
                .map(|(c, v)| format!("{c}='{v}'"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.wait_row(name, &what, Duration::from_secs(60), |row| {
            want.iter().all(|(c, v)| col(row, c) == *v)
        })
        .await
    }

    pub async fn shutdown(mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        self.sandbox.shutdown().await;
    }
}

/// Parses kubectl's table output by the column offsets of its header (cells may be empty).
pub fn parse_table(out: &str) -> Vec<Vec<(String, String)>> {
    let mut lines = out.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let mut starts = Vec::new();
    let bytes = header.as_bytes();
    for i in 0..bytes.len() {
        let starts_word = bytes[i] != b' ' && (i == 0 || (i >= 2 && &bytes[i - 2..i] == b"  "));
        if starts_word {
            starts.push(i);
        }
    }
    let cell = |line: &str, k: usize| -> String {
        let from = starts[k].min(line.len());
        let to = starts
            .get(k + 1)
            .copied()
            .unwrap_or(line.len())
            .min(line.len());
        line.get(from..to).unwrap_or_default().trim().to_owned()
    };
    let names: Vec<String> = (0..starts.len()).map(|k| cell(header, k)).collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            names
                .iter()
                .enumerate()
                .map(|(k, n)| (n.clone(), cell(l, k)))
                .collect()
        })
        .collect()
}

/// The value of column `name` in `row` (of [`parse_table`]), or empty.
pub fn col<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    row.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// Splits table output into rows of whitespace-separated cells (header first).
pub fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Collapses runs of spaces (kubectl aligns columns differently depending on content).
pub fn squash(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of a metric sample (exact name with labels, as rendered) in a scrape, or 0.
pub fn metric_value(body: &str, sample: &str) -> f64 {
    body.lines()
        .find_map(|l| {
            l.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Sum of every sample of a metric family in a scrape (e.g. all `…_api_writes_total`).
pub fn metric_sum(body: &str, family: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(family) && !l.starts_with('#'))
        .filter(|l| {
            let rest = &l[family.len()..];
            rest.starts_with('{') || rest.starts_with(' ')
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A minimal HTTP/1.1 GET on plain HTTP: (status code, body); (0, "") if it cannot connect.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// A process of a real binary: stderr captured line by line as its log (also echoed when
/// `PRAVEGA_E2E_LOG` is set), killed when dropped, its log printed if the test panics.
pub struct Process {
    pub child: Child,
    name: String,
    log: Arc<Mutex<String>>,
}

impl Process {
    /// Spawns `cmd` (its stdin and stdout closed, stderr captured) as `name`.
    pub fn spawn(name: &str, mut cmd: Command) -> Process {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let echo = std::env::var_os("PRAVEGA_E2E_LOG").is_some();
        let prefix = name.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("[{prefix}] {line}");
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        Process {
            child,
            name: name.to_owned(),
            log,
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until a line of its log gives `find` a value; panics with the log after `timeout`
    /// or if the process exits first.
    pub async fn wait_log<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        find: impl Fn(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.log().lines().find_map(&find) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before {what}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {what} within {timeout:?}; log:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends signal `signal` (e.g. `TERM`, `STOP`, `CONT`) with `kill`.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("process running").to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Waits for the exit; panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within {timeout:?}", self.name))
            .expect("wait")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{} log:\n{}", self.name, self.log());
        }
    }
}

/// A running operator process, with the address of its metrics server.
pub struct Operator {
    pub process: Process,
    pub addr: SocketAddr,
}

impl std::ops::Deref for Operator {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl std::ops::DerefMut for Operator {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

impl Operator {
    /// Starts the operator binary `bin` against `kubeconfig`, with
    /// `--metrics-addr 127.0.0.1:0` and `args`; returns once it logs its metrics address.
    pub async fn start(bin: impl AsRef<Path>, kubeconfig: &Path, args: &[&str]) -> Operator {
        Operator::start_logging(bin, kubeconfig, args, "info").await
    }

    /// The same with `RUST_LOG` set to `filter`.
    pub async fn start_logging(
        bin: impl AsRef<Path>,
        kubeconfig: &Path,
        args: &[&str],
        filter: &str,
    ) -> Operator {
        let mut cmd = Command::new(bin.as_ref());
        cmd.args(["--metrics-addr", "127.0.0.1:0"])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", filter)
            .env_remove("POD_NAMESPACE")
            .env_remove("WATCH_NAMESPACE");
        let mut process = Process::spawn("operator", cmd);
        let addr = process
            .wait_log("its metrics address", Duration::from_secs(20), |line| {
                let rest = line.split("metrics server listening on ").nth(1)?;
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                addr.parse::<SocketAddr>().ok()
            })
            .await;
        Operator { process, addr }
    }

    /// GET `path` on the metrics address: (status code, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// The value of a metric sample (exact name with labels, as rendered), or 0.
    pub async fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.get("/metrics").await.1, sample)
    }

    /// Sum of every sample of a metric family (e.g. all `pravega_operator_api_writes_total`).
    pub async fn metric_sum(&self, family: &str) -> f64 {
        metric_sum(&self.get("/metrics").await.1, family)
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code.
    pub async fn terminate(mut self) -> Option<i32> {
        self.signal("TERM").await;
        self.wait_exit(Duration::from_secs(20)).await.code()
    }
}

/// The real `pravega-webhook` binary serving on loopback, registered with the sandbox exactly as
/// the demo does it ([`crate::demo::start_webhook`]).
pub struct Webhook {
    pub process: crate::demo::WebhookProcess,
    dir: tempfile::TempDir,
}

impl Webhook {
    /// Starts the webhook binary `bin` (e.g. `workspace_binary("pravega-webhook", …)`).
    pub async fn start(sandbox: &Sandbox, client: &kube::Client, bin: &Path) -> Webhook {
        let dir = tempfile::Builder::new()
            .prefix("pravega-webhook-test-")
            .tempdir()
            .expect("webhook work dir");
        let process = crate::demo::start_webhook(sandbox, client, bin, dir.path())
            .await
            .expect("webhook starts and is registered");
        Webhook { process, dir }
    }

    /// Where it serves `/metrics`.
    pub fn metrics_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.process.metrics_port))
    }

    /// Its work directory (certificates, `webhook.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the process.
    pub async fn stop(mut self) {
        let _ = self.process.child.kill().await;
    }
}
