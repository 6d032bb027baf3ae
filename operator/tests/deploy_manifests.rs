//! The install manifests: what `kubectl apply -k deploy/` creates in a cluster.
//!
//! Renders `deploy/` with the real `kubectl kustomize` (as users do), parses every object into its
//! Kubernetes API type, and checks the wiring a working install depends on: the webhook
//! configuration reaches the webhook's Service and container, cert-manager injects the CA of the
//! certificate the webhook serves, its match condition lets only the emergency pause skip the
//! webhook (and deploy/kubernetes-1.27/ is the same install without it), the CRD is the one
//! generated from the Rust types, the
//! operator's RBAC is exactly what its code uses, and both Deployments are hardened, probed and
//! highly available. Finally the install steps of deploy/README.md run with the real `kubectl`
//! against the sandbox API server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component as PathComponent, Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pravega_crds::PravegaCluster;
use pravega_crds::duration::parse_duration;
use pravega_operator::rbac::RBAC_RULES;
use pravega_sandbox::testing::{
    Run, free_port, http_get, kubectl, kubectl_ok, workspace_binary, workspace_root,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const NAMESPACE: &str = "pravega-system";
const OPERATOR: &str = "pravega-operator";
const WEBHOOK: &str = "pravega-webhook";
const IMAGE_TAG: &str = "0.1.0";
const IMAGE_REPOSITORY: &str = "ghcr.io/pravega-upgrade";
const CERT_MANAGER: &str = "cert-manager.io/v1";

/// `kubectl kustomize DIR`, parsed into one JSON value per object.
fn kustomize(dir: &Path) -> Vec<Value> {
    let output = match Command::new("kubectl").arg("kustomize").arg(dir).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "kubectl is required on the PATH to render {} (its built-in kustomize is what \
             `kubectl apply -k` uses): {e}",
            dir.display()
        ),
        Err(e) => panic!("running `kubectl kustomize {}`: {e}", dir.display()),
    };
    assert!(
        output.status.success(),
        "`kubectl kustomize {}` failed ({}):\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout)
        .unwrap_or_else(|e| panic!("`kubectl kustomize` printed invalid UTF-8: {e}"));
    let objects = parse_yaml(&text, &format!("`kubectl kustomize {}`", dir.display()));
    assert!(
        !objects.is_empty(),
        "`kubectl kustomize {}` rendered nothing",
        dir.display()
    );
    objects
}

/// The objects of a multi-document YAML text, as JSON. `kubectl` converts them, offline:
/// `kubectl label --local` reads objects and prints them without contacting an API server.
/// Removing a label that no object has changes nothing but adding an empty `metadata.labels`,
/// which is dropped again here.
fn parse_yaml(text: &str, what: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The one object of a YAML text.
fn parse_yaml_one(text: &str, what: &str) -> Value {
    let mut objects = parse_yaml(text, what);
    assert_eq!(objects.len(), 1, "{what}: expected one YAML document");
    objects.remove(0)
}

/// The one object of a YAML file.
fn read_yaml_one(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    parse_yaml_one(&text, &path.display().to_string())
}

/// `deploy/` rendered once per test binary.
fn rendered() -> &'static [Value] {
    static RENDERED: OnceLock<Vec<Value>> = OnceLock::new();
    RENDERED.get_or_init(|| kustomize(&workspace_root().join("deploy")))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn kind_of(v: &Value) -> &str {
    str_at(v, "/kind").unwrap_or_else(|| panic!("object without kind: {v}"))
}

fn name_of(v: &Value) -> &str {
    str_at(v, "/metadata/name").unwrap_or_else(|| panic!("object without name: {v}"))
}

fn namespace_of(v: &Value) -> Option<&str> {
    str_at(v, "/metadata/namespace")
}

/// The paths where `original` has something `round_trip` lost or changed.
fn lost_fields(original: &Value, round_trip: &Value, at: &str, out: &mut Vec<String>) {
    match (original, round_trip) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => lost_fields(va, vb, &format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                lost_fields(va, vb, &format!("{at}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        // `minimum: 1` reads back as `1.0`: the same number.
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) => out.push(format!("{at}: {a} became {b}")),
    }
}

/// Parses an object into its API type, and fails on any field the type does not know (a typo
/// such as `readOnlyRootFileSystem` would otherwise pass unnoticed here and only be refused, or
/// dropped, at apply time).
fn typed<T: DeserializeOwned + Serialize>(v: &Value) -> T {
    let what = format!("{} {}", kind_of(v), name_of(v));
    let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&t).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut lost = Vec::new();
    lost_fields(v, &back, "", &mut lost);
    assert!(
        lost.is_empty(),
        "{what} has fields its API type does not know: {lost:?}"
    );
    t
}

fn find<'a>(objects: &'a [Value], kind: &str, namespace: Option<&str>, name: &str) -> &'a Value {
    let matches: Vec<&Value> = objects
        .iter()
        .filter(|v| kind_of(v) == kind && namespace_of(v) == namespace && name_of(v) == name)
        .collect();
    assert!(
        matches.len() == 1,
        "expected exactly one {kind} {namespace:?}/{name} in the rendered manifests, found {}",
        matches.len()
    );
    matches[0]
}

fn get<T: DeserializeOwned + Serialize>(kind: &str, namespace: Option<&str>, name: &str) -> T {
    typed(find(rendered(), kind, namespace, name))
}

/// Every rendered object of `kind`, typed.
fn of_kind<T: DeserializeOwned + Serialize>(kind: &str) -> Vec<T> {
    rendered()
        .iter()
        .filter(|v| kind_of(v) == kind)
        .map(typed)
        .collect()
}

fn deployment(name: &str) -> Deployment {
    get("Deployment", Some(NAMESPACE), name)
}

fn pod_spec(d: &Deployment) -> &PodSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap_or_else(|| panic!("Deployment {:?} has no pod spec", d.metadata.name))
}

fn pod_labels(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// The Deployment's one container.
fn container(d: &Deployment) -> &Container {
    let containers = &pod_spec(d).containers;
    assert_eq!(
        containers.len(),
        1,
        "Deployment {:?}: expected one container",
        d.metadata.name
    );
    &containers[0]
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The value of `--flag V` or `--flag=V` in a container's args.
fn flag<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    let args = c.args.as_deref().unwrap_or_default();
    let prefix = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(&prefix)
        }
    })
}

fn has_flag(c: &Container, name: &str) -> bool {
    c.args.iter().flatten().any(|a| a == name)
}

/// The port of a `HOST:PORT` listen address.
fn addr_port(addr: &str) -> i32 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("{addr:?} is not HOST:PORT"))
}

