use super::decode::{read_in_one_pass, read_piece_by_piece};
use super::*;
use pravega_crds::version::precedence;
use proptest::prelude::*;
use serde_json::{Value, json};

/// An AdmissionReview (`apiVersion` `api_version`) of `request`, about a PravegaCluster.
fn cluster_review(api_version: &str, mut request: Value) -> Value {
    request["kind"] = json!({"group": CLUSTER_GROUP, "version": "v1beta1", "kind": CLUSTER_KIND});
    json!({"apiVersion": api_version, "kind": REVIEW_KIND, "request": request})
}

fn update_body(uid: &str, current: &str, desired: &str) -> Vec<u8> {
    let object = |version: &str| {
        json!({
            "apiVersion": "pravega.pravega.io/v1beta1",
            "kind": "PravegaCluster",
            "metadata": {"name": "example", "namespace": "default"},
            "spec": {"version": version},
            "status": {"currentVersion": current}
        })
    };
    serde_json::to_vec(&cluster_review(
        REVIEW_API_VERSION,
        json!({
            "uid": uid,
            "operation": "UPDATE",
            "namespace": "default",
            "name": "example",
            "object": object(desired),
            "oldObject": object(current),
        }),
    ))
    .unwrap_or_default()
}

#[test]
fn the_request_is_described_for_logs_and_metrics() {
    let reviewed = review(&update_body("u-1", "0.5.0", "0.4.0"));
    assert_eq!(reviewed.info.uid.as_deref(), Some("u-1"));
    assert_eq!(reviewed.info.operation, Some(Operation::Update));
    assert_eq!(reviewed.info.namespace.as_deref(), Some("default"));
    assert_eq!(reviewed.info.name.as_deref(), Some("example"));
    assert_eq!(reviewed.verdict.decision(), "denied");
    assert_eq!(reviewed.verdict.reason(), "Downgrade");
}

#[test]
fn the_create_name_comes_from_the_object_when_the_request_has_none() {
    let body = cluster_review(
        REVIEW_API_VERSION,
        json!({
            "uid": "c-1",
            "operation": "CREATE",
            "object": {"metadata": {"name": "from-object"}, "spec": {"version": "0.4.0"}}
        }),
    );
    let reviewed = review(body.to_string().as_bytes());
    assert_eq!(reviewed.info.name.as_deref(), Some("from-object"));
    assert!(reviewed.verdict.is_allowed());
}

#[test]
fn answers_render_as_the_api_server_expects() {
    let denied = review(&update_body("u-2", "0.5.0", "0.4.0")).to_http();
    assert_eq!(denied.status, 200);
    let v: Value = serde_json::from_slice(&denied.body).unwrap_or_default();
    assert_eq!(v["response"]["uid"], "u-2");
    assert_eq!(v["response"]["allowed"], false);
    assert_eq!(v["response"]["status"]["code"], 403);
    assert_eq!(v["response"]["status"]["reason"], "Forbidden");
    assert!(v["response"].get("warnings").is_none());

    let plain = review(b"{").to_http();
    assert_eq!(plain.status, 400);
    assert!(plain.content_type.starts_with("text/plain"));
}

#[test]
fn escaped_strings_are_read_in_one_pass() {
    let escaped = String::from_utf8(update_body("u-3", "0.4.0", "0.5.0"))
        .unwrap_or_default()
        .replace("\"u-3\"", "\"u\\u002d3\"")
        .replace("\"default\"", "\"def\\u0061ult\"");
    let one_pass = read_in_one_pass(escaped.as_bytes());
    assert_eq!(
        one_pass.as_ref().and_then(|r| r.info.uid.as_deref()),
        Some("u-3")
    );
    assert_eq!(
        one_pass.as_ref().and_then(|r| r.info.namespace.as_deref()),
        Some("default")
    );
    let reviewed = review(escaped.as_bytes());
    assert!(reviewed.verdict.is_allowed(), "{:?}", reviewed.verdict);
}

