//! Defaulting and basic validation of built-in kinds, as the real API server does where users
//! and controllers notice it.

use serde_json::{Map, Value, json};

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let m = v.as_object_mut()?;
    let e = m.entry(key).or_insert_with(|| json!({}));
    if !e.is_object() {
        return None;
    }
    e.as_object_mut()
}

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else { return };
    let image = m
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let last = image.rsplit('/').next().unwrap_or_default();
    let tagged = last.contains(':') || image.contains('@');
    let latest = !tagged || last.ends_with(":latest");
    set_default(
        m,
        "imagePullPolicy",
        json!(if latest { "Always" } else { "IfNotPresent" }),
    );
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    set_default(m, "resources", json!({}));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(pm) = p.as_object_mut() {
                set_default(pm, "protocol", json!("TCP"));
            }
        }
    }
}

/// Defaults a pod spec (also used inside workload templates).
pub fn default_pod_spec(spec: &mut Value) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    set_default(m, "restartPolicy", json!("Always"));
    set_default(m, "dnsPolicy", json!("ClusterFirst"));
    set_default(m, "schedulerName", json!("default-scheduler"));
    set_default(m, "terminationGracePeriodSeconds", json!(30));
    set_default(m, "securityContext", json!({}));
    for key in ["containers", "initContainers"] {
        if let Some(cs) = m.get_mut(key).and_then(Value::as_array_mut) {
            for c in cs {
                default_container(c);
            }
        }
    }
}

fn default_template(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template")
        && let Some(ps) = obj_mut(t, "spec")
    {
        let mut v = Value::Object(std::mem::take(ps));
        default_pod_spec(&mut v);
        if let Value::Object(m) = v {
            *ps = m;
        }
    }
}

/// Applies the API server's defaults to a new or updated built-in object.
pub fn apply_defaults(resource: &str, group: &str, obj: &mut Value, next_ip: &dyn Fn() -> String) {
    match (group, resource) {
        ("", "pods") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        ("apps", "deployments") => {
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "replicas", json!(1));
                set_default(
                    s,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
                // `strategy: {}` (what `kubectl create deployment` sends) is defaulted the same
                // way: apps/v1 defaults.go SetDefaults_Deployment (v1.33).
                if let Some(st) = s.get_mut("strategy").and_then(Value::as_object_mut) {
                    set_default(st, "type", json!("RollingUpdate"));
                    if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                        set_default(st, "rollingUpdate", json!({}));
                        if let Some(ru) = st.get_mut("rollingUpdate").and_then(Value::as_object_mut)
                        {
                            set_default(ru, "maxUnavailable", json!("25%"));
                            set_default(ru, "maxSurge", json!("25%"));
                        }
                    }
                }
                set_default(s, "revisionHistoryLimit", json!(10));
                set_default(s, "progressDeadlineSeconds", json!(600));
                default_template(s);
            }
        }
        ("apps", "statefulsets") => {
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "replicas", json!(1));
                set_default(s, "podManagementPolicy", json!("OrderedReady"));
                set_default(
                    s,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                if let Some(u) = s.get_mut("updateStrategy").and_then(Value::as_object_mut)
                    && u.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                {
                    set_default(u, "rollingUpdate", json!({"partition": 0}));
                }
                set_default(s, "revisionHistoryLimit", json!(10));
                set_default(
                    s,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
                default_template(s);
            }
        }
        ("apps", "replicasets") => {
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "replicas", json!(1));
                default_template(s);
            }
        }
        ("", "services") => {
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "type", json!("ClusterIP"));
                set_default(s, "sessionAffinity", json!("None"));
                if s.get("type").and_then(Value::as_str) != Some("ExternalName") {
                    set_default(s, "clusterIP", json!(next_ip()));
                    let ip = s.get("clusterIP").cloned().unwrap_or(Value::Null);
                    set_default(s, "clusterIPs", json!([ip]));
                    set_default(s, "ipFamilies", json!(["IPv4"]));
                    set_default(s, "ipFamilyPolicy", json!("SingleStack"));
                    set_default(s, "internalTrafficPolicy", json!("Cluster"));
                }
                if let Some(ports) = s.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        if let Some(pm) = p.as_object_mut() {
                            set_default(pm, "protocol", json!("TCP"));
                            // A targetPort of 0 or "" is unset too (pkg/apis/core/v1/defaults.go
                            // SetDefaults_Service, v1.33); a protobuf body carries it so.
                            if matches!(pm.get("targetPort"), Some(t) if t == &json!(0) || t == &json!(""))
                            {
                                pm.remove("targetPort");
                            }
                            if let Some(port) = pm.get("port").cloned() {
                                set_default(pm, "targetPort", port);
                            }
                        }
                    }
                }
            }
        }
        ("", "namespaces") => {
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "finalizers", json!(["kubernetes"]));
            }
            let name = crate::util::meta_str(obj, "name")
                .unwrap_or_default()
                .to_string();
            let meta = crate::util::meta_mut(obj);
            if let Some(l) = obj_mut_in(meta, "labels") {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        ("", "secrets") => {
            if let Some(m) = obj.as_object_mut() {
                set_default(m, "type", json!("Opaque"));
            }
        }
        ("", "persistentvolumeclaims") => {
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "volumeMode", json!("Filesystem"));
            }
        }
        _ => {}
    }
}

fn obj_mut_in<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let e = m.entry(key).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e.as_object_mut()
}

/// The status a new object starts with (objects with a status subresource start empty).
pub fn initial_status(resource: &str, group: &str) -> Option<Value> {
    match (group, resource) {
        ("", "pods") => Some(json!({"phase": "Pending", "qosClass": "BestEffort"})),
        ("", "namespaces") => Some(json!({"phase": "Active"})),
        ("", "persistentvolumeclaims") => Some(json!({"phase": "Pending"})),
        _ => None,
    }
}

