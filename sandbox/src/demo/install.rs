//! Installing the webhook and the operator the way the deploy manifests do, as processes of
//! their own (the real binaries, found or built next to the sandbox's).

use super::{
    DemoError, Processes, Story, WEBHOOK_CONFIGURATION, WEBHOOK_NAMESPACE, WEBHOOK_SERVICE, io,
    kube_err, step_err,
};
use crate::Sandbox;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

pub(super) async fn install(
    story: &mut Story,
    sandbox: &Sandbox,
    client: &Client,
    operator_bin: &Path,
    webhook_bin: &Path,
    work_dir: &Path,
) -> Result<Processes, DemoError> {
    story.chapter("Install the PravegaCluster CRD, the validating webhook and the operator");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = pravega_crds::crd();
    let crd_name = crd.metadata.name.clone().unwrap_or_default();
    crds.create(&PostParams::default(), &crd)
        .await
        .map_err(kube_err("creating the PravegaCluster CRD"))?;
    tokio::time::timeout(
        Duration::from_secs(10),
        kube::runtime::wait::await_condition(
            crds,
            &crd_name,
            kube::runtime::wait::conditions::is_crd_established(),
        ),
    )
    .await
    .map_err(|_| step_err("install", "the CRD was not Established within 10s"))?
    .map_err(|e| step_err("install", format!("waiting for the CRD: {e}")))?;
    story.ok(format!(
        "customresourcedefinition {crd_name} created and established"
    ));

    let webhook = start_webhook(sandbox, client, webhook_bin, work_dir).await?;
    story.ok(format!(
        "pravega-webhook serving https://127.0.0.1:{}/validate (certificate from a generated CA)",
        webhook.port
    ));
    story.ok(format!(
        "validatingwebhookconfiguration pravega-webhook created (service {WEBHOOK_NAMESPACE}/{WEBHOOK_SERVICE}, failurePolicy Fail)"
    ));

    let operator_metrics = free_port()?;
    let kubeconfig = sandbox.kubeconfig_path().to_string_lossy().into_owned();
    let operator = spawn(
        operator_bin,
        &["--metrics-addr", &format!("127.0.0.1:{operator_metrics}")],
        &[("KUBECONFIG", &kubeconfig)],
        &work_dir.join("operator.log"),
    )?;
    let mut processes = Processes {
        operator,
        webhook: webhook.child,
    };
    wait_ready(
        "pravega-operator",
        operator_metrics,
        &mut processes.operator,
    )
    .await?;
    story.ok("pravega-operator running and ready");
    Ok(processes)
}

/// The real `pravega-webhook` process started by [`start_webhook`].
#[derive(Debug)]
pub struct WebhookProcess {
    /// The process (killed when dropped).
    pub child: Child,
    /// Loopback port of its HTTPS admission endpoint.
    pub port: u16,
    /// Loopback port of its metrics endpoint (`/metrics`, `/healthz`, `/readyz`).
    pub metrics_port: u16,
}

/// Starts the real `pravega-webhook` binary on loopback and registers it with the sandbox the
/// way a cluster install does: a CA and serving certificate from its own `gen-certs` (in place of
/// cert-manager) under `work_dir`, the Service `pravega-system/pravega-webhook` mapped to the
/// process, and the ValidatingWebhookConfiguration `pravega-webhook` of
/// `deploy/base/validatingwebhookconfiguration.yaml` (failurePolicy Fail, the emergency-pause
/// match condition) trusting that CA. Returns once the webhook reports ready; its output goes
/// to `work_dir/webhook.log`.
pub async fn start_webhook(
    sandbox: &Sandbox,
    client: &Client,
    webhook_bin: &Path,
    work_dir: &Path,
) -> Result<WebhookProcess, DemoError> {
    let certs = work_dir.join("webhook-certs");
    let status = Command::new(webhook_bin)
        .arg("gen-certs")
        .arg("--out-dir")
        .arg(&certs)
        .args([
            "--dns",
            &format!("{WEBHOOK_SERVICE}.{WEBHOOK_NAMESPACE}.svc"),
        ])
        .args(["--ip", "127.0.0.1"])
        .stdout(Stdio::null())
        .status()
        .await
        .map_err(io("running pravega-webhook gen-certs"))?;
    if !status.success() {
        return Err(step_err(
            "install",
            format!("pravega-webhook gen-certs exited with {status}"),
        ));
    }
    let ca = std::fs::read(certs.join("ca.crt")).map_err(io("reading the generated CA"))?;
    let port = free_port()?;
    let metrics = free_port()?;
    let mut child = spawn(
        webhook_bin,
        &[
            "--tls-cert-file",
            &certs.join("tls.crt").to_string_lossy(),
            "--tls-key-file",
            &certs.join("tls.key").to_string_lossy(),
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
        ],
        &[],
        &work_dir.join("webhook.log"),
    )?;
    wait_ready("pravega-webhook", metrics, &mut child).await?;
    sandbox.map_service(
        WEBHOOK_NAMESPACE,
        WEBHOOK_SERVICE,
        443,
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    );
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configs
        .create(&PostParams::default(), &webhook_configuration(ca)?)
        .await
        .map_err(kube_err("creating the ValidatingWebhookConfiguration"))?;
    Ok(WebhookProcess {
        child,
        port,
        metrics_port: metrics,
    })
}

