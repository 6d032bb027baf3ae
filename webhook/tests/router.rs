//! The admission and metrics routers, in process: every version rule as the API server would ask
//! it, malformed input, dryRun, and the health and metrics endpoints.

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use hyper::body::{Bytes, Frame};
use pravega_webhook::{AppState, metrics_router, webhook_service};
use serde_json::{Value, json};
use tower::ServiceExt;

use common::{cluster, parts, review, status, update};

fn state() -> Arc<AppState> {
    Arc::new(AppState::new(3 * 1024 * 1024, Duration::from_secs(10)))
}

async fn post_raw(state: &Arc<AppState>, body: Body) -> (StatusCode, String, Vec<u8>) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("request");
    let response = webhook_service(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    parts(response).await.expect("body")
}

/// POSTs `review` and returns the AdmissionReview answer (asserting HTTP 200 JSON).
async fn post(state: &Arc<AppState>, review: &Value) -> Value {
    let (status, content_type, body) =
        post_raw(state, Body::from(serde_json::to_vec(review).expect("json"))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/json");
    let answer: Value = serde_json::from_slice(&body).expect("answer is JSON");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"], review["request"]["uid"],
        "the uid is echoed"
    );
    answer["response"].clone()
}

fn assert_allowed(response: &Value) {
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("status").is_none(), "{response}");
}

/// Asserts a denial by a rule (403 Forbidden) and returns its message.
fn denied_message(response: &Value) -> String {
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403, "{response}");
    assert_eq!(response["status"]["reason"], "Forbidden", "{response}");
    assert_eq!(response["status"]["status"], "Failure", "{response}");
    response["status"]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

/// Asserts a request the webhook could not read (code 400) and returns its message.
fn bad_request_message(response: &Value) -> String {
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 400, "{response}");
    assert_eq!(response["status"]["reason"], "BadRequest", "{response}");
    response["status"]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

fn healthy(current: &str) -> Option<Value> {
    Some(status(
        current,
        None,
        &[
            ("Upgrading", "False", "Completed"),
            ("PodsReady", "True", "AllPodsReady"),
            ("Error", "False", ""),
        ],
    ))
}

fn failed(current: &str, target: &str) -> Option<Value> {
    Some(status(
        current,
        Some(target),
        &[
            ("Upgrading", "False", "UpgradeFailed"),
            ("PodsReady", "False", "PodsNotReady"),
            ("Error", "True", "UpgradeFailed"),
        ],
    ))
}

#[tokio::test]
async fn create_with_a_valid_version_is_allowed() {
    let s = state();
    let r = post(
        &s,
        &review("c-1", "CREATE", Some(cluster("0.4.0", None)), None, false),
    )
    .await;
    assert_allowed(&r);
    let r = post(
        &s,
        &review("c-2", "CREATE", Some(cluster("0.5.0-1", None)), None, false),
    )
    .await;
    assert_allowed(&r);
}

#[tokio::test]
async fn create_with_an_invalid_version_or_spec_is_denied() {
    let s = state();
    let r = post(
        &s,
        &review("c-3", "CREATE", Some(cluster("v0.4.0", None)), None, false),
    )
    .await;
    let m = denied_message(&r);
    assert!(
        m.contains("\"v0.4.0\" is not a valid semantic version"),
        "{m}"
    );
    assert!(m.contains("drop the leading \"v\""), "{m}");

    let r = post(
        &s,
        &review("c-4", "CREATE", Some(cluster("latest", None)), None, false),
    )
    .await;
    let m = denied_message(&r);
    assert!(m.contains("e.g. \"0.5.0\""), "{m}");

    let mut object = cluster("0.4.0", None);
    object["spec"]["pravega"]["image"]["repository"] = json!("pravega/pravega:0.4.0");
    let r = post(&s, &review("c-5", "CREATE", Some(object), None, false)).await;
    let m = denied_message(&r);
    assert!(
        m.contains("spec.pravega.image.repository") && m.contains("without a tag"),
        "{m}"
    );
}

#[tokio::test]
async fn update_to_an_invalid_version_is_denied_with_the_parse_error() {
    let s = state();
    let r = post(&s, &update("u-1", "0.4.0", healthy("0.4.0"), "0.5")).await;
    let m = denied_message(&r);
    assert!(
        m.contains("spec.version \"0.5\" is not a valid semantic version"),
        "{m}"
    );
    let r = post(
        &s,
        &update("u-2", "0.4.0", healthy("0.4.0"), "0.5.0+build.1"),
    )
    .await;
    let m = denied_message(&r);
    assert!(m.contains("build metadata"), "{m}");
}

