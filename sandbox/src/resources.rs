//! The resources the sandbox serves: built-in kinds and those added by CRDs.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A printer column of a CRD version.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column name (`Version`).
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// Optional format.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 shows by default, higher only with `-o wide`.
    pub priority: i64,
    /// The simple JSONPath (`.status.currentVersion`).
    pub json_path: String,
}

/// What a CRD contributes to one served version of its resource.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomInfo {
    /// The CRD's name (`pravegaclusters.pravega.pravega.io`).
    pub crd_name: String,
    /// The version objects are stored in (`spec.versions[*].storage`), whatever version a
    /// request uses.
    pub storage_version: String,
    /// This version's `openAPIV3Schema`.
    pub schema: Option<Value>,
    /// Printer columns of this version.
    pub printer_columns: Vec<PrinterColumn>,
}

/// One served resource (a group/version/plural).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    /// API group (`""` for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Has a `status` subresource.
    pub status: bool,
    /// Set for resources served from a CRD.
    pub custom: Option<Arc<CustomInfo>>,
}

impl ResourceInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The version objects of this resource are stored in: the CRD's storage version for
    /// custom resources, the served version otherwise.
    pub fn storage_version(&self) -> &str {
        match &self.custom {
            Some(c) => &c.storage_version,
            None => &self.version,
        }
    }

    /// Whether the object's generation follows spec changes.
    pub fn has_generation(&self) -> bool {
        self.custom.is_some()
            || !matches!(
                self.plural.as_str(),
                "configmaps"
                    | "secrets"
                    | "events"
                    | "serviceaccounts"
                    | "endpoints"
                    | "leases"
                    | "controllerrevisions"
                    | "roles"
                    | "rolebindings"
                    | "clusterroles"
                    | "clusterrolebindings"
            )
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    singular: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    all: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: singular.into(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if all { vec!["all".into()] } else { vec![] },
        status,
        custom: None,
    }
}

/// The built-in resources.
pub fn builtins() -> Vec<ResourceInfo> {
    vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            false,
            &["ns"],
            true,
            false,
        ),
        builtin("", "v1", "pods", "pod", "Pod", true, &["po"], true, true),
        builtin(
            "",
            "v1",
            "services",
            "service",
            "Service",
            true,
            &["svc"],
            true,
            true,
        ),
        builtin(
            "",
            "v1",
            "endpoints",
            "endpoints",
            "Endpoints",
            true,
            &["ep"],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "configmaps",
            "configmap",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "secrets",
            "secret",
            "Secret",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            true,
            false,
        ),
        builtin(
            "",
            "v1",
            "nodes",
            "node",
            "Node",
            false,
            &["no"],
            true,
            false,
        ),
        builtin(
            "apps",
            "v1",
            "statefulsets",
            "statefulset",
            "StatefulSet",
            true,
            &["sts"],
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "deployments",
            "deployment",
            "Deployment",
            true,
            &["deploy"],
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "replicasets",
            "replicaset",
            "ReplicaSet",
            true,
            &["rs"],
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "controllerrevisions",
            "controllerrevision",
            "ControllerRevision",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            true,
            false,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "lease",
            "Lease",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
            false,
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
            false,
        ),
        builtin(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "validatingwebhookconfiguration",
            "ValidatingWebhookConfiguration",
            false,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "role",
            "Role",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "rolebinding",
            "RoleBinding",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "clusterrole",
            "ClusterRole",
            false,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            false,
            &[],
            false,
            false,
        ),
    ]
}

/// What one CRD serves.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdServing {
    /// `spec.group`.
    pub group: String,
    /// `spec.names.plural`.
    pub plural: String,
    /// `spec.names.singular` (defaulted to the lower-case kind).
    pub singular: String,
    /// `spec.names.kind`.
    pub kind: String,
    /// The storage version (served or not).
    pub storage_version: String,
    /// One resource per served version, the storage version first when it is served (it is
    /// the group's preferred version in discovery), then the others in `spec.versions` order.
    pub versions: Vec<ResourceInfo>,
}

/// The served resources: built-ins plus every served version of the established CRDs.
#[derive(Debug, Clone)]
pub struct Registry {
    builtins: Vec<ResourceInfo>,
    crds: BTreeMap<String, CrdServing>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            builtins: builtins(),
            crds: BTreeMap::new(),
        }
    }
}

impl Registry {
    /// All served resources (one per served group/version/plural).
    pub fn all(&self) -> impl Iterator<Item = &ResourceInfo> {
        self.builtins
            .iter()
            .chain(self.crds.values().flat_map(|c| c.versions.iter()))
    }

