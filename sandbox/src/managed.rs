//! Field management (server-side apply): which field manager owns which fields of an object,
//! kept in `metadata.managedFields` in the API server's own format, and what an apply does
//! with them: merge the applied configuration, remove what the applier stopped applying unless
//! someone else owns it, refuse (409) changing fields other managers own unless forced.
//!
//! Modelled on sigs.k8s.io/structured-merge-diff v4.4 (`fieldpath`, `typed`, `merge/update.go`)
//! as used by k8s.io/apiserver v0.32 `pkg/util/managedfields/internal`. The Kubernetes schema's
//! list types (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`)
//! come from a CRD's structural schema, and for built-in kinds from the table in
//! [`Types::builtin_list`] (the schemas the sandbox publishes for built-ins do not carry them).

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A set of field paths, as a tree keyed by path elements in their `fieldsV1` spelling:
/// `f:<field>`, `k:<json object of the key fields>`, `v:<json value>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    /// The node itself is in the set (`.` in `fieldsV1`, or a leaf `{}`).
    member: bool,
    children: BTreeMap<String, FieldSet>,
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

    fn child(&mut self, pe: String) -> &mut FieldSet {
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

    fn collect(&self, stack: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
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
    fn everything(v: &Value, types: &Types, at: &mut Walk<'_>) -> FieldSet {
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
fn pe_display(pe: &str, out: &mut String) {
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

fn field_pe(name: &str) -> String {
    format!("f:{name}")
}

/// How a list is merged and owned (`x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    /// Replaced and owned as a whole (the default).
    Atomic,
    /// Scalars, owned one by one (`v:`).
    Set,
    /// Objects identified by key fields, each with its default (`k:`).
    Map(Vec<(String, Option<Value>)>),
}

/// The key path element of an item of a list, `None` when it cannot have one (an item of an
/// associative list that lacks a key field without default).
fn item_pe(lt: &ListType, item: &Value) -> Option<String> {
    match lt {
        ListType::Atomic => None,
        ListType::Set => Some(format!("v:{item}")),
        ListType::Map(keys) => {
            let mut m = Map::new();
            for (k, default) in keys {
                match item.get(k).or(default.as_ref()) {
                    Some(v) if !v.is_null() => {
                        m.insert(k.clone(), v.clone());
                    }
                    _ => return None,
                }
            }
            Some(format!("k:{}", Value::Object(m)))
        }
    }
}

/// Where a walk is: the field names from the root (list items do not add one) and, for custom
/// resources, the schema node of each level.
pub struct Walk<'a> {
    names: Vec<String>,
    schemas: Vec<Option<&'a Value>>,
}

impl<'a> Walk<'a> {
    fn new(root: Option<&'a Value>) -> Self {
        Walk {
            names: Vec::new(),
            schemas: vec![root],
        }
    }

    fn schema(&self) -> Option<&'a Value> {
        self.schemas.last().copied().flatten()
    }

    fn push(&mut self, name: &str) {
        let s = self.schema().and_then(|s| {
            s.get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
        });
        self.names.push(name.to_string());
        self.schemas.push(s);
    }

    fn pop(&mut self) {
        self.names.pop();
        self.schemas.pop();
    }

    fn enter_item(&mut self) {
        let s = self.schema().and_then(|s| s.get("items"));
        self.schemas.push(s);
    }

    fn leave_item(&mut self) {
        self.schemas.pop();
    }
}

/// The list and map types of one resource's schema.
pub struct Types<'a> {
    plural: &'a str,
    /// For a custom resource: its schema (if any).
    custom: Option<Option<&'a Value>>,
}

impl<'a> Types<'a> {
    /// A built-in resource (by plural).
    pub fn builtin(plural: &'a str) -> Self {
        Types {
            plural,
            custom: None,
        }
    }

    /// A custom resource with this version's `openAPIV3Schema`, if it has one.
    pub fn custom(plural: &'a str, schema: Option<&'a Value>) -> Self {
        Types {
            plural,
            custom: Some(schema),
        }
    }

