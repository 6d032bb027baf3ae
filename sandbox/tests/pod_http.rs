//! End to end: simulated pods get their own loopback IPs and answer the BookKeeper admin API
//! and the Pravega health API there, as the real images of each version would; annotations set
//! with the real kubectl inject faults.

use pravega_sandbox::Sandbox;
use pravega_sandbox::testing::blocking::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `GET http://<ip>:<port><path>` over HTTP/1.0: status and body.
fn get(ip: &str, port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().expect("address"),
        Duration::from_secs(5),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Waits until `GET` answers what `want` accepts.
fn until(
    what: &str,
    ip: &str,
    port: u16,
    path: &str,
    want: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    eventually(what, WAIT, || match get(ip, port, path) {
        Ok((code, body)) if want(code, &body) => Some((code, body)),
        _ => None,
    })
}

fn refused(ip: &str, port: u16) -> bool {
    matches!(get(ip, port, "/"), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

fn pod_ip(sb: &Sandbox, ns: &str, pod: &str) -> String {
    eventually(&format!("{pod} has an IP"), WAIT, || {
        let ip = jsonpath(sb, ns, &["pod", pod], "{.status.podIP}");
        (!ip.is_empty()).then_some(ip)
    })
}

fn wait_ready(sb: &Sandbox, ns: &str, selector: &str) {
    eventually(&format!("pods {selector} exist"), WAIT, || {
        let out = kubectl_get(sb, ns, &["pods", "-l", selector, "-o", "name"]);
        (!out.trim().is_empty()).then_some(())
    });
    wait_condition(sb, ns, "Ready", &["pod", "-l", selector]);
}

fn annotate(sb: &Sandbox, ns: &str, pod: &str, annotation: &str) {
    kubectl_ok(
        sb,
        &["-n", ns, "annotate", "pod", pod, "--overwrite", annotation],
    );
}

/// Bookies of cluster `example` at `version`, as the operator labels and configures them.
fn bookies(ns: &str, version: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: example-bookie
  namespace: {ns}
spec:
  replicas: {replicas}
  serviceName: example-bookie-headless
  selector:
    matchLabels: {{app.kubernetes.io/instance: example, app.kubernetes.io/component: bookie}}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: pravega-cluster
        app.kubernetes.io/instance: example
        app.kubernetes.io/component: bookie
    spec:
      containers:
      - name: bookie
        image: pravega/bookkeeper:{version}
        env:
        - {{name: BK_useHostNameAsBookieID, value: "true"}}
        - {{name: BK_httpServerEnabled, value: "true"}}
        - {{name: BK_httpServerPort, value: "8000"}}
"#
    )
}

/// How long a pod waits for what it expects.
const WAIT: Duration = Duration::from_secs(30);

const URL: &str = "/api/v1/autorecovery/list_under_replicated_ledger";
const RW: &str = "/api/v1/bookie/list_bookies?type=rw";
const RO: &str = "/api/v1/bookie/list_bookies?type=ro";

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?} is not JSON: {e}"))
}

