//! `kes:v1:` API keys and the certificates derived from them (spec §5).
//!
//! An API key is an Ed25519 seed: text `kes:v1:` + b64std(`0x00` ‖ 32-byte seed). Its identity
//! is the SHA-256 of the Ed25519 SubjectPublicKeyInfo, i.e. the identity of every certificate
//! made for its key pair. Clients authenticate with a self-signed certificate generated from
//! the key ([`ApiKey::client_certificate`]).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::{KeypairBytes, PrivateKeyInfoRef};
use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;
use zeroize::{Zeroize, Zeroizing};

use crate::cert::{CertificateError, identity_of_spki};
use crate::error::RngError;
use crate::gojson::decode_go_base64;
use crate::key::fill_random;
use crate::pem::{self, PemBlock};

/// The prefix of the text form of an API key.
const PREFIX: &str = "kes:v1:";
/// The type byte of an Ed25519 API key.
const TYPE_ED25519: u8 = 0;
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of an Ed25519 PKCS #8 v1 private key (as Go's `x509.MarshalPKCS8PrivateKey`
/// writes it), followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Validity of a client certificate made from an API key.
const CLIENT_CERT_VALIDITY: time::Duration = time::Duration::days(90);

/// Why a string is not an API key.
///
/// The texts are those of kms-go's `ParseAPIKey` without its `kes: ` prefix (the original CLI
/// prints e.g. `kes: invalid API key: invalid length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// The part after the optional `kes:v1:` prefix is not padded standard base64.
    #[error("invalid API key: invalid base64 encoding")]
    InvalidEncoding,
    /// The decoded key is not 33 bytes long.
    #[error("invalid API key: invalid length")]
    InvalidLength,
    /// The first decoded byte (the key type) is not 0 (Ed25519).
    #[error("invalid API key: unsupported type")]
    UnsupportedType,
}

/// Why a private key cannot be turned into an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrivateKeyError {
    /// The text contains no `PRIVATE KEY` PEM block.
    #[error("no PRIVATE KEY PEM block found")]
    NoPrivateKey,
    /// The `PRIVATE KEY` block is encrypted (legacy PEM encryption); decrypt it first.
    #[error("private key is encrypted")]
    Encrypted,
    /// The bytes are not a PKCS #8 private key.
    #[error("invalid PKCS #8 private key")]
    Malformed,
    /// The PKCS #8 key is not an Ed25519 key.
    #[error("private key is not an Ed25519 key")]
    NotEd25519,
}

/// An Ed25519 API key (`kes:v1:…`).
///
/// The seed is on the heap and wiped when dropped; `Debug` shows only the identity; there is no
/// `Display`, `Clone` or `Serialize`. The text form is available through
/// [`ApiKey::expose_secret`].
pub struct ApiKey {
    inner: Box<ApiKeyInner>,
}

struct ApiKeyInner {
    seed: Zeroizing<[u8; 32]>,
    public_key: [u8; 32],
}

impl ApiKey {
    /// Parses an API key. A leading `kes:v1:` is optional (the bare base64 part is accepted
    /// too); `\r` and `\n` inside the base64 are skipped, as Go does.
    ///
    /// # Errors
    ///
    /// [`ApiKeyError::InvalidEncoding`] for text that is not padded standard base64,
    /// [`ApiKeyError::InvalidLength`] unless it decodes to exactly 33 bytes, and
    /// [`ApiKeyError::UnsupportedType`] if the first byte is not 0.
    pub fn parse(s: &str) -> Result<ApiKey, ApiKeyError> {
        let encoded = s.strip_prefix(PREFIX).unwrap_or(s);
        let decoded = decode_go_base64(encoded.as_bytes()).ok_or(ApiKeyError::InvalidEncoding)?;
        let Some((&key_type, seed)) = decoded.split_first() else {
            return Err(ApiKeyError::InvalidLength);
        };
        if seed.len() != 32 {
            return Err(ApiKeyError::InvalidLength);
        }
        if key_type != TYPE_ED25519 {
            return Err(ApiKeyError::UnsupportedType);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(seed);
        Ok(ApiKey::from_zeroizing_seed(&mut bytes))
    }

    /// Generates a new random API key.
    ///
    /// # Errors
    ///
    /// [`RngError`] if the operating system's random number generator fails.
    pub fn generate() -> Result<ApiKey, RngError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        fill_random(seed.as_mut())?;
        Ok(ApiKey::from_zeroizing_seed(&mut seed))
    }

