//! Server-side printing: `meta.k8s.io/v1` Tables, as `kubectl get` requests them.

use crate::resources::ResourceInfo;
use crate::util::{age, meta_str};
use serde_json::{Value, json};

/// What each row carries (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The full object.
    Object,
}

fn col(name: &str, type_: &str, format: &str, priority: i64, description: &str) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn name_col() -> Value {
    col(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated.",
    )
}

fn age_col() -> Value {
    col(
        "Age",
        "string",
        "",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    )
}

fn i(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

fn s(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Evaluates the JSONPath of a printer column as the API server does for the forms CRDs use:
/// fields (`.status.replicas`), indexes (`.spec.items[0].x`) and filters on a field of list
/// items (`.status.conditions[?(@.type=="Ready")].status`, the first match).
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    let p = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    for step in path_steps(p) {
        cur = match step {
            Step::Field(f) => cur.get(f)?,
            Step::Index(i) => cur.get(i)?,
            Step::Filter { field, value } => cur
                .as_array()?
                .iter()
                .find(|item| item.get(field).is_some_and(|v| filter_matches(v, value)))?,
        };
    }
    Some(cur)
}

/// Whether a value equals the literal of a filter (`"Ready"`, `true`, `3`).
fn filter_matches(v: &Value, literal: &str) -> bool {
    match v {
        Value::String(s) => s == literal,
        Value::Bool(b) => literal == if *b { "true" } else { "false" },
        Value::Number(n) => literal.parse::<f64>().ok() == n.as_f64(),
        _ => false,
    }
}

#[derive(Debug, PartialEq)]
enum Step<'p> {
    Field(&'p str),
    Index(usize),
    Filter { field: &'p str, value: &'p str },
}

/// Splits a JSONPath into steps; brackets are read whole (a filter may contain dots). An
/// unreadable bracket ends the path with a step that matches nothing.
fn path_steps(p: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                out.push(Step::Field("\u{0}"));
                break;
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Ok(i) = inner.trim().parse::<usize>() {
                out.push(Step::Index(i));
            } else if let Some(filter) = inner
                .trim()
                .strip_prefix("?(@.")
                .and_then(|f| f.strip_suffix(')'))
                && let Some((field, value)) = filter.split_once("==")
            {
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                out.push(Step::Filter {
                    field: field.trim(),
                    value,
                });
            } else {
                out.push(Step::Field("\u{0}"));
                break;
            }
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        out.push(Step::Field(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn custom_cell(type_: &str, v: Option<&Value>) -> Value {
    let Some(v) = v else { return Value::Null };
    match type_ {
        "integer" => v
            .as_i64()
            .map(Value::from)
            .or_else(|| v.as_f64().map(|f| json!(f as i64)))
            .unwrap_or(Value::Null),
        "number" => v.as_f64().map(Value::from).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(Value::from).unwrap_or(Value::Null),
        "date" => match v.as_str() {
            Some(t) if crate::util::parse_time(t).is_some() => json!(age(Some(t))),
            Some(_) => json!("<invalid>"),
            None => Value::Null,
        },
        _ => match v {
            Value::String(s) => json!(s),
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
    }
}

/// A non-empty timestamp.
fn time(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|t| !t.is_empty())
}

/// The non-empty string at `key` of `o`.
fn non_empty<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An Event's row as the API server prints it (`printEvent`), from the core `v1` or the
/// `events.k8s.io/v1` representation: FIRST SEEN is `firstTimestamp`, else `eventTime`; LAST
/// SEEN is the series' `lastObservedTime`, else `lastTimestamp`, else FIRST SEEN; COUNT the
/// series' count, else `count`, else 1.
fn event_cells(o: &Value) -> Vec<Value> {
    let field = |core: &str, v1: &str| o.get(core).or_else(|| o.get(v1));
    let first = match time(field("firstTimestamp", "deprecatedFirstTimestamp")) {
        Some(t) => age(Some(t)),
        None => age(time(o.get("eventTime"))),
    };
    let series = o.get("series").filter(|s| s.is_object());
    let last = match (
        series,
        time(field("lastTimestamp", "deprecatedLastTimestamp")),
    ) {
        (Some(series), _) => age(time(series.get("lastObservedTime"))),
        (None, Some(t)) => age(Some(t)),
        (None, None) => first.clone(),
    };
    let count = match series {
        Some(series) => i(series.get("count")),
        None => match i(field("count", "deprecatedCount")) {
            0 => 1,
            n => n,
        },
    };
    let inv = field("involvedObject", "regarding")
        .cloned()
        .unwrap_or(json!({}));
    let kind = s(inv.get("kind")).to_lowercase();
    let target = match non_empty(&inv, "name") {
        Some(name) => format!("{kind}/{name}"),
        None => kind,
    };
    let source = field("source", "deprecatedSource")
        .cloned()
        .unwrap_or(json!({}));
    let component = non_empty(&source, "component")
        .or_else(|| non_empty(o, "reportingComponent"))
        .or_else(|| non_empty(o, "reportingController"))
        .unwrap_or_default();
    let source = match non_empty(&source, "host").or_else(|| non_empty(o, "reportingInstance")) {
        Some(instance) => format!("{component}, {instance}"),
        None => component.to_string(),
    };
    vec![
        json!(last),
        json!(s(o.get("type"))),
        json!(s(o.get("reason"))),
        json!(target),
        json!(s(inv.get("fieldPath"))),
        json!(source),
        json!(s(field("message", "note")).trim()),
        json!(first),
        json!(count),
        json!(meta_str(o, "name").unwrap_or_default()),
    ]
}

/// Pod STATUS as `kubectl get pods` shows it.
pub fn pod_status(pod: &Value) -> String {
    let status = pod.get("status").cloned().unwrap_or(json!({}));
    let mut reason = s(status.get("phase"));
    if let Some(r) = status.get("reason").and_then(Value::as_str) {
        reason = r.to_string();
    }
    let mut has_running = false;
    if let Some(cs) = status.get("containerStatuses").and_then(Value::as_array) {
        for c in cs.iter().rev() {
            let st = c.get("state").cloned().unwrap_or(json!({}));
            if let Some(w) = st
                .get("waiting")
                .and_then(|w| w.get("reason"))
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                reason = w.to_string();
            } else if let Some(t) = st.get("terminated") {
                reason = match t
                    .get("reason")
                    .and_then(Value::as_str)
                    .filter(|r| !r.is_empty())
                {
                    Some(r) => r.to_string(),
                    None => match t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                        Some(sig) => format!("Signal:{sig}"),
                        None => format!("ExitCode:{}", i(t.get("exitCode"))),
                    },
                };
            } else if c.get("ready").and_then(Value::as_bool).unwrap_or(false)
                && st.get("running").is_some()
            {
                has_running = true;
            }
        }
    }
    if reason == "Completed" && has_running {
        reason = "Running".into();
    }
    if meta_str(pod, "deletionTimestamp").is_some() {
        reason = if status.get("reason").and_then(Value::as_str) == Some("NodeLost") {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn columns(info: &ResourceInfo) -> Vec<Value> {
    if let Some(c) = &info.custom {
        let mut cols = vec![name_col()];
        for pc in &c.printer_columns {
            cols.push(col(
                &pc.name,
                &pc.type_,
                &pc.format,
                pc.priority,
                &pc.description,
            ));
        }
        return cols;
    }
    let st = |n: &str| col(n, "string", "", 0, "");
    let int = |n: &str| col(n, "integer", "", 0, "");
    let wide = |n: &str| col(n, "string", "", 1, "");
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => vec![
            name_col(),
            st("Ready"),
            st("Status"),
            st("Restarts"),
            age_col(),
            wide("IP"),
            wide("Node"),
        ],
        ("apps", "deployments") => vec![
            name_col(),
            st("Ready"),
            int("Up-to-date"),
            int("Available"),
            age_col(),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        ("apps", "statefulsets") => vec![
            name_col(),
            st("Ready"),
            age_col(),
            wide("Containers"),
            wide("Images"),
        ],
        ("apps", "replicasets") => vec![
            name_col(),
            int("Desired"),
            int("Current"),
            int("Ready"),
            age_col(),
        ],
        ("", "namespaces") => vec![name_col(), st("Status"), age_col()],
        ("", "services") => vec![
            name_col(),
            st("Type"),
            st("Cluster-IP"),
            st("External-IP"),
            st("Port(s)"),
            age_col(),
            wide("Selector"),
        ],
        ("", "configmaps") => vec![name_col(), int("Data"), age_col()],
        ("", "secrets") => vec![name_col(), st("Type"), int("Data"), age_col()],
        ("", "events") | ("events.k8s.io", "events") => vec![
            st("Last Seen"),
            st("Type"),
            st("Reason"),
            st("Object"),
            wide("Subobject"),
            wide("Source"),
            st("Message"),
            wide("First Seen"),
            col("Count", "integer", "", 1, ""),
            wide("Name"),
        ],
        ("", "nodes") => vec![
            name_col(),
            st("Status"),
            st("Roles"),
            age_col(),
            st("Version"),
        ],
        ("", "persistentvolumeclaims") => vec![
            name_col(),
            st("Status"),
            st("Volume"),
            st("Capacity"),
            st("Access Modes"),
            st("StorageClass"),
            age_col(),
        ],
        ("policy", "poddisruptionbudgets") => vec![
            name_col(),
            st("Min Available"),
            st("Max Unavailable"),
            int("Allowed Disruptions"),
            age_col(),
        ],
        ("coordination.k8s.io", "leases") => vec![name_col(), st("Holder"), age_col()],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![name_col(), col("Created At", "date", "", 0, "")]
        }
        _ => vec![name_col(), age_col()],
    }
}

fn containers_images(spec: Option<&Value>) -> (String, String) {
    let cs = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = cs.iter().map(|c| s(c.get("name"))).collect();
    let images: Vec<String> = cs.iter().map(|c| s(c.get("image"))).collect();
    (names.join(","), images.join(","))
}

fn or_none(v: String) -> Value {
    if v.is_empty() {
        json!("<none>")
    } else {
        json!(v)
    }
}

fn cells(info: &ResourceInfo, o: &Value) -> Vec<Value> {
    let name = json!(meta_str(o, "name").unwrap_or_default());
    let created = meta_str(o, "creationTimestamp");
    let a = json!(age(created));
    if let Some(c) = &info.custom {
        let mut row = vec![name];
        for pc in &c.printer_columns {
            row.push(custom_cell(&pc.type_, json_path(o, &pc.json_path)));
        }
        return row;
    }
    let spec = o.get("spec");
    let status = o.get("status").cloned().unwrap_or(json!({}));
    // The READY column of Deployments and StatefulSets: ready of desired replicas.
    let ready_of_replicas = || {
        json!(format!(
            "{}/{}",
            i(status.get("readyReplicas")),
            i(spec.and_then(|s| s.get("replicas")))
        ))
    };
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => {
            let total = spec
                .and_then(|s| s.get("containers"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let cs = status
                .get("containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready = cs
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool).unwrap_or(false))
                .count();
            let restarts: i64 = cs.iter().map(|c| i(c.get("restartCount"))).sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                a,
                or_none(s(status.get("podIP"))),
                or_none(s(spec.and_then(|s| s.get("nodeName")))),
            ]
        }
        ("apps", "deployments") => {
            let (c, im) = containers_images(
                spec.and_then(|s| s.get("template"))
                    .and_then(|t| t.get("spec")),
            );
            let sel = spec
                .and_then(|s| s.get("selector"))
                .and_then(|s| s.get("matchLabels"))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                name,
                ready_of_replicas(),
                json!(i(status.get("updatedReplicas"))),
                json!(i(status.get("availableReplicas"))),
                a,
                json!(c),
                json!(im),
                json!(sel),
            ]
        }
        ("apps", "statefulsets") => {
            let (c, im) = containers_images(
                spec.and_then(|s| s.get("template"))
                    .and_then(|t| t.get("spec")),
            );
            vec![name, ready_of_replicas(), a, json!(c), json!(im)]
        }
        ("apps", "replicasets") => vec![
            name,
            json!(i(spec.and_then(|s| s.get("replicas")))),
            json!(i(status.get("replicas"))),
            json!(i(status.get("readyReplicas"))),
            a,
        ],
        ("", "namespaces") => vec![name, json!(s(status.get("phase"))), a],
        ("", "services") => {
            let ports = spec
                .and_then(|s| s.get("ports"))
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| format!("{}/{}", i(p.get("port")), s(p.get("protocol"))))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                name,
                json!(s(spec.and_then(|s| s.get("type")))),
                or_none(s(spec.and_then(|s| s.get("clusterIP")))),
                json!("<none>"),
                or_none(ports),
                a,
                json!("<none>"),
            ]
        }
        ("", "configmaps") => {
            let n = o
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + o.get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(n), a]
        }
        ("", "secrets") => vec![
            name,
            json!(s(o.get("type"))),
            json!(
                o.get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
            ),
            a,
        ],
        ("", "events") | ("events.k8s.io", "events") => event_cells(o),
        ("", "nodes") => {
            let ready = status
                .get("conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                })
                .map(|c| {
                    if s(c.get("status")) == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown");
            vec![
                name,
                json!(ready),
                json!("<none>"),
                a,
                json!(s(status
                    .get("nodeInfo")
                    .and_then(|n| n.get("kubeletVersion")))),
            ]
        }
        ("", "persistentvolumeclaims") => vec![
            name,
            json!(s(status.get("phase"))),
            json!(s(spec.and_then(|s| s.get("volumeName")))),
            json!(s(status.get("capacity").and_then(|c| c.get("storage")))),
            json!(""),
            json!(s(spec.and_then(|s| s.get("storageClassName")))),
            a,
        ],
        ("policy", "poddisruptionbudgets") => {
            let f = |k: &str| {
                spec.and_then(|s| s.get(k))
                    .map(|v| match v {
                        Value::String(x) => x.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or("N/A".into())
            };
            vec![
                name,
                json!(f("minAvailable")),
                json!(f("maxUnavailable")),
                json!(i(status.get("disruptionsAllowed"))),
                a,
            ]
        }
        ("coordination.k8s.io", "leases") => vec![
            name,
            json!(s(spec.and_then(|s| s.get("holderIdentity")))),
            a,
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![name, json!(created.unwrap_or_default())]
        }
        _ => vec![name, a],
    }
}

fn partial_metadata(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))})
}

