//! The command line, with kubectl's global options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::kube_access::ConnectOptions;

/// Upgrade status, dry-run plans and upgrade controls for PravegaClusters.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-pravega",
    bin_name = "kubectl pravega",
    version,
    about = "Upgrade status, dry-run plans and upgrade controls for PravegaClusters",
    after_help = "Examples:\n  kubectl pravega plan example --to 0.5.0\n  kubectl pravega upgrade example 0.5.0\n  kubectl pravega status example -w"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's global options.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The namespace of the PravegaCluster (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Path to the kubeconfig file (default: `KUBECONFIG`, else `~/.kube/config`).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
}

impl Global {
    /// Where to connect.
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The same data as JSON.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Version, per-component progress, what holds the upgrade, elapsed and estimated time, and
    /// the last Events.
    Status {
        /// The PravegaCluster.
        name: String,
        /// Redraw on every change (driven by watches on the cluster and its pods).
        #[arg(short = 'w', long)]
        watch: bool,
        /// Output format.
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
    },
    /// Dry run of an upgrade: the version rules' verdict, the pods replaced in order, the
    /// template changes, the checks gating each step and an estimate. Changes nothing.
    Plan {
        /// The PravegaCluster.
        name: String,
        /// The version to plan for.
        #[arg(long, value_name = "VERSION")]
        to: String,
        /// Output format.
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
    },
    /// Start an upgrade: sets spec.version.
    Upgrade {
        /// The PravegaCluster.
        name: String,
        /// The version to upgrade to.
        version: String,
        /// Hold the upgrade after N pods (sets spec.upgrade.pauseAfterPods).
        #[arg(long, value_name = "N")]
        canary: Option<u32>,
        /// Ask the API server (and the webhook) without persisting anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Hold the upgrade before the next pod: sets spec.upgrade.paused to true.
    Pause {
        /// The PravegaCluster.
        name: String,
        /// Ask the API server without persisting anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Let a paused (or canary-held) upgrade continue.
    Resume {
        /// The PravegaCluster.
        name: String,
        /// Ask the API server without persisting anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Roll back: sets spec.version back to status.currentVersion.
    Rollback {
        /// The PravegaCluster.
        name: String,
        /// Ask the API server (and the webhook) without persisting anything.
        #[arg(long)]
        dry_run: bool,
    },
}