#[test]
fn a_key_written_twice_is_refused_not_read_as_its_last_value() {
    // A denied downgrade whose new spec has its version twice, the second time one the rules
    // allow: read as the last value, it was allowed.
    let downgrade = String::from_utf8(update_body("d-1", "0.5.0", "0.4.0"))
        .unwrap_or_default()
        .replacen(
            r#""spec":{"version":"0.4.0"}"#,
            r#""spec":{"version":"0.4.0","version":"0.6.0"}"#,
            1,
        );
    // A review of a PravegaCluster that names another group too: read as the last value, it
    // was allowed without checking.
    let other_group = String::from_utf8(update_body("d-2", "0.5.0", "0.4.0"))
        .unwrap_or_default()
        .replacen(
            r#""group":"pravega.pravega.io""#,
            r#""group":"pravega.pravega.io","group":"example.com""#,
            1,
        );
    for (body, uid, key, place) in [
        (downgrade, "d-1", "version", "request.object.spec"),
        (other_group, "d-2", "group", "request.kind"),
    ] {
        let reviewed = review(body.as_bytes());
        assert_eq!(reviewed.info.uid.as_deref(), Some(uid));
        match &reviewed.verdict {
            Verdict::Invalid { kind, message } => {
                assert_eq!(*kind, ErrorKind::DuplicateKey);
                assert!(
                    message.contains(&format!("the key \"{key}\" appears twice in {place}")),
                    "{message}"
                );
            }
            other => panic!("{body}: {other:?}"),
        }
        let answer: Value = serde_json::from_slice(&reviewed.to_http().body).unwrap_or_default();
        assert_eq!(answer["response"]["allowed"], false);
        assert_eq!(answer["response"]["status"]["code"], 400);
    }
}

#[test]
fn objects_written_as_json_arrays_are_refused() {
    // serde's derived structs read an array field by field; the API server never sends one,
    // and the webhook's partial views would read it otherwise than the typed objects do.
    let body = |path: &str, value: Value| {
        let mut v: Value =
            serde_json::from_slice(&update_body("a-1", "0.5.0", "0.4.0")).unwrap_or_default();
        if let Some(slot) = v.pointer_mut(path) {
            *slot = value;
        }
        v.to_string()
    };
    for (path, value) in [
        ("/request/object/metadata", json!(["example"])),
        (
            "/request/oldObject",
            json!([{"version": "0.3.0"}, {"version": "0.3.0"}]),
        ),
        ("/request/oldObject/status", json!(["0.3.0"])),
        (
            "/request/kind",
            json!(["pravega.pravega.io", "PravegaCluster"]),
        ),
        ("/request", json!(["a-1"])),
    ] {
        let text = body(path, value);
        assert_eq!(read_in_one_pass(text.as_bytes()), None, "{path}");
        let reviewed = review(text.as_bytes());
        assert!(
            matches!(reviewed.verdict, Verdict::Invalid { .. }),
            "{path}: {:?}",
            reviewed.verdict
        );
    }
}

