//! End-to-end: the simulated kubelet plays the contracts of the real Pravega and BookKeeper
//! images (and resolves environments as a kubelet does), seen with the real kubectl.

use pravega_sandbox::Sandbox;
use pravega_sandbox::sim::Simulation;
use pravega_sandbox::testing::blocking::{self, *};
use std::time::Duration;

const NS: &str = "contracts";

async fn start() -> (Sandbox, Simulation) {
    Env::in_namespace(NS).await.into_parts()
}

/// Waits (30 s at most) until `f` gives a value.
fn eventually<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    pravega_sandbox::testing::blocking::eventually(what, Duration::from_secs(30), f)
}

/// A field of `object`, or empty if kubectl fails.
fn field(sb: &Sandbox, ns: &str, object: &str, path: &str) -> String {
    let r = kubectl(
        sb,
        &["-n", ns, "get", object, "-o", &format!("jsonpath={path}")],
    );
    if r.ok { r.stdout } else { String::new() }
}

fn wait_ready(sb: &Sandbox, ns: &str, pod: &str) {
    wait_condition(sb, ns, "Ready", &[&format!("pod/{pod}")]);
}

fn is_ready(sb: &Sandbox, ns: &str, pod: &str) -> bool {
    field(
        sb,
        ns,
        &format!("pod/{pod}"),
        "{.status.conditions[?(@.type==\"Ready\")].status}",
    ) == "True"
}

fn events(sb: &Sandbox, ns: &str, pod: &str, reason: &str) -> Vec<String> {
    let out = blocking::jsonpath(
        sb,
        ns,
        &[
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod}, reason={reason}"),
        ],
        "{range .items[*]}{.message}{\"\\n\"}{end}",
    );
    out.lines().map(str::to_owned).collect()
}

fn bookie_set(name: &str, version: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
  namespace: {NS}
spec:
  replicas: 1
  serviceName: {name}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: bookie
        image: pravega/bookkeeper:{version}
        env:
        - name: BK_BOOKIE_EXTRA_OPTS
          value: "-Xms1g -Xmx1g"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookie_0_7_aborts_on_a_bkenv_value_with_spaces_and_0_6_does_not() {
    let (sb, sim) = start().await;
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], &bookie_set("bk7", "0.7.0"));
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], &bookie_set("bk6", "0.6.0"));

    // 0.7 (BookKeeper 4.9, `set -e`): the bookie exits 127 again and again.
    eventually("bk7-0 in CrashLoopBackOff", || {
        let out = kubectl_get(&sb, NS, &["pod", "bk7-0"]);
        let rows = table(&out);
        (rows.get(1)?.get(2)? == "CrashLoopBackOff").then_some(())
    });
    let described = eventually("the bkenv.sh error in describe", || {
        let d = kubectl_ok(&sb, &["-n", NS, "describe", "pod", "bk7-0"]);
        d.contains("-Xmx1g: command not found").then_some(d)
    });
    assert!(
        described.contains("/opt/bookkeeper/conf/bkenv.sh: line 35: -Xmx1g: command not found"),
        "{described}"
    );
    assert!(squash(&described).contains("Exit Code: 127"), "{described}");
    assert!(
        described.contains("Back-off restarting failed container"),
        "{described}"
    );
    assert_eq!(
        field(
            &sb,
            NS,
            "pod/bk7-0",
            "{.status.containerStatuses[0].lastState.terminated.reason}"
        ),
        "Error"
    );

    // 0.6 (BookKeeper 4.7.3, no `set -e`): the failed line is not fatal.
    wait_ready(&sb, NS, "bk6-0");
    assert_eq!(
        field(
            &sb,
            NS,
            "pod/bk6-0",
            "{.status.containerStatuses[0].restartCount}"
        ),
        "0"
    );
    assert!(!is_ready(&sb, NS, "bk7-0"));
    sim.shutdown().await;
}