    fn walk(&self) -> Walk<'a> {
        Walk::new(self.custom.flatten())
    }

    fn list_type(&self, at: &Walk<'_>) -> ListType {
        let names: Vec<&str> = at.names.iter().map(String::as_str).collect();
        if names.first() == Some(&"metadata") {
            // ObjectMeta (k8s.io/apimachinery v0.32 pkg/apis/meta/v1/types.go):
            // ownerReferences `+listType=map +listMapKey=uid`, finalizers `+listType=set`.
            return match names.as_slice() {
                ["metadata", "ownerReferences"] => map_keys(&["uid"]),
                ["metadata", "finalizers"] => ListType::Set,
                _ => ListType::Atomic,
            };
        }
        match self.custom {
            // A CRD's list without `x-kubernetes-list-type` is atomic (apiextensions-apiserver
            // v0.32 structural schema → schemaconv).
            Some(_) => {
                let Some(s) = at.schema() else {
                    return ListType::Atomic;
                };
                match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("set") => ListType::Set,
                    Some("map") => {
                        let props = s.get("items").and_then(|i| i.get("properties"));
                        let keys = s
                            .get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|ks| {
                                ks.iter()
                                    .filter_map(Value::as_str)
                                    .map(|k| {
                                        let default = props
                                            .and_then(|p| p.get(k))
                                            .and_then(|p| p.get("default"))
                                            .cloned();
                                        (k.to_string(), default)
                                    })
                                    .collect::<Vec<_>>()
                            })
                            .unwrap_or_default();
                        if keys.is_empty() {
                            ListType::Atomic
                        } else {
                            ListType::Map(keys)
                        }
                    }
                    _ => ListType::Atomic,
                }
            }
            None => Types::builtin_list(self.plural, &names),
        }
    }

    /// The associative lists of the built-in kinds the sandbox serves, from the list markers
    /// of k8s.io/api v0.32 (`core/v1/types.go`, `admissionregistration/v1/types.go`) and, where
    /// a list has no `+listType`, its `patchStrategy=merge` + `patchMergeKey` (which
    /// kube-openapi's `schemaconv` turns into an associative list). Any other list is atomic.
    fn builtin_list(plural: &str, names: &[&str]) -> ListType {
        let n = names.len();
        let Some(&last) = names.last() else {
            return ListType::Atomic;
        };
        let parent = if n >= 2 { names[n - 2] } else { "" };
        let in_container = matches!(
            parent,
            "containers" | "initContainers" | "ephemeralContainers"
        );
        // A PodSpec: a Pod's `spec`, or a pod template's (`...template.spec`).
        let pod_spec = parent == "spec"
            && ((plural == "pods" && n == 2) || (n >= 3 && names[n - 3] == "template"));
        match last {
            "containers" | "initContainers" | "ephemeralContainers" if pod_spec => {
                map_keys(&["name"])
            }
            "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates" if pod_spec => {
                map_keys(&["name"])
            }
            "hostAliases" if pod_spec => map_keys(&["ip"]),
            "topologySpreadConstraints" if pod_spec => {
                map_keys(&["topologyKey", "whenUnsatisfiable"])
            }
            // ContainerPort: `+listMapKey=containerPort +listMapKey=protocol`; protocol has
            // `+default="TCP"`.
            "ports" if in_container => ListType::Map(vec![
                ("containerPort".into(), None),
                ("protocol".into(), Some(json!("TCP"))),
            ]),
            "env" if in_container => map_keys(&["name"]),
            "volumeMounts" if in_container => map_keys(&["mountPath"]),
            "volumeDevices" if in_container => map_keys(&["devicePath"]),
            // ServiceSpec.Ports: `+listMapKey=port +listMapKey=protocol`, protocol defaults TCP.
            "ports" if plural == "services" && names == ["spec", "ports"] => ListType::Map(vec![
                ("port".into(), None),
                ("protocol".into(), Some(json!("TCP"))),
            ]),
            // Status conditions of Pod, Deployment, StatefulSet, ReplicaSet, PDB, Node, PVC,
            // Namespace, Service, CRD: `+listType=map +listMapKey=type`.
            "conditions" if names == ["status", "conditions"] => map_keys(&["type"]),
            "podIPs" | "hostIPs" if plural == "pods" && n == 2 && parent == "status" => {
                map_keys(&["ip"])
            }
            "webhooks" if plural == "validatingwebhookconfigurations" && n == 1 => {
                map_keys(&["name"])
            }
            _ => ListType::Atomic,
        }
    }

    /// Objects owned as a whole (`x-kubernetes-map-type: atomic`): label selectors
    /// (`metav1.LabelSelector` is `+structType=atomic`) and a Service's `spec.selector`
    /// (`+mapType=atomic`).
    fn atomic_object(&self, at: &Walk<'_>) -> bool {
        let names = &at.names;
        if self.custom.is_some() && names.first().map(String::as_str) != Some("metadata") {
            return at
                .schema()
                .and_then(|s| s.get("x-kubernetes-map-type"))
                .and_then(Value::as_str)
                == Some("atomic");
        }
        match names.last().map(String::as_str) {
            Some("labelSelector" | "namespaceSelector" | "objectSelector") => true,
            Some("selector") => {
                names.len() == 2
                    && names[0] == "spec"
                    && matches!(
                        self.plural,
                        "deployments"
                            | "statefulsets"
                            | "replicasets"
                            | "poddisruptionbudgets"
                            | "services"
                    )
            }
            _ => false,
        }
    }
}

