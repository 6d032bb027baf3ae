//! The reconcile loop: read a PravegaCluster's workloads and pods, compute its member status,
//! ask the planner for the versions and upgrade actions, build the desired objects, apply the
//! ones that differ, carry out the planned pod deletions, publish Events and write the status
//! when it changed.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, ObjectReference, PersistentVolumeClaim, Pod, PodTemplateSpec, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action as ControllerAction;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use pravega_crds::names::{self, ALLOW_OLDER_VERSION_KEY, Component, MANAGER, VOLUME_VERSION_KEY};
use pravega_crds::spec_rules::{
    FIXED_SETTINGS_KEY, check_cluster_name, check_fixed, fixed_settings,
};
use pravega_crds::version::{parse_version, precedence};
use pravega_crds::{
    ConditionType, Decision, DenyReason, PravegaCluster, PravegaClusterStatus, event_actions,
    event_reasons, reasons,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::RwLock;
use tracing::{debug, info, warn};

use crate::cache::{Caches, NamespaceView, Write, cached};
use crate::error_condition::{self, Finding, Shown};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::planner::{self, Observation};
use crate::probe;
use crate::record::{ClusterKey, Records};
use crate::resources::{self, BuildError};
use crate::status;

/// Annotation on every applied object: a hash of the desired object, so that a converged
/// object is recognised without a write.
pub const DESIRED_HASH_KEY: &str = "pravega.pravega.io/desired-hash";

/// How often a cluster is looked at again when nothing happens (a safety net: progress is
/// driven by watches).
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(300);

/// What went wrong while reconciling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{action}: {}", api_message(source))]
    Kube {
        /// What was being done, e.g. `applying StatefulSet default/example-bookie`.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The desired objects could not be built.
    #[error("building the desired objects: {0}")]
    Build(#[from] BuildError),
    /// This replica may no longer lead: it writes nothing.
    #[error("not writing: {0}")]
    NotLeader(String),
    /// An object could not be serialized.
    #[error("serializing {what}: {source}")]
    Serialize {
        /// What was serialized.
        what: String,
        /// The serializer error.
        #[source]
        source: serde_json::Error,
    },
}

/// What a person should read of a client error: the API server's own message for an API error
/// (`StatefulSet.apps "x" is invalid: ...`), not a dump of its Status object.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// Longest Event note the API server accepts (events.k8s.io/v1 `note`: 1 kB).
const MAX_EVENT_NOTE: usize = 1024;

/// `note` cut to fit an Event, at a character boundary, with an ellipsis when cut.
pub fn event_note(note: String) -> String {
    if note.len() <= MAX_EVENT_NOTE {
        return note;
    }
    let mut end = MAX_EVENT_NOTE - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

impl Error {
    /// Every value [`Error::kind`] returns (the metrics start each at zero).
    pub const KINDS: [&'static str; 8] = [
        "Conflict",
        "Forbidden",
        "Invalid",
        "Api",
        "Client",
        "Build",
        "NotLeader",
        "Serialize",
    ];

    /// A short label for metrics, one of [`Error::KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube { source, .. } => match source {
                kube::Error::Api(s) if s.is_conflict() => "Conflict",
                kube::Error::Api(s) if s.is_forbidden() => "Forbidden",
                kube::Error::Api(s) if s.is_invalid() => "Invalid",
                kube::Error::Api(_) => "Api",
                _ => "Client",
            },
            Error::Build(_) => "Build",
            Error::NotLeader(_) => "NotLeader",
            Error::Serialize { .. } => "Serialize",
        }
    }

    fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }
}

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

/// Objects the operator applies.
pub trait Owned:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Desired/observed replicas, for workloads.
    fn replicas(&self) -> Option<i32> {
        None
    }

    /// The pod template, for workloads.
    fn template(&self) -> Option<&PodTemplateSpec> {
        None
    }

    /// The watch cache of this kind.
    fn store(caches: &Caches) -> &Store<Self>;
}

impl Owned for ConfigMap {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.config_maps
    }
}
impl Owned for Service {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.services
    }
}
impl Owned for PodDisruptionBudget {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.pod_disruption_budgets
    }
}
impl Owned for StatefulSet {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.stateful_sets
    }

    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref().and_then(|s| s.replicas)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
}
impl Owned for Deployment {
    fn store(caches: &Caches) -> &Store<Self> {
        &caches.deployments
    }

    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref().and_then(|s| s.replicas)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
}

