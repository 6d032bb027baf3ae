//! Throughput and latency of `POST /validate` over TLS with keep-alive, next to two reference
//! servers with the same TLS configuration and certificate, built from hyper + rustls alone:
//!
//! - the floor: reads the body and returns a fixed AdmissionReview;
//! - the floor that reads JSON: the same, after parsing the body with `serde_json` and skipping
//!   every value unread, which is the least any webhook that looks at the review must do.
//!
//! The servers take turns in short rounds, and the ratio reported is the median of the
//! per-round ratios, so that a change in the machine's speed during the run affects both sides
//! of each ratio alike.
//!
//! Run: `cargo run --release -p pravega-webhook --example bench [-- CONNECTIONS SECONDS]`
//! (defaults: 8 connections, 10 s per server and scenario, loopback).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pravega_webhook::tls::{CertPaths, CertResolver, load_pair, server_config, unix_now};
use pravega_webhook::{Config, DevCa, Server, write_dev_certs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::de::IgnoredAny;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

mod support;

use support::{review_body, small_body};

/// Rounds per server and scenario.
const ROUNDS: u32 = 20;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const FIXED_ANSWER: &[u8] = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}"#;

/// A reference server: hyper + rustls, read the body (and, with `read_json`, parse it as JSON,
/// skipping every value), answer a fixed AdmissionReview.
async fn start_floor(
    tls: Arc<rustls::ServerConfig>,
    read_json: bool,
) -> Result<SocketAddr, BoxError> {
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
                let service =
                    hyper::service::service_fn(move |req: Request<Incoming>| async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        let status = match body {
                            Ok(body)
                                if !read_json
                                    || serde_json::from_slice::<IgnoredAny>(&body).is_ok() =>
                            {
                                StatusCode::OK
                            }
                            _ => StatusCode::BAD_REQUEST,
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
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
    }

    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        let mut sorted = self.latencies.clone();
        let (_, at, _) = sorted.select_nth_unstable(i);
        *at
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
        "{name:<32} {:>7.0} req/s   p50 {:>7.1} µs   p90 {:>7.1} µs   p99 {:>7.1} µs   max {:>8.1} µs   ({} requests, {} errors)",
        run.throughput(),
        run.percentile(0.50).as_secs_f64() * 1e6,
        run.percentile(0.90).as_secs_f64() * 1e6,
        run.percentile(0.99).as_secs_f64() * 1e6,
        run.percentile(1.0).as_secs_f64() * 1e6,
        run.requests,
        run.errors
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let connections: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    let seconds: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let warmup = Duration::from_millis(100);
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

    // The reference servers, with the same TLS configuration and certificate.
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
    let tls = Arc::new(server_config(resolver)?);
    let floor_addr = start_floor(tls.clone(), false).await?;
    let json_addr = start_floor(tls, true).await?;

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
         {ROUNDS} rounds of {} ms per server, taking turns (after a {} ms warm-up each)",
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
        let servers = [floor_addr, json_addr, webhook_addr];
        let mut runs = [Run::empty(), Run::empty(), Run::empty()];
        let (mut to_floor, mut to_json) = (Vec::new(), Vec::new());
        let round = measure / ROUNDS;
        for _ in 0..ROUNDS {
            let mut rates = [0.0; 3];
            for (i, addr) in servers.iter().enumerate() {
                let run = drive(
                    *addr,
                    client.clone(),
                    body.clone(),
                    connections,
                    warmup,
                    round,
                )
                .await?;
                rates[i] = run.throughput();
                runs[i].add(run);
            }
            to_floor.push(rates[2] / rates[0]);
            to_json.push(rates[2] / rates[1]);
        }
        let [floor, json, hook] = runs;
        print("  floor (hyper+rustls, fixed)", &floor);
        print("  floor reading the JSON", &json);
        print("  pravega-webhook", &hook);
        println!(
            "  webhook / floor throughput: {:.2}   webhook / floor reading the JSON: {:.2}   (medians of {ROUNDS} rounds)",
            median(to_floor),
            median(to_json)
        );
    }

    let _ = stop.send(());
    webhook.await??;
    Ok(())
}