/// The container port a Service's targetPort or a probe's port refers to.
fn container_port(c: &Container, port: &IntOrString) -> i32 {
    let ports = c.ports.as_deref().unwrap_or_default();
    let found = match port {
        IntOrString::Int(n) => ports.iter().find(|p| p.container_port == *n),
        IntOrString::String(name) => ports.iter().find(|p| p.name.as_deref() == Some(name)),
    };
    found
        .unwrap_or_else(|| panic!("container {} has no port {port:?}", c.name))
        .container_port
}

fn named_port(c: &Container, name: &str) -> i32 {
    container_port(c, &IntOrString::String(name.to_owned()))
}

fn duration(v: &Value, pointer: &str) -> Duration {
    let s = str_at(v, pointer).unwrap_or_else(|| panic!("{} has no {pointer}", name_of(v)));
    parse_duration(s).unwrap_or_else(|e| panic!("{}{pointer} = {s:?}: {e}", name_of(v)))
}

fn cert_manager_object<'a>(kind: &str, namespace: &str, name: &str) -> &'a Value {
    let v = find(rendered(), kind, Some(namespace), name);
    assert_eq!(
        str_at(v, "/apiVersion"),
        Some(CERT_MANAGER),
        "{kind} {name}"
    );
    v
}

#[test]
fn every_object_parses_into_its_api_type_and_the_inventory_is_complete() {
    let mut inventory = Vec::new();
    for v in rendered() {
        let api_version = str_at(v, "/apiVersion").unwrap_or_default();
        let kind = kind_of(v);
        let name = name_of(v);
        let namespace = namespace_of(v);
        let namespaced = match (api_version, kind) {
            ("v1", "Namespace") => {
                typed::<Namespace>(v);
                false
            }
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                typed::<CustomResourceDefinition>(v);
                false
            }
            ("v1", "ServiceAccount") => {
                typed::<ServiceAccount>(v);
                true
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                typed::<ClusterRole>(v);
                false
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                typed::<ClusterRoleBinding>(v);
                false
            }
            ("rbac.authorization.k8s.io/v1", "Role") => {
                typed::<Role>(v);
                true
            }
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                typed::<RoleBinding>(v);
                true
            }
            ("apps/v1", "Deployment") => {
                typed::<Deployment>(v);
                true
            }
            ("v1", "Service") => {
                typed::<Service>(v);
                true
            }
            ("policy/v1", "PodDisruptionBudget") => {
                typed::<PodDisruptionBudget>(v);
                true
            }
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                typed::<ValidatingWebhookConfiguration>(v);
                false
            }
            (CERT_MANAGER, "Issuer" | "Certificate") => {
                assert!(
                    v.pointer("/spec").is_some_and(Value::is_object),
                    "{kind} {name} has no spec"
                );
                true
            }
            _ => panic!("unexpected object in deploy/: {api_version} {kind} {name}"),
        };
        if namespaced {
            assert_eq!(namespace, Some(NAMESPACE), "{kind} {name}: namespace");
        } else {
            assert_eq!(
                namespace, None,
                "cluster-scoped {kind} {name} has a namespace"
            );
        }
        inventory.push(format!(
            "{kind} {}{name}",
            namespace.map(|n| format!("{n}/")).unwrap_or_default()
        ));
    }
    inventory.sort();
    let want = [
        "Certificate pravega-system/pravega-webhook",
        "Certificate pravega-system/pravega-webhook-ca",
        "ClusterRole pravega-operator",
        "ClusterRoleBinding pravega-operator",
        "CustomResourceDefinition pravegaclusters.pravega.pravega.io",
        "Deployment pravega-system/pravega-operator",
        "Deployment pravega-system/pravega-webhook",
        "Issuer pravega-system/pravega-selfsigned",
        "Issuer pravega-system/pravega-webhook-ca",
        "Namespace pravega-system",
        "PodDisruptionBudget pravega-system/pravega-webhook",
        "Role pravega-system/pravega-operator-leader-election",
        "RoleBinding pravega-system/pravega-operator-leader-election",
        "Service pravega-system/pravega-operator-metrics",
        "Service pravega-system/pravega-webhook",
        "Service pravega-system/pravega-webhook-metrics",
        "ServiceAccount pravega-system/pravega-operator",
        "ServiceAccount pravega-system/pravega-webhook",
        "ValidatingWebhookConfiguration pravega-webhook",
    ];
    assert_eq!(inventory, want, "objects rendered from deploy/");
}

#[test]
fn rendered_crd_is_the_generated_one() {
    let generated_yaml = pravega_crds::crd_yaml().unwrap_or_else(|e| panic!("{e}"));
    let copy_path = workspace_root().join("deploy/base/pravegacluster-crd.yaml");
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&copy_path, &generated_yaml)
            .unwrap_or_else(|e| panic!("writing {}: {e}", copy_path.display()));
    }
    let copy = std::fs::read_to_string(&copy_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", copy_path.display()));
    assert!(
        copy == generated_yaml,
        "deploy/base/pravegacluster-crd.yaml is stale: regenerate it with\n  \
         cargo run -p pravega-operator -- crd > deploy/base/pravegacluster-crd.yaml\n\
         (or UPDATE_CRD=1 cargo test -p pravega-operator --test deploy_manifests)"
    );

    let generated = parse_yaml_one(&generated_yaml, "the generated CRD");
    let name = name_of(&generated);
    let rendered_crd = find(rendered(), "CustomResourceDefinition", None, name);
    // Compared as data: kustomize may re-print `1.0` as `1`, or re-wrap long strings.
    let mut differences = Vec::new();
    lost_fields(&generated, rendered_crd, "", &mut differences);
    lost_fields(rendered_crd, &generated, "", &mut differences);
    assert!(
        differences.is_empty(),
        "the CRD `kubectl apply -k deploy/` installs differs from the generated one at {differences:?}"
    );
    let crd: CustomResourceDefinition = typed(rendered_crd);
    assert_eq!(crd.spec.names.kind, "PravegaCluster");
}