fn map_keys(keys: &[&str]) -> ListType {
    ListType::Map(keys.iter().map(|k| (k.to_string(), None)).collect())
}

/// Which top-level fields a write may own: the main resource's writers never own `status`
/// when there is a status subresource, the status subresource's only `status` (the API
/// server's reset fields); nobody owns the fields the server sets
/// (k8s.io/apiserver v0.32 `managedfields/internal/stripmeta.go`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scope {
    /// The object, `status` included.
    Whole,
    /// The object without `status`.
    WithoutStatus,
    /// Only `status`.
    StatusOnly,
}

const STRIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

fn top_level_owned(scope: Scope, k: &str) -> bool {
    match (scope, k) {
        (_, "apiVersion" | "kind") => false,
        (Scope::StatusOnly, k) => k == "status",
        (Scope::WithoutStatus, "status") => false,
        _ => true,
    }
}

/// The entries of an object's top level that fields can be owned in.
fn owned_top(obj: &Value, scope: Scope) -> impl Iterator<Item = (&String, &Value)> {
    obj.as_object()
        .into_iter()
        .flatten()
        .filter(move |(k, _)| top_level_owned(scope, k))
}

/// A missing key field of an applied list-map item (structured-merge-diff v4.4
/// `typed/helpers.go` `keyedAssociativeListItemToPathElement`).
fn missing_key(path: &str, i: usize, key: &str) -> String {
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

fn value_set(
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

fn pe_string_for(pe: &str) -> String {
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

fn merge_field(l: &mut Map<String, Value>, k: &str, v: &Value, types: &Types, at: &mut Walk<'_>) {
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

fn merge_value(live: &mut Value, config: &Value, types: &Types, at: &mut Walk<'_>) {
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

fn prune_at(
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
fn compare_field(
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
fn compare_value(old: &Value, new: &Value, types: &Types, at: &mut Walk<'_>, out: &mut Changes) {
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

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `manager`.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `apiVersion` the fields are spelled in.
    pub api_version: String,
    /// `time` (RFC 3339, seconds).
    pub time: Option<String>,
    /// `subresource` (`""` for the main resource).
    pub subresource: String,
    /// `fieldsV1`.
    pub fields: FieldSet,
}

impl Entry {
    /// Whether `self` is the entry of this manager identity: manager, operation,
    /// subresource, and for updaters the apiVersion (`BuildManagerIdentifier`).
    pub fn is(&self, manager: &str, operation: &str, subresource: &str, api_version: &str) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == "Apply" || self.api_version == api_version)
    }

    /// How a conflict names this manager (`managedfields/internal/conflict.go` `printManager`:
    /// the identifier never carries the time).
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn from_json(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let operation = s("operation")?;
        if operation != "Apply" && operation != "Update" {
            return None;
        }
        if let Some(t) = v.get("fieldsType").and_then(Value::as_str)
            && t != "FieldsV1"
        {
            return None;
        }
        Some(Entry {
            manager: s("manager").unwrap_or_default(),
            operation,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").unwrap_or_default(),
            fields: FieldSet::from_fields_v1(v.get("fieldsV1").unwrap_or(&Value::Null)),
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }
}

/// Reads `metadata.managedFields` (entries that cannot be read are left out).
pub fn decode(obj: &Value) -> Vec<Entry> {
    obj.get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .map(|es| es.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// What a write's own `metadata.managedFields` asks for (k8s.io/apiserver v0.32
/// `managedfields/internal/fieldmanager.go` `Update`, and the "Clearing managedFields"
/// section of the server-side apply documentation): absent, empty or unreadable means "keep
/// the stored ones", a list with a single empty entry (`[{}]`) clears them, anything else
/// replaces them.
#[derive(Debug)]
pub enum Requested {
    /// Keep the stored entries.
    Keep,
    /// Clear them all.
    Reset,
    /// Use these.
    Replace(Vec<Entry>),
}

/// Takes `metadata.managedFields` out of a request's object.
pub fn take_requested(obj: &mut Value) -> Requested {
    let Some(v) = obj
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"))
    else {
        return Requested::Keep;
    };
    let Some(items) = v.as_array() else {
        return Requested::Keep;
    };
    if items.len() == 1 && items[0].as_object().is_some_and(Map::is_empty) {
        return Requested::Reset;
    }
    let entries: Vec<Entry> = items.iter().filter_map(Entry::from_json).collect();
    if entries.is_empty() || entries.len() != items.len() {
        Requested::Keep
    } else {
        Requested::Replace(entries)
    }
}

/// Writes the entries into `obj`'s `metadata.managedFields` (left out when there are none),
/// without empty ones, in the API server's order: `Apply` before `Update`, then by time,
/// manager, apiVersion and subresource (`managedfields/internal/managedfields.go`
/// `sortEncodedManagedFields`).
pub fn encode(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let meta = crate::util::meta_mut(obj);
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// Records a non-apply write (create, update, patch) by `manager`: it owns what it changed,
/// which no other manager owns any longer; what it removed nobody owns
/// (structured-merge-diff `merge.Updater.Update`).
pub fn record_update(
    entries: &mut Vec<Entry>,
    changes: &Changes,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
) {
    for e in entries.iter_mut() {
        e.fields.difference(&changes.removed);
        if !e.is(manager, "Update", subresource, api_version) {
            e.fields.difference(&changes.changed);
        }
    }
    if changes.changed.is_empty() {
        return;
    }
    match entries
        .iter_mut()
        .find(|e| e.is(manager, "Update", subresource, api_version))
    {
        Some(e) => {
            e.fields.union(&changes.changed);
            e.time = Some(now.to_string());
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            subresource: subresource.to_string(),
            fields: changes.changed.clone(),
        }),
    }
}

/// One field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// How the owner is named (`"kubectl-edit" using apps/v1`).
    pub manager: String,
    /// The field (`.spec.replicas`).
    pub field: String,
}

/// The API server's answer to conflicting fields (`managedfields/internal/conflict.go`
/// `NewConflictError`: 409 `Conflict` with a `FieldManagerConflict` cause per field).
pub fn conflict_error(conflicts: &[Conflict]) -> crate::error::ApiError {
    let message = if let [c] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.field
        )
    } else {
        let mut by_manager: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for c in conflicts {
            by_manager.entry(&c.manager).or_default().push(&c.field);
        }
        let mut lines = Vec::new();
        for (m, fields) in by_manager {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(fields.iter().map(|f| format!("- {f}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.field})
        })
        .collect();
    let mut e = crate::error::ApiError::custom(409, "Conflict", message);
    e.details = Some(json!({ "causes": causes }));
    e
}

/// An apply by `manager`, from the live object `before` to `after` (the configuration merged
/// in and pruned): conflicts with other managers (unless `force`, which takes the fields
/// away from them), then the applier owns exactly `applied`.
#[allow(clippy::too_many_arguments)]
pub fn record_apply(
    entries: &mut Vec<Entry>,
    changes: &Changes,
    applied: FieldSet,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<(), Vec<Conflict>> {
    let mine = |e: &Entry| e.is(manager, "Apply", subresource, api_version);
    let mut conflicts = Vec::new();
    let mut taken = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if mine(e) {
            continue;
        }
        let both = e.fields.intersection(&changes.changed);
        if both.is_empty() {
            continue;
        }
        for p in both.paths() {
            conflicts.push(Conflict {
                manager: e.describe(),
                field: path_display(&p),
            });
        }
        taken.push((i, both));
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
        return Err(conflicts);
    }
    for (i, both) in taken {
        entries[i].fields.difference(&both);
    }
    for e in entries.iter_mut() {
        if !mine(e) {
            e.fields.difference(&changes.removed);
        }
    }
    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            e.fields = applied;
            e.api_version = api_version.to_string();
            if !changes.is_empty() || e.time.is_none() {
                e.time = Some(now.to_string());
            }
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            subresource: subresource.to_string(),
            fields: applied,
        }),
    }
    Ok(())
}

/// The manager of a write without `fieldManager`: the User-Agent up to its first `/`,
/// printable characters only, at most 128 bytes (k8s.io/apiserver v0.32
/// `endpoints/handlers/rest.go` `prefixFromUserAgent`).
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
