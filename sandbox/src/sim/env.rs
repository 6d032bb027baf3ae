//! A container's environment, resolved as the kubelet does when it starts the container:
//! `envFrom` sources in order (a later one overriding an earlier one, keys prefixed with
//! `prefix`), then `env` entries in order (overriding `envFrom`), with `$(VAR)` references in
//! values expanded. A ConfigMap or Secret that is missing (and not `optional`) keeps the
//! container from being created: the error is what the kubelet reports as the
//! `CreateContainerConfigError` message.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::{Api, Client, ResourceExt};

use super::SimError;

/// Environment variables by name.
pub(crate) type Env = BTreeMap<String, String>;

/// What a node has to offer, as reported in its `allocatable` (see `register_nodes`): the value
/// of a `resourceFieldRef` limit the container does not set.
const NODE_CPU: f64 = 8.0;
const NODE_MEMORY: f64 = 32.0 * 1024.0 * 1024.0 * 1024.0;
const NODE_EPHEMERAL_STORAGE: f64 = 100.0 * 1024.0 * 1024.0 * 1024.0;

/// The ConfigMaps and Secrets containers refer to, as read from the API (`None`: not found).
#[derive(Debug, Default)]
pub(crate) struct Sources {
    config_maps: HashMap<String, Option<Env>>,
    secrets: HashMap<String, Option<Env>>,
}

impl Sources {
    /// Reads every ConfigMap and Secret that `containers` refer to that is not read yet.
    pub(crate) async fn fetch<'a>(
        &mut self,
        client: &Client,
        namespace: &str,
        containers: impl IntoIterator<Item = &'a Container>,
    ) -> Result<(), SimError> {
        let mut config_maps = Vec::new();
        let mut secrets = Vec::new();
        for c in containers {
            for from in c.env_from.iter().flatten() {
                if let Some(r) = &from.config_map_ref {
                    config_maps.push(r.name.clone());
                }
                if let Some(r) = &from.secret_ref {
                    secrets.push(r.name.clone());
                }
            }
            for var in c.env.iter().flatten() {
                let Some(source) = &var.value_from else {
                    continue;
                };
                if let Some(r) = &source.config_map_key_ref {
                    config_maps.push(r.name.clone());
                }
                if let Some(r) = &source.secret_key_ref {
                    secrets.push(r.name.clone());
                }
            }
        }
        let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        for name in config_maps {
            if self.config_maps.contains_key(&name) {
                continue;
            }
            let data = cm_api
                .get_opt(&name)
                .await
                .map_err(|e| SimError::api(format!("get configmap {namespace}/{name}"), e))?
                .map(|cm| cm.data.unwrap_or_default());
            self.config_maps.insert(name, data);
        }
        let secret_api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        for name in secrets {
            if self.secrets.contains_key(&name) {
                continue;
            }
            let data = secret_api
                .get_opt(&name)
                .await
                .map_err(|e| SimError::api(format!("get secret {namespace}/{name}"), e))?
                .map(secret_data);
            self.secrets.insert(name, data);
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn with(config_maps: &[(&str, Env)], secrets: &[(&str, Env)]) -> Self {
        let own = |v: &[(&str, Env)]| {
            v.iter()
                .map(|(k, e)| (k.to_string(), Some(e.clone())))
                .collect()
        };
        Sources {
            config_maps: own(config_maps),
            secrets: own(secrets),
        }
    }

    fn config_map(&self, name: &str) -> Option<&Env> {
        self.config_maps.get(name).and_then(Option::as_ref)
    }

    fn secret(&self, name: &str) -> Option<&Env> {
        self.secrets.get(name).and_then(Option::as_ref)
    }
}

/// A Secret's values: `data` (base64 on the wire, decoded by the client), with `stringData`
/// folded over it as the API server does on write.
fn secret_data(secret: Secret) -> Env {
    let mut out: Env = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    out.extend(secret.string_data.unwrap_or_default());
    out
}

/// The pod's addresses, for `fieldRef`s to `status.podIP` and `status.hostIP`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Addresses<'a> {
    pub pod_ip: Option<&'a str>,
    pub host_ip: Option<&'a str>,
}