    /// The API key of an Ed25519 key pair, given its 32-byte seed (the caller's copy of the
    /// array is its own to wipe).
    #[must_use]
    pub fn from_seed(seed: [u8; 32]) -> ApiKey {
        let mut seed = Zeroizing::new(seed);
        ApiKey::from_zeroizing_seed(&mut seed)
    }

    fn from_zeroizing_seed(seed: &mut Zeroizing<[u8; 32]>) -> ApiKey {
        let public_key = ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .to_bytes();
        let mut inner = Box::new(ApiKeyInner {
            seed: Zeroizing::new([0u8; 32]),
            public_key,
        });
        inner.seed.copy_from_slice(seed.as_ref());
        seed.zeroize();
        ApiKey { inner }
    }

    /// The text form `kes:v1:` + b64std(`0x00` ‖ seed), in a buffer wiped when dropped.
    #[must_use]
    pub fn expose_secret(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; 33]);
        if let Some((_, seed)) = raw.split_first_mut() {
            seed.copy_from_slice(self.inner.seed.as_ref());
        }
        let mut text = Zeroizing::new(String::with_capacity(PREFIX.len() + 44));
        text.push_str(PREFIX);
        STANDARD.encode_string(raw.as_slice(), &mut text);
        text
    }

    /// The 32-byte Ed25519 seed. Every use is a place where the secret leaves this type.
    #[must_use]
    pub fn expose_seed(&self) -> &[u8; 32] {
        &self.inner.seed
    }

    /// The Ed25519 public key.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.inner.public_key
    }

    /// The DER SubjectPublicKeyInfo of the public key (`30 2a 30 05 06 03 2b 65 70 03 21 00 ‖
    /// public key`).
    #[must_use]
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        let mut spki = Vec::with_capacity(ED25519_SPKI_PREFIX.len() + 32);
        spki.extend_from_slice(&ED25519_SPKI_PREFIX);
        spki.extend_from_slice(&self.inner.public_key);
        spki
    }

    /// The identity: lowercase hex of SHA-256 over the SubjectPublicKeyInfo.
    #[must_use]
    pub fn identity(&self) -> String {
        identity_of_spki(&self.public_key_spki_der())
    }

    /// The private key as PKCS #8 v1 DER (48 bytes, as Go writes it), wiped when dropped.
    #[must_use]
    pub fn private_key_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let mut der = Zeroizing::new(Vec::with_capacity(ED25519_PKCS8_PREFIX.len() + 32));
        der.extend_from_slice(&ED25519_PKCS8_PREFIX);
        der.extend_from_slice(self.inner.seed.as_ref());
        der
    }

    /// The private key as a `PRIVATE KEY` PEM block (PKCS #8), wiped when dropped.
    #[must_use]
    pub fn private_key_pem(&self) -> Zeroizing<String> {
        pem::encode(&PemBlock::new("PRIVATE KEY", self.private_key_pkcs8_der()))
    }

    /// A self-signed client certificate for this key, as kms-go's `GenerateCertificate` makes
    /// it (spec §5): subject CN = the identity, issuer = subject, a random serial in
    /// [0, 2^128), valid from now for 90 days, KeyUsage digitalSignature, ExtKeyUsage clientAuth
    /// only, basicConstraints CA=false, no SANs, signed with the key itself.
    ///
    /// # Errors
    ///
    /// [`CertificateError::Rng`] if no serial number can be drawn, and
    /// [`CertificateError::Generate`] if the certificate cannot be built.
    pub fn client_certificate(&self) -> Result<CertifiedKeyPem, CertificateError> {
        let now = now_seconds();
        let not_after = now
            .checked_add(CLIENT_CERT_VALIDITY)
            .ok_or(CertificateError::ValidityOutOfRange)?;
        self.certificate(
            &self.identity(),
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            Vec::new(),
            now,
            not_after,
        )
    }

    fn certificate(
        &self,
        common_name: &str,
        extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
        subject_alt_names: Vec<SanType>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<CertifiedKeyPem, CertificateError> {
        let mut serial = [0u8; 16];
        fill_random(&mut serial)?;

        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, directory_string(common_name));

        // basicConstraints, critical, with an empty sequence (cA = FALSE), as Go writes it for
        // `BasicConstraintsValid: true`. (rcgen's `IsCa::ExplicitNoCa` would also add a subject
        // key identifier, which Go does not.)
        let mut basic_constraints =
            CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0]);
        basic_constraints.set_criticality(true);

        let mut params = CertificateParams::default();
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from(serial.to_vec()));
        params.distinguished_name = name;
        params.subject_alt_names = subject_alt_names;
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = extended_key_usages;
        params.custom_extensions = vec![basic_constraints];
        params.use_authority_key_identifier_extension = false;

        let signer = Ed25519Signer {
            key: ed25519_dalek::SigningKey::from_bytes(&self.inner.seed),
            public_key: self.inner.public_key,
        };
        let cert = params
            .self_signed(&signer)
            .map_err(CertificateError::Generate)?;
        let cert_pem = pem::encode(&PemBlock::new(
            "CERTIFICATE",
            Zeroizing::new(cert.der().to_vec()),
        ));
        Ok(CertifiedKeyPem {
            cert_pem: cert_pem.as_str().to_owned(),
            key_pem: self.private_key_pem(),
        })
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("identity", &self.identity())
            .finish_non_exhaustive()
    }
}

