//! The operator's HTTP endpoints on `--metrics-addr`: `/healthz`, `/readyz`, `/metrics` and `/`
//! (diagnostics as JSON).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::RwLock;

use crate::controller::Diagnostics;

/// Where the operator is in its life, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Connecting; caches not started.
    Starting = 0,
    /// Waiting for the leader lease while another replica acts.
    Standby = 1,
    /// Leading (or running without leader election); caches syncing.
    Syncing = 2,
    /// Caches synced; reconciling.
    Running = 3,
    /// Shutting down.
    Stopping = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Standby,
            2 => Phase::Syncing,
            3 => Phase::Running,
            4 => Phase::Stopping,
            _ => Phase::Starting,
        }
    }

    /// `/readyz` answers 200 when ready. A replica is ready once its caches have synced; with
    /// leader election a standby replica is ready too: it is healthy and takes over as soon as
    /// the leader goes, and reporting it unready would stall rolling updates of the operator's
    /// own Deployment.
    pub fn is_ready(self) -> bool {
        matches!(self, Phase::Standby | Phase::Running)
    }

    /// The name shown by `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Standby => "standby",
            Phase::Syncing => "syncing",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
        }
    }
}

/// State shared by the endpoints and the rest of the operator.
pub struct ServerState {
    /// The metrics registry.
    pub registry: Registry,
    /// The diagnostics.
    pub diagnostics: Arc<RwLock<Diagnostics>>,
    phase: AtomicU8,
}

impl ServerState {
    /// New state in [`Phase::Starting`].
    pub fn new(registry: Registry, diagnostics: Arc<RwLock<Diagnostics>>) -> Self {
        Self {
            registry,
            diagnostics,
            phase: AtomicU8::new(Phase::Starting as u8),
        }
    }

    /// Moves to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::SeqCst))
    }
}

/// The router.
pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(diagnostics))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<ServerState>>) -> Response {
    let phase = state.phase();
    let code = if phase.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, format!("{}\n", phase.as_str())).into_response()
}

async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    match crate::metrics::render(&state.registry) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}\n"),
        )
            .into_response(),
    }
}

async fn diagnostics(State(state): State<Arc<ServerState>>) -> Response {
    let d = state.diagnostics.read().await.clone();
    axum::Json(d).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_and_running_are_ready_the_rest_not() {
        let ready: Vec<_> = [
            Phase::Starting,
            Phase::Standby,
            Phase::Syncing,
            Phase::Running,
            Phase::Stopping,
        ]
        .into_iter()
        .filter(|p| p.is_ready())
        .collect();
        assert_eq!(ready, vec![Phase::Standby, Phase::Running]);
        for p in [
            Phase::Starting,
            Phase::Standby,
            Phase::Syncing,
            Phase::Running,
            Phase::Stopping,
        ] {
            assert_eq!(Phase::from_u8(p as u8), p);
        }
    }
}
