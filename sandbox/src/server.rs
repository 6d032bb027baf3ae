//! The HTTPS front end: TLS, authentication, routing, lists, watches and tables.

use crate::api::{Core, DeleteOpts, FieldValidation, Outcome, WriteOpts};
use crate::convert::to_external;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::selector::{
    FieldTerm, LabelSelector, fields_match, parse_field_selector_in, parse_label_selector,
};
use crate::store::{EventType, ObjKey, Since};
use crate::table::{Include, table};
use crate::util::{labels_of, meta_str};
use axum::body::{Body, Bytes};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Per-server context shared by connections.
pub struct Ctx {
    /// The API core.
    pub core: Arc<Core>,
    /// The accepted bearer token.
    pub token: String,
    /// `host:port` advertised in `/api`.
    pub server_addr: String,
    /// Write requests answered, for [`crate::Sandbox::audit`].
    pub audit: crate::audit::AuditLog,
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
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| {
            h.strip_prefix("Bearer ")
                .is_some_and(|t| t.trim() == ctx.token)
        });
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
    let resp = route(&ctx, req).await;
    ctx.core
        .metrics
        .request(verb, &resource, resp.status().as_u16());
    ctx.audit.record(&method, &path, &user_agent, &resp);
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
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

fn write_opts(q: &HashMap<String, String>) -> Result<WriteOpts, ApiError> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other}; the only supported value is \"All\""
            )));
        }
    };
    let validation = match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, got {other}"
            )));
        }
    };
    Ok(WriteOpts {
        dry_run,
        validation,
        field_manager: q.get("fieldManager").cloned(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum As {
    Plain,
    Table,
    Metadata,
}

fn accept_as(req: &Request<Incoming>) -> As {
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

fn include_of(q: &HashMap<String, String>) -> Include {
    match q.get("includeObject").map(String::as_str) {
        Some("None") => Include::None,
        Some("Object") => Include::Object,
        _ => Include::Metadata,
    }
}

fn partial(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))})
}

