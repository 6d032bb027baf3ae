//! The prober: runs the safety checks a plan asks for ([`ProbeRequest`]) against the members'
//! own HTTP APIs, on their pod IPs and the ports this operator configured, and returns the
//! facts the planner decides on ([`CheckFacts`]).
//!
//! Which member to ask, and what an answer means, are pure functions ([`bookie_admin`],
//! [`health_targets`], [`judge_ledgers`], [`judge_writable`], [`judge_readiness`]); only [`get`]
//! does I/O: one HTTP/1.1 GET with a short timeout and no retry (the next reconcile asks again).
//!
//! Sources of the facts encoded here:
//! - BookKeeper's `HttpRouter.java` (release-4.6.0 and later) serves
//!   `/api/v1/autorecovery/list_under_replicated_ledger` and `/api/v1/bookie/list_bookies`;
//!   `ListUnderReplicatedLedgerService.java` (release-4.6.0 to 4.14.1) answers 404 with
//!   `No under replicated ledgers found` when there are none, else 200 and a JSON list (or map)
//!   of ledgers; `ListBookiesService.java` answers a JSON object keyed by bookie.
//! - Pravega's `HealthImpl.java` (v0.10.0 to v0.13.0) answers `/v1/health/readiness` with HTTP 200
//!   and a JSON `true` or `false` body, never 503.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use pravega_crds::contract::contract;
use pravega_crds::names::VERSION_KEY;
use pravega_crds::{Component, PravegaCluster, SafetyCheck};

use crate::planner::{CheckFacts, CheckOutcome, ProbeRequest};
use crate::pods;
use crate::resources::{BOOKIE_ADMIN_PORT, CONTROLLER_REST_PORT};

/// Longest wait for one answer (connect, request and body).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest answer read.
const MAX_BODY: usize = 256 * 1024;

const UNDER_REPLICATED_PATH: &str = "/api/v1/autorecovery/list_under_replicated_ledger";
const WRITABLE_BOOKIES_PATH: &str = "/api/v1/bookie/list_bookies?type=rw";

/// A member's HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod.
    pub pod: String,
    /// Its IP and the port of the API.
    pub addr: SocketAddr,
}

/// An HTTP answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body (lossily decoded).
    pub body: String,
}

fn version_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(VERSION_KEY))
        .map(String::as_str)
}

fn pod_ip(pod: &Pod) -> Option<IpAddr> {
    pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

/// The value of `var` in the pod's first container's literal env, if set there.
fn env_port(pod: &Pod, var: &str) -> Option<u16> {
    pod.spec
        .as_ref()?
        .containers
        .first()?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == var)?
        .value
        .as_deref()?
        .parse()
        .ok()
}

fn members<'p>(
    cluster: &PravegaCluster,
    pods: &'p [Pod],
    component: Component,
) -> impl Iterator<Item = &'p Pod> {
    let cluster_name = cluster.metadata.name.as_deref().unwrap_or_default();
    let mut list: Vec<&Pod> = pods::members(cluster_name, pods)
        .filter(move |(c, _)| *c == component)
        .map(|(_, p)| p)
        .collect();
    list.sort_by(|a, b| (name(a).len(), name(a)).cmp(&(name(b).len(), name(b))));
    list.into_iter()
}

/// The bookie to ask about the whole BookKeeper cluster: a serving bookie whose image runs the
/// HTTP admin server (0.5+), other than the pod about to be deleted when there is another,
/// lowest ordinal first. `Err` says why the checks do not apply.
pub fn bookie_admin(
    cluster: &PravegaCluster,
    pods: &[Pod],
    candidate: Option<&str>,
) -> Result<Endpoint, String> {
    let admins: Vec<Endpoint> = members(cluster, pods, Component::Bookkeeper)
        .filter(|p| pods::is_serving(p))
        .filter(|p| version_of(p).is_some_and(|v| contract(v).bookie.http_admin.is_some()))
        .filter_map(|p| {
            let port = env_port(p, "BK_httpServerPort")
                .or_else(|| u16::try_from(BOOKIE_ADMIN_PORT).ok())?;
            Some(Endpoint {
                pod: name(p).to_owned(),
                addr: SocketAddr::new(pod_ip(p)?, port),
            })
        })
        .collect();
    admins
        .iter()
        .find(|e| Some(e.pod.as_str()) != candidate)
        .or(admins.first())
        .cloned()
        .ok_or_else(|| {
            "no Ready bookie serves the HTTP admin API (BookKeeper images before 0.5 have none)"
                .to_owned()
        })
}

