//! The command line: `pravega-webhook [FLAGS]` serves, `pravega-webhook gen-certs` writes
//! development certificates.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use pravega_crds::duration::parse_duration;

use crate::devcerts::{DevCertError, generate_dev_certs, write_dev_certs};
use crate::server::{Config, Server, ServerError};
use crate::tls::CertPaths;

/// Validating admission webhook for PravegaCluster version changes.
#[derive(Debug, Parser)]
#[command(
    name = "pravega-webhook",
    version,
    about,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Without a subcommand the webhook serves.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of the server.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new development CA (ca.crt) and a serving certificate signed by it (tls.crt,
    /// tls.key) into a directory. For local runs and tests; in a cluster cert-manager issues them.
    GenCerts(GenCertsArgs),
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// Flags of the server.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// PEM certificate chain to serve, leaf first (cert-manager's tls.crt); re-read while running.
    #[arg(
        long,
        env = "WEBHOOK_TLS_CERT_FILE",
        value_name = "FILE",
        required = true
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the certificate (cert-manager's tls.key); re-read while running.
    #[arg(
        long,
        env = "WEBHOOK_TLS_KEY_FILE",
        value_name = "FILE",
        required = true
    )]
    pub tls_key_file: Option<PathBuf>,
    /// Address of the admission endpoint (HTTPS, POST /validate).
    #[arg(long, env = "WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub addr: SocketAddr,
    /// Address of /healthz, /readyz and /metrics (plain HTTP).
    #[arg(long, env = "WEBHOOK_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,
    /// How often the certificate files are re-read (e.g. 500ms, 2s).
    #[arg(long, env = "WEBHOOK_CERT_RELOAD_INTERVAL", default_value = "2s", value_parser = duration)]
    pub cert_reload_interval: Duration,
    /// Time allowed for receiving and answering one admission request.
    #[arg(long, env = "WEBHOOK_REQUEST_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Largest admission request body accepted, in bytes.
    #[arg(long, env = "WEBHOOK_MAX_BODY_BYTES", default_value_t = crate::server::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// On SIGTERM, keep serving (reporting not ready) this long before closing the listener, so
    /// that the Service stops sending requests here first.
    #[arg(long, env = "WEBHOOK_SHUTDOWN_DELAY", default_value = "0s", value_parser = duration)]
    pub shutdown_delay: Duration,
    /// On SIGTERM, longest wait for in-flight requests before exiting.
    #[arg(long, env = "WEBHOOK_SHUTDOWN_TIMEOUT", default_value = "25s", value_parser = duration)]
    pub shutdown_timeout: Duration,
    /// Log JSON lines instead of human-readable text (the level comes from RUST_LOG, default info).
    #[arg(long, env = "WEBHOOK_LOG_JSON")]
    pub log_json: bool,
}

/// Flags of `gen-certs`.
#[derive(Debug, Args)]
pub struct GenCertsArgs {
    /// Directory to write ca.crt, tls.crt and tls.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// DNS name of the serving certificate (repeatable), e.g.
    /// pravega-webhook.pravega-system.svc or localhost.
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// IP address of the serving certificate (repeatable), e.g. 127.0.0.1.
    #[arg(long = "ip", value_name = "IP")]
    pub ip: Vec<IpAddr>,
}

/// Errors reported by the binary.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// gen-certs failed.
    #[error(transparent)]
    DevCerts(#[from] DevCertError),
    /// A required flag is missing (clap checks this first; kept for callers building `Cli`).
    #[error("{0} is required")]
    Missing(&'static str),
    /// The async runtime or the signal handlers could not be set up.
    #[error("{what}: {source}")]
    Runtime {
        /// What was being set up.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the parsed command line to completion.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Some(Command::GenCerts(args)) => gen_certs(&args),
        None => serve(cli.serve),
    }
}

fn gen_certs(args: &GenCertsArgs) -> Result<(), CliError> {
    let certs = generate_dev_certs(&args.dns, &args.ip)?;
    for path in write_dev_certs(&certs, &args.out_dir)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Installs the global tracing subscriber: text or JSON lines on stderr, level from `RUST_LOG`
/// (default `info`).
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A subscriber installed before (e.g. by an embedding program) stays in place.
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

fn serve(args: ServeArgs) -> Result<(), CliError> {
    init_logging(args.log_json);
    let cert = CertPaths {
        cert: args
            .tls_cert_file
            .ok_or(CliError::Missing("--tls-cert-file"))?,
        key: args
            .tls_key_file
            .ok_or(CliError::Missing("--tls-key-file"))?,
    };
    let config = Config {
        addr: args.addr,
        metrics_addr: args.metrics_addr,
        cert,
        cert_reload_interval: args.cert_reload_interval.max(Duration::from_millis(10)),
        request_timeout: args.request_timeout,
        max_body_bytes: args.max_body_bytes,
        shutdown_delay: args.shutdown_delay,
        shutdown_timeout: args.shutdown_timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Runtime {
            what: "starting the async runtime",
            source,
        })?;
    runtime.block_on(async move {
        let signal = shutdown_signal().map_err(|source| CliError::Runtime {
            what: "installing the SIGTERM/SIGINT handlers",
            source,
        })?;
        let server = Server::bind(config).await?;
        let webhook_addr = server.local_addr().map_err(|source| CliError::Runtime {
            what: "reading the webhook address",
            source,
        })?;
        let metrics_addr = server.metrics_addr().map_err(|source| CliError::Runtime {
            what: "reading the metrics address",
            source,
        })?;
        tracing::info!(
            webhook_addr = %webhook_addr,
            metrics_addr = %metrics_addr,
            "listening: admission reviews on https://{webhook_addr}/validate, health and metrics on http://{metrics_addr}"
        );
        server.run(signal).await?;
        Ok(())
    })
}

/// Completes on the first SIGTERM or SIGINT.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!(signal = "SIGTERM", "received a shutdown signal"),
                _ = int.recv() => tracing::info!(signal = "SIGINT", "received a shutdown signal"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
