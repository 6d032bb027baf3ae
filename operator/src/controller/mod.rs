//! The reconcile loop: read a PravegaCluster's workloads and pods, compute its member status,
//! ask the planner for the versions and upgrade actions, build the desired objects, apply the
//! ones that differ, carry out the planned pod deletions, publish Events and write the status
//! when it changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Preconditions};
use kube::runtime::controller::Action as ControllerAction;
use kube::runtime::events::{EventType, Reporter};
use kube::{Api, Client, ResourceExt};
use pravega_crds::names::{self, Component};
use pravega_crds::{ConditionType, PravegaCluster, event_actions, reasons};
use serde::Serialize;
use tokio::sync::RwLock;
use tracing::{debug, info, warn};

use crate::cache::{Caches, NamespaceView, Write, cached};
use crate::error_condition::{self, Finding};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::planner::{self, Observation};
use crate::probe;
use crate::record::{ClusterKey, Records};
use crate::resources;
use crate::status;

mod converged;
mod error;
mod refusal;
mod writes;

pub use converged::{DESIRED_HASH_KEY, Owned, is_converged, stable_hash, stamp};
pub use error::{Error, api_message};
use refusal::{record_volume_version, refused, report_refusal};
pub use writes::event_note;

/// How often a cluster is looked at again when nothing happens (a safety net: progress is
/// driven by watches).
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(300);

/// Diagnostics shown on `/` of the metrics server.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostics {
    /// When the last reconcile started.
    #[serde(rename = "lastReconcile")]
    pub last_reconcile: Option<Timestamp>,
    /// The Event reporter (controller and instance).
    pub reporter: String,
}

/// Everything the reconcile loop needs.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Diagnostics.
    pub diagnostics: Arc<RwLock<Diagnostics>>,
    /// Who publishes the Events about PravegaClusters.
    pub reporter: Reporter,
    /// The watch caches every read comes from.
    pub caches: Caches,
    /// What the operator remembers about each cluster between reconciles.
    pub records: Records,
    /// Whether this replica may write now (checked before every write).
    pub leadership: Arc<Leadership>,
}

/// What happened to one applied object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist and was created.
    Created,
    /// It differed and was updated.
    Updated,
    /// It already was as desired: no write.
    Unchanged,
}

/// Times a reconcile, however it ends (`pravega_operator_reconcile_duration_seconds`).
struct Timer<'m> {
    metrics: &'m Metrics,
    started: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.metrics.observe_duration(self.started.elapsed());
    }
}

/// Reconciles one PravegaCluster. Errors are reported on the cluster (an `Error` condition with
/// reason `ReconcileFailed` and a Warning Event) and retried with backoff by [`error_policy`].
pub async fn reconcile(
    cluster: Arc<PravegaCluster>,
    ctx: Arc<Context>,
) -> Result<ControllerAction, Error> {
    let _timer = Timer {
        metrics: &ctx.metrics,
        started: Instant::now(),
    };
    ctx.metrics.reconciliations.inc();
    ctx.diagnostics.write().await.last_reconcile = Some(Timestamp::now());
    let key = ClusterKey::of(&cluster);
    info!("Reconciling PravegaCluster {key}");
    if !ctx.caches.wait_until_ready().await {
        return Ok(ControllerAction::await_change());
    }
    // Decide on what the caches show only once they show this operator's own last writes (a
    // status written a moment ago, a deleted pod): the watch event that brings them triggers
    // the next reconcile.
    let view = NamespaceView {
        caches: &ctx.caches,
        namespace: &key.namespace,
    };
    if let Some(what) = ctx.records.with(&key, |r| r.pending.unmet(&view)) {
        debug!("PravegaCluster {key}: waiting for the cache to show {what}");
        return Ok(ControllerAction::requeue(Duration::from_secs(1)));
    }
    let Some(cluster) = cached(&ctx.caches.clusters, &key.namespace, &key.name) else {
        ctx.metrics.remove_cluster(&key.namespace, &key.name);
        ctx.records.forget(&key);
        return Ok(ControllerAction::await_change());
    };
    let result = reconcile_cluster(&cluster, &ctx, &key).await;
    match &result {
        Ok(_) => ctx.records.with(&key, |r| {
            r.failures = 0;
            r.reported_failure = None;
        }),
        Err(e) => report_failure(&cluster, &ctx, &key, e).await,
    }
    result
}

/// Requeues a failed cluster with exponential backoff: 1s, 2s, 4s ... capped at 5 minutes,
/// counted per cluster since its last successful reconcile.
pub fn error_policy(
    cluster: Arc<PravegaCluster>,
    error: &Error,
    ctx: Arc<Context>,
) -> ControllerAction {
    ctx.metrics.count_failure(error.kind());
    let failures = ctx.records.with(&ClusterKey::of(&cluster), |r| {
        r.failures = r.failures.saturating_add(1);
        r.failures
    });
    let delay = backoff_delay(failures);
    warn!(cluster = %cluster.name_any(), error = %error, failures, "reconcile failed; retrying in {delay:?}");
    ControllerAction::requeue(delay)
}

