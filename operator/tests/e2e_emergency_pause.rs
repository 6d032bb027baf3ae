//! End to end, with the real `kubectl` and the real webhook registered as `deploy/` registers it
//! (its match condition included): while the webhook is down (`failurePolicy: Fail`), the
//! emergency brake `spec.upgrade.paused: true` still goes through, and every change the webhook
//! must judge (a version change, resuming) is refused with the API server's `failed calling
//! webhook` error.

mod support;
mod support_upgrade;

use std::time::Duration;

use support::*;
use support_upgrade::WEBHOOK_NAME;

/// Awaits `fut`, failing the test if it takes longer than 30 s (a hung request).
async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 30s"))
}

async fn merge_patch(env: &Env, patch: &str) -> Run {
    bounded(
        &format!("kubectl patch {patch}"),
        env.try_patch_cluster("example", "merge", patch),
    )
    .await
}

async fn stored(env: &Env) -> String {
    env.jsonpath(
        &["PravegaCluster", "example"],
        "{.spec.version} paused={.spec.upgrade.paused}",
    )
    .await
}

/// The error kubectl prints when the API server cannot call the webhook.
fn assert_webhook_unreachable(what: &str, ok: bool, out: &str, err: &str) {
    assert!(!ok, "{what} went through without the webhook: {out}");
    let expected = format!(
        "Error from server (InternalError): Internal error occurred: failed calling webhook \"{WEBHOOK_NAME}\": failed to call webhook: Post \"https://pravega-webhook.pravega-system.svc:443/validate?timeout=5s\": dial tcp 127.0.0.1:"
    );
    assert!(
        err.contains(&expected) && err.contains("connect: connection refused"),
        "{what}: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_emergency_pause_goes_through_while_the_webhook_is_down() {
    let env = Env::start().await;
    let webhook = Webhook::start(&env.sandbox, &env.client, &webhook_bin()).await;
    let registered = env
        .jsonpath(
            &["validatingwebhookconfiguration", "pravega-webhook"],
            "{.webhooks[0].failurePolicy} {.webhooks[0].matchConditions[*].name}",
        )
        .await;
    assert_eq!(registered, "Fail not-an-emergency-pause");

    env.apply_yaml(TIER2_CLAIM).await;
    let sample = workspace_file("deploy/sample/pravegacluster.yaml");
    env.kubectl_ok(&["create", "-f", sample.to_str().expect("utf-8 path")])
        .await;
    assert_eq!(stored(&env).await, "0.4.0 paused=false");

    webhook.stop().await;

    // A version change needs the webhook: refused, nothing stored.
    let Run {
        ok,
        stdout: out,
        stderr: err,
    } = bounded(
        "kubectl patch spec.version",
        env.try_patch_cluster(
            "example",
            "json",
            r#"[{"op": "replace", "path": "/spec/version", "value": "0.5.0"}]"#,
        ),
    )
    .await;
    assert_webhook_unreachable("the version change", ok, &out, &err);
    assert_eq!(stored(&env).await, "0.4.0 paused=false");

    // The brake does not.
    let Run {
        ok,
        stdout: out,
        stderr: err,
    } = merge_patch(&env, r#"{"spec":{"upgrade":{"paused":true}}}"#).await;
    assert!(ok, "the pause was refused: {err}");
    assert_eq!(
        out.trim(),
        "pravegacluster.pravega.pravega.io/example patched"
    );
    assert_eq!(stored(&env).await, "0.4.0 paused=true");

    // Paused or not, a version change is judged; so is letting go of the brake.
    let Run {
        ok,
        stdout: out,
        stderr: err,
    } = merge_patch(
        &env,
        r#"{"spec":{"version":"0.5.0","upgrade":{"paused":true}}}"#,
    )
    .await;
    assert_webhook_unreachable("the paused version change", ok, &out, &err);
    let Run {
        ok,
        stdout: out,
        stderr: err,
    } = merge_patch(&env, r#"{"spec":{"upgrade":{"paused":false}}}"#).await;
    assert_webhook_unreachable("resuming", ok, &out, &err);
    assert_eq!(stored(&env).await, "0.4.0 paused=true");

    env.shutdown().await;
}
