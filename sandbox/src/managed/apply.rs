//! What an applied configuration sets, and merging it into (and pruning) the live object.

use super::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A missing key field of an applied list-map item (structured-merge-diff v4.4
/// `typed/helpers.go` `keyedAssociativeListItemToPathElement`).
pub(super) fn missing_key(path: &str, i: usize, key: &str) -> String {
    format!(
        "{path}: element {i}: associative list with keys has an element that omits key field \"{key}\" (and doesn't have default value)"
    )
}

/// The fields an applied configuration sets (`typed.TypedValue.ToFieldSet`): its leaves,
/// empty objects and lists, atomic lists and objects, and the items of sets and associative
/// lists. Errors: the API server's validation messages (one per bad item).
pub fn applied_set(config: &Value, types: &Types, scope: Scope) -> Result<FieldSet, Vec<String>> {
    let mut set = FieldSet::default();
    let mut errors = Vec::new();
    let mut at = types.walk();
    let mut path = String::new();
    for (k, v) in owned_top(config, scope) {
        at.push(k);
        let len = path.len();
        path.push('.');
        path.push_str(k);
        let child = if k == "metadata" {
            let mut meta = FieldSet::default();
            for (mk, mv) in v.as_object().into_iter().flatten() {
                if STRIPPED_META.contains(&mk.as_str()) {
                    continue;
                }
                at.push(mk);
                let l = path.len();
                path.push('.');
                path.push_str(mk);
                meta.children.insert(
                    field_pe(mk),
                    value_set(mv, types, &mut at, &mut path, &mut errors),
                );
                path.truncate(l);
                at.pop();
            }
            meta
        } else {
            value_set(v, types, &mut at, &mut path, &mut errors)
        };
        path.truncate(len);
        at.pop();
        if !child.is_empty() {
            set.children.insert(field_pe(k), child);
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

pub(super) fn value_set(
    v: &Value,
    types: &Types,
    at: &mut Walk<'_>,
    path: &mut String,
    errors: &mut Vec<String>,
) -> FieldSet {
    let mut set = FieldSet::default();
    match v {
        Value::Object(m) if !m.is_empty() && !types.atomic_object(at) => {
            for (k, c) in m {
                at.push(k);
                let len = path.len();
                path.push('.');
                path.push_str(k);
                set.children
                    .insert(field_pe(k), value_set(c, types, at, path, errors));
                path.truncate(len);
                at.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let lt = types.list_type(at);
            if lt == ListType::Atomic {
                set.member = true;
                return set;
            }
            for (i, item) in items.iter().enumerate() {
                if let ListType::Map(keys) = &lt
                    && let Some((k, _)) = keys
                        .iter()
                        .find(|(k, d)| item.get(k).is_none_or(Value::is_null) && d.is_none())
                {
                    errors.push(missing_key(path, i, k));
                    continue;
                }
                let Some(pe) = item_pe(&lt, item) else {
                    continue;
                };
                at.enter_item();
                let len = path.len();
                path.push_str(&pe_string_for(&pe));
                let mut child = if matches!(lt, ListType::Map(_)) {
                    value_set(item, types, at, path, errors)
                } else {
                    FieldSet::default()
                };
                child.member = true;
                path.truncate(len);
                at.leave_item();
                set.children.insert(pe, child);
            }
        }
        _ => set.member = true,
    }
    set
}

pub(super) fn pe_string_for(pe: &str) -> String {
    let mut s = String::new();
    pe_display(pe, &mut s);
    s
}

/// The applied configuration merged into the live object (`typed.TypedValue.Merge`): objects
/// merged field by field (atomic ones replaced), associative lists item by item by key, sets
/// as unions, everything else replaced. `null` in the configuration removes the field.
pub fn merge(live: &mut Value, config: &Value, types: &Types, scope: Scope) {
    let mut at = types.walk();
    let Some(l) = live.as_object_mut() else {
        return;
    };
    for (k, v) in owned_top(config, scope) {
        at.push(k);
        if k == "metadata" {
            let meta = l.entry("metadata").or_insert_with(|| json!({}));
            if let (Some(lm), Some(cm)) = (meta.as_object_mut(), v.as_object()) {
                for (mk, mv) in cm {
                    if STRIPPED_META.contains(&mk.as_str()) {
                        continue;
                    }
                    at.push(mk);
                    merge_field(lm, mk, mv, types, &mut at);
                    at.pop();
                }
            }
        } else {
            merge_field(l, k, v, types, &mut at);
        }
        at.pop();
    }
}

pub(super) fn merge_field(
    l: &mut Map<String, Value>,
    k: &str,
    v: &Value,
    types: &Types,
    at: &mut Walk<'_>,
) {
    if v.is_null() {
        l.remove(k);
        return;
    }
    match l.get_mut(k) {
        Some(existing) => merge_value(existing, v, types, at),
        None => {
            l.insert(k.to_string(), v.clone());
        }
    }
}

pub(super) fn merge_value(live: &mut Value, config: &Value, types: &Types, at: &mut Walk<'_>) {
    match (live, config) {
        (live @ Value::Object(_), Value::Object(c)) if !types.atomic_object(at) => {
            let Value::Object(l) = live else { return };
            for (k, v) in c {
                at.push(k);
                merge_field(l, k, v, types, at);
                at.pop();
            }
        }
        (Value::Array(l), Value::Array(c)) => {
            let lt = types.list_type(at);
            match &lt {
                ListType::Atomic => *l = c.clone(),
                ListType::Set => {
                    for item in c {
                        if !l.contains(item) {
                            l.push(item.clone());
                        }
                    }
                }
                ListType::Map(_) => {
                    let mut index: BTreeMap<String, usize> = l
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| item_pe(&lt, item).map(|pe| (pe, i)))
                        .collect();
                    for item in c {
                        let Some(pe) = item_pe(&lt, item) else {
                            continue;
                        };
                        match index.get(&pe) {
                            Some(&i) => {
                                at.enter_item();
                                merge_value(&mut l[i], item, types, at);
                                at.leave_item();
                            }
                            None => {
                                index.insert(pe, l.len());
                                l.push(item.clone());
                            }
                        }
                    }
                }
            }
        }
        (live, config) => *live = config.clone(),
    }
}

/// Removes from `obj` what the applier owned (`last`) and no manager owns any longer (`keep`:
/// its new configuration and every other manager), as structured-merge-diff's `prune` does: a
/// field or item is removed whole (with what nobody owns inside it); a field whose owned
/// children are all gone goes with them (`EnsureNamedFieldsAreMembers`).
pub fn prune(obj: &mut Value, last: &FieldSet, keep: &FieldSet, types: &Types) {
    let mut at = types.walk();
    prune_at(obj, last, Some(keep), types, &mut at, true);
}

pub(super) fn prune_at(
    obj: &mut Value,
    last: &FieldSet,
    keep: Option<&FieldSet>,
    types: &Types,
    at: &mut Walk<'_>,
    top: bool,
) {
    let owned = |pe: &str, lc: &FieldSet| {
        let kc = keep.and_then(|k| k.children.get(pe));
        let named = pe.starts_with("f:");
        let before = lc.member || (named && !lc.children.is_empty());
        let now = kc.is_some_and(|k| k.member || (named && !k.children.is_empty()));
        (before, now, kc)
    };
    match obj {
        Value::Object(m) => {
            for (pe, lc) in &last.children {
                let Some(name) = pe.strip_prefix("f:") else {
                    continue;
                };
                let (before, now, kc) = owned(pe, lc);
                // The object's own top-level parts stay (only their contents can go).
                let keep_node = top && matches!(name, "metadata" | "spec" | "status");
                if before && !now && !keep_node {
                    m.remove(name);
                } else if !lc.children.is_empty()
                    && let Some(child) = m.get_mut(name)
                {
                    at.push(name);
                    prune_at(child, lc, kc, types, at, false);
                    at.pop();
                }
            }
        }
        Value::Array(items) => {
            let lt = types.list_type(at);
            if lt == ListType::Atomic {
                return;
            }
            let mut remove = Vec::new();
            at.enter_item();
            for (i, item) in items.iter_mut().enumerate() {
                let Some(pe) = item_pe(&lt, item) else {
                    continue;
                };
                let Some(lc) = last.children.get(&pe) else {
                    continue;
                };
                let (before, now, kc) = owned(&pe, lc);
                if before && !now {
                    remove.push(i);
                } else if !lc.children.is_empty() {
                    prune_at(item, lc, kc, types, at, false);
                }
            }
            at.leave_item();
            for i in remove.into_iter().rev() {
                items.remove(i);
            }
        }
        _ => {}
    }
}