/// `deploy/base/validatingwebhookconfiguration.yaml` as the cluster install has it once
/// cert-manager injected the CA: `caBundle` set, the injection annotation gone.
pub(super) fn webhook_configuration(
    ca_pem: Vec<u8>,
) -> Result<ValidatingWebhookConfiguration, DemoError> {
    let mut config: ValidatingWebhookConfiguration = serde_saphyr::from_str(WEBHOOK_CONFIGURATION)
        .map_err(|e| {
            step_err(
                "install",
                format!("deploy/base/validatingwebhookconfiguration.yaml does not parse: {e}"),
            )
        })?;
    if let Some(annotations) = config.metadata.annotations.as_mut() {
        annotations.remove("cert-manager.io/inject-ca-from");
    }
    if config
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.is_empty())
    {
        config.metadata.annotations = None;
    }
    for hook in config.webhooks.iter_mut().flatten() {
        hook.client_config.ca_bundle = Some(ByteString(ca_pem.clone()));
    }
    Ok(config)
}

fn free_port() -> Result<u16, DemoError> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(io("finding a free port"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(io("finding a free port"))
}

fn spawn(bin: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Result<Child, DemoError> {
    let out = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io(format!("opening {}", log.display())))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .map_err(io(format!("starting {}", bin.display())))
}

/// Waits until `GET /readyz` on the process's metrics port answers 200.
async fn wait_ready(name: &str, port: u16, child: &mut Child) -> Result<(), DemoError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(step_err("install", format!("{name} exited with {status}")));
        }
        if http_status(port, "/readyz").await == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(step_err(
                "install",
                format!("{name} did not become ready within 20s"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The operator's log lines that the guide shows.
pub(super) fn guide_log_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let keys = [
        "syncing cluster version",
        "updating statefulset",
        "upgrading pod:",
        "error syncing cluster version",
    ];
    text.lines()
        .filter(|l| keys.iter().any(|k| l.contains(k)))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// Finds a binary of the workspace: the explicit path, next to this executable, or built with
/// cargo when this executable was built by cargo.
pub(super) fn locate_binary(
    name: &'static str,
    explicit: Option<PathBuf>,
) -> Result<PathBuf, DemoError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(DemoError::Binary {
                name,
                why: format!("{} is not a file", path.display()),
            })
        };
    }
    let exe = std::env::current_exe().map_err(io("locating this executable"))?;
    // target/<profile>/pravega-sandbox, or target/<profile>/deps/<test> in tests.
    let dirs: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(Path::to_path_buf)
        .collect();
    let find = || dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    if let Some(path) = find() {
        return Ok(path);
    }
    let release = exe.components().any(|c| c.as_os_str() == "release");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    if !manifest.is_file() {
        return Err(DemoError::Binary {
            name,
            why: format!(
                "not next to {} (pass --{}-bin)",
                exe.display(),
                name.trim_start_matches("pravega-")
            ),
        });
    }
    eprintln!("building pravega-operator, pravega-webhook and kubectl-pravega ...");
    let mut cmd = std::process::Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "-p",
            "pravega-operator",
            "-p",
            "pravega-webhook",
            "-p",
            "kubectl-pravega",
        ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(io("running cargo build"))?;
    if !status.success() {
        return Err(DemoError::Binary {
            name,
            why: format!("cargo build exited with {status}"),
        });
    }
    find().ok_or_else(|| DemoError::Binary {
        name,
        why: format!("not found next to {} after building", exe.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::WEBHOOK_NAME;

    #[test]
    fn the_webhook_configuration_is_the_installs_with_the_ca() {
        let config = webhook_configuration(b"CA".to_vec()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.metadata.name.as_deref(), Some("pravega-webhook"));
        assert!(
            config.metadata.annotations.is_none(),
            "{:?}",
            config.metadata
        );
        let hooks = config.webhooks.unwrap_or_default();
        let [hook] = hooks.as_slice() else {
            panic!("one webhook: {hooks:?}");
        };
        assert_eq!(hook.name, WEBHOOK_NAME);
        assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(
            hook.client_config.ca_bundle,
            Some(ByteString(b"CA".to_vec()))
        );
        let service = hook.client_config.service.as_ref().expect("a service");
        assert_eq!(
            (
                service.namespace.as_str(),
                service.name.as_str(),
                service.port
            ),
            (WEBHOOK_NAMESPACE, WEBHOOK_SERVICE, Some(443))
        );
        let conditions = hook.match_conditions.clone().unwrap_or_default();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].name, "not-an-emergency-pause");
        crate::cel::compile(&conditions[0].expression).unwrap_or_else(|e| panic!("{e}"));
    }
}