#[test]
fn well_formed_reviews_the_one_pass_refuses_are_decoded_piece_by_piece() {
    // A CREATE whose oldObject (which the rules do not read) is not a PravegaCluster.
    let create = cluster_review(
        REVIEW_API_VERSION,
        json!({
            "uid": "c-2",
            "operation": "CREATE",
            "object": {"metadata": {"name": "example"}, "spec": {"version": "0.4.0"}},
            "oldObject": "not a cluster"
        }),
    )
    .to_string();
    assert_eq!(read_in_one_pass(create.as_bytes()), None);
    let reviewed = review(create.as_bytes());
    assert_eq!(reviewed.verdict, Verdict::Allowed { warnings: vec![] });
    assert_eq!(reviewed.info.name.as_deref(), Some("example"));
    // A missing object is explained piece by piece, with what was asked.
    let missing = create.replace("\"object\"", "\"other\"");
    let reviewed = review(missing.as_bytes());
    assert_eq!(reviewed.verdict.reason(), "MissingObject");
    assert_eq!(reviewed.info.uid.as_deref(), Some("c-2"));
    assert_eq!(reviewed.info.operation, Some(Operation::Create));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_get_a_400(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let reviewed = review(&body);
        let answer = reviewed.to_http();
        prop_assert!(answer.status == 200 || answer.status == 400);
        prop_assert_eq!(answer.status == 200, reviewed.info.uid.is_some());
    }

    #[test]
    fn any_uid_is_echoed_whatever_is_wrong_with_the_rest(
        uid in "[a-zA-Z0-9\\-]{1,40}",
        api_version in prop_oneof![Just("admission.k8s.io/v1"), Just("admission.k8s.io/v1beta1"), Just("v1")],
        operation in prop_oneof![Just("CREATE"), Just("UPDATE"), Just("DELETE"), Just("CONNECT"), Just("PATCH")],
        object in prop_oneof![
            Just(Value::Null),
            Just(json!({"spec": {"version": "0.4.0"}})),
            Just(json!({"spec": {"version": 4}})),
            Just(json!("a string")),
        ],
    ) {
        let body = cluster_review(
            api_version,
            json!({
                "uid": uid,
                "operation": operation,
                "object": object.clone(),
                "oldObject": object,
            }),
        );
        let answer = review(body.to_string().as_bytes()).to_http();
        prop_assert_eq!(answer.status, 200);
        let v: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        prop_assert_eq!(v["response"]["uid"].as_str(), Some(uid.as_str()));
    }

    #[test]
    fn the_one_pass_decoder_agrees_with_the_piece_by_piece_one(
        operation in prop_oneof![Just("CREATE"), Just("UPDATE"), Just("DELETE"), Just("CONNECT")],
        current in prop_oneof![Just("0.4.0"), Just("0.5.0-1"), Just("0.5.0")],
        desired in prop_oneof![Just("0.4.0"), Just("0.5.0"), Just("0.6.0"), Just("v0.6.0"), Just("0.6")],
        condition in prop_oneof![Just("Upgrading"), Just("RollbackInProgress"), Just("Error"), Just("PodsReady")],
        truth in prop_oneof![Just("True"), Just("False")],
        sub_resource in proptest::option::of(Just("status")),
        dry_run in any::<bool>(),
    ) {
        let object = |version: &str| json!({
            "metadata": {"name": "example", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"version": version, "bookkeeper": {"replicas": 3}},
            "status": {
                "currentVersion": current,
                "targetVersion": desired,
                "conditions": [{"type": condition, "status": truth, "reason": "UpgradeFailed"}]
            }
        });
        let body = cluster_review(
            REVIEW_API_VERSION,
            json!({
                "uid": "agree",
                "subResource": sub_resource,
                "operation": operation,
                "namespace": "default",
                "name": "example",
                "dryRun": dry_run,
                "object": object(desired),
                "oldObject": object(current),
            }),
        )
        .to_string();
        let one_pass = read_in_one_pass(body.as_bytes());
        prop_assert!(one_pass.is_some(), "not read in one pass: {}", body);
        let piece_by_piece = read_piece_by_piece(body.as_bytes());
        prop_assert_eq!(one_pass.map(Ok), Some(piece_by_piece));
    }

    #[test]
    fn a_healthy_cluster_accepts_exactly_the_versions_not_below_its_own(
        a in (0u64..3, 0u64..3, 0u64..3, proptest::option::of(1u64..3)),
        b in (0u64..3, 0u64..3, 0u64..3, proptest::option::of(1u64..3)),
    ) {
        let render = |(major, minor, patch, pre): (u64, u64, u64, Option<u64>)| match pre {
            Some(pre) => format!("{major}.{minor}.{patch}-{pre}"),
            None => format!("{major}.{minor}.{patch}"),
        };
        let (current, desired) = (render(a), render(b));
        let reviewed = review(&update_body("p-1", &current, &desired));
        let lower = precedence(
            &semver::Version::parse(&desired).map_err(|e| TestCaseError::fail(e.to_string()))?,
            &semver::Version::parse(&current).map_err(|e| TestCaseError::fail(e.to_string()))?,
        ).is_lt();
        prop_assert_eq!(reviewed.verdict.is_allowed(), !lower, "{} -> {}: {:?}", current, desired, reviewed.verdict);
        if lower {
            prop_assert_eq!(reviewed.verdict.reason(), "Downgrade");
        }
    }
}
