//! What a write changed.

use super::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a write changed (`typed.Comparison`): `changed` the fields modified or added (leaves,
/// atomic values, new items), `removed` everything that is gone.
#[derive(Debug, Default)]
pub struct Changes {
    /// Modified and added fields.
    pub changed: FieldSet,
    /// Removed fields (every node of a removed subtree).
    pub removed: FieldSet,
}

impl Changes {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty()
    }
}

/// Compares two versions of an object, over the fields that can be owned in `scope`.
pub fn compare(old: &Value, new: &Value, types: &Types, scope: Scope) -> Changes {
    let mut out = Changes::default();
    let mut at = types.walk();
    let empty = Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let keys: std::collections::BTreeSet<&String> = o
        .keys()
        .chain(n.keys())
        .filter(|k| top_level_owned(scope, k))
        .collect();
    for k in keys {
        at.push(k);
        if k == "metadata" {
            let (om, nm) = (
                o.get(k).and_then(Value::as_object).unwrap_or(&empty),
                n.get(k).and_then(Value::as_object).unwrap_or(&empty),
            );
            let mkeys: std::collections::BTreeSet<&String> = om
                .keys()
                .chain(nm.keys())
                .filter(|mk| !STRIPPED_META.contains(&mk.as_str()))
                .collect();
            let mut meta = Changes::default();
            for mk in mkeys {
                at.push(mk);
                compare_field(
                    om.get(mk),
                    nm.get(mk),
                    &field_pe(mk),
                    types,
                    &mut at,
                    &mut meta,
                );
                at.pop();
            }
            if !meta.changed.is_empty() {
                out.changed.children.insert(field_pe(k), meta.changed);
            }
            if !meta.removed.is_empty() {
                out.removed.children.insert(field_pe(k), meta.removed);
            }
        } else {
            compare_field(o.get(k), n.get(k), &field_pe(k), types, &mut at, &mut out);
        }
        at.pop();
    }
    out
}

/// Compares one field, inserting its entry (under `pe`) into `out`.
pub(super) fn compare_field(
    old: Option<&Value>,
    new: Option<&Value>,
    pe: &str,
    types: &Types,
    at: &mut Walk<'_>,
    out: &mut Changes,
) {
    match (old, new) {
        (None, None) => {}
        (Some(o), None) => {
            out.removed
                .children
                .insert(pe.to_string(), FieldSet::everything(o, types, at));
        }
        (None, Some(n)) => {
            let mut errors = Vec::new();
            let set = value_set(n, types, at, &mut String::new(), &mut errors);
            if !set.is_empty() {
                out.changed.children.insert(pe.to_string(), set);
            }
        }
        (Some(o), Some(n)) => {
            let mut c = Changes::default();
            compare_value(o, n, types, at, &mut c);
            if !c.changed.is_empty() {
                out.changed.children.insert(pe.to_string(), c.changed);
            }
            if !c.removed.is_empty() {
                out.removed.children.insert(pe.to_string(), c.removed);
            }
        }
    }
}

/// Compares two values at the same path; `out` is the node of that path.
pub(super) fn compare_value(
    old: &Value,
    new: &Value,
    types: &Types,
    at: &mut Walk<'_>,
    out: &mut Changes,
) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) if !types.atomic_object(at) => {
            // An empty object is a leaf of its own.
            if n.is_empty() {
                out.changed.member = true;
            } else if o.is_empty() {
                out.removed.member = true;
            }
            for (k, ov) in o {
                at.push(k);
                compare_field(Some(ov), n.get(k), &field_pe(k), types, at, out);
                at.pop();
            }
            for (k, nv) in n {
                if !o.contains_key(k) {
                    at.push(k);
                    compare_field(None, Some(nv), &field_pe(k), types, at, out);
                    at.pop();
                }
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            let lt = types.list_type(at);
            let keyed = |items: &[Value]| -> Option<BTreeMap<String, usize>> {
                let mut m = BTreeMap::new();
                for (i, item) in items.iter().enumerate() {
                    m.insert(item_pe(&lt, item)?, i);
                }
                (m.len() == items.len()).then_some(m)
            };
            let (Some(ok), Some(nk)) = (keyed(o), keyed(n)) else {
                // Atomic (or not keyable: duplicates, missing keys): owned as a whole.
                out.changed.member = true;
                return;
            };
            // An empty list is a leaf of its own.
            if n.is_empty() {
                out.changed.member = true;
            } else if o.is_empty() {
                out.removed.member = true;
            }
            at.enter_item();
            for (pe, &i) in &ok {
                match nk.get(pe) {
                    None => {
                        out.removed
                            .children
                            .insert(pe.clone(), FieldSet::everything(&o[i], types, at));
                    }
                    Some(&j) => {
                        let mut c = Changes::default();
                        compare_value(&o[i], &n[j], types, at, &mut c);
                        if !c.changed.is_empty() {
                            out.changed.children.insert(pe.clone(), c.changed);
                        }
                        if !c.removed.is_empty() {
                            out.removed.children.insert(pe.clone(), c.removed);
                        }
                    }
                }
            }
            for (pe, &j) in &nk {
                if !ok.contains_key(pe) {
                    let mut set = if matches!(lt, ListType::Map(_)) {
                        value_set(&n[j], types, at, &mut String::new(), &mut Vec::new())
                    } else {
                        FieldSet::default()
                    };
                    set.member = true;
                    out.changed.children.insert(pe.clone(), set);
                }
            }
            at.leave_item();
        }
        _ => out.changed.member = true,
    }
}
