//! `pravega-operator`: reconciles PravegaClusters and performs ordered rolling upgrades.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(name = "pravega-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Watch PravegaClusters (and their objects) in this namespace only; all namespaces when
    /// unset.
    #[arg(long, env = "WATCH_NAMESPACE", value_name = "NS")]
    namespace: Option<String>,

    /// Address of the /healthz, /readyz and /metrics endpoints.
    #[arg(
        long,
        env = "METRICS_ADDR",
        default_value = "0.0.0.0:8080",
        value_name = "ADDR"
    )]
    metrics_addr: SocketAddr,

    /// Take part in leader election (Lease `pravega-operator-leader`) so that only one replica
    /// reconciles at a time.
    #[arg(long, env = "LEADER_ELECT")]
    leader_elect: bool,

    /// Namespace of the leader election Lease (the operator's own namespace).
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "default",
        value_name = "NS"
    )]
    leader_election_namespace: String,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "LOG_JSON")]
    log_json: bool,

    /// The lowest Kubernetes version (`major.minor`) to run against; an older API server is
    /// refused at start.
    #[arg(
        long,
        env = "MIN_KUBERNETES_VERSION",
        default_value = pravega_operator::compat::DEFAULT_MIN_KUBERNETES_VERSION,
        value_name = "MAJOR.MINOR"
    )]
    min_kubernetes_version: String,

    /// Clusters reconciled at the same time, at most. One slow or failing cluster never delays
    /// the others beyond taking one of these slots.
    #[arg(long, env = "CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the PravegaCluster CustomResourceDefinition as YAML.
    Crd,
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Crd) = cli.command {
        return match pravega_crds::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(cli.log_json);
    let min_kubernetes_version =
        match pravega_operator::compat::parse_minor(&cli.min_kubernetes_version) {
            Ok(v) => v,
            Err(e) => {
                error!("--min-kubernetes-version: {e}");
                return ExitCode::FAILURE;
            }
        };
    let client = match kube::Config::infer().await {
        Ok(c) => c,
        Err(e) => {
            error!("cannot connect to the Kubernetes API (KUBECONFIG or in-cluster config): {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = pravega_operator::Config {
        namespace: cli.namespace,
        metrics_addr: cli.metrics_addr,
        leader_elect: cli.leader_elect,
        leader_election_namespace: cli.leader_election_namespace,
        min_kubernetes_version,
        concurrency: cli.concurrency,
    };
    info!(
        namespace = config.namespace.as_deref().unwrap_or("<all>"),
        leader_elect = config.leader_elect,
        "starting pravega-operator {}",
        env!("CARGO_PKG_VERSION")
    );
    match pravega_operator::run(client, config, shutdown_signal()).await {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_command_line_contract() {
        let cli = Cli::try_parse_from(["pravega-operator"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.metrics_addr, "0.0.0.0:8080".parse().unwrap());
        assert!(!cli.log_json);
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "pravega-operator",
            "--namespace",
            "pravega",
            "--metrics-addr",
            "127.0.0.1:9000",
            "--leader-elect",
            "--leader-election-namespace",
            "ops",
            "--log-json",
        ])
        .unwrap();
        assert_eq!(cli.namespace.as_deref(), Some("pravega"));
        assert_eq!(cli.metrics_addr, "127.0.0.1:9000".parse().unwrap());
        assert!(cli.leader_elect && cli.log_json);
        assert_eq!(cli.leader_election_namespace, "ops");
        assert!(matches!(
            Cli::try_parse_from(["pravega-operator", "crd"])
                .unwrap()
                .command,
            Some(Command::Crd)
        ));
        assert!(Cli::try_parse_from(["pravega-operator", "--metrics-addr", "nope"]).is_err());
    }
}
