//! The simulated scheduler and kubelets: pods are bound to simulated nodes,
//! "run", become Ready after a delay, crash-loop or fail to pull when their
//! image matches an injected failure, and are terminated when deleted.
//!
//! When a container starts, its environment is resolved as a kubelet does
//! ([`super::env`]; a missing ConfigMap or Secret is a
//! `CreateContainerConfigError`), and the contract of the real Pravega and
//! BookKeeper images is played ([`super::images`]): a container those images
//! would refuse crash-loops with the image's exit code and message, or runs
//! without ever becoming ready. Injected failures take precedence.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Binding, Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Node, NodeAddress, NodeCondition, NodeStatus,
    NodeSystemInfo, ObjectReference, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use regex::Regex;
use serde_json::{Value, json};

use super::env::{self, Addresses, Env, Sources};
use super::events;
use super::images::{self, Outcome};
use super::logs::ContainerLogs;
use super::pod_http::{ContainerNet, PodNet};
use super::util::{earliest, is_status, is_terminating, now_time};
use super::{FailureMode, SimError};

/// How long a failed pull shows `ErrImagePull` before `ImagePullBackOff`, and
/// how long the back-off lasts before the next attempt.
const PULL_ERROR_FOR: Duration = Duration::from_millis(1000);
const PULL_BACKOFF_FOR: Duration = Duration::from_millis(1500);
/// How often a kubelet retries a container it could not create
/// (`CreateContainerConfigError`), and re-checks a running container whose
/// image's contract keeps it unready (e.g. waiting for bookies).
const RECHECK_EVERY: Duration = Duration::from_millis(1000);

/// Accelerated crash-loop back-off: 1s, 1.5s, then every 2s.
pub(crate) fn crash_backoff(restarts: i32) -> Duration {
    match restarts {
        i32::MIN..=1 => Duration::from_millis(1000),
        2 => Duration::from_millis(1500),
        _ => Duration::from_millis(2000),
    }
}

/// For a container that has crash-looped for `elapsed`: how many crashes
/// happened, when the last one happened (offset from the start), and when
/// the next one is due.
pub(crate) fn crash_schedule(elapsed: Duration) -> (i32, Duration, Duration) {
    let mut crashes = 1;
    let mut at = Duration::ZERO;
    loop {
        let next = at + crash_backoff(crashes);
        if next > elapsed {
            return (crashes, at, next - elapsed);
        }
        at = next;
        crashes += 1;
        if crashes > 100_000 {
            return (crashes, at, crash_backoff(crashes));
        }
    }
}

/// For a container failing to pull for `elapsed`: whether it currently shows
/// `ErrImagePull` (else `ImagePullBackOff`), and the time to the next switch.
pub(crate) fn pull_schedule(elapsed: Duration) -> (bool, Duration) {
    let period = PULL_ERROR_FOR + PULL_BACKOFF_FOR;
    let nanos = elapsed.as_nanos() % period.as_nanos();
    let into = Duration::from_nanos(nanos as u64);
    if into < PULL_ERROR_FOR {
        (true, PULL_ERROR_FOR - into)
    } else {
        (false, period - into)
    }
}

static IMAGE_REF: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    let domain_part = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let pattern = format!(
        r"^(?:{domain_part}(?:\.{domain_part})*(?::[0-9]+)?/)?{component}(?:/{component})*(?::[\w][\w.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?$"
    );
    Regex::new(&pattern).ok()
});

/// Whether `image` is a valid image reference (`name[:tag][@digest]`).
pub(crate) fn is_valid_image(image: &str) -> bool {
    if image.is_empty() || image.len() > 255 {
        return false;
    }
    match IMAGE_REF.as_ref() {
        Some(re) => re.is_match(image),
        None => true,
    }
}

/// Options shared by the kubelets.
pub(crate) struct KubeletConfig {
    pub ready_delay: Duration,
    pub image_ready_delays: Vec<(Regex, Duration)>,
    pub failures: RwLock<Vec<(Regex, FailureMode)>>,
    pub termination_grace: Option<Duration>,
    pub nodes: usize,
}

impl KubeletConfig {
    fn ready_delay_for(&self, image: &str) -> Duration {
        self.image_ready_delays
            .iter()
            .find(|(re, _)| re.is_match(image))
            .map(|(_, d)| *d)
            .unwrap_or(self.ready_delay)
    }

    pub(crate) fn failure_for(&self, image: &str) -> Option<FailureMode> {
        let rules = self.failures.read().unwrap_or_else(|e| e.into_inner());
        rules
            .iter()
            .find(|(re, _)| re.is_match(image))
            .map(|(_, m)| *m)
    }

    /// What a container should be doing: an injected pull failure first
    /// (images are pulled before anything else), then an environment that
    /// could not be resolved, then an injected crash, then what the image's
    /// contract makes of it.
    fn want(&self, image: &str, env: Option<&Result<Env, String>>, outcome: Outcome) -> Want {
        let failure = self.failure_for(image);
        if failure == Some(FailureMode::ImagePull) {
            return Want::Pull;
        }
        if let Some(Err(message)) = env {
            return Want::ConfigError(message.clone());
        }
        if failure == Some(FailureMode::CrashLoop) {
            return Want::Crash(Exit::injected());
        }
        match outcome {
            Outcome::Run => Want::Run(None),
            Outcome::Crash { exit_code, message } => Want::Crash(Exit {
                code: exit_code,
                message: Some(message),
            }),
            Outcome::NeverReady { message } => Want::Run(Some(message)),
        }
    }

    /// A container starting (first start or in-place image change), after
    /// `restarts` restarts.
    fn start(&self, image: &str, want: Want, now: Instant, wall: &Time, restarts: i32) -> Run {
        if !is_valid_image(image) {
            return Run::InvalidImage;
        }
        match want {
            Want::Pull => Run::ImagePull { since: now },
            Want::ConfigError(message) => Run::ConfigError { message },
            Want::Crash(exit) => Run::CrashLoop {
                since: now,
                since_wall: wall.clone(),
                base_restarts: 0,
                exit,
            },
            Want::Run(unready) => Run::Running {
                since: now,
                since_wall: wall.clone(),
                restarts,
                last_terminated: None,
                unready,
            },
        }
    }

    /// Rebuilds what a container is doing from its reported status (used
    /// when adopting pods that existed before this simulation started), and
    /// whether it had already passed its start (reported ready).
    fn adopt_run(
        &self,
        container: &Container,
        status: Option<&ContainerStatus>,
        now: Instant,
        wall: &Time,
    ) -> (Run, bool) {
        let Some(cs) = status else {
            return (Run::Pending, false);
        };
        let state = cs.state.as_ref();
        if let Some(running) = state.and_then(|s| s.running.as_ref()) {
            let since_wall = running.started_at.clone().unwrap_or_else(|| wall.clone());
            let mut ago =
                Duration::from_secs((wall.0.as_second() - since_wall.0.as_second()).max(0) as u64);
            // A container reported ready stays ready (times are only
            // reported to the second).
            if cs.ready {
                let image = container.image.clone().unwrap_or_default();
                ago = ago.max(self.ready_delay_for(&image));
            }
            let run = Run::Running {
                since: now.checked_sub(ago).unwrap_or(now),
                since_wall,
                restarts: cs.restart_count,
                last_terminated: cs.last_state.as_ref().and_then(|l| l.terminated.clone()),
                unready: None,
            };
            return (run, cs.ready);
        }
        let waiting = state.and_then(|s| s.waiting.as_ref());
        let run = match waiting.and_then(|w| w.reason.as_deref()) {
            Some("CrashLoopBackOff") => {
                let last = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref());
                Run::CrashLoop {
                    since: now,
                    since_wall: wall.clone(),
                    base_restarts: (cs.restart_count - 1).max(0),
                    exit: Exit {
                        code: last.map(|t| t.exit_code).unwrap_or(1),
                        message: last.and_then(|t| t.message.clone()),
                    },
                }
            }
            Some("ErrImagePull") | Some("ImagePullBackOff") => Run::ImagePull { since: now },
            Some("CreateContainerConfigError") => Run::ConfigError {
                message: waiting.and_then(|w| w.message.clone()).unwrap_or_default(),
            },
            _ => Run::Pending,
        };
        (run, false)
    }
}

