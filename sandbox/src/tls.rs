//! The sandbox's certificate authority, serving certificate, bearer token and kubeconfig.

use crate::error::Error;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::sync::Arc;

/// Freshly generated credentials for one sandbox.
pub struct Credentials {
    /// The CA certificate (PEM), trusted by clients.
    pub ca_pem: String,
    /// The serving certificate (PEM), for 127.0.0.1, ::1 and localhost.
    pub cert_pem: String,
    /// The serving key (PEM).
    pub key_pem: String,
    /// The bearer token clients present.
    pub token: String,
}

/// Generates a self-signed CA and a serving certificate signed by it.
pub fn generate() -> Result<Credentials, Error> {
    let cert_err = |e: rcgen::Error| Error::Certificate(e.to_string());
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "pravega-sandbox-ca");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().map_err(cert_err)?;
    let mut params = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "localhost".to_string(),
    ])
    .map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "pravega-sandbox-apiserver");
    params.distinguished_name = dn;
    let cert = params.signed_by(&key, &issuer).map_err(cert_err)?;
    let token = new_token();
    Ok(Credentials {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        token,
    })
}

/// A rustls server configuration for the credentials (HTTP/2 and HTTP/1.1).
pub fn server_config(creds: &Credentials) -> Result<Arc<rustls::ServerConfig>, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls_err = |e: String| Error::Tls(e);
    let certs = CertificateDer::pem_slice_iter(creds.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(creds.key_pem.as_bytes())
        .map_err(|e| tls_err(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_err(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A fresh random bearer token.
pub fn new_token() -> String {
    format!(
        "{:016x}{:016x}",
        crate::util::random_u64(),
        crate::util::random_u64()
    )
}

/// The kubeconfig text for a server URL, CA and token (context `pravega-sandbox`).
pub fn kubeconfig_yaml(url: &str, ca_pem: &str, token: &str) -> String {
    let ca = crate::util::base64_encode(ca_pem.as_bytes());
    [
        "apiVersion: v1".to_string(),
        "kind: Config".to_string(),
        "clusters:".to_string(),
        "- name: pravega-sandbox".to_string(),
        "  cluster:".to_string(),
        format!("    server: {url}"),
        format!("    certificate-authority-data: {ca}"),
        "users:".to_string(),
        "- name: pravega-sandbox-admin".to_string(),
        "  user:".to_string(),
        format!("    token: {token}"),
        "contexts:".to_string(),
        "- name: pravega-sandbox".to_string(),
        "  context:".to_string(),
        "    cluster: pravega-sandbox".to_string(),
        "    user: pravega-sandbox-admin".to_string(),
        "    namespace: default".to_string(),
        "current-context: pravega-sandbox".to_string(),
        String::new(),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_usable_credentials() {
        let c = generate().unwrap();
        assert!(c.ca_pem.contains("BEGIN CERTIFICATE"));
        assert!(server_config(&c).is_ok());
        let y = kubeconfig_yaml("https://127.0.0.1:1", &c.ca_pem, &c.token);
        assert!(y.contains(&c.token));
        assert!(y.contains("server: https://127.0.0.1:1"));
    }
}