/// The environment of `container` of `pod`, or why it cannot be created.
pub(crate) fn resolve(
    pod: &Pod,
    container: &Container,
    sources: &Sources,
    addresses: Addresses<'_>,
) -> Result<Env, String> {
    let ns = pod.namespace().unwrap_or_else(|| "default".into());
    let mut env = Env::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let (data, optional, missing) = if let Some(r) = &from.config_map_ref {
            (
                sources.config_map(&r.name),
                r.optional == Some(true),
                format!("configmap {:?} not found", r.name),
            )
        } else if let Some(r) = &from.secret_ref {
            (
                sources.secret(&r.name),
                r.optional == Some(true),
                format!("secret {:?} not found", r.name),
            )
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (k, v) in data {
                    env.insert(format!("{prefix}{k}"), v.clone());
                }
            }
            None if optional => {}
            None => return Err(missing),
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => expand(var.value.as_deref().unwrap_or(""), &env),
            Some(source) => {
                if let Some(r) = &source.field_ref {
                    field(pod, &r.field_path, addresses)
                } else if let Some(r) = &source.resource_field_ref {
                    let named = r
                        .container_name
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .and_then(|n| {
                            pod.spec
                                .as_ref()
                                .and_then(|s| s.containers.iter().find(|c| c.name == n))
                        })
                        .unwrap_or(container);
                    resource_field(named, &r.resource, r.divisor.as_ref().map(|d| d.0.as_str()))
                } else if let Some(r) = &source.config_map_key_ref {
                    let optional = r.optional == Some(true);
                    match sources.config_map(&r.name) {
                        None if optional => continue,
                        None => return Err(format!("configmap {:?} not found", r.name)),
                        Some(data) => match data.get(&r.key) {
                            Some(v) => v.clone(),
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {ns}/{}",
                                    r.key, r.name
                                ));
                            }
                        },
                    }
                } else if let Some(r) = &source.secret_key_ref {
                    let optional = r.optional == Some(true);
                    match sources.secret(&r.name) {
                        None if optional => continue,
                        None => return Err(format!("secret {:?} not found", r.name)),
                        Some(data) => match data.get(&r.key) {
                            Some(v) => v.clone(),
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {ns}/{}",
                                    r.key, r.name
                                ));
                            }
                        },
                    }
                } else {
                    String::new()
                }
            }
        };
        env.insert(var.name.clone(), value);
    }
    Ok(env)
}

