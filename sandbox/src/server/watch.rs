//! Watch streams: initial events, changes since a resourceVersion, bookmarks, `410 Expired`.

use super::list::{Filter, storage_matches};
use super::{As, Ctx, error_response, render_one};
use crate::convert::to_external;
use crate::error::ApiError;
use crate::fault::{InjectedFault, WatchFaults};
use crate::resources::ResourceInfo;
use crate::store::{EventType, Since};
use axum::body::{Body, Bytes};
use http::{HeaderValue, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

pub(super) fn watch_line(
    info: &ResourceInfo,
    as_: As,
    q: &HashMap<String, String>,
    kind: &str,
    obj: Value,
) -> Bytes {
    let object = render_one(info, as_, q, obj);
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

pub(super) fn expired_line(rv: u64, current: u64) -> Bytes {
    let e = ApiError::expired(format!("too old resource version: {rv} ({current})"));
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

pub(super) fn watch(
    ctx: &Arc<Ctx>,
    info: &ResourceInfo,
    ns: Option<String>,
    q: &HashMap<String, String>,
    as_: As,
    faults: Option<WatchFaults>,
) -> Response<Body> {
    let filter = match Filter::from_query(info, q) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let rv_param = q.get("resourceVersion").cloned().unwrap_or_default();
    let send_initial = q.get("sendInitialEvents").map(|s| s == "true");
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0);
    let requested_rv: Option<u64> = if rv_param.is_empty() || rv_param == "0" {
        None
    } else {
        match rv_param.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                return error_response(&ApiError::bad_request(format!(
                    "invalid resource version: {rv_param}"
                )));
            }
        }
    };
    let initial = send_initial.unwrap_or(requested_rv.is_none());
    if send_initial == Some(true)
        && q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan")
    {
        return error_response(&ApiError::invalid("meta.k8s.io", "ListOptions", "", &[("resourceVersionMatch".into(), "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into())]));
    }
    // An injected fault: a resume from a version that is no longer the latest is answered
    // as when the watch cache has moved on.
    if faults.is_some()
        && let Some(rv) = requested_rv
    {
        let current = ctx.core.lock().rv;
        if rv < current && ctx.faults.expire_resume() {
            let mut resp = stream_response(Body::from(expired_line(rv, current)));
            resp.extensions_mut().insert(InjectedFault { code: 410 });
            return resp;
        }
    }
    let dropped_at = faults.map(|f| tokio::time::Instant::now() + f.drop_after);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let core = ctx.core.clone();
    let info = info.clone();
    let q = q.clone();
    tokio::spawn(async move {
        struct Open(prometheus_client::metrics::gauge::Gauge);
        impl Drop for Open {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        core.metrics.watches.inc();
        let _open = Open(core.metrics.watches.clone());
        let mut changed = core.changed.subscribe();
        let mut closer = core.closer.subscribe();
        closer.mark_unchanged();
        let deadline =
            timeout.map(|t| tokio::time::Instant::now() + std::time::Duration::from_secs(t));
        let (mut last, first): (u64, Vec<Value>) = {
            let st = core.lock();
            if initial {
                let objs = st
                    .list(
                        crate::convert::storage_group(&info),
                        &info.plural,
                        ns.as_deref(),
                    )
                    .into_iter()
                    .filter(|o| filter.matches(o))
                    .map(|o| to_external(&info, &o))
                    .collect();
                (st.rv, objs)
            } else {
                (requested_rv.unwrap_or(st.rv), Vec::new())
            }
        };
        for o in first {
            if tx
                .send(watch_line(&info, as_, &q, "ADDED", o))
                .await
                .is_err()
            {
                return;
            }
        }
        if initial && bookmarks && send_initial == Some(true) {
            let bm = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": last.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
            if tx
                .send(watch_line(&info, As::Plain, &q, "BOOKMARK", bm))
                .await
                .is_err()
            {
                return;
            }
        }
        loop {
            let batch = {
                let st = core.lock();
                match st.since(last) {
                    Since::Expired => Err(st.rv),
                    Since::Changes(c) => Ok(c),
                }
            };
            let changes = match batch {
                Ok(c) => c,
                Err(current) => {
                    let _ = tx.send(expired_line(last, current)).await;
                    return;
                }
            };
            for c in changes {
                last = c.rv;
                if !storage_matches(&info, ns.as_deref(), &c.key) {
                    continue;
                }
                let now_match = filter.matches(&c.object);
                let kind = match c.kind {
                    EventType::Modified => {
                        let before = c.prev.as_ref().is_some_and(|p| filter.matches(p));
                        match (before, now_match) {
                            (true, true) => "MODIFIED",
                            (false, true) => "ADDED",
                            (true, false) => "DELETED",
                            (false, false) => continue,
                        }
                    }
                    other if now_match => other.as_str(),
                    _ => continue,
                };
                if tx
                    .send(watch_line(
                        &info,
                        as_,
                        &q,
                        kind,
                        to_external(&info, &c.object),
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let sleep = until(deadline);
            let dropped = until(dropped_at);
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = closer.changed() => return,
                _ = tx.closed() => return,
                _ = core.shutdown.cancelled() => return,
                _ = dropped => {
                    core.metrics.dropped_watches.inc();
                    tracing::info!(resource = %info.plural, "injected fault: watch closed");
                    return;
                }
                _ = sleep => {
                    if bookmarks {
                        let bm = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": last.to_string()}});
                        let _ = tx.send(watch_line(&info, As::Plain, &q, "BOOKMARK", bm)).await;
                    }
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    stream_response(Body::from_stream(stream))
}

/// Sleeps until `at`, or forever.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending::<()>().await,
    }
}

/// A watch response with `body` as its stream.
fn stream_response(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}
