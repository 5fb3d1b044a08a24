//! The ciphertext formats accepted by decrypt (spec §4.4).
//!
//! Detection looks at the first byte only:
//!
//! 1. `0x95` (msgpack fixarray of 5): `[alg: str, key_id: str, iv: bin(16), nonce: bin(12),
//!    sealed: bin]` with no trailing bytes, emitted by v0.20.0 up to 2024-01;
//! 2. `{`: the JSON envelope `{"aead", "id", "iv", "nonce", "bytes"}` of v0.19.x and earlier;
//! 3. anything else, and any input whose envelope fails to parse: the raw format of the final
//!    KES, `sealed ‖ iv (16) ‖ nonce (12)`.
//!
//! The algorithm name and key id inside an envelope are checked for being well-formed (as the
//! original parsers did) but are otherwise ignored: the stored key's type decides the AEAD.
//! Parsing never fails loudly; the caller turns `None` into the one decrypt error.

use std::borrow::Cow;

use serde::de::MapAccess;

use crate::aead::{IV_LEN, NONCE_LEN};
use crate::gojson::{self, GoStruct, SecretString, set_unless_null};
use crate::key::RANDOM_LEN;

/// The pieces of a ciphertext, whatever its format.
pub(crate) struct Parts<'a> {
    /// `ciphertext ‖ tag`.
    pub(crate) sealed: Cow<'a, [u8]>,
    pub(crate) iv: [u8; IV_LEN],
    pub(crate) nonce: [u8; NONCE_LEN],
}

/// Splits `input` into its parts, or `None` if it cannot be a ciphertext at all.
pub(crate) fn parse(input: &[u8]) -> Option<Parts<'_>> {
    let envelope = match input.first() {
        Some(0x95) => parse_msgpack(input),
        Some(b'{') => parse_json(input),
        _ => None,
    };
    envelope.or_else(|| parse_raw(input))
}

/// `sealed ‖ iv ‖ nonce`; inputs of 28 bytes or less are rejected (spec §4.4).
fn parse_raw(input: &[u8]) -> Option<Parts<'_>> {
    if input.len() <= RANDOM_LEN {
        return None;
    }
    let (sealed, random) = input.split_at(input.len() - RANDOM_LEN);
    let (iv, nonce) = random.split_first_chunk::<IV_LEN>()?;
    Some(Parts {
        sealed: Cow::Borrowed(sealed),
        iv: *iv,
        nonce: nonce.try_into().ok()?,
    })
}

/// The algorithm names a msgpack envelope may carry (the SDK's `KeyAlgorithm` texts).
const MSGPACK_ALGORITHMS: [&[u8]; 4] = [
    b"AES256",
    b"AES256-GCM_SHA256",
    b"ChaCha20",
    b"XCHACHA20-POLY1305",
];

fn parse_msgpack(input: &[u8]) -> Option<Parts<'_>> {
    let mut reader = MsgpackReader { rest: input };
    if reader.take(1)? != [0x95] {
        return None;
    }
    let algorithm = reader.str()?;
    if !MSGPACK_ALGORITHMS.contains(&algorithm) {
        return None;
    }
    let _key_id = reader.str()?;
    let iv: [u8; IV_LEN] = reader.bin()?.try_into().ok()?;
    let nonce: [u8; NONCE_LEN] = reader.bin()?.try_into().ok()?;
    let sealed = reader.bin()?;
    if !reader.rest.is_empty() {
        return None;
    }
    Some(Parts {
        sealed: Cow::Borrowed(sealed),
        iv,
        nonce,
    })
}

/// A minimal reader for the msgpack types of the legacy envelope.
struct MsgpackReader<'a> {
    rest: &'a [u8],
}

impl<'a> MsgpackReader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let taken = self.rest.get(..n)?;
        self.rest = self.rest.get(n..)?;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn length(&mut self, width: usize) -> Option<usize> {
        let bytes = self.take(width)?;
        let len = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        usize::try_from(len).ok()
    }

    /// A msgpack `str` (fixstr, str8, str16 or str32).
    fn str(&mut self) -> Option<&'a [u8]> {
        let len = match self.byte()? {
            lead @ 0xa0..=0xbf => usize::from(lead & 0x1f),
            0xd9 => self.length(1)?,
            0xda => self.length(2)?,
            0xdb => self.length(4)?,
            _ => return None,
        };
        self.take(len)
    }

    /// A msgpack `bin` (bin8, bin16 or bin32).
    fn bin(&mut self) -> Option<&'a [u8]> {
        let len = match self.byte()? {
            0xc4 => self.length(1)?,
            0xc5 => self.length(2)?,
            0xc6 => self.length(4)?,
            _ => return None,
        };
        self.take(len)
    }
}

/// The `aead` names of the JSON envelope.
const JSON_ALGORITHMS: [&str; 2] = ["AES-256-GCM-HMAC-SHA-256", "ChaCha20Poly1305"];

#[derive(Default)]
struct JsonEnvelope {
    aead: String,
    /// Read (a non-string value makes the envelope invalid, as in Go) but otherwise ignored.
    _id: String,
    iv: Option<SecretString>,
    nonce: Option<SecretString>,
    bytes: Option<SecretString>,
}