fn render_one(info: &ResourceInfo, as_: As, q: &HashMap<String, String>, o: Value) -> Value {
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

fn outcome_response(
    info: &ResourceInfo,
    as_: As,
    q: &HashMap<String, String>,
    r: Result<Outcome, ApiError>,
) -> Response<Body> {
    match r {
        Ok(o) => json_response(o.code, &render_one(info, as_, q, o.object), &o.warnings),
        Err(e) => error_response(&e),
    }
}

async fn resource_request(
    ctx: &Arc<Ctx>,
    req: Request<Incoming>,
    group: &str,
    version: &str,
    rest: &[String],
) -> Response<Body> {
    let core = &ctx.core;
    // `/api/v1/namespaces/<name>/status` is the Namespace's own subresource, not a namespaced
    // resource called `status`.
    let namespace_subresource =
        group.is_empty() && rest.len() == 3 && (rest[2] == "status" || rest[2] == "finalize");
    let (ns, rest): (Option<String>, &[String]) = if rest.first().map(String::as_str)
        == Some("namespaces")
        && rest.len() >= 3
        && !namespace_subresource
    {
        (Some(rest[1].clone()), &rest[2..])
    } else {
        (None, rest)
    };
    let plural = rest[0].as_str();
    let name = rest.get(1).cloned();
    let sub = rest.get(2).cloned();
    if rest.len() > 3 {
        return error_response(&ApiError::no_route(""));
    }
    let Some(info) = core.resolve(group, version, plural) else {
        return error_response(&ApiError::no_route(""));
    };
    if ns.is_some() && !info.namespaced {
        return error_response(&ApiError::no_route(""));
    }
    let scalable = info.group == "apps"
        && matches!(
            info.plural.as_str(),
            "deployments" | "statefulsets" | "replicasets"
        );
    if sub.as_deref() == Some("scale")
        && scalable
        && let Some(name) = &name
    {
        let ns_str = ns.clone().unwrap_or_default();
        return scale_request(ctx, req, &info, &ns_str, name).await;
    }
    if sub.as_deref() == Some("log")
        && info.group.is_empty()
        && info.plural == "pods"
        && let (Some(ns), Some(name)) = (&ns, &name)
    {
        if req.method() != Method::GET {
            return error_response(&ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                req.method()
            )));
        }
        let q = parse_query(req.uri().query());
        return crate::podlogs::pod_log(core, ns, name, &q).await;
    }
    if let Some(s) = &sub
        && !(s == "status" && info.status)
    {
        return error_response(&ApiError::no_route(&format!(
            "the sandbox does not serve the {}/{s} subresource",
            info.plural
        )));
    }
    let q = parse_query(req.uri().query());
    let as_ = accept_as(&req);
    let method = req.method().clone();
    let ns_str = ns.clone().unwrap_or_default();
    if info.namespaced && name.is_some() && ns.is_none() {
        return error_response(&ApiError::no_route(""));
    }
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    match (method, name) {
        (Method::GET, Some(name)) => {
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                let mut q2 = q.clone();
                let fs = q.get("fieldSelector").cloned().unwrap_or_default();
                let extra = format!("metadata.name={name}");
                q2.insert(
                    "fieldSelector".into(),
                    if fs.is_empty() {
                        extra
                    } else {
                        format!("{fs},{extra}")
                    },
                );
                return watch(ctx, &info, ns, &q2, as_);
            }
            match core.get(&info, &ns_str, &name) {
                Ok(o) => json_response(200, &render_one(&info, as_, &q, o), &[]),
                Err(e) => error_response(&e),
            }
        }
        (Method::GET, None) => {
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                watch(ctx, &info, ns, &q, as_)
            } else {
                list(ctx, &info, ns.as_deref(), &q, as_)
            }
        }
        (Method::POST, None) => {
            let opts = match write_opts(&q) {
                Ok(o) => o,
                Err(e) => return error_response(&e),
            };
            let body = match read_body(req)
                .await
                .and_then(|b| decode_object(&b, &content_type))
            {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            if !info.namespaced && ns.is_some() {
                return error_response(&ApiError::no_route(""));
            }
            let ns_eff = if info.namespaced {
                match ns {
                    Some(n) => n,
                    None => return error_response(&ApiError::no_route("")),
                }
            } else {
                String::new()
            };
            outcome_response(
                &info,
                as_,
                &q,
                core.create(&info, &ns_eff, body, &opts).await,
            )
        }
        (Method::PUT, Some(name)) => {
            let opts = match write_opts(&q) {
                Ok(o) => o,
                Err(e) => return error_response(&e),
            };
            let body = match read_body(req)
                .await
                .and_then(|b| decode_object(&b, &content_type))
            {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            outcome_response(
                &info,
                as_,
                &q,
                core.update(&info, &ns_str, &name, sub.as_deref(), body, &opts)
                    .await,
            )
        }
        (Method::PATCH, Some(name)) => {
            let opts = match write_opts(&q) {
                Ok(o) => o,
                Err(e) => return error_response(&e),
            };
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            outcome_response(
                &info,
                as_,
                &q,
                core.patch(
                    &info,
                    &ns_str,
                    &name,
                    sub.as_deref(),
                    &content_type,
                    &body,
                    &opts,
                )
                .await,
            )
        }
        (Method::DELETE, Some(name)) => {
            if sub.is_some() {
                return error_response(&ApiError::method_not_allowed(
                    "DELETE is not supported on subresources",
                ));
            }
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            let opts = match delete_opts(&q, &body) {
                Ok(o) => o,
                Err(e) => return error_response(&e),
            };
            let mut resp = outcome_response(
                &info,
                As::Plain,
                &q,
                core.delete(&info, &ns_str, &name, &opts).await,
            );
            resp.extensions_mut().insert(crate::audit::DeleteDetails {
                uid: opts.uid.clone(),
                resource_version: opts.resource_version.clone(),
                grace_period_seconds: opts.grace,
            });
            resp
        }
        (Method::DELETE, None) => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            let opts = match delete_opts(&q, &body) {
                Ok(o) => o,
                Err(e) => return error_response(&e),
            };
            delete_collection(ctx, &info, ns.as_deref(), &q, &opts).await
        }
        (m, _) => error_response(&ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m})"
        ))),
    }
}

