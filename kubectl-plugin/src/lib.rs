//! `kubectl pravega`: a kubectl plugin for PravegaClusters. `status` shows an upgrade's
//! progress, `plan` is a dry run of one, `upgrade`, `pause`, `resume` and `rollback` set the
//! documented spec fields. The version rules and the upgrade order are those of `pravega-crds`
//! and the operator's planner, called here, never restated.

pub mod changes;
pub mod cli;
pub mod commands;
pub mod error;
pub mod kube_access;
pub mod plan;
pub mod render;
pub mod status;

pub use error::Error;