/// Brings a started container towards what it should be doing.
fn transition(run: &mut Run, want: Want, now: Instant, wall: &Time) {
    let next = match (&*run, want) {
        (Run::InvalidImage | Run::Pending, _) => return,
        // A running container's image is already pulled, and its
        // environment already resolved.
        (Run::Running { .. } | Run::ImagePull { .. }, Want::Pull) => return,
        (_, Want::Pull) => Run::ImagePull { since: now },
        (Run::ConfigError { .. } | Run::ImagePull { .. }, Want::ConfigError(message)) => {
            Run::ConfigError { message }
        }
        (_, Want::ConfigError(_)) => return,
        (Run::Running { restarts, .. }, Want::Crash(exit)) => Run::CrashLoop {
            since: now,
            since_wall: wall.clone(),
            base_restarts: *restarts,
            exit,
        },
        (
            Run::CrashLoop {
                since,
                since_wall,
                base_restarts,
                ..
            },
            Want::Crash(exit),
        ) => Run::CrashLoop {
            since: *since,
            since_wall: since_wall.clone(),
            base_restarts: *base_restarts,
            exit,
        },
        (Run::ImagePull { .. } | Run::ConfigError { .. }, Want::Crash(exit)) => Run::CrashLoop {
            since: now,
            since_wall: wall.clone(),
            base_restarts: 0,
            exit,
        },
        (
            Run::Running {
                since,
                since_wall,
                restarts,
                last_terminated,
                ..
            },
            Want::Run(unready),
        ) => Run::Running {
            since: *since,
            since_wall: since_wall.clone(),
            restarts: *restarts,
            last_terminated: last_terminated.clone(),
            unready,
        },
        (
            Run::CrashLoop {
                since,
                base_restarts,
                exit,
                ..
            },
            Want::Run(unready),
        ) => Run::Running {
            since: now,
            since_wall: wall.clone(),
            restarts: base_restarts + crash_schedule(now.saturating_duration_since(*since)).0,
            last_terminated: Some(crashed(wall, wall, exit)),
            unready,
        },
        (Run::ImagePull { .. } | Run::ConfigError { .. }, Want::Run(unready)) => Run::Running {
            since: now,
            since_wall: wall.clone(),
            restarts: 0,
            last_terminated: None,
            unready,
        },
    };
    *run = next;
}

pub(crate) fn node_name(i: usize) -> String {
    format!("sandbox-node-{i}")
}

fn host_ip(i: usize) -> String {
    format!("172.18.0.{}", i + 2)
}

/// How a crash-looping container's runs end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exit {
    code: i32,
    message: Option<String>,
}

impl Exit {
    /// An injected crash: exit code 1, nothing said.
    fn injected() -> Self {
        Exit {
            code: 1,
            message: None,
        }
    }
}

/// What a container should be doing (see [`KubeletConfig::want`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Pull,
    ConfigError(String),
    Crash(Exit),
    /// Run, never becoming ready while there is a reason.
    Run(Option<String>),
}

/// What one simulated container is doing.
#[derive(Debug, Clone)]
enum Run {
    /// Not started yet (brought forward in the same sync).
    Pending,
    Running {
        since: Instant,
        since_wall: Time,
        restarts: i32,
        last_terminated: Option<ContainerStateTerminated>,
        /// Why its readiness probe fails, if it does.
        unready: Option<String>,
    },
    CrashLoop {
        since: Instant,
        since_wall: Time,
        base_restarts: i32,
        exit: Exit,
    },
    ImagePull {
        since: Instant,
    },
    /// Its environment cannot be resolved: `CreateContainerConfigError`.
    ConfigError {
        message: String,
    },
    InvalidImage,
}

#[derive(Debug, Clone)]
struct ContainerRun {
    name: String,
    image: String,
    run: Run,
    /// The environment resolved when the container (last) started, or why
    /// it could not be; `None` until it is resolved.
    env: Option<Result<Env, String>>,
    /// Whether it has passed its image's start checks since it last
    /// started: they are not repeated while it keeps running.
    settled: bool,
    /// The readiness failure last reported (`Unhealthy` event).
    reported_unready: Option<String>,
    /// What it wrote (`kubectl logs`).
    logs: ContainerLogs,
}

impl ContainerRun {
    fn new(name: String, image: String, run: Run, settled: bool) -> Self {
        ContainerRun {
            name,
            image,
            run,
            env: None,
            settled,
            reported_unready: None,
            logs: ContainerLogs::default(),
        }
    }

    /// Brings its log up to what it is doing; tells whether the log changed.
    fn record_log(&mut self, spec: &Container) -> bool {
        match &self.run {
            Run::Running { since, .. } => self
                .logs
                .running(*since, || start_log(&self.image, self.env.as_ref(), spec)),
            Run::CrashLoop { exit, .. } => {
                let crash: Vec<String> = exit.message.iter().cloned().collect();
                self.logs
                    .crashing(&crash, || start_log(&self.image, self.env.as_ref(), spec))
            }
            _ => false,
        }
    }
}

/// What a container writes when it starts: see [`images::start_log`].
fn start_log(image: &str, env: Option<&Result<Env, String>>, spec: &Container) -> Vec<String> {
    let args = spec.args.as_deref().unwrap_or_default();
    match env {
        Some(Ok(env)) => images::start_log(&images::Start {
            image,
            args,
            env,
            memory_limit: None,
            mounts: &[],
        }),
        _ => vec![images::starting_line(image, args)],
    }
}

#[derive(Debug, Default)]
struct PodRun {
    node: Option<usize>,
    pod_ip: Option<String>,
    start_time: Option<Time>,
    containers: Vec<ContainerRun>,
    terminating_since: Option<Instant>,
    last_written: Option<Value>,
    /// What was last reported (as events) for each container.
    reported: Vec<&'static str>,
}

#[derive(Default)]
struct State {
    pods: HashMap<String, PodRun>,
    overrides: HashMap<String, bool>,
    binding: Option<bool>,
    /// By pod uid: its namespace and the cluster names its running, ready
    /// bookie containers are registered under.
    bookies: HashMap<String, (String, Vec<String>)>,
    /// The uid of each pod (namespace, name) seen, to forget a pod replaced
    /// by another of the same name.
    names: HashMap<(String, String), String>,
}

impl State {
    /// The cluster names bookies of other pods than `uid` run under in
    /// namespace `ns`.
    fn bookie_clusters(&self, ns: &str, uid: &str) -> HashSet<String> {
        self.bookies
            .iter()
            .filter(|(u, (n, _))| n == ns && u.as_str() != uid)
            .flat_map(|(_, (_, clusters))| clusters.iter().cloned())
            .collect()
    }
}

pub(crate) struct Kubelet {
    pub client: Client,
    pub config: Arc<KubeletConfig>,
    state: Mutex<State>,
    /// The loopback port serving container logs (the nodes'
    /// `status.daemonEndpoints.kubeletEndpoint.Port`).
    port: u16,
    /// Bumped whenever a container log changes (wakes `kubectl logs -f`).
    log_ticks: tokio::sync::watch::Sender<u64>,
    /// The pods' IPs and the HTTP servers on them.
    pub(crate) net: Arc<PodNet>,
}

fn add(wall: &Time, d: Duration) -> Time {
    let secs = wall.0.as_second() + d.as_secs() as i64;
    Time(Timestamp::from_second(secs).unwrap_or(wall.0))
}

