//! Patch semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and an approximation of
//! strategic merge patch: merge-patch semantics, plus lists of objects merged by a key
//! (`name`, `containerPort`, `port`, `mountPath`, `type`, `ip`) and the directives kubectl sends
//! (`$patch: delete|replace|merge`, `$retainKeys`, `$deleteFromPrimitiveList/<list>`,
//! `$setElementOrder/<list>`).

use serde_json::{Map, Value};

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let p: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    json_patch::patch(target, &p).map_err(|e| e.to_string())
}

const MERGE_KEYS: &[&str] = &[
    "name",
    "containerPort",
    "port",
    "mountPath",
    "type",
    "ip",
    "devicePath",
];

/// The key that identifies list items, if every item of both lists is an object carrying it.
fn merge_key(orig: &[Value], patch: &[Value]) -> Option<&'static str> {
    let items: Vec<&Value> = orig
        .iter()
        .chain(patch.iter().filter(|p| {
            p.get("$patch").and_then(Value::as_str) != Some("delete")
                || p.as_object().is_some_and(|m| m.len() > 1)
        }))
        .collect();
    if items.is_empty() || !items.iter().all(|v| v.is_object()) {
        return None;
    }
    MERGE_KEYS
        .iter()
        .find(|k| items.iter().all(|v| v.get(**k).is_some()))
        .copied()
}

/// Strategic merge patch (approximation: see the module documentation).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut m = p.clone();
            m.remove("$patch");
            *target = Value::Object(m);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()) || p.contains_key(k));
    }
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(del)) = (t.get_mut(list), v.as_array()) {
                items.retain(|i| !del.contains(i));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(Value::Array(orig)), Value::Array(pl)) => {
                if let Some(key) = merge_key(orig, pl) {
                    for item in pl {
                        let id = item.get(key).cloned();
                        let pos = orig.iter().position(|o| o.get(key) == id.as_ref());
                        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                        match (pos, delete) {
                            (Some(i), true) => {
                                orig.remove(i);
                            }
                            (None, true) => {}
                            (Some(i), false) => strategic_merge(&mut orig[i], item),
                            (None, false) => {
                                let mut fresh = Value::Object(Map::new());
                                strategic_merge(&mut fresh, item);
                                orig.push(fresh);
                            }
                        }
                    }
                } else {
                    *orig = pl.clone();
                }
            }
            (Some(existing @ Value::Object(_)), Value::Object(_)) => strategic_merge(existing, v),
            _ => {
                let mut fresh = Value::Null;
                if v.is_object() {
                    fresh = Value::Object(Map::new());
                    strategic_merge(&mut fresh, v);
                } else {
                    fresh.clone_from(v);
                }
                t.insert(k.clone(), fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"b": {"c": null, "e": 4}, "f": [1]}));
        assert_eq!(t, json!({"a": 1, "b": {"d": 3, "e": 4}, "f": [1]}));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}});
        strategic_merge(
            &mut t,
            &json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "b", "image": "y:2"}]}}),
        );
        assert_eq!(t["spec"]["containers"][0]["image"], "x:1");
        assert_eq!(t["spec"]["containers"][1]["image"], "y:2");
        strategic_merge(
            &mut t,
            &json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(t["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn json_patch_replaces_version() {
        let mut t = json!({"spec": {"version": "0.4.0"}});
        json_patch(
            &mut t,
            &json!([{"op": "replace", "path": "/spec/version", "value": "0.5.0"}]),
        )
        .unwrap();
        assert_eq!(t["spec"]["version"], "0.5.0");
        assert!(
            json_patch(
                &mut t,
                &json!([{"op": "replace", "path": "/spec/nope/x", "value": 1}])
            )
            .is_err()
        );
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::from)
        ]
    }

    proptest! {
        #[test]
        fn merge_patch_of_self_is_identity(m in proptest::collection::btree_map("[a-z]{1,3}", leaf(), 0..6)) {
            let v = Value::Object(m.into_iter().collect());
            let mut t = v.clone();
            merge_patch(&mut t, &v);
            prop_assert_eq!(&t, &v);
            let mut s = v.clone();
            strategic_merge(&mut s, &v);
            prop_assert_eq!(s, v);
        }
    }
}
