//! Helpers of the upgrade acceptance tests and of the upgrade benchmark: a pod-watch monitor that
//! records every change of the cluster's pods (when an old pod starts terminating, when a new pod
//! appears and becomes Ready, how many members of a component are down), a PravegaCluster watch
//! that records condition transitions. Self-contained, so the benchmark examples can use it too.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use pravega_crds::names::{Component, VERSION_KEY, cluster_selector, component_of};
use pravega_crds::{ConditionType, PravegaCluster};
use pravega_sandbox::sim::SimOptions;
use pravega_sandbox::testing::{Env, EnvOptions};
use tokio::task::JoinHandle;

/// The name the webhook is registered under (as in `deploy/`).
pub const WEBHOOK_NAME: &str = "pravegacluster.pravega.pravega.io";

/// One observed state of one pod.
#[derive(Debug, Clone)]
pub struct PodObs {
    /// When the watch delivered it.
    pub at: Instant,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub component: Option<Component>,
    /// The `pravega.pravega.io/version` label.
    pub version: String,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// The `Ready` condition is True.
    pub ready: bool,
    /// The pod is gone (a watch `DELETED`).
    pub gone: bool,
}

impl PodObs {
    fn of(pod: &Pod, gone: bool) -> PodObs {
        let labels = pod.labels();
        PodObs {
            at: Instant::now(),
            name: pod.name_any(),
            uid: pod.uid().unwrap_or_default(),
            resource_version: pod.resource_version().unwrap_or_default(),
            component: component_of(labels),
            version: labels.get(VERSION_KEY).cloned().unwrap_or_default(),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            ready: pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
            gone,
        }
    }

    /// Up: Ready and not terminating.
    fn up(&self) -> bool {
        self.ready && !self.terminating && !self.gone
    }
}

/// A member down at once beyond what the monitor allows, with what it saw then.
#[derive(Debug, Clone)]
pub struct Violation {
    pub component: Component,
    pub down: usize,
    pub pods: Vec<String>,
}

#[derive(Default)]
struct MonitorState {
    log: Vec<PodObs>,
    live: HashMap<String, PodObs>,
    /// Desired members per component; the check runs only while set.
    armed: Option<BTreeMap<&'static str, usize>>,
    max_down: BTreeMap<&'static str, usize>,
    violations: Vec<Violation>,
}

/// Watches the pods of one cluster and records every state it sees.
pub struct PodMonitor {
    state: Arc<Mutex<MonitorState>>,
    task: JoinHandle<()>,
}

impl PodMonitor {
    /// Starts watching the pods of `cluster` in `namespace`.
    pub fn start(client: kube::Client, namespace: &str, cluster: &str) -> PodMonitor {
        let state = Arc::new(Mutex::new(MonitorState::default()));
        let api: Api<Pod> = Api::namespaced(client, namespace);
        let config = watcher::Config::default().labels(&cluster_selector(cluster));
        let sink = state.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, config).boxed();
            while let Some(event) = events.next().await {
                let obs = match event {
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                        PodObs::of(&p, false)
                    }
                    Ok(watcher::Event::Delete(p)) => PodObs::of(&p, true),
                    Ok(_) => continue,
                    // The watcher retries at once: back off, and yield so the task can be
                    // aborted (e.g. once the API server is gone).
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                sink.lock().expect("monitor lock").observe(obs);
            }
        });
        PodMonitor { state, task }
    }

    /// From now on, checks after every change that no component has more than one member down
    /// (`desired` minus the members that are Ready and not terminating).
    pub fn arm(&self, bookies: usize, controllers: usize, segment_stores: usize) {
        let mut st = self.state.lock().expect("monitor lock");
        st.armed = Some(BTreeMap::from([
            (Component::Bookkeeper.as_str(), bookies),
            (Component::Controller.as_str(), controllers),
            (Component::SegmentStore.as_str(), segment_stores),
        ]));
        st.max_down.clear();
        st.check();
    }

    /// Stops the down-members check.
    pub fn disarm(&self) {
        self.state.lock().expect("monitor lock").armed = None;
    }

    /// The highest number of members down at once per component while armed.
    pub fn max_down(&self) -> BTreeMap<&'static str, usize> {
        self.state.lock().expect("monitor lock").max_down.clone()
    }

    /// Moments when more than one member of a component was down while armed.
    pub fn violations(&self) -> Vec<Violation> {
        self.state.lock().expect("monitor lock").violations.clone()
    }

    /// Every observed state, in the order the watch delivered them.
    pub fn log(&self) -> Vec<PodObs> {
        self.state.lock().expect("monitor lock").log.clone()
    }

    /// The state of pod `uid` at `resource_version`, if the watch delivered it.
    pub fn state_at(&self, uid: &str, resource_version: &str) -> Option<PodObs> {
        self.state
            .lock()
            .expect("monitor lock")
            .log
            .iter()
            .find(|o| o.uid == uid && o.resource_version == resource_version)
            .cloned()
    }
}

impl Drop for PodMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MonitorState {
    fn observe(&mut self, obs: PodObs) {
        if obs.gone {
            self.live.remove(&obs.uid);
        } else {
            self.live.insert(obs.uid.clone(), obs.clone());
        }
        self.log.push(obs);
        self.check();
    }

