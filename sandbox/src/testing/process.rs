//! The workspace's real binaries as processes, and plain HTTP to them.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::{metric_sum, metric_value};
use crate::Sandbox;

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
