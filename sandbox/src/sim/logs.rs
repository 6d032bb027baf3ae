//! Container logs, as the simulated kubelets keep and serve them.
//!
//! Each simulated container keeps the log of its current instance and of the last one that
//! terminated (`kubectl logs --previous`), each bounded to the last [`MAX_LINES`] lines. What
//! a container writes: its start (`starting <image> with args [...]`), for the modelled
//! Pravega and BookKeeper images the settings they resolve ([`super::images::start_log`]),
//! why its readiness probe fails when it does, and, when it crashes, the crash message (the
//! same text as `lastState.terminated.message`).
//!
//! A kubelet serves them as a real one does, over HTTP on loopback at
//! `/containerLogs/<namespace>/<pod>/<container>` (`follow`, `previous`, `tailLines`,
//! `limitBytes`, `sinceSeconds`, `sinceTime`, `timestamps`); its port is the nodes'
//! `status.daemonEndpoints.kubeletEndpoint.Port`, where the API server's `pods/log`
//! subresource reaches it. Which log a request gets, and the errors, follow the kubelet's
//! `validateContainerLogStatus` over the pod's reported status.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::kubelet::Kubelet;

/// The lines kept per container instance: older lines are dropped, as log rotation would.
pub(crate) const MAX_LINES: usize = 1000;

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// The log of one run of a container.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    id: u64,
    /// When it started running (for a running container: tells a new start from the same run).
    started: Option<Instant>,
    lines: VecDeque<(Timestamp, String)>,
    /// The sequence number of `lines[0]` (lines dropped so far).
    first: u64,
    /// Whether the instance has stopped: nothing more will be written.
    finished: bool,
}

impl Instance {
    fn new(started: Option<Instant>, lines: impl IntoIterator<Item = String>) -> Self {
        let mut i = Instance {
            id: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            started,
            lines: VecDeque::new(),
            first: 0,
            finished: false,
        };
        i.write(lines);
        i
    }

    /// Appends lines (a message with several lines is several lines).
    pub(crate) fn write(&mut self, lines: impl IntoIterator<Item = String>) {
        let now = Timestamp::now();
        for line in lines {
            for l in line.split('\n') {
                self.lines.push_back((now, l.to_owned()));
                if self.lines.len() > MAX_LINES {
                    self.lines.pop_front();
                    self.first += 1;
                }
            }
        }
    }

    fn ends_with(&self, lines: &[String]) -> bool {
        let tail: Vec<&str> = lines.iter().flat_map(|l| l.split('\n')).collect();
        tail.len() <= self.lines.len()
            && self
                .lines
                .iter()
                .rev()
                .zip(tail.iter().rev())
                .all(|((_, a), b)| a == b)
    }

    /// The sequence number after the last line.
    fn end(&self) -> u64 {
        self.first + self.lines.len() as u64
    }

    /// The lines from sequence number `from` on.
    fn since(&self, from: u64) -> impl Iterator<Item = &(Timestamp, String)> {
        let skip = from.saturating_sub(self.first) as usize;
        self.lines.iter().skip(skip)
    }
}

/// The logs of one container: its current instance and the last one that terminated.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerLogs {
    current: Option<Instance>,
    previous: Option<Instance>,
}

impl ContainerLogs {
    /// The container (re)started running at `since`: a new current instance with `lines`,
    /// unless the current one is that run already. Tells whether anything changed.
    pub(crate) fn running(&mut self, since: Instant, lines: impl FnOnce() -> Vec<String>) -> bool {
        if self.current.as_ref().and_then(|c| c.started) == Some(since) {
            return false;
        }
        if let Some(mut stopped) = self.current.take() {
            stopped.finished = true;
            self.previous = Some(stopped);
        }
        self.current = Some(Instance::new(Some(since), lines()));
        true
    }

    /// The container crashes at start, again and again: the last terminated instance wrote
    /// `start` and then `crash`. A running instance that crashes keeps what it wrote.
    pub(crate) fn crashing(
        &mut self,
        crash: &[String],
        start: impl FnOnce() -> Vec<String>,
    ) -> bool {
        if let Some(mut running) = self.current.take() {
            running.write(crash.iter().cloned());
            running.finished = true;
            self.previous = Some(running);
            return true;
        }
        match &self.previous {
            Some(p) if p.ends_with(crash) => false,
            _ => {
                let mut i = Instance::new(None, start());
                i.write(crash.iter().cloned());
                i.finished = true;
                self.previous = Some(i);
                true
            }
        }
    }

