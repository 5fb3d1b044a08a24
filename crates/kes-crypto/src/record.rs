//! The stored key record (spec §4.1): what KES writes to, and reads from, a keystore.
//!
//! Current format: `b64std(protobuf(KeyVersion))`, no trailing newline, with this proto3 schema
//! (package `miniohq.kms`), encoded here by hand-written `prost` messages:
//!
//! ```text
//! message SecretKey  { bytes Key = 1; uint32 Type = 2; }   // 1 = AES256, 2 = ChaCha20
//! message HMACKey    { bytes Key = 1; uint32 Hash = 2; }   // 1 = SHA256
//! message KeyVersion { SecretKey Key = 1; HMACKey HMACKey = 2;
//!                      google.protobuf.Timestamp CreatedAt = 3; string CreatedBy = 4; }
//! ```
//!
//! Legacy format (read only): a JSON object `{"bytes", "algorithm", "created_at", "created_by"}`
//! read with Go's `encoding/json` rules; it has no HMAC key.

use std::convert::Infallible;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use prost::Message;
use serde::de::MapAccess;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, Time, UtcOffset};
use zeroize::{Zeroize, Zeroizing};

use crate::aead::KEY_LEN;
use crate::creator::Creator;
use crate::error::{HmacUnsupported, RecordError, RngError};
use crate::gojson::{self, GoStruct, SecretString, set_unless_null};
use crate::key::{HmacKey, HmacKeyRef, KeyType, SecretKey, SecretKeyRef, fill_random};

/// A master key as stored in a keystore: the secret key, its HMAC key (absent in legacy
/// records), and when and by whom it was created.
///
/// A server caches one of these per key it serves, so the record is compact: everything lives
/// in a single heap allocation of 88 bytes (moving a `KeyVersion` moves only a pointer). The
/// secret key and the HMAC key are written straight into that allocation when the record is
/// made, are never copied out of it by this type, and are wiped when the record is dropped.
/// The creator's identity is shared by all records with the same creator (see
/// [`KeyVersion::created_by`]).
///
/// `Debug` shows the algorithm and metadata but never key material. There is no `Clone`; share
/// a parsed record behind an `Arc`.
pub struct KeyVersion {
    record: Box<Record>,
}

/// The contents of a [`KeyVersion`], in one allocation. The creation time is kept as its parts
/// (date, wall-clock time and UTC offset, 15 bytes) rather than as an `OffsetDateTime`
/// (16 bytes), which leaves room for `kind` without growing the record.
struct Record {
    key: Zeroizing<[u8; KEY_LEN]>,
    /// All zeros when `kind` says the record has no HMAC key.
    hmac_key: Zeroizing<[u8; KEY_LEN]>,
    kind: Kind,
    created_date: Date,
    created_time: Time,
    created_offset: UtcOffset,
    created_by: Creator,
}

/// The key type, and whether the record has an HMAC key, in one byte.
#[derive(Clone, Copy)]
enum Kind {
    Aes256,
    ChaCha20,
    /// A legacy record of type AES256: no HMAC key.
    LegacyAes256,
    /// A legacy record of type ChaCha20: no HMAC key.
    LegacyChaCha20,
}

impl Kind {
    fn new(ty: KeyType, has_hmac: bool) -> Kind {
        match (ty, has_hmac) {
            (KeyType::Aes256, true) => Kind::Aes256,
            (KeyType::ChaCha20, true) => Kind::ChaCha20,
            (KeyType::Aes256, false) => Kind::LegacyAes256,
            (KeyType::ChaCha20, false) => Kind::LegacyChaCha20,
        }
    }

    fn key_type(self) -> KeyType {
        match self {
            Kind::Aes256 | Kind::LegacyAes256 => KeyType::Aes256,
            Kind::ChaCha20 | Kind::LegacyChaCha20 => KeyType::ChaCha20,
        }
    }

    fn has_hmac(self) -> bool {
        matches!(self, Kind::Aes256 | Kind::ChaCha20)
    }
}

/// The protobuf `HMACKey.Hash` value for SHA-256.
const HASH_SHA256: u32 = 1;

