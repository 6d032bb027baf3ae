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
    ConditionStatus, ConditionType, Decision, DenyReason, PravegaCluster, PravegaClusterStatus,
    event_actions, event_reasons, reasons,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::RwLock;
use tracing::{debug, info, warn};

use crate::cache::{Caches, Expectations, NamespaceView, Write, cached};
use crate::metrics::Metrics;
use crate::planner::{self, Observation};
use crate::probe;
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
    pub const KINDS: [&'static str; 7] = [
        "Conflict",
        "Forbidden",
        "Invalid",
        "Api",
        "Client",
        "Build",
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
    /// Consecutive failures per cluster (`namespace/name`), for the retry backoff.
    pub failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// The last failure reported as an Event per cluster, so that retries of the same failure
    /// publish no new Event.
    pub reported_failures: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The watch caches every read comes from.
    pub caches: Caches,
    /// This operator's writes that the caches may not show yet, per cluster.
    pub expectations: Expectations,
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
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&event, &cluster.object_ref(&())).await {
            warn!(error = %e, reason, "publishing an Event failed");
        }
    }

    /// Applies `desired` (server-side apply, field manager `pravega-operator`, forced) unless
    /// `observed` already matches it.
    async fn apply<K: Owned>(
        &self,
        cluster: &str,
        ns: &str,
        mut desired: K,
        observed: Option<&K>,
    ) -> Result<Outcome, Error> {
        stamp(&mut desired)?;
        if observed.is_some_and(|o| is_converged(&desired, o)) {
            return Ok(Outcome::Unchanged);
        }
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
            self.expectations.expect(
                cluster,
                Write::Object {
                    key: format!("{kind}/{name}"),
                    resource_version: rv,
                },
            );
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
        cluster: &str,
        ns: &str,
        desired: K,
    ) -> Result<Outcome, Error> {
        let observed = cached(K::store(&self.caches), ns, &desired.name_any());
        self.apply(cluster, ns, desired, observed.as_ref()).await
    }

    /// Applies a workload and reports creation and scaling as Events.
    async fn apply_workload<K: Owned>(
        &self,
        cluster: &PravegaCluster,
        ns: &str,
        desired: K,
        observed: Option<&K>,
    ) -> Result<(), Error> {
        let name = desired.name_any();
        let kind = K::kind(&());
        let related = Some(desired.object_ref(&()));
        let (from, to) = (observed.and_then(Owned::replicas), desired.replicas());
        match self
            .apply(&cluster_key(cluster), ns, desired, observed)
            .await?
        {
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
        ns: &str,
        name: &str,
        before: &PravegaClusterStatus,
        after: &PravegaClusterStatus,
    ) -> Result<bool, Error> {
        let to_json = |s: &PravegaClusterStatus| {
            serde_json::to_value(s).map_err(|source| Error::Serialize {
                what: format!("status of PravegaCluster {ns}/{name}"),
                source,
            })
        };
        let Some(diff) = status::merge_patch(&to_json(before)?, &to_json(after)?) else {
            return Ok(false);
        };
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
            self.expectations.expect(
                &format!("{ns}/{name}"),
                Write::Object {
                    key: format!("PravegaCluster/{name}"),
                    resource_version: rv,
                },
            );
        }
        Ok(true)
    }
}