/// The fields of a workload that others are most likely to change behind the operator's back
/// (`kubectl scale`, `kubectl set image`, a label edit): replicas, container images and the
/// template's version label.
fn workload_fingerprint<K: Owned>(obj: &K) -> (Option<i32>, Vec<Option<String>>, Option<String>) {
    let template = obj.template();
    let images = template
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.iter().map(|c| c.image.clone()).collect())
        .unwrap_or_default();
    let version = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(names::VERSION_KEY).cloned());
    (obj.replicas(), images, version)
}

/// FNV-1a (64 bit): a hash that is stable across builds and platforms.
pub fn stable_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Stamps `desired` with the hash of its content (without the stamp) and returns the hash.
pub fn stamp<K: Owned>(desired: &mut K) -> Result<String, Error> {
    desired.annotations_mut().remove(DESIRED_HASH_KEY);
    let bytes = serde_json::to_vec(&desired).map_err(|source| Error::Serialize {
        what: format!("{} {}", K::kind(&()), desired.name_any()),
        source,
    })?;
    let hash = stable_hash(&bytes);
    desired
        .annotations_mut()
        .insert(DESIRED_HASH_KEY.to_owned(), hash.clone());
    Ok(hash)
}

/// True when `observed` needs no write to become `desired` (already stamped): the hash of the
/// desired content matches, and nobody changed the replicas, images or version label of a
/// workload behind the operator's back.
pub fn is_converged<K: Owned>(desired: &K, observed: &K) -> bool {
    let want = desired.annotations().get(DESIRED_HASH_KEY);
    want.is_some()
        && observed.annotations().get(DESIRED_HASH_KEY) == want
        && workload_fingerprint(observed) == workload_fingerprint(desired)
}

impl Context {
    /// `Err` when this replica must not write (see [`Leadership`]).
    fn may_write(&self) -> Result<(), Error> {
        self.leadership.check().map_err(Error::NotLeader)
    }

