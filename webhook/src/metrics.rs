//! Prometheus metrics of the webhook, served as OpenMetrics text on the metrics address.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of `pravega_webhook_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `UNKNOWN`.
    pub operation: &'static str,
    /// `allowed`, `denied` or `error`.
    pub decision: &'static str,
    /// `Valid`, `NotChecked`, a deny reason (`Downgrade`, ...) or an error kind (`NotJson`, ...).
    pub reason: &'static str,
}

/// Labels of `pravega_webhook_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// As in [`RequestLabels`].
    pub operation: &'static str,
}

/// Labels of `pravega_webhook_certificate_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success` or `failure`.
    pub result: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        2.5, 5.0, 10.0,
    ])
}

/// The webhook's metrics and the registry that renders them.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram, fn() -> Histogram>,
    cert_expiry: Gauge,
    cert_reloads: Family<ReloadLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric in a new registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "pravega_webhook_requests",
            "Admission requests answered, by operation, decision and reason",
            requests.clone(),
        );
        let latency = Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "pravega_webhook_request_duration_seconds",
            "Time from the start of an admission request to its answer, by operation",
            latency.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "pravega_webhook_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use, in unix seconds",
            cert_expiry.clone(),
        );
        let cert_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "pravega_webhook_certificate_reloads",
            "New serving certificate content seen on disk, by result (success: now served; failure: refused, the previous one kept)",
            cert_reloads.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            latency,
            cert_expiry,
            cert_reloads,
        }
    }

    /// Counts one answered admission request and its latency.
    pub fn observe_request(&self, labels: RequestLabels, elapsed: Duration) {
        self.latency
            .get_or_create(&OperationLabels {
                operation: labels.operation,
            })
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Records a newly served certificate.
    pub fn certificate_loaded(&self, not_after: i64) {
        self.cert_expiry.set(not_after);
        self.cert_reloads
            .get_or_create(&ReloadLabels { result: "success" })
            .inc();
    }

    /// Records refused certificate content.
    pub fn certificate_refused(&self) {
        self.cert_reloads
            .get_or_create(&ReloadLabels { result: "failure" })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
