//! The HTTPS front end: TLS, authentication, routing and rendering (`as=Table`,
//! `PartialObjectMetadata`). `resource` serves the verbs on a resource and its
//! subresources, `list` lists and deletes collections, `watch` streams changes.

mod list;
mod resource;
mod watch;

use crate::api::Core;
use crate::error::ApiError;
use crate::fault::{FaultKind, InjectedFault};
use crate::resources::ResourceInfo;
use crate::table::{Include, table};
use crate::util::meta_str;
use axum::body::{Body, Bytes};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

use resource::resource_request;

/// Per-server context shared by connections.
pub struct Ctx {
    /// The API core.
    pub core: Arc<Core>,
    /// The accepted bearer token (the kubeconfig's).
    pub token: String,
    /// The control plane's bearer token: its requests are never faulted.
    pub control_plane_token: String,
    /// The faults injected into the answers to other clients.
    pub faults: crate::fault::Faults,
    /// `host:port` advertised in `/api`.
    pub server_addr: String,
    /// Write requests answered and injected faults, for [`crate::Sandbox::audit`].
    pub audit: crate::audit::AuditLog,
    /// The snapshots of paginated lists being continued.
    pub lists: list::ListSnapshots,
}

/// Accepts connections until the core's shutdown token is cancelled.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, ctx: Arc<Ctx>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let shutdown = ctx.core.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let tls = tokio::select! {
                t = acceptor.accept(stream) => match t {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                },
                _ = shutdown.cancelled() => return,
            };
            let svc = hyper::service::service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(handle(ctx, req).await) }
            });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            tokio::select! {
                r = conn => if let Err(e) = r { tracing::debug!(error = %e, "connection ended with an error") },
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

fn escape_warning(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\n', '\r'], " ")
}

/// A JSON response with optional `Warning` headers.
pub fn json_response(code: u16, v: &Value, warnings: &[String]) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        if let Ok(h) = HeaderValue::from_str(&format!("299 - \"{}\"", escape_warning(w))) {
            resp.headers_mut().append(http::header::WARNING, h);
        }
    }
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), &[])
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => match crate::util::unhex(&s[i + 1..i + 3]) {
                Some(b) => {
                    out.extend(b);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a query string.
pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(req.into_body(), 8 * 1024 * 1024)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))
}

async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let public = matches!(
        path.as_str(),
        "/healthz" | "/livez" | "/readyz" | "/version"
    );
    let bearer = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let control_plane = bearer == Some(ctx.control_plane_token.as_str());
    let authorized = control_plane || bearer == Some(ctx.token.as_str());
    if !public && !authorized {
        return error_response(&ApiError::unauthorized());
    }
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (verb, resource) = classify(&method, &path, req.uri().query());
    // Only requests on resources are faulted: discovery, OpenAPI, health and metrics never.
    let faultable = !control_plane && !resource.is_empty() && ctx.faults.is_enabled();
    let resp = if faultable {
        route_with_faults(&ctx, req, verb, &path).await
    } else {
        route(&ctx, req).await
    };
    ctx.core
        .metrics
        .request(verb, &resource, resp.status().as_u16());
    if let Some(fault) = resp.extensions().get::<InjectedFault>() {
        ctx.core.metrics.fault(fault.code);
        tracing::info!(%user_agent, "injected fault: {} {verb} {path}", fault.code);
    }
    ctx.audit.record(&method, &path, &user_agent, &resp);
    if !control_plane {
        ctx.audit.access(verb, &path, &user_agent);
    }
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

