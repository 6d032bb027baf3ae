//! The webhook stopped: what kubectl prints when the API server cannot call it, against the
//! troubleshooting entries of `README.md` and `deploy/README.md`. The webhook is installed on the
//! sandbox the way a cluster install does it (`deploy/base/validatingwebhookconfiguration.yaml`,
//! a `service` reference to `pravega-system/pravega-webhook`), then its process is stopped.

use std::path::Path;

use pravega_sandbox::testing::{
    Run, Webhook, kubectl, kubectl_ok, patch_version, sandbox, workspace_file,
};

const CLUSTER: &str = r#"apiVersion: pravega.pravega.io/v1beta1
kind: PravegaCluster
metadata:
  name: example
spec:
  version: VERSION
  zookeeperUri: zookeeper-client:2181
  bookkeeper:
    replicas: 3
  pravega:
    controllerReplicas: 1
    segmentStoreReplicas: 3
"#;

fn read(relative: &str) -> String {
    let path = workspace_file(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The message quoted in `deploy/README.md`, split around the address the API server dialled
/// (which differs from cluster to cluster): the text before `dial tcp ` and after the address.
fn deploy_readme_message() -> (String, String) {
    let readme = read("deploy/README.md");
    let line = readme
        .lines()
        .find(|l| {
            l.starts_with("Error from server (InternalError): Internal error occurred: failed calling webhook")
        })
        .expect("deploy/README.md quotes the message kubectl prints when the webhook is down");
    let (before, after) = line
        .split_once("dial tcp ")
        .expect("the quoted message names the address dialled");
    let (_, after) = after
        .split_once(": ")
        .expect("the quoted message says why the dial failed");
    (format!("{before}dial tcp "), format!(": {after}"))
}

/// The entry of `README.md`'s troubleshooting list: `failed calling webhook "...": ... connection
/// refused`, split around its `...`.
fn readme_entry() -> (String, String) {
    let readme = read("README.md");
    let start = readme
        .find("**`failed calling webhook \"")
        .expect("README.md has a troubleshooting entry for the webhook being down");
    let entry = &readme[start + 3..];
    let entry = &entry[..entry.find('`').expect("a code span")];
    let (before, after) = entry.split_once(" ... ").expect("abbreviated with ...");
    (before.to_owned(), after.to_owned())
}

/// Asserts that `stderr` has a line with `prefix`, then the text before the address, an
/// `ip:port`, and the text after it, as quoted in the READMEs.
fn assert_quoted(what: &str, stderr: &str, prefix: &str) {
    let (before, after) = deploy_readme_message();
    let before = before
        .strip_prefix("Error from server (InternalError): ")
        .expect("quoted as kubectl prints it");
    let line = stderr
        .lines()
        .find(|l| l.contains("failed calling webhook"))
        .unwrap_or_else(|| panic!("{what}: no webhook error in {stderr:?}"));
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{what}: {line:?} does not start with {prefix:?}"));
    let rest = rest
        .strip_prefix(before)
        .unwrap_or_else(|| panic!("{what}: {line:?} differs from deploy/README.md: {before:?}"));
    let (address, tail) = rest
        .split_once(": ")
        .unwrap_or_else(|| panic!("{what}: no address in {line:?}"));
    assert!(
        address.parse::<std::net::SocketAddr>().is_ok(),
        "{what}: {address:?} is not an address ({line:?})"
    );
    assert_eq!(format!(": {tail}"), after, "{what}: {line:?}");

    let (entry_before, entry_after) = readme_entry();
    let at = line
        .find(&entry_before)
        .unwrap_or_else(|| panic!("{what}: README.md's {entry_before:?} is not in {line:?}"));
    assert!(
        line[at..].ends_with(&entry_after),
        "{what}: README.md's {entry_after:?} does not end {line:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_the_readme_message_when_the_webhook_is_down() {
    let sandbox = sandbox().await;
    let client = sandbox.client().await.expect("client");
    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
    let dir = tempfile::tempdir().expect("temp dir");

    let crd = dir.path().join("crd.json");
    std::fs::write(
        &crd,
        serde_json::to_vec(&pravega_crds::crd()).expect("the CRD renders"),
    )
    .expect("write the CRD");
    kubectl_ok(&kubeconfig, &["apply", "-f", &crd.to_string_lossy()]).await;
    kubectl_ok(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "crd/pravegaclusters.pravega.pravega.io",
            "--timeout=10s",
        ],
    )
    .await;

    let mut webhook = Webhook::start(
        &sandbox,
        &client,
        Path::new(env!("CARGO_BIN_EXE_pravega-webhook")),
    )
    .await;

    let manifest = dir.path().join("pravega.yaml");
    let file = manifest.to_string_lossy().into_owned();
    std::fs::write(&manifest, CLUSTER.replace("VERSION", "0.4.0")).expect("write the cluster");
    kubectl_ok(&kubeconfig, &["apply", "-f", &file]).await;
    // The webhook judges while it runs.
    let Run {
        ok, stderr: denied, ..
    } = patch_version(&kubeconfig, "example", "v0.5.0").await;
    assert!(!ok && denied.contains("denied the request"), "{denied}");

    // The webhook stops.
    webhook
        .process
        .child
        .kill()
        .await
        .expect("the webhook is stopped");

    let Run {
        ok,
        stderr: patched,
        ..
    } = patch_version(&kubeconfig, "example", "0.5.0").await;
    assert!(!ok, "the patch went through without the webhook");
    assert_quoted(
        "kubectl patch",
        &patched,
        "Error from server (InternalError): ",
    );

    std::fs::write(&manifest, CLUSTER.replace("VERSION", "0.5.0")).expect("write the cluster");
    let Run {
        ok,
        stderr: applied,
        ..
    } = kubectl(&kubeconfig, &["apply", "-f", &file]).await;
    assert!(!ok, "the apply went through without the webhook");
    assert!(
        applied.starts_with("Error from server (InternalError): error when applying patch:"),
        "{applied}"
    );
    assert_quoted(
        "kubectl apply",
        &applied,
        &format!("for: \"{file}\": error when patching \"{file}\": "),
    );

    // Nothing changed.
    let version = kubectl_ok(
        &kubeconfig,
        &[
            "get",
            "PravegaCluster",
            "example",
            "-o",
            "jsonpath={.spec.version}",
        ],
    )
    .await;
    assert_eq!(version, "0.4.0");
}
