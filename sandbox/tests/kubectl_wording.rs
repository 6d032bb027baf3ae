//! What kubectl prints is what it prints against a real API server: a patch that changes
//! nothing is `patched (no change)` (the server answers with the unchanged object, same
//! `resourceVersion`), and an unknown field under kubectl's default strict validation is the
//! server's strict decoding error.

use pravega_sandbox::testing::blocking::*;

const NS: &str = "wording";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: wording
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox:1.36
";

fn rv(sb: &pravega_sandbox::Sandbox, what: &[&str]) -> String {
    let mut args = vec!["-n", NS, "get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "jsonpath={.metadata.resourceVersion}"]);
    kubectl_ok(sb, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_that_changes_nothing_is_patched_no_change() {
    let sb = sandbox().await;
    install_crd(&sb, NS);
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], DEPLOYMENT);
    let before = rv(&sb, &["deployment", "web"]);

    for (kind, patch) in [
        ("--type=strategic", r#"{"spec":{"replicas":1}}"#),
        ("--type=merge", r#"{"spec":{"replicas":1}}"#),
        (
            "--type=json",
            r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
        ),
    ] {
        let out = kubectl_ok(
            &sb,
            &["-n", NS, "patch", "deployment", "web", kind, "-p", patch],
        );
        assert_eq!(out, "deployment.apps/web patched (no change)\n", "{kind}");
    }
    // The server answered with the stored object: same resourceVersion.
    let out = kubectl_ok(
        &sb,
        &[
            "-n",
            NS,
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"replicas":1}}"#,
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    assert_eq!(out, before);
    assert_eq!(rv(&sb, &["deployment", "web"]), before);
    // A change is `patched`, with a new resourceVersion.
    let out = patch_ok(
        &sb,
        NS,
        ["deployment", "web"],
        "strategic",
        r#"{"spec":{"replicas":2}}"#,
    );
    assert_eq!(out, "deployment.apps/web patched\n");
    assert_ne!(rv(&sb, &["deployment", "web"]), before);

    // The same for a custom resource and its status subresource.
    let sample = workspace_root().join("deploy/sample/pravegacluster.yaml");
    kubectl_ok(&sb, &["-n", NS, "apply", "-f", sample.to_str().unwrap()]);
    let version = jsonpath(&sb, NS, &["pk", "example"], "{.spec.version}");
    let out = kubectl_ok(
        &sb,
        &[
            "-n",
            NS,
            "patch",
            "pravegacluster",
            "example",
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"version":"{version}"}}}}"#),
        ],
    );
    assert_eq!(
        out,
        "pravegacluster.pravega.pravega.io/example patched (no change)\n"
    );
    patch_status(&sb, NS, "pk", "example", r#"{"status":{"replicas":7}}"#);
    let out = patch_status(&sb, NS, "pk", "example", r#"{"status":{"replicas":7}}"#);
    assert_eq!(
        out,
        "pravegacluster.pravega.pravega.io/example patched (no change)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_fields_are_the_servers_strict_decoding_error() {
    let sb = sandbox().await;
    kubectl_ok(&sb, &["create", "namespace", NS]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deployment.yaml");
    std::fs::write(
        &file,
        DEPLOYMENT.replace("  replicas: 1\n", "  replica: 3\n"),
    )
    .expect("write");
    let path = file.to_str().expect("utf-8 path");
    let r = kubectl(&sb, &["apply", "-f", path]);
    assert!(!r.ok);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (BadRequest): error when creating \"{path}\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\"\n"
        )
    );
    // Several unknown fields are listed in the order of the document kubectl sends (keys
    // sorted, depth first).
    std::fs::write(
        &file,
        DEPLOYMENT
            .replace("  replicas: 1\n", "  replica: 3\n")
            .replace(
                "        image: busybox:1.36\n",
                "        image: busybox:1.36\n        imagePullPolcy: Always\n",
            ),
    )
    .expect("write");
    let r = kubectl(&sb, &["apply", "-f", path]);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (BadRequest): error when creating \"{path}\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\", unknown field \"spec.template.spec.containers[0].imagePullPolcy\"\n"
        )
    );
    // --validate=false (fieldValidation=Ignore) drops them; --validate=warn warns.
    let r = kubectl(&sb, &["apply", "--validate=warn", "-f", path]);
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr.contains("Warning: unknown field \"spec.replica\""),
        "{}",
        r.stderr
    );
}

/// Values the real API server refuses in a workload, which the sandbox used to store: a
/// resource quantity it cannot decode, and a pod-template label value over 63 characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workloads_with_undecodable_quantities_or_long_template_labels_are_refused() {
    let sb = sandbox().await;
    install_crd(&sb, NS);
    let banana = DEPLOYMENT.replace(
        "        image: busybox:1.36\n",
        "        image: busybox:1.36\n        resources:\n          limits: {cpu: banana}\n",
    );
    let r = kubectl_stdin(&sb, &["apply", "-f", "-"], &banana);
    assert!(!r.ok, "{}", r.stdout);
    assert!(
        r.stderr.contains("Deployment in version \"v1\" cannot be handled as a Deployment: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
        "{}",
        r.stderr
    );
    let long = "a".repeat(64);
    let labelled = DEPLOYMENT.replace(
        "      labels: {app: web}\n    spec:",
        &format!("      labels: {{app: web, version: {long}}}\n    spec:"),
    );
    let r = kubectl_stdin(&sb, &["apply", "-f", "-"], &labelled);
    assert!(!r.ok, "{}", r.stdout);
    assert!(
        r.stderr.contains(&format!(
            "spec.template.metadata.labels: Invalid value: \"{long}\": must be no more than 63 characters"
        )),
        "{}",
        r.stderr
    );
    // Nothing was stored.
    let r = kubectl(&sb, &["-n", NS, "get", "deployment", "web"]);
    assert!(!r.ok);
}
