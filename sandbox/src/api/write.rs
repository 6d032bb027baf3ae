//! Create, update and patch (including server-side apply).

use super::delete::finalizers;
use super::{Core, Outcome, PendingWrite, Stored, WriteOpts, key};
use crate::admission::{AdmissionRequest, Operation};
use crate::convert::{to_external, to_internal, to_storage};
use crate::error::ApiError;
use crate::managed::{self, Requested, Scope, Types};
use crate::resources::{ResourceInfo, crd_resources};
use crate::store::{ObjKey, State};
use crate::util::{meta_mut, meta_str, now_rfc3339};
use serde_json::{Value, json};
use std::sync::Arc;

/// What `generation` follows: everything outside `metadata` (and the type: a custom resource
/// read through another version differs only in `apiVersion`), and outside `status` when the
/// resource has a status subresource.
fn spec_part(v: &Value, has_status: bool) -> Value {
    let mut m = v.as_object().cloned().unwrap_or_default();
    for k in ["metadata", "apiVersion", "kind"] {
        m.remove(k);
    }
    if has_status {
        m.remove("status");
    }
    Value::Object(m)
}

fn without_rv(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    v
}

/// How a write's `managedFields` are computed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fields {
    /// A create, update or patch: its manager owns what it changed.
    Update,
    /// A server-side apply: the object carries the entries the apply computed.
    Apply,
}

/// The list and map types of `info`'s schema.
fn types(info: &ResourceInfo) -> Types<'_> {
    match &info.custom {
        Some(c) => Types::custom(&info.plural, c.schema.as_ref()),
        None => Types::builtin(&info.plural),
    }
}

/// Which fields a write through `sub` can own.
fn scope(info: &ResourceInfo, sub: Option<&str>) -> Scope {
    match sub {
        Some("status") => Scope::StatusOnly,
        _ if info.status => Scope::WithoutStatus,
        _ => Scope::Whole,
    }
}

/// An applied configuration the API server cannot type (k8s.io/apiserver v0.32
/// `managedfields/internal/structuredmerge.go` `Apply`: a plain error, so `500` with no
/// reason; the messages are structured-merge-diff's `ValidationErrors.Error`).
fn typed_patch_error(info: &ResourceInfo, patch: &Value, errors: &[String]) -> ApiError {
    let detail = if let [one] = errors {
        one.clone()
    } else {
        let mut lines = vec!["errors:".to_string()];
        lines.extend(errors.iter().map(|e| format!("  {e}")));
        lines.join("\n")
    };
    ApiError::custom(
        500,
        "",
        format!(
            "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {detail}",
            meta_str(patch, "namespace").unwrap_or_default(),
            meta_str(patch, "name").unwrap_or_default(),
            info.group,
            info.version,
            info.kind
        ),
    )
}

impl Core {
    /// POST: creates an object.
    pub async fn create(
        self: &Arc<Self>,
        info: &ResourceInfo,
        ns: &str,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        self.create_with(info, ns, body, opts, Fields::Update).await
    }

