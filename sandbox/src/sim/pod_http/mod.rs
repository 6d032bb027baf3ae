//! Simulated pods answer HTTP on their own IP: the BookKeeper admin API of bookies and the
//! Pravega health API of Controllers and Segment Stores, where the real image would serve it
//! ([`super::images::http_server`]), while the container runs.
//!
//! Each pod has a loopback address ([`super::pod_ips`]); each serving port is one small tokio
//! task with its listener, started when the container starts and stopped when it stops, when
//! the pod is deleted or made unreachable, and when the simulation shuts down. Requests are
//! answered from what the kubelet last reported (readiness) and from the pod's annotations,
//! read again on every update of the pod:
//!
//! - [`UNDER_REPLICATED_LEDGERS`] `=N`: the cluster has `N` more under-replicated ledgers
//!   (summed over the bookie pods of one cluster);
//! - [`HEALTH`] `=unhealthy`: health checks fail (`false`, `DOWN`, bookie `is_ready` 503, not
//!   listed as a writable bookie);
//! - [`UNREACHABLE`] `=true`: the pod's servers stop accepting (connection refused);
//! - [`BOOKIE_READ_ONLY`] `=true`: the bookie is read-only.
//!
//! A value that cannot be read is ignored with a warning log and a `Warning` event on the pod.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use pravega_crds::names::{LABEL_INSTANCE, LABEL_NAME};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events;
use super::images::{HttpApi, HttpServer};
use super::pod_ips::PodIps;

mod answer;
mod faults;

pub(crate) use answer::Answer;
use answer::answer;
pub use faults::{
    BOOKIE_READ_ONLY, HEALTH, MAX_UNDER_REPLICATED_LEDGERS, UNDER_REPLICATED_LEDGERS, UNREACHABLE,
};
pub(crate) use faults::{Faults, faults};

/// What the kubelet reports about one container of a pod.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerNet {
    pub name: String,
    /// Running (not waiting, crashing or stopped).
    pub running: bool,
    /// Reported ready.
    pub ready: bool,
    /// What it serves on the pod's IP while running, or why its settings keep it from serving.
    pub server: Option<Result<HttpServer, String>>,
    /// A modelled bookie image.
    pub bookie: bool,
    /// The id it registers under (bookies whose environment is resolved).
    pub bookie_id: Option<String>,
}

/// Pods of one Pravega cluster: namespace, `app.kubernetes.io/name`,
/// `app.kubernetes.io/instance` (missing labels read as empty).
type ClusterKey = (String, String, String);