#[test]
fn webhook_configuration_reaches_the_webhook_over_tls_from_cert_manager() {
    let vwc: ValidatingWebhookConfiguration =
        get("ValidatingWebhookConfiguration", None, "pravega-webhook");
    let hooks = vwc.webhooks.clone().unwrap_or_default();
    assert_eq!(hooks.len(), 1, "one webhook");
    let hook = &hooks[0];
    assert_eq!(hook.name, "pravegacluster.pravega.pravega.io");
    assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(hook.side_effects, "None");
    assert_eq!(hook.admission_review_versions, ["v1"]);
    assert_eq!(hook.timeout_seconds, Some(5));
    assert_eq!(hook.match_policy.as_deref(), Some("Equivalent"));

    // The rules select exactly the CRD's resource, on create and update.
    let crd: CustomResourceDefinition = get(
        "CustomResourceDefinition",
        None,
        "pravegaclusters.pravega.pravega.io",
    );
    let rules = hook.rules.clone().unwrap_or_default();
    assert_eq!(rules.len(), 1, "one rule");
    let rule = &rules[0];
    assert_eq!(
        rule.api_groups.as_deref(),
        Some(&[crd.spec.group.clone()][..])
    );
    let served: Vec<String> = crd.spec.versions.iter().map(|v| v.name.clone()).collect();
    assert_eq!(rule.api_versions.as_deref(), Some(&served[..]));
    assert_eq!(
        rule.resources.as_deref(),
        Some(&[crd.spec.names.plural.clone()][..])
    );
    let ops: BTreeSet<&str> = rule
        .operations
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    assert_eq!(ops, BTreeSet::from(["CREATE", "UPDATE"]));

    // clientConfig -> Service -> webhook container port -> the port the webhook listens on.
    assert!(
        hook.client_config.ca_bundle.is_none(),
        "caBundle is injected by cert-manager, not checked in"
    );
    let svc_ref = hook
        .client_config
        .service
        .as_ref()
        .unwrap_or_else(|| panic!("clientConfig.service is missing"));
    assert_eq!(svc_ref.path.as_deref(), Some("/validate"));
    assert_eq!(
        (svc_ref.namespace.as_str(), svc_ref.name.as_str()),
        (NAMESPACE, WEBHOOK)
    );
    let svc: Service = get("Service", Some(&svc_ref.namespace), &svc_ref.name);
    let svc_spec = svc.spec.clone().unwrap_or_default();
    let called_port = svc_ref.port.unwrap_or(443);
    assert_eq!(called_port, 443);
    let svc_port = svc_spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.port == called_port)
        .unwrap_or_else(|| panic!("Service {WEBHOOK} has no port {called_port}"));
    let selector = svc_spec.selector.clone().unwrap_or_default();
    let backends: Vec<Deployment> = of_kind("Deployment")
        .into_iter()
        .filter(|d: &Deployment| selects(&selector, &pod_labels(d)))
        .collect();
    assert_eq!(
        backends
            .iter()
            .map(|d| d.metadata.name.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        [WEBHOOK],
        "Service {WEBHOOK} must select the webhook's pods and only them"
    );
    let webhook = &backends[0];
    let c = container(webhook);
    let target = svc_port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(svc_port.port));
    let listen = flag(c, "--addr").unwrap_or_else(|| panic!("webhook has no --addr"));
    assert_eq!(
        container_port(c, &target),
        addr_port(listen),
        "the Service targets the port the webhook listens on (--addr {listen})"
    );

    // The CA injected into the configuration is that of the certificate the webhook serves.
    let inject_from = vwc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("cert-manager.io/inject-ca-from"))
        .unwrap_or_else(|| panic!("no cert-manager.io/inject-ca-from annotation"));
    assert_eq!(inject_from, "pravega-system/pravega-webhook");
    let (cert_ns, cert_name) = inject_from
        .split_once('/')
        .unwrap_or_else(|| panic!("{inject_from:?} is not NAMESPACE/NAME"));
    let cert = cert_manager_object("Certificate", cert_ns, cert_name);
    let secret_name = str_at(cert, "/spec/secretName").unwrap_or_else(|| panic!("no secretName"));
    assert_eq!(secret_name, "pravega-webhook-tls");
    let dns: BTreeSet<&str> = cert
        .pointer("/spec/dnsNames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let host = format!("{}.{}.svc", svc_ref.name, svc_ref.namespace);
    let fqdn = format!("{host}.cluster.local");
    assert!(
        dns.contains(host.as_str()) && dns.contains(fqdn.as_str()),
        "the certificate must name the Service the API server calls ({host}, {fqdn}); it names {dns:?}"
    );
    // Rotation: renewed well before expiry, with a new key each time.
    let lifetime = duration(cert, "/spec/duration");
    let renew_before = duration(cert, "/spec/renewBefore");
    assert_eq!(lifetime, Duration::from_secs(2160 * 3600));
    assert_eq!(renew_before, Duration::from_secs(360 * 3600));
    assert!(renew_before < lifetime);
    assert_eq!(
        str_at(cert, "/spec/privateKey/rotationPolicy"),
        Some("Always")
    );

    // The webhook reads its key pair from that Secret, mounted read-only where its flags point.
    let cert_file = flag(c, "--tls-cert-file").unwrap_or_else(|| panic!("no --tls-cert-file"));
    let key_file = flag(c, "--tls-key-file").unwrap_or_else(|| panic!("no --tls-key-file"));
    assert_eq!((cert_file, key_file), ("/tls/tls.crt", "/tls/tls.key"));
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| Path::new(cert_file).parent() == Some(Path::new(&m.mount_path)))
        .unwrap_or_else(|| panic!("nothing is mounted at the directory of {cert_file}"));
    assert_eq!(
        mount.read_only,
        Some(true),
        "the TLS Secret is mounted read-only"
    );
    assert!(
        mount.sub_path.is_none(),
        "a subPath mount would never see a renewed certificate"
    );
    let volume = pod_spec(webhook)
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap_or_else(|| panic!("no volume {}", mount.name));
    let secret_volume = volume
        .secret
        .as_ref()
        .unwrap_or_else(|| panic!("volume {} is not a Secret", volume.name));
    assert_eq!(secret_volume.secret_name.as_deref(), Some(secret_name));

    // The certificate chain: CA Issuer <- isCA Certificate <- self-signed Issuer.
    assert_eq!(str_at(cert, "/spec/issuerRef/kind"), Some("Issuer"));
    let ca_issuer_name =
        str_at(cert, "/spec/issuerRef/name").unwrap_or_else(|| panic!("no issuerRef.name"));
    let ca_issuer = cert_manager_object("Issuer", cert_ns, ca_issuer_name);
    let ca_secret =
        str_at(ca_issuer, "/spec/ca/secretName").unwrap_or_else(|| panic!("not a CA Issuer"));
    let ca_cert = rendered()
        .iter()
        .find(|v| kind_of(v) == "Certificate" && str_at(v, "/spec/secretName") == Some(ca_secret))
        .unwrap_or_else(|| panic!("no Certificate issues the CA Secret {ca_secret}"));
    assert_eq!(ca_cert.pointer("/spec/isCA"), Some(&Value::Bool(true)));
    assert_eq!(str_at(ca_cert, "/spec/issuerRef/kind"), Some("Issuer"));
    let root_name =
        str_at(ca_cert, "/spec/issuerRef/name").unwrap_or_else(|| panic!("CA has no issuer"));
    let root = cert_manager_object("Issuer", NAMESPACE, root_name);
    assert!(
        root.pointer("/spec/selfSigned").is_some(),
        "the CA is bootstrapped by a self-signed Issuer"
    );
    assert!(
        duration(ca_cert, "/spec/duration") > lifetime,
        "the CA outlives the serving certificates it signs"
    );
}

