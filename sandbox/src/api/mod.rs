//! The API server's object semantics: create, update, patch, delete, garbage collection,
//! namespace termination, pod grace periods and CRD registration. HTTP lives in `server`.
//!
//! Every write that changes an object (create, update, patch, delete) ends in
//! [`Core::commit`]: admission, the dry-run answer, then the store under the lock.
//! `validate` checks and defaults objects, `write` has create, update and patch, `delete`
//! deletion, garbage collection and namespace termination.

mod delete;
mod validate;
mod write;

use crate::admission::AdmissionRequest;
use crate::convert::{storage_group, to_external};
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::store::{ObjKey, State};
use crate::util::now_rfc3339;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
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
    /// `force` (server-side apply takes the fields other managers own).
    pub force: bool,
    /// The client's `User-Agent`: names the field manager of a write without `fieldManager`.
    pub user_agent: String,
    /// The subresource a write came through when it is not the one written (`scale`), for
    /// its `managedFields` entry.
    pub subresource: Option<String>,
}

impl WriteOpts {
    /// The field manager of a write other than an apply: `fieldManager`, else the
    /// User-Agent's product.
    pub fn manager(&self) -> String {
        match self.field_manager.as_deref() {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => crate::managed::manager_from_user_agent(&self.user_agent),
        }
    }
}

impl Default for WriteOpts {
    fn default() -> Self {
        WriteOpts {
            dry_run: false,
            validation: FieldValidation::Warn,
            field_manager: None,
            force: false,
            user_agent: String::new(),
            subresource: None,
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

/// A validated write on its way to [`Core::commit`].
struct PendingWrite<'a> {
    /// What admission reviews; its `object` is also the answer to a dry run.
    review: AdmissionRequest<'a>,
    /// The HTTP status of success: 201 for a create, 200 otherwise.
    code: u16,
    /// Warnings gathered while preparing the object (unknown fields).
    warnings: Vec<String>,
}

/// What a write left in the store.
struct Stored {
    /// The object as the response shows it (stored form).
    object: Arc<Value>,
    /// For a pod given a grace period: when to remove it.
    removal: Option<GraceRemoval>,
}

impl Stored {
    /// A write that needs no timer.
    fn now(object: Arc<Value>) -> Self {
        Stored {
            object,
            removal: None,
        }
    }
}

/// A terminating pod to remove when its grace period ends.
struct GraceRemoval {
    key: ObjKey,
    /// The pod's uid: a pod created again under the same name is not removed.
    uid: String,
    after: Duration,
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

    /// The last step of every write: runs admission on the reviewed object, answers a dry
    /// run with it, else stores under the state lock with `store` (which re-checks what may
    /// have changed since the object was prepared), wakes the watches and starts the grace
    /// period timer of a terminating pod.
    async fn commit(
        self: &Arc<Self>,
        write: PendingWrite<'_>,
        store: impl FnOnce(&Core, &mut State) -> Result<Stored, ApiError>,
    ) -> Result<Outcome, ApiError> {
        let admitted = crate::admission::admit(self, &write.review).await?;
        let mut warnings = write.warnings;
        warnings.extend(admitted.warnings);
        if write.review.dry_run {
            return Ok(Outcome {
                code: write.code,
                object: write.review.object.clone(),
                warnings,
            });
        }
        let stored = {
            let mut st = self.lock();
            let stored = store(self, &mut st)?;
            self.notify(st.rv);
            stored
        };
        if let Some(removal) = stored.removal {
            self.remove_after_grace(removal);
        }
        Ok(Outcome {
            code: write.code,
            object: to_external(write.review.info, &stored.object),
            warnings,
        })
    }

    /// Removes a terminating pod when its grace period ends (unless it was replaced, got
    /// finalizers or is gone by then).
    fn remove_after_grace(self: &Arc<Self>, removal: GraceRemoval) {
        let core = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(removal.after) => core.grace_elapsed(&removal.key, &removal.uid),
                _ = core.shutdown.cancelled() => {}
            }
        });
    }

    /// Ends every open watch stream (clients reconnect, as after an API server restart).
    pub fn close_watches(&self) {
        self.closer.send_modify(|g| *g += 1);
    }
}

#[cfg(test)]
mod tests;
