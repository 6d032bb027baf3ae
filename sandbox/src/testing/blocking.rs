//! The same for tests that block their thread (kubectl run with `std::process`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::kubectl_command;
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
pub fn jsonpath(kc: &(impl Kubeconfig + ?Sized), ns: &str, args: &[&str], path: &str) -> String {
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
