//! Field sets in the `fieldsV1` spelling, and paths as the API server prints them.

use super::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A set of field paths, as a tree keyed by path elements in their `fieldsV1` spelling:
/// `f:<field>`, `k:<json object of the key fields>`, `v:<json value>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    /// The node itself is in the set (`.` in `fieldsV1`, or a leaf `{}`).
    pub(super) member: bool,
    pub(super) children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// No path at all.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Reads a `fieldsV1` object (the root, whose own membership is never recorded).
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(m) = v {
            for (k, c) in m {
                if k == "." {
                    set.member = true;
                } else {
                    let mut child = FieldSet::from_fields_v1(c);
                    // `f:x: {}` is a leaf.
                    if c.as_object().is_some_and(Map::is_empty) {
                        child.member = true;
                    }
                    set.children.insert(k.clone(), child);
                }
            }
        }
        set
    }

    /// Writes the `fieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_fields_v1());
        }
        Value::Object(m)
    }

    pub(super) fn child(&mut self, pe: String) -> &mut FieldSet {
        self.children.entry(pe).or_default()
    }

    /// Adds every path of `other`.
    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, c) in &other.children {
            self.child(k.clone()).union(c);
        }
    }

    /// Removes every path of `other` (path by path, as `fieldpath.Set.Difference`).
    pub fn difference(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (k, c) in &other.children {
            if let Some(mine) = self.children.get_mut(k) {
                mine.difference(c);
                if mine.is_empty() {
                    self.children.remove(k);
                }
            }
        }
    }

    /// The paths that are in both sets, as path element lists.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every path of the set, in order, each as its path elements.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = Vec::new();
        self.collect(&mut stack, &mut out);
        out
    }

    pub(super) fn collect(&self, stack: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member && !stack.is_empty() {
            out.push(stack.clone());
        }
        for (k, c) in &self.children {
            stack.push(k.clone());
            c.collect(stack, out);
            stack.pop();
        }
    }

    /// Marks every node of `v` (the subtree at the current path) as a member: what a removed
    /// field takes away from every manager.
    pub(super) fn everything(v: &Value, types: &Types, at: &mut Walk<'_>) -> FieldSet {
        let mut set = FieldSet {
            member: true,
            children: BTreeMap::new(),
        };
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    at.push(k);
                    set.children
                        .insert(field_pe(k), FieldSet::everything(c, types, at));
                    at.pop();
                }
            }
            Value::Array(items) => {
                let lt = types.list_type(at);
                for item in items {
                    if let Some(pe) = item_pe(&lt, item) {
                        at.enter_item();
                        set.children
                            .insert(pe, FieldSet::everything(item, types, at));
                        at.leave_item();
                    }
                }
            }
            _ => {}
        }
        set
    }
}

/// A path element in the API server's message spelling (`fieldpath.PathElement.String`).
pub(super) fn pe_display(pe: &str, out: &mut String) {
    if let Some(name) = pe.strip_prefix("f:") {
        out.push('.');
        out.push_str(name);
    } else if let Some(key) = pe.strip_prefix("k:") {
        let fields: Vec<String> = serde_json::from_str::<Map<String, Value>>(key)
            .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
            .unwrap_or_default();
        out.push('[');
        out.push_str(&fields.join(","));
        out.push(']');
    } else if let Some(v) = pe.strip_prefix("v:") {
        out.push_str("[=");
        out.push_str(v);
        out.push(']');
    }
}

/// A path in the API server's message spelling: `.spec.containers[name="a"].image`.
pub fn path_display(path: &[String]) -> String {
    let mut s = String::new();
    for pe in path {
        pe_display(pe, &mut s);
    }
    s
}

pub(super) fn field_pe(name: &str) -> String {
    format!("f:{name}")
}
