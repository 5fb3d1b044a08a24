//! Versioned keys: the stored record of a key with several versions (rotation), in a form the
//! original server still reads.
//!
//! A key that was never rotated is the record of §4.1, byte for byte, and has one version, `v1`.
//! A rotated key's record is the same `KeyVersion` message holding the **newest** version in
//! fields 1–4 (so the original server, which skips protobuf fields it does not know, reads and
//! uses the newest version), plus two fields of its own:
//!
//! ```text
//! message KeyVersion { SecretKey Key = 1; HMACKey HMACKey = 2; Timestamp CreatedAt = 3;
//!                      string CreatedBy = 4;
//!                      uint32 Version = 1001;             // the newest version's number; absent = 1
//!                      repeated Archived Archived = 1002; }  // the older versions kept, oldest first
//! message Archived   { uint32 Version = 1; KeyVersion Key = 2; }
//! ```
//!
//! Version numbers start at 1 and grow by one per rotation; a removed version's number is never
//! used again. An archived version of a legacy key (no HMAC key) is stored without `HMACKey`.

use std::fmt;

use prost::Message;
use zeroize::Zeroizing;

use crate::error::RecordError;
use crate::gojson;
use crate::key::Plaintext;
use crate::record::{KeyVersion, PbHmacKey, PbKeyVersion, PbSecretKey, PbTimestamp, encode_base64};

/// The most versions a key keeps (the newest included). Decrypting without a version tries
/// them newest first, so this bounds the work of one request.
pub const MAX_VERSIONS: usize = 256;

/// A key with all its kept versions.
pub struct KeyRing {
    newest: KeyVersion,
    number: u32,
    /// Older versions, ascending by number.
    archived: Vec<(u32, KeyVersion)>,
}

/// Why a ring cannot be changed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The version does not exist (never did, or was removed).
    #[error("key version does not exist")]
    NoSuchVersion,
    /// The newest version encrypts: it cannot be removed (rotate first).
    #[error("the newest version of a key cannot be removed")]
    NewestVersion,
    /// The key already keeps [`MAX_VERSIONS`] versions.
    #[error("a key keeps at most {MAX_VERSIONS} versions: remove old versions first")]
    TooManyVersions,
    /// The version number would overflow.
    #[error("the key has reached the largest version number")]
    Exhausted,
}

impl KeyRing {
    /// A key with one version, `v1`: what creating or importing a key stores.
    #[must_use]
    pub fn single(version: KeyVersion) -> KeyRing {
        KeyRing {
            newest: version,
            number: 1,
            archived: Vec::new(),
        }
    }

    /// Parses a stored record: a ring of one version for a record of §4.1 (either format), or
    /// the rotated form described in the module docs.
    ///
    /// # Errors
    ///
    /// What [`KeyVersion::parse`] reports for the newest version, and
    /// [`RecordError::InvalidProtobuf`] for archived versions that are malformed, out of order,
    /// numbered zero or not below the newest.
    pub fn parse(stored: &[u8]) -> Result<KeyRing, RecordError> {
        let newest = KeyVersion::parse(stored)?;
        if gojson::is_valid_json(stored) {
            return Ok(KeyRing::single(newest));
        }
        let raw = gojson::decode_go_base64(stored).ok_or(RecordError::InvalidBase64)?;
        let extra =
            PbRingFields::decode(raw.as_slice()).map_err(|_| RecordError::InvalidProtobuf)?;
        let number = if extra.version == 0 { 1 } else { extra.version };
        let mut archived = Vec::with_capacity(extra.archived.len());
        let mut previous = 0u32;
        for entry in &extra.archived {
            let key = entry.key.as_ref().ok_or(RecordError::MissingSecretKey)?;
            if entry.version <= previous || entry.version >= number {
                return Err(RecordError::InvalidProtobuf);
            }
            previous = entry.version;
            archived.push((entry.version, KeyVersion::from_pb(key, false)?));
        }
        if archived.len() >= MAX_VERSIONS {
            return Err(RecordError::InvalidProtobuf);
        }
        Ok(KeyRing {
            newest,
            number,
            archived,
        })
    }