    /// The running instance stops (its pod is being deleted); its log stays the current one.
    pub(crate) fn stop(&mut self) -> bool {
        match self.current.as_mut() {
            Some(c) if !c.finished => {
                c.finished = true;
                true
            }
            _ => false,
        }
    }

    /// Writes to the running instance.
    pub(crate) fn write(&mut self, lines: impl IntoIterator<Item = String>) -> bool {
        match self.current.as_mut() {
            Some(c) if !c.finished => {
                c.write(lines);
                true
            }
            _ => false,
        }
    }

    fn instance(&self, which: Which) -> Option<&Instance> {
        match which {
            Which::Current => self.current.as_ref(),
            Which::Previous => self.previous.as_ref(),
        }
    }

    fn by_id(&self, id: u64) -> Option<&Instance> {
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|i| i.id == id)
    }
}

/// Which of a container's logs a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Current,
    Previous,
}

fn container_status<'a>(status: &'a PodStatus, name: &str) -> Option<&'a ContainerStatus> {
    [
        &status.container_statuses,
        &status.init_container_statuses,
        &status.ephemeral_container_statuses,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .find(|c| c.name == name)
}

/// Which log of `container` a request reads, from the pod's reported status, or why there is
/// none: the kubelet's `validateContainerLogStatus` (kubernetes pkg/kubelet/kubelet_pods.go),
/// word for word.
pub(crate) fn validate(
    pod: &str,
    status: Option<&PodStatus>,
    container: &str,
    previous: bool,
) -> Result<Which, String> {
    let Some(cs) = status.and_then(|s| container_status(s, container)) else {
        return Err(format!(
            "container {container:?} in pod {pod:?} is not available"
        ));
    };
    let state = cs.state.clone().unwrap_or_default();
    let last = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref());
    let has_id = |id: &Option<String>| id.as_deref().is_some_and(|i| !i.is_empty());
    let last_id = last.is_some_and(|t| has_id(&t.container_id));
    if previous {
        return if last_id {
            Ok(Which::Previous)
        } else {
            Err(format!(
                "previous terminated container {container:?} in pod {pod:?} not found"
            ))
        };
    }
    if state.running.is_some() {
        return Ok(Which::Current);
    }
    if let Some(t) = &state.terminated {
        return if has_id(&t.container_id) {
            Ok(Which::Current)
        } else if last_id {
            Ok(Which::Previous)
        } else {
            Err(format!(
                "container {container:?} in pod {pod:?} is terminated"
            ))
        };
    }
    if last.is_some() {
        return if last_id {
            Ok(Which::Previous)
        } else {
            Err(format!(
                "container {container:?} in pod {pod:?} is terminated"
            ))
        };
    }
    match state.waiting.and_then(|w| w.reason) {
        Some(reason) => Err(format!(
            "container {container:?} in pod {pod:?} is waiting to start: {}",
            match reason.as_str() {
                "ErrImagePull" => "image can't be pulled",
                "ImagePullBackOff" => "trying and failing to pull image",
                other => other,
            }
        )),
        None => Err(format!(
            "container {container:?} in pod {pod:?} is waiting to start - no logs yet"
        )),
    }
}

/// What a log request asks for (`PodLogOptions`, already validated by the API server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
    /// Only lines written at or after this time (`sinceSeconds` / `sinceTime`).
    pub since: Option<Timestamp>,
}

fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
}

impl Options {
    fn from_query(q: &HashMap<String, String>) -> Options {
        let number = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
        let since = match (number("sinceSeconds"), q.get("sinceTime")) {
            (Some(s), _) => Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(s.max(0)))
                .ok(),
            (None, Some(t)) => t.parse::<Timestamp>().ok(),
            (None, None) => None,
        };
        Options {
            follow: is_true(q.get("follow")),
            previous: is_true(q.get("previous")),
            timestamps: is_true(q.get("timestamps")),
            tail_lines: number("tailLines").map(|n| n.max(0) as u64),
            limit_bytes: number("limitBytes").map(|n| n.max(0) as u64),
            since,
        }
    }
}

