//! The [`Sandbox`] handle: starts the API server, writes the kubeconfig, builds clients.

use crate::api::Core;
use crate::error::Error;
use crate::server::{Ctx, serve};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to start a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Address to serve on (default `127.0.0.1:0`: a free loopback port).
    pub addr: SocketAddr,
    /// Where to write the kubeconfig (`None`: a file in a temp dir owned by the sandbox and
    /// removed with it).
    pub kubeconfig: Option<PathBuf>,
    /// How many recent changes watches can resume from (older versions get `410 Gone`).
    pub watch_history: usize,
    /// Errors, latency and dropped watches injected into the answers to every client but the
    /// control plane's ([`Sandbox::control_plane_client`]). None by default.
    pub faults: crate::FaultOptions,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            watch_history: 10_000,
            faults: crate::FaultOptions::default(),
        }
    }
}

/// A running sandbox API server. Dropping it stops serving.
pub struct Sandbox {
    core: Arc<Core>,
    url: String,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    ca_pem: String,
    token: String,
    control_plane_token: String,
    audit: crate::audit::AuditLog,
    _tempdir: Option<tempfile::TempDir>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("url", &self.url)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Generates a CA and serving certificate, binds the listener, writes the kubeconfig and
    /// starts serving. Must be called within a Tokio runtime.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, Error> {
        opts.faults.validate().map_err(Error::InvalidOptions)?;
        let creds = crate::tls::generate()?;
        let tls = crate::tls::server_config(&creds)?;
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: opts.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: opts.addr,
            source,
        })?;
        let url = format!("https://{addr}");
        let (tempdir, kubeconfig) = match opts.kubeconfig {
            Some(p) => (None, p),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("pravega-sandbox-")
                    .tempdir()
                    .map_err(|source| Error::Kubeconfig {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let p = dir.path().join("kubeconfig");
                (Some(dir), p)
            }
        };
        let text = crate::tls::kubeconfig_yaml(&url, &creds.ca_pem, &creds.token);
        if let Some(parent) = kubeconfig.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Kubeconfig {
                path: kubeconfig.clone(),
                source,
            })?;
        }
        std::fs::write(&kubeconfig, text).map_err(|source| Error::Kubeconfig {
            path: kubeconfig.clone(),
            source,
        })?;
        let core = Core::new(opts.watch_history);
        let control_plane_token = crate::tls::new_token();
        if opts.faults.is_enabled() {
            tracing::info!(faults = ?opts.faults, "injecting faults into the answers to clients other than the control plane");
        }
        let ctx = Arc::new(Ctx {
            core: core.clone(),
            token: creds.token.clone(),
            control_plane_token: control_plane_token.clone(),
            faults: crate::fault::Faults::new(opts.faults),
            server_addr: addr.to_string(),
            audit: crate::audit::AuditLog::default(),
            lists: Default::default(),
        });
        let audit = ctx.audit.clone();
        let task = tokio::spawn(serve(listener, tls, ctx));
        tracing::info!(%url, kubeconfig = %kubeconfig.display(), "sandbox API server listening");
        Ok(Sandbox {
            audit,
            core,
            url,
            addr,
            kubeconfig,
            ca_pem: creds.ca_pem,
            token: creds.token,
            control_plane_token,
            _tempdir: tempdir,
            task: Some(task),
        })
    }

    /// The kubeconfig file (CA, server URL, bearer token; context `pravega-sandbox`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The bearer token the API server accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A kube client configured from the kubeconfig.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| Error::Client(e.to_string()))?;
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Client(e.to_string()))?;
        client_of(cfg, "pravega-sandbox/")
    }

    /// A kube client that authenticates as the control plane (the simulated controllers and
    /// kubelets): its requests are never faulted ([`SandboxOptions::faults`]), as a real API
    /// server's priority and fairness never throttles `system:masters`. Otherwise the same as
    /// [`Sandbox::client`].
    pub async fn control_plane_client(&self) -> Result<kube::Client, Error> {
        let text = crate::tls::kubeconfig_yaml(&self.url, &self.ca_pem, &self.control_plane_token);
        let kc =
            kube::config::Kubeconfig::from_yaml(&text).map_err(|e| Error::Client(e.to_string()))?;
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Client(e.to_string()))?;
        client_of(cfg, "pravega-sandbox-control-plane/")
    }

    /// Maps a webhook `clientConfig.service` reference (`namespace`/`name`:`port`) to a local
    /// address: the sandbox then calls `https://<addr><service.path>`, and names the webhook's URL
    /// in errors as the API server does, `https://<name>.<namespace>.svc:<port><service.path>`.
    pub fn map_service(&self, namespace: &str, name: &str, port: u16, addr: SocketAddr) {
        self.core
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.to_string(), name.to_string(), port), addr);
    }

    /// Ends every open watch stream; clients reconnect from their last `resourceVersion`
    /// (and get `410 Gone` if it has left the history window), as after an API server restart.
    pub fn close_watches(&self) {
        self.core.close_watches();
    }

    /// Every write request (POST, PUT, PATCH, DELETE) answered so far, and every request
    /// answered with an injected fault, oldest first.
    pub fn audit(&self) -> Vec<crate::audit::AuditEntry> {
        self.audit.entries()
    }

    /// Every distinct access (client, RBAC verb, group, resource) that clients other than the
    /// simulation made so far, reads and watches included.
    pub fn accesses(&self) -> Vec<crate::audit::Access> {
        self.audit.accesses()
    }

    /// Stops serving and waits for the listener to close.
    pub async fn shutdown(mut self) {
        self.core.shutdown.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.core.shutdown.cancel();
    }
}

/// A client from `cfg` that names itself `<agent><version>` in its User-Agent, so that the audit
/// log and access logs tell the sandbox's own requests apart.
fn client_of(mut cfg: kube::Config, agent: &str) -> Result<kube::Client, Error> {
    let value = format!("{agent}{}", env!("CARGO_PKG_VERSION"));
    let header = http::HeaderValue::from_str(&value).map_err(|e| Error::Client(e.to_string()))?;
    cfg.headers.push((http::header::USER_AGENT, header));
    kube::Client::try_from(cfg).map_err(|e| Error::Client(e.to_string()))
}