/// Every (apiGroup, resource, verb) a set of rules grants; wildcards are refused outright.
fn grants(rules: &[PolicyRule], what: &str) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules {
        assert!(
            rule.non_resource_urls.is_none() && rule.resource_names.is_none(),
            "{what}: unexpected nonResourceURLs/resourceNames"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    for x in [group, resource, verb] {
                        assert!(!x.contains('*'), "{what}: wildcard {x:?}");
                    }
                    out.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    out
}

fn wanted(lease: bool) -> BTreeSet<(String, String, String)> {
    RBAC_RULES
        .iter()
        .filter(|r| r.namespaced_lease == lease)
        .flat_map(|r| {
            r.verbs.iter().map(|v| {
                (
                    r.api_group.to_owned(),
                    r.resource.to_owned(),
                    (*v).to_owned(),
                )
            })
        })
        .collect()
}

fn assert_same_grants(
    got: &BTreeSet<(String, String, String)>,
    want: &BTreeSet<(String, String, String)>,
    what: &str,
) {
    let missing: Vec<_> = want.difference(got).collect();
    let extra: Vec<_> = got.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what} does not match pravega_operator::rbac::RBAC_RULES:\n  missing (the operator \
         would get Forbidden): {missing:?}\n  extra (not least privilege): {extra:?}"
    );
}

#[test]
fn operator_rbac_grants_exactly_what_its_code_uses() {
    let operator = deployment(OPERATOR);
    let sa = pod_spec(&operator)
        .service_account_name
        .clone()
        .unwrap_or_else(|| panic!("the operator runs as the default ServiceAccount"));
    let _: ServiceAccount = get("ServiceAccount", Some(NAMESPACE), &sa);
    let is_operator_sa = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        subjects.as_deref().unwrap_or_default().iter().any(|s| {
            s.kind == "ServiceAccount" && s.name == sa && s.namespace.as_deref() == Some(NAMESPACE)
        })
    };

    // Cluster-wide: exactly the non-lease rules.
    let bindings: Vec<ClusterRoleBinding> = of_kind("ClusterRoleBinding")
        .into_iter()
        .filter(|b: &ClusterRoleBinding| is_operator_sa(&b.subjects))
        .collect();
    assert_eq!(bindings.len(), 1, "one ClusterRoleBinding for {sa}");
    let role_ref = &bindings[0].role_ref;
    assert_eq!(role_ref.kind, "ClusterRole");
    let cluster_role: ClusterRole = get("ClusterRole", None, &role_ref.name);
    let got = grants(
        cluster_role.rules.as_deref().unwrap_or_default(),
        "ClusterRole",
    );
    let want = wanted(false);
    assert!(!want.is_empty());
    assert_same_grants(&got, &want, "the operator's ClusterRole");

    // Leases: exactly the lease rules, only in the namespace the operator runs in (where
    // POD_NAMESPACE points it).
    let role_bindings: Vec<RoleBinding> = of_kind("RoleBinding")
        .into_iter()
        .filter(|b: &RoleBinding| is_operator_sa(&b.subjects))
        .collect();
    assert_eq!(role_bindings.len(), 1, "one RoleBinding for {sa}");
    let rb = &role_bindings[0];
    assert_eq!(rb.metadata.namespace, operator.metadata.namespace);
    assert_eq!(rb.role_ref.kind, "Role");
    let role: Role = get("Role", Some(NAMESPACE), &rb.role_ref.name);
    let lease = wanted(true);
    assert!(
        lease
            .iter()
            .any(|(g, r, _)| g == "coordination.k8s.io" && r == "leases"),
        "RBAC_RULES has no lease rule"
    );
    assert_same_grants(
        &grants(role.rules.as_deref().unwrap_or_default(), "Role"),
        &lease,
        "the leader-election Role",
    );

    // The webhook calls no Kubernetes API: no binding, no token.
    let webhook = deployment(WEBHOOK);
    let webhook_sa = pod_spec(&webhook).service_account_name.clone();
    assert_eq!(webhook_sa.as_deref(), Some(WEBHOOK));
    for v in rendered() {
        if matches!(kind_of(v), "ClusterRoleBinding" | "RoleBinding") {
            let subjects = v.pointer("/subjects").cloned().unwrap_or_default();
            assert!(
                !subjects
                    .to_string()
                    .contains(&format!("\"name\":\"{WEBHOOK}\"")),
                "{} {} binds the webhook's ServiceAccount",
                kind_of(v),
                name_of(v)
            );
        }
    }
    assert_eq!(
        pod_spec(&webhook).automount_service_account_token,
        Some(false)
    );
}