    async fn create_with(
        self: &Arc<Self>,
        info: &ResourceInfo,
        ns: &str,
        body: Value,
        opts: &WriteOpts,
        fields: Fields,
    ) -> Result<Outcome, ApiError> {
        let mut obj = to_internal(info, body);
        let requested = managed::take_requested(&mut obj);
        let external_info = info;
        let info = &self.internal_info(info);
        Self::check_identity(info, ns, &mut obj)?;
        let meta = meta_mut(&mut obj);
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            let gen_name = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if gen_name.is_empty() {
                return Err(ApiError::invalid(
                    &info.group,
                    &info.kind,
                    "",
                    &[(
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
            name = format!("{gen_name}{}", crate::util::name_suffix());
            meta.insert("name".into(), json!(name));
        }
        let valid = if info.plural == "namespaces" || info.plural == "services" {
            crate::util::is_dns_label(&name)
        } else {
            crate::util::is_dns_subdomain(&name) || info.plural == "events" && !name.is_empty()
        };
        if !valid {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                &name,
                &[(
                    "metadata.name".into(),
                    format!(
                        "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                    ),
                )],
            ));
        }
        meta.insert("uid".into(), json!(crate::util::new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        for k in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
        ] {
            meta.remove(k);
        }
        if info.has_generation() {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if info.status
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        if let Some(st) = crate::defaults::initial_status(&info.plural, &info.group) {
            obj["status"] = st;
        }
        let mut warnings = Vec::new();
        self.prepare(info, &mut obj, None, opts, &mut warnings)?;
        let entries = match (requested, fields) {
            (Requested::Reset, _) => Vec::new(),
            (Requested::Replace(entries), Fields::Apply) => entries,
            (Requested::Keep, Fields::Apply) => Vec::new(),
            (requested, Fields::Update) => {
                let mut entries = match requested {
                    Requested::Replace(entries) => entries,
                    _ => Vec::new(),
                };
                let changes = managed::compare(&json!({}), &obj, &types(info), scope(info, None));
                managed::record_update(
                    &mut entries,
                    &changes,
                    &opts.manager(),
                    &external_info.api_version(),
                    "",
                    &now_rfc3339(),
                );
                entries
            }
        };
        managed::encode(&mut obj, entries);
        let obj = to_storage(info, obj);
        let k = key(info, ns, &name);
        {
            let st = self.lock();
            self.check_namespace(&st, info, ns, &name)?;
            if st.objects.contains_key(&k) {
                return Err(ApiError::already_exists(
                    &external_info.group,
                    &external_info.plural,
                    &name,
                ));
            }
        }
        let ext = to_external(external_info, &obj);
        let write = PendingWrite {
            review: AdmissionRequest {
                info: external_info,
                operation: Operation::Create,
                subresource: None,
                object: &ext,
                old_object: None,
                namespace: ns,
                name: &name,
                dry_run: opts.dry_run,
            },
            code: 201,
            warnings,
        };
        self.commit(write, |core, st| {
            core.check_namespace(st, info, ns, &name)?;
            if st.objects.contains_key(&k) {
                return Err(ApiError::already_exists(
                    &external_info.group,
                    &external_info.plural,
                    &name,
                ));
            }
            if info.group == "apiextensions.k8s.io"
                && let Ok(res) = crd_resources(&obj)
            {
                st.registry.serve_crd(&name, res);
            }
            let stored = st.insert(k.clone(), obj);
            core.collect_if_orphaned(st, &k, &stored);
            Ok(Stored::now(stored))
        })
        .await
    }

    fn check_namespace(
        &self,
        st: &State,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        if !info.namespaced {
            return Ok(());
        }
        let nk = ObjKey {
            group: String::new(),
            resource: "namespaces".into(),
            namespace: String::new(),
            name: ns.into(),
        };
        match st.objects.get(&nk) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if meta_str(n, "deletionTimestamp").is_some() => {
                Err(ApiError::forbidden(format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    crate::error::qualified(&info.group, &info.plural),
                    name,
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Computes the object to store for an update of `old` with `new` (main resource or status).
    fn merge_update(info: &ResourceInfo, old: &Value, new: Value, sub: Option<&str>) -> Value {
        let mut next = if sub == Some("status") {
            let mut n = old.clone();
            match new.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    if let Some(m) = n.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            n
        } else {
            let mut n = new;
            if info.status {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(m) = n.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            n
        };
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        let meta = meta_mut(&mut next);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
            "generation",
        ] {
            match old_meta.get(k) {
                Some(v) => {
                    meta.insert(k.into(), v.clone());
                }
                None => {
                    meta.remove(k);
                }
            }
        }
        if info.has_generation() && spec_part(old, info.status) != spec_part(&next, info.status) {
            let g = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta_mut(&mut next).insert("generation".into(), json!(g));
        }
        next
    }

    /// PUT (and the final step of PATCH): replaces an object, with optimistic concurrency.
    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        self: &Arc<Self>,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        self.update_with(info, ns, name, sub, body, opts, Fields::Update)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_with(
        self: &Arc<Self>,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        body: Value,
        opts: &WriteOpts,
        fields: Fields,
    ) -> Result<Outcome, ApiError> {
        let external_info = info;
        let info = &self.internal_info(info);
        let mut obj = to_internal(external_info, body);
        let requested = managed::take_requested(&mut obj);
        Self::check_identity(info, ns, &mut obj)?;
        let body_name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let k = key(info, ns, name);
        let old = {
            let st = self.lock();
            st.objects.get(&k).cloned().ok_or_else(|| {
                ApiError::not_found(&external_info.group, &external_info.plural, name)
            })?
        };
        let client_rv = meta_str(&obj, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if !client_rv.is_empty() && Some(client_rv.as_str()) != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(
                &external_info.group,
                &external_info.plural,
                name,
            ));
        }
        let mut next = Self::merge_update(info, &old, obj, sub);
        let mut warnings = Vec::new();
        self.prepare(info, &mut next, Some(&old), opts, &mut warnings)?;
        let mut next = to_storage(info, next);
        let entries = match (requested, fields) {
            (Requested::Reset, _) => Vec::new(),
            (Requested::Replace(entries), Fields::Apply) => entries,
            (Requested::Keep, Fields::Apply) => Vec::new(),
            (requested, Fields::Update) => {
                // The entries a client sends replace the stored ones, except through a
                // subresource (k8s.io/apiserver v0.32 managedfields/internal/fieldmanager.go).
                let mut entries = match requested {
                    Requested::Replace(entries) if sub.is_none() => entries,
                    _ => managed::decode(&old),
                };
                let changes = managed::compare(&old, &next, &types(info), scope(info, sub));
                managed::record_update(
                    &mut entries,
                    &changes,
                    &opts.manager(),
                    &external_info.api_version(),
                    opts.subresource.as_deref().or(sub).unwrap_or_default(),
                    &now_rfc3339(),
                );
                entries
            }
        };
        managed::encode(&mut next, entries);
        if without_rv(&next) == without_rv(&old) {
            return Ok(Outcome {
                code: 200,
                object: to_external(external_info, &old),
                warnings,
            });
        }
        let ext_new = to_external(external_info, &next);
        let ext_old = to_external(external_info, &old);
        let write = PendingWrite {
            review: AdmissionRequest {
                info: external_info,
                operation: Operation::Update,
                subresource: sub,
                object: &ext_new,
                old_object: Some(&ext_old),
                namespace: ns,
                name,
                dry_run: opts.dry_run,
            },
            code: 200,
            warnings,
        };
        self.commit(write, |core, st| {
            match st.objects.get(&k) {
                None => {
                    return Err(ApiError::not_found(
                        &external_info.group,
                        &external_info.plural,
                        name,
                    ));
                }
                Some(c) if meta_str(c, "resourceVersion") != meta_str(&old, "resourceVersion") => {
                    return Err(ApiError::stale(
                        &external_info.group,
                        &external_info.plural,
                        name,
                    ));
                }
                Some(_) => {}
            }
            if info.group == "apiextensions.k8s.io"
                && let Ok(res) = crd_resources(&next)
            {
                st.registry.serve_crd(name, res);
            }
            let terminating = meta_str(&next, "deletionTimestamp").is_some();
            let stored = st.replace(k.clone(), next);
            if terminating && finalizers(&stored).is_empty() && core.removable_now(info, &stored) {
                core.remove_cascade(st, &k);
            }
            Ok(Stored::now(stored))
        })
        .await
    }

    /// PATCH: applies a patch (or server-side apply) and stores the result.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        self: &Arc<Self>,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        content_type: &str,
        body: &[u8],
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let ct = content_type.split(';').next().unwrap_or_default().trim();
        let apply = ct == "application/apply-patch+yaml" || ct == "application/apply-patch+cbor";
        if apply && opts.field_manager.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(
                "PATCH requests with apply content type require a fieldManager",
            ));
        }
        let patch: Value = if apply {
            serde_saphyr::from_slice::<Value>(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
        };
        let manager = opts.field_manager.clone().unwrap_or_default();
        let subresource = sub.unwrap_or_default();
        let api_version = info.api_version();
        if apply {
            // k8s.io/apiserver v0.32 managedfields/internal/structuredmerge.go `Apply`.
            let patch_version = patch
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if patch_version != api_version {
                return Err(ApiError::bad_request(format!(
                    "Incorrect version specified in apply patch. Specified patch version: {patch_version}, expected: {api_version}"
                )));
            }
            if patch.get("kind").and_then(Value::as_str) != Some(info.kind.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "apiVersion and kind of the applied configuration must be {} and {}",
                    api_version, info.kind
                )));
            }
            if patch
                .get("metadata")
                .and_then(|m| m.get("managedFields"))
                .is_some_and(|m| !m.is_null())
            {
                return Err(ApiError::bad_request("metadata.managedFields must be nil"));
            }
        }
        let applied = if apply {
            Some(
                managed::applied_set(&patch, &types(info), scope(info, sub))
                    .map_err(|errors| typed_patch_error(info, &patch, &errors))?,
            )
        } else {
            None
        };
        // Resolved before taking the state lock: `internal_info` takes it too.
        let internal = self.internal_info(info);
        for attempt in 0..5 {
            let current = {
                let st = self.lock();
                st.objects.get(&key(&internal, ns, name)).cloned()
            };
            let Some(current) = current else {
                if let Some(applied) = &applied {
                    let mut obj = patch.clone();
                    if sub.is_some() {
                        return Err(ApiError::not_found(&info.group, &info.plural, name));
                    }
                    meta_mut(&mut obj).insert("name".into(), json!(name));
                    let entries = vec![managed::Entry {
                        manager: manager.clone(),
                        operation: "Apply".into(),
                        api_version: api_version.clone(),
                        time: Some(now_rfc3339()),
                        subresource: String::new(),
                        fields: applied.clone(),
                    }];
                    managed::encode(&mut obj, entries);
                    return self.create_with(info, ns, obj, opts, Fields::Apply).await;
                }
                return Err(ApiError::not_found(&info.group, &info.plural, name));
            };
            let cur_rv = meta_str(&current, "resourceVersion")
                .unwrap_or_default()
                .to_string();
            let mut target = to_external(info, &current);
            match ct {
                "application/json-patch+json" => crate::patch::json_patch(&mut target, &patch)
                    .map_err(|e| ApiError::custom(422, "Invalid", e))?,
                "application/merge-patch+json" => crate::patch::merge_patch(&mut target, &patch),
                "application/strategic-merge-patch+json" => {
                    if info.custom.is_some() {
                        return Err(ApiError::unsupported_media(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                        ));
                    }
                    crate::patch::strategic_merge(&mut target, &patch)
                }
                _ if apply => {
                    let applied = applied.clone().unwrap_or_default();
                    let (types, scope) = (types(info), scope(info, sub));
                    let mut entries = managed::decode(&current);
                    let mine =
                        |e: &managed::Entry| e.is(&manager, "Apply", subresource, &api_version);
                    managed::merge(&mut target, &patch, &types, scope);
                    if let Some(last) = entries.iter().find(|e| mine(e)) {
                        let mut keep = applied.clone();
                        for e in entries.iter().filter(|e| !mine(e)) {
                            keep.union(&e.fields);
                        }
                        managed::prune(&mut target, &last.fields, &keep, &types);
                    }
                    // Events read through another API differ in shape from the stored form.
                    let before = if info.custom.is_none() && info.plural == "events" {
                        std::borrow::Cow::Owned(to_external(info, &current))
                    } else {
                        std::borrow::Cow::Borrowed(&*current)
                    };
                    let changes = managed::compare(&before, &target, &types, scope);
                    managed::record_apply(
                        &mut entries,
                        &changes,
                        applied,
                        &manager,
                        &api_version,
                        subresource,
                        opts.force,
                        &now_rfc3339(),
                    )
                    .map_err(|c| managed::conflict_error(&c))?;
                    managed::encode(&mut target, entries);
                }
                other => {
                    return Err(ApiError::unsupported_media(format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other})"
                    )));
                }
            }
            // A patch that sets metadata.resourceVersion is a precondition; otherwise the
            // patch applies to the current version.
            let patched_rv = meta_str(&target, "resourceVersion")
                .unwrap_or_default()
                .to_string();
            if patched_rv.is_empty() {
                meta_mut(&mut target).insert("resourceVersion".into(), json!(cur_rv));
            }
            let explicit = patched_rv != cur_rv && !patched_rv.is_empty();
            let fields = if apply { Fields::Apply } else { Fields::Update };
            match self
                .update_with(info, ns, name, sub, target, opts, fields)
                .await
            {
                Err(e) if e.code == 409 && e.reason == "Conflict" && !explicit && attempt < 4 => {
                    continue;
                }
                other => return other,
            }
        }
        Err(ApiError::stale(&info.group, &info.plural, name))
    }
}
