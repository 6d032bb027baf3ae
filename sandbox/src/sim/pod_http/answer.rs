//! What the servers answer: the BookKeeper admin API and the Pravega health API.

use super::faults::FIRST_LEDGER_ID;
use super::{ClusterKey, ContainerNet, NetPod, NetState};
use crate::sim::images::HttpApi;
use http::{Method, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub json: bool,
    pub body: String,
}

impl Answer {
    pub(super) fn text(status: StatusCode, body: &str) -> Self {
        Answer {
            status,
            json: false,
            body: body.to_owned(),
        }
    }

    pub(super) fn json(status: StatusCode, body: &Value) -> Self {
        Answer {
            status,
            json: true,
            body: body.to_string(),
        }
    }

    pub(super) fn into_response(self) -> http::Response<Full<Bytes>> {
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

pub(super) fn answer(
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
pub(super) fn health(
    p: &NetPod,
    c: &ContainerNet,
    component: &str,
    method: &Method,
    path: &str,
) -> Answer {
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
    use crate::sim::pod_http::{Faults, Server};
    use std::collections::HashSet;
    use tokio_util::sync::CancellationToken;

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