/// A Table of objects.
pub fn table(info: &ResourceInfo, objs: &[Value], include: Include, list_meta: Value) -> Value {
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(info, o)});
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial_metadata(o),
                Include::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns(info), "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_status_shows_waiting_reason_and_terminating() {
        let p = json!({"metadata": {"name": "p"}, "status": {"phase": "Running", "containerStatuses": [{"ready": false, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(pod_status(&p), "CrashLoopBackOff");
        let t = json!({"metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&t), "Terminating");
    }

    #[test]
    fn json_paths() {
        let o = json!({"status": {"replicas": 7, "list": [{"a": 1}]}});
        assert_eq!(json_path(&o, ".status.replicas"), Some(&json!(7)));
        assert_eq!(json_path(&o, ".status.list[0].a"), Some(&json!(1)));
        assert_eq!(json_path(&o, ".status.missing"), None);
        let c = json!({"status": {"conditions": [
            {"type": "Upgrading", "status": "False"},
            {"type": "Ready", "status": "True", "reason": "UpToDate"}
        ]}});
        assert_eq!(
            json_path(&c, r#".status.conditions[?(@.type=="Ready")].status"#),
            Some(&json!("True"))
        );
        assert_eq!(
            json_path(&c, ".status.conditions[?(@.type=='Upgrading')].status"),
            Some(&json!("False"))
        );
        assert_eq!(
            json_path(&c, r#".status.conditions[?(@.type=="Nope")].status"#),
            None
        );
        assert_eq!(json_path(&c, ".status.conditions[?(bad)]"), None);
    }
}
