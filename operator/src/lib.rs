//! `pravega-operator`: reconciles PravegaClusters and performs ordered rolling upgrades.
//!
//! - [`resources`]: pure builders of the objects a cluster owns.
//! - [`pods`]: what a pod is (Ready, serving, terminating, faulty, a member): one function each.
//! - [`status`]: pure computation of the member status from the pods.
//! - [`planner`]: the pure upgrade planner (versions, pod deletions, upgrade status).
//! - [`controller`]: the reconcile loop (read, plan, apply, write status).
//! - [`leader`]: leader election with a Lease.
//! - [`run()`]: the whole operator (endpoints, leader election, controller).
//! - [`rbac`]: the permissions the operator uses.

pub mod compat;
pub mod controller;
pub mod leader;
pub mod metrics;
pub mod planner;
pub mod pods;
pub mod rbac;
pub mod resources;
pub mod run;
pub mod server;
pub mod status;

pub use run::{Config, RunError, run};
