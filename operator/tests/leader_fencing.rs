//! The reconcile loop writes nothing while this replica's belief that it leads is stale (it last
//! renewed the leader Lease longer ago than the renew deadline, e.g. after being frozen), and
//! writes as usual once it is fresh: the real `reconcile` against the sandbox API server, with
//! caches filled by hand.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::ListParams;
use kube::runtime::events::Reporter;
use kube::runtime::reflector;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use pravega_crds::PravegaCluster;
use pravega_operator::cache::Caches;
use pravega_operator::controller::{self, Context, Diagnostics, Error};
use pravega_operator::leader::{Leadership, RENEW_DEADLINE};
use pravega_operator::metrics::Metrics;
use pravega_sandbox::{Sandbox, SandboxOptions};
use prometheus_client::registry::Registry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_leader_writes_nothing_and_a_fresh_one_does() {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox");
    let client = sandbox.client().await.expect("client");
    let crd = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/pravegacluster.yaml");
    let out = std::process::Command::new("kubectl")
        .args(["apply", "-f"])
        .arg(&crd)
        .env("KUBECONFIG", sandbox.kubeconfig_path())
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clusters: Api<PravegaCluster> = Api::namespaced(client.clone(), "default");
    let mut created = None;
    for _ in 0..50 {
        let sample: PravegaCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "pravega.pravega.io/v1beta1", "kind": "PravegaCluster",
            "metadata": {"name": "example", "namespace": "default"},
            "spec": {"version": "0.4.0", "zookeeperUri": "zk:2181"}
        }))
        .expect("cluster");
        match clusters.create(&Default::default(), &sample).await {
            Ok(c) => {
                created = Some(c);
                break;
            }
            // The CRD may take a moment to be served.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let cluster = created.expect("the cluster is created");

    // Caches holding just the cluster, ready.
    let (cluster_store, mut cluster_writer) = reflector::store();
    cluster_writer.apply_watcher_event(&watcher::Event::Apply(cluster.clone()));
    let (ready_tx, ready) = tokio::sync::watch::channel(true);
    let caches = Caches {
        clusters: cluster_store,
        stateful_sets: reflector::store().0,
        deployments: reflector::store().0,
        services: reflector::store().0,
        config_maps: reflector::store().0,
        pod_disruption_budgets: reflector::store().0,
        pods: reflector::store().0,
        ready,
    };
    let leadership = Arc::new(Leadership::elected());
    let stale = Instant::now()
        .checked_sub(RENEW_DEADLINE * 2)
        .expect("an instant in the past");
    leadership.renewed_at(stale);
    let mut registry = Registry::default();
    let ctx = Arc::new(Context {
        client: client.clone(),
        metrics: Arc::new(Metrics::new(&mut registry)),
        diagnostics: Arc::new(tokio::sync::RwLock::new(Diagnostics {
            last_reconcile: None,
            reporter: "test".into(),
        })),
        reporter: Reporter {
            controller: "pravega-operator".into(),
            instance: Some("frozen".into()),
        },
        caches,
        records: Default::default(),
        leadership: leadership.clone(),
    });

    // Stale: the reconcile refuses to write; nothing exists, the status is untouched.
    let result = controller::reconcile(Arc::new(cluster.clone()), ctx.clone()).await;
    let Err(Error::NotLeader(why)) = result else {
        panic!("expected NotLeader, got {result:?}");
    };
    assert!(why.contains("it may no longer lead"), "{why}");
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    assert!(
        sts.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    let now = clusters.get("example").await.expect("get");
    assert_eq!(now.status, None, "the status was written");
    assert_eq!(now.resource_version(), cluster.resource_version());

    // Fresh again (renewed): the same reconcile creates the workloads.
    leadership.renewed();
    controller::reconcile(Arc::new(cluster), ctx)
        .await
        .expect("a fresh leader reconciles");
    let names: Vec<String> = sts
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    drop(ready_tx);
    sandbox.shutdown().await;
}
