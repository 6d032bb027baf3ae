//! The pure parts of the plugin: what `status` and `plan` report and how they draw it.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kubectl_pravega::render::Style;
use kubectl_pravega::{plan, status};
use pravega_crds::names::VERSION_KEY;
use pravega_crds::{Component, PravegaCluster};
use serde_json::{Value, json};

const T0: i64 = 1_700_000_000;

fn at(secs: i64) -> String {
    Timestamp::from_second(T0 + secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn now(secs: i64) -> Timestamp {
    Timestamp::from_second(T0 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A member pod created at `created` and Ready `startup` seconds later (or not Ready).
fn pod(component: Component, name: &str, version: &str, created: i64, startup: Option<i64>) -> Pod {
    let mut labels: serde_json::Map<String, Value> = component
        .selector_labels("example")
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    labels.insert(VERSION_KEY.to_owned(), json!(version));
    let ready = match startup {
        Some(s) => {
            json!({"type": "Ready", "status": "True", "lastTransitionTime": at(created + s)})
        }
        None => json!({"type": "Ready", "status": "False", "lastTransitionTime": at(created)}),
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "resourceVersion": "1", "labels": labels,
                     "creationTimestamp": at(created)},
        "status": {"conditions": [ready]}
    }))
    .unwrap_or_else(|e| panic!("pod fixture: {e}"))
}

/// 3 bookies, 1 controller, 3 segment stores; the first `moved` bookies already at `to`.
fn pods(from: &str, to: &str, moved: usize) -> Vec<Pod> {
    let mut out = Vec::new();
    for i in 0..3 {
        let v = if i < moved { to } else { from };
        out.push(pod(
            Component::Bookkeeper,
            &format!("example-bookie-{i}"),
            v,
            -600,
            Some(20),
        ));
    }
    out.push(pod(
        Component::Controller,
        "example-pravega-controller-5d8f7c9b4-x2x9q",
        from,
        -600,
        Some(10),
    ));
    for i in 0..3 {
        out.push(pod(
            Component::SegmentStore,
            &format!("example-pravega-segmentstore-{i}"),
            from,
            -600,
            Some(30),
        ));
    }
    out
}

fn cluster_json(spec_version: &str, status: Value) -> Value {
    json!({
        "apiVersion": "pravega.pravega.io/v1beta1",
        "kind": "PravegaCluster",
        "metadata": {"name": "example", "namespace": "default"},
        "spec": {"version": spec_version, "bookkeeper": {"replicas": 3},
                 "pravega": {"controllerReplicas": 1, "segmentStoreReplicas": 3}},
        "status": status
    })
}

fn idle_status(version: &str) -> Value {
    json!({
        "currentVersion": version, "replicas": 7, "readyReplicas": 7,
        "conditions": [
            {"type": "Upgrading", "status": "False", "reason": "Completed"},
            {"type": "PodsReady", "status": "True"},
            {"type": "Error", "status": "False"},
            {"type": "Ready", "status": "True", "reason": "UpToDate"}
        ]
    })
}

fn upgrading_status(started: i64) -> Value {
    json!({
        "currentVersion": "0.4.0", "targetVersion": "0.5.0", "replicas": 7, "readyReplicas": 7,
        "conditions": [
            {"type": "Upgrading", "status": "True", "reason": "InProgress",
             "message": "upgrading from 0.4.0 to 0.5.0: controller", "lastTransitionTime": at(started)},
            {"type": "PodsReady", "status": "True"},
            {"type": "Error", "status": "False"}
        ],
        "upgrade": {"fromVersion": "0.4.0", "toVersion": "0.5.0", "startedAt": at(started),
                    "lastProgressAt": at(started + 50)}
    })
}

fn decode(raw: &Value) -> PravegaCluster {
    serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("cluster fixture: {e}"))
}