fn selector_matches_template(spec: &Value) -> bool {
    let sel = crate::selector::from_label_selector_object(spec.get("selector"));
    let labels = crate::util::string_map(
        spec.get("template")
            .and_then(|t| t.get("metadata"))
            .and_then(|m| m.get("labels")),
    );
    sel.is_ok_and(|s| !s.0.is_empty() && s.matches(&labels))
}

/// Basic validation of built-in kinds: `(field, message)` causes for a 422.
pub fn validate(
    resource: &str,
    group: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    match (group, resource) {
        ("", "pods") => {
            let containers = spec.get("containers").and_then(Value::as_array);
            match containers {
                None => errs.push(("spec.containers".into(), "Required value".into())),
                Some(cs) if cs.is_empty() => {
                    errs.push(("spec.containers".into(), "Required value".into()))
                }
                Some(cs) => {
                    for (i, c) in cs.iter().enumerate() {
                        if c.get("name")
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty)
                        {
                            errs.push((
                                format!("spec.containers[{i}].name"),
                                "Required value".into(),
                            ));
                        }
                        if c.get("image")
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty)
                        {
                            errs.push((
                                format!("spec.containers[{i}].image"),
                                "Required value".into(),
                            ));
                        }
                    }
                }
            }
        }
        ("apps", "deployments") | ("apps", "statefulsets") | ("apps", "replicasets") => {
            if spec.get("selector").is_none() {
                errs.push(("spec.selector".into(), "Required value".into()));
            } else if !selector_matches_template(&spec) {
                let labels = spec
                    .get("template")
                    .and_then(|t| t.get("metadata"))
                    .and_then(|m| m.get("labels"))
                    .cloned()
                    .unwrap_or(json!({}));
                errs.push((
                    "spec.template.metadata.labels".into(),
                    format!("Invalid value: {labels}: `selector` does not match template `labels`"),
                ));
            }
            if let Some(old) = old
                && old.get("spec").and_then(|s| s.get("selector")) != spec.get("selector")
            {
                errs.push((
                    "spec.selector".into(),
                    format!(
                        "Invalid value: {}: field is immutable",
                        spec.get("selector").cloned().unwrap_or(Value::Null)
                    ),
                ));
            }
            if resource == "statefulsets"
                && let Some(old) = old
            {
                let allowed = [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                ];
                let strip = |v: &Value| -> Value {
                    let mut m = v
                        .get("spec")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    for k in allowed {
                        m.remove(k);
                    }
                    Value::Object(m)
                };
                if strip(old) != strip(obj) {
                    errs.push(("spec".into(), "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into()));
                }
            }
        }
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => {
            let hooks = obj
                .get("webhooks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, h) in hooks.iter().enumerate() {
                if h.get("name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    errs.push((format!("webhooks[{i}].name"), "Required value".into()));
                }
                let versions: Vec<&str> = h
                    .get("admissionReviewVersions")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !versions.contains(&"v1") {
                    errs.push((
                        format!("webhooks[{i}].admissionReviewVersions"),
                        "Invalid value: the sandbox sends admission.k8s.io/v1 reviews only; include \"v1\"".into(),
                    ));
                }
                if !matches!(
                    h.get("sideEffects").and_then(Value::as_str),
                    Some("None" | "NoneOnDryRun")
                ) {
                    errs.push((
                        format!("webhooks[{i}].sideEffects"),
                        "Unsupported value: supported values: \"None\", \"NoneOnDryRun\"".into(),
                    ));
                }
                errs.extend(crate::admission::validate_match_conditions(h, i));
                let cc = h.get("clientConfig");
                if cc.and_then(|c| c.get("url")).is_none()
                    && cc.and_then(|c| c.get("service")).is_none()
                {
                    errs.push((
                        format!("webhooks[{i}].clientConfig"),
                        "Required value: exactly one of url or service is required".into(),
                    ));
                }
            }
        }
        ("", "services") => {
            if let Some(old) = old {
                let old_ip = old.get("spec").and_then(|s| s.get("clusterIP"));
                let new_ip = spec.get("clusterIP");
                if old_ip.is_some() && new_ip.is_some() && old_ip != new_ip {
                    errs.push((
                        "spec.clusterIP".into(),
                        "Invalid value: field is immutable".into(),
                    ));
                }
            }
        }
        _ => {}
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
        apply_defaults("deployments", "apps", &mut d, &|| "10.96.0.1".into());
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn empty_strategy_and_zero_target_port_are_defaulted() {
        let mut d = json!({"spec": {"strategy": {}, "template": {"spec": {"containers": []}}}});
        apply_defaults("deployments", "apps", &mut d, &|| "10.96.0.1".into());
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let mut d = json!({"spec": {"strategy": {"type": "Recreate"}}});
        apply_defaults("deployments", "apps", &mut d, &|| "10.96.0.1".into());
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));

        let mut s = json!({"spec": {"ports": [{"port": 80, "targetPort": 0}, {"port": 81, "targetPort": ""}, {"port": 82, "targetPort": "http"}]}});
        apply_defaults("services", "", &mut s, &|| "10.96.0.1".into());
        let targets: Vec<&Value> = s["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| &p["targetPort"])
            .collect();
        assert_eq!(targets, [&json!(80), &json!(81), &json!("http")]);
    }

    #[test]
    fn selector_must_match_template() {
        let d = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "template": {"metadata": {"labels": {"a": "2"}}}}});
        assert_eq!(validate("deployments", "apps", &d, None).len(), 1);
        let ok = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "template": {"metadata": {"labels": {"a": "1"}}}}});
        assert!(validate("deployments", "apps", &ok, None).is_empty());
    }
}
