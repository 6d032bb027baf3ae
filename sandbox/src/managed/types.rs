//! The list and map types of a schema, where a walk is in it, and which top-level fields a write may own.

use serde_json::{Map, Value, json};

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
pub(super) fn item_pe(lt: &ListType, item: &Value) -> Option<String> {
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
    pub(super) names: Vec<String>,
    pub(super) schemas: Vec<Option<&'a Value>>,
}

impl<'a> Walk<'a> {
    pub(super) fn new(root: Option<&'a Value>) -> Self {
        Walk {
            names: Vec::new(),
            schemas: vec![root],
        }
    }

    pub(super) fn schema(&self) -> Option<&'a Value> {
        self.schemas.last().copied().flatten()
    }

    pub(super) fn push(&mut self, name: &str) {
        let s = self.schema().and_then(|s| {
            s.get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
        });
        self.names.push(name.to_string());
        self.schemas.push(s);
    }

    pub(super) fn pop(&mut self) {
        self.names.pop();
        self.schemas.pop();
    }

    pub(super) fn enter_item(&mut self) {
        let s = self.schema().and_then(|s| s.get("items"));
        self.schemas.push(s);
    }

    pub(super) fn leave_item(&mut self) {
        self.schemas.pop();
    }
}

/// The list and map types of one resource's schema.
pub struct Types<'a> {
    pub(super) plural: &'a str,
    /// For a custom resource: its schema (if any).
    pub(super) custom: Option<Option<&'a Value>>,
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

    pub(super) fn walk(&self) -> Walk<'a> {
        Walk::new(self.custom.flatten())
    }

    pub(super) fn list_type(&self, at: &Walk<'_>) -> ListType {
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
    pub(super) fn builtin_list(plural: &str, names: &[&str]) -> ListType {
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
    pub(super) fn atomic_object(&self, at: &Walk<'_>) -> bool {
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

pub(super) fn map_keys(keys: &[&str]) -> ListType {
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

pub(super) const STRIPPED_META: &[&str] = &[
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

pub(super) fn top_level_owned(scope: Scope, k: &str) -> bool {
    match (scope, k) {
        (_, "apiVersion" | "kind") => false,
        (Scope::StatusOnly, k) => k == "status",
        (Scope::WithoutStatus, "status") => false,
        _ => true,
    }
}

/// The entries of an object's top level that fields can be owned in.
pub(super) fn owned_top(obj: &Value, scope: Scope) -> impl Iterator<Item = (&String, &Value)> {
    obj.as_object()
        .into_iter()
        .flatten()
        .filter(move |(k, _)| top_level_owned(scope, k))
}
