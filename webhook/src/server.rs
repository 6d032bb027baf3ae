//! The HTTP side: the admission service (served over TLS), the health and metrics router (plain
//! HTTP), the TLS accept loop and graceful shutdown.

use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use pravega_crds::duration::format_duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, error, info, warn};

use crate::admission::{ErrorKind, Reviewed, Verdict, review};
use crate::metrics::{self, Metrics, RequestLabels};
use crate::tls::{CertPaths, CertReloader, CertResolver, Reload, server_config};

/// Largest request body accepted: 3 MiB, like the API server's own limit on objects.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Default time allowed for reading and answering one request (the API server's default
/// webhook timeout is 10 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default interval between two reads of the certificate files.
pub const DEFAULT_CERT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// Default longest wait for in-flight requests on shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);
/// Longest time a client may take for its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time an HTTP/1.1 connection may wait for the head of its next request. hyper runs this
/// timer on idle keep-alive connections too, so it is longer than the 90 s after which Go clients
/// (the API server) drop idle connections themselves: the client closes first, and a request is
/// never sent on a connection the server is closing. It still bounds slow-header clients.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// An address could not be bound.
    #[error("listening on {what} address {addr}: {source}")]
    Bind {
        /// `webhook` or `metrics`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS configuration could not be built.
    #[error("building the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The metrics server stopped with an error.
    #[error("serving /metrics: {0}")]
    Metrics(#[source] std::io::Error),
}

/// How the webhook runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the admission endpoint (HTTPS).
    pub addr: SocketAddr,
    /// Address of `/healthz`, `/readyz` and `/metrics` (plain HTTP).
    pub metrics_addr: SocketAddr,
    /// The serving certificate files.
    pub cert: CertPaths,
    /// Interval between two reads of the certificate files.
    pub cert_reload_interval: Duration,
    /// Time allowed for reading and answering one request.
    pub request_timeout: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// After a shutdown signal, keep serving (not ready) this long before closing the listener,
    /// so that the Service stops routing to this pod first.
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight requests on shutdown.
    pub shutdown_timeout: Duration,
}

impl Config {
    /// A configuration with the defaults for everything but the addresses and files.
    pub fn new(addr: SocketAddr, metrics_addr: SocketAddr, cert: CertPaths) -> Self {
        Self {
            addr,
            metrics_addr,
            cert,
            cert_reload_interval: DEFAULT_CERT_RELOAD_INTERVAL,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// State shared by the handlers.
#[derive(Debug)]
pub struct AppState {
    metrics: Metrics,
    resolver: Arc<CertResolver>,
    shutting_down: AtomicBool,
    max_body_bytes: usize,
    request_timeout: Duration,
}

impl AppState {
    /// State with the given limits and a certificate resolver (empty until a certificate is set).
    pub fn new(max_body_bytes: usize, request_timeout: Duration) -> Self {
        Self {
            metrics: Metrics::new(),
            resolver: Arc::new(CertResolver::default()),
            shutting_down: AtomicBool::new(false),
            max_body_bytes,
            request_timeout,
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The certificate resolver used by the TLS listener.
    pub fn resolver(&self) -> &Arc<CertResolver> {
        &self.resolver
    }

    /// Marks the webhook as shutting down: `/readyz` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Why the webhook is not ready, if it is not.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.shutting_down.load(Ordering::SeqCst) {
            Some("shutting down")
        } else if !self.resolver.is_loaded() {
            Some("no serving certificate loaded yet")
        } else {
            None
        }
    }
}

/// The admission service: `POST /validate` is answered directly, without a routing table in
/// its way (it is the only hot path); any other request goes to an axum router that serves the
/// same `/validate` and answers 405 for another method on it and 404 elsewhere.
#[derive(Clone)]
pub struct WebhookService {
    state: Arc<AppState>,
    others: Router,
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookService").finish_non_exhaustive()
    }
}

/// The admission service over `state`.
pub fn webhook_service(state: Arc<AppState>) -> WebhookService {
    WebhookService {
        others: Router::new()
            .route(
                "/validate",
                post(
                    |State(state): State<Arc<AppState>>, request: Request<Body>| async move {
                        validate(&state, request).await
                    },
                ),
            )
            .with_state(state.clone()),
        state,
    }
}

/// Errors a request body may fail with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> tower::Service<Request<B>> for WebhookService
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.method() == Method::POST && request.uri().path() == "/validate" {
            let state = self.state.clone();
            Box::pin(async move { Ok(validate(&state, request).await) })
        } else {
            let others = self.others.clone();
            Box::pin(others.oneshot(request.map(Body::new)))
        }
    }
}

