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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use pravega_crds::{Component, ConditionType, PravegaCluster, reasons};
use regex::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::sim::{FailureMode, SimOptions, Simulation};
use crate::{Sandbox, SandboxOptions};

/// Namespace and name of the demo cluster, as in the guide.
const NAMESPACE: &str = "default";
const NAME: &str = "example";
/// The webhook's Service, as in `deploy/`; the sandbox maps it to the local webhook process.
const WEBHOOK_NAMESPACE: &str = "pravega-system";
const WEBHOOK_SERVICE: &str = "pravega-webhook";
const WEBHOOK_NAME: &str = "pravegacluster.pravega.pravega.io";
const SAMPLE: &str = include_str!("../../deploy/sample/pravegacluster.yaml");
/// The install's webhook configuration (rules, failure policy, match conditions), to which the
/// demo adds the CA cert-manager would inject.
const WEBHOOK_CONFIGURATION: &str =
    include_str!("../../deploy/base/validatingwebhookconfiguration.yaml");

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

async fn install(
    story: &mut Story,
    sandbox: &Sandbox,
    client: &Client,
    operator_bin: &Path,
    webhook_bin: &Path,
    work_dir: &Path,
) -> Result<Processes, DemoError> {
    story.chapter("Install the PravegaCluster CRD, the validating webhook and the operator");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = pravega_crds::crd();
    let crd_name = crd.metadata.name.clone().unwrap_or_default();
    crds.create(&PostParams::default(), &crd)
        .await
        .map_err(kube_err("creating the PravegaCluster CRD"))?;
    tokio::time::timeout(
        Duration::from_secs(10),
        kube::runtime::wait::await_condition(
            crds,
            &crd_name,
            kube::runtime::wait::conditions::is_crd_established(),
        ),
    )
    .await
    .map_err(|_| step_err("install", "the CRD was not Established within 10s"))?
    .map_err(|e| step_err("install", format!("waiting for the CRD: {e}")))?;
    story.ok(format!(
        "customresourcedefinition {crd_name} created and established"
    ));

    let webhook = start_webhook(sandbox, client, webhook_bin, work_dir).await?;
    story.ok(format!(
        "pravega-webhook serving https://127.0.0.1:{}/validate (certificate from a generated CA)",
        webhook.port
    ));
    story.ok(format!(
        "validatingwebhookconfiguration pravega-webhook created (service {WEBHOOK_NAMESPACE}/{WEBHOOK_SERVICE}, failurePolicy Fail)"
    ));

    let operator_metrics = free_port()?;
    let kubeconfig = sandbox.kubeconfig_path().to_string_lossy().into_owned();
    let operator = spawn(
        operator_bin,
        &["--metrics-addr", &format!("127.0.0.1:{operator_metrics}")],
        &[("KUBECONFIG", &kubeconfig)],
        &work_dir.join("operator.log"),
    )?;
    let mut processes = Processes {
        operator,
        webhook: webhook.child,
    };
    wait_ready(
        "pravega-operator",
        operator_metrics,
        &mut processes.operator,
    )
    .await?;
    story.ok("pravega-operator running and ready");
    Ok(processes)
}

/// The real `pravega-webhook` process started by [`start_webhook`].
#[derive(Debug)]
pub struct WebhookProcess {
    /// The process (killed when dropped).
    pub child: Child,
    /// Loopback port of its HTTPS admission endpoint.
    pub port: u16,
    /// Loopback port of its metrics endpoint (`/metrics`, `/healthz`, `/readyz`).
    pub metrics_port: u16,
}

