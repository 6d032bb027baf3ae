//! Calling a webhook: the HTTPS POST of an AdmissionReview and the API server's wording of
//! what goes wrong (connection, TLS, timeout).

use crate::error::ApiError;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

mod bytes_alias {
    pub use axum::body::Bytes;
}

pub(super) struct Call {
    pub(super) name: String,
    /// The URL as the API server names it in errors: for a `service` reference
    /// `https://<name>.<namespace>.svc:<port><path>?timeout=<n>s`, whatever address it resolves to.
    pub(super) url: String,
    /// Where the sandbox sends the review: `url`, or for a `service` reference the local address
    /// it is mapped to.
    pub(super) target: String,
    pub(super) ca: Vec<u8>,
    pub(super) timeout: Duration,
    pub(super) fail_closed: bool,
    pub(super) side_effects: String,
}

pub(super) fn failed(name: &str, url: &str, why: &str) -> ApiError {
    ApiError::internal(format!(
        "failed calling webhook \"{name}\": failed to call webhook: Post \"{url}\": {why}"
    ))
}

/// A Go `time.RFC3339` rendering of a certificate or validation time.
fn rfc3339(t: rustls::pki_types::UnixTime) -> String {
    jiff::Timestamp::from_second(t.as_secs().min(i64::MAX as u64) as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// What Go's `crypto/x509` says about a certificate rustls refused, as the API server's webhook
/// client (Go's `crypto/tls`) reports it: `tls: failed to verify certificate: x509: ...`.
pub(super) fn go_certificate_error(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let why = match e {
        C::UnknownIssuer => "x509: certificate signed by unknown authority".to_string(),
        C::ExpiredContext { time, not_after } => format!(
            "x509: certificate has expired or is not yet valid: current time {} is after {}",
            rfc3339(*time),
            rfc3339(*not_after)
        ),
        C::NotValidYetContext { time, not_before } => format!(
            "x509: certificate has expired or is not yet valid: current time {} is before {}",
            rfc3339(*time),
            rfc3339(*not_before)
        ),
        C::Expired | C::NotValidYet => {
            "x509: certificate has expired or is not yet valid".to_string()
        }
        C::NotValidForNameContext {
            expected,
            presented,
        } => {
            let host = match expected {
                rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
                rustls::pki_types::ServerName::IpAddress(ip) => {
                    std::net::IpAddr::from(*ip).to_string()
                }
                other => format!("{other:?}"),
            };
            // webpki presents `DnsName("x")` and `IpAddress(1.2.3.4)`.
            let of = |prefix: &str| -> Vec<String> {
                presented
                    .iter()
                    .filter_map(|p| p.strip_prefix(prefix)?.strip_suffix(')'))
                    .map(|n| n.trim_matches('"').to_string())
                    .collect()
            };
            let (ips, dns) = (of("IpAddress("), of("DnsName("));
            if host.parse::<std::net::IpAddr>().is_ok() {
                if ips.is_empty() {
                    format!(
                        "x509: cannot validate certificate for {host} because it doesn't contain any IP SANs"
                    )
                } else {
                    format!(
                        "x509: certificate is valid for {}, not {host}",
                        ips.join(", ")
                    )
                }
            } else if dns.is_empty() {
                format!("x509: certificate is not valid for any names, but wanted to match {host}")
            } else {
                format!(
                    "x509: certificate is valid for {}, not {host}",
                    dns.join(", ")
                )
            }
        }
        other => format!("x509: {other}"),
    };
    format!("tls: failed to verify certificate: {why}")
}

fn error_chain(e: &(dyn std::error::Error + 'static), addr: &str) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut parts = Vec::new();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return format!("dial tcp {addr}: connect: connection refused");
            }
            // hyper-rustls reports a refused certificate as (nested) `io::Error`s wrapping
            // rustls's.
            let mut inner = io.get_ref();
            while let Some(e) = inner {
                if let Some(rustls::Error::InvalidCertificate(c)) =
                    e.downcast_ref::<rustls::Error>()
                {
                    return go_certificate_error(c);
                }
                inner = e
                    .downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref);
            }
        }
        if let Some(rustls::Error::InvalidCertificate(c)) = err.downcast_ref::<rustls::Error>() {
            return go_certificate_error(c);
        }
        let s = err.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

pub(super) async fn post(call: &Call, body: Vec<u8>) -> Result<Value, String> {
    let uri: http::Uri = call
        .target
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    let addr = format!(
        "{}:{}",
        uri.host().unwrap_or_default(),
        uri.port_u16().unwrap_or(443)
    );
    let mut roots = rustls::RootCertStore::empty();
    {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        for c in CertificateDer::pem_slice_iter(&call.ca).flatten() {
            let _ = roots.add(c);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Full<bytes_alias::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);
    let req = http::Request::post(uri)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Full::new(bytes_alias::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| error_chain(&e, &addr))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| error_chain(&e, &addr))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "received invalid webhook response: expected status 200, got {}",
                status.as_u16()
            ));
        }
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| format!("received invalid webhook response: {e}"))
    };
    match tokio::time::timeout(call.timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err("context deadline exceeded".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_are_worded_as_go_words_them() {
        use rustls::CertificateError as C;
        use rustls::pki_types::{ServerName, UnixTime};
        assert_eq!(
            go_certificate_error(&C::UnknownIssuer),
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        );
        assert_eq!(
            go_certificate_error(&C::ExpiredContext {
                time: UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000)),
                not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_600_000_000)),
            }),
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2023-11-14T22:13:20Z is after 2020-09-13T12:26:40Z"
        );
        let ip = ServerName::try_from("127.0.0.1").unwrap().to_owned();
        assert_eq!(
            go_certificate_error(&C::NotValidForNameContext {
                expected: ip.clone(),
                presented: vec!["DnsName(\"webhook.svc\")".into()],
            }),
            "tls: failed to verify certificate: x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"
        );
        assert_eq!(
            go_certificate_error(&C::NotValidForNameContext {
                expected: ip,
                presented: vec!["IpAddress(10.0.0.1)".into()],
            }),
            "tls: failed to verify certificate: x509: certificate is valid for 10.0.0.1, not 127.0.0.1"
        );
        let dns = ServerName::try_from("pravega-webhook.pravega-system.svc")
            .unwrap()
            .to_owned();
        assert_eq!(
            go_certificate_error(&C::NotValidForNameContext {
                expected: dns,
                presented: vec!["DnsName(\"a.svc\")".into(), "DnsName(\"b.svc\")".into()],
            }),
            "tls: failed to verify certificate: x509: certificate is valid for a.svc, b.svc, not pravega-webhook.pravega-system.svc"
        );
    }
}
