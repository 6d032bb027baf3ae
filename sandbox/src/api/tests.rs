//! Object semantics through `Core`, without HTTP.

use super::*;
use crate::util::meta_str;

fn info(core: &Core, group: &str, plural: &str) -> ResourceInfo {
    core.resolve(group, "v1", plural).expect("served")
}

async fn create(core: &Arc<Core>, plural: &str, ns: &str, obj: Value) -> Value {
    let i = info(core, "", plural);
    core.create(&i, ns, obj, &WriteOpts::default())
        .await
        .expect("create")
        .object
}

fn exists(core: &Core, plural: &str, ns: &str, name: &str) -> bool {
    core.get(&info(core, "", plural), ns, name).is_ok()
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let core = Core::new(100);
    let cms = info(&core, "", "configmaps");
    create(
        &core,
        "configmaps",
        "default",
        json!({"metadata": {"name": "a", "finalizers": ["x/y"]}}),
    )
    .await;
    let out = core
        .delete(&cms, "default", "a", &DeleteOpts::default())
        .await
        .expect("delete");
    assert!(meta_str(&out.object, "deletionTimestamp").is_some());
    assert!(exists(&core, "configmaps", "default", "a"));
    let cur = core.get(&cms, "default", "a").expect("get");
    let mut next = cur.clone();
    next["metadata"]["finalizers"] = json!([]);
    core.update(&cms, "default", "a", None, next, &WriteOpts::default())
        .await
        .expect("update");
    assert!(!exists(&core, "configmaps", "default", "a"));
}