/// Starts the real `pravega-webhook` binary on loopback and registers it with the sandbox the
/// way a cluster install does: a CA and serving certificate from its own `gen-certs` (in place of
/// cert-manager) under `work_dir`, the Service `pravega-system/pravega-webhook` mapped to the
/// process, and the ValidatingWebhookConfiguration `pravega-webhook` of
/// `deploy/base/validatingwebhookconfiguration.yaml` (failurePolicy Fail, the emergency-pause
/// match condition) trusting that CA. Returns once the webhook reports ready; its output goes
/// to `work_dir/webhook.log`.
pub async fn start_webhook(
    sandbox: &Sandbox,
    client: &Client,
    webhook_bin: &Path,
    work_dir: &Path,
) -> Result<WebhookProcess, DemoError> {
    let certs = work_dir.join("webhook-certs");
    let status = Command::new(webhook_bin)
        .arg("gen-certs")
        .arg("--out-dir")
        .arg(&certs)
        .args([
            "--dns",
            &format!("{WEBHOOK_SERVICE}.{WEBHOOK_NAMESPACE}.svc"),
        ])
        .args(["--ip", "127.0.0.1"])
        .stdout(Stdio::null())
        .status()
        .await
        .map_err(io("running pravega-webhook gen-certs"))?;
    if !status.success() {
        return Err(step_err(
            "install",
            format!("pravega-webhook gen-certs exited with {status}"),
        ));
    }
    let ca = std::fs::read(certs.join("ca.crt")).map_err(io("reading the generated CA"))?;
    let port = free_port()?;
    let metrics = free_port()?;
    let mut child = spawn(
        webhook_bin,
        &[
            "--tls-cert-file",
            &certs.join("tls.crt").to_string_lossy(),
            "--tls-key-file",
            &certs.join("tls.key").to_string_lossy(),
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
        ],
        &[],
        &work_dir.join("webhook.log"),
    )?;
    wait_ready("pravega-webhook", metrics, &mut child).await?;
    sandbox.map_service(
        WEBHOOK_NAMESPACE,
        WEBHOOK_SERVICE,
        443,
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    );
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configs
        .create(&PostParams::default(), &webhook_configuration(ca)?)
        .await
        .map_err(kube_err("creating the ValidatingWebhookConfiguration"))?;
    Ok(WebhookProcess {
        child,
        port,
        metrics_port: metrics,
    })
}

/// The `kubectl pravega` plugin, run against the sandbox.
struct Plugin<'a> {
    bin: &'a Path,
    kubeconfig: &'a Path,
}

