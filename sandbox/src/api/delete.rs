//! Deletion: preconditions, finalizers, pod grace periods, garbage collection
//! (`ownerReferences`, orphan and foreground propagation), CRD and namespace termination.

use super::{Core, DeleteOpts, GraceRemoval, Outcome, PendingWrite, Stored, key};
use crate::admission::{AdmissionRequest, Operation};
use crate::convert::{storage_group, to_external};
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::store::{ObjKey, State};
use crate::util::{meta_mut, meta_str};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn finalizers(v: &Value) -> Vec<String> {
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

pub(super) fn owner_uids(v: &Value) -> Vec<String> {
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

impl Core {
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
        let preconditions = [
            ("UID", "uid", &opts.uid),
            ("ResourceVersion", "resourceVersion", &opts.resource_version),
        ];
        for (label, field, wanted) in preconditions {
            let actual = meta_str(&old, field);
            if let Some(wanted) = wanted
                && Some(wanted.as_str()) != actual
            {
                return Err(ApiError::conflict(
                    &external_info.group,
                    &external_info.plural,
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {}",
                        actual.unwrap_or_default()
                    ),
                ));
            }
        }
        if info.plural == "namespaces" && ["default", "kube-system", "kube-public"].contains(&name)
        {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let ext_old = to_external(external_info, &old);
        let write = PendingWrite {
            review: AdmissionRequest {
                info: external_info,
                operation: Operation::Delete,
                subresource: None,
                object: &ext_old,
                old_object: Some(&ext_old),
                namespace: ns,
                name,
                dry_run: opts.dry_run,
            },
            code: 200,
            warnings: Vec::new(),
        };
        self.commit(write, |core, st| {
            let Some(cur) = st.objects.get(&k).cloned() else {
                return Err(ApiError::not_found(
                    &external_info.group,
                    &external_info.plural,
                    name,
                ));
            };
            Ok(core.delete_locked(st, info, &k, &cur, opts))
        })
        .await
    }

    /// Whether a terminating object without finalizers may go now (pods wait for their grace
    /// period or a kubelet's final delete).
    pub(super) fn removable_now(&self, info: &ResourceInfo, obj: &Value) -> bool {
        if info.group.is_empty() && info.plural == "pods" {
            meta_str(obj, "deletionTimestamp")
                .and_then(crate::util::parse_time)
                .is_none_or(|t| t <= jiff::Timestamp::now())
        } else {
            true
        }
    }

    pub(super) fn grace_elapsed(&self, k: &ObjKey, uid: &str) {
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
    /// Deletes at once, without a grace period: what garbage collection and namespace deletion
    /// do here (see the README's simplifications).
    fn delete_at_once(&self, st: &mut State, info: &ResourceInfo, k: &ObjKey, cur: &Arc<Value>) {
        let now = DeleteOpts {
            grace: Some(0),
            ..Default::default()
        };
        self.delete_locked(st, info, k, cur, &now);
    }

    pub(super) fn delete_locked(
        &self,
        st: &mut State,
        info: &ResourceInfo,
        k: &ObjKey,
        cur: &Arc<Value>,
        opts: &DeleteOpts,
    ) -> Stored {
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
            return Stored::now(stored);
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
                return Stored {
                    object: stored,
                    removal: Some(GraceRemoval {
                        key: k.clone(),
                        uid,
                        after: std::time::Duration::from_secs(grace as u64),
                    }),
                };
            }
            if grace > 0 {
                return Stored::now(cur.clone());
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
                return Stored::now(st.objects.get(k).cloned().unwrap_or(stored));
            }
            return Stored::now(stored);
        }
        let gone = self.remove_cascade(st, k);
        Stored::now(gone.unwrap_or_else(|| cur.clone()))
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

    /// What the garbage collector does with an object written with owners that are all gone
    /// (a controller acting on a stale cache re-creates what its deleted owner owned): it
    /// deletes it, as kube-controller-manager's garbage collector deletes a dependent whose
    /// owners are absent, looking each owner up by kind, name and uid (k8s.io/kubernetes v1.32
    /// `pkg/controller/garbagecollector/garbagecollector.go` `attemptToDeleteItem`). Here it
    /// happens in the same request. Owners of a kind that is not served, or references that
    /// cannot be read, are taken as present.
    pub(super) fn collect_if_orphaned(&self, st: &mut State, k: &ObjKey, obj: &Arc<Value>) {
        let Some(refs) = obj
            .get("metadata")
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
        else {
            return;
        };
        let present = |r: &Value| -> bool {
            let field = |f: &str| r.get(f).and_then(Value::as_str);
            let (Some(api_version), Some(kind), Some(name), Some(uid)) = (
                field("apiVersion"),
                field("kind"),
                field("name"),
                field("uid"),
            ) else {
                return true;
            };
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            let Some(owner) = st
                .registry
                .all()
                .find(|i| i.group == group && i.kind == kind)
            else {
                return true;
            };
            st.objects
                .get(&super::key(owner, &k.namespace, name))
                .is_some_and(|o| meta_str(o, "uid") == Some(uid))
        };
        if refs.iter().any(present) {
            return;
        }
        let info = st
            .registry
            .all()
            .find(|r| storage_group(r) == k.group && r.group == k.group && r.plural == k.resource)
            .cloned();
        if let Some(info) = info {
            self.delete_at_once(st, &info, k, obj);
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
                self.delete_at_once(st, &info, &k, &o);
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
    fn finish_namespace(&self, st: &mut State, ns: &str) -> Arc<Value> {
        let nk = ObjKey {
            group: String::new(),
            resource: "namespaces".into(),
            namespace: String::new(),
            name: ns.to_string(),
        };
        let before = st
            .objects
            .get(&nk)
            .cloned()
            .unwrap_or_else(|| Arc::new(json!({})));
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
                self.delete_at_once(st, &info, &k, &o);
            } else {
                st.remove(&k);
            }
        }
        let current = st.objects.get(&nk).cloned();
        match current {
            Some(n) if !st.objects.keys().any(|o| o.namespace == ns) => {
                st.remove(&nk);
                n
            }
            Some(n) => n,
            None => before,
        }
    }
}