struct Server {
    api: HttpApi,
    container: usize,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct NetPod {
    ip: Option<Ipv4Addr>,
    /// Its address is in a block of this simulation: it may serve.
    owned: bool,
    namespace: String,
    name: String,
    cluster: ClusterKey,
    faults: Faults,
    containers: Vec<ContainerNet>,
    /// Problems already reported (annotation values, server settings).
    reported: BTreeSet<String>,
    servers: HashMap<u16, Server>,
}

impl NetPod {
    fn stop_servers(&mut self) -> Vec<JoinHandle<()>> {
        self.servers
            .drain()
            .map(|(_, s)| {
                s.cancel.cancel();
                s.task
            })
            .collect()
    }
}

#[derive(Default)]
struct NetState {
    pods: HashMap<String, NetPod>,
}

/// The pods' network: their IPs and the HTTP servers on them.
pub(crate) struct PodNet {
    client: Client,
    ips: Mutex<PodIps>,
    state: Mutex<NetState>,
    cancel: CancellationToken,
    me: Weak<PodNet>,
}

impl PodNet {
    pub(crate) fn new(client: Client, cancel: CancellationToken) -> Arc<Self> {
        Arc::new_cyclic(|me| PodNet {
            client,
            ips: Mutex::new(PodIps::new()),
            state: Mutex::new(NetState::default()),
            cancel,
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ips(&self) -> MutexGuard<'_, PodIps> {
        self.ips.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The IP of pod `uid`: the one it has (`existing`, from its status), else a new one.
    pub(crate) fn assign_ip(
        &self,
        uid: &str,
        existing: Option<&str>,
        node: usize,
    ) -> Option<String> {
        let mut st = self.lock();
        let pod = st.pods.entry(uid.to_owned()).or_default();
        if let Some(ip) = pod.ip {
            return Some(ip.to_string());
        }
        match existing {
            Some(text) => {
                if let Ok(ip) = text.parse::<Ipv4Addr>() {
                    pod.owned = self.ips().adopt(uid, ip);
                    pod.ip = Some(ip);
                }
                Some(text.to_owned())
            }
            None => {
                let mut ips = self.ips();
                let ip = ips.allocate(uid, node)?;
                pod.owned = ips.owns(ip);
                pod.ip = Some(ip);
                Some(ip.to_string())
            }
        }
    }

    /// Takes in what the kubelet reports about pod `uid`, and starts or stops its servers.
    pub(crate) fn update(&self, pod: &Pod, uid: &str, containers: Vec<ContainerNet>) {
        let (faults, bad) = faults(pod.annotations());
        let labels = pod.labels();
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let namespace = pod.namespace().unwrap_or_default();
        let mut problems: Vec<String> = bad
            .into_iter()
            .map(|(key, value, why)| format!("annotation {key}={value:?} ignored: {why}"))
            .collect();
        problems.extend(containers.iter().filter_map(|c| match &c.server {
            Some(Err(why)) => Some(format!(
                "container {}: no HTTP server on the pod's IP: {why}",
                c.name
            )),
            _ => None,
        }));
        let mut st = self.lock();
        let p = st.pods.entry(uid.to_owned()).or_default();
        p.cluster = (namespace.clone(), label(LABEL_NAME), label(LABEL_INSTANCE));
        p.namespace = namespace;
        p.name = pod.name_any();
        p.faults = faults;
        p.containers = containers;
        for problem in problems {
            if p.reported.insert(problem.clone()) {
                tracing::warn!(pod = %p.name, namespace = %p.namespace, "{problem}");
                events::emit(
                    &self.client,
                    events::reference(pod),
                    true,
                    "InvalidSandboxSetting",
                    problem,
                    "kubelet",
                );
            }
        }
        self.reconcile_servers(uid, p);
    }

    /// Starts the servers pod `p` should run and stops the others.
    fn reconcile_servers(&self, uid: &str, p: &mut NetPod) {
        let mut want: BTreeMap<u16, (HttpApi, usize)> = BTreeMap::new();
        if p.owned && !p.faults.unreachable {
            for (i, c) in p.containers.iter().enumerate() {
                if let (true, Some(Ok(server))) = (c.running, &c.server) {
                    want.entry(server.port).or_insert((server.api, i));
                }
            }
        }
        p.servers.retain(|port, s| {
            let keep = want.get(port) == Some(&(s.api, s.container));
            if !keep {
                s.cancel.cancel();
            }
            keep
        });
        let Some(ip) = p.ip else {
            return;
        };
        for (port, (api, container)) in want {
            if p.servers.contains_key(&port) {
                continue;
            }
            match self.start_server(uid, SocketAddr::from((ip, port)), api, container) {
                Ok(server) => {
                    tracing::debug!(pod = %p.name, namespace = %p.namespace, %ip, port, "serving HTTP");
                    p.servers.insert(port, server);
                }
                Err(e) => {
                    tracing::warn!(pod = %p.name, namespace = %p.namespace, %ip, port, error = %e, "cannot serve HTTP on the pod's IP");
                }
            }
        }
    }

    fn start_server(
        &self,
        uid: &str,
        addr: SocketAddr,
        api: HttpApi,
        container: usize,
    ) -> std::io::Result<Server> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        // A port closed a moment ago (connections in TIME_WAIT) can be listened on again; a port
        // another listener holds still cannot.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(128)?;
        let cancel = self.cancel.child_token();
        let net = self.me.clone();
        let uid = uid.to_owned();
        let port = addr.port();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            tracing::debug!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let (net, uid, stop) = (net.clone(), uid.clone(), stop.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let (net, uid) = (net.clone(), uid.clone());
                            async move {
                                let answer = match net.upgrade() {
                                    Some(net) => {
                                        // Answer from the annotations as the API server has
                                        // them now, not as the kubelet last saw them: a client
                                        // woken by an annotation change sees that change.
                                        net.refresh_faults(&uid).await;
                                        let query = crate::server::parse_query(req.uri().query());
                                        net.answer(
                                            &uid,
                                            port,
                                            req.method(),
                                            req.uri().path(),
                                            &query,
                                        )
                                    }
                                    None => Answer::text(StatusCode::SERVICE_UNAVAILABLE, ""),
                                };
                                Ok::<_, Infallible>(answer.into_response())
                            }
                        },
                    );
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        Ok(Server {
            api,
            container,
            cancel,
            task,
        })
    }

    /// Stops the servers of pod `uid` (its containers stopped); it keeps its IP.
    pub(crate) fn stop(&self, uid: &str) {
        let mut st = self.lock();
        if let Some(p) = st.pods.get_mut(uid) {
            p.containers.clear();
            p.stop_servers();
        }
    }

    /// Forgets pod `uid`: its servers stop and its IP is released.
    pub(crate) fn forget(&self, uid: &str) {
        let removed = self.lock().pods.remove(uid);
        if let Some(mut p) = removed {
            p.stop_servers();
            if let Some(ip) = p.ip {
                self.ips().release(uid, ip);
            }
        }
    }

    /// Forgets every pod but those in `live`.
    pub(crate) fn retain(&self, live: &HashSet<String>) {
        let gone: Vec<String> = self
            .lock()
            .pods
            .keys()
            .filter(|u| !live.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            self.forget(&uid);
        }
    }

    /// Stops every server and waits for them.
    pub(crate) async fn shutdown(&self) {
        self.cancel.cancel();
        let tasks: Vec<JoinHandle<()>> = self
            .lock()
            .pods
            .values_mut()
            .flat_map(NetPod::stop_servers)
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Reads the fault annotations of pod `uid`'s cluster from the API server (one LIST of
    /// its pods), so that an answer reflects every change the API server has committed.
    async fn refresh_faults(&self, uid: &str) {
        let Some((namespace, name, instance)) =
            self.lock().pods.get(uid).map(|p| p.cluster.clone())
        else {
            return;
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let mut params = ListParams::default();
        if !name.is_empty() && !instance.is_empty() {
            params = params.labels(&format!("{LABEL_NAME}={name},{LABEL_INSTANCE}={instance}"));
        }
        let Ok(list) = api.list(&params).await else {
            return;
        };
        let mut st = self.lock();
        for pod in &list.items {
            let Some(p) = pod.uid().and_then(|u| st.pods.get_mut(&u)) else {
                continue;
            };
            p.faults = faults(pod.annotations()).0;
        }
    }

    /// The answer of pod `uid`'s server on `port`.
    fn answer(
        &self,
        uid: &str,
        port: u16,
        method: &Method,
        path: &str,
        query: &HashMap<String, String>,
    ) -> Answer {
        let st = self.lock();
        answer(&st, uid, port, method, path, query)
    }
}
