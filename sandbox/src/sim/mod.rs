//! Simulated Kubernetes controllers and kubelets.
//!
//! The simulation acts only through the API, with ordinary kube clients,
//! exactly like kube-controller-manager, kube-scheduler and the kubelet do,
//! so whatever a client sees is what it would see in a cluster:
//!
//! - **StatefulSets**: ordinal pods `<set>-N` (`OrderedReady` or `Parallel`),
//!   `OnDelete` and `RollingUpdate` (with `partition`, highest ordinal first),
//!   ControllerRevisions `<set>-<hash>` and the `controller-revision-hash`
//!   label, PVCs `<claim>-<set>-N` (created once, never deleted, bound), and
//!   the status counters. As in Kubernetes, `currentRevision` only advances
//!   for `RollingUpdate`: with `OnDelete` watch `updatedReplicas`.
//! - **Deployments**: a ReplicaSet per template (`<deploy>-<pod-template-hash>`,
//!   `deployment.kubernetes.io/revision`), rolling updates bounded by
//!   `maxSurge` / `maxUnavailable`, `Recreate`, the `Progressing` (including
//!   `ProgressDeadlineExceeded`) and `Available` conditions.
//! - **ReplicaSets**: pods `<rs>-<5 chars>` (seeded), extra pods deleted
//!   not-ready first.
//! - **PodDisruptionBudgets**: `currentHealthy`, `desiredHealthy`,
//!   `disruptionsAllowed` over the pods the budget's `matchLabels` select.
//! - **Scheduler and kubelets**: nodes `sandbox-node-N`; pods are bound,
//!   run, and become Ready after a delay. Injected failures (by image
//!   pattern) crash-loop, fail to pull, or leave pods unschedulable; invalid
//!   image references give `InvalidImageName`. Deleted pods are terminated,
//!   then removed after their (capped) grace period.
//! - **Container environments**: resolved when a container starts, as a
//!   kubelet does (`envFrom` ConfigMaps and Secrets with `prefix`, then
//!   `env` with `value` and `$(VAR)` references, `fieldRef`,
//!   `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef`); a missing
//!   source that is not `optional` gives `CreateContainerConfigError`
//!   (`configmap "NAME" not found`), retried every second.
//! - **Image contracts**: the kubelets play what the real
//!   `pravega/bookkeeper` and `pravega/pravega` (Controller, Segment Store)
//!   images of each version do with what a pod gives them, from an
//!   independent model of the upstream images (module `images`, not the
//!   operator's tables): a bookie whose `BK_BOOKIE_*` value holds a space
//!   (0.7+), a JVM flag Java 11 removed (0.9+), a Segment Store whose direct
//!   memory does not exceed its cache (0.11+) crash-loop with the image's
//!   exit code and message in `lastState.terminated`; a Segment Store without
//!   a reachable tier 2, or without bookies running under its
//!   `-Dpravegaservice.clusterName`, runs but never becomes Ready (a
//!   `Unhealthy` event says why). Injected failures take precedence.
//! - **Pod IPs and HTTP**: each pod gets its own loopback address
//!   (`127.X.A.B`, a block per simulation, module `pod_ips`), where a
//!   running bookie serves BookKeeper's admin API and a 0.10+ Controller or
//!   Segment Store Pravega's health API, as the image would (module
//!   `pod_http`); annotations ([`UNDER_REPLICATED_LEDGERS`], [`HEALTH`],
//!   [`UNREACHABLE`], [`BOOKIE_READ_ONLY`]) inject faults.
//! - **Container logs** (`kubectl logs`): each container's start, the
//!   settings a modelled image resolved, why it is not ready, its crash
//!   message; its current run and its last terminated one (`--previous`),
//!   bounded. The kubelets serve them on loopback at the port the nodes
//!   advertise (`status.daemonEndpoints.kubeletEndpoint.Port`), where the API
//!   server's `pods/log` subresource reaches them (module `logs`).
//!
//! Everything is event driven (watches), with timers only for delays. All
//! state is derived from the API, so a restarted simulation adopts the
//! objects it finds without recreating or even rewriting them (readiness
//! overrides from [`Simulation::set_pod_ready`] live in memory and are not
//! carried over).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pravega_sandbox::sim::SimError> {
//! use pravega_sandbox::sim::{FailureMode, SimOptions, Simulation};
//! let sim = Simulation::start(client, SimOptions::default()).await?;
//! sim.fail_image(regex::Regex::new(r":0\.5\.0$").expect("valid regex"), FailureMode::CrashLoop);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod deployment;
mod disruption;
mod env;
mod events;
mod hash;
mod images;
mod kubelet;
mod logs;
mod pod_http;
mod pod_ips;
mod replicaset;
pub(crate) mod rng;
mod statefulset;
mod util;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use regex::Regex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use pod_http::{
    BOOKIE_READ_ONLY, HEALTH, MAX_UNDER_REPLICATED_LEDGERS, UNDER_REPLICATED_LEDGERS, UNREACHABLE,
};
pub use pod_ips::BLOCK_MARKER_PORT;

