//! `kubectl logs` of simulated pods: the API server's `pods/log` subresource, answered by the
//! simulated kubelets, with a real API server's (and kubelet's) wording for what has no log.

use pravega_sandbox::Sandbox;
use pravega_sandbox::sim::{FailureMode, Simulation};
use pravega_sandbox::testing::blocking::*;
use std::io::Read;
use std::time::{Duration, Instant};

const NS: &str = "logs";

async fn start() -> (Sandbox, Simulation) {
    Env::in_namespace(NS).await.into_parts()
}

/// Waits (30 s at most) until `f` gives a value.
fn eventually<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    pravega_sandbox::testing::blocking::eventually(what, Duration::from_secs(30), f)
}

/// A field of `object`, or empty if kubectl fails.
fn field(sb: &Sandbox, object: &str, path: &str) -> String {
    let r = kubectl(
        sb,
        &["-n", NS, "get", object, "-o", &format!("jsonpath={path}")],
    );
    if r.ok { r.stdout } else { String::new() }
}

fn pod_status(sb: &Sandbox, pod: &str) -> String {
    table(&kubectl_get(sb, NS, &["pod", pod]))
        .get(1)
        .and_then(|r| r.get(2).cloned())
        .unwrap_or_default()
}

fn wait_status(sb: &Sandbox, pod: &str, status: &str) {
    eventually(&format!("{pod} {status}"), || {
        (pod_status(sb, pod) == status).then_some(())
    });
}

fn logs(sb: &Sandbox, args: &[&str]) -> Run {
    let mut all = vec!["-n", NS, "logs"];
    all.extend_from_slice(args);
    kubectl(sb, &all)
}

