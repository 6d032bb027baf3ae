//! Prometheus metrics of the sandbox API server, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of `apiserver_request_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...
    pub verb: String,
    /// Plural resource (empty for non-resource paths).
    pub resource: String,
    /// HTTP status code.
    pub code: String,
}

/// Labels of `sandbox_injected_faults_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    /// The status code injected (`410` for a watch resume answered `Gone`).
    pub code: String,
}

/// Labels of `apiserver_admission_webhook_request_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// Webhook name.
    pub name: String,
    /// `allowed`, `denied` or `error`.
    pub result: String,
}

/// The sandbox's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests served.
    pub requests: Family<RequestLabels, Counter>,
    /// Watch streams currently open.
    pub watches: Gauge,
    /// Admission webhook calls.
    pub webhook_calls: Family<WebhookLabels, Counter>,
    /// Errors injected in place of answers (`SandboxOptions::faults`).
    pub injected_faults: Family<FaultLabels, Counter>,
    /// Watch streams closed by an injected fault.
    pub dropped_watches: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let watches = Gauge::default();
        let webhook_calls = Family::<WebhookLabels, Counter>::default();
        let injected_faults = Family::<FaultLabels, Counter>::default();
        let dropped_watches = Counter::default();
        registry.register(
            "apiserver_request",
            "Requests served by the sandbox API server",
            requests.clone(),
        );
        registry.register(
            "apiserver_registered_watchers",
            "Watch streams currently open",
            watches.clone(),
        );
        registry.register(
            "apiserver_admission_webhook_request",
            "Calls to validating admission webhooks",
            webhook_calls.clone(),
        );
        registry.register(
            "sandbox_injected_faults",
            "Errors injected in place of answers, by status code",
            injected_faults.clone(),
        );
        registry.register(
            "sandbox_injected_watch_drops",
            "Watch streams closed by an injected fault",
            dropped_watches.clone(),
        );
        Metrics {
            registry,
            requests,
            watches,
            webhook_calls,
            injected_faults,
            dropped_watches,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts one request.
    pub fn request(&self, verb: &str, resource: &str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.to_string(),
                resource: resource.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// Counts one injected fault.
    pub fn fault(&self, code: u16) {
        self.injected_faults
            .get_or_create(&FaultLabels {
                code: code.to_string(),
            })
            .inc();
    }

    /// Counts one webhook call.
    pub fn webhook(&self, name: &str, result: &str) {
        self.webhook_calls
            .get_or_create(&WebhookLabels {
                name: name.to_string(),
                result: result.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests() {
        let m = Metrics::default();
        m.request("get", "pods", 200);
        m.request("get", "pods", 200);
        m.webhook("w", "denied");
        m.fault(503);
        m.dropped_watches.inc();
        let text = m.encode();
        assert!(
            text.contains("apiserver_request_total{verb=\"get\",resource=\"pods\",code=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "apiserver_admission_webhook_request_total{name=\"w\",result=\"denied\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("sandbox_injected_faults_total{code=\"503\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sandbox_injected_watch_drops_total 1"),
            "{text}"
        );
    }
}
