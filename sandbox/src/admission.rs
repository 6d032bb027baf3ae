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
