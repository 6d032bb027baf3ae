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

pub mod admission;
pub mod cli;
pub mod devcerts;
pub mod metrics;
pub mod server;
pub mod tls;

pub use admission::{Reviewed, Verdict, review};
pub use devcerts::{DevCa, DevCertError, DevCerts, generate_dev_certs, write_dev_certs};
pub use server::{AppState, Config, Server, ServerError, metrics_router, webhook_router};
pub use tls::{CertPaths, CertResolver};

/// Name of the webhook in the `ValidatingWebhookConfiguration`.
pub const WEBHOOK_NAME: &str = "pravegacluster.pravega.pravega.io";
/// Path of the admission endpoint.
pub const VALIDATE_PATH: &str = "/validate";
