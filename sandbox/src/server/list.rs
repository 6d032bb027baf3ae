//! Lists (selectors, `limit` and `continue`) and deletecollection.

use super::{As, Ctx, error_response, include_of, json_response, partial};
use crate::api::DeleteOpts;
use crate::convert::to_external;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::selector::{
    FieldTerm, LabelSelector, fields_match, parse_field_selector_in, parse_label_selector,
};
use crate::store::ObjKey;
use crate::table::table;
use crate::util::meta_str;
use axum::body::Body;
use http::Response;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) struct Filter {
    labels: LabelSelector,
    fields: Vec<FieldTerm>,
}

impl Filter {
    pub(super) fn from_query(
        info: &ResourceInfo,
        q: &HashMap<String, String>,
    ) -> Result<Filter, ApiError> {
        let labels = parse_label_selector(
            q.get("labelSelector")
                .map(String::as_str)
                .unwrap_or_default(),
        )
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = parse_field_selector_in(
            q.get("fieldSelector")
                .map(String::as_str)
                .unwrap_or_default(),
            &info.group,
            &info.plural,
        )
        .map_err(ApiError::bad_request)?;
        Ok(Filter { labels, fields })
    }

    pub(super) fn matches(&self, o: &Value) -> bool {
        self.labels.matches_object(o) && fields_match(&self.fields, o)
    }
}

pub(super) fn storage_matches(info: &ResourceInfo, ns: Option<&str>, k: &ObjKey) -> bool {
    k.group == crate::convert::storage_group(info)
        && k.resource == info.plural
        && ns.is_none_or(|n| k.namespace == n)
}

pub(super) fn list(
    ctx: &Arc<Ctx>,
    info: &ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    as_: As,
) -> Response<Body> {
    let filter = match Filter::from_query(info, q) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let cont = q.get("continue").filter(|c| !c.is_empty()).cloned();
    let after: Option<(String, String)> = match &cont {
        Some(c) => match crate::util::unhex(c)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once('\n')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            }) {
            Some(p) => Some(p),
            None => return error_response(&ApiError::bad_request("invalid continue token")),
        },
        None => None,
    };
    let (items, rv) = {
        let st = ctx.core.lock();
        let items: Vec<(ObjKey, Value)> = st
            .list(crate::convert::storage_group(info), &info.plural, ns)
            .into_iter()
            .filter(|o| filter.matches(o))
            .map(|o| {
                let k = ObjKey {
                    group: String::new(),
                    resource: String::new(),
                    namespace: meta_str(&o, "namespace").unwrap_or_default().to_string(),
                    name: meta_str(&o, "name").unwrap_or_default().to_string(),
                };
                (k, to_external(info, &o))
            })
            .collect();
        (items, st.rv)
    };
    let mut items: Vec<(ObjKey, Value)> = match &after {
        Some((ans, aname)) => items
            .into_iter()
            .filter(|(k, _)| {
                (k.namespace.as_str(), k.name.as_str()) > (ans.as_str(), aname.as_str())
            })
            .collect(),
        None => items,
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(l) = limit
        && items.len() > l
    {
        let remaining = items.len() - l;
        items.truncate(l);
        if let Some((k, _)) = items.last() {
            meta["continue"] = json!(crate::util::hex(
                format!("{}\n{}", k.namespace, k.name).as_bytes()
            ));
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    let objs: Vec<Value> = items.into_iter().map(|(_, o)| o).collect();
    let body = match as_ {
        As::Table => table(info, &objs, include_of(q), meta),
        As::Metadata => {
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "items": objs.iter().map(partial).collect::<Vec<_>>()})
        }
        As::Plain => {
            json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": meta, "items": objs})
        }
    };
    json_response(200, &body, &[])
}

pub(super) async fn delete_collection(
    ctx: &Arc<Ctx>,
    info: &ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    opts: &DeleteOpts,
) -> Response<Body> {
    let filter = match Filter::from_query(info, q) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let targets: Vec<(String, String)> = {
        let st = ctx.core.lock();
        st.list(crate::convert::storage_group(info), &info.plural, ns)
            .into_iter()
            .filter(|o| filter.matches(o))
            .map(|o| {
                (
                    meta_str(&o, "namespace").unwrap_or_default().to_string(),
                    meta_str(&o, "name").unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let mut items = Vec::new();
    for (n, name) in targets {
        match ctx.core.delete(info, &n, &name, opts).await {
            Ok(o) => items.push(o.object),
            Err(e) if e.code == 404 => {}
            Err(e) => return error_response(&e),
        }
    }
    let rv = ctx.core.lock().rv;
    json_response(
        200,
        &json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        &[],
    )
}
