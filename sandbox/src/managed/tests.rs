use super::*;

fn deployments() -> Types<'static> {
    Types::builtin("deployments")
}

#[test]
fn fields_v1_round_trips() {
    let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}});
    let set = FieldSet::from_fields_v1(&v);
    assert_eq!(set.to_fields_v1(), v);
    let paths: Vec<String> = set.paths().iter().map(|p| path_display(p)).collect();
    assert_eq!(
        paths,
        [
            ".metadata.labels",
            ".metadata.labels.app",
            ".spec.template.spec.containers[name=\"web\"]",
            ".spec.template.spec.containers[name=\"web\"].image",
            ".spec.template.spec.containers[name=\"web\"].name",
        ]
    );
}

#[test]
fn applied_set_keys_associative_lists_and_strips_server_fields() {
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx",
                "ports": [{"containerPort": 80}], "args": ["a", "b"]}]}}},
        "status": {"replicas": 5}});
    let set = applied_set(&config, &deployments(), Scope::WithoutStatus).unwrap();
    assert_eq!(
        set.to_fields_v1(),
        json!({"f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {},
                    "f:args": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})
    );
}

#[test]
fn a_missing_list_map_key_is_refused_with_the_servers_message() {
    let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"image": "nginx"}, {"name": "b", "image": "x", "env": [{"value": "1"}]}]}});
    let errors = applied_set(&config, &Types::builtin("pods"), Scope::WithoutStatus).unwrap_err();
    assert_eq!(
        errors,
        [
            ".spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)",
            ".spec.containers[name=\"b\"].env: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)",
        ]
    );
}

#[test]
fn custom_resources_use_the_schema_markers() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
            "items": {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "integer"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "plain": {"type": "array", "items": {"type": "object"}}}}}});
    let types = Types::custom("things", Some(&schema));
    let config =
        json!({"spec": {"items": [{"id": "a", "v": 1}], "tags": ["x"], "plain": [{"k": 1}]}});
    let set = applied_set(&config, &types, Scope::Whole).unwrap();
    assert_eq!(
        set.to_fields_v1(),
        json!({"f:spec": {"f:items": {"k:{\"id\":\"a\"}": {".": {}, "f:id": {}, "f:v": {}}},
            "f:plain": {}, "f:tags": {"v:\"x\"": {}}}})
    );
    let bad = json!({"spec": {"items": [{"v": 1}]}});
    assert!(applied_set(&bad, &types, Scope::Whole).is_err());
    // Without a schema every list is atomic, so nothing is required.
    let loose = Types::custom("things", None);
    assert!(applied_set(&bad, &loose, Scope::Whole).is_ok());
}

#[test]
fn merge_merges_keyed_items_and_replaces_atomic_lists() {
    let mut live = json!({"metadata": {"name": "d", "labels": {"a": "1"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x:1", "imagePullPolicy": "IfNotPresent", "args": ["1"]},
            {"name": "b", "image": "y:1"}]}}}});
    let config = json!({"metadata": {"labels": {"b": "2"}},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:2", "args": ["2"]}, {"name": "c", "image": "z"}]}}}});
    merge(&mut live, &config, &deployments(), Scope::Whole);
    assert_eq!(live["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "x:2", "imagePullPolicy": "IfNotPresent", "args": ["2"]},
            {"name": "b", "image": "y:1"}, {"name": "c", "image": "z"}])
    );
}

