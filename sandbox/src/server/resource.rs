//! Requests on a resource: get, create, update, patch and delete by name, and the `scale`
//! subresource; the options and bodies of writes.

use super::list::{delete_collection, list};
use super::watch::watch;
use super::{
    As, Ctx, accept_as, error_response, json_response, parse_query, read_body, render_one,
};
use crate::api::{DeleteOpts, FieldValidation, Outcome, WriteOpts};
use crate::error::ApiError;
use crate::fault::WatchFaults;
use crate::resources::ResourceInfo;
use crate::util::meta_str;
use axum::body::Body;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) fn write_opts<B>(
    q: &HashMap<String, String>,
    req: &Request<B>,
) -> Result<WriteOpts, ApiError> {
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
        force: q.get("force").is_some_and(|f| f == "true"),
        user_agent: req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        subresource: None,
    })
}

pub(super) fn outcome_response(
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

pub(super) async fn resource_request(
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
    let watch_faults = req.extensions().get::<WatchFaults>().copied();
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
                return watch(ctx, &info, ns, &q2, as_, watch_faults);
            }
            match core.get(&info, &ns_str, &name) {
                Ok(o) => json_response(200, &render_one(&info, as_, &q, o), &[]),
                Err(e) => error_response(&e),
            }
        }
        (Method::GET, None) => {
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                watch(ctx, &info, ns, &q, as_, watch_faults)
            } else {
                list(ctx, &info, ns.as_deref(), &q, as_)
            }
        }
        (Method::POST, None) => {
            let opts = match write_opts(&q, &req) {
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
            let opts = match write_opts(&q, &req) {
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
            let opts = match write_opts(&q, &req) {
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

pub(super) fn scale_of(o: &Value) -> Value {
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
pub(super) async fn scale_request(
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
    let opts = match write_opts(&q, &req) {
        Ok(mut o) => {
            o.subresource = Some("scale".into());
            o
        }
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

pub(super) fn decode_object(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    let v: Value = match ct {
        "application/yaml" => serde_saphyr::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        "application/vnd.kubernetes.protobuf" => {
            crate::protobuf::decode(body).map_err(|e| match e {
                crate::protobuf::DecodeError::Malformed(m) => ApiError::bad_request(m),
                crate::protobuf::DecodeError::Unsupported(m) => ApiError::unsupported_media(m),
            })?
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

pub(super) fn delete_opts(
    q: &HashMap<String, String>,
    body: &[u8],
) -> Result<DeleteOpts, ApiError> {
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