/// A certificate and its private key, both PEM-encoded.
pub struct CertifiedKeyPem {
    /// The certificate as a `CERTIFICATE` PEM block.
    pub cert_pem: String,
    /// The private key as a PKCS #8 `PRIVATE KEY` PEM block; wiped when dropped.
    pub key_pem: Zeroizing<String>,
}

impl fmt::Debug for CertifiedKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedKeyPem")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[REDACTED]")
            .finish()
    }
}

/// The certificate `kes identity new --key … --cert …` writes (spec §5, §10): self-signed with
/// the API key's Ed25519 key, subject CN = `subject` or else the identity, ExtKeyUsage
/// clientAuth and serverAuth, the given DNS and IP SANs, valid from now for `validity`, with
/// KeyUsage digitalSignature, basicConstraints CA=false and a random 128-bit serial.
///
/// # Errors
///
/// [`CertificateError::ValidityOutOfRange`] if now + `validity` is past year 9999,
/// [`CertificateError::Generate`] for a DNS name that is not ASCII (IA5), and
/// [`CertificateError::Rng`] if no serial number can be drawn.
pub fn generate_identity_certificate(
    api_key: &ApiKey,
    subject: Option<&str>,
    ips: &[IpAddr],
    dns: &[String],
    validity: Duration,
) -> Result<CertifiedKeyPem, CertificateError> {
    let now = now_seconds();
    let validity =
        time::Duration::try_from(validity).map_err(|_| CertificateError::ValidityOutOfRange)?;
    let not_after = now
        .checked_add(validity)
        .ok_or(CertificateError::ValidityOutOfRange)?;

    // Go writes DNS names before IP addresses.
    let mut sans = Vec::with_capacity(dns.len() + ips.len());
    for name in dns {
        let name = Ia5String::try_from(name.as_str()).map_err(CertificateError::Generate)?;
        sans.push(SanType::DnsName(name));
    }
    sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));

    let common_name = match subject {
        Some(subject) => subject.to_owned(),
        None => api_key.identity(),
    };
    api_key.certificate(
        &common_name,
        vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ],
        sans,
        now,
        not_after,
    )
}