impl KeyVersion {
    /// Assembles a record from its parts (for `/v1/key/create` and `/v1/key/import`).
    ///
    /// The key bytes are copied into the record's own allocation; `key` and `hmac` wipe theirs
    /// when they are dropped at the end of this call.
    #[must_use]
    pub fn new(
        key: SecretKey,
        hmac: HmacKey,
        created_at: OffsetDateTime,
        created_by: String,
    ) -> KeyVersion {
        let Ok(version) = Self::assemble::<Infallible>(
            Kind::new(key.key_type(), true),
            created_at,
            &created_by,
            |key_bytes, hmac_bytes| {
                key_bytes.copy_from_slice(key.expose_secret());
                hmac_bytes.copy_from_slice(hmac.expose_secret());
                Ok(())
            },
        );
        version
    }

    /// Creates a record with a fresh random secret key of type `ty` and a fresh random HMAC key,
    /// drawn straight into the record.
    ///
    /// # Errors
    ///
    /// [`RngError`] if the operating system's random number generator fails.
    pub fn generate(
        ty: KeyType,
        created_by: String,
        created_at: OffsetDateTime,
    ) -> Result<KeyVersion, RngError> {
        Self::assemble(
            Kind::new(ty, true),
            created_at,
            &created_by,
            |key_bytes, hmac_bytes| {
                fill_random(key_bytes)?;
                fill_random(hmac_bytes)
            },
        )
    }

    /// Allocates a record with zeroed keys and lets `fill` write the key bytes in place, so
    /// that they never exist outside the record's allocation (a record dropped after a failed
    /// `fill` is wiped like any other).
    fn assemble<E>(
        kind: Kind,
        created_at: OffsetDateTime,
        created_by: &str,
        fill: impl FnOnce(&mut [u8; KEY_LEN], &mut [u8; KEY_LEN]) -> Result<(), E>,
    ) -> Result<KeyVersion, E> {
        let mut record = Box::new(Record {
            key: Zeroizing::new([0; KEY_LEN]),
            hmac_key: Zeroizing::new([0; KEY_LEN]),
            kind,
            created_date: created_at.date(),
            created_time: created_at.time(),
            created_offset: created_at.offset(),
            created_by: Creator::new(created_by),
        });
        let Record { key, hmac_key, .. } = &mut *record;
        fill(key, hmac_key)?;
        Ok(KeyVersion { record })
    }

    /// Parses a stored record in either format.
    ///
    /// When `stored` is valid JSON (surrounding whitespace allowed) it is read as a legacy
    /// record; otherwise it must be padded standard base64 (`\r` and `\n` are skipped, so a
    /// trailing newline is fine) of a protobuf `KeyVersion`.
    ///
    /// # Errors
    ///
    /// A [`RecordError`] naming what is wrong; see its variants. Keys must be exactly 32 bytes,
    /// the key type 1 or 2, the hash 1, and both sub-messages present in a protobuf record.
    pub fn parse(stored: &[u8]) -> Result<KeyVersion, RecordError> {
        if gojson::is_valid_json(stored) {
            return parse_legacy(stored);
        }
        let raw = gojson::decode_go_base64(stored).ok_or(RecordError::InvalidBase64)?;
        let record =
            PbKeyVersion::decode(raw.as_slice()).map_err(|_| RecordError::InvalidProtobuf)?;
        Self::from_pb(&record, true)
    }

    /// A record from its protobuf message. Without `require_hmac`, a message without HMAC key
    /// gives a record without one (an archived version of a rotated legacy key).
    pub(crate) fn from_pb(
        record: &PbKeyVersion,
        require_hmac: bool,
    ) -> Result<KeyVersion, RecordError> {
        let secret = record.key.as_ref().ok_or(RecordError::MissingSecretKey)?;
        let ty = match secret.r#type {
            1 => KeyType::Aes256,
            2 => KeyType::ChaCha20,
            other => return Err(RecordError::UnsupportedKeyType(other)),
        };
        let key: &[u8; KEY_LEN] = secret
            .key
            .as_slice()
            .try_into()
            .map_err(|_| RecordError::InvalidSecretKeyLength)?;

