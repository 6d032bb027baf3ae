//! End-to-end: a CRD served in several versions (`conversion.strategy: None`), with the real
//! kubectl. Objects are stored once, in the storage version; every served version reads and
//! writes them, with `apiVersion` rewritten to the version of the request.

use pravega_sandbox::testing::blocking::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

const NS: &str = "demo";
const GROUP: &str = "demo.pravega.io";

/// v1alpha1 (served), v1beta1 (served, storage, status subresource) and v1 (not served), each
/// with its own printer columns. The storage version is not the first one listed. The two served
/// versions share their spec's schema and their common printer columns (YAML aliases, which
/// kubectl resolves).
const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.pravega.io
spec:
  group: demo.pravega.io
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1alpha1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: &spec
            type: object
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string}
    additionalPrinterColumns:
    - &size {name: Size, type: integer, jsonPath: .spec.size}
    - &age {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: *spec
          status:
            type: object
            properties:
              ready: {type: boolean}
    subresources:
      status: {}
    additionalPrinterColumns:
    - *size
    - {name: Color, type: string, jsonPath: .spec.color}
    - *age
  - name: v1
    served: false
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

/// An upstream-style manifest written against the older version.
const WIDGET_V1ALPHA1: &str = r#"apiVersion: demo.pravega.io/v1alpha1
kind: Widget
metadata:
  name: w1
  namespace: demo
spec:
  size: 3
  color: red
"#;

fn get_json(sb: &pravega_sandbox::Sandbox, resource: &str, name: &str) -> Value {
    let out = kubectl_get(sb, NS, &[resource, name, "-o", "json"]);
    serde_json::from_str(&out).expect("kubectl prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crd_served_in_several_versions_with_kubectl() {
    let sb = sandbox().await;
    kubectl_ok(&sb, &["create", "namespace", NS]);
    kubectl_stdin_ok(&sb, &["apply", "-f", "-"], CRD);
    kubectl_ok(
        &sb,
        &[
            "wait",
            "--for",
            "condition=established",
            "--timeout=10s",
            "crd/widgets.demo.pravega.io",
        ],
    );
    let crd = kubectl_ok(
        &sb,
        &[
            "get",
            "crd",
            "widgets.demo.pravega.io",
            "-o",
            "jsonpath={.status.storedVersions}",
        ],
    );
    assert_eq!(crd, r#"["v1beta1"]"#);

    // Discovery: both served versions, the storage version preferred; v1 is not served.
    let versions = kubectl_ok(&sb, &["api-versions"]);
    assert!(
        versions.contains("demo.pravega.io/v1alpha1\n"),
        "{versions}"
    );
    assert!(versions.contains("demo.pravega.io/v1beta1\n"), "{versions}");
    assert!(!versions.contains("demo.pravega.io/v1\n"), "{versions}");
    let group: Value =
        serde_json::from_str(&kubectl_ok(&sb, &["get", "--raw", "/apis/demo.pravega.io"])).unwrap();
    assert_eq!(group["preferredVersion"]["version"], "v1beta1");
    let openapi: Value =
        serde_json::from_str(&kubectl_ok(&sb, &["get", "--raw", "/openapi/v3"])).unwrap();
    for v in ["v1alpha1", "v1beta1"] {
        assert!(
            openapi["paths"][format!("apis/{GROUP}/{v}")].is_object(),
            "{openapi}"
        );
    }

    // An upstream-style manifest at v1alpha1 applies unchanged.
    let out = kubectl_stdin_ok(&sb, &["apply", "-f", "-"], WIDGET_V1ALPHA1);
    assert!(out.contains("widget.demo.pravega.io/w1 created"), "{out}");

    // The same object through either version; only apiVersion differs.
    let beta = get_json(&sb, "widgets.v1beta1.demo.pravega.io", "w1");
    let alpha = get_json(&sb, "widgets.v1alpha1.demo.pravega.io", "w1");
    assert_eq!(beta["apiVersion"], "demo.pravega.io/v1beta1");
    assert_eq!(alpha["apiVersion"], "demo.pravega.io/v1alpha1");
    assert_eq!(beta["spec"], serde_json::json!({"size": 3, "color": "red"}));
    assert_eq!(beta["spec"], alpha["spec"]);
    assert_eq!(beta["metadata"]["uid"], alpha["metadata"]["uid"]);
    assert_eq!(
        beta["metadata"]["resourceVersion"],
        alpha["metadata"]["resourceVersion"]
    );
    // Unqualified names use the preferred (storage) version.
    let preferred = jsonpath(&sb, NS, &["wd", "w1"], "{.apiVersion}");
    assert_eq!(preferred, "demo.pravega.io/v1beta1");

    // Lists and tables at each version, with that version's printer columns.
    let list: Value = serde_json::from_str(&kubectl_get(
        &sb,
        NS,
        &["widgets.v1alpha1.demo.pravega.io", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(list["items"][0]["apiVersion"], "demo.pravega.io/v1alpha1");
    let rows = table(&kubectl_get(&sb, NS, &["widgets.v1alpha1.demo.pravega.io"]));
    assert_eq!(rows[0], ["NAME", "SIZE", "AGE"]);
    assert_eq!(rows[1][..2], ["w1", "3"]);
    let rows = table(&kubectl_get(&sb, NS, &["widgets.v1beta1.demo.pravega.io"]));
    assert_eq!(rows[0], ["NAME", "SIZE", "COLOR", "AGE"]);
    assert_eq!(rows[1][..3], ["w1", "3", "red"]);

    // Applying the same v1alpha1 manifest again changes nothing.
    let again = kubectl_stdin_ok(&sb, &["apply", "-f", "-"], WIDGET_V1ALPHA1);
    assert!(
        again.contains("widget.demo.pravega.io/w1 unchanged"),
        "{again}"
    );
    let after = get_json(&sb, "widgets.v1beta1.demo.pravega.io", "w1");
    assert_eq!(
        after["metadata"]["resourceVersion"],
        beta["metadata"]["resourceVersion"]
    );

    // A watch through v1beta1 sees a change made through v1alpha1, at v1beta1.
    let mut child = spawn_kubectl(
        &sb,
        &[
            "-n",
            NS,
            "get",
            "widgets.v1beta1.demo.pravega.io",
            "w1",
            "-w",
            "-o",
            r#"jsonpath={.apiVersion} {.spec.size}{"\n"}"#,
        ],
    );
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the initial state");
    assert_eq!(first, "demo.pravega.io/v1beta1 3");
    patch_ok(
        &sb,
        NS,
        ["widgets.v1alpha1.demo.pravega.io", "w1"],
        "merge",
        r#"{"spec":{"size":5}}"#,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the change streams");
        if line == "demo.pravega.io/v1beta1 5" {
            break;
        }
        assert_eq!(line, "demo.pravega.io/v1beta1 3", "unexpected watch line");
    }
    let _ = child.kill();
    let _ = child.wait();

    // The status subresource exists at v1beta1 only.
    patch_status(
        &sb,
        NS,
        "widgets.v1beta1.demo.pravega.io",
        "w1",
        r#"{"status":{"ready":true}}"#,
    );
    let ready = jsonpath(
        &sb,
        NS,
        &["widgets.v1alpha1.demo.pravega.io", "w1"],
        "{.status.ready}",
    );
    assert_eq!(ready, "true");
    let no_status = kubectl(
        &sb,
        &[
            "get",
            "--raw",
            "/apis/demo.pravega.io/v1alpha1/namespaces/demo/widgets/w1/status",
        ],
    );
    assert!(
        !no_status.ok && no_status.stderr.contains("NotFound"),
        "{}",
        no_status.stderr
    );

    // A version with served: false is not served.
    let unserved = kubectl(
        &sb,
        &[
            "get",
            "--raw",
            "/apis/demo.pravega.io/v1/namespaces/demo/widgets",
        ],
    );
    assert!(
        !unserved.ok
            && unserved.stderr.contains(
                "Error from server (NotFound): the server could not find the requested resource"
            ),
        "{}",
        unserved.stderr
    );
    let unknown = kubectl(&sb, &["-n", NS, "get", "widgets.v1.demo.pravega.io"]);
    assert!(
        !unknown.ok
            && unknown
                .stderr
                .contains("the server doesn't have a resource type \"widgets\""),
        "{}",
        unknown.stderr
    );

    // Deleting the CRD stops serving every version.
    kubectl_ok(
        &sb,
        &["delete", "crd", "widgets.demo.pravega.io", "--timeout=10s"],
    );
    for v in ["v1alpha1", "v1beta1"] {
        let gone = kubectl(
            &sb,
            &[
                "get",
                "--raw",
                &format!("/apis/{GROUP}/{v}/namespaces/demo/widgets"),
            ],
        );
        assert!(
            !gone.ok && gone.stderr.contains("NotFound"),
            "{v}: {}",
            gone.stderr
        );
    }
}
