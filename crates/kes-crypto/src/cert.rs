//! Identities of X.509 certificates (spec §5).

use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::error::RngError;

/// A certificate could not be read or generated.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The bytes are not one DER-encoded X.509 certificate (or carry trailing data).
    #[error("x509: malformed certificate")]
    Malformed,
    /// A certificate extension could not be parsed (e.g. a malformed basicConstraints).
    #[error("x509: malformed certificate extension")]
    MalformedExtension,
    /// The certificate could not be built or signed.
    #[error("failed to generate certificate: {0}")]
    Generate(#[source] rcgen::Error),
    /// The requested validity period does not fit the calendar (NotAfter past year 9999).
    #[error("failed to generate certificate: validity period is out of range")]
    ValidityOutOfRange,
    /// The random serial number could not be drawn.
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// The KES identity of a DER certificate: lowercase hex of SHA-256 over the raw DER of its
/// SubjectPublicKeyInfo (not over the whole certificate).
///
/// # Errors
///
/// [`CertificateError::Malformed`] if `der` is not a single X.509 certificate.
pub fn identity_of_certificate(der: &[u8]) -> Result<String, CertificateError> {
    let cert = parse(der)?;
    Ok(identity_of_spki(cert.tbs_certificate.subject_pki.raw))
}

/// The KES identity of a DER-encoded SubjectPublicKeyInfo: lowercase hex of its SHA-256.
#[must_use]
pub fn identity_of_spki(spki_der: &[u8]) -> String {
    hex::encode(Sha256::digest(spki_der))
}

/// Whether the certificate is a CA certificate (basicConstraints with `cA` true).
///
/// KES ignores such certificates when it looks for the client's leaf certificate, as Go's
/// `x509.Certificate.IsCA` does; a certificate without basicConstraints is not a CA.
///
/// # Errors
///
/// [`CertificateError::Malformed`] if `der` is not a single X.509 certificate and
/// [`CertificateError::MalformedExtension`] if its basicConstraints cannot be read (or appears
/// twice).
pub fn is_ca_certificate(der: &[u8]) -> Result<bool, CertificateError> {
    is_ca(&parse(der)?)
}

/// The KES identity of a DER certificate and whether it is a CA certificate, from one parse.
///
/// Returns `(identity, is_ca)` with the values [`identity_of_certificate`] and
/// [`is_ca_certificate`] give, for a caller (the TLS server, once per connection) that needs
/// both.
///
/// # Errors
///
/// Those of [`is_ca_certificate`]: [`CertificateError::Malformed`] if `der` is not a single
/// X.509 certificate and [`CertificateError::MalformedExtension`] if its basicConstraints
/// cannot be read (or appears twice). In the second case [`identity_of_certificate`] alone
/// would succeed; a caller that checks the CA flag rejects such a certificate either way.
pub fn certificate_identity(der: &[u8]) -> Result<(String, bool), CertificateError> {
    let cert = parse(der)?;
    let is_ca = is_ca(&cert)?;
    Ok((
        identity_of_spki(cert.tbs_certificate.subject_pki.raw),
        is_ca,
    ))
}

fn is_ca(cert: &X509Certificate<'_>) -> Result<bool, CertificateError> {
    let constraints = cert
        .basic_constraints()
        .map_err(|_| CertificateError::MalformedExtension)?;
    Ok(constraints.is_some_and(|ext| ext.value.ca))
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertificateError> {
    match X509Certificate::from_der(der) {
        Ok((&[], cert)) => Ok(cert),
        _ => Err(CertificateError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use kes_testutil::Rng;

    use super::*;
    use crate::ApiKey;

    /// The committed test PKI of the repository (`testdata/pki`).
    fn pki_der(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/pki")
            .join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (block, _) = crate::pem::decode(text.as_bytes()).unwrap();
        assert_eq!(block.label(), "CERTIFICATE");
        block.contents().to_vec()
    }

    fn client_der() -> Vec<u8> {
        let key = ApiKey::parse("kes:v1:AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJ").unwrap();
        let (block, _) =
            crate::pem::decode(key.client_certificate().unwrap().cert_pem.as_bytes()).unwrap();
        block.contents().to_vec()
    }

    /// `certificate_identity` says what the two separate parses say, or fails as
    /// `is_ca_certificate` fails. Returns its result without the identity.
    #[allow(clippy::unwrap_in_result)]
    fn assert_agrees(der: &[u8], what: &str) -> Result<bool, CertificateError> {
        match certificate_identity(der) {
            Ok((identity, ca)) => {
                assert_eq!(identity, identity_of_certificate(der).unwrap(), "{what}");
                assert_eq!(ca, is_ca_certificate(der).unwrap(), "{what}");
                Ok(ca)
            }
            Err(err) => {
                let separate = is_ca_certificate(der).unwrap_err();
                assert_eq!(err.to_string(), separate.to_string(), "{what}");
                Err(err)
            }
        }
    }

    #[test]
    fn certificate_identity_of_leaf_and_ca_certificates() {
        let der = client_der();
        let (identity, ca) = certificate_identity(&der).unwrap();
        assert_eq!(
            identity,
            "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7"
        );
        assert!(!ca);

        let ca_der = pki_der("ca.crt");
        let (identity, ca) = certificate_identity(&ca_der).unwrap();
        assert!(ca, "the test CA is a CA");
        assert_eq!(identity, identity_of_certificate(&ca_der).unwrap());
        for name in [
            "admin.crt",
            "app.crt",
            "other.crt",
            "server.crt",
            "nosan.crt",
        ] {
            let der = pki_der(name);
            assert!(!certificate_identity(&der).unwrap().1, "{name}");
            assert!(!assert_agrees(&der, name).unwrap());
        }
    }

    #[test]
    fn certificate_identity_rejects_what_is_not_one_certificate() {
        let der = client_der();
        let mut trailing = der.clone();
        trailing.push(0);
        for bad in [&b""[..], b"\x30\x00", &der[..der.len() - 1], &trailing] {
            assert!(matches!(
                certificate_identity(bad),
                Err(CertificateError::Malformed)
            ));
        }
    }

    /// Randomly damaged certificates: one parse gives the same answer as the two separate ones.
    #[test]
    fn certificate_identity_agrees_with_separate_parses_on_damaged_input() {
        let mut rng = Rng::new(0x5eed_cafe);
        let originals = [client_der(), pki_der("ca.crt"), pki_der("server.crt")];
        let (mut accepted, mut rejected) = (0, 0);
        for case in 0..3000 {
            let mut der = rng.pick(&originals).clone();
            for _ in 0..=rng.below(3) {
                let i = rng.below(der.len());
                der[i] = rng.byte();
            }
            match assert_agrees(&der, &format!("case {case}")) {
                Ok(_) => accepted += 1,
                Err(_) => rejected += 1,
            }
        }
        // Both outcomes were exercised, not just one of them.
        eprintln!("damaged certificates: {accepted} parsed, {rejected} rejected");
        assert!(accepted > 100 && rejected > 100, "{accepted} / {rejected}");
    }
}
