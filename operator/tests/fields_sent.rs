//! The operator never sends a field that the lowest Kubernetes it supports (1.21, see
//! `pravega_operator::compat`) does not know: a field an older API server does not know fails
//! server-side apply there (with `fieldValidation=Strict`) or is silently dropped.
//!
//! Every field path of every object the operator builds, for specs that use every option, is
//! compared with `fields-sent.txt`, the reviewed list of the paths it sends, each checked against
//! the Kubernetes 1.21 API. A new path fails this test until it is checked and added; a path
//! that is no longer sent fails it too, so the list stays exact.
//!
//! Values a user passes through unchanged (affinity, tolerations, resources, volume claim specs)
//! are the user's own and are not walked.

use std::collections::BTreeSet;

use pravega_crds::PravegaCluster;
use pravega_operator::resources::desired_objects;
use serde_json::Value;

const SAMPLE: &str = include_str!("../../deploy/sample/pravegacluster.yaml");
const REVIEWED: &str = include_str!("fields-sent.txt");

/// Maps with free-form keys (the path records the map, not its keys).
const MAPS: &[&str] = &[
    "labels",
    "annotations",
    "data",
    "binaryData",
    "matchLabels",
    "nodeSelector",
];

/// Values copied from the user's spec: the user's fields, not the operator's.
const PASSED_THROUGH: &[&str] = &["affinity", "tolerations", "resources"];

/// Every option the operator turns into fields, on top of the sample.
const EVERYTHING: &str = r#"
externalAccess: {enabled: true, type: LoadBalancer, domainName: pravega.example.com}
tls:
  static: {controllerSecret: controller-tls, segmentStoreSecret: segmentstore-tls, caBundle: ca}
authentication: {enabled: true, passwordAuthSecret: password-auth}
bookkeeper:
  serviceAccountName: bookie
  affinity:
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 1
        podAffinityTerm: {topologyKey: kubernetes.io/hostname}
  tolerations: [{key: dedicated, operator: Equal, value: pravega, effect: NoSchedule}]
  nodeSelector: {disk: ssd}
  resources: {limits: {memory: 2Gi}}
pravega:
  debugLogging: true
  controllerServiceAccountName: controller
  segmentStoreServiceAccountName: segmentstore
  controllerNodeSelector: {zone: a}
  segmentStoreNodeSelector: {zone: b}
  controllerTolerations: [{key: dedicated, operator: Exists}]
  controllerExtServiceType: NodePort
  controllerSvcAnnotations: {team: storage}
  segmentStoreExtServiceType: LoadBalancer
  segmentStoreSvcAnnotations: {team: storage}
"#;

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The sample with `extra` merged into its spec.
fn cluster(extra: &Value) -> PravegaCluster {
    let mut v: Value = serde_saphyr::from_str(SAMPLE).expect("the sample parses");
    merge(&mut v["spec"], extra);
    let mut c: PravegaCluster = serde_json::from_value(v).expect("a PravegaCluster");
    c.metadata.namespace = Some("default".into());
    c.metadata.uid = Some("uid-1".into());
    c
}

fn walk(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = format!("{path}.{k}");
                // A Service's selector is a map; a workload's is a LabelSelector.
                let map = MAPS.contains(&k.as_str())
                    || (k == "selector"
                        && x.as_object()
                            .is_some_and(|s| s.values().all(Value::is_string)));
                if map || PASSED_THROUGH.contains(&k.as_str()) {
                    out.insert(p);
                } else {
                    walk(x, &p, out);
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for x in a {
                walk(x, &format!("{path}[]"), out);
            }
        }
        _ => {
            out.insert(path.to_owned());
        }
    }
}

/// Adds the paths of `objects` of `kind` to `out`, as `Kind .path`.
fn add<T: serde::Serialize>(kind: &str, objects: &[T], out: &mut BTreeSet<String>) {
    for o in objects {
        let mut paths = BTreeSet::new();
        walk(
            &serde_json::to_value(o).expect("objects serialise"),
            "",
            &mut paths,
        );
        out.extend(paths.into_iter().map(|p| format!("{kind} {p}")));
    }
}