#[test]
fn prune_removes_what_only_the_applier_owned() {
    let types = deployments();
    let last = applied_set(
        &json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}}),
        &types,
        Scope::Whole,
    )
    .unwrap();
    let now = applied_set(
        &json!({"metadata": {"labels": {"a": "1"}},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}),
        &types,
        Scope::Whole,
    )
    .unwrap();
    // Another manager owns label b.
    let other = FieldSet::from_fields_v1(&json!({"f:metadata": {"f:labels": {"f:b": {}}}}));
    let mut keep = now.clone();
    keep.union(&other);
    let mut obj = json!({"metadata": {"name": "d", "labels": {"a": "1", "b": "2"}},
        "spec": {"replicas": 3, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "Always"},
                {"name": "b", "image": "y", "imagePullPolicy": "Always"}]}}}});
    prune(&mut obj, &last, &keep, &types);
    assert_eq!(
        obj,
        json!({"metadata": {"name": "d", "labels": {"a": "1", "b": "2"}},
            "spec": {"replicas": 3,
                "template": {"spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "Always"}]}}}})
    );
}

#[test]
fn compare_reports_changed_added_and_removed_fields() {
    let types = deployments();
    let old = json!({"metadata": {"name": "d", "resourceVersion": "1", "labels": {"a": "1", "gone": "x"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}},
        "status": {"replicas": 1}});
    let new = json!({"metadata": {"name": "d", "resourceVersion": "2", "labels": {"a": "1", "new": "y"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}},
        "status": {"replicas": 2}});
    let c = compare(&old, &new, &types, Scope::WithoutStatus);
    assert_eq!(
        c.changed.to_fields_v1(),
        json!({"f:metadata": {"f:labels": {"f:new": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"b\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
    assert_eq!(
        c.removed.to_fields_v1(),
        json!({"f:metadata": {"f:labels": {"f:gone": {}}}})
    );
    assert!(compare(&old, &old, &types, Scope::Whole).is_empty());
}

fn entry(manager: &str, op: &str, fields: Value) -> Entry {
    Entry {
        manager: manager.into(),
        operation: op.into(),
        api_version: "apps/v1".into(),
        time: Some("2024-01-01T00:00:00Z".into()),
        subresource: String::new(),
        fields: FieldSet::from_fields_v1(&fields),
    }
}

#[test]
fn apply_conflicts_with_other_owners_unless_forced() {
    let types = deployments();
    let live = json!({"spec": {"replicas": 5, "paused": false}});
    let mut entries = vec![
        entry("ops", "Apply", json!({"f:spec": {"f:replicas": {}}})),
        entry(
            "kubectl-edit",
            "Update",
            json!({"f:spec": {"f:replicas": {}, "f:paused": {}}}),
        ),
    ];
    let config = json!({"spec": {"replicas": 3, "paused": false}});
    let applied = applied_set(&config, &types, Scope::Whole).unwrap();
    let mut next = live.clone();
    merge(&mut next, &config, &types, Scope::Whole);
    let changes = compare(&live, &next, &types, Scope::Whole);
    let conflicts = record_apply(
        &mut entries.clone(),
        &changes,
        applied.clone(),
        "mine",
        "apps/v1",
        "",
        false,
        "now",
    )
    .unwrap_err();
    assert_eq!(
        conflicts,
        [
            Conflict {
                manager: "\"kubectl-edit\" using apps/v1".into(),
                field: ".spec.replicas".into()
            },
            Conflict {
                manager: "\"ops\"".into(),
                field: ".spec.replicas".into()
            },
        ]
    );
    let e = conflict_error(&conflicts);
    assert_eq!(
        e.message,
        "Apply failed with 2 conflicts: conflicts with \"kubectl-edit\" using apps/v1:\n- .spec.replicas\nconflicts with \"ops\":\n- .spec.replicas"
    );
    assert_eq!(e.code, 409);
    assert_eq!(
        e.details.unwrap()["causes"][0],
        json!({"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-edit\" using apps/v1", "field": ".spec.replicas"})
    );
    // Forced: the applier takes `replicas`; `paused` (same value) is shared.
    record_apply(
        &mut entries,
        &changes,
        applied,
        "mine",
        "apps/v1",
        "",
        true,
        "now",
    )
    .unwrap();
    encode(&mut next, entries);
    let got = decode(&next);
    let fields = |m: &str| {
        got.iter()
            .find(|e| e.manager == m)
            .map(|e| e.fields.to_fields_v1())
    };
    assert_eq!(fields("ops"), None);
    assert_eq!(
        fields("kubectl-edit"),
        Some(json!({"f:spec": {"f:paused": {}}}))
    );
    assert_eq!(
        fields("mine"),
        Some(json!({"f:spec": {"f:paused": {}, "f:replicas": {}}}))
    );
    assert_eq!(got[0].operation, "Apply");
}

#[test]
fn an_update_takes_the_fields_it_changes() {
    let types = deployments();
    let mut entries = vec![entry(
        "ops",
        "Apply",
        json!({"f:spec": {"f:replicas": {}, "f:paused": {}}}),
    )];
    let old = json!({"spec": {"replicas": 1, "paused": true}});
    let new = json!({"spec": {"replicas": 4}});
    let changes = compare(&old, &new, &types, Scope::Whole);
    record_update(
        &mut entries,
        &changes,
        "kubectl-scale",
        "apps/v1",
        "scale",
        "t",
    );
    encode(&mut json!({}), entries.clone());
    assert!(entries[0].fields.is_empty());
    assert_eq!(entries[1].subresource, "scale");
    assert_eq!(
        entries[1].fields.to_fields_v1(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert_eq!(
        entries[1].describe(),
        "\"kubectl-scale\" with subresource \"scale\" using apps/v1"
    );
}

#[test]
fn managed_fields_a_client_sends() {
    let mut obj = json!({"metadata": {"managedFields": [{}]}});
    assert!(matches!(take_requested(&mut obj), Requested::Reset));
    assert!(obj["metadata"].get("managedFields").is_none());
    let mut obj = json!({"metadata": {"managedFields": []}});
    assert!(matches!(take_requested(&mut obj), Requested::Keep));
    let mut obj = json!({"metadata": {"managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]}});
    assert!(matches!(take_requested(&mut obj), Requested::Replace(e) if e.len() == 1));
}

#[test]
fn manager_from_user_agent_takes_the_product() {
    assert_eq!(
        manager_from_user_agent("kubectl/v1.32.0 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(manager_from_user_agent(""), "");
    assert_eq!(manager_from_user_agent(&"x".repeat(200)).len(), 128);
}
