//! Validating admission webhooks: a tiny HTTPS webhook (its own rcgen CA) registered through
//! kubectl, its denials and warnings as kubectl shows them, and `failurePolicy` when it is down.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use pravega_sandbox::testing::blocking::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

const NS: &str = "pravega";
const HOOK: &str = "validate.pravegaclusters.pravega.io";

struct TestWebhook {
    addr: SocketAddr,
    ca_pem: String,
    reviews: Arc<Mutex<Vec<Value>>>,
    stop: CancellationToken,
}

/// Denies `spec.version: 0.3.0`, warns on `0.5.0`, allows anything else.
fn decide(review: &Value) -> Value {
    let req = &review["request"];
    let version = req["object"]["spec"]["version"]
        .as_str()
        .unwrap_or_default();
    let mut resp = json!({"uid": req["uid"], "allowed": true});
    if version == "0.3.0" {
        resp = json!({"uid": req["uid"], "allowed": false,
            "status": {"code": 403, "message": "downgrading the cluster from 0.4.0 to 0.3.0 is not supported"}});
    } else if version == "0.5.0" {
        resp["warnings"] = json!(["upgrading the cluster from 0.4.0 to 0.5.0"]);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
}

async fn start_webhook() -> TestWebhook {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reviews = Arc::new(Mutex::new(Vec::new()));
    let stop = CancellationToken::new();
    let (r2, s2) = (reviews.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                a = listener.accept() => a.unwrap(),
                _ = s2.cancelled() => return,
            };
            let (acceptor, reviews) = (acceptor.clone(), r2.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let reviews = reviews.clone();
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let review: Value = serde_json::from_slice(&body).unwrap();
                            let out = decide(&review);
                            reviews.lock().unwrap().push(review);
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::from(out.to_string()),
                            )))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    TestWebhook {
        addr,
        ca_pem: ca_cert.pem(),
        reviews,
        stop,
    }
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn vwc(client_config: &str, failure_policy: &str, ca: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: pravega-webhook\nwebhooks:\n- name: {HOOK}\n  admissionReviewVersions: [v1]\n  sideEffects: None\n  failurePolicy: {failure_policy}\n  timeoutSeconds: 5\n  clientConfig:\n{client_config}    caBundle: {}\n  rules:\n  - apiGroups: [pravega.pravega.io]\n    apiVersions: [v1beta1]\n    operations: [CREATE, UPDATE]\n    resources: [pravegaclusters]\n    scope: Namespaced\n",
        b64(ca.as_bytes())
    )
}