impl Plugin<'_> {
    /// Runs `kubectl pravega ARGS` (the plugin binary kubectl would run) and returns its output.
    async fn run(&self, args: &[&str], step: &str) -> Result<String, DemoError> {
        let out = Command::new(self.bin)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io(format!("running {}", self.bin.display())))?;
        if !out.status.success() {
            return Err(step_err(
                step,
                format!(
                    "kubectl pravega {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

async fn walk_through_the_guide(
    story: &mut Story,
    client: &Client,
    sim: &Simulation,
    opts: &DemoOptions,
    plugin: &Plugin<'_>,
) -> Result<(), DemoError> {
    let api: Api<PravegaCluster> = Api::namespaced(client.clone(), NAMESPACE);
    let timeout = opts.step_timeout;

    // 1. Create the cluster at 0.4.0 and wait until every member is ready.
    story.chapter(
        "Create the cluster `example` at 0.4.0 (3 bookies, 1 controller, 3 segment stores)",
    );
    story.cmd("kubectl create -f - <<< 'PersistentVolumeClaim pravega-tier2, ReadWriteMany, 50Gi'");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let tier2: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pravega_crds::DEFAULT_TIER2_CLAIM},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "50Gi"}}}
    }))
    .map_err(|e| step_err("create", format!("the tier 2 claim: {e}")))?;
    claims
        .create(&PostParams::default(), &tier2)
        .await
        .map_err(kube_err("creating the tier 2 claim"))?;
    story.ok("persistentvolumeclaim/pravega-tier2 created (the sample's filesystem tier 2)");
    story.cmd("kubectl apply -f deploy/sample/pravegacluster.yaml");
    let sample: PravegaCluster = serde_saphyr::from_str(SAMPLE)
        .map_err(|e| step_err("create", format!("the sample does not parse: {e}")))?;
    api.create(&PostParams::default(), &sample)
        .await
        .map_err(kube_err("creating PravegaCluster example"))?;
    story.ok("pravegacluster.pravega.pravega.io/example created");
    story.cmd("kubectl get PravegaCluster -w");
    let pk = watch_until(story, &api, timeout, "create", |pk| {
        let s = pk.status.as_ref()?;
        (s.current_version.as_deref() == Some("0.4.0") && s.replicas == 7 && s.ready_replicas == 7)
            .then_some(())
    })
    .await?;
    expect_pods_at(client, &pk, "0.4.0", "create").await?;
    story.ok("7 of 7 members ready at 0.4.0");
    show_what_the_segment_store_got(story, client).await?;

    // 2. Upgrade to 0.5.0 the way the guide does it.
    story.chapter(
        "Upgrade to 0.5.0 (BookKeeper, then Controller, then Segment Store, one pod at a time)",
    );
    // BookKeeper has ledgers to re-replicate: the operator's safety check will hold the upgrade
    // once a bookie serves the admin API that reports them (0.5.0; 0.4.0 has none).
    story
        .cmd("kubectl annotate pod example-bookie-2 sandbox.pravega.io/under-replicated-ledgers=2");
    annotate_pod(client, "example-bookie-2", Some("2")).await?;
    story.say("(the sandbox's bookies now report 2 under-replicated ledgers on their admin API)");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.5.0"}]'"#);
    set_version(&api, "0.5.0")
        .await
        .map_err(|e| step_err("upgrade", format!("the change to 0.5.0 was refused: {e}")))?;
    story.ok("pravegacluster.pravega.pravega.io/example patched");
    story.cmd("kubectl get PravegaCluster -w");
    watch_until(story, &api, timeout, "upgrade", |pk| {
        let s = pk.status.as_ref()?;
        s.is_condition_true(ConditionType::Upgrading).then_some(())
    })
    .await?;

    // 3. A change while the upgrade is in flight is refused by the webhook at once.
    story.chapter("Change the version again while the upgrade is in progress");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.6.0"}]'"#);
    expect_denied(
        story,
        &api,
        "0.6.0",
        "mid-upgrade change",
        "while the cluster is upgrading from 0.4.0 to 0.5.0",
    )
    .await?;

    // 3b. The upgrade waits on a safety check, says why, and goes on once it passes.
    story.chapter("The upgrade waits for BookKeeper to re-replicate its ledgers");
    story.cmd("kubectl get PravegaCluster example -o jsonpath='{.status.upgrade.blockedBy}'");
    let blocked_by = |pk: &PravegaCluster| {
        let b = pk.status.as_ref()?.upgrade.as_ref()?.blocked_by.as_ref()?;
        (b.reason == "SafetyCheckFailed").then(|| format!("{}: {}", b.reason, b.message))
    };
    let pk = watch_until(story, &api, timeout, "safety check", |pk| {
        blocked_by(pk).map(|_| ())
    })
    .await?;
    story.row(&blocked_by(&pk).unwrap_or_default());
    story.cmd("kubectl pravega status example");
    let status = plugin.run(&["status", "example"], "safety check").await?;
    story.block(status.trim_end());
    if !status.contains("NoUnderReplicatedLedgers") {
        return Err(step_err(
            "safety check",
            "kubectl pravega status does not name the blocking check",
        ));
    }
    story.ok("example-bookie-1 is not restarted while BookKeeper reports under-replicated ledgers");
    story.cmd("kubectl annotate pod example-bookie-2 sandbox.pravega.io/under-replicated-ledgers-");
    annotate_pod(client, "example-bookie-2", None).await?;
    story.say("(re-replication done: the pod's change wakes the operator, which goes on at once)");

    story.cmd("kubectl get PravegaCluster -w");
    let pk = watch_until(story, &api, timeout, "upgrade", |pk| {
        let s = pk.status.as_ref()?;
        (s.current_version.as_deref() == Some("0.5.0")
            && s.target_version.is_none()
            && !s.is_condition_true(ConditionType::Upgrading)
            && s.ready_replicas == 7)
            .then_some(())
    })
    .await?;
    let history = pk
        .status
        .as_ref()
        .map(|s| s.version_history.clone())
        .unwrap_or_default();
    if history != ["0.4.0", "0.5.0"] {
        return Err(step_err(
            "upgrade",
            format!("status.versionHistory is {history:?}, expected [0.4.0, 0.5.0]"),
        ));
    }
    expect_pods_at(client, &pk, "0.5.0", "upgrade").await?;
    story.ok("upgrade complete: every member runs 0.5.0; versionHistory [0.4.0, 0.5.0]");

    // 4. A downgrade is refused.
    story.chapter("Try to downgrade to 0.4.0");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.4.0"}]'"#);
    expect_denied(
        story,
        &api,
        "0.4.0",
        "downgrade",
        "downgrading the cluster from 0.5.0 to 0.4.0 is not supported",
    )
    .await?;

    // 5. An upgrade to a broken image fails and stops with a clear Error condition.
    story.chapter("Upgrade to 0.6.0, whose BookKeeper image crashes on start");
    let broken = Regex::new(r"^pravega/bookkeeper:0\.6\.0$")
        .map_err(|e| step_err("failed upgrade", format!("bad pattern: {e}")))?;
    sim.fail_image(broken, FailureMode::CrashLoop);
    story.say("(the sandbox makes every container of image pravega/bookkeeper:0.6.0 crash-loop)");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.6.0"}]'"#);
    set_version(&api, "0.6.0").await.map_err(|e| {
        step_err(
            "failed upgrade",
            format!("the change to 0.6.0 was refused: {e}"),
        )
    })?;
    story.cmd("kubectl get PravegaCluster -w");
    let expected = "failed to sync bookkeeper version. pod example-bookie-0 is restarting";
    let pk = watch_until(story, &api, timeout, "failed upgrade", |pk| {
        let s = pk.status.as_ref()?;
        s.has_error_reason(reasons::UPGRADE_FAILED).then_some(())
    })
    .await?;
    let status = pk.status.clone().unwrap_or_default();
    let error = status
        .condition(ConditionType::Error)
        .map(|c| c.message().to_owned())
        .unwrap_or_default();
    if error != expected {
        return Err(step_err(
            "failed upgrade",
            format!("Error message is {error:?}, expected {expected:?}"),
        ));
    }
    if status.is_condition_true(ConditionType::Upgrading) {
        return Err(step_err(
            "failed upgrade",
            "Upgrading is still True after the failure",
        ));
    }
    if !status
        .members
        .unready
        .iter()
        .any(|m| m == "example-bookie-0")
    {
        return Err(step_err(
            "failed upgrade",
            format!(
                "example-bookie-0 is not listed unready: {:?}",
                status.members
            ),
        ));
    }
    expect_untouched_after_bookkeeper(client, "0.5.0").await?;
    story.cmd("kubectl describe PravegaCluster example");
    story.block(&describe_status(&pk));
    story.ok("the upgrade stopped at the first broken bookie; Controller and Segment Store were not touched");

    // 6. Roll back by setting the version back to status.currentVersion.
    story.chapter("Roll back to 0.5.0");
    story.cmd(r#"kubectl patch PravegaCluster example --type='json' -p='[{"op": "replace", "path": "/spec/version", "value": "0.5.0"}]'"#);
    set_version(&api, "0.5.0").await.map_err(|e| {
        step_err(
            "rollback",
            format!("the rollback to 0.5.0 was refused: {e}"),
        )
    })?;
    story.ok("pravegacluster.pravega.pravega.io/example patched");
    story.cmd("kubectl get PravegaCluster -w");
    let pk = watch_until(story, &api, timeout, "rollback", |pk| {
        let s = pk.status.as_ref()?;
        (s.current_version.as_deref() == Some("0.5.0")
            && s.target_version.is_none()
            && !s.is_condition_true(ConditionType::RollbackInProgress)
            && !s.is_condition_true(ConditionType::Error)
            && s.ready_replicas == 7)
            .then_some(())
    })
    .await?;
    expect_pods_at(client, &pk, "0.5.0", "rollback").await?;
    story.ok("rolled back: 7 of 7 members ready at 0.5.0, Error cleared");
    Ok(())
}

