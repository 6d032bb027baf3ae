//! The `log` subresource of pods (`GET /api/v1/namespaces/NS/pods/NAME/log`, `kubectl logs`),
//! as the API server serves it: the options are validated, the container is chosen (or the
//! request refused) from the pod's spec, and the request is passed to the kubelet of the pod's
//! node, whose answer (a `text/plain` stream, or an error the API server turns into a
//! `Status`) goes back to the client. A node's kubelet is reached on loopback at its
//! `status.daemonEndpoints.kubeletEndpoint.Port` (the simulated kubelets serve there).

use crate::api::Core;
use crate::error::ApiError;
use crate::server::json_response;
use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), &[])
}

/// `PodLogOptions` from the query, validated as the API server does
/// (`ValidatePodLogOptions`): the query the kubelet gets.
fn options(name: &str, q: &HashMap<String, String>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let mut errs: Vec<(String, String)> = Vec::new();
    for key in [
        "follow",
        "previous",
        "timestamps",
        "insecureSkipTLSVerifyBackend",
    ] {
        if let Some(v) = q.get(key) {
            // apimachinery's query conversion: only "0" and "false" are false.
            let b = !(v == "0" || v.eq_ignore_ascii_case("false"));
            if b && key != "insecureSkipTLSVerifyBackend" {
                out.push((key.to_string(), "true".to_string()));
            }
        }
    }
    let number = |key: &str| -> Result<Option<i64>, ApiError> {
        match q.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
            }),
        }
    };
    let tail = number("tailLines")?;
    let limit = number("limitBytes")?;
    let since_seconds = number("sinceSeconds")?;
    if let Some(t) = tail {
        if t < 0 {
            errs.push((
                "tailLines".into(),
                format!("Invalid value: {t}: must be greater than or equal to 0"),
            ));
        }
        out.push(("tailLines".into(), t.to_string()));
    }
    if let Some(l) = limit {
        if l < 1 {
            errs.push((
                "limitBytes".into(),
                format!("Invalid value: {l}: must be greater than 0"),
            ));
        }
        out.push(("limitBytes".into(), l.to_string()));
    }
    let since_time = q.get("sinceTime").filter(|t| !t.is_empty());
    if let Some(t) = since_time
        && t.parse::<jiff::Timestamp>().is_err()
    {
        return Err(ApiError::bad_request(format!(
            "parsing time {t:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {t:?} as \"2006\""
        )));
    }
    match (since_seconds, since_time) {
        (Some(_), Some(_)) => errs.push((
            String::new(),
            "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into(),
        )),
        (Some(s), None) => {
            if s < 1 {
                errs.push((
                    "sinceSeconds".into(),
                    format!("Invalid value: {s}: must be greater than 0"),
                ));
            }
            out.push(("sinceSeconds".into(), s.to_string()));
        }
        (None, Some(t)) => out.push(("sinceTime".into(), t.clone())),
        (None, None) => {}
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid("", "PodLogOptions", name, &errs));
    }
    Ok(out)
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request reads: the one named, or the only one (kubernetes
/// pkg/registry/core/pod/strategy.go `validateContainer`, word for word).
fn container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let spec = pod.get("spec");
    let containers = names(spec.and_then(|s| s.get("containers")));
    let init = names(spec.and_then(|s| s.get("initContainers")));
    let ephemeral = names(spec.and_then(|s| s.get("ephemeralContainers")));
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c)
            {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            many => {
                let mut e = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    many.join(" ")
                );
                if !init.is_empty() {
                    e.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                if !ephemeral.is_empty() {
                    e.push_str(&format!(
                        " or one of the ephemeral containers: [{}]",
                        ephemeral.join(" ")
                    ));
                }
                Err(ApiError::bad_request(e))
            }
        },
    }
}

/// An error that is not an API status: the API server answers `500` without a reason (kubectl
/// prints `Error from server: <message>`).
fn unknown(message: String) -> ApiError {
    ApiError::custom(500, "", message)
}