        let hmac_key: Option<&[u8; KEY_LEN]> = match &record.hmac_key {
            None if require_hmac => return Err(RecordError::MissingHmacKey),
            None => None,
            Some(hmac) => {
                if hmac.hash != HASH_SHA256 {
                    return Err(RecordError::UnsupportedHash(hmac.hash));
                }
                Some(
                    hmac.key
                        .as_slice()
                        .try_into()
                        .map_err(|_| RecordError::InvalidHmacKeyLength)?,
                )
            }
        };

        let created_at = match &record.created_at {
            None => OffsetDateTime::UNIX_EPOCH,
            Some(ts) => {
                let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
                OffsetDateTime::from_unix_timestamp_nanos(nanos)
                    .map_err(|_| RecordError::CreatedAtOutOfRange)?
            }
        };

        let Ok(version) = Self::assemble::<Infallible>(
            Kind::new(ty, hmac_key.is_some()),
            created_at,
            &record.created_by,
            |key_bytes, hmac_bytes| {
                key_bytes.copy_from_slice(key);
                if let Some(hmac_key) = hmac_key {
                    hmac_bytes.copy_from_slice(hmac_key);
                }
                Ok(())
            },
        );
        Ok(version)
    }

    /// Encodes the record in the current format: standard base64 with padding of the protobuf
    /// message, no trailing newline. Fields are written in field-number order and proto3 zero
    /// values (empty `CreatedBy`, zero `nanos`, ...) are omitted, byte for byte as KES does.
    ///
    /// # Errors
    ///
    /// [`RecordError::MissingHmacKeyForEncode`] for a legacy record without HMAC key, and
    /// [`RecordError::CreatedAtOutOfRange`] if the creation time does not fit a protobuf
    /// timestamp (it always does for times this crate can represent).
    pub fn encode(&self) -> Result<Zeroizing<String>, RecordError> {
        let record = self.to_pb(true)?;
        let mut raw = Zeroizing::new(Vec::with_capacity(record.encoded_len()));
        record
            .encode(&mut *raw)
            .map_err(|_| RecordError::InvalidProtobuf)?;
        Ok(encode_base64(&raw))
    }

    /// The record's protobuf message. Without `require_hmac`, a record without HMAC key gives
    /// a message without one.
    pub(crate) fn to_pb(&self, require_hmac: bool) -> Result<PbKeyVersion, RecordError> {
        let hmac_key = match self.hmac_key() {
            Some(hmac) => Some(PbHmacKey {
                key: hmac.expose_secret().to_vec(),
                hash: HASH_SHA256,
            }),
            None if require_hmac => return Err(RecordError::MissingHmacKeyForEncode),
            None => None,
        };
        let created_at = self.created_at();
        let nanos =
            i32::try_from(created_at.nanosecond()).map_err(|_| RecordError::CreatedAtOutOfRange)?;
        Ok(PbKeyVersion {
            key: Some(PbSecretKey {
                key: self.record.key.to_vec(),
                r#type: self.algorithm().proto_value(),
            }),
            hmac_key,
            created_at: Some(PbTimestamp {
                seconds: created_at.unix_timestamp(),
                nanos,
            }),
            created_by: self.created_by().to_owned(),
        })
    }

    /// The secret key, lent out from the record (no key bytes are copied).
    #[must_use]
    pub fn key(&self) -> SecretKeyRef<'_> {
        SecretKeyRef::new(self.algorithm(), &self.record.key)
    }

    /// The algorithm of the secret key.
    #[must_use]
    pub fn algorithm(&self) -> KeyType {
        self.record.kind.key_type()
    }

    /// The HMAC key, lent out from the record; `None` for a legacy record.
    #[must_use]
    pub fn hmac_key(&self) -> Option<HmacKeyRef<'_>> {
        self.record
            .kind
            .has_hmac()
            .then(|| HmacKeyRef::new(&self.record.hmac_key))
    }

    /// When the key was created.
    ///
    /// A protobuf record without `CreatedAt` gives 1970-01-01T00:00:00Z; a legacy record without
    /// `created_at` gives Go's zero time 0001-01-01T00:00:00Z (as the original server reports).
    /// A legacy time keeps the UTC offset it was written with.
    #[must_use]
    pub fn created_at(&self) -> OffsetDateTime {
        OffsetDateTime::new_in_offset(
            self.record.created_date,
            self.record.created_time,
            self.record.created_offset,
        )
    }

    /// The identity that created the key; empty when unknown.
    ///
    /// Records with the same creator usually share one copy of it: the identities seen most
    /// recently are remembered by a small, fixed-size process-wide table (identities are
    /// public: hashes of certificates' public keys).
    #[must_use]
    pub fn created_by(&self) -> &str {
        self.record.created_by.as_str()
    }

    /// HMAC-SHA256 of `message` under the record's HMAC key (`/v1/key/hmac`).
    ///
    /// # Errors
    ///
    /// [`HmacUnsupported`] for a legacy record, which has no HMAC key (KES answers 409).
    pub fn hmac(&self, message: &[u8]) -> Result<[u8; 32], HmacUnsupported> {
        self.hmac_key()
            .map(|key| key.sum(message))
            .ok_or(HmacUnsupported)
    }
}

