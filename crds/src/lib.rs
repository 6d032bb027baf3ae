//! `pravega-crds`: the `PravegaCluster` API (`pravega.pravega.io/v1beta1`), its condition and
//! member helpers, workload naming, and the version rules shared by the operator and the webhook.

pub mod conditions;
pub mod contract;
pub mod duration;
pub mod facts;
pub mod jvm;
pub mod names;
pub mod quantity;
pub mod spec_rules;
pub mod types;
pub mod version;

pub use conditions::{
    ClusterCondition, ConditionStatus, ConditionType, event_actions, event_reasons, reasons,
};
pub use facts::StatusFacts;
pub use names::Component;
pub use spec_rules::{check_change, check_spec};
pub use types::*;
pub use version::{
    Decision, DenyReason, VersionError, parse_version, validate_create, validate_update,
    validate_version_change, validate_version_change_paused, version_jump_warnings,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The version that upstream's operator 0.4.x served, and that this CRD serves too with the same
/// schema (no conversion), so that manifests written for it apply unchanged.
pub const LEGACY_VERSION: &str = "v1alpha1";

/// The `CustomResourceDefinition`: `v1beta1` (served and stored) and `v1alpha1` (served, same
/// schema, so no conversion is needed).
pub fn crd() -> CustomResourceDefinition {
    let mut crd = PravegaCluster::crd();
    if let Some(current) = crd.spec.versions.first().cloned() {
        let mut legacy = current;
        legacy.name = LEGACY_VERSION.to_owned();
        legacy.served = true;
        legacy.storage = false;
        // The same schema without descriptions (`kubectl explain` reads v1beta1's), to keep the
        // CRD small enough for `kubectl apply`'s last-applied annotation (256 KiB).
        if let Some(schema) = legacy.schema.as_mut()
            && let Some(props) = schema.open_api_v3_schema.take()
            && let Ok(mut value) = serde_json::to_value(&props)
        {
            strip_descriptions(&mut value);
            schema.open_api_v3_schema = serde_json::from_value(value).ok().or(Some(props));
        }
        crd.spec.versions.push(legacy);
    }
    crd
}

/// Errors of this crate's helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CRD could not be rendered as YAML.
    #[error("rendering the PravegaCluster CRD as YAML: {0}")]
    Yaml(String),
}

/// Removes every `description` of a JSON schema (not properties named `description`).
fn strip_descriptions(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            if map
                .get("description")
                .is_some_and(serde_json::Value::is_string)
            {
                map.remove("description");
            }
            for (key, value) in map.iter_mut() {
                if key == "properties" {
                    if let serde_json::Value::Object(props) = value {
                        props.values_mut().for_each(strip_descriptions);
                    }
                } else {
                    strip_descriptions(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

/// The generated `CustomResourceDefinition` as YAML, exactly as checked in at
/// `crds/pravegacluster.yaml` (regenerate with `cargo run -p pravega-operator -- crd`).
pub fn crd_yaml() -> Result<String, Error> {
    let crd = crd();
    let body = serde_saphyr::to_string(&crd).map_err(|e| Error::Yaml(e.to_string()))?;
    Ok(format!(
        "# Generated from the Rust types in crds/src; do not edit.\n# Regenerate: cargo run -p pravega-operator -- crd > crds/pravegacluster.yaml\n{body}"
    ))
}
