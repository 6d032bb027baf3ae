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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a paginated list's snapshot can be continued: a real API server's `continue`
/// token lasts until etcd compacts its revision, every 5 minutes by default
/// (kube-apiserver `--etcd-compaction-interval`).
const SNAPSHOT_TTL: Duration = Duration::from_secs(300);
/// How many unfinished paginated lists are kept at once (the oldest is dropped first).
const MAX_SNAPSHOTS: usize = 256;

/// Paginated lists are served from a snapshot taken by their first page, as a real API server
/// serves every page from the etcd revision of the first one: each page carries that first
/// page's `resourceVersion`, and an object created, changed or deleted between pages neither
/// shows up nor hides another. A client that starts a watch from the last page's
/// `resourceVersion` (as kube-rs' watcher and client-go's reflector do) so sees every change.
#[derive(Default)]
pub struct ListSnapshots {
    inner: Mutex<Snapshots>,
}

#[derive(Default)]
struct Snapshots {
    next: u64,
    by_id: HashMap<u64, Snapshot>,
}

/// When a snapshot was taken, its objects, and the resourceVersion it was taken at.
type Snapshot = (Instant, Items, u64);
/// The objects of a list, in order.
type Items = Arc<Vec<Arc<Value>>>;

/// The part of a list a request is served: `items[from..]`, at `rv`, from snapshot `id` if it
/// continues one.
pub(super) struct Page {
    items: Items,
    from: usize,
    rv: u64,
    id: Option<u64>,
}

impl ListSnapshots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Snapshots> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `page`'s snapshot for a next page starting at `next`; returns its `continue` token.
    fn keep(&self, page: &Page, next: usize) -> String {
        let mut s = self.lock();
        let id = match page.id {
            Some(id) => id,
            None => {
                s.by_id.retain(|_, (t, _, _)| t.elapsed() < SNAPSHOT_TTL);
                while s.by_id.len() >= MAX_SNAPSHOTS {
                    let Some(oldest) = s
                        .by_id
                        .iter()
                        .min_by_key(|(_, (t, _, _))| *t)
                        .map(|(k, _)| *k)
                    else {
                        break;
                    };
                    s.by_id.remove(&oldest);
                }
                s.next += 1;
                let id = s.next;
                s.by_id
                    .insert(id, (Instant::now(), page.items.clone(), page.rv));
                id
            }
        };
        crate::util::hex(format!("{id}\n{next}").as_bytes())
    }

    /// The page a `continue` token asks for.
    fn resume(&self, token: &str) -> Result<Page, ApiError> {
        let (id, from) = crate::util::unhex(token)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                let (id, from) = s.split_once('\n')?;
                Some((id.parse::<u64>().ok()?, from.parse::<usize>().ok()?))
            })
            .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
        let s = self.lock();
        match s.by_id.get(&id) {
            Some((taken, items, rv)) if taken.elapsed() < SNAPSHOT_TTL && from <= items.len() => {
                Ok(Page {
                    items: items.clone(),
                    from,
                    rv: *rv,
                    id: Some(id),
                })
            }
            // k8s.io/apiserver v0.32 pkg/storage/errors.go (`NewInvalidContinueError` message
            // for a compacted revision), 410 Expired.
            _ => Err(ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            )),
        }
    }

    fn forget(&self, id: u64) {
        self.lock().by_id.remove(&id);
    }
}

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
    let page = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => match ctx.lists.resume(token) {
            Ok(page) => page,
            Err(e) => return error_response(&e),
        },
        None => {
            let st = ctx.core.lock();
            let items: Vec<Arc<Value>> = st
                .list(crate::convert::storage_group(info), &info.plural, ns)
                .into_iter()
                .filter(|o| filter.matches(o))
                .collect();
            Page {
                items: Arc::new(items),
                from: 0,
                rv: st.rv,
                id: None,
            }
        }
    };
    let end = limit.map_or(page.items.len(), |l| {
        page.from.saturating_add(l).min(page.items.len())
    });
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if end < page.items.len() {
        meta["continue"] = json!(ctx.lists.keep(&page, end));
        meta["remainingItemCount"] = json!(page.items.len() - end);
    } else if let Some(id) = page.id {
        ctx.lists.forget(id);
    }
    let items: Vec<Value> = page.items[page.from..end]
        .iter()
        .map(|o| to_external(info, o))
        .collect();
    let objs = items;
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
