//! `pravega-sandbox`: a local, in-memory Kubernetes API server over HTTPS on loopback, used
//! unmodified by the real `kubectl` and by kube-rs clients.
//!
//! # Library API
//!
//! ```no_run
//! # async fn demo() -> Result<(), pravega_sandbox::Error> {
//! use pravega_sandbox::{Sandbox, SandboxOptions};
//! // Serve on 127.0.0.1:<free port>; the kubeconfig goes to a temp dir owned by the sandbox.
//! let sandbox = Sandbox::start(SandboxOptions::default()).await?;
//! let path = sandbox.kubeconfig_path(); // CA, server URL and bearer token: KUBECONFIG=path
//! let url = sandbox.url();              // https://127.0.0.1:PORT
//! let client: kube::Client = sandbox.client().await?;
//! // Webhook `clientConfig.service` references are mapped to local addresses:
//! sandbox.map_service("pravega-system", "pravega-webhook", 443, "127.0.0.1:9443".parse().unwrap());
//! sandbox.shutdown().await;             // dropping the sandbox also stops serving
//! # Ok(()) }
//! ```
//!
//! - [`SandboxOptions`]: `addr` (default `127.0.0.1:0`), `kubeconfig` (`None`: a file in a temp
//!   dir owned by the sandbox), `watch_history` (size of the watch-event window; older
//!   `resourceVersion`s get `410 Gone`), `faults` ([`FaultOptions`]: errors, latency and
//!   dropped watches injected into the answers to clients other than the simulation).
//! - [`Sandbox`]: `start`, `kubeconfig_path`, `url`, `addr`, `token`, `ca_pem`, `client`,
//!   `control_plane_client` (for the simulation: never faulted),
//!   `map_service`, `close_watches` (ends every open watch, as an API server restart would),
//!   `audit` (the write requests answered and the injected faults), `shutdown` (also on
//!   `Drop`).
//! - [`ApiError`]: a failed request as the `Status` the API server returns.
//!
//! See the crate's README for what the API server supports and every simplification.

mod admission;
mod api;
pub mod audit;
pub mod cel;
mod convert;
mod defaults;
pub mod demo;
mod discovery;
mod error;
pub mod fault;
mod managed;
mod metrics;
mod openapi;
mod patch;
mod podlogs;
mod protobuf;
mod resources;
pub mod sandbox;
mod schema;
mod selector;
mod server;
pub mod sim;
mod store;
mod table;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
mod util;

pub use audit::{Access, AuditEntry, DeleteDetails};
pub use error::{ApiError, Error};
pub use fault::FaultOptions;
pub use sandbox::{Sandbox, SandboxOptions};