    /// Encodes the ring: exactly [`KeyVersion::encode`] of the only version for a key that was
    /// never rotated, the rotated form otherwise.
    ///
    /// # Errors
    ///
    /// What [`KeyVersion::encode`] reports for the newest version (which needs an HMAC key).
    pub fn encode(&self) -> Result<Zeroizing<String>, RecordError> {
        if !self.is_rotated() {
            return self.newest.encode();
        }
        let newest = self.newest.to_pb(true)?;
        let mut archived = Vec::with_capacity(self.archived.len());
        for (number, version) in &self.archived {
            archived.push(PbArchived {
                version: *number,
                key: Some(version.to_pb(false)?),
            });
        }
        let record = PbRing {
            key: newest.key,
            hmac_key: newest.hmac_key,
            created_at: newest.created_at,
            created_by: newest.created_by,
            version: self.number,
            archived,
        };
        let mut raw = Zeroizing::new(Vec::with_capacity(record.encoded_len()));
        record
            .encode(&mut *raw)
            .map_err(|_| RecordError::InvalidProtobuf)?;
        Ok(encode_base64(&raw))
    }

    /// Whether the key has ever been rotated: its record then carries the version fields and
    /// its replies name their version.
    #[must_use]
    pub fn is_rotated(&self) -> bool {
        self.number > 1 || !self.archived.is_empty()
    }

    /// The newest version and its number: it encrypts, generates and computes HMACs.
    #[must_use]
    pub fn newest(&self) -> (u32, &KeyVersion) {
        (self.number, &self.newest)
    }

    /// The version with this number.
    #[must_use]
    pub fn get(&self, number: u32) -> Option<&KeyVersion> {
        if number == self.number {
            return Some(&self.newest);
        }
        self.archived
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()
            .and_then(|i| self.archived.get(i))
            .map(|(_, v)| v)
    }

    /// Every kept version, newest first: the order in which decrypting without a version tries
    /// them.
    pub fn versions(&self) -> impl Iterator<Item = (u32, &KeyVersion)> {
        std::iter::once((self.number, &self.newest))
            .chain(self.archived.iter().rev().map(|(n, v)| (*n, v)))
    }

    /// Opens `ciphertext` with the first kept version, newest first, that authenticates it:
    /// what decrypting without a version does. At most [`len`](Self::len) AEAD opens, each of
    /// which fails at the tag check for a wrong version.
    pub fn decrypt(&self, ciphertext: &[u8], context: &[u8]) -> Option<(u32, Plaintext)> {
        self.versions()
            .find_map(|(n, v)| v.key().decrypt(ciphertext, context).ok().map(|pt| (n, pt)))
    }

    /// How many versions are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.archived.len() + 1
    }

    /// Always `false`: a key has at least one version.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Adds `version` as the new newest version; the current newest is kept as an old one.
    ///
    /// # Errors
    ///
    /// [`RingError::TooManyVersions`] when [`MAX_VERSIONS`] are kept already.
    pub fn rotate(self, version: KeyVersion) -> Result<KeyRing, RingError> {
        if self.len() >= MAX_VERSIONS {
            return Err(RingError::TooManyVersions);
        }
        let number = self.number.checked_add(1).ok_or(RingError::Exhausted)?;
        let mut archived = self.archived;
        archived.push((self.number, self.newest));
        Ok(KeyRing {
            newest: version,
            number,
            archived,
        })
    }

    /// Removes an old version.
    ///
    /// # Errors
    ///
    /// [`RingError::NewestVersion`] for the newest version, [`RingError::NoSuchVersion`] for a
    /// number the key does not keep.
    pub fn remove(mut self, number: u32) -> Result<KeyRing, RingError> {
        if number == self.number {
            return Err(RingError::NewestVersion);
        }
        let i = self
            .archived
            .binary_search_by_key(&number, |(n, _)| *n)
            .map_err(|_| RingError::NoSuchVersion)?;
        self.archived.remove(i);
        Ok(self)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let numbers: Vec<u32> = self.versions().map(|(n, _)| n).collect();
        f.debug_struct("KeyRing")
            .field("versions", &numbers)
            .field("newest", &self.newest)
            .finish()
    }
}

