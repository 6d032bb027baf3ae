//! The real `pravega-webhook` binary over real TLS: admission answers, certificate rotation the
//! way a Secret volume does it (no failed request, new handshakes get the new certificate), a
//! broken new pair (the old certificate stays), readiness, metrics, and SIGTERM.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pravega_sandbox::testing::{Process, http_get};
use pravega_webhook::{DevCa, DevCerts};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use common::{status, update};

const BIN: &str = env!("CARGO_BIN_EXE_pravega-webhook");

/// A directory laid out like a projected Secret volume: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<timestamp>`, updated by renaming a new `..data_tmp` symlink over `..data`.
struct SecretVolume {
    dir: PathBuf,
    generation: u32,
    current: Option<String>,
}

impl SecretVolume {
    fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("volume dir");
        Self {
            dir: dir.to_owned(),
            generation: 0,
            current: None,
        }
    }

    fn publish(&mut self, cert_pem: &str, key_pem: &str) {
        use std::os::unix::fs::symlink;
        self.generation += 1;
        let data = format!("..2026_11_25_13_00_{:02}.{:09}", self.generation, 42);
        let data_dir = self.dir.join(&data);
        std::fs::create_dir(&data_dir).expect("data dir");
        std::fs::write(data_dir.join("tls.crt"), cert_pem).expect("tls.crt");
        std::fs::write(data_dir.join("tls.key"), key_pem).expect("tls.key");
        let tmp = self.dir.join("..data_tmp");
        symlink(&data, &tmp).expect("..data_tmp");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
        if self.current.is_none() {
            symlink("..data/tls.crt", self.dir.join("tls.crt")).expect("tls.crt link");
            symlink("..data/tls.key", self.dir.join("tls.key")).expect("tls.key link");
        }
        if let Some(old) = self.current.replace(data) {
            std::fs::remove_dir_all(self.dir.join(old)).expect("remove old data");
        }
    }

    fn cert_file(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    fn key_file(&self) -> PathBuf {
        self.dir.join("tls.key")
    }
}

/// The running binary (killed on drop) and the addresses it logged.
struct Webhook {
    process: Process,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
}

impl Webhook {
    async fn start(volume: &SecretVolume) -> Self {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("--tls-cert-file")
            .arg(volume.cert_file())
            .arg("--tls-key-file")
            .arg(volume.key_file())
            .args([
                "--addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
                "--cert-reload-interval",
                "100ms",
                "--log-json",
            ])
            .env("RUST_LOG", "info");
        let mut process = Process::spawn("pravega-webhook", cmd);
        let (addr, metrics_addr) = process
            .wait_log("listening line", Duration::from_secs(30), |line| {
                let v: Value = serde_json::from_str(line).ok()?;
                let fields = &v["fields"];
                Some((
                    fields["webhook_addr"]
                        .as_str()?
                        .parse()
                        .expect("webhook addr"),
                    fields["metrics_addr"]
                        .as_str()?
                        .parse()
                        .expect("metrics addr"),
                ))
            })
            .await;
        Self {
            process,
            addr,
            metrics_addr,
        }
    }

    fn logs_contain(&self, needle: &str) -> bool {
        self.process.log().contains(needle)
    }
}

fn localhost() -> Vec<String> {
    vec!["localhost".to_owned()]
}

fn issue(ca: &DevCa) -> DevCerts {
    ca.issue(&localhost(), &["127.0.0.1".parse().expect("ip")])
        .expect("issue")
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("pem")
        .to_vec()
}

/// A client configuration that trusts only `ca_pem`.
fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("ca"))
        .expect("add ca");
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Every new connection makes a full handshake: a resumed session would show the
    // certificate of the session it resumes.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

type Pooled = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn pooled_client(ca_pem: &str) -> Pooled {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*client_config(ca_pem, &[])).clone())
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

fn downgrade_body(uid: &str) -> Vec<u8> {
    let healthy = Some(status(
        "0.5.0",
        None,
        &[("PodsReady", "True", "AllPodsReady")],
    ));
    serde_json::to_vec(&update(uid, "0.5.0", healthy, "0.4.0")).expect("json")
}

