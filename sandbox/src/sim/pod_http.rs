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
use http_body_util::Full;
use hyper::body::Bytes;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use pravega_crds::names::{LABEL_INSTANCE, LABEL_NAME};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events;
use super::images::{HttpApi, HttpServer};
use super::pod_ips::PodIps;

/// Annotation: how many under-replicated ledgers this bookie pod adds to its cluster's count.
pub const UNDER_REPLICATED_LEDGERS: &str = "sandbox.pravega.io/under-replicated-ledgers";
/// Annotation: `unhealthy` makes the pod's health checks fail.
pub const HEALTH: &str = "sandbox.pravega.io/health";
/// Annotation: `true` makes the pod's servers refuse connections.
pub const UNREACHABLE: &str = "sandbox.pravega.io/unreachable";
/// Annotation: `true` makes a bookie read-only.
pub const BOOKIE_READ_ONLY: &str = "sandbox.pravega.io/bookie-read-only";

/// The most under-replicated ledgers one pod may claim (bounds the answer's size).
pub const MAX_UNDER_REPLICATED_LEDGERS: u64 = 100_000;

/// Ledger ids of a cluster's under-replicated ledgers start here (distinct, ascending).
const FIRST_LEDGER_ID: u64 = 1000;

/// The faults a pod's annotations inject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Faults {
    pub under_replicated: u64,
    pub unhealthy: bool,
    pub unreachable: bool,
    pub read_only: bool,
}

/// Reads the fault annotations; the second part lists `(annotation, value, why)` for the values
/// that cannot be read (they are ignored).
pub(crate) fn faults(
    annotations: &BTreeMap<String, String>,
) -> (Faults, Vec<(String, String, String)>) {
    let mut f = Faults::default();
    let mut bad = Vec::new();
    let flag = |key: &str, accepted: (&str, &str), bad: &mut Vec<_>| -> bool {
        match annotations.get(key).map(|v| v.trim()) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case(accepted.0) => true,
            Some(v) if v.is_empty() || v.eq_ignore_ascii_case(accepted.1) => false,
            Some(v) => {
                bad.push((
                    key.to_owned(),
                    v.to_owned(),
                    format!("expected {:?} or {:?}", accepted.0, accepted.1),
                ));
                false
            }
        }
    };
    f.unhealthy = flag(HEALTH, ("unhealthy", "healthy"), &mut bad);
    f.unreachable = flag(UNREACHABLE, ("true", "false"), &mut bad);
    f.read_only = flag(BOOKIE_READ_ONLY, ("true", "false"), &mut bad);
    if let Some(v) = annotations.get(UNDER_REPLICATED_LEDGERS) {
        match v.trim().parse::<u64>() {
            Ok(n) if n <= MAX_UNDER_REPLICATED_LEDGERS => f.under_replicated = n,
            _ => bad.push((
                UNDER_REPLICATED_LEDGERS.to_owned(),
                v.clone(),
                format!("expected a whole number from 0 to {MAX_UNDER_REPLICATED_LEDGERS}"),
            )),
        }
    }
    (f, bad)
}

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

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub json: bool,
    pub body: String,
}

impl Answer {
    fn text(status: StatusCode, body: &str) -> Self {
        Answer {
            status,
            json: false,
            body: body.to_owned(),
        }
    }

    fn json(status: StatusCode, body: &Value) -> Self {
        Answer {
            status,
            json: true,
            body: body.to_string(),
        }
    }

    fn into_response(self) -> http::Response<Full<Bytes>> {
        let mut r = http::Response::new(Full::new(Bytes::from(self.body)));
        *r.status_mut() = self.status;
        let content_type = if self.json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        r
    }
}

/// The bookie containers of the pods of one cluster: (pod, container).
fn cluster_bookies<'a>(
    st: &'a NetState,
    cluster: &'a ClusterKey,
) -> impl Iterator<Item = (&'a NetPod, &'a ContainerNet)> + 'a {
    st.pods
        .values()
        .filter(move |p| &p.cluster == cluster)
        .flat_map(|p| {
            p.containers
                .iter()
                .filter(|c| c.bookie)
                .map(move |c| (p, c))
        })
}

/// Whether a bookie is up: running, ready, and not made unhealthy.
fn bookie_up(p: &NetPod, c: &ContainerNet) -> bool {
    c.running && c.ready && !p.faults.unhealthy
}