/// How a container whose image matches an injected failure misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// The container starts and exits with code 1, again and again:
    /// `CrashLoopBackOff` with a growing restart count.
    CrashLoop,
    /// The image cannot be pulled: `ErrImagePull`, then `ImagePullBackOff`.
    ImagePull,
    /// The pod is never scheduled: `Pending`, `PodScheduled` False
    /// (`Unschedulable`).
    Unschedulable,
}

/// Tuning of the simulation.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// How long a running container takes to become ready.
    pub ready_delay: Duration,
    /// Per-image ready delays (first matching pattern wins).
    pub image_ready_delays: Vec<(Regex, Duration)>,
    /// Failures injected from the start (first matching pattern wins).
    pub failures: Vec<(Regex, FailureMode)>,
    /// Cap on termination grace periods (`None`: honour the pod's grace).
    pub termination_grace: Option<Duration>,
    /// Seed of the random choices (generated pod names).
    pub seed: u64,
    /// Number of simulated nodes (`sandbox-node-0` ...).
    pub nodes: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            ready_delay: Duration::from_millis(300),
            image_ready_delays: Vec::new(),
            failures: Vec::new(),
            termination_grace: Some(Duration::from_millis(200)),
            seed: 0x5eed,
            nodes: 3,
        }
    }
}

/// Errors of the simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A request to the API server failed.
    #[error("{context}: {source}")]
    Api {
        context: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// An object the request names does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// An object has a value the simulation cannot work with.
    #[error("invalid object: {0}")]
    Invalid(String),
    /// The kubelets' endpoint (container logs) could not be served.
    #[error("{0}")]
    Serve(String),
}

impl SimError {
    pub(crate) fn api(context: String, source: kube::Error) -> Self {
        Self::Api {
            context,
            source: Box::new(source),
        }
    }
}

/// A running simulation. It stops when shut down or dropped.
pub struct Simulation {
    kubelet: Arc<kubelet::Kubelet>,
    resync: mpsc::UnboundedSender<()>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Retry delay after a failed reconcile: short, the API server is local.
/// How often the kubelets look at every pod again, as a real kubelet's periodic sync does
/// (`syncFrequency`): a pod whose change was missed is still brought forward.
const PERIODIC_SYNC: Duration = Duration::from_secs(10);

/// How often the simulated workload controllers (StatefulSet, Deployment, ReplicaSet) look at
/// every object they hold again, as kube-controller-manager's informers resync: a change whose
/// trigger was missed is still acted on. Under load (1,000 clusters) some of the simulated
/// controllers' triggers were never delivered although their watches had the objects.
const CONTROLLER_RESYNC: Duration = Duration::from_secs(30);

fn periodic_sync() -> impl futures::Stream<Item = ()> + Send + 'static {
    every(PERIODIC_SYNC)
}

fn every(period: Duration) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(period).await;
        Some(((), ()))
    })
}

fn retry(err: &SimError) -> Action {
    tracing::debug!(error = %err, "simulated controller will retry");
    Action::requeue(Duration::from_millis(200))
}

