//! Structural-schema handling of custom resources: pruning of unknown fields, defaulting
//! (including nested defaults) and validation (`type`, `required`, `minimum`/`maximum`,
//! `minLength`/`maxLength`, `pattern`, `enum`, `minItems`/`maxItems`, `nullable`).

use serde_json::{Map, Value};

fn props(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn nullable(schema: &Value) -> bool {
    schema
        .get("nullable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Drops `null` values the schema does not allow, then applies `default`s, recursively.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(m) => {
            if let Some(p) = props(schema) {
                m.retain(|k, v| {
                    !(v.is_null()
                        && p.get(k)
                            .is_some_and(|s| !nullable(s) && s.get("default").is_none()))
                });
                for (k, s) in p {
                    let missing = m.get(k).is_none_or(|v| v.is_null() && !nullable(s));
                    if missing && let Some(d) = s.get("default") {
                        m.insert(k.clone(), d.clone());
                    }
                    if let Some(v) = m.get_mut(k) {
                        apply_defaults(s, v);
                    }
                }
            } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for v in m.values_mut() {
                    apply_defaults(ap, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for v in items {
                    apply_defaults(s, v);
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes fields the schema does not declare; returns their paths (`spec.foo`).
pub fn prune(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    if preserves_unknown(schema) && props(schema).is_none() {
        return;
    }
    match value {
        Value::Object(m) => {
            if let Some(p) = props(schema) {
                let keep_extra = preserves_unknown(schema);
                let root = path.is_empty();
                let mut remove = Vec::new();
                for (k, v) in m.iter_mut() {
                    if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    match p.get(k) {
                        Some(s) => prune(s, v, &join(path, k), unknown),
                        None if keep_extra => {}
                        None => remove.push(k.clone()),
                    }
                }
                for k in remove {
                    unknown.push(join(path, &k));
                    m.remove(&k);
                }
            } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in m.iter_mut() {
                    prune(ap, v, &join(path, k), unknown);
                }
            } else if schema.get("type").and_then(Value::as_str) == Some("object")
                && schema.get("additionalProperties").is_none()
                && !path.is_empty()
            {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    unknown.push(join(path, &k));
                }
                m.clear();
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    prune(s, v, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Validates a value against a schema; pushes `(field path, message)` causes.
pub fn validate(schema: &Value, value: &Value, path: &str, errs: &mut Vec<(String, String)>) {
    if value.is_null() {
        if !nullable(schema) && !path.is_empty() {
            let t = schema
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("object");
            errs.push((
                path.into(),
                format!("Invalid value: \"null\": {path} in body must be of type {t}: \"null\""),
            ));
        }
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let ok = t == actual
            || (t == "number" && actual == "integer")
            || (t == "integer" && value.as_f64().is_some_and(|f| f.fract() == 0.0));
        if !ok {
            errs.push((
                path.into(),
                format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type {t}: \"{actual}\""
                ),
            ));
            return;
        }
    } else if int_or_string && !matches!(type_name(value), "integer" | "string") {
        errs.push((
            path.into(),
            format!(
                "Invalid value: \"{}\": {path} in body must be of type integer,string: \"{}\"",
                type_name(value),
                type_name(value)
            ),
        ));
        return;
    }
    if let Some(en) = schema.get("enum").and_then(Value::as_array)
        && !en.contains(value)
    {
        let opts: Vec<String> = en.iter().map(short).collect();
        errs.push((
            path.into(),
            format!(
                "Unsupported value: {}: supported values: {}",
                short(value),
                opts.join(", ")
            ),
        ));
    }
    match value {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                let excl = schema
                    .get("exclusiveMinimum")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if f < min || (excl && f == min) {
                    let rel = if excl {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    errs.push((
                        path.into(),
                        format!(
                            "Invalid value: {}: {path} in body should be {rel} {}",
                            short(value),
                            fmt_num(min)
                        ),
                    ));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                let excl = schema
                    .get("exclusiveMaximum")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if f > max || (excl && f == max) {
                    let rel = if excl {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    errs.push((
                        path.into(),
                        format!(
                            "Invalid value: {}: {path} in body should be {rel} {}",
                            short(value),
                            fmt_num(max)
                        ),
                    ));
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errs.push((
                    path.into(),
                    format!(
                        "Invalid value: {}: {path} in body should be at least {min} chars long",
                        short(value)
                    ),
                ));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errs.push((
                    path.into(),
                    format!("Too long: may not be more than {max} bytes"),
                ));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(s)
            {
                errs.push((
                    path.into(),
                    format!(
                        "Invalid value: {}: {path} in body should match '{p}'",
                        short(value)
                    ),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                errs.push((
                    path.into(),
                    format!(
                        "Invalid value: {}: {path} in body should have at least {min} items",
                        items.len()
                    ),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                errs.push((
                    path.into(),
                    format!("Too many: {}: must have at most {max} items", items.len()),
                ));
            }
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    validate(s, v, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(m) => {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if m.get(r).is_none() {
                        errs.push((join(path, r), "Required value".into()));
                    }
                }
            }
            if let Some(p) = props(schema) {
                for (k, v) in m {
                    if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    if let Some(s) = p.get(k) {
                        validate(s, v, &join(path, k), errs);
                    }
                }
            } else if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in m {
                    validate(ap, v, &join(path, k), errs);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["version"], "properties": {
            "version": {"type": "string", "minLength": 1},
            "replicas": {"type": "integer", "minimum": 1, "default": 3},
            "image": {"type": "object", "default": {}, "properties": {
                "repository": {"type": "string", "default": "pravega/pravega"},
                "pullPolicy": {"type": "string", "nullable": true, "pattern": "^(Always|IfNotPresent|Never)$"}}},
            "options": {"type": "object", "additionalProperties": {"type": "string"}}}}}})
    }

    #[test]
    fn nested_defaults_apply() {
        let mut v = json!({"spec": {"version": "0.4.0"}});
        apply_defaults(&schema(), &mut v);
        assert_eq!(v["spec"]["replicas"], 3);
        assert_eq!(v["spec"]["image"]["repository"], "pravega/pravega");
    }

    #[test]
    fn validation_reports_field_paths() {
        let mut errs = Vec::new();
        validate(
            &schema(),
            &json!({"spec": {"replicas": 0, "image": {"pullPolicy": "Sometimes"}}}),
            "",
            &mut errs,
        );
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"spec.version"), "{errs:?}");
        assert!(fields.contains(&"spec.replicas"));
        assert!(fields.contains(&"spec.image.pullPolicy"));
        assert!(errs.iter().any(|(_, m)| m
            == "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"));
    }

    #[test]
    fn pruning_reports_unknown_fields() {
        let mut v = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {"version": "1", "bogus": 1, "options": {"k": "v"}}});
        let mut unknown = Vec::new();
        prune(&schema(), &mut v, "", &mut unknown);
        assert_eq!(unknown, vec!["spec.bogus".to_string()]);
        assert_eq!(v["spec"]["options"]["k"], "v");
        assert_eq!(v["metadata"]["name"], "a");
    }
}
