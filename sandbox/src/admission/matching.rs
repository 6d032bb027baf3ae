//! Which webhooks a request selects: the rules of a webhook configuration and its
//! `matchConditions`, with the CEL `request` variable they are evaluated against.

use crate::resources::ResourceInfo;
use crate::util::string_list;
use serde_json::{Value, json};

/// Whether one rule of a webhook matches the request.
pub fn rule_matches(rule: &Value, info: &ResourceInfo, op: &str, sub: Option<&str>) -> bool {
    let any = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
    let ops = string_list(rule.get("operations"));
    if !any(&ops, op) {
        return false;
    }
    if !any(&string_list(rule.get("apiGroups")), &info.group)
        || !any(&string_list(rule.get("apiVersions")), &info.version)
    {
        return false;
    }
    let resources = string_list(rule.get("resources"));
    let res_ok = match sub {
        None => resources.iter().any(|r| r == "*" || *r == info.plural),
        Some(s) => resources.iter().any(|r| {
            r == "*/*"
                || *r == format!("{}/{s}", info.plural)
                || *r == format!("{}/*", info.plural)
                || *r == format!("*/{s}")
        }),
    };
    if !res_ok {
        return false;
    }
    match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Namespaced" => info.namespaced,
        "Cluster" => !info.namespaced,
        _ => true,
    }
}

/// The most `matchConditions` a webhook may have.
const MAX_MATCH_CONDITIONS: usize = 64;

/// Validates the `matchConditions` of webhook `i` of a configuration as the API server does at
/// create and update: at most 64, each with a unique qualified `name` and an `expression` that
/// compiles (see [`crate::cel`]) to a `bool`. Returns `(field, message)` causes.
pub fn validate_match_conditions(hook: &Value, i: usize) -> Vec<(String, String)> {
    let path = format!("webhooks[{i}].matchConditions");
    let conditions = match hook.get("matchConditions") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return vec![(
                path,
                format!("Invalid value: {other}: must be a list of {{name, expression}}"),
            )];
        }
    };
    let mut errs = Vec::new();
    if conditions.len() > MAX_MATCH_CONDITIONS {
        errs.push((
            path.clone(),
            format!(
                "Too many: {}: must have at most {MAX_MATCH_CONDITIONS} items",
                conditions.len()
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (j, c) in conditions.iter().enumerate() {
        let at = format!("{path}[{j}]");
        let expression = c
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim();
        if expression.is_empty() {
            errs.push((format!("{at}.expression"), "Required value".into()));
        } else if let Err(e) = crate::cel::compile(expression) {
            errs.push((
                format!("{at}.expression"),
                format!("Invalid value: {}: {e}", Value::from(expression)),
            ));
        }
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            errs.push((format!("{at}.name"), "Required value".into()));
            continue;
        }
        for why in crate::util::qualified_name_errors(name) {
            errs.push((
                format!("{at}.name"),
                format!("Invalid value: {}: {why}", Value::from(name)),
            ));
        }
        if !seen.insert(name) {
            errs.push((
                format!("{at}.name"),
                format!("Duplicate value: {}", Value::from(name)),
            ));
        }
    }
    errs
}

/// What the `matchConditions` of a webhook decide about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// Every condition is true (or there are none): call the webhook.
    Call,
    /// This condition is false: skip the webhook, whatever the others say.
    Skip(String),
    /// No condition is false but some could not be evaluated: the webhook's `failurePolicy`
    /// decides. The message is the API server's (`expression '...' resulted in error: ...`).
    Error(String),
}

/// Evaluates the `matchConditions` of `hook` as the API server does: a false condition skips
/// the webhook even when another fails to evaluate; otherwise the errors are aggregated.
pub fn match_conditions(hook: &Value, vars: &crate::cel::Activation<'_>) -> Matched {
    let mut errors = Vec::new();
    for c in hook
        .get("matchConditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let expression = c
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim();
        // Validated when the configuration was written; a stored one that no longer compiles
        // is an evaluation error.
        let result = crate::cel::compile(expression)
            .map_err(|e| e.to_string())
            .and_then(|p| p.evaluate(vars).map_err(|e| e.to_string()));
        match result {
            Ok(true) => {}
            Ok(false) => return Matched::Skip(name.to_string()),
            Err(why) => errors.push(format!(
                "expression '{expression}' resulted in error: {why}"
            )),
        }
    }
    match errors.len() {
        0 => Matched::Call,
        1 => Matched::Error(errors.remove(0)),
        _ => Matched::Error(format!("[{}]", errors.join(", "))),
    }
}

pub(super) fn user_info() -> Value {
    json!({"username": "sandbox-admin", "groups": ["system:masters", "system:authenticated"]})
}

pub(super) fn operation_options(op: &str) -> Value {
    match op {
        "CREATE" => json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
        "UPDATE" => json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}),
        _ => json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}),
    }
}

