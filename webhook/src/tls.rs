//! TLS: the serving certificate, re-read while the webhook runs.
//!
//! cert-manager writes the serving certificate into a Secret, which the kubelet projects as a
//! volume. It updates such a volume by writing the new files into a fresh timestamped directory
//! and then renaming a `..data` symlink over the old one, so the file paths never change and an
//! inotify watch on them sees nothing. Instead a background task re-reads both files every few
//! seconds ([`CertReloader::poll`]); when their content changed and parses into a valid,
//! matching pair, the new certificate is swapped into the [`CertResolver`] that rustls asks on
//! every handshake. Established connections keep their session; new handshakes get the new
//! certificate at once. A broken new pair is reported and the old certificate stays in use.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate pair was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("{} holds no PEM certificate: {why}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        why: String,
    },
    /// The key file holds no usable PEM private key.
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {why}", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        why: String,
    },
    /// The first certificate is not a parsable X.509 certificate.
    #[error("the first certificate in {} is not valid X.509: {why}", path.display())]
    NotX509 {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        why: String,
    },
    /// The key cannot be used, or does not belong to the certificate.
    #[error("the private key in {} cannot serve the certificate in {}: {why}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        why: String,
    },
    /// The certificate has expired.
    #[error("the certificate in {} expired at {not_after}", path.display())]
    Expired {
        /// The file.
        path: PathBuf,
        /// Its `notAfter`.
        not_after: String,
    },
}

/// Where the serving certificate and its key are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// PEM certificate chain, leaf first (cert-manager's `tls.crt`).
    pub cert: PathBuf,
    /// PEM private key (cert-manager's `tls.key`).
    pub key: PathBuf,
}

/// What is logged and exported about a loaded certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Serial number, as colon-separated hex.
    pub serial: String,
    /// Subject distinguished name.
    pub subject: String,
    /// `notAfter`, unix seconds.
    pub not_after: i64,
}

impl CertificateInfo {
    /// `notAfter` as an RFC 3339 timestamp.
    pub fn not_after_rfc3339(&self) -> String {
        format_unix(self.not_after)
    }
}

fn format_unix(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map_or_else(|_| format!("{secs} (unix)"), |t| t.to_string())
}

/// A certificate pair ready to serve.
#[derive(Debug, Clone)]
pub struct LoadedCertificate {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// Its details.
    pub info: CertificateInfo,
}

