//! TLS set-up: the client certificate (from an API key or PEM files) and the verification
//! of the server's certificate.
//!
//! We build the rustls configuration ourselves instead of using reqwest's `Identity`, so
//! that the private key's DER bytes stay in buffers that are wiped on drop, and so that one
//! explicit crypto provider (aws-lc-rs) is used whatever else the process installs.

use std::sync::Arc;

use kes_crypto::ApiKey;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
    ServerName, UnixTime,
};
use zeroize::Zeroizing;

use crate::Error;

/// How the client authenticates.
pub(crate) enum Credentials {
    /// A `kes:v1:` API key, turned into a self-signed client certificate.
    ApiKey(ApiKey),
    /// A PEM certificate (chain) and its PEM private key.
    Pem {
        cert: Vec<u8>,
        key: Zeroizing<Vec<u8>>,
    },
}

/// Builds the rustls configuration of a client.
pub(crate) fn client_config(
    credentials: Option<&Credentials>,
    extra_roots: Vec<CertificateDer<'static>>,
    danger_accept_invalid_certs: bool,
) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Setup {
            cause: e.to_string(),
        })?;
    let verifier: Arc<dyn ServerCertVerifier> = if danger_accept_invalid_certs {
        Arc::new(AcceptAnyServerCert {
            provider: provider.clone(),
        })
    } else {
        Arc::new(platform_verifier(extra_roots, provider.clone())?)
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match credentials {
        None => builder.with_no_client_auth(),
        Some(credentials) => {
            let key = certified_key(credentials)?;
            builder.with_client_cert_resolver(Arc::new(AlwaysPresent(Arc::new(key))))
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(not(target_os = "android"))]
fn platform_verifier(
    extra_roots: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, Error> {
    rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider).map_err(|e| {
        Error::InvalidCaCertificate {
            reason: e.to_string(),
        }
    })
}

#[cfg(target_os = "android")]
fn platform_verifier(
    extra_roots: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, Error> {
    if !extra_roots.is_empty() {
        return Err(Error::InvalidCaCertificate {
            reason: "additional CA certificates are not supported on Android".into(),
        });
    }
    rustls_platform_verifier::Verifier::new(provider).map_err(|e| Error::Setup {
        cause: e.to_string(),
    })
}

/// Parses the `CERTIFICATE` blocks of a PEM text (CA files, certificate chains).
pub(crate) fn parse_certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    kes_crypto::pem::decode_all(pem)
        .into_iter()
        .filter(|b| b.label() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.contents().to_vec()))
        .collect()
}

fn certified_key(credentials: &Credentials) -> Result<CertifiedKey, Error> {
    let invalid = |reason: &str| Error::InvalidCredentials {
        reason: reason.to_owned(),
    };
    let (chain, key_block) = match credentials {
        Credentials::ApiKey(api_key) => {
            let pem = api_key.client_certificate().map_err(|e| {
                invalid(&format!("cannot create a certificate for the API key: {e}"))
            })?;
            (
                parse_certificates(pem.cert_pem.as_bytes()),
                private_key_block(pem.key_pem.as_bytes())?,
            )
        }
        Credentials::Pem { cert, key } => (parse_certificates(cert), private_key_block(key)?),
    };
    if chain.is_empty() {
        return Err(invalid(
            "no CERTIFICATE PEM block found in the client certificate",
        ));
    }
    let signing_key = signing_key(key_block.contents())?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(invalid(
            "the private key does not belong to the client certificate",
        )),
        Err(e) => Err(invalid(&format!("invalid client certificate: {e}"))),
    }
}

/// The first private-key block, as Go's `tls.X509KeyPair` picks it (label `PRIVATE KEY` or
/// ending in ` PRIVATE KEY`).
fn private_key_block(pem: &[u8]) -> Result<kes_crypto::pem::PemBlock, Error> {
    let invalid = |reason: &str| Error::InvalidCredentials {
        reason: reason.to_owned(),
    };
    let block = kes_crypto::pem::decode_all(pem)
        .into_iter()
        .find(|b| b.label() == "PRIVATE KEY" || b.label().ends_with(" PRIVATE KEY"))
        .ok_or_else(|| invalid("no PRIVATE KEY PEM block found in the private key"))?;
    if kes_crypto::legacy_pem::is_encrypted_block(&block) {
        return Err(invalid("the private key is encrypted; decrypt it first"));
    }
    if block.label() == "ENCRYPTED PRIVATE KEY" {
        return Err(invalid("encrypted PKCS #8 private keys are not supported"));
    }
    Ok(block)
}