/// The CEL variable `request`: the AdmissionRequest without `uid`, `object` and `oldObject`,
/// the fields Go omits when empty (`name`, `namespace`, `subResource`) absent.
pub(super) fn cel_request(
    info: &ResourceInfo,
    op: &str,
    sub: Option<&str>,
    ns: &str,
    name: &str,
    dry_run: bool,
) -> Value {
    let kind = json!({"group": info.group, "version": info.version, "kind": info.kind});
    let resource = json!({"group": info.group, "version": info.version, "resource": info.plural});
    let mut request = json!({
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "operation": op,
        "userInfo": user_info(),
        "dryRun": dry_run,
        "options": operation_options(op),
    });
    if !name.is_empty() {
        request["name"] = json!(name);
    }
    if info.namespaced && !ns.is_empty() {
        request["namespace"] = json!(ns);
    }
    if let Some(s) = sub {
        request["subResource"] = json!(s);
        request["requestSubResource"] = json!(s);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(conditions: Value) -> Value {
        json!({"name": "pravegacluster.pravega.pravega.io", "matchConditions": conditions})
    }

    fn condition(name: &str, expression: &str) -> Value {
        json!({"name": name, "expression": expression})
    }

    #[test]
    fn match_conditions_are_validated_when_the_configuration_is_written() {
        let ok = hook(json!([
            condition(
                "not-an-emergency-pause",
                "!(request.operation == 'UPDATE' && has(object.spec.upgrade) && has(object.spec.upgrade.paused) && object.spec.upgrade.paused == true && object.spec.version == oldObject.spec.version)"
            ),
            condition(
                "example.com/only-updates",
                "  request.operation == 'UPDATE'  "
            ),
        ]));
        assert_eq!(validate_match_conditions(&ok, 0), []);
        assert_eq!(validate_match_conditions(&json!({}), 0), []);

        let errs = validate_match_conditions(&hook(json!([condition("a", "object.spec.x")])), 2);
        assert_eq!(
            errs,
            [(
                "webhooks[2].matchConditions[0].expression".to_string(),
                "Invalid value: \"object.spec.x\": must evaluate to bool".to_string()
            )]
        );
        let errs = validate_match_conditions(&hook(json!([condition("a", " nope ")])), 0);
        assert_eq!(
            errs,
            [(
                "webhooks[0].matchConditions[0].expression".to_string(),
                "Invalid value: \"nope\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope' (in container '')\n | nope\n | ^".to_string()
            )]
        );
        let errs = validate_match_conditions(
            &hook(json!([
                {"expression": "true"},
                condition("-bad-", ""),
                condition("same", "true"),
                condition("same", "true"),
            ])),
            0,
        );
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "webhooks[0].matchConditions[0].name",
                "webhooks[0].matchConditions[1].expression",
                "webhooks[0].matchConditions[1].name",
                "webhooks[0].matchConditions[3].name",
            ]
        );
        assert_eq!(errs[0].1, "Required value");
        assert_eq!(errs[1].1, "Required value");
        assert!(
            errs[2]
                .1
                .starts_with("Invalid value: \"-bad-\": name part must consist of"),
            "{}",
            errs[2].1
        );
        assert_eq!(errs[3].1, "Duplicate value: \"same\"");

        let many: Vec<Value> = (0..65)
            .map(|i| condition(&format!("c{i}"), "true"))
            .collect();
        assert_eq!(
            validate_match_conditions(&hook(Value::Array(many)), 0),
            [(
                "webhooks[0].matchConditions".to_string(),
                "Too many: 65: must have at most 64 items".to_string()
            )]
        );
    }

    #[test]
    fn match_conditions_decide_whether_the_webhook_is_called() {
        let info = crate::resources::builtins()
            .into_iter()
            .find(|r| r.plural == "pods")
            .unwrap();
        let object = json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": {}});
        let request = cel_request(&info, "UPDATE", None, "default", "p", false);
        let vars = crate::cel::Activation {
            object: &object,
            old_object: &object,
            request: &request,
        };
        let decide = |conditions: Value| match_conditions(&hook(conditions), &vars);
        assert_eq!(decide(json!([])), Matched::Call);
        assert_eq!(decide(Value::Null), Matched::Call);
        assert_eq!(
            decide(json!([
                condition("update", "request.operation == 'UPDATE'"),
                condition("web", "object.metadata.labels.app == 'web'"),
                condition(
                    "namespaced",
                    "request.namespace == 'default' && request.kind.kind == 'Pod'"
                ),
            ])),
            Matched::Call
        );
        assert_eq!(
            decide(json!([
                condition("update", "request.operation == 'UPDATE'"),
                condition("create", "request.operation == 'CREATE'"),
            ])),
            Matched::Skip("create".into())
        );
        // A false condition wins over an evaluation error, in any order.
        assert_eq!(
            decide(json!([
                condition("broken", "object.spec.missing == 1"),
                condition("create", "request.operation == 'CREATE'"),
            ])),
            Matched::Skip("create".into())
        );
        // Otherwise the errors are reported as the API server reports them.
        assert_eq!(
            decide(json!([
                condition("update", "request.operation == 'UPDATE'"),
                condition("broken", "object.spec.missing == 1"),
            ])),
            Matched::Error(
                "expression 'object.spec.missing == 1' resulted in error: no such key: missing"
                    .into()
            )
        );
        assert_eq!(
            decide(json!([
                condition("a", "object.a == 1"),
                condition("b", "request.subResource == 'status'"),
            ])),
            Matched::Error(
                "[expression 'object.a == 1' resulted in error: no such key: a, expression 'request.subResource == 'status'' resulted in error: no such key: subResource]"
                    .into()
            )
        );
    }

    #[test]
    fn the_cel_request_omits_what_go_omits() {
        let info = crate::resources::builtins()
            .into_iter()
            .find(|r| r.plural == "namespaces")
            .unwrap();
        let r = cel_request(&info, "CREATE", None, "", "", true);
        assert!(r.get("name").is_none() && r.get("namespace").is_none());
        assert!(r.get("subResource").is_none());
        assert_eq!(r["dryRun"], true);
        assert_eq!(r["kind"]["kind"], "Namespace");
        assert_eq!(r["options"]["kind"], "CreateOptions");
        let pods = crate::resources::builtins()
            .into_iter()
            .find(|r| r.plural == "pods")
            .unwrap();
        let r = cel_request(&pods, "UPDATE", Some("status"), "ns", "p", false);
        assert_eq!(
            (r["name"].as_str(), r["namespace"].as_str()),
            (Some("p"), Some("ns"))
        );
        assert_eq!(r["subResource"], "status");
        assert_eq!(r["requestSubResource"], "status");
    }

    #[test]
    fn rules_match_resources_and_subresources() {
        let info = crate::resources::builtins()
            .into_iter()
            .find(|r| r.plural == "pods")
            .unwrap();
        let rule = json!({"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]});
        assert!(rule_matches(&rule, &info, "CREATE", None));
        assert!(!rule_matches(&rule, &info, "DELETE", None));
        assert!(!rule_matches(&rule, &info, "UPDATE", Some("status")));
        let rule = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["pods/status"], "scope": "Namespaced"});
        assert!(rule_matches(&rule, &info, "UPDATE", Some("status")));
        assert!(!rule_matches(&rule, &info, "UPDATE", None));
    }

    #[test]
    fn rules_match_each_served_version_they_list() {
        let crd = json!({"metadata": {"name": "widgets.demo.pravega.io"},
            "spec": {"group": "demo.pravega.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1beta1", "served": true, "storage": true},
                    {"name": "v1alpha1", "served": true, "storage": false}]}});
        let served = crate::resources::crd_resources(&crd).expect("valid CRD");
        let [beta, alpha] = served.versions.as_slice() else {
            panic!("two served versions: {:?}", served.versions);
        };
        let rule = |versions: Value| {
            json!({"operations": ["CREATE"], "apiGroups": ["demo.pravega.io"],
                "apiVersions": versions, "resources": ["widgets"]})
        };
        for versions in [json!(["*"]), json!(["v1alpha1", "v1beta1"])] {
            assert!(rule_matches(&rule(versions.clone()), beta, "CREATE", None));
            assert!(rule_matches(&rule(versions), alpha, "CREATE", None));
        }
        // A rule listing one version matches requests through that version only (no
        // `matchPolicy: Equivalent` conversion, see the README).
        assert!(rule_matches(
            &rule(json!(["v1beta1"])),
            beta,
            "CREATE",
            None
        ));
        assert!(!rule_matches(
            &rule(json!(["v1beta1"])),
            alpha,
            "CREATE",
            None
        ));
    }
}