/// Sets `spec.version` with a merge patch (what `kubectl patch` sends, in another format).
/// Sets (or, with `None`, removes) the sandbox's under-replicated-ledgers fault on a pod.
async fn annotate_pod(client: &Client, pod: &str, ledgers: Option<&str>) -> Result<(), DemoError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = serde_json::json!({"metadata": {"annotations": {
        crate::sim::UNDER_REPLICATED_LEDGERS: ledgers
    }}});
    pods.patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(format!("annotating pod {pod}")))?;
    Ok(())
}

async fn set_version(api: &Api<PravegaCluster>, version: &str) -> Result<(), kube::Error> {
    let patch = serde_json::json!({ "spec": { "version": version } });
    api.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn expect_denied(
    story: &mut Story,
    api: &Api<PravegaCluster>,
    version: &str,
    step: &str,
    contains: &str,
) -> Result<(), DemoError> {
    let before = api.get(NAME).await.map_err(kube_err("reading example"))?;
    match set_version(api, version).await {
        Ok(_) => Err(step_err(
            step,
            format!("the change to {version} was accepted"),
        )),
        Err(kube::Error::Api(status)) => {
            let expected_prefix =
                format!("admission webhook \"{WEBHOOK_NAME}\" denied the request: ");
            if status.code != 403
                || !status.message.starts_with(&expected_prefix)
                || !status.message.contains(contains)
            {
                return Err(step_err(
                    step,
                    format!(
                        "expected a 403 from the webhook containing {contains:?}, got {}: {}",
                        status.code, status.message
                    ),
                ));
            }
            story.denied(format!("Error from server (Forbidden): {}", status.message));
            let after = api.get(NAME).await.map_err(kube_err("reading example"))?;
            if after.spec.version != before.spec.version {
                return Err(step_err(step, "the denied change was stored anyway"));
            }
            story.ok(format!(
                "refused; spec.version stays {}",
                after.spec.version
            ));
            Ok(())
        }
        Err(e) => Err(step_err(
            step,
            format!("expected a denial from the webhook, got: {e}"),
        )),
    }
}

/// Watches `example`, printing a `kubectl get PravegaCluster` row whenever it changes, until
/// `done` returns `Some`.
async fn watch_until<F>(
    story: &mut Story,
    api: &Api<PravegaCluster>,
    timeout: Duration,
    step: &str,
    done: F,
) -> Result<PravegaCluster, DemoError>
where
    F: Fn(&PravegaCluster) -> Option<()>,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    let mut stream = watcher(api.clone(), config).applied_objects().boxed();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_row = String::new();
    story.row(&table_header());
    loop {
        let next = tokio::time::timeout_at(deadline, stream.try_next()).await;
        match next {
            Err(_) => {
                return Err(step_err(
                    step,
                    format!(
                        "not reached within {}s (last seen: {})",
                        timeout.as_secs(),
                        last_row.trim()
                    ),
                ));
            }
            Ok(Err(e)) => return Err(step_err(step, format!("watching example: {e}"))),
            Ok(Ok(None)) => return Err(step_err(step, "the watch ended")),
            Ok(Ok(Some(pk))) => {
                let row = table_row(&pk);
                if row != last_row {
                    story.row(&row);
                    last_row = row;
                }
                if done(&pk).is_some() {
                    return Ok(pk);
                }
            }
        }
    }
}

