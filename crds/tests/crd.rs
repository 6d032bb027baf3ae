//! The checked-in CRD matches the Rust types, and is a CRD the API server accepts.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, JSONSchemaProps,
};
use pravega_crds::{PravegaCluster, crd_yaml};

const CHECKED_IN: &str = include_str!("../pravegacluster.yaml");

fn checked_in() -> CustomResourceDefinition {
    serde_saphyr::from_str(CHECKED_IN)
        .unwrap_or_else(|e| panic!("crds/pravegacluster.yaml does not parse as a CRD: {e}"))
}

/// The storage version (v1beta1) of the checked-in CRD.
fn storage_version() -> CustomResourceDefinitionVersion {
    checked_in().spec.versions.swap_remove(0)
}

#[test]
fn checked_in_crd_is_current() {
    let generated = crd_yaml().unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("UPDATE_CRD").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/pravegacluster.yaml");
        std::fs::write(path, &generated).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        return;
    }
    assert!(
        generated == CHECKED_IN,
        "crds/pravegacluster.yaml is stale: regenerate it with\n  cargo run -p pravega-operator -- crd > crds/pravegacluster.yaml\n(or UPDATE_CRD=1 cargo test -p pravega-crds --test crd) and commit the result"
    );
}

#[test]
fn crd_identity_and_status_subresource() {
    let crd = checked_in();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("pravegaclusters.pravega.pravega.io")
    );
    assert_eq!(crd.spec.group, "pravega.pravega.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "PravegaCluster");
    assert_eq!(crd.spec.names.plural, "pravegaclusters");
    assert_eq!(crd.spec.names.short_names, Some(vec!["pk".to_owned()]));
    assert_eq!(crd.spec.versions.len(), 2);
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1beta1");
    assert!(v.served && v.storage);
    // Upstream operator 0.4.x's version, served with the same schema (no conversion needed).
    let legacy = &crd.spec.versions[1];
    assert_eq!(legacy.name, "v1alpha1");
    assert!(legacy.served && !legacy.storage);
    assert_eq!(legacy.subresources, v.subresources);
    assert_eq!(
        legacy.additional_printer_columns,
        v.additional_printer_columns
    );
    assert_eq!(crd.spec.conversion, None);
    let sub = v
        .subresources
        .as_ref()
        .unwrap_or_else(|| panic!("no subresources"));
    assert!(sub.status.is_some(), "status subresource missing");
}

#[test]
fn printer_columns_are_the_guides() {
    let cols = storage_version()
        .additional_printer_columns
        .unwrap_or_default();
    // The default view (priority 0) is the guide's; `-o wide` adds Ready and the spec's version.
    let wide: Vec<(String, String)> = cols
        .iter()
        .filter(|c| c.priority.unwrap_or(0) > 0)
        .map(|c| (c.name.to_uppercase(), c.json_path.clone()))
        .collect();
    assert_eq!(
        wide,
        [
            (
                "READY".to_owned(),
                r#".status.conditions[?(@.type=="Ready")].status"#.to_owned()
            ),
            ("SPEC VERSION".to_owned(), ".spec.version".to_owned())
        ]
    );
    let got: Vec<(String, String, String)> = cols
        .into_iter()
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .map(|c| (c.name.to_uppercase(), c.type_, c.json_path))
        .collect();
    let want = [
        ("VERSION", "string", ".status.currentVersion"),
        ("DESIRED VERSION", "string", ".status.targetVersion"),
        ("DESIRED MEMBERS", "integer", ".status.replicas"),
        ("READY MEMBERS", "integer", ".status.readyReplicas"),
        ("AGE", "date", ".metadata.creationTimestamp"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
}

fn prop<'a>(s: &'a JSONSchemaProps, path: &[&str]) -> &'a JSONSchemaProps {
    let mut cur = s;
    for p in path {
        cur = cur
            .properties
            .as_ref()
            .and_then(|m| m.get(*p))
            .unwrap_or_else(|| panic!("schema has no property {p} (path {path:?})"));
    }
    cur
}

