//! `pravega-sandbox`: a local, simulated Kubernetes control plane.

use clap::{Parser, Subcommand};
use pravega_sandbox::{FaultOptions, Sandbox, SandboxOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "pravega-sandbox",
    version,
    about = "A local, simulated Kubernetes control plane for the Pravega operator"
)]
struct Cli {
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the Kubernetes API on loopback until Ctrl-C.
    Serve(ServeArgs),
    /// Run the whole upgrade story on the sandbox with the real operator and webhook binaries:
    /// create, upgrade, rejected changes, failed upgrade, rollback. Exits non-zero if any step
    /// does not behave as documented.
    Demo(DemoArgs),
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// The pravega-operator binary (default: next to this one; built with cargo if missing).
    #[arg(long, value_name = "PATH")]
    operator_bin: Option<PathBuf>,
    /// The pravega-webhook binary (default: next to this one; built with cargo if missing).
    #[arg(long, value_name = "PATH")]
    webhook_bin: Option<PathBuf>,
    /// The kubectl-pravega plugin binary (default: next to this one; built with cargo if
    /// missing).
    #[arg(long, value_name = "PATH")]
    plugin_bin: Option<PathBuf>,
    /// How long simulated pods take to become ready.
    #[arg(long, default_value = "400ms", value_parser = parse_duration)]
    ready_delay: Duration,
    /// Longest wait for any one step.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    step_timeout: Duration,
    /// Keep the sandbox running after the story until Ctrl-C, to look around with kubectl.
    #[arg(long)]
    keep: bool,
}

async fn demo(args: DemoArgs) -> Result<(), String> {
    pravega_sandbox::demo::run(pravega_sandbox::demo::DemoOptions {
        operator_bin: args.operator_bin,
        webhook_bin: args.webhook_bin,
        plugin_bin: args.plugin_bin,
        ready_delay: args.ready_delay,
        step_timeout: args.step_timeout,
        keep: args.keep,
    })
    .await
    .map_err(|e| e.to_string())
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Where to write the kubeconfig (default: a file in a temporary directory).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// How long simulated pods take to become ready (e.g. `200ms`, `2s`).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    ready_delay: Duration,
    /// Simulated pods whose image matches this regular expression fail to pull.
    #[arg(long, value_parser = parse_regex)]
    fail_image: Option<regex::Regex>,
    /// Answer this fraction (0.0 to 1.0) of resource requests other than watches with an
    /// error instead of serving them: 500, 503 or 429 (Retry-After: 1), and 409 Conflict for
    /// updates, patches and deletes. The simulated controllers and kubelets are never faulted.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    fault_error_rate: f64,
    /// Add this latency to every request (e.g. `20ms`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    fault_latency: Option<Duration>,
    /// Close every watch stream after this long (e.g. `3s`); one in eight of the resumes from
    /// a resourceVersion that is no longer the latest then gets 410 Gone.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    fault_watch_drop: Option<Duration>,
    /// Seed of the faults' random choices, for reproducible runs.
    #[arg(long, value_name = "N")]
    fault_seed: Option<u64>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    pravega_crds::duration::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number from 0.0 to 1.0"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{s} is not a number from 0.0 to 1.0"))
    }
}

fn parse_regex(s: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(s).map_err(|e| e.to_string())
}

fn init_logging(json: bool, quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in logs written to a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let faults = FaultOptions {
        error_rate: args.fault_error_rate,
        latency: args.fault_latency.unwrap_or_default(),
        watch_drop: args.fault_watch_drop,
        seed: args.fault_seed,
    };
    let sandbox = Sandbox::start(SandboxOptions {
        addr: args.addr,
        kubeconfig: args.kubeconfig,
        faults,
        ..SandboxOptions::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    // The simulation is the control plane: never faulted.
    let client = sandbox
        .control_plane_client()
        .await
        .map_err(|e| e.to_string())?;
    let sim = pravega_sandbox::sim::Simulation::start(
        client,
        pravega_sandbox::sim::SimOptions {
            ready_delay: args.ready_delay,
            failures: args
                .fail_image
                .into_iter()
                .map(|re| (re, pravega_sandbox::sim::FailureMode::ImagePull))
                .collect(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    println!("pravega-sandbox API server listening on {}", sandbox.url());
    println!(
        "To use it:\n  export KUBECONFIG={}\n  kubectl get namespaces",
        sandbox.kubeconfig_path().display()
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("waiting for Ctrl-C: {e}"))?;
    sim.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The demo tells its own story on stdout; only problems are logged.
    init_logging(cli.log_json, matches!(cli.command, Command::Demo(_)));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Demo(args) => demo(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
