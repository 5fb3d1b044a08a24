//! Error types shared by the key, record and sealing code.
//!
//! None of these errors ever carries secret material: no key bytes, no plaintext, no base64 of
//! either, and no text produced by a parser that might quote its input.

use std::fmt;

/// The operating system's random number generator failed.
///
/// Returned by every operation that draws randomness (key generation, sealing, serial numbers).
/// It is not recoverable by retrying with other input; servers answer it with a 500.
#[derive(Debug, thiserror::Error)]
#[error("failed to read random bytes from the operating system: {0}")]
pub struct RngError(#[source] pub(crate) getrandom::Error);

/// A key was given with a length other than 32 bytes.
///
/// Returned by [`SecretKey::from_slice`](crate::SecretKey::from_slice) and
/// [`HmacKey::from_slice`](crate::HmacKey::from_slice). It carries only the (public) length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid key length: expected 32 bytes, got {len}")]
pub struct InvalidKeyLength {
    /// The length, in bytes, of the rejected input.
    pub len: usize,
}

/// Sealing a plaintext failed.
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    /// The random IV and nonce could not be drawn.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// The plaintext is longer than the AEAD can seal under one nonce (about 64 GiB for
    /// AES-GCM, 256 GiB for ChaCha20-Poly1305); no KES request can be that large.
    #[error("plaintext is too large to be encrypted")]
    PlaintextTooLarge,
}

/// Opening a ciphertext failed.
///
/// There is deliberately a single error for every cause: input too short, a legacy envelope
/// that does not parse, a wrong key, a wrong context (associated data), or tampered bytes are
/// indistinguishable to the caller, so that an attacker learns nothing from the answer. Its
/// `Display` text is the message KES returns with status 400.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decryption failed: ciphertext is not authentic")]
pub struct DecryptError {
    _private: (),
}

impl DecryptError {
    pub(crate) const fn new() -> Self {
        Self { _private: () }
    }
}

impl fmt::Debug for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecryptError")
    }
}

/// The key has no HMAC key: it was read from a legacy JSON record (spec §4.1).
///
/// Its `Display` text is the message KES returns with status 409 from `/v1/key/hmac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("key does not support HMAC")]
pub struct HmacUnsupported;

/// A stored key record could not be parsed, or a record could not be encoded.
///
/// Servers answer every parse error with 502 `failed to read key` (spec §2.2); the variants
/// exist for the error log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record is valid JSON (so it is read as a legacy record) but not a legacy key object:
    /// not an object, a field of the wrong type, or a `bytes` field that is not base64.
    #[error("invalid legacy key record")]
    InvalidLegacyRecord,
    /// The legacy record's `created_at` is not an RFC 3339 time.
    #[error("invalid legacy key record: invalid created_at time")]
    InvalidCreatedAt,
    /// The legacy record names an algorithm other than `AES256`, `AES256-GCM_SHA256`,
    /// `ChaCha20` or `XCHACHA20-POLY1305` (or empty).
    #[error("invalid legacy key record: unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The record is neither valid JSON nor valid padded standard base64.
    #[error("invalid key record: invalid base64 encoding")]
    InvalidBase64,
    /// The base64 content is not a valid protobuf `KeyVersion` message.
    #[error("invalid key record: invalid protobuf encoding")]
    InvalidProtobuf,
    /// The protobuf record has no `Key` sub-message.
    #[error("invalid key record: missing secret key")]
    MissingSecretKey,
    /// The protobuf record has no `HMACKey` sub-message.
    #[error("invalid key record: missing HMAC key")]
    MissingHmacKey,
    /// The secret key is not exactly 32 bytes long.
    #[error("invalid key record: invalid secret key length")]
    InvalidSecretKeyLength,
    /// The HMAC key is not exactly 32 bytes long.
    #[error("invalid key record: invalid HMAC key length")]
    InvalidHmacKeyLength,
    /// The protobuf record's secret key `Type` is neither 1 (AES256) nor 2 (ChaCha20).
    #[error("invalid key record: unsupported secret key type {0}")]
    UnsupportedKeyType(u32),
    /// The protobuf record's HMAC `Hash` is not 1 (SHA256).
    #[error("invalid key record: unsupported HMAC hash function {0}")]
    UnsupportedHash(u32),
    /// The creation time cannot be represented (outside the years -9999 to 9999).
    #[error("invalid key record: creation time out of range")]
    CreatedAtOutOfRange,
    /// [`KeyVersion::encode`](crate::KeyVersion::encode) was called on a record without HMAC
    /// key; the current format requires one.
    #[error("cannot encode a key record without HMAC key")]
    MissingHmacKeyForEncode,
}
