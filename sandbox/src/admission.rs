//! Validating admission webhooks: `ValidatingWebhookConfiguration` objects are honoured for
//! CREATE, UPDATE (including patches, apply and, when a rule names it, the `status`
//! subresource) and DELETE, by POSTing an `admission.k8s.io/v1` AdmissionReview, when the rules,
//! selectors and `matchConditions` (CEL, see [`crate::cel`]) of a webhook select the request.

use crate::api::Core;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::selector::from_label_selector_object;
use crate::util::labels_of;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether one rule of a webhook matches the request.
pub fn rule_matches(rule: &Value, info: &ResourceInfo, op: &str, sub: Option<&str>) -> bool {
    let any = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
    let ops = strs(rule.get("operations"));
    if !any(&ops, op) {
        return false;
    }
    if !any(&strs(rule.get("apiGroups")), &info.group)
        || !any(&strs(rule.get("apiVersions")), &info.version)
    {
        return false;
    }
    let resources = strs(rule.get("resources"));
    let res_ok = match sub {
        None => resources.iter().any(|r| r == "*" || *r == info.plural),
        Some(s) => resources.iter().any(|r| {
            r == "*/*"
                || *r == format!("{}/{s}", info.plural)
                || *r == format!("{}/*", info.plural)
                || *r == format!("*/{s}")
        }),
    };
    if !res_ok {
        return false;
    }
    match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Namespaced" => info.namespaced,
        "Cluster" => !info.namespaced,
        _ => true,
    }
}

/// The most `matchConditions` a webhook may have.
const MAX_MATCH_CONDITIONS: usize = 64;

/// Validates the `matchConditions` of webhook `i` of a configuration as the API server does at
/// create and update: at most 64, each with a unique qualified `name` and an `expression` that
/// compiles (see [`crate::cel`]) to a `bool`. Returns `(field, message)` causes.
pub fn validate_match_conditions(hook: &Value, i: usize) -> Vec<(String, String)> {
    let path = format!("webhooks[{i}].matchConditions");
    let conditions = match hook.get("matchConditions") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return vec![(
                path,
                format!("Invalid value: {other}: must be a list of {{name, expression}}"),
            )];
        }
    };
    let mut errs = Vec::new();
    if conditions.len() > MAX_MATCH_CONDITIONS {
        errs.push((
            path.clone(),
            format!(
                "Too many: {}: must have at most {MAX_MATCH_CONDITIONS} items",
                conditions.len()
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (j, c) in conditions.iter().enumerate() {
        let at = format!("{path}[{j}]");
        let expression = c
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim();
        if expression.is_empty() {
            errs.push((format!("{at}.expression"), "Required value".into()));
        } else if let Err(e) = crate::cel::compile(expression) {
            errs.push((
                format!("{at}.expression"),
                format!("Invalid value: {}: {e}", Value::from(expression)),
            ));
        }
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            errs.push((format!("{at}.name"), "Required value".into()));
            continue;
        }
        for why in crate::util::qualified_name_errors(name) {
            errs.push((
                format!("{at}.name"),
                format!("Invalid value: {}: {why}", Value::from(name)),
            ));
        }
        if !seen.insert(name) {
            errs.push((
                format!("{at}.name"),
                format!("Duplicate value: {}", Value::from(name)),
            ));
        }
    }
    errs
}

/// What the `matchConditions` of a webhook decide about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// Every condition is true (or there are none): call the webhook.
    Call,
    /// This condition is false: skip the webhook, whatever the others say.
    Skip(String),
    /// No condition is false but some could not be evaluated: the webhook's `failurePolicy`
    /// decides. The message is the API server's (`expression '...' resulted in error: ...`).
    Error(String),
}

/// Evaluates the `matchConditions` of `hook` as the API server does: a false condition skips
/// the webhook even when another fails to evaluate; otherwise the errors are aggregated.
pub fn match_conditions(hook: &Value, vars: &crate::cel::Activation<'_>) -> Matched {
    let mut errors = Vec::new();
    for c in hook
        .get("matchConditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let expression = c
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim();
        // Validated when the configuration was written; a stored one that no longer compiles
        // is an evaluation error.
        let result = crate::cel::compile(expression)
            .map_err(|e| e.to_string())
            .and_then(|p| p.evaluate(vars).map_err(|e| e.to_string()));
        match result {
            Ok(true) => {}
            Ok(false) => return Matched::Skip(name.to_string()),
            Err(why) => errors.push(format!(
                "expression '{expression}' resulted in error: {why}"
            )),
        }
    }
    match errors.len() {
        0 => Matched::Call,
        1 => Matched::Error(errors.remove(0)),
        _ => Matched::Error(format!("[{}]", errors.join(", "))),
    }
}

fn user_info() -> Value {
    json!({"username": "sandbox-admin", "groups": ["system:masters", "system:authenticated"]})
}

fn operation_options(op: &str) -> Value {
    match op {
        "CREATE" => json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
        "UPDATE" => json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}),
        _ => json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}),
    }
}