fn event(reason: &str, note: &str, secs: i64, warning: bool) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("example.{reason}.{secs}"), "namespace": "default"},
        "eventTime": format!("{}", Timestamp::from_second(T0 + secs).unwrap_or(Timestamp::UNIX_EPOCH).strftime("%Y-%m-%dT%H:%M:%S.000000Z")),
        "reason": reason, "note": note, "type": if warning { "Warning" } else { "Normal" },
        "reportingController": "pravega-operator", "reportingInstance": "x", "action": "Upgrade",
        "regarding": {"kind": "PravegaCluster", "name": "example", "namespace": "default"}
    }))
    .unwrap_or_else(|e| panic!("event fixture: {e}"))
}

#[test]
fn status_mid_upgrade_shows_progress_the_blocker_the_elapsed_time_and_an_estimate() {
    let raw = cluster_json("0.5.0", upgrading_status(0));
    let pods = pods("0.4.0", "0.5.0", 3);
    let events = vec![
        event(
            "UpgradeStarted",
            "syncing cluster version from 0.4.0 to 0.5.0",
            0,
            false,
        ),
        event("UpgradingPod", "deleting pod example-bookie-0", 1, false),
    ];
    let r = status::report(&raw, &decode(&raw), &pods, &events, now(60));
    assert_eq!(r.state, "Upgrading");
    assert_eq!(r.version.as_deref(), Some("0.4.0"));
    assert_eq!(r.desired_version, "0.5.0");
    let counts: Vec<(String, i32, i32, i32)> = r
        .components
        .iter()
        .map(|c| (c.title.clone(), c.updated, c.ready, c.target))
        .collect();
    assert_eq!(
        counts,
        [
            ("BookKeeper".to_owned(), 3, 3, 3),
            ("Controller".to_owned(), 0, 1, 1),
            ("Segment Store".to_owned(), 0, 3, 3)
        ]
    );
    let b = r.blocker.clone().expect("a blocker");
    assert_eq!(b.reason, "InProgress");
    assert_eq!(b.message, "upgrading from 0.4.0 to 0.5.0: controller");
    assert_eq!(r.elapsed_seconds, Some(60));
    // 3 pods in 60 s: 20 s per pod, 4 pods left.
    let e = r.estimate.clone().expect("an estimate");
    assert_eq!((e.pods_done, e.pods_left, e.remaining_seconds), (3, 4, 80));
    assert_eq!(r.events.len(), 2);
    assert_eq!(r.events[0].reason, "UpgradeStarted");
    assert_eq!(r.events[1].age_seconds, Some(59));

    let text = status::render(&r, Style::plain());
    for want in [
        "PravegaCluster default/example",
        "Version:          0.4.0",
        "Desired version:  0.5.0",
        "State:            Upgrading",
        "Elapsed:          1m00s",
        "Time left:        about 1m20s (4 pods left at 20s per pod so far)",
        "BookKeeper      [####################]   3/3       3/3     3",
        "Controller      [....................]   0/1       1/1     1",
        "Blocked by:       InProgress: upgrading from 0.4.0 to 0.5.0: controller",
        "UpgradeStarted",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    assert!(!text.contains('\x1b'), "no colour when not asked:\n{text}");
}

#[test]
fn status_prefers_the_operators_blocked_by_when_present() {
    let mut status = upgrading_status(0);
    status["upgrade"]["blockedBy"] = json!({
        "reason": "UnderReplicatedLedgers",
        "message": "bookie example-bookie-1 reports 4 under-replicated ledgers",
        "since": at(30)
    });
    let raw = cluster_json("0.5.0", status);
    let r = status::report(
        &raw,
        &decode(&raw),
        &pods("0.4.0", "0.5.0", 1),
        &[],
        now(60),
    );
    let b = r.blocker.expect("a blocker");
    assert_eq!(b.reason, "UnderReplicatedLedgers");
    assert_eq!(b.source, "status.upgrade.blockedBy");
    assert_eq!(b.since.as_deref(), Some(at(30).as_str()));
}

#[test]
fn status_of_a_converged_cluster_has_no_blocker_or_estimate_and_keeps_the_last_events() {
    let raw = cluster_json("0.4.0", idle_status("0.4.0"));
    let events: Vec<Event> = (0..8)
        .map(|i| event(&format!("Reason{i}"), "n", i, i == 7))
        .collect();
    let r = status::report(
        &raw,
        &decode(&raw),
        &pods("0.4.0", "0.4.0", 0),
        &events,
        now(100),
    );
    assert_eq!(r.state, "Ready");
    assert!(r.blocker.is_none() && r.estimate.is_none() && r.elapsed_seconds.is_none());
    assert!(r.components.iter().all(|c| c.updated == c.target));
    let reasons: Vec<&str> = r.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["Reason3", "Reason4", "Reason5", "Reason6", "Reason7"]
    );
    assert_eq!(r.events[4].type_, "Warning");
    // The JSON output carries the same data.
    let j = serde_json::to_value(&r).unwrap_or_default();
    assert_eq!(j["version"], "0.4.0");
    assert_eq!(j["components"][2]["title"], "Segment Store");
    assert_eq!(j["events"][4]["type"], "Warning");
}

