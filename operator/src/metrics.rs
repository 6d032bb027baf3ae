//! Prometheus metrics of the operator, served on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pravega_crds::duration::parse_duration;
use pravega_crds::types::DEFAULT_UPGRADE_TIMEOUT;
use pravega_crds::{Component, ConditionType, PravegaClusterSpec, PravegaClusterStatus, reasons};

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

/// Labels naming one component of a cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    /// Namespace of the PravegaCluster.
    pub namespace: String,
    /// Name of the PravegaCluster.
    pub cluster: String,
    /// `bookkeeper`, `controller` or `segmentstore`.
    pub component: String,
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
    /// Time the prober took to run the safety checks of one step, in seconds.
    pub safety_check_duration: Histogram,
    /// 1 while this replica holds the leader lease (or runs without leader election).
    pub leader: Gauge,
    /// Pods of a component at the version being rolled out, while a version change is in flight.
    pub upgrade_pods_updated: Family<ComponentLabels, Gauge>,
    /// Desired pods of a component, while a version change is in flight.
    pub upgrade_pods_target: Family<ComponentLabels, Gauge>,
    /// `status.upgrade.lastProgressAt` in unix seconds, while a version change is in flight.
    pub upgrade_last_progress: Family<ClusterLabels, Gauge>,
    /// `spec.upgrade.timeout` in seconds.
    pub upgrade_timeout: Family<ClusterLabels, Gauge>,
    /// 1 while a version change is paused (`spec.upgrade.paused`), else 0.
    pub upgrade_paused: Family<ClusterLabels, Gauge>,
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
            safety_check_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            leader: Gauge::default(),
            upgrade_pods_updated: Family::default(),
            upgrade_pods_target: Family::default(),
            upgrade_last_progress: Family::default(),
            upgrade_timeout: Family::default(),
            upgrade_paused: Family::default(),
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
            "safety_check_duration_seconds",
            "Time the safety checks of one restart took to run (all of them, concurrently)",
            metrics.safety_check_duration.clone(),
        );
        r.register(
            "leader",
            "1 while this replica is the active operator",
            metrics.leader.clone(),
        );
        r.register(
            "upgrade_pods_updated",
            "Pods of a component at the version being rolled out, while a PravegaCluster's upgrade or rollback is in flight",
            metrics.upgrade_pods_updated.clone(),
        );
        r.register(
            "upgrade_pods_target",
            "Desired pods of a component, while a PravegaCluster's upgrade or rollback is in flight",
            metrics.upgrade_pods_target.clone(),
        );
        r.register(
            "upgrade_last_progress_timestamp_seconds",
            "status.upgrade.lastProgressAt of a PravegaCluster's upgrade or rollback in flight, in unix seconds",
            metrics.upgrade_last_progress.clone(),
        );
        r.register(
            "upgrade_timeout_seconds",
            "spec.upgrade.timeout of a PravegaCluster: longest time without progress before a version change fails",
            metrics.upgrade_timeout.clone(),
        );
        r.register(
            "upgrade_paused",
            "1 while a PravegaCluster's upgrade or rollback is paused (spec.upgrade.paused)",
            metrics.upgrade_paused.clone(),
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

    /// Shows the failure counter of each kind at zero before any failure, so that the series
    /// exist from the start (`rate()` then sees the first failure, and dashboards have a line).
    pub fn expect_failure_kinds(&self, kinds: &[&str]) {
        for kind in kinds {
            let _ = self.failures.get_or_create(&ErrorLabels {
                kind: (*kind).to_owned(),
            });
        }
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

    /// Sets the per-cluster gauges from the spec and a status the operator wrote (or observed).
    pub fn set_cluster(
        &self,
        namespace: &str,
        cluster: &str,
        spec: &PravegaClusterSpec,
        status: &PravegaClusterStatus,
    ) {
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

        let timeout = parse_duration(&spec.upgrade.timeout)
            .or_else(|_| parse_duration(DEFAULT_UPGRADE_TIMEOUT))
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.upgrade_timeout.get_or_create(&labels).set(timeout);
        let in_flight = status.is_condition_true(ConditionType::Upgrading)
            || status.is_condition_true(ConditionType::RollbackInProgress);
        let paused = [ConditionType::Upgrading, ConditionType::RollbackInProgress]
            .into_iter()
            .filter_map(|t| status.condition(t))
            .any(|c| c.is_true() && c.reason() == reasons::PAUSED);
        self.upgrade_paused.get_or_create(&labels).set(flag(paused));
        let progress = status.upgrade.as_ref().filter(|_| in_flight);
        match progress.and_then(|u| u.last_progress_at.as_ref()) {
            Some(t) => {
                self.upgrade_last_progress
                    .get_or_create(&labels)
                    .set(t.0.as_second());
            }
            None => {
                self.upgrade_last_progress.remove(&labels);
            }
        }
        for c in Component::UPGRADE_ORDER {
            let component_labels = ComponentLabels {
                namespace: namespace.to_owned(),
                cluster: cluster.to_owned(),
                component: c.as_str().to_owned(),
            };
            match progress.and_then(|u| u.components.iter().find(|p| p.component == c.as_str())) {
                Some(p) => {
                    self.upgrade_pods_updated
                        .get_or_create(&component_labels)
                        .set(i64::from(p.updated));
                    self.upgrade_pods_target
                        .get_or_create(&component_labels)
                        .set(i64::from(p.target));
                }
                None => {
                    self.upgrade_pods_updated.remove(&component_labels);
                    self.upgrade_pods_target.remove(&component_labels);
                }
            }
        }
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
        self.upgrade_last_progress.remove(&labels);
        self.upgrade_timeout.remove(&labels);
        self.upgrade_paused.remove(&labels);
        for c in Component::UPGRADE_ORDER {
            let component_labels = ComponentLabels {
                namespace: namespace.to_owned(),
                cluster: cluster.to_owned(),
                component: c.as_str().to_owned(),
            };
            self.upgrade_pods_updated.remove(&component_labels);
            self.upgrade_pods_target.remove(&component_labels);
        }
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
        m.expect_failure_kinds(&["Conflict", "Kube"]);
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
        status.upgrade = Some(pravega_crds::types::UpgradeStatus {
            from_version: Some("0.4.0".to_owned()),
            to_version: Some("0.5.0".to_owned()),
            started_at: Some(t.clone()),
            last_progress_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap(),
            )),
            components: vec![pravega_crds::types::ComponentProgress {
                component: "bookkeeper".to_owned(),
                updated: 2,
                ready: 3,
                target: 3,
                done: false,
            }],
            ..Default::default()
        });
        let spec: PravegaClusterSpec =
            serde_json::from_value(serde_json::json!({"version": "0.5.0"})).unwrap();
        m.set_cluster("default", "example", &spec, &status);
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
        for line in [
            r#"pravega_operator_reconcile_failures_total{kind="Conflict"} 0"#,
            r#"pravega_operator_reconcile_failures_total{kind="Kube"} 1"#,
            r#"pravega_operator_upgrade_pods_updated{namespace="default",cluster="example",component="bookkeeper"} 2"#,
            r#"pravega_operator_upgrade_pods_target{namespace="default",cluster="example",component="bookkeeper"} 3"#,
            r#"pravega_operator_upgrade_last_progress_timestamp_seconds{namespace="default",cluster="example"} 1700000000"#,
            r#"pravega_operator_upgrade_timeout_seconds{namespace="default",cluster="example"} 600"#,
            r#"pravega_operator_upgrade_paused{namespace="default",cluster="example"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing in {text}");
        }
        m.remove_cluster("default", "example");
        let text = render(&registry).unwrap();
        assert!(!text.contains(r#"cluster="example""#), "{text}");
    }
}