/// The CEL variable `request`: the AdmissionRequest without `uid`, `object` and `oldObject`,
/// the fields Go omits when empty (`name`, `namespace`, `subResource`) absent.
fn cel_request(
    info: &ResourceInfo,
    op: &str,
    sub: Option<&str>,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Value {
    let kind = json!({"group": info.group, "version": info.version, "kind": info.kind});
    let resource = json!({"group": info.group, "version": info.version, "resource": info.plural});
    let mut request = json!({
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "operation": op,
        "userInfo": user_info(),
        "dryRun": dry_run,
        "options": operation_options(op),
    });
    if !name.is_empty() {
        request["name"] = json!(name);
    }
    if info.namespaced && !ns.is_empty() {
        request["namespace"] = json!(ns);
    }
    if let Some(s) = sub {
        request["subResource"] = json!(s);
        request["requestSubResource"] = json!(s);
    }
    request
}

struct Call {
    name: String,
    /// The URL as the API server names it in errors: for a `service` reference
    /// `https://<name>.<namespace>.svc:<port><path>?timeout=<n>s`, whatever address it resolves to.
    url: String,
    /// Where the sandbox sends the review: `url`, or for a `service` reference the local address
    /// it is mapped to.
    target: String,
    ca: Vec<u8>,
    timeout: Duration,
    fail_closed: bool,
    side_effects: String,
}

fn failed(name: &str, url: &str, why: &str) -> ApiError {
    ApiError::internal(format!(
        "failed calling webhook \"{name}\": failed to call webhook: Post \"{url}\": {why}"
    ))
}

/// A Go `time.RFC3339` rendering of a certificate or validation time.
fn rfc3339(t: rustls::pki_types::UnixTime) -> String {
    jiff::Timestamp::from_second(t.as_secs().min(i64::MAX as u64) as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// What Go's `crypto/x509` says about a certificate rustls refused, as the API server's webhook
/// client (Go's `crypto/tls`) reports it: `tls: failed to verify certificate: x509: ...`.
fn go_certificate_error(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let why = match e {
        C::UnknownIssuer => "x509: certificate signed by unknown authority".to_string(),
        C::ExpiredContext { time, not_after } => format!(
            "x509: certificate has expired or is not yet valid: current time {} is after {}",
            rfc3339(*time),
            rfc3339(*not_after)
        ),
        C::NotValidYetContext { time, not_before } => format!(
            "x509: certificate has expired or is not yet valid: current time {} is before {}",
            rfc3339(*time),
            rfc3339(*not_before)
        ),
        C::Expired | C::NotValidYet => {
            "x509: certificate has expired or is not yet valid".to_string()
        }
        C::NotValidForNameContext {
            expected,
            presented,
        } => {
            let host = match expected {
                rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
                rustls::pki_types::ServerName::IpAddress(ip) => {
                    std::net::IpAddr::from(*ip).to_string()
                }
                other => format!("{other:?}"),
            };
            // webpki presents `DnsName("x")` and `IpAddress(1.2.3.4)`.
            let of = |prefix: &str| -> Vec<String> {
                presented
                    .iter()
                    .filter_map(|p| p.strip_prefix(prefix)?.strip_suffix(')'))
                    .map(|n| n.trim_matches('"').to_string())
                    .collect()
            };
            let (ips, dns) = (of("IpAddress("), of("DnsName("));
            if host.parse::<std::net::IpAddr>().is_ok() {
                if ips.is_empty() {
                    format!(
                        "x509: cannot validate certificate for {host} because it doesn't contain any IP SANs"
                    )
                } else {
                    format!(
                        "x509: certificate is valid for {}, not {host}",
                        ips.join(", ")
                    )
                }
            } else if dns.is_empty() {
                format!("x509: certificate is not valid for any names, but wanted to match {host}")
            } else {
                format!(
                    "x509: certificate is valid for {}, not {host}",
                    dns.join(", ")
                )
            }
        }
        other => format!("x509: {other}"),
    };
    format!("tls: failed to verify certificate: {why}")
}

fn error_chain(e: &(dyn std::error::Error + 'static), addr: &str) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut parts = Vec::new();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return format!("dial tcp {addr}: connect: connection refused");
            }
            // hyper-rustls reports a refused certificate as (nested) `io::Error`s wrapping
            // rustls's.
            let mut inner = io.get_ref();
            while let Some(e) = inner {
                if let Some(rustls::Error::InvalidCertificate(c)) =
                    e.downcast_ref::<rustls::Error>()
                {
                    return go_certificate_error(c);
                }
                inner = e
                    .downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref);
            }
        }
        if let Some(rustls::Error::InvalidCertificate(c)) = err.downcast_ref::<rustls::Error>() {
            return go_certificate_error(c);
        }
        let s = err.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

async fn post(call: &Call, body: Vec<u8>) -> Result<Value, String> {
    let uri: http::Uri = call
        .target
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    let addr = format!(
        "{}:{}",
        uri.host().unwrap_or_default(),
        uri.port_u16().unwrap_or(443)
    );
    let mut roots = rustls::RootCertStore::empty();
    {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        for c in CertificateDer::pem_slice_iter(&call.ca).flatten() {
            let _ = roots.add(c);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Full<bytes_alias::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);
    let req = http::Request::post(uri)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Full::new(bytes_alias::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| error_chain(&e, &addr))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| error_chain(&e, &addr))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "received invalid webhook response: expected status 200, got {}",
                status.as_u16()
            ));
        }
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| format!("received invalid webhook response: {e}"))
    };
    match tokio::time::timeout(call.timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err("context deadline exceeded".to_string()),
    }
}