#[tokio::test]
async fn downgrades_are_denied_including_to_a_pre_release() {
    let s = state();
    let r = post(&s, &update("d-1", "0.5.0", healthy("0.5.0"), "0.4.0")).await;
    assert_eq!(
        denied_message(&r),
        "downgrading the cluster from 0.5.0 to 0.4.0 is not supported; spec.version must be 0.5.0 or higher"
    );
    // 0.5.0-1 is a pre-release of 0.5.0, so lower than it.
    let r = post(&s, &update("d-2", "0.5.0", healthy("0.5.0"), "0.5.0-1")).await;
    let m = denied_message(&r);
    assert!(
        m.starts_with("downgrading the cluster from 0.5.0 to 0.5.0-1 is not supported"),
        "{m}"
    );
}

#[tokio::test]
async fn upgrades_are_allowed_including_to_a_pre_release() {
    let s = state();
    assert_allowed(&post(&s, &update("g-1", "0.4.0", healthy("0.4.0"), "0.5.0")).await);
    assert_allowed(&post(&s, &update("g-2", "0.4.0", healthy("0.4.0"), "0.5.0-1")).await);
    // Nothing deployed yet (no status): any valid version.
    assert_allowed(&post(&s, &update("g-3", "0.5.0", None, "0.4.0")).await);
}

#[tokio::test]
async fn a_version_change_while_upgrading_is_denied_naming_the_versions_in_flight() {
    let s = state();
    let upgrading = Some(status(
        "0.4.0",
        Some("0.5.0"),
        &[
            ("Upgrading", "True", "InProgress"),
            ("PodsReady", "False", "PodsNotReady"),
        ],
    ));
    let r = post(&s, &update("w-1", "0.5.0", upgrading.clone(), "0.6.0")).await;
    let m = denied_message(&r);
    assert!(
        m.contains(
            "cannot change spec.version to 0.6.0 while the cluster is upgrading from 0.4.0 to 0.5.0"
        ),
        "{m}"
    );
    assert!(m.contains("spec.version must stay 0.5.0"), "{m}");
    // Going back to the current version is a change too, and also waits.
    let r = post(&s, &update("w-2", "0.5.0", upgrading, "0.4.0")).await;
    denied_message(&r);
}

#[tokio::test]
async fn a_version_change_while_rolling_back_is_denied() {
    let s = state();
    let rolling_back = Some(status(
        "0.4.0",
        Some("0.4.0"),
        &[
            ("Upgrading", "False", "UpgradeFailed"),
            ("Error", "True", "UpgradeFailed"),
            ("RollbackInProgress", "True", "InProgress"),
        ],
    ));
    let r = post(&s, &update("r-1", "0.4.0", rolling_back, "0.5.0")).await;
    let m = denied_message(&r);
    assert!(
        m.contains("cannot change spec.version to 0.5.0 while the cluster is rolling back"),
        "{m}"
    );
    assert!(
        m.contains("wait until the rollback completes or fails"),
        "{m}"
    );
}