fn segment_store(name: &str, java_opts: Option<&str>) -> String {
    let java_opts = java_opts
        .map(|o| format!("    - name: JAVA_OPTS\n      value: \"{o}\"\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {NS}
spec:
  containers:
  - name: segmentstore
    image: pravega/pravega:0.5.0
    args: [segmentstore]
    envFrom:
    - configMapRef:
        name: segmentstore-config
    env:
    - name: CLUSTER_NAME
      value: example
{java_opts}    volumeMounts:
    - name: tier2
      mountPath: /mnt/tier2
  volumes:
  - name: tier2
    emptyDir: {{}}
"#
    )
}

const BOOKIE: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: bookie
  namespace: NAMESPACE
spec:
  containers:
  - name: bookie
    image: pravega/bookkeeper:0.5.0
    env:
    - name: PRAVEGA_CLUSTER_NAME
      value: CLUSTER_VALUE
"#;

const SEGMENT_STORE_CONFIG: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: segmentstore-config
  namespace: contracts
data:
  TIER2_STORAGE: FILESYSTEM
  NFS_MOUNT: /mnt/tier2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn segment_store_finds_bookies_only_under_its_jvm_cluster_name() {
    let (sb, sim) = start().await;
    // Bookies of cluster `example` here, and of the default cluster name elsewhere.
    kubectl_ok(&sb, &["create", "namespace", "elsewhere"]);
    let bookie = |ns: &str, cluster: &str| {
        BOOKIE
            .replace("NAMESPACE", ns)
            .replace("CLUSTER_VALUE", cluster)
    };
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], &bookie(NS, "example"));
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &bookie("elsewhere", "pravega-cluster"),
    );
    wait_ready(&sb, NS, "bookie");
    wait_ready(&sb, "elsewhere", "bookie");
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], SEGMENT_STORE_CONFIG);

    // CLUSTER_NAME is not what the Segment Store reads: it looks for pravega-cluster.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &segment_store("ss-default", None),
    );
    let expected = "Readiness probe failed: no bookies registered under /pravega/pravega-cluster/bookkeeper/ledgers/available (the Segment Store's cluster name comes from -Dpravegaservice.clusterName in JAVA_OPTS)";
    eventually("the Unhealthy event", || {
        events(&sb, NS, "ss-default", "Unhealthy")
            .iter()
            .any(|m| m == expected)
            .then_some(())
    });
    let described = kubectl_ok(&sb, &["-n", NS, "describe", "pod", "ss-default"]);
    assert!(
        described.contains("Readiness probe failed: no bookies registered"),
        "{described}"
    );
    let rows = table(&kubectl_get(&sb, NS, &["pod", "ss-default"]));
    assert_eq!(rows[1][1..3], ["0/1", "Running"], "{rows:?}");

    // With the cluster name as a JVM property it finds the bookie.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &segment_store(
            "ss-example",
            Some("-Xmx1g -Dpravegaservice.clusterName=example"),
        ),
    );
    wait_ready(&sb, NS, "ss-example");
    assert!(events(&sb, NS, "ss-example", "Unhealthy").is_empty());

    // The other one stays unready, reported once.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!is_ready(&sb, NS, "ss-default"));
    assert_eq!(events(&sb, NS, "ss-default", "Unhealthy").len(), 1);
    assert_eq!(
        field(
            &sb,
            NS,
            "pod/ss-default",
            "{.status.containerStatuses[0].restartCount}"
        ),
        "0"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_config_maps_and_secrets_keep_containers_from_being_created() {
    let (sb, sim) = start().await;
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: {NS}
spec:
  containers:
  - name: app
    image: nginx:1.25
    envFrom:
    - configMapRef:
        name: app-config
    - secretRef:
        name: optional-secret
        optional: true
    env:
    - name: PASSWORD
      valueFrom:
        secretKeyRef:
          name: app-secret
          key: password
"#
    );
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], &pod);
    let waiting = "{.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}";
    eventually("CreateContainerConfigError for the ConfigMap", || {
        (field(&sb, NS, "pod/app", waiting)
            == "CreateContainerConfigError: configmap \"app-config\" not found")
            .then_some(())
    });
    let rows = table(&kubectl_get(&sb, NS, &["pod", "app"]));
    assert_eq!(rows[1][1..3], ["0/1", "CreateContainerConfigError"]);
    assert_eq!(field(&sb, NS, "pod/app", "{.status.phase}"), "Pending");
    let failed = events(&sb, NS, "app", "Failed");
    assert!(
        failed
            .iter()
            .any(|m| m == "Error: configmap \"app-config\" not found"),
        "{failed:?}"
    );

    // The kubelet retries: with the ConfigMap, the Secret is what is missing.
    kubectl_ok(
        &sb,
        &[
            "-n",
            NS,
            "create",
            "configmap",
            "app-config",
            "--from-literal=ZK_URL=zk:2181",
        ],
    );
    eventually("CreateContainerConfigError for the Secret", || {
        (field(&sb, NS, "pod/app", waiting)
            == "CreateContainerConfigError: secret \"app-secret\" not found")
            .then_some(())
    });
    kubectl_ok(
        &sb,
        &[
            "-n",
            NS,
            "create",
            "secret",
            "generic",
            "app-secret",
            "--from-literal=password=s3cr3t",
        ],
    );
    wait_ready(&sb, NS, "app");
    let rows = table(&kubectl_get(&sb, NS, &["pod", "app"]));
    assert_eq!(rows[1][1..4], ["1/1", "Running", "0"]);
    sim.shutdown().await;
}