mod bytes_alias {
    pub use axum::body::Bytes;
}

/// The operation of a write, as an `AdmissionReview` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A create (POST, or a server-side apply that creates).
    Create,
    /// An update (PUT, PATCH, apply, and the `status` subresource).
    Update,
    /// A delete of one object.
    Delete,
}

impl Operation {
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// A write for the validating webhooks to review.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionRequest<'a> {
    /// The resource as requested (the version of the request).
    pub info: &'a ResourceInfo,
    /// What the write does.
    pub operation: Operation,
    /// The subresource written (`status`), if any.
    pub subresource: Option<&'a str>,
    /// The object as it would be stored; for a delete, the object deleted.
    pub object: &'a Value,
    /// The object before the write (updates and deletes).
    pub old_object: Option<&'a Value>,
    /// The namespace of the request (empty for cluster-scoped resources).
    pub namespace: &'a str,
    /// The object's name.
    pub name: &'a str,
    /// `dryRun=All`: webhooks with side effects refuse it.
    pub dry_run: bool,
}

/// A write the webhooks let through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admitted {
    /// The webhooks' warnings, for `Warning:` headers.
    pub warnings: Vec<String>,
}

/// Runs the matching validating webhooks; returns their warnings or the denial.
pub async fn admit(core: &Arc<Core>, request: &AdmissionRequest<'_>) -> Result<Admitted, ApiError> {
    let AdmissionRequest {
        info,
        operation,
        subresource: sub,
        object: obj,
        old_object: old,
        namespace: ns,
        name,
        dry_run,
    } = *request;
    let op = operation.as_str();
    if info.group == "admissionregistration.k8s.io" {
        return Ok(Admitted::default());
    }
    let (configs, ns_labels) = {
        let st = core.lock();
        let configs: Vec<Value> = st
            .list(
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                None,
            )
            .iter()
            .map(|o| (**o).clone())
            .collect();
        let ns_labels = if info.namespaced {
            st.objects
                .get(&crate::store::ObjKey {
                    group: String::new(),
                    resource: "namespaces".into(),
                    namespace: String::new(),
                    name: ns.into(),
                })
                .map(|n| labels_of(n))
                .unwrap_or_default()
        } else if info.plural == "namespaces" && info.group.is_empty() {
            labels_of(obj)
        } else {
            Default::default()
        };
        (configs, ns_labels)
    };
    let cel_request = cel_request(info, op, sub, ns, name, dry_run);
    let mut calls = Vec::new();
    for cfg in &configs {
        for wh in cfg
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rules = wh
                .get("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !rules.iter().any(|r| rule_matches(r, info, op, sub)) {
                continue;
            }
            if (info.namespaced || info.plural == "namespaces")
                && let Ok(sel) = from_label_selector_object(wh.get("namespaceSelector"))
                && !sel.matches(&ns_labels)
            {
                continue;
            }
            if let Ok(sel) = from_label_selector_object(wh.get("objectSelector"))
                && !sel.0.is_empty()
                && !sel.matches(&labels_of(obj))
                && !old.is_some_and(|o| sel.matches(&labels_of(o)))
            {
                continue;
            }
            let wname = wh
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let fail_closed = wh
                .get("failurePolicy")
                .and_then(Value::as_str)
                .unwrap_or("Fail")
                != "Ignore";
            let vars = crate::cel::Activation {
                object: if op == "DELETE" { &Value::Null } else { obj },
                old_object: old.unwrap_or(&Value::Null),
                request: &cel_request,
            };
            match match_conditions(wh, &vars) {
                Matched::Call => {}
                Matched::Skip(condition) => {
                    tracing::debug!(webhook = %wname, %condition, "match condition false: webhook not called");
                    continue;
                }
                Matched::Error(why) => {
                    tracing::warn!(webhook = %wname, error = %why, "failed evaluating match conditions");
                    if fail_closed {
                        return Err(ApiError::forbidden_object(
                            &info.group,
                            &info.plural,
                            name,
                            &why,
                        ));
                    }
                    continue;
                }
            }
            let timeout = wh
                .get("timeoutSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(10)
                .clamp(1, 30);
            let cc = wh.get("clientConfig").cloned().unwrap_or(json!({}));
            let ca = cc
                .get("caBundle")
                .and_then(Value::as_str)
                .and_then(crate::util::base64_decode)
                .unwrap_or_default();
            let (base, shown) = if let Some(u) = cc.get("url").and_then(Value::as_str) {
                (u.to_string(), u.to_string())
            } else if let Some(svc) = cc.get("service") {
                let sns = svc
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let sname = svc
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let port = svc.get("port").and_then(Value::as_u64).unwrap_or(443) as u16;
                let path = svc
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or("/")
                    .to_string();
                let mapped = core
                    .services
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&(sns.clone(), sname.clone(), port))
                    .copied();
                // The API server's client is made for `https://<name>.<namespace>.svc:<port>` and
                // dials the address the Service resolves to.
                let shown = format!("https://{sname}.{sns}.svc:{port}{path}");
                match mapped {
                    Some(addr) => (format!("https://{addr}{path}"), shown),
                    None => {
                        let url =
                            format!("https://{sname}.{sns}.svc:{port}{path}?timeout={timeout}s");
                        let err = failed(
                            &wname,
                            &url,
                            &format!(
                                "service \"{sns}/{sname}\" port {port} is not mapped to a local address in the sandbox"
                            ),
                        );
                        if fail_closed {
                            return Err(err);
                        }
                        continue;
                    }
                }
            } else {
                continue;
            };
            let with_timeout = |url: &str| {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}timeout={timeout}s")
            };
            calls.push(Call {
                name: wname,
                url: with_timeout(&shown),
                target: with_timeout(&base),
                ca,
                timeout: Duration::from_secs(timeout),
                fail_closed,
                side_effects: wh
                    .get("sideEffects")
                    .and_then(Value::as_str)
                    .unwrap_or("Unknown")
                    .to_string(),
            });
        }
    }
    let mut warnings = Vec::new();
    for call in calls {
        if dry_run && !matches!(call.side_effects.as_str(), "None" | "NoneOnDryRun") {
            return Err(ApiError::bad_request(format!(
                "admission webhook \"{}\" does not support dry run",
                call.name
            )));
        }
        let uid = crate::util::new_uid();
        let kind = json!({"group": info.group, "version": info.version, "kind": info.kind});
        let resource =
            json!({"group": info.group, "version": info.version, "resource": info.plural});
        let mut request = json!({
            "uid": uid,
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": name,
            "operation": op,
            "userInfo": user_info(),
            "object": if op == "DELETE" { Value::Null } else { obj.clone() },
            "oldObject": old.cloned().unwrap_or(Value::Null),
            "dryRun": dry_run,
            "options": operation_options(op),
        });
        if info.namespaced {
            request["namespace"] = json!(ns);
        }
        if let Some(s) = sub {
            request["subResource"] = json!(s);
            request["requestSubResource"] = json!(s);
        }
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
        let body = serde_json::to_vec(&review).unwrap_or_default();
        let resp = match post(&call, body).await {
            Ok(r) => r,
            Err(why) => {
                core.metrics.webhook(&call.name, "error");
                tracing::warn!(webhook = %call.name, error = %why, "calling admission webhook failed");
                if call.fail_closed {
                    return Err(failed(&call.name, &call.url, &why));
                }
                continue;
            }
        };
        let Some(r) = resp.get("response") else {
            let err = failed(
                &call.name,
                &call.url,
                "received invalid webhook response: response is nil",
            );
            if call.fail_closed {
                return Err(err);
            }
            continue;
        };
        if r.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
            let err = ApiError::internal(format!(
                "failed calling webhook \"{}\": expected response.uid=\"{uid}\", got \"{}\"",
                call.name,
                r.get("uid").and_then(Value::as_str).unwrap_or_default()
            ));
            if call.fail_closed {
                return Err(err);
            }
            continue;
        }
        warnings.extend(strs(r.get("warnings")));
        let allowed = r.get("allowed").and_then(Value::as_bool).unwrap_or(false);
        core.metrics
            .webhook(&call.name, if allowed { "allowed" } else { "denied" });
        if !allowed {
            let status = r.get("status").cloned().unwrap_or(json!({}));
            let msg = status
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let reason = status
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let denied = format!("admission webhook \"{}\" denied the request", call.name);
            let message = if !msg.is_empty() {
                format!("{denied}: {msg}")
            } else if !reason.is_empty() {
                format!("{denied}: {reason}")
            } else {
                format!("{denied} without explanation")
            };
            let code = status
                .get("code")
                .and_then(Value::as_u64)
                .filter(|c| *c >= 400)
                .unwrap_or(403) as u16;
            let reason = if reason.is_empty() {
                match code {
                    403 => "Forbidden",
                    422 => "Invalid",
                    409 => "Conflict",
                    404 => "NotFound",
                    _ => "BadRequest",
                }
            } else {
                reason
            };
            let mut e = ApiError::custom(code, reason, message);
            e.details = status.get("details").cloned();
            return Err(e);
        }
    }
    Ok(Admitted { warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_are_worded_as_go_words_them() {
        use rustls::CertificateError as C;
        use rustls::pki_types::{ServerName, UnixTime};
        assert_eq!(
            go_certificate_error(&C::UnknownIssuer),
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        );
        assert_eq!(
            go_certificate_error(&C::ExpiredContext {
                time: UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000)),
                not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_600_000_000)),
            }),
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2023-11-14T22:13:20Z is after 2020-09-13T12:26:40Z"
        );
        let ip = ServerName::try_from("127.0.0.1").unwrap().to_owned();
        assert_eq!(
            go_certificate_error(&C::NotValidForNameContext {
                expected: ip.clone(),
                presented: vec!["DnsName(\"webhook.svc\")".into()],
            }),
            "tls: failed to verify certificate: x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"
        );
        assert_eq!(
            go_certificate_error(&C::NotValidForNameContext {
                expected: ip,
                presented: vec!["IpAddress(10.0.0.1)".into()],
            }),
            "tls: failed to verify certificate: x509: certificate is valid for 10.0.0.1, not 127.0.0.1"
        );
        let dns = ServerName::try_from("pravega-webhook.pravega-system.svc")
            .unwrap()
            .to_owned();
        assert_eq!(
            go_certificate_error(&C::NotValidForNameContext {
                expected: dns,
                presented: vec!["DnsName(\"a.svc\")".into(), "DnsName(\"b.svc\")".into()],
            }),
            "tls: failed to verify certificate: x509: certificate is valid for a.svc, b.svc, not pravega-webhook.pravega-system.svc"
        );
    }

    fn hook(conditions: Value) -> Value {
        json!({"name": "pravegacluster.pravega.pravega.io", "matchConditions": conditions})
    }

    fn condition(name: &str, expression: &str) -> Value {
        json!({"name": name, "expression": expression})
    }

    #[test]
    fn match_conditions_are_validated_when_the_configuration_is_written() {
        let ok = hook(json!([
            condition(
                "not-an-emergency-pause",
                "!(request.operation == 'UPDATE' && has(object.spec.upgrade) && has(object.spec.upgrade.paused) && object.spec.upgrade.paused == true && object.spec.version == oldObject.spec.version)"
            ),
            condition(
                "example.com/only-updates",
                "  request.operation == 'UPDATE'  "
            ),
        ]));
        assert_eq!(validate_match_conditions(&ok, 0), []);
        assert_eq!(validate_match_conditions(&json!({}), 0), []);

        let errs = validate_match_conditions(&hook(json!([condition("a", "object.spec.x")])), 2);
        assert_eq!(
            errs,
            [(
                "webhooks[2].matchConditions[0].expression".to_string(),
                "Invalid value: \"object.spec.x\": must evaluate to bool".to_string()
            )]
        );
        let errs = validate_match_conditions(&hook(json!([condition("a", " nope ")])), 0);
        assert_eq!(
            errs,
            [(
                "webhooks[0].matchConditions[0].expression".to_string(),
                "Invalid value: \"nope\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope' (in container '')\n | nope\n | ^".to_string()
            )]
        );
        let errs = validate_match_conditions(
            &hook(json!([
                {"expression": "true"},
                condition("-bad-", ""),
                condition("same", "true"),
                condition("same", "true"),
            ])),
            0,
        );
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "webhooks[0].matchConditions[0].name",
                "webhooks[0].matchConditions[1].expression",
                "webhooks[0].matchConditions[1].name",
                "webhooks[0].matchConditions[3].name",
            ]
        );
        assert_eq!(errs[0].1, "Required value");
        assert_eq!(errs[1].1, "Required value");
        assert!(
            errs[2]
                .1
                .starts_with("Invalid value: \"-bad-\": name part must consist of"),
            "{}",
            errs[2].1
        );
        assert_eq!(errs[3].1, "Duplicate value: \"same\"");

        let many: Vec<Value> = (0..65)
            .map(|i| condition(&format!("c{i}"), "true"))
            .collect();
        assert_eq!(
            validate_match_conditions(&hook(Value::Array(many)), 0),
            [(
                "webhooks[0].matchConditions".to_string(),
                "Too many: 65: must have at most 64 items".to_string()
            )]
        );
    }

    #[test]
    fn match_conditions_decide_whether_the_webhook_is_called() {
        let info = crate::resources::builtins()
            .into_iter()
            .find(|r| r.plural == "pods")
            .unwrap();
        let object = json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": {}});
        let request = cel_request(&info, "UPDATE", None, "default", "p", false);
        let vars = crate::cel::Activation {
            object: &object,
            old_object: &object,
            request: &request,
        };
        let decide = |conditions: Value| match_conditions(&hook(conditions), &vars);
        assert_eq!(decide(json!([])), Matched::Call);
        assert_eq!(decide(Value::Null), Matched::Call);
        assert_eq!(
            decide(json!([
                condition("update", "request.operation == 'UPDATE'"),
                condition("web", "object.metadata.labels.app == 'web'"),
                condition(
                    "namespaced",
                    "request.namespace == 'default' && request.kind.kind == 'Pod'"
                ),
            ])),
            Matched::Call
        );
        assert_eq!(
            decide(json!([
                condition("update", "request.operation == 'UPDATE'"),
                condition("create", "request.operation == 'CREATE'"),
            ])),
            Matched::Skip("create".into())
        );
        // A false condition wins over an evaluation error, in any order.
        assert_eq!(
            decide(json!([
                condition("broken", "object.spec.missing == 1"),
                condition("create", "request.operation == 'CREATE'"),
            ])),
            Matched::Skip("create".into())
        );
        // Otherwise the errors are reported as the API server reports them.
        assert_eq!(
            decide(json!([
                condition("update", "request.operation == 'UPDATE'"),
                condition("broken", "object.spec.missing == 1"),
            ])),
            Matched::Error(
                "expression 'object.spec.missing == 1' resulted in error: no such key: missing"
                    .into()
            )
        );
        assert_eq!(
            decide(json!([
                condition("a", "object.a == 1"),
                condition("b", "request.subResource == 'status'"),
            ])),
            Matched::Error(
                "[expression 'object.a == 1' resulted in error: no such key: a, expression 'request.subResource == 'status'' resulted in error: no such key: subResource]"
                    .into()
            )
        );
    }

    #[test]
    fn the_cel_request_omits_what_go_omits() {
        let info = crate::resources::builtins()
            .into_iter()
            .find(|r| r.plural == "namespaces")
            .unwrap();
        let r = cel_request(&info, "CREATE", None, "", "", true);
        assert!(r.get("name").is_none() && r.get("namespace").is_none());
        assert!(r.get("subResource").is_none());
        assert_eq!(r["dryRun"], true);
        assert_eq!(r["kind"]["kind"], "Namespace");
        assert_eq!(r["options"]["kind"], "CreateOptions");
        let pods = crate::resources::builtins()
            .into_iter()
            .find(|r| r.plural == "pods")
            .unwrap();
        let r = cel_request(&pods, "UPDATE", Some("status"), "ns", "p", false);
        assert_eq!(
            (r["name"].as_str(), r["namespace"].as_str()),
            (Some("p"), Some("ns"))
        );
        assert_eq!(r["subResource"], "status");
        assert_eq!(r["requestSubResource"], "status");
    }

    #[test]
    fn rules_match_resources_and_subresources() {
        let info = crate::resources::builtins()
            .into_iter()
            .find(|r| r.plural == "pods")
            .unwrap();
        let rule = json!({"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]});
        assert!(rule_matches(&rule, &info, "CREATE", None));
        assert!(!rule_matches(&rule, &info, "DELETE", None));
        assert!(!rule_matches(&rule, &info, "UPDATE", Some("status")));
        let rule = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["pods/status"], "scope": "Namespaced"});
        assert!(rule_matches(&rule, &info, "UPDATE", Some("status")));
        assert!(!rule_matches(&rule, &info, "UPDATE", None));
    }

    #[test]
    fn rules_match_each_served_version_they_list() {
        let crd = json!({"metadata": {"name": "widgets.demo.pravega.io"},
            "spec": {"group": "demo.pravega.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1beta1", "served": true, "storage": true},
                    {"name": "v1alpha1", "served": true, "storage": false}]}});
        let served = crate::resources::crd_resources(&crd).expect("valid CRD");
        let [beta, alpha] = served.versions.as_slice() else {
            panic!("two served versions: {:?}", served.versions);
        };
        let rule = |versions: Value| {
            json!({"operations": ["CREATE"], "apiGroups": ["demo.pravega.io"],
                "apiVersions": versions, "resources": ["widgets"]})
        };
        for versions in [json!(["*"]), json!(["v1alpha1", "v1beta1"])] {
            assert!(rule_matches(&rule(versions.clone()), beta, "CREATE", None));
            assert!(rule_matches(&rule(versions), alpha, "CREATE", None));
        }
        // A rule listing one version matches requests through that version only (no
        // `matchPolicy: Equivalent` conversion, see the README).
        assert!(rule_matches(
            &rule(json!(["v1beta1"])),
            beta,
            "CREATE",
            None
        ));
        assert!(!rule_matches(
            &rule(json!(["v1beta1"])),
            alpha,
            "CREATE",
            None
        ));
    }
}