#[test]
fn both_deployments_are_hardened_probed_and_highly_available() {
    for name in [OPERATOR, WEBHOOK] {
        let d = deployment(name);
        let spec = d.spec.clone().unwrap_or_default();
        assert_eq!(spec.replicas, Some(2), "{name}: replicas");
        let selector = spec.selector.match_labels.clone().unwrap_or_default();
        assert!(selects(&selector, &pod_labels(&d)), "{name}: selector");

        let pod = pod_spec(&d);
        let pod_sc = pod.security_context.clone().unwrap_or_default();
        let c = container(&d);
        assert_eq!(
            c.image.as_deref(),
            Some(format!("{IMAGE_REPOSITORY}/{name}:{IMAGE_TAG}").as_str()),
            "{name}: image"
        );
        let sc = c
            .security_context
            .clone()
            .unwrap_or_else(|| panic!("{name}: no container securityContext"));
        // Effective values: the container's, else the pod's.
        assert_eq!(
            sc.run_as_non_root.or(pod_sc.run_as_non_root),
            Some(true),
            "{name}: runAsNonRoot"
        );
        assert_eq!(
            sc.run_as_user.or(pod_sc.run_as_user),
            Some(65532),
            "{name}: runAsUser"
        );
        assert_eq!(
            sc.seccomp_profile
                .or(pod_sc.seccomp_profile)
                .map(|p| p.type_),
            Some("RuntimeDefault".to_owned()),
            "{name}: seccompProfile"
        );
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{name}");
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{name}");
        assert_eq!(sc.privileged, None, "{name}");
        let caps = sc.capabilities.unwrap_or_default();
        assert_eq!(caps.drop, Some(vec!["ALL".to_owned()]), "{name}: drop");
        assert_eq!(caps.add, None, "{name}: add");

        let resources = c.resources.clone().unwrap_or_default();
        for (what, list) in [
            ("requests", &resources.requests),
            ("limits", &resources.limits),
        ] {
            let list = list.clone().unwrap_or_default();
            for r in ["cpu", "memory"] {
                assert!(list.contains_key(r), "{name}: no {what}.{r}");
            }
        }

        // Probes on the metrics listener, which is what --metrics-addr binds.
        let metrics_port = named_port(c, "metrics");
        let metrics_addr =
            flag(c, "--metrics-addr").unwrap_or_else(|| panic!("{name}: no --metrics-addr"));
        assert_eq!(
            metrics_port,
            addr_port(metrics_addr),
            "{name}: metrics port"
        );
        for (probe, path) in [
            (&c.liveness_probe, "/healthz"),
            (&c.readiness_probe, "/readyz"),
        ] {
            let http = probe
                .as_ref()
                .and_then(|p| p.http_get.clone())
                .unwrap_or_else(|| panic!("{name}: no {path} probe"));
            assert_eq!(http.path.as_deref(), Some(path), "{name}");
            assert_eq!(
                container_port(c, &http.port),
                metrics_port,
                "{name}: {path} probe port"
            );
        }

        // Replicas spread over nodes when possible.
        let anti = pod
            .affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .clone()
            })
            .unwrap_or_default();
        assert!(
            anti.iter().any(|t| {
                t.pod_affinity_term.topology_key == "kubernetes.io/hostname"
                    && t.pod_affinity_term
                        .label_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.as_ref())
                        .is_some_and(|m| selects(m, &pod_labels(&d)))
            }),
            "{name}: no preferred pod anti-affinity on kubernetes.io/hostname"
        );
    }

    // Operator: leader election, in the namespace of its pod.
    let operator = deployment(OPERATOR);
    let c = container(&operator);
    assert!(
        has_flag(c, "--leader-elect"),
        "operator without --leader-elect"
    );
    let pod_namespace = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POD_NAMESPACE")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.clone());
    assert_eq!(pod_namespace.as_deref(), Some("metadata.namespace"));

    // Webhook: never fewer than one ready replica, as failurePolicy is Fail.
    let webhook = deployment(WEBHOOK);
    let rolling = webhook
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone());
    assert_eq!(rolling, Some(IntOrString::Int(0)), "webhook maxUnavailable");
    let pdb: PodDisruptionBudget = get("PodDisruptionBudget", Some(NAMESPACE), WEBHOOK);
    let pdb_spec = pdb.spec.unwrap_or_default();
    assert_eq!(pdb_spec.min_available, Some(IntOrString::Int(1)));
    let pdb_selector = pdb_spec
        .selector
        .and_then(|s| s.match_labels)
        .unwrap_or_default();
    assert!(
        selects(&pdb_selector, &pod_labels(&webhook)),
        "the PodDisruptionBudget must select the webhook's pods"
    );
    assert!(
        !selects(&pdb_selector, &pod_labels(&operator)),
        "the webhook's PodDisruptionBudget selects the operator"
    );
}

#[test]
fn metrics_services_and_service_monitor_reach_the_metrics_ports() {
    let services: Vec<Service> = of_kind("Service");
    let monitor_path = workspace_root().join("deploy/monitoring/servicemonitor.yaml");
    let monitor = read_yaml_one(&monitor_path);
    assert_eq!(kind_of(&monitor), "ServiceMonitor");
    let monitor_selector: BTreeMap<String, String> = serde_json::from_value(
        monitor
            .pointer("/spec/selector/matchLabels")
            .cloned()
            .unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("ServiceMonitor selector: {e}"));
    let monitor_namespaces = monitor
        .pointer("/spec/namespaceSelector/matchNames")
        .cloned()
        .unwrap_or_default();
    assert_eq!(monitor_namespaces, serde_json::json!([NAMESPACE]));
    assert_eq!(str_at(&monitor, "/spec/endpoints/0/port"), Some("metrics"));

    let monitored: Vec<&Service> = services
        .iter()
        .filter(|s| {
            selects(
                &monitor_selector,
                s.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
            )
        })
        .collect();
    let mut scraped = BTreeSet::new();
    for svc in &monitored {
        let spec = svc.spec.clone().unwrap_or_default();
        let port = spec
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some("metrics"))
            .unwrap_or_else(|| panic!("Service {:?} has no port named metrics", svc.metadata.name));
        let selector = spec.selector.clone().unwrap_or_default();
        for name in [OPERATOR, WEBHOOK] {
            let d = deployment(name);
            if selects(&selector, &pod_labels(&d)) {
                let c = container(&d);
                let target = port
                    .target_port
                    .clone()
                    .unwrap_or(IntOrString::Int(port.port));
                assert_eq!(
                    container_port(c, &target),
                    named_port(c, "metrics"),
                    "Service {:?} must target {name}'s metrics port",
                    svc.metadata.name
                );
                scraped.insert(name);
            }
        }
    }
    assert_eq!(
        scraped,
        BTreeSet::from([OPERATOR, WEBHOOK]),
        "the ServiceMonitor must reach both programs' metrics"
    );
    assert!(
        monitored
            .iter()
            .all(|s| s.metadata.name.as_deref() != Some(WEBHOOK)),
        "the admission Service must not be scraped"
    );
}

/// A relative path from `from` to `to` (kustomize refuses absolute resource paths).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<PathComponent> = from.components().collect();
    let to: Vec<PathComponent> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c);
    }
    out
}

/// A directory removed when dropped, even when the test fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn images_can_be_overridden_in_an_overlay() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("deploy-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let overlay = TempDir(
        dir.canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
    );
    let base = workspace_root()
        .join("deploy")
        .canonicalize()
        .unwrap_or_else(|e| panic!("deploy/: {e}"));
    // What a user's overlay looks like (deploy/README.md, "Images").
    let kustomization = format!(
        "resources:\n- {}\nimages:\n\
         - name: {IMAGE_REPOSITORY}/pravega-operator\n  newName: registry.example.com/op\n  newTag: 9.9.9\n\
         - name: {IMAGE_REPOSITORY}/pravega-webhook\n  newName: registry.example.com/wh\n  newTag: 9.9.9\n",
        relative(&overlay.0, &base).display()
    );
    std::fs::write(overlay.0.join("kustomization.yaml"), kustomization)
        .unwrap_or_else(|e| panic!("writing the overlay: {e}"));
    let objects = kustomize(&overlay.0);
    drop(overlay);

    for (name, image) in [
        (OPERATOR, "registry.example.com/op:9.9.9"),
        (WEBHOOK, "registry.example.com/wh:9.9.9"),
    ] {
        let d: Deployment = typed(find(&objects, "Deployment", Some(NAMESPACE), name));
        assert_eq!(container(&d).image.as_deref(), Some(image), "{name}");
    }
}