/// A structural schema: every node has a type (or preserves unknown fields / is int-or-string),
/// there are no `$ref`s, and defaults and validation sit where the API server applies them.
fn assert_structural(s: &JSONSchemaProps, at: &str) {
    assert!(s.ref_path.is_none(), "$ref at {at}");
    let typed = s.type_.is_some()
        || s.x_kubernetes_int_or_string == Some(true)
        || s.x_kubernetes_preserve_unknown_fields == Some(true);
    assert!(typed, "no type at {at}");
    for (name, p) in s.properties.iter().flatten() {
        assert_structural(p, &format!("{at}.{name}"));
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) = &s.items {
        assert_structural(items, &format!("{at}[]"));
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(add)) = &s.additional_properties {
        assert_structural(add, &format!("{at}{{}}"));
    }
    for (kind, list) in [
        ("allOf", &s.all_of),
        ("anyOf", &s.any_of),
        ("oneOf", &s.one_of),
    ] {
        for sub in list.iter().flatten() {
            // Inside logical junctors a structural schema may not set types or defaults.
            assert!(
                sub.type_.is_none() && sub.default.is_none(),
                "{kind} with type/default at {at}"
            );
        }
    }
}

#[test]
fn schema_is_structural_with_defaults_and_validation() {
    let version = storage_version();
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .unwrap_or_else(|| panic!("no openAPIV3Schema"));
    assert_structural(schema, "");

    let spec = prop(schema, &["spec"]);
    assert_eq!(spec.required, Some(vec!["version".to_owned()]));
    assert_eq!(prop(spec, &["version"]).min_length, Some(1));
    assert_eq!(
        prop(spec, &["zookeeperUri"])
            .default
            .as_ref()
            .map(|d| d.0.clone()),
        Some(serde_json::json!("zookeeper-client:2181"))
    );
    let bk_replicas = prop(spec, &["bookkeeper", "replicas"]);
    assert_eq!(bk_replicas.minimum, Some(1.0));
    assert_eq!(
        bk_replicas.default.as_ref().map(|d| d.0.clone()),
        Some(serde_json::json!(3))
    );
    assert_eq!(
        prop(spec, &["bookkeeper", "image", "repository"])
            .type_
            .as_deref(),
        Some("string")
    );
    assert_eq!(
        prop(spec, &["pravega", "controllerReplicas"]).minimum,
        Some(1.0)
    );
    assert_eq!(
        prop(spec, &["pravega", "segmentStoreReplicas"]).minimum,
        Some(1.0)
    );
    assert_eq!(
        prop(spec, &["upgrade", "timeout"])
            .default
            .as_ref()
            .map(|d| d.0.clone()),
        Some(serde_json::json!("10m"))
    );
    assert!(prop(spec, &["upgrade", "timeout"]).pattern.is_some());
    // Field docs become descriptions, so `kubectl explain` is useful.
    assert!(
        prop(spec, &["version"])
            .description
            .as_deref()
            .unwrap_or_default()
            .contains("semantic version")
    );
    let conditions = prop(schema, &["status", "conditions"]);
    assert_eq!(conditions.type_.as_deref(), Some("array"));
}

#[test]
fn sample_cluster_deserialises() {
    let sample: PravegaCluster =
        serde_saphyr::from_str(include_str!("../../deploy/sample/pravegacluster.yaml"))
            .unwrap_or_else(|e| panic!("deploy/sample/pravegacluster.yaml: {e}"));
    assert_eq!(sample.metadata.name.as_deref(), Some("example"));
    assert_eq!(sample.spec.version, "0.4.0");
    let members = sample.spec.bookkeeper.replicas
        + sample.spec.pravega.controller_replicas
        + sample.spec.pravega.segment_store_replicas;
    assert_eq!(
        (
            sample.spec.bookkeeper.replicas,
            sample.spec.pravega.controller_replicas,
            sample.spec.pravega.segment_store_replicas
        ),
        (3, 1, 3)
    );
    assert_eq!(members, 7);
    assert!(pravega_crds::validate_create(&sample.spec).is_allowed());
}
