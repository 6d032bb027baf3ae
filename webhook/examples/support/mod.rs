//! The AdmissionReviews the examples send.

use serde_json::json;

/// A realistic UPDATE review (an allowed upgrade), about the size kubectl apply produces.
pub fn review_body() -> Vec<u8> {
    let object = |version: &str| {
        json!({
            "apiVersion": "pravega.pravega.io/v1beta1",
            "kind": "PravegaCluster",
            "metadata": {
                "name": "example", "namespace": "default", "uid": "5f0c7a0e-8f6e-4c4e-9a43-8d3c2c8b1f00",
                "generation": 3, "resourceVersion": "12345", "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                    format!("{{\"apiVersion\":\"pravega.pravega.io/v1beta1\",\"kind\":\"PravegaCluster\",\"metadata\":{{\"name\":\"example\",\"namespace\":\"default\"}},\"spec\":{{\"version\":\"{version}\",\"bookkeeper\":{{\"replicas\":3}},\"pravega\":{{\"controllerReplicas\":1,\"segmentStoreReplicas\":3}}}}}}\n")},
                "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "pravega.pravega.io/v1beta1",
                    "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                        "f:spec": {".": {}, "f:bookkeeper": {".": {}, "f:replicas": {}}, "f:pravega": {".": {}, "f:controllerReplicas": {}, "f:segmentStoreReplicas": {}}, "f:version": {}}}}]
            },
            "spec": {
                "version": version, "zookeeperUri": "zookeeper-client:2181",
                "bookkeeper": {"replicas": 3, "image": {"repository": "pravega/bookkeeper"}, "options": {"journalDirectories": "/bk/journal"}},
                "pravega": {"controllerReplicas": 1, "segmentStoreReplicas": 3, "image": {"repository": "pravega/pravega"},
                    "options": {"pravegaservice.containerCount": "4", "bookkeeper.bkEnsembleSize": "3"}},
                "upgrade": {"timeout": "10m", "paused": false, "autoRollback": false}
            },
            "status": {
                "currentVersion": "0.4.0", "replicas": 7, "readyReplicas": 7, "currentReplicas": 7,
                "conditions": [
                    {"type": "Upgrading", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "PodsReady", "status": "True", "reason": "AllPodsReady", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "Error", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}
                ],
                "members": {"ready": ["example-bookie-0", "example-bookie-1", "example-bookie-2",
                    "example-pravega-controller-64ff87fc49-kqp9k", "example-pravega-segmentstore-0",
                    "example-pravega-segmentstore-1", "example-pravega-segmentstore-2"]}
            }
        })
    };
    review(json!({
        "requestKind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
        "requestResource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
        "operation": "UPDATE",
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
        "object": object("0.5.0"), "oldObject": object("0.4.0"), "dryRun": false,
        "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
    }))
}

/// A small CREATE review (what `kubectl create` of a short manifest sends).
pub fn small_body() -> Vec<u8> {
    review(json!({
        "operation": "CREATE",
        "userInfo": {"username": "kubernetes-admin"},
        "object": {"apiVersion": "pravega.pravega.io/v1beta1", "kind": "PravegaCluster",
            "metadata": {"name": "example", "namespace": "default"},
            "spec": {"version": "0.4.0", "bookkeeper": {"replicas": 3}, "pravega": {"segmentStoreReplicas": 3}}},
        "dryRun": false
    }))
}

/// An AdmissionReview about PravegaCluster `default/example`: the fields every request has, and
/// `fields`.
fn review(fields: serde_json::Value) -> Vec<u8> {
    let mut request = json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
        "resource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
        "name": "example",
        "namespace": "default",
    });
    if let (Some(request), serde_json::Value::Object(fields)) = (request.as_object_mut(), fields) {
        request.extend(fields);
    }
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }))
    .unwrap_or_default()
}