#[test]
fn the_sample_cluster_is_separate_and_the_readme_commands_point_at_real_files() {
    assert!(
        !rendered().iter().any(|v| kind_of(v) == "PravegaCluster"),
        "deploy/ must not create a PravegaCluster"
    );
    let root = workspace_root();
    let sample_path = root.join("deploy/sample/pravegacluster.yaml");
    let sample: PravegaCluster = serde_json::from_value(read_yaml_one(&sample_path))
        .unwrap_or_else(|e| panic!("{}: {e}", sample_path.display()));
    assert!(pravega_crds::validate_create(&sample.spec).is_allowed());

    let readme_path = root.join("deploy/README.md");
    let readme = std::fs::read_to_string(&readme_path)
        .unwrap_or_else(|e| panic!("{}: {e}", readme_path.display()));
    let mut checked = BTreeSet::new();
    for line in readme.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            if matches!(pair[0], "-k" | "-f") && !pair[1].contains("://") {
                let path = pair[1].trim_end_matches(['`', ')']);
                if path.starts_with("deploy/") || path.starts_with("certs/") {
                    assert!(
                        root.join(path).exists(),
                        "deploy/README.md: `{line}` refers to {path}, which does not exist"
                    );
                    checked.insert(path.to_owned());
                }
            }
        }
    }
    for path in [
        "deploy/",
        "deploy/kubernetes-1.27/",
        "deploy/sample/pravegacluster.yaml",
    ] {
        assert!(
            checked.contains(path),
            "deploy/README.md does not show `kubectl apply ... {path}`"
        );
    }
}

/// The webhook's only match condition, as `kubectl kustomize deploy/` renders it.
const EMERGENCY_PAUSE: &str = "!(request.operation == 'UPDATE' && has(object.spec.upgrade) && has(object.spec.upgrade.paused) && object.spec.upgrade.paused == true && object.spec.version == oldObject.spec.version)";

#[test]
fn only_the_emergency_pause_skips_the_webhook() {
    use pravega_sandbox::cel::{Activation, compile};
    use serde_json::json;

    let vwc: ValidatingWebhookConfiguration =
        get("ValidatingWebhookConfiguration", None, "pravega-webhook");
    let hooks = vwc.webhooks.unwrap_or_default();
    let conditions: Vec<(String, String)> = hooks
        .iter()
        .flat_map(|h| h.match_conditions.iter().flatten())
        .map(|c| (c.name.clone(), c.expression.clone()))
        .collect();
    assert_eq!(
        conditions,
        [(
            "not-an-emergency-pause".to_owned(),
            EMERGENCY_PAUSE.to_owned()
        )]
    );

    // What it decides, evaluated as an API server evaluates it (the sandbox's CEL): the webhook
    // is called (true) for everything but an UPDATE that keeps the version and is paused.
    let condition = compile(EMERGENCY_PAUSE).unwrap_or_else(|e| panic!("{e}"));
    let sample = read_yaml_one(&workspace_root().join("deploy/sample/pravegacluster.yaml"));
    let with = |version: &str, upgrade: Value| {
        let mut v = sample.clone();
        v["spec"]["version"] = json!(version);
        v["spec"]["upgrade"] = upgrade;
        v
    };
    let stored = with("0.4.0", json!({"timeout": "10m", "paused": false}));
    let calls_webhook = |operation: &str, object: &Value, old: &Value| {
        let request = json!({"operation": operation, "name": "example", "namespace": "default"});
        condition
            .evaluate(&Activation {
                object,
                old_object: old,
                request: &request,
            })
            .unwrap_or_else(|e| panic!("{operation} {object}: {e}"))
    };
    let paused = with("0.4.0", json!({"timeout": "10m", "paused": true}));
    assert!(!calls_webhook("UPDATE", &paused, &stored), "the pause");
    assert!(!calls_webhook("UPDATE", &paused, &paused), "paused again");
    assert!(
        calls_webhook("CREATE", &paused, &Value::Null),
        "a paused create"
    );
    for (what, object) in [
        (
            "a version change",
            with("0.5.0", json!({"timeout": "10m", "paused": false})),
        ),
        (
            "a paused version change",
            with("0.5.0", json!({"timeout": "10m", "paused": true})),
        ),
        ("no upgrade settings", with("0.4.0", Value::Null)),
        ("no paused", with("0.4.0", json!({"timeout": "10m"}))),
    ] {
        assert!(calls_webhook("UPDATE", &object, &paused), "{what}");
    }
    assert!(calls_webhook("UPDATE", &stored, &paused), "resuming");
}

#[test]
fn kubernetes_1_27_is_the_same_install_without_match_conditions() {
    let old = kustomize(&workspace_root().join("deploy/kubernetes-1.27"));
    let mut expected: Vec<Value> = rendered().to_vec();
    let mut removed = 0;
    for v in &mut expected {
        if kind_of(v) == "ValidatingWebhookConfiguration"
            && let Some(Value::Array(hooks)) = v.pointer_mut("/webhooks")
        {
            for hook in hooks.iter_mut().filter_map(Value::as_object_mut) {
                removed += usize::from(hook.remove("matchConditions").is_some());
            }
        }
    }
    assert_eq!(removed, 1, "deploy/ has one webhook with matchConditions");
    assert_eq!(
        old, expected,
        "deploy/kubernetes-1.27/ must be deploy/ without the matchConditions"
    );
}

