//! Validating admission webhooks: `ValidatingWebhookConfiguration` objects are honoured for
//! CREATE, UPDATE (including patches, apply and, when a rule names it, the `status`
//! subresource) and DELETE, by POSTing an `admission.k8s.io/v1` AdmissionReview, when the rules,
//! selectors and `matchConditions` (CEL, see [`crate::cel`]) of a webhook select the request.

use crate::api::Core;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::selector::from_label_selector_object;
use crate::util::{labels_of, string_list};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

mod call;
mod matching;

use call::{Call, failed, post};
pub use matching::{Matched, match_conditions, rule_matches, validate_match_conditions};
use matching::{cel_request, operation_options, user_info};

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
        warnings.extend(string_list(r.get("warnings")));
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