/// A version number as the API writes it: `v1`, `v2`, …
#[must_use]
pub fn version_name(number: u32) -> String {
    format!("v{number}")
}

/// A version number from the API: `v2` or `2`; `None` for anything else (zero included).
#[must_use]
pub fn parse_version_name(text: &str) -> Option<u32> {
    let digits = text.strip_prefix('v').unwrap_or(text);
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().filter(|n| *n > 0)
}

/// The version fields of a stored record, read from the same bytes as the `KeyVersion`.
#[derive(prost::Message)]
#[prost(skip_debug)]
struct PbRingFields {
    #[prost(uint32, tag = "1001")]
    version: u32,
    #[prost(message, repeated, tag = "1002")]
    archived: Vec<PbArchived>,
}

/// A rotated record, written in field order.
#[derive(prost::Message)]
#[prost(skip_debug)]
struct PbRing {
    #[prost(message, optional, tag = "1")]
    key: Option<PbSecretKey>,
    #[prost(message, optional, tag = "2")]
    hmac_key: Option<PbHmacKey>,
    #[prost(message, optional, tag = "3")]
    created_at: Option<PbTimestamp>,
    #[prost(string, tag = "4")]
    created_by: String,
    #[prost(uint32, tag = "1001")]
    version: u32,
    #[prost(message, repeated, tag = "1002")]
    archived: Vec<PbArchived>,
}

#[derive(prost::Message)]
#[prost(skip_debug)]
struct PbArchived {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(message, optional, tag = "2")]
    key: Option<PbKeyVersion>,
}