/// `GET .../pods/NAME/log`.
pub async fn pod_log(
    core: &Arc<Core>,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
) -> Response<Body> {
    match pod_log_inner(core, ns, name, q).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn text(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

async fn pod_log_inner(
    core: &Arc<Core>,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let query = options(name, q)?;
    let pods = core
        .resolve("", "v1", "pods")
        .ok_or_else(|| ApiError::no_route(""))?;
    let pod = core.get(&pods, ns, name)?;
    let container = container(&pod, name, q.get("container").map(String::as_str))?;
    let node_name = pod
        .get("spec")
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if node_name.is_empty() {
        // Not scheduled: no kubelet to ask, an empty log.
        return Ok(text(Body::empty()));
    }
    let nodes = core
        .resolve("", "v1", "nodes")
        .ok_or_else(|| ApiError::no_route(""))?;
    let node = core.get(&nodes, "", node_name)?;
    let path = format!("/containerLogs/{ns}/{name}/{container}");
    let segment = crate::util::percent_encode;
    let escaped = format!(
        "/containerLogs/{}/{}/{}",
        segment(ns),
        segment(name),
        segment(&container)
    );
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u64::from(u16::MAX));
    let Some(port) = port else {
        // No kubelet serves this node: what a real API server says when the kubelet's port
        // does not answer (without dialling the node's address).
        let host = node
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|x| x.get("type").and_then(Value::as_str) == Some("InternalIP"))
            })
            .and_then(|x| x.get("address"))
            .and_then(Value::as_str)
            .unwrap_or(node_name);
        return Err(unknown(format!(
            "Get \"https://{host}:10250{path}\": dial tcp {host}:10250: connect: connection refused"
        )));
    };
    let mut url = format!("http://127.0.0.1:{port}{escaped}");
    if !query.is_empty() {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::util::percent_encode(v)))
            .collect();
        url = format!("{url}?{}", q.join("&"));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| ApiError::internal(e.to_string()))?;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<axum::body::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let req = http::Request::get(uri)
        .body(http_body_util::Empty::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = client.request(req).await.map_err(|_| {
        unknown(format!(
            "Get \"{url}\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(text(Body::new(resp.into_body())));
    }
    // The kubelet's error, as the API server's response checker reports it.
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    Err(match status {
        StatusCode::BAD_REQUEST => ApiError::bad_request(body),
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal(body),
        StatusCode::NOT_FOUND => {
            let mut e = ApiError::custom(
                404,
                "NotFound",
                format!("the server could not find the requested resource ( pods/log {name})"),
            );
            e.details = Some(serde_json::json!({"name": name, "kind": "pods/log",
                "causes": [{"reason": "UnexpectedServerResponse", "message": body}]}));
            e
        }
        other => ApiError::custom(other.as_u16(), "", body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_validated_as_the_api_server_does() {
        assert_eq!(
            options("p", &q(&[("follow", "true"), ("tailLines", "10")])).unwrap(),
            [
                ("follow".to_string(), "true".to_string()),
                ("tailLines".to_string(), "10".to_string())
            ]
        );
        let e = options("p", &q(&[("tailLines", "-1")])).unwrap_err();
        assert_eq!(
            e.message,
            "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        let e = options(
            "p",
            &q(&[("sinceSeconds", "5"), ("sinceTime", "2024-01-01T00:00:00Z")]),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "PodLogOptions \"p\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
        );
        assert_eq!(
            options("p", &q(&[("limitBytes", "0")])).unwrap_err().code,
            422
        );
        assert_eq!(
            options("p", &q(&[("follow", "yes"), ("previous", "False")])).unwrap(),
            [("follow".to_string(), "true".to_string())]
        );
        assert_eq!(
            options("p", &q(&[("tailLines", "x")])).unwrap_err().code,
            400
        );
    }

    #[test]
    fn the_container_is_chosen_as_the_api_server_does() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(container(&one, "p", None).unwrap(), "a");
        assert_eq!(
            container(&one, "p", Some("b")).unwrap_err().message,
            "container b is not valid for pod p"
        );
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}]}});
        assert_eq!(container(&two, "p", Some("i")).unwrap(), "i");
        assert_eq!(
            container(&two, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
    }
}