const COLUMNS: [&str; 6] = [
    "NAME",
    "VERSION",
    "DESIRED VERSION",
    "DESIRED MEMBERS",
    "READY MEMBERS",
    "AGE",
];

fn table_header() -> String {
    format_row(&COLUMNS.map(str::to_owned))
}

fn table_row(pk: &PravegaCluster) -> String {
    let s = pk.status.clone().unwrap_or_default();
    let age = pk
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| {
            let secs = k8s_openapi::jiff::Timestamp::now().as_second() - t.0.as_second();
            human_age(secs.max(0))
        })
        .unwrap_or_else(|| "<unknown>".to_owned());
    format_row(&[
        NAME.to_owned(),
        s.current_version.unwrap_or_default(),
        s.target_version.unwrap_or_default(),
        s.replicas.to_string(),
        s.ready_replicas.to_string(),
        age,
    ])
}

fn format_row(cells: &[String; 6]) -> String {
    let widths = [7, 7, 15, 15, 13, 3];
    let mut out = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            out.push_str(cell);
        } else {
            let _ = write!(out, "{cell:<width$}   ");
        }
    }
    out
}

/// Ages the way kubectl prints them: `45s`, `3m12s`, `2h5m`.
fn human_age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// The `Status:` section of `kubectl describe PravegaCluster`, rendered the way kubectl renders
/// a custom resource.
fn describe_status(pk: &PravegaCluster) -> String {
    let value = serde_json::to_value(pk.status.clone().unwrap_or_default()).unwrap_or_default();
    let mut out = String::from("Status:\n");
    describe_value(&value, 1, &mut out);
    out
}