#[tokio::test]
async fn owners_cascade_orphan_and_foreground() {
    let core = Core::new(100);
    let cms = info(&core, "", "configmaps");
    let owner = create(
        &core,
        "configmaps",
        "default",
        json!({"metadata": {"name": "owner"}}),
    )
    .await;
    let uid = meta_str(&owner, "uid").expect("uid").to_string();
    let dep = |name: &str| json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}});
    create(&core, "configmaps", "default", dep("d1")).await;
    core.delete(&cms, "default", "owner", &DeleteOpts::default())
        .await
        .expect("delete");
    assert!(
        !exists(&core, "configmaps", "default", "d1"),
        "background GC"
    );

    let owner = create(
        &core,
        "configmaps",
        "default",
        json!({"metadata": {"name": "owner"}}),
    )
    .await;
    let uid = meta_str(&owner, "uid").expect("uid").to_string();
    let dep = |name: &str| json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}});
    create(&core, "configmaps", "default", dep("d2")).await;
    let orphan = DeleteOpts {
        propagation: Some("Orphan".into()),
        ..DeleteOpts::default()
    };
    core.delete(&cms, "default", "owner", &orphan)
        .await
        .expect("delete");
    let d2 = core
        .get(&cms, "default", "d2")
        .expect("orphaned dependent stays");
    assert_eq!(d2["metadata"]["ownerReferences"], json!([]));

    let owner = create(
        &core,
        "configmaps",
        "default",
        json!({"metadata": {"name": "owner"}}),
    )
    .await;
    let uid = meta_str(&owner, "uid").expect("uid").to_string();
    create(&core, "configmaps", "default", json!({"metadata": {"name": "d3", "finalizers": ["hold"], "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})).await;
    let fg = DeleteOpts {
        propagation: Some("Foreground".into()),
        ..DeleteOpts::default()
    };
    core.delete(&cms, "default", "owner", &fg)
        .await
        .expect("delete");
    let o = core
        .get(&cms, "default", "owner")
        .expect("owner waits for its dependents");
    assert_eq!(o["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    let mut d3 = core.get(&cms, "default", "d3").expect("d3");
    d3["metadata"]["finalizers"] = json!([]);
    core.update(&cms, "default", "d3", None, d3, &WriteOpts::default())
        .await
        .expect("release");
    assert!(!exists(&core, "configmaps", "default", "d3"));
    assert!(
        !exists(&core, "configmaps", "default", "owner"),
        "owner goes after its dependents"
    );
}

#[tokio::test]
async fn namespace_deletion_waits_for_finalizers() {
    let core = Core::new(100);
    let nss = info(&core, "", "namespaces");
    let cms = info(&core, "", "configmaps");
    create(
        &core,
        "namespaces",
        "",
        json!({"metadata": {"name": "team"}}),
    )
    .await;
    create(
        &core,
        "configmaps",
        "team",
        json!({"metadata": {"name": "plain"}}),
    )
    .await;
    create(
        &core,
        "configmaps",
        "team",
        json!({"metadata": {"name": "held", "finalizers": ["x/y"]}}),
    )
    .await;
    core.delete(&nss, "", "team", &DeleteOpts::default())
        .await
        .expect("delete");
    assert!(!exists(&core, "configmaps", "team", "plain"));
    let ns = core.get(&nss, "", "team").expect("terminating");
    assert_eq!(ns["status"]["phase"], "Terminating");
    let err = core
        .create(
            &cms,
            "team",
            json!({"metadata": {"name": "new"}}),
            &WriteOpts::default(),
        )
        .await
        .expect_err("no new content");
    assert_eq!(err.code, 403);
    let mut held = core.get(&cms, "team", "held").expect("held");
    held["metadata"]["finalizers"] = json!([]);
    core.update(&cms, "team", "held", None, held, &WriteOpts::default())
        .await
        .expect("release");
    assert!(!exists(&core, "namespaces", "", "team"));
}

#[tokio::test]
async fn scheduled_pods_terminate_for_their_grace_period() {
    let core = Core::new(100);
    let pods = info(&core, "", "pods");
    create(&core, "pods", "default", json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": "x:1"}]}})).await;
    let out = core
        .delete(&pods, "default", "p", &DeleteOpts::default())
        .await
        .expect("delete");
    assert_eq!(out.object["metadata"]["deletionGracePeriodSeconds"], 1);
    assert!(exists(&core, "pods", "default", "p"));
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert!(
        !exists(&core, "pods", "default", "p"),
        "removed when the grace period ends"
    );
    // Unscheduled pods go at once.
    create(
        &core,
        "pods",
        "default",
        json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}),
    )
    .await;
    core.delete(&pods, "default", "q", &DeleteOpts::default())
        .await
        .expect("delete");
    assert!(!exists(&core, "pods", "default", "q"));
}

#[tokio::test]
async fn generation_and_noop_updates() {
    let core = Core::new(100);
    let deps = core.resolve("apps", "v1", "deployments").expect("served");
    let d = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}});
    let made = core
        .create(&deps, "default", d, &WriteOpts::default())
        .await
        .expect("create")
        .object;
    let rv = meta_str(&made, "resourceVersion").map(str::to_string);
    let same = core
        .update(
            &deps,
            "default",
            "d",
            None,
            made.clone(),
            &WriteOpts::default(),
        )
        .await
        .expect("noop")
        .object;
    assert_eq!(
        meta_str(&same, "resourceVersion").map(str::to_string),
        rv,
        "no-op keeps the version"
    );
    let mut changed = same.clone();
    changed["spec"]["replicas"] = json!(3);
    let next = core
        .update(&deps, "default", "d", None, changed, &WriteOpts::default())
        .await
        .expect("update")
        .object;
    assert_eq!(next["metadata"]["generation"], 2);
    let mut bad = next.clone();
    bad["spec"]["selector"] = json!({"matchLabels": {"a": "c"}});
    let err = core
        .update(&deps, "default", "d", None, bad, &WriteOpts::default())
        .await
        .expect_err("immutable");
    assert_eq!(err.code, 422);
}

/// A CRD served as v1beta1 (storage, status subresource, `color` defaults to blue) and
/// v1alpha1 (no subresource, `color` defaults to red, `size` may be 0), and v1 not served.
fn widget_crd() -> Value {
    let schema = |min: i64, color: &str| {
        json!({"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "minimum": min},
                "color": {"type": "string", "default": color}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}})
    };
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.demo.pravega.io"},
        "spec": {"group": "demo.pravega.io", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {"name": "v1alpha1", "served": true, "storage": false, "schema": schema(0, "red")},
                {"name": "v1beta1", "served": true, "storage": true, "schema": schema(1, "blue"),
                    "subresources": {"status": {}}},
                {"name": "v1", "served": false, "storage": false, "schema": schema(1, "green")}]}})
}

