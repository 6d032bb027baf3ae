//! Prometheus metrics of the operator, served on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pravega_crds::{ConditionType, PravegaClusterStatus, reasons};

use crate::planner::{Blocked, CheckFacts, CheckOutcome};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels naming a cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// Namespace of the PravegaCluster.
    pub namespace: String,
    /// Name of the PravegaCluster.
    pub cluster: String,
}

/// Labels of a failed reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The kind of error (see `Error::kind`).
    pub kind: String,
}

/// Labels of a write to the API server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `apply`, `delete`, `patch_status`.
    pub verb: String,
    /// The object kind, e.g. `StatefulSet`.
    pub kind: String,
}

/// Labels of a request to the API server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// The resource (plural, with its subresource: `pods`, `pravegaclusters/status`), or the
    /// path for other endpoints (`/version`).
    pub kind: String,
}

/// The verb and resource of an API request, as the API server's audit log names them.
pub fn request_labels(
    method: &http::Method,
    path: &str,
    query: Option<&str>,
) -> (&'static str, String) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/GROUP/VERSION/...
    let rest = match parts.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return (verb_of(method, true, query), path.to_owned()),
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let (kind, named) = match rest {
        [] => (String::new(), false),
        [resource] => ((*resource).to_owned(), false),
        [resource, _name] => ((*resource).to_owned(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
    };
    (verb_of(method, named, query), kind)
}

fn verb_of(method: &http::Method, named: bool, query: Option<&str>) -> &'static str {
    let watch = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if named => "delete",
        http::Method::DELETE => "deletecollection",
        _ => "other",
    }
}

/// Labels of an upgrade's blocker.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BlockedLabels {
    /// Namespace of the PravegaCluster.
    pub namespace: String,
    /// Name of the PravegaCluster.
    pub cluster: String,
    /// The blocker's name (`status.upgrade.blockedBy.reason`).
    pub reason: String,
}

