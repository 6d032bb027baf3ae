//! Checks, defaulting, pruning and validation of objects about to be written.

use super::{Core, FieldValidation, WriteOpts};
use crate::error::ApiError;
use crate::resources::{ResourceInfo, crd_resources};
use crate::util::{meta_mut, meta_str, now_rfc3339};
use serde_json::{Value, json};

/// A CRD's `status.storedVersions`: the versions objects may be stored in. The storage version
/// is added to those recorded before (the ones still listed in `spec.versions`).
fn stored_versions(crd: &Value, old: Option<&Value>, storage: &str) -> Vec<String> {
    let listed: Vec<&str> = crd
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<String> = old
        .and_then(|o| o.get("status"))
        .and_then(|s| s.get("storedVersions"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|v| listed.contains(v))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !out.iter().any(|v| v == storage) {
        out.push(storage.to_string());
    }
    out
}

impl Core {
    /// Checks the object's declared apiVersion/kind and namespace against the request.
    pub(super) fn check_identity(
        info: &ResourceInfo,
        ns: &str,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not a JSON object",
            ));
        }
        let av = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !av.is_empty() && av != info.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                info.api_version()
            )));
        }
        if !kind.is_empty() && kind != info.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                info.kind
            )));
        }
        obj["apiVersion"] = json!(info.api_version());
        obj["kind"] = json!(info.kind);
        let meta = meta_mut(obj);
        if info.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        Ok(())
    }

    /// Defaulting, pruning and validation of the object about to be stored.
    pub(super) fn prepare(
        &self,
        info: &ResourceInfo,
        obj: &mut Value,
        old: Option<&Value>,
        opts: &WriteOpts,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let name = meta_str(obj, "name").unwrap_or_default().to_string();
        if info.custom.is_none()
            && let Some(why) = crate::util::bad_quantity(obj)
        {
            let (kind, v) = (&info.kind, &info.version);
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: {why}"
            )));
        }
        let label_errs = crate::util::validate_labels(obj);
        if !label_errs.is_empty() {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                &name,
                &label_errs,
            ));
        }
        if let Some(custom) = &info.custom {
            if let Some(schema) = &custom.schema {
                let mut unknown = Vec::new();
                crate::schema::prune(schema, obj, "", &mut unknown);
                if !unknown.is_empty() {
                    match opts.validation {
                        FieldValidation::Strict => {
                            let list: Vec<String> = unknown
                                .iter()
                                .map(|u| format!("unknown field \"{u}\""))
                                .collect();
                            return Err(ApiError::bad_request(format!(
                                "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                                list.join(", "),
                                kind = info.kind,
                                v = info.version
                            )));
                        }
                        FieldValidation::Warn => {
                            warnings
                                .extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")));
                        }
                        FieldValidation::Ignore => {}
                    }
                }
                crate::schema::apply_defaults(schema, obj);
                let mut errs = Vec::new();
                crate::schema::validate(schema, obj, "", &mut errs);
                if !errs.is_empty() {
                    return Err(ApiError::invalid(&info.group, &info.kind, &name, &errs));
                }
            }
        } else {
            let unknown = crate::openapi::unknown_builtin_fields(info, obj);
            if !unknown.is_empty() {
                let list: Vec<String> = unknown
                    .iter()
                    .map(|u| format!("unknown field \"{u}\""))
                    .collect();
                match opts.validation {
                    FieldValidation::Strict => {
                        return Err(ApiError::bad_request(format!(
                            "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                            list.join(", "),
                            kind = info.kind,
                            v = info.version
                        )));
                    }
                    FieldValidation::Warn => warnings.extend(list),
                    FieldValidation::Ignore => {}
                }
            }
            crate::defaults::apply_defaults(&info.plural, &info.group, obj, &|| self.next_ip());
            let errs = crate::defaults::validate(&info.plural, &info.group, obj, old);
            if !errs.is_empty() {
                return Err(ApiError::invalid(&info.group, &info.kind, &name, &errs));
            }
        }
        if info.group == "apiextensions.k8s.io" {
            let res = crd_resources(obj)
                .map_err(|e| ApiError::invalid(&info.group, &info.kind, &name, &e))?;
            let st = self.lock();
            if st.registry.conflicts(&name, &res.group, &res.plural) {
                return Err(ApiError::invalid(
                    &info.group,
                    &info.kind,
                    &name,
                    &[(
                        "spec.names.plural".into(),
                        format!("Invalid value: \"{}\": is already in use", res.plural),
                    )],
                ));
            }
            drop(st);
            let names = obj
                .get("spec")
                .and_then(|s| s.get("names"))
                .cloned()
                .unwrap_or(json!({}));
            let mut accepted = names;
            if accepted.get("singular").is_none() {
                accepted["singular"] = json!(res.singular);
            }
            if accepted.get("listKind").is_none() {
                accepted["listKind"] = json!(format!("{}List", res.kind));
            }
            let now = now_rfc3339();
            let keep_time = |t: &str| -> String {
                old.and_then(|o| o.get("status"))
                    .and_then(|s| s.get("conditions"))
                    .and_then(Value::as_array)
                    .and_then(|cs| {
                        cs.iter()
                            .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
                    })
                    .and_then(|c| c.get("lastTransitionTime"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| now.clone())
            };
            obj["status"] = json!({
                "acceptedNames": accepted,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": keep_time("NamesAccepted")},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": keep_time("Established")},
                ],
                "storedVersions": stored_versions(obj, old, &res.storage_version),
            });
        }
        Ok(())
    }
}
