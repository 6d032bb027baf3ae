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
    let text = serde_json::to_string(&document_for(reg, g, v)).unwrap_or_default();
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

fn object_schema(r: &ResourceInfo) -> Value {
    let gvk = json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
    let base = json!({
        "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
        "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
        "metadata": {"type": "object", "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", "x-kubernetes-preserve-unknown-fields": true},
    });
    let mut s = match r.custom.as_ref().and_then(|c| c.schema.clone()) {
        Some(s) => s,
        None => {
            json!({"type": "object", "description": format!("{} (schema not published by the sandbox)", r.kind), "x-kubernetes-preserve-unknown-fields": true})
        }
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