/// Labels of a safety check run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// The check's name.
    pub check: String,
    /// `passed`, `failed`, `unreachable` or `not_applicable`.
    pub outcome: String,
}

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Reconciles started.
    pub reconciliations: Counter,
    /// Reconciles that failed, by kind of error.
    pub failures: Family<ErrorLabels, Counter>,
    /// Reconcile durations in seconds.
    pub duration: Histogram,
    /// Writes made to the API server for clusters (applies, deletes, status patches); a converged
    /// cluster costs none.
    pub writes: Family<WriteLabels, Counter>,
    /// Desired members per cluster.
    pub members_desired: Family<ClusterLabels, Gauge>,
    /// Ready members per cluster.
    pub members_ready: Family<ClusterLabels, Gauge>,
    /// 1 while a cluster is upgrading or rolling back, else 0.
    pub upgrading: Family<ClusterLabels, Gauge>,
    /// 1 while a cluster's last upgrade, rollback or rolling restart failed (`Error` with
    /// `UpgradeFailed`, `RollbackFailed` or `RestartFailed`), else 0.
    pub upgrade_failed: Family<ClusterLabels, Gauge>,
    /// 1 while a cluster's last reconcile failed, else 0.
    pub reconcile_failing: Family<ClusterLabels, Gauge>,
    /// 1 while a cluster's `Ready` condition is True, else 0.
    pub ready: Family<ClusterLabels, Gauge>,
    /// Every request made to the API server (reads and watches included), by verb and kind.
    pub api_requests: Family<RequestLabels, Counter>,
    /// 1 for the reason an upgrade or rollback of a cluster waits, while it does.
    pub upgrade_blocked: Family<BlockedLabels, Gauge>,
    /// Safety checks run before restarts, by check and outcome.
    pub safety_checks: Family<CheckLabels, Counter>,
    /// 1 while this replica holds the leader lease (or runs without leader election).
    pub leader: Gauge,
    /// Sum of `writes` over every label set.
    writes_total: AtomicU64,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` under the `pravega_operator` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciliations: Counter::default(),
            failures: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            writes: Family::default(),
            members_desired: Family::default(),
            members_ready: Family::default(),
            upgrading: Family::default(),
            upgrade_failed: Family::default(),
            reconcile_failing: Family::default(),
            ready: Family::default(),
            api_requests: Family::default(),
            upgrade_blocked: Family::default(),
            safety_checks: Family::default(),
            leader: Gauge::default(),
            writes_total: AtomicU64::new(0),
        };
        let r = registry.sub_registry_with_prefix("pravega_operator");
        r.register(
            "reconciliations",
            "PravegaCluster reconciles started",
            metrics.reconciliations.clone(),
        );
        r.register(
            "reconcile_failures",
            "PravegaCluster reconciles that failed, by kind of error",
            metrics.failures.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Duration of PravegaCluster reconciles",
            metrics.duration.clone(),
        );
        r.register(
            "api_writes",
            "Writes to the API server made while reconciling (apply, delete, patch_status)",
            metrics.writes.clone(),
        );
        r.register(
            "cluster_members_desired",
            "Desired members (bookies, controllers and segment stores) of a PravegaCluster",
            metrics.members_desired.clone(),
        );
        r.register(
            "cluster_members_ready",
            "Ready members of a PravegaCluster",
            metrics.members_ready.clone(),
        );
        r.register(
            "cluster_upgrading",
            "1 while a PravegaCluster is being upgraded or rolled back",
            metrics.upgrading.clone(),
        );
        r.register(
            "cluster_upgrade_failed",
            "1 while the last upgrade or rollback of a PravegaCluster failed and needs a person",
            metrics.upgrade_failed.clone(),
        );
        r.register(
            "cluster_reconcile_failing",
            "1 while the last reconcile of a PravegaCluster failed",
            metrics.reconcile_failing.clone(),
        );
        r.register(
            "cluster_ready",
            "1 while a PravegaCluster's Ready condition is True",
            metrics.ready.clone(),
        );
        r.register(
            "api_requests",
            "Requests made to the API server, reads and watches included, by verb and kind",
            metrics.api_requests.clone(),
        );
        r.register(
            "upgrade_blocked",
            "1 for the reason (status.upgrade.blockedBy) an upgrade or rollback of a PravegaCluster waits before its next restart",
            metrics.upgrade_blocked.clone(),
        );
        r.register(
            "safety_checks",
            "Safety checks run before pod restarts, by check and outcome",
            metrics.safety_checks.clone(),
        );
        r.register(
            "leader",
            "1 while this replica is the active operator",
            metrics.leader.clone(),
        );
        metrics
    }

    /// Counts one write.
    pub fn count_write(&self, verb: &str, kind: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                verb: verb.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
        self.writes_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request to the API server.
    pub fn count_request(&self, verb: &str, kind: &str) {
        self.api_requests
            .get_or_create(&RequestLabels {
                verb: verb.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Total writes made so far.
    pub fn total_writes(&self) -> u64 {
        self.writes_total.load(Ordering::Relaxed)
    }

    /// Records a finished reconcile of `duration`.
    pub fn observe_duration(&self, duration: Duration) {
        self.duration.observe(duration.as_secs_f64());
    }

    /// Records a failed reconcile.
    pub fn count_failure(&self, kind: &str) {
        self.failures
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts the safety checks of one probe.
    pub fn count_checks(&self, facts: &CheckFacts) {
        for (check, outcome) in &facts.outcomes {
            let outcome = match outcome {
                CheckOutcome::Passed => "passed",
                CheckOutcome::Failed(_) => "failed",
                CheckOutcome::Unreachable(_) => "unreachable",
                CheckOutcome::NotApplicable(_) => "not_applicable",
            };
            self.safety_checks
                .get_or_create(&CheckLabels {
                    check: check.as_str().to_owned(),
                    outcome: outcome.to_owned(),
                })
                .inc();
        }
    }

    fn set_blocked(&self, namespace: &str, cluster: &str, reason: Option<&str>) {
        for r in Blocked::REASONS {
            let labels = BlockedLabels {
                namespace: namespace.to_owned(),
                cluster: cluster.to_owned(),
                reason: r.to_owned(),
            };
            if reason == Some(r) {
                self.upgrade_blocked.get_or_create(&labels).set(1);
            } else {
                self.upgrade_blocked.remove(&labels);
            }
        }
    }

    /// Sets the per-cluster gauges from a status the operator wrote (or observed).
    pub fn set_cluster(&self, namespace: &str, cluster: &str, status: &PravegaClusterStatus) {
        let labels = ClusterLabels {
            namespace: namespace.to_owned(),
            cluster: cluster.to_owned(),
        };
        let flag = |b: bool| i64::from(b);
        self.members_desired
            .get_or_create(&labels)
            .set(i64::from(status.replicas));
        self.members_ready
            .get_or_create(&labels)
            .set(i64::from(status.ready_replicas));
        self.upgrading.get_or_create(&labels).set(flag(
            status.is_condition_true(ConditionType::Upgrading)
                || status.is_condition_true(ConditionType::RollbackInProgress),
        ));
        self.upgrade_failed.get_or_create(&labels).set(flag(
            status.has_error_reason(reasons::UPGRADE_FAILED)
                || status.has_error_reason(reasons::ROLLBACK_FAILED)
                || status.has_error_reason(reasons::RESTART_FAILED),
        ));
        self.reconcile_failing
            .get_or_create(&labels)
            .set(flag(status.has_error_reason(reasons::RECONCILE_FAILED)));
        self.ready
            .get_or_create(&labels)
            .set(flag(status.is_condition_true(ConditionType::Ready)));
        let blocked = status
            .upgrade
            .as_ref()
            .and_then(|u| u.blocked_by.as_ref())
            .map(|b| b.reason.as_str());
        self.set_blocked(namespace, cluster, blocked);
    }

    /// Forgets a deleted cluster's gauges.
    pub fn remove_cluster(&self, namespace: &str, cluster: &str) {
        let labels = ClusterLabels {
            namespace: namespace.to_owned(),
            cluster: cluster.to_owned(),
        };
        self.members_desired.remove(&labels);
        self.members_ready.remove(&labels);
        self.upgrading.remove(&labels);
        self.upgrade_failed.remove(&labels);
        self.reconcile_failing.remove(&labels);
        self.ready.remove(&labels);
        self.set_blocked(namespace, cluster, None);
    }
}

/// Renders the registry in the OpenMetrics text format.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_like_the_audit_log_names_them() {
        use http::Method;
        let l = |m: Method, path: &str, q: Option<&str>| {
            let (verb, kind) = request_labels(&m, path, q);
            (verb, kind)
        };
        assert_eq!(
            l(
                Method::GET,
                "/api/v1/namespaces/default/pods",
                Some("labelSelector=a")
            ),
            ("list", "pods".into())
        );
        assert_eq!(
            l(
                Method::GET,
                "/api/v1/pods",
                Some("watch=true&resourceVersion=1")
            ),
            ("watch", "pods".into())
        );
        assert_eq!(
            l(
                Method::PATCH,
                "/apis/pravega.pravega.io/v1beta1/namespaces/default/pravegaclusters/example/status",
                None
            ),
            ("patch", "pravegaclusters/status".into())
        );
        assert_eq!(
            l(
                Method::GET,
                "/apis/apps/v1/namespaces/ns/statefulsets/example-bookie",
                None
            ),
            ("get", "statefulsets".into())
        );
        assert_eq!(
            l(
                Method::DELETE,
                "/api/v1/namespaces/ns/pods/example-bookie-0",
                None
            ),
            ("delete", "pods".into())
        );
        assert_eq!(
            l(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/ns/events",
                None
            ),
            ("create", "events".into())
        );
        assert_eq!(
            l(Method::GET, "/api/v1/namespaces", None),
            ("list", "namespaces".into())
        );
        assert_eq!(l(Method::GET, "/version", None), ("get", "/version".into()));
    }

    #[test]
    fn metrics_render_with_names_and_labels() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        m.reconciliations.inc();
        m.count_write("apply", "StatefulSet");
        m.count_write("apply", "StatefulSet");
        m.count_write("patch_status", "PravegaCluster");
        m.count_failure("Kube");
        let mut status = PravegaClusterStatus {
            replicas: 7,
            ready_replicas: 6,
            ..PravegaClusterStatus::default()
        };
        let t = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        );
        status.set_condition(
            ConditionType::Upgrading,
            pravega_crds::ConditionStatus::True,
            reasons::IN_PROGRESS,
            "",
            &t,
        );
        status.set_condition(
            ConditionType::Error,
            pravega_crds::ConditionStatus::True,
            reasons::UPGRADE_FAILED,
            "",
            &t,
        );
        m.set_cluster("default", "example", &status);
        m.observe_duration(Duration::from_millis(30));
        assert_eq!(m.total_writes(), 3);
        let text = render(&registry).unwrap();
        assert!(
            text.contains("pravega_operator_reconciliations_total 1"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"pravega_operator_api_writes_total{verb="apply",kind="StatefulSet"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"pravega_operator_cluster_members_ready{namespace="default",cluster="example"} 6"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"pravega_operator_cluster_upgrading{namespace="default",cluster="example"} 1"#
            ),
            "{text}"
        );
        for (gauge, value) in [
            ("cluster_upgrade_failed", 1),
            ("cluster_reconcile_failing", 0),
            ("cluster_ready", 0),
        ] {
            let line = format!(
                r#"pravega_operator_{gauge}{{namespace="default",cluster="example"}} {value}"#
            );
            assert!(text.contains(&line), "{line} missing in {text}");
        }
        assert!(
            text.contains("pravega_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        m.remove_cluster("default", "example");
        let text = render(&registry).unwrap();
        assert!(!text.contains(r#"cluster="example""#), "{text}");
    }
}
