//! Protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`), as kubectl's
//! imperative commands send them (`kubectl create deployment|service|role|pdb|...`).
//!
//! The messages are those of the `k8s-pb` crate (prost-generated from the Kubernetes `.proto`
//! files, maintained by the kube-rs project). A body is the envelope of apimachinery
//! `pkg/runtime/serializer/protobuf/protobuf.go` (v1.33): the magic `k8s\0`, then a
//! `runtime.Unknown` whose `typeMeta` names the kind and whose `raw` is the object's message.
//! The message is converted into its `k8s-openapi` type (module `convert`), whose JSON is
//! what the API server's JSON would be, and the request then goes on as a JSON one.

mod convert;
mod messages;

use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::Value;

use convert::ToOpenApi;

/// The magic prefix of a Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// The bytes are not a well-formed envelope or message (answered with 400 BadRequest).
    #[error("{0}")]
    Malformed(String),
    /// A well-formed body the sandbox does not accept as protobuf (answered with 415).
    #[error("{0}")]
    Unsupported(String),
}

/// How one kind is decoded: its prost message, converted into its k8s-openapi type.
type Decoder = fn(&[u8]) -> Result<Value, DecodeError>;

fn typed<P, O>(raw: &[u8]) -> Result<Value, DecodeError>
where
    P: Message + Default + ToOpenApi<O>,
    O: serde::Serialize + k8s_openapi::Resource,
{
    let kind = O::KIND;
    let msg = P::decode(raw)
        .map_err(|e| DecodeError::Malformed(format!("error decoding the protobuf {kind}: {e}")))?;
    let obj = msg.convert().map_err(|e| {
        if e.is_unsupported_field() {
            DecodeError::Malformed(format!("{kind} {e}"))
        } else {
            DecodeError::Malformed(format!("error decoding the protobuf {kind}: {e}"))
        }
    })?;
    serde_json::to_value(obj)
        .map_err(|e| DecodeError::Malformed(format!("error decoding the protobuf {kind}: {e}")))
}

/// The kinds accepted as protobuf: every built-in kind the sandbox serves, except
/// CustomResourceDefinition and ValidatingWebhookConfiguration (kubectl never sends those as
/// protobuf: it has no imperative command creating them).
fn decoder(api_version: &str, kind: &str) -> Option<Decoder> {
    use k8s_openapi::api as oa;
    use k8s_pb::api as pb;
    Some(match (api_version, kind) {
        ("v1", "Namespace") => typed::<pb::core::v1::Namespace, oa::core::v1::Namespace>,
        ("v1", "Pod") => typed::<pb::core::v1::Pod, oa::core::v1::Pod>,
        ("v1", "Service") => typed::<pb::core::v1::Service, oa::core::v1::Service>,
        ("v1", "Endpoints") => typed::<pb::core::v1::Endpoints, oa::core::v1::Endpoints>,
        ("v1", "ConfigMap") => typed::<pb::core::v1::ConfigMap, oa::core::v1::ConfigMap>,
        ("v1", "Secret") => typed::<pb::core::v1::Secret, oa::core::v1::Secret>,
        ("v1", "Event") => typed::<pb::core::v1::Event, oa::core::v1::Event>,
        ("v1", "ServiceAccount") => {
            typed::<pb::core::v1::ServiceAccount, oa::core::v1::ServiceAccount>
        }
        ("v1", "PersistentVolumeClaim") => {
            typed::<pb::core::v1::PersistentVolumeClaim, oa::core::v1::PersistentVolumeClaim>
        }
        ("v1", "Node") => typed::<pb::core::v1::Node, oa::core::v1::Node>,
        ("apps/v1", "StatefulSet") => typed::<pb::apps::v1::StatefulSet, oa::apps::v1::StatefulSet>,
        ("apps/v1", "Deployment") => typed::<pb::apps::v1::Deployment, oa::apps::v1::Deployment>,
        ("apps/v1", "ReplicaSet") => typed::<pb::apps::v1::ReplicaSet, oa::apps::v1::ReplicaSet>,
        ("apps/v1", "ControllerRevision") => {
            typed::<pb::apps::v1::ControllerRevision, oa::apps::v1::ControllerRevision>
        }
        ("autoscaling/v1", "Scale") => {
            typed::<pb::autoscaling::v1::Scale, oa::autoscaling::v1::Scale>
        }
        ("policy/v1", "PodDisruptionBudget") => {
            typed::<pb::policy::v1::PodDisruptionBudget, oa::policy::v1::PodDisruptionBudget>
        }
        ("coordination.k8s.io/v1", "Lease") => {
            typed::<pb::coordination::v1::Lease, oa::coordination::v1::Lease>
        }
        ("events.k8s.io/v1", "Event") => typed::<pb::events::v1::Event, oa::events::v1::Event>,
        ("rbac.authorization.k8s.io/v1", "Role") => typed::<pb::rbac::v1::Role, oa::rbac::v1::Role>,
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            typed::<pb::rbac::v1::RoleBinding, oa::rbac::v1::RoleBinding>
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            typed::<pb::rbac::v1::ClusterRole, oa::rbac::v1::ClusterRole>
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            typed::<pb::rbac::v1::ClusterRoleBinding, oa::rbac::v1::ClusterRoleBinding>
        }
        _ => return None,
    })
}

