//! The cryptographic core of KES: everything that touches key material or byte formats.
//!
//! * [`SecretKey`] seals and opens data exactly as MinIO KES does (spec §4.2): a fresh per-message
//!   key derived from the master key and a random 16-byte IV (HMAC-SHA256 for AES-256-GCM,
//!   HChaCha20 for ChaCha20-Poly1305). [`SecretKey::encrypt`] emits the raw format (§4.3),
//!   [`SecretKey::decrypt`] accepts every format any KES release emitted (§4.4) and reports every
//!   failure as the one [`DecryptError`].
//! * [`KeyVersion`] is the record stored in a keystore (§4.1): base64 of a protobuf message
//!   (current) or a JSON object (legacy, read-only). A server caches one per key, so it keeps
//!   both keys and its metadata in one compact heap block and lends its keys out as
//!   [`SecretKeyRef`] and [`HmacKeyRef`], which seal, open and MAC like [`SecretKey`] and
//!   [`HmacKey`].
//! * [`HmacKey`] backs `/v1/key/hmac`.
//! * [`ApiKey`], [`identity_of_certificate`] (and [`certificate_identity`], which also reads
//!   the CA flag) and the certificate helpers implement the identity model of §5;
//!   [`legacy_pem`] implements the RFC 1423 PEM encryption used by `tls.password`
//!   and `kes identity new --encrypt`; [`pem`] reads and writes PEM files as Go does (RFC 1421
//!   headers included); [`names`] holds the name and pattern rules of §2.3.
//! * [`aead`] is the primitive layer every sealing operation goes through; it is public so that
//!   standard test vectors (Wycheproof) can exercise the very code the server runs.
//!
//! What this crate must never do: perform I/O (files, network, environment), spawn threads,
//! depend on an async runtime, log, or put secret material into an error, a `Debug` output or a
//! `Display` output. Secrets (keys, plaintexts, API keys, passwords) live in types that wipe
//! their memory when dropped. The only outside resources it uses are the operating system's
//! random number generator (`getrandom`) and, for certificate validity, the system clock.
//!
//! Section numbers (§) refer to the project's KES specification (`kes-spec.md`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aead;
mod api_key;
mod cert;
mod ciphertext;
mod creator;
mod error;
mod gojson;
mod key;
pub mod legacy_pem;
pub mod names;
pub mod pem;
mod record;
mod ring;
mod time_format;

pub use api_key::{
    ApiKey, ApiKeyError, CertifiedKeyPem, PrivateKeyError, api_key_from_pkcs8_der,
    api_key_from_pkcs8_pem, generate_identity_certificate,
};
pub use cert::{
    CertificateError, certificate_identity, identity_of_certificate, identity_of_spki,
    is_ca_certificate,
};
pub use error::{
    DecryptError, EncryptError, HmacUnsupported, InvalidKeyLength, RecordError, RngError,
};
pub use key::{HmacKey, HmacKeyRef, KeyType, Plaintext, SecretKey, SecretKeyRef, random_data_key};
pub use record::KeyVersion;
pub use ring::{KeyRing, MAX_VERSIONS, RingError, parse_version_name, version_name};
pub use time_format::format_rfc3339_nano;

#[cfg(test)]
mod tests {
    use zeroize::ZeroizeOnDrop;

    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn zeroize_on_drop<T: ZeroizeOnDrop>() {}

    /// The key types can be shared across the server's threads, and plaintexts wipe themselves.
    #[test]
    fn thread_safety_and_wiping_are_part_of_the_types() {
        send_sync::<SecretKey>();
        send_sync::<HmacKey>();
        send_sync::<SecretKeyRef<'static>>();
        send_sync::<HmacKeyRef<'static>>();
        send_sync::<KeyVersion>();
        send_sync::<ApiKey>();
        send_sync::<Plaintext>();
        send_sync::<DecryptError>();
        zeroize_on_drop::<Plaintext>();
    }
}
