//! `pravega-webhook`: the validating admission webhook for `PravegaCluster`.
//!
//! - [`admission`]: decoding an `admission.k8s.io/v1` `AdmissionReview` and answering it with the
//!   shared version rules of `pravega-crds` (pure).
//! - [`server`]: the admission router (`POST /validate`, over TLS), the health and metrics router
//!   (`/healthz`, `/readyz`, `/metrics`), graceful shutdown.
//! - [`tls`]: the serving certificate, re-read from disk while running (cert-manager rotation).
//! - [`metrics`]: Prometheus metrics.
//! - [`devcerts`]: a development CA and serving certificate ([`generate_dev_certs`]).
//! - [`cli`]: the command line of the `pravega-webhook` binary.
//!
//! Running it in process (as the benchmark does): [`Server::bind`] with a [`Config`] (port 0 is
//! fine; [`Server::local_addr`] and [`Server::metrics_addr`] tell the bound addresses), then
//! [`Server::run`] with a future that completes on shutdown. Certificates for it can come from
//! [`generate_dev_certs`] / [`DevCa`] and [`write_dev_certs`].

pub mod admission;
pub mod cli;
pub mod devcerts;
pub mod metrics;
pub mod server;
pub mod tls;

pub use admission::{Reviewed, Verdict, review};
pub use devcerts::{DevCa, DevCertError, DevCerts, generate_dev_certs, write_dev_certs};
pub use server::{
    AppState, Config, Server, ServerError, WebhookService, metrics_router, webhook_service,
};
pub use tls::{CertPaths, CertResolver};

/// Name of the webhook in the `ValidatingWebhookConfiguration`.
pub const WEBHOOK_NAME: &str = "pravegacluster.pravega.pravega.io";
/// Path of the admission endpoint.
pub const VALIDATE_PATH: &str = "/validate";