/// The health and metrics router: `/healthz`, `/readyz`, `/metrics`.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.not_ready_reason() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering metrics: {e}\n"),
        )
            .into_response(),
    }
}

async fn read_and_review<B>(request: Request<B>, limit: usize) -> Reviewed
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let too_large = || {
        Reviewed::unreadable(
            ErrorKind::BodyTooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large();
    }
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(e) => {
            return Reviewed::unreadable(
                ErrorKind::BodyUnreadable,
                format!("reading the request body: {e}"),
            );
        }
    };
    review(&body)
}

async fn validate<B>(state: &AppState, request: Request<B>) -> Response
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
    let timeout = state.request_timeout;
    let reviewed =
        match tokio::time::timeout(timeout, read_and_review(request, state.max_body_bytes)).await {
            Ok(reviewed) => reviewed,
            Err(_) => Reviewed::unreadable(
                ErrorKind::Timeout,
                format!(
                    "the request was not received and answered within {}",
                    format_duration(timeout)
                ),
            ),
        };
    let answer = reviewed.to_http();
    log(&reviewed);
    state.metrics.observe_request(
        RequestLabels {
            operation: reviewed.info.operation_label(),
            decision: reviewed.verdict.decision(),
            reason: reviewed.verdict.reason(),
        },
        started.elapsed(),
    );
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    response
}

/// Logs the decision with what was asked: denials at info, errors at warn, allowed requests at
/// debug (so that, at the default level, an allowed request costs no logging at all).
fn log(reviewed: &Reviewed) {
    let info = &reviewed.info;
    macro_rules! decision {
        ($level:ident, $($message:tt)+) => {
            $level!(
                uid = info.uid.as_deref(),
                operation = info.operation_label(),
                namespace = info.namespace.as_deref(),
                name = info.name.as_deref(),
                dry_run = info.dry_run,
                decision = reviewed.verdict.decision(),
                reason = reviewed.verdict.reason(),
                $($message)+
            )
        };
    }
    match &reviewed.verdict {
        Verdict::Allowed { warnings } if warnings.is_empty() => decision!(debug, "allowed"),
        Verdict::Allowed { warnings } => {
            decision!(info, "allowed with warnings: {}", warnings.join("; "));
        }
        Verdict::NotChecked { why } => decision!(debug, "allowed without checking: {why}"),
        Verdict::Denied { message, .. } => decision!(info, "denied: {message}"),
        Verdict::Invalid { message, .. } => {
            decision!(warn, "could not review the request: {message}");
        }
    }
}

/// A bound webhook, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    config: Config,
    state: Arc<AppState>,
    reloader: CertReloader,
    listener: TcpListener,
    metrics_listener: TcpListener,
}

