//! OpenAPI v3 documents: the `/openapi/v3` index and one document per group/version, with
//! operations that declare the `fieldValidation` parameter (so kubectl validates server-side)
//! and, for custom resources, the CRD's schema (so `kubectl explain` works).

use crate::resources::{Registry, ResourceInfo};
use serde_json::{Map, Value, json};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`.
pub fn index(reg: &Registry) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(String, String)> = reg
        .all()
        .map(|r| (r.group.clone(), r.version.clone()))
        .collect();
    gvs.sort();
    gvs.dedup();
    for (g, v) in gvs {
        let p = gv_path(&g, &v);
        let hash = crate::util::hex(&fingerprint(reg, &g, &v).to_be_bytes());
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

fn fingerprint(reg: &Registry, g: &str, v: &str) -> u64 {
    // Built-in schemas never change; custom resources change with their CRDs.
    let custom: Vec<(String, Option<Value>)> = reg
        .all()
        .filter(|r| r.group == g && r.version == v)
        .map(|r| {
            (
                r.plural.clone(),
                r.custom.as_ref().and_then(|c| c.schema.clone()),
            )
        })
        .collect();
    let text = format!(
        "{g}/{v}{}",
        serde_json::to_string(&custom).unwrap_or_default()
    );
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn schema_name(r: &ResourceInfo) -> String {
    let mut parts: Vec<&str> = r.group.split('.').collect();
    parts.reverse();
    let g = if r.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else {
        parts.join(".")
    };
    format!("{g}.{}.{}", r.version, r.kind)
}

fn param(name: &str, location: &str) -> Value {
    json!({"name": name, "in": location, "schema": {"type": "string", "uniqueItems": true}})
}

fn operations(r: &ResourceInfo) -> Map<String, Value> {
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name(r))});
    let content = json!({"application/json": {"schema": reference}});
    let op = |action: &str, id: &str, with_body: bool, write: bool| {
        let mut params = vec![param("pretty", "query")];
        if write {
            params.push(param("dryRun", "query"));
            params.push(param("fieldManager", "query"));
            params.push(param("fieldValidation", "query"));
        }
        let mut o = json!({"operationId": format!("{id}{}", r.kind), "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk, "parameters": params,
            "responses": {"200": {"description": "OK", "content": content}}});
        if with_body {
            o["requestBody"] = json!({"content": content, "required": true});
        }
        o
    };
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let coll = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let mut paths = Map::new();
    let mut shared = vec![param("name", "path")];
    if r.namespaced {
        shared.push(param("namespace", "path"));
    }
    paths.insert(
        coll.clone(),
        json!({"get": op("list", "list", false, false), "post": op("post", "create", true, true),
            "parameters": if r.namespaced { json!([param("namespace", "path")]) } else { json!([]) }}),
    );
    paths.insert(
        format!("{coll}/{{name}}"),
        json!({"get": op("get", "read", false, false), "put": op("put", "replace", true, true),
            "patch": op("patch", "patch", true, true), "delete": op("delete", "delete", false, false),
            "parameters": shared}),
    );
    if r.status {
        paths.insert(
            format!("{coll}/{{name}}/status"),
            json!({"get": op("get", "read", false, false), "put": op("put", "replace", true, true),
                "patch": op("patch", "patch", true, true), "parameters": shared}),
        );
    }
    paths
}

type Published = (Value, Map<String, Value>);

fn generate<T: schemars::JsonSchema>() -> Option<Published> {
    let root = schemars::generate::SchemaSettings::openapi3()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut v = serde_json::to_value(root).ok()?;
    let m = v.as_object_mut()?;
    m.remove("$schema");
    let defs = m
        .remove("components")
        .and_then(|c| c.get("schemas").and_then(Value::as_object).cloned())
        .unwrap_or_default();
    Some((v, defs))
}

/// The published schema of a built-in kind (from k8s-openapi) and the definitions it refers to.
fn builtin_schema(r: &ResourceInfo) -> Option<&'static Published> {
    use k8s_openapi::api::{
        admissionregistration::v1 as adm, apps::v1 as apps, coordination::v1 as coord,
        core::v1 as core, events::v1 as events, policy::v1 as policy, rbac::v1 as rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    type Cache = std::collections::HashMap<(&'static str, &'static str), Published>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    if r.custom.is_some() {
        return None;
    }
    let cache = CACHE.get_or_init(|| {
        let entries: Vec<((&'static str, &'static str), Option<Published>)> = vec![
            (("", "namespaces"), generate::<core::Namespace>()),
            (("", "pods"), generate::<core::Pod>()),
            (("", "services"), generate::<core::Service>()),
            (("", "endpoints"), generate::<core::Endpoints>()),
            (("", "configmaps"), generate::<core::ConfigMap>()),
            (("", "secrets"), generate::<core::Secret>()),
            (("", "events"), generate::<core::Event>()),
            (("", "serviceaccounts"), generate::<core::ServiceAccount>()),
            (
                ("", "persistentvolumeclaims"),
                generate::<core::PersistentVolumeClaim>(),
            ),
            (("", "nodes"), generate::<core::Node>()),
            (("apps", "statefulsets"), generate::<apps::StatefulSet>()),
            (("apps", "deployments"), generate::<apps::Deployment>()),
            (("apps", "replicasets"), generate::<apps::ReplicaSet>()),
            (
                ("apps", "controllerrevisions"),
                generate::<apps::ControllerRevision>(),
            ),
            (
                ("policy", "poddisruptionbudgets"),
                generate::<policy::PodDisruptionBudget>(),
            ),
            (
                ("coordination.k8s.io", "leases"),
                generate::<coord::Lease>(),
            ),
            (("events.k8s.io", "events"), generate::<events::Event>()),
            (
                ("apiextensions.k8s.io", "customresourcedefinitions"),
                generate::<apiext::CustomResourceDefinition>(),
            ),
            (
                (
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations",
                ),
                generate::<adm::ValidatingWebhookConfiguration>(),
            ),
            (
                ("rbac.authorization.k8s.io", "roles"),
                generate::<rbac::Role>(),
            ),
            (
                ("rbac.authorization.k8s.io", "rolebindings"),
                generate::<rbac::RoleBinding>(),
            ),
            (
                ("rbac.authorization.k8s.io", "clusterroles"),
                generate::<rbac::ClusterRole>(),
            ),
            (
                ("rbac.authorization.k8s.io", "clusterrolebindings"),
                generate::<rbac::ClusterRoleBinding>(),
            ),
        ];
        entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    });
    cache
        .iter()
        .find(|((g, p), _)| *g == r.group && *p == r.plural)
        .map(|(_, v)| v)
}

fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    let mut cur = schema;
    for _ in 0..8 {
        if let Some(r) = cur.get("$ref").and_then(Value::as_str) {
            match r.rsplit('/').next().and_then(|name| defs.get(name)) {
                Some(d) => cur = d,
                None => return cur,
            }
        } else if let Some([one]) = cur
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            cur = one;
        } else {
            return cur;
        }
    }
    cur
}

fn walk_unknown(
    schema: &Value,
    defs: &Map<String, Value>,
    value: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    let schema = resolve(schema, defs);
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match value {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let open = schema
                    .get("x-kubernetes-preserve-unknown-fields")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                for (k, v) in m {
                    match props.get(k) {
                        Some(s) => walk_unknown(s, defs, v, &join(k), out),
                        None if open => {}
                        None => out.push(join(k)),
                    }
                }
            } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in m {
                    walk_unknown(ap, defs, v, &join(k), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk_unknown(s, defs, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Fields of a built-in object that its published schema does not declare (`spec.replica`).
pub fn unknown_builtin_fields(r: &ResourceInfo, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((schema, defs)) = builtin_schema(r) {
        walk_unknown(schema, defs, obj, "", &mut out);
    }
    out
}

fn object_schema(r: &ResourceInfo) -> Value {
    let gvk = json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
    let base = json!({
        "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
        "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
        "metadata": {"type": "object", "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", "x-kubernetes-preserve-unknown-fields": true},
    });
    let mut s = match r.custom.as_ref().and_then(|c| c.schema.clone()) {
        Some(s) => s,
        None => match builtin_schema(r) {
            Some((s, _)) => s.clone(),
            None => {
                json!({"type": "object", "description": format!("{} (schema not published by the sandbox)", r.kind), "x-kubernetes-preserve-unknown-fields": true})
            }
        },
    };
    if let Some(m) = s.as_object_mut() {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let (Some(p), Some(b)) = (props.as_object_mut(), base.as_object()) {
            for (k, v) in b {
                p.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        m.insert("x-kubernetes-group-version-kind".into(), gvk);
    }
    s
}

fn document_for(reg: &Registry, group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in reg
        .all()
        .filter(|r| r.group == group && r.version == version)
    {
        paths.extend(operations(r));
        if let Some((_, defs)) = builtin_schema(r) {
            for (k, v) in defs {
                schemas.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        schemas.insert(schema_name(r), object_schema(r));
    }
    json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths, "components": {"schemas": schemas}})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn document(reg: &Registry, rest: &[&str]) -> Option<Value> {
    let (g, v) = match rest {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    if !reg.has_group_version(g, v) {
        return None;
    }
    Some(document_for(reg, g, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_schemas_find_unknown_fields() {
        let reg = Registry::default();
        let deps = reg.find("apps", "v1", "deployments").unwrap();
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "b"}},
            "spec": {"replica": 2, "selector": {"matchLabels": {"a": "b"}}, "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x", "imagePullPolicy": "Always", "bogus": true,
                    "resources": {"limits": {"cpu": "1"}}, "ports": [{"containerPort": 80}]}]}}},
            "status": {"replicas": 1}});
        assert_eq!(
            unknown_builtin_fields(&deps, &d),
            ["spec.replica", "spec.template.spec.containers[0].bogus"]
        );
        let cms = reg.find("", "v1", "configmaps").unwrap();
        assert!(
            unknown_builtin_fields(
                &cms,
                &json!({"data": {"k": "v"}, "metadata": {"annotations": {"x": "y"}}})
            )
            .is_empty()
        );
        let doc = document(&reg, &["apis", "apps", "v1"]).unwrap();
        assert!(
            doc["components"]["schemas"][schema_name(&deps)]["x-kubernetes-group-version-kind"]
                .is_array()
        );
    }
}
