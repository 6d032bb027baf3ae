//! `pravega-operator`: reconciles PravegaClusters and performs ordered rolling upgrades.
//!
//! - [`resources`]: pure builders of the objects a cluster owns.
//! - [`pods`]: what a pod is (Ready, serving, terminating, faulty, a member): one function each.
//! - [`status`]: pure computation of the member status from the pods.
//! - [`planner`]: the pure upgrade planner (versions, pod deletions, upgrade status, the gates
//!   before each restart).
//! - [`probe`]: runs the safety checks the planner asks for against the members' HTTP APIs.
//! - [`cache`]: the watch caches the reconcile reads from, and the expectations of its writes.
//! - [`controller`]: the reconcile loop, as a pipeline: read (caches) → decide (rules,
//!   planner, probes) → apply → report (status, Events, metrics).
//! - [`error_condition`]: the one owner of the reconcile's own `Error` reasons.
//! - [`record`]: what the operator remembers about each cluster between reconciles.
//! - [`leader`]: leader election with a Lease.
//! - [`run()`]: the whole operator (endpoints, leader election, controller).
//! - [`rbac`]: the permissions the operator uses.

pub mod cache;
pub mod compat;
pub mod controller;
pub mod error_condition;
pub mod leader;
pub mod metrics;
pub mod planner;
pub mod pods;
pub mod probe;
pub mod rbac;
pub mod record;
pub mod resources;
pub mod run;
pub mod server;
pub mod status;

pub use run::{Config, RunError, run};

/// The `User-Agent` of every request the operator makes, so that audit logs and access logs
/// tell them apart.
pub const USER_AGENT: &str = concat!("pravega-operator/", env!("CARGO_PKG_VERSION"));
