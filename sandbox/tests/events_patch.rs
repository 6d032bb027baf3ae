//! Patching an `events.k8s.io/v1` Event (stored as a core Event) answers instead of hanging the
//! API server.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use pravega_sandbox::{Sandbox, SandboxOptions};

#[tokio::test]
async fn patching_an_events_k8s_io_event_works() {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let client = sandbox.client().await.expect("client");
    let events: Api<Event> = Api::namespaced(client, "default");
    let event: Event = serde_json::from_value(serde_json::json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": { "name": "example.1" },
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "pravega-operator",
        "reportingInstance": "pravega-operator-0",
        "action": "Upgrade",
        "reason": "UpgradeStarted",
        "type": "Normal",
        "note": "first",
        "regarding": { "kind": "PravegaCluster", "namespace": "default", "name": "example" }
    }))
    .expect("event");
    events
        .create(&PostParams::default(), &event)
        .await
        .expect("create");
    let patched = tokio::time::timeout(
        Duration::from_secs(5),
        events.patch(
            "example.1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "note": "second" })),
        ),
    )
    .await
    .expect("the patch answers within 5s")
    .expect("the patch succeeds");
    assert_eq!(patched.note.as_deref(), Some("second"));
    // The server still answers afterwards.
    let got = tokio::time::timeout(Duration::from_secs(5), events.get("example.1"))
        .await
        .expect("the server still answers")
        .expect("get");
    assert_eq!(got.note.as_deref(), Some("second"));
    sandbox.shutdown().await;
}
