//! The API server's object semantics: create, update, patch, delete, garbage collection,
//! namespace termination, pod grace periods and CRD registration. HTTP lives in `server`.

use crate::convert::{storage_group, to_external, to_internal, to_storage};
use crate::error::ApiError;
use crate::resources::{ResourceInfo, crd_resources};
use crate::store::{ObjKey, State};
use crate::util::{meta_mut, meta_str, now_rfc3339};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How unknown fields in a request are treated (`?fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (the default).
    Warn,
    /// Reject the request.
    Strict,
}

/// Options shared by write requests.
#[derive(Debug, Clone)]
pub struct WriteOpts {
    /// `dryRun=All`: validate and admit, do not persist.
    pub dry_run: bool,
    /// `fieldValidation`.
    pub validation: FieldValidation,
    /// `fieldManager`.
    pub field_manager: Option<String>,
}

impl Default for WriteOpts {
    fn default() -> Self {
        WriteOpts {
            dry_run: false,
            validation: FieldValidation::Warn,
            field_manager: None,
        }
    }
}

/// The result of a successful write.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// HTTP status (200 or 201).
    pub code: u16,
    /// The object as returned to the client.
    pub object: Value,
    /// Warnings for `Warning:` headers.
    pub warnings: Vec<String>,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace: Option<i64>,
    /// `propagationPolicy`: Orphan, Background (default) or Foreground.
    pub propagation: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// The shared core of one sandbox API server.
pub struct Core {
    state: Mutex<State>,
    /// Signalled with the latest resourceVersion after every change.
    pub changed: watch::Sender<u64>,
    /// Bumped to end every open watch stream.
    pub closer: watch::Sender<u64>,
    /// `clientConfig.service` references of webhooks, mapped to local addresses.
    pub services: Mutex<HashMap<(String, String, u16), SocketAddr>>,
    ip_counter: AtomicU32,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
}

/// The key of an object of `info`.
pub fn key(info: &ResourceInfo, ns: &str, name: &str) -> ObjKey {
    ObjKey {
        group: storage_group(info).to_string(),
        resource: info.plural.clone(),
        namespace: if info.namespaced {
            ns.to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

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
        m.remove("managedFields");
    }
    v
}

fn finalizers(v: &Value) -> Vec<String> {
    v.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn owner_uids(v: &Value) -> Vec<String> {
    v.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

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
    /// A fresh core with the default namespaces.
    pub fn new(history_limit: usize) -> Arc<Core> {
        let core = Arc::new(Core {
            state: Mutex::new(State::new(history_limit)),
            changed: watch::channel(0).0,
            closer: watch::channel(0).0,
            services: Mutex::new(HashMap::new()),
            ip_counter: AtomicU32::new(10),
            shutdown: CancellationToken::new(),
            metrics: crate::metrics::Metrics::default(),
        });
        {
            let mut st = core.lock();
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let obj = json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "uid": crate::util::new_uid(), "creationTimestamp": now_rfc3339(),
                        "labels": {"kubernetes.io/metadata.name": ns}},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
                let k = ObjKey {
                    group: String::new(),
                    resource: "namespaces".into(),
                    namespace: String::new(),
                    name: ns.into(),
                };
                st.insert(k, obj);
            }
            let sa = |ns: &str| {
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": ns, "uid": crate::util::new_uid(), "creationTimestamp": now_rfc3339()}})
            };
            for ns in ["default", "kube-system", "kube-public"] {
                let k = ObjKey {
                    group: String::new(),
                    resource: "serviceaccounts".into(),
                    namespace: ns.into(),
                    name: "default".into(),
                };
                st.insert(k, sa(ns));
            }
        }
        core
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self, rv: u64) {
        self.changed.send_replace(rv);
    }

    fn next_ip(&self) -> String {
        let n = self.ip_counter.fetch_add(1, Ordering::Relaxed);
        format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }

    /// The resource served at group/version/plural.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.lock().registry.find(group, version, plural)
    }

    /// Reads one object.
    pub fn get(&self, info: &ResourceInfo, ns: &str, name: &str) -> Result<Value, ApiError> {
        let st = self.lock();
        st.objects
            .get(&key(info, ns, name))
            .map(|o| to_external(info, o))
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))
    }

    /// Checks the object's declared apiVersion/kind and namespace against the request.
    fn check_identity(info: &ResourceInfo, ns: &str, obj: &mut Value) -> Result<(), ApiError> {
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
    fn prepare(
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

    /// POST: creates an object.
    pub async fn create(
        self: &Arc<Self>,
        info: &ResourceInfo,
        ns: &str,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let mut obj = to_internal(info, body);
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
            "managedFields",
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
        warnings.extend(
            crate::admission::admit(
                self,
                external_info,
                "CREATE",
                None,
                &ext,
                None,
                ns,
                &name,
                opts.dry_run,
            )
            .await?,
        );
        if opts.dry_run {
            return Ok(Outcome {
                code: 201,
                object: ext,
                warnings,
            });
        }
        let stored = {
            let mut st = self.lock();
            self.check_namespace(&st, info, ns, &name)?;
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
            let stored = st.insert(k, obj);
            self.notify(st.rv);
            stored
        };
        Ok(Outcome {
            code: 201,
            object: to_external(external_info, &stored),
            warnings,
        })
    }

    fn internal_info(&self, info: &ResourceInfo) -> ResourceInfo {
        if info.group == "events.k8s.io" {
            self.lock()
                .registry
                .find("", "v1", "events")
                .unwrap_or_else(|| info.clone())
        } else {
            info.clone()
        }
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
        meta.remove("managedFields");
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
        let external_info = info;
        let info = &self.internal_info(info);
        let mut obj = to_internal(external_info, body);
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
        let next = to_storage(info, next);
        if without_rv(&next) == without_rv(&old) {
            return Ok(Outcome {
                code: 200,
                object: to_external(external_info, &old),
                warnings,
            });
        }
        let ext_new = to_external(external_info, &next);
        let ext_old = to_external(external_info, &old);
        warnings.extend(
            crate::admission::admit(
                self,
                external_info,
                "UPDATE",
                sub,
                &ext_new,
                Some(&ext_old),
                ns,
                name,
                opts.dry_run,
            )
            .await?,
        );
        if opts.dry_run {
            return Ok(Outcome {
                code: 200,
                object: ext_new,
                warnings,
            });
        }
        let stored = {
            let mut st = self.lock();
            let cur = st.objects.get(&k).cloned();
            match cur {
                None => {
                    return Err(ApiError::not_found(
                        &external_info.group,
                        &external_info.plural,
                        name,
                    ));
                }
                Some(c) if meta_str(&c, "resourceVersion") != meta_str(&old, "resourceVersion") => {
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
            if terminating && finalizers(&stored).is_empty() && self.removable_now(info, &stored) {
                self.remove_cascade(&mut st, &k);
            }
            self.notify(st.rv);
            stored
        };
        Ok(Outcome {
            code: 200,
            object: to_external(external_info, &stored),
            warnings,
        })
    }

    /// Whether a terminating object without finalizers may go now (pods wait for their grace
    /// period or a kubelet's final delete).
    fn removable_now(&self, info: &ResourceInfo, obj: &Value) -> bool {
        if info.group.is_empty() && info.plural == "pods" {
            meta_str(obj, "deletionTimestamp")
                .and_then(crate::util::parse_time)
                .is_none_or(|t| t <= jiff::Timestamp::now())
        } else {
            true
        }
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
        let manager_key = format!(
            "{}{}",
            opts.field_manager.as_deref().unwrap_or_default(),
            sub.map(|s| format!("/{s}")).unwrap_or_default()
        );
        // Resolved before taking the state lock: `internal_info` takes it too.
        let internal = self.internal_info(info);
        for attempt in 0..5 {
            let current = {
                let st = self.lock();
                st.objects.get(&key(&internal, ns, name)).cloned()
            };
            let Some(current) = current else {
                if apply {
                    let mut obj = patch.clone();
                    if sub.is_some() {
                        return Err(ApiError::not_found(&info.group, &info.plural, name));
                    }
                    meta_mut(&mut obj).insert("name".into(), json!(name));
                    let out = self.create(info, ns, obj, opts).await?;
                    if !opts.dry_run {
                        self.remember_applied(&out.object, &manager_key, &patch);
                    }
                    return Ok(out);
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
                    if patch.get("apiVersion").and_then(Value::as_str)
                        != Some(info.api_version().as_str())
                        || patch.get("kind").and_then(Value::as_str) != Some(info.kind.as_str())
                    {
                        return Err(ApiError::bad_request(format!(
                            "apiVersion and kind of the applied configuration must be {} and {}",
                            info.api_version(),
                            info.kind
                        )));
                    }
                    let uid = meta_str(&current, "uid").unwrap_or_default().to_string();
                    let previous = self
                        .lock()
                        .applied
                        .get(&(uid, manager_key.clone()))
                        .cloned();
                    if let Some(previous) = previous {
                        crate::patch::remove_unapplied(&mut target, &previous, &patch);
                    }
                    if info.custom.is_some() {
                        crate::patch::merge_patch(&mut target, &patch)
                    } else {
                        crate::patch::strategic_merge(&mut target, &patch)
                    }
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
            match self.update(info, ns, name, sub, target, opts).await {
                Err(e) if e.code == 409 && e.reason == "Conflict" && !explicit && attempt < 4 => {
                    continue;
                }
                Ok(out) => {
                    if apply && !opts.dry_run {
                        self.remember_applied(&out.object, &manager_key, &patch);
                    }
                    return Ok(out);
                }
                other => return other,
            }
        }
        Err(ApiError::stale(&info.group, &info.plural, name))
    }

    fn remember_applied(&self, obj: &Value, manager: &str, applied: &Value) {
        if let Some(uid) = meta_str(obj, "uid") {
            self.lock()
                .applied
                .insert((uid.to_string(), manager.to_string()), applied.clone());
        }
    }

    /// DELETE of one object.
    pub async fn delete(
        self: &Arc<Self>,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Outcome, ApiError> {
        let external_info = info;
        let info = &self.internal_info(info);
        let k = key(info, ns, name);
        let old = {
            let st = self.lock();
            st.objects.get(&k).cloned()
        }
        .ok_or_else(|| ApiError::not_found(&external_info.group, &external_info.plural, name))?;
        if let Some(uid) = &opts.uid
            && Some(uid.as_str()) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &external_info.group,
                &external_info.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && Some(rv.as_str()) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &external_info.group,
                &external_info.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        if info.plural == "namespaces" && ["default", "kube-system", "kube-public"].contains(&name)
        {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let ext_old = to_external(external_info, &old);
        let warnings = crate::admission::admit(
            self,
            external_info,
            "DELETE",
            None,
            &ext_old,
            Some(&ext_old),
            ns,
            name,
            opts.dry_run,
        )
        .await?;
        if opts.dry_run {
            return Ok(Outcome {
                code: 200,
                object: ext_old,
                warnings,
            });
        }
        let result = {
            let mut st = self.lock();
            let cur = st.objects.get(&k).cloned();
            let Some(cur) = cur else {
                return Err(ApiError::not_found(
                    &external_info.group,
                    &external_info.plural,
                    name,
                ));
            };
            let r = self.delete_locked(&mut st, info, &k, &cur, opts);
            self.notify(st.rv);
            r
        };
        if let Some((delay, uid)) = result.1 {
            let core = self.clone();
            let k2 = k.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => core.grace_elapsed(&k2, &uid),
                    _ = core.shutdown.cancelled() => {}
                }
            });
        }
        Ok(Outcome {
            code: 200,
            object: to_external(external_info, &result.0),
            warnings,
        })
    }

    fn grace_elapsed(&self, k: &ObjKey, uid: &str) {
        let mut st = self.lock();
        let Some(cur) = st.objects.get(k).cloned() else {
            return;
        };
        if meta_str(&cur, "uid") == Some(uid)
            && finalizers(&cur).is_empty()
            && meta_str(&cur, "deletionTimestamp").is_some()
        {
            self.remove_cascade(&mut st, k);
            self.notify(st.rv);
        }
    }

    /// Deletes under the lock. Returns the object as the response shows it and, for a pod
    /// given a grace period, when to remove it.
    fn delete_locked(
        &self,
        st: &mut State,
        info: &ResourceInfo,
        k: &ObjKey,
        cur: &Arc<Value>,
        opts: &DeleteOpts,
    ) -> (Value, Option<(std::time::Duration, String)>) {
        let now = jiff::Timestamp::now();
        let is_pod = info.group.is_empty() && info.plural == "pods";
        let already = meta_str(cur, "deletionTimestamp").is_some();
        if info.plural == "namespaces" && info.group.is_empty() {
            let mut obj = (**cur).clone();
            if !already {
                meta_mut(&mut obj).insert(
                    "deletionTimestamp".into(),
                    json!(crate::util::format_time(now)),
                );
                obj["status"] = json!({"phase": "Terminating"});
                st.replace(k.clone(), obj);
            }
            let stored = self.finish_namespace(st, &k.name);
            return (stored, None);
        }
        if opts.propagation.as_deref() == Some("Orphan") {
            self.orphan_dependents(st, meta_str(cur, "uid").unwrap_or_default());
        }
        let mut fins = finalizers(cur);
        let foreground = opts.propagation.as_deref() == Some("Foreground")
            && self.has_dependents(st, meta_str(cur, "uid").unwrap_or_default());
        if foreground && !fins.iter().any(|f| f == "foregroundDeletion") {
            fins.push("foregroundDeletion".into());
        }
        if is_pod && fins.is_empty() {
            let spec_grace = cur
                .get("spec")
                .and_then(|s| s.get("terminationGracePeriodSeconds"))
                .and_then(Value::as_i64)
                .unwrap_or(30);
            let scheduled = cur
                .get("spec")
                .and_then(|s| s.get("nodeName"))
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let grace = if scheduled {
                opts.grace.unwrap_or(spec_grace).max(0)
            } else {
                0
            };
            let current_deadline =
                meta_str(cur, "deletionTimestamp").and_then(crate::util::parse_time);
            let deadline = now + jiff::SignedDuration::from_secs(grace);
            if grace > 0 && current_deadline.is_none_or(|d| deadline < d) {
                let mut obj = (**cur).clone();
                let m = meta_mut(&mut obj);
                m.insert(
                    "deletionTimestamp".into(),
                    json!(crate::util::format_time(deadline)),
                );
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                let stored = st.replace(k.clone(), obj);
                let uid = meta_str(&stored, "uid").unwrap_or_default().to_string();
                return (
                    (*stored).clone(),
                    Some((std::time::Duration::from_secs(grace as u64), uid)),
                );
            }
            if grace > 0 {
                return ((**cur).clone(), None);
            }
        }
        if !fins.is_empty() {
            let mut obj = (**cur).clone();
            let m = meta_mut(&mut obj);
            if !already {
                m.insert(
                    "deletionTimestamp".into(),
                    json!(crate::util::format_time(now)),
                );
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            m.insert("finalizers".into(), json!(fins));
            let stored = st.replace(k.clone(), obj);
            if foreground {
                self.delete_dependents(st, meta_str(&stored, "uid").unwrap_or_default());
                self.check_foreground(st, meta_str(&stored, "uid").unwrap_or_default());
                return (
                    st.objects
                        .get(k)
                        .map(|o| (**o).clone())
                        .unwrap_or_else(|| (*stored).clone()),
                    None,
                );
            }
            return ((*stored).clone(), None);
        }
        let gone = self.remove_cascade(st, k);
        (
            gone.map(|g| (*g).clone())
                .unwrap_or_else(|| (**cur).clone()),
            None,
        )
    }

    fn has_dependents(&self, st: &State, uid: &str) -> bool {
        !uid.is_empty()
            && st
                .objects
                .values()
                .any(|o| owner_uids(o).iter().any(|u| u == uid))
    }

    fn orphan_dependents(&self, st: &mut State, uid: &str) {
        let deps: Vec<(ObjKey, Arc<Value>)> = st
            .objects
            .iter()
            .filter(|(_, o)| owner_uids(o).iter().any(|u| u == uid))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for (k, o) in deps {
            let mut obj = (*o).clone();
            if let Some(refs) = obj
                .get_mut("metadata")
                .and_then(|m| m.get_mut("ownerReferences"))
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            }
            st.replace(k, obj);
        }
    }

    /// Deletes (background) the dependents of `uid` that have no other live owner.
    fn delete_dependents(&self, st: &mut State, uid: &str) {
        if uid.is_empty() {
            return;
        }
        let live: std::collections::HashSet<String> = st
            .objects
            .values()
            .filter_map(|o| meta_str(o, "uid").map(str::to_string))
            .collect();
        let deps: Vec<(ObjKey, Arc<Value>)> = st
            .objects
            .iter()
            .filter(|(_, o)| {
                let owners = owner_uids(o);
                owners.iter().any(|u| u == uid)
                    && owners.iter().all(|u| u == uid || !live.contains(u))
            })
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for (k, o) in deps {
            let Some(info) = st
                .registry
                .all()
                .find(|r| {
                    storage_group(r) == k.group && r.group == k.group && r.plural == k.resource
                })
                .cloned()
            else {
                continue;
            };
            if st.objects.contains_key(&k) {
                self.delete_locked(
                    st,
                    &info,
                    &k,
                    &o,
                    &DeleteOpts {
                        grace: Some(0),
                        ..Default::default()
                    },
                );
            }
        }
    }

    /// Removes an owner waiting in foreground deletion once its dependents are gone.
    fn check_foreground(&self, st: &mut State, owner_uid: &str) {
        if owner_uid.is_empty() || self.has_dependents(st, owner_uid) {
            return;
        }
        let owner = st
            .objects
            .iter()
            .find(|(_, o)| meta_str(o, "uid") == Some(owner_uid))
            .map(|(k, o)| (k.clone(), o.clone()));
        if let Some((k, o)) = owner
            && finalizers(&o).iter().any(|f| f == "foregroundDeletion")
        {
            let mut obj = (*o).clone();
            let rest: Vec<String> = finalizers(&o)
                .into_iter()
                .filter(|f| f != "foregroundDeletion")
                .collect();
            meta_mut(&mut obj).insert("finalizers".into(), json!(rest));
            let stored = st.replace(k.clone(), obj);
            if finalizers(&stored).is_empty() {
                self.remove_cascade(st, &k);
            }
        }
    }

    /// Removes an object and everything that follows from it: dependents (garbage
    /// collection), CRD instances, a terminating namespace becoming empty, foreground owners.
    pub fn remove_cascade(&self, st: &mut State, k: &ObjKey) -> Option<Arc<Value>> {
        let gone = st.remove(k)?;
        let uid = meta_str(&gone, "uid").unwrap_or_default().to_string();
        if k.group == "apiextensions.k8s.io"
            && k.resource == "customresourcedefinitions"
            && let Some(served) = st.registry.remove_crd(&k.name)
        {
            // Every version stops being served; the objects (stored once) go.
            let keys: Vec<ObjKey> = st
                .objects
                .keys()
                .filter(|o| o.group == served.group && o.resource == served.plural)
                .cloned()
                .collect();
            for ck in keys {
                st.remove(&ck);
            }
        }
        self.delete_dependents(st, &uid);
        for owner in owner_uids(&gone) {
            self.check_foreground(st, &owner);
        }
        if !k.namespace.is_empty() {
            let nk = ObjKey {
                group: String::new(),
                resource: "namespaces".into(),
                namespace: String::new(),
                name: k.namespace.clone(),
            };
            if st
                .objects
                .get(&nk)
                .is_some_and(|n| meta_str(n, "deletionTimestamp").is_some())
                && !st.objects.keys().any(|o| o.namespace == k.namespace)
            {
                st.remove(&nk);
            }
        }
        Some(gone)
    }

    /// Deletes a terminating namespace's contents; removes it once empty.
    fn finish_namespace(&self, st: &mut State, ns: &str) -> Value {
        let nk = ObjKey {
            group: String::new(),
            resource: "namespaces".into(),
            namespace: String::new(),
            name: ns.to_string(),
        };
        let before = st
            .objects
            .get(&nk)
            .map(|n| (**n).clone())
            .unwrap_or_else(|| json!({}));
        let keys: Vec<(ObjKey, Arc<Value>)> = st
            .objects
            .iter()
            .filter(|(k, _)| k.namespace == ns)
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for (k, o) in keys {
            if !st.objects.contains_key(&k) {
                continue;
            }
            let info = st
                .registry
                .all()
                .find(|r| r.group == k.group && r.plural == k.resource)
                .cloned();
            if let Some(info) = info {
                self.delete_locked(
                    st,
                    &info,
                    &k,
                    &o,
                    &DeleteOpts {
                        grace: Some(0),
                        ..Default::default()
                    },
                );
            } else {
                st.remove(&k);
            }
        }
        let current = st.objects.get(&nk).cloned();
        match current {
            Some(n) if !st.objects.keys().any(|o| o.namespace == ns) => {
                st.remove(&nk);
                (*n).clone()
            }
            Some(n) => (*n).clone(),
            None => before,
        }
    }

    /// Ends every open watch stream (clients reconnect, as after an API server restart).
    pub fn close_watches(&self) {
        self.closer.send_modify(|g| *g += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(core: &Core, group: &str, plural: &str) -> ResourceInfo {
        core.resolve(group, "v1", plural).expect("served")
    }

    async fn create(core: &Arc<Core>, plural: &str, ns: &str, obj: Value) -> Value {
        let i = info(core, "", plural);
        core.create(&i, ns, obj, &WriteOpts::default())
            .await
            .expect("create")
            .object
    }

    fn exists(core: &Core, plural: &str, ns: &str, name: &str) -> bool {
        core.get(&info(core, "", plural), ns, name).is_ok()
    }

    #[tokio::test]
    async fn finalizers_hold_deletion_until_removed() {
        let core = Core::new(100);
        let cms = info(&core, "", "configmaps");
        create(
            &core,
            "configmaps",
            "default",
            json!({"metadata": {"name": "a", "finalizers": ["x/y"]}}),
        )
        .await;
        let out = core
            .delete(&cms, "default", "a", &DeleteOpts::default())
            .await
            .expect("delete");
        assert!(meta_str(&out.object, "deletionTimestamp").is_some());
        assert!(exists(&core, "configmaps", "default", "a"));
        let cur = core.get(&cms, "default", "a").expect("get");
        let mut next = cur.clone();
        next["metadata"]["finalizers"] = json!([]);
        core.update(&cms, "default", "a", None, next, &WriteOpts::default())
            .await
            .expect("update");
        assert!(!exists(&core, "configmaps", "default", "a"));
    }

    #[tokio::test]
    async fn owners_cascade_orphan_and_foreground() {
        let core = Core::new(100);
        let cms = info(&core, "", "configmaps");
        let owner = create(
            &core,
            "configmaps",
            "default",
            json!({"metadata": {"name": "owner"}}),
        )
        .await;
        let uid = meta_str(&owner, "uid").expect("uid").to_string();
        let dep = |name: &str| json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}});
        create(&core, "configmaps", "default", dep("d1")).await;
        core.delete(&cms, "default", "owner", &DeleteOpts::default())
            .await
            .expect("delete");
        assert!(
            !exists(&core, "configmaps", "default", "d1"),
            "background GC"
        );

        let owner = create(
            &core,
            "configmaps",
            "default",
            json!({"metadata": {"name": "owner"}}),
        )
        .await;
        let uid = meta_str(&owner, "uid").expect("uid").to_string();
        let dep = |name: &str| json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}});
        create(&core, "configmaps", "default", dep("d2")).await;
        let orphan = DeleteOpts {
            propagation: Some("Orphan".into()),
            ..DeleteOpts::default()
        };
        core.delete(&cms, "default", "owner", &orphan)
            .await
            .expect("delete");
        let d2 = core
            .get(&cms, "default", "d2")
            .expect("orphaned dependent stays");
        assert_eq!(d2["metadata"]["ownerReferences"], json!([]));

        let owner = create(
            &core,
            "configmaps",
            "default",
            json!({"metadata": {"name": "owner"}}),
        )
        .await;
        let uid = meta_str(&owner, "uid").expect("uid").to_string();
        create(&core, "configmaps", "default", json!({"metadata": {"name": "d3", "finalizers": ["hold"], "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})).await;
        let fg = DeleteOpts {
            propagation: Some("Foreground".into()),
            ..DeleteOpts::default()
        };
        core.delete(&cms, "default", "owner", &fg)
            .await
            .expect("delete");
        let o = core
            .get(&cms, "default", "owner")
            .expect("owner waits for its dependents");
        assert_eq!(o["metadata"]["finalizers"], json!(["foregroundDeletion"]));
        let mut d3 = core.get(&cms, "default", "d3").expect("d3");
        d3["metadata"]["finalizers"] = json!([]);
        core.update(&cms, "default", "d3", None, d3, &WriteOpts::default())
            .await
            .expect("release");
        assert!(!exists(&core, "configmaps", "default", "d3"));
        assert!(
            !exists(&core, "configmaps", "default", "owner"),
            "owner goes after its dependents"
        );
    }

    #[tokio::test]
    async fn namespace_deletion_waits_for_finalizers() {
        let core = Core::new(100);
        let nss = info(&core, "", "namespaces");
        let cms = info(&core, "", "configmaps");
        create(
            &core,
            "namespaces",
            "",
            json!({"metadata": {"name": "team"}}),
        )
        .await;
        create(
            &core,
            "configmaps",
            "team",
            json!({"metadata": {"name": "plain"}}),
        )
        .await;
        create(
            &core,
            "configmaps",
            "team",
            json!({"metadata": {"name": "held", "finalizers": ["x/y"]}}),
        )
        .await;
        core.delete(&nss, "", "team", &DeleteOpts::default())
            .await
            .expect("delete");
        assert!(!exists(&core, "configmaps", "team", "plain"));
        let ns = core.get(&nss, "", "team").expect("terminating");
        assert_eq!(ns["status"]["phase"], "Terminating");
        let err = core
            .create(
                &cms,
                "team",
                json!({"metadata": {"name": "new"}}),
                &WriteOpts::default(),
            )
            .await
            .expect_err("no new content");
        assert_eq!(err.code, 403);
        let mut held = core.get(&cms, "team", "held").expect("held");
        held["metadata"]["finalizers"] = json!([]);
        core.update(&cms, "team", "held", None, held, &WriteOpts::default())
            .await
            .expect("release");
        assert!(!exists(&core, "namespaces", "", "team"));
    }

    #[tokio::test]
    async fn scheduled_pods_terminate_for_their_grace_period() {
        let core = Core::new(100);
        let pods = info(&core, "", "pods");
        create(&core, "pods", "default", json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": "x:1"}]}})).await;
        let out = core
            .delete(&pods, "default", "p", &DeleteOpts::default())
            .await
            .expect("delete");
        assert_eq!(out.object["metadata"]["deletionGracePeriodSeconds"], 1);
        assert!(exists(&core, "pods", "default", "p"));
        tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
        assert!(
            !exists(&core, "pods", "default", "p"),
            "removed when the grace period ends"
        );
        // Unscheduled pods go at once.
        create(&core, "pods", "default", json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}})).await;
        core.delete(&pods, "default", "q", &DeleteOpts::default())
            .await
            .expect("delete");
        assert!(!exists(&core, "pods", "default", "q"));
    }

    #[tokio::test]
    async fn generation_and_noop_updates() {
        let core = Core::new(100);
        let deps = core.resolve("apps", "v1", "deployments").expect("served");
        let d = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}});
        let made = core
            .create(&deps, "default", d, &WriteOpts::default())
            .await
            .expect("create")
            .object;
        let rv = meta_str(&made, "resourceVersion").map(str::to_string);
        let same = core
            .update(
                &deps,
                "default",
                "d",
                None,
                made.clone(),
                &WriteOpts::default(),
            )
            .await
            .expect("noop")
            .object;
        assert_eq!(
            meta_str(&same, "resourceVersion").map(str::to_string),
            rv,
            "no-op keeps the version"
        );
        let mut changed = same.clone();
        changed["spec"]["replicas"] = json!(3);
        let next = core
            .update(&deps, "default", "d", None, changed, &WriteOpts::default())
            .await
            .expect("update")
            .object;
        assert_eq!(next["metadata"]["generation"], 2);
        let mut bad = next.clone();
        bad["spec"]["selector"] = json!({"matchLabels": {"a": "c"}});
        let err = core
            .update(&deps, "default", "d", None, bad, &WriteOpts::default())
            .await
            .expect_err("immutable");
        assert_eq!(err.code, 422);
    }

    /// A CRD served as v1beta1 (storage, status subresource, `color` defaults to blue) and
    /// v1alpha1 (no subresource, `color` defaults to red, `size` may be 0), and v1 not served.
    fn widget_crd() -> Value {
        let schema = |min: i64, color: &str| {
            json!({"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"type": "integer", "minimum": min},
                    "color": {"type": "string", "default": color}}},
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}})
        };
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.demo.pravega.io"},
            "spec": {"group": "demo.pravega.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false, "schema": schema(0, "red")},
                    {"name": "v1beta1", "served": true, "storage": true, "schema": schema(1, "blue"),
                        "subresources": {"status": {}}},
                    {"name": "v1", "served": false, "storage": false, "schema": schema(1, "green")}]}})
    }

    async fn install_widgets(core: &Arc<Core>) {
        let crds = core
            .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("served");
        let made = core
            .create(&crds, "", widget_crd(), &WriteOpts::default())
            .await
            .expect("crd")
            .object;
        assert_eq!(made["status"]["storedVersions"], json!(["v1beta1"]));
    }

    #[tokio::test]
    async fn crd_versions_share_objects_stored_in_the_storage_version() {
        let core = Core::new(100);
        install_widgets(&core).await;
        let alpha = core
            .resolve("demo.pravega.io", "v1alpha1", "widgets")
            .expect("v1alpha1 served");
        let beta = core
            .resolve("demo.pravega.io", "v1beta1", "widgets")
            .expect("v1beta1 served");
        assert!(core.resolve("demo.pravega.io", "v1", "widgets").is_none());
        // Discovery prefers the storage version.
        let groups = core.lock().registry.groups();
        let (_, versions) = groups
            .iter()
            .find(|(g, _)| g == "demo.pravega.io")
            .expect("group");
        assert_eq!(versions, &["v1beta1", "v1alpha1"]);

        // Written through v1alpha1: its schema (red default), stored as v1beta1.
        let made = core
            .create(
                &alpha,
                "default",
                json!({"apiVersion": "demo.pravega.io/v1alpha1", "kind": "Widget",
                    "metadata": {"name": "w"}, "spec": {"size": 2}}),
                &WriteOpts::default(),
            )
            .await
            .expect("create")
            .object;
        assert_eq!(made["apiVersion"], "demo.pravega.io/v1alpha1");
        assert_eq!(made["spec"], json!({"size": 2, "color": "red"}));
        let stored = core
            .lock()
            .objects
            .get(&key(&beta, "default", "w"))
            .cloned()
            .expect("stored once");
        assert_eq!(stored["apiVersion"], "demo.pravega.io/v1beta1");
        let through_beta = core.get(&beta, "default", "w").expect("get");
        assert_eq!(through_beta["apiVersion"], "demo.pravega.io/v1beta1");
        assert_eq!(through_beta["spec"], made["spec"]);

        // The same object written back through either version is a no-op.
        let rv = meta_str(&made, "resourceVersion").map(str::to_string);
        for (info, obj) in [(&alpha, made.clone()), (&beta, through_beta.clone())] {
            let same = core
                .update(info, "default", "w", None, obj, &WriteOpts::default())
                .await
                .expect("noop")
                .object;
            assert_eq!(meta_str(&same, "resourceVersion").map(str::to_string), rv);
            assert_eq!(same["apiVersion"], info.api_version());
        }
        // Each version validates with its own schema: size 0 is valid in v1alpha1 only.
        let zero = |info: &ResourceInfo| {
            json!({"apiVersion": info.api_version(), "kind": "Widget",
                "metadata": {"name": "zero"}, "spec": {"size": 0}})
        };
        let err = core
            .create(&beta, "default", zero(&beta), &WriteOpts::default())
            .await
            .expect_err("minimum 1");
        assert_eq!(err.code, 422);
        core.create(&alpha, "default", zero(&alpha), &WriteOpts::default())
            .await
            .expect("minimum 0");
        // The body's apiVersion must be the request's.
        let err = core
            .update(
                &alpha,
                "default",
                "w",
                None,
                through_beta.clone(),
                &WriteOpts::default(),
            )
            .await
            .expect_err("v1beta1 body on the v1alpha1 endpoint");
        assert_eq!(err.code, 400);

        // Subresources are per version: v1alpha1 has no status subresource, so its main
        // resource writes status; v1beta1 keeps status on main-resource writes.
        assert!(beta.status && !alpha.status);
        let mut with_status = core.get(&alpha, "default", "w").expect("get");
        with_status["status"] = json!({"ready": true});
        core.update(
            &alpha,
            "default",
            "w",
            None,
            with_status,
            &WriteOpts::default(),
        )
        .await
        .expect("update");
        let mut cleared = core.get(&beta, "default", "w").expect("get");
        assert_eq!(cleared["status"], json!({"ready": true}));
        cleared["status"] = json!({"ready": false});
        let kept = core
            .update(&beta, "default", "w", None, cleared, &WriteOpts::default())
            .await
            .expect("update")
            .object;
        assert_eq!(kept["status"], json!({"ready": true}));

        // Deleting the CRD stops serving every version and removes the objects.
        let crds = core
            .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("served");
        core.delete(&crds, "", "widgets.demo.pravega.io", &DeleteOpts::default())
            .await
            .expect("delete crd");
        assert!(
            core.resolve("demo.pravega.io", "v1alpha1", "widgets")
                .is_none()
        );
        assert!(
            core.resolve("demo.pravega.io", "v1beta1", "widgets")
                .is_none()
        );
        assert!(
            !core
                .lock()
                .objects
                .contains_key(&key(&beta, "default", "w"))
        );
    }

    #[tokio::test]
    async fn crd_versions_are_validated() {
        let core = Core::new(100);
        let crds = core
            .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("served");
        let with = |f: &dyn Fn(&mut Value)| {
            let mut crd = widget_crd();
            f(&mut crd);
            crd
        };
        let cases: [(Value, &str); 4] = [
            (
                with(&|c| c["spec"]["conversion"] = json!({"strategy": "Webhook"})),
                "spec.conversion.strategy: Unsupported value: \"Webhook\"",
            ),
            (
                with(&|c| c["spec"]["versions"][0]["storage"] = json!(true)),
                "must have exactly one version marked as storage version",
            ),
            (
                with(&|c| c["spec"]["versions"][1]["storage"] = json!(false)),
                "must have exactly one version marked as storage version",
            ),
            (
                with(&|c| c["spec"]["versions"][2]["name"] = json!("v1alpha1")),
                "must contain unique version names",
            ),
        ];
        for (crd, message) in cases {
            let err = core
                .create(&crds, "", crd, &WriteOpts::default())
                .await
                .expect_err(message);
            assert_eq!(err.code, 422, "{}", err.message);
            assert!(err.message.contains(message), "{}", err.message);
        }
        // Changing the storage version keeps the previous one in storedVersions.
        install_widgets(&core).await;
        let mut crd = core.get(&crds, "", "widgets.demo.pravega.io").expect("get");
        crd["spec"]["versions"][0]["storage"] = json!(true);
        crd["spec"]["versions"][1]["storage"] = json!(false);
        let updated = core
            .update(
                &crds,
                "",
                "widgets.demo.pravega.io",
                None,
                crd,
                &WriteOpts::default(),
            )
            .await
            .expect("update")
            .object;
        assert_eq!(
            updated["status"]["storedVersions"],
            json!(["v1beta1", "v1alpha1"])
        );
        let groups = core.lock().registry.groups();
        assert!(
            groups
                .iter()
                .any(|(g, vs)| g == "demo.pravega.io" && vs == &["v1alpha1", "v1beta1"])
        );
    }
}
