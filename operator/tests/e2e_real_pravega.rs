//! End to end: workloads that the real images would run. A manifest written for upstream's
//! operator 0.4.x applies unchanged and comes up, and the guide's upgrade crosses the 0.6 → 0.7
//! bookie-options boundary with every pod coming up (the sandbox's kubelets play each image's
//! start-up rules, so a bookie given options its image cannot run would crash-loop here).

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(60);

/// A PravegaCluster as written for upstream's pravega-operator 0.4.x (its v1alpha1 API, every
/// field of its spec), not touched for this operator.
const UPSTREAM_0_4: &str = r#"
apiVersion: "pravega.pravega.io/v1alpha1"
kind: "PravegaCluster"
metadata:
  name: "legacy"
spec:
  version: 0.4.0
  zookeeperUri: zookeeper-client:2181
  externalAccess:
    enabled: false
    type: LoadBalancer
  tls:
    static:
      controllerSecret: ""
      segmentStoreSecret: ""
  bookkeeper:
    image:
      repository: pravega/bookkeeper
      tag: 0.4.0
      pullPolicy: IfNotPresent
    replicas: 3
    storage:
      ledgerVolumeClaimTemplate:
        accessModes: [ "ReadWriteOnce" ]
        storageClassName: "standard"
        resources:
          requests:
            storage: 10Gi
      journalVolumeClaimTemplate:
        accessModes: [ "ReadWriteOnce" ]
        storageClassName: "standard"
        resources:
          requests:
            storage: 10Gi
      indexVolumeClaimTemplate:
        accessModes: [ "ReadWriteOnce" ]
        storageClassName: "standard"
        resources:
          requests:
            storage: 10Gi
    autoRecovery: true
    serviceAccountName: bookie-sa
    resources:
      requests:
        memory: "1Gi"
        cpu: "500m"
      limits:
        memory: "2Gi"
        cpu: "1"
    options:
      journalMaxGroupWaitMSec: "1"
  pravega:
    controllerReplicas: 1
    segmentStoreReplicas: 3
    debugLogging: true
    image:
      repository: pravega/pravega
      tag: 0.4.0
      pullPolicy: IfNotPresent
    options:
      pravegaservice.containerCount: "4"
      pravegaservice.cacheMaxSize: "1073741824"
    cacheVolumeClaimTemplate:
      accessModes: [ "ReadWriteOnce" ]
      storageClassName: "standard"
      resources:
        requests:
          storage: 20Gi
    tier2:
      filesystem:
        persistentVolumeClaim:
          claimName: pravega-tier2
    controllerServiceAccountName: pravega-components
    segmentStoreServiceAccountName: pravega-components
    controllerResources:
      requests:
        memory: "1Gi"
        cpu: "1000m"
      limits:
        memory: "3Gi"
        cpu: "2000m"
    segmentStoreResources:
      requests:
        memory: "3Gi"
        cpu: "1000m"
      limits:
        memory: "5Gi"
        cpu: "2000m"
"#;

/// The operator, then the tier 2 claim and the sample cluster at `version`, all 7 members Ready.
async fn start_sample_at(version: &str) -> (Env, Operator) {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_yaml(TIER2_CLAIM).await;
    env.apply_yaml(&sample_at(version)).await;
    wait_members(&env, "example", version, "7", "7").await;
    (env, op)
}

