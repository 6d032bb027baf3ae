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
