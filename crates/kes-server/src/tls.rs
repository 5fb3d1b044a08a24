//! TLS: the server certificate, client authentication and the per-connection identity.
//!
//! Client authentication departs from the stock rustls verifiers on purpose. By default KES asks
//! for a client certificate but does not verify its chain: the identity (the SHA-256 of the
//! certificate's public key) is the credential, and policies are bound to it (spec §5). That
//! verifier still checks the handshake signature, so a client must hold the private key of the
//! certificate it presents; without that check anyone could replay an admin's public
//! certificate. With `tls.auth: on` the chain is verified against `tls.ca` (or the system roots).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::SignatureScheme;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use zeroize::Zeroizing;

/// A failure to build the TLS configuration; the text is shown at startup or on reload.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("failed to read '{path}': {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate file holds no certificate or something else than certificates.
    #[error("failed to read TLS certificate: {0}")]
    Certificate(String),
    /// The private key could not be parsed or decrypted.
    #[error("failed to read TLS private key: {0}")]
    PrivateKey(String),
    /// The server certificate has no DNS or IP subject alternative name.
    #[error("invalid TLS certificate: certificate does not contain any DNS or IP address as SAN")]
    NoSan,
    /// The CA certificates for client verification could not be loaded.
    #[error("failed to load CA certificates: {0}")]
    Ca(String),
    /// rustls rejected the configuration.
    #[error("invalid TLS configuration: {0}")]
    Rustls(String),
}

/// How clients are authenticated.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    /// Verify client certificate chains (`tls.auth: on`).
    pub verify: bool,
    /// Extra CA certificates (file or directory of PEM files) for verification.
    pub ca: Option<PathBuf>,
    /// Let clients connect without a certificate (some route has `skip_auth`).
    pub optional: bool,
}

/// The server's certificate chain and private key.
pub struct CertifiedKey {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// The crypto provider used for TLS.
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::aws_lc_rs::cipher_suite as suite;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(provider)
}

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Loads a certificate chain and private key from PEM files. An encrypted private key in the
/// legacy PEM format (`Proc-Type: 4,ENCRYPTED`, as `kes identity new --encrypt` writes) is
/// decrypted with `password`.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    password: Option<&str>,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    certified_key_from_pem(&cert_pem, &key_pem, password)
}

/// Like [`load_certified_key`] from PEM bytes.
pub fn certified_key_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    password: Option<&str>,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate("no certificate found".into()));
    }
    let key_text = std::str::from_utf8(key_pem)
        .map_err(|_| TlsError::PrivateKey("the key file is not PEM text".into()))?;
    let key = if kes_crypto::legacy_pem::is_encrypted(key_text) {
        let Some(password) = password else {
            return Err(TlsError::PrivateKey(
                "https: private key is encrypted: password required".into(),
            ));
        };
        let (label, der) =
            kes_crypto::legacy_pem::decrypt_private_key(key_text, password.as_bytes())
                .map_err(|e| TlsError::PrivateKey(e.to_string()))?;
        private_key_from_der(&label, &der)?
    } else {
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::PrivateKey(e.to_string()))?
    };
    Ok(CertifiedKey { chain, key })
}

fn private_key_from_der(label: &str, der: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    use rustls::pki_types::{PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
    let der = der.to_vec();
    match label {
        "PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))),
        "EC PRIVATE KEY" => Ok(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))),
        "RSA PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))),
        other => Err(TlsError::PrivateKey(format!(
            "unsupported PEM block '{other}'"
        ))),
    }
}

/// Checks that the leaf certificate carries at least one DNS or IP SAN (spec §2.1).
pub fn check_san(leaf: &CertificateDer<'_>) -> Result<(), TlsError> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let has = san.is_some_and(|ext| {
        ext.value
            .general_names
            .iter()
            .any(|n| matches!(n, GeneralName::DNSName(_) | GeneralName::IPAddress(_)))
    });
    if has { Ok(()) } else { Err(TlsError::NoSan) }
}