/// Decodes a protobuf request body into the object's JSON, or explains why it cannot.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let rest = body.strip_prefix(MAGIC).ok_or_else(|| {
        DecodeError::Malformed(
            "the protobuf body does not start with the Kubernetes magic number (k8s\\0)".into(),
        )
    })?;
    let unknown = Unknown::decode(rest).map_err(|e| {
        DecodeError::Malformed(format!("error decoding the protobuf envelope: {e}"))
    })?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if let Some(enc) = unknown.content_encoding.filter(|e| !e.is_empty()) {
        return Err(DecodeError::Unsupported(format!(
            "the protobuf body's content encoding {enc:?} is not supported; send it unencoded, or send JSON"
        )));
    }
    if let Some(ct) = unknown
        .content_type
        .filter(|c| !c.is_empty() && c != "application/vnd.kubernetes.protobuf")
    {
        return Err(DecodeError::Unsupported(format!(
            "the protobuf envelope carries {ct:?}, not a protobuf message; send JSON instead"
        )));
    }
    if kind.is_empty() {
        return Err(DecodeError::Malformed(
            "the protobuf envelope does not name the object's kind".into(),
        ));
    }
    let decode = decoder(&api_version, &kind).ok_or_else(|| {
        DecodeError::Unsupported(format!(
            "the sandbox does not accept {api_version} {kind} as protobuf; send JSON instead (e.g. kubectl apply -f)"
        ))
    })?;
    decode(&unknown.raw.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::apps::v1 as apps;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta};
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC, &unknown.encode_to_vec()].concat()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    /// A Deployment as gogo-protobuf writes kubectl's: value fields present with their zero
    /// values, the zero creation time as an empty message.
    fn deployment() -> apps::Deployment {
        let labels = BTreeMap::from([("app".to_string(), "nginx".to_string())]);
        apps::Deployment {
            metadata: Some(meta::ObjectMeta {
                name: s("nginx"),
                generate_name: s(""),
                namespace: s(""),
                generation: Some(0),
                creation_timestamp: Some(meta::Time::default()),
                labels: labels.clone(),
                ..Default::default()
            }),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(0),
                min_ready_seconds: Some(0),
                paused: Some(false),
                selector: Some(meta::LabelSelector {
                    match_labels: labels.clone(),
                    match_expressions: Vec::new(),
                }),
                strategy: Some(apps::DeploymentStrategy::default()),
                template: Some(core::PodTemplateSpec {
                    metadata: Some(meta::ObjectMeta {
                        labels,
                        ..Default::default()
                    }),
                    spec: Some(core::PodSpec {
                        containers: vec![core::Container {
                            name: s("nginx"),
                            image: s("nginx"),
                            image_pull_policy: s(""),
                            stdin: Some(false),
                            ports: vec![core::ContainerPort {
                                container_port: Some(80),
                                host_port: Some(0),
                                protocol: s(""),
                                ..Default::default()
                            }],
                            resources: Some(core::ResourceRequirements {
                                limits: BTreeMap::from([(
                                    "cpu".to_string(),
                                    Quantity { string: s("500m") },
                                )]),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }],
                        termination_grace_period_seconds: Some(0),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn a_deployment_decodes_to_the_api_servers_json() {
        let body = envelope("apps/v1", "Deployment", deployment().encode_to_vec());
        let v = decode(&body).unwrap();
        assert_eq!(v["apiVersion"], "apps/v1");
        assert_eq!(v["kind"], "Deployment");
        // Zero values of omitempty value fields are unset; the zero time is absent.
        assert_eq!(
            v["metadata"],
            json!({"name": "nginx", "labels": {"app": "nginx"}})
        );
        let spec = &v["spec"];
        // Pointer fields keep an explicit zero.
        assert_eq!(spec["replicas"], 0);
        assert_eq!(spec["template"]["spec"]["terminationGracePeriodSeconds"], 0);
        assert!(spec.get("minReadySeconds").is_none(), "{spec}");
        assert!(spec.get("paused").is_none(), "{spec}");
        assert_eq!(spec["strategy"], json!({}));
        assert_eq!(
            spec["template"]["spec"]["containers"],
            json!([{
                "name": "nginx",
                "image": "nginx",
                "ports": [{"containerPort": 80}],
                "resources": {"limits": {"cpu": "500m"}},
            }])
        );
    }

    #[test]
    fn times_int_or_strings_bytes_and_raw_extensions() {
        let pod = core::Pod {
            metadata: Some(meta::ObjectMeta {
                name: s("p"),
                deletion_timestamp: Some(meta::Time {
                    seconds: Some(1_700_000_000),
                    nanos: Some(0),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = decode(&envelope("v1", "Pod", pod.encode_to_vec())).unwrap();
        assert_eq!(v["metadata"]["deletionTimestamp"], "2023-11-14T22:13:20Z");

        let svc = core::Service {
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("http"),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = decode(&envelope("v1", "Service", svc.encode_to_vec())).unwrap();
        assert_eq!(v["spec"]["ports"][0]["targetPort"], "http");

        let secret = core::Secret {
            data: BTreeMap::from([("k".to_string(), vec![0u8, 255, 1])]),
            r#type: s("Opaque"),
            ..Default::default()
        };
        let v = decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap();
        assert_eq!(v["data"]["k"], "AP8B");
        assert_eq!(v["type"], "Opaque");

        let rev = apps::ControllerRevision {
            data: Some(RawExtension {
                raw: Some(br#"{"spec":{"replicas":3}}"#.to_vec()),
            }),
            revision: Some(2),
            ..Default::default()
        };
        let v = decode(&envelope(
            "apps/v1",
            "ControllerRevision",
            rev.encode_to_vec(),
        ))
        .unwrap();
        assert_eq!(v["data"], json!({"spec": {"replicas": 3}}));
        assert_eq!(v["revision"], 2);
    }

    #[test]
    fn a_field_of_a_newer_kubernetes_is_refused_by_name() {
        let mut d = deployment();
        if let Some(spec) = d
            .spec
            .as_mut()
            .and_then(|s| s.template.as_mut())
            .and_then(|t| t.spec.as_mut())
        {
            spec.containers[0].restart_policy_rules = vec![core::ContainerRestartRule::default()];
        }
        let err = decode(&envelope("apps/v1", "Deployment", d.encode_to_vec())).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Malformed(
                "Deployment field spec.template.spec.containers[0].restartPolicyRules is not part of the Kubernetes API version the sandbox serves (1.33)".into()
            )
        );
    }

    #[test]
    fn kinds_not_accepted_as_protobuf_are_unsupported() {
        for (v, k) in [
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
            ),
            ("batch/v1", "Job"),
            ("v2", "Pod"),
        ] {
            match decode(&envelope(v, k, Vec::new())) {
                Err(DecodeError::Unsupported(m)) => assert_eq!(
                    m,
                    format!(
                        "the sandbox does not accept {v} {k} as protobuf; send JSON instead (e.g. kubectl apply -f)"
                    )
                ),
                other => panic!("{v} {k}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        let malformed = |body: &[u8]| matches!(decode(body), Err(DecodeError::Malformed(_)));
        assert!(malformed(b"{\"kind\":\"Pod\"}"));
        assert!(malformed(b"k8s\0\x0a\x05"));
        assert!(malformed(&envelope("v1", "ConfigMap", vec![0x0a, 0x7f, 1])));
        let late = core::Pod {
            metadata: Some(meta::ObjectMeta {
                creation_timestamp: Some(meta::Time {
                    seconds: Some(i64::MAX),
                    nanos: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = decode(&envelope("v1", "Pod", late.encode_to_vec())).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Malformed(m) if m.contains("metadata.creationTimestamp: time")),
            "{err:?}"
        );
        let body = envelope("v1", "Namespace", Vec::new());
        let mut unknown = Unknown::decode(&body[MAGIC.len()..]).unwrap();
        unknown.content_encoding = s("gzip");
        let body = [MAGIC, &unknown.encode_to_vec()].concat();
        assert!(matches!(decode(&body), Err(DecodeError::Unsupported(_))));
    }

    proptest! {
        #[test]
        fn random_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&[MAGIC, &bytes].concat());
            let _ = decode(&bytes);
        }

        #[test]
        fn mutated_bodies_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut body = envelope("apps/v1", "Deployment", deployment().encode_to_vec());
            for (at, b) in edits {
                let i = at.index(body.len());
                body[i] = b;
            }
            let _ = decode(&body);
            body.truncate(cut.index(body.len()));
            let _ = decode(&body);
        }
    }
}