impl fmt::Debug for PbRingFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingFields")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PbRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PbArchived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Archived")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use time::OffsetDateTime;

    use super::*;
    use crate::KeyType;

    const ID: &str = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";

    fn version(ty: KeyType) -> KeyVersion {
        KeyVersion::generate(ty, ID.to_owned(), OffsetDateTime::now_utc()).unwrap()
    }

    #[test]
    fn a_key_never_rotated_is_stored_exactly_as_before() {
        let v = version(KeyType::Aes256);
        let before = v.encode().unwrap();
        let ring = KeyRing::single(KeyVersion::parse(before.as_bytes()).unwrap());
        assert!(!ring.is_rotated());
        assert_eq!(*ring.encode().unwrap(), *before);
        let again = KeyRing::parse(before.as_bytes()).unwrap();
        assert_eq!((again.len(), again.newest().0), (1, 1));
    }

    #[test]
    fn rotation_keeps_every_version_and_round_trips() {
        let first = version(KeyType::Aes256);
        let first_key = *first.key().expose_secret();
        let mut ring = KeyRing::single(first);
        for _ in 0..4 {
            ring = ring.rotate(version(KeyType::ChaCha20)).unwrap();
        }
        assert!(ring.is_rotated());
        assert_eq!(
            ring.versions().map(|(n, _)| n).collect::<Vec<_>>(),
            [5, 4, 3, 2, 1]
        );
        let text = ring.encode().unwrap();
        let parsed = KeyRing::parse(text.as_bytes()).unwrap();
        assert_eq!(
            parsed.versions().map(|(n, _)| n).collect::<Vec<_>>(),
            [5, 4, 3, 2, 1]
        );
        assert_eq!(parsed.get(1).unwrap().key().expose_secret(), &first_key);
        assert_eq!(parsed.get(1).unwrap().algorithm(), KeyType::Aes256);
        assert_eq!(parsed.newest().1.algorithm(), KeyType::ChaCha20);
        // The plain parser (and so the original server) sees the newest version.
        let plain = KeyVersion::parse(text.as_bytes()).unwrap();
        assert_eq!(
            plain.key().expose_secret(),
            parsed.newest().1.key().expose_secret()
        );
        // Removing an old version, never the newest.
        let parsed = parsed.remove(3).unwrap();
        assert_eq!(
            parsed.versions().map(|(n, _)| n).collect::<Vec<_>>(),
            [5, 4, 2, 1]
        );
        assert!(parsed.get(3).is_none());
        let parsed = KeyRing::parse(parsed.encode().unwrap().as_bytes()).unwrap();
        assert_eq!(
            parsed.versions().map(|(n, _)| n).collect::<Vec<_>>(),
            [5, 4, 2, 1]
        );
        assert!(matches!(parsed.remove(5), Err(RingError::NewestVersion)));
        let parsed = KeyRing::parse(text.as_bytes()).unwrap();
        assert!(matches!(parsed.remove(9), Err(RingError::NoSuchVersion)));
        // After removing every old version the number stays: the key is still rotated.
        let mut ring = KeyRing::parse(text.as_bytes()).unwrap();
        for n in 1..5 {
            ring = ring.remove(n).unwrap();
        }
        assert!(ring.is_rotated());
        let ring = KeyRing::parse(ring.encode().unwrap().as_bytes()).unwrap();
        assert_eq!((ring.len(), ring.newest().0), (1, 5));
    }

    #[test]
    fn a_rotated_legacy_key_keeps_its_legacy_version() {
        let legacy = br#"{"bytes":"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=","algorithm":"AES256-GCM_SHA256"}"#;
        let ring = KeyRing::parse(legacy).unwrap();
        let ring = ring.rotate(version(KeyType::Aes256)).unwrap();
        let parsed = KeyRing::parse(ring.encode().unwrap().as_bytes()).unwrap();
        let old = parsed.get(1).unwrap();
        assert!(old.hmac_key().is_none());
        assert_eq!(
            STANDARD.encode(old.key().expose_secret()),
            "J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E="
        );
    }

    #[test]
    fn the_number_of_versions_is_bounded() {
        let mut ring = KeyRing::single(version(KeyType::Aes256));
        for _ in 1..MAX_VERSIONS {
            ring = ring.rotate(version(KeyType::Aes256)).unwrap();
        }
        assert_eq!(ring.len(), MAX_VERSIONS);
        assert!(matches!(
            ring.rotate(version(KeyType::Aes256)),
            Err(RingError::TooManyVersions)
        ));
    }

    #[test]
    fn malformed_version_fields_are_refused() {
        let ring = KeyRing::single(version(KeyType::Aes256))
            .rotate(version(KeyType::Aes256))
            .unwrap();
        let text = ring.encode().unwrap();
        let mut raw = STANDARD.decode(text.as_bytes()).unwrap();
        // Set the newest version number (field 1001, after fields 1-4) to 1: the archived v1 is
        // then not below it.
        let tag = [0xc8, 0x3e]; // (1001 << 3) | 0, as a varint
        let at = raw.windows(2).position(|w| w == tag).unwrap();
        raw[at + 2] = 1;
        let bad = STANDARD.encode(&raw);
        assert!(matches!(
            KeyRing::parse(bad.as_bytes()),
            Err(RecordError::InvalidProtobuf)
        ));
    }

    #[test]
    fn version_names() {
        assert_eq!(version_name(3), "v3");
        assert_eq!(parse_version_name("v3"), Some(3));
        assert_eq!(parse_version_name("3"), Some(3));
        for bad in [
            "",
            "v",
            "v0",
            "0",
            "-1",
            "v1.0",
            "V1",
            "v99999999999",
            "v 1",
            "1v",
        ] {
            assert_eq!(parse_version_name(bad), None, "{bad:?}");
        }
    }
}