#[tokio::test]
async fn after_a_failed_upgrade_rollback_and_roll_forward_are_allowed_but_not_a_downgrade() {
    let s = state();
    // Back to the current version: a rollback, with a warning.
    let r = post(
        &s,
        &update("f-1", "0.5.0", failed("0.4.0", "0.5.0"), "0.4.0"),
    )
    .await;
    assert_allowed(&r);
    let warnings = r["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{r}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.starts_with("rolling back the failed upgrade to 0.5.0")),
        "{r}"
    );
    // The same target again: a retry, with a warning.
    let r = post(
        &s,
        &update("f-0", "0.4.0", failed("0.4.0", "0.5.0"), "0.5.0"),
    )
    .await;
    assert_allowed(&r);
    assert!(
        r["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("retrying the upgrade from 0.4.0 to 0.5.0")),
        "{r}"
    );
    // A higher version: a roll forward.
    assert_allowed(
        &post(
            &s,
            &update("f-2", "0.5.0", failed("0.4.0", "0.5.0"), "0.5.1"),
        )
        .await,
    );
    // Below the current version: still a downgrade, with the way out.
    let r = post(
        &s,
        &update("f-3", "0.5.0", failed("0.4.0", "0.5.0"), "0.3.0"),
    )
    .await;
    let m = denied_message(&r);
    assert!(
        m.contains("(set it to 0.4.0 to roll back the failed upgrade)"),
        "{m}"
    );
}

#[tokio::test]
async fn other_spec_changes_with_an_unchanged_version_are_allowed() {
    let s = state();
    let upgrading = Some(status(
        "0.4.0",
        Some("0.5.0"),
        &[("Upgrading", "True", "InProgress")],
    ));
    let old = cluster("0.5.0", upgrading.clone());
    let mut new = old.clone();
    new["spec"]["bookkeeper"]["replicas"] = json!(5);
    new["spec"]["upgrade"]["paused"] = json!(true);
    let r = post(&s, &review("o-1", "UPDATE", Some(new), Some(old), false)).await;
    assert_allowed(&r);
    // ...but a broken other field is still refused.
    let old = cluster("0.5.0", healthy("0.5.0"));
    let mut new = old.clone();
    new["spec"]["upgrade"]["timeout"] = json!("ten minutes");
    let r = post(&s, &review("o-2", "UPDATE", Some(new), Some(old), false)).await;
    let m = denied_message(&r);
    assert!(m.contains("spec.upgrade.timeout"), "{m}");
}

#[tokio::test]
async fn workload_settings_the_images_would_refuse_are_denied() {
    let s = state();
    let mut big_heap = cluster("0.11.0", None);
    big_heap["spec"]["pravega"]["segmentStoreJVMOptions"] = json!(["-Xmx4g"]);
    let r = post(&s, &review("w-1", "CREATE", Some(big_heap), None, false)).await;
    let m = denied_message(&r);
    assert!(
        m.contains(
            "the Segment Store heap (-Xmx, 4Gi) must be smaller than the container's memory limit"
        ),
        "{m}"
    );
    let mut no_credentials = cluster("0.7.0", None);
    no_credentials["spec"]["pravega"]["tier2"] =
        json!({"ecs": {"uri": "https://ecs:9021", "bucket": "pravega"}});
    let r = post(
        &s,
        &review("w-2", "CREATE", Some(no_credentials), None, false),
    )
    .await;
    assert!(denied_message(&r).contains("spec.pravega.tier2.ecs.credentials is required"));

    // On UPDATE, what holds data cannot change, whatever else does.
    let old = cluster("0.7.0", healthy("0.7.0"));
    let mut hdfs = old.clone();
    hdfs["spec"]["pravega"]["tier2"] = json!({"hdfs": {"uri": "hdfs://namenode:8020"}});
    let r = post(
        &s,
        &review("w-3", "UPDATE", Some(hdfs), Some(old.clone()), false),
    )
    .await;
    assert!(
        denied_message(&r).contains("the kind of tier 2 storage cannot change once the cluster exists (it is filesystem; the request makes it hdfs)")
    );
    let mut more = old.clone();
    more["spec"]["pravega"]["options"] = json!({"controller.containerCount": "16"});
    let r = post(&s, &review("w-4", "UPDATE", Some(more), Some(old), false)).await;
    assert!(denied_message(&r).contains("segment container count"));
}

#[tokio::test]
async fn upstream_fields_not_honoured_yet_are_allowed_with_warnings() {
    let s = state();
    let mut legacy = cluster("0.4.0", None);
    legacy["apiVersion"] = json!("pravega.pravega.io/v1alpha1");
    legacy["spec"]["externalAccess"] = json!({"enabled": true, "type": "LoadBalancer"});
    legacy["spec"]["bookkeeper"]["image"]["tag"] = json!("0.4.0");
    let r = post(&s, &review("a-1", "CREATE", Some(legacy), None, false)).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        r["warnings"],
        json!([
            "spec.externalAccess is accepted but not honoured yet by this operator; the cluster is built without it"
        ])
    );
}

#[tokio::test]
async fn an_object_stored_before_a_rule_existed_can_still_be_edited() {
    // Its timeout breaks today's rule. Editing only its metadata compares the whole specs (equal:
    // allowed); changing another spec field while the timeout stays broken is refused.
    let s = state();
    let mut old = cluster("0.5.0", healthy("0.5.0"));
    old["spec"]["upgrade"]["timeout"] = json!("ten minutes");
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"team": "streaming"});
    let r = post(
        &s,
        &review("s-1", "UPDATE", Some(relabelled), Some(old.clone()), false),
    )
    .await;
    assert_allowed(&r);

    let mut scaled = old.clone();
    scaled["spec"]["bookkeeper"]["replicas"] = json!(5);
    let r = post(&s, &review("s-2", "UPDATE", Some(scaled), Some(old), false)).await;
    let m = denied_message(&r);
    assert!(m.contains("spec.upgrade.timeout"), "{m}");
}

