//! Faults injected into the sandbox's answers (`SandboxOptions::faults`): errors at the
//! configured rate, seen by kubectl and kube-rs, writes they fault not applied, added latency,
//! dropped watches that a kube-runtime watcher survives, `410 Gone` on resumes, and the
//! simulation's control plane never faulted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use pravega_sandbox::testing::blocking;
use pravega_sandbox::{FaultOptions, Sandbox, SandboxOptions};
use serde_json::{Value, json};

async fn faulty(faults: FaultOptions) -> Sandbox {
    Sandbox::start(SandboxOptions {
        faults,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

/// A sandbox with `faults` and the ConfigMap `default/c` (`v: 0`), created by the control
/// plane (never faulted), through which the test reads what was stored.
async fn faulty_with_configmap(faults: FaultOptions) -> (Sandbox, Api<ConfigMap>) {
    let sb = faulty(faults).await;
    let control: Api<ConfigMap> =
        Api::namespaced(sb.control_plane_client().await.expect("client"), "default");
    control
        .create(&PostParams::default(), &cm("c", "0"))
        .await
        .expect("the control plane is never faulted");
    (sb, control)
}

/// A kube client of the sandbox's user (faulted) that does not retry, to see every answer.
async fn raw_client(sb: &Sandbox) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).expect("kubeconfig");
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    cfg.default_retry = false;
    kube::Client::try_from(cfg).expect("client")
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": v}})).expect("cm")
}

fn value_of(c: &ConfigMap) -> String {
    c.data
        .as_ref()
        .and_then(|d| d.get("v").cloned())
        .unwrap_or_default()
}

async fn send(client: &kube::Client, method: &str, path: &str, body: Value) -> (u16, Value, bool) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/merge-patch+json")
        .body(kube::client::Body::from(
            serde_json::to_vec(&body).expect("json"),
        ))
        .expect("request");
    let resp = client.send(req).await.expect("answered");
    let code = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .is_some_and(|v| v.as_bytes() == b"1");
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        retry_after,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_at_the_configured_rate_as_status_objects_and_faulted_writes_change_nothing() {
    let (sb, control) = faulty_with_configmap(FaultOptions {
        error_rate: 0.5,
        seed: Some(42),
        ..FaultOptions::default()
    })
    .await;
    let user = raw_client(&sb).await;

    // 200 reads: about half are faulted, with each kind of error, worded as the API server.
    let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
    for _ in 0..200 {
        let (code, body, retry_after) = send(
            &user,
            "GET",
            "/api/v1/namespaces/default/configmaps/c",
            Value::Null,
        )
        .await;
        *codes.entry(code).or_default() += 1;
        let reason = body["reason"].as_str().unwrap_or_default().to_string();
        match code {
            200 => assert_eq!(body["data"]["v"], "0"),
            500 => assert_eq!(reason, "InternalError", "{body}"),
            503 => assert_eq!(reason, "ServiceUnavailable", "{body}"),
            429 => {
                assert_eq!(reason, "TooManyRequests", "{body}");
                assert!(retry_after, "429 comes with Retry-After: 1");
                assert_eq!(body["details"]["retryAfterSeconds"], 1);
            }
            other => panic!("unexpected {other}: {body}"),
        }
        if code != 200 {
            assert_eq!(body["kind"], "Status");
            assert_eq!(body["code"], code);
        }
    }
    let faulted = 200 - codes.get(&200).copied().unwrap_or_default();
    assert!((70..=130).contains(&faulted), "{codes:?}");
    for code in [500, 503, 429] {
        assert!(
            codes.get(&code).copied().unwrap_or_default() >= 10,
            "{codes:?}"
        );
    }

    // Writes: a faulted write is not applied; conflicts are worded as the API server's.
    let mut conflicts = 0;
    let mut expected = "0".to_string();
    for i in 1..=60 {
        let v = i.to_string();
        let (code, body, _) = send(
            &user,
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            json!({"data": {"v": v}}),
        )
        .await;
        if code == 200 {
            expected = v;
        } else if code == 409 {
            conflicts += 1;
            assert_eq!(body["reason"], "Conflict");
            assert_eq!(
                body["message"],
                "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
            );
        }
        let stored = control.get("c").await.expect("get");
        assert_eq!(value_of(&stored), expected, "after a {code} answer");
    }
    assert!(conflicts > 0, "writes may be answered 409 Conflict");

    // Every fault is in the audit log and counted in the metrics.
    let audited = sb.audit().iter().filter(|e| e.injected_fault).count();
    let metrics = blocking::kubectl_ok(&sb, &["get", "--raw", "/metrics"]);
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("sandbox_injected_faults_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(audited >= faulted + conflicts, "{audited}");
    assert_eq!(counted as usize, audited, "{metrics}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_the_errors_and_its_failed_applies_change_nothing() {
    let (sb, control) = faulty_with_configmap(FaultOptions {
        error_rate: 0.5,
        seed: Some(7),
        ..FaultOptions::default()
    })
    .await;
    let sb = std::sync::Arc::new(sb);

    let mut failed = 0;
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        let sb2 = sb.clone();
        let r = tokio::task::spawn_blocking(move || {
            blocking::kubectl(&sb2, &["get", "configmap", "c", "-o", "name"])
        })
        .await
        .expect("kubectl");
        if r.ok {
            assert_eq!(r.stdout.trim(), "configmap/c");
            continue;
        }
        failed += 1;
        let kind = [
            "Error from server (InternalError): Internal error occurred: etcdserver: request timed out",
            "Error from server (ServiceUnavailable): the server is currently unable to handle the request",
            "Error from server (TooManyRequests)",
        ]
        .into_iter()
        .find(|k| r.stderr.contains(k))
        .unwrap_or_else(|| panic!("unexpected error: {}", r.stderr));
        seen.insert(kind);
    }
    // 429 comes with Retry-After, which kubectl honours: it retries those itself.
    assert!((5..=25).contains(&failed), "{failed} of 30 failed");
    assert!(seen.len() >= 2, "{seen:?}");

    let mut expected = "0".to_string();
    let mut failed_applies = 0;
    for i in 1..=16 {
        let v = format!("v{i}");
        let manifest =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  v: {v}\n");
        let sb2 = sb.clone();
        let r = tokio::task::spawn_blocking(move || {
            blocking::kubectl_stdin(&sb2, &["apply", "-f", "-"], &manifest)
        })
        .await
        .expect("kubectl");
        if r.ok {
            expected = v;
        } else {
            failed_applies += 1;
            assert!(r.stderr.contains("Error from server"), "{}", r.stderr);
        }
        let stored = control.get("c").await.expect("get");
        assert_eq!(value_of(&stored), expected, "{}", r.stderr);
    }
    assert!(failed_applies > 0, "some applies fail");
    assert!(failed_applies < 16, "some applies succeed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_added_to_every_request_but_the_control_planes() {
    let (sb, control) = faulty_with_configmap(FaultOptions {
        latency: Duration::from_millis(150),
        ..FaultOptions::default()
    })
    .await;
    let user: Api<ConfigMap> = Api::namespaced(raw_client(&sb).await, "default");
    for _ in 0..3 {
        let at = Instant::now();
        user.get("c")
            .await
            .expect("no errors without an error rate");
        assert!(
            at.elapsed() >= Duration::from_millis(150),
            "{:?}",
            at.elapsed()
        );
    }
    let at = Instant::now();
    for _ in 0..3 {
        control.get("c").await.expect("get");
    }
    assert!(
        at.elapsed() < Duration::from_millis(450),
        "the control plane is not slowed: {:?}",
        at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_keeps_seeing_changes_across_dropped_watches() {
    let sb = faulty(FaultOptions {
        watch_drop: Some(Duration::from_secs(1)),
        seed: Some(3),
        ..FaultOptions::default()
    })
    .await;
    let user: Api<ConfigMap> = Api::namespaced(sb.client().await.expect("client"), "default");
    let control: Api<ConfigMap> =
        Api::namespaced(sb.control_plane_client().await.expect("client"), "default");
    let mut stream = watcher(user, watcher::Config::default()).boxed();
    let watching = tokio::spawn(async move {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        while let Some(ev) = stream.next().await {
            let (watcher::Event::Apply(c) | watcher::Event::InitApply(c)) = (match ev {
                Ok(ev) => ev,
                // A 410 Gone: the watcher lists again.
                Err(_) => continue,
            }) else {
                continue;
            };
            seen.insert(c.metadata.name.clone().unwrap_or_default(), value_of(&c));
            if seen.len() == 8 && seen.values().all(|v| v == "2") {
                return seen;
            }
        }
        seen
    });
    // Changes over about 4 s: watches are dropped every second meanwhile.
    for round in 0..3 {
        for i in 0..8 {
            let name = format!("c{i}");
            if round == 0 {
                control
                    .create(&PostParams::default(), &cm(&name, "0"))
                    .await
                    .expect("create");
            } else {
                control
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"data": {"v": round.to_string()}})),
                    )
                    .await
                    .expect("patch");
            }
            tokio::time::sleep(Duration::from_millis(170)).await;
        }
    }
    let seen = tokio::time::timeout(Duration::from_secs(20), watching)
        .await
        .expect("the watcher sees every change")
        .expect("watcher task");
    assert_eq!(seen.len(), 8, "{seen:?}");
    let metrics = blocking::kubectl_ok(&sb, &["get", "--raw", "/metrics"]);
    let drops: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("sandbox_injected_watch_drops_total ")?
                .parse()
                .ok()
        })
        .unwrap_or_default();
    assert!(drops >= 3.0, "watches were dropped:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_an_old_version_sometimes_get_410_gone() {
    let (sb, control) = faulty_with_configmap(FaultOptions {
        watch_drop: Some(Duration::from_millis(300)),
        seed: Some(11),
        ..FaultOptions::default()
    })
    .await;
    let old = control
        .get("c")
        .await
        .expect("get")
        .metadata
        .resource_version
        .expect("rv");
    control
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "1"}})),
        )
        .await
        .expect("patch");
    let user = raw_client(&sb).await;
    let mut gone = 0;
    let mut resumed = 0;
    for _ in 0..40 {
        let path =
            format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old}");
        let req = http::Request::builder()
            .uri(path)
            .body(kube::client::Body::empty())
            .expect("request");
        let resp = client_send(&user, req).await;
        assert_eq!(resp.0, 200);
        // The stream ends by itself: at once after the ERROR event, else when dropped.
        let first: Value =
            serde_json::from_str(resp.1.lines().next().unwrap_or("null")).expect("a watch event");
        match first["type"].as_str() {
            Some("ERROR") => {
                gone += 1;
                assert_eq!(first["object"]["code"], 410);
                assert_eq!(first["object"]["reason"], "Expired");
            }
            Some("MODIFIED") => resumed += 1,
            other => panic!("unexpected {other:?}: {first}"),
        }
    }
    assert!(gone > 0 && resumed > 0, "{gone} gone, {resumed} resumed");
    let faults: Vec<_> = sb
        .audit()
        .into_iter()
        .filter(|e| e.injected_fault)
        .collect();
    assert_eq!(faults.len(), gone);
    assert!(faults.iter().all(|e| e.code == 410 && e.verb == "GET"));
}

/// Sends a request and reads the whole answer (a watch ends when the sandbox drops it).
async fn client_send(
    client: &kube::Client,
    req: http::Request<kube::client::Body>,
) -> (u16, String) {
    tokio::time::timeout(Duration::from_secs(5), async {
        let resp = client.send(req).await.expect("answered");
        let code = resp.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .expect("body")
            .to_bytes();
        (code, String::from_utf8_lossy(&bytes).into_owned())
    })
    .await
    .expect("the watch is dropped in time")
}