fn scale_of(o: &Value) -> Value {
    let mut meta = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = o.get("metadata").and_then(|m| m.get(k)) {
            meta.insert(k.into(), v.clone());
        }
    }
    let selector = o
        .get("spec")
        .and_then(|s| s.get("selector"))
        .and_then(|s| crate::selector::from_label_selector_object(Some(s)).ok())
        .map(|s| crate::selector::to_string(&s))
        .unwrap_or_default();
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
        "spec": {"replicas": o.get("spec").and_then(|s| s.get("replicas")).cloned().unwrap_or(json!(0))},
        "status": {"replicas": o.get("status").and_then(|s| s.get("replicas")).cloned().unwrap_or(json!(0)), "selector": selector}})
}

/// The `scale` subresource of Deployments, StatefulSets and ReplicaSets (`kubectl scale`).
async fn scale_request(
    ctx: &Arc<Ctx>,
    req: Request<Incoming>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
) -> Response<Body> {
    let core = &ctx.core;
    let method = req.method().clone();
    let q = parse_query(req.uri().query());
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let current = match core.get(info, ns, name) {
        Ok(o) => o,
        Err(e) => return error_response(&e),
    };
    if method == Method::GET {
        return json_response(200, &scale_of(&current), &[]);
    }
    if method != Method::PUT && method != Method::PATCH {
        return error_response(&ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        )));
    }
    let opts = match write_opts(&q) {
        Ok(o) => o,
        Err(e) => return error_response(&e),
    };
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let mut scale = scale_of(&current);
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "error decoding the request body: {e}"
            )));
        }
    };
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    match (method, ct) {
        (Method::PUT, _) => scale = patch,
        (_, "application/json-patch+json") => {
            if let Err(e) = crate::patch::json_patch(&mut scale, &patch) {
                return error_response(&ApiError::custom(422, "Invalid", e));
            }
        }
        (_, "application/merge-patch+json") | (_, "application/strategic-merge-patch+json") => {
            crate::patch::merge_patch(&mut scale, &patch)
        }
        (_, other) => {
            return error_response(&ApiError::unsupported_media(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other})"
            )));
        }
    }
    let Some(replicas) = scale
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
    else {
        return error_response(&ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[("spec.replicas".into(), "Required value".into())],
        ));
    };
    if replicas < 0 {
        return error_response(&ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[(
                "spec.replicas".into(),
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    let mut next = current.clone();
    next["spec"]["replicas"] = json!(replicas);
    let rv = meta_str(&scale, "resourceVersion")
        .unwrap_or_default()
        .to_string();
    crate::util::meta_mut(&mut next).insert("resourceVersion".into(), json!(rv));
    match core.update(info, ns, name, None, next, &opts).await {
        Ok(o) => json_response(200, &scale_of(&o.object), &o.warnings),
        Err(e) => error_response(&e),
    }
}

fn decode_object(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    let v: Value = match ct {
        "application/yaml" => serde_saphyr::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        "application/vnd.kubernetes.protobuf" => {
            crate::protobuf::decode(body).map_err(ApiError::unsupported_media)?
        }
        "application/cbor" => {
            return Err(ApiError::unsupported_media(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {ct})"
            )));
        }
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))?,
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(v)
}