/// Every Controller and Segment Store that serves Pravega's health API (0.10+), except the pods
/// the step restarts: `candidate`, or every Controller pod when `candidate` is `None` and the
/// step is the Controller's.
pub fn health_targets(
    cluster: &PravegaCluster,
    pods: &[Pod],
    component: Component,
    candidate: Option<&str>,
) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for c in [Component::Controller, Component::SegmentStore] {
        if candidate.is_none() && c == component {
            continue;
        }
        for p in members(cluster, pods, c) {
            if Some(name(p)) == candidate || pods::is_terminating(p) {
                continue;
            }
            let Some(health) = version_of(p).and_then(|v| contract(v).pravega.health) else {
                continue;
            };
            let port = match c {
                Component::Controller => env_port(p, "REST_SERVER_PORT")
                    .or_else(|| u16::try_from(CONTROLLER_REST_PORT).ok()),
                _ => u16::try_from(health.segment_store_port).ok(),
            };
            if let (Some(ip), Some(port)) = (pod_ip(p), port) {
                out.push(Endpoint {
                    pod: name(p).to_owned(),
                    addr: SocketAddr::new(ip, port),
                });
            }
        }
    }
    out
}

fn unexpected(what: &str, at: &Endpoint, answer: &Answer) -> CheckOutcome {
    let mut body = answer.body.trim().to_owned();
    if body.len() > 200 {
        let mut end = 200;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    CheckOutcome::Unreachable(format!(
        "{what} of pod {} at {} answered HTTP {}: {body:?}",
        at.pod, at.addr, answer.status
    ))
}

/// `NoUnderReplicatedLedgers` from `list_under_replicated_ledger`'s answer.
pub fn judge_ledgers(at: &Endpoint, answer: &Answer) -> CheckOutcome {
    match answer.status {
        404 if answer.body.contains("No under replicated ledgers") => CheckOutcome::Passed,
        200 => match serde_json::from_str::<serde_json::Value>(&answer.body) {
            Ok(serde_json::Value::Array(a)) if a.is_empty() => CheckOutcome::Passed,
            Ok(serde_json::Value::Object(o)) if o.is_empty() => CheckOutcome::Passed,
            Ok(serde_json::Value::Array(a)) => ledgers_failed(a.len(), at),
            Ok(serde_json::Value::Object(o)) => ledgers_failed(o.len(), at),
            _ => unexpected("the bookie admin API", at, answer),
        },
        _ => unexpected("the bookie admin API", at, answer),
    }
}

fn ledgers_failed(n: usize, at: &Endpoint) -> CheckOutcome {
    CheckOutcome::Failed(format!(
        "BookKeeper lists {n} under-replicated ledger(s) (asked pod {})",
        at.pod
    ))
}

/// `BookiesWritable` from `list_bookies?type=rw`'s answer: at least `expected` bookies.
pub fn judge_writable(at: &Endpoint, answer: &Answer, expected: usize) -> CheckOutcome {
    if answer.status != 200 {
        return unexpected("the bookie admin API", at, answer);
    }
    match serde_json::from_str::<serde_json::Value>(&answer.body) {
        Ok(serde_json::Value::Object(o)) if o.len() >= expected => CheckOutcome::Passed,
        Ok(serde_json::Value::Object(o)) => CheckOutcome::Failed(format!(
            "{} of {expected} bookies are read-write (asked pod {})",
            o.len(),
            at.pod
        )),
        _ => unexpected("the bookie admin API", at, answer),
    }
}

/// One member's part of `PravegaHealthy` from `/v1/health/readiness`'s answer.
pub fn judge_readiness(at: &Endpoint, answer: &Answer) -> CheckOutcome {
    if answer.status != 200 {
        return unexpected("the health API", at, answer);
    }
    match answer.body.trim() {
        "true" => CheckOutcome::Passed,
        "false" => CheckOutcome::Failed(format!(
            "pod {} reports itself not ready (GET /v1/health/readiness)",
            at.pod
        )),
        _ => unexpected("the health API", at, answer),
    }
}

/// The worst of several outcomes: a failure, else an unreachable endpoint, else a pass.
fn worst(outcomes: Vec<CheckOutcome>) -> CheckOutcome {
    let rank = |o: &CheckOutcome| match o {
        CheckOutcome::Failed(_) => 0,
        CheckOutcome::Unreachable(_) => 1,
        CheckOutcome::NotApplicable(_) => 2,
        CheckOutcome::Passed => 3,
    };
    outcomes
        .into_iter()
        .min_by_key(rank)
        .unwrap_or(CheckOutcome::Passed)
}

/// One GET of `path` at `addr`, within [`PROBE_TIMEOUT`].
pub async fn get(addr: SocketAddr, path: &str) -> Result<Answer, String> {
    let request = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let req = http::Request::get(path)
            .header(http::header::HOST, addr.to_string())
            .header(http::header::USER_AGENT, crate::USER_AGENT)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    match tokio::time::timeout(PROBE_TIMEOUT, request).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs_f32())),
    }
}

async fn ask(
    what: &str,
    at: &Endpoint,
    path: &str,
    judge: impl FnOnce(&Answer) -> CheckOutcome,
) -> CheckOutcome {
    match get(at.addr, path).await {
        Ok(answer) => judge(&answer),
        Err(e) => CheckOutcome::Unreachable(format!(
            "{what} of pod {} at {} (GET {path}): {e}",
            at.pod, at.addr
        )),
    }
}

