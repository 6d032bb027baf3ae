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
//!
//! `run_state` models what one container is doing, `sync` brings a pod
//! forward, `status` writes what a kubelet reports, `nodes` registers the
//! nodes and schedules pods.

mod nodes;
mod run_state;
mod status;
mod sync;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::runtime::controller::Action;
use serde_json::Value;

use super::SimError;
use super::logs::ContainerLogs;
use super::pod_http::PodNet;

use run_state::ContainerRun;
pub(crate) use run_state::KubeletConfig;

/// How long a failed pull shows `ErrImagePull` before `ImagePullBackOff`, and
/// how long the back-off lasts before the next attempt.
const PULL_ERROR_FOR: Duration = Duration::from_millis(1000);
const PULL_BACKOFF_FOR: Duration = Duration::from_millis(1500);
/// How often a kubelet retries a container it could not create
/// (`CreateContainerConfigError`), and re-checks a running container whose
/// image's contract keeps it unready (e.g. waiting for bookies).
const RECHECK_EVERY: Duration = Duration::from_millis(1000);

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
}

pub(crate) async fn reconcile(pod: Arc<Pod>, ctx: Arc<Kubelet>) -> Result<Action, SimError> {
    ctx.sync(&pod).await
}