impl Kubelet {
    pub(crate) fn new(
        client: Client,
        config: Arc<KubeletConfig>,
        port: u16,
        net: Arc<PodNet>,
    ) -> Self {
        Self {
            client,
            config,
            state: Mutex::new(State::default()),
            port,
            log_ticks: tokio::sync::watch::channel(0).0,
            net,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the followers of container logs.
    fn logs_changed(&self) {
        self.log_ticks.send_modify(|t| *t = t.wrapping_add(1));
    }

    /// Changes to container logs.
    pub(crate) fn log_ticks(&self) -> tokio::sync::watch::Receiver<u64> {
        self.log_ticks.subscribe()
    }

    /// Reads the logs of container `name` of the pod with `uid`.
    pub(crate) fn with_logs<R>(
        &self,
        uid: &str,
        name: &str,
        f: impl FnOnce(&ContainerLogs) -> Option<R>,
    ) -> Option<R> {
        let st = self.lock();
        let c = st
            .pods
            .get(uid)?
            .containers
            .iter()
            .find(|c| c.name == name)?;
        f(&c.logs)
    }

    /// Makes sure the simulated nodes exist and are Ready.
    pub(crate) async fn register_nodes(&self) -> Result<(), SimError> {
        let api: Api<Node> = Api::all(self.client.clone());
        for i in 0..self.config.nodes {
            let name = node_name(i);
            let node = Node {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(
                        [
                            ("kubernetes.io/hostname", name.as_str()),
                            ("kubernetes.io/os", "linux"),
                            ("kubernetes.io/arch", "amd64"),
                        ]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ),
                    ..Default::default()
                },
                spec: None,
                status: None,
            };
            match api.create(&PostParams::default(), &node).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 409) => {}
                Err(e) => return Err(SimError::api(format!("create node {name}"), e)),
            }
            let now = now_time();
            let resources: std::collections::BTreeMap<String, Quantity> = [
                ("cpu", "8"),
                ("memory", "32Gi"),
                ("pods", "110"),
                ("ephemeral-storage", "100Gi"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
            let status = NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    reason: Some("KubeletReady".into()),
                    message: Some("kubelet is posting ready status".into()),
                    last_heartbeat_time: Some(now.clone()),
                    last_transition_time: Some(now),
                }]),
                addresses: Some(vec![
                    NodeAddress {
                        type_: "InternalIP".into(),
                        address: host_ip(i),
                    },
                    NodeAddress {
                        type_: "Hostname".into(),
                        address: name.clone(),
                    },
                ]),
                capacity: Some(resources.clone()),
                allocatable: Some(resources),
                node_info: Some(NodeSystemInfo {
                    architecture: "amd64".into(),
                    boot_id: format!("sandbox-boot-{i}"),
                    container_runtime_version: "sandbox://1.0.0".into(),
                    kernel_version: "6.0.0-sandbox".into(),
                    kube_proxy_version: String::new(),
                    kubelet_version: "v1.33.0-sandbox".into(),
                    machine_id: format!("sandbox-machine-{i}"),
                    operating_system: "linux".into(),
                    os_image: "Pravega Sandbox".into(),
                    system_uuid: format!("sandbox-node-uuid-{i}"),
                    swap: None,
                }),
                ..Default::default()
            };
            let ready = api
                .get_opt(&name)
                .await
                .map_err(|e| SimError::api(format!("get node {name}"), e))?
                .and_then(|n| n.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if !ready {
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await
                .map_err(|e| SimError::api(format!("update node {name} status"), e))?;
            }
            // Where the API server reaches this kubelet (`pods/log`).
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "daemonEndpoints": {
                    "kubeletEndpoint": { "Port": self.port } } } })),
            )
            .await
            .map_err(|e| SimError::api(format!("update node {name} status"), e))?;
        }
        Ok(())
    }

    /// Records a readiness override for a pod.
    pub(crate) fn set_override(&self, uid: &str, ready: bool) {
        self.lock().overrides.insert(uid.to_string(), ready);
    }

    /// Forgets pods that no longer exist (called with the live uids).
    pub(crate) fn retain(&self, live: &HashSet<String>) {
        let mut st = self.lock();
        st.pods.retain(|uid, _| live.contains(uid));
        st.overrides.retain(|uid, _| live.contains(uid));
        st.bookies.retain(|uid, _| live.contains(uid));
        st.names.retain(|_, uid| live.contains(uid));
        drop(st);
        self.net.retain(live);
        self.logs_changed();
    }

    /// Forgets pod `uid` (it is gone): its state, its servers, its IP.
    pub(crate) fn forget(&self, uid: &str) {
        let mut st = self.lock();
        st.pods.remove(uid);
        st.overrides.remove(uid);
        st.bookies.remove(uid);
        st.names.retain(|_, u| u != uid);
        drop(st);
        self.net.forget(uid);
        self.logs_changed();
    }

    /// Forgets pod `namespace/name`, which is gone (or replaced by the pod
    /// with uid `live`).
    pub(crate) fn forget_named(&self, namespace: &str, name: &str, live: Option<&str>) {
        let known = self
            .lock()
            .names
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned();
        if let Some(uid) = known
            && Some(uid.as_str()) != live
        {
            self.forget(&uid);
        }
    }

    pub(crate) fn tracked(&self) -> usize {
        self.lock().pods.len()
    }

    /// Stops a deleted pod's containers, then removes the pod once its
    /// (capped) grace period is over.
    async fn terminate(
        &self,
        api: &Api<Pod>,
        pod: &Pod,
        uid: &str,
        assigned: bool,
    ) -> Result<Action, SimError> {
        let ns = pod.namespace().unwrap_or_else(|| "default".into());
        let name = pod.name_any();
        let now = Instant::now();
        let wall = now_time();
        let spec = pod.spec.clone().unwrap_or_default();
        let uid = uid.to_string();
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or(spec.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0) as u64;
        let mut grace = Duration::from_secs(grace);
        if let Some(cap) = self.config.termination_grace {
            grace = grace.min(cap);
        }
        if !assigned {
            // Never started: nothing to stop.
            grace = Duration::ZERO;
        }
        // Its containers stop serving.
        self.net.stop(&uid);
        let (since, write) = {
            let mut st = self.lock();
            // A stopping bookie is no longer registered.
            st.bookies.remove(&uid);
            let run = st.pods.entry(uid.clone()).or_default();
            let first = run.terminating_since.is_none();
            let since = *run.terminating_since.get_or_insert(now);
            // The containers stop: their logs end (`kubectl logs -f` returns).
            for c in run.containers.iter_mut() {
                c.logs.stop();
            }
            (since, first && assigned)
        };
        self.logs_changed();
        if write {
            for c in &spec.containers {
                events::emit(
                    &self.client,
                    events::reference(pod),
                    false,
                    "Killing",
                    format!("Stopping container {}", c.name),
                    "kubelet",
                );
            }
            let status = terminated_status(pod, &wall);
            if let Err(e) = api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await
                && !is_status(&e, 404)
            {
                tracing::debug!(pod = %name, namespace = %ns, error = %e, "could not report terminated containers");
            }
        }
        let elapsed = now.saturating_duration_since(since);
        if elapsed < grace {
            return Ok(Action::requeue(grace - elapsed));
        }
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => {}
            Err(e) => return Err(SimError::api(format!("delete pod {ns}/{name}"), e)),
        }
        self.forget(&uid);
        Ok(Action::await_change())
    }

    /// Brings one pod's simulated state forward and writes its status when it
    /// changed. Returns when to look again.
    pub(crate) async fn sync(&self, pod: &Pod) -> Result<Action, SimError> {
        let Some(uid) = pod.uid() else {
            return Ok(Action::await_change());
        };
        let ns = pod.namespace().unwrap_or_else(|| "default".into());
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let Some(spec) = pod.spec.as_ref() else {
            return Ok(Action::await_change());
        };
        let now = Instant::now();
        let wall = now_time();
        let assigned = spec.node_name.as_ref().filter(|n| !n.is_empty()).cloned();

        // A pod replaced by another of the same name is gone.
        let previous = self
            .lock()
            .names
            .insert((ns.clone(), name.clone()), uid.clone());
        if let Some(old) = previous.filter(|old| *old != uid) {
            self.forget(&old);
            self.lock()
                .names
                .insert((ns.clone(), name.clone()), uid.clone());
        }

        if is_terminating(&pod.metadata) {
            return self.terminate(&api, pod, &uid, assigned.is_some()).await;
        }

        // Scheduling.
        let images: Vec<String> = spec
            .containers
            .iter()
            .map(|c| c.image.clone().unwrap_or_default())
            .collect();
        let node_idx = match &assigned {
            Some(n) => n
                .strip_prefix("sandbox-node-")
                .and_then(|i| i.parse::<usize>().ok()),
            None => None,
        };
        let known_node = self.lock().pods.get(&uid).and_then(|r| r.node);
        let node_idx = match (assigned.is_some(), node_idx.or(known_node)) {
            (_, Some(i)) => i,
            (true, None) => 0,
            (false, None) => {
                let unschedulable = images
                    .iter()
                    .any(|i| self.config.failure_for(i) == Some(FailureMode::Unschedulable));
                if unschedulable || self.config.nodes == 0 {
                    let status = unschedulable_status(pod, self.config.nodes, &wall);
                    let message = status
                        .pointer("/conditions/0/message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    if self.write_status(&api, pod, &uid, &name, status).await? {
                        events::emit(
                            &self.client,
                            events::reference(pod),
                            true,
                            "FailedScheduling",
                            message,
                            "default-scheduler",
                        );
                    }
                    return Ok(Action::await_change());
                }
                let idx = self.pick_node();
                self.bind(&api, &name, &uid, idx).await?;
                events::emit(
                    &self.client,
                    events::reference(pod),
                    false,
                    "Scheduled",
                    format!("Successfully assigned {ns}/{name} to {}", node_name(idx)),
                    "default-scheduler",
                );
                idx
            }
        };

        // Running: first what needs no API request.
        let has_ip = self
            .lock()
            .pods
            .get(&uid)
            .is_some_and(|r| r.pod_ip.is_some());
        let new_ip = if has_ip {
            None
        } else {
            let existing = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
            self.net.assign_ip(&uid, existing, node_idx)
        };
        let (starting, pod_ip) = {
            let mut st = self.lock();
            let run = st.pods.entry(uid.clone()).or_default();
            run.node = Some(node_idx);
            if run.pod_ip.is_none() {
                run.pod_ip = new_ip;
            }
            if run.start_time.is_none() {
                run.start_time = Some(
                    pod.status
                        .as_ref()
                        .and_then(|s| s.start_time.clone())
                        .unwrap_or_else(|| wall.clone()),
                );
            }
            if run.containers.len() != spec.containers.len()
                || run
                    .containers
                    .iter()
                    .zip(&spec.containers)
                    .any(|(r, c)| r.name != c.name)
            {
                let statuses = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref());
                run.containers = spec
                    .containers
                    .iter()
                    .map(|c| {
                        let cs = statuses.and_then(|v| v.iter().find(|s| s.name == c.name));
                        let (r, settled) = self.config.adopt_run(c, cs, now, &wall);
                        ContainerRun::new(
                            c.name.clone(),
                            c.image.clone().unwrap_or_default(),
                            r,
                            settled,
                        )
                    })
                    .collect();
                // What an earlier kubelet already reported is not repeated.
                run.reported = run
                    .containers
                    .iter()
                    .map(|c| match statuses {
                        Some(v) if v.iter().any(|s| s.name == c.name) => run_kind(&c.run),
                        _ => "",
                    })
                    .collect();
            }
            // The containers that start (or retry starting) now resolve
            // their environment.
            let starting: Vec<bool> = run
                .containers
                .iter()
                .zip(&spec.containers)
                .map(|(c, s)| {
                    c.env.is_none()
                        || Some(&c.image) != s.image.as_ref()
                        || matches!(c.run, Run::Pending | Run::ConfigError { .. })
                })
                .collect();
            (starting, run.pod_ip.clone())
        };

        // Their environment, reading the ConfigMaps and Secrets it refers to.
        let mut resolved: Vec<Option<Result<Env, String>>> = vec![None; spec.containers.len()];
        if starting.iter().any(|s| *s) {
            let mut sources = Sources::default();
            let chosen = || {
                spec.containers
                    .iter()
                    .zip(&starting)
                    .filter(|(_, s)| **s)
                    .map(|(c, _)| c)
            };
            sources.fetch(&self.client, &ns, chosen()).await?;
            let host = host_ip(node_idx);
            let addresses = Addresses {
                pod_ip: pod_ip.as_deref(),
                host_ip: Some(&host),
            };
            for (slot, (c, s)) in resolved
                .iter_mut()
                .zip(spec.containers.iter().zip(&starting))
            {
                if *s {
                    *slot = Some(env::resolve(pod, c, &sources, addresses));
                }
            }
        }

        let mut logs_changed = false;
        let (status, wake, net) = {
            let mut st = self.lock();
            let override_ready = st.overrides.get(&uid).copied();
            let bookies = st.bookie_clusters(&ns, &uid);
            let run = st.pods.entry(uid.clone()).or_default();
            for ((c, spec_c), env) in run
                .containers
                .iter_mut()
                .zip(&spec.containers)
                .zip(resolved)
            {
                self.step(c, spec_c, env, &bookies, now, &wall);
                logs_changed |= c.record_log(spec_c);
            }
            let kinds: Vec<&'static str> =
                run.containers.iter().map(|c| run_kind(&c.run)).collect();
            for (i, (c, kind)) in run.containers.iter().zip(&kinds).enumerate() {
                if run.reported.get(i) != Some(kind) {
                    container_events(&self.client, pod, c);
                }
            }
            run.reported = kinds;
            let mut recheck = false;
            for c in run.containers.iter_mut() {
                let unready = match &c.run {
                    Run::Running { unready, .. } => unready.clone(),
                    _ => None,
                };
                recheck |= unready.is_some() || matches!(c.run, Run::ConfigError { .. });
                if unready != c.reported_unready {
                    if let Some(message) = &unready {
                        // What the container says about it in its log.
                        logs_changed |= c.logs.write([message.clone()]);
                        events::emit(
                            &self.client,
                            events::reference(pod),
                            true,
                            "Unhealthy",
                            format!("Readiness probe failed: {message}"),
                            "kubelet",
                        );
                    }
                    c.reported_unready = unready;
                }
            }
            // The bookies of this pod that are up, registered under their
            // cluster name.
            let clusters: Vec<String> = run
                .containers
                .iter()
                .filter_map(|c| {
                    let Run::Running {
                        since,
                        unready: None,
                        ..
                    } = &c.run
                    else {
                        return None;
                    };
                    if now.saturating_duration_since(*since) < self.config.ready_delay_for(&c.image)
                    {
                        return None;
                    }
                    match &c.env {
                        Some(Ok(env)) => images::bookie_cluster(&c.image, env),
                        _ => None,
                    }
                })
                .collect();
            let prev = run.last_written.clone().or_else(|| {
                pod.status
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok())
            });
            let (status, wake) = running_status(
                pod,
                run,
                &self.config,
                node_idx,
                override_ready,
                now,
                &wall,
                prev.as_ref(),
            );
            let net = containers_net(pod, run, &status);
            if clusters.is_empty() {
                st.bookies.remove(&uid);
            } else {
                st.bookies.insert(uid.clone(), (ns.clone(), clusters));
            }
            let wake = if recheck {
                earliest(wake, Some(RECHECK_EVERY))
            } else {
                wake
            };
            (status, wake, net)
        };
        self.net.update(pod, &uid, net);
        if logs_changed {
            self.logs_changed();
        }
        self.write_status(&api, pod, &uid, &name, status).await?;
        Ok(match wake {
            Some(d) => Action::requeue(d.max(Duration::from_millis(10))),
            None => Action::await_change(),
        })
    }

    /// Brings one container forward: a start (first start, in-place image
    /// change, or a retry after `CreateContainerConfigError`) takes the
    /// environment `resolved` for it; then injected failures and the image's
    /// contract decide what it does.
    fn step(
        &self,
        c: &mut ContainerRun,
        spec_c: &Container,
        resolved: Option<Result<Env, String>>,
        bookies: &HashSet<String>,
        now: Instant,
        wall: &Time,
    ) {
        let image = spec_c.image.clone().unwrap_or_default();
        let mut restart = matches!(c.run, Run::Pending).then_some(0);
        if c.image != image {
            // In-place image change: the container restarts with it.
            restart = Some(match &c.run {
                Run::Running { restarts, .. } => restarts + 1,
                _ => 0,
            });
            c.image = image;
            c.env = None;
            c.settled = false;
        }
        if let Some(resolved) = resolved
            && (restart.is_some() || c.env.is_none() || matches!(c.run, Run::ConfigError { .. }))
        {
            // An adopted container that already runs keeps running even if
            // its sources are gone by now.
            let running =
                restart.is_none() && matches!(c.run, Run::Running { .. } | Run::CrashLoop { .. });
            c.env = Some(match resolved {
                Err(_) if running => Ok(Env::new()),
                other => other,
            });
        }
        let outcome = match &c.env {
            Some(Ok(env)) if !c.settled => {
                let mounts: Vec<String> = spec_c
                    .volume_mounts
                    .iter()
                    .flatten()
                    .map(|m| m.mount_path.clone())
                    .collect();
                let memory_limit = spec_c
                    .resources
                    .as_ref()
                    .and_then(|r| r.limits.as_ref())
                    .and_then(|l| l.get("memory"))
                    .and_then(|q| env::quantity(&q.0))
                    .map(|b| b.ceil().max(0.0) as u64);
                images::play(
                    &images::Start {
                        image: &c.image,
                        args: spec_c.args.as_deref().unwrap_or_default(),
                        env,
                        memory_limit,
                        mounts: &mounts,
                    },
                    bookies,
                )
            }
            _ => Outcome::Run,
        };
        let want = self.config.want(&c.image, c.env.as_ref(), outcome);
        match restart {
            Some(restarts) => c.run = self.config.start(&c.image, want, now, wall, restarts),
            None => transition(&mut c.run, want, now, wall),
        }
        c.settled = c.env.is_some() && matches!(c.run, Run::Running { unready: None, .. });
    }

    fn pick_node(&self) -> usize {
        let st = self.lock();
        let mut load = vec![0usize; self.config.nodes.max(1)];
        for r in st.pods.values() {
            if let (Some(n), None) = (r.node, r.terminating_since)
                && let Some(l) = load.get_mut(n)
            {
                *l += 1;
            }
        }
        load.iter()
            .enumerate()
            .min_by_key(|(i, l)| (**l, *i))
            .map(|(i, _)| i)
            .unwrap_or(0)
    }

    async fn bind(
        &self,
        api: &Api<Pod>,
        name: &str,
        uid: &str,
        idx: usize,
    ) -> Result<(), SimError> {
        let node = node_name(idx);
        let use_binding = self.lock().binding != Some(false);
        if use_binding {
            let binding = Binding {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..Default::default()
                },
                target: ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Node".into()),
                    name: Some(node.clone()),
                    ..Default::default()
                },
            };
            match api
                .create_subresource::<_, Value>("binding", name, &PostParams::default(), &binding)
                .await
            {
                Ok(_) => {
                    self.lock().binding = Some(true);
                    self.lock().pods.entry(uid.to_string()).or_default().node = Some(idx);
                    return Ok(());
                }
                Err(e) if is_status(&e, 409) => return Ok(()),
                Err(e) => {
                    // Without a binding subresource, set the node name
                    // directly instead.
                    if api.get_opt(name).await.ok().flatten().is_none() {
                        return Ok(());
                    }
                    tracing::debug!(error = %e, "pods/binding not available, binding by patching spec.nodeName");
                    self.lock().binding = Some(false);
                }
            }
        }
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "nodeName": node } })),
        )
        .await
        .map_err(|e| SimError::api(format!("bind pod {name} to {node}"), e))?;
        self.lock().pods.entry(uid.to_string()).or_default().node = Some(idx);
        Ok(())
    }

    /// Writes a pod status unless it was already written; tells whether it
    /// wrote.
    async fn write_status(
        &self,
        api: &Api<Pod>,
        pod: &Pod,
        uid: &str,
        name: &str,
        status: Value,
    ) -> Result<bool, SimError> {
        {
            let mut st = self.lock();
            let run = st.pods.entry(uid.to_string()).or_default();
            match &run.last_written {
                Some(written) if written == &status => return Ok(false),
                // A pod adopted as it is: nothing to write.
                None if pod
                    .status
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok())
                    .as_ref()
                    == Some(&status) =>
                {
                    run.last_written = Some(status);
                    return Ok(false);
                }
                _ => {}
            }
        }
        match api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => return Ok(false),
            Err(e) => return Err(SimError::api(format!("update pod {name} status"), e)),
        }
        self.lock()
            .pods
            .entry(uid.to_string())
            .or_default()
            .last_written = Some(status);
        Ok(true)
    }
}