fn pod(name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {image}\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_of_running_waiting_and_missing_containers() {
    let (sb, sim) = start().await;
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &pod("web", "busybox:1.36", "    args: [sleep, \"3600\"]\n"),
    );
    wait_status(&sb, "web", "Running");

    // The container's start, with and without -c, --tail, --timestamps.
    let start = "starting busybox:1.36 with args [sleep 3600]\n";
    assert_eq!(logs(&sb, &["web"]).stdout, start);
    assert_eq!(logs(&sb, &["web", "-c", "main"]).stdout, start);
    assert_eq!(logs(&sb, &["pod/web", "--tail", "1"]).stdout, start);
    assert_eq!(logs(&sb, &["web", "--tail", "0"]).stdout, "");
    let stamped = logs(&sb, &["web", "--timestamps"]).stdout;
    let (ts, line) = stamped.split_once(' ').expect("a timestamp");
    assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{stamped}");
    assert_eq!(line, start);
    // Through the raw API: text/plain.
    let raw = kubectl_ok(
        &sb,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{NS}/pods/web/log"),
        ],
    );
    assert_eq!(raw, start);

    // What has no log, as a real API server and kubelet say it.
    let r = logs(&sb, &["web", "--previous"]);
    assert!(!r.ok);
    assert_eq!(
        r.stderr,
        "Error from server (BadRequest): previous terminated container \"main\" in pod \"web\" not found\n"
    );
    // (kubectl reads the pod first: its own wording.)
    let r = logs(&sb, &["nope"]);
    assert_eq!(
        r.stderr,
        "error: error from server (NotFound): pods \"nope\" not found in namespace \"logs\"\n"
    );
    let r = kubectl(
        &sb,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{NS}/pods/nope/log"),
        ],
    );
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): pods \"nope\" not found\n"
    );
    let r = kubectl(
        &sb,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{NS}/pods/web/log?container=other"),
        ],
    );
    assert_eq!(
        r.stderr,
        "Error from server (BadRequest): container other is not valid for pod web\n"
    );
    let r = kubectl(
        &sb,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{NS}/pods/web/log?tailLines=-1"),
        ],
    );
    assert!(
        r.stderr.contains(
            "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        ),
        "{}",
        r.stderr
    );

    // A container that cannot start yet.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &pod(
            "cfg",
            "busybox:1.36",
            "    envFrom:\n    - configMapRef: {name: missing}\n",
        ),
    );
    wait_status(&sb, "cfg", "CreateContainerConfigError");
    let r = logs(&sb, &["cfg"]);
    assert_eq!(
        r.stderr,
        "Error from server (BadRequest): container \"main\" in pod \"cfg\" is waiting to start: CreateContainerConfigError\n"
    );
    sim.fail_image(
        regex::Regex::new(":unpullable$").expect("regex"),
        FailureMode::ImagePull,
    );
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &pod("pull", "busybox:unpullable", ""),
    );
    eventually("pull waiting", || {
        let s = pod_status(&sb, "pull");
        (s == "ErrImagePull" || s == "ImagePullBackOff").then_some(())
    });
    let r = logs(&sb, &["pull"]);
    assert!(
        r.stderr
            == "Error from server (BadRequest): container \"main\" in pod \"pull\" is waiting to start: image can't be pulled\n"
            || r.stderr
                == "Error from server (BadRequest): container \"main\" in pod \"pull\" is waiting to start: trying and failing to pull image\n",
        "{}",
        r.stderr
    );
    // Not scheduled: no kubelet to ask, an empty log.
    sim.fail_image(
        regex::Regex::new(":unschedulable$").expect("regex"),
        FailureMode::Unschedulable,
    );
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &pod("pending", "busybox:unschedulable", ""),
    );
    eventually("pending unschedulable", || {
        (field(&sb, "pod/pending", "{.status.conditions[0].reason}") == "Unschedulable")
            .then_some(())
    });
    let r = logs(&sb, &["pending"]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    // Bound to a node that does not exist: the API server cannot find its kubelet.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &pod("lost", "busybox:1.36", "").replace("spec:\n", "spec:\n  nodeName: node-x\n"),
    );
    let r = logs(&sb, &["lost"]);
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): nodes \"node-x\" not found\n"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashes_show_their_message_and_previous_instances_stay_readable() {
    let (sb, sim) = start().await;
    // A 0.9 bookie with a JVM flag Java 11 removed: it crashes at start.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &pod(
            "bookie",
            "pravega/bookkeeper:0.9.0",
            "    env:\n    - {name: PRAVEGA_CLUSTER_NAME, value: example}\n    - {name: BOOKIE_GC_OPTS, value: \"-XX:+UseG1GC -XX:+PrintGCDateStamps\"}\n",
        ),
    );
    wait_status(&sb, "bookie", "CrashLoopBackOff");
    let message = field(
        &sb,
        "pod/bookie",
        "{.status.containerStatuses[0].lastState.terminated.message}",
    );
    assert_eq!(
        message,
        "Unrecognized VM option 'PrintGCDateStamps'\nError: Could not create the Java Virtual Machine."
    );
    let expected = format!(
        "starting pravega/bookkeeper:0.9.0 with args []\nPRAVEGA_CLUSTER_NAME=example (registering under /pravega/example/bookkeeper/ledgers/available)\nBOOKIE_MEM_OPTS=\nBOOKIE_GC_OPTS=-XX:+UseG1GC -XX:+PrintGCDateStamps\nBOOKIE_GC_LOGGING_OPTS=\nBOOKIE_EXTRA_OPTS=\n{message}\n"
    );
    // The last terminated instance, with and without --previous; -f returns at once.
    assert_eq!(logs(&sb, &["bookie"]).stdout, expected);
    assert_eq!(logs(&sb, &["bookie", "--previous"]).stdout, expected);
    assert_eq!(logs(&sb, &["bookie", "-f"]).stdout, expected);
    assert_eq!(
        logs(&sb, &["bookie", "--tail=1"]).stdout,
        "Error: Could not create the Java Virtual Machine.\n"
    );

    // A Segment Store that runs but never becomes ready says why.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &pod(
            "segmentstore",
            "pravega/pravega:0.9.0",
            "    args: [segmentstore]\n    env:\n    - {name: JAVA_OPTS, value: \"-Xmx1g -Dpravegaservice.clusterName=example\"}\n    - {name: TIER2_STORAGE, value: FILESYSTEM}\n",
        ),
    );
    wait_status(&sb, "segmentstore", "Running");
    let out = eventually("the readiness failure in the log", || {
        let out = logs(&sb, &["segmentstore"]).stdout;
        (out.lines().count() == 5).then_some(out)
    });
    assert_eq!(
        out,
        "starting pravega/pravega:0.9.0 with args [segmentstore]\nJAVA_OPTS=-Xmx1g -Dpravegaservice.clusterName=example\npravegaservice.clusterName=example\nTIER2_STORAGE=FILESYSTEM\ntier 2 unreachable: TIER2_STORAGE is FILESYSTEM but NFS_MOUNT is not set, so filesystem.root is not a mounted volume\n"
    );

    // An injected crash loop that clears: the crashed instance is --previous.
    sim.fail_image(
        regex::Regex::new(":crashy$").expect("regex"),
        FailureMode::CrashLoop,
    );
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &pod("flaky", "busybox:crashy", "    args: [run]\n"),
    );
    wait_status(&sb, "flaky", "CrashLoopBackOff");
    let crashed = "starting busybox:crashy with args [run]\n";
    assert_eq!(logs(&sb, &["flaky"]).stdout, crashed);
    sim.clear_failures();
    wait_status(&sb, "flaky", "Running");
    assert_eq!(logs(&sb, &["flaky", "--previous"]).stdout, crashed);
    let (prev_ts, _) = logs(&sb, &["flaky", "--previous", "--timestamps"])
        .stdout
        .split_once(' ')
        .map(|(t, l)| (t.to_string(), l.to_string()))
        .expect("a timestamp");
    let current = logs(&sb, &["flaky", "--timestamps"]).stdout;
    let (cur_ts, line) = current.split_once(' ').expect("a timestamp");
    assert_eq!(line, crashed);
    assert!(
        cur_ts.parse::<jiff::Timestamp>().expect("time")
            > prev_ts.parse::<jiff::Timestamp>().expect("time"),
        "a new instance: {prev_ts} then {cur_ts}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follow_streams_until_the_container_stops() {
    let (sb, sim) = start().await;
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &pod("web", "busybox:1.36", "    args: [sleep, \"3600\"]\n"),
    );
    wait_status(&sb, "web", "Running");
    let mut follower = spawn_kubectl(&sb, &["-n", NS, "logs", "-f", "web"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        follower.try_wait().expect("kubectl").is_none(),
        "kubectl logs -f keeps following a running container"
    );
    // The pod is deleted: its container stops and the log ends.
    kubectl_ok(&sb, &["-n", NS, "delete", "pod", "web", "--wait=false"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = follower.try_wait().expect("kubectl") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = follower.kill();
            panic!("kubectl logs -f did not end when the container stopped");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    follower
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert!(status.success(), "{status:?}");
    assert_eq!(out, "starting busybox:1.36 with args [sleep 3600]\n");

    // A follower that goes away (Ctrl-C) does not keep anything open: the sandbox stops
    // promptly.
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], &pod("web2", "busybox:1.36", ""));
    wait_status(&sb, "web2", "Running");
    let mut follower = spawn_kubectl(&sb, &["-n", NS, "logs", "-f", "web2"]);
    std::thread::sleep(Duration::from_millis(1000));
    let _ = follower.kill();
    let _ = follower.wait();
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("the simulation stops");
    tokio::time::timeout(Duration::from_secs(10), sb.shutdown())
        .await
        .expect("the sandbox stops");
}