/// The crypto provider used for serving: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain and private key into a pair rustls can serve: the chain must
/// hold at least one certificate, the key must load with the ring provider and match the leaf's
/// public key, and the leaf must not have expired at `now` (unix seconds).
pub fn load_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    paths: &CertPaths,
    now: i64,
) -> Result<LoadedCertificate, CertError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::NoCertificate {
            path: paths.cert.clone(),
            why: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate {
            path: paths.cert.clone(),
            why: "no \"BEGIN CERTIFICATE\" section found".to_owned(),
        });
    };
    let info = certificate_info(leaf).map_err(|why| CertError::NotX509 {
        path: paths.cert.clone(),
        why,
    })?;
    if info.not_after < now {
        return Err(CertError::Expired {
            path: paths.cert.clone(),
            not_after: info.not_after_rfc3339(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertError::NoKey {
        path: paths.key.clone(),
        why: e.to_string(),
    })?;
    let mismatch = |e: rustls::Error| CertError::KeyMismatch {
        cert: paths.cert.clone(),
        key: paths.key.clone(),
        why: e.to_string(),
    };
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(mismatch)?;
    let certified = CertifiedKey::new(chain, signing_key);
    // A key whose public half cannot be computed cannot be checked: refuse it rather than
    // serve a pair that may fail every handshake.
    certified.keys_match().map_err(mismatch)?;
    Ok(LoadedCertificate {
        key: Arc::new(certified),
        info,
    })
}

/// Serial, subject and `notAfter` of a DER certificate.
pub fn certificate_info(der: &[u8]) -> Result<CertificateInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    Ok(CertificateInfo {
        serial: cert.raw_serial_as_string(),
        subject: cert.subject().to_string(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The rustls certificate resolver: one atomically swapped certificate, asked on every handshake.
#[derive(Default)]
pub struct CertResolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver")
            .field("loaded", &self.is_loaded())
            .finish()
    }
}

impl CertResolver {
    /// The certificate served to new handshakes, if any.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a valid Arc: keep serving it.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Serves `key` to new handshakes from now on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(key);
    }

    /// True once a certificate is loaded.
    pub fn is_loaded(&self) -> bool {
        self.current().is_some()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// The TLS configuration of the webhook: TLS 1.3 and 1.2 only, ring, HTTP/2 and HTTP/1.1 by
/// ALPN, the certificate from `resolver`.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The result of one [`CertReloader::poll`].
#[derive(Debug)]
pub enum Reload {
    /// The files hold what is served already (or the same broken pair as last time).
    Unchanged,
    /// A new certificate is served from now on.
    Loaded(CertificateInfo),
    /// New content could not be used; the previous certificate (if any) stays in use.
    Failed(CertError),
}

/// Re-reads the certificate files and swaps a new valid pair into the resolver.
#[derive(Debug)]
pub struct CertReloader {
    paths: CertPaths,
    resolver: Arc<CertResolver>,
    /// The file content currently served.
    served: Option<(Vec<u8>, Vec<u8>)>,
    /// The last failure reported (file content, or the read error's message), so that the same
    /// broken state is reported once, not on every poll.
    reported: Option<Reported>,
    /// Wait before re-reading content that did not parse, in case the read raced with a swap.
    settle: Duration,
}

#[derive(Debug, PartialEq, Eq)]
enum Reported {
    Content((Vec<u8>, Vec<u8>)),
    ReadError(String),
}

impl CertReloader {
    /// A reloader for `paths` feeding `resolver`.
    pub fn new(paths: CertPaths, resolver: Arc<CertResolver>) -> Self {
        Self {
            paths,
            resolver,
            served: None,
            reported: None,
            settle: Duration::from_millis(50),
        }
    }

    /// The files read.
    pub fn paths(&self) -> &CertPaths {
        &self.paths
    }

    async fn read(path: &Path) -> Result<Vec<u8>, CertError> {
        tokio::fs::read(path)
            .await
            .map_err(|source| CertError::Read {
                path: path.to_owned(),
                source,
            })
    }

    async fn read_pair(&self) -> Result<(Vec<u8>, Vec<u8>), CertError> {
        let cert = Self::read(&self.paths.cert).await?;
        let key = Self::read(&self.paths.key).await?;
        Ok((cert, key))
    }

    /// Reads both files; when their content differs from what is served and forms a valid
    /// pair, serves it. A pair that does not parse is read once more after a short pause (the
    /// two reads may have straddled a volume update) before it is reported.
    pub async fn poll(&mut self) -> Reload {
        let mut retried = false;
        loop {
            let pair = match self.read_pair().await {
                Ok(pair) => pair,
                Err(e) => {
                    let seen = Reported::ReadError(e.to_string());
                    if self.reported.as_ref() == Some(&seen) {
                        return Reload::Unchanged;
                    }
                    self.reported = Some(seen);
                    return Reload::Failed(e);
                }
            };
            if self.served.as_ref() == Some(&pair) {
                self.reported = None;
                return Reload::Unchanged;
            }
            match load_pair(&pair.0, &pair.1, &self.paths, unix_now()) {
                Ok(loaded) => {
                    self.resolver.set(loaded.key);
                    self.served = Some(pair);
                    self.reported = None;
                    return Reload::Loaded(loaded.info);
                }
                Err(e) => {
                    let seen = Reported::Content(pair);
                    if self.reported.as_ref() == Some(&seen) {
                        return Reload::Unchanged;
                    }
                    if !retried {
                        retried = true;
                        tokio::time::sleep(self.settle).await;
                        continue;
                    }
                    self.reported = Some(seen);
                    return Reload::Failed(e);
                }
            }
        }
    }
}

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devcerts::generate_dev_certs;

    fn paths() -> CertPaths {
        CertPaths {
            cert: PathBuf::from("tls.crt"),
            key: PathBuf::from("tls.key"),
        }
    }

    fn pair() -> (String, String) {
        let certs = generate_dev_certs(&["localhost".to_owned()], &[])
            .unwrap_or_else(|e| panic!("dev certs: {e}"));
        (certs.cert_pem, certs.key_pem)
    }

    #[test]
    fn a_matching_pair_loads_with_its_expiry_and_serial() {
        let (cert, key) = pair();
        let loaded = load_pair(cert.as_bytes(), key.as_bytes(), &paths(), unix_now())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.info.subject, "CN=localhost");
        assert!(loaded.info.not_after > unix_now() + 300 * 86_400);
        assert!(!loaded.info.serial.is_empty());
    }

    #[test]
    fn broken_pairs_are_refused_with_the_file_named() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let cases: [(&[u8], &[u8], &str); 5] = [
            (b"", key.as_bytes(), "tls.crt holds no PEM certificate"),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                key.as_bytes(),
                "the first certificate in tls.crt is not valid X.509",
            ),
            (
                cert.as_bytes(),
                b"garbage",
                "tls.key holds no PEM private key",
            ),
            (
                cert.as_bytes(),
                cert.as_bytes(),
                "tls.key holds no PEM private key",
            ),
            (
                cert.as_bytes(),
                other_key.as_bytes(),
                "the private key in tls.key cannot serve the certificate in tls.crt",
            ),
        ];
        for (c, k, expected) in cases {
            let err = load_pair(c, k, &paths(), unix_now())
                .err()
                .unwrap_or_else(|| panic!("accepted: {expected}"));
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let (cert, key) = pair();
        let far_future = unix_now() + 400 * 86_400;
        let err = load_pair(cert.as_bytes(), key.as_bytes(), &paths(), far_future)
            .err()
            .unwrap_or_else(|| panic!("accepted an expired certificate"));
        assert!(err.to_string().contains("expired at"), "{err}");
    }

    #[tokio::test]
    async fn the_reloader_swaps_only_valid_new_content_and_reports_a_broken_pair_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let paths = CertPaths {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        let write = |cert: &str, key: &str| {
            std::fs::write(&paths.cert, cert).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&paths.key, key).unwrap_or_else(|e| panic!("{e}"));
        };
        let resolver = Arc::new(CertResolver::default());
        let mut reloader = CertReloader::new(paths.clone(), resolver.clone());

        // Missing files: reported once, nothing served.
        assert!(matches!(
            reloader.poll().await,
            Reload::Failed(CertError::Read { .. })
        ));
        assert!(matches!(reloader.poll().await, Reload::Unchanged));
        assert!(!resolver.is_loaded());

        let (cert_a, key_a) = pair();
        write(&cert_a, &key_a);
        assert!(matches!(reloader.poll().await, Reload::Loaded(_)));
        let served_a = resolver
            .current()
            .unwrap_or_else(|| panic!("nothing served"));
        assert!(matches!(reloader.poll().await, Reload::Unchanged));

        // A mismatched pair: refused once, A still served.
        let (cert_b, key_b) = pair();
        write(&cert_b, &key_a);
        assert!(matches!(
            reloader.poll().await,
            Reload::Failed(CertError::KeyMismatch { .. })
        ));
        assert!(matches!(reloader.poll().await, Reload::Unchanged));
        let still = resolver
            .current()
            .unwrap_or_else(|| panic!("nothing served"));
        assert!(Arc::ptr_eq(&served_a, &still));

        // The matching pair: served.
        write(&cert_b, &key_b);
        assert!(matches!(reloader.poll().await, Reload::Loaded(_)));
        let served_b = resolver
            .current()
            .unwrap_or_else(|| panic!("nothing served"));
        assert_eq!(
            served_b.cert[0].as_ref(),
            CertificateDer::from_pem_slice(cert_b.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"))
                .as_ref()
        );
    }
}