    /// Publishes an Event about `cluster`, optionally related to another object. Every call
    /// creates a new Event: a `Recorder`'s own aggregation keys on reason and action only and
    /// would show the first note for later, different ones (e.g. two different scalings), so
    /// callers publish only on a change instead.
    async fn publish(
        &self,
        cluster: &PravegaCluster,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
        related: Option<ObjectReference>,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(event_note(note)),
            action: action.to_owned(),
            secondary: related,
        };
        if let Err(e) = self.may_write() {
            warn!(error = %e, reason, "not publishing an Event");
            return;
        }
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&event, &cluster.object_ref(&())).await {
            warn!(error = %e, reason, "publishing an Event failed");
        }
    }

    /// Applies `desired` (server-side apply, field manager `pravega-operator`, forced) unless
    /// `observed` already matches it.
    async fn apply<K: Owned>(
        &self,
        cluster: &ClusterKey,
        mut desired: K,
        observed: Option<&K>,
    ) -> Result<Outcome, Error> {
        let ns = cluster.namespace.as_str();
        stamp(&mut desired)?;
        if observed.is_some_and(|o| is_converged(&desired, o)) {
            return Ok(Outcome::Unchanged);
        }
        self.may_write()?;
        let name = desired.name_any();
        let kind = K::kind(&());
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        let applied = api
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&desired),
            )
            .await
            .map_err(Error::kube(format!("applying {kind} {ns}/{name}")))?;
        self.metrics.count_write("apply", &kind);
        if let Some(rv) = applied.resource_version() {
            self.records.with(cluster, |r| {
                r.pending.expect(Write::Object {
                    key: format!("{kind}/{name}"),
                    resource_version: rv,
                })
            });
        }
        Ok(if observed.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        })
    }

    /// Applies `desired` unless its cached twin already matches it.
    async fn apply_cached<K: Owned>(
        &self,
        cluster: &ClusterKey,
        desired: K,
    ) -> Result<Outcome, Error> {
        let observed = cached(
            K::store(&self.caches),
            &cluster.namespace,
            &desired.name_any(),
        );
        self.apply(cluster, desired, observed.as_ref()).await
    }

    /// Applies a workload and reports creation and scaling as Events.
    async fn apply_workload<K: Owned>(
        &self,
        cluster: &PravegaCluster,
        key: &ClusterKey,
        desired: K,
        observed: Option<&K>,
    ) -> Result<(), Error> {
        let ns = key.namespace.as_str();
        let name = desired.name_any();
        let kind = K::kind(&());
        let related = Some(desired.object_ref(&()));
        let (from, to) = (observed.and_then(Owned::replicas), desired.replicas());
        match self.apply(key, desired, observed).await? {
            Outcome::Created => {
                info!("created {kind} {ns}/{name}");
                self.publish(
                    cluster,
                    EventType::Normal,
                    event_reasons::CREATED,
                    event_actions::CREATE,
                    format!("Created {kind} {name} with {} replicas", to.unwrap_or(0)),
                    related,
                )
                .await;
            }
            Outcome::Updated if from != to => {
                let (from, to) = (from.unwrap_or(0), to.unwrap_or(0));
                info!("scaled {kind} {ns}/{name} from {from} to {to} replicas");
                self.publish(
                    cluster,
                    EventType::Normal,
                    event_reasons::SCALED,
                    event_actions::SCALE,
                    format!("Scaled {kind} {name} from {from} to {to} replicas"),
                    related,
                )
                .await;
            }
            Outcome::Updated => info!("updated {kind} {ns}/{name}"),
            Outcome::Unchanged => {}
        }
        Ok(())
    }

    /// Writes `status` to the status subresource (merge patch of the fields that changed) when it
    /// differs from `before`.
    async fn write_status(
        &self,
        key: &ClusterKey,
        before: &PravegaClusterStatus,
        after: &PravegaClusterStatus,
    ) -> Result<bool, Error> {
        let (ns, name) = (key.namespace.as_str(), key.name.as_str());
        let to_json = |s: &PravegaClusterStatus| {
            serde_json::to_value(s).map_err(|source| Error::Serialize {
                what: format!("status of PravegaCluster {ns}/{name}"),
                source,
            })
        };
        let Some(diff) = status::merge_patch(&to_json(before)?, &to_json(after)?) else {
            return Ok(false);
        };
        self.may_write()?;
        let api: Api<PravegaCluster> = Api::namespaced(self.client.clone(), ns);
        let written = api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "status": diff })),
            )
            .await
            .map_err(Error::kube(format!(
                "writing the status of PravegaCluster {ns}/{name}"
            )))?;
        self.metrics.count_write("patch_status", "PravegaCluster");
        if let Some(rv) = written.resource_version() {
            self.records.with(key, |r| {
                r.pending.expect(Write::Object {
                    key: format!("PravegaCluster/{name}"),
                    resource_version: rv,
                })
            });
        }
        Ok(true)
    }
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

/// Why the shared rules refuse the cluster's spec, if they do: the rules for a whole spec, then
/// the settings that must not change, compared with those recorded on the Segment Store
/// StatefulSet when it was last applied (what the webhook compares with the old object).
fn refusal(
    cluster: &PravegaCluster,
    segmentstore: Option<&StatefulSet>,
) -> Option<(DenyReason, String)> {
    if let Err(refused) = check_cluster_name(&cluster.name_any()) {
        return Some(refused);
    }
    if let Decision::Deny { reason, message } = pravega_crds::validate_create(&cluster.spec) {
        return Some((reason, message));
    }
    let recorded = segmentstore
        .and_then(|s| s.metadata.annotations.as_ref())
        .and_then(|a| a.get(FIXED_SETTINGS_KEY))
        .and_then(|json| serde_json::from_str(json).ok())?;
    check_fixed(&recorded, &fixed_settings(&cluster.spec)).err()
}

/// The claims of `cluster` that hold data written by a newer version than `spec.version`, with
/// that version, read from their annotation. Only asked before the cluster's workloads are first
/// created (`workloads_exist` false): once they are, the pods are on those volumes already, and
/// later the version rules forbid downgrades. So the claims are read once, not every reconcile.
async fn newer_data(
    ctx: &Context,
    cluster: &PravegaCluster,
    ns: &str,
    workloads_exist: bool,
) -> Result<Option<String>, Error> {
    let allowed = cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ALLOW_OLDER_VERSION_KEY))
        .is_some_and(|v| v == "true");
    let Ok(desired) = parse_version(&cluster.spec.version) else {
        return Ok(None);
    };
    if allowed
        || workloads_exist
        || cluster
            .status
            .as_ref()
            .and_then(|s| s.current_version.as_ref())
            .is_some()
    {
        return Ok(None);
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let mut newer = Vec::new();
    for claim in resources::claim_names(&cluster.name_any(), &cluster.spec) {
        let pvc = api.get_opt(&claim).await.map_err(Error::kube(format!(
            "reading PersistentVolumeClaim {ns}/{claim}"
        )))?;
        let recorded = pvc
            .as_ref()
            .and_then(|p| p.metadata.annotations.as_ref())
            .and_then(|a| a.get(VOLUME_VERSION_KEY));
        if let Some(recorded) = recorded
            && let Ok(v) = parse_version(recorded)
            && precedence(&v, &desired).is_gt()
        {
            newer.push(format!("{claim} ({recorded})"));
        }
    }
    if newer.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "the volumes of this cluster hold data written by a newer version: {}; starting {} on them would downgrade that data. Set spec.version to the newest of those versions or higher, or annotate the PravegaCluster with {ALLOW_OLDER_VERSION_KEY}=true to start anyway",
        newer.join(", "),
        cluster.spec.version
    )))
}

