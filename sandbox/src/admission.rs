//! Validating admission webhooks: `ValidatingWebhookConfiguration` objects are honoured for
//! CREATE, UPDATE (including patches, apply and, when a rule names it, the `status`
//! subresource) and DELETE, by POSTing an `admission.k8s.io/v1` AdmissionReview.

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

struct Call {
    name: String,
    url: String,
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

fn error_chain(e: &(dyn std::error::Error + 'static), addr: &str) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut parts = Vec::new();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return format!("dial tcp {addr}: connect: connection refused");
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
        .url
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

/// Runs the matching validating webhooks; returns their warnings or the denial.
#[allow(clippy::too_many_arguments)]
pub async fn admit(
    core: &Arc<Core>,
    info: &ResourceInfo,
    op: &str,
    sub: Option<&str>,
    obj: &Value,
    old: Option<&Value>,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Result<Vec<String>, ApiError> {
    if info.group == "admissionregistration.k8s.io" {
        return Ok(Vec::new());
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
            let fail_closed = wh
                .get("failurePolicy")
                .and_then(Value::as_str)
                .unwrap_or("Fail")
                != "Ignore";
            let base = if let Some(u) = cc.get("url").and_then(Value::as_str) {
                u.to_string()
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
                match mapped {
                    Some(addr) => format!("https://{addr}{path}"),
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
            let sep = if base.contains('?') { '&' } else { '?' };
            calls.push(Call {
                name: wname,
                url: format!("{base}{sep}timeout={timeout}s"),
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
            "userInfo": {"username": "sandbox-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": if op == "DELETE" { Value::Null } else { obj.clone() },
            "oldObject": old.cloned().unwrap_or(Value::Null),
            "dryRun": dry_run,
            "options": match op {
                "CREATE" => json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
                "UPDATE" => json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}),
                _ => json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}),
            },
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
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

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