fn answer(
    st: &NetState,
    uid: &str,
    port: u16,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
) -> Answer {
    let Some((p, server)) = st
        .pods
        .get(uid)
        .and_then(|p| p.servers.get(&port).map(|s| (p, s)))
    else {
        return Answer::text(StatusCode::SERVICE_UNAVAILABLE, "");
    };
    let Some(container) = p.containers.get(server.container) else {
        return Answer::text(StatusCode::SERVICE_UNAVAILABLE, "");
    };
    match server.api {
        HttpApi::BookieAdmin { state_api } => {
            bookie_admin(st, p, container, state_api, method, path, query)
        }
        HttpApi::PravegaHealth { component } => health(p, container, component, method, path),
    }
}

/// BookKeeper's admin API (apache/bookkeeper bookkeeper-http/http-server HttpRouter.java
/// @release-4.7.3..release-4.14.1 paths; the services cited below, in bookkeeper-server
/// server/http/service). Unknown paths are 404 with an empty body.
fn bookie_admin(
    st: &NetState,
    p: &NetPod,
    c: &ContainerNet,
    state_api: bool,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
) -> Answer {
    // Every service below answers 404 to other methods than GET, with its own message.
    let get_only = |message: &str| Answer::text(StatusCode::NOT_FOUND, message);
    match path {
        // HeartbeatService.java: "OK\n", whatever the method.
        "/heartbeat" => Answer::text(StatusCode::OK, "OK\n"),
        // ListUnderReplicatedLedgerService.java@release-4.14.1: 404 "No under replicated
        // ledgers found" when there are none, else 200 with the JSON list of ledger ids.
        "/api/v1/autorecovery/list_under_replicated_ledger" => {
            if method != Method::GET {
                return get_only("Not found method. Should be GET method");
            }
            let mut pods: Vec<&NetPod> = st
                .pods
                .values()
                .filter(|q| q.cluster == p.cluster && q.containers.iter().any(|c| c.bookie))
                .collect();
            pods.sort_by(|a, b| a.name.cmp(&b.name));
            let total: u64 = pods.iter().map(|q| q.faults.under_replicated).sum();
            if total == 0 {
                return Answer::text(StatusCode::NOT_FOUND, "No under replicated ledgers found");
            }
            let ids: Vec<u64> = (0..total).map(|i| FIRST_LEDGER_ID + i).collect();
            Answer::json(StatusCode::OK, &json!(ids))
        }
        // ListBookiesService.java@release-4.14.1: `type=ro` lists the read-only bookies, anything
        // else the writable ones, as {"<bookie id>": null} (hostnames only with
        // print_hostnames=true).
        "/api/v1/bookie/list_bookies" => {
            if method != Method::GET {
                return get_only("Not found method. Should be GET method");
            }
            let read_only = query.get("type").map(String::as_str) == Some("ro");
            let print_hostnames = query.get("print_hostnames").map(String::as_str) == Some("true");
            let mut out = serde_json::Map::new();
            for (q, b) in cluster_bookies(st, &p.cluster) {
                if bookie_up(q, b)
                    && q.faults.read_only == read_only
                    && let Some(id) = &b.bookie_id
                {
                    let host = match (print_hostnames, id.rsplit_once(':')) {
                        (true, Some((host, _))) => json!(host),
                        _ => Value::Null,
                    };
                    out.insert(id.clone(), host);
                }
            }
            Answer::json(StatusCode::OK, &Value::Object(out))
        }
        // BookieStateService.java@release-4.10.0..release-4.14.1.
        "/api/v1/bookie/state" if state_api => {
            if method != Method::GET {
                return get_only(
                    "Only support GET method to retrieve GC details. If you want to trigger gc, send a POST to gc endpoint.",
                );
            }
            let read_only = p.faults.read_only;
            Answer::json(
                StatusCode::OK,
                &json!({
                    "running": bookie_up(p, c),
                    "readOnly": read_only,
                    "shuttingDown": false,
                    "availableForHighPriorityWrites": !read_only,
                }),
            )
        }
        // BookieIsReadyService.java@release-4.10.0..release-4.14.1: 200 with an empty body when
        // running and not shutting down, else 503.
        "/api/v1/bookie/is_ready" if state_api => {
            if method != Method::GET {
                return get_only("Only support GET method check if bookie is ready.");
            }
            if bookie_up(p, c) {
                Answer::text(StatusCode::OK, "")
            } else {
                Answer::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Bookie is not fully started yet",
                )
            }
        }
        _ => Answer::text(StatusCode::NOT_FOUND, ""),
    }
}

