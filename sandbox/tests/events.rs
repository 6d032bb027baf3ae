//! Events as `kubectl get events` shows them from a real API server: events written through
//! `events.k8s.io/v1` read through core `v1` with the fields a real server serializes
//! (`firstTimestamp: null`, `lastTimestamp: null`, `source: {}`, ...), so `--sort-by` works,
//! LAST SEEN and COUNT come from `eventTime` / `series`, and field selectors filter them.

use pravega_sandbox::testing::blocking::*;
use serde_json::Value;

const NS: &str = "ev";

/// An `events.k8s.io/v1` Event about PravegaCluster `example`, `ago` seconds old, optionally a
/// series last seen `series_ago` seconds ago.
fn v1_event(name: &str, type_: &str, reason: &str, ago: i64, series: Option<(i32, i64)>) -> String {
    let at = |secs: i64| {
        jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(secs))
            .expect("a time")
            .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
            .to_string()
    };
    let series = series
        .map(|(count, last)| {
            format!(
                "series:\n  count: {count}\n  lastObservedTime: \"{}\"\n",
                at(last)
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: {name}\n  namespace: {NS}\neventTime: \"{}\"\nreportingController: pravega-operator\nreportingInstance: pravega-operator-0\naction: Upgrade\nreason: {reason}\ntype: {type_}\nnote: {reason} happened\nregarding:\n  apiVersion: pravega.pravega.io/v1beta1\n  kind: PravegaCluster\n  namespace: {NS}\n  name: example\n{series}",
        at(ago)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_written_through_events_k8s_io_read_as_a_real_server_shows_them() {
    let sb = sandbox().await;
    kubectl_ok(&sb, &["create", "namespace", NS]);
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &v1_event("example.a", "Normal", "UpgradeStarted", 7200, None),
    );
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &v1_event(
            "example.b",
            "Warning",
            "UpgradeFailed",
            3600,
            Some((5, 1200)),
        ),
    );
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &v1_event("other.c", "Warning", "Unhealthy", 60, None)
            .replace("name: example\n", "name: other\n"),
    );

    // Through core v1: the fields a real server serializes for an event written through
    // events.k8s.io/v1 (Go zero values included), and nothing invented.
    let list: Value =
        serde_json::from_str(&kubectl_get(&sb, NS, &["events", "-o", "json"])).expect("json");
    let a = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|e| e["metadata"]["name"] == "example.a"))
        .expect("example.a");
    let o = a.as_object().expect("object");
    assert_eq!(o.get("firstTimestamp"), Some(&Value::Null), "{a}");
    assert_eq!(o.get("lastTimestamp"), Some(&Value::Null), "{a}");
    assert_eq!(o.get("source"), Some(&serde_json::json!({})), "{a}");
    assert_eq!(a["reportingComponent"], "pravega-operator");
    assert_eq!(a["reportingInstance"], "pravega-operator-0");
    assert_eq!(a["involvedObject"]["name"], "example");
    assert_eq!(a["message"], "UpgradeStarted happened");
    assert!(o.get("count").is_none(), "{a}");
    // And back through events.k8s.io/v1.
    let v1: Value = serde_json::from_str(&kubectl_get(
        &sb,
        NS,
        &["events.v1.events.k8s.io", "example.a", "-o", "json"],
    ))
    .expect("json");
    let o = v1.as_object().expect("object");
    assert_eq!(
        o.get("deprecatedSource"),
        Some(&serde_json::json!({})),
        "{v1}"
    );
    assert_eq!(o.get("deprecatedLastTimestamp"), Some(&Value::Null), "{v1}");
    assert_eq!(v1["note"], "UpgradeStarted happened");

    // `--sort-by=.lastTimestamp` works (kubectl needs the field on at least one item) and
    // keeps every event; so does `.metadata.creationTimestamp`.
    for key in [
        ".lastTimestamp",
        ".metadata.creationTimestamp",
        ".firstTimestamp",
    ] {
        let sorted = kubectl(
            &sb,
            &["-n", NS, "get", "events", &format!("--sort-by={key}")],
        );
        assert!(sorted.ok, "--sort-by={key}: {}", sorted.stderr);
        let rows = table(&sorted.stdout);
        assert_eq!(
            rows[0],
            ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        );
        assert_eq!(rows.len(), 4, "{}", sorted.stdout);
    }

    // LAST SEEN: eventTime, or the series' lastObservedTime.
    let out = kubectl_get(&sb, NS, &["events"]);
    let rows = table(&out);
    let row = |reason: &str| {
        rows.iter()
            .find(|r| r.get(2).map(String::as_str) == Some(reason))
            .cloned()
            .unwrap_or_else(|| panic!("{reason} in\n{out}"))
    };
    assert_eq!(
        row("UpgradeStarted")[..4],
        ["120m", "Normal", "UpgradeStarted", "pravegacluster/example"]
    );
    assert_eq!(
        row("UpgradeFailed")[..4],
        ["20m", "Warning", "UpgradeFailed", "pravegacluster/example"]
    );

    // -o wide: SUBOBJECT, SOURCE (reporting controller, instance), FIRST SEEN, COUNT (the
    // series' count, 1 for a singleton), NAME.
    let wide = squash(&kubectl_get(&sb, NS, &["events", "-o", "wide"]));
    let header = wide.lines().next().unwrap_or_default();
    assert_eq!(
        header,
        "LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME"
    );
    assert!(
        wide.contains("20m Warning UpgradeFailed pravegacluster/example pravega-operator, pravega-operator-0 UpgradeFailed happened 60m 5 example.b"),
        "{wide}"
    );
    assert!(
        wide.contains("120m Normal UpgradeStarted pravegacluster/example pravega-operator, pravega-operator-0 UpgradeStarted happened 120m 1 example.a"),
        "{wide}"
    );

    // Field selectors, combined, as `kubectl describe` and users write them.
    let rows = table(&kubectl_get(
        &sb,
        NS,
        &[
            "events",
            "--field-selector",
            "involvedObject.name=example,type=Warning",
        ],
    ));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][2], "UpgradeFailed");
    let rows = table(&kubectl_get(
        &sb,
        NS,
        &[
            "events",
            "--field-selector",
            "source=pravega-operator,reason!=Unhealthy",
        ],
    ));
    assert_eq!(rows.len(), 3, "{rows:?}");
    // events.k8s.io/v1 has its own field names.
    let names = kubectl_get(
        &sb,
        NS,
        &[
            "events.v1.events.k8s.io",
            "--field-selector",
            "regarding.name=other,reportingController=pravega-operator",
            "-o",
            "name",
        ],
    );
    assert_eq!(names.trim(), "event.events.k8s.io/other.c");
    let wrong = kubectl(
        &sb,
        &[
            "-n",
            NS,
            "get",
            "events",
            "--field-selector",
            "regarding.name=other",
        ],
    );
    assert!(
        wrong
            .stderr
            .contains("field label not supported: regarding.name"),
        "{}",
        wrong.stderr
    );
}