/// What the pod's network needs to know of its containers: whether each runs and is
/// ready (as `status` reports it), what it serves, and, for a bookie, its id.
fn containers_net(pod: &Pod, run: &PodRun, status: &Value) -> Vec<ContainerNet> {
    let spec = pod.spec.as_ref();
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let host = images::PodHost {
        name: &name,
        namespace: &ns,
        hostname: spec.and_then(|s| s.hostname.as_deref()),
        subdomain: spec.and_then(|s| s.subdomain.as_deref()),
        pod_ip: run.pod_ip.as_deref(),
    };
    let statuses = status
        .get("containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    run.containers
        .iter()
        .map(|c| {
            let running = matches!(c.run, Run::Running { .. });
            let ready = statuses
                .iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(c.name.as_str()))
                .and_then(|s| s.get("ready"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let container_spec =
                spec.and_then(|s| s.containers.iter().find(|sc| sc.name == c.name));
            let args = container_spec
                .and_then(|sc| sc.args.as_deref())
                .unwrap_or_default();
            let env = match &c.env {
                Some(Ok(env)) => Some(env),
                _ => None,
            };
            let server = env.filter(|_| running).and_then(|env| {
                images::http_server(&images::Start {
                    image: &c.image,
                    args,
                    env,
                    memory_limit: None,
                    mounts: &[],
                })
                .transpose()
            });
            let bookie = images::is_bookie(&c.image);
            ContainerNet {
                name: c.name.clone(),
                running,
                ready,
                server,
                bookie,
                bookie_id: env
                    .filter(|_| bookie)
                    .map(|env| images::bookie_id(env, &host)),
            }
        })
        .collect()
}

fn run_kind(run: &Run) -> &'static str {
    match run {
        Run::Pending => "pending",
        Run::Running { .. } => "running",
        Run::CrashLoop { .. } => "crashing",
        Run::ImagePull { .. } => "pulling",
        Run::ConfigError { .. } => "config",
        Run::InvalidImage => "invalid",
    }
}

/// The events a kubelet reports when a container enters a state.
fn container_events(client: &Client, pod: &Pod, c: &ContainerRun) {
    let r = || events::reference(pod);
    let (name, image) = (&c.name, &c.image);
    match &c.run {
        Run::Pending => {}
        Run::ConfigError { message } => {
            events::emit(
                client,
                r(),
                false,
                "Pulled",
                format!("Container image {image:?} already present on machine"),
                "kubelet",
            );
            events::emit(
                client,
                r(),
                true,
                "Failed",
                format!("Error: {message}"),
                "kubelet",
            );
        }
        Run::Running { .. } => {
            events::emit(
                client,
                r(),
                false,
                "Pulled",
                format!("Container image {image:?} already present on machine"),
                "kubelet",
            );
            events::emit(
                client,
                r(),
                false,
                "Created",
                format!("Created container: {name}"),
                "kubelet",
            );
            events::emit(
                client,
                r(),
                false,
                "Started",
                format!("Started container {name}"),
                "kubelet",
            );
        }
        Run::CrashLoop { .. } => {
            let pod_id = format!(
                "{}_{}({})",
                pod.name_any(),
                pod.namespace().unwrap_or_default(),
                pod.uid().unwrap_or_default()
            );
            events::emit(
                client,
                r(),
                true,
                "BackOff",
                format!("Back-off restarting failed container {name} in pod {pod_id}"),
                "kubelet",
            );
        }
        Run::ImagePull { .. } => {
            events::emit(
                client,
                r(),
                false,
                "Pulling",
                format!("Pulling image {image:?}"),
                "kubelet",
            );
            events::emit(
                client,
                r(),
                true,
                "Failed",
                format!("Failed to pull image {image:?}: not found"),
                "kubelet",
            );
            events::emit(
                client,
                r(),
                true,
                "Failed",
                "Error: ErrImagePull".into(),
                "kubelet",
            );
        }
        Run::InvalidImage => {
            events::emit(
                client,
                r(),
                true,
                "InspectFailed",
                format!(
                    "Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: invalid reference format"
                ),
                "kubelet",
            );
            events::emit(
                client,
                r(),
                true,
                "Failed",
                "Error: InvalidImageName".into(),
                "kubelet",
            );
        }
    }
}

fn crashed(started: &Time, finished: &Time, exit: &Exit) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: exit.code,
        reason: Some("Error".into()),
        message: exit.message.clone(),
        started_at: Some(started.clone()),
        finished_at: Some(finished.clone()),
        ..Default::default()
    }
}