    /// Looks up a resource by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.all()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// Whether a group/version is served.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.all().any(|r| r.group == group && r.version == version)
    }

    /// Served groups with their versions (core excluded), in a stable order; the first version
    /// of a group is its preferred one (for a CRD's group, the storage version when served).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all().filter(|r| !r.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, vs)) => {
                    if !vs.contains(&r.version) {
                        vs.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    /// Whether another resource already uses this group/plural (outside the given CRD).
    pub fn conflicts(&self, crd_name: &str, group: &str, plural: &str) -> bool {
        self.builtins
            .iter()
            .any(|r| r.group == group && r.plural == plural)
            || self
                .crds
                .iter()
                .any(|(n, c)| n != crd_name && c.group == group && c.plural == plural)
    }

    /// Starts serving (or updates) a CRD's resource in each of its served versions.
    pub fn serve_crd(&mut self, crd_name: &str, serving: CrdServing) {
        self.crds.insert(crd_name.to_string(), serving);
    }

    /// Stops serving every version of a CRD's resource; returns what it served.
    pub fn remove_crd(&mut self, crd_name: &str) -> Option<CrdServing> {
        self.crds.remove(crd_name)
    }
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn printer_columns(ver: &Value) -> Vec<PrinterColumn> {
    ver.get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| PrinterColumn {
                    name: str_of(c, "name"),
                    type_: str_of(c, "type"),
                    format: str_of(c, "format"),
                    description: str_of(c, "description"),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    json_path: str_of(c, "jsonPath"),
                })
                .collect()
        })
        .unwrap_or_else(|| {
            vec![PrinterColumn {
                name: "Age".into(),
                type_: "date".into(),
                format: String::new(),
                description: String::new(),
                priority: 0,
                json_path: ".metadata.creationTimestamp".into(),
            }]
        })
}

/// Parses and validates a CRD object into what it serves: every version with `served: true`
/// (missing counts as served), objects stored in the one version with `storage: true` (a CRD
/// with a single version may leave `storage` out). `spec.conversion.strategy: Webhook` is
/// refused: the sandbox does not call conversion webhooks, every version reads and writes the
/// same objects with only `apiVersion` rewritten (strategy `None`).
pub fn crd_resources(crd: &Value) -> Result<CrdServing, Vec<(String, String)>> {
    let mut errs = Vec::new();
    let spec = crd.get("spec").cloned().unwrap_or(json!({}));
    let group = str_of(&spec, "group");
    let names = spec.get("names").cloned().unwrap_or(json!({}));
    let plural = str_of(&names, "plural");
    let kind = str_of(&names, "kind");
    let mut singular = str_of(&names, "singular");
    if singular.is_empty() {
        singular = kind.to_lowercase();
    }
    let name = crate::util::meta_str(crd, "name")
        .unwrap_or_default()
        .to_string();
    if group.is_empty() {
        errs.push(("spec.group".into(), "Required value".into()));
    }
    if plural.is_empty() {
        errs.push(("spec.names.plural".into(), "Required value".into()));
    }
    if kind.is_empty() {
        errs.push(("spec.names.kind".into(), "Required value".into()));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        errs.push((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let scope = str_of(&spec, "scope");
    if scope != "Namespaced" && scope != "Cluster" {
        errs.push((
            "spec.scope".into(),
            format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        ));
    }
    match spec
        .get("conversion")
        .and_then(|c| c.get("strategy"))
        .and_then(Value::as_str)
    {
        None | Some("None") => {}
        Some("Webhook") => errs.push((
            "spec.conversion.strategy".into(),
            "Unsupported value: \"Webhook\": supported values: \"None\" (the sandbox does not call conversion webhooks: every served version reads and writes the same objects, only apiVersion differs)".into(),
        )),
        Some(other) => errs.push((
            "spec.conversion.strategy".into(),
            format!("Unsupported value: \"{other}\": supported values: \"None\", \"Webhook\""),
        )),
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut seen = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let vname = str_of(v, "name");
        if vname.is_empty() {
            errs.push((format!("spec.versions[{i}].name"), "Required value".into()));
        } else if seen.contains(&vname) {
            errs.push((
                "spec.versions".into(),
                "Invalid value: must contain unique version names".into(),
            ));
        }
        seen.push(vname);
    }
    let is_storage = |v: &Value| v.get("storage").and_then(Value::as_bool).unwrap_or(false);
    let storage_count = versions.iter().filter(|v| is_storage(v)).count();
    let storage = match (versions.as_slice(), storage_count) {
        ([], _) => {
            errs.push((
                "spec.versions".into(),
                "Required value: must have exactly one version marked as storage version".into(),
            ));
            None
        }
        // A single version is the storage version, even without `storage: true`.
        ([only], 0) => Some(only),
        (_, 1) => versions.iter().find(|v| is_storage(v)),
        _ => {
            errs.push((
                "spec.versions".into(),
                "Invalid value: must have exactly one version marked as storage version".into(),
            ));
            None
        }
    };
    let Some(storage) = storage else {
        return Err(errs);
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let storage_version = str_of(storage, "name");
    let served = |v: &&Value| v.get("served").and_then(Value::as_bool).unwrap_or(true);
    let ordered = std::iter::once(storage)
        .chain(versions.iter().filter(|v| !std::ptr::eq(*v, storage)))
        .filter(served);
    let versions = ordered
        .map(|ver| ResourceInfo {
            group: group.clone(),
            version: str_of(ver, "name"),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced: scope == "Namespaced",
            short_names: crate::util::string_list(names.get("shortNames")),
            categories: crate::util::string_list(names.get("categories")),
            status: ver
                .get("subresources")
                .and_then(|s| s.get("status"))
                .is_some(),
            custom: Some(Arc::new(CustomInfo {
                crd_name: name.clone(),
                storage_version: storage_version.clone(),
                schema: ver
                    .get("schema")
                    .and_then(|s| s.get("openAPIV3Schema"))
                    .cloned(),
                printer_columns: printer_columns(ver),
            })),
        })
        .collect();
    Ok(CrdServing {
        group,
        plural,
        singular,
        kind,
        storage_version,
        versions,
    })
}
