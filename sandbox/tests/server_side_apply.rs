//! End-to-end: server-side apply's field management with the real kubectl — managers in
//! `managedFields`, conflicts between them, removal of what an applier stops applying, and
//! list-map keys.

use pravega_sandbox::testing::blocking::*;

fn deployment(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
"
    )
}

fn managers(sb: &pravega_sandbox::Sandbox, what: &[&str]) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&[
        "-o",
        "jsonpath={range .metadata.managedFields[*]}{.manager}/{.operation}{\" \"}{end}",
    ]);
    kubectl_ok(sb, &args).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_conflicts_with_another_manager_until_forced() {
    let sb = pravega_sandbox::testing::sandbox().await;
    let out = kubectl_stdin_ok(&sb, &["apply", "--server-side", "-f", "-"], &deployment(2));
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    assert_eq!(managers(&sb, &["deploy", "web"]), "kubectl/Apply");

    // Another manager changes the replicas.
    kubectl_ok(
        &sb,
        &[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "--field-manager=other",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ],
    );
    assert_eq!(
        managers(&sb, &["deploy", "web"]),
        "kubectl/Apply other/Update"
    );

    // Applying another value is a conflict, as kubectl prints it.
    let r = kubectl_stdin(&sb, &["apply", "--server-side", "-f", "-"], &deployment(3));
    assert!(!r.ok);
    assert!(
        r.stderr.contains(
            r#"Apply failed with 1 conflict: conflict with "other" using apps/v1: .spec.replicas"#
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("Please review the fields above--they currently have other managers")
            && r.stderr.contains("--force-conflicts"),
        "{}",
        r.stderr
    );
    assert_eq!(
        jsonpath(&sb, "default", &["deploy", "web"], "{.spec.replicas}"),
        "5"
    );

    // The same value is no conflict: both own it.
    kubectl_stdin_ok(&sb, &["apply", "--server-side", "-f", "-"], &deployment(5));
    let yaml = kubectl_ok(
        &sb,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "yaml",
            "--show-managed-fields",
        ],
    );
    assert!(
        yaml.contains("manager: kubectl\n") && yaml.contains("operation: Apply"),
        "{yaml}"
    );
    assert!(
        yaml.contains("manager: other\n") && yaml.contains("operation: Update"),
        "{yaml}"
    );
    assert!(yaml.contains("fieldsType: FieldsV1"), "{yaml}");
    assert!(
        yaml.contains(r#"k:{"containerPort":80,"protocol":"TCP"}"#),
        "{yaml}"
    );
    // kubectl hides them unless asked.
    let plain = kubectl_ok(&sb, &["get", "deploy", "web", "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");

    // Forced, the applier takes the field: `other` owned nothing else and is gone.
    let out = kubectl_stdin_ok(
        &sb,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &deployment(3),
    );
    assert!(out.contains("serverside-applied"), "{out}");
    assert_eq!(
        jsonpath(&sb, "default", &["deploy", "web"], "{.spec.replicas}"),
        "3"
    );
    assert_eq!(managers(&sb, &["deploy", "web"]), "kubectl/Apply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_removes_what_it_stopped_applying_unless_another_manager_owns_it() {
    let sb = pravega_sandbox::testing::sandbox().await;
    let cm = |labels: &str, data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n  namespace: default\n  labels: {{{labels}}}\ndata: {{{data}}}\n"
        )
    };
    kubectl_stdin_ok(
        &sb,
        &["apply", "--server-side", "-f", "-"],
        &cm("a: '1', b: '2'", "x: '1', y: '2'"),
    );
    // A second applier applies label b with the same value: both own it.
    kubectl_stdin_ok(
        &sb,
        &[
            "apply",
            "--server-side",
            "--field-manager=second",
            "-f",
            "-",
        ],
        &cm("b: '2'", ""),
    );
    // The first stops applying label b and key y.
    kubectl_stdin_ok(
        &sb,
        &["apply", "--server-side", "-f", "-"],
        &cm("a: '1'", "x: '1'"),
    );
    assert_eq!(
        jsonpath(&sb, "default", &["cm", "s"], "{.metadata.labels}"),
        r#"{"a":"1","b":"2"}"#
    );
    assert_eq!(
        jsonpath(&sb, "default", &["cm", "s"], "{.data}"),
        r#"{"x":"1"}"#
    );
    // When the second stops too (it applies no labels and no data), label b goes.
    kubectl_stdin_ok(
        &sb,
        &[
            "apply",
            "--server-side",
            "--field-manager=second",
            "-f",
            "-",
        ],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n  namespace: default\n",
    );
    assert_eq!(
        jsonpath(&sb, "default", &["cm", "s"], "{.metadata.labels}"),
        r#"{"a":"1"}"#
    );
    assert_eq!(managers(&sb, &["cm", "s"]), "kubectl/Apply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_list_map_key_is_refused_with_the_servers_message() {
    let sb = pravega_sandbox::testing::sandbox().await;
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\nspec:\n  containers:\n  - image: nginx\n";
    let r = kubectl_stdin(&sb, &["apply", "--server-side", "-f", "-"], pod);
    assert!(!r.ok);
    assert!(
        r.stderr.contains(
            r#"Error from server: failed to create typed patch object (default/p; /v1, Kind=Pod): .spec.containers: element 0: associative list with keys has an element that omits key field "name" (and doesn't have default value)"#
        ),
        "{}",
        r.stderr
    );
    let r = kubectl(&sb, &["get", "pod", "p"]);
    assert!(!r.ok, "nothing was created");
    // A port without `protocol` is keyed by its default, TCP.
    let ok = pod.replace(
        "  - image: nginx\n",
        "  - name: c\n    image: nginx\n    ports:\n    - containerPort: 80\n",
    );
    kubectl_stdin_ok(&sb, &["apply", "--server-side", "-f", "-"], &ok);
    assert_eq!(
        jsonpath(
            &sb,
            "default",
            &["pod", "p"],
            "{.spec.containers[0].ports[0].protocol}"
        ),
        "TCP"
    );
}