/// Records `version` on every claim of the cluster whose annotation is missing or older.
async fn record_volume_version(
    ctx: &Context,
    cluster: &PravegaCluster,
    ns: &str,
    version: &str,
) -> Result<(), Error> {
    let Ok(this) = parse_version(version) else {
        return Ok(());
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    for claim in resources::claim_names(&cluster.name_any(), &cluster.spec) {
        let Some(pvc) = api.get_opt(&claim).await.map_err(Error::kube(format!(
            "reading PersistentVolumeClaim {ns}/{claim}"
        )))?
        else {
            continue;
        };
        let recorded = pvc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(VOLUME_VERSION_KEY))
            .and_then(|v| parse_version(v).ok());
        if recorded.is_some_and(|r| !precedence(&this, &r).is_gt()) {
            continue;
        }
        ctx.may_write()?;
        api.patch(
            &claim,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {VOLUME_VERSION_KEY: version}}
            })),
        )
        .await
        .map_err(Error::kube(format!(
            "recording version {version} on PersistentVolumeClaim {ns}/{claim}"
        )))?;
        ctx.metrics.count_write("patch", "PersistentVolumeClaim");
    }
    Ok(())
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

/// Why the operator changes nothing for this spec: the `Error` reason and the message.
struct Refused {
    reason: &'static str,
    detail: &'static str,
    message: String,
}

/// Decide, part 1: a spec the shared rules refuse (when no webhook stopped it) changes nothing;
/// nor does a new cluster whose volumes hold data of a newer version.
async fn refused(
    ctx: &Context,
    cluster: &PravegaCluster,
    key: &ClusterKey,
    snapshot: &Snapshot,
) -> Result<Option<Refused>, Error> {
    if let Some((reason, message)) = refusal(cluster, snapshot.segmentstore.as_ref()) {
        return Ok(Some(Refused {
            reason: reasons::INVALID_SPEC,
            detail: reason.as_str(),
            message,
        }));
    }
    let version = &cluster.spec.version;
    let checked = ctx
        .records
        .with(key, |r| r.claims_checked.as_ref() == Some(version));
    let workloads_exist =
        checked || snapshot.bookkeeper.is_some() || snapshot.segmentstore.is_some();
    let newer = newer_data(ctx, cluster, &key.namespace, workloads_exist).await?;
    if newer.is_none() {
        ctx.records
            .with(key, |r| r.claims_checked = Some(version.clone()));
    }
    Ok(newer.map(|message| Refused {
        reason: reasons::DATA_FROM_NEWER_VERSION,
        detail: reasons::DATA_FROM_NEWER_VERSION,
        message,
    }))
}

