//! End-to-end: the real kubectl against the library sandbox.

use pravega_sandbox::testing::blocking::*;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

const NS: &str = "pravega";

fn sample() -> String {
    workspace_root()
        .join("deploy/sample/pravegacluster.yaml")
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pravegacluster_lifecycle_with_kubectl() {
    let sb = sandbox().await;
    install_crd(&sb, NS);
    let out = kubectl_ok(&sb, &["-n", NS, "apply", "-f", &sample()]);
    assert!(
        out.contains("pravegacluster.pravega.pravega.io/example created"),
        "{out}"
    );

    // The guide's columns, empty status at first.
    let rows = table(&kubectl_get(&sb, NS, &["pravegacluster"]));
    let header = kubectl_get(&sb, NS, &["pk"]);
    assert!(
        header.starts_with(
            "NAME      VERSION   DESIRED VERSION   DESIRED MEMBERS   READY MEMBERS   AGE"
        ),
        "{header}"
    );
    assert_eq!(rows[1][0], "example");

    // Status through the status subresource shows in the columns.
    patch_status(
        &sb,
        NS,
        "pravegacluster",
        "example",
        r#"{"status":{"currentVersion":"0.4.0","targetVersion":"0.5.0","replicas":7,"readyReplicas":6,
             "conditions":[{"type":"Upgrading","status":"True","reason":"UpgradeStarted","message":"upgrading to 0.5.0"}]}}"#,
    );
    let rows = table(&kubectl_get(&sb, NS, &["pravegacluster"]));
    assert_eq!(rows[1][..5], ["example", "0.4.0", "0.5.0", "7", "6"]);

    // A status write cannot change the spec, a spec write cannot change the status.
    patch_status(&sb, NS, "pk", "example", r#"{"spec":{"version":"9.9.9"}}"#);
    patch_ok(
        &sb,
        NS,
        ["pk", "example"],
        "merge",
        r#"{"status":{"replicas":1}}"#,
    );
    let example = |path: &str| jsonpath(&sb, NS, &["pk", "example"], path);
    assert_eq!(
        example("{.spec.version} {.status.replicas} {.metadata.generation}"),
        "0.4.0 7 1"
    );

    // describe shows spec, status and conditions.
    let d = squash(&kubectl_ok(
        &sb,
        &["-n", NS, "describe", "pravegacluster", "example"],
    ));
    for needle in [
        "Name: example",
        "Current Version: 0.4.0",
        "Type: Upgrading",
        "Message: upgrading to 0.5.0",
        "Zookeeper Uri: zookeeper-client:2181",
    ] {
        assert!(d.contains(needle), "describe lacks {needle:?}:\n{d}");
    }

    // The guide's exact upgrade command; generation follows the spec change.
    let out = patch_ok(
        &sb,
        NS,
        ["PravegaCluster", "example"],
        "json",
        "[{\"op\": \"replace\", \"path\": \"/spec/version\", \"value\": \"0.5.0\"}]",
    );
    assert!(out.contains("patched"), "{out}");
    assert_eq!(example("{.spec.version} {.metadata.generation}"), "0.5.0 2");

    // Schema validation: a bad value is rejected with the field path, as the real server does.
    patch(
        &sb,
        NS,
        ["pk", "example"],
        "merge",
        r#"{"spec":{"bookkeeper":{"replicas":0}}}"#,
    )
    .expect_err("spec.bookkeeper.replicas: Invalid value: 0: spec.bookkeeper.replicas in body should be greater than or equal to 1");
    // kubectl validates strictly on the server: unknown fields are rejected.
    kubectl_stdin(
        &sb,
        &["-n", NS, "apply", "-f", "-"],
        "apiVersion: pravega.pravega.io/v1beta1\nkind: PravegaCluster\nmetadata:\n  name: other\nspec:\n  version: 0.4.0\n  bogus: 1\n",
    )
    .expect_err("PravegaCluster in version \"v1beta1\" cannot be handled as a PravegaCluster: strict decoding error: unknown field \"spec.bogus\"");
    // Strategic merge is not defined for custom resources.
    patch(
        &sb,
        NS,
        ["pk", "example"],
        "strategic",
        r#"{"spec":{"version":"0.5.1"}}"#,
    )
    .expect_err("application/strategic-merge-patch+json is not supported");

    // kubectl edit (EDITOR rewrites the file) and server-side apply.
    let dir = tempfile::tempdir().unwrap();
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/version: 0.5.0/version: 0.5.1/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let edited = std::process::Command::new("kubectl")
        .args(["-n", NS, "edit", "pravegacluster", "example"])
        .env("KUBECONFIG", sb.kubeconfig_path())
        .env("EDITOR", &editor)
        .env("KUBECACHEDIR", dir.path().join("kubectl-cache"))
        .output()
        .unwrap();
    assert!(
        edited.status.success(),
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );
    assert_eq!(example("{.spec.version}"), "0.5.1");
    // kubectl edit owns the version now: applying another one is a conflict until forced.
    kubectl(&sb, &["-n", NS, "apply", "--server-side", "-f", &sample()]).expect_err(
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using pravega.pravega.io/v1beta1: .spec.version"#,
    );
    let out = kubectl_ok(
        &sb,
        &[
            "-n",
            NS,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &sample(),
        ],
    );
    assert!(out.contains("serverside-applied"), "{out}");
    assert_eq!(example("{.spec.version}"), "0.4.0");

    // kubectl explain reads the CRD's schema.
    let e = kubectl_ok(&sb, &["explain", "pravegacluster.spec"]);
    assert!(
        e.contains("KIND:       PravegaCluster") && e.contains("bookkeeper"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_watch_streams_changes_and_delete_cascades() {
    let sb = sandbox().await;
    install_crd(&sb, NS);
    kubectl_ok(&sb, &["-n", NS, "apply", "-f", &sample()]);
    let uid = jsonpath(&sb, NS, &["pk", "example"], "{.metadata.uid}");
    let owned = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: example-config\n  namespace: {NS}\n  ownerReferences:\n  - apiVersion: pravega.pravega.io/v1beta1\n    kind: PravegaCluster\n    name: example\n    uid: {uid}\n    controller: true\ndata:\n  a: b\n"
    );
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], &owned);

    let mut child = spawn_kubectl(&sb, &["-n", NS, "get", "pravegacluster", "-w"]);
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The initial listing arrives first.
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("header");
    assert!(first.starts_with("NAME"), "{first}");
    let row = rx.recv_timeout(Duration::from_secs(10)).expect("row");
    assert!(row.starts_with("example"), "{row}");
    // Each status change streams as a new row.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    for ready in [5, 6, 7] {
        patch_status(
            &sb,
            NS,
            "pk",
            "example",
            &format!(r#"{{"status":{{"replicas":7,"readyReplicas":{ready}}}}}"#),
        );
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("a streamed row");
            let cells: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            if cells.last().is_some()
                && cells.len() >= 4
                && cells[cells.len() - 2] == ready.to_string()
            {
                seen.push(ready);
                break;
            }
        }
    }
    assert_eq!(seen, [5, 6, 7]);
    let _ = child.kill();
    let _ = child.wait();

    // Deleting the owner garbage-collects the owned ConfigMap; kubectl waits for it to go.
    let out = kubectl_ok(&sb, &["-n", NS, "delete", "pravegacluster", "example"]);
    assert!(out.contains("\"example\" deleted"), "{out}");
    let cms = kubectl(&sb, &["-n", NS, "get", "configmap", "example-config"]);
    assert!(!cms.ok && cms.stderr.contains("NotFound"), "{}", cms.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn builtins_defaults_tables_and_namespace_deletion() {
    let sb = sandbox().await;
    kubectl_ok(&sb, &["create", "namespace", "apps"]);
    kubectl_ok(
        &sb,
        &[
            "-n",
            "apps",
            "create",
            "configmap",
            "settings",
            "--from-literal=k=v",
        ],
    );
    let dep = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.25\n      - name: sidecar\n        image: busybox:1.36\n";
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], dep);
    // Defaults the real server applies.
    let d = jsonpath(
        &sb,
        "apps",
        &["deploy", "web"],
        "{.spec.replicas} {.spec.revisionHistoryLimit} {.spec.progressDeadlineSeconds} {.spec.strategy.type} {.spec.template.spec.restartPolicy}",
    );
    assert_eq!(d, "1 10 600 RollingUpdate Always");
    // Client-side apply again with one image changed: strategic merge by container name.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &dep.replace("nginx:1.25", "nginx:1.26"),
    );
    let images = jsonpath(
        &sb,
        "apps",
        &["deploy", "web"],
        "{.spec.template.spec.containers[*].image} {.metadata.generation}",
    );
    assert_eq!(images, "nginx:1.26 busybox:1.36 2");
    let scaled = kubectl_ok(
        &sb,
        &["-n", "apps", "scale", "deployment", "web", "--replicas=3"],
    );
    assert!(scaled.contains("scaled"), "{scaled}");
    let r = jsonpath(&sb, "apps", &["deploy", "web"], "{.spec.replicas}");
    assert_eq!(r, "3");
    kubectl_ok(
        &sb,
        &["-n", "apps", "scale", "deployment", "web", "--replicas=1"],
    );
    let rows = table(&kubectl_get(&sb, "apps", &["deployments"]));
    assert_eq!(rows[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(rows[1][..4], ["web", "0/1", "0", "0"]);

    // Pod STATUS shows the waiting reason, then Terminating during the grace period.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: apps\nspec:\n  nodeName: node-1\n  terminationGracePeriodSeconds: 30\n  containers:\n  - name: c\n    image: busybox:1.36\n";
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], pod);
    patch_status(
        &sb,
        "apps",
        "pod",
        "p",
        r#"{"status":{"phase":"Running","containerStatuses":[{"name":"c","image":"busybox:1.36","imageID":"","ready":false,"restartCount":3,"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}}"#,
    );
    let rows = table(&kubectl_get(&sb, "apps", &["pods"]));
    assert_eq!(rows[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(rows[1][..4], ["p", "0/1", "CrashLoopBackOff", "3"]);
    kubectl_ok(&sb, &["-n", "apps", "delete", "pod", "p", "--wait=false"]);
    let rows = table(&kubectl_get(&sb, "apps", &["pods"]));
    assert_eq!(rows[1][2], "Terminating");
    // A final delete with grace 0 (what a kubelet does) removes it.
    kubectl_ok(
        &sb,
        &[
            "-n",
            "apps",
            "delete",
            "pod",
            "p",
            "--grace-period=0",
            "--force",
        ],
    );
    let gone = kubectl(&sb, &["-n", "apps", "get", "pod", "p"]);
    assert!(
        gone.stderr.contains("pods \"p\" not found"),
        "{}",
        gone.stderr
    );

    // Unknown fields in built-ins are rejected under kubectl's strict validation.
    let typo = kubectl_stdin(
        &sb,
        &["apply", "-f", "-"],
        &dep.replace("  selector:", "  replica: 2\n  selector:"),
    );
    assert!(
        typo.stderr.contains("Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\""),
        "{}",
        typo.stderr
    );

    // kubectl explain works for built-ins too.
    let e = kubectl_ok(&sb, &["explain", "deployment.spec.strategy"]);
    assert!(
        e.contains("DeploymentStrategy describes how to replace existing pods"),
        "{e}"
    );

    // Unknown kinds are a clear error.
    let unknown = kubectl(&sb, &["get", "widgets"]);
    assert!(
        !unknown.ok
            && unknown
                .stderr
                .contains("the server doesn't have a resource type \"widgets\""),
        "{}",
        unknown.stderr
    );

    // Prometheus metrics of the API server.
    let metrics = kubectl_ok(&sb, &["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains(
            "apiserver_request_total{verb=\"create\",resource=\"deployments\",code=\"201\"} 1"
        ),
        "{metrics}"
    );

    // Deleting the namespace deletes its contents; the default namespace cannot be deleted.
    kubectl_ok(&sb, &["delete", "namespace", "apps", "--timeout=10s"]);
    let ns = kubectl(&sb, &["get", "namespace", "apps"]);
    assert!(
        ns.stderr.contains("namespaces \"apps\" not found"),
        "{}",
        ns.stderr
    );
    let def = kubectl(&sb, &["delete", "namespace", "default"]);
    assert!(
        def.stderr.contains("this namespace may not be deleted"),
        "{}",
        def.stderr
    );
}
