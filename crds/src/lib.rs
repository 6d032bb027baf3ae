//! `pravega-crds`: the `PravegaCluster` API (`pravega.pravega.io/v1beta1`), its condition and
//! member helpers, workload naming, and the version rules shared by the operator and the webhook.

pub mod conditions;
pub mod duration;
pub mod facts;
pub mod names;
pub mod types;
pub mod version;

pub use conditions::{ClusterCondition, ConditionStatus, ConditionType, reasons};
pub use facts::{SpecFacts, StatusFacts};
pub use names::Component;
pub use types::*;
pub use version::{
    Decision, DenyReason, VersionError, check_spec, check_spec_facts, parse_version,
    validate_create, validate_create_facts, validate_update, validate_update_facts,
    validate_version_change,
};

use kube::CustomResourceExt;

/// Errors of this crate's helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CRD could not be rendered as YAML.
    #[error("rendering the PravegaCluster CRD as YAML: {0}")]
    Yaml(String),
}

/// The generated `CustomResourceDefinition` as YAML, exactly as checked in at
/// `crds/pravegacluster.yaml` (regenerate with `cargo run -p pravega-operator -- crd`).
pub fn crd_yaml() -> Result<String, Error> {
    let crd = PravegaCluster::crd();
    let body = serde_saphyr::to_string(&crd).map_err(|e| Error::Yaml(e.to_string()))?;
    Ok(format!(
        "# Generated from the Rust types in crds/src; do not edit.\n# Regenerate: cargo run -p pravega-operator -- crd > crds/pravegacluster.yaml\n{body}"
    ))
}