impl Simulation {
    /// Registers the simulated nodes and starts the controllers and kubelets.
    pub async fn start(client: Client, opts: SimOptions) -> Result<Simulation, SimError> {
        let config = Arc::new(kubelet::KubeletConfig {
            ready_delay: opts.ready_delay,
            image_ready_delays: opts.image_ready_delays.clone(),
            failures: RwLock::new(opts.failures.clone()),
            termination_grace: opts.termination_grace,
            nodes: opts.nodes,
        });
        // The kubelets' endpoint (container logs), on loopback.
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| SimError::Serve(format!("binding the kubelet endpoint: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| SimError::Serve(format!("binding the kubelet endpoint: {e}")))?
            .port();
        let cancel = CancellationToken::new();
        let net = pod_http::PodNet::new(client.clone(), cancel.child_token());
        let kubelet = Arc::new(kubelet::Kubelet::new(client.clone(), config, port, net));
        kubelet.register_nodes().await?;

        let (resync, resync_rx) = mpsc::unbounded::<()>();
        let mut tasks = Vec::new();
        {
            let endpoint = logs::Endpoint {
                kubelet: kubelet.clone(),
                cancel: cancel.clone(),
            };
            tasks.push(tokio::spawn(async move {
                if let Err(e) = logs::serve(listener, endpoint).await {
                    tracing::warn!(error = %e, "the kubelet endpoint stopped");
                }
            }));
        }
        let wc = watcher::Config::default;

        // StatefulSets.
        {
            let ctx = Arc::new(statefulset::Ctx {
                client: client.clone(),
            });
            let c = cancel.clone();
            let fut = Controller::new(Api::<StatefulSet>::all(client.clone()), wc())
                .owns(Api::<Pod>::all(client.clone()), wc())
                .reconcile_all_on(every(CONTROLLER_RESYNC))
                .graceful_shutdown_on(async move { c.cancelled().await })
                .run(statefulset::reconcile, |_, e, _| retry(e), ctx)
                .for_each(|r| async move { log_result("statefulset", r) });
            tasks.push(tokio::spawn(fut));
        }
        // Deployments.
        {
            let ctx = Arc::new(deployment::Ctx {
                client: client.clone(),
            });
            let c = cancel.clone();
            let fut = Controller::new(Api::<Deployment>::all(client.clone()), wc())
                .owns(Api::<ReplicaSet>::all(client.clone()), wc())
                .reconcile_all_on(every(CONTROLLER_RESYNC))
                .graceful_shutdown_on(async move { c.cancelled().await })
                .run(deployment::reconcile, |_, e, _| retry(e), ctx)
                .for_each(|r| async move { log_result("deployment", r) });
            tasks.push(tokio::spawn(fut));
        }
        // ReplicaSets.
        {
            let ctx = Arc::new(replicaset::Ctx {
                client: client.clone(),
                rng: Mutex::new(rng::SplitMix64::new(opts.seed)),
            });
            let c = cancel.clone();
            let fut = Controller::new(Api::<ReplicaSet>::all(client.clone()), wc())
                .owns(Api::<Pod>::all(client.clone()), wc())
                .reconcile_all_on(every(CONTROLLER_RESYNC))
                .graceful_shutdown_on(async move { c.cancelled().await })
                .run(replicaset::reconcile, |_, e, _| retry(e), ctx)
                .for_each(|r| async move { log_result("replicaset", r) });
            tasks.push(tokio::spawn(fut));
        }
        // PodDisruptionBudgets.
        {
            let ctx = Arc::new(disruption::Ctx {
                client: client.clone(),
            });
            let c = cancel.clone();
            let controller = Controller::new(Api::<PodDisruptionBudget>::all(client.clone()), wc());
            let budgets = controller.store();
            let fut = controller
                .watches(Api::<Pod>::all(client.clone()), wc(), move |pod: Pod| {
                    budgets
                        .state()
                        .iter()
                        .filter(|b| {
                            b.namespace() == pod.namespace()
                                && disruption::selects(
                                    b.spec.as_ref().and_then(|s| s.selector.as_ref()),
                                    pod.labels(),
                                )
                        })
                        .map(|b| ObjectRef::from_obj(b.as_ref()))
                        .collect::<Vec<_>>()
                })
                .graceful_shutdown_on(async move { c.cancelled().await })
                .run(disruption::reconcile, |_, e, _| retry(e), ctx)
                .for_each(|r| async move { log_result("disruption", r) });
            tasks.push(tokio::spawn(fut));
        }
        // Scheduler and kubelets.
        {
            let c = cancel.clone();
            let controller = Controller::new(Api::<Pod>::all(client.clone()), wc())
                .reconcile_all_on(futures::stream::select(resync_rx, periodic_sync()))
                .graceful_shutdown_on(async move { c.cancelled().await });
            let store = controller.store();
            let k = kubelet.clone();
            let gone = (kubelet.clone(), controller.store());
            let fut = controller
                .run(
                    move |pod: Arc<Pod>, ctx: Arc<kubelet::Kubelet>| {
                        // Forget pods that are gone once the bookkeeping
                        // outgrows the live set.
                        if ctx.tracked() > store.len() * 2 + 64 {
                            let live: HashSet<String> =
                                store.state().iter().filter_map(|p| p.uid()).collect();
                            ctx.retain(&live);
                        }
                        kubelet::reconcile(pod, ctx)
                    },
                    |_, e, _| retry(e),
                    k,
                )
                .for_each(move |r| {
                    // A pod deleted at once (no grace) is not reconciled again: forget it.
                    if let Err(kube::runtime::controller::Error::ObjectNotFound(obj)) = &r {
                        let ns = obj.namespace.clone().unwrap_or_default();
                        let live = gone
                            .1
                            .get(&ObjectRef::<Pod>::new(&obj.name).within(&ns))
                            .and_then(|p| p.uid());
                        gone.0.forget_named(&ns, &obj.name, live.as_deref());
                    }
                    async move { log_result("kubelet", r) }
                });
            tasks.push(tokio::spawn(fut));
        }
        tracing::info!(nodes = opts.nodes, ready_delay = ?opts.ready_delay, "simulation started");
        Ok(Simulation {
            kubelet,
            resync,
            cancel,
            tasks,
        })
    }

    /// From now on, containers whose image matches `pattern` fail as `mode`
    /// (running pods too: a crash-looping image makes running containers
    /// crash).
    pub fn fail_image(&self, pattern: Regex, mode: FailureMode) {
        {
            let mut rules = self
                .kubelet
                .config
                .failures
                .write()
                .unwrap_or_else(|e| e.into_inner());
            rules.insert(0, (pattern, mode));
        }
        let _ = self.resync.unbounded_send(());
    }

    /// Removes every injected failure; failing containers recover.
    pub fn clear_failures(&self) {
        self.kubelet
            .config
            .failures
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let _ = self.resync.unbounded_send(());
    }

    /// Overrides the readiness of pod `namespace/name` (until it is deleted)
    /// and reports it right away.
    pub async fn set_pod_ready(
        &self,
        namespace: &str,
        name: &str,
        ready: bool,
    ) -> Result<(), SimError> {
        let api: Api<Pod> = Api::namespaced(self.kubelet.client.clone(), namespace);
        let pod = api
            .get_opt(name)
            .await
            .map_err(|e| SimError::api(format!("get pod {namespace}/{name}"), e))?
            .ok_or_else(|| SimError::NotFound(format!("pod {namespace}/{name}")))?;
        let uid = pod
            .uid()
            .ok_or_else(|| SimError::Invalid(format!("pod {namespace}/{name} has no uid")))?;
        self.kubelet.set_override(&uid, ready);
        self.kubelet.sync(&pod).await?;
        Ok(())
    }

    /// Stops the controllers and kubelets (and the pods' HTTP servers) and
    /// waits for them to finish.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        self.kubelet.net.shutdown().await;
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        self.cancel.cancel();
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn log_result<T: std::fmt::Debug, E: std::fmt::Display>(what: &str, r: Result<T, E>) {
    if let Err(e) = r {
        tracing::debug!(controller = what, error = %e, "simulated controller event");
    }
}
