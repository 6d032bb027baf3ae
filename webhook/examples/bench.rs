//! Throughput and latency of `POST /validate` over TLS with keep-alive, next to a floor: a
//! minimal hyper + rustls server (same TLS configuration and certificate) that reads the body
//! and returns a fixed AdmissionReview.
//!
//! Run: `cargo run --release -p pravega-webhook --example bench [-- CONNECTIONS SECONDS]`
//! (defaults: 8 connections, 3 s per server and scenario, loopback).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pravega_webhook::tls::{CertPaths, CertResolver, load_pair, server_config, unix_now};
use pravega_webhook::{Config, DevCa, Server, write_dev_certs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Rounds per server and scenario: the servers take turns, so that a change in the machine's load
/// affects both alike.
const ROUNDS: u32 = 3;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A realistic UPDATE review (an allowed upgrade), about the size kubectl apply produces.
fn review_body() -> Vec<u8> {
    let object = |version: &str| {
        json!({
            "apiVersion": "pravega.pravega.io/v1beta1",
            "kind": "PravegaCluster",
            "metadata": {
                "name": "example", "namespace": "default", "uid": "5f0c7a0e-8f6e-4c4e-9a43-8d3c2c8b1f00",
                "generation": 3, "resourceVersion": "12345", "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                    format!("{{\"apiVersion\":\"pravega.pravega.io/v1beta1\",\"kind\":\"PravegaCluster\",\"metadata\":{{\"name\":\"example\",\"namespace\":\"default\"}},\"spec\":{{\"version\":\"{version}\",\"bookkeeper\":{{\"replicas\":3}},\"pravega\":{{\"controllerReplicas\":1,\"segmentStoreReplicas\":3}}}}}}\n")},
                "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "pravega.pravega.io/v1beta1",
                    "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                        "f:spec": {".": {}, "f:bookkeeper": {".": {}, "f:replicas": {}}, "f:pravega": {".": {}, "f:controllerReplicas": {}, "f:segmentStoreReplicas": {}}, "f:version": {}}}}]
            },
            "spec": {
                "version": version, "zookeeperUri": "zookeeper-client:2181",
                "bookkeeper": {"replicas": 3, "image": {"repository": "pravega/bookkeeper"}, "options": {"journalDirectories": "/bk/journal"}},
                "pravega": {"controllerReplicas": 1, "segmentStoreReplicas": 3, "image": {"repository": "pravega/pravega"},
                    "options": {"pravegaservice.containerCount": "4", "bookkeeper.bkEnsembleSize": "3"}},
                "upgrade": {"timeout": "10m", "paused": false, "autoRollback": false}
            },
            "status": {
                "currentVersion": "0.4.0", "replicas": 7, "readyReplicas": 7, "currentReplicas": 7,
                "conditions": [
                    {"type": "Upgrading", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "PodsReady", "status": "True", "reason": "AllPodsReady", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "Error", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}
                ],
                "members": {"ready": ["example-bookie-0", "example-bookie-1", "example-bookie-2",
                    "example-pravega-controller-64ff87fc49-kqp9k", "example-pravega-segmentstore-0",
                    "example-pravega-segmentstore-1", "example-pravega-segmentstore-2"]}
            }
        })
    };
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
            "resource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
            "requestKind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
            "requestResource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
            "name": "example", "namespace": "default", "operation": "UPDATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object("0.5.0"), "oldObject": object("0.4.0"), "dryRun": false,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
        }
    }))
    .unwrap_or_default()
}

/// A small CREATE review (what `kubectl create` of a short manifest sends).
fn small_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
            "resource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
            "name": "example", "namespace": "default", "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"},
            "object": {"apiVersion": "pravega.pravega.io/v1beta1", "kind": "PravegaCluster",
                "metadata": {"name": "example", "namespace": "default"},
                "spec": {"version": "0.4.0", "bookkeeper": {"replicas": 3}, "pravega": {"segmentStoreReplicas": 3}}},
            "dryRun": false
        }
    }))
    .unwrap_or_default()
}

const FIXED_ANSWER: &[u8] = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}"#;

/// The floor: hyper + rustls, read the body, answer a fixed AdmissionReview.
async fn start_floor(tls: Arc<rustls::ServerConfig>) -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(tls);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header(header::CONTENT_TYPE, "application/json")
                            .body(Full::new(Bytes::from_static(FIXED_ANSWER)))
                            .unwrap_or_default(),
                    )
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