/// Pravega's health API (pravega shared/health-bindings resources/HealthImpl.java@v0.10.0:
/// readiness and liveness are always 200 with a JSON boolean; `/v1/health` a HealthResult;
/// statuses from shared/health Status.java@v0.10.0: UP, WARNING (alive, not ready), DOWN).
fn health(p: &NetPod, c: &ContainerNet, component: &str, method: &Method, path: &str) -> Answer {
    if method != Method::GET {
        return Answer::text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    let alive = c.running && !p.faults.unhealthy;
    let ready = alive && c.ready;
    let status = match (ready, alive) {
        (true, _) => "UP",
        (false, true) => "WARNING",
        (false, false) => "DOWN",
    };
    match path {
        "/v1/health/readiness" => Answer::json(StatusCode::OK, &json!(ready)),
        "/v1/health/liveness" => Answer::json(StatusCode::OK, &json!(alive)),
        "/v1/health/status" => Answer::json(StatusCode::OK, &json!(status)),
        "/v1/health" => Answer::json(
            StatusCode::OK,
            &json!({
                "name": component,
                "status": status,
                "readiness": ready,
                "liveness": alive,
                "details": {},
                "children": {},
            }),
        ),
        _ => Answer::text(StatusCode::NOT_FOUND, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fault_annotations_are_read_and_bad_values_ignored() {
        let (f, bad) = faults(&annotations(&[
            (UNDER_REPLICATED_LEDGERS, "3"),
            (HEALTH, "unhealthy"),
            (UNREACHABLE, "true"),
            (BOOKIE_READ_ONLY, "false"),
        ]));
        assert_eq!(
            f,
            Faults {
                under_replicated: 3,
                unhealthy: true,
                unreachable: true,
                read_only: false
            }
        );
        assert!(bad.is_empty());
        let (f, bad) = faults(&annotations(&[
            (UNDER_REPLICATED_LEDGERS, "abc"),
            (HEALTH, "sick"),
            (UNREACHABLE, "yes"),
        ]));
        assert_eq!(f, Faults::default());
        let keys: Vec<&str> = bad.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, [HEALTH, UNREACHABLE, UNDER_REPLICATED_LEDGERS]);
        let (f, bad) = faults(&annotations(&[(UNDER_REPLICATED_LEDGERS, "100000000000")]));
        assert_eq!(f.under_replicated, 0);
        assert_eq!(bad.len(), 1);
    }

    /// A state with bookie pods of cluster `c` (name, faults, ready) serving on port 8000.
    fn state(bookies: &[(&str, Faults, bool)], state_api: bool) -> NetState {
        let mut st = NetState::default();
        for (name, faults, ready) in bookies {
            let cancel = CancellationToken::new();
            let server = Server {
                api: HttpApi::BookieAdmin { state_api },
                container: 0,
                cancel,
                task: tokio::spawn(async {}),
            };
            st.pods.insert(
                format!("uid-{name}"),
                NetPod {
                    name: name.to_string(),
                    namespace: "ns".into(),
                    cluster: ("ns".into(), "pravega-cluster".into(), "c".into()),
                    faults: *faults,
                    containers: vec![ContainerNet {
                        name: "bookie".into(),
                        running: true,
                        ready: *ready,
                        bookie: true,
                        bookie_id: Some(format!(
                            "{name}.c-bookie-headless.ns.svc.cluster.local:3181"
                        )),
                        ..Default::default()
                    }],
                    servers: HashMap::from([(8000, server)]),
                    ..Default::default()
                },
            );
        }
        st
    }

    fn get(st: &NetState, pod: &str, path: &str, q: &[(&str, &str)]) -> Answer {
        let query = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        answer(st, &format!("uid-{pod}"), 8000, &Method::GET, path, &query)
    }

    #[tokio::test]
    async fn bookie_admin_answers_as_bookkeeper_does() {
        let ok = Faults::default();
        let st = state(
            &[
                (
                    "b-0",
                    Faults {
                        under_replicated: 2,
                        ..ok
                    },
                    true,
                ),
                (
                    "b-1",
                    Faults {
                        under_replicated: 1,
                        read_only: true,
                        ..ok
                    },
                    true,
                ),
                (
                    "b-2",
                    Faults {
                        unhealthy: true,
                        ..ok
                    },
                    true,
                ),
                ("b-3", ok, false),
            ],
            true,
        );
        assert_eq!(get(&st, "b-3", "/heartbeat", &[]).body, "OK\n");
        let a = get(
            &st,
            "b-3",
            "/api/v1/autorecovery/list_under_replicated_ledger",
            &[],
        );
        assert_eq!(a.status, StatusCode::OK);
        let ids: Vec<u64> = serde_json::from_str(&a.body).unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3);

        let rw = get(&st, "b-0", "/api/v1/bookie/list_bookies", &[("type", "rw")]);
        assert_eq!(
            rw.body,
            r#"{"b-0.c-bookie-headless.ns.svc.cluster.local:3181":null}"#
        );
        let ro = get(&st, "b-0", "/api/v1/bookie/list_bookies", &[("type", "ro")]);
        assert_eq!(
            ro.body,
            r#"{"b-1.c-bookie-headless.ns.svc.cluster.local:3181":null}"#
        );
        let state_of = |pod| -> Value {
            serde_json::from_str(&get(&st, pod, "/api/v1/bookie/state", &[]).body).unwrap()
        };
        assert_eq!(
            state_of("b-1"),
            json!({"running": true, "readOnly": true, "shuttingDown": false, "availableForHighPriorityWrites": false})
        );
        assert_eq!(state_of("b-0")["availableForHighPriorityWrites"], true);
        assert_eq!(
            get(&st, "b-0", "/api/v1/bookie/is_ready", &[]).status,
            StatusCode::OK
        );
        for unready in ["b-2", "b-3"] {
            let a = get(&st, unready, "/api/v1/bookie/is_ready", &[]);
            assert_eq!(
                (a.status, a.body.as_str()),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Bookie is not fully started yet"
                )
            );
        }
        assert_eq!(
            get(&st, "b-0", "/api/v1/nope", &[]).status,
            StatusCode::NOT_FOUND
        );
        let post = answer(
            &st,
            "uid-b-0",
            8000,
            &Method::POST,
            "/api/v1/bookie/list_bookies",
            &HashMap::new(),
        );
        assert_eq!(post.status, StatusCode::NOT_FOUND);

        // Before BookKeeper 4.10 there is no state API; no ledgers: BookKeeper's 404.
        let old = state(&[("b-0", ok, true)], false);
        assert_eq!(
            get(&old, "b-0", "/api/v1/bookie/state", &[]).status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&old, "b-0", "/api/v1/bookie/is_ready", &[]).status,
            StatusCode::NOT_FOUND
        );
        let none = get(
            &old,
            "b-0",
            "/api/v1/autorecovery/list_under_replicated_ledger",
            &[],
        );
        assert_eq!(
            (none.status, none.body.as_str()),
            (StatusCode::NOT_FOUND, "No under replicated ledgers found")
        );
    }

    #[test]
    fn health_is_always_200_with_a_boolean() {
        let pod = |faults: Faults| NetPod {
            faults,
            ..Default::default()
        };
        let c = |ready| ContainerNet {
            running: true,
            ready,
            ..Default::default()
        };
        let get =
            |p: &NetPod, c: &ContainerNet, path| health(p, c, "controller", &Method::GET, path);
        let healthy = pod(Faults::default());
        assert_eq!(
            get(&healthy, &c(true), "/v1/health/readiness"),
            Answer::json(StatusCode::OK, &json!(true))
        );
        assert_eq!(
            get(&healthy, &c(false), "/v1/health/readiness").body,
            "false"
        );
        assert_eq!(get(&healthy, &c(false), "/v1/health/liveness").body, "true");
        let sick = pod(Faults {
            unhealthy: true,
            ..Default::default()
        });
        let r = get(&sick, &c(true), "/v1/health/readiness");
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "false"));
        assert_eq!(get(&sick, &c(true), "/v1/health/liveness").body, "false");
        let full: Value = serde_json::from_str(&get(&sick, &c(true), "/v1/health").body).unwrap();
        assert_eq!(full["status"], "DOWN");
        assert_eq!(full["readiness"], false);
        let up: Value = serde_json::from_str(&get(&healthy, &c(true), "/v1/health").body).unwrap();
        assert_eq!(
            (up["status"].as_str(), up["name"].as_str()),
            (Some("UP"), Some("controller"))
        );
        assert_eq!(
            get(&healthy, &c(true), "/v1/other").status,
            StatusCode::NOT_FOUND
        );
    }
}