/// The API key of an Ed25519 private key in the first `PRIVATE KEY` PEM block of `pem_text`
/// (`kes identity <file>`).
///
/// # Errors
///
/// [`PrivateKeyError::NoPrivateKey`] without such a block, [`PrivateKeyError::Encrypted`] if it
/// is encrypted, and the errors of [`api_key_from_pkcs8_der`].
pub fn api_key_from_pkcs8_pem(pem_text: &str) -> Result<ApiKey, PrivateKeyError> {
    let block = pem::decode_all(pem_text.as_bytes())
        .into_iter()
        .find(|block| block.label() == "PRIVATE KEY")
        .ok_or(PrivateKeyError::NoPrivateKey)?;
    if crate::legacy_pem::is_encrypted_block(&block) {
        return Err(PrivateKeyError::Encrypted);
    }
    api_key_from_pkcs8_der(block.contents())
}

/// The API key of an Ed25519 private key in PKCS #8 DER (v1, or v2 with a matching public key).
///
/// # Errors
///
/// [`PrivateKeyError::Malformed`] if `der` is not PKCS #8 (or its public key does not match),
/// [`PrivateKeyError::NotEd25519`] for another key algorithm.
pub fn api_key_from_pkcs8_der(der: &[u8]) -> Result<ApiKey, PrivateKeyError> {
    let info = PrivateKeyInfoRef::try_from(der).map_err(|_| PrivateKeyError::Malformed)?;
    if info.algorithm.oid != ed25519_dalek::pkcs8::ALGORITHM_OID {
        return Err(PrivateKeyError::NotEd25519);
    }
    let keypair = KeypairBytes::try_from(info).map_err(|_| PrivateKeyError::Malformed)?;
    let signing_key =
        ed25519_dalek::SigningKey::try_from(&keypair).map_err(|_| PrivateKeyError::Malformed)?;
    let mut seed = Zeroizing::new(signing_key.to_bytes());
    Ok(ApiKey::from_zeroizing_seed(&mut seed))
}

/// The current time, truncated to whole seconds (certificates carry no fractions).
fn now_seconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// Go's choice of string type for a name attribute: PrintableString when every character is in
/// its alphabet, UTF8String otherwise.
fn directory_string(s: &str) -> DnValue {
    match PrintableString::try_from(s) {
        Ok(printable) => DnValue::PrintableString(printable),
        Err(_) => DnValue::Utf8String(s.to_owned()),
    }
}

/// Signs certificates with an Ed25519 key held by ed25519-dalek (wiped on drop).
struct Ed25519Signer {
    key: ed25519_dalek::SigningKey,
    public_key: [u8; 32],
}

impl rcgen::PublicKeyData for Ed25519Signer {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for Ed25519Signer {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use x509_parser::certificate::X509Certificate;
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::prelude::FromDer;

    use super::*;
    use crate::cert::{identity_of_certificate, is_ca_certificate};

    /// Spec §5 vectors.
    const VECTORS: [(&str, &str); 3] = [
        (
            "kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw",
            "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb",
        ),
        (
            "kes:v1:AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJ",
            "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7",
        ),
        (
            "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs",
            "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6",
        ),
    ];

    #[test]
    fn spec_vectors() {
        for (text, identity) in VECTORS {
            let key = ApiKey::parse(text).unwrap();
            assert_eq!(key.identity(), identity);
            assert_eq!(key.expose_secret().as_str(), text);
            // The prefix is optional.
            let bare = ApiKey::parse(text.strip_prefix("kes:v1:").unwrap()).unwrap();
            assert_eq!(bare.identity(), identity);
        }
    }