/// Reconciles one PravegaCluster. Errors are reported on the cluster (an `Error` condition with
/// reason `ReconcileFailed` and a Warning Event) and retried with backoff by [`error_policy`].
pub async fn reconcile(
    cluster: Arc<PravegaCluster>,
    ctx: Arc<Context>,
) -> Result<ControllerAction, Error> {
    let started = Instant::now();
    ctx.metrics.reconciliations.inc();
    ctx.diagnostics.write().await.last_reconcile = Some(Timestamp::now());
    let ns = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    info!("Reconciling PravegaCluster {ns}/{name}");
    if !ctx.caches.wait_until_ready().await {
        return Ok(ControllerAction::await_change());
    }
    // Decide on what the caches show only once they show this operator's own last writes (a
    // status written a moment ago, a deleted pod): the watch event that brings them triggers
    // the next reconcile.
    let key = format!("{ns}/{name}");
    let view = NamespaceView {
        caches: &ctx.caches,
        namespace: &ns,
    };
    if let Some(what) = ctx.expectations.unmet(&key, &view) {
        debug!("PravegaCluster {key}: waiting for the cache to show {what}");
        ctx.metrics.observe_duration(started.elapsed());
        return Ok(ControllerAction::requeue(Duration::from_secs(1)));
    }
    let Some(cluster) = cached(&ctx.caches.clusters, &ns, &name) else {
        ctx.metrics.remove_cluster(&ns, &name);
        ctx.expectations.forget(&key);
        return Ok(ControllerAction::await_change());
    };
    let result = reconcile_cluster(&cluster, &ctx, &ns, &name).await;
    ctx.metrics.observe_duration(started.elapsed());
    match &result {
        Ok(_) => {
            let key = cluster_key(&cluster);
            ctx.failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&key);
            ctx.reported_failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&key);
        }
        Err(e) => report_failure(&cluster, &ctx, &ns, &name, e).await,
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
    let key = cluster_key(&cluster);
    let failures = {
        let mut map = ctx
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
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

fn cluster_key(cluster: &PravegaCluster) -> String {
    format!(
        "{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    )
}

async fn report_failure(
    cluster: &PravegaCluster,
    ctx: &Context,
    ns: &str,
    name: &str,
    error: &Error,
) {
    let before = cluster.status.clone().unwrap_or_default();
    let mut after = before.clone();
    // Never hide an upgrade failure (or a refused spec) behind a transient API error: those carry
    // the state a person acts on.
    let other_error = after
        .condition(ConditionType::Error)
        .is_some_and(|c| c.is_true() && c.reason() != reasons::RECONCILE_FAILED);
    if !other_error {
        after.set_condition(
            ConditionType::Error,
            ConditionStatus::True,
            reasons::RECONCILE_FAILED,
            &error.to_string(),
            &Time(Timestamp::now()),
        );
    }
    status::set_ready(&mut after, &cluster.spec.version, &Time(Timestamp::now()));
    ctx.metrics.set_cluster(ns, name, &cluster.spec, &after);
    // One Event per distinct failure, not one per retry.
    let message = error.to_string();
    let repeated = {
        let mut reported = ctx
            .reported_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        reported
            .insert(cluster_key(cluster), message.clone())
            .as_ref()
            == Some(&message)
    };
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
    if let Err(e) = ctx.write_status(ns, name, &before, &after).await {
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
fn read_workloads(ctx: &Context, ns: &str, name: &str) -> Snapshot {
    let caches = &ctx.caches;
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

async fn reconcile_cluster(
    cluster: &PravegaCluster,
    ctx: &Context,
    ns: &str,
    name: &str,
) -> Result<ControllerAction, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        // Owned objects go with the cluster (garbage collection); PVCs stay.
        ctx.metrics.remove_cluster(ns, name);
        return Ok(ControllerAction::await_change());
    }
    let key = format!("{ns}/{name}");
    let now = Timestamp::now();
    let now_time = Time(now);
    let before = cluster.status.clone().unwrap_or_default();

    let snapshot = read_workloads(ctx, ns, name);

    // A spec the shared rules refuse (when no webhook stopped it) changes nothing; nor does a
    // new cluster whose volumes hold data of a newer version.
    let refused = match refusal(cluster, snapshot.segmentstore.as_ref()) {
        Some((reason, message)) => Some((reasons::INVALID_SPEC, reason.as_str(), message)),
        None => newer_data(
            ctx,
            cluster,
            ns,
            snapshot.bookkeeper.is_some() || snapshot.segmentstore.is_some(),
        )
        .await?
        .map(|message| {
            (
                reasons::DATA_FROM_NEWER_VERSION,
                reasons::DATA_FROM_NEWER_VERSION,
                message,
            )
        }),
    };
    if let Some((error_reason, reason, message)) = refused {
        let mut after = before.clone();
        // An upgrade or rollback failure stays the Error a person sees (the planner needs it to
        // allow the rollback); the refusal is then reported by an Event only.
        let keeps_failure = after.condition(ConditionType::Error).is_some_and(|c| {
            c.is_true()
                && c.reason() != reasons::INVALID_SPEC
                && c.reason() != reasons::DATA_FROM_NEWER_VERSION
                && c.reason() != reasons::RECONCILE_FAILED
        });
        let changed = if keeps_failure {
            let mut reported = ctx
                .reported_failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            reported
                .insert(format!("spec:{ns}/{name}"), message.clone())
                .as_ref()
                != Some(&message)
        } else {
            after.set_condition(
                ConditionType::Error,
                ConditionStatus::True,
                error_reason,
                &message,
                &now_time,
            )
        };
        after.observed_generation = cluster.metadata.generation;
        if changed {
            warn!("refusing the spec of PravegaCluster {ns}/{name} ({reason}): {message}");
            ctx.publish(
                cluster,
                EventType::Warning,
                error_reason,
                event_actions::VALIDATE,
                message,
                None,
            )
            .await;
        }
        status::set_ready(&mut after, &cluster.spec.version, &now_time);
        ctx.write_status(ns, name, &before, &after).await?;
        ctx.metrics.set_cluster(ns, name, &cluster.spec, &after);
        return Ok(ControllerAction::await_change());
    }

    ctx.reported_failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&format!("spec:{ns}/{name}"));

    let mut member_status = status::member_status(cluster, &snapshot.pods, &now_time);
    // The spec passed the rules: an earlier refusal of ours no longer holds (the planner sets
    // its own InvalidSpec again if the version change is still refused).
    if member_status.has_error_reason(reasons::INVALID_SPEC)
        || member_status.has_error_reason(reasons::DATA_FROM_NEWER_VERSION)
    {
        member_status.set_condition(
            ConditionType::Error,
            ConditionStatus::False,
            "",
            "",
            &now_time,
        );
    }

    let mut observation = Observation {
        cluster,
        bookkeeper: snapshot.bookkeeper.as_ref(),
        controller: snapshot.controller.as_ref(),
        segmentstore: snapshot.segmentstore.as_ref(),
        pods: &snapshot.pods,
        now,
        checks: None,
    };
    let mut plan = planner::plan(&observation, member_status.clone());
    // The next restart waits for safety checks: run them, then decide with what they found.
    let facts;
    if let Some(request) = &plan.probe {
        facts = probe::run(request, cluster, &snapshot.pods).await;
        ctx.metrics.count_checks(&facts);
        observation.checks = Some(&facts);
        plan = planner::plan(&observation, member_status);
    }
    for line in &plan.logs {
        info!("{line}");
    }
    for line in &plan.warnings {
        warn!("{line}");
    }

    let desired = resources::desired_objects(cluster, |c| plan.versions.get(c).to_owned())?;
    for cm in desired.config_maps {
        ctx.apply_cached(&key, ns, cm).await?;
    }
    for svc in desired.services {
        ctx.apply_cached(&key, ns, svc).await?;
    }
    for sts in desired.stateful_sets {
        let observed = match names::component_of(sts.labels()) {
            Some(Component::Bookkeeper) => snapshot.bookkeeper.as_ref(),
            _ => snapshot.segmentstore.as_ref(),
        };
        ctx.apply_workload(cluster, ns, sts, observed).await?;
    }
    for deploy in desired.deployments {
        ctx.apply_workload(cluster, ns, deploy, snapshot.controller.as_ref())
            .await?;
    }
    for pdb in desired.pod_disruption_budgets {
        ctx.apply_cached(&key, ns, pdb).await?;
    }

    for action in &plan.actions {
        execute(ctx, &key, action).await?;
    }
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

    let mut after = plan.status.clone();
    if after.has_error_reason(reasons::RECONCILE_FAILED) {
        after.set_condition(
            ConditionType::Error,
            ConditionStatus::False,
            "",
            "",
            &now_time,
        );
    }
    // Once the cluster runs a version, the volumes remember it (only when it changed: a
    // converged cluster costs no read).
    if let Some(version) = after.current_version.clone()
        && after.volumes_version.as_deref() != Some(version.as_str())
        && after.is_condition_true(ConditionType::PodsReady)
        && !after.is_condition_true(ConditionType::Upgrading)
        && !after.is_condition_true(ConditionType::RollbackInProgress)
    {
        record_volume_version(ctx, cluster, ns, &version).await?;
        after.volumes_version = Some(version);
    }
    status::set_ready(&mut after, &cluster.spec.version, &now_time);
    status::keep_unchanged_condition_times(&before, &mut after);
    ctx.write_status(ns, name, &before, &after).await?;

    ctx.metrics.set_cluster(ns, name, &cluster.spec, &after);
    Ok(ControllerAction::requeue(
        plan.requeue_after
            .unwrap_or(RESYNC_INTERVAL)
            .min(RESYNC_INTERVAL),
    ))
}

async fn execute(ctx: &Context, cluster: &str, action: &planner::Action) -> Result<(), Error> {
    match action {
        planner::Action::DeletePod {
            component,
            namespace,
            name,
            uid,
            resource_version,
            reason,
        } => {
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
                    ctx.expectations.expect(
                        cluster,
                        Write::PodDeleted {
                            name: name.clone(),
                            uid: uid.clone(),
                        },
                    );
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
