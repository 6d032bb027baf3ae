//! Shared helpers of the end-to-end tests: a sandbox API server with simulated controllers and
//! kubelets, the real `kubectl`, and the real operator binary.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pravega_sandbox::sim::{SimOptions, Simulation};
use pravega_sandbox::{Sandbox, SandboxOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Path of a file in the workspace.
pub fn workspace_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// A sandbox with simulated controllers and kubelets, and the CRD installed with kubectl.
pub struct Env {
    pub sandbox: Sandbox,
    pub sim: Option<Simulation>,
    pub client: kube::Client,
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(SandboxOptions::default()).await
    }

    /// A sandbox started with `options` (e.g. faults); the simulation is its control plane,
    /// never faulted, and `client` too.
    pub async fn start_with(options: SandboxOptions) -> Env {
        let sandbox = Sandbox::start(options).await.expect("sandbox starts");
        let client = sandbox
            .control_plane_client()
            .await
            .expect("sandbox client");
        let sim = Simulation::start(client.clone(), SimOptions::default())
            .await
            .expect("simulation starts");
        let env = Env {
            sandbox,
            sim: Some(sim),
            client,
        };
        let crd = workspace_file("crds/pravegacluster.yaml");
        env.kubectl_retry(&["apply", "-f", crd.to_str().expect("utf-8 path")])
            .await;
        env
    }

    pub fn kubeconfig(&self) -> &Path {
        self.sandbox.kubeconfig_path()
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    pub async fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(Stdio::null())
            .output()
            .await
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs kubectl and expects success; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl(args).await;
        assert!(ok, "kubectl {args:?} failed: {err}{out}");
        out
    }

    /// Runs kubectl until it succeeds, retrying while it fails with an error of a faulty API
    /// server (`InternalError`, `ServiceUnavailable`, `TooManyRequests`, `Conflict`: see
    /// `SandboxOptions::faults`); returns stdout.
    pub async fn kubectl_retry(&self, args: &[&str]) -> String {
        let mut attempts = 0;
        loop {
            let (ok, out, err) = self.kubectl(args).await;
            if ok {
                return out;
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
            .any(|e| err.contains(e));
            assert!(
                transient && attempts < 20,
                "kubectl {args:?} failed ({attempts} attempts): {err}{out}"
            );
        }
    }

    /// Applies YAML text with `kubectl apply -f -`.
    pub async fn apply_yaml(&self, yaml: &str) {
        let mut child = Command::new("kubectl")
            .args(["apply", "-f", "-"])
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(yaml.as_bytes()).await.expect("write yaml");
        drop(stdin);
        let out = child.wait_with_output().await.expect("kubectl finishes");
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        let (ok, out, _) = self.kubectl(&["get", "PravegaCluster", name]).await;
        if !ok {
            return None;
        }
        parse_table(&out)
            .into_iter()
            .find(|row| row.first().map(|(_, v)| v.as_str()) == Some(name))
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

/// The value of column `name` in `row`.
pub fn col<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    row.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// Polls `check` until it returns `Some`, or panics with `what` and the last observation.
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

/// The claim the sample's filesystem tier 2 mounts (ReadWriteMany); users create it before the
/// cluster.
pub const TIER2_CLAIM: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: pravega-tier2
spec:
  accessModes: [ReadWriteMany]
  resources:
    requests:
      storage: 50Gi
"#;

/// Waits until the row of `kubectl get PravegaCluster NAME` shows every `(column, value)` of
/// `want` (an empty value: an empty cell), and returns the row.
pub async fn wait_cluster(env: &Env, name: &str, want: &[(&str, &str)]) -> Vec<(String, String)> {
    let what = format!(
        "{name} with {}",
        want.iter()
            .map(|(c, v)| format!("{c}='{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eventually(&what, Duration::from_secs(60), || async {
        let row = env.cluster_row(name).await.ok_or("no row")?;
        if want.iter().all(|(c, v)| col(&row, c) == *v) {
            Ok(row)
        } else {
            Err(format!("{row:?}"))
        }
    })
    .await
}

/// A running operator process.
pub struct Operator {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Operator {
    /// Starts the real binary against the sandbox, with `--metrics-addr 127.0.0.1:0` and `args`.
    pub async fn start(kubeconfig: &Path, args: &[&str]) -> Operator {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pravega-operator"))
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .env_remove("POD_NAMESPACE")
            .env_remove("WATCH_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("operator starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sink = log.clone();
        let echo = std::env::var_os("PRAVEGA_E2E_LOG").is_some();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("metrics server listening on ").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    if let (Some(tx), Ok(addr)) = (tx.take(), addr.parse::<SocketAddr>()) {
                        let _ = tx.send(addr);
                    }
                }
                if echo {
                    eprintln!("[operator] {line}");
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .expect("operator reports its metrics address")
            .expect("operator log stream");
        Operator { child, addr, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// GET `path` on the metrics address: (status code, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// The value of a metric sample (exact name with labels, as rendered), or 0.
    pub async fn metric(&self, sample: &str) -> f64 {
        let (_, body) = self.get("/metrics").await;
        metric_value(&body, sample)
    }

    /// Sum of every sample of a metric family (e.g. all `pravega_operator_api_writes_total`).
    pub async fn metric_sum(&self, family: &str) -> f64 {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .filter(|l| l.starts_with(family) && !l.starts_with('#'))
            .filter(|l| {
                let rest = &l[family.len()..];
                rest.starts_with('{') || rest.starts_with(' ')
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code.
    pub async fn terminate(mut self) -> Option<i32> {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("operator exits after SIGTERM")
            .expect("wait");
        status.code()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("operator log:\n{}", self.log());
        }
    }
}

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

/// A minimal HTTP/1.1 GET (the endpoints are plain HTTP on loopback).
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