async fn install_widgets(core: &Arc<Core>) {
    let crds = core
        .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("served");
    let made = core
        .create(&crds, "", widget_crd(), &WriteOpts::default())
        .await
        .expect("crd")
        .object;
    assert_eq!(made["status"]["storedVersions"], json!(["v1beta1"]));
}

#[tokio::test]
async fn crd_versions_share_objects_stored_in_the_storage_version() {
    let core = Core::new(100);
    install_widgets(&core).await;
    let alpha = core
        .resolve("demo.pravega.io", "v1alpha1", "widgets")
        .expect("v1alpha1 served");
    let beta = core
        .resolve("demo.pravega.io", "v1beta1", "widgets")
        .expect("v1beta1 served");
    assert!(core.resolve("demo.pravega.io", "v1", "widgets").is_none());
    // Discovery prefers the storage version.
    let groups = core.lock().registry.groups();
    let (_, versions) = groups
        .iter()
        .find(|(g, _)| g == "demo.pravega.io")
        .expect("group");
    assert_eq!(versions, &["v1beta1", "v1alpha1"]);

    // Written through v1alpha1: its schema (red default), stored as v1beta1.
    let made = core
        .create(
            &alpha,
            "default",
            json!({"apiVersion": "demo.pravega.io/v1alpha1", "kind": "Widget",
                "metadata": {"name": "w"}, "spec": {"size": 2}}),
            &WriteOpts::default(),
        )
        .await
        .expect("create")
        .object;
    assert_eq!(made["apiVersion"], "demo.pravega.io/v1alpha1");
    assert_eq!(made["spec"], json!({"size": 2, "color": "red"}));
    let stored = core
        .lock()
        .objects
        .get(&key(&beta, "default", "w"))
        .cloned()
        .expect("stored once");
    assert_eq!(stored["apiVersion"], "demo.pravega.io/v1beta1");
    let through_beta = core.get(&beta, "default", "w").expect("get");
    assert_eq!(through_beta["apiVersion"], "demo.pravega.io/v1beta1");
    assert_eq!(through_beta["spec"], made["spec"]);

    // The same object written back through either version is a no-op.
    let rv = meta_str(&made, "resourceVersion").map(str::to_string);
    for (info, obj) in [(&alpha, made.clone()), (&beta, through_beta.clone())] {
        let same = core
            .update(info, "default", "w", None, obj, &WriteOpts::default())
            .await
            .expect("noop")
            .object;
        assert_eq!(meta_str(&same, "resourceVersion").map(str::to_string), rv);
        assert_eq!(same["apiVersion"], info.api_version());
    }
    // Each version validates with its own schema: size 0 is valid in v1alpha1 only.
    let zero = |info: &ResourceInfo| {
        json!({"apiVersion": info.api_version(), "kind": "Widget",
            "metadata": {"name": "zero"}, "spec": {"size": 0}})
    };
    let err = core
        .create(&beta, "default", zero(&beta), &WriteOpts::default())
        .await
        .expect_err("minimum 1");
    assert_eq!(err.code, 422);
    core.create(&alpha, "default", zero(&alpha), &WriteOpts::default())
        .await
        .expect("minimum 0");
    // The body's apiVersion must be the request's.
    let err = core
        .update(
            &alpha,
            "default",
            "w",
            None,
            through_beta.clone(),
            &WriteOpts::default(),
        )
        .await
        .expect_err("v1beta1 body on the v1alpha1 endpoint");
    assert_eq!(err.code, 400);

    // Subresources are per version: v1alpha1 has no status subresource, so its main
    // resource writes status; v1beta1 keeps status on main-resource writes.
    assert!(beta.status && !alpha.status);
    let mut with_status = core.get(&alpha, "default", "w").expect("get");
    with_status["status"] = json!({"ready": true});
    core.update(
        &alpha,
        "default",
        "w",
        None,
        with_status,
        &WriteOpts::default(),
    )
    .await
    .expect("update");
    let mut cleared = core.get(&beta, "default", "w").expect("get");
    assert_eq!(cleared["status"], json!({"ready": true}));
    cleared["status"] = json!({"ready": false});
    let kept = core
        .update(&beta, "default", "w", None, cleared, &WriteOpts::default())
        .await
        .expect("update")
        .object;
    assert_eq!(kept["status"], json!({"ready": true}));

    // Deleting the CRD stops serving every version and removes the objects.
    let crds = core
        .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("served");
    core.delete(&crds, "", "widgets.demo.pravega.io", &DeleteOpts::default())
        .await
        .expect("delete crd");
    assert!(
        core.resolve("demo.pravega.io", "v1alpha1", "widgets")
            .is_none()
    );
    assert!(
        core.resolve("demo.pravega.io", "v1beta1", "widgets")
            .is_none()
    );
    assert!(
        !core
            .lock()
            .objects
            .contains_key(&key(&beta, "default", "w"))
    );
}

