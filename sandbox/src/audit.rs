//! An audit log of the write requests the API server answered (verb, resource, namespace, name,
//! delete preconditions, response code, user agent), and of every request answered with an
//! injected fault (reads and watches too), read with [`crate::Sandbox::audit`].
//!
//! Tests use it to prove properties that watches cannot show, e.g. that no pod was deleted twice:
//! a second DELETE of a pod that is already terminating changes nothing a watch would see.
//!
//! Beside the log, every distinct kind of access (client, verb, group, resource) is kept, reads
//! and watches included, read with [`crate::Sandbox::accesses`]. The sandbox authorises every
//! authenticated request; tests compare what a client really did with the RBAC rules it is
//! deployed with, so a missing permission is found without a real server.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::{Method, Response};

use crate::fault::InjectedFault;

/// How many entries the log keeps (the oldest are dropped first).
const CAPACITY: usize = 100_000;

/// The `DeleteOptions` of a DELETE request that matter to an audit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteDetails {
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
}

/// One write request (POST, PUT, PATCH or DELETE), or one request answered with an injected
/// fault, and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When the answer was ready.
    pub time: SystemTime,
    /// `POST`, `PUT`, `PATCH` or `DELETE`.
    pub verb: String,
    /// API group (empty for the core group).
    pub group: String,
    /// Resource (plural), e.g. `pods`; empty when the path names none.
    pub resource: String,
    /// Namespace, for namespaced paths.
    pub namespace: Option<String>,
    /// Object name, when the path names one.
    pub name: Option<String>,
    /// Subresource, e.g. `status`.
    pub subresource: Option<String>,
    /// Preconditions and grace period, for a DELETE of a named object that was parsed.
    pub delete: Option<DeleteDetails>,
    /// HTTP status code of the answer (for a watch resume answered with an injected `410 Gone`
    /// `ERROR` event: 410).
    pub code: u16,
    /// Whether the answer was a fault injected by the sandbox (see
    /// [`crate::FaultOptions`]) rather than the outcome of the request: nothing was changed.
    pub injected_fault: bool,
    /// The client's `User-Agent` header (empty when absent).
    pub user_agent: String,
}

/// One kind of access a client made, as RBAC names it: the verb of the request (`get`, `list`,
/// `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`) on a resource of a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// The product of the client's `User-Agent` (the part before the first `/`), e.g.
    /// `pravega-operator`.
    pub client: String,
    /// The RBAC verb.
    pub verb: String,
    /// API group (empty for the core group).
    pub group: String,
    /// Resource, with `/subresource` where the request named one (`pods/log`).
    pub resource: String,
}

/// A shared, bounded audit log, and the set of accesses made.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    entries: Arc<Mutex<VecDeque<AuditEntry>>>,
    accesses: Arc<Mutex<BTreeSet<Access>>>,
}

