//! Decoding of the Kubernetes protobuf envelope for the few kinds kubectl's imperative
//! `create` commands send as protobuf (`create namespace|configmap|secret|serviceaccount`).
//! Other kinds sent as protobuf get `415 UnsupportedMediaType` with a clear message.

use serde_json::{Map, Value, json};

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let (num, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => out.push((num, Field::Varint(varint(buf, &mut pos)?))),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
                out.push((num, Field::Bytes(&buf[pos..end])));
                pos = end;
            }
            1 => pos = pos.checked_add(8).filter(|e| *e <= buf.len())?,
            5 => pos = pos.checked_add(4).filter(|e| *e <= buf.len())?,
            _ => return None,
        }
    }
    Some(out)
}

fn string(b: &[u8]) -> Option<String> {
    String::from_utf8(b.to_vec()).ok()
}

fn map_entry(b: &[u8], bytes_value: bool) -> Option<(String, Value)> {
    let mut k = String::new();
    let mut v = Value::String(String::new());
    for (n, f) in fields(b)? {
        if let Field::Bytes(x) = f {
            match n {
                1 => k = string(x)?,
                2 if bytes_value => v = json!(crate::util::base64_encode(x)),
                2 => v = json!(string(x)?),
                _ => {}
            }
        }
    }
    Some((k, v))
}

fn object_meta(b: &[u8]) -> Option<Value> {
    let mut m = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                m.insert("name".into(), json!(string(x)?));
            }
            (2, Field::Bytes(x)) => {
                m.insert("generateName".into(), json!(string(x)?));
            }
            (3, Field::Bytes(x)) => {
                m.insert("namespace".into(), json!(string(x)?));
            }
            (11, Field::Bytes(x)) => {
                let (k, v) = map_entry(x, false)?;
                labels.insert(k, v);
            }
            (12, Field::Bytes(x)) => {
                let (k, v) = map_entry(x, false)?;
                annotations.insert(k, v);
            }
            (14, Field::Bytes(x)) => finalizers.push(json!(string(x)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Some(Value::Object(m))
}

/// Decodes a protobuf request body into JSON, or explains why it cannot.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| "the protobuf body lacks the Kubernetes envelope".to_string())?;
    let bad = || "malformed protobuf body".to_string();
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (n, f) in fields(rest).ok_or_else(bad)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (tn, tf) in fields(tm).ok_or_else(bad)? {
                    if let Field::Bytes(x) = tf {
                        match tn {
                            1 => api_version = string(x).ok_or_else(bad)?,
                            2 => kind = string(x).ok_or_else(bad)?,
                            _ => {}
                        }
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    let supported = api_version == "v1"
        && matches!(
            kind.as_str(),
            "Namespace" | "ConfigMap" | "Secret" | "ServiceAccount"
        );
    if !supported {
        return Err(format!(
            "the sandbox accepts protobuf request bodies only for v1 Namespace, ConfigMap, Secret and ServiceAccount (got {api_version} {kind}); send JSON instead (e.g. kubectl apply -f)"
        ));
    }
    let mut data = Map::new();
    let mut binary = Map::new();
    let mut string_data = Map::new();
    for (n, f) in fields(raw).ok_or_else(bad)? {
        match (kind.as_str(), n, f) {
            (_, 1, Field::Bytes(x)) => {
                obj.insert("metadata".into(), object_meta(x).ok_or_else(bad)?);
            }
            ("Namespace", 2, Field::Bytes(x)) => {
                let fins: Vec<Value> = fields(x)
                    .ok_or_else(bad)?
                    .into_iter()
                    .filter_map(|(n, f)| match (n, f) {
                        (1, Field::Bytes(s)) => string(s).map(Value::from),
                        _ => None,
                    })
                    .collect();
                obj.insert("spec".into(), json!({"finalizers": fins}));
            }
            ("ConfigMap", 2, Field::Bytes(x)) => {
                let (k, v) = map_entry(x, false).ok_or_else(bad)?;
                data.insert(k, v);
            }
            ("ConfigMap", 3, Field::Bytes(x)) => {
                let (k, v) = map_entry(x, true).ok_or_else(bad)?;
                binary.insert(k, v);
            }
            ("ConfigMap", 4, Field::Varint(v)) | ("Secret", 5, Field::Varint(v)) => {
                obj.insert("immutable".into(), json!(v != 0));
            }
            ("Secret", 2, Field::Bytes(x)) => {
                let (k, v) = map_entry(x, true).ok_or_else(bad)?;
                data.insert(k, v);
            }
            ("Secret", 3, Field::Bytes(x)) => {
                obj.insert("type".into(), json!(string(x).ok_or_else(bad)?));
            }
            ("Secret", 4, Field::Bytes(x)) => {
                let (k, v) = map_entry(x, false).ok_or_else(bad)?;
                string_data.insert(k, v);
            }
            ("ServiceAccount", 4, Field::Varint(v)) => {
                obj.insert("automountServiceAccountToken".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if !string_data.is_empty() {
        // The API server folds stringData into data.
        let d = obj.entry("data").or_insert_with(|| json!({}));
        if let Some(d) = d.as_object_mut() {
            for (k, v) in string_data {
                let s = v.as_str().unwrap_or_default().as_bytes().to_vec();
                d.insert(k, json!(crate::util::base64_encode(&s)));
            }
        }
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_bytes(n: u64, b: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8, b.len() as u8];
        out.extend_from_slice(b);
        out
    }

    #[test]
    fn decodes_a_configmap() {
        let meta = [
            field_bytes(1, b"cfg"),
            field_bytes(11, &[field_bytes(1, b"app"), field_bytes(2, b"x")].concat()),
        ]
        .concat();
        let raw = [
            field_bytes(1, &meta),
            field_bytes(2, &[field_bytes(1, b"k"), field_bytes(2, b"v")].concat()),
        ]
        .concat();
        let tm = [field_bytes(1, b"v1"), field_bytes(2, b"ConfigMap")].concat();
        let body = [b"k8s\0".to_vec(), field_bytes(1, &tm), field_bytes(2, &raw)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["metadata"]["name"], "cfg");
        assert_eq!(v["metadata"]["labels"]["app"], "x");
        assert_eq!(v["data"]["k"], "v");
        assert!(decode(b"k8s\0\x0a\x05").is_err());
    }
}
