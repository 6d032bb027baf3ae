//! Conversion between the stored form of objects and the version a request uses:
//! `events.k8s.io/v1` Events and the stored core `v1` Events, so both APIs see the same objects
//! (as on a real cluster) and `kubectl describe` lists events recorded through either; and
//! custom resources served in several versions, stored once in the CRD's storage version and
//! only relabelled (`apiVersion`), as the API server does with `conversion.strategy: None`.

use crate::resources::ResourceInfo;
use serde_json::{Map, Value, json};

/// The group an object of this resource is stored under.
pub fn storage_group(info: &ResourceInfo) -> &str {
    if info.group == "events.k8s.io" {
        ""
    } else {
        &info.group
    }
}

fn is_events_v1(info: &ResourceInfo) -> bool {
    info.group == "events.k8s.io"
}

fn mv(from: &mut Map<String, Value>, to: &mut Map<String, Value>, a: &str, b: &str) {
    if let Some(v) = from.remove(a) {
        to.insert(b.to_string(), v);
    }
}

/// The fields of an `events.k8s.io/v1` Event, each with the field of the core `v1` Event it is
/// stored as, in the order they are written.
const EVENT_FIELDS: [(&str, &str); 15] = [
    ("metadata", "metadata"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("related", "related"),
    ("series", "series"),
    ("eventTime", "eventTime"),
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedSource", "source"),
];

/// An Event moved field by field between the two APIs: to the core `v1` form (`to_core`) or
/// to the `events.k8s.io/v1` form, labelled `api_version`.
fn convert_event(
    mut src: Map<String, Value>,
    api_version: &str,
    to_core: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    for (events_v1, core) in EVENT_FIELDS {
        let (from, to) = if to_core {
            (events_v1, core)
        } else {
            (core, events_v1)
        };
        mv(&mut src, &mut out, from, to);
    }
    out
}

/// Converts a request object of `info` into its stored form.
pub fn to_internal(info: &ResourceInfo, obj: Value) -> Value {
    if is_core_event(info)
        && let Value::Object(event) = obj
    {
        return Value::Object(without_zero_values(event));
    }
    if !is_events_v1(info) {
        return obj;
    }
    let Value::Object(src) = obj else {
        return obj;
    };
    Value::Object(without_zero_values(convert_event(src, "v1", true)))
}

fn is_core_event(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "events"
}

/// The fields of an Event that Go serializes even when they hold their zero value (`omitempty`
/// does not omit structs, and `reportingComponent` / `reportingInstance` have no `omitempty`
/// in core `v1`; `eventTime` has none in `events.k8s.io/v1`), with that zero value: what a real
/// API server returns, e.g. `firstTimestamp: null` and `source: {}` for an event written
/// through `events.k8s.io/v1`. kubectl relies on them (`get events --sort-by=.lastTimestamp`
/// needs the field on at least one event).
const CORE_EVENT_ZERO_VALUES: [(&str, Zero); 7] = [
    ("involvedObject", Zero::Object),
    ("source", Zero::Object),
    ("firstTimestamp", Zero::Null),
    ("lastTimestamp", Zero::Null),
    ("eventTime", Zero::Null),
    ("reportingComponent", Zero::String),
    ("reportingInstance", Zero::String),
];

const EVENTS_V1_ZERO_VALUES: [(&str, Zero); 5] = [
    ("eventTime", Zero::Null),
    ("regarding", Zero::Object),
    ("deprecatedSource", Zero::Object),
    ("deprecatedFirstTimestamp", Zero::Null),
    ("deprecatedLastTimestamp", Zero::Null),
];

/// How Go serializes the zero value of a field: a zero `metav1.Time` is `null`, a struct `{}`.
#[derive(Clone, Copy)]
enum Zero {
    Null,
    Object,
    String,
}

impl Zero {
    fn value(self) -> Value {
        match self {
            Zero::Null => Value::Null,
            Zero::Object => json!({}),
            Zero::String => json!(""),
        }
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    }
}

/// An Event as stored: the zero values Go would serialize are left out (so the same event
/// written with or without them is the same object).
fn without_zero_values(mut event: Map<String, Value>) -> Map<String, Value> {
    for (k, _) in CORE_EVENT_ZERO_VALUES {
        if event.get(k).is_some_and(is_zero) {
            event.remove(k);
        }
    }
    if event.get("count").is_some_and(is_zero) {
        event.remove("count");
    }
    event
}

fn with_zero_values(mut event: Map<String, Value>, zeros: &[(&str, Zero)]) -> Value {
    for (k, zero) in zeros {
        event.entry(k.to_string()).or_insert_with(|| zero.value());
    }
    Value::Object(event)
}

/// A custom resource object relabelled with `api_version`; anything else unchanged.
fn relabel(info: &ResourceInfo, mut obj: Value, api_version: String) -> Value {
    if info.custom.is_some()
        && let Some(m) = obj.as_object_mut()
    {
        m.insert("apiVersion".into(), Value::String(api_version));
    }
    obj
}

/// The form in which a prepared (defaulted, validated) object of `info` is stored: custom
/// resources carry the CRD's storage version, whatever version the request used.
pub fn to_storage(info: &ResourceInfo, obj: Value) -> Value {
    let api_version = if info.group.is_empty() {
        info.storage_version().to_string()
    } else {
        format!("{}/{}", info.group, info.storage_version())
    };
    relabel(info, obj, api_version)
}

/// Converts a stored object into the representation of `info`.
pub fn to_external(info: &ResourceInfo, obj: &Value) -> Value {
    if info.custom.is_some() {
        return relabel(info, obj.clone(), info.api_version());
    }
    if is_core_event(info)
        && let Value::Object(event) = obj
    {
        return with_zero_values(event.clone(), &CORE_EVENT_ZERO_VALUES);
    }
    if !is_events_v1(info) {
        return obj.clone();
    }
    let Value::Object(src) = obj else {
        return obj.clone();
    };
    with_zero_values(
        convert_event(src.clone(), "events.k8s.io/v1", false),
        &EVENTS_V1_ZERO_VALUES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let info = crate::resources::builtins()
            .into_iter()
            .find(|r| r.group == "events.k8s.io")
            .unwrap();
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Started", "type": "Normal",
            "reportingController": "op", "reportingInstance": "op-1", "eventTime": "2024-01-01T00:00:00.000000Z"});
        let core = to_internal(&info, ev.clone());
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        // Nothing invented: a real server keeps `source` empty for such an event.
        assert!(core.get("source").is_none());
        assert_eq!(core["reportingComponent"], "op");
        let back = to_external(&info, &core);
        assert_eq!(back["note"], "hello");
        assert_eq!(back["regarding"]["kind"], "Pod");
        assert_eq!(back["deprecatedSource"], json!({}));
        assert_eq!(back["deprecatedLastTimestamp"], Value::Null);
        let core_info = crate::resources::builtins()
            .into_iter()
            .find(|r| r.group.is_empty() && r.plural == "events")
            .unwrap();
        let seen = to_external(&core_info, &core);
        assert_eq!(seen["source"], json!({}));
        assert_eq!(seen["lastTimestamp"], Value::Null);
        assert_eq!(seen["firstTimestamp"], Value::Null);
        assert_eq!(seen["reportingInstance"], "op-1");
        // Writing it back as read stores the same object.
        assert_eq!(to_internal(&core_info, seen), core);
    }
}