/// Renders lines as the kubelet does: one per line, with an RFC 3339 timestamp first if asked.
fn render<'a>(lines: impl Iterator<Item = &'a (Timestamp, String)>, opts: &Options) -> Vec<u8> {
    let mut out = Vec::new();
    for (at, line) in lines {
        if opts.since.is_some_and(|s| *at < s) {
            continue;
        }
        if opts.timestamps {
            out.extend_from_slice(format!("{at} ").as_bytes());
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Cuts `bytes` to what `limitBytes` still allows, counting what was sent.
fn limit(mut bytes: Vec<u8>, opts: &Options, sent: &mut u64) -> Vec<u8> {
    if let Some(max) = opts.limit_bytes {
        let room = max.saturating_sub(*sent) as usize;
        bytes.truncate(room);
    }
    *sent += bytes.len() as u64;
    bytes
}

fn text(code: StatusCode, message: String) -> Response {
    let mut r = (code, message).into_response();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// State of the kubelets' log endpoint.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub kubelet: Arc<Kubelet>,
    pub cancel: CancellationToken,
}

/// Serves `/containerLogs/...` on `listener` until `cancel`.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    endpoint: Endpoint,
) -> std::io::Result<()> {
    let cancel = endpoint.cancel.clone();
    let app = axum::Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            axum::routing::get(container_logs),
        )
        .with_state(endpoint);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

async fn container_logs(
    State(ep): State<Endpoint>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let q = crate::server::parse_query(query.as_deref());
    let opts = Options::from_query(&q);
    let api: Api<Pod> = Api::namespaced(ep.kubelet.client.clone(), &namespace);
    let pod = match api.get_opt(&pod_name).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("pod {pod_name:?} does not exist"),
            );
        }
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let in_spec = pod.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .any(|c| c.name == container)
    });
    if !in_spec {
        return text(
            StatusCode::NOT_FOUND,
            format!("container {container:?} not found in pod {pod_name:?}"),
        );
    }
    let which = match validate(&pod_name, pod.status.as_ref(), &container, opts.previous) {
        Ok(w) => w,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let uid = pod.uid().unwrap_or_default();
    // What is there now, and the instance to follow.
    let Some((first, id, cursor, running)) = ep.kubelet.with_logs(&uid, &container, |logs| {
        let i = logs.instance(which)?;
        let start = match opts.tail_lines {
            Some(n) => i.end().saturating_sub(n),
            None => i.first,
        };
        Some((render(i.since(start), &opts), i.id, i.end(), !i.finished))
    }) else {
        return text(StatusCode::OK, String::new());
    };
    let mut sent = 0;
    let first = limit(first, &opts, &mut sent);
    let done = opts.limit_bytes.is_some_and(|max| sent >= max);
    if !(opts.follow && running) || done {
        return text(StatusCode::OK, String::from_utf8_lossy(&first).into_owned());
    }
    // Follow: stream what the instance writes until it stops, the pod goes, the request is
    // cancelled or the simulation stops.
    let kubelet = ep.kubelet.clone();
    let cancel = ep.cancel.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        let mut ticks = kubelet.log_ticks();
        let mut cursor = cursor;
        loop {
            let next = kubelet.with_logs(&uid, &container, |logs| {
                let i = logs.by_id(id)?;
                Some((render(i.since(cursor), &opts), i.end(), i.finished))
            });
            let Some((bytes, end, finished)) = next else {
                return;
            };
            cursor = end;
            let bytes = limit(bytes, &opts, &mut sent);
            if !bytes.is_empty() && tx.send(Bytes::from(bytes)).await.is_err() {
                return;
            }
            if finished || opts.limit_bytes.is_some_and(|max| sent >= max) {
                return;
            }
            tokio::select! {
                r = ticks.changed() => if r.is_err() { return },
                _ = tx.closed() => return,
                _ = cancel.cancelled() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(v: serde_json::Value) -> PodStatus {
        serde_json::from_value(json!({ "containerStatuses": [v] })).expect("status")
    }

    #[test]
    fn log_errors_are_the_kubelets() {
        let creating = status(
            json!({"name": "c", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}),
        );
        assert_eq!(
            validate("p", Some(&creating), "c", false),
            Err("container \"c\" in pod \"p\" is waiting to start: ContainerCreating".into())
        );
        assert_eq!(
            validate("p", Some(&creating), "c", true),
            Err("previous terminated container \"c\" in pod \"p\" not found".into())
        );
        assert_eq!(
            validate("p", Some(&creating), "d", false),
            Err("container \"d\" in pod \"p\" is not available".into())
        );
        assert_eq!(
            validate("p", None, "c", false),
            Err("container \"c\" in pod \"p\" is not available".into())
        );
        let pulling = status(
            json!({"name": "c", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}),
        );
        assert_eq!(
            validate("p", Some(&pulling), "c", false),
            Err("container \"c\" in pod \"p\" is waiting to start: trying and failing to pull image".into())
        );
        let running = status(
            json!({"name": "c", "image": "i", "imageID": "", "ready": true,
            "restartCount": 0, "containerID": "sandbox://u/c", "state": {"running": {}}}),
        );
        assert_eq!(
            validate("p", Some(&running), "c", false),
            Ok(Which::Current)
        );
        let crashing = status(
            json!({"name": "c", "image": "i", "imageID": "", "ready": false,
            "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "sandbox://u/c"}}}),
        );
        assert_eq!(
            validate("p", Some(&crashing), "c", false),
            Ok(Which::Previous)
        );
        assert_eq!(
            validate("p", Some(&crashing), "c", true),
            Ok(Which::Previous)
        );
        let no_id = status(
            json!({"name": "c", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}),
        );
        assert_eq!(
            validate("p", Some(&no_id), "c", false),
            Err("container \"c\" in pod \"p\" is terminated".into())
        );
        let nothing = status(
            json!({"name": "c", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0}),
        );
        assert_eq!(
            validate("p", Some(&nothing), "c", false),
            Err("container \"c\" in pod \"p\" is waiting to start - no logs yet".into())
        );
    }

    #[test]
    fn logs_are_bounded_and_keep_the_previous_instance() {
        let mut logs = ContainerLogs::default();
        let t0 = Instant::now();
        assert!(logs.running(t0, || vec!["starting x with args []".into()]));
        assert!(!logs.running(t0, || vec!["again".into()]));
        for n in 0..(MAX_LINES + 10) {
            logs.write([format!("line {n}")]);
        }
        let cur = logs.instance(Which::Current).expect("current");
        assert_eq!(cur.lines.len(), MAX_LINES);
        assert_eq!(cur.lines.back().map(|l| l.1.as_str()), Some("line 1009"));
        assert_eq!(cur.end(), MAX_LINES as u64 + 11);
        // It crashes: its log, with the message, is the previous one; further crashes at start
        // write the start and the message.
        let crash = vec!["boom\nsecond line".to_string()];
        assert!(logs.crashing(&crash, || vec!["starting x with args []".into()]));
        assert!(logs.instance(Which::Current).is_none());
        let prev = logs.instance(Which::Previous).expect("previous");
        assert!(prev.finished && prev.ends_with(&crash));
        assert_eq!(prev.lines.back().map(|l| l.1.as_str()), Some("second line"));
        assert!(!logs.crashing(&crash, Vec::new));
        let other = vec!["other".to_string()];
        assert!(logs.crashing(&other, || vec!["start".into()]));
        let prev = logs.instance(Which::Previous).expect("previous");
        assert_eq!(
            prev.lines.iter().map(|l| l.1.as_str()).collect::<Vec<_>>(),
            ["start", "other"]
        );
        // Recovered: a new current instance, the crash stays the previous one.
        assert!(logs.running(Instant::now(), || vec!["starting y with args []".into()]));
        assert_eq!(
            logs.instance(Which::Previous).map(|p| p.lines.len()),
            Some(2)
        );
    }

    #[test]
    fn options_render_tail_timestamps_and_limits() {
        let mut i = Instance::new(None, ["a".to_string(), "b\nc".to_string()]);
        i.write(["d".to_string()]);
        let opts = Options::default();
        assert_eq!(render(i.since(0), &opts), b"a\nb\nc\nd\n");
        let tail = Options {
            tail_lines: Some(2),
            ..Default::default()
        };
        let from = i.end().saturating_sub(2);
        assert_eq!(render(i.since(from), &tail), b"c\nd\n");
        let stamped = Options {
            timestamps: true,
            ..Default::default()
        };
        let out = String::from_utf8(render(i.since(3), &stamped)).expect("utf-8");
        let (ts, line) = out.trim_end().split_once(' ').expect("timestamp");
        assert!(
            ts.parse::<Timestamp>().is_ok() && ts.ends_with('Z'),
            "{out}"
        );
        assert_eq!(line, "d");
        let limited = Options {
            limit_bytes: Some(3),
            ..Default::default()
        };
        let mut sent = 0;
        assert_eq!(
            limit(render(i.since(0), &limited), &limited, &mut sent),
            b"a\nb"
        );
        assert_eq!(limit(b"more".to_vec(), &limited, &mut sent), b"");
        let q: HashMap<String, String> =
            [("follow", "true"), ("tailLines", "5"), ("previous", "1")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let o = Options::from_query(&q);
        assert!(o.follow && o.previous && !o.timestamps);
        assert_eq!(o.tail_lines, Some(5));
    }
}
