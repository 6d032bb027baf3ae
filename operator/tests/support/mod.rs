//! The operator's end-to-end tests: the workspace's test kit (`pravega_sandbox::testing`: a
//! sandbox with simulated controllers and kubelets, the real `kubectl`, the real binaries) with
//! this crate's binary, and the sample's tier 2 claim.

#![allow(dead_code)]

use std::time::Duration;

pub use pravega_sandbox::testing::*;

/// The operator binary under test.
pub const OPERATOR: &str = env!("CARGO_BIN_EXE_pravega-operator");

/// The webhook binary, built in the profile of this test.
pub fn webhook_bin() -> std::path::PathBuf {
    workspace_binary("pravega-webhook", "pravega-webhook")
}

/// The claim the sample's filesystem tier 2 mounts (ReadWriteMany); users create it before the
/// cluster.
pub const TIER2_CLAIM: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: pravega-tier2
spec:
  accessModes: [ReadWriteMany]
  resources:
    requests:
      storage: 50Gi
"#;

/// The sample cluster (`deploy/sample/pravegacluster.yaml`) at `version`.
pub fn sample_at(version: &str) -> String {
    std::fs::read_to_string(workspace_file("deploy/sample/pravegacluster.yaml"))
        .expect("sample")
        .replace("version: 0.4.0", &format!("version: {version}"))
}

/// Asserts that every kind of request the operator made to `sandbox` (reads and watches too) is
/// granted by the RBAC rules it is deployed with (`pravega_operator::rbac::RBAC_RULES`, which the
/// manifests in `deploy/` are checked against). The sandbox authorises every request, so without
/// this a permission missing from the manifests would show only on a real cluster, as
/// `Forbidden`. Returns how many distinct accesses were checked.
pub fn assert_operator_accesses_are_granted(sandbox: &pravega_sandbox::Sandbox) -> usize {
    use pravega_operator::rbac::RBAC_RULES;
    let used: Vec<_> = sandbox
        .accesses()
        .into_iter()
        .filter(|a| a.client == "pravega-operator")
        .collect();
    assert!(!used.is_empty(), "the operator made no request");
    let denied: Vec<String> = used
        .iter()
        .filter(|a| {
            !RBAC_RULES.iter().any(|r| {
                r.api_group == a.group && r.resource == a.resource && r.verbs.contains(&&*a.verb)
            })
        })
        .map(|a| format!("{} {}/{}", a.verb, a.group, a.resource))
        .collect();
    assert!(
        denied.is_empty(),
        "the operator made requests its RBAC rules do not grant (Forbidden on a real cluster): \
         {denied:?}"
    );
    used.len()
}

/// An API server having a bad day: 10% of the requests answered 5xx, 429 or 409, 20 ms more per
/// request, every watch dropped after 3 s; `seed` makes the faults repeatable. With the
/// simulation and the CRD.
pub async fn env_with_faults(seed: u64) -> Env {
    use pravega_sandbox::{FaultOptions, SandboxOptions};
    Env::start_with(SandboxOptions {
        faults: FaultOptions {
            error_rate: 0.1,
            latency: Duration::from_millis(20),
            watch_drop: Some(Duration::from_secs(3)),
            seed: Some(seed),
        },
        ..SandboxOptions::default()
    })
    .await
}

/// Waits until `kubectl get PravegaCluster example` shows VERSION `version`, DESIRED VERSION
/// `desired` (empty: none) and all 7 members Ready.
pub async fn wait_settled(env: &Env, version: &str, desired: &str, timeout: Duration) {
    let what = format!("example at {version} (desired '{desired}'), 7/7 ready");
    env.wait_row("example", &what, timeout, |row| {
        col(row, "VERSION") == version
            && col(row, "DESIRED VERSION") == desired
            && col(row, "READY MEMBERS") == "7"
    })
    .await;
}

/// Waits (60 s at most) until `kubectl get PravegaCluster NAME` shows VERSION `version`, and
/// `desired` and `ready` members.
pub async fn wait_members(env: &Env, name: &str, version: &str, desired: &str, ready: &str) {
    let want = [
        ("VERSION", version),
        ("DESIRED MEMBERS", desired),
        ("READY MEMBERS", ready),
    ];
    env.wait_cluster(name, &want).await;
}

/// Asserts that the 7 members of cluster `example` run images of `version`.
pub async fn assert_members_run(env: &Env, version: &str) {
    let images = env.member_images().await;
    let images: Vec<&str> = images.split_whitespace().collect();
    assert_eq!(images.len(), 7, "{images:?}");
    let tag = format!(":{version}");
    assert!(
        images.iter().all(|i| i.ends_with(&tag)),
        "every member runs {version}: {images:?}"
    );
}

/// The jsonpath of the Error condition as `status reason message`.
const ERROR_CONDITION: &str =
    r#"{range .status.conditions[?(@.type=="Error")]}{.status} {.reason} {.message}{end}"#;

/// `status reason message` of the Error condition of PravegaCluster `cluster` (empty if none).
pub async fn error_condition(env: &Env, cluster: &str) -> String {
    env.jsonpath(&["pravegacluster", cluster], ERROR_CONDITION)
        .await
}

/// Waits until the Error condition of PravegaCluster `cluster` starts with `want` (e.g.
/// `True UpgradeFailed`, `False`); returns it as `status reason message`. Tolerates a faulty
/// API server (a failed kubectl is not yet).
pub async fn wait_error(env: &Env, cluster: &str, want: &str, timeout: Duration) -> String {
    env.wait_jsonpath(
        &format!("Error condition {want}"),
        timeout,
        &["pravegacluster", cluster],
        ERROR_CONDITION,
        |c| c.starts_with(want),
    )
    .await
}

/// The Events (events.k8s.io/v1) of namespace `default`.
async fn events(env: &Env) -> Vec<k8s_openapi::api::events::v1::Event> {
    kube::Api::namespaced(env.client.clone(), "default")
        .list(&kube::api::ListParams::default())
        .await
        .expect("list Events")
        .items
}

/// The notes of the Events of `reason` in namespace `default`.
pub async fn event_notes(env: &Env, reason: &str) -> Vec<String> {
    events(env)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

/// The reasons of the Warning Events in namespace `default`.
pub async fn warning_reasons(env: &Env) -> Vec<String> {
    events(env)
        .await
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.reason)
        .collect()
}