#[tokio::test]
async fn dry_run_requests_get_the_same_answer() {
    let s = state();
    for (uid, old, old_status, new) in [
        ("dry-1", "0.5.0", healthy("0.5.0"), "0.4.0"),
        ("dry-2", "0.4.0", healthy("0.4.0"), "0.5.0"),
        ("dry-3", "0.5.0", failed("0.4.0", "0.5.0"), "0.4.0"),
    ] {
        let wet = update(uid, old, old_status.clone(), new);
        let mut dry = wet.clone();
        dry["request"]["dryRun"] = json!(true);
        assert_eq!(post(&s, &wet).await, post(&s, &dry).await, "{uid}");
    }
}

#[tokio::test]
async fn delete_connect_other_kinds_and_sub_resources_are_allowed_unchecked() {
    let s = state();
    let r = post(
        &s,
        &review("x-1", "DELETE", None, Some(cluster("0.4.0", None)), false),
    )
    .await;
    assert_allowed(&r);
    let r = post(&s, &review("x-2", "CONNECT", None, None, false)).await;
    assert_allowed(&r);
    let mut pod = review("x-3", "CREATE", Some(json!({"kind": "Pod"})), None, false);
    pod["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
    assert_allowed(&post(&s, &pod).await);
    // The operator's status writes are not version changes.
    let mut status_update = update("x-4", "0.5.0", healthy("0.5.0"), "0.4.0");
    status_update["request"]["subResource"] = json!("status");
    assert_allowed(&post(&s, &status_update).await);
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_http_400_with_a_plain_message() {
    let s = state();
    for body in [&b"not json"[..], b"", b"[1,2]", b"{\"apiVersion\": "] {
        let (status, content_type, body) = post_raw(&s, Body::from(body.to_vec())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("AdmissionReview"), "{text}");
    }
}

#[tokio::test]
async fn a_review_of_the_wrong_version_or_kind_is_answered_with_code_400() {
    let s = state();
    let mut v1beta1 = update("k-1", "0.4.0", healthy("0.4.0"), "0.5.0");
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let m = bad_request_message(&post(&s, &v1beta1).await);
    assert!(m.contains("expected apiVersion admission.k8s.io/v1"), "{m}");
    assert!(m.contains("\"admission.k8s.io/v1beta1\""), "{m}");

    let mut wrong_kind = update("k-2", "0.4.0", healthy("0.4.0"), "0.5.0");
    wrong_kind["kind"] = json!("TokenReview");
    let m = bad_request_message(&post(&s, &wrong_kind).await);
    assert!(m.contains("kind \"TokenReview\""), "{m}");
}

#[tokio::test]
async fn missing_or_invalid_parts_are_answered_with_code_400() {
    let s = state();
    let m = bad_request_message(&post(&s, &review("m-1", "CREATE", None, None, false)).await);
    assert_eq!(
        m,
        "request.object is missing; a CREATE or UPDATE of a PravegaCluster must carry it"
    );
    let m = bad_request_message(
        &post(
            &s,
            &review("m-2", "UPDATE", Some(cluster("0.5.0", None)), None, false),
        )
        .await,
    );
    assert!(m.starts_with("request.oldObject is missing"), "{m}");

    let mut object = cluster("0.5.0", None);
    object["spec"]["version"] = json!(5);
    let m =
        bad_request_message(&post(&s, &review("m-3", "CREATE", Some(object), None, false)).await);
    assert!(
        m.starts_with("request.object is not a valid PravegaCluster: "),
        "{m}"
    );

    let mut object = cluster("0.5.0", None);
    object["spec"] = json!({});
    let m =
        bad_request_message(&post(&s, &review("m-4", "CREATE", Some(object), None, false)).await);
    assert!(m.contains("missing field `version`"), "{m}");

    let m = bad_request_message(
        &post(
            &s,
            &review("m-5", "PATCH", Some(cluster("0.5.0", None)), None, false),
        )
        .await,
    );
    assert!(
        m.contains("\"PATCH\" is not one of CREATE, UPDATE, DELETE, CONNECT"),
        "{m}"
    );
}

#[tokio::test]
async fn a_review_without_request_or_uid_gets_http_400() {
    let s = state();
    for body in [
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "CREATE"}}),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "", "operation": "CREATE"}}),
    ] {
        let (status, _, text) = post_raw(&s, Body::from(body.to_string())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("request"), "{text}");
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let s = state();
    let mut big = cluster("0.5.0", None);
    big["metadata"]["annotations"] = json!({"filler": "x".repeat(3 * 1024 * 1024)});
    let body =
        serde_json::to_vec(&review("big-1", "CREATE", Some(big), None, false)).expect("json");
    let (status, _, text) = post_raw(&s, Body::from(body.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        String::from_utf8_lossy(&text).contains("larger than the limit of 3145728 bytes"),
        "{}",
        String::from_utf8_lossy(&text)
    );
    // Without a Content-Length (a streamed body) the limit holds as well.
    let chunks: Vec<Bytes> = body.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
    let (status, _, _) = post_raw(&s, Body::new(Chunked(chunks.into_iter()))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A body sent in chunks, without a known length.
struct Chunked(std::vec::IntoIter<Bytes>);

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(self.0.next().map(|c| Ok(Frame::data(c))))
    }
}

/// A body that never completes.
struct Stalled;

impl hyper::body::Body for Stalled {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Pending
    }
}