impl Server {
    /// Reads the certificate once and binds both addresses. A certificate that cannot be read
    /// yet is not fatal: the webhook stays not ready (and refuses TLS handshakes) until one is.
    pub async fn bind(config: Config) -> Result<Self, ServerError> {
        let state = Arc::new(AppState::new(config.max_body_bytes, config.request_timeout));
        let mut reloader = CertReloader::new(config.cert.clone(), state.resolver.clone());
        report_reload(&state.metrics, reloader.poll().await, true);
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| ServerError::Bind {
                    what: "webhook",
                    addr: config.addr,
                    source,
                })?;
        let metrics_listener = TcpListener::bind(config.metrics_addr)
            .await
            .map_err(|source| ServerError::Bind {
                what: "metrics",
                addr: config.metrics_addr,
                source,
            })?;
        Ok(Self {
            config,
            state,
            reloader,
            listener,
            metrics_listener,
        })
    }

    /// The bound admission address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> std::io::Result<SocketAddr> {
        self.metrics_listener.local_addr()
    }

    /// The shared state (metrics, certificate resolver, readiness).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` completes, then: reports not ready, waits `shutdown_delay`,
    /// stops accepting, lets in-flight requests finish (up to `shutdown_timeout`), and stops
    /// the metrics server last.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let Server {
            config,
            state,
            mut reloader,
            listener,
            metrics_listener,
        } = self;
        let acceptor = TlsAcceptor::from(Arc::new(server_config(state.resolver.clone())?));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (drained_tx, drained_rx) = watch::channel(false);

        let signal = {
            let state = state.clone();
            let delay = config.shutdown_delay;
            async move {
                shutdown.await;
                state.begin_shutdown();
                info!(
                    delay = %format_duration(delay),
                    "shutting down: not ready any more, finishing in-flight requests"
                );
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let _ = stop_tx.send(true);
            }
        };

        let webhook = {
            let router = webhook_service(state.clone());
            let grace = config.shutdown_timeout;
            async move {
                serve_tls(listener, acceptor, router, stop_rx, grace).await;
                let _ = drained_tx.send(true);
            }
        };

        let metrics = {
            let mut drained = drained_rx.clone();
            axum::serve(metrics_listener, metrics_router(state.clone()))
                .with_graceful_shutdown(async move { wait_true(&mut drained).await })
        };

        let reload = {
            let mut drained = drained_rx;
            let interval = config.cert_reload_interval;
            let metrics = state.metrics.clone();
            async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        _ = ticker.tick() => report_reload(&metrics, reloader.poll().await, false),
                        () = wait_true(&mut drained) => break,
                    }
                }
            }
        };

        let ((), (), served, ()) = tokio::join!(signal, webhook, metrics.into_future(), reload);
        served.map_err(ServerError::Metrics)?;
        info!("shutdown complete");
        Ok(())
    }
}

/// Completes once the flag is true (or its sender is gone).
async fn wait_true(flag: &mut watch::Receiver<bool>) {
    // The guard returned by `wait_for` is dropped at once: it must not live across an await.
    let _ = flag.wait_for(|set| *set).await;
}

fn report_reload(metrics: &Metrics, outcome: Reload, initial: bool) {
    match outcome {
        Reload::Unchanged => {}
        Reload::Loaded(cert) => {
            metrics.certificate_loaded(cert.not_after);
            info!(
                serial = cert.serial.as_str(),
                subject = cert.subject.as_str(),
                not_after = cert.not_after_rfc3339().as_str(),
                "serving certificate loaded"
            );
        }
        Reload::Failed(e) if initial => {
            metrics.certificate_refused();
            error!(
                error = %e,
                "no usable serving certificate yet: not ready, TLS handshakes fail until one can be read"
            );
        }
        Reload::Failed(e) => {
            metrics.certificate_refused();
            error!(error = %e, "refused new serving certificate content; the current one stays in use");
        }
    }
}

/// Accepts TLS connections until `stop` turns true, then waits up to `grace` for open
/// connections to finish their in-flight requests.
async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: WebhookService,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    loop {
        let (tcp, peer) = tokio::select! {
            () = wait_true(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // E.g. too many open files: back off instead of spinning.
                    warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let router = router.clone();
                async move { router.oneshot(req).await }
            });
            let conn = builder
                .serve_connection(TokioIo::new(tls), service)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            open,
            grace = %format_duration(grace),
            "connections still open after the shutdown timeout; closing them"
        );
    }
}
