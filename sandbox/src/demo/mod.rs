//! `pravega-sandbox demo`: the whole story of the upgrade guide on the embedded sandbox.
//!
//! It starts the sandbox API server and its simulated controllers and kubelets, installs the
//! CRD and the validating webhook (with a freshly generated CA), runs the real
//! `pravega-operator` and `pravega-webhook` binaries against it, and then walks through the
//! guide: create `example` at 0.4.0, upgrade it to 0.5.0 while showing progress the way
//! `kubectl get PravegaCluster` does, show a rejected change mid-upgrade and a rejected downgrade,
//! make an upgrade fail with a broken BookKeeper image, show the status the way
//! `kubectl describe` does, and roll back. Every step checks that the system behaved as
//! documented; the first one that does not ends the demo with an error.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::process::Child;

use crate::sim::{SimOptions, Simulation};
use crate::{Sandbox, SandboxOptions};

mod guide;
mod install;
mod table;

use guide::{Plugin, walk_through_the_guide};
pub use install::{WebhookProcess, start_webhook};
use install::{guide_log_lines, install, locate_binary};

/// Namespace and name of the demo cluster, as in the guide.
const NAMESPACE: &str = "default";
const NAME: &str = "example";
/// The webhook's Service, as in `deploy/`; the sandbox maps it to the local webhook process.
const WEBHOOK_NAMESPACE: &str = "pravega-system";
const WEBHOOK_SERVICE: &str = "pravega-webhook";
const WEBHOOK_NAME: &str = "pravegacluster.pravega.pravega.io";
const SAMPLE: &str = include_str!("../../../deploy/sample/pravegacluster.yaml");
/// The install's webhook configuration (rules, failure policy, match conditions), to which the
/// demo adds the CA cert-manager would inject.
const WEBHOOK_CONFIGURATION: &str =
    include_str!("../../../deploy/base/validatingwebhookconfiguration.yaml");

/// How to run the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The `pravega-operator` binary (default: next to this executable, built with cargo when
    /// missing).
    pub operator_bin: Option<PathBuf>,
    /// The `pravega-webhook` binary (default: as for the operator).
    pub webhook_bin: Option<PathBuf>,
    /// The `kubectl-pravega` plugin binary (default: as for the operator).
    pub plugin_bin: Option<PathBuf>,
    /// How long a simulated pod takes to become Ready.
    pub ready_delay: Duration,
    /// Longest wait for any one step.
    pub step_timeout: Duration,
    /// Keep the sandbox running after the story, until Ctrl-C, for poking at it with kubectl.
    pub keep: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            operator_bin: None,
            webhook_bin: None,
            plugin_bin: None,
            ready_delay: Duration::from_millis(400),
            step_timeout: Duration::from_secs(90),
            keep: false,
        }
    }
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A step did not behave as documented.
    #[error("step \"{step}\" did not behave as documented: {why}")]
    Step {
        /// The step.
        step: String,
        /// What was seen instead.
        why: String,
    },
    /// A binary could not be found or built.
    #[error("cannot find {name}: {why}")]
    Binary {
        /// Binary name.
        name: &'static str,
        /// What went wrong.
        why: String,
    },
    /// A local file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A request to the API server failed.
    #[error("{context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] crate::Error),
    /// The simulation failed.
    #[error(transparent)]
    Sim(#[from] crate::sim::SimError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let context = context.into();
    move |source| DemoError::Io { context, source }
}

fn kube_err(context: impl Into<String>) -> impl FnOnce(kube::Error) -> DemoError {
    let context = context.into();
    move |source| DemoError::Kube {
        context,
        source: Box::new(source),
    }
}

fn step_err(step: &str, why: impl Into<String>) -> DemoError {
    DemoError::Step {
        step: step.to_owned(),
        why: why.into(),
    }
}