#[test]
fn without_cert_manager_is_the_same_install_minus_cert_manager() {
    let objects = kustomize(&workspace_root().join("deploy/without-cert-manager"));
    let identity = |v: &Value| {
        format!(
            "{} {} {}/{}",
            str_at(v, "/apiVersion").unwrap_or_default(),
            kind_of(v),
            namespace_of(v).unwrap_or_default(),
            name_of(v)
        )
    };
    let without: BTreeMap<String, &Value> = objects.iter().map(|v| (identity(v), v)).collect();
    let with: BTreeMap<String, &Value> = rendered()
        .iter()
        .filter(|v| str_at(v, "/apiVersion") != Some(CERT_MANAGER))
        .map(|v| (identity(v), v))
        .collect();
    assert_eq!(
        without.keys().collect::<Vec<_>>(),
        with.keys().collect::<Vec<_>>(),
        "deploy/without-cert-manager/ must install everything but the cert-manager objects"
    );
    for (id, v) in &without {
        if kind_of(v) == "ValidatingWebhookConfiguration" {
            let vwc: ValidatingWebhookConfiguration = typed(v);
            assert!(
                vwc.metadata
                    .annotations
                    .unwrap_or_default()
                    .keys()
                    .all(|k| !k.starts_with("cert-manager.io/")),
                "{id}: no CA injector without cert-manager"
            );
            let mut stripped = (*with[id]).clone();
            if let Some(Value::Object(metadata)) = stripped.pointer_mut("/metadata") {
                let now_empty = match metadata.get_mut("annotations") {
                    Some(Value::Object(a)) => {
                        a.remove("cert-manager.io/inject-ca-from");
                        a.is_empty()
                    }
                    _ => false,
                };
                if now_empty {
                    metadata.remove("annotations");
                }
            }
            assert_eq!(*v, &stripped, "{id}");
        } else {
            assert_eq!(*v, with[id], "{id} differs between the two installs");
        }
    }
}

/// Starts a Deployment's container as a local process, as its pod would run it: the container's
/// args with listen addresses moved to free loopback ports and paths under `/tls/` moved to
/// `tls_dir`, and its environment with the downward API resolved; its logs go to `log`. Returns
/// the process and the loopback port of each listen-address flag.
fn start_like_pod(
    bin: &Path,
    d: &Deployment,
    pod_name: &str,
    tls_dir: Option<&Path>,
    kubeconfig: &Path,
    log: &Path,
) -> (tokio::process::Child, BTreeMap<String, u16>) {
    let c = container(d);
    let mut ports = BTreeMap::new();
    let mut args = Vec::new();
    for arg in c.args.iter().flatten() {
        let arg = match arg.split_once('=') {
            Some((flag @ ("--addr" | "--metrics-addr"), _)) => {
                let port = free_port();
                ports.insert(flag.to_owned(), port);
                format!("{flag}=127.0.0.1:{port}")
            }
            _ => match (arg.strip_prefix("/tls/"), tls_dir) {
                (Some(file), Some(dir)) => dir.join(file).to_string_lossy().into_owned(),
                (Some(_), None) => panic!("{arg}: no TLS directory for {}", c.name),
                (None, _) => arg.clone(),
            },
        };
        args.push(arg);
    }
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(&args)
        .env_clear()
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display())))
        .kill_on_drop(true);
    for e in c.env.iter().flatten() {
        let field = e.value_from.as_ref().and_then(|v| v.field_ref.as_ref());
        let value = match (&e.value, field) {
            (Some(v), _) => v.clone(),
            (None, Some(f)) if f.field_path == "metadata.namespace" => {
                d.metadata.namespace.clone().unwrap_or_default()
            }
            (None, Some(f)) if f.field_path == "metadata.name" => pod_name.to_owned(),
            _ => panic!("env {} of {}: unsupported source", e.name, c.name),
        };
        cmd.env(&e.name, value);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    (child, ports)
}

/// Waits until `GET /readyz` on a loopback port answers 200; fails at once, with its logs, if the
/// process exits first.
async fn wait_ready(what: &str, child: &mut tokio::process::Child, port: u16, log: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while http_get(([127, 0, 0, 1], port).into(), "/readyz").await.0 != 200 {
        let logs = || std::fs::read_to_string(log).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) with its args in deploy/:\n{}",
                logs()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} not ready within 20s:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The install steps of deploy/README.md ("Without cert-manager": there is no cert-manager here)