fn delete_opts(q: &HashMap<String, String>, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let b: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let pre = b.get("preconditions").cloned().unwrap_or(json!({}));
    let grace = match q.get("gracePeriodSeconds") {
        Some(g) => Some(
            g.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}")))?,
        ),
        None => b.get("gracePeriodSeconds").and_then(Value::as_i64),
    };
    let propagation = q
        .get("propagationPolicy")
        .cloned()
        .or_else(|| {
            b.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(
            || match b.get("orphanDependents").and_then(Value::as_bool) {
                Some(true) => Some("Orphan".to_string()),
                _ => None,
            },
        );
    if let Some(p) = &propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::invalid(
            "",
            "DeleteOptions",
            "",
            &[(
                "propagationPolicy".into(),
                format!(
                    "Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                ),
            )],
        ));
    }
    let dry = q.get("dryRun").map(String::as_str) == Some("All")
        || b.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"));
    Ok(DeleteOpts {
        uid: pre.get("uid").and_then(Value::as_str).map(str::to_string),
        resource_version: pre
            .get("resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        grace,
        propagation,
        dry_run: dry,
    })
}

struct Filter {
    labels: LabelSelector,
    fields: Vec<FieldTerm>,
}

impl Filter {
    fn from_query(info: &ResourceInfo, q: &HashMap<String, String>) -> Result<Filter, ApiError> {
        let labels = parse_label_selector(
            q.get("labelSelector")
                .map(String::as_str)
                .unwrap_or_default(),
        )
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = parse_field_selector_in(
            q.get("fieldSelector")
                .map(String::as_str)
                .unwrap_or_default(),
            &info.group,
            &info.plural,
        )
        .map_err(ApiError::bad_request)?;
        Ok(Filter { labels, fields })
    }

    fn matches(&self, o: &Value) -> bool {
        self.labels.matches(&labels_of(o)) && fields_match(&self.fields, o)
    }
}

fn storage_matches(info: &ResourceInfo, ns: Option<&str>, k: &ObjKey) -> bool {
    k.group == crate::convert::storage_group(info)
        && k.resource == info.plural
        && ns.is_none_or(|n| k.namespace == n)
}

fn list(
    ctx: &Arc<Ctx>,
    info: &ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    as_: As,
) -> Response<Body> {
    let filter = match Filter::from_query(info, q) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let cont = q.get("continue").filter(|c| !c.is_empty()).cloned();
    let after: Option<(String, String)> = match &cont {
        Some(c) => match crate::util::unhex(c)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once('\n')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            }) {
            Some(p) => Some(p),
            None => return error_response(&ApiError::bad_request("invalid continue token")),
        },
        None => None,
    };
    let (items, rv) = {
        let st = ctx.core.lock();
        let items: Vec<(ObjKey, Value)> = st
            .list(crate::convert::storage_group(info), &info.plural, ns)
            .into_iter()
            .filter(|o| filter.matches(o))
            .map(|o| {
                let k = ObjKey {
                    group: String::new(),
                    resource: String::new(),
                    namespace: meta_str(&o, "namespace").unwrap_or_default().to_string(),
                    name: meta_str(&o, "name").unwrap_or_default().to_string(),
                };
                (k, to_external(info, &o))
            })
            .collect();
        (items, st.rv)
    };
    let mut items: Vec<(ObjKey, Value)> = match &after {
        Some((ans, aname)) => items
            .into_iter()
            .filter(|(k, _)| {
                (k.namespace.as_str(), k.name.as_str()) > (ans.as_str(), aname.as_str())
            })
            .collect(),
        None => items,
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(l) = limit
        && items.len() > l
    {
        let remaining = items.len() - l;
        items.truncate(l);
        if let Some((k, _)) = items.last() {
            meta["continue"] = json!(crate::util::hex(
                format!("{}\n{}", k.namespace, k.name).as_bytes()
            ));
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    let objs: Vec<Value> = items.into_iter().map(|(_, o)| o).collect();
    let body = match as_ {
        As::Table => table(info, &objs, include_of(q), meta),
        As::Metadata => {
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "items": objs.iter().map(partial).collect::<Vec<_>>()})
        }
        As::Plain => {
            json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": meta, "items": objs})
        }
    };
    json_response(200, &body, &[])
}