    #[test]
    fn invalid_keys() {
        let valid_b64 = "AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJ";
        assert_eq!(
            ApiKey::parse(&format!("v1:{valid_b64}")).unwrap_err(),
            ApiKeyError::InvalidEncoding
        );
        assert_eq!(
            ApiKey::parse(&format!("kes:{valid_b64}")).unwrap_err(),
            ApiKeyError::InvalidEncoding
        );
        let wrong_type = format!("kes:v1:{}", STANDARD.encode([0xb1u8; 33]));
        assert!(wrong_type.starts_with("kes:v1:sbGx"));
        let err = ApiKey::parse(&wrong_type).unwrap_err();
        assert_eq!(err, ApiKeyError::UnsupportedType);
        assert_eq!(err.to_string(), "invalid API key: unsupported type");
        for short in [
            "",
            "kes:v1:",
            "kes:v1:AAAA",
            &format!("kes:v1:{}", STANDARD.encode([0u8; 34])),
        ] {
            let err = ApiKey::parse(short).unwrap_err();
            assert_eq!(err, ApiKeyError::InvalidLength, "{short:?}");
            assert_eq!(err.to_string(), "invalid API key: invalid length");
        }
        // Missing padding is an encoding error, as in Go.
        assert_eq!(
            ApiKey::parse("kes:v1:AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJAA").unwrap_err(),
            ApiKeyError::InvalidEncoding
        );
    }