/// with the real `kubectl` against the sandbox API server, whose simulated controllers and
/// kubelets run the Deployments' pods, and the real `pravega-webhook` behind the Service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_install_without_cert_manager_works_with_kubectl_on_an_api_server() {
    use pravega_sandbox::sim::{SimOptions, Simulation};
    use pravega_sandbox::{Sandbox, SandboxOptions};

    let install_dir = workspace_root().join("deploy/without-cert-manager");
    let install = install_dir
        .to_str()
        .unwrap_or_else(|| panic!("non UTF-8 path"));
    let rendered_install = kustomize(&install_dir);
    let expected = rendered_install.len();
    let sample = workspace_root().join("deploy/sample/pravegacluster.yaml");
    let sample = sample.to_str().unwrap_or_else(|| panic!("non UTF-8 path"));
    let webhook_bin = workspace_binary("pravega-webhook", "pravega-webhook");

    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .unwrap_or_else(|e| panic!("starting the sandbox: {e}"));
    let client = sandbox
        .client()
        .await
        .unwrap_or_else(|e| panic!("sandbox client: {e}"));
    let sim = Simulation::start(client, SimOptions::default())
        .await
        .unwrap_or_else(|e| panic!("starting the simulation: {e}"));
    let kc = sandbox.kubeconfig_path().to_path_buf();

    // kubectl apply -k deploy/without-cert-manager/: every object is created.
    let out = kubectl_ok(&kc, &["apply", "-k", install]).await;
    let created = out.lines().filter(|l| l.ends_with(" created")).count();
    assert_eq!(created, expected, "kubectl apply -k printed:\n{out}");
    let out = kubectl_ok(&kc, &["get", "validatingwebhookconfiguration", WEBHOOK]).await;
    assert!(
        out.lines().nth(1).is_some_and(|l| l.starts_with(WEBHOOK)),
        "{out}"
    );
    // Fail closed: while no webhook answers, a PravegaCluster is refused, not let through.
    let Run {
        ok,
        stdout: out,
        stderr: err,
    } = kubectl(&kc, &["apply", "-f", sample]).await;
    assert!(!ok, "the sample was admitted without the webhook: {out}");
    assert!(
        err.contains("failed calling webhook \"pravegacluster.pravega.pravega.io\""),
        "{err}"
    );

    // The README's certificate steps: gen-certs, the Secret, the caBundle patch.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "deploy-webhook-certs-{}-{}",
        std::process::id(),
        free_port()
    ));
    let certs = TempDir(dir);
    let out_dir = certs.0.to_str().unwrap_or_else(|| panic!("non UTF-8 path"));
    let gen_certs = tokio::process::Command::new(&webhook_bin)
        .args(["gen-certs", "--out-dir", out_dir])
        .args(["--dns", "pravega-webhook.pravega-system.svc"])
        .args(["--dns", "pravega-webhook.pravega-system.svc.cluster.local"])
        // The sandbox calls the Service at its mapped loopback address.
        .args(["--ip", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap_or_else(|e| panic!("running pravega-webhook gen-certs: {e}"));
    assert!(gen_certs.success(), "pravega-webhook gen-certs failed");
    let file = |name: &str| certs.0.join(name).to_string_lossy().into_owned();
    kubectl_ok(
        &kc,
        &[
            "-n",
            NAMESPACE,
            "create",
            "secret",
            "tls",
            "pravega-webhook-tls",
            &format!("--cert={}", file("tls.crt")),
            &format!("--key={}", file("tls.key")),
        ],
    )
    .await;
    let ca = std::fs::read(certs.0.join("ca.crt")).unwrap_or_else(|e| panic!("ca.crt: {e}"));
    let ca_base64 =
        serde_json::to_value(k8s_openapi::ByteString(ca)).unwrap_or_else(|e| panic!("base64: {e}"));
    let patch = serde_json::json!([
        {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": ca_base64}
    ])
    .to_string();
    kubectl_ok(
        &kc,
        &[
            "patch",
            "validatingwebhookconfiguration",
            WEBHOOK,
            "--type=json",
            &format!("-p={patch}"),
        ],
    )
    .await;

    // The Deployments roll out (the webhook's pods need the Secret).
    for name in [OPERATOR, WEBHOOK] {
        let deployment = format!("deployment/{name}");
        let args = [
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            &deployment,
            "--timeout=30s",
        ];
        kubectl_ok(&kc, &args).await;
    }
    let pods = kubectl_ok(&kc, &["-n", NAMESPACE, "get", "pods"]).await;
    let ready_pods = pods
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some("1/1"))
        .count();
    assert_eq!(ready_pods, 4, "two ready pods of each program:\n{pods}");

    // The webhook and the operator as their pods run them: the args and environment of their
    // containers in deploy/, the Secret's files, and the sandbox as their API server.
    let deployment_of = |name: &str| -> Deployment {
        typed(find(&rendered_install, "Deployment", Some(NAMESPACE), name))
    };
    let webhook_log = certs.0.join("pravega-webhook.log");
    let (mut webhook, webhook_ports) = start_like_pod(
        &webhook_bin,
        &deployment_of(WEBHOOK),
        "pravega-webhook-0",
        Some(&certs.0),
        &kc,
        &webhook_log,
    );
    let metrics = webhook_ports["--metrics-addr"];
    wait_ready("pravega-webhook", &mut webhook, metrics, &webhook_log).await;
    sandbox.map_service(
        NAMESPACE,
        WEBHOOK,
        443,
        std::net::SocketAddr::from(([127, 0, 0, 1], webhook_ports["--addr"])),
    );
    let operator_pod = "pravega-operator-0";
    let operator_log = certs.0.join("pravega-operator.log");
    let (mut operator, operator_ports) = start_like_pod(
        Path::new(env!("CARGO_BIN_EXE_pravega-operator")),
        &deployment_of(OPERATOR),
        operator_pod,
        None,
        &kc,
        &operator_log,
    );
    let metrics = operator_ports["--metrics-addr"];
    wait_ready("pravega-operator", &mut operator, metrics, &operator_log).await;

    // Through deploy/'s webhook configuration: the sample is admitted, a bad version is not.
    let out = kubectl_ok(&kc, &["apply", "-f", sample]).await;
    assert!(
        out.contains("pravegacluster.pravega.pravega.io/example created"),
        "{out}"
    );
    // The operator leads, by the Lease in its own namespace, and reconciles the cluster.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let holder = kubectl(
            &kc,
            &[
                "-n",
                NAMESPACE,
                "get",
                "lease",
                "pravega-operator-leader",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
        )
        .await
        .stdout;
        let Run { ok: bookies, .. } = kubectl(&kc, &["get", "statefulset", "example-bookie"]).await;
        // The holder identity is the pod name (POD_NAME) and a random suffix.
        let leads = holder.starts_with(&format!("{operator_pod}_"));
        if leads && bookies {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "within 30s the operator did not both lead (lease holder {holder:?}) and create \
             example-bookie ({bookies})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let Run {
        ok,
        stdout: out,
        stderr: err,
    } = kubectl(
        &kc,
        &[
            "patch",
            "PravegaCluster",
            "example",
            "--type=json",
            r#"-p=[{"op": "replace", "path": "/spec/version", "value": "latest"}]"#,
        ],
    )
    .await;
    assert!(!ok, "spec.version latest was admitted: {out}");
    assert!(
        err.contains("admission webhook \"pravegacluster.pravega.pravega.io\" denied the request"),
        "{err}"
    );
    kubectl_ok(&kc, &["delete", "-f", sample]).await;

    // Re-applying changes nothing, and keeps the patched caBundle. kubectl always reports a
    // PodDisruptionBudget as configured: its selector's patch strategy is `replace`, so the
    // computed patch is never empty.
    let out = kubectl_ok(&kc, &["apply", "-k", install]).await;
    let changed: Vec<&str> = out
        .lines()
        .filter(|l| {
            !l.ends_with(" unchanged")
                && *l != "poddisruptionbudget.policy/pravega-webhook configured"
        })
        .collect();
    assert!(
        changed.is_empty(),
        "second kubectl apply -k changed {changed:?}:\n{out}"
    );
    assert_eq!(out.lines().count(), expected, "{out}");
    let jsonpath = |p: &str| format!("jsonpath={{{p}}}");
    let generation = kubectl_ok(
        &kc,
        &[
            "-n",
            NAMESPACE,
            "get",
            "pdb",
            WEBHOOK,
            "-o",
            &jsonpath(".metadata.generation"),
        ],
    )
    .await;
    assert_eq!(generation, "1", "the PodDisruptionBudget was not changed");
    let ca_bundle = kubectl_ok(
        &kc,
        &[
            "get",
            "validatingwebhookconfiguration",
            WEBHOOK,
            "-o",
            &jsonpath(".webhooks[0].clientConfig.caBundle"),
        ],
    )
    .await;
    assert_eq!(Some(ca_bundle.as_str()), ca_base64.as_str());

    // Uninstall: everything goes, the CRD included.
    let args = [
        "delete",
        "-k",
        install,
        "--ignore-not-found",
        "--wait=false",
    ];
    kubectl_ok(&kc, &args).await;
    let crd = ["get", "crd", "pravegaclusters.pravega.pravega.io"];
    let Run {
        ok, stderr: err, ..
    } = kubectl(&kc, &crd).await;
    assert!(!ok && err.contains("NotFound"), "{err}");

    let _ = webhook.kill().await;
    let _ = operator.kill().await;
    sim.shutdown().await;
    sandbox.shutdown().await;
}