/// The delay before the next attempt after `failures` consecutive failures.
pub fn backoff_delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs((1u64 << exp).min(MAX_BACKOFF.as_secs()))
}

/// Longest delay between retries of a failing cluster.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Reports a failed reconcile: `Error` `ReconcileFailed` (never over a failure of a version
/// change), one Warning Event per distinct failure, the metrics.
async fn report_failure(cluster: &PravegaCluster, ctx: &Context, key: &ClusterKey, error: &Error) {
    let before = cluster.status.clone().unwrap_or_default();
    let mut after = before.clone();
    let now = Time(Timestamp::now());
    let message = error.to_string();
    error_condition::record(&mut after, Finding::ReconcileFailed(&message), &now);
    status::set_ready(&mut after, &cluster.spec.version, &now);
    ctx.metrics
        .set_cluster(&key.namespace, &key.name, &cluster.spec, &after);
    let repeated = ctx.records.with(key, |r| {
        r.reported_failure.replace(message.clone()).as_ref() == Some(&message)
    });
    if !repeated {
        ctx.publish(
            cluster,
            EventType::Warning,
            reasons::RECONCILE_FAILED,
            event_actions::RECONCILE,
            message,
            None,
        )
        .await;
    }
    if let Err(e) = ctx.write_status(key, &before, &after).await {
        warn!(error = %e, "recording the reconcile failure in the status failed");
    }
}

/// The workloads and pods of a cluster, as the caches show them ([`read_workloads`]).
struct Snapshot {
    bookkeeper: Option<StatefulSet>,
    controller: Option<Deployment>,
    segmentstore: Option<StatefulSet>,
    pods: Vec<Pod>,
}

/// The cluster's three workloads (absent ones are `None`) and its pods (instance label), from
/// the caches.
fn read_workloads(ctx: &Context, key: &ClusterKey) -> Snapshot {
    let caches = &ctx.caches;
    let (ns, name) = (key.namespace.as_str(), key.name.as_str());
    Snapshot {
        bookkeeper: cached(
            &caches.stateful_sets,
            ns,
            &Component::Bookkeeper.workload_name(name),
        ),
        controller: cached(
            &caches.deployments,
            ns,
            &Component::Controller.workload_name(name),
        ),
        segmentstore: cached(
            &caches.stateful_sets,
            ns,
            &Component::SegmentStore.workload_name(name),
        ),
        pods: caches.cluster_pods(ns, name),
    }
}

/// One reconcile, as a pipeline: read (the caches) → decide (the spec rules, then the
/// planner with its safety checks) → apply (objects, pod deletions) → report (status, Events,
/// metrics).
async fn reconcile_cluster(
    cluster: &PravegaCluster,
    ctx: &Context,
    key: &ClusterKey,
) -> Result<ControllerAction, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        // Owned objects go with the cluster (garbage collection); PVCs stay.
        ctx.metrics.remove_cluster(&key.namespace, &key.name);
        return Ok(ControllerAction::await_change());
    }
    let now = Timestamp::now();
    let snapshot = read_workloads(ctx, key);
    if let Some(refused) = refused(ctx, cluster, key, &snapshot).await? {
        report_refusal(ctx, cluster, key, &refused, &Time(now)).await?;
        return Ok(ControllerAction::await_change());
    }
    ctx.records.with(key, |r| r.reported_refusal = None);
    let plan = decide(ctx, cluster, &snapshot, now).await;
    apply(ctx, cluster, key, &snapshot, &plan).await?;
    report(ctx, cluster, key, &plan, &Time(now)).await
}

/// Decide, part 2: the member status from the pods, then the planner; when its next restart
/// waits for safety checks, the prober runs them and the planner decides again on what they
/// found.
async fn decide(
    ctx: &Context,
    cluster: &PravegaCluster,
    snapshot: &Snapshot,
    now: Timestamp,
) -> planner::Plan {
    let mut member_status = status::member_status(cluster, &snapshot.pods, &Time(now));
    // The spec passed the rules: nothing of the reconcile's own stands (the planner sets its
    // own InvalidSpec again if a version change is still refused).
    error_condition::record(&mut member_status, Finding::Clear, &Time(now));
    let mut observation = Observation {
        cluster,
        bookkeeper: snapshot.bookkeeper.as_ref(),
        controller: snapshot.controller.as_ref(),
        segmentstore: snapshot.segmentstore.as_ref(),
        pods: &snapshot.pods,
        now,
        checks: None,
    };
    let plan = planner::plan(&observation, member_status.clone());
    let Some(request) = &plan.probe else {
        return plan;
    };
    let probed = Instant::now();
    let facts = probe::run(request, cluster, &snapshot.pods).await;
    ctx.metrics
        .safety_check_duration
        .observe(probed.elapsed().as_secs_f64());
    ctx.metrics.count_checks(&facts);
    observation.checks = Some(&facts);
    planner::plan(&observation, member_status)
}