/// Keeps a condition's previous transition time when its status did not change.
fn pod_condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    prev: Option<&Value>,
    now: &Time,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let previous = prev
        .and_then(|p| p.get("conditions"))
        .and_then(|c| c.as_array())
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type").and_then(|t| t.as_str()) == Some(type_))
        })
        .filter(|c| c.get("status").and_then(|s| s.as_str()) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .and_then(|t| serde_json::from_value::<Time>(t).ok());
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(previous.unwrap_or_else(|| now.clone())),
        last_probe_time: None,
        observed_generation: None,
    }
}

fn unschedulable_status(pod: &Pod, nodes: usize, now: &Time) -> Value {
    let prev = pod
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok());
    let message = format!(
        "0/{nodes} nodes are available: {nodes} Insufficient cpu. preemption: 0/{nodes} nodes are available: {nodes} No preemption victims found for incoming pod."
    );
    let status = PodStatus {
        phase: Some("Pending".into()),
        conditions: Some(vec![pod_condition(
            "PodScheduled",
            false,
            Some("Unschedulable"),
            Some(message),
            prev.as_ref(),
            now,
        )]),
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    };
    serde_json::to_value(status).unwrap_or(Value::Null)
}

fn terminated_status(pod: &Pod, now: &Time) -> Value {
    let mut status = pod.status.clone().unwrap_or_default();
    if let Some(cs) = status.container_statuses.as_mut() {
        for c in cs.iter_mut() {
            let started = c
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.clone());
            c.state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 0,
                    reason: Some("Completed".into()),
                    started_at: started,
                    finished_at: Some(now.clone()),
                    container_id: c.container_id.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            });
            c.ready = false;
            c.started = Some(false);
        }
    }
    if let Some(conds) = status.conditions.as_mut() {
        for c in conds.iter_mut() {
            if (c.type_ == "Ready" || c.type_ == "ContainersReady") && c.status == "True" {
                c.status = "False".into();
                c.reason = Some("PodCompleted".into());
                c.last_transition_time = Some(now.clone());
            }
        }
    }
    json!({ "containerStatuses": status.container_statuses, "conditions": status.conditions })
}

