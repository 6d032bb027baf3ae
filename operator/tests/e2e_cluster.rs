//! End to end: the real operator binary and the real `kubectl` against the sandbox API server with
//! simulated controllers and kubelets.

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// Sets `spec.pravega.segmentStoreReplicas` of cluster `example`.
async fn scale_segment_stores(env: &Env, replicas: u32) {
    let patch = format!(r#"{{"spec":{{"pravega":{{"segmentStoreReplicas":{replicas}}}}}}}"#);
    env.patch_cluster("example", "merge", &patch).await;
}

/// The resourceVersions of the cluster and everything it owns.
async fn resource_versions(env: &Env) -> String {
    env.jsonpath(
        &[
            "statefulsets,deployments,services,configmaps,poddisruptionbudgets",
            "-l",
            "app.kubernetes.io/instance=example",
        ],
        "{.items[*].metadata.resourceVersion}",
    )
    .await
        + &env
            .jsonpath(
                &["pravegacluster", "example"],
                "{.metadata.generation} {.status}",
            )
            .await
}

/// `Status:` of the condition of `type_` in `kubectl describe` output.
fn described_condition(describe: &str, type_: &str) -> Option<String> {
    let lines: Vec<&str> = describe.lines().collect();
    let at = lines.iter().position(|l| {
        let t = l.trim();
        t.starts_with("Type:") && t.trim_start_matches("Type:").trim() == type_
    })?;
    lines[..at].iter().rev().find_map(|l| {
        let t = l.trim();
        t.strip_prefix("Status:").map(|s| s.trim().to_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_cluster_comes_up_scales_and_costs_nothing_when_converged() {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_file("deploy/sample/pravegacluster.yaml").await;

    // The guide's healthy cluster: 3 bookies, 1 controller, 3 segment stores.
    wait_members(&env, "example", "0.4.0", "7", "7").await;
    let (code, body) = op.get("/readyz").await;
    assert_eq!((code, body.trim()), (200, "running"));
    assert_eq!(op.get("/healthz").await.0, 200);

    let describe = env
        .kubectl_ok(&["describe", "PravegaCluster", "example"])
        .await;
    assert_eq!(
        described_condition(&describe, "PodsReady").as_deref(),
        Some("True"),
        "{describe}"
    );
    for member in [
        "example-bookie-0",
        "example-bookie-1",
        "example-bookie-2",
        "example-pravega-controller-",
        "example-pravega-segmentstore-0",
        "example-pravega-segmentstore-1",
        "example-pravega-segmentstore-2",
    ] {
        assert!(describe.contains(member), "{member} missing in {describe}");
    }

    // The workloads are as designed and owned by the cluster.
    let strategy = env
        .jsonpath(&["statefulset", "example-bookie"], "{.spec.updateStrategy.type} {.metadata.ownerReferences[0].kind} {.spec.template.spec.containers[0].image}")
        .await;
    assert_eq!(strategy, "OnDelete PravegaCluster pravega/bookkeeper:0.4.0");
    let names = env
        .kubectl_ok(&[
            "get",
            "services,configmaps,poddisruptionbudgets",
            "-l",
            "app.kubernetes.io/instance=example",
            "-o",
            "name",
        ])
        .await;
    for want in [
        "service/example-bookie-headless",
        "service/example-pravega-controller",
        "service/example-pravega-segmentstore-headless",
        "configmap/example-bookie-configmap",
        "poddisruptionbudget.policy/example-pravega-segmentstore",
    ] {
        assert!(names.contains(want), "{want} missing in {names}");
    }

    // Audit logs tell the operator's writes apart: its User-Agent.
    let agents: std::collections::BTreeSet<String> = env
        .sandbox
        .audit()
        .into_iter()
        .filter(|e| {
            // What only the operator writes (the simulated controllers write the status of
            // workloads).
            (e.resource == "statefulsets" && e.subresource.is_none())
                || (e.resource == "pravegaclusters" && e.subresource.as_deref() == Some("status"))
        })
        .map(|e| e.user_agent)
        .collect();
    assert_eq!(
        agents,
        std::collections::BTreeSet::from([format!(
            "pravega-operator/{}",
            env!("CARGO_PKG_VERSION")
        )])
    );

    // Events a person reads in `kubectl describe`.
    let created = event_notes(&env, "Created").await;
    assert!(
        created
            .iter()
            .any(|n| n.contains("StatefulSet example-bookie")),
        "{created:?}"
    );

    // A converged cluster costs no write: poke it (a metadata change triggers a reconcile) and
    // check that the reconcile happened and wrote nothing.
    // Let the last status write's own watch event be reconciled first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes = op.metric_sum("pravega_operator_api_writes_total").await;
    let reconciles = op.metric("pravega_operator_reconciliations_total").await;
    let versions = resource_versions(&env).await;
    env.kubectl_ok(&[
        "annotate",
        "pravegacluster",
        "example",
        "e2e.pravega.io/poke=1",
        "--overwrite",
    ])
    .await;
    eventually("a reconcile after the poke", WAIT, || async {
        let now = op.metric("pravega_operator_reconciliations_total").await;
        if now > reconciles {
            Ok(())
        } else {
            Err(format!("{now}"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        op.metric_sum("pravega_operator_api_writes_total").await,
        writes,
        "a converged cluster must cost zero writes"
    );
    assert_eq!(resource_versions(&env).await, versions);

    // Readiness changes are seen at once.
    env.sim
        .as_ref()
        .unwrap()
        .set_pod_ready("default", "example-bookie-1", false)
        .await
        .unwrap();
    wait_members(&env, "example", "0.4.0", "7", "6").await;
    let unready = env
        .jsonpath(&["pravegacluster", "example"], "{.status.members.unready}")
        .await;
    assert!(unready.contains("example-bookie-1"), "{unready}");
    env.sim
        .as_ref()
        .unwrap()
        .set_pod_ready("default", "example-bookie-1", true)
        .await
        .unwrap();
    wait_members(&env, "example", "0.4.0", "7", "7").await;

    // Scale the segment stores up, then down: the claim of the removed member stays.
    scale_segment_stores(&env, 4).await;
    wait_members(&env, "example", "0.4.0", "8", "8").await;
    assert_eq!(
        env.kubectl_ok(&[
            "get",
            "statefulset",
            "example-pravega-segmentstore",
            "-o",
            "jsonpath={.spec.replicas}"
        ])
        .await,
        "4"
    );
    env.kubectl_ok(&["get", "pvc", "cache-example-pravega-segmentstore-3"])
        .await;
    scale_segment_stores(&env, 3).await;
    wait_members(&env, "example", "0.4.0", "7", "7").await;
    eventually("segment store 3 to go", WAIT, || async {
        let Run {
            ok, stdout: out, ..
        } = env
            .kubectl(&["get", "pod", "example-pravega-segmentstore-3", "-o", "name"])
            .await;
        if ok { Err(out) } else { Ok(()) }
    })
    .await;
    env.kubectl_ok(&["get", "pvc", "cache-example-pravega-segmentstore-3"])
        .await;
    let scaled = event_notes(&env, "Scaled").await;
    assert!(
        scaled.iter().any(|n| n.contains("from 4 to 3")),
        "{scaled:?}"
    );

    let log = op.log();
    assert!(
        log.contains("Reconciling PravegaCluster default/example"),
        "{log}"
    );
    assert_eq!(op.terminate().await, Some(0), "graceful shutdown exits 0");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalid_spec_is_refused_without_touching_workloads() {
    let env = Env::start().await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &["--namespace", "default"]).await;
    env.apply_yaml(
        r#"
apiVersion: pravega.pravega.io/v1beta1
kind: PravegaCluster
metadata:
  name: broken
spec:
  version: latest
"#,
    )
    .await;
    let condition = wait_error(&env, "broken", "True InvalidSpec", WAIT).await;
    assert!(condition.contains("latest"), "{condition}");
    let workloads = env
        .kubectl_ok(&[
            "get",
            "statefulsets,deployments,configmaps",
            "-l",
            "app.kubernetes.io/instance=broken",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(
        workloads.trim(),
        "",
        "nothing may be created for an invalid spec"
    );
    let warnings = warning_reasons(&env).await;
    assert!(
        warnings.iter().any(|r| r == "InvalidSpec"),
        "a Warning Event InvalidSpec is published: {warnings:?}"
    );

    // Fixing the spec clears the error and builds the cluster.
    env.kubectl_ok(&[
        "patch",
        "pravegacluster",
        "broken",
        "--type=merge",
        "-p",
        r#"{"spec":{"version":"0.4.0"}}"#,
    ])
    .await;
    env.wait_row("broken", "the fixed cluster to come up", WAIT, |row| {
        col(row, "VERSION") == "0.4.0" && col(row, "READY MEMBERS") == "5"
    })
    .await;
    let error = error_condition(&env, "broken").await;
    assert!(error.starts_with("False"), "{error}");
    assert_eq!(op.terminate().await, Some(0));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_error_surfaces_as_reconcile_failed_and_is_retried_until_it_clears() {
    let env = Env::start().await;
    // A StatefulSet in the way, whose spec the API server will not let the operator change.
    env.apply_yaml(&statefulset_in_the_way("example-bookie"))
        .await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_file("deploy/sample/pravegacluster.yaml").await;
    let failed = wait_error(&env, "example", "True ReconcileFailed", WAIT).await;
    assert!(
        failed.contains("StatefulSet default/example-bookie"),
        "{failed}"
    );
    let warnings = warning_reasons(&env).await;
    assert!(
        warnings.iter().any(|r| r == "ReconcileFailed"),
        "a Warning Event ReconcileFailed is published: {warnings:?}"
    );
    let (_, metrics) = op.get("/metrics").await;
    assert!(
        metrics.contains("pravega_operator_reconcile_failures_total{kind=\"Invalid\"}"),
        "{metrics}"
    );

    // Once the obstacle is gone, the retry (with backoff) builds the cluster and clears the error.
    env.kubectl_ok(&["delete", "statefulset", "example-bookie"])
        .await;
    wait_members(&env, "example", "0.4.0", "7", "7").await;
    assert!(error_condition(&env, "example").await.starts_with("False"));
    assert_eq!(op.terminate().await, Some(0));
    env.shutdown().await;
}

/// One cluster whose writes the API server refuses never holds up the others: 50 small clusters
/// converge while it keeps failing and being retried. And a converged operator reads nothing:
/// every read comes from its watch caches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_cluster_does_not_delay_fifty_others_and_reads_come_from_caches() {
    let env = Env::start().await;
    // The failing one: a StatefulSet in the way, whose spec the operator may not change.
    env.apply_yaml(&statefulset_in_the_way("stuck-bookie"))
        .await;
    env.apply_yaml(support::TIER2_CLAIM).await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &["--concurrency", "4"]).await;
    let cluster = |name: &str| {
        format!(
            "apiVersion: pravega.pravega.io/v1beta1\nkind: PravegaCluster\nmetadata:\n  name: {name}\nspec:\n  version: 0.4.0\n  zookeeperUri: zk:2181\n  bookkeeper:\n    replicas: 1\n  pravega:\n    controllerReplicas: 1\n    segmentStoreReplicas: 1\n"
        )
    };
    let mut yaml = cluster("stuck");
    let names: Vec<String> = (1..=50).map(|i| format!("c{i:02}")).collect();
    for n in &names {
        yaml.push_str("---\n");
        yaml.push_str(&cluster(n));
    }
    env.apply_yaml(&yaml).await;
    eventually("50 clusters Ready", Duration::from_secs(240), || async {
        // Deployed, and the version recorded on the volumes: the last step that reads.
        let out = env
            .jsonpath(
                &["pravegacluster"],
                r#"{range .items[*]}{.metadata.name}={.status.currentVersion}/{.status.volumesVersion}{"\n"}{end}"#,
            )
            .await;
        let ready = out.lines().filter(|l| l.ends_with("=0.4.0/0.4.0")).count();
        if ready == 50 {
            Ok(())
        } else {
            Err(format!("{ready} of 50 deployed"))
        }
    })
    .await;
    let failing = error_condition(&env, "stuck").await;
    assert!(failing.starts_with("True ReconcileFailed"), "{failing}");
    // Idle: the next minute of resyncs and retries reads nothing from the API server but the
    // watches themselves.
    let reads = |body: &str| {
        ["get", "list"]
            .iter()
            .map(|verb| {
                body.lines()
                    .filter(|l| {
                        l.starts_with("pravega_operator_api_requests_total{")
                            && l.contains(&format!("verb=\"{verb}\""))
                            && !l.contains("kind=\"/version\"")
                    })
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>()
            })
            .sum::<f64>()
    };
    let (_, before) = op.get("/metrics").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, after) = op.get("/metrics").await;
    assert_eq!(
        reads(&after) - reads(&before),
        0.0,
        "reads while idle:\n{after}"
    );
    op.terminate().await;
    env.shutdown().await;
}

/// A StatefulSet named like a cluster's workload but owned by somebody else, whose spec the API
/// server will not let the operator change: every apply of it fails.
fn statefulset_in_the_way(name: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
spec:
  serviceName: somebody-else
  replicas: 0
  selector:
    matchLabels: {{app: somebody-else}}
  template:
    metadata:
      labels: {{app: somebody-else}}
    spec:
      containers:
      - name: c
        image: busybox:1
"#
    )
}