impl AuditLog {
    /// Records a write request or an injected fault, and its answer; other requests are
    /// ignored.
    pub fn record<B>(&self, method: &Method, path: &str, user_agent: &str, resp: &Response<B>) {
        let fault = resp.extensions().get::<InjectedFault>();
        let write = matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if !write && fault.is_none() {
            return;
        }
        let (group, resource, namespace, name, subresource) = parse_path(path);
        let entry = AuditEntry {
            time: SystemTime::now(),
            verb: method.as_str().to_owned(),
            group,
            resource,
            namespace,
            name,
            subresource,
            delete: resp.extensions().get::<DeleteDetails>().cloned(),
            code: fault.map_or_else(|| resp.status().as_u16(), |f| f.code),
            injected_fault: fault.is_some(),
            user_agent: user_agent.to_owned(),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// Notes a request on a resource made with `verb` (see [`Access`]); the set holds each
    /// distinct access once, so its size is bounded by the API, not by the traffic.
    pub fn access(&self, verb: &str, path: &str, user_agent: &str) {
        let (group, resource, _, _, subresource) = parse_path(path);
        if resource.is_empty() {
            return;
        }
        let resource = match subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource,
        };
        let access = Access {
            client: user_agent.split('/').next().unwrap_or_default().to_owned(),
            verb: verb.to_owned(),
            group,
            resource,
        };
        self.accesses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(access);
    }

    /// Every distinct access made so far, in order.
    pub fn accesses(&self) -> Vec<Access> {
        self.accesses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Every recorded entry, oldest first.
    pub fn entries(&self) -> Vec<AuditEntry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

type PathParts = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Splits `/api/v1/...` or `/apis/<group>/<version>/...` into group, resource, namespace, name
/// and subresource.
pub(crate) fn parse_path(path: &str) -> PathParts {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest): (&str, &[&str]) = match segs.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (group, rest),
        _ => ("", &[]),
    };
    // `namespaces/<ns>/<resource>...`, except the Namespace's own `status`/`finalize`.
    let own_subresource =
        rest.len() == 3 && rest[0] == "namespaces" && matches!(rest[2], "status" | "finalize");
    let (namespace, rest) =
        if rest.first() == Some(&"namespaces") && rest.len() >= 3 && !own_subresource {
            (Some(rest[1].to_owned()), &rest[2..])
        } else {
            (None, rest)
        };
    let at = |i: usize| rest.get(i).map(|s| (*s).to_owned());
    (
        group.to_owned(),
        at(0).unwrap_or_default(),
        namespace,
        at(1),
        at(2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_into_their_parts() {
        assert_eq!(
            parse_path("/api/v1/namespaces/default/pods/example-bookie-0"),
            (
                String::new(),
                "pods".to_owned(),
                Some("default".to_owned()),
                Some("example-bookie-0".to_owned()),
                None
            )
        );
        assert_eq!(
            parse_path("/apis/pravega.pravega.io/v1beta1/namespaces/ns/pravegaclusters/x/status"),
            (
                "pravega.pravega.io".to_owned(),
                "pravegaclusters".to_owned(),
                Some("ns".to_owned()),
                Some("x".to_owned()),
                Some("status".to_owned())
            )
        );
        assert_eq!(
            parse_path("/api/v1/namespaces/default/status"),
            (
                String::new(),
                "namespaces".to_owned(),
                None,
                Some("default".to_owned()),
                Some("status".to_owned())
            )
        );
        assert_eq!(
            parse_path("/api/v1/namespaces"),
            (String::new(), "namespaces".to_owned(), None, None, None)
        );
    }

    #[test]
    fn only_writes_are_recorded_with_their_delete_details() {
        let log = AuditLog::default();
        let resp = Response::builder().status(200).body(()).unwrap();
        log.record(&Method::GET, "/api/v1/pods", "kubectl", &resp);
        assert!(log.entries().is_empty());
        let mut resp = Response::builder().status(409).body(()).unwrap();
        resp.extensions_mut().insert(DeleteDetails {
            uid: Some("u1".into()),
            resource_version: Some("7".into()),
            grace_period_seconds: None,
        });
        log.record(
            &Method::DELETE,
            "/api/v1/namespaces/default/pods/p",
            "op",
            &resp,
        );
        let entries = log.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].verb, "DELETE");
        assert_eq!(entries[0].code, 409);
        assert_eq!(entries[0].user_agent, "op");
        assert_eq!(
            entries[0].delete.as_ref().and_then(|d| d.uid.as_deref()),
            Some("u1")
        );
        assert!(!entries[0].injected_fault);
    }

    #[test]
    fn accesses_are_kept_once_each_by_client_product_verb_and_resource() {
        let log = AuditLog::default();
        for _ in 0..3 {
            log.access("watch", "/api/v1/pods", "pravega-operator/0.1.0 (linux)");
        }
        log.access(
            "patch",
            "/apis/pravega.pravega.io/v1beta1/namespaces/ns/pravegaclusters/x/status",
            "pravega-operator/0.1.0",
        );
        log.access("get", "/apis", "kubectl/v1.32.0");
        let accesses = log.accesses();
        let seen: Vec<(&str, &str, &str, &str)> = accesses
            .iter()
            .map(|a| (&*a.client, &*a.verb, &*a.group, &*a.resource))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "pravega-operator",
                    "patch",
                    "pravega.pravega.io",
                    "pravegaclusters/status"
                ),
                ("pravega-operator", "watch", "", "pods"),
            ],
            "discovery names no resource and is not an access"
        );
    }

    #[test]
    fn injected_faults_are_recorded_for_every_verb() {
        let log = AuditLog::default();
        let mut resp = Response::builder().status(503).body(()).unwrap();
        resp.extensions_mut().insert(InjectedFault { code: 503 });
        log.record(
            &Method::GET,
            "/api/v1/namespaces/default/pods",
            "kubectl",
            &resp,
        );
        let mut resp = Response::builder().status(200).body(()).unwrap();
        resp.extensions_mut().insert(InjectedFault { code: 410 });
        log.record(&Method::GET, "/api/v1/pods", "kubectl", &resp);
        let entries = log.entries();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.injected_fault && e.verb == "GET"));
        assert_eq!(entries[0].code, 503);
        assert_eq!(entries[0].resource, "pods");
        assert_eq!(entries[1].code, 410);
    }
}
