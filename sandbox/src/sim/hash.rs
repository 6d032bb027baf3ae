//! Stable hashing of pod templates, as used for `controller-revision-hash`
//! and `pod-template-hash`.

use serde::Serialize;
use serde_json::Value;

/// The alphabet Kubernetes uses for generated suffixes and encoded hashes.
pub(crate) const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Writes `value` as JSON with object keys sorted, so that the output only
/// depends on the content and never on map ordering.
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// 32-bit FNV-1a.
pub(crate) fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Encodes a string the way Kubernetes' `rand.SafeEncodeString` does: every
/// character maps to one of the safe alphabet's characters.
pub(crate) fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| char::from(SAFE_ALPHABET[(c as usize) % SAFE_ALPHABET.len()]))
        .collect()
}

/// The hash of a template (plus an optional collision count), encoded like
/// Kubernetes encodes `pod-template-hash` and `controller-revision-hash`
/// suffixes.
pub(crate) fn template_hash<T: Serialize>(template: &T, collision_count: Option<i32>) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    let mut text = canonical_json(&value);
    if let Some(c) = collision_count.filter(|c| *c > 0) {
        text.push_str(&format!("#{c}"));
    }
    safe_encode(&fnv1a32(text.as_bytes()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn template(image: &str, labels: &[(&str, &str)]) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                ),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hash_is_stable_and_ignores_key_order() {
        let a = template("nginx:1.0", &[("app", "web"), ("tier", "front")]);
        let b = template("nginx:1.0", &[("tier", "front"), ("app", "web")]);
        assert_eq!(template_hash(&a, None), template_hash(&b, None));
        // The same input always gives the same, known output.
        let h = template_hash(&a, None);
        assert_eq!(h, template_hash(&a.clone(), None));
        assert!(h.bytes().all(|c| SAFE_ALPHABET.contains(&c)));
        assert!(!h.is_empty() && h.len() <= 10);

        let x = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": null}});
        let y = json!({"a": {"c": null, "d": [1, {"y": 1, "z": 0}]}, "b": 1});
        assert_eq!(canonical_json(&x), canonical_json(&y));
        assert_eq!(
            canonical_json(&x),
            r#"{"a":{"c":null,"d":[1,{"y":1,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn hash_changes_with_template_and_collision_count() {
        let a = template("nginx:1.0", &[("app", "web")]);
        let b = template("nginx:1.1", &[("app", "web")]);
        assert_ne!(template_hash(&a, None), template_hash(&b, None));
        assert_ne!(template_hash(&a, None), template_hash(&a, Some(1)));
        assert_eq!(template_hash(&a, None), template_hash(&a, Some(0)));
    }

    #[test]
    fn many_random_templates_rarely_collide() {
        let mut rng = crate::sim::rng::SplitMix64::new(99);
        let mut seen = std::collections::HashSet::new();
        for i in 0..2000 {
            let t = template(&format!("img:{}", rng.next_u64()), &[("i", &i.to_string())]);
            seen.insert(template_hash(&t, None));
        }
        assert!(seen.len() >= 1995, "{}", seen.len());
    }
}