/// `name=value` of every environment variable given to the first container of `pod`.
async fn pod_env(env: &Env, pod: &str) -> String {
    env.jsonpath(
        &["pod", pod],
        r#"{range .spec.containers[0].env[*]}{.name}={.value}{"\n"}{end}"#,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstream_0_4_manifest_applies_unchanged_and_becomes_ready() {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_yaml(TIER2_CLAIM).await;
    env.kubectl_ok(&["create", "serviceaccount", "bookie-sa"])
        .await;
    env.kubectl_ok(&["create", "serviceaccount", "pravega-components"])
        .await;
    env.apply_yaml(UPSTREAM_0_4).await;
    wait_members(&env, "legacy", "0.4.0", "7", "7").await;

    // The same object through both versions; applying the manifest again changes nothing.
    let through = |version: &'static str| {
        let env = &env;
        async move {
            env.jsonpath(&[&format!("pravegaclusters.{version}.pravega.pravega.io"), "legacy"], "{.apiVersion} {.spec.bookkeeper.serviceAccountName} {.spec.pravega.tier2.filesystem.persistentVolumeClaim.claimName}")
            .await
        }
    };
    assert_eq!(
        through("v1alpha1").await,
        "pravega.pravega.io/v1alpha1 bookie-sa pravega-tier2"
    );
    assert_eq!(
        through("v1beta1").await,
        "pravega.pravega.io/v1beta1 bookie-sa pravega-tier2"
    );
    let again = {
        let path = std::env::temp_dir().join(format!("legacy-{}.yaml", std::process::id()));
        std::fs::write(&path, UPSTREAM_0_4).expect("write manifest");
        let out = env
            .kubectl_ok(&["apply", "-f", path.to_str().expect("utf-8 path")])
            .await;
        let _ = std::fs::remove_file(&path);
        out
    };
    assert_eq!(
        again.trim(),
        "pravegacluster.pravega.pravega.io/legacy unchanged"
    );

    // Every field is honoured: service accounts, resources, claim templates, options, debug
    // logging and the tier 2 claim reach the pods.
    let bookie = env
        .jsonpath(
            &["pod", "legacy-bookie-0"],
            "{.spec.serviceAccountName} {.spec.containers[0].resources.limits.memory}",
        )
        .await;
    assert_eq!(bookie, "bookie-sa 2Gi");
    let claims = env
        .jsonpath(
            &["statefulset", "legacy-bookie"],
            "{.spec.volumeClaimTemplates[*].spec.storageClassName}",
        )
        .await;
    assert_eq!(claims, "standard standard standard");
    let bookie_env = pod_env(&env, "legacy-bookie-0").await;
    assert!(bookie_env.contains("BK_AUTORECOVERY=true"), "{bookie_env}");
    let store = env
        .jsonpath(&["pod", "legacy-pravega-segmentstore-0"], "{.spec.serviceAccountName} {.spec.containers[0].resources.limits.memory} {.spec.volumes[?(@.name==\"tier2\")].persistentVolumeClaim.claimName}")
        .await;
    assert_eq!(store, "pravega-components 5Gi pravega-tier2");
    let store_env = pod_env(&env, "legacy-pravega-segmentstore-0").await;
    for want in [
        "-Dlog.level=DEBUG",
        "-Dpravegaservice.cacheMaxSize=1073741824",
        "-Dpravegaservice.clusterName=legacy",
    ] {
        assert!(store_env.contains(want), "{want} missing in {store_env}");
    }

    // A setting that holds data cannot change: without the webhook the operator refuses it with
    // the same rule, from what it recorded when it applied the workloads, and changes nothing.
    env.kubectl_ok(&[
        "patch",
        "pravegacluster",
        "legacy",
        "--type=merge",
        "-p",
        r#"{"spec":{"pravega":{"options":{"pravegaservice.containerCount":"8"}}}}"#,
    ])
    .await;
    let error = |want: &'static str| wait_error(&env, "legacy", want, WAIT);
    let refused = error("True InvalidSpec").await;
    assert!(
        refused.contains("the segment container count (pravegaservice.containerCount / pravegaservice.container.count) cannot change once the cluster exists (it is 4; the request makes it 8)"),
        "{refused}"
    );
    let opts = pod_env(&env, "legacy-pravega-segmentstore-0").await;
    assert!(opts.contains("-Dpravegaservice.containerCount=4"), "{opts}");
    env.kubectl_ok(&[
        "patch",
        "pravegacluster",
        "legacy",
        "--type=merge",
        "-p",
        r#"{"spec":{"pravega":{"options":{"pravegaservice.containerCount":"4"}}}}"#,
    ])
    .await;
    error("False").await;

    // And the API server refuses the StatefulSet changes it forbids, with its own words.
    env.kubectl(&[
        "patch",
        "statefulset",
        "legacy-bookie",
        "--type=merge",
        "-p",
        r#"{"spec":{"serviceName":"other"}}"#,
    ])
    .await
    .expect_err("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden");
    op.terminate().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_guides_upgrade_from_0_6_to_0_7_crosses_the_bookie_options_change() {
    let (env, op) = start_sample_at("0.6.0").await;

    env.patch_cluster(
        "example",
        "json",
        r#"[{"op": "replace", "path": "/spec/version", "value": "0.7.0"}]"#,
    )
    .await;
    wait_members(&env, "example", "0.7.0", "7", "7").await;

    let pods = env
        .jsonpath(&["pods", "-l", "app.kubernetes.io/instance=example"], r#"{range .items[*]}{.spec.containers[0].image} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}{"\n"}{end}"#)
        .await;
    let lines: Vec<&str> = pods.lines().collect();
    assert_eq!(lines.len(), 7, "{pods}");
    for line in lines {
        assert!(
            line.ends_with(":0.7.0 true 0"),
            "every pod runs 0.7.0, Ready, never restarted: {pods}"
        );
    }
    // The 0.7 bookies got their JVM options the way BookKeeper 4.9 can run them.
    let bookie_env = pod_env(&env, "example-bookie-0").await;
    assert!(
        bookie_env.contains("BOOKIE_MEM_OPTS=-Xms512m -Xmx512m"),
        "{bookie_env}"
    );
    assert!(!bookie_env.contains("BK_BOOKIE_"), "{bookie_env}");
    assert!(bookie_env.contains("BK_autoRecoveryDaemonEnabled=true"));
    op.terminate().await;
    env.shutdown().await;
}

/// Volumes outlive their cluster. A cluster re-created at an older version used to bind to the
/// volumes a newer one wrote and downgrade their data silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_is_not_started_on_volumes_a_newer_version_wrote() {
    let (env, op) = start_sample_at("0.7.0").await;
    env.wait_jsonpath(
        "the volumes to remember 0.7.0",
        WAIT,
        &[
            "pvc",
            "ledger-example-bookie-0",
            "cache-example-pravega-segmentstore-2",
        ],
        r#"{.items[*].metadata.annotations.pravega\.pravega\.io/highest-version}"#,
        |got| got == "0.7.0 0.7.0",
    )
    .await;

    // Deleted (the PVCs stay), then re-created at 0.5.0: refused, nothing is created.
    env.kubectl_ok(&["delete", "pravegacluster", "example"])
        .await;
    eventually("the workloads to go", WAIT, || async {
        let got = env
            .kubectl_ok(&["get", "statefulsets,deployments", "-o", "name"])
            .await;
        if got.trim().is_empty() {
            Ok(())
        } else {
            Err(got)
        }
    })
    .await;
    env.apply_yaml(&sample_at("0.5.0")).await;
    let error = wait_error(&env, "example", "True DataFromNewerVersion", WAIT).await;
    assert!(
        error.contains("ledger-example-bookie-0 (0.7.0)")
            && error.contains("pravega.pravega.io/allow-older-version-on-newer-data=true"),
        "{error}"
    );
    let workloads = env
        .kubectl_ok(&["get", "statefulsets,deployments", "-o", "name"])
        .await;
    assert!(workloads.trim().is_empty(), "{workloads}");

    // A person decides: the documented override starts it anyway.
    env.kubectl_ok(&[
        "annotate",
        "pravegacluster",
        "example",
        "pravega.pravega.io/allow-older-version-on-newer-data=true",
    ])
    .await;
    wait_members(&env, "example", "0.5.0", "7", "7").await;
    op.terminate().await;
    env.shutdown().await;
}
