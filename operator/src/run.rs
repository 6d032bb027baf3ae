//! Wiring: the HTTP endpoints, leader election and the `kube::runtime::Controller`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::Controller;
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use pravega_crds::PravegaCluster;
use pravega_crds::names::{APP_NAME, LABEL_INSTANCE, LABEL_NAME, MANAGER};
use prometheus_client::registry::Registry;
use tokio::sync::{RwLock, watch};
use tracing::{debug, info, warn};

use crate::cache::Caches;
use crate::controller::{self, Context, Diagnostics};
use crate::leader::{self, LeaderElector, LeaderError, Leadership};
use crate::metrics::Metrics;
use crate::server::{self, Phase, ServerState};

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub metrics_addr: SocketAddr,
    /// Take part in leader election before reconciling.
    pub leader_elect: bool,
    /// Namespace of the leader Lease.
    pub leader_election_namespace: String,
    /// The lowest Kubernetes version (`major.minor`) to run against; checked at start.
    pub min_kubernetes_version: (u64, u64),
    /// Clusters reconciled at the same time, at most.
    pub concurrency: u16,
}

/// The operator's client: it sends the User-Agent `pravega-operator/<version>` (so that audit
/// logs tell its requests apart) and counts every request it makes in
/// `pravega_operator_api_requests_total{verb,kind}`.
fn counted_client(
    mut kube_config: kube::Config,
    metrics: Arc<Metrics>,
) -> Result<Client, RunError> {
    kube_config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(crate::USER_AGENT),
    ));
    let counting = tower::ServiceBuilder::new().map_request(
        move |request: http::Request<kube::client::Body>| {
            let (verb, kind) = crate::metrics::request_labels(
                request.method(),
                request.uri().path(),
                request.uri().query(),
            );
            metrics.count_request(verb, &kind);
            request
        },
    );
    let builder = kube::client::ClientBuilder::try_from(kube_config).map_err(RunError::Client)?;
    Ok(builder.with_layer(&counting).build())
}

/// A watch of `api` that keeps a cache: the cache, and the stream of changed objects that
/// drives it (and triggers reconciles). Managed fields are dropped: nothing reads them.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .reflect(writer)
        .touched_objects();
    (reader, stream)
}