impl fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVersion")
            .field("algorithm", &self.algorithm())
            .field("hmac_key", &self.hmac_key().map(|_| "[REDACTED]"))
            .field("created_at", &self.created_at())
            .field("created_by", &self.created_by())
            .finish_non_exhaustive()
    }
}

/// Go's zero `time.Time`, 0001-01-01T00:00:00Z.
fn go_zero_time() -> OffsetDateTime {
    time::macros::datetime!(0001-01-01 00:00:00 UTC)
}

#[derive(Default)]
struct LegacyRecord {
    bytes: Option<SecretString>,
    algorithm: String,
    created_at: Option<String>,
    created_by: String,
}

impl GoStruct for LegacyRecord {
    const FIELDS: &'static [&'static str] = &["bytes", "algorithm", "created_at", "created_by"];

    fn set_field<'de, A: MapAccess<'de>>(
        &mut self,
        index: usize,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match index {
            0 => {
                if let Some(value) = map.next_value::<Option<SecretString>>()? {
                    self.bytes = Some(value);
                }
                Ok(())
            }
            1 => set_unless_null(map, &mut self.algorithm),
            2 => {
                if let Some(value) = map.next_value::<Option<String>>()? {
                    self.created_at = Some(value);
                }
                Ok(())
            }
            _ => set_unless_null(map, &mut self.created_by),
        }
    }
}

fn parse_legacy(stored: &[u8]) -> Result<KeyVersion, RecordError> {
    let record: LegacyRecord =
        gojson::from_slice(stored).ok_or(RecordError::InvalidLegacyRecord)?;
    let bytes = match &record.bytes {
        Some(text) => {
            gojson::decode_go_base64(text.0.as_bytes()).ok_or(RecordError::InvalidLegacyRecord)?
        }
        None => Zeroizing::new(Vec::new()),
    };
    let ty = match record.algorithm.as_str() {
        "" => KeyType::Aes256,
        name => KeyType::from_cipher_name(name).ok_or(RecordError::UnsupportedAlgorithm)?,
    };
    let key: &[u8; KEY_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| RecordError::InvalidSecretKeyLength)?;
    let created_at = match &record.created_at {
        None => go_zero_time(),
        Some(text) => {
            OffsetDateTime::parse(text, &Rfc3339).map_err(|_| RecordError::InvalidCreatedAt)?
        }
    };
    let Ok(version) = KeyVersion::assemble::<Infallible>(
        Kind::new(ty, false),
        created_at,
        &record.created_by,
        |key_bytes, _| {
            key_bytes.copy_from_slice(key);
            Ok(())
        },
    );
    Ok(version)
}

/// Standard base64 with padding, in a buffer that is wiped when dropped.
pub(crate) fn encode_base64(raw: &[u8]) -> Zeroizing<String> {
    let encoded_len = base64::encoded_len(raw.len(), true).unwrap_or(0);
    let mut text = Zeroizing::new(String::with_capacity(encoded_len));
    STANDARD.encode_string(raw, &mut text);
    text
}

// Hand-written protobuf messages (no protoc). Key fields are wiped when the messages drop.