/// The status of a scheduled, running pod, and when it next changes.
#[allow(clippy::too_many_arguments)]
fn running_status(
    pod: &Pod,
    run: &PodRun,
    config: &KubeletConfig,
    node: usize,
    override_ready: Option<bool>,
    now: Instant,
    wall: &Time,
    prev: Option<&Value>,
) -> (Value, Option<Duration>) {
    let pod_name = pod.name_any();
    let ns = pod.namespace().unwrap_or_default();
    let uid = pod.uid().unwrap_or_default();
    let mut wake: Option<Duration> = None;
    let mut statuses = Vec::new();
    let mut all_ready = true;
    let mut all_running = true;
    let mut any_started = false;
    let mut unready = Vec::new();
    for c in &run.containers {
        let (state, last, ready, started, restarts) = match &c.run {
            Run::Pending => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("ContainerCreating".into()),
                        message: None,
                    }),
                    ..Default::default()
                },
                None,
                false,
                false,
                0,
            ),
            Run::ConfigError { message } => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("CreateContainerConfigError".into()),
                        message: Some(message.clone()),
                    }),
                    ..Default::default()
                },
                None,
                false,
                false,
                0,
            ),
            Run::Running {
                since,
                since_wall,
                restarts,
                last_terminated,
                unready,
            } => {
                any_started = true;
                let delay = config.ready_delay_for(&c.image);
                let up = now.saturating_duration_since(*since);
                let timer_ready = up >= delay;
                if !timer_ready && unready.is_none() {
                    wake = earliest(wake, Some(delay - up));
                }
                let ready = match override_ready {
                    Some(v) => v,
                    None => timer_ready && unready.is_none(),
                };
                (
                    ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(since_wall.clone()),
                        }),
                        ..Default::default()
                    },
                    last_terminated.clone(),
                    ready,
                    true,
                    *restarts,
                )
            }
            Run::CrashLoop {
                since,
                since_wall,
                base_restarts,
                exit,
            } => {
                any_started = true;
                let elapsed = now.saturating_duration_since(*since);
                let (crashes, last_at, next) = crash_schedule(elapsed);
                wake = earliest(wake, Some(next));
                let at = add(since_wall, last_at);
                (
                    ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some("CrashLoopBackOff".into()),
                            message: Some(format!(
                                "back-off {}s restarting failed container={} pod={}_{}({})",
                                crash_backoff(crashes).as_secs().max(1),
                                c.name,
                                pod_name,
                                ns,
                                uid
                            )),
                        }),
                        ..Default::default()
                    },
                    Some(crashed(&at, &at, exit)),
                    false,
                    false,
                    base_restarts + crashes,
                )
            }
            Run::ImagePull { since } => {
                let (err, next) = pull_schedule(now.saturating_duration_since(*since));
                wake = earliest(wake, Some(next));
                let (reason, message) = if err {
                    (
                        "ErrImagePull",
                        format!("failed to pull and unpack image {:?}: not found", c.image),
                    )
                } else {
                    (
                        "ImagePullBackOff",
                        format!("Back-off pulling image {:?}", c.image),
                    )
                };
                (
                    ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: Some(message),
                        }),
                        ..Default::default()
                    },
                    None,
                    false,
                    false,
                    0,
                )
            }
            Run::InvalidImage => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some("InvalidImageName".into()),
                        message: Some(format!(
                            "Failed to apply default image tag {:?}: couldn't parse image name {:?}: invalid reference format",
                            c.image, c.image
                        )),
                    }),
                    ..Default::default()
                },
                None,
                false,
                false,
                0,
            ),
        };
        if !matches!(c.run, Run::Running { .. }) {
            all_running = false;
        }
        if !ready {
            all_ready = false;
            unready.push(c.name.clone());
        }
        statuses.push(ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: if started
                || any_started
                    && !matches!(
                        c.run,
                        Run::ImagePull { .. }
                            | Run::InvalidImage
                            | Run::ConfigError { .. }
                            | Run::Pending
                    ) {
                format!("sandbox://{}", c.image)
            } else {
                String::new()
            },
            container_id: started.then(|| format!("sandbox://{uid}/{}", c.name)),
            ready,
            started: Some(started),
            restart_count: restarts,
            state: Some(state),
            last_state: last.map(|mut t| {
                t.container_id
                    .get_or_insert_with(|| format!("sandbox://{uid}/{}", c.name));
                ContainerState {
                    terminated: Some(t),
                    ..Default::default()
                }
            }),
            ..Default::default()
        });
    }
    let init_statuses: Option<Vec<ContainerStatus>> = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .filter(|i| !i.is_empty())
        .map(|inits| {
            inits
                .iter()
                .map(|c| {
                    let image = c.image.clone().unwrap_or_default();
                    let at = run.start_time.clone().unwrap_or_else(|| wall.clone());
                    ContainerStatus {
                        name: c.name.clone(),
                        image: image.clone(),
                        image_id: format!("sandbox://{image}"),
                        container_id: Some(format!("sandbox://{uid}/{}", c.name)),
                        ready: true,
                        started: Some(false),
                        restart_count: 0,
                        state: Some(ContainerState {
                            terminated: Some(ContainerStateTerminated {
                                exit_code: 0,
                                reason: Some("Completed".into()),
                                started_at: Some(at.clone()),
                                finished_at: Some(at),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }
                })
                .collect()
        });
    let containers_ready = all_ready && all_running;
    let not_ready_msg = (!unready.is_empty())
        .then(|| format!("containers with unready status: [{}]", unready.join(" ")));
    let containers_reason = (!containers_ready).then_some("ContainersNotReady");
    let pod_ready = containers_ready;
    let phase = if any_started { "Running" } else { "Pending" };
    let ip = run.pod_ip.clone();
    let conditions = vec![
        pod_condition("PodReadyToStartContainers", true, None, None, prev, wall),
        pod_condition("Initialized", true, None, None, prev, wall),
        pod_condition(
            "Ready",
            pod_ready,
            containers_reason,
            not_ready_msg.clone(),
            prev,
            wall,
        ),
        pod_condition(
            "ContainersReady",
            containers_ready,
            containers_reason,
            not_ready_msg,
            prev,
            wall,
        ),
        pod_condition("PodScheduled", true, None, None, prev, wall),
    ];
    let status = PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(host_ip(node)),
        host_ips: Some(vec![HostIP { ip: host_ip(node) }]),
        pod_ip: ip.clone(),
        pod_ips: ip.map(|ip| vec![PodIP { ip }]),
        start_time: run.start_time.clone(),
        container_statuses: Some(statuses),
        init_container_statuses: init_statuses,
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    };
    (serde_json::to_value(status).unwrap_or(Value::Null), wake)
}

pub(crate) async fn reconcile(pod: Arc<Pod>, ctx: Arc<Kubelet>) -> Result<Action, SimError> {
    ctx.sync(&pod).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_backoff_is_accelerated_and_bounded() {
        assert_eq!(crash_backoff(1), Duration::from_millis(1000));
        assert_eq!(crash_backoff(2), Duration::from_millis(1500));
        assert_eq!(crash_backoff(50), Duration::from_millis(2000));
        let (n, at, next) = crash_schedule(Duration::ZERO);
        assert_eq!(
            (n, at, next),
            (1, Duration::ZERO, Duration::from_millis(1000))
        );
        let (n, at, next) = crash_schedule(Duration::from_millis(1200));
        assert_eq!(
            (n, at, next),
            (2, Duration::from_millis(1000), Duration::from_millis(1300))
        );
        let (n, _, _) = crash_schedule(Duration::from_millis(2500));
        assert_eq!(n, 3);
        // Restarts only ever grow with time.
        let mut last = 0;
        for ms in (0..20_000).step_by(250) {
            let (n, at, next) = crash_schedule(Duration::from_millis(ms));
            assert!(n >= last);
            assert!(at <= Duration::from_millis(ms));
            assert!(next > Duration::ZERO && next <= Duration::from_millis(2000));
            last = n;
        }
        assert!(last >= 10);
    }

    proptest::proptest! {
        /// Restarts never go down as time passes, the last crash is in the
        /// past and the next one comes within the back-off cap.
        #[test]
        fn crash_schedule_is_monotonic_and_bounded(a in 0u64..120_000, b in 0u64..120_000) {
            let (early, late) = (a.min(b), a.max(b));
            let (n1, at1, next1) = crash_schedule(Duration::from_millis(early));
            let (n2, _, _) = crash_schedule(Duration::from_millis(late));
            proptest::prop_assert!(n1 >= 1 && n1 <= n2);
            proptest::prop_assert!(at1 <= Duration::from_millis(early));
            proptest::prop_assert!(next1 > Duration::ZERO && next1 <= Duration::from_millis(2000));
        }
    }

    #[test]
    fn pull_errors_alternate() {
        assert_eq!(pull_schedule(Duration::ZERO), (true, PULL_ERROR_FOR));
        assert!(!pull_schedule(Duration::from_millis(1200)).0);
        assert!(pull_schedule(Duration::from_millis(2600)).0);
    }

    fn config(failures: Vec<(Regex, FailureMode)>) -> KubeletConfig {
        KubeletConfig {
            ready_delay: Duration::from_millis(300),
            image_ready_delays: vec![(Regex::new("^slow").unwrap(), Duration::from_secs(5))],
            failures: RwLock::new(failures),
            termination_grace: Some(Duration::from_millis(200)),
            nodes: 3,
        }
    }

    fn pod(image: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        }
    }

    fn run_of(image: &str, run: Run) -> PodRun {
        PodRun {
            node: Some(1),
            pod_ip: Some("10.244.1.2".into()),
            start_time: Some(now_time()),
            containers: vec![ContainerRun::new("main".into(), image.into(), run, false)],
            ..Default::default()
        }
    }

    fn condition(status: &Value, type_: &str) -> String {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .map(|c| c["status"].as_str().unwrap().to_string())
            .unwrap()
    }

    #[test]
    fn pods_become_ready_after_the_ready_delay_unless_overridden() {
        let cfg = config(vec![]);
        let wall = now_time();
        let start = Instant::now();
        let running = Run::Running {
            since: start,
            since_wall: wall.clone(),
            restarts: 0,
            last_terminated: None,
            unready: None,
        };
        let run = run_of("nginx:1", running);
        let p = pod("nginx:1");
        let at = |ms| start + Duration::from_millis(ms);

        let (st, wake) = running_status(&p, &run, &cfg, 1, None, at(100), &wall, None);
        assert_eq!(st["phase"], "Running");
        assert_eq!(condition(&st, "Ready"), "False");
        assert_eq!(condition(&st, "PodScheduled"), "True");
        assert_eq!(st["containerStatuses"][0]["started"], true);
        assert_eq!(st["containerStatuses"][0]["ready"], false);
        assert!(st["containerStatuses"][0]["state"]["running"].is_object());
        assert_eq!(
            (st["hostIP"].as_str(), st["podIP"].as_str()),
            (Some("172.18.0.3"), Some("10.244.1.2"))
        );
        assert_eq!(wake, Some(Duration::from_millis(200)));

        let (st, wake) = running_status(&p, &run, &cfg, 1, None, at(300), &wall, None);
        assert_eq!(condition(&st, "Ready"), "True");
        assert_eq!(condition(&st, "ContainersReady"), "True");
        assert_eq!(wake, None);

        let (st, _) = running_status(&p, &run, &cfg, 1, Some(false), at(400), &wall, None);
        assert_eq!(condition(&st, "Ready"), "False");
        let (st, _) = running_status(&p, &run, &cfg, 1, Some(true), at(10), &wall, None);
        assert_eq!(condition(&st, "Ready"), "True");

        // Per-image delays.
        assert_eq!(cfg.ready_delay_for("slow/app:1"), Duration::from_secs(5));
        assert_eq!(cfg.ready_delay_for("nginx:1"), Duration::from_millis(300));
    }

    #[test]
    fn crash_loops_report_back_off_and_growing_restarts() {
        let cfg = config(vec![]);
        let wall = now_time();
        let start = Instant::now();
        let run = run_of(
            "app:bad",
            Run::CrashLoop {
                since: start,
                since_wall: wall.clone(),
                base_restarts: 0,
                exit: Exit::injected(),
            },
        );
        let p = pod("app:bad");
        let (st, wake) = running_status(&p, &run, &cfg, 0, None, start, &wall, None);
        let cs = &st["containerStatuses"][0];
        assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(cs["restartCount"], 1);
        assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(cs["ready"], false);
        assert_eq!(condition(&st, "Ready"), "False");
        assert_eq!(wake, Some(Duration::from_millis(1000)));
        let (st, _) = running_status(
            &p,
            &run,
            &cfg,
            0,
            None,
            start + Duration::from_secs(5),
            &wall,
            None,
        );
        assert_eq!(st["containerStatuses"][0]["restartCount"], 4);
    }

    #[test]
    fn failure_rules_match_in_order_and_transitions_follow_them() {
        let cfg = config(vec![
            (Regex::new(":1$").unwrap(), FailureMode::ImagePull),
            (Regex::new("^app").unwrap(), FailureMode::CrashLoop),
        ]);
        assert_eq!(cfg.failure_for("app:1"), Some(FailureMode::ImagePull));
        assert_eq!(cfg.failure_for("app:2"), Some(FailureMode::CrashLoop));
        assert_eq!(cfg.failure_for("web:2"), None);

        let k = cfg;
        let wall = now_time();
        let now = Instant::now();
        let mut c = ContainerRun::new(
            "main".into(),
            "app:2".into(),
            Run::Running {
                since: now,
                since_wall: wall.clone(),
                restarts: 2,
                last_terminated: None,
                unready: None,
            },
            true,
        );
        let apply = |c: &mut ContainerRun, at: Instant| {
            let want = k.want(&c.image, None, Outcome::Run);
            transition(&mut c.run, want, at, &wall);
        };
        apply(&mut c, now);
        assert!(matches!(
            c.run,
            Run::CrashLoop {
                base_restarts: 2,
                ..
            }
        ));
        k.failures.write().unwrap().clear();
        apply(&mut c, now + Duration::from_millis(1500));
        match &c.run {
            Run::Running {
                restarts,
                last_terminated,
                ..
            } => {
                assert_eq!(*restarts, 4);
                assert!(last_terminated.is_some());
            }
            other => panic!("expected running, got {other:?}"),
        }
    }

    #[test]
    fn injected_failures_come_before_the_environment_and_the_image_contract() {
        let k = config(vec![
            (Regex::new(":pull$").unwrap(), FailureMode::ImagePull),
            (Regex::new(":crash$").unwrap(), FailureMode::CrashLoop),
        ]);
        let crash = Outcome::Crash {
            exit_code: 127,
            message: "m".into(),
        };
        let missing: Result<Env, String> = Err("configmap \"c\" not found".into());
        let ok: Result<Env, String> = Ok(Env::new());
        assert_eq!(k.want("a:pull", Some(&missing), crash.clone()), Want::Pull);
        assert_eq!(
            k.want("a:crash", Some(&missing), crash.clone()),
            Want::ConfigError("configmap \"c\" not found".into())
        );
        assert_eq!(
            k.want("a:crash", Some(&ok), crash.clone()),
            Want::Crash(Exit::injected())
        );
        assert_eq!(
            k.want("a:1", Some(&ok), crash),
            Want::Crash(Exit {
                code: 127,
                message: Some("m".into())
            })
        );
        assert_eq!(
            k.want(
                "a:1",
                Some(&ok),
                Outcome::NeverReady {
                    message: "why".into()
                }
            ),
            Want::Run(Some("why".into()))
        );
        assert_eq!(k.want("a:1", Some(&ok), Outcome::Run), Want::Run(None));
    }

    #[test]
    fn contract_outcomes_show_in_the_status() {
        let cfg = config(vec![]);
        let wall = now_time();
        let start = Instant::now();
        let later = start + Duration::from_secs(2);
        let p = pod("pravega/bookkeeper:0.7.0");

        // A crash: the image's exit code and message in lastState.
        let exit = Exit {
            code: 127,
            message: Some("bkenv.sh: line 35: -Xmx1g: command not found".into()),
        };
        let run = run_of(
            "pravega/bookkeeper:0.7.0",
            Run::CrashLoop {
                since: start,
                since_wall: wall.clone(),
                base_restarts: 0,
                exit: exit.clone(),
            },
        );
        let (st, _) = running_status(&p, &run, &cfg, 1, None, later, &wall, None);
        let cs = &st["containerStatuses"][0];
        assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(cs["lastState"]["terminated"]["exitCode"], 127);
        assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(
            cs["lastState"]["terminated"]["message"],
            "bkenv.sh: line 35: -Xmx1g: command not found"
        );

        // Running, never ready.
        let run = run_of(
            "pravega/pravega:0.5.0",
            Run::Running {
                since: start,
                since_wall: wall.clone(),
                restarts: 0,
                last_terminated: None,
                unready: Some("no bookies".into()),
            },
        );
        let (st, _) = running_status(&p, &run, &cfg, 1, None, later, &wall, None);
        let cs = &st["containerStatuses"][0];
        assert!(cs["state"]["running"].is_object());
        assert_eq!(cs["ready"], false);
        assert_eq!(st["phase"], "Running");
        assert_eq!(condition(&st, "Ready"), "False");

        // Not created: CreateContainerConfigError, Pending.
        let run = run_of(
            "app:1",
            Run::ConfigError {
                message: "configmap \"cfg\" not found".into(),
            },
        );
        let (st, _) = running_status(&p, &run, &cfg, 1, None, later, &wall, None);
        let cs = &st["containerStatuses"][0];
        assert_eq!(
            cs["state"]["waiting"]["reason"],
            "CreateContainerConfigError"
        );
        assert_eq!(
            cs["state"]["waiting"]["message"],
            "configmap \"cfg\" not found"
        );
        assert_eq!(cs["started"], false);
        assert_eq!(cs["imageID"], "");
        assert_eq!(st["phase"], "Pending");

        // A model crash that goes away (e.g. an injected crash cleared, the
        // image being fine) restarts the container, keeping the last exit.
        let mut r = Run::CrashLoop {
            since: start,
            since_wall: wall.clone(),
            base_restarts: 0,
            exit: exit.clone(),
        };
        transition(&mut r, Want::Run(None), later, &wall);
        match &r {
            Run::Running {
                restarts,
                last_terminated: Some(t),
                ..
            } => {
                assert_eq!(*restarts, 2);
                assert_eq!(t.exit_code, 127);
            }
            other => panic!("expected running, got {other:?}"),
        }
        // A running container becomes unready and ready again in place.
        transition(&mut r, Want::Run(Some("x".into())), later, &wall);
        assert!(matches!(
            &r,
            Run::Running {
                unready: Some(_),
                restarts: 2,
                ..
            }
        ));
        // A running container does not go back to resolving its environment.
        transition(&mut r, Want::ConfigError("gone".into()), later, &wall);
        assert!(matches!(&r, Run::Running { .. }));
        let mut pending = Run::ConfigError {
            message: "a".into(),
        };
        transition(&mut pending, Want::Run(None), later, &wall);
        assert!(matches!(&pending, Run::Running { restarts: 0, .. }));
    }

    #[test]
    fn adopted_containers_keep_their_reported_state() {
        let cfg = config(vec![]);
        let wall = now_time();
        let now = Instant::now();
        let c = Container {
            name: "main".into(),
            image: Some("pravega/bookkeeper:0.7.0".into()),
            ..Default::default()
        };
        let status = |v: Value| -> ContainerStatus { serde_json::from_value(v).unwrap() };
        let crashing = status(json!({
            "name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 127, "reason": "Error", "message": "m"}}
        }));
        match cfg.adopt_run(&c, Some(&crashing), now, &wall) {
            (
                Run::CrashLoop {
                    base_restarts: 2,
                    exit,
                    ..
                },
                false,
            ) => assert_eq!(
                exit,
                Exit {
                    code: 127,
                    message: Some("m".into())
                }
            ),
            other => panic!("{other:?}"),
        }
        let config_error = status(json!({
            "name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "configmap \"a\" not found"}}
        }));
        assert!(matches!(
            cfg.adopt_run(&c, Some(&config_error), now, &wall),
            (Run::ConfigError { message }, false) if message == "configmap \"a\" not found"
        ));
        let ready = status(json!({
            "name": "main", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
        }));
        assert!(matches!(
            cfg.adopt_run(&c, Some(&ready), now, &wall),
            (Run::Running { .. }, true)
        ));
        assert!(matches!(
            cfg.adopt_run(&c, None, now, &wall),
            (Run::Pending, false)
        ));
    }

    #[test]
    fn image_references_are_validated() {
        for ok in [
            "nginx",
            "nginx:1.0",
            "pravega/pravega:0.5.0-1",
            "docker.io/library/nginx:latest",
            "localhost:5000/a/b_c:v1",
            "ghcr.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_valid_image(ok), "{ok}");
        }
        for bad in [
            "",
            "Nginx:1.0",
            "nginx:",
            "nginx::1",
            "bad image",
            "nginx:-x",
            "-nginx",
            "a//b",
        ] {
            assert!(!is_valid_image(bad), "{bad}");
        }
    }
}
