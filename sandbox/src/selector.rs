//! Label selectors (`app=x,tier!=db,env in (a,b),!legacy`), field selectors, and
//! `metav1.LabelSelector` objects (used by webhook `namespaceSelector` / `objectSelector`).

use serde_json::Value;
use std::collections::BTreeMap;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` / `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the key is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the key is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

impl Requirement {
    /// Whether the labels satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Whether the labels `label` looks up satisfy this requirement (no copy of the labels).
    pub fn matches_with<'l>(&self, label: impl Fn(&str) -> Option<&'l str>) -> bool {
        match self {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        }
    }
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// Whether the labels of the stored object `obj` (`metadata.labels`; non-string values are
    /// not labels) satisfy every requirement, read in place.
    pub fn matches_object(&self, obj: &serde_json::Value) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let labels = obj
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(serde_json::Value::as_object);
        let label = |k: &str| {
            labels
                .and_then(|l| l.get(k))
                .and_then(serde_json::Value::as_str)
        };
        self.0.iter().all(|r| r.matches_with(label))
    }
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesized set of values, found '{rest}'"))?;
    let vals: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    for v in &vals {
        if !valid_value(v) {
            return Err(format!("invalid label value: \"{v}\""));
        }
    }
    Ok(vals)
}

/// Parses a label selector string as `kubectl -l` and `?labelSelector=` use it.
pub fn parse_label_selector(s: &str) -> Result<LabelSelector, String> {
    let mut reqs = Vec::new();
    if s.trim().is_empty() {
        return Ok(LabelSelector(reqs));
    }
    for part in split_top(s) {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("found empty requirement in selector \"{s}\""));
        }
        let req = if let Some(k) = part.strip_prefix('!') {
            let k = k.trim();
            Requirement::DoesNotExist(k.to_string())
        } else if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = part.split_once("==") {
            Requirement::Equals(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = part.split_once('=') {
            Requirement::Equals(k.trim().to_string(), v.trim().to_string())
        } else if let Some(idx) = part.find(" notin ") {
            Requirement::NotIn(part[..idx].trim().to_string(), parse_set(&part[idx + 7..])?)
        } else if let Some(idx) = part.find(" in ") {
            Requirement::In(part[..idx].trim().to_string(), parse_set(&part[idx + 4..])?)
        } else if let Some(idx) = part.find("notin(") {
            Requirement::NotIn(part[..idx].trim().to_string(), parse_set(&part[idx + 5..])?)
        } else if let Some(idx) = part.find("in(") {
            Requirement::In(part[..idx].trim().to_string(), parse_set(&part[idx + 2..])?)
        } else {
            Requirement::Exists(part.to_string())
        };
        let (key, value) = match &req {
            Requirement::Equals(k, v) | Requirement::NotEquals(k, v) => (k, Some(v)),
            Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::DoesNotExist(k) => (k, None),
        };
        if !valid_key(key) {
            return Err(format!(
                "unable to parse requirement: invalid label key \"{key}\""
            ));
        }
        if let Some(v) = value
            && !valid_value(v)
        {
            return Err(format!(
                "unable to parse requirement: invalid label value: \"{v}\""
            ));
        }
        reqs.push(req);
    }
    Ok(LabelSelector(reqs))
}

/// Renders a selector in the string form (`a=b,c in (d,e)`).
pub fn to_string(sel: &LabelSelector) -> String {
    sel.0
        .iter()
        .map(|r| match r {
            Requirement::Equals(k, v) => format!("{k}={v}"),
            Requirement::NotEquals(k, v) => format!("{k}!={v}"),
            Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
            Requirement::Exists(k) => k.clone(),
            Requirement::DoesNotExist(k) => format!("!{k}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Converts a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
/// An absent selector matches everything.
pub fn from_label_selector_object(v: Option<&Value>) -> Result<LabelSelector, String> {
    let mut reqs = Vec::new();
    let Some(v) = v else {
        return Ok(LabelSelector(reqs));
    };
    if let Some(ml) = v.get("matchLabels").and_then(Value::as_object) {
        for (k, val) in ml {
            reqs.push(Requirement::Equals(
                k.clone(),
                val.as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let values = crate::util::string_list(e.get("values"));
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            reqs.push(match op {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            });
        }
    }
    Ok(LabelSelector(reqs))
}

/// One field selector term: `path=value` or `path!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// Dotted field path, e.g. `metadata.name`.
    pub path: String,
    /// The value compared with.
    pub value: String,
    /// `!=` rather than `=`.
    pub negate: bool,
}

/// Fields every resource supports in field selectors.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Extra fields per resource (plural) beyond `metadata.name` / `metadata.namespace`.
pub fn extra_fields(resource: &str) -> &'static [&'static str] {
    match resource {
        "events" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "pods" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "namespaces" => &["status.phase"],
        "secrets" => &["type"],
        "nodes" => &["spec.unschedulable"],
        "replicasets" | "statefulsets" | "deployments" => &["status.replicas"],
        _ => &[],
    }
}

/// The field labels of `events.k8s.io/v1` Events and the core `v1` labels they stand for (the
/// objects are stored as core Events; kubernetes `pkg/apis/events/v1` field label conversion).
const EVENTS_V1_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("type", "type"),
];

/// Parses a field selector on a resource of `group`; unknown fields are rejected like the real
/// server (`field label not supported: x`). The terms name the fields of the stored objects.
pub fn parse_field_selector_in(
    s: &str,
    group: &str,
    resource: &str,
) -> Result<Vec<FieldTerm>, String> {
    if !(group == "events.k8s.io" && resource == "events") {
        return parse_field_selector(s, resource);
    }
    let mut terms = parse_field_selector_with(s, &|_| true)?;
    for t in &mut terms {
        match EVENTS_V1_FIELDS.iter().find(|(label, _)| *label == t.path) {
            Some((_, core)) => t.path = core.to_string(),
            None => return Err(format!("field label not supported: {}", t.path)),
        }
    }
    Ok(terms)
}

/// Parses a field selector; unknown fields are rejected like the real server
/// (`field label not supported: x`).
pub fn parse_field_selector(s: &str, resource: &str) -> Result<Vec<FieldTerm>, String> {
    parse_field_selector_with(s, &|path| {
        COMMON_FIELDS.contains(&path) || extra_fields(resource).contains(&path)
    })
}

fn parse_field_selector_with(
    s: &str,
    supported: &dyn Fn(&str) -> bool,
) -> Result<Vec<FieldTerm>, String> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    for part in s.split(',') {
        let part = part.trim();
        let (path, value, negate) = if let Some((k, v)) = part.split_once("!=") {
            (k, v, true)
        } else if let Some((k, v)) = part.split_once("==") {
            (k, v, false)
        } else if let Some((k, v)) = part.split_once('=') {
            (k, v, false)
        } else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{part}'"
            ));
        };
        let path = path.trim();
        if !supported(path) {
            return Err(format!("field label not supported: {path}"));
        }
        out.push(FieldTerm {
            path: path.to_string(),
            value: value.trim().to_string(),
            negate,
        });
    }
    Ok(out)
}