/// Loads a DER private key, trying PKCS #8, SEC1 and PKCS #1 in turn as Go does,
/// whatever the PEM label says. The DER stays borrowed from a wiped buffer.
fn signing_key(der: &[u8]) -> Result<Arc<dyn rustls::sign::SigningKey>, Error> {
    let candidates = [
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
        PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
        PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
    ];
    candidates
        .iter()
        .find_map(|c| rustls::crypto::aws_lc_rs::sign::any_supported_type(c).ok())
        .ok_or_else(|| Error::InvalidCredentials {
            reason: "unsupported or malformed private key (expected an Ed25519, ECDSA or RSA key)"
                .into(),
        })
}

/// Always offers the client certificate, like Go's `GetClientCertificate` in the KES CLI:
/// KES servers send no CA hints that could help choosing.
#[derive(Debug)]
struct AlwaysPresent(Arc<CertifiedKey>);

impl ResolvesClientCert for AlwaysPresent {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `danger_accept_invalid_certs`: accepts any server certificate (the KES CLI's `-k`), but
/// still checks the handshake signatures against the certificate's key, so that at least
/// the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
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
        dss: &DigitallySignedStruct,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem_creds(cert: &str, key: &str) -> Credentials {
        Credentials::Pem {
            cert: cert.as_bytes().to_vec(),
            key: Zeroizing::new(key.as_bytes().to_vec()),
        }
    }

    #[test]
    fn loads_pkcs8_keys_of_each_kind() {
        for alg in [
            &rcgen::PKCS_ED25519,
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
        ] {
            let (cert, key) = pem_pair(alg);
            certified_key(&pem_creds(&cert, &key)).unwrap();
            client_config(Some(&pem_creds(&cert, &key)), vec![], false).unwrap();
        }
    }

    #[test]
    fn key_label_does_not_restrict_the_format() {
        // Go's tls.X509KeyPair tries every format whatever the label says; so do we.
        let (cert, key) = pem_pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let relabelled = key.replace("PRIVATE KEY", "EC PRIVATE KEY");
        certified_key(&pem_creds(&cert, &relabelled)).unwrap();
    }

    #[test]
    fn loads_api_keys() {
        let api_key = ApiKey::generate().unwrap();
        let key = certified_key(&Credentials::ApiKey(api_key)).unwrap();
        assert_eq!(key.cert.len(), 1);
    }

    #[test]
    fn rejects_bad_credentials() {
        let (cert, key) = pem_pair(&rcgen::PKCS_ED25519);
        let (other_cert, _) = pem_pair(&rcgen::PKCS_ED25519);
        let cases = [
            pem_creds(&cert, ""),
            pem_creds("", &key),
            pem_creds(&key, &cert),
            pem_creds(&other_cert, &key),
            pem_creds(&cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            pem_creds(
                &cert,
                &key.replace("-----BEGIN PRIVATE KEY-----\n", "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00000000000000000000000000000000\n\n"),
            ),
        ];
        for creds in &cases {
            let err = certified_key(creds).err().unwrap();
            assert!(matches!(err, Error::InvalidCredentials { .. }), "{err}");
            // Never echo key material.
            assert!(!err.to_string().contains("MC4CAQ"), "{err}");
        }
    }

    #[test]
    fn parses_certificate_bundles() {
        let (a, _) = pem_pair(&rcgen::PKCS_ED25519);
        let (b, key) = pem_pair(&rcgen::PKCS_ED25519);
        assert_eq!(
            parse_certificates(format!("junk\n{a}\n{key}{b}").as_bytes()).len(),
            2
        );
        assert!(parse_certificates(b"nothing here").is_empty());
    }
}