/// Runs the demo. Prints the story on stdout.
pub async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    let started = Instant::now();
    let operator_bin = locate_binary("pravega-operator", opts.operator_bin.clone())?;
    let webhook_bin = locate_binary("pravega-webhook", opts.webhook_bin.clone())?;
    let plugin_bin = locate_binary("kubectl-pravega", opts.plugin_bin.clone())?;
    let work = tempfile::Builder::new()
        .prefix("pravega-demo-")
        .tempdir()
        .map_err(io("creating a work directory"))?;
    let work_dir = work.path().to_path_buf();

    let mut story = Story::new();
    story.chapter("Start the sandbox: a simulated Kubernetes API server, controllers and kubelets");
    let sandbox = Sandbox::start(SandboxOptions {
        kubeconfig: Some(work_dir.join("kubeconfig")),
        ..SandboxOptions::default()
    })
    .await?;
    let client = sandbox.client().await?;
    let sim = Simulation::start(
        client.clone(),
        SimOptions {
            ready_delay: opts.ready_delay,
            ..SimOptions::default()
        },
    )
    .await?;
    story.ok(format!("API server at {}", sandbox.url()));
    story.say(format!(
        "use it with kubectl while the demo runs:  export KUBECONFIG={}",
        sandbox.kubeconfig_path().display()
    ));

    let result = async {
        let mut processes = install(&mut story, &sandbox, &client, &operator_bin, &webhook_bin, &work_dir).await?;
        let plugin = Plugin {
            bin: &plugin_bin,
            kubeconfig: sandbox.kubeconfig_path(),
        };
        let outcome = walk_through_the_guide(&mut story, &client, &sim, &opts, &plugin).await;
        if let Err(e) = &outcome {
            story.fail(e.to_string());
            story.say(format!("operator log: {}", work_dir.join("operator.log").display()));
            story.say(format!("webhook log:  {}", work_dir.join("webhook.log").display()));
        }
        if outcome.is_ok() {
            story.chapter("What the operator logged (the guide's log lines)");
            for line in guide_log_lines(&work_dir.join("operator.log")) {
                story.say(line);
            }
        }
        if opts.keep {
            story.chapter("Keeping the sandbox running (Ctrl-C to stop)");
            story.say(format!("export KUBECONFIG={}", sandbox.kubeconfig_path().display()));
            story.say(format!("operator log: {}", work_dir.join("operator.log").display()));
            story.say(format!("webhook log:  {}", work_dir.join("webhook.log").display()));
            story.say("kubectl get PravegaCluster; kubectl describe PravegaCluster example; kubectl get pods; kubectl logs example-bookie-0");
            // Keep the work directory (kubeconfig, logs) while the user pokes at it.
            let _ = tokio::signal::ctrl_c().await;
        }
        processes.stop().await;
        outcome
    }
    .await;

    sim.shutdown().await;
    sandbox.shutdown().await;
    if result.is_ok() {
        story.chapter(format!(
            "Every step behaved as documented ({:.1}s)",
            started.elapsed().as_secs_f64()
        ));
    }
    result
}

/// The operator and webhook processes; killed when dropped.
struct Processes {
    operator: Child,
    webhook: Child,
}

impl Processes {
    async fn stop(&mut self) {
        for child in [&mut self.operator, &mut self.webhook] {
            if let Some(pid) = child.id() {
                // Ask politely first (graceful shutdown), then insist.
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
                if tokio::time::timeout(Duration::from_secs(5), child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            }
        }
    }
}

/// Prints the story.
struct Story {
    chapter: usize,
    started: Instant,
}

impl Story {
    fn new() -> Self {
        Self {
            chapter: 0,
            started: Instant::now(),
        }
    }

    fn stamp(&self) -> String {
        format!("[{:>5.1}s]", self.started.elapsed().as_secs_f64())
    }

    fn chapter(&mut self, text: impl AsRef<str>) {
        self.chapter += 1;
        println!("\n{} {}. {}", self.stamp(), self.chapter, text.as_ref());
    }

    fn cmd(&self, text: &str) {
        println!("  $ {text}");
    }

    fn row(&self, text: &str) {
        println!("    {text}");
    }

    fn block(&self, text: &str) {
        for line in text.lines() {
            println!("    {line}");
        }
    }

    fn say(&self, text: impl AsRef<str>) {
        println!("    {}", text.as_ref());
    }

    fn ok(&self, text: impl AsRef<str>) {
        println!("  ✔ {}", text.as_ref());
    }

    fn denied(&self, text: impl AsRef<str>) {
        println!("    {}", text.as_ref());
    }

    fn fail(&self, text: impl AsRef<str>) {
        println!("  ✘ {}", text.as_ref());
    }
}