struct Run {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn empty() -> Self {
        Run {
            requests: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
        }
    }

    fn add(&mut self, other: Run) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
    }

    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }
}

/// `connections` keep-alive HTTP/1.1 connections over TLS, each sending requests back to back
/// for `warmup + measure`; only the `measure` part is counted.
async fn drive(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    body: Bytes,
    connections: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<Run, BoxError> {
    let start = Instant::now() + warmup;
    let end = start + measure;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let connector = TlsConnector::from(client.clone());
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let tls = connector
                .connect(ServerName::try_from("localhost")?, tcp)
                .await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
            tokio::spawn(conn);
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let request = Request::post("/validate")
                    .header(header::HOST, "localhost")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body.clone()))?;
                let ok = match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        response.into_body().collect().await.is_ok() && status.is_success()
                    }
                    Err(_) => false,
                };
                if sent >= start {
                    if ok {
                        latencies.push(sent.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            Ok::<_, BoxError>((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await??;
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_unstable();
    Ok(Run {
        requests: latencies.len(),
        errors,
        elapsed: measure,
        latencies,
    })
}

fn print(name: &str, run: &Run) {
    println!(
        "{name:<30} {:>7.0} req/s   p50 {:>7.1} µs   p90 {:>7.1} µs   p99 {:>7.1} µs   max {:>8.1} µs   ({} requests, {} errors)",
        run.throughput(),
        run.percentile(0.50).as_secs_f64() * 1e6,
        run.percentile(0.90).as_secs_f64() * 1e6,
        run.percentile(0.99).as_secs_f64() * 1e6,
        run.percentile(1.0).as_secs_f64() * 1e6,
        run.requests,
        run.errors
    );
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let connections: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    let seconds: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let warmup = Duration::from_millis(200);
    let measure = Duration::from_secs(seconds);

    let dir = tempfile::tempdir()?;
    let ca = DevCa::new()?;
    let certs = ca.issue(&["localhost".to_owned()], &[])?;
    write_dev_certs(&certs, dir.path())?;
    let paths = CertPaths {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };

    // The webhook, in process, as the binary runs it (without a log subscriber).
    let server = Server::bind(Config::new(
        "127.0.0.1:0".parse()?,
        "127.0.0.1:0".parse()?,
        paths.clone(),
    ))
    .await?;
    let webhook_addr = server.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let webhook = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    // The floor, with the same TLS configuration and certificate.
    let resolver = Arc::new(CertResolver::default());
    resolver.set(
        load_pair(
            certs.cert_pem.as_bytes(),
            certs.key_pem.as_bytes(),
            &paths,
            unix_now(),
        )?
        .key,
    );
    let floor_addr = start_floor(Arc::new(server_config(resolver)?)).await?;

    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())?)?;
    let client = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );

    println!(
        "POST /validate over TLS 1.3, {connections} keep-alive HTTP/1.1 connections, loopback, {} CPUs; \
         {ROUNDS} alternating rounds of {} ms per server (after a {} ms warm-up each)",
        std::thread::available_parallelism().map_or(1, usize::from),
        measure.as_millis() / u128::from(ROUNDS),
        warmup.as_millis()
    );
    for (what, body) in [
        (
            "UPDATE 0.4.0 -> 0.5.0 as kubectl apply sends it",
            review_body(),
        ),
        ("small CREATE", small_body()),
    ] {
        let body = Bytes::from(body);
        println!("\n{what} ({} byte AdmissionReview):", body.len());
        let (mut floor, mut hook) = (Run::empty(), Run::empty());
        let round = measure / ROUNDS;
        for _ in 0..ROUNDS {
            floor.add(
                drive(
                    floor_addr,
                    client.clone(),
                    body.clone(),
                    connections,
                    warmup,
                    round,
                )
                .await?,
            );
            hook.add(
                drive(
                    webhook_addr,
                    client.clone(),
                    body.clone(),
                    connections,
                    warmup,
                    round,
                )
                .await?,
            );
        }
        print("  floor (hyper+rustls, fixed)", &floor);
        print("  pravega-webhook", &hook);
        println!(
            "  ratio (webhook / floor throughput): {:.2}",
            hook.throughput() / floor.throughput()
        );
    }

    let _ = stop.send(());
    webhook.await??;
    Ok(())
}
