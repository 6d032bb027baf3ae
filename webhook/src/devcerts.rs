//! Development certificates: a fresh CA and a serving certificate signed by it, for running the
//! webhook without cert-manager (locally, in the sandbox, in tests). Nothing is committed: every
//! call makes new keys.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Why development certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// Neither a DNS name nor an IP address was given.
    #[error("give at least one DNS name (--dns) or IP address (--ip) for the serving certificate")]
    NoNames,
    /// rcgen refused the parameters (e.g. an invalid DNS name).
    #[error("generating the {what}: {source}")]
    Generate {
        /// Which certificate.
        what: &'static str,
        /// What rcgen said.
        #[source]
        source: rcgen::Error,
    },
    /// A file could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A CA certificate and a serving certificate and key signed by it, all PEM.
#[derive(Clone)]
pub struct DevCerts {
    /// The CA certificate: what the API server's `caBundle` (or a test client) must trust.
    pub ca_cert_pem: String,
    /// The serving certificate (`tls.crt`).
    pub cert_pem: String,
    /// The serving certificate's private key, PKCS#8 (`tls.key`).
    pub key_pem: String,
}

impl std::fmt::Debug for DevCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCerts")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// File names written by [`write_dev_certs`], as cert-manager names them in its Secrets.
pub const CA_FILE: &str = "ca.crt";
/// Serving certificate file name.
pub const CERT_FILE: &str = "tls.crt";
/// Serving key file name.
pub const KEY_FILE: &str = "tls.key";

/// Days a development certificate is valid.
const VALID_DAYS: i32 = 365;

/// Sets `params` valid from yesterday (UTC) for [`VALID_DAYS`] days.
fn set_validity(params: &mut CertificateParams) {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let from = today.yesterday().unwrap_or(today);
    let until = from
        .checked_add(jiff::Span::new().days(VALID_DAYS))
        .unwrap_or(from);
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(
            i32::from(d.year()),
            u8::try_from(d.month()).unwrap_or(1),
            u8::try_from(d.day()).unwrap_or(1),
        )
    };
    params.not_before = ymd(from);
    params.not_after = ymd(until);
}

fn generate(what: &'static str) -> impl Fn(rcgen::Error) -> DevCertError {
    move |source| DevCertError::Generate { what, source }
}

/// A development CA that can issue several serving certificates (e.g. to rotate one).
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// Makes a new CA (ECDSA P-256), valid for a year.
    pub fn new() -> Result<Self, DevCertError> {
        let key = KeyPair::generate().map_err(generate("CA key"))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "pravega-webhook development CA");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params);
        let cert = params
            .self_signed(&key)
            .map_err(generate("CA certificate"))?;
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a serving certificate (new ECDSA P-256 key, valid for a year) for `dns` names and
    /// `ips`. Its common name is the first DNS name (or IP).
    pub fn issue(&self, dns: &[String], ips: &[IpAddr]) -> Result<DevCerts, DevCertError> {
        if dns.is_empty() && ips.is_empty() {
            return Err(DevCertError::NoNames);
        }
        let mut params =
            CertificateParams::new(dns.to_vec()).map_err(generate("serving certificate"))?;
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let mut name = DistinguishedName::new();
        let common_name = dns
            .first()
            .cloned()
            .or_else(|| ips.first().map(IpAddr::to_string))
            .unwrap_or_default();
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params);
        let key = KeyPair::generate().map_err(generate("serving key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(generate("serving certificate"))?;
        Ok(DevCerts {
            ca_cert_pem: self.cert_pem.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Makes a new CA and a serving certificate signed by it for `dns` names and `ips` (see
/// [`DevCa`]), all PEM.
pub fn generate_dev_certs(dns: &[String], ips: &[IpAddr]) -> Result<DevCerts, DevCertError> {
    if dns.is_empty() && ips.is_empty() {
        return Err(DevCertError::NoNames);
    }
    DevCa::new()?.issue(dns, ips)
}

/// Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `dir`, creating it if needed.
/// Returns the paths written.
pub fn write_dev_certs(certs: &DevCerts, dir: &Path) -> Result<Vec<PathBuf>, DevCertError> {
    std::fs::create_dir_all(dir).map_err(|source| DevCertError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for (file, content, private) in [
        (CA_FILE, &certs.ca_cert_pem, false),
        (CERT_FILE, &certs.cert_pem, false),
        (KEY_FILE, &certs.key_pem, true),
    ] {
        let path = dir.join(file);
        write_file(&path, content.as_bytes(), private).map_err(|source| DevCertError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

fn write_file(path: &Path, content: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(content)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_certificate_names_every_dns_name_and_ip() {
        let certs = generate_dev_certs(
            &[
                "pravega-webhook.pravega-system.svc".to_owned(),
                "localhost".to_owned(),
            ],
            &["127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"))],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(certs.cert_pem.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
            .unwrap_or_else(|e| panic!("{e}"));
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap_or_else(|e| panic!("{e}"));
        let san = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|ext| format!("{:?}", ext.value.general_names))
            .unwrap_or_default();
        assert!(san.contains("pravega-webhook.pravega-system.svc"), "{san}");
        assert!(san.contains("localhost"), "{san}");
        assert!(
            san.contains("127.0.0.1") || san.contains("[127, 0, 0, 1]"),
            "{san}"
        );
        assert!(certs.ca_cert_pem.contains("BEGIN CERTIFICATE"));
        assert!(certs.key_pem.contains("BEGIN PRIVATE KEY"));
        assert!(
            !format!("{certs:?}").contains("PRIVATE KEY"),
            "the key is not logged"
        );
    }

    #[test]
    fn names_are_required_and_files_are_written() {
        assert!(matches!(
            generate_dev_certs(&[], &[]),
            Err(DevCertError::NoNames)
        ));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let certs =
            generate_dev_certs(&["localhost".to_owned()], &[]).unwrap_or_else(|e| panic!("{e}"));
        let written =
            write_dev_certs(&certs, &dir.path().join("out")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(written.len(), 3);
        let key =
            std::fs::read_to_string(dir.path().join("out").join(KEY_FILE)).unwrap_or_default();
        assert_eq!(key, certs.key_pem);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("out").join(KEY_FILE))
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or_default();
            assert_eq!(mode, 0o600);
        }
    }
}