fn patch_version(sb: &pravega_sandbox::Sandbox, version: &str, extra: &[&str]) -> Run {
    let p =
        format!("[{{\"op\": \"replace\", \"path\": \"/spec/version\", \"value\": \"{version}\"}}]");
    let mut args = vec![
        "-n",
        NS,
        "patch",
        "PravegaCluster",
        "example",
        "--type=json",
        "-p",
        &p,
    ];
    args.extend_from_slice(extra);
    kubectl(sb, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_denials_warnings_and_failure_policy() {
    let sb = sandbox().await;
    install_crd(&sb, NS);
    let hook = start_webhook().await;
    let url = format!("https://{}/validate", hook.addr);
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &vwc(&format!("    url: {url}\n"), "Fail", &hook.ca_pem),
    );

    // CREATE is reviewed and allowed.
    let sample = workspace_root().join("deploy/sample/pravegacluster.yaml");
    kubectl_ok(&sb, &["-n", NS, "apply", "-f", sample.to_str().unwrap()]);
    {
        let reviews = hook.reviews.lock().unwrap();
        assert_eq!(reviews.len(), 1);
        let r = &reviews[0]["request"];
        assert_eq!(r["operation"], "CREATE");
        assert_eq!(
            r["kind"],
            json!({"group": "pravega.pravega.io", "version": "v1beta1", "kind": "PravegaCluster"})
        );
        assert_eq!(r["resource"]["resource"], "pravegaclusters");
        assert_eq!(
            (r["namespace"].as_str(), r["name"].as_str()),
            (Some(NS), Some("example"))
        );
        assert_eq!(r["dryRun"], false);
        assert!(r["oldObject"].is_null());
        assert_eq!(r["object"]["spec"]["version"], "0.4.0");
        assert!(r["userInfo"]["username"].is_string());
    }

    // A denial reaches kubectl exactly as the API server words it.
    let denied = patch_version(&sb, "0.3.0", &[]);
    assert!(!denied.ok);
    assert!(
        denied.stderr.contains(&format!(
            "Error from server (Forbidden): admission webhook \"{HOOK}\" denied the request: downgrading the cluster from 0.4.0 to 0.3.0 is not supported"
        )),
        "{}",
        denied.stderr
    );
    {
        let reviews = hook.reviews.lock().unwrap();
        let r = &reviews.last().unwrap()["request"];
        assert_eq!(r["operation"], "UPDATE");
        assert_eq!(r["oldObject"]["spec"]["version"], "0.4.0");
        assert_eq!(r["object"]["spec"]["version"], "0.3.0");
    }
    let v = jsonpath(&sb, NS, &["pk", "example"], "{.spec.version}");
    assert_eq!(v, "0.4.0", "a denied write is not stored");

    // Dry run: reviewed with dryRun=true, nothing stored.
    let dry = patch_version(&sb, "0.4.1", &["--dry-run=server"]);
    assert!(dry.ok, "{}", dry.stderr);
    assert_eq!(
        hook.reviews.lock().unwrap().last().unwrap()["request"]["dryRun"],
        true
    );
    assert_eq!(
        jsonpath(&sb, NS, &["pk", "example"], "{.spec.version}"),
        "0.4.0"
    );

    // Warnings become `Warning:` lines; the write goes through.
    let warned = patch_version(&sb, "0.5.0", &[]);
    assert!(warned.ok, "{}", warned.stderr);
    assert!(
        warned
            .stderr
            .contains("Warning: upgrading the cluster from 0.4.0 to 0.5.0"),
        "{}",
        warned.stderr
    );

    // The status subresource is not reviewed unless a rule names pravegaclusters/status.
    let before = hook.reviews.lock().unwrap().len();
    patch_status(&sb, NS, "pk", "example", r#"{"status":{"replicas":7}}"#);
    assert_eq!(hook.reviews.lock().unwrap().len(), before);

    // A `service` reference mapped to the local webhook.
    sb.map_service("pravega-system", "pravega-webhook", 443, hook.addr);
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &vwc(
            "    service:\n      namespace: pravega-system\n      name: pravega-webhook\n      port: 443\n      path: /validate\n",
            "Fail",
            &hook.ca_pem,
        ),
    );
    let denied = patch_version(&sb, "0.3.0", &[]);
    assert!(
        denied.stderr.contains("denied the request: downgrading"),
        "{}",
        denied.stderr
    );

    // The webhook goes down: failurePolicy Fail blocks writes with the API server's message.
    hook.stop.cancel();
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &vwc(&format!("    url: {url}\n"), "Fail", &hook.ca_pem),
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let blocked = patch_version(&sb, "0.6.0", &[]);
    assert!(!blocked.ok);
    let port = hook.addr.port();
    assert!(
        blocked.stderr.contains(&format!(
            "Error from server (InternalError): Internal error occurred: failed calling webhook \"{HOOK}\": failed to call webhook: Post \"https://127.0.0.1:{port}/validate?timeout=5s\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{}",
        blocked.stderr
    );
    // failurePolicy Ignore lets writes through.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &vwc(&format!("    url: {url}\n"), "Ignore", &hook.ca_pem),
    );
    let through = patch_version(&sb, "0.6.0", &[]);
    assert!(through.ok, "{}", through.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_reviews_carry_the_version_of_the_request() {
    let sb = sandbox().await;
    install_crd(&sb, NS);
    // Serve PravegaCluster as v1alpha1 too (same schema); v1beta1 stays the storage version.
    let mut crd: Value = serde_json::from_str(&kubectl_ok(
        &sb,
        &[
            "get",
            "crd",
            "pravegaclusters.pravega.pravega.io",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    let versions = crd["spec"]["versions"].as_array_mut().unwrap();
    if !versions.iter().any(|v| v["name"] == "v1alpha1") {
        let mut alpha = versions
            .iter()
            .find(|v| v["name"] == "v1beta1")
            .expect("v1beta1")
            .clone();
        alpha["name"] = json!("v1alpha1");
        alpha["storage"] = json!(false);
        versions.push(alpha);
    }
    kubectl_stdin_ok(&sb, &["replace", "-f", "-"], &crd.to_string());

    let hook = start_webhook().await;
    let url = format!("https://{}/validate", hook.addr);
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &vwc(&format!("    url: {url}\n"), "Fail", &hook.ca_pem)
            .replace("apiVersions: [v1beta1]", "apiVersions: [\"*\"]"),
    );

    // An upstream-style v1alpha1 manifest is reviewed at v1alpha1.
    let sample =
        std::fs::read_to_string(workspace_root().join("deploy/sample/pravegacluster.yaml"))
            .unwrap()
            .replace(
                "apiVersion: pravega.pravega.io/v1beta1",
                "apiVersion: pravega.pravega.io/v1alpha1",
            );
    assert!(sample.contains("pravega.pravega.io/v1alpha1"));
    kubectl_stdin_ok(&sb, &["-n", NS, "apply", "-f", "-"], &sample);
    {
        let reviews = hook.reviews.lock().unwrap();
        let r = &reviews.last().expect("reviewed")["request"];
        assert_eq!(r["operation"], "CREATE");
        assert_eq!(
            r["kind"],
            json!({"group": "pravega.pravega.io", "version": "v1alpha1", "kind": "PravegaCluster"})
        );
        assert_eq!(
            r["resource"],
            json!({"group": "pravega.pravega.io", "version": "v1alpha1", "resource": "pravegaclusters"})
        );
        assert_eq!(r["object"]["apiVersion"], "pravega.pravega.io/v1alpha1");
    }
    // The denial applies whichever version the change comes through.
    let denied = patch(
        &sb,
        NS,
        ["pravegaclusters.v1alpha1.pravega.pravega.io", "example"],
        "merge",
        r#"{"spec":{"version":"0.3.0"}}"#,
    );
    assert!(
        denied.stderr.contains("denied the request: downgrading"),
        "{}",
        denied.stderr
    );
    // Through v1beta1: reviewed at v1beta1, both objects at v1beta1.
    let warned = patch_version(&sb, "0.5.0", &[]);
    assert!(warned.ok, "{}", warned.stderr);
    let reviews = hook.reviews.lock().unwrap();
    let r = &reviews.last().expect("reviewed")["request"];
    assert_eq!(r["operation"], "UPDATE");
    assert_eq!(r["kind"]["version"], "v1beta1");
    assert_eq!(r["requestKind"]["version"], "v1beta1");
    assert_eq!(r["object"]["apiVersion"], "pravega.pravega.io/v1beta1");
    assert_eq!(r["oldObject"]["apiVersion"], "pravega.pravega.io/v1beta1");
    assert_eq!(r["oldObject"]["spec"]["version"], "0.4.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_untrusted_webhook_certificate_is_worded_as_go_words_it() {
    let sb = sandbox().await;
    install_crd(&sb, NS);
    let hook = start_webhook().await;
    let url = format!("https://{}/validate", hook.addr);
    // The caBundle is another CA than the one that signed the webhook's certificate.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &vwc(&format!("    url: {url}\n"), "Fail", sb.ca_pem()),
    );
    let sample = workspace_root().join("deploy/sample/pravegacluster.yaml");
    let refused = kubectl(&sb, &["-n", NS, "apply", "-f", sample.to_str().unwrap()]);
    assert!(!refused.ok);
    let port = hook.addr.port();
    assert!(
        refused.stderr.contains(&format!(
            "Internal error occurred: failed calling webhook \"{HOOK}\": failed to call webhook: Post \"https://127.0.0.1:{port}/validate?timeout=5s\": tls: failed to verify certificate: x509: certificate signed by unknown authority\n"
        )),
        "{}",
        refused.stderr
    );
    assert!(hook.reviews.lock().unwrap().is_empty());
}

/// `vwc(...)` with `matchConditions` (name, expression).
fn vwc_matching(url: &str, failure_policy: &str, ca: &str, conditions: &[(&str, &str)]) -> String {
    let mut yaml = vwc(&format!("    url: {url}\n"), failure_policy, ca);
    yaml.push_str("  matchConditions:\n");
    for (name, expression) in conditions {
        yaml.push_str(&format!(
            "  - name: {name}\n    expression: |-\n      {expression}\n"
        ));
    }
    yaml
}

fn merge_patch(sb: &pravega_sandbox::Sandbox, body: &str) -> Run {
    patch(sb, NS, ["PravegaCluster", "example"], "merge", body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn match_conditions_decide_which_requests_reach_the_webhook() {
    let sb = sandbox().await;
    install_crd(&sb, NS);
    let hook = start_webhook().await;
    let url = format!("https://{}/validate", hook.addr);
    let reviewed = || hook.reviews.lock().unwrap().len();
    // The condition of deploy/base: everything but an emergency pause is reviewed.
    let pause = "!(request.operation == 'UPDATE' && has(object.spec.upgrade) && has(object.spec.upgrade.paused) && object.spec.upgrade.paused == true && object.spec.version == oldObject.spec.version)";
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &vwc_matching(
            &url,
            "Fail",
            &hook.ca_pem,
            &[("not-an-emergency-pause", pause)],
        ),
    );
    let stored = kubectl_ok(
        &sb,
        &[
            "get",
            "validatingwebhookconfiguration",
            "pravega-webhook",
            "-o",
            "jsonpath={.webhooks[0].matchConditions[0].name}",
        ],
    );
    assert_eq!(stored, "not-an-emergency-pause");

    let sample = workspace_root().join("deploy/sample/pravegacluster.yaml");
    kubectl_ok(&sb, &["-n", NS, "apply", "-f", sample.to_str().unwrap()]);
    assert_eq!(reviewed(), 1, "a CREATE is reviewed");
    let paused = merge_patch(&sb, r#"{"spec":{"upgrade":{"paused":true}}}"#);
    assert!(paused.ok, "{}", paused.stderr);
    assert_eq!(reviewed(), 1, "the pause is not reviewed");
    let warned = patch_version(&sb, "0.5.0", &[]);
    assert!(warned.ok, "{}", warned.stderr);
    assert_eq!(reviewed(), 2, "a version change is reviewed, paused or not");
    let denied = patch_version(&sb, "0.3.0", &[]);
    assert!(
        denied.stderr.contains("denied the request: downgrading"),
        "{}",
        denied.stderr
    );
    let resumed = merge_patch(&sb, r#"{"spec":{"upgrade":{"paused":false}}}"#);
    assert!(resumed.ok, "{}", resumed.stderr);
    assert_eq!(reviewed(), 4, "resuming is reviewed");

    // An expression that does not compile is refused when the configuration is written.
    let bad = kubectl_stdin(
        &sb,
        &["apply", "-f", "-"],
        &vwc_matching(
            &url,
            "Fail",
            &hook.ca_pem,
            &[("typo", "request.operatoin == 'UPDATE'")],
        ),
    );
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains(
            "webhooks[0].matchConditions[0].expression: Invalid value: \"request.operatoin == 'UPDATE'\": compilation failed: ERROR: <input>:1:8: undefined field 'operatoin'"
        ),
        "{}",
        bad.stderr
    );
    let bad = kubectl_stdin(
        &sb,
        &["apply", "-f", "-"],
        &vwc_matching(
            &url,
            "Fail",
            &hook.ca_pem,
            &[("Not Valid", "true"), ("b", "object.spec")],
        ),
    );
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("webhooks[0].matchConditions[0].name: Invalid value: \"Not Valid\": name part must consist of")
            && bad.stderr.contains("webhooks[0].matchConditions[1].expression: Invalid value: \"object.spec\": must evaluate to bool"),
        "{}",
        bad.stderr
    );

    // An evaluation error under failurePolicy Fail refuses the write as the API server does.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &vwc_matching(
            &url,
            "Fail",
            &hook.ca_pem,
            &[("needs-tier", "object.spec.tier == 'gold'")],
        ),
    );
    let before = reviewed();
    let refused = merge_patch(&sb, r#"{"spec":{"upgrade":{"paused":true}}}"#);
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains(
            "Error from server (Forbidden): pravegaclusters.pravega.pravega.io \"example\" is forbidden: expression 'object.spec.tier == 'gold'' resulted in error: no such key: tier"
        ),
        "{}",
        refused.stderr
    );
    // ... and skips the webhook under Ignore.
    kubectl_stdin_ok(
        &sb,
        &["apply", "-f", "-"],
        &vwc_matching(
            &url,
            "Ignore",
            &hook.ca_pem,
            &[("needs-tier", "object.spec.tier == 'gold'")],
        ),
    );
    let through = merge_patch(&sb, r#"{"spec":{"upgrade":{"paused":true}}}"#);
    assert!(through.ok, "{}", through.stderr);
    assert_eq!(reviewed(), before, "neither was reviewed");
    assert_eq!(
        jsonpath(&sb, NS, &["pk", "example"], "{.spec.upgrade.paused}"),
        "true"
    );
}