    #[test]
    fn generate_round_trip_and_debug() {
        let key = ApiKey::generate().unwrap();
        let text = key.expose_secret();
        assert!(text.starts_with("kes:v1:A"));
        assert_eq!(text.len(), 7 + 44);
        let back = ApiKey::parse(&text).unwrap();
        assert_eq!(back.identity(), key.identity());
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.identity()));
        assert!(!debug.contains(&text[7..]));
    }

    #[test]
    fn pkcs8_round_trip() {
        let key = ApiKey::parse(VECTORS[0].0).unwrap();
        let der = key.private_key_pkcs8_der();
        assert_eq!(der.len(), 48);
        assert_eq!(
            api_key_from_pkcs8_der(&der).unwrap().identity(),
            VECTORS[0].1
        );
        let pem_text = key.private_key_pem();
        assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
        assert_eq!(
            api_key_from_pkcs8_pem(&pem_text).unwrap().identity(),
            VECTORS[0].1
        );
        assert_eq!(
            api_key_from_pkcs8_pem("no pem").unwrap_err(),
            PrivateKeyError::NoPrivateKey
        );
        assert_eq!(
            api_key_from_pkcs8_der(b"junk").unwrap_err(),
            PrivateKeyError::Malformed
        );
        let encrypted = crate::legacy_pem::encrypt("PRIVATE KEY", &der, b"pw").unwrap();
        assert_eq!(
            api_key_from_pkcs8_pem(&encrypted).unwrap_err(),
            PrivateKeyError::Encrypted
        );
        // A P-256 PKCS #8 key (from `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
        let p256 = "-----BEGIN PRIVATE KEY-----\n\
            MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEVK0vwUEOI3aXfRH\n\
            RshnOwoIDifA/kTih24ToDOjW0ehRANCAATAOZPjLoc33K5zU8075RKnj3B1QuiG\n\
            A8ZbNC3B/hcbn/Q0ou9vmLQYCWdUo3qn0cV1qiPzcA0e3/VCkwaFVtoi\n\
            -----END PRIVATE KEY-----\n";
        assert_eq!(
            api_key_from_pkcs8_pem(p256).unwrap_err(),
            PrivateKeyError::NotEd25519
        );
    }

    fn verify_self_signature(key: &ApiKey, cert: &X509Certificate<'_>) {
        use ed25519_dalek::Verifier;
        let public = ed25519_dalek::VerifyingKey::from_bytes(&key.public_key()).unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&cert.signature_value.data).unwrap();
        public
            .verify(cert.tbs_certificate.as_ref(), &signature)
            .unwrap();
    }

    fn parse_pem_cert(pem_text: &str) -> Vec<u8> {
        let (block, _) = pem::decode(pem_text.as_bytes()).unwrap();
        assert_eq!(block.label(), "CERTIFICATE");
        block.contents().to_vec()
    }

    #[test]
    fn client_certificate_shape() {
        let key = ApiKey::parse(VECTORS[1].0).unwrap();
        let certified = key.client_certificate().unwrap();
        let der = parse_pem_cert(&certified.cert_pem);
        assert_eq!(identity_of_certificate(&der).unwrap(), VECTORS[1].1);
        assert!(!is_ca_certificate(&der).unwrap());
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(cert.version().0, 2, "X.509 v3");
        let cn: Vec<_> = cert.subject().iter_common_name().collect();
        assert_eq!(cn.len(), 1);
        assert_eq!(cn[0].as_str().unwrap(), VECTORS[1].1);
        assert_eq!(cert.subject().as_raw(), cert.issuer().as_raw());
        let validity = cert.validity();
        let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86400;
        assert_eq!(days, 90);
        assert!(cert.tbs_certificate.raw_serial().len() <= 17);
        let mut saw = (false, false, false);
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::KeyUsage(ku) => {
                    assert!(ext.critical);
                    assert!(ku.digital_signature());
                    assert_eq!(ku.flags, 1);
                    saw.0 = true;
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    assert!(eku.client_auth && !eku.server_auth);
                    saw.1 = true;
                }
                ParsedExtension::BasicConstraints(bc) => {
                    assert!(ext.critical && !bc.ca);
                    saw.2 = true;
                }
                other => panic!("unexpected extension {other:?}"),
            }
        }
        assert_eq!(saw, (true, true, true));
        // The signature verifies under the key's own public key.
        verify_self_signature(&key, &cert);
        assert_eq!(
            api_key_from_pkcs8_pem(&certified.key_pem)
                .unwrap()
                .identity(),
            VECTORS[1].1
        );
        assert!(format!("{certified:?}").contains("REDACTED"));
    }

    #[test]
    fn identity_certificate_shape() {
        let key = ApiKey::parse(VECTORS[2].0).unwrap();
        let ips = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let dns = ["localhost".to_owned(), "kes.example".to_owned()];
        let certified = generate_identity_certificate(
            &key,
            Some("my server"),
            &ips,
            &dns,
            Duration::from_secs(720 * 3600),
        )
        .unwrap();
        let der = parse_pem_cert(&certified.cert_pem);
        assert_eq!(identity_of_certificate(&der).unwrap(), VECTORS[2].1);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let cn: Vec<_> = cert.subject().iter_common_name().collect();
        assert_eq!(cn[0].as_str().unwrap(), "my server");
        let validity = cert.validity();
        assert_eq!(
            validity.not_after.timestamp() - validity.not_before.timestamp(),
            720 * 3600
        );
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && eku.server_auth);
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        let names: Vec<String> = san.general_names.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            names,
            [
                "DNSName(localhost)",
                "DNSName(kes.example)",
                "IPAddress(7f:00:00:01)",
                "IPAddress(00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01)"
            ]
        );
        verify_self_signature(&key, &cert);

        // Without subject the CN is the identity; non-ASCII DNS names are rejected.
        let certified =
            generate_identity_certificate(&key, None, &[], &[], Duration::from_secs(60)).unwrap();
        let der = parse_pem_cert(&certified.cert_pem);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let cn: Vec<_> = cert.subject().iter_common_name().collect();
        assert_eq!(cn[0].as_str().unwrap(), VECTORS[2].1);
        assert!(matches!(
            generate_identity_certificate(
                &key,
                None,
                &[],
                &["ключ".to_owned()],
                Duration::from_secs(60)
            ),
            Err(CertificateError::Generate(_))
        ));
        assert!(matches!(
            generate_identity_certificate(&key, None, &[], &[], Duration::from_secs(u64::MAX)),
            Err(CertificateError::ValidityOutOfRange)
        ));
    }
}