/// Apply: the desired objects (each only when it differs from its cached twin), then the
/// planned pod deletions.
async fn apply(
    ctx: &Context,
    cluster: &PravegaCluster,
    key: &ClusterKey,
    snapshot: &Snapshot,
    plan: &planner::Plan,
) -> Result<(), Error> {
    for line in &plan.logs {
        info!("{line}");
    }
    for line in &plan.warnings {
        warn!("{line}");
    }
    let desired = resources::desired_objects(cluster, |c| plan.versions.get(c).to_owned())?;
    for cm in desired.config_maps {
        ctx.apply_cached(key, cm).await?;
    }
    for svc in desired.services {
        ctx.apply_cached(key, svc).await?;
    }
    for sts in desired.stateful_sets {
        let observed = match names::component_of(sts.labels()) {
            Some(Component::Bookkeeper) => snapshot.bookkeeper.as_ref(),
            _ => snapshot.segmentstore.as_ref(),
        };
        ctx.apply_workload(cluster, key, sts, observed).await?;
    }
    for deploy in desired.deployments {
        ctx.apply_workload(cluster, key, deploy, snapshot.controller.as_ref())
            .await?;
    }
    for pdb in desired.pod_disruption_budgets {
        ctx.apply_cached(key, pdb).await?;
    }
    for action in &plan.actions {
        execute(ctx, key, action).await?;
    }
    Ok(())
}

/// Report: the planned Events, the volumes' version, the status (written only when it changed)
/// and the metrics; and when to look again.
async fn report(
    ctx: &Context,
    cluster: &PravegaCluster,
    key: &ClusterKey,
    plan: &planner::Plan,
    now: &Time,
) -> Result<ControllerAction, Error> {
    for event in &plan.events {
        let type_ = if event.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.publish(
            cluster,
            type_,
            &event.reason,
            &event.action,
            event.note.clone(),
            None,
        )
        .await;
    }
    let before = cluster.status.clone().unwrap_or_default();
    let mut after = plan.status.clone();
    // Once the cluster runs a version, the volumes remember it (only when it changed: a
    // converged cluster costs no read).
    if let Some(version) = after.current_version.clone()
        && after.volumes_version.as_deref() != Some(version.as_str())
        && after.is_condition_true(ConditionType::PodsReady)
        && !after.is_condition_true(ConditionType::Upgrading)
        && !after.is_condition_true(ConditionType::RollbackInProgress)
    {
        record_volume_version(ctx, cluster, &key.namespace, &version).await?;
        after.volumes_version = Some(version);
    }
    status::set_ready(&mut after, &cluster.spec.version, now);
    status::keep_unchanged_condition_times(&before, &mut after);
    ctx.write_status(key, &before, &after).await?;
    ctx.metrics
        .set_cluster(&key.namespace, &key.name, &cluster.spec, &after);
    Ok(ControllerAction::requeue(
        plan.requeue_after
            .unwrap_or(RESYNC_INTERVAL)
            .min(RESYNC_INTERVAL),
    ))
}

async fn execute(
    ctx: &Context,
    cluster: &ClusterKey,
    action: &planner::Action,
) -> Result<(), Error> {
    match action {
        planner::Action::DeletePod {
            component,
            namespace,
            name,
            uid,
            resource_version,
            reason,
        } => {
            ctx.may_write()?;
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: Some(resource_version.clone()),
                }),
                ..DeleteParams::default()
            };
            match api.delete(name, &params).await {
                Ok(_) => {
                    ctx.metrics.count_write("delete", "Pod");
                    ctx.records.with(cluster, |r| {
                        r.pending.expect(Write::PodDeleted {
                            name: name.clone(),
                            uid: uid.clone(),
                        })
                    });
                    info!(%component, "deleted pod {namespace}/{name}: {reason}");
                    Ok(())
                }
                // The pod changed or went away since it was observed: the next reconcile
                // (triggered by that very change) decides again.
                Err(kube::Error::Api(s)) if s.is_conflict() || s.is_not_found() => {
                    info!(%component, "not deleting pod {namespace}/{name}: it changed since it was observed ({})", s.message);
                    Ok(())
                }
                Err(source) => Err(Error::Kube {
                    action: format!("deleting pod {namespace}/{name}"),
                    source,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_delay(1), Duration::from_secs(1));
        assert_eq!(backoff_delay(2), Duration::from_secs(2));
        assert_eq!(backoff_delay(4), Duration::from_secs(8));
        assert_eq!(backoff_delay(9), Duration::from_secs(256));
        assert_eq!(backoff_delay(10), Duration::from_secs(300));
        assert_eq!(backoff_delay(u32::MAX), Duration::from_secs(300));
    }
}