fn title(key: &str) -> String {
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_uppercase() {
            out.push(' ');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

fn describe_value(value: &serde_json::Value, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match value {
        serde_json::Value::Object(map) => {
            let width = map.keys().map(|k| title(k).len() + 1).max().unwrap_or(0) + 2;
            for (k, v) in map {
                let label = format!("{}:", title(k));
                match v {
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                        let _ = writeln!(out, "{indent}{label}");
                        describe_value(v, depth + 1, out);
                    }
                    other => {
                        let _ = writeln!(out, "{indent}{label:<width$}{}", scalar(other));
                    }
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                match item {
                    serde_json::Value::Object(_) => describe_value(item, depth, out),
                    other => {
                        let _ = writeln!(out, "{indent}{}", scalar(other));
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{indent}{}", scalar(other));
        }
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every member pod runs `version` (by its image) and is Ready.
/// Prints the Segment Store's start-up settings as the image reads them: its JVM options (sized
/// from the memory limit, with the cluster name it finds its bookies by) and its tier 2.
async fn show_what_the_segment_store_got(story: &Story, client: &Client) -> Result<(), DemoError> {
    let pod = format!("{NAME}-pravega-segmentstore-0");
    story.cmd(&format!(
        "kubectl get pod {pod} -o jsonpath='{{.spec.containers[0].env[?(@.name==\"JAVA_OPTS\")].value}}'"
    ));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let got = pods
        .get(&pod)
        .await
        .map_err(kube_err("reading a Segment Store pod"))?;
    let container = got.spec.as_ref().and_then(|s| s.containers.first());
    let java_opts = container
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().find(|e| e.name == "JAVA_OPTS"))
        .and_then(|e| e.value.clone())
        .unwrap_or_default();
    if !java_opts.contains(&format!("-Dpravegaservice.clusterName={NAME}")) {
        return Err(step_err(
            "create",
            format!("the Segment Store's JAVA_OPTS lack its cluster name: {java_opts}"),
        ));
    }
    story.say(&java_opts);
    let claim = got
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name == "tier2"))
        .and_then(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
        .unwrap_or_default();
    story.ok(format!(
        "tier 2: FILESYSTEM on claim {claim}, mounted at /mnt/tier2"
    ));
    Ok(())
}

async fn expect_pods_at(
    client: &Client,
    pk: &PravegaCluster,
    version: &str,
    step: &str,
) -> Result<(), DemoError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels(&pravega_crds::names::cluster_selector(NAME)))
        .await
        .map_err(kube_err("listing pods"))?;
    let mut live = 0;
    for pod in list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        live += 1;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let images: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter().filter_map(|c| c.image.clone()))
            .collect();
        if !images.iter().all(|i| i.ends_with(&format!(":{version}"))) {
            return Err(step_err(
                step,
                format!("pod {name} runs {images:?}, expected version {version}"),
            ));
        }
    }
    let desired = pk.status.as_ref().map(|s| s.replicas).unwrap_or_default();
    if live != desired as usize {
        return Err(step_err(
            step,
            format!("{live} member pods exist, expected {desired}"),
        ));
    }
    Ok(())
}

/// After a BookKeeper failure, the Controller and Segment Store templates still carry `version`.
async fn expect_untouched_after_bookkeeper(
    client: &Client,
    version: &str,
) -> Result<(), DemoError> {
    let step = "failed upgrade";
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
    let controller = deployments
        .get(&Component::Controller.workload_name(NAME))
        .await
        .map_err(kube_err("reading the controller Deployment"))?;
    let segmentstore = statefulsets
        .get(&Component::SegmentStore.workload_name(NAME))
        .await
        .map_err(kube_err("reading the segment store StatefulSet"))?;
    let images = |spec: Option<&k8s_openapi::api::core::v1::PodSpec>| -> Vec<String> {
        spec.map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
    };
    let c = images(
        controller
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref()),
    );
    let s = images(
        segmentstore
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref()),
    );
    for (what, imgs) in [("controller", c), ("segment store", s)] {
        if !imgs.iter().all(|i| i.ends_with(&format!(":{version}"))) {
            return Err(step_err(
                step,
                format!("the {what} template was changed to {imgs:?}"),
            ));
        }
    }
    Ok(())
}

