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

/// Converts a request object of `info` into its stored form.
pub fn to_internal(info: &ResourceInfo, obj: Value) -> Value {
    if !is_events_v1(info) {
        return obj;
    }
    let Value::Object(mut src) = obj else {
        return obj;
    };
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("kind".into(), json!("Event"));
    for k in [
        "metadata",
        "reason",
        "type",
        "action",
        "related",
        "series",
        "eventTime",
    ] {
        mv(&mut src, &mut out, k, k);
    }
    mv(&mut src, &mut out, "regarding", "involvedObject");
    mv(&mut src, &mut out, "note", "message");
    mv(
        &mut src,
        &mut out,
        "reportingController",
        "reportingComponent",
    );
    mv(&mut src, &mut out, "reportingInstance", "reportingInstance");
    mv(&mut src, &mut out, "deprecatedCount", "count");
    mv(
        &mut src,
        &mut out,
        "deprecatedFirstTimestamp",
        "firstTimestamp",
    );
    mv(
        &mut src,
        &mut out,
        "deprecatedLastTimestamp",
        "lastTimestamp",
    );
    if let Some(Value::Object(s)) = src.remove("deprecatedSource") {
        out.insert("source".into(), Value::Object(s));
    } else if let Some(c) = out.get("reportingComponent").cloned() {
        out.insert("source".into(), json!({"component": c}));
    }
    Value::Object(out)
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
    if !is_events_v1(info) {
        return obj.clone();
    }
    let Value::Object(src) = obj else {
        return obj.clone();
    };
    let mut src = src.clone();
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    out.insert("kind".into(), json!("Event"));
    for k in [
        "metadata",
        "reason",
        "type",
        "action",
        "related",
        "series",
        "eventTime",
    ] {
        mv(&mut src, &mut out, k, k);
    }
    mv(&mut src, &mut out, "involvedObject", "regarding");
    mv(&mut src, &mut out, "message", "note");
    mv(
        &mut src,
        &mut out,
        "reportingComponent",
        "reportingController",
    );
    mv(&mut src, &mut out, "reportingInstance", "reportingInstance");
    mv(&mut src, &mut out, "count", "deprecatedCount");
    mv(
        &mut src,
        &mut out,
        "firstTimestamp",
        "deprecatedFirstTimestamp",
    );
    mv(
        &mut src,
        &mut out,
        "lastTimestamp",
        "deprecatedLastTimestamp",
    );
    mv(&mut src, &mut out, "source", "deprecatedSource");
    Value::Object(out)
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
        assert_eq!(core["source"]["component"], "op");
        let back = to_external(&info, &core);
        assert_eq!(back["note"], "hello");
        assert_eq!(back["regarding"]["kind"], "Pod");
    }
}