fn paths_sent() -> BTreeSet<String> {
    let tier2s = [
        None,
        Some(
            "{filesystem: null, ecs: {configUri: 'http://ecs:9020', bucket: pravega-bucket, prefix: pravega, namespace: ecs-ns, credentials: ecs-creds}}",
        ),
        Some(
            "{filesystem: null, hdfs: {uri: 'hdfs://hdfs:8020', root: /pravega, replicationFactor: 3}}",
        ),
    ];
    let mut out = BTreeSet::new();
    for version in ["0.4.0", "0.7.0", "0.9.0", "0.13.0"] {
        for tier2 in tier2s {
            for everything in [false, true] {
                let mut extra = serde_json::json!({});
                if everything {
                    merge(
                        &mut extra,
                        &serde_saphyr::from_str(EVERYTHING).expect("options"),
                    );
                }
                if let Some(t) = tier2 {
                    let t: Value = serde_saphyr::from_str(t).expect("tier 2");
                    merge(&mut extra, &serde_json::json!({"pravega": {"tier2": t}}));
                }
                let d = desired_objects(&cluster(&extra), |_| version.to_owned())
                    .unwrap_or_else(|e| panic!("{version} {tier2:?} {everything}: {e}"));
                add("ConfigMap", &d.config_maps, &mut out);
                add("Service", &d.services, &mut out);
                add("StatefulSet", &d.stateful_sets, &mut out);
                add("Deployment", &d.deployments, &mut out);
                add("PodDisruptionBudget", &d.pod_disruption_budgets, &mut out);
            }
        }
    }
    out
}

#[test]
fn every_field_the_operator_sends_is_known_to_kubernetes_1_21() {
    let sent = paths_sent();
    let reviewed: BTreeSet<String> = REVIEWED
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let new: Vec<_> = sent.difference(&reviewed).collect();
    let gone: Vec<_> = reviewed.difference(&sent).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "the fields the operator sends changed.\n\
         New (check that Kubernetes 1.21 serves each one, e.g. in its API reference, then add it \
         to operator/tests/fields-sent.txt; a newer field must be sent only where it is served):\n  \
         {}\nNo longer sent (remove from the list):\n  {}",
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        gone.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn fields_newer_than_kubernetes_1_21_are_not_in_the_reviewed_list() {
    // Fields of the kinds the operator builds that Kubernetes added after 1.21 (from each
    // release's API changelog): none may ever be reviewed in.
    const NEWER: &[(&str, &str)] = &[
        ("persistentVolumeClaimRetentionPolicy", "1.23"),
        ("minReadySeconds", "1.22 (StatefulSet)"),
        ("ordinals", "1.26"),
        ("hostUsers", "1.25"),
        ("os", "1.23"),
        ("schedulingGates", "1.26"),
        ("resourceClaims", "1.26"),
        ("resizePolicy", "1.27"),
        ("restartPolicy", "1.28 (container)"),
        ("grpc", "1.23"),
        ("minDomains", "1.24"),
        ("matchLabelKeys", "1.25"),
        ("unhealthyPodEvictionPolicy", "1.26"),
        ("dataSourceRef", "1.22"),
        ("trafficDistribution", "1.30"),
        ("appArmorProfile", "1.30"),
    ];
    for line in REVIEWED.lines().filter(|l| !l.starts_with('#')) {
        let Some((kind, path)) = line.split_once(' ') else {
            continue;
        };
        for (field, since) in NEWER {
            let hit = path.split(['.', '[']).any(|seg| seg == *field);
            // Deployments and ReplicaSets have had minReadySeconds since apps/v1; pods'
            // restartPolicy (not a container's) is old too.
            let old_meaning = (*field == "minReadySeconds" && kind != "StatefulSet")
                || (*field == "restartPolicy" && !path.contains("containers[]."));
            assert!(
                !hit || old_meaning,
                "{line}: `{field}` is newer than Kubernetes 1.21 (added in {since})"
            );
        }
    }
}