/// `deploy/base/validatingwebhookconfiguration.yaml` as the cluster install has it once
/// cert-manager injected the CA: `caBundle` set, the injection annotation gone.
fn webhook_configuration(ca_pem: Vec<u8>) -> Result<ValidatingWebhookConfiguration, DemoError> {
    let mut config: ValidatingWebhookConfiguration = serde_saphyr::from_str(WEBHOOK_CONFIGURATION)
        .map_err(|e| {
            step_err(
                "install",
                format!("deploy/base/validatingwebhookconfiguration.yaml does not parse: {e}"),
            )
        })?;
    if let Some(annotations) = config.metadata.annotations.as_mut() {
        annotations.remove("cert-manager.io/inject-ca-from");
    }
    if config
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.is_empty())
    {
        config.metadata.annotations = None;
    }
    for hook in config.webhooks.iter_mut().flatten() {
        hook.client_config.ca_bundle = Some(ByteString(ca_pem.clone()));
    }
    Ok(config)
}

fn free_port() -> Result<u16, DemoError> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(io("finding a free port"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(io("finding a free port"))
}

fn spawn(bin: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Result<Child, DemoError> {
    let out = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io(format!("opening {}", log.display())))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .map_err(io(format!("starting {}", bin.display())))
}

/// Waits until `GET /readyz` on the process's metrics port answers 200.
async fn wait_ready(name: &str, port: u16, child: &mut Child) -> Result<(), DemoError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(step_err("install", format!("{name} exited with {status}")));
        }
        if http_status(port, "/readyz").await == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(step_err(
                "install",
                format!("{name} did not become ready within 20s"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The operator's log lines that the guide shows.
fn guide_log_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let keys = [
        "syncing cluster version",
        "updating statefulset",
        "upgrading pod:",
        "error syncing cluster version",
    ];
    text.lines()
        .filter(|l| keys.iter().any(|k| l.contains(k)))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// Finds a binary of the workspace: the explicit path, next to this executable, or built with
/// cargo when this executable was built by cargo.
fn locate_binary(name: &'static str, explicit: Option<PathBuf>) -> Result<PathBuf, DemoError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(DemoError::Binary {
                name,
                why: format!("{} is not a file", path.display()),
            })
        };
    }
    let exe = std::env::current_exe().map_err(io("locating this executable"))?;
    // target/<profile>/pravega-sandbox, or target/<profile>/deps/<test> in tests.
    let dirs: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(Path::to_path_buf)
        .collect();
    let find = || dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    if let Some(path) = find() {
        return Ok(path);
    }
    let release = exe.components().any(|c| c.as_os_str() == "release");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    if !manifest.is_file() {
        return Err(DemoError::Binary {
            name,
            why: format!(
                "not next to {} (pass --{}-bin)",
                exe.display(),
                name.trim_start_matches("pravega-")
            ),
        });
    }
    eprintln!("building pravega-operator, pravega-webhook and kubectl-pravega ...");
    let mut cmd = std::process::Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "-p",
            "pravega-operator",
            "-p",
            "pravega-webhook",
            "-p",
            "kubectl-pravega",
        ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(io("running cargo build"))?;
    if !status.success() {
        return Err(DemoError::Binary {
            name,
            why: format!("cargo build exited with {status}"),
        });
    }
    find().ok_or_else(|| DemoError::Binary {
        name,
        why: format!("not found next to {} after building", exe.display()),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_like_kubectl() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(185), "3m5s");
        assert_eq!(human_age(3600), "60m");
        assert_eq!(human_age(4 * 3600 + 120), "4h2m");
    }

    #[test]
    fn describe_renders_the_guides_shape() {
        let mut pk: PravegaCluster =
            serde_saphyr::from_str(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
        let mut status = pravega_crds::PravegaClusterStatus {
            current_version: Some("0.4.0".into()),
            replicas: 8,
            current_replicas: 8,
            ready_replicas: 7,
            ..Default::default()
        };
        status.members.ready = vec!["example-bookie-1".into()];
        status.members.unready = vec!["example-bookie-0".into()];
        let t = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        );
        status.set_condition(
            ConditionType::Error,
            pravega_crds::ConditionStatus::True,
            reasons::UPGRADE_FAILED,
            "failed to sync bookkeeper version. pod example-bookie-0 is restarting",
            &t,
        );
        pk.status = Some(status);
        let text = describe_status(&pk);
        assert!(text.contains("  Current Version:"), "{text}");
        assert!(text.contains("    Message:"), "{text}");
        assert!(
            text.contains("failed to sync bookkeeper version. pod example-bookie-0 is restarting")
        );
        assert!(
            text.contains("    Unready:\n      example-bookie-0"),
            "{text}"
        );
        assert!(text.contains("  Ready Replicas:"), "{text}");
    }

    #[test]
    fn the_webhook_configuration_is_the_installs_with_the_ca() {
        let config = webhook_configuration(b"CA".to_vec()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.metadata.name.as_deref(), Some("pravega-webhook"));
        assert!(
            config.metadata.annotations.is_none(),
            "{:?}",
            config.metadata
        );
        let hooks = config.webhooks.unwrap_or_default();
        let [hook] = hooks.as_slice() else {
            panic!("one webhook: {hooks:?}");
        };
        assert_eq!(hook.name, WEBHOOK_NAME);
        assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(
            hook.client_config.ca_bundle,
            Some(ByteString(b"CA".to_vec()))
        );
        let service = hook.client_config.service.as_ref().expect("a service");
        assert_eq!(
            (
                service.namespace.as_str(),
                service.name.as_str(),
                service.port
            ),
            (WEBHOOK_NAMESPACE, WEBHOOK_SERVICE, Some(443))
        );
        let conditions = hook.match_conditions.clone().unwrap_or_default();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].name, "not-an-emergency-pause");
        crate::cel::compile(&conditions[0].expression).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn table_rows_align_with_the_header() {
        let header = table_header();
        assert!(
            header.starts_with(
                "NAME      VERSION   DESIRED VERSION   DESIRED MEMBERS   READY MEMBERS   AGE"
            ),
            "{header}"
        );
    }
}