async fn run_check(
    check: SafetyCheck,
    request: &ProbeRequest,
    cluster: &PravegaCluster,
    pods: &[Pod],
) -> CheckOutcome {
    let candidate = request.candidate.as_deref();
    match check {
        SafetyCheck::NoUnderReplicatedLedgers => match bookie_admin(cluster, pods, candidate) {
            Ok(at) => {
                ask("the bookie admin API", &at, UNDER_REPLICATED_PATH, |a| {
                    judge_ledgers(&at, a)
                })
                .await
            }
            Err(why) => CheckOutcome::NotApplicable(why),
        },
        SafetyCheck::BookiesWritable => match bookie_admin(cluster, pods, candidate) {
            Ok(at) => {
                let expected = usize::try_from(cluster.spec.bookkeeper.replicas).unwrap_or(0);
                ask("the bookie admin API", &at, WRITABLE_BOOKIES_PATH, |a| {
                    judge_writable(&at, a, expected)
                })
                .await
            }
            Err(why) => CheckOutcome::NotApplicable(why),
        },
        SafetyCheck::PravegaHealthy => {
            let targets = health_targets(cluster, pods, request.component, candidate);
            if targets.is_empty() {
                return CheckOutcome::NotApplicable(
                    "no other member serves Pravega's health API (images before 0.10 have none)"
                        .to_owned(),
                );
            }
            let asks = targets.iter().map(|at| {
                ask("the health API", at, "/v1/health/readiness", |a| {
                    judge_readiness(at, a)
                })
            });
            worst(futures::future::join_all(asks).await)
        }
        SafetyCheck::MembersStable => {
            CheckOutcome::NotApplicable("decided from the pods by the planner".to_owned())
        }
    }
}

/// Runs the checks of `request`, concurrently, against the members among `pods`.
pub async fn run(request: &ProbeRequest, cluster: &PravegaCluster, pods: &[Pod]) -> CheckFacts {
    let outcomes = futures::future::join_all(
        request
            .checks
            .iter()
            .map(|c| run_check(*c, request, cluster, pods)),
    )
    .await;
    CheckFacts {
        component: request.component,
        candidate: request.candidate.clone(),
        outcomes: request.checks.iter().copied().zip(outcomes).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Endpoint {
        Endpoint {
            pod: "example-bookie-1".into(),
            addr: "127.0.0.9:8000".parse().unwrap(),
        }
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn ledgers_read_as_bookkeeper_writes_them() {
        assert_eq!(
            judge_ledgers(&at(), &answer(404, "No under replicated ledgers found")),
            CheckOutcome::Passed
        );
        assert_eq!(
            judge_ledgers(&at(), &answer(200, "[1,2,3]")),
            CheckOutcome::Failed(
                "BookKeeper lists 3 under-replicated ledger(s) (asked pod example-bookie-1)".into()
            )
        );
        assert_eq!(
            judge_ledgers(&at(), &answer(200, r#"{"7":["b1:3181"]}"#)),
            ledgers_failed(1, &at())
        );
        // Any other 404 (an exception, a wrong path) is not an answer.
        let CheckOutcome::Unreachable(m) =
            judge_ledgers(&at(), &answer(404, "Exception when get.x"))
        else {
            panic!("not unreachable");
        };
        assert!(m.contains("answered HTTP 404"), "{m}");
        assert!(matches!(
            judge_ledgers(&at(), &answer(500, "")),
            CheckOutcome::Unreachable(_)
        ));
    }

    #[test]
    fn writable_bookies_are_counted() {
        let body = r#"{"a:3181":null,"b:3181":null}"#;
        assert_eq!(
            judge_writable(&at(), &answer(200, body), 2),
            CheckOutcome::Passed
        );
        assert_eq!(
            judge_writable(&at(), &answer(200, body), 3),
            CheckOutcome::Failed(
                "2 of 3 bookies are read-write (asked pod example-bookie-1)".into()
            )
        );
        assert!(matches!(
            judge_writable(&at(), &answer(200, "[]"), 1),
            CheckOutcome::Unreachable(_)
        ));
    }

    #[test]
    fn readiness_is_read_from_the_body_not_the_status() {
        assert_eq!(
            judge_readiness(&at(), &answer(200, "true\n")),
            CheckOutcome::Passed
        );
        assert!(matches!(
            judge_readiness(&at(), &answer(200, "false")),
            CheckOutcome::Failed(_)
        ));
        assert!(matches!(
            judge_readiness(&at(), &answer(503, "true")),
            CheckOutcome::Unreachable(_)
        ));
    }

    #[test]
    fn the_worst_outcome_wins() {
        let f = CheckOutcome::Failed("f".into());
        let u = CheckOutcome::Unreachable("u".into());
        assert_eq!(worst(vec![CheckOutcome::Passed, u.clone(), f.clone()]), f);
        assert_eq!(worst(vec![CheckOutcome::Passed, u.clone()]), u);
        assert_eq!(worst(vec![]), CheckOutcome::Passed);
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_quickly() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let e = get(addr, "/heartbeat").await.unwrap_err();
        assert!(!e.is_empty());
    }

    #[tokio::test]
    async fn an_answer_is_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /v1/health/readiness"));
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfalse")
                .await
                .unwrap();
        });
        let a = get(addr, "/v1/health/readiness").await.unwrap();
        assert_eq!(a, answer(200, "false"));
    }
}