    fn check(&mut self) {
        let Some(desired) = &self.armed else {
            return;
        };
        for (component, want) in desired {
            let pods: Vec<&PodObs> = self
                .live
                .values()
                .filter(|p| p.component.map(Component::as_str) == Some(*component))
                .collect();
            let up = pods.iter().filter(|p| p.up()).count();
            let down = want.saturating_sub(up);
            let max = self.max_down.entry(component).or_default();
            *max = (*max).max(down);
            if down > 1 {
                let component = Component::UPGRADE_ORDER
                    .into_iter()
                    .find(|c| c.as_str() == *component)
                    .expect("known component");
                let mut names: Vec<String> = pods
                    .iter()
                    .map(|p| {
                        format!(
                            "{} ({}{}{})",
                            p.name,
                            p.version,
                            if p.ready { ", ready" } else { "" },
                            if p.terminating { ", terminating" } else { "" }
                        )
                    })
                    .collect();
                names.sort();
                self.violations.push(Violation {
                    component,
                    down,
                    pods: names,
                });
            }
        }
    }
}

/// What happened to each pod over an observed stretch of time.
#[derive(Debug, Clone)]
pub struct PodHistory {
    pub name: String,
    pub uid: String,
    pub component: Option<Component>,
    pub version: String,
    /// First seen by the watch.
    pub appeared: Instant,
    /// First seen Ready (and not terminating).
    pub ready: Option<Instant>,
    /// First seen with a deletionTimestamp.
    pub terminating: Option<Instant>,
    /// Seen deleted.
    pub gone: Option<Instant>,
    /// Already present in the initial listing of the watch.
    pub initial: bool,
}

/// Folds the monitor's log into one history per pod (by uid), in order of first appearance.
pub fn histories(log: &[PodObs]) -> Vec<PodHistory> {
    let mut order: Vec<String> = Vec::new();
    let mut by_uid: HashMap<String, PodHistory> = HashMap::new();
    let start = log.first().map(|o| o.at);
    for o in log {
        let h = by_uid.entry(o.uid.clone()).or_insert_with(|| {
            order.push(o.uid.clone());
            PodHistory {
                name: o.name.clone(),
                uid: o.uid.clone(),
                component: o.component,
                version: o.version.clone(),
                appeared: o.at,
                ready: None,
                terminating: None,
                gone: None,
                initial: Some(o.at) == start,
            }
        });
        if o.ready && !o.terminating && !o.gone && h.ready.is_none() {
            h.ready = Some(o.at);
        }
        if (o.terminating || o.gone) && h.terminating.is_none() {
            h.terminating = Some(o.at);
        }
        if o.gone && h.gone.is_none() {
            h.gone = Some(o.at);
        }
    }
    order
        .into_iter()
        .filter_map(|uid| by_uid.remove(&uid))
        .collect()
}

/// Condition type → `<status> <reason>`, as of one watch event.
type Conditions = BTreeMap<String, String>;

/// Records the transitions of the conditions of one PravegaCluster, as a watch sees them.
pub struct ClusterMonitor {
    seen: Arc<Mutex<Vec<(Instant, Conditions)>>>,
    task: JoinHandle<()>,
}

impl ClusterMonitor {
    pub fn start(client: kube::Client, namespace: &str, name: &str) -> ClusterMonitor {
        let api: Api<PravegaCluster> = Api::namespaced(client, namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, config).boxed();
            while let Some(event) = events.next().await {
                let pk = match event {
                    Ok(watcher::Event::Apply(pk)) | Ok(watcher::Event::InitApply(pk)) => pk,
                    Ok(_) => continue,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let conditions: Conditions = pk
                    .status
                    .iter()
                    .flat_map(|s| s.conditions.iter())
                    .map(|c| {
                        (
                            c.type_.as_str().to_owned(),
                            format!("{:?} {}", c.status, c.reason()),
                        )
                    })
                    .collect();
                sink.lock()
                    .expect("monitor lock")
                    .push((Instant::now(), conditions));
            }
        });
        ClusterMonitor { seen, task }
    }

    /// The successive distinct statuses (`True <reason>` / `False <reason>`) of condition `type_`.
    pub fn transitions(&self, type_: ConditionType) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, conditions) in self.seen.lock().expect("monitor lock").iter() {
            if let Some(v) = conditions.get(type_.as_str())
                && out.last() != Some(v)
            {
                out.push(v.clone());
            }
        }
        out
    }
}

impl Drop for ClusterMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The benchmarks' sandbox, with the PravegaCluster CRD: simulated pods Ready `ready_delay` after
/// they start, and terminating in `termination_grace`.
pub async fn bench_env(ready_delay: Duration, termination_grace: Duration) -> Env {
    Env::launch(EnvOptions {
        sim: Some(SimOptions {
            ready_delay,
            termination_grace: Some(termination_grace),
            ..SimOptions::default()
        }),
        crd: true,
        ..EnvOptions::default()
    })
    .await
}

/// The `p`-th percentile (0..=100, nearest rank) of `samples`.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut s = samples.to_vec();
    s.sort();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}