fn id(pod: &str, ns: &str) -> String {
    format!("{pod}.example-bookie-headless.{ns}.svc.cluster.local:3181")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookies_get_their_own_ips_and_answer_the_admin_api() {
    const NS: &str = "bookies";
    let (sb, sim) = Env::in_namespace(NS).await.into_parts();
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], &bookies(NS, "0.9.0", 2));
    wait_ready(&sb, NS, "app.kubernetes.io/instance=example");
    // The StatefulSet starts bookie-1 once bookie-0 is Ready: wait for both.
    let (b0, b1) = (
        pod_ip(&sb, NS, "example-bookie-0"),
        pod_ip(&sb, NS, "example-bookie-1"),
    );
    wait_condition(
        &sb,
        NS,
        "Ready",
        &["pod", "example-bookie-0", "example-bookie-1"],
    );

    // Distinct loopback addresses, shown by `kubectl get pod -o wide`.
    let wide = kubectl_get(&sb, NS, &["pods", "-o", "wide"]);
    let ips: Vec<String> = table(&wide)
        .iter()
        .skip(1)
        .map(|row| row[5].clone())
        .collect();
    assert_eq!(ips.len(), 2, "{wide}");
    assert_ne!(ips[0], ips[1], "{wide}");
    for ip in &ips {
        let addr: std::net::Ipv4Addr = ip.parse().expect("an IPv4 address");
        assert!(
            addr.is_loopback() && addr != std::net::Ipv4Addr::LOCALHOST,
            "{wide}"
        );
    }
    assert_eq!(ips, [b0.clone(), b1.clone()]);

    assert_eq!(
        get(&b0, 8000, "/heartbeat").unwrap(),
        (200, "OK\n".to_owned())
    );
    // No under-replicated ledgers: BookKeeper's 404.
    assert_eq!(
        get(&b0, 8000, URL).unwrap(),
        (404, "No under replicated ledgers found".to_owned())
    );
    // Both bookies are writable, listed by their host names.
    let rw = json(&get(&b1, 8000, RW).unwrap().1);
    assert_eq!(
        rw,
        serde_json::json!({ id("example-bookie-0", NS): null, id("example-bookie-1", NS): null })
    );
    assert_eq!(json(&get(&b1, 8000, RO).unwrap().1), serde_json::json!({}));
    assert_eq!(
        json(&get(&b0, 8000, "/api/v1/bookie/state").unwrap().1),
        serde_json::json!({"running": true, "readOnly": false, "shuttingDown": false, "availableForHighPriorityWrites": true})
    );
    assert_eq!(
        get(&b0, 8000, "/api/v1/bookie/is_ready").unwrap(),
        (200, String::new())
    );
    assert_eq!(get(&b0, 8000, "/api/v1/no/such/thing").unwrap().0, 404);

    // Three under-replicated ledgers on one bookie: the whole cluster reports them.
    annotate(
        &sb,
        NS,
        "example-bookie-0",
        "sandbox.pravega.io/under-replicated-ledgers=3",
    );
    let (_, body) = until("3 under-replicated ledgers", &b1, 8000, URL, |code, _| {
        code == 200
    });
    let ids: Vec<u64> = serde_json::from_str(&body).expect("a JSON list of ledger ids");
    assert_eq!(ids.len(), 3, "{body}");
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3,
        "{body}"
    );
    // Removed: none again.
    kubectl_ok(
        &sb,
        &[
            "-n",
            NS,
            "annotate",
            "pod",
            "example-bookie-0",
            "sandbox.pravega.io/under-replicated-ledgers-",
        ],
    );
    until(
        "no under-replicated ledgers",
        &b0,
        8000,
        URL,
        |code, body| code == 404 && body == "No under replicated ledgers found",
    );

    // A read-only bookie moves from the writable list to the read-only one.
    annotate(
        &sb,
        NS,
        "example-bookie-1",
        "sandbox.pravega.io/bookie-read-only=true",
    );
    until("bookie 1 read-only", &b0, 8000, RO, |_, body| {
        serde_json::from_str::<serde_json::Value>(body).ok()
            == Some(serde_json::json!({ id("example-bookie-1", NS): null }))
    });
    assert_eq!(
        json(&get(&b0, 8000, RW).unwrap().1),
        serde_json::json!({ id("example-bookie-0", NS): null })
    );
    assert_eq!(
        json(&get(&b1, 8000, "/api/v1/bookie/state").unwrap().1)["readOnly"],
        true
    );

    // An unhealthy bookie is not ready and not listed.
    annotate(
        &sb,
        NS,
        "example-bookie-0",
        "sandbox.pravega.io/health=unhealthy",
    );
    until(
        "bookie 0 not ready",
        &b0,
        8000,
        "/api/v1/bookie/is_ready",
        |code, body| code == 503 && body == "Bookie is not fully started yet",
    );
    assert_eq!(json(&get(&b1, 8000, RW).unwrap().1), serde_json::json!({}));

    // Unreachable: connections are refused, until the annotation goes.
    annotate(
        &sb,
        NS,
        "example-bookie-0",
        "sandbox.pravega.io/unreachable=true",
    );
    eventually("bookie 0 unreachable", WAIT, || {
        refused(&b0, 8000).then_some(())
    });
    assert_eq!(get(&b1, 8000, "/heartbeat").unwrap().0, 200);
    annotate(
        &sb,
        NS,
        "example-bookie-0",
        "sandbox.pravega.io/unreachable=false",
    );
    until(
        "bookie 0 reachable again",
        &b0,
        8000,
        "/heartbeat",
        |code, _| code == 200,
    );

    // A value that cannot be read changes nothing and is reported on the pod.
    annotate(
        &sb,
        NS,
        "example-bookie-1",
        "sandbox.pravega.io/under-replicated-ledgers=abc",
    );
    let warning = eventually("a warning event", WAIT, || {
        let out = jsonpath(
            &sb,
            NS,
            &[
                "events",
                "--field-selector",
                "involvedObject.name=example-bookie-1, type=Warning",
            ],
            "{range .items[*]}{.message}{\"\\n\"}{end}",
        );
        out.lines()
            .find(|l| l.contains("under-replicated-ledgers"))
            .map(str::to_owned)
    });
    assert!(warning.contains("\"abc\""), "{warning}");
    assert_eq!(get(&b1, 8000, URL).unwrap().0, 404);

    // A deleted pod's servers go with it.
    kubectl_ok(
        &sb,
        &["-n", NS, "delete", "pod", "example-bookie-1", "--wait=true"],
    );
    eventually("the deleted bookie's server stops", WAIT, || {
        refused(&b1, 8000).then_some(())
    });

    // And every server stops with the simulation.
    sim.shutdown().await;
    assert!(refused(&b0, 8000));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pravega_0_10_health_answers_true_then_false_when_unhealthy() {
    const NS: &str = "health";
    let (sb, sim) = Env::in_namespace(NS).await.into_parts();
    let manifests = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: controller
  namespace: {NS}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: controller}}
  template:
    metadata:
      labels: {{app: controller}}
    spec:
      containers:
      - name: controller
        image: pravega/pravega:0.10.0
        args: [controller]
        env:
        - {{name: REST_SERVER_PORT, value: "10080"}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: store
  namespace: {NS}
spec:
  replicas: 2
  serviceName: store
  podManagementPolicy: Parallel
  updateStrategy: {{type: OnDelete}}
  selector:
    matchLabels: {{app: store}}
  template:
    metadata:
      labels: {{app: store}}
    spec:
      containers:
      - name: segmentstore
        image: pravega/pravega:0.10.0
        args: [segmentstore]
        env:
        - {{name: REST_HOST, value: "0.0.0.0"}}
        - name: JAVA_OPTS
          value: "-Xmx1g -Dpravegaservice.rest.listener.host=$(REST_HOST)"
"#
    );
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], &manifests);
    wait_ready(&sb, NS, "app=controller");
    let pod = jsonpath(
        &sb,
        NS,
        &["pods", "-l", "app=controller"],
        "{.items[0].metadata.name}",
    );
    let ip = pod_ip(&sb, NS, &pod);

    assert_eq!(
        get(&ip, 10080, "/v1/health/readiness").unwrap(),
        (200, "true".to_owned())
    );
    assert_eq!(
        get(&ip, 10080, "/v1/health/liveness").unwrap(),
        (200, "true".to_owned())
    );
    let health = json(&get(&ip, 10080, "/v1/health").unwrap().1);
    assert_eq!(
        (health["status"].as_str(), health["readiness"].as_bool()),
        (Some("UP"), Some(true))
    );

    annotate(&sb, NS, &pod, "sandbox.pravega.io/health=unhealthy");
    // Still 200: Pravega answers readiness with a boolean.
    until(
        "readiness false",
        &ip,
        10080,
        "/v1/health/readiness",
        |code, body| code == 200 && body == "false",
    );
    assert_eq!(
        get(&ip, 10080, "/v1/health/liveness").unwrap(),
        (200, "false".to_owned())
    );
    assert_eq!(
        json(&get(&ip, 10080, "/v1/health").unwrap().1)["status"],
        "DOWN"
    );

    // The Segment Store serves on the pod's IP only when its REST server binds 0.0.0.0; this
    // one has no tier 2, so it runs but is never ready, and says so.
    let s0 = pod_ip(&sb, NS, "store-0");
    until(
        "the segment store's readiness",
        &s0,
        6061,
        "/v1/health/readiness",
        |code, body| code == 200 && body == "false",
    );
    assert_eq!(
        get(&s0, 6061, "/v1/health/liveness").unwrap(),
        (200, "true".to_owned())
    );
    // Bound to localhost (the default): nothing on the pod's IP.
    kubectl_ok(
        &sb,
        &[
            "-n",
            NS,
            "set",
            "env",
            "statefulset/store",
            "REST_HOST=localhost",
        ],
    );
    pod_ip(&sb, NS, "store-1");
    kubectl_ok(&sb, &["-n", NS, "delete", "pod", "store-1", "--wait=true"]);
    let s1 = eventually("store-1 again, running", WAIT, || {
        let phase = jsonpath(&sb, NS, &["pod", "store-1"], "{.status.phase}");
        (phase == "Running").then(|| pod_ip(&sb, NS, "store-1"))
    });
    let log = eventually("store-1's log", WAIT, || {
        let r = kubectl(&sb, &["-n", NS, "logs", "store-1"]);
        (r.ok && r.stdout.contains("localhost")).then_some(r.stdout)
    });
    assert!(
        log.contains("-Dpravegaservice.rest.listener.host=localhost"),
        "{log}"
    );
    assert!(refused(&s1, 6061));

    sim.shutdown().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_0_4_bookie_serves_nothing() {
    const NS: &str = "old";
    let (sb, sim) = Env::in_namespace(NS).await.into_parts();
    // Pravega 0.4's bookie image ships BookKeeper 4.5, which has no HTTP server, whatever the
    // pod asks for.
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], &bookies(NS, "0.4.0", 1));
    wait_ready(&sb, NS, "app.kubernetes.io/instance=example");
    let ip = pod_ip(&sb, NS, "example-bookie-0");
    assert!(ip.starts_with("127.") && ip != "127.0.0.1", "{ip}");
    // It runs and is ready, a while: still nothing answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for port in [8000, 8080] {
        assert!(refused(&ip, port), "{ip}:{port} answers");
    }
    sim.shutdown().await;
    sb.shutdown().await;
}