#[tokio::test]
async fn crd_versions_are_validated() {
    let core = Core::new(100);
    let crds = core
        .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("served");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut crd = widget_crd();
        f(&mut crd);
        crd
    };
    let cases: [(Value, &str); 4] = [
        (
            with(&|c| c["spec"]["conversion"] = json!({"strategy": "Webhook"})),
            "spec.conversion.strategy: Unsupported value: \"Webhook\"",
        ),
        (
            with(&|c| c["spec"]["versions"][0]["storage"] = json!(true)),
            "must have exactly one version marked as storage version",
        ),
        (
            with(&|c| c["spec"]["versions"][1]["storage"] = json!(false)),
            "must have exactly one version marked as storage version",
        ),
        (
            with(&|c| c["spec"]["versions"][2]["name"] = json!("v1alpha1")),
            "must contain unique version names",
        ),
    ];
    for (crd, message) in cases {
        let err = core
            .create(&crds, "", crd, &WriteOpts::default())
            .await
            .expect_err(message);
        assert_eq!(err.code, 422, "{}", err.message);
        assert!(err.message.contains(message), "{}", err.message);
    }
    // Changing the storage version keeps the previous one in storedVersions.
    install_widgets(&core).await;
    let mut crd = core.get(&crds, "", "widgets.demo.pravega.io").expect("get");
    crd["spec"]["versions"][0]["storage"] = json!(true);
    crd["spec"]["versions"][1]["storage"] = json!(false);
    let updated = core
        .update(
            &crds,
            "",
            "widgets.demo.pravega.io",
            None,
            crd,
            &WriteOpts::default(),
        )
        .await
        .expect("update")
        .object;
    assert_eq!(
        updated["status"]["storedVersions"],
        json!(["v1beta1", "v1alpha1"])
    );
    let groups = core.lock().registry.groups();
    assert!(
        groups
            .iter()
            .any(|(g, vs)| g == "demo.pravega.io" && vs == &["v1alpha1", "v1beta1"])
    );
}

#[tokio::test]
async fn delete_preconditions_are_worded_as_the_api_server_words_them() {
    let core = Core::new(100);
    let cms = info(&core, "", "configmaps");
    let made = create(
        &core,
        "configmaps",
        "default",
        json!({"metadata": {"name": "a"}}),
    )
    .await;
    let rv = meta_str(&made, "resourceVersion").expect("rv").to_string();
    let uid = meta_str(&made, "uid").expect("uid").to_string();
    let cases = [
        (
            DeleteOpts {
                uid: Some("other".into()),
                ..DeleteOpts::default()
            },
            format!("Precondition failed: UID in precondition: other, UID in object meta: {uid}"),
        ),
        (
            DeleteOpts {
                resource_version: Some("1".into()),
                ..DeleteOpts::default()
            },
            format!(
                "Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: {rv}"
            ),
        ),
    ];
    for (opts, why) in cases {
        let err = core
            .delete(&cms, "default", "a", &opts)
            .await
            .expect_err("precondition fails");
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            format!("Operation cannot be fulfilled on configmaps \"a\": {why}")
        );
    }
    assert!(exists(&core, "configmaps", "default", "a"));
}