#[test]
fn the_estimate_follows_the_observed_pace() {
    use std::time::Duration;
    assert_eq!(status::estimate(Duration::from_secs(30), 0, 7), None);
    let e = status::estimate(Duration::from_secs(30), 2, 7).expect("estimate");
    assert_eq!((e.remaining_seconds, e.seconds_per_pod), (75, 15.0));
    let e = status::estimate(Duration::from_secs(30), 9, 7).expect("estimate");
    assert_eq!(e.pods_left, 0);
    assert_eq!(e.remaining_seconds, 0);
}

#[test]
fn plan_lists_the_pods_in_upgrade_order_with_changes_checks_and_an_estimate() {
    let raw = cluster_json("0.4.0", idle_status("0.4.0"));
    let pods = pods("0.4.0", "0.5.0", 0);
    let p = plan::report(&decode(&raw), &pods, "0.5.0", now(0));
    assert!(p.verdict.allowed);
    assert!(p.verdict.warnings.is_empty());
    let order: Vec<&str> = p.replacements.iter().map(|s| s.pod.as_str()).collect();
    assert_eq!(
        order,
        [
            "example-bookie-0",
            "example-bookie-1",
            "example-bookie-2",
            "example-pravega-controller-5d8f7c9b4-x2x9q",
            "example-pravega-segmentstore-0",
            "example-pravega-segmentstore-1",
            "example-pravega-segmentstore-2"
        ]
    );
    let bk = &p.changes[0];
    assert_eq!(bk.image_from, "pravega/bookkeeper:0.4.0");
    assert_eq!(bk.image_to, "pravega/bookkeeper:0.5.0");
    assert!(
        bk.contract
            .contains(&"Apache BookKeeper 4.5.0 -> 4.7.3".to_owned()),
        "{bk:?}"
    );
    assert!(p.gates.iter().any(|g| g.starts_with("replacement Ready")));
    assert!(
        p.gates
            .iter()
            .any(|g| g.contains("spec.upgrade.timeout (10m)"))
    );
    // Pods took (3*20 + 10 + 3*30) / 7 s from creation to Ready.
    let e = p.estimate.clone().expect("estimate");
    assert_eq!(e.sampled_pods, 7);
    assert_eq!(e.seconds, 160);

    let text = plan::render(&p, Style::plain());
    for want in [
        "Plan for PravegaCluster default/example: 0.4.0 -> 0.5.0 (dry run: nothing is changed)",
        "Version rules:  allowed",
        "Pods replaced, in order (7):",
        "1      BookKeeper      example-bookie-0",
        "Deployment rolling update",
        "image pravega/bookkeeper:0.4.0 -> pravega/bookkeeper:0.5.0",
        "Estimated duration: about 2m40s",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    let first = |name: &str| text.find(name).unwrap_or(usize::MAX);
    assert!(first("example-bookie-2") < first("example-pravega-controller-"));
    assert!(first("example-pravega-controller-") < first("example-pravega-segmentstore-0"));
}

#[test]
fn plan_of_a_downgrade_carries_the_webhooks_message_and_nothing_else() {
    let raw = cluster_json("0.4.0", idle_status("0.4.0"));
    let p = plan::report(&decode(&raw), &pods("0.4.0", "0.4.0", 0), "0.3.0", now(0));
    assert!(!p.verdict.allowed);
    assert_eq!(p.verdict.reason.as_deref(), Some("Downgrade"));
    assert_eq!(
        p.verdict.message.as_deref(),
        Some(
            "downgrading the cluster from 0.4.0 to 0.3.0 is not supported; spec.version must be 0.4.0 or higher"
        )
    );
    assert!(p.replacements.is_empty() && p.changes.is_empty());
    let text = plan::render(&p, Style::plain());
    assert!(
        text.contains("Version rules:  denied (Downgrade)"),
        "{text}"
    );
}

#[test]
fn plan_warns_about_a_jump_over_a_minor_version_and_lists_optional_checks() {
    let mut raw = cluster_json("0.4.0", idle_status("0.4.0"));
    raw["spec"]["upgrade"] = json!({"safetyChecks": ["NoUnderReplicatedLedgers", "PravegaHealthy"],
                                    "pauseAfterPods": 1, "podStabilization": "30s"});
    let typed = decode(&raw);
    let p = plan::report(&typed, &pods("0.4.0", "0.4.0", 0), "0.6.0", now(0));
    assert!(p.verdict.allowed);
    assert_eq!(
        p.verdict.warnings,
        [
            "spec.version goes from 0.4.0 to 0.6.0, skipping 0.5: upgrades are tested one minor version at a time; consider upgrading to 0.5 first"
        ]
    );
    let checks: Vec<&str> = p
        .gates
        .iter()
        .filter(|g| g.starts_with("safety check "))
        .map(String::as_str)
        .collect();
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(
        checks[0].starts_with("safety check NoUnderReplicatedLedgers: before a bookie restart")
    );
    assert!(
        checks[1].starts_with(
            "safety check PravegaHealthy: before a Controller or Segment Store restart"
        )
    );
    assert!(
        p.gates
            .iter()
            .any(|g| g.starts_with("canary hold after 1 replaced pod"))
    );
    assert!(
        p.gates
            .iter()
            .any(|g| g.starts_with("soak time: each replacement stays Ready for 30s"))
    );
    // Unset, every check is in force.
    let all = plan::report(
        &decode(&cluster_json("0.4.0", idle_status("0.4.0"))),
        &pods("0.4.0", "0.4.0", 0),
        "0.5.0",
        now(0),
    );
    assert_eq!(
        all.gates
            .iter()
            .filter(|g| g.starts_with("safety check "))
            .count(),
        4
    );
    let text = plan::render(&p, Style::plain());
    assert!(
        text.contains("Warning: spec.version goes from 0.4.0 to 0.6.0, skipping 0.5"),
        "{text}"
    );
}

#[test]
fn contract_changes_name_what_the_new_images_read() {
    use pravega_crds::contract::contract;
    let lines = plan::bookie_contract_changes(contract("0.8.0"), contract("0.10.0"));
    assert!(lines.contains(&"Java 8 -> 11".to_owned()), "{lines:?}");
    let lines = plan::pravega_contract_changes(
        Component::SegmentStore,
        contract("0.9.0"),
        contract("0.11.0"),
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("health API /v1/health/readiness")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("exits at start unless -XX:MaxDirectMemorySize")),
        "{lines:?}"
    );
    assert!(plan::bookie_contract_changes(contract("0.5.0"), contract("0.6.0")).is_empty());
}