/// Report, for a refused spec: the `Error` condition (or, while an upgrade failure shows there,
/// an Event only), once per distinct refusal.
async fn report_refusal(
    ctx: &Context,
    cluster: &PravegaCluster,
    key: &ClusterKey,
    refused: &Refused,
    now: &Time,
) -> Result<(), Error> {
    let before = cluster.status.clone().unwrap_or_default();
    let mut after = before.clone();
    let finding = Finding::Refused {
        reason: refused.reason,
        message: &refused.message,
    };
    let changed = match error_condition::record(&mut after, finding, now) {
        Shown::Condition { changed } => changed,
        Shown::EventOnly => ctx.records.with(key, |r| {
            r.reported_refusal.replace(refused.message.clone()).as_ref() != Some(&refused.message)
        }),
    };
    after.observed_generation = cluster.metadata.generation;
    if changed {
        warn!(
            "refusing the spec of PravegaCluster {key} ({}): {}",
            refused.detail, refused.message
        );
        ctx.publish(
            cluster,
            EventType::Warning,
            refused.reason,
            event_actions::VALIDATE,
            refused.message.clone(),
            None,
        )
        .await;
    }
    status::set_ready(&mut after, &cluster.spec.version, now);
    ctx.write_status(key, &before, &after).await?;
    ctx.metrics
        .set_cluster(&key.namespace, &key.name, &cluster.spec, &after);
    Ok(())
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
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn errors_read_as_the_api_server_wrote_them() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "code": 422,
            "reason": "Invalid",
            "message": "StatefulSet.apps \"example-bookie\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden"
        }))
        .unwrap();
        let e = Error::Kube {
            action: "applying StatefulSet default/example-bookie".into(),
            source: kube::Error::Api(Box::new(status)),
        };
        assert_eq!(
            e.to_string(),
            "applying StatefulSet default/example-bookie: StatefulSet.apps \"example-bookie\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden"
        );
        assert!(!e.to_string().contains("Status {"));
    }

    #[test]
    fn event_notes_fit_the_api_servers_limit() {
        let short = "x".repeat(10);
        assert_eq!(event_note(short.clone()), short);
        let long = "é".repeat(2000);
        let cut = event_note(long);
        assert!(cut.len() <= 1024 && cut.ends_with('…'), "{}", cut.len());
    }

    fn cluster() -> PravegaCluster {
        let spec = serde_json::from_value(serde_json::json!({"version": "0.4.0"})).unwrap();
        let mut c = PravegaCluster::new("example", spec);
        c.metadata.namespace = Some("default".into());
        c.metadata.uid = Some("uid-1".into());
        c
    }

    fn bookie(cluster: &PravegaCluster) -> StatefulSet {
        resources::desired_objects(cluster, |_| "0.4.0".into())
            .unwrap()
            .stateful_sets
            .remove(0)
    }

    #[test]
    fn stamped_object_is_converged_with_itself_and_with_server_additions() {
        let c = cluster();
        let mut desired = bookie(&c);
        let hash = stamp(&mut desired).unwrap();
        assert_eq!(hash.len(), 16);
        let mut observed = desired.clone();
        observed.metadata.resource_version = Some("42".into());
        observed.metadata.uid = Some("x".into());
        assert!(is_converged(&desired, &observed));
        // Stamping again gives the same hash.
        let mut again = desired.clone();
        assert_eq!(stamp(&mut again).unwrap(), hash);
    }

    #[test]
    fn changed_spec_or_drifted_replicas_are_not_converged() {
        let mut c = cluster();
        let mut desired = bookie(&c);
        stamp(&mut desired).unwrap();
        let mut scaled_by_hand = desired.clone();
        if let Some(s) = scaled_by_hand.spec.as_mut() {
            s.replicas = Some(1);
        }
        assert!(!is_converged(&desired, &scaled_by_hand));
        let mut image_set_by_hand = desired.clone();
        if let Some(s) = image_set_by_hand.spec.as_mut()
            && let Some(p) = s.template.spec.as_mut()
        {
            p.containers[0].image = Some("someone/else:1".into());
        }
        assert!(!is_converged(&desired, &image_set_by_hand));

        c.spec.bookkeeper.replicas = 4;
        let mut desired4 = bookie(&c);
        stamp(&mut desired4).unwrap();
        assert!(!is_converged(&desired4, &desired));

        let mut newer = cluster();
        newer.spec.version = "0.5.0".into();
        let mut desired5 = resources::desired_objects(&newer, |_| "0.5.0".into())
            .unwrap()
            .stateful_sets
            .remove(0);
        stamp(&mut desired5).unwrap();
        assert!(!is_converged(&desired5, &desired));
    }

    #[test]
    fn unstamped_observed_objects_are_not_converged() {
        let c = cluster();
        let mut desired = bookie(&c);
        let observed = desired.clone();
        stamp(&mut desired).unwrap();
        assert!(!is_converged(&desired, &observed));
        let cm = ConfigMap {
            metadata: ObjectMeta::default(),
            ..ConfigMap::default()
        };
        assert!(
            !is_converged(&cm, &cm),
            "a desired object without a stamp is never converged"
        );
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash(b""), "cbf29ce484222325");
        assert_eq!(stable_hash(b"a"), "af63dc4c8601ec8c");
    }

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