impl GoStruct for JsonEnvelope {
    const FIELDS: &'static [&'static str] = &["aead", "id", "iv", "nonce", "bytes"];

    fn set_field<'de, A: MapAccess<'de>>(
        &mut self,
        index: usize,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match index {
            0 => set_unless_null(map, &mut self.aead),
            1 => set_unless_null(map, &mut self._id),
            2 => set_base64(map, &mut self.iv),
            3 => set_base64(map, &mut self.nonce),
            _ => set_base64(map, &mut self.bytes),
        }
    }
}

/// A `[]byte` field: a JSON string, kept as text here and decoded after the object is read.
fn set_base64<'de, A: MapAccess<'de>>(
    map: &mut A,
    slot: &mut Option<SecretString>,
) -> Result<(), A::Error> {
    if let Some(value) = map.next_value::<Option<SecretString>>()? {
        *slot = Some(value);
    }
    Ok(())
}

fn parse_json(input: &[u8]) -> Option<Parts<'static>> {
    let envelope: JsonEnvelope = gojson::from_slice(input)?;
    if !JSON_ALGORITHMS.contains(&envelope.aead.as_str()) {
        return None;
    }
    let decode = |field: &Option<SecretString>| match field {
        Some(text) => gojson::decode_go_base64(text.0.as_bytes()),
        None => Some(Default::default()),
    };
    let iv: [u8; IV_LEN] = decode(&envelope.iv)?.as_slice().try_into().ok()?;
    let nonce: [u8; NONCE_LEN] = decode(&envelope.nonce)?.as_slice().try_into().ok()?;
    let sealed = decode(&envelope.bytes)?;
    Some(Parts {
        sealed: Cow::Owned(sealed.to_vec()),
        iv,
        nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgpack(alg: &str, iv: &[u8], nonce: &[u8], sealed: &[u8]) -> Vec<u8> {
        let mut out = vec![0x95, 0xa0 | alg.len() as u8];
        out.extend_from_slice(alg.as_bytes());
        out.extend_from_slice(&[0xd9, 2, b'i', b'd']);
        for part in [iv, nonce, sealed] {
            out.extend_from_slice(&[0xc4, part.len() as u8]);
            out.extend_from_slice(part);
        }
        out
    }

    #[test]
    fn raw_splits_off_iv_and_nonce() {
        let input: Vec<u8> = (0u8..45).collect();
        let parts = parse(&input).unwrap();
        assert_eq!(parts.sealed.as_ref(), &input[..17]);
        assert_eq!(parts.iv.as_slice(), &input[17..33]);
        assert_eq!(parts.nonce.as_slice(), &input[33..]);
        assert!(parse(&[0u8; 28]).is_none());
        assert!(parse(&[]).is_none());
        assert!(parse(&[0u8; 29]).is_some());
    }

    #[test]
    fn msgpack_envelope() {
        let input = msgpack("AES256", &[1; 16], &[2; 12], &[3; 20]);
        let parts = parse(&input).unwrap();
        assert_eq!(parts.iv, [1; 16]);
        assert_eq!(parts.nonce, [2; 12]);
        assert_eq!(parts.sealed.as_ref(), &[3; 20]);
        for alg in ["AES256-GCM_SHA256", "ChaCha20", "XCHACHA20-POLY1305"] {
            let input = msgpack(alg, &[1; 16], &[2; 12], &[3; 20]);
            assert_eq!(parse(&input).unwrap().iv, [1; 16]);
        }
    }

    #[test]
    fn malformed_msgpack_falls_back_to_raw() {
        // Each of these is long enough to be read as raw instead: then the last 28 bytes are
        // taken as IV and nonce, never the envelope's fields.
        let cases = [
            msgpack("AES", &[1; 16], &[2; 12], &[3; 20]),
            msgpack("AES256", &[1; 20], &[2; 12], &[3; 20]),
            msgpack("AES256", &[1; 16], &[2; 8], &[3; 20]),
            {
                let mut v = msgpack("AES256", &[1; 16], &[2; 12], &[3; 20]);
                v.push(0);
                v
            },
        ];
        for input in cases {
            let parts = parse(&input).unwrap();
            assert_eq!(parts.sealed.len(), input.len() - 28);
        }
        // Truncated envelope.
        let input = msgpack("AES256", &[1; 16], &[2; 12], &[3; 20]);
        let parts = parse(&input[..input.len() - 1]).unwrap();
        assert_eq!(parts.sealed.len(), input.len() - 29);
    }

    #[test]
    fn json_envelope() {
        let input = br#"{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"AQEBAQEBAQEBAQEBAQEBAQ==","nonce":"AgICAgICAgICAgIC","bytes":"AwMD"}"#;
        let parts = parse(input).unwrap();
        assert_eq!(parts.iv, [1; 16]);
        assert_eq!(parts.nonce, [2; 12]);
        assert_eq!(parts.sealed.as_ref(), &[3, 3, 3]);

        let bad = br#"{"aead":"AES-256-GCM","iv":"AQEBAQEBAQEBAQEBAQEBAQ==","nonce":"AgICAgICAgICAgIC","bytes":"AwMD"}"#;
        let parts = parse(bad).unwrap();
        assert_eq!(parts.sealed.len(), bad.len() - 28);
    }
}