/// Why the operator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The metrics address could not be bound.
    #[error("binding the metrics server to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Leadership was lost: this replica stopped reconciling and must exit.
    #[error(transparent)]
    LeaderLost(#[from] LeaderError),
    /// The client could not be built from the configuration.
    #[error("building the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The API server's version could not be read.
    #[error("reading the API server's version: {0}")]
    Version(#[source] kube::Error),
    /// The API server is older than the operator supports.
    #[error("{0}")]
    Unsupported(String),
}

/// Runs the operator until `shutdown` resolves (graceful: in-flight reconciles finish, the
/// leader lease is released) or leadership is lost (an error). Logs the address it serves on as
/// `metrics server listening on ADDR`.
pub async fn run(
    kube_config: kube::Config,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    metrics.expect_failure_kinds(&crate::controller::Error::KINDS);
    let client = counted_client(kube_config, metrics.clone())?;
    let info = client
        .apiserver_version()
        .await
        .map_err(RunError::Version)?;
    let server =
        crate::compat::server_minor(&info.major, &info.minor).map_err(RunError::Unsupported)?;
    crate::compat::check(server, config.min_kubernetes_version).map_err(RunError::Unsupported)?;
    info!(
        "API server runs Kubernetes {}.{} (at least {}.{} needed)",
        server.0, server.1, config.min_kubernetes_version.0, config.min_kubernetes_version.1
    );
    let identity = leader::identity();
    let diagnostics = Arc::new(RwLock::new(Diagnostics {
        last_reconcile: None,
        reporter: format!("{MANAGER}/{identity}"),
    }));
    let state = Arc::new(ServerState::new(registry, diagnostics.clone()));

    let listener = tokio::net::TcpListener::bind(config.metrics_addr)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.metrics_addr,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| RunError::Bind {
        addr: config.metrics_addr,
        source,
    })?;
    info!("metrics server listening on {bound}");

    // One stop signal for everything: set on SIGTERM/SIGINT or when leadership is lost.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            info!("shutdown requested");
            stop_tx.send_replace(true);
        });
    }
    let (server_stop_tx, mut server_stop_rx) = watch::channel(false);
    let server = tokio::spawn({
        let router = server::router(state.clone());
        async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = server_stop_rx.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                warn!(error = %e, "metrics server failed");
            }
        }
    });

    let result = lead_and_reconcile(
        client,
        &config,
        identity,
        metrics,
        diagnostics,
        &state,
        stop_tx,
        stop_rx,
    )
    .await;

    state.set_phase(Phase::Stopping);
    server_stop_tx.send_replace(true);
    if let Err(e) = server.await {
        warn!(error = %e, "metrics server task failed");
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn lead_and_reconcile(
    client: Client,
    config: &Config,
    identity: String,
    metrics: Arc<Metrics>,
    diagnostics: Arc<RwLock<Diagnostics>>,
    state: &ServerState,
    stop_tx: Arc<watch::Sender<bool>>,
    mut stop_rx: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let mut elector = None;
    if config.leader_elect {
        let leases: Api<Lease> = Api::namespaced(client.clone(), &config.leader_election_namespace);
        let mut e = LeaderElector::new(leases, identity.clone());
        state.set_phase(Phase::Standby);
        info!(
            lease = leader::LEASE_NAME,
            namespace = %config.leader_election_namespace,
            identity = %identity,
            "waiting for the leader lease"
        );
        if !e.acquire(&mut stop_rx).await {
            return Ok(());
        }
        elector = Some(e);
    }
    metrics.leader.set(1);
    state.set_phase(Phase::Syncing);
    let leadership = Arc::new(if elector.is_some() {
        Leadership::elected()
    } else {
        Leadership::unelected()
    });

    // Keep the lease while reconciling; losing it stops everything.
    let holder = elector.map(|mut e| {
        let mut stop = stop_rx.clone();
        let stop_tx = stop_tx.clone();
        let leadership = leadership.clone();
        tokio::spawn(async move {
            let held = e.hold(&mut stop, &leadership).await;
            if let Err(err) = &held {
                warn!(error = %err, "stopping: this replica is no longer the leader");
                stop_tx.send_replace(true);
            }
            (e, held)
        })
    });

    // One watch per kind feeds both the Controller's triggers and the caches every reconcile
    // reads from (no GET or LIST per reconcile).
    let owned = watcher::Config::default().labels(&format!("{LABEL_NAME}={APP_NAME}"));
    let ns = config.namespace.as_deref();
    let (clusters, cluster_events) = reflect(scoped(&client, ns), watcher::Config::default());
    let (stateful_sets, sts_events) = reflect(scoped(&client, ns), owned.clone());
    let (deployments, deploy_events) = reflect(scoped(&client, ns), owned.clone());
    let (services, svc_events) = reflect(scoped(&client, ns), owned.clone());
    let (config_maps, cm_events) = reflect(scoped(&client, ns), owned.clone());
    let (pod_disruption_budgets, pdb_events) = reflect(scoped(&client, ns), owned.clone());
    let (pods, pod_events) = reflect(scoped::<Pod>(&client, ns), owned);
    let (ready_tx, ready) = watch::channel(false);
    let caches = Caches {
        clusters: clusters.clone(),
        stateful_sets,
        deployments,
        services,
        config_maps,
        pod_disruption_budgets,
        pods,
        ready,
    };

    let ctx = Arc::new(Context {
        client: client.clone(),
        metrics: metrics.clone(),
        diagnostics,
        reporter: Reporter {
            controller: MANAGER.to_owned(),
            instance: Some(identity),
        },
        caches: caches.clone(),
        records: Default::default(),
        leadership,
    });

    let controller = Controller::for_stream(cluster_events, clusters)
        .with_config(ControllerConfig::default().concurrency(config.concurrency))
        .owns_stream(sts_events)
        .owns_stream(deploy_events)
        .owns_stream(svc_events)
        .owns_stream(cm_events)
        .owns_stream(pdb_events)
        .watches_stream(pod_events, |pod: Pod| {
            let cluster = pod.labels().get(LABEL_INSTANCE)?.clone();
            let ns = pod.namespace()?;
            Some(ObjectRef::<PravegaCluster>::new(&cluster).within(&ns))
        });

    let synced = {
        let stop = stop_rx.clone();
        async move {
            if caches.watch_readiness(ready_tx).await && !*stop.borrow() {
                info!("caches synced; reconciling PravegaClusters");
                true
            } else {
                false
            }
        }
    };
    let mut stop_controller = stop_rx.clone();
    let reconciled = controller
        .graceful_shutdown_on(async move {
            let _ = stop_controller.wait_for(|s| *s).await;
        })
        .run(controller::reconcile, controller::error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!(error = %e, "controller event");
            }
        });
    let phase_watch = async {
        if synced.await {
            state.set_phase(Phase::Running);
        }
        futures::future::pending::<()>().await
    };
    tokio::select! {
        () = reconciled => {}
        () = phase_watch => {}
    }
    metrics.leader.set(0);
    info!("controller stopped");

    // Stop renewing, then give the lease up unless it was lost.
    stop_tx.send_replace(true);
    if let Some(holder) = holder {
        match holder.await {
            Ok((mut e, Ok(()))) => e.release().await,
            Ok((_, Err(lost))) => return Err(lost.into()),
            Err(join) => warn!(error = %join, "leader lease task failed"),
        }
    }
    Ok(())
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