fn field_value(obj: &Value, path: &str) -> String {
    if path == "source" {
        // The source component, else the reporting controller (kubernetes
        // pkg/registry/core/event ToSelectableFields).
        return obj
            .get("source")
            .and_then(|s| s.get("component"))
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .or_else(|| obj.get("reportingComponent").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
    }
    let mut cur = obj;
    for p in path.split('.') {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Whether the object satisfies every field term.
pub fn fields_match(terms: &[FieldTerm], obj: &Value) -> bool {
    terms
        .iter()
        .all(|t| (field_value(obj, &t.path) == t.value) != t.negate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = parse_label_selector("a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g").unwrap();
        assert_eq!(s.0.len(), 7);
        let l = labels(&[("a", "1"), ("b", "2"), ("c", "4"), ("d", "y"), ("f", "")]);
        assert!(s.matches(&l));
        let mut l2 = l.clone();
        l2.insert("g".into(), "1".into());
        assert!(!s.matches(&l2));
        let mut l3 = l.clone();
        l3.insert("e".into(), "z".into());
        assert!(!s.matches(&l3));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_label_selector("a=b c").is_err());
        assert!(parse_label_selector("a,,b").is_err());
        assert!(parse_field_selector("spec.foo=1", "configmaps").is_err());
        assert!(parse_field_selector("involvedObject.name=x", "events").is_ok());
    }

    #[test]
    fn field_selectors_compare_values() {
        let ev = serde_json::json!({"metadata": {"name": "e1", "namespace": "ns"}, "involvedObject": {"name": "p", "kind": "Pod"}});
        let t = parse_field_selector("involvedObject.name=p,involvedObject.kind=Pod", "events")
            .unwrap();
        assert!(fields_match(&t, &ev));
        let t = parse_field_selector("metadata.name!=e1", "events").unwrap();
        assert!(!fields_match(&t, &ev));
        // events.k8s.io/v1 names the same fields its own way.
        let t = parse_field_selector_in("regarding.name=p", "events.k8s.io", "events").unwrap();
        assert!(fields_match(&t, &ev));
        assert_eq!(
            parse_field_selector_in("involvedObject.name=p", "events.k8s.io", "events"),
            Err("field label not supported: involvedObject.name".to_string())
        );
        // `source` falls back to the reporting controller.
        let t = parse_field_selector("source=op", "events").unwrap();
        assert!(fields_match(
            &t,
            &serde_json::json!({"metadata": {"name": "e"}, "reportingComponent": "op"})
        ));
    }

    proptest! {
        #[test]
        fn rendering_round_trips(k in "[a-z]{1,6}", v in "[a-z0-9]{1,6}", w in "[a-z0-9]{1,6}") {
            let s = LabelSelector(vec![
                Requirement::Equals(k.clone(), v.clone()),
                Requirement::NotIn(format!("{k}x"), vec![v.clone(), w.clone()]),
                Requirement::DoesNotExist(format!("{k}y")),
            ]);
            prop_assert_eq!(parse_label_selector(&to_string(&s)).unwrap(), s);
        }

        #[test]
        fn equality_selector_matches_exactly_its_label(k in "[a-z]{1,8}", v in "[a-z0-9]{0,8}", other in "[a-z0-9]{0,8}") {
            let s = parse_label_selector(&format!("{k}={v}")).unwrap();
            prop_assert!(s.matches(&labels(&[(&k, &v)])));
            prop_assert_eq!(s.matches(&labels(&[(&k, &other)])), v == other);
            let n = parse_label_selector(&format!("{k}!={v}")).unwrap();
            prop_assert_eq!(n.matches(&labels(&[(&k, &other)])), v != other);
            prop_assert!(n.matches(&BTreeMap::new()));
        }
    }
}