/// Builds the rustls server configuration.
pub fn server_config(
    key: CertifiedKey,
    auth: &ClientAuth,
    sessions: Arc<ServerSessionMemoryCache>,
) -> Result<rustls::ServerConfig, TlsError> {
    let leaf = key
        .chain
        .first()
        .ok_or_else(|| TlsError::Certificate("empty chain".into()))?;
    check_san(leaf)?;
    let provider = provider();
    let verifier = client_verifier(auth)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(key.chain, key.key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.session_storage = sessions;
    config.ticketer =
        rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| TlsError::Rustls(e.to_string()))?;
    // One ticket per handshake, as Go sends (a client resumes once per connection).
    config.send_tls13_tickets = 1;
    // Server order, AES-128-GCM first (as Go on AES hardware): SHA-384 has no fast path in
    // aws-lc on some CPUs, and clients listing AES-256 first would otherwise pay for it.
    config.ignore_client_order = true;
    Ok(config)
}

/// The client certificate verifier for `auth`.
pub fn client_verifier(auth: &ClientAuth) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let provider = provider();
    if auth.verify {
        let roots = root_store(auth.ca.as_deref())?;
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let builder = if auth.optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|e| TlsError::Ca(e.to_string()))
    } else {
        Ok(Arc::new(AnyClientCert {
            provider,
            mandatory: !auth.optional,
        }))
    }
}

/// The root store for `tls.auth: on`: the system roots plus `tls.ca` (a PEM file, or a directory
/// whose regular files must all be PEM certificates).
fn root_store(ca: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system root that rustls cannot parse is skipped, as Go skips it.
        let _ = roots.add(cert);
    }
    if let Some(ca) = ca {
        let files = if ca.is_dir() {
            let mut files = Vec::new();
            let entries = std::fs::read_dir(ca)
                .map_err(|e| TlsError::Ca(format!("'{}': {e}", ca.display())))?;
            for entry in entries {
                let entry = entry.map_err(|e| TlsError::Ca(format!("'{}': {e}", ca.display())))?;
                if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                    files.push(entry.path());
                }
            }
            files.sort();
            files
        } else {
            vec![ca.to_owned()]
        };
        for file in files {
            let pem = std::fs::read(&file)
                .map_err(|e| TlsError::Ca(format!("'{}': {e}", file.display())))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::Ca(format!("'{}': {e}", file.display())))?;
            if certs.is_empty() {
                return Err(TlsError::Ca(format!(
                    "'{}': no PEM certificate",
                    file.display()
                )));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Ca(format!("'{}': {e}", file.display())))?;
            }
        }
    }
    if roots.is_empty() {
        return Err(TlsError::Ca(
            "no CA certificate to verify client certificates".into(),
        ));
    }
    Ok(roots)
}

/// Accepts any client certificate chain without verifying it, but verifies the handshake
/// signature with the certificate's key (Go's `tls.RequireAnyClientCert`).
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The chain is deliberately not verified: the identity is the certificate's public key,
        // and possession of the private key is proven by the handshake signature below.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Who is on the other end of a connection, computed once per connection.
#[derive(Debug, Clone)]
pub enum Peer {
    /// The identity of the client's certificate.
    Identity(Arc<str>),
    /// No usable client certificate: none was sent, or the leaf is a CA certificate.
    NoCertificate,
    /// More than one non-CA certificate was sent.
    TooManyCertificates,
}

impl Peer {
    /// Computes the peer from the certificates the client presented (leaf first). The identity is
    /// that of the leaf, the certificate whose key signed the handshake; a leaf that is a CA
    /// certificate counts as no certificate (as the original, which skips CA certificates).
    pub fn from_certificates(certs: Option<&[CertificateDer<'_>]>) -> Peer {
        let Some((leaf, rest)) = certs.and_then(|c| c.split_first()) else {
            return Peer::NoCertificate;
        };
        // One parse of the leaf gives both its CA flag and its identity.
        let identity = match kes_crypto::certificate_identity(leaf.as_ref()) {
            Ok((identity, false)) => identity,
            Ok((_, true)) | Err(_) => return Peer::NoCertificate,
        };
        if rest
            .iter()
            .any(|c| !kes_crypto::is_ca_certificate(c.as_ref()).unwrap_or(true))
        {
            return Peer::TooManyCertificates;
        }
        Peer::Identity(Arc::from(identity))
    }
}
