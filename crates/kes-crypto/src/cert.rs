//! Identities of X.509 certificates (spec §5).

use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::error::RngError;

/// A certificate could not be read or generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    let cert = parse(der)?;
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