/// Serves a request of a faultable client: after the added latency, a watch is served with
/// the watch faults, another request answered with an injected error or served.
async fn route_with_faults(
    ctx: &Arc<Ctx>,
    mut req: Request<Incoming>,
    verb: &str,
    path: &str,
) -> Response<Body> {
    let latency = ctx.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if verb == "watch" {
        if let Some(w) = ctx.faults.watch() {
            req.extensions_mut().insert(w);
        }
        return route(ctx, req).await;
    }
    let named_write = matches!(verb, "update" | "patch" | "delete");
    let Some(kind) = ctx.faults.pick_error(named_write) else {
        return route(ctx, req).await;
    };
    let (group, resource, _, name, _) = crate::audit::parse_path(path);
    let e = kind.to_error(&group, &resource, name.as_deref().unwrap_or_default());
    let mut resp = error_response(&e);
    if kind == FaultKind::TooManyRequests {
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp.extensions_mut().insert(InjectedFault { code: e.code });
    resp
}

/// The verb and resource of a request, for metrics.
fn classify(method: &Method, path: &str, query: Option<&str>) -> (&'static str, String) {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => &[],
    };
    let rest = match rest {
        ["namespaces", _, r, more @ ..]
            if !(more.is_empty() && (*r == "status" || *r == "finalize")) =>
        {
            &rest[2..]
        }
        _ => rest,
    };
    let resource = rest.first().map(|s| s.to_string()).unwrap_or_default();
    let named = rest.len() >= 2;
    let watch = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named || resource.is_empty() => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, resource)
}

async fn route(ctx: &Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let core = &ctx.core;
    if req.method() == Method::GET {
        let reg = core.lock().registry.clone();
        let doc = match segs.as_slice() {
            ["version"] => Some(crate::discovery::version()),
            ["healthz"] | ["livez"] | ["readyz"] => {
                let mut r = Response::new(Body::from("ok"));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain"),
                );
                return r;
            }
            ["api"] => Some(crate::discovery::core_versions(&ctx.server_addr)),
            ["apis"] => Some(crate::discovery::groups(&reg)),
            ["api", "v1"] => crate::discovery::resources(&reg, "", "v1"),
            ["apis", g] => crate::discovery::group(&reg, g),
            ["apis", g, v] => crate::discovery::resources(&reg, g, v),
            ["openapi", "v3"] => Some(crate::openapi::index(&reg)),
            ["openapi", "v3", rest @ ..] => {
                let doc = crate::openapi::document(&reg, rest);
                if doc.is_none() {
                    return error_response(&ApiError::no_route(""));
                }
                doc
            }
            ["openapi", "v2"] => return error_response(&ApiError::no_route("")),
            ["metrics"] => {
                let mut r = Response::new(Body::from(core.metrics.encode()));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                return r;
            }
            [] => Some(
                json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"]}),
            ),
            _ => None,
        };
        if let Some(d) = doc {
            return json_response(200, &d, &[]);
        }
    }
    match segs.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource_request(ctx, req, "", "v1", &rest).await
        }
        ["apis", g, v, rest @ ..] if !rest.is_empty() => {
            let (g, v) = (g.to_string(), v.to_string());
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource_request(ctx, req, &g, &v, &rest).await
        }
        _ => error_response(&ApiError::no_route("")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum As {
    Plain,
    Table,
    Metadata,
}

pub(super) fn accept_as(req: &Request<Incoming>) -> As {
    let accept = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let first = accept.split(',').next().unwrap_or_default();
    if first.contains("as=Table") {
        As::Table
    } else if first.contains("as=PartialObjectMetadata") {
        As::Metadata
    } else {
        As::Plain
    }
}

pub(super) fn include_of(q: &HashMap<String, String>) -> Include {
    match q.get("includeObject").map(String::as_str) {
        Some("None") => Include::None,
        Some("Object") => Include::Object,
        _ => Include::Metadata,
    }
}

pub(super) fn partial(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))})
}

pub(super) fn render_one(
    info: &ResourceInfo,
    as_: As,
    q: &HashMap<String, String>,
    o: Value,
) -> Value {
    match as_ {
        As::Plain => o,
        As::Metadata => partial(&o),
        As::Table => {
            let rv = meta_str(&o, "resourceVersion")
                .unwrap_or_default()
                .to_string();
            table(info, &[o], include_of(q), json!({"resourceVersion": rv}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query(Some("labelSelector=app%3Dx%2Ctier+in+%28a%29&watch=true&x"));
        assert_eq!(q["labelSelector"], "app=x,tier in (a)");
        assert_eq!(q["watch"], "true");
        assert_eq!(q["x"], "");
    }
}