#[tokio::test]
async fn a_body_that_never_completes_times_out() {
    let s = Arc::new(AppState::new(1024, Duration::from_millis(200)));
    let (status, _, text) =
        tokio::time::timeout(Duration::from_secs(5), post_raw(&s, Body::new(Stalled)))
            .await
            .expect("the webhook answers instead of hanging");
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert!(String::from_utf8_lossy(&text).contains("within 200ms"));
}

#[tokio::test]
async fn only_post_to_validate_is_served() {
    let status = |method: Method, path: &str| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty());
        async move {
            webhook_service(state())
                .oneshot(request.expect("request"))
                .await
                .expect("infallible")
                .status()
        }
    };
    assert_eq!(
        status(Method::GET, "/validate").await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(status(Method::POST, "/mutate").await, StatusCode::NOT_FOUND);
}

async fn get(state: &Arc<AppState>, path: &str) -> (StatusCode, String) {
    let response = metrics_router(state.clone())
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let (status, _, body) = parts(response).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = state();
    assert_eq!(get(&s, "/healthz").await.0, StatusCode::OK);
    // No certificate loaded: alive, not ready.
    let (status, text) = get(&s, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.contains("no serving certificate"), "{text}");

    post(&s, &update("mt-1", "0.5.0", healthy("0.5.0"), "0.4.0")).await;
    post(&s, &update("mt-2", "0.4.0", healthy("0.4.0"), "0.5.0")).await;
    post_raw(&s, Body::from("nope")).await;
    let (status, text) = get(&s, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "pravega_webhook_requests_total{operation=\"UPDATE\",decision=\"denied\",reason=\"Downgrade\"} 1",
        "pravega_webhook_requests_total{operation=\"UPDATE\",decision=\"allowed\",reason=\"Valid\"} 1",
        "pravega_webhook_requests_total{operation=\"UNKNOWN\",decision=\"error\",reason=\"NotJson\"} 1",
        "pravega_webhook_request_duration_seconds_count{operation=\"UPDATE\"} 2",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }

    s.begin_shutdown();
    let (status, text) = get(&s, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.contains("shutting down"), "{text}");
}

#[tokio::test]
async fn a_jump_over_a_minor_version_or_to_a_pre_release_is_allowed_with_a_warning() {
    let s = state();
    let r = post(&s, &update("j-1", "0.4.0", healthy("0.4.0"), "0.6.0")).await;
    assert_allowed(&r);
    assert_eq!(
        r["warnings"],
        json!([
            "spec.version goes from 0.4.0 to 0.6.0, skipping 0.5: upgrades are tested one minor version at a time; consider upgrading to 0.5 first"
        ]),
        "{r}"
    );
    let r = post(&s, &update("j-2", "0.4.0", healthy("0.4.0"), "0.5.0-rc1")).await;
    assert_allowed(&r);
    assert_eq!(
        r["warnings"],
        json!([
            "spec.version 0.5.0-rc1 is a pre-release of 0.5.0 (\"-rc1\"): check that its images are a build you mean to run"
        ]),
        "{r}"
    );
    // One minor version at a time: no warning.
    let r = post(&s, &update("j-3", "0.4.0", healthy("0.4.0"), "0.5.0")).await;
    assert_allowed(&r);
    assert!(r.get("warnings").is_none(), "{r}");
}