/// Expands `$(VAR)` with the variables defined so far (unknown ones are kept as written) and
/// `$$` to `$`, as Kubernetes does.
fn expand(s: &str, env: &Env) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(open) = after.strip_prefix('(')
            && let Some(close) = open.find(')')
        {
            let name = &open[..close];
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &open[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The value of a downward-API `fieldRef`.
fn field(pod: &Pod, path: &str, addresses: Addresses<'_>) -> String {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        let key = path
            .strip_prefix(prefix)?
            .strip_suffix("']")?
            .strip_prefix("['")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    match path {
        "metadata.name" => pod.name_any(),
        "metadata.namespace" => pod.namespace().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.podIPs" => addresses.pod_ip.unwrap_or_default().to_owned(),
        "status.hostIP" | "status.hostIPs" => addresses.host_ip.unwrap_or_default().to_owned(),
        _ => keyed("metadata.labels", meta.labels.as_ref())
            .or_else(|| keyed("metadata.annotations", meta.annotations.as_ref()))
            .unwrap_or_default(),
    }
}

/// The value of a downward-API `resourceFieldRef`: the container's request or limit divided by
/// `divisor` and rounded up; a limit the container does not set is the node's allocatable.
fn resource_field(container: &Container, resource: &str, divisor: Option<&str>) -> String {
    let Some((kind, name)) = resource.split_once('.') else {
        return String::new();
    };
    let resources = container.resources.as_ref();
    let get = |which: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| { which.and_then(|m| m.get(name)).and_then(|q| quantity(&q.0)) };
    let limits = resources.and_then(|r| r.limits.as_ref());
    let requests = resources.and_then(|r| r.requests.as_ref());
    let node = match name {
        "cpu" => NODE_CPU,
        "memory" => NODE_MEMORY,
        "ephemeral-storage" => NODE_EPHEMERAL_STORAGE,
        _ => 0.0,
    };
    let value = match kind {
        "limits" => get(limits).unwrap_or(node),
        "requests" => get(requests).or_else(|| get(limits)).unwrap_or(0.0),
        _ => return String::new(),
    };
    let divisor = divisor
        .and_then(quantity)
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    format!("{}", (value / divisor).ceil().max(0.0) as u64)
}

/// The value of a Kubernetes quantity (`128Mi`, `1G`, `500m`, `1.5`, `2e3`): the API server's
/// grammar, read by the one parser of the workspace (a fact of the Kubernetes API, not of the
/// Pravega images this simulation models independently).
pub(crate) fn quantity(s: &str) -> Option<f64> {
    pravega_crds::quantity::parse_quantity(s.trim())
        .ok()
        .filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(vars: &[(&str, &str)]) -> Env {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pod(container: serde_json::Value) -> (Pod, Container) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p-0", "namespace": "ns", "uid": "u-1",
                         "labels": {"app": "bk"}},
            "spec": {"nodeName": "sandbox-node-1", "containers": [container]}
        }))
        .unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        (pod, c)
    }

    #[test]
    fn env_from_then_env_with_prefixes_overrides_and_references() {
        let (p, c) = pod(json!({
            "name": "c", "image": "x",
            "envFrom": [
                {"configMapRef": {"name": "a"}},
                {"configMapRef": {"name": "b"}},
                {"secretRef": {"name": "s"}, "prefix": "EXTENDEDS3_"},
                {"configMapRef": {"name": "gone", "optional": true}}
            ],
            "env": [
                {"name": "SHARED", "value": "from env"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "ZK", "valueFrom": {"configMapKeyRef": {"name": "a", "key": "ZK_URL"}}},
                {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "SECRET_KEY"}}},
                {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "s", "key": "nope", "optional": true}}},
                {"name": "JAVA_OPTS", "value": "-Dname=$(POD_NAME) -Dx=$(UNKNOWN) $$(POD_NAME)"}
            ]
        }));
        let sources = Sources::with(
            &[
                (
                    "a",
                    env(&[("ZK_URL", "zk:2181"), ("SHARED", "a"), ("ONLY_A", "1")]),
                ),
                ("b", env(&[("SHARED", "b")])),
            ],
            &[("s", env(&[("ACCESS_KEY_ID", "id"), ("SECRET_KEY", "k")]))],
        );
        let addresses = Addresses {
            pod_ip: Some("10.244.1.2"),
            host_ip: None,
        };
        let e = resolve(&p, &c, &sources, addresses).unwrap();
        assert_eq!(e["ZK_URL"], "zk:2181");
        assert_eq!(e["ONLY_A"], "1");
        assert_eq!(e["SHARED"], "from env");
        assert_eq!(e["EXTENDEDS3_ACCESS_KEY_ID"], "id");
        assert_eq!(e["EXTENDEDS3_SECRET_KEY"], "k");
        assert_eq!(e["POD_NAME"], "p-0");
        assert_eq!(e["POD_NAMESPACE"], "ns");
        assert_eq!(e["APP"], "bk");
        assert_eq!(e["NODE"], "sandbox-node-1");
        assert_eq!(e["IP"], "10.244.1.2");
        assert_eq!(e["ZK"], "zk:2181");
        assert_eq!(e["KEY"], "k");
        assert!(!e.contains_key("OPT"));
        assert_eq!(e["JAVA_OPTS"], "-Dname=p-0 -Dx=$(UNKNOWN) $(POD_NAME)");

        // Without the optional source's neighbour `b`, a later source still overrides.
        let sources = Sources::with(&[("a", env(&[("SHARED", "a")])), ("b", env(&[]))], &[]);
        let (p, c) = pod(json!({"name": "c", "envFrom": [
            {"configMapRef": {"name": "a"}}, {"configMapRef": {"name": "b"}}]}));
        assert_eq!(
            resolve(&p, &c, &sources, Addresses::default()).unwrap()["SHARED"],
            "a"
        );
    }

    #[test]
    fn missing_sources_are_create_container_config_errors() {
        let none = Sources::default();
        let err = |c: serde_json::Value, s: &Sources| {
            let (p, c) = pod(c);
            resolve(&p, &c, s, Addresses::default()).unwrap_err()
        };
        assert_eq!(
            err(
                json!({"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}),
                &none
            ),
            "configmap \"cfg\" not found"
        );
        assert_eq!(
            err(
                json!({"name": "c", "envFrom": [{"secretRef": {"name": "creds"}}]}),
                &none
            ),
            "secret \"creds\" not found"
        );
        assert_eq!(
            err(
                json!({"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}),
                &none
            ),
            "configmap \"cfg\" not found"
        );
        let some = Sources::with(&[("cfg", env(&[]))], &[("creds", env(&[]))]);
        assert_eq!(
            err(
                json!({"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}),
                &some
            ),
            "couldn't find key k in ConfigMap ns/cfg"
        );
        assert_eq!(
            err(
                json!({"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]}),
                &some
            ),
            "couldn't find key k in Secret ns/creds"
        );
        // Optional ones are skipped.
        let (p, c) = pod(json!({"name": "c",
            "envFrom": [{"secretRef": {"name": "creds", "optional": true}}],
            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": true}}}]}));
        assert_eq!(
            resolve(&p, &c, &none, Addresses::default()).unwrap(),
            Env::new()
        );
    }

    #[test]
    fn secret_values_are_decoded_and_string_data_wins() {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "s"},
            "data": {"A": "YWxwaGE=", "B": "YmV0YQ=="},
            "stringData": {"B": "override"}
        }))
        .unwrap();
        assert_eq!(
            secret_data(secret),
            env(&[("A", "alpha"), ("B", "override")])
        );
    }

    #[test]
    fn resource_fields_and_quantities() {
        let (_, c) = pod(json!({"name": "c", "resources": {
            "limits": {"memory": "1Gi", "cpu": "1500m"}, "requests": {"memory": "512Mi"}}}));
        assert_eq!(resource_field(&c, "limits.memory", None), "1073741824");
        assert_eq!(resource_field(&c, "limits.memory", Some("1Mi")), "1024");
        assert_eq!(resource_field(&c, "limits.cpu", None), "2");
        assert_eq!(resource_field(&c, "limits.cpu", Some("1m")), "1500");
        assert_eq!(resource_field(&c, "requests.memory", Some("1Mi")), "512");
        assert_eq!(resource_field(&c, "requests.cpu", Some("1m")), "1500");
        let (_, bare) = pod(json!({"name": "c"}));
        assert_eq!(resource_field(&bare, "limits.cpu", None), "8");
        assert_eq!(resource_field(&bare, "requests.memory", None), "0");
        assert_eq!(quantity("128Mi"), Some(134217728.0));
        assert_eq!(quantity("1G"), Some(1e9));
        assert_eq!(quantity("2e3"), Some(2000.0));
        assert_eq!(quantity("0.5Gi"), Some(536870912.0));
        assert_eq!(quantity("1E"), Some(1e18));
        assert_eq!(quantity("abc"), None);
        assert_eq!(quantity("1Xi"), None);
    }
}