#[derive(prost::Message)]
#[prost(skip_debug)]
pub(crate) struct PbSecretKey {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(uint32, tag = "2")]
    r#type: u32,
}

#[derive(prost::Message)]
#[prost(skip_debug)]
pub(crate) struct PbHmacKey {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(uint32, tag = "2")]
    hash: u32,
}

/// `google.protobuf.Timestamp`.
#[derive(prost::Message)]
pub(crate) struct PbTimestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(prost::Message)]
#[prost(skip_debug)]
pub(crate) struct PbKeyVersion {
    #[prost(message, optional, tag = "1")]
    pub(crate) key: Option<PbSecretKey>,
    #[prost(message, optional, tag = "2")]
    pub(crate) hmac_key: Option<PbHmacKey>,
    #[prost(message, optional, tag = "3")]
    pub(crate) created_at: Option<PbTimestamp>,
    #[prost(string, tag = "4")]
    pub(crate) created_by: String,
}

impl Drop for PbSecretKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl Drop for PbHmacKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for PbSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

impl fmt::Debug for PbHmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HMACKey([REDACTED])")
    }
}

impl fmt::Debug for PbKeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVersion")
            .field("created_at", &self.created_at)
            .field("created_by", &self.created_by)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use time::macros::datetime;

    use super::*;

    /// Spec §4.1 test vector (minio/kes: internal/crypto/key_test.go).
    const VECTOR: &str = "CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAognLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20YQZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc1MzM2NWE0Njc2MGFlNmI1Nzg2OThhOTdjNTlmZDIy";
    const VECTOR_ID: &str = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";

    fn b64(s: &str) -> Vec<u8> {
        STANDARD.decode(s).unwrap()
    }

    fn encode_pb(record: &PbKeyVersion) -> String {
        STANDARD.encode(record.encode_to_vec())
    }

    fn pb(key_len: usize, ty: u32, hmac_len: usize, hash: u32) -> PbKeyVersion {
        PbKeyVersion {
            key: Some(PbSecretKey {
                key: vec![1; key_len],
                r#type: ty,
            }),
            hmac_key: Some(PbHmacKey {
                key: vec![2; hmac_len],
                hash,
            }),
            created_at: Some(PbTimestamp {
                seconds: 1,
                nanos: 2,
            }),
            created_by: "x".into(),
        }
    }

    #[test]
    fn spec_vector_parses() {
        let record = KeyVersion::parse(VECTOR.as_bytes()).unwrap();
        assert_eq!(record.algorithm(), KeyType::Aes256);
        assert_eq!(
            record.key().expose_secret().as_slice(),
            b64("yIcbtes33gW7BuUkmivh/t/qtuoCXsPCwtqIijLPQPY=").as_slice()
        );
        assert_eq!(
            record.hmac_key().unwrap().expose_secret().as_slice(),
            b64("nLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20YQZa9Hg=").as_slice()
        );
        assert_eq!(
            record.created_at(),
            datetime!(2024-01-12 10:39:20.886816 UTC)
        );
        assert_eq!(record.created_by(), VECTOR_ID);
        // Re-encoding gives the identical text.
        assert_eq!(record.encode().unwrap().as_str(), VECTOR);
        // A trailing newline, and line breaks anywhere, are skipped.
        let with_newline = format!("{VECTOR}\n");
        assert!(KeyVersion::parse(with_newline.as_bytes()).is_ok());
        let split = format!("{}\r\n{}", &VECTOR[..10], &VECTOR[10..]);
        assert!(KeyVersion::parse(split.as_bytes()).is_ok());
    }

    #[test]
    fn spec_vector_encodes_from_parts() {
        let key = SecretKey::from_slice(
            KeyType::Aes256,
            &b64("yIcbtes33gW7BuUkmivh/t/qtuoCXsPCwtqIijLPQPY="),
        )
        .unwrap();
        let hmac =
            HmacKey::from_slice(&b64("nLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20YQZa9Hg=")).unwrap();
        let record = KeyVersion::new(
            key,
            hmac,
            datetime!(2024-01-12 10:39:20.886816 UTC),
            VECTOR_ID.to_owned(),
        );
        assert_eq!(record.encode().unwrap().as_str(), VECTOR);
    }

    #[test]
    fn zero_values_are_omitted() {
        let record = KeyVersion::new(
            SecretKey::new(KeyType::ChaCha20, [3; 32]),
            HmacKey::new([4; 32]),
            datetime!(1970-01-01 00:00:05 UTC),
            String::new(),
        );
        let raw = b64(&record.encode().unwrap());
        let mut want = vec![0x0a, 0x24, 0x0a, 0x20];
        want.extend_from_slice(&[3; 32]);
        want.extend_from_slice(&[0x10, 0x02, 0x12, 0x24, 0x0a, 0x20]);
        want.extend_from_slice(&[4; 32]);
        want.extend_from_slice(&[0x10, 0x01, 0x1a, 0x02, 0x08, 0x05]);
        assert_eq!(raw, want);
        let back = KeyVersion::parse(record.encode().unwrap().as_bytes()).unwrap();
        assert_eq!(back.algorithm(), KeyType::ChaCha20);
        assert_eq!(back.created_by(), "");
        assert_eq!(back.created_at(), datetime!(1970-01-01 00:00:05 UTC));
    }

    #[test]
    fn invalid_protobuf_records() {
        let cases = [
            (pb(31, 1, 32, 1), RecordError::InvalidSecretKeyLength),
            (pb(33, 1, 32, 1), RecordError::InvalidSecretKeyLength),
            (pb(32, 0, 32, 1), RecordError::UnsupportedKeyType(0)),
            (pb(32, 3, 32, 1), RecordError::UnsupportedKeyType(3)),
            (pb(32, 1, 16, 1), RecordError::InvalidHmacKeyLength),
            (pb(32, 1, 32, 0), RecordError::UnsupportedHash(0)),
            (pb(32, 2, 32, 2), RecordError::UnsupportedHash(2)),
            (
                PbKeyVersion {
                    key: None,
                    ..pb(32, 1, 32, 1)
                },
                RecordError::MissingSecretKey,
            ),
            (
                PbKeyVersion {
                    hmac_key: None,
                    ..pb(32, 1, 32, 1)
                },
                RecordError::MissingHmacKey,
            ),
            (
                PbKeyVersion {
                    created_at: Some(PbTimestamp {
                        seconds: i64::MAX,
                        nanos: 0,
                    }),
                    ..pb(32, 1, 32, 1)
                },
                RecordError::CreatedAtOutOfRange,
            ),
        ];
        for (record, want) in cases {
            let text = encode_pb(&record);
            assert_eq!(KeyVersion::parse(text.as_bytes()).unwrap_err(), want);
        }
        assert!(KeyVersion::parse(encode_pb(&pb(32, 2, 32, 1)).as_bytes()).is_ok());

        // Not base64, missing padding, not protobuf.
        assert_eq!(
            KeyVersion::parse(b"not base64!").unwrap_err(),
            RecordError::InvalidBase64
        );
        assert_eq!(
            KeyVersion::parse(&VECTOR.as_bytes()[..VECTOR.len() - 1]).unwrap_err(),
            RecordError::InvalidBase64
        );
        assert_eq!(
            KeyVersion::parse(STANDARD.encode([0xff, 0xff]).as_bytes()).unwrap_err(),
            RecordError::InvalidProtobuf
        );
        // An empty message lacks both keys.
        assert_eq!(
            KeyVersion::parse(b"").unwrap_err(),
            RecordError::MissingSecretKey
        );
    }

    #[test]
    fn missing_created_at_is_the_unix_epoch_and_unknown_fields_are_ignored() {
        let mut raw = PbKeyVersion {
            created_at: None,
            ..pb(32, 1, 32, 1)
        }
        .encode_to_vec();
        // Unknown field 9 (varint) is skipped.
        raw.extend_from_slice(&[0x48, 0x01]);
        let record = KeyVersion::parse(STANDARD.encode(raw).as_bytes()).unwrap();
        assert_eq!(record.created_at(), OffsetDateTime::UNIX_EPOCH);
        // Negative nanos normalise as in Go's time.Unix.
        let record = PbKeyVersion {
            created_at: Some(PbTimestamp {
                seconds: 10,
                nanos: -1,
            }),
            ..pb(32, 1, 32, 1)
        };
        let parsed = KeyVersion::parse(encode_pb(&record).as_bytes()).unwrap();
        assert_eq!(
            parsed.created_at(),
            datetime!(1970-01-01 00:00:09.999999999 UTC)
        );
    }

    #[test]
    fn spec_legacy_vectors() {
        let record =
            KeyVersion::parse(br#"{"bytes":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}"#)
                .unwrap();
        assert_eq!(record.algorithm(), KeyType::Aes256);
        assert_eq!(record.key().expose_secret(), &[0; 32]);
        assert!(record.hmac_key().is_none());
        assert_eq!(
            record.hmac(b"x").unwrap_err().to_string(),
            "key does not support HMAC"
        );
        assert_eq!(record.created_at(), datetime!(0001-01-01 00:00:00 UTC));
        assert_eq!(record.created_by(), "");
        assert_eq!(
            record.encode().unwrap_err(),
            RecordError::MissingHmacKeyForEncode
        );

        let record = KeyVersion::parse(br#"{"bytes":"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=","algorithm":"AES256-GCM_SHA256","created_at":"2009-11-10T23:00:00Z","created_by":"40235905"}"#).unwrap();
        assert_eq!(record.algorithm(), KeyType::Aes256);
        assert_eq!(
            record.key().expose_secret().as_slice(),
            b64("J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=").as_slice()
        );
        assert_eq!(record.created_at(), datetime!(2009-11-10 23:00:00 UTC));
        assert_eq!(record.created_by(), "40235905");

        let record = KeyVersion::parse(br#"{"bytes":"9ew6BCae3+13sniOUwttEJ62amg98YXc0OW0WBhNiCY=","algorithm":"XCHACHA20-POLY1305","created_at":"2009-11-10T23:00:00Z","created_by":"x"}"#).unwrap();
        assert_eq!(record.algorithm(), KeyType::ChaCha20);
    }

    #[test]
    fn legacy_json_rules() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let parse = |json: String| KeyVersion::parse(json.as_bytes());
        // Whitespace around the value, case-insensitive names, ignored extra fields, the
        // algorithm names of every release.
        let r = parse(format!(
            " \n{{\"BYTES\":\"{key}\",\"Algorithm\":\"ChaCha20\",\"version\":\"v1\"}}\n "
        ))
        .unwrap();
        assert_eq!(r.algorithm(), KeyType::ChaCha20);
        assert_eq!(r.key().expose_secret()[31], 31);
        for (name, ty) in [
            ("", KeyType::Aes256),
            ("AES256", KeyType::Aes256),
            ("AES256-GCM_SHA256", KeyType::Aes256),
            ("ChaCha20", KeyType::ChaCha20),
            ("XCHACHA20-POLY1305", KeyType::ChaCha20),
        ] {
            let r = parse(format!(r#"{{"bytes":"{key}","algorithm":"{name}"}}"#)).unwrap();
            assert_eq!(r.algorithm(), ty, "{name:?}");
        }
        // Null leaves the default, a time keeps its offset.
        let r = parse(format!(
            r#"{{"bytes":"{key}","algorithm":null,"created_at":"2021-06-01T12:00:00.5+02:00"}}"#
        ))
        .unwrap();
        assert_eq!(r.algorithm(), KeyType::Aes256);
        assert_eq!(r.created_at(), datetime!(2021-06-01 12:00:00.5 +02:00));

        let failures = [
            (
                format!(r#"{{"bytes":"{key}","algorithm":"DES"}}"#),
                RecordError::UnsupportedAlgorithm,
            ),
            (
                format!(r#"{{"bytes":"{key}","algorithm":"aes256"}}"#),
                RecordError::UnsupportedAlgorithm,
            ),
            (
                r#"{"bytes":"AAAA"}"#.to_owned(),
                RecordError::InvalidSecretKeyLength,
            ),
            (r#"{}"#.to_owned(), RecordError::InvalidSecretKeyLength),
            ("null".to_owned(), RecordError::InvalidSecretKeyLength),
            (
                r#"{"bytes":"!!"}"#.to_owned(),
                RecordError::InvalidLegacyRecord,
            ),
            (
                r#"{"bytes":5}"#.to_owned(),
                RecordError::InvalidLegacyRecord,
            ),
            (r#""text""#.to_owned(), RecordError::InvalidLegacyRecord),
            ("[1]".to_owned(), RecordError::InvalidLegacyRecord),
            (
                format!(r#"{{"bytes":"{key}","created_at":"yesterday"}}"#),
                RecordError::InvalidCreatedAt,
            ),
            (
                format!(r#"{{"bytes":"{key}","created_at":5}}"#),
                RecordError::InvalidLegacyRecord,
            ),
        ];
        for (json, want) in failures {
            assert_eq!(parse(json.clone()).unwrap_err(), want, "{json}");
        }
        // Malformed JSON (missing brace, quote, colon) is not JSON, hence not base64 either.
        for json in [
            format!(r#"{{"bytes":"{key}""#),
            format!(r#"{{"bytes":"{key}}}"#),
            format!(r#"{{"bytes" "{key}"}}"#),
        ] {
            assert_eq!(parse(json).unwrap_err(), RecordError::InvalidBase64);
        }
    }

    /// A record is one pointer to one heap block of 88 bytes (a 96-byte glibc chunk): what a
    /// server pays per cached key besides the cache's own entry.
    #[test]
    fn a_record_is_one_compact_allocation() {
        assert_eq!(std::mem::size_of::<KeyVersion>(), 8);
        assert!(
            std::mem::size_of::<Record>() <= 88,
            "{} bytes",
            std::mem::size_of::<Record>()
        );
        assert_eq!(std::mem::size_of::<Kind>(), 1);
    }

    /// The creation time is kept as parts; every part comes back exactly, offset included.
    #[test]
    fn created_at_round_trips_exactly() {
        for at in [
            datetime!(2024-01-12 10:39:20.886816 UTC),
            datetime!(2021-06-01 12:00:00.5 +02:00),
            datetime!(2000-02-29 23:59:59.999999999 -23:59:59),
            datetime!(-9999-01-01 00:00:00 +25:59:59),
            datetime!(9999-12-31 23:59:59.999999999 UTC),
            OffsetDateTime::UNIX_EPOCH,
        ] {
            let record = KeyVersion::new(
                SecretKey::new(KeyType::Aes256, [1; 32]),
                HmacKey::new([2; 32]),
                at,
                "x".to_owned(),
            );
            let back = record.created_at();
            assert_eq!(back, at);
            assert_eq!(back.offset(), at.offset(), "{at}");
            assert_eq!((back.date(), back.time()), (at.date(), at.time()), "{at}");
        }
    }

    #[test]
    fn generate_draws_two_fresh_keys_into_the_record() {
        let generate = || {
            KeyVersion::generate(
                KeyType::ChaCha20,
                "me".to_owned(),
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap()
        };
        let (a, b) = (generate(), generate());
        assert_eq!(a.algorithm(), KeyType::ChaCha20);
        let a_hmac = a.hmac_key().unwrap().expose_secret();
        assert_ne!(a.key().expose_secret(), &[0; 32]);
        assert_ne!(a_hmac, &[0; 32]);
        assert_ne!(a.key().expose_secret(), a_hmac);
        assert_ne!(a.key().expose_secret(), b.key().expose_secret());
        assert_eq!(a.hmac(b"m").unwrap(), HmacKey::new(*a_hmac).sum(b"m"));
        assert_eq!((a.created_by(), b.created_by()), ("me", "me"));
        // The key lent out seals and opens like the same bytes in a `SecretKey`.
        let sealed = a.key().encrypt(b"data", b"ctx").unwrap();
        let own = SecretKey::new(KeyType::ChaCha20, *a.key().expose_secret());
        assert_eq!(
            own.decrypt(&sealed, b"ctx").unwrap().expose_secret(),
            b"data"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let record = KeyVersion::parse(VECTOR.as_bytes()).unwrap();
        let debug = format!("{record:?}");
        assert!(debug.contains(VECTOR_ID));
        assert!(
            !debug.contains("200") && !debug.contains("c8871b"),
            "{debug}"
        );
    }
}
