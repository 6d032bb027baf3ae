//! The operator's end-to-end tests: the workspace's test kit (`pravega_sandbox::testing`: a
//! sandbox with simulated controllers and kubelets, the real `kubectl`, the real binaries) with
//! this crate's binary, and the sample's tier 2 claim.

#![allow(dead_code)]

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