fn check_denied(answer: &Value, uid: &str) -> Result<(), String> {
    let r = &answer["response"];
    if r["uid"] != uid || r["allowed"] != false || r["status"]["code"] != 403 {
        return Err(format!("unexpected answer {answer}"));
    }
    Ok(())
}

/// The answer is HTTP 200 and denies request `uid`.
async fn check_answer<B>(response: hyper::Response<B>, uid: &str) -> Result<(), String>
where
    B: hyper::body::Body,
    B::Error: std::fmt::Display,
{
    let (status, _, body) = common::parts(response).await?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}"));
    }
    let answer: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    check_denied(&answer, uid)
}

/// One request over the pooled (keep-alive) client.
async fn pooled_request(client: &Pooled, addr: SocketAddr, uid: &str) -> Result<(), String> {
    let request = Request::post(format!("https://localhost:{}/validate", addr.port()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(downgrade_body(uid))))
        .map_err(|e| e.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{e:?}"))?;
    check_answer(response, uid).await
}

/// One request over a new TLS connection; returns the leaf certificate the server presented.
async fn fresh_request(
    connector: &TlsConnector,
    addr: SocketAddr,
    uid: &str,
) -> Result<Vec<u8>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or("no peer certificate")?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = Request::post("/validate")
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(downgrade_body(uid))))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    check_answer(response, uid).await?;
    Ok(leaf)
}