async fn delete_collection(
    ctx: &Arc<Ctx>,
    info: &ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    opts: &DeleteOpts,
) -> Response<Body> {
    let filter = match Filter::from_query(info, q) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let targets: Vec<(String, String)> = {
        let st = ctx.core.lock();
        st.list(crate::convert::storage_group(info), &info.plural, ns)
            .into_iter()
            .filter(|o| filter.matches(o))
            .map(|o| {
                (
                    meta_str(&o, "namespace").unwrap_or_default().to_string(),
                    meta_str(&o, "name").unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let mut items = Vec::new();
    for (n, name) in targets {
        match ctx.core.delete(info, &n, &name, opts).await {
            Ok(o) => items.push(o.object),
            Err(e) if e.code == 404 => {}
            Err(e) => return error_response(&e),
        }
    }
    let rv = ctx.core.lock().rv;
    json_response(
        200,
        &json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        &[],
    )
}

fn watch_line(
    info: &ResourceInfo,
    as_: As,
    q: &HashMap<String, String>,
    kind: &str,
    obj: Value,
) -> Bytes {
    let object = render_one(info, as_, q, obj);
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn expired_line(rv: u64, current: u64) -> Bytes {
    let e = ApiError::expired(format!("too old resource version: {rv} ({current})"));
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn watch(
    ctx: &Arc<Ctx>,
    info: &ResourceInfo,
    ns: Option<String>,
    q: &HashMap<String, String>,
    as_: As,
) -> Response<Body> {
    let filter = match Filter::from_query(info, q) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let rv_param = q.get("resourceVersion").cloned().unwrap_or_default();
    let send_initial = q.get("sendInitialEvents").map(|s| s == "true");
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0);
    let requested_rv: Option<u64> = if rv_param.is_empty() || rv_param == "0" {
        None
    } else {
        match rv_param.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                return error_response(&ApiError::bad_request(format!(
                    "invalid resource version: {rv_param}"
                )));
            }
        }
    };
    let initial = send_initial.unwrap_or(requested_rv.is_none());
    if send_initial == Some(true)
        && q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan")
    {
        return error_response(&ApiError::invalid("meta.k8s.io", "ListOptions", "", &[("resourceVersionMatch".into(), "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into())]));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let core = ctx.core.clone();
    let info = info.clone();
    let q = q.clone();
    tokio::spawn(async move {
        struct Open(prometheus_client::metrics::gauge::Gauge);
        impl Drop for Open {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        core.metrics.watches.inc();
        let _open = Open(core.metrics.watches.clone());
        let mut changed = core.changed.subscribe();
        let mut closer = core.closer.subscribe();
        closer.mark_unchanged();
        let deadline =
            timeout.map(|t| tokio::time::Instant::now() + std::time::Duration::from_secs(t));
        let (mut last, first): (u64, Vec<Value>) = {
            let st = core.lock();
            if initial {
                let objs = st
                    .list(
                        crate::convert::storage_group(&info),
                        &info.plural,
                        ns.as_deref(),
                    )
                    .into_iter()
                    .filter(|o| filter.matches(o))
                    .map(|o| to_external(&info, &o))
                    .collect();
                (st.rv, objs)
            } else {
                (requested_rv.unwrap_or(st.rv), Vec::new())
            }
        };
        for o in first {
            if tx
                .send(watch_line(&info, as_, &q, "ADDED", o))
                .await
                .is_err()
            {
                return;
            }
        }
        if initial && bookmarks && send_initial == Some(true) {
            let bm = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": last.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
            if tx
                .send(watch_line(&info, As::Plain, &q, "BOOKMARK", bm))
                .await
                .is_err()
            {
                return;
            }
        }
        loop {
            let batch = {
                let st = core.lock();
                match st.since(last) {
                    Since::Expired => Err(st.rv),
                    Since::Changes(c) => Ok(c),
                }
            };
            let changes = match batch {
                Ok(c) => c,
                Err(current) => {
                    let _ = tx.send(expired_line(last, current)).await;
                    return;
                }
            };
            for c in changes {
                last = c.rv;
                if !storage_matches(&info, ns.as_deref(), &c.key) {
                    continue;
                }
                let now_match = filter.matches(&c.object);
                let kind = match c.kind {
                    EventType::Modified => {
                        let before = c.prev.as_ref().is_some_and(|p| filter.matches(p));
                        match (before, now_match) {
                            (true, true) => "MODIFIED",
                            (false, true) => "ADDED",
                            (true, false) => "DELETED",
                            (false, false) => continue,
                        }
                    }
                    other if now_match => other.as_str(),
                    _ => continue,
                };
                if tx
                    .send(watch_line(
                        &info,
                        as_,
                        &q,
                        kind,
                        to_external(&info, &c.object),
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = closer.changed() => return,
                _ = tx.closed() => return,
                _ = core.shutdown.cancelled() => return,
                _ = sleep => {
                    if bookmarks {
                        let bm = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": last.to_string()}});
                        let _ = tx.send(watch_line(&info, As::Plain, &q, "BOOKMARK", bm)).await;
                    }
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
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
