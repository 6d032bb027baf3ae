//! Builders of AdmissionReview bodies for the tests, and a reader of the routers' answers.
#![allow(dead_code)]

use axum::http::{Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};

/// The status, content type and body of a router's answer.
pub async fn parts<B>(response: Response<B>) -> Result<(StatusCode, String, Vec<u8>), String>
where
    B: hyper::body::Body,
    B::Error: std::fmt::Display,
{
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, content_type, body.to_vec()))
}

/// A PravegaCluster object at `version` with `status` (or none).
pub fn cluster(version: &str, status: Option<Value>) -> Value {
    let mut object = json!({
        "apiVersion": "pravega.pravega.io/v1beta1",
        "kind": "PravegaCluster",
        "metadata": {"name": "example", "namespace": "default", "uid": "0b9e3a4e-1", "generation": 2},
        "spec": {
            "version": version,
            "zookeeperUri": "zookeeper-client:2181",
            "bookkeeper": {"replicas": 3, "image": {"repository": "pravega/bookkeeper"}},
            "pravega": {"controllerReplicas": 1, "segmentStoreReplicas": 3, "image": {"repository": "pravega/pravega"}},
            "upgrade": {"timeout": "10m"}
        }
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    object
}

/// A status with `currentVersion` and the given `(type, status, reason)` conditions.
pub fn status(current: &str, target: Option<&str>, conditions: &[(&str, &str, &str)]) -> Value {
    let conditions: Vec<Value> = conditions
        .iter()
        .map(|(t, s, r)| {
            json!({"type": t, "status": s, "reason": r, "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"})
        })
        .collect();
    let mut status = json!({
        "currentVersion": current,
        "conditions": conditions,
        "replicas": 7,
        "readyReplicas": 7,
        "currentReplicas": 7,
        "members": {"ready": [], "unready": []}
    });
    if let Some(target) = target {
        status["targetVersion"] = json!(target);
    }
    status
}

/// An AdmissionReview for `operation` on a PravegaCluster.
pub fn review(
    uid: &str,
    operation: &str,
    object: Option<Value>,
    old_object: Option<Value>,
    dry_run: bool,
) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
            "resource": {"group": "pravega.pravega.io", "version": "v1beta1", "resource": "pravegaclusters"},
            "requestKind": {"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"},
            "name": "example",
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": old_object,
            "dryRun": dry_run,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
        }
    })
}

/// An UPDATE from `old` (with `old_status`) to `new_version`.
pub fn update(uid: &str, old: &str, old_status: Option<Value>, new_version: &str) -> Value {
    review(
        uid,
        "UPDATE",
        Some(cluster(new_version, old_status.clone())),
        Some(cluster(old, old_status)),
        false,
    )
}