async fn wait_ready(webhook: &Webhook) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(webhook.metrics_addr, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fresh handshakes until the server presents `expected`.
async fn wait_for_certificate(connector: &TlsConnector, addr: SocketAddr, expected: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leaf = fresh_request(connector, addr, "wait")
            .await
            .expect("request");
        if leaf == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_without_failed_requests_and_a_broken_pair_keeps_the_old_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = DevCa::new().expect("ca");
    let (a, b, c, d) = (issue(&ca), issue(&ca), issue(&ca), issue(&ca));
    let mut volume = SecretVolume::new(&tmp.path().join("webhook-tls"));
    volume.publish(&a.cert_pem, &a.key_pem);

    let webhook = Webhook::start(&volume).await;
    wait_ready(&webhook).await;
    let (status, text) = http_get(webhook.metrics_addr, "/healthz").await;
    assert_eq!((status, text.as_str()), (200, "ok\n"));

    let connector = TlsConnector::from(client_config(ca.cert_pem(), &[]));
    let client = pooled_client(ca.cert_pem());
    assert_eq!(
        fresh_request(&connector, webhook.addr, "first").await,
        Ok(der(&a.cert_pem))
    );
    pooled_request(&client, webhook.addr, "pooled-first")
        .await
        .expect("pooled");

    // A client that trusts another CA is refused.
    let stranger = TlsConnector::from(client_config(DevCa::new().expect("ca").cert_pem(), &[]));
    assert!(fresh_request(&stranger, webhook.addr, "x").await.is_err());

    // Load from keep-alive connections and from new connections while the volume rotates.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let mut load = Vec::new();
    for worker in 0..2 {
        let (stop, ok, failures, client, addr) = (
            stop.clone(),
            ok.clone(),
            failures.clone(),
            client.clone(),
            webhook.addr,
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                match pooled_request(&client, addr, &format!("keepalive-{worker}-{i}")).await {
                    Ok(()) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        failures.lock().expect("failures").push(e);
                        0
                    }
                };
            }
        }));
    }
    {
        let (stop, ok, failures, seen, connector, addr) = (
            stop.clone(),
            ok.clone(),
            failures.clone(),
            seen.clone(),
            connector.clone(),
            webhook.addr,
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                match fresh_request(&connector, addr, &format!("fresh-{i}")).await {
                    Ok(leaf) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                        seen.lock().expect("seen").push(leaf);
                    }
                    Err(e) => failures.lock().expect("failures").push(e),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    volume.publish(&b.cert_pem, &b.key_pem);
    wait_for_certificate(&connector, webhook.addr, &der(&b.cert_pem)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.expect("load task");
    }
    let failures = failures.lock().expect("failures").clone();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let seen = seen.lock().expect("seen").clone();
    let (old, new) = (der(&a.cert_pem), der(&b.cert_pem));
    let first_new = seen
        .iter()
        .position(|leaf| *leaf == new)
        .expect("new handshakes saw the new certificate");
    assert!(first_new > 0, "the old certificate was served before");
    assert!(seen[..first_new].iter().all(|leaf| *leaf == old));
    assert!(
        seen[first_new..].iter().all(|leaf| *leaf == new),
        "once swapped, only the new certificate is served"
    );
    assert!(ok.load(Ordering::SeqCst) > 20, "the load ran");

    // A broken new pair (c's certificate with d's key): refused, b stays.
    volume.publish(&c.cert_pem, &d.key_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !webhook.logs_contain("refused new serving certificate content") {
        assert!(Instant::now() < deadline, "the broken pair was not noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(webhook.logs_contain("cannot serve the certificate"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fresh_request(&connector, webhook.addr, "after-broken").await,
        Ok(new.clone())
    );
    pooled_request(&client, webhook.addr, "pooled-after-broken")
        .await
        .expect("pooled");
    assert_eq!(http_get(webhook.metrics_addr, "/readyz").await.0, 200);

    // A valid pair again: served (the reloader goes on after a failure).
    volume.publish(&d.cert_pem, &d.key_pem);
    wait_for_certificate(&connector, webhook.addr, &der(&d.cert_pem)).await;

    let (status, metrics) = http_get(webhook.metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    let not_after = pravega_webhook::tls::certificate_info(&der(&d.cert_pem))
        .expect("info")
        .not_after;
    for line in [
        format!("pravega_webhook_certificate_expiry_timestamp_seconds {not_after}"),
        "pravega_webhook_certificate_reloads_total{result=\"success\"} 3".to_owned(),
        "pravega_webhook_certificate_reloads_total{result=\"failure\"} 1".to_owned(),
        "pravega_webhook_requests_total{operation=\"UPDATE\",decision=\"denied\",reason=\"Downgrade\"}"
            .to_owned(),
    ] {
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_then_exits_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = DevCa::new().expect("ca");
    let a = issue(&ca);
    let mut volume = SecretVolume::new(&tmp.path().join("webhook-tls"));
    volume.publish(&a.cert_pem, &a.key_pem);
    let mut webhook = Webhook::start(&volume).await;
    wait_ready(&webhook).await;

    // Start a request and send only half of its body.
    let connector = TlsConnector::from(client_config(ca.cert_pem(), &[b"http/1.1"]));
    let tcp = TcpStream::connect(webhook.addr).await.expect("connect");
    let mut tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    let body = downgrade_body("in-flight");
    let (first, rest) = body.split_at(body.len() / 2);
    tls.write_all(
        format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .expect("headers");
    tls.write_all(first).await.expect("first half");
    tls.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(200)).await;

    webhook.process.signal("TERM").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !webhook.logs_contain("shutting down") {
        assert!(Instant::now() < deadline, "no shutdown log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Not ready any more, and no new connections are accepted...
    let (status, text) = http_get(webhook.metrics_addr, "/readyz").await;
    assert_eq!((status, text.as_str()), (503, "not ready: shutting down\n"));
    assert!(TcpStream::connect(webhook.addr).await.is_err());
    assert!(
        webhook
            .process
            .child
            .try_wait()
            .expect("try_wait")
            .is_none()
    );

    // ...but the request in flight is answered.
    tls.write_all(rest).await.expect("rest");
    tls.flush().await.expect("flush");
    // The server closes the connection after answering (keep-alive is off while draining).
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no answer to the request in flight"),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let answer: Value = serde_json::from_str(
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default(),
    )
    .expect("json answer");
    check_denied(&answer, "in-flight").expect("answer");

    let status = webhook.process.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}");
    assert!(webhook.logs_contain("shutdown complete"));
}
